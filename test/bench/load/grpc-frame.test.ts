// gRPC framing by hand, checked against proto-loader's (protobufjs) encoding of the bench's EchoMessage
// (bench/origin/echo.proto).
import { describe, expect, it } from 'vitest';
import {
  decodeEchoPayload,
  frameEchoMessage,
  GrpcFrameReader,
  grpcErrorKind,
} from '../../../bench/load/clients/grpc-frame.ts';
import { echoCodec } from './support/grpc-bench-echo.ts';

describe('gRPC framing', () => {
  it.each([1, 127, 128, 300, 70_000])('frames a %i-byte payload exactly as proto-loader encodes it', (size) => {
    const payload = Buffer.alloc(size, 7);
    const framed = frameEchoMessage(payload);
    const encoded = echoCodec.requestSerialize({ payload });
    expect(framed[0]).toBe(0);
    expect(framed.readUInt32BE(1)).toBe(encoded.length);
    expect(Buffer.from(framed.subarray(5))).toEqual(Buffer.from(encoded));
    expect(Buffer.from(decodeEchoPayload(framed.subarray(5)))).toEqual(payload);
  });

  it('frames an empty payload as the empty message (proto3 default), which proto-loader reads back', () => {
    const framed = frameEchoMessage(Buffer.alloc(0));
    expect(framed).toEqual(Buffer.from([0, 0, 0, 0, 0]));
    expect(echoCodec.requestDeserialize(framed.subarray(5)).payload).toHaveLength(0);
    // protobufjs writes the empty field explicitly; we read that too.
    expect(decodeEchoPayload(echoCodec.requestSerialize({ payload: Buffer.alloc(0) }))).toHaveLength(0);
  });

  it('decodes a message with fields it does not know', () => {
    const bytes = Buffer.from([0x10, 0x96, 0x01, 0x0a, 0x02, 0x68, 0x69, 0x1d, 1, 2, 3, 4]);
    expect(Buffer.from(decodeEchoPayload(bytes)).toString()).toBe('hi');
    expect(() => decodeEchoPayload(Buffer.from([0x0a, 0x05, 0x68]))).toThrow(/truncated/);
  });

  it('splits frames however the bytes arrive', () => {
    const frames = Buffer.concat([
      frameEchoMessage(Buffer.from('a')),
      frameEchoMessage(Buffer.alloc(0)),
      frameEchoMessage(Buffer.alloc(1000, 1)),
    ]);
    for (const step of [1, 3, 7, frames.length]) {
      const sizes: number[] = [];
      const reader = new GrpcFrameReader((m) => sizes.push(m.length));
      for (let at = 0; at < frames.length; at += step) reader.push(frames.subarray(at, at + step));
      expect(sizes).toEqual([3, 0, 1003]);
      expect(reader.idle).toBe(true);
    }
  });

  it('refuses a frame length no echo message could have', () => {
    const reader = new GrpcFrameReader(() => {});
    expect(() => reader.push(Buffer.from([0, 0xff, 0xff, 0xff, 0xff, 0]))).toThrow(/limit/);
  });

  it('names error kinds by status name', () => {
    expect(grpcErrorKind(14)).toBe('grpc_unavailable');
    expect(grpcErrorKind(4)).toBe('grpc_deadline_exceeded');
    expect(grpcErrorKind(99)).toBe('grpc_99');
  });
});
