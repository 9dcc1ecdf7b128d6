#!/usr/bin/env bash
# Installs what flatnet needs on a fresh Debian machine, then builds. Idempotent and quick when nothing is missing.
#   Debian: iproute2 nftables (datapath), etcd-server (etcd datastore), containernetworking-plugins (reference CNI),
#           iperf3 socat (benchmarks, probes), chromium libkrb5-dev (webview tests, code-server native module),
#           gcc libc6-dev (the CNI plugin's optional native client), zsh (the zsh completion's test),
#           podman runc containerd busybox-static (lab --runtime podman, ctr run --cni), mmdebstrap (npm run image)
#   npm:    `npm ci` (Node 24 comes from the `node` devDependency; deno and bun likewise)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'bootstrap: %s\n' "$*" >&2; }

# command-or-file -> Debian package that provides it
declare -A NEED=(
  [ip]=iproute2
  [bridge]=iproute2
  [nft]=nftables
  [conntrack]=conntrack
  [etcd]=etcd-server
  [etcdctl]=etcd-client
  [/usr/lib/cni/bridge]=containernetworking-plugins
  [iperf3]=iperf3
  [socat]=socat
  [chromium]=chromium
  [/usr/include/krb5.h]=libkrb5-dev
  [nsenter]=util-linux
  [ps]=procps
  [ping]=iputils-ping
  [tcpdump]=tcpdump
  [jq]=jq
  [zsh]=zsh
  [iptables]=iptables
  [curl]=curl
  [cc]=gcc
  [/usr/include/stdio.h]=libc6-dev
  [podman]=podman
  [runc]=runc
  [containerd]=containerd
  [/bin/busybox]=busybox-static
  [mmdebstrap]=mmdebstrap
)
missing=()
for what in "${!NEED[@]}"; do
  if [[ $what == /* ]]; then [ -e "$what" ] || missing+=("${NEED[$what]}")
  else command -v "$what" >/dev/null 2>&1 || missing+=("${NEED[$what]}"); fi
done
if [ ${#missing[@]} -gt 0 ]; then
  pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  if [ "$(id -u)" = 0 ]; then
    say "installing Debian packages: $pkgs"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # etcd-server's maintainer script would start a system etcd; policy-rc.d keeps services from starting.
    if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; added_policy=1; fi
    apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
    [ "${added_policy:-0}" = 1 ] && rm -f /usr/sbin/policy-rc.d
  else
    say "not root: cannot install $pkgs (kernel tests and the lab need root anyway)"
  fi
fi

# npm ci when node_modules is missing or older than the lock file.
stamp=node_modules/.flatnet-bootstrap
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  say "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi

say "build (turbo)"
PATH="$PWD/node_modules/.bin:$PATH" npx turbo run build --output-logs=errors-only >&2
# flatnet on PATH: /usr/local/bin/flatnet runs this clone's Node 24 on apps/agent/dist/main.js (docs/cli.md).
bash scripts/install-cli.sh
say "ready: node $(PATH="$PWD/node_modules/.bin:$PATH" node --version)"
