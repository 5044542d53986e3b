// A request body kept for another attempt, without sockets: each attempt reads every byte from the first, the
// rest flows on as it arrives, a body past the limit can no longer be replayed, and a body that breaks off
// ends the attempt's too.
import { PassThrough, type Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BodyReplay } from '../../proxy/body-replay.ts';

/** Everything `body` yields until it ends (or closes). */
function collect(body: Readable): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    body.on('data', (c: Buffer) => chunks.push(c));
    body.on('end', () => resolve(Buffer.concat(chunks).toString()));
    body.on('close', () => resolve(Buffer.concat(chunks).toString()));
  });
}

const tick = () => new Promise((r) => setImmediate(r));

describe('BodyReplay', () => {
  it('gives a second attempt the bytes the first one read, then the rest as it arrives', async () => {
    const source = new PassThrough();
    const replay = new BodyReplay(source, 100);
    const first = replay.next();
    const firstBytes: string[] = [];
    first.on('data', (c: Buffer) => firstBytes.push(c.toString()));
    source.write('abc');
    await tick();
    expect(firstBytes).toEqual(['abc']);
    replay.hold();
    source.write('def'); // arrives between the attempts: kept for the next one
    await tick();
    expect(replay.replayable).toBe(true);
    const second = collect(replay.next());
    source.end('ghi');
    expect(await second).toBe('abcdefghi');
    expect(firstBytes).toEqual(['abc']); // the replaced attempt got nothing more
    // A third attempt after the end gets the whole body at once.
    expect(await collect(replay.next())).toBe('abcdefghi');
  });

  it('stops keeping a body that grows past its limit: it can no longer be replayed, but still flows', async () => {
    const source = new PassThrough();
    const replay = new BodyReplay(source, 5);
    const first = collect(replay.next());
    source.write('1234');
    await tick();
    expect(replay.replayable).toBe(true);
    source.end('5678');
    expect(await first).toBe('12345678');
    expect(replay.replayable).toBe(false);
  });

  it("ends the attempt's body when the downstream body breaks off, and keeps nothing to replay", async () => {
    const source = new PassThrough();
    const replay = new BodyReplay(source, 100);
    const body = replay.next();
    const closed = new Promise<void>((r) => body.on('close', () => r()));
    source.write('partial');
    await tick();
    source.destroy(new Error('client went away'));
    await closed;
    expect(body.destroyed).toBe(true);
    expect(replay.replayable).toBe(false);
  });

  it('tells whenComplete the whole body once it ended within the limit, at once when it already has', async () => {
    const source = new PassThrough();
    const replay = new BodyReplay(source, 100);
    const attempt = collect(replay.next());
    const heard: (string | null)[] = [];
    const note = (kept: readonly Buffer[] | null) => heard.push(kept === null ? null : Buffer.concat(kept).toString());
    replay.whenComplete(note);
    source.write('a=1&');
    await tick();
    expect(heard).toEqual([]); // not before the end
    source.end('b=2');
    expect(await attempt).toBe('a=1&b=2');
    expect(heard).toEqual(['a=1&b=2']);
    replay.whenComplete(note);
    expect(heard).toEqual(['a=1&b=2', 'a=1&b=2']);
  });

  it('tells whenComplete null for a body past the limit or one that broke off', async () => {
    const big = new PassThrough();
    const over = new BodyReplay(big, 4);
    const drained = collect(over.next());
    const heard: unknown[] = [];
    over.whenComplete((kept) => heard.push(kept));
    big.end('too long');
    expect(await drained).toBe('too long'); // the attempt still gets all of it
    expect(heard).toEqual([null]);
    over.whenComplete((kept) => heard.push(kept));
    expect(heard).toEqual([null, null]);

    const cut = new PassThrough();
    const broken = new BodyReplay(cut, 100);
    void collect(broken.next());
    broken.whenComplete((kept) => heard.push(kept));
    cut.write('par');
    await tick();
    cut.destroy();
    await tick();
    expect(heard).toEqual([null, null, null]);
  });
});
