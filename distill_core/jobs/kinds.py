"""The job kinds: which function runs a job of each kind, and on which queue it waits. The one
table the queue is given; add a kind here (and its module beside this one), nowhere else."""

from __future__ import annotations

from distill_core.config import Settings
from distill_core.jobs import label, predict, queue, records, train
from distill_core.store import Store

#: kind → (runner, queue): labelling and the student's corpus pass on CPU workers, trainings on
#: GPU workers (``queue.CPU``, ``queue.GPU``).
KINDS: queue.Kinds = {
    "label": queue.Kind(label.run_label_job, queue.CPU),
    "train": queue.Kind(train.run_train_job, queue.GPU),
    "predict": queue.Kind(predict.run_predict_job, queue.CPU),
}
RUNNERS: queue.Runners = {name: kind.run for name, kind in KINDS.items()}


def make_queues(
    settings: Settings | None = None, prefix: str = "distill", slice_s: float = records.SLICE_S
) -> queue.JobQueues:
    """The CPU and GPU queues (``<prefix>-cpu``, ``<prefix>-gpu``) that the app submits to and
    the workers consume; a label job holds a worker for turns of ``slice_s`` seconds when other
    jobs wait."""
    return queue.make_queues(KINDS, settings, prefix, slice_s=slice_s)


def execute(store: Store, job_id: int, secret: str | None = None) -> None:
    """Run one job in this process (what a worker does with a queued job)."""
    queue.execute(store, job_id, secret, RUNNERS)
