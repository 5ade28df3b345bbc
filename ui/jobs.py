"""Jobs from a page: the queue and the local worker, starting a job in one call, and the live
panel that shows the project's latest job of a kind with Cancel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from distill_core.config import Settings
from distill_core.jobs import kinds, queue, records
from distill_core.keys import SECRET_ENV
from ui.context import Context, secret


@st.cache_resource
def _job_queue(url: str, home: str, redis_url: str | None):
    settings = Settings.from_env()
    supervisor = queue.Supervisor(settings, secrets=_worker_secrets)
    supervisor.watch()  # a local worker that dies is started again, and its job resumes
    return kinds.make_queues(settings), supervisor


def _worker_secrets() -> dict[str, str]:
    """The secrets the app sees (environment or secrets.toml) that the local worker needs: a
    server key kept only in secrets.toml reaches the worker as it reaches Test connection."""
    return {name: value for name in SECRET_ENV if (value := secret(name))}


def job_queue():
    """(the CPU and GPU job queues, supervisor of the local worker) for this install; one per
    process."""
    settings = Settings.from_env()
    return _job_queue(settings.database_url, str(settings.home), settings.redis_url)


def submit_job(ctx: Context, job_id: int, api_key: str | None = None) -> None:
    """Make sure a worker runs, then queue the job (the key goes to the worker in memory, and
    encrypted with the server secret for a restarted worker); if that fails the job is marked
    failed and ``queue.SubmitFailed`` says why in one sentence."""
    queues, supervisor = job_queue()
    queue.submit(
        ctx.store,
        job_id,
        settings=supervisor.settings,
        api_key=api_key,
        huey=queues,
        supervisor=supervisor,
    )


def job_panel(ctx: Context, kind: str, details=None) -> None:
    """Progress of the project's latest job of ``kind``, live while it runs, with Cancel.

    ``details(container, job)`` shows what is particular to the kind (the default: the LLM
    labelling's errors, tokens and cost).
    """

    job_queue()  # the supervisor's watch runs: a worker that died is started again

    def latest():
        found = ctx.act(records.latest_jobs, ctx.project_id, kind, limit=1)
        if found and found[0].status == "queued":  # its queue message may be lost (a restart)
            queue.requeue_lost(ctx.store, job_queue()[0])
        return found[0] if found else None

    first = latest()
    if first is None:
        return

    @st.fragment(run_every=1.0 if first.status in records.ACTIVE else None)
    def panel() -> None:
        job = latest()
        active = job.status in records.ACTIVE
        box = st.container(border=True)
        say = box.warning if job.status == records.FINISHED_WITH_ERRORS else box.markdown
        say(f"**Job {job.id}** ({job.status}): {job.message}")
        share = job.done / job.total if job.total else 0.0
        progress = records.JobProgress.of(job.result) if active else None  # phase, time left
        text = progress.text(job.done, job.total) if progress else None
        box.progress(min(1.0, share), text=text or f"{job.done:,} of {job.total:,} done")
        (details or _label_job_details)(box, job)
        if active:
            if box.button("Cancel", key=f"cancel_job_{job.id}", disabled=job.cancel_requested):
                ctx.act(records.request_cancel, ctx.project_id, job.id)
                st.rerun(scope="fragment")
            if job.cancel_requested:
                box.caption("Cancelling: what is done so far is kept.")
        elif first.status in records.ACTIVE:
            st.rerun()  # the job just ended: refresh the whole page to show its results

    panel()


def _label_job_details(box, job) -> None:
    cols = box.columns(4)
    cols[0].metric("Errors", f"{job.errors:,}")
    cols[1].metric("Prompt tokens", f"{job.prompt_tokens:,}")
    cols[2].metric("Completion tokens", f"{job.completion_tokens:,}")
    cols[3].metric("Cost", f"${job.cost_usd:,.4f}")


def start_job(
    ctx: Context,
    start: Callable[..., tuple[int, int]],
    *args: Any,
    api_key: str | None = None,
    **kwargs: Any,
) -> None:
    """Record a job with ``start(session, *args, **kwargs)`` (a ``jobs.<kind>.start_*``), queue
    it and rerun the page to show its panel; a problem the user can fix ends in one sentence."""
    try:
        job_id, _ = ctx.act(start, *args, **kwargs)
    except ValueError as exc:
        st.error(str(exc))
        return
    try:
        submit_job(ctx, job_id, api_key=api_key)
    except queue.SubmitFailed as exc:  # the job is marked failed with the same sentence
        st.error(str(exc))
        return
    st.rerun()
