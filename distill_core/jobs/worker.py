"""The job worker: ``python -m distill_core.jobs.worker`` (started by the app on one machine), or
``huey_consumer distill_core.jobs.worker.huey`` on a lab's worker machines (with DISTILL_REDIS_URL).
"""

from __future__ import annotations

import logging
import os
import signal
import sys

from distill_core.config import Settings
from distill_core.jobs.kinds import make_huey
from distill_core.jobs.queue import serve_keys, socket_path
from distill_core.jobs.records import mark_stale
from distill_core.store import Store

settings = Settings.from_env()
huey = make_huey(settings)


def main(workers: int = 2) -> int:
    """Run the local worker: pid file, key socket, stale-job sweep, then the huey consumer."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings.home.mkdir(parents=True, exist_ok=True)
    pidfile = settings.home / "worker.pid"
    store = Store(settings.database_url)
    store.migrate()
    with store.session() as s:
        mark_stale(s, after_s=0)  # nothing can be running: this is the only local worker
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
