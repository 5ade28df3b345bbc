"""The Fine-tune page's training-set counts, counted in the database, equal those of the
training set read row by row, for any floors and after the sample changes (SQLite and
PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from distill_core.store import LabelRunItem, Store
from distill_core.study import memo, runs, students, validation
from tests.fakes import demo_with_run, local_user


def _vary(store: Store, run_id: int) -> None:
    """Confidences and consistencies of every kind: missing, low, high."""
    with store.session() as s:
        items = runs.items(s, run_id)
        for k, item in enumerate(items):
            s.execute(
                update(LabelRunItem)
                .where(LabelRunItem.run_id == run_id, LabelRunItem.doc_id == item.doc_id)
                .values(
                    confidence=None if k % 7 == 0 else (k % 10) / 10,
                    consistency=None if k % 5 == 0 else (k % 4) / 3,
                )
            )


def _expected(s, pid: int, run_id: int, floors) -> students.TrainingCounts:
    ts = students.training_set(s, local_user(s), pid, run_id)
    return students.TrainingCounts(
        n_llm=ts.n_llm,
        excluded_test=ts.excluded_test,
        invalid=ts.invalid,
        n_available=len(ts.texts),
        kept=ts.kept_by(*floors),
    )


@pytest.mark.parametrize("floors", [(None, None), (0.5, None), (None, 0.6), (0.3, 0.5), (0, 1)])
def test_counts_equal_the_training_sets(store: Store, floors) -> None:
    memo.clear()
    pid, run_id = demo_with_run(store)
    _vary(store, run_id)
    with store.session() as s:
        got = students.training_counts(
            s, local_user(s), pid, run_id, min_confidence=floors[0], min_consistency=floors[1]
        )
        expected = _expected(s, pid, run_id, floors)
    assert got == expected
    assert got.excluded_test > 0 and got.invalid > 0
    if floors != (None, None):
        assert 0 < got.kept < got.n_available


def test_counts_follow_a_new_sample(store: Store) -> None:
    memo.clear()
    pid, run_id = demo_with_run(store)
    with store.session() as s:
        before = students.training_counts(s, local_user(s), pid, run_id)
        validation.draw_sample(s, local_user(s), pid, n=200, seed=3, test_share=0.5)
    with store.session() as s:
        after = students.training_counts(s, local_user(s), pid, run_id)
        expected = _expected(s, pid, run_id, (None, None))
    assert after == expected
    assert after.excluded_test != before.excluded_test
