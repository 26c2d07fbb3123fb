#!/bin/sh
# Start the Compose gateway. nginx re-resolves a service name (and so finds replicas added
# by `--scale`) only for proxy_pass targets held in variables, through the `resolver` it is
# given. The DNS server differs by engine (Docker: 127.0.0.11, Podman: aardvark-dns on the
# network's gateway address), so it is read from this container's /etc/resolv.conf.
set -eu
state=/var/cache/shopfleet-gateway
mkdir -p "$state"
nameserver=$(awk '$1 == "nameserver" { print $2; exit }' /etc/resolv.conf)
case "$nameserver" in
  *:*) nameserver="[$nameserver]" ;;
  "") nameserver=127.0.0.11 ;;
esac
echo "resolver $nameserver valid=5s ipv6=off;" > "$state/resolver.conf"
exec nginx -e /dev/stderr -c "${SHOPFLEET_GATEWAY_CONFIG:-/etc/shopfleet/nginx.conf}" "$@"
