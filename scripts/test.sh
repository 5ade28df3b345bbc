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

# The sign-in tests run a real OpenID provider (the npm package oidc-provider) with Node.js:
# `npm ci` into tests/oidc/node_modules when it is missing or package-lock.json changed since.
# Without node and npm those tests are skipped with the reason (they fail under
# DISTILL_REQUIRE_BROWSER=1, as in CI).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get install -y -qq nodejs npm >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null && apt-get install -y -qq nodejs npm >/dev/null; }) ||
      echo "warning: could not install nodejs and npm; the OpenID sign-in tests will be skipped" >&2
  else
    echo "note: node and npm are missing (apt-get install nodejs npm); the OpenID sign-in tests will be skipped" >&2
  fi
fi
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  lock_sum=$(sha256sum tests/oidc/package-lock.json | cut -d' ' -f1)
  stamp=tests/oidc/node_modules/.package-lock.sha256
  if [ ! -d tests/oidc/node_modules/oidc-provider ] || [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]; then
    if npm ci --prefix tests/oidc --no-audit --no-fund --loglevel=error >.venv/npm-ci.log 2>&1; then
      echo "$lock_sum" >"$stamp"
    else
      cat .venv/npm-ci.log >&2
      exit 1
    fi
  fi
fi

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec .venv/bin/python -m pytest "$@"
