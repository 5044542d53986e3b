// The Echo gRPC service of test/fixtures/echo.proto for end-to-end tests: a real grpc-js server (the
// upstream, handlers replaceable per test) and typed grpc-js clients, both on 127.0.0.1 only.
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export interface EchoRequest {
  message: string;
  count: number;
}

export interface EchoReply {
  message: string;
  index: number;
}

export interface EchoHandlers {
  Unary: grpc.handleUnaryCall<EchoRequest, EchoReply>;
  ServerStream: grpc.handleServerStreamingCall<EchoRequest, EchoReply>;
  ClientStream: grpc.handleClientStreamingCall<EchoRequest, EchoReply>;
  BidiStream: grpc.handleBidiStreamingCall<EchoRequest, EchoReply>;
}

type UnaryCallback = grpc.requestCallback<EchoReply>;

export interface EchoClient extends grpc.Client {
  Unary(
    req: Partial<EchoRequest>,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    cb: UnaryCallback,
  ): grpc.ClientUnaryCall;
  ServerStream(
    req: Partial<EchoRequest>,
    metadata?: grpc.Metadata,
    options?: grpc.CallOptions,
  ): grpc.ClientReadableStream<EchoReply>;
  ClientStream(
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    cb: UnaryCallback,
  ): grpc.ClientWritableStream<EchoRequest>;
  BidiStream(metadata?: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<EchoRequest, EchoReply>;
}

type EchoClientConstructor = new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ChannelOptions,
) => EchoClient;

const PROTO_PATH = fileURLToPath(new URL('../fixtures/echo.proto', import.meta.url));
const packageDefinition = protoLoader.loadSync(PROTO_PATH, { keepCase: true, defaults: true });
const loaded = grpc.loadPackageDefinition(packageDefinition) as unknown as {
  skein: { test: { Echo: EchoClientConstructor & { service: grpc.ServiceDefinition } } };
};
const Echo = loaded.skein.test.Echo;

/** Wire (de)serializers, for tests that speak gRPC framing by hand. */
export const echoMethods = packageDefinition['skein.test.Echo'] as unknown as Record<
  keyof EchoHandlers,
  {
    requestSerialize(value: Partial<EchoRequest>): Buffer;
    requestDeserialize(bytes: Buffer): EchoRequest;
    responseSerialize(value: Partial<EchoReply>): Buffer;
    responseDeserialize(bytes: Buffer): EchoReply;
  }
>;

/** Plain echo behaviour; a test replaces the methods it needs. */
export const defaultEchoHandlers: EchoHandlers = {
  Unary(call, callback) {
    callback(null, { message: call.request.message, index: 0 });
  },
  ServerStream(call) {
    for (let i = 0; i < call.request.count; i++) call.write({ message: `${call.request.message}-${i}`, index: i });
    call.end();
  },
  ClientStream(call, callback) {
    const messages: string[] = [];
    call.on('data', (req: EchoRequest) => messages.push(req.message));
    call.on('end', () => callback(null, { message: messages.join(','), index: messages.length }));
  },
  BidiStream(call) {
    let index = 0;
    call.on('data', (req: EchoRequest) => call.write({ message: req.message, index: index++ }));
    call.on('end', () => call.end());
  },
};

export interface GrpcUpstream {
  address: string;
  port: number;
  close(): Promise<void>;
}

export async function startGrpcUpstream(handlers: Partial<EchoHandlers> = {}): Promise<GrpcUpstream> {
  const server = new grpc.Server();
  server.addService(Echo.service, { ...defaultEchoHandlers, ...handlers });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    address: `127.0.0.1:${port}`,
    port,
    close: async () => {
      server.forceShutdown();
    },
  };
}

/** A client with its own connection (no subchannel shared with other tests' clients). */
export function echoClient(address: string): EchoClient {
  return new Echo(address, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
}

/** Unary call as a promise; rejects with the grpc-js ServiceError. */
export function unary(
  client: EchoClient,
  req: Partial<EchoRequest>,
  metadata = new grpc.Metadata(),
  options: grpc.CallOptions = {},
): Promise<EchoReply> {
  return new Promise((resolve, reject) => {
    client.Unary(req, metadata, options, (err, reply) => (err ? reject(err) : resolve(reply!)));
  });
}

/** Settles a promise-returning call into its error (or throws when it unexpectedly succeeded). */
export async function grpcError(call: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await call;
  } catch (err) {
    return err as grpc.ServiceError;
  }
  throw new Error('expected the call to fail');
}

/** One length-prefixed gRPC message (uncompressed), as it travels in DATA frames. */
export function grpcFrame(message: Buffer): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}
