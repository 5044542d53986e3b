#!/usr/bin/env bash
# What transparent capture costs a request, end to end: one Skein proxy (uid 1337, pinned to CPU 1) with two
# listeners to the same origin in another network namespace: `cap` (0.0.0.0:15001, originalDst, reached by wrk
# dialing the origin's address, redirected by `skein redirect install`) and `plain` (127.0.0.1:15002, a route to a
# static cluster, dialed directly). wrk (CPU 0) runs them interleaved; the proxy's CPU per request comes from
# /proc/PID/stat. As root; creates and deletes namespaces skcap-a/skcap-b and their veth pair.
# Usage: bench/capture-overhead.sh [ROUNDS=3] [SECONDS=5]   (CLOSE=1: a new connection per request too)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
N=$REPO/node_modules/.bin/node
ROUNDS=${1:-3}
SECS=${2:-5}
A=skcap-a
B=skcap-b
WORK=$(mktemp -d /tmp/skein-capture-bench.XXXXXX)
chmod 755 "$WORK"
cleanup() {
  for p in ${PP:-} ${OP:-}; do kill "$p" 2>/dev/null || true; done
  sleep 0.3
  ip netns del $A 2>/dev/null || true
  ip netns del $B 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
ip netns add $A
ip netns add $B
ip -n $A link set lo up
ip -n $B link set lo up
ip link add skcapv0 netns $A type veth peer name skcapv1 netns $B
ip -n $A addr add 10.0.0.1/24 dev skcapv0
ip -n $A link set skcapv0 up
ip -n $B addr add 10.0.0.2/24 dev skcapv1
ip -n $B link set skcapv1 up
cat >"$WORK/proxy.json" <<J
{"listeners":[{"name":"cap","address":"0.0.0.0:15001","originalDst":true,"cluster":"passthrough"},
 {"name":"plain","address":"127.0.0.1:15002","routes":[{"cluster":"origin"}]}],
 "clusters":[{"name":"passthrough","discovery":{"type":"original-dst"}},
 {"name":"origin","discovery":{"type":"static","endpoints":[{"address":"10.0.0.2:8080"}]}}]}
J
chmod 644 "$WORK/proxy.json"
ip netns exec $B taskset -c 0 "$N" -e "require('http').createServer((q,r)=>r.end('hello\n')).listen(8080,'10.0.0.2')" &
OP=$!
ip netns exec $A taskset -c 1 setpriv --reuid=1337 --regid=1337 --clear-groups "$N" --max-semi-space-size=2 \
  "$REPO/bin/skein.js" proxy --config "$WORK/proxy.json" --log-level warn &
PP=$!
sleep 2
ip netns exec $A "$N" "$REPO/bin/skein.js" redirect install --proxy-uid 1337 >/dev/null
TCK=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$PP/stat"; }
one() { # label url close?
  local before after out reqs
  before=$(cpu)
  if [ "$3" = 1 ]; then out=$(ip netns exec $A taskset -c 0 wrk -t1 -c10 -d"${SECS}s" -H 'Connection: close' "$2")
  else out=$(ip netns exec $A taskset -c 0 wrk -t1 -c10 -d"${SECS}s" "$2"); fi
  after=$(cpu)
  reqs=$(awk '/requests in/{print $1}' <<<"$out")
  printf '%-18s %10s req/s  %6s µs CPU/req\n' "$1" "$(awk '/Requests\/sec/{print $2}' <<<"$out")" \
    "$(awk -v a="$after" -v b="$before" -v r="$reqs" -v t="$TCK" 'BEGIN{printf "%.1f", (a-b)/t*1e6/r}')"
}
for round in $(seq "$ROUNDS"); do
  echo "round $round"
  one "keep-alive cap" http://10.0.0.2:8080/ 0
  one "keep-alive plain" http://127.0.0.1:15002/ 0
  if [ "${CLOSE:-0}" = 1 ]; then
    one "close cap" http://10.0.0.2:8080/ 1
    one "close plain" http://127.0.0.1:15002/ 1
  fi
done
