#!/usr/bin/env bash
# The project's one test command (README: `npm ci && npm test`; .ci/run calls exactly that).
# Installs the system packages the tests use when they are missing (as root, with apt-get), then runs the
# formatter/linter, the type checker and every test, and ends with one "N passed, N failed" line.
set -euo pipefail
cd "$(dirname "$0")/.."

# binary → Debian package providing it (kubernetes-client: kubectl 1.20 with kustomize v2, which
# test/manifests/kubernetes.test.ts renders the overlays with; a newer kubectl already on PATH is used as it is)
declare -A NEED=([curl]=curl [h2load]=nghttp2-client [nghttp]=nghttp2-client [promtool]=prometheus [openssl]=openssl [bpftrace]=bpftrace [setpriv]=util-linux [chromium]=chromium [wrk]=wrk [nginx]=nginx [haproxy]=haproxy [redis-server]=redis-server [kubectl]=kubernetes-client [iptables]=iptables [ping]=iputils-ping)
missing_pkgs=()
for bin in "${!NEED[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || missing_pkgs+=("${NEED[$bin]}")
done
if [ ${#missing_pkgs[@]} -gt 0 ]; then
  mapfile -t missing_pkgs < <(printf '%s\n' "${missing_pkgs[@]}" | sort -u)
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test: installing missing system packages: ${missing_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    # Packages with a service (nginx, HAProxy) must not start it: tests start their own instances.
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added_policy=1; fi
    apt-get install -y -qq --no-install-recommends "${missing_pkgs[@]}" >/dev/null
    if [ "${added_policy:-0}" = 1 ]; then rm -f "$policy"; fi
  else
    echo "test: missing system packages: ${missing_pkgs[*]} (install them with: sudo apt-get install -y ${missing_pkgs[*]})" >&2
    exit 1
  fi
fi

# The eBPF probe tests (test/probes/) read tracepoints through tracefs.
if [ "$(id -u)" = 0 ] && [ ! -d /sys/kernel/tracing/events ]; then
  mount -t tracefs tracefs /sys/kernel/tracing || echo "test: could not mount tracefs; test/probes will be skipped" >&2
fi

if [ ! -x node_modules/.bin/node ] || [ "$(node_modules/.bin/node -p 'process.versions.node.split(".")[0]')" != 24 ]; then
  echo "test: node_modules is missing or has no Node 24: run 'npm ci' first (README: npm ci && npm test)" >&2
  exit 1
fi
export PATH="$PWD/node_modules/.bin:$PATH"

echo "== format check (prettier)"
prettier --check . >/dev/null || { prettier --check . || true; echo "test: files above are not formatted; run: npm run format" >&2; exit 1; }
if git rev-parse --git-dir >/dev/null 2>&1 && git grep -nE '^(<<<<<<<|>>>>>>>) ' -- . >/dev/null 2>&1; then
  git grep -nE '^(<<<<<<<|>>>>>>>) ' -- . >&2
  echo "test: merge conflict markers in the files above" >&2
  exit 1
fi
echo "== typecheck (tsc) and build (dist/, which bin/skein.js runs)"
tsc -p tsconfig.json
tsc -p tsconfig.build.json
echo "== import cycles (madge)"
# Every cycle fails the run, type-only imports included (a module that names another's type is coupled to it),
# except this one, which is the shape of the pipeline: a stage's phases take the request context, and the
# context holds its listener scope, whose chain lists the stages. It is type-only (erased at run time).
allowed_cycles='proxy/context.ts > proxy/scope.ts > proxy/pipeline.ts'
# madge exits 1 when it finds a cycle: what it printed decides (a JSON list of cycles, or it failed to run).
found=$(madge --circular --extensions ts --ts-config tsconfig.json --json proxy src control certs bin bench 2>/dev/null || true)
listed=$(node -e 'for (const c of JSON.parse(process.argv[1])) console.log(c.join(" > "))' "$found") ||
  { echo "test: madge could not read the imports: run it without --json to see why" >&2; exit 1; }
cycles=$(grep -vxF "$allowed_cycles" <<<"$listed" || true)
if [ -n "$cycles" ]; then
  echo "test: import cycles (give the module a narrow interface instead of importing its user):" >&2
  echo "$cycles" | sed 's/^/  /' >&2
  exit 1
fi
echo "== tests (vitest)"
report=$(mktemp /tmp/skein-vitest.XXXXXX.json)
trap 'rm -f "$report"' EXIT
status=0
vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?
if [ -s "$report" ]; then
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const skipped = r.numPendingTests + r.numTodoTests;
    console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed${skipped ? `, ${skipped} skipped` : ""}`);
  ' "$report"
fi
exit $status
