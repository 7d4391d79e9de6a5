#!/usr/bin/env bash
# Stops the private cluster started by up.sh (fast shutdown: in-flight transactions roll back).
set -euo pipefail
data="${OFFSHOOT_PG_HOME:-/var/tmp/offshoot-pg}/data"
bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
[ -n "$bin" ] && [ -f "$data/postmaster.pid" ] || { echo "postgres: not running"; exit 0; }
if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
else "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null; fi
echo "postgres: down"
