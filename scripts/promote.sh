#!/bin/sh
# skein canary promote for one service: scripts/promote.sh SERVICE [--control URL] [--token-file FILE] [--json]
set -eu
[ $# -ge 1 ] || { echo "usage: $0 SERVICE [options]" >&2; exit 2; }
service=$1
shift
exec "$(dirname "$0")/../bin/skein.js" canary promote --service "$service" "$@"
