// The script report.html runs in the browser: it reads the report JSON embedded in the page and draws the charts as
// inline SVG into the <figure data-chart> slots render-html.ts leaves. Plain ES2017 in a string (the project's
// TypeScript has no DOM types); test/bench/report/html.test.ts runs it in headless Chromium. When it finishes it
// sets <html data-render="done">; on any error it sets "error" and says so in #render-status.

export const CHART_SCRIPT = String.raw`
(function () {
  'use strict';
  var NS = 'http://www.w3.org/2000/svg';
  // Okabe–Ito colours (distinguishable with colour-vision deficiencies), then dash patterns for more targets.
  var COLORS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000', '#8C6D31'];
  var DASHES = ['', '8 4', '2 3'];
  var root = document.documentElement;
  var status = document.getElementById('render-status');
  var ids = 0;

  function fail(message) {
    root.setAttribute('data-render', 'error');
    status.textContent = 'The charts could not be drawn (' + message + '); the tables have every number.';
    status.hidden = false;
  }
  window.addEventListener('error', function (e) { fail(e.message || 'script error'); });

  function num(x) { return typeof x === 'number' && isFinite(x); }
  function el(tag, attrs, parent) {
    var node = document.createElementNS(NS, tag);
    for (var k in attrs) if (attrs[k] !== undefined && attrs[k] !== '') node.setAttribute(k, String(attrs[k]));
    if (parent) parent.appendChild(node);
    return node;
  }
  function label(parent, x, y, s, attrs) {
    var t = el('text', Object.assign({ x: x, y: y }, attrs || {}), parent);
    t.textContent = s;
    return t;
  }
  function tooltip(node, s) { el('title', {}, node).textContent = s; }
  function fmtNum(x, digits) {
    return x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
  }
  function fmtUs(us) {
    if (!num(us)) return '–';
    var a = Math.abs(us);
    if (a >= 1e6) return fmtNum(us / 1e6, 2) + ' s';
    if (a >= 1000) return fmtNum(us / 1000, a >= 1e4 ? 1 : 2) + ' ms';
    return fmtNum(us, a < 10 ? 1 : 0) + ' µs';
  }
  function niceNum(x) {
    if (!(x > 0)) return 1;
    var e = Math.pow(10, Math.floor(Math.log10(x)));
    var f = x / e;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * e;
  }
  function linearTicks(max, count) {
    var step = niceNum(max / count);
    var n = Math.max(1, Math.ceil(max / step - 1e-9));
    var ticks = [];
    for (var i = 0; i <= n; i++) ticks.push(i * step);
    return { lo: 0, hi: n * step, ticks: ticks };
  }
  /** 1-2-5 ticks per decade, the axis running from the last tick at or below min to the first at or above max. */
  function logTicks(min, max) {
    var steps = [];
    for (var d = Math.pow(10, Math.floor(Math.log10(min))); d <= max * 10; d *= 10) steps.push(d, 2 * d, 5 * d);
    var lo = steps.filter(function (v) { return v <= min * 1.0001; }).pop() || steps[0];
    var hi = steps.filter(function (v) { return v >= max / 1.0001; })[0] || steps[steps.length - 1];
    return { lo: lo, hi: hi, ticks: steps.filter(function (v) { return v >= lo && v <= hi; }) };
  }
  function nines(p) { return Math.min(6, -Math.log10(1 - p / 100)); }
  function ninesLabel(n) { return n === 0 ? '0' : String(+(100 - Math.pow(10, 2 - n)).toFixed(n)); }

  function frame(fig, width, height, title, desc) {
    var id = 'chart-' + ++ids;
    var svg = el('svg', { viewBox: '0 0 ' + width + ' ' + height, role: 'img', 'aria-labelledby': id + '-t ' + id + '-d' });
    el('title', { id: id + '-t' }, svg).textContent = title;
    el('desc', { id: id + '-d' }, svg).textContent = desc;
    fig.appendChild(svg);
    return svg;
  }
  function note(fig, s) {
    var p = document.createElement('p');
    p.className = 'note';
    p.textContent = s;
    fig.appendChild(p);
  }
  function legend(fig, series) {
    var ul = document.createElement('ul');
    ul.className = 'legend';
    series.forEach(function (s) {
      var li = document.createElement('li');
      var sw = document.createElement('span');
      sw.className = 'swatch';
      sw.style.borderTopColor = s.color;
      if (s.dash) sw.style.borderTopStyle = 'dashed';
      li.appendChild(sw);
      li.appendChild(document.createTextNode(s.name));
      ul.appendChild(li);
    });
    fig.appendChild(ul);
  }

  /** The round whose p99 is the median of the rounds': its curve stands for the target. */
  function medianRound(rounds) {
    var sorted = rounds.filter(function (r) { return num(r.latencyUs && r.latencyUs.p99); })
      .sort(function (a, b) { return a.latencyUs.p99 - b.latencyUs.p99; });
    return sorted[Math.floor((sorted.length - 1) / 2)];
  }

  function latencyChart(fig, scenario, measured) {
    var series = [];
    measured.forEach(function (m) {
      var round = medianRound(m.result.rounds);
      var points = (round ? round.percentileCurve || [] : []).filter(function (pt) {
        return num(pt[0]) && num(pt[1]) && pt[0] >= 0 && pt[0] < 100 && pt[1] >= 0;
      }).map(function (pt) { return [nines(pt[0]), pt[1], pt[0]]; });
      if (points.length > 1) series.push({ name: m.target.name, color: m.color, dash: m.dash, points: points, round: round });
    });
    if (series.length === 0) return note(fig, 'No percentile curves were recorded for this scenario.');
    var all = [].concat.apply([], series.map(function (s) { return s.points; }));
    var xMax = Math.max(2, Math.ceil(Math.max.apply(null, all.map(function (p) { return p[0]; })) - 1e-9));
    var ys = all.map(function (p) { return p[1]; });
    var yMin = Math.min.apply(null, ys), yMax = Math.max.apply(null, ys);
    var log = yMin > 0 && yMax / yMin >= 20;
    var yAxis = log ? logTicks(yMin, yMax) : linearTicks(yMax, 5);
    var W = 760, H = 360, L = 70, R = 36, T = 12, B = 48, pw = W - L - R, ph = H - T - B;
    function sx(x) { return L + (pw * x) / xMax; }
    function sy(v) {
      var f = log ? (Math.log10(Math.max(v, yAxis.lo)) - Math.log10(yAxis.lo)) / (Math.log10(yAxis.hi) - Math.log10(yAxis.lo))
        : (v - yAxis.lo) / (yAxis.hi - yAxis.lo);
      return T + ph * (1 - f);
    }
    var svg = frame(fig, W, H, 'Latency by percentile, ' + scenario.id,
      'Latency (' + (log ? 'log' : 'linear') + ' scale) against percentile on a nines scale (50, 90, 99, 99.9, …), ' +
      'one line per target: ' + series.map(function (s) {
        var l = s.round.latencyUs;
        return s.name + ' p50 ' + fmtUs(l.p50) + ', p99 ' + fmtUs(l.p99) + ', p99.9 ' + fmtUs(l.p999);
      }).join('; ') + '.');
    var grid = el('g', { class: 'grid' }, svg), axis = el('g', { class: 'axis' }, svg);
    var xTicks = [0, nines(50)];
    for (var n = 1; n <= xMax; n++) xTicks.push(n);
    xTicks.forEach(function (x) {
      el('line', { x1: sx(x), x2: sx(x), y1: T, y2: T + ph }, grid);
      label(axis, sx(x), T + ph + 16, x === nines(50) ? '50' : ninesLabel(x), { 'text-anchor': 'middle' });
    });
    yAxis.ticks.forEach(function (v) {
      el('line', { x1: L, x2: L + pw, y1: sy(v), y2: sy(v) }, grid);
      label(axis, L - 6, sy(v) + 4, fmtUs(v), { 'text-anchor': 'end' });
    });
    el('path', { d: 'M' + L + ' ' + T + 'V' + (T + ph) + 'H' + (L + pw), fill: 'none' }, axis);
    label(axis, L + pw / 2, H - 6, 'percentile (nines scale)', { 'text-anchor': 'middle' });
    label(axis, 14, T + ph / 2, 'latency', { 'text-anchor': 'middle', transform: 'rotate(-90 14 ' + (T + ph / 2) + ')' });
    series.forEach(function (s) {
      var d = s.points.map(function (p, i) { return (i === 0 ? 'M' : 'L') + sx(p[0]).toFixed(1) + ' ' + sy(p[1]).toFixed(1); });
      var path = el('path', { class: 'series', 'data-target': s.name, d: d.join(''), fill: 'none', stroke: s.color,
        'stroke-width': 2, 'stroke-dasharray': s.dash, 'stroke-linejoin': 'round' }, svg);
      tooltip(path, s.name + ' (round ' + s.round.round + '): ' + s.points.length + ' points, up to p' +
        s.points[s.points.length - 1][2] + ' = ' + fmtUs(s.points[s.points.length - 1][1]));
    });
    legend(fig, series);
  }

  function barChart(fig, items, title, desc, format) {
    var W = 560, row = 30, L = 130, R = 110, T = 8, B = 26, pw = W - L - R, H = T + B + row * items.length;
    var top = Math.max.apply(null, items.map(function (it) { return Math.max(it.median, num(it.max) ? it.max : 0); }));
    var axisX = linearTicks(top > 0 ? top : 1, 4);
    function sx(v) { return L + (pw * v) / axisX.hi; }
    var svg = frame(fig, W, H, title, desc + ' ' + items.map(function (it) { return it.name + ' ' + format(it.median); }).join('; ') + '.');
    var grid = el('g', { class: 'grid' }, svg), axis = el('g', { class: 'axis' }, svg);
    axisX.ticks.forEach(function (v) {
      el('line', { x1: sx(v), x2: sx(v), y1: T, y2: H - B }, grid);
      label(axis, sx(v), H - B + 16, format(v), { 'text-anchor': 'middle' });
    });
    items.forEach(function (it, i) {
      var y = T + i * row, h = row * 0.6, cy = y + row / 2;
      label(axis, L - 8, cy + 4, it.name, { 'text-anchor': 'end' });
      var rect = el('rect', { class: 'bar', 'data-target': it.name, x: L, y: cy - h / 2, height: h,
        width: Math.max(0, sx(it.median) - L).toFixed(1), fill: it.color }, svg);
      var range = it.n > 1 && num(it.min) && num(it.max) ? ' (' + format(it.min) + '–' + format(it.max) + ' over ' + it.n + ' rounds)' : '';
      tooltip(rect, it.name + ': ' + format(it.median) + range);
      if (range) {
        el('path', { class: 'whisker', d: 'M' + sx(it.min) + ' ' + cy + 'H' + sx(it.max) + 'M' + sx(it.min) + ' ' + (cy - 5) +
          'v10M' + sx(it.max) + ' ' + (cy - 5) + 'v10', stroke: '#24292f', 'stroke-width': 1.2, fill: 'none' }, svg);
      }
      label(svg, Math.max(sx(it.median), num(it.max) && range ? sx(it.max) : 0) + 6, cy + 4, format(it.median));
    });
    el('path', { d: 'M' + L + ' ' + T + 'V' + (H - B), fill: 'none' }, axis);
  }

  function spreadItems(measured, pick, scale) {
    return measured.map(function (m) {
      var s = pick(m.result.summary);
      if (!s || !num(s.median)) return undefined;
      return { name: m.target.name, color: m.color, median: s.median * scale, min: s.min * scale, max: s.max * scale, n: s.n };
    }).filter(Boolean);
  }

  function render(report) {
    var figures = document.querySelectorAll('figure[data-chart]');
    var scenarios = {};
    report.scenarios.forEach(function (s) { scenarios[s.id] = s; });
    Array.prototype.forEach.call(figures, function (fig) {
      var scenario = scenarios[fig.getAttribute('data-scenario')];
      if (!scenario) throw new Error('no scenario ' + fig.getAttribute('data-scenario') + ' in the report data');
      var measured = [];
      report.targets.forEach(function (t, i) {
        var result = (t.results || []).filter(function (r) { return r.scenario === scenario.id; })[0];
        if (result && result.rounds && result.rounds.length > 0)
          measured.push({ target: t, result: result, color: COLORS[i % COLORS.length], dash: DASHES[Math.floor(i / COLORS.length) % DASHES.length] });
      });
      var kind = fig.getAttribute('data-chart');
      if (kind === 'latency') latencyChart(fig, scenario, measured);
      else if (kind === 'throughput') {
        var tp = spreadItems(measured, function (s) { return s.throughputPerS; }, 1);
        if (tp.length === 0) note(fig, 'No throughput figures.');
        else barChart(fig, tp, 'Throughput, ' + scenario.id, 'Requests per second, median over rounds, higher is better:',
          function (v) { return fmtNum(v, 0) + '/s'; });
      } else if (kind === 'cpu') {
        // CPU s per 1,000 requests × 1,000,000 µs/s ÷ 1,000 requests = µs per request.
        var cpu = spreadItems(measured, function (s) { return s.cpuSecondsPer1k; }, 1000);
        if (cpu.length === 0) note(fig, 'No CPU figures: direct and remote targets are not measured for CPU.');
        else barChart(fig, cpu, 'Proxy CPU per request, ' + scenario.id,
          'CPU time (user + system, all proxy processes) per request in µs, median over rounds, lower is better:', fmtUs);
      } else throw new Error('unknown chart kind ' + kind);
      fig.setAttribute('data-rendered', 'true');
    });
    root.setAttribute('data-charts', String(figures.length));
  }

  try {
    render(JSON.parse(document.getElementById('report-data').textContent));
    if (root.getAttribute('data-render') !== 'error') root.setAttribute('data-render', 'done');
  } catch (err) {
    fail(err && err.message ? err.message : String(err));
  }
})();
`;
