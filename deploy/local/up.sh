#!/usr/bin/env bash
# The distributed stack on this machine, after deploy/postgres/up.sh and deploy/kafka/up.sh:
# one `offshoot serve --role ROLE` process per role (the roles that touch vectors share one
# process while vectors are in Qdrant Edge, i.e. OFFSHOOT_QDRANT_URL unset), gateway on :8000,
# logs and pid files in ~/.cache/offshoot/stack/. Idempotent; waits for every /readyz.
# The logic is offshoot/stack.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec .venv/bin/python -m offshoot.stack up "$@"
