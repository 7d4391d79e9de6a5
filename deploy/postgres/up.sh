#!/usr/bin/env bash
# Starts a private PostgreSQL cluster on 127.0.0.1:${OFFSHOOT_PG_PORT:-55432} with an `offshoot` database.
# Installs Debian's postgresql when missing. Idempotent: does nothing when the cluster already answers.
# The cluster is our own (initdb into $OFFSHOOT_PG_HOME), so it never touches a system cluster on 5432;
# it lives under /var/tmp because the postgres user cannot enter root's home.
set -euo pipefail
home="${OFFSHOOT_PG_HOME:-/var/tmp/offshoot-pg}"
port="${OFFSHOOT_PG_PORT:-55432}"
data="$home/data"
log="$home/postgres.log"

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

if [ -z "$(bindir)" ]; then
  echo "postgres: installing Debian's postgresql"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
fi
bin="$(bindir)"

# PostgreSQL refuses to run as root; run it as the postgres user when we are root.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if as_pg "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
  echo "postgres: already up on 127.0.0.1:$port"
else
  mkdir -p "$home"; [ "$(id -u)" = 0 ] && chown postgres:postgres "$home"
  if [ ! -f "$data/PG_VERSION" ]; then
    echo "postgres: initdb in $data"
    as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  as_pg "$bin/pg_ctl" -D "$data" -l "$log" -w -t 60 start -o \
    "-h 127.0.0.1 -p $port -k /tmp -c fsync=on -c max_connections=200 -c shared_buffers=256MB" >/dev/null
  echo "postgres: up on 127.0.0.1:$port"
fi

if ! as_pg "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc \
     "SELECT 1 FROM pg_database WHERE datname = 'offshoot'" | grep -q 1; then
  as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres offshoot
  echo "postgres: created database offshoot"
fi
echo "postgres: OFFSHOOT_DATABASE_URL=postgresql://postgres@127.0.0.1:$port/offshoot"
