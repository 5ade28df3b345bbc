"""Several users' label jobs share the CPU workers fairly: a label job works in turns and hands
the worker back when another job waits (``records.TurnOver``), and the queue takes messages in
a fair order per user (``queue.fair_start``). Real huey queues (the SQLite file, Redis at
127.0.0.1:6379) with ONE real consumer, and the loopback OpenAI-compatible server, which counts
the requests per text."""

from __future__ import annotations

import threading
import uuid

import pytest

from distill_core.codebook import Codebook
from distill_core.config import Settings
from distill_core.jobs import kinds, queue, records
from distill_core.jobs.label import TURNS, LabelRequest, start_label_job
from distill_core.llm import Endpoint
from distill_core.store import Job, Store
from distill_core.study import demo, projects
from tests.unit.jobs.test_queue import KEY, job_of, run_consumer, wait_for
from tests.unit.jobs.test_queue import server as server  # the loopback LLM fixture
from tests.unit.jobs.test_serializer import redis_settings

#: A turn here: short, so that the big job hands the worker back within the test.
SLICE_S = 0.3


@pytest.fixture
def short_turns(monkeypatch) -> None:
    """Turns of SLICE_S whatever a turn's start costs on a busy machine (not ten times it)."""
    monkeypatch.setattr(records, "TURN_PER_FIXED_COST", 0.0)


def users_job(store: Store, username: str, endpoint: Endpoint, docs: slice, **kw):
    """A label job of ``username`` over the documents ``docs`` of their own demo project."""
    with store.session() as s:
        user = projects.ensure_user(s, username)
        p = demo.ensure_demo_project(s, user)
        corpus = projects.get_corpus(s, user, p.id)
        version = projects.latest_codebook(s, user, p.id)
        frame = projects.load_documents(s, user, p.id, with_extra=False)
        return start_label_job(
            s,
            user,
            project_id=p.id,
            corpus_id=corpus.id,
            codebook_version_id=version.id,
            codebook=Codebook.from_dict(version.content),
            doc_ids=list(frame["doc_id"][docs]),
            request=LabelRequest(provider="openai", endpoint=endpoint, **kw),
        )[0]


def sqlite_settings(tmp_path) -> Settings:
    return Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'distill.db'}")


class Watch:
    """Every (status, message, done) a job shows, read a few times a second, as a page would."""

    def __init__(self, store: Store, job_id: int) -> None:
        self.store, self.job_id, self.seen = store, job_id, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            job = job_of(self.store, self.job_id)
            self.seen.append((job.status, job.message, job.done))

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


@pytest.mark.usefixtures("short_turns")
@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_a_small_job_of_a_second_user_finishes_while_a_big_one_goes_on(
    tmp_path, server, monkeypatch, backend
) -> None:
    """User 1 starts a 300-text job, user 2 a 20-text one a moment later, one worker: user 2's
    ends first; user 1's then ends with every text asked exactly once and the figures of a run
    in one go. On Redis the typed key reaches the worker kept under the server secret
    (``queue.keep_key``) and survives the hand-backs; on SQLite it is held in memory."""
    server.config.latency = 0.05  # the big job takes about 8 s of answers, the small one 0.5 s
    if backend == "redis":
        monkeypatch.setenv("DISTILL_SECRET_KEY", f"s-{uuid.uuid4().hex}")
        settings = redis_settings(tmp_path)
    else:
        settings = sqlite_settings(tmp_path)
    store = Store(settings.database_url)
    store.migrate()
    endpoint = Endpoint(base_url=server.base_url, model="m")
    big = users_job(store, "alice", endpoint, slice(0, 300), concurrency=2)
    small = users_job(store, "bob", endpoint, slice(340, 360), concurrency=2)  # other texts
    prefix = f"distill-test-{uuid.uuid4().hex[:8]}"
    queues = kinds.make_queues(settings, prefix, slice_s=SLICE_S)
    cpu = queues.hueys[queue.CPU]
    for job_id in (big, small):
        if backend == "redis":
            assert queue.keep_key(settings, job_id, KEY)
            records.merge_params(store, job_id, **{records.KEY_TYPED: True})
        else:
            queue.Keyring.put(job_id, KEY)
    consumer = run_consumer(cpu, workers=1)
    try:
        with Watch(store, big) as watch:
            queue.enqueue(queues, big, "label")
            wait_for(lambda: job_of(store, big).done >= 20)
            first_start = job_of(store, big).started_at
            queue.enqueue(queues, small, "label")
            ended = wait_for(lambda: (j := job_of(store, small)).status not in records.ACTIVE and j)
            meanwhile = job_of(store, big)
            finished = wait_for(
                lambda: (j := job_of(store, big)).status not in records.ACTIVE and j, 120
            )
    finally:
        consumer.stop(graceful=True)
        cpu.storage.flush_all()
    assert ended.status == "done" and ended.done == 20, ended.message
    assert meanwhile.status in records.ACTIVE and meanwhile.done < 300
    assert finished.status == "done", finished.message
    # the demo's first 300 texts: 299 and an empty one, which is not sent
    assert finished.done == finished.total == 300 and finished.errors == 0
    assert finished.message == "299 labelled, 0 invalid, 0 failed, 1 empty text not sent."
    per_text = server.stats()["per_text"]
    assert len(per_text) == 299 + 20 and set(per_text.values()) == {1}  # each asked once
    assert finished.result["progress"]["requested"] == 299
    assert finished.result["progress"]["cached"] == 0
    assert finished.params[TURNS]["turns"] >= 1  # it handed the worker back
    assert finished.prompt_tokens > finished.params[TURNS]["asked"]["prompt_tokens"] > 0
    assert finished.prompt_tokens == finished.result["progress"]["prompt_tokens"]
    # it waited "queued" with an honest message, and its bar never went back
    waits = [m for status, m, _ in watch.seen if status == "queued" and "its turn" in m]
    assert waits and waits[0].startswith("Waiting its turn: ") and "of 299 answers" in waits[0]
    dones = [d for _, _, d in watch.seen]
    assert dones == sorted(dones)
    # its start moved on by the time it waited: finished - started is the time it ran
    assert finished.started_at > first_start
    assert not queue._key_path(settings, big).exists()  # the kept key went with its end
    assert "Waiting" not in (ended.message + finished.message)


