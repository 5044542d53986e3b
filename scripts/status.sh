#!/bin/sh
# skein canary status for one service: scripts/status.sh SERVICE [--control URL] [--token-file FILE] [--json]
set -eu
[ $# -ge 1 ] || { echo "usage: $0 SERVICE [options]" >&2; exit 2; }
service=$1
shift
exec "$(dirname "$0")/../bin/skein.js" canary status --service "$service" "$@"
