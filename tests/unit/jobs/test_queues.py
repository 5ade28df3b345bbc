"""A lab's workers divide the work: labelling and corpus passes wait on the CPU queue, trainings
on the GPU queue (``kinds.KINDS``), so that a label job finishes while a training runs; real
huey queues (the SQLite file and Redis at 127.0.0.1:6379) with real consumers."""

from __future__ import annotations

import time
import uuid

import pytest

from distill_core.config import Settings
from distill_core.jobs import kinds, queue, records
from distill_core.jobs import train as train_job
from distill_core.jobs.train import start_train_job
from distill_core.llm import Endpoint
from distill_core.store import Store
from tests.fakes import demo_with_run, local_user
from tests.unit.jobs.test_queue import KEY, demo_job, job_of, run_consumer, wait_for
from tests.unit.jobs.test_queue import server as server  # the loopback LLM fixture
from tests.unit.jobs.test_serializer import redis_settings
from tests.unit.jobs.test_train_job import TINY


def training_and_label_job(store: Store, server) -> tuple[int, int]:
    """A training job over the demo project's LLM run, and a label job of 10 texts."""
    pid, run_id = demo_with_run(store)
    with store.session() as s:
        train_id, _ = start_train_job(s, local_user(s), pid, label_run_id=run_id, args=TINY)
    label_id, _ = demo_job(store, Endpoint(base_url=server.base_url, model="m"), n=10)
    return train_id, label_id


def test_each_kind_waits_on_its_own_queue(tmp_path, server) -> None:
    settings = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'distill.db'}")
    store = Store(settings.database_url)
    store.migrate()
    queues = kinds.make_queues(settings)
    assert {h.name for h in queues.hueys.values()} == {"distill-cpu", "distill-gpu"}
    train_id, label_id = training_and_label_job(store, server)
    for job_id in (train_id, label_id):  # no worker: the messages wait
        queue.submit(store, job_id, settings=settings, huey=queues)
    pending = {q: {t.args[0] for t in h.pending()} for q, h in queues.hueys.items()}
    assert pending == {queue.CPU: {label_id}, queue.GPU: {train_id}}
    assert queue.requeue_lost(store, queues, after_s=0) == []  # both messages are there
    queues.hueys[queue.GPU].flush()  # the training's message is lost: queued again, on GPU
    assert queue.requeue_lost(store, queues, after_s=0) == [train_id]
    assert [t.args[0] for t in queues.hueys[queue.GPU].pending()] == [train_id]
    with pytest.raises(ValueError, match="needs its kind"):
        queue.enqueue(queues, label_id)


def test_a_label_job_finishes_on_the_cpu_worker_while_a_training_runs(tmp_path, server) -> None:
    settings = redis_settings(tmp_path)
    store = Store(settings.database_url)
    store.migrate()
    train_id, label_id = training_and_label_job(store, server)
    seen: dict[str, object] = {}

    def training_held_open(store: Store, job_id: int, secret: str | None):
        """The real training, held open until the label job has ended (or 60 s), then
        cancelled (a whole training takes a minute here) and run: it stops at its first check."""
        seen["queue_of_training"] = "gpu worker"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and job_of(store, label_id).status in records.ACTIVE:
            time.sleep(0.1)
        seen["label_status"] = job_of(store, label_id).status
        seen["training_status"] = job_of(store, job_id).status
        with store.session() as s:
            records.request_cancel(s, local_user(s), job_of(store, job_id).project_id, job_id)
        return train_job.run_train_job(store, job_id, secret)

    table = {**kinds.KINDS, "train": queue.Kind(training_held_open, queue.GPU)}
    queues = queue.make_queues(table, settings, prefix=f"distill-test-{uuid.uuid4().hex[:8]}")
    queue.Keyring.put(label_id, KEY)
    cpu = run_consumer(queues.hueys[queue.CPU], workers=1)
    gpu = run_consumer(queues.hueys[queue.GPU], workers=1)  # one training at a time per GPU
    try:
        queue.enqueue(queues, train_id, "train")
        wait_for(lambda: job_of(store, train_id).status == "running")
        queue.enqueue(queues, label_id, "label")
        trained = wait_for(
            lambda: (j := job_of(store, train_id)).status not in records.ACTIVE and j, 300
        )
    finally:
        cpu.stop(graceful=True)
        gpu.stop(graceful=True)
        for h in queues.hueys.values():
            h.storage.flush_all()
    labelled = job_of(store, label_id)
    assert seen == {
        "queue_of_training": "gpu worker",
        "label_status": "done",
        "training_status": "running",
    }
    assert labelled.status == "done" and labelled.done == 10, labelled.message
    assert labelled.finished_at < trained.finished_at
    assert trained.status == "cancelled", trained.message  # by the test, once the label job ended


def test_the_local_worker_runs_a_label_job_while_a_training_runs(tmp_path, server) -> None:
    """The app's own worker process (SQLite queue) consumes both queues: a label job submitted
    while a real training runs finishes before it."""
    home = tmp_path / "home"
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'distill.db'}")
    store = Store(settings.database_url)
    store.migrate()
    supervisor = queue.Supervisor(settings)
    queues = kinds.make_queues(settings)
    train_id, label_id = training_and_label_job(store, server)
    try:
        queue.submit(store, train_id, settings=settings, huey=queues, supervisor=supervisor)
        wait_for(lambda: job_of(store, train_id).status == "running")
        queue.submit(store, label_id, settings=settings, api_key=KEY, huey=queues)
        labelled = wait_for(
            lambda: (j := job_of(store, label_id)).status not in records.ACTIVE and j
        )
        assert job_of(store, train_id).status == "running"  # still training
        with store.session() as s:
            records.request_cancel(s, local_user(s), job_of(store, train_id).project_id, train_id)
        trained = wait_for(
            lambda: (j := job_of(store, train_id)).status not in records.ACTIVE and j, 300
        )
    finally:
        supervisor.stop()
    assert labelled.status == "done" and labelled.done == 10, labelled.message
    assert trained.status == "cancelled" and labelled.finished_at < trained.finished_at
