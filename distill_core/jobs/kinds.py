"""The job kinds: which function runs a job of each kind. The one table the queue is given;
add a kind here (and its module beside this one), nowhere else."""

from __future__ import annotations

from distill_core.config import Settings
from distill_core.jobs import label, predict, queue, train
from distill_core.store import Store

RUNNERS: queue.Runners = {
    "label": label.run_label_job,
    "train": train.run_train_job,
    "predict": predict.run_predict_job,
}


def make_huey(settings: Settings | None = None, name: str = "distill"):
    """The huey queue whose task runs every kind of job."""
    return queue.make_huey(RUNNERS, settings, name)


def execute(store: Store, job_id: int, secret: str | None = None) -> None:
    """Run one job in this process (what a worker does with a queued job)."""
    queue.execute(store, job_id, secret, RUNNERS)
