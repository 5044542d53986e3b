// A bench job request is checked at the API's edge: every mistake comes back as `field.path: reason`, options
// an API must not take (a shell command, an output directory) are refused, and a good request becomes the
// same `skein bench run` command line a person would type.
import { describe, expect, it } from 'vitest';
import { benchArgs, checkBenchRequest } from '../../control/bench-request.ts';
import { ApiError } from '../../control/http.ts';
import { DEFAULTS } from '../../bench/run/options.ts';

function problemsOf(body: unknown): readonly string[] {
  try {
    checkBenchRequest(body);
  } catch (err) {
    if (err instanceof ApiError) {
      expect(err.status).toBe(400);
      return err.problems;
    }
    throw err;
  }
  throw new Error('the request was accepted');
}

describe('bench job requests', () => {
  it('an empty request is the default `skein bench` run', () => {
    const { args, options } = checkBenchRequest(undefined);
    expect(args).toEqual([]);
    expect(options.rounds).toBe(DEFAULTS.rounds);
    expect(options.scenarios).toEqual(['http1-max', 'http1-open']);
  });

  it('turns every field into its command-line option', () => {
    const { args, options } = checkBenchRequest({
      localTargets: ['direct', 'skein'],
      remotes: [{ name: 'istio', mesh: 'istio', url: 'http://bench-origin.bench-istio:8080' }],
      scenarios: ['http1-open'],
      rounds: 5,
      durationS: 10,
      warmupS: 0.5,
      rate: 2000,
      stages: [
        { durationS: 10, rate: 500 },
        { durationS: 1.5, rate: 0 },
      ],
      probes: false,
    });
    expect(args).toEqual([
      '--local-targets',
      'direct,skein',
      '--remote',
      'istio=istio:http://bench-origin.bench-istio:8080',
      '--scenarios',
      'http1-open',
      '--rounds',
      '5',
      '--duration-s',
      '10',
      '--warmup-s',
      '0.5',
      '--rate',
      '2000',
      '--stages',
      '10000ms:500,1500ms:0',
      '--no-probes',
    ]);
    expect(options.stages).toEqual([
      { durationS: 10, target: 500 },
      { durationS: 1.5, target: 0 },
    ]);
    expect(options.probes).toBe(false);
    expect(options.remotes[0].mesh).toBe('istio');
  });

  it('an empty localTargets list measures remote targets only', () => {
    const remotes = [{ name: 'base', mesh: 'baseline' as const, url: 'http://10.0.0.1:8080' }];
    expect(benchArgs({ localTargets: [], remotes })).toContain('none');
    expect(checkBenchRequest({ localTargets: [], remotes }).options.localTargets).toEqual([]);
  });

  it('names the field path of each mistake', () => {
    const problems = problemsOf({
      localTargets: ['direct', 'envoy'],
      rounds: 0,
      remotes: [{ name: 'x', mesh: 'kuma', url: 'ftp://host' }],
    });
    expect(problems.some((p) => p.startsWith('localTargets[1]:'))).toBe(true);
    expect(problems.some((p) => p.startsWith('rounds:'))).toBe(true);
    expect(problems.some((p) => p.startsWith('remotes[0].mesh:'))).toBe(true);
    expect(problems.some((p) => p.startsWith('remotes[0].url:'))).toBe(true);
  });

  it('refuses a shell command, an output directory and any other field it does not know', () => {
    const problems = problemsOf({ skeinCmd: 'rm -rf /', out: '/etc', keepTmp: true });
    expect(problems.join('\n')).toMatch(/skeinCmd/);
    expect(problems.join('\n')).toMatch(/out/);
  });

  it('reports the run parser’s cross-field checks in field names, not flags', () => {
    expect(problemsOf({ proxyCpu: 1, loadCpu: 1 })).toEqual(['proxyCpu: proxyCpu and loadCpu must differ']);
    expect(problemsOf({ scenarios: ['http1-max'], stages: [{ durationS: 1, rate: 10 }] })[0]).toMatch(
      /^stages: stages shapes the open-loop scenarios/,
    );
    expect(problemsOf({ localTargets: [] })).toEqual(['localTargets: empty and no remotes: nothing to measure']);
  });

  it('refuses a body that is not an object', () => {
    expect(problemsOf([1, 2])[0]).toMatch(/^\(root\):/);
  });
});
