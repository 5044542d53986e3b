// README.md is the user's reference: the CLI help it shows must be the help the code prints.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RUN_HELP } from '../bench/run/options.ts';
import { CA_HELP } from '../certs/cli.ts';
import { CANARY_HELP } from '../control/canary-cli.ts';
import { CONTROL_HELP } from '../control/cli.ts';
import { PROXY_HELP } from '../proxy/cli.ts';
import { MESH_HELP } from '../proxy/mesh.ts';
import { REDIRECT_HELP } from '../proxy/redirect-cli.ts';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('README.md', () => {
  it('shows `skein proxy --help` exactly as the CLI prints it', () => {
    expect(readme).toContain(PROXY_HELP);
  });

  it('shows `skein bench --help` exactly as the CLI prints it', () => {
    expect(readme).toContain(RUN_HELP.trimEnd());
  });

  it('shows `skein control --help` exactly as the CLI prints it', () => {
    expect(readme).toContain(CONTROL_HELP);
  });

  it('shows `skein canary --help` exactly as the CLI prints it', () => {
    expect(readme).toContain(CANARY_HELP);
  });

  it('shows `skein ca --help` exactly as the CLI prints it', () => {
    expect(readme).toContain(CA_HELP);
  });

  it('shows `skein redirect --help` exactly as the CLI prints it', () => {
    expect(readme).toContain(REDIRECT_HELP);
  });

  it('documents every `skein mesh` option', () => {
    for (const option of MESH_HELP.match(/--[a-z-]+/g) ?? []) expect(readme).toContain(option);
  });

  it('gives the two commands CI and users run', () => {
    expect(readme).toContain('npm ci && npm start');
    expect(readme).toContain('npm ci && npm test');
    expect(readFileSync(new URL('../.ci/run', import.meta.url), 'utf8')).toMatch(/^npm ci && npm test$/m);
  });
});