@pytest.mark.usefixtures("short_turns")
def test_a_job_with_nothing_waiting_keeps_its_worker(tmp_path, server) -> None:
    """A label job whose turn is long over, with no other job waiting, never hands back."""
    server.config.latency = 0.02
    settings = sqlite_settings(tmp_path)
    store = Store(settings.database_url)
    store.migrate()
    job_id = users_job(store, "alice", Endpoint(base_url=server.base_url, model="m"), slice(0, 60))
    queues = kinds.make_queues(settings, slice_s=0.0)
    queue.Keyring.put(job_id, KEY)
    consumer = run_consumer(queues.hueys[queue.CPU], workers=1)
    try:
        with Watch(store, job_id) as watch:
            queue.enqueue(queues, job_id, "label")
            job = wait_for(lambda: (j := job_of(store, job_id)).status not in records.ACTIVE and j)
    finally:
        consumer.stop(graceful=True)
    assert job.status == "done" and job.done == 60, job.message
    assert TURNS not in job.params and queue.RAN_S not in job.params
    statuses = [status for status, _, _ in watch.seen]
    assert "queued" not in statuses[statuses.index("running") :]
    assert server.stats()["requests"] == 60


def test_a_user_with_nothing_going_is_served_before_one_with_a_job_running(tmp_path, server):
    """The order of the waiting messages: user 1 has a job running and queues a second; user 2
    queues one later, and goes first. User 1's running job, its turn over, queues behind both;
    user 2's job, its turn over, queues behind user 1's second: the users take turns."""
    settings = sqlite_settings(tmp_path)
    store = Store(settings.database_url)
    store.migrate()
    endpoint = Endpoint(base_url=server.base_url, model="m")
    a1 = users_job(store, "alice", endpoint, slice(0, 10))
    a2 = users_job(store, "alice", endpoint, slice(10, 20))
    b = users_job(store, "bob", endpoint, slice(20, 30))
    cpu = kinds.make_queues(settings).hueys[queue.CPU]

    def order() -> list[int]:
        return [t.args[0] for t in cpu.pending()]

    queue.enqueue(cpu, a1)
    cpu.flush()  # a worker took it: it runs
    _set_status(store, a1, "running")
    queue.enqueue(cpu, a2)
    queue.enqueue(cpu, b)
    assert order() == [b, a2]  # bob has nothing going: before alice's second job
    assert queue.others_first(store, cpu, a1)  # a1's turn is over: someone goes first
    _set_status(store, a1, "queued")
    queue.enqueue(cpu, a1, turn_over=True)
    assert order() == [b, a2, a1]
    cpu.dequeue()  # b runs; its turn over, it queues again behind alice's waiting job
    _set_status(store, b, "running")
    assert queue.others_first(store, cpu, b)
    _set_status(store, b, "queued")
    queue.enqueue(cpu, b, turn_over=True)
    assert order() == [a2, b, a1]
    cpu.flush()
    assert not queue.others_first(store, cpu, b)  # nothing waits: it goes on


def _set_status(store: Store, job_id: int, status: str) -> None:
    with store.session() as s:
        s.get(Job, job_id).status = status


