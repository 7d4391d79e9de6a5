#!/usr/bin/env bash
# Stops the broker started by up.sh with SIGTERM (a controlled shutdown) and waits for it to exit.
set -euo pipefail
cache="${OFFSHOOT_CACHE:-$HOME/.cache/offshoot}"
pidfile="$cache/kafka.pid"
[ -f "$pidfile" ] || { echo "kafka: not running"; exit 0; }
pid="$(cat "$pidfile")"
if kill -0 "$pid" 2>/dev/null; then
  kill -TERM "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && { echo "kafka: still running after 30 s, killing" >&2; kill -KILL "$pid"; }
fi
rm -f "$pidfile"
echo "kafka: down"
