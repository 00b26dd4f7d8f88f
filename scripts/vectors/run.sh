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
"$venv/bin/python" "$here/generate.py" "$@"
