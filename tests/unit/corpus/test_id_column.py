"""Choosing the id column of an upload: a column named as an id whose values can be ids, else
one unique in every row by its values, else generated ids; always with the sentence why."""

from __future__ import annotations

import pandas as pd
import pytest

from distill_core.corpus import suggest_id_column

TEXTS = ["Taxes go up again", "New hospital opens", "Schools close early"]


@pytest.mark.parametrize(
    "name", ["id", "ID", "Id", "doc_id", "DOC_ID", "Tweet ID", "tweet-id", "docId", "uuid", "key"]
)
def test_a_column_named_as_an_id_is_picked_and_said_so(name):
    frame = pd.DataFrame({"text": TEXTS, "n": [5, 6, 7], name: ["a", "b", "c"]})
    found = suggest_id_column(frame, "text")
    assert found.column == name
    assert found.sentence == f"Ids from “{name}”: it is named as an id and unique in every row."


@pytest.mark.parametrize("name", ["valid", "paid", "idea", "android", "kid"])
def test_a_name_merely_ending_in_id_is_not_an_id_name(name):
    frame = pd.DataFrame({"text": TEXTS, name: ["a b", "c d", "e f"]})  # not ids by value either
    assert suggest_id_column(frame, "text").column is None


def test_a_column_unique_in_every_row_is_picked_by_its_values():
    frame = pd.DataFrame({"lang": ["en", "en", "de"], "text": TEXTS, "ref": ["x1", "x2", "x3"]})
    found = suggest_id_column(frame, "text")
    assert found.column == "ref"
    assert found.sentence == "Ids from “ref”: unique in every row."
    frame = pd.DataFrame({"text": TEXTS, "number": [10, 20, 30]})
    assert suggest_id_column(frame, "text").column == "number"


@pytest.mark.parametrize(
    "values",
    [
        ["a b", "c d", "e f"],  # words, not tokens
        [1.5, 2.5, 3.5],  # measurements
        ["x1", "x1", "x3"],  # repeated
        ["x1", None, "x3"],  # missing
        ["x1", "  ", "x3"],  # blank
    ],
)
def test_columns_that_are_not_plainly_ids_are_not_picked(values):
    frame = pd.DataFrame({"text": TEXTS, "other": values})
    found = suggest_id_column(frame, "text")
    assert found.column is None
    assert found.sentence == (
        "Ids are generated from the texts (the same on every upload): no column is unique in "
        "every row."
    )


def test_the_text_column_is_never_the_id_column():
    frame = pd.DataFrame({"id": TEXTS})
    assert suggest_id_column(frame, "id").column is None


def test_a_named_id_column_that_cannot_be_ids_is_said_so():
    frame = pd.DataFrame({"text": TEXTS, "doc_id": ["a", "a", "b"], "row": [1, 2, 3]})
    found = suggest_id_column(frame, "text")
    assert found.column == "row"
    assert found.sentence == "Ids from “row”: unique in every row (“doc_id” has repeated values)."
    frame = pd.DataFrame({"text": TEXTS, "doc_id": ["a", None, "b"]})
    found = suggest_id_column(frame, "text")
    assert found.column is None
    assert "“doc_id” has empty values and no other column is unique" in found.sentence


def test_the_named_column_wins_over_an_earlier_unique_one():
    frame = pd.DataFrame({"row": [1, 2, 3], "text": TEXTS, "Doc ID": ["d1", "d2", "d3"]})
    assert suggest_id_column(frame, "text").column == "Doc ID"
