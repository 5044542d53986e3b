// What loading a config file checks beyond the schema, without binding anything: the TLS files a listener
// names (readable, PEM, key matching certificate), and every relative path resolved against the file's directory.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError, loadConfigFile } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { makeSelfSignedCert, type TestCert } from '../support/certs.ts';

const dir = mkdtempSync(join(tmpdir(), 'skein-config-files-'));
let a: TestCert;
let b: TestCert;

beforeAll(() => {
  mkdirSync(join(dir, 'conf', 'tls'), { recursive: true });
  a = makeSelfSignedCert(join(dir, 'conf', 'tls'), 'a');
  b = makeSelfSignedCert(join(dir, 'conf', 'tls'), 'b');
  writeFileSync(join(dir, 'conf', 'tls', 'junk.pem'), 'not a pem file\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function tlsListener(name: string, certFile: string, keyFile: string) {
  return { name, address: '127.0.0.1:0', tls: { certFile, keyFile }, routes: [{ cluster: 'web' }] };
}

function writeConfig(config: Omit<ConfigInput, 'clusters'> & Partial<ConfigInput>): string {
  const file = join(dir, 'conf', 'skein.yaml');
  writeFileSync(
    file,
    stringify({
      clusters: [{ name: 'web', discovery: { type: 'static', endpoints: [{ address: '127.0.0.1:8080' }] } }],
      ...config,
    }),
  );
  return file;
}

function problemsOf(file: string): string[] {
  try {
    loadConfigFile(file);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return [...(err as ConfigError).problems];
  }
  throw new Error('expected the config to be rejected');
}

describe('TLS files in a config file', () => {
  it('accepts a readable certificate and its own key', () => {
    const file = writeConfig({ listeners: [tlsListener('ok', 'tls/a.cert.pem', 'tls/a.key.pem')] });
    expect(loadConfigFile(file).listeners[0].tls).toEqual({ certFile: a.certFile, keyFile: a.keyFile });
  });

  it('names the field and the file that cannot be read', () => {
    const file = writeConfig({ listeners: [tlsListener('x', 'tls/missing.pem', 'tls/a.key.pem')] });
    expect(problemsOf(file)).toEqual([
      `listeners[0].tls.certFile: cannot read ${join(dir, 'conf', 'tls', 'missing.pem')} (ENOENT: no such file or directory)`,
    ]);
  });

  it('rejects files that hold no PEM certificate or key', () => {
    const junk = join(dir, 'conf', 'tls', 'junk.pem');
    const file = writeConfig({ listeners: [tlsListener('x', junk, junk)] });
    const problems = problemsOf(file);
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(new RegExp(`^listeners\\[0\\]\\.tls\\.certFile: ${junk} holds no PEM certificate`));
    expect(problems[1]).toMatch(new RegExp(`^listeners\\[0\\]\\.tls\\.keyFile: ${junk} holds no PEM private key`));
  });

  it("rejects a key that is not the certificate's, on the listener that has it", () => {
    const file = writeConfig({
      listeners: [
        tlsListener('fine', 'tls/a.cert.pem', 'tls/a.key.pem'),
        tlsListener('mixed', 'tls/a.cert.pem', 'tls/b.key.pem'),
      ],
    });
    expect(problemsOf(file)).toEqual([
      `listeners[1].tls.keyFile: ${b.keyFile} is not the private key of the certificate in ${a.certFile}`,
    ]);
  });
});

describe('relative paths in a config file', () => {
  it('resolve against the config file, not the working directory: TLS files, endpoints file, access log', () => {
    const file = writeConfig({
      telemetry: { accessLog: { enabled: true, path: 'logs/access.log' } },
      listeners: [tlsListener('secure', 'tls/a.cert.pem', './tls/a.key.pem')],
      clusters: [
        { name: 'web', discovery: { type: 'file', path: 'endpoints.yaml' } },
        { name: 'abs', discovery: { type: 'file', path: '/etc/skein/endpoints.yaml' } },
      ],
    });
    const cwd = process.cwd();
    process.chdir(tmpdir()); // somewhere the relative paths would not be found
    try {
      const config = loadConfigFile(file);
      expect(config.listeners[0].tls).toEqual({ certFile: a.certFile, keyFile: a.keyFile });
      expect(config.clusters.map((c) => (c.discovery.type === 'file' ? c.discovery.path : ''))).toEqual([
        join(dir, 'conf', 'endpoints.yaml'),
        '/etc/skein/endpoints.yaml',
      ]);
      expect(config.telemetry.accessLog.path).toBe(join(dir, 'conf', 'logs', 'access.log'));
    } finally {
      process.chdir(cwd);
    }
  });

  it('leave stdout and stderr as the access log streams', () => {
    const file = writeConfig({
      telemetry: { accessLog: { enabled: true, path: 'stdout' } },
      listeners: [{ name: 'plain', address: '127.0.0.1:0', routes: [{ cluster: 'web' }] }],
    });
    expect(loadConfigFile(file).telemetry.accessLog.path).toBe('stdout');
  });
});
