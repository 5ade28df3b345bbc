"""The job worker: ``python -m distill_core.jobs.worker`` (started by the app on one machine:
it consumes both queues), or, on a lab's worker machines (with DISTILL_REDIS_URL),
``huey_consumer distill_core.jobs.worker.cpu_huey`` for labelling and corpus passes and
``huey_consumer distill_core.jobs.worker.gpu_huey -w 1`` once per GPU for trainings.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import signal
import sys
from pathlib import Path

from distill_core.config import Settings
from distill_core.jobs.kinds import make_queues
from distill_core.jobs.queue import (
    CPU,
    GPU,
    enqueue,
    forget_ended_keys,
    job_kinds,
    serve_keys,
    socket_path,
)
from distill_core.jobs.records import resume_interrupted
from distill_core.keys import mask
from distill_core.store import Store

settings = Settings.from_env()
queues = make_queues(settings)
#: What ``huey_consumer`` is pointed at on a lab's CPU and GPU worker machines.
cpu_huey, gpu_huey = queues.hueys[CPU], queues.hueys[GPU]

#: worker.log rotates at this size, keeping this many old files (worker.log.1 …).
LOG_MAX_BYTES = 5 * 1024 * 1024
LOG_BACKUPS = 3
_QUERY = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s?#\"'<>]*)\?[^\s#\"'<>]*", re.IGNORECASE)


class _Scrub(logging.Filter):
    """Every record leaves with secrets masked (``keys.mask``) and URLs without their query
    strings (``?key=…`` would otherwise reach the log)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.exc_info:  # the traceback too: format it now, scrubbed
            text += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info, record.exc_text = None, None
        record.msg, record.args = scrub(text), None
        return True


def scrub(text: str) -> str:
    """``text`` with known secrets masked and every URL's query string dropped."""
    return _QUERY.sub(r"\1?…", mask(text))


def configure_logging(path: Path) -> logging.Handler:
    """The worker's log: ``path`` rotating at ``LOG_MAX_BYTES``, scrubbed (:func:`scrub`);
    request lines of the HTTP client (one per LLM request, with its URL) are not logged."""
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_Scrub())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for noisy in ("httpx", "httpx2", "httpcore", "httpcore2", "openai", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler


def main(cpu_workers: int = 2, gpu_workers: int = 1) -> int:
    """Run the local worker: log, pid file, key socket, the interrupted jobs queued again,
    then a huey consumer for each queue (threads: ``cpu_workers`` for labelling and corpus
    passes, ``gpu_workers`` for trainings), so that a training never holds up a label job."""
    settings.home.mkdir(parents=True, exist_ok=True)
    configure_logging(settings.home / "worker.log")
    pidfile = settings.home / "worker.pid"
    store = Store(settings.database_url)
    store.migrate()
    with store.session() as s:  # nothing can be running: this is the only local worker
        again = resume_interrupted(s)
    forget_ended_keys(settings, store)
    kinds = job_kinds(store, again)
    for job_id in again:
        enqueue(queues, job_id, kinds.get(job_id))
    if again:
        logging.getLogger("distill.jobs").warning("Resumed interrupted jobs %s", again)
    serve_keys(socket_path(settings))
    pidfile.write_text(str(os.getpid()))

    def cleanup(*_):
        socket_path(settings).unlink(missing_ok=True)
        if pidfile.exists() and pidfile.read_text().strip() == str(os.getpid()):
            pidfile.unlink(missing_ok=True)

    cpu = cpu_huey.create_consumer(workers=cpu_workers, worker_type="thread", periodic=False)
    gpu = gpu_huey.create_consumer(workers=gpu_workers, worker_type="thread", periodic=False)
    cpu.start()  # its threads run beside the GPU queue's consumer, which owns the signals
    try:
        gpu.run()
    finally:
        cpu.stop()
        cleanup()
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.exit(main())
