-- wrk script: adds one machine-readable line to wrk's output, read by bench/lib/wrk.ts.
-- JSON after a fixed prefix, so the harness never scrapes wrk's human-readable table. Latencies in µs.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_SUMMARY {"requests":%d,"durationUs":%d,"bytes":%d,"p50Us":%d,"p90Us":%d,"p99Us":%d,"p999Us":%d,' ..
    '"maxUs":%d,"meanUs":%.1f,"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean,
    e.connect, e.read, e.write, e.timeout, e.status))
end
