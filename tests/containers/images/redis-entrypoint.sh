#!/bin/sh
# The official redis image is built with protected mode off (the container network is the
# boundary); Debian's redis-server keeps it on and so refuses every client but loopback.
set -eu
if [ "${1:-}" = redis-server ]; then
  shift
  exec redis-server "$@" --protected-mode no
fi
exec "$@"
