#!/usr/bin/env bash
# Puts `flatnet` on PATH: a small wrapper in $FLATNET_BIN_DIR (default /usr/local/bin) that runs this clone's Node 24
# on its built CLI, and the bash completion in $FLATNET_COMPLETION_DIR (default /etc/bash_completion.d, if it exists).
# Run by scripts/bootstrap.sh after the build; idempotent; never replaces a `flatnet` it did not install.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
bin_dir=${FLATNET_BIN_DIR:-/usr/local/bin}
completion_dir=${FLATNET_COMPLETION_DIR:-/etc/bash_completion.d}
marker="# installed by flatnet's scripts/install-cli.sh"
say() { printf 'install-cli: %s\n' "$*" >&2; }

if [ ! -w "$bin_dir" ] && [ ! -w "$(dirname "$bin_dir")" ]; then
  say "cannot write $bin_dir (not root?): in this clone run \`npx flatnet ...\`, or as root \`npm run bootstrap\` to install $bin_dir/flatnet"
  exit 0
fi
target=$bin_dir/flatnet
if [ -e "$target" ] && ! grep -qF "$marker" "$target" 2>/dev/null; then
  say "$target exists and is not ours; left alone (in this clone: \`npx flatnet ...\`)"
  exit 0
fi
mkdir -p "$bin_dir"
tmp=$(mktemp "$bin_dir/.flatnet.XXXXXX")
cat > "$tmp" <<WRAPPER
#!/bin/sh
$marker from $repo: the clone's Node 24 on its built CLI.
exec "$repo/node_modules/.bin/node" "$repo/apps/agent/dist/main.js" "\$@"
WRAPPER
chmod 755 "$tmp"
mv -f "$tmp" "$target"
say "flatnet -> $target ($("$target" --version))"
if [ -d "$completion_dir" ] && [ -w "$completion_dir" ]; then
  "$target" completion bash > "$completion_dir/flatnet"
  say "bash completion -> $completion_dir/flatnet (new shells)"
fi
