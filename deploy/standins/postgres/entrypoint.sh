#!/bin/sh
# The real image's contract, in short: on an empty $PGDATA, initdb with
# POSTGRES_USER as superuser (password POSTGRES_PASSWORD), create
# POSTGRES_DB, accept password logins from any address; then run postgres
# in the foreground as the postgres user (SIGTERM: a fast, clean shutdown).
set -eu
bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}"
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  "$bin/initdb" -D "$PGDATA" -U "$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 -E UTF8 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  if [ "$db" != postgres ]; then
    "$bin/postgres" --single -D "$PGDATA" postgres >/dev/null <<SQL
CREATE DATABASE "$db" OWNER "$user";
SQL
  fi
fi
[ "${1:-}" = postgres ] && shift
exec "$bin/postgres" -D "$PGDATA" -c listen_addresses='*' "$@"
