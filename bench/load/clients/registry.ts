// The client connection for each protocol, looked up by name: adding a protocol is one file and one line here.
import type { LoadProtocol } from '../types.ts';
import type { ConnectionFactory } from './connection.ts';
import { Http1Connection } from './http1.ts';
import { Http2Connection } from './http2.ts';
import { WebSocketConnection } from './websocket.ts';

export const connectionFactories: Readonly<Record<LoadProtocol, ConnectionFactory>> = {
  http1: (index, sink, opts) => new Http1Connection(index, sink, opts),
  http2: (index, sink, opts) => new Http2Connection(index, sink, opts, 'http2'),
  'grpc-unary': (index, sink, opts) => new Http2Connection(index, sink, opts, 'grpc-unary'),
  'grpc-server-stream': (index, sink, opts) => new Http2Connection(index, sink, opts, 'grpc-server-stream'),
  websocket: (index, sink, opts) => new WebSocketConnection(index, sink, opts),
};
