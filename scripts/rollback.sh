#!/bin/sh
# skein canary rollback for one service: scripts/rollback.sh SERVICE [--control URL] [--token-file FILE] [--json]
set -eu
[ $# -ge 1 ] || { echo "usage: $0 SERVICE [options]" >&2; exit 2; }
service=$1
shift
exec "$(dirname "$0")/../bin/skein.js" canary rollback --service "$service" "$@"
