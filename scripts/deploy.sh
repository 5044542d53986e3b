#!/bin/sh
# Start a canary rollout: scripts/deploy.sh SERVICE FROM_VERSION TO_VERSION [skein canary start options]
# (e.g. --stages 5:300,10:300,100 --control http://HOST:15010 --token-file FILE; or SKEIN_CONTROL and
# SKEIN_TOKEN_FILE in the environment).
set -eu
[ $# -ge 3 ] || { echo "usage: $0 SERVICE FROM_VERSION TO_VERSION [options]" >&2; exit 2; }
service=$1 from=$2 to=$3
shift 3
exec "$(dirname "$0")/../bin/skein.js" canary start --service "$service" --from "$from" --to "$to" "$@"
