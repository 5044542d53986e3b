-- wrk script for the 'wrk' engine (bench/load/wrk.ts): POSTs a body of SKEIN_WRK_BODY_BYTES bytes when that is
-- above 0, prints bench/lib/wrk-summary.lua's WRK_SUMMARY line, and adds a WRK_CURVE line of percentile points.
local body_bytes = tonumber(os.getenv("SKEIN_WRK_BODY_BYTES") or "0")
if body_bytes > 0 then
  wrk.method = "POST"
  wrk.body = string.rep("x", body_bytes)
  wrk.headers["Content-Type"] = "application/octet-stream"
end

dofile(os.getenv("SKEIN_WRK_SUMMARY"))
local print_summary = done

-- Percentiles for the curve, comma-separated, from the harness (the same points the built-in engine uses).
local curve = os.getenv("SKEIN_WRK_CURVE") or "50,90,99,99.9"

function done(summary, latency, requests)
  print_summary(summary, latency, requests)
  local points = {}
  for p in string.gmatch(curve, "[^,]+") do
    local pct = tonumber(p)
    local value = pct >= 100 and latency.max or latency:percentile(pct)
    points[#points + 1] = string.format("[%s,%d]", p, value)
  end
  io.write("WRK_CURVE [" .. table.concat(points, ",") .. "]\n")
end
