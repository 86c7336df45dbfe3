#!/usr/bin/env bash
# Install flowkit, the Ray plugin and the dev tools into ./.venv (uv when it can, pip otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check uv 2>/dev/null || true
if [ -x .venv/bin/uv ]; then
  # compat editable mode: a plain .pth path, not an import hook that slows every start-up
  .venv/bin/uv pip install -q --python .venv/bin/python --config-settings editable_mode=compat \
    -e ".[all,dev]" -e backends/ray
else
  .venv/bin/python -m pip install -q --config-settings editable_mode=compat -e ".[all,dev]" -e backends/ray
fi
