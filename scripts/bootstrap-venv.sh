#!/usr/bin/env bash
# Create (or reuse) a virtualenv and install exactly the pinned lock file into it.
# usage: [NO_PROJECT=1] scripts/bootstrap-venv.sh VENV_DIR LOCK_FILE   (NO_PROJECT: lock only, not this package)
# Needs only python3 (>= 3.11) and network access to the package index.
set -euo pipefail
venv=$1
lock=$2
UV_VERSION=0.13.9
PYTHON=${PYTHON:-python3}

stamp="$venv/.mls-installed"
want=$(cat "$lock" pyproject.toml scripts/bootstrap-venv.sh | sha256sum | cut -d' ' -f1)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
if [[ ! -x "$venv/bin/python" ]]; then
  "$PYTHON" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
"$venv/bin/python" -m uv pip sync --quiet --python "$venv/bin/python" "$lock"
if [[ -z "${NO_PROJECT:-}" ]]; then
  "$venv/bin/python" -m uv pip install --quiet --python "$venv/bin/python" --no-deps -e .
fi
echo "$want" > "$stamp"
