// One h2c request on a fresh session, for tests that need to tell a response from a reset: resolves with the
// status, headers and body when the response completes, or with the RST_STREAM code (and no status when the
// reset came before the head). The session is closed afterwards; every wait is bounded.
import http2 from 'node:http2';

export interface H2Result {
  /** 0 when no response head arrived. */
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
  /** The stream was reset (by the proxy) or the session died: the RST_STREAM / GOAWAY code, else null. */
  resetCode: number | null;
  /** The whole body arrived and the stream ended cleanly. */
  complete: boolean;
}

export function h2Get(url: string, path: string, timeoutMs = 5_000): Promise<H2Result> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url);
    session.on('error', () => {}); // reported through the stream
    const result: H2Result = { status: 0, headers: {}, body: '', resetCode: null, complete: false };
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error(`h2 GET ${path}: nothing decisive within ${timeoutMs} ms (status ${result.status})`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      session.close();
      resolve(result);
    };
    const stream = session.request({ ':method': 'GET', ':path': path });
    stream.on('response', (headers) => {
      result.status = Number(headers[':status']);
      result.headers = headers;
    });
    stream.setEncoding('utf8');
    stream.on('data', (s: string) => (result.body += s));
    stream.on('end', () => {
      if (stream.rstCode === undefined || stream.rstCode === http2.constants.NGHTTP2_NO_ERROR) result.complete = true;
    });
    stream.on('error', () => {}); // the reset code is read in 'close'
    stream.on('close', () => {
      if (stream.rstCode !== undefined && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR)
        result.resetCode = stream.rstCode;
      else if (!result.complete && session.destroyed) result.resetCode = -1;
      done();
    });
  });
}
