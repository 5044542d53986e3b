import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFileSource, type FileSourceOptions, parseEndpointFile } from '../../src/discovery/file.ts';
import type { DiscoverySource } from '../../src/discovery/types.ts';
import { type DiscoveryRecorder, recordDiscovery } from '../support/discovery-recorder.ts';
import { sleep, waitFor } from '../support/wait-for.ts';

describe('file discovery', () => {
  let dir: string;
  let sources: DiscoverySource[];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'skein-file-discovery-'));
    sources = [];
  });

  afterEach(async () => {
    for (const source of sources) source.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Starts a source on `name` inside the temp dir, given relative so baseDir resolution is exercised too. */
  function start(name: string, options: FileSourceOptions = {}): DiscoveryRecorder {
    const source = createFileSource({ type: 'file', path: name }, { baseDir: dir, ...options });
    sources.push(source);
    const events = recordDiscovery();
    source.start(events);
    return events;
  }

  it('reads a YAML list at start, applying the endpoint defaults', async () => {
    await writeFile(
      join(dir, 'eps.yaml'),
      '- address: 10.0.0.1:8080\n- address: "[::1]:9090"\n  weight: 4\n  labels: { version: v2 }\n',
    );
    const events = start('eps.yaml');
    await waitFor(() => events.lists.length === 1);
    expect(events.lists[0]).toEqual([
      { host: '10.0.0.1', port: 8080, weight: 1, labels: {} },
      { host: '::1', port: 9090, weight: 4, labels: { version: 'v2' } },
    ]);
    expect(events.errors).toEqual([]);
  });

  it('reads JSON in the { endpoints: [...] } form', async () => {
    await writeFile(join(dir, 'eps.json'), JSON.stringify({ endpoints: [{ address: 'a.internal:80', weight: 2 }] }));
    const events = start('eps.json');
    await waitFor(() => events.latest());
    expect(events.latest()).toEqual(['a.internal:80/2']);
  });

  it('emits the new list when the file is rewritten in place', async () => {
    const file = join(dir, 'eps.yaml');
    await writeFile(file, '- address: 10.0.0.1:80\n');
    const events = start('eps.yaml');
    await waitFor(() => events.latest());
    await writeFile(file, '- address: 10.0.0.1:80\n- address: 10.0.0.2:80\n');
    await waitFor(() => events.latest()?.length === 2);
    expect(events.latest()).toEqual(['10.0.0.1:80/1', '10.0.0.2:80/1']);
  });

  it('emits the new list after an atomic write-temp-then-rename', async () => {
    const file = join(dir, 'eps.yaml');
    await writeFile(file, '- address: 10.0.0.1:80\n');
    const events = start('eps.yaml');
    await waitFor(() => events.latest());
    await writeFile(`${file}.tmp`, '- address: 10.0.0.3:81\n');
    await rename(`${file}.tmp`, file);
    await waitFor(() => events.latest()?.[0] === '10.0.0.3:81/1');
    expect(events.lists).toHaveLength(2);
  });

  it('does not re-emit when a rewrite leaves the same endpoints (in any order)', async () => {
    const file = join(dir, 'eps.yaml');
    await writeFile(file, '- address: a:1\n- address: b:2\n');
    const events = start('eps.yaml');
    await waitFor(() => events.latest());
    await writeFile(file, '# reordered\n- address: b:2\n- address: a:1\n');
    // Long enough for the debounced read of the no-op rewrite; the next write would show if it had emitted.
    await sleep(200);
    await writeFile(file, '- address: c:3\n');
    await waitFor(() => events.latest()?.[0] === 'c:3/1');
    expect(events.lists.map((l) => l.length)).toEqual([2, 1]);
  });

  it('keeps the previous endpoints on bad YAML, names the file, and recovers once fixed', async () => {
    const file = join(dir, 'eps.yaml');
    await writeFile(file, '- address: 10.0.0.1:80\n');
    const events = start('eps.yaml');
    await waitFor(() => events.latest());

    await writeFile(file, '- address: 10.0.0.2:80\n  weight: [1, 2\n');
    const err = await waitFor(() => events.errors[0]);
    expect(err.message).toMatch(`${file}: invalid YAML: `);
    expect(err.message).toMatch(/at line 3, column 1$/);
    expect(events.lists).toHaveLength(1); // no empty or partial list was pushed

    await writeFile(file, '- address: 10.0.0.2:80\n');
    await waitFor(() => events.latest()?.[0] === '10.0.0.2:80/1');
    expect(events.lists).toHaveLength(2);
  });

  it('keeps the previous endpoints on an address without a port, naming the field path', async () => {
    const file = join(dir, 'eps.yaml');
    await writeFile(file, 'endpoints:\n  - address: 10.0.0.1:80\n');
    const events = start('eps.yaml');
    await waitFor(() => events.latest());

    await writeFile(file, 'endpoints:\n  - address: 10.0.0.1:80\n  - address: 10.0.0.2\n');
    const err = await waitFor(() => events.errors[0]);
    expect(err.message).toBe(`${file}: endpoints[1].address: expected host:port, e.g. 127.0.0.1:8080 or [::1]:8080`);
    expect(events.lists).toHaveLength(1);

    await writeFile(file, 'endpoints:\n  - address: 10.0.0.1:80\n  - address: 10.0.0.2:80\n');
    await waitFor(() => events.latest()?.length === 2);
  });

  it('reports a missing file, then picks the file up when it appears', async () => {
    const events = start('later.yaml');
    const err = await waitFor(() => events.errors[0]);
    expect(err.message).toContain(join(dir, 'later.yaml'));
    expect(events.lists).toEqual([]);
    await writeFile(join(dir, 'later.yaml'), '- address: 10.0.0.5:80\n');
    await waitFor(() => events.latest()?.[0] === '10.0.0.5:80/1');
  });

  it('follows a Kubernetes-style ConfigMap update (a ..data symlink swapped underneath the file)', async () => {
    await mkdir(join(dir, '..v1'));
    await writeFile(join(dir, '..v1', 'eps.yaml'), '- address: 10.0.0.1:80\n');
    await symlink('..v1', join(dir, '..data'));
    await symlink(join('..data', 'eps.yaml'), join(dir, 'eps.yaml'));
    // The poll is pushed out of the way: only the directory watch can see this change in time.
    const events = start('eps.yaml', { pollIntervalMs: 60_000 });
    await waitFor(() => events.latest());

    await mkdir(join(dir, '..v2'));
    await writeFile(join(dir, '..v2', 'eps.yaml'), '- address: 10.0.0.2:80\n');
    await symlink('..v2', join(dir, '..data_tmp'));
    await rename(join(dir, '..data_tmp'), join(dir, '..data'));
    await waitFor(() => events.latest()?.[0] === '10.0.0.2:80/1', 2_000);
  });

  it('notices changes by polling alone when fs.watch is off', async () => {
    const file = join(dir, 'eps.yaml');
    await writeFile(file, '- address: 10.0.0.1:80\n');
    const events = start('eps.yaml', { watch: false, pollIntervalMs: 50 });
    await waitFor(() => events.latest());
    await writeFile(`${file}.tmp`, '- address: 10.0.0.9:80\n');
    await rename(`${file}.tmp`, file);
    await waitFor(() => events.latest()?.[0] === '10.0.0.9:80/1');
  });
});

