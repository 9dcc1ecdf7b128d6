#!/usr/bin/env bash
# Every test of flatnet: typecheck, unit tests on Node, the core on Bun and Deno, then the cross-package suite
# (runtime portability, netns end-to-end, CNI interop, fake kube-apiserver, real etcd, code-server).
# Ends with one line "N passed, N failed" counting test cases over every runner.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh || { echo "bootstrap failed"; echo "0 passed, 1 failed"; exit 1; }
export PATH="$PWD/node_modules/.bin:$PATH"
out=test-results/counts
rm -rf "$out" && mkdir -p "$out"

failed_steps=()
step() {
  local name=$1; shift
  printf '\n=== %s\n' "$name"
  local start=$SECONDS
  if "$@"; then printf '=== %s: ok (%ss)\n' "$name" $((SECONDS - start))
  else printf '=== %s: FAILED (%ss)\n' "$name" $((SECONDS - start)); failed_steps+=("$name"); fi
}

step "typecheck" npx turbo run typecheck --output-logs=errors-only
# What may import what (.dependency-cruiser.cjs: no file or folder cycle, the layers of docs/design.md), and the
# kernel behind one door (only apps/agent/src/linux/ spawns ip, bridge, nft, iptables, conntrack, sysctl or opens netlink).
step "import guard (dependency-cruiser)" node scripts/check-deps.mjs
step "kernel door guard" node scripts/check-kernel-door.mjs
step "unit tests on Node (turbo: core, agent, vscode)" \
  env FLATNET_COUNTS_DIR="$PWD/$out" npx turbo run test --concurrency=1 --continue --output-logs=full
step "core tests on Bun" env FLATNET_COUNTS_DIR="$PWD/$out" npm run -s -w @flatnet/core test:bun
step "core tests on Deno" env FLATNET_COUNTS_DIR="$PWD/$out" npm run -s -w @flatnet/core test:deno
# The image of deploy/Dockerfile, built here from a Debian base made with mmdebstrap (no registry), runs its CLI;
# built before test/, whose lab-deploy tests run the DaemonSet from it.
step "image (npm run image) runs flatnet help" \
  bash -c 'bash scripts/image.sh && podman run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 localhost/flatnet:dev help >/dev/null'
step "cross-package tests (test/)" \
  npx vitest run --root test --reporter=default --reporter=json --outputFile.json="$PWD/$out/test.json"

node scripts/count-results.mjs "$out" "${#failed_steps[@]}"
if [ ${#failed_steps[@]} -gt 0 ]; then
  printf 'failed steps: %s\n' "${failed_steps[*]}"
  exit 1
fi
