// `skein bench run` option parsing: defaults that fit the five-minute budget, every option in the help text,
// and clear errors naming the option for unknown targets, malformed --remote, bad stages and bad numbers.
import { describe, expect, it } from 'vitest';
import { LOCAL_TARGET_NAMES } from '../../bench/lib/targets.ts';
import {
  DEFAULT_LOCAL_TARGETS,
  parseDurationS,
  parseRemote,
  parseRunOptions,
  parseStages,
  RUN_HELP,
  RUN_OPTIONS,
  type RunOptions,
  UsageError,
} from '../../bench/run/options.ts';
import { SCENARIO_NAMES } from '../../bench/run/scenarios.ts';

const parse = (...argv: string[]) => parseRunOptions(argv) as RunOptions;
const fails = (argv: string[], message: RegExp) => {
  expect(() => parseRunOptions(argv)).toThrow(UsageError);
  expect(() => parseRunOptions(argv)).toThrow(message);
};

describe('skein bench run options', () => {
  it('defaults to the local comparison: every local target but naive-undici, HTTP/1.1 max and open loop, 3 rounds', () => {
    const o = parse();
    expect(o.localTargets).toEqual(DEFAULT_LOCAL_TARGETS);
    expect(o.localTargets).toContain('skein-telemetry');
    expect(o.localTargets).toContain('http-proxy');
    expect(o.scenarios).toEqual(['http1-max', 'http1-open']);
    expect(o).toMatchObject({ rounds: 3, connections: 50, openConnections: 16, ratePerS: 1000, probes: true });
    expect(o.remotes).toEqual([]);
    expect(o.stages).toBeUndefined();
  });

  it('mentions every option it accepts in the help text, with the defaults the code uses', () => {
    for (const name of Object.keys(RUN_OPTIONS)) expect(RUN_HELP, name).toContain(`--${name}`);
    for (const name of [...LOCAL_TARGET_NAMES, ...SCENARIO_NAMES]) expect(RUN_HELP, name).toContain(name);
    expect(RUN_HELP).toContain(`(default ${DEFAULT_LOCAL_TARGETS.join(',')})`);
    expect(RUN_HELP).toContain('--stages LIST');
    expect(parseRunOptions(['--help'])).toBe('help');
    expect(parseRunOptions(['-h'])).toBe('help');
  });

  it('takes targets in order, none, all, and --targets as another name', () => {
    expect(parse('--local-targets', 'skein,direct').localTargets).toEqual(['skein', 'direct']);
    expect(parse('--targets', 'direct,skein,direct').localTargets).toEqual(['direct', 'skein']);
    expect(parse('--local-targets', 'all').localTargets).toEqual(LOCAL_TARGET_NAMES);
    expect(parse('--local-targets', 'none', '--remote', 'b=baseline:http://10.0.0.1:8080').localTargets).toEqual([]);
    fails(['--local-targets', 'skein', '--targets', 'direct'], /another name for --local-targets/);
  });

  it('puts skein-baseline right after skein when --baseline-cmd names another build, and needs the command', () => {
    const o = parse('--baseline-cmd', 'exec ../base/bin/skein.js proxy --listen 127.0.0.1:$PORT --upstream x');
    expect(o.localTargets.indexOf('skein-baseline')).toBe(o.localTargets.indexOf('skein') + 1);
    expect(o.baselineCmd).toContain('../base/bin/skein.js');
    expect(parse().localTargets).not.toContain('skein-baseline');
    expect(parse('--baseline-cmd', 'x', '--local-targets', 'direct,skein').localTargets).toEqual(['direct', 'skein']);
    fails(['--local-targets', 'skein,skein-baseline'], /skein-baseline needs --baseline-cmd/);
  });

  it('rejects unknown targets and scenarios, naming them and listing the known ones', () => {
    fails(['--local-targets', 'direct,envoy'], /--local-targets: unknown target 'envoy'; known: direct, skein/);
    fails(['--local-targets', 'envoy,linkerd'], /unknown targets 'envoy', 'linkerd'/);
    fails(['--scenarios', 'http3-max'], /--scenarios: unknown scenario 'http3-max'; known: http1-max/);
    fails(['--local-targets', 'none'], /nothing to measure/);
    fails(['--bogus'], /Unknown option '--bogus'/);
  });

  it('parses --remote NAME=MESH:URL and rejects every malformed form', () => {
    expect(parseRemote('istio=istio:http://echo.bench:8080/')).toEqual({
      name: 'istio',
      mesh: 'istio',
      url: 'http://echo.bench:8080/',
    });
    const o = parse('--remote', 'a=linkerd:https://x:1', '--remote', 'b=baseline:http://y:2');
    expect(o.remotes.map((r) => `${r.name}/${r.mesh}`)).toEqual(['a/linkerd', 'b/baseline']);
    fails(['--remote', 'istio'], /--remote 'istio': expected NAME=MESH:URL/);
    fails(
      ['--remote', 'x=envoy:http://h:1'],
      /unknown mesh 'envoy'; one of baseline, skein, istio, linkerd, cilium, consul/,
    );
    fails(['--remote', 'x=istio:not a url'], /is not a URL/);
    fails(['--remote', 'x=istio:ftp://h:1'], /must be http:\/\/ or https:\/\//);
    fails(['--remote', 'skein=skein:http://h:1'], /'skein' is also a local target of this run/);
    expect(parse('--local-targets', 'none', '--remote', 'skein=skein:http://h:1').remotes[0].name).toBe('skein');
    fails(['--remote', 'a=istio:http://h:1', '--remote', 'a=linkerd:http://h:2'], /the name 'a' is used twice/);
  });

  it('parses k6-style stages and rejects bad ones with the stage number', () => {
    expect(parseStages('10s:500,20s:1000,10s:0')).toEqual([
      { durationS: 10, target: 500 },
      { durationS: 20, target: 1000 },
      { durationS: 10, target: 0 },
    ]);
    expect(parseStages('1m30s:100,500ms:10')).toEqual([
      { durationS: 90, target: 100 },
      { durationS: 0.5, target: 10 },
    ]);
    expect(parseDurationS('2m')).toBe(120);
    expect(parse('--stages', '5s:100,5s:200').stages).toHaveLength(2);
    fails(['--stages', '10s-500'], /stage 1 '10s-500' is not DURATION:RATE/);
    fails(['--stages', '10s:500,10x:5'], /stage 2: bad duration '10x'/);
    fails(['--stages', '10s:0,5s:0'], /every stage has rate 0/);
    fails(['--stages', '0s:100'], /stage 1 lasts 0 s/);
    fails(['--stages', '10s:100', '--scenarios', 'http1-max'], /none is selected/);
  });

  it('checks numbers and CPUs', () => {
    fails(['--rounds', '0'], /--rounds must be an integer >= 1, got '0'/);
    fails(['--duration-s', 'abc'], /--duration-s must be an integer >= 1/);
    fails(['--rate', '1.5'], /--rate must be an integer/);
    fails(['--warmup-s=-1'], /--warmup-s must be a number >= 0/);
    fails(['--proxy-cpu', '0', '--load-cpu', '0'], /must differ/);
    fails(['--engine', 'h2'], /--engine must be auto, wrk or builtin/);
    expect(parse('--warmup-s', '0.5').warmupS).toBe(0.5);
  });
});