@pytest.mark.usefixtures("short_turns")
def test_a_job_waiting_its_turn_can_be_cancelled_and_a_lost_turn_is_queued_again(
    tmp_path, server
) -> None:
    """While user 1's job waits its turn (user 2's runs), its message is lost (queued again by
    ``requeue_lost``, which counts its wait from the hand-back) and it is cancelled: it ends
    at once, keeps its answers, and never runs again; user 2's job is not held up."""
    server.config.latency = 0.05
    settings = sqlite_settings(tmp_path)
    store = Store(settings.database_url)
    store.migrate()
    endpoint = Endpoint(base_url=server.base_url, model="m")
    big = users_job(store, "alice", endpoint, slice(0, 300), concurrency=2)
    other = users_job(store, "bob", endpoint, slice(300, 360), concurrency=1)  # about 3 s
    queues = kinds.make_queues(settings, slice_s=SLICE_S)
    cpu = queues.hueys[queue.CPU]
    for job_id in (big, other):
        queue.Keyring.put(job_id, KEY)
    consumer = run_consumer(cpu, workers=1)
    try:
        queue.enqueue(queues, big, "label")
        wait_for(lambda: job_of(store, big).done >= 10)
        queue.enqueue(queues, other, "label")
        waiting = wait_for(lambda: (j := job_of(store, big)).status == "queued" and j)
        assert waiting.message.startswith("Waiting its turn: ")
        bar = records.JobProgress.of(waiting.result).text(waiting.done, waiting.total)
        assert bar == f"{waiting.done:,} of {waiting.total:,} answers · waiting its turn"
        wait_for(lambda: job_of(store, other).status == "running")  # its message is taken
        done_then = waiting.done
        assert queue.requeue_lost(store, cpu, after_s=3600) == []  # waiting since the hand-back
        cpu.flush()  # its message is lost (and so is anything else waiting)
        assert queue.requeue_lost(store, cpu, after_s=0) == [big]
        with store.session() as s:  # a worker restarting now resumes the running job only
            assert records.resume_interrupted(s) == [other]
            s.rollback()  # (it does not restart here)
        with store.session() as s:
            user = projects.ensure_user(s, "alice")
            records.request_cancel(s, user, waiting.project_id, big)
        ended = job_of(store, big)
        finished = wait_for(lambda: (j := job_of(store, other)).status not in records.ACTIVE and j)
        wait_for(lambda: not cpu.pending())  # big's message came round and did nothing
    finally:
        consumer.stop(graceful=True)
    assert ended.status == "cancelled" and ended.message.startswith("Cancelled while waiting")
    assert job_of(store, big).status == "cancelled" and job_of(store, big).done == done_then
    assert finished.status == "done", finished.message
    assert set(server.stats()["per_text"].values()) == {1}  # nothing asked twice


def test_messages_left_in_an_earlier_fifo_redis_queue_are_moved_to_the_priority_queue(
    tmp_path, server
) -> None:
    """An instance upgraded with jobs waiting: their messages in the old Redis list (the FIFO
    ``RedisHuey`` of earlier versions) are moved into the priority queue when it is made."""
    import redis

    settings = redis_settings(tmp_path)
    store = Store(settings.database_url)
    store.migrate()
    job_id = users_job(store, "alice", Endpoint(base_url=server.base_url, model="m"), slice(0, 5))
    prefix = f"distill-test-{uuid.uuid4().hex[:8]}"
    maker = kinds.make_queues(sqlite_settings(tmp_path)).hueys[queue.CPU]  # the same message
    conn = redis.Redis.from_url(settings.redis_url)
    old_key = f"huey.redis.{prefix.replace('-', '')}cpu"  # where RedisHuey keeps its list
    conn.lpush(old_key, maker.serialize_task(maker.distill_run_job.s(job_id)))
    cpu = kinds.make_queues(settings, prefix).hueys[queue.CPU]
    try:
        assert [t.args[0] for t in cpu.pending()] == [job_id]
        assert not conn.exists(old_key)
    finally:
        cpu.storage.flush_all()


def test_a_turn_looks_at_the_queue_only_once_its_time_is_up_and_then_seldom() -> None:
    now, looks, waiting = [100.0], [], [False]

    def others() -> bool:
        looks.append(now[0])
        return waiting[0]

    turn = records.Turn(60.0, others, clock=lambda: now[0])
    turn.cover(3.0)  # a cheap turn start: 60 s stays
    now[0] = 159.0
    assert not turn.over() and looks == []
    now[0] = 160.0
    assert not turn.over() and looks == [160.0]  # nothing waits: it goes on
    now[0] = 161.0
    waiting[0] = True
    assert not turn.over() and looks == [160.0]  # looked a second ago
    now[0] = 160.0 + records.LOOK_EVERY_S
    assert turn.over() and turn.over() and len(looks) == 2
    slow = records.Turn(60.0, others, clock=lambda: now[0])
    slow.cover(20.0)  # a 100,000-text job's start and end: its turns last ten times that
    assert slow.slice_s == 20.0 * records.TURN_PER_FIXED_COST
