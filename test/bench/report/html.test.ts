// report.html: self-contained (no external assets, the report JSON embedded and safely escaped), and rendered in
// headless Chromium: the inline script draws one latency curve per measured target, throughput and CPU bars, leaves
// the tables, and marks the page done; a broken page says so in the DOM instead of failing silently.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BenchReport } from '../../../bench/report/model.ts';
import { renderHtml } from '../../../bench/report/render-html.ts';
import { dumpDom, type DumpedDom, figuresOf, findChromium, tagsOf } from './chromium.ts';
import { makeReport, SCENARIOS } from './fixture.ts';

const HOSTILE = 'a warning that quotes </script><script>document.title="pwned"</script> & <b>markup</b>';

function hostileReport(): BenchReport {
  const r = makeReport();
  return { ...r, warnings: [...r.warnings, HOSTILE] };
}

const MEASURED = ['direct', 'skein', 'nginx', 'haproxy'];
const PROXIES = ['skein', 'nginx', 'haproxy'];

describe('renderHtml (static)', () => {
  const html = renderHtml(hostileReport());

  it('loads nothing from outside the file', () => {
    expect(html).toContain(`<meta http-equiv="Content-Security-Policy" content="default-src 'none';`);
    expect(html).not.toMatch(/<script[^>]*\ssrc=/);
    expect(html).not.toMatch(/<link\b/);
    expect(html).not.toMatch(/<img\b/);
    expect(html).not.toMatch(/url\(/);
    expect(html).not.toMatch(/@import/);
    // Only the published sources link out, as plain links.
    for (const m of html.matchAll(/(?:src|href)="(https?:[^"]*)"/g))
      expect(html).toContain(`<a href="${m[1]}" rel="noreferrer">`);
  });

  it('embeds the report JSON so that no string in it can end the script element', () => {
    expect([...html.matchAll(/<script\b/g)]).toHaveLength(2);
    const json = /<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(html)![1];
    expect(json).not.toContain('</');
    expect(JSON.parse(json)).toEqual(JSON.parse(JSON.stringify(hostileReport())));
    expect(html).toContain('a warning that quotes &lt;/script&gt;&lt;script&gt;');
  });

  it('renders the tables, the unmeasured targets and the labelled published figures without JavaScript', () => {
    for (const s of SCENARIOS) {
      expect(html).toContain(`<table id="table-${s.id}">`);
      expect(html).toContain(`<figure class="chart" data-chart="latency" data-scenario="${s.id}">`);
    }
    expect(html).toContain('<li><strong>skein-mtls</strong>: not built yet (mTLS lands with the control plane)</li>');
    expect(html).toContain('Published figures: published by the projects, not measured here');
    expect(html).toContain('<table id="table-published">');
  });
});

const chromium = findChromium();
const SKIP_REASON = 'chromium not found on PATH (install: apt-get install -y --no-install-recommends chromium)';
if (chromium === undefined) console.warn(`test/bench/report/html.test.ts: browser tests skipped: ${SKIP_REASON}`);

describe.skipIf(chromium === undefined)(
  `report.html in headless Chromium${chromium === undefined ? ` (skipped: ${SKIP_REASON})` : ''}`,
  () => {
    let dir: string;
    let page: DumpedDom;
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'skein-report-html-'));
      const file = join(dir, 'report.html');
      writeFileSync(file, renderHtml(hostileReport()));
      page = await dumpDom(chromium!, file);
    }, 60_000);
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('runs the chart script to the end without an error', () => {
      expect(page.timedOut, page.stderr).toBe(false);
      expect(page.code, page.stderr).toBe(0);
      const html = tagsOf(page.dom, 'html')[0];
      expect(html['data-render'], page.dom.slice(0, 2000)).toBe('done');
      expect(html['data-charts']).toBe(String(SCENARIOS.length * 3));
      const status = tagsOf(page.dom, 'p').find((p) => p.id === 'render-status')!;
      expect(status).toHaveProperty('hidden');
      // The hostile warning stayed text: no third script ran, the title is untouched.
      expect([...page.dom.matchAll(/<script\b/g)]).toHaveLength(2);
      expect(page.dom).toContain('<title>skein bench results, 2025-06-01T10:00:00.000Z</title>');
    });

    it('draws one latency curve per measured target in every scenario, on a nines axis', () => {
      for (const s of SCENARIOS) {
        const fig = figuresOf(page.dom).find(
          (f) => f.attrs['data-chart'] === 'latency' && f.attrs['data-scenario'] === s.id,
        )!;
        expect(fig.attrs['data-rendered']).toBe('true');
        expect(fig.inner).toMatch(/<svg [^>]*role="img"[^>]*><title id="[^"]+">Latency by percentile, /);
        const series = tagsOf(fig.inner, 'path').filter((p) => p.class === 'series');
        expect(series.map((p) => p['data-target'])).toEqual(MEASURED);
        for (const p of series) {
          expect(p.d, p['data-target']).toMatch(/^M[\d.]+ [\d.]+(L[\d.]+ [\d.]+){5,}$/);
          expect(p.stroke).toMatch(/^#[0-9A-F]{6}$/i);
        }
        expect(new Set(series.map((p) => p.stroke)).size).toBe(MEASURED.length);
        for (const tick of ['50', '90', '99', '99.9']) expect(fig.inner).toContain(`>${tick}</text>`);
        expect(fig.inner).toContain('percentile (nines scale)');
        for (const name of MEASURED)
          expect(fig.inner).toMatch(new RegExp(`<li><span class="swatch"[^>]*></span>${name}</li>`));
      }
    });

    it('draws throughput bars for every measured target and CPU bars for the proxies', () => {
      for (const s of SCENARIOS) {
        const figs = figuresOf(page.dom).filter((f) => f.attrs['data-scenario'] === s.id);
        const bars = (kind: string) =>
          tagsOf(figs.find((f) => f.attrs['data-chart'] === kind)!.inner, 'rect').filter((r) => r.class === 'bar');
        const throughput = bars('throughput');
        expect(throughput.map((r) => r['data-target'])).toEqual(MEASURED);
        const cpu = bars('cpu');
        expect(cpu.map((r) => r['data-target'])).toEqual(PROXIES);
        for (const r of [...throughput, ...cpu]) expect(Number(r.width), r['data-target']).toBeGreaterThan(0);
        // skein spends the most CPU per request in the fixture, so its bar is the longest.
        const width = (name: string) => Number(cpu.find((r) => r['data-target'] === name)!.width);
        expect(width('skein')).toBeGreaterThan(width('nginx'));
      }
    });

    it('keeps the tables, the unmeasured targets and the published figures in the page', () => {
      for (const s of SCENARIOS) {
        const table = new RegExp(`<table id="table-${s.id}">([\\s\\S]*?)</table>`).exec(page.dom)![1];
        for (const name of MEASURED) expect(table).toContain(`<th scope="row">${name}</th>`);
      }
      expect(page.dom).toContain(
        'istio@http://10.0.0.7:8080</strong>: http://10.0.0.7:8080 did not answer within 10 s',
      );
      const published = /<table id="table-published">([\s\S]*?)<\/table>/.exec(page.dom)![1];
      expect(published).toContain('href="https://istio.io/latest/docs/ops/deployment/performance-and-scalability/"');
      expect(published).toContain('linkerd');
      expect(published).toContain('cilium');
    });

    it('says in the page when the charts cannot be drawn', async () => {
      const broken = join(dir, 'broken.html');
      // A chart slot for a scenario the embedded data does not have.
      writeFileSync(broken, renderHtml(makeReport()).replace('data-scenario="http1-max"', 'data-scenario="http9-max"'));
      const r = await dumpDom(chromium!, broken);
      expect(r.timedOut).toBe(false);
      expect(tagsOf(r.dom, 'html')[0]['data-render']).toBe('error');
      expect(r.dom).toMatch(/<p id="render-status" role="alert">The charts could not be drawn \(no scenario http9-max/);
    }, 60_000);
  },
);
