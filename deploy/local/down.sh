#!/usr/bin/env bash
# SIGTERM every process deploy/local/up.sh started (pid files in ~/.cache/offshoot/stack/) and
# wait for their graceful shutdown. Kafka and PostgreSQL keep running (their own down.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec .venv/bin/python -m offshoot.stack down "$@"
