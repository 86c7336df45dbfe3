#!/usr/bin/env bash
# Install flowkit, the Ray plugin and the dev tools into ./.venv (uv when it can, pip otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
# The UI's browser tests drive Debian's chromium through its chromedriver (a browser download at
# test time is not possible): installed here when missing, where apt-get and root are at hand.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== system: chromium chromium-driver"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
  else
    echo "note: the browser tests need chromium and chromium-driver (Debian packages)" >&2
  fi
fi
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
