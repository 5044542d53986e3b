// The bench origin's public face: the in-process server (server.ts) and its options.
export { type Origin, type OriginOptions, type OriginTls, startOrigin, WEBSOCKET_PATH } from './server.ts';
export { DEFAULT_STREAM_MESSAGES } from './grpc.ts';
