#!/usr/bin/env bash
# Makes the preset test vectors with the pinned SDKs: a virtualenv in target/vectors-venv,
# then generate.py. Arguments: preset names (default: all).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/../../target/vectors-venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
# The providers that publish only an npm SDK: pinned in package.json, installed beside.
node_dir="$here/../../target/vectors-node"
mkdir -p "$node_dir"
cp "$here/package.json" "$node_dir/package.json"
npm install --prefix "$node_dir" --no-audit --no-fund --silent
export HOOKGATE_VECTORS_NODE_PATH="$node_dir/node_modules"
"$venv/bin/python" "$here/generate.py" "$@"
