// grpc-js server and client for the bench echo service (bench/origin/echo.proto): the reference the generator's
// hand-framed gRPC and the origin's hand-answered gRPC are both checked against.
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export interface EchoMessage {
  payload: Buffer;
}

export interface BenchEchoHandlers {
  Unary: grpc.handleUnaryCall<EchoMessage, EchoMessage>;
  ServerStream: grpc.handleServerStreamingCall<EchoMessage, EchoMessage>;
}

export interface BenchEchoClient extends grpc.Client {
  Unary(req: EchoMessage, cb: grpc.requestCallback<EchoMessage>): grpc.ClientUnaryCall;
  ServerStream(req: EchoMessage, metadata?: grpc.Metadata): grpc.ClientReadableStream<EchoMessage>;
}

const PROTO = fileURLToPath(new URL('../../../../bench/origin/echo.proto', import.meta.url));
const definition = protoLoader.loadSync(PROTO, { keepCase: true, defaults: true });
const BenchEcho = (
  grpc.loadPackageDefinition(definition) as unknown as {
    skein: {
      bench: {
        Echo: (new (address: string, creds: grpc.ChannelCredentials) => BenchEchoClient) & {
          service: grpc.ServiceDefinition;
        };
      };
    };
  }
).skein.bench.Echo;

/** proto-loader's own (protobufjs) encoding of EchoMessage, the reference for hand framing. */
export const echoCodec = (
  definition['skein.bench.Echo'] as unknown as {
    Unary: { requestSerialize(m: EchoMessage): Buffer; requestDeserialize(b: Buffer): EchoMessage };
  }
).Unary;

export const echoHandlers: BenchEchoHandlers = {
  Unary(call, callback) {
    callback(null, { payload: call.request.payload });
  },
  ServerStream(call) {
    const n = Number(call.metadata.get('x-stream-messages')[0] ?? 10);
    for (let i = 0; i < n; i++) call.write({ payload: call.request.payload });
    call.end();
  },
};

export async function startGrpcEchoServer(handlers: BenchEchoHandlers): Promise<{ port: number; close(): void }> {
  const server = new grpc.Server();
  server.addService(BenchEcho.service, { ...handlers });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return { port, close: () => server.forceShutdown() };
}

export function benchEchoClient(port: number): BenchEchoClient {
  return new BenchEcho(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}
