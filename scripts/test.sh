#!/usr/bin/env bash
# Install what the tests need and run the whole suite (unit, app, browser).
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -m pip install --disable-pip-version-check -r requirements-dev.txt >.venv/pip-install.log 2>&1; then
  cat .venv/pip-install.log >&2
  exit 1
fi

# Browser tests drive Debian's Chromium (Playwright cannot download browsers here).
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get install -y -qq chromium >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null; }) ||
      echo "warning: could not install chromium; browser tests will be skipped" >&2
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo apt-get install -y -qq chromium >/dev/null || echo "warning: could not install chromium" >&2
  else
    echo "note: /usr/bin/chromium is missing (apt-get install chromium); browser tests will be skipped" >&2
  fi
fi

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec .venv/bin/python -m pytest "$@"
