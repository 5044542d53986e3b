// A parser from the llhttp binding is released for good: free() alone only runs its destroy hooks, and the native
// parser stays reachable from a global handle with its callbacks and everything they hold (for a downstream
// connection: the connection, its socket, ~8 KB each, forever). releaseParser() closes it once the stack unwound.
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { HTTPParser, type LlhttpParser, releaseParser } from '../../proxy/llhttp.ts';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A parser whose callback holds an object; returns a WeakRef to that object after `release` ran on it. */
function parserHolding(release: (p: LlhttpParser) => void): WeakRef<object> {
  const held = { connection: Buffer.alloc(1024) };
  const p = new HTTPParser();
  p.initialize(HTTPParser.REQUEST, {}, 0, 0);
  p[HTTPParser.kOnMessageBegin] = () => held;
  release(p);
  return new WeakRef(held);
}

async function collected(ref: WeakRef<object>): Promise<boolean> {
  for (let i = 0; i < 3; i++) {
    await turn();
    gc();
  }
  return ref.deref() === undefined;
}

describe('releasing an llhttp parser', () => {
  it('lets what its callbacks hold be collected, where free() alone keeps it', async () => {
    const released = parserHolding(releaseParser);
    const freedOnly = parserHolding((p) => p.free());
    expect(await collected(released)).toBe(true);
    // The binding's parser (the WebAssembly fallback has no such handle: there free() is enough).
    if (typeof (HTTPParser.prototype as LlhttpParser).close === 'function')
      expect(await collected(freedOnly)).toBe(false);
  });
});
