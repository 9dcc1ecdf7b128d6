#!/usr/bin/env bash
# Builds the image of deploy/Dockerfile with Debian's podman, FROM a Debian base made here (no registry pull):
#   1. base: mmdebstrap from this machine's own apt sources, plus Node (the repo's `node` devDependency) and npm,
#      cached as .cache/image/<suite>-node<version>.tar (gitignored) and imported as localhost/flatnet-base:<...>;
#   2. podman build --build-arg BASE=<that tag> (the Dockerfile's default BASE stays node:24-bookworm-slim);
#   3. prints the image's size.
# Env: IMAGE (tag to build, default localhost/flatnet:dev), BASE (use this base instead of making one).
# RUN steps use the host's network (--network host): no bridge is made in the root namespace. npm's cache of this
# machine is mounted for `npm ci`, so a machine that ran `npm ci` once builds without downloading the packages again.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'image: %s\n' "$*" >&2; }
IMAGE=${IMAGE:-localhost/flatnet:dev}
node_bin=node_modules/node/bin/node
[ -x "$node_bin" ] || { say "$node_bin is missing; run npm ci (npm run bootstrap) first"; exit 1; }
node_version=$("$node_bin" --version)
# The npm that runs this script (npm root -g would answer for the first node on PATH, which may be the repo's).
npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
[ -f "$npm_dir/bin/npm-cli.js" ] || { say "npm not found beside $(command -v npm) (looked for $npm_dir/bin/npm-cli.js); the base needs a copy of it"; exit 1; }

if [ -z "${BASE:-}" ]; then
  . /etc/os-release
  suite=${VERSION_CODENAME:?/etc/os-release has no VERSION_CODENAME}
  sources=$(ls /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 || true)
  [ -n "$sources" ] || sources=/etc/apt/sources.list
  mkdir -p .cache/image
  tarball=.cache/image/$suite-node$node_version.tar
  BASE=localhost/flatnet-base:$suite-node$node_version
  if [ ! -s "$tarball" ]; then
    say "making the base $tarball with mmdebstrap from $sources"
    # ca-certificates: npm and apt over https; Node and npm copied in where node:*-slim images have them.
    mmdebstrap --quiet --variant=apt --include=ca-certificates \
      --customize-hook="copy-in $node_bin /usr/local/bin" \
      --customize-hook="mkdir -p \"\$1/usr/local/lib/node_modules\" && cp -a $npm_dir \"\$1/usr/local/lib/node_modules/\"" \
      --customize-hook='ln -s ../lib/node_modules/npm/bin/npm-cli.js "$1/usr/local/bin/npm" && ln -s ../lib/node_modules/npm/bin/npx-cli.js "$1/usr/local/bin/npx"' \
      --customize-hook='rm -rf "$1/var/lib/apt/lists"/* "$1/var/cache/apt"/*.bin "$1/usr/share/doc"/* "$1/usr/share/man"/*' \
      "$suite" "$tarball.partial.tar" "$sources" # mmdebstrap picks the output format by the name's extension
    mv "$tarball.partial.tar" "$tarball"
  fi
  if ! podman image exists "$BASE"; then
    say "importing $tarball as $BASE"
    podman import --quiet --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "$tarball" "$BASE" >/dev/null
  fi
fi

cache_mount=()
npm_cache=$(npm config get cache)
[ -d "$npm_cache" ] && cache_mount=(--volume "$npm_cache:/root/.npm")
say "podman build -f deploy/Dockerfile --build-arg BASE=$BASE -t $IMAGE"
start=$SECONDS
podman build --quiet --network host "${cache_mount[@]}" --build-arg "BASE=$BASE" -f deploy/Dockerfile -t "$IMAGE" . >/dev/null
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
say "built $IMAGE from $BASE in $((SECONDS - start)) s"
printf '%s %s MB\n' "$IMAGE" $((size / 1000000))
