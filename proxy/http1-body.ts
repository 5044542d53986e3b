// A downstream HTTP/1.1 request body as the Readable the upstream pools consume (pipe for h2, data/pause for
// HTTP/1.1). The connection's parser pushes the decoded body bytes in (Content-Length or chunked framing is
// already gone); when the consumer falls behind, push() says so and the connection stops reading its socket
// until _read asks for more. Only requests that carry a body get one.
import { Readable } from 'node:stream';

export interface BodySource {
  /** The consumer wants more: read from the socket again. */
  resumeBody(): void;
}

export class RequestBody extends Readable {
  private readonly source: BodySource;

  constructor(source: BodySource) {
    super({ highWaterMark: 64 * 1024 });
    this.source = source;
  }

  override _read(): void {
    this.source.resumeBody();
  }
}
