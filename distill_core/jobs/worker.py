"""The job worker: ``python -m distill_core.jobs.worker`` (started by the app on one machine), or
``huey_consumer distill_core.jobs.worker.huey`` on a lab's worker machines (with DISTILL_REDIS_URL).
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
from distill_core.jobs.kinds import make_huey
from distill_core.jobs.queue import enqueue, forget_ended_keys, serve_keys, socket_path
from distill_core.jobs.records import resume_interrupted
from distill_core.keys import mask
from distill_core.store import Store

settings = Settings.from_env()
huey = make_huey(settings)

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


def main(workers: int = 2) -> int:
    """Run the local worker: log, pid file, key socket, the interrupted jobs queued again,
    then the huey consumer."""
    settings.home.mkdir(parents=True, exist_ok=True)
    configure_logging(settings.home / "worker.log")
    pidfile = settings.home / "worker.pid"
    store = Store(settings.database_url)
    store.migrate()
    with store.session() as s:  # nothing can be running: this is the only local worker
        again = resume_interrupted(s)
    forget_ended_keys(settings, store)
    for job_id in again:
        enqueue(huey, job_id)
    if again:
        logging.getLogger("distill.jobs").warning("Resumed interrupted jobs %s", again)
    serve_keys(socket_path(settings))
    pidfile.write_text(str(os.getpid()))

    def cleanup(*_):
        socket_path(settings).unlink(missing_ok=True)
        if pidfile.exists() and pidfile.read_text().strip() == str(os.getpid()):
            pidfile.unlink(missing_ok=True)

    consumer = huey.create_consumer(workers=workers, worker_type="thread", periodic=False)
    try:
        consumer.run()
    finally:
        cleanup()
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.exit(main())
