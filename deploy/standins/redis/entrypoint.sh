#!/bin/sh
# `redis-server ARGS` runs as the redis user with protected mode off (the
# real image's default); any other command runs as given.
set -eu
if [ "${1:-}" = redis-server ]; then
  shift
  [ "$(id -u)" = 0 ] && exec setpriv --reuid=redis --regid=redis --init-groups redis-server --protected-mode no "$@"
  exec redis-server --protected-mode no "$@"
fi
exec "$@"