describe('parseEndpointFile', () => {
  it('accepts a list or { endpoints }, YAML or JSON', () => {
    const expected = [{ host: 'a', port: 1, weight: 1, labels: {} }];
    expect(parseEndpointFile('- address: a:1', '/x.yaml')).toEqual(expected);
    expect(parseEndpointFile('endpoints: [{ address: "a:1" }]', '/x.yml')).toEqual(expected);
    expect(parseEndpointFile('[{"address": "a:1"}]', '/x.json')).toEqual(expected);
    expect(parseEndpointFile('endpoints: []', '/x.yaml')).toEqual([]);
  });

  it.each([
    ['', '/e.yaml', '/e.yaml: the file is empty'],
    ['just a string', '/e.yaml', '/e.yaml: expected a list of endpoints or { endpoints: [...] }, got string'],
    ['- adress: a:1', '/e.yaml', /^\/e\.yaml: \[0\]\.address: .*; \[0\]: Unrecognized key: "adress"$/],
    ['- address: a:1\n  weight: 0', '/e.yaml', '/e.yaml: [0].weight:'],
    ['- address: a:1\n  labels: { v: 2 }', '/e.yaml', '/e.yaml: [0].labels.v:'],
    ['{ endpoint: [] }', '/e.yaml', /^\/e\.yaml: endpoints: .*; \(top level\): Unrecognized key: "endpoint"$/],
    ['[{"address": "a:1"},]', '/e.json', '/e.json: invalid JSON: '],
    [
      '- address: a\n- address: b:1\n  weight: 0',
      '/e.yaml',
      /^\/e\.yaml: \[0\]\.address: expected host:port[^;]*; \[1\]\.weight: [^;]*$/,
    ],
  ])('rejects %j with the file and field in the message', (text, path, message) => {
    expect(() => parseEndpointFile(text, path)).toThrow(message);
  });
});
