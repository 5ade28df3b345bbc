"""Tests for distill_core.codebook: file format, validation, prompts, answers, diffs."""

from __future__ import annotations

import json

import pytest

from distill_core.codebook import (
    PLAIN_ANSWER_INSTRUCTION,
    STRUCTURED_ANSWER_INSTRUCTION,
    Change,
    Codebook,
    CodebookError,
    Example,
    Label,
    answer_schema,
    diff,
    diff_text,
    match_label,
    parse_answer,
    render_messages,
    render_text,
)

SAMPLE = {
    "name": "Policy topics",
    "instructions": "Assign the one topic that best fits the bill title.",
    "labels": [
        {"name": "health", "definition": "Health care, insurance, disease, drugs."},
        {"name": "economy", "definition": "Taxes, trade, jobs and inflation."},
        {"name": "other", "definition": ""},
    ],
    "examples": [
        {"text": "To amend the Public Health Service Act.", "label": "health"},
        {"text": "To reduce tariffs on imported steel.", "label": "economy"},
    ],
}


@pytest.fixture
def cb() -> Codebook:
    return Codebook.from_dict(SAMPLE)


def with_(base: dict, **changes) -> dict:
    data = json.loads(json.dumps(base))
    data.update(changes)
    return data


# --- file format -------------------------------------------------------------------------------


def test_from_dict_builds_records(cb: Codebook) -> None:
    assert cb.name == "Policy topics"
    assert cb.label_names == ["health", "economy", "other"]
    assert cb.labels[0] == Label("health", "Health care, insurance, disease, drugs.")
    assert cb.examples[1] == Example("To reduce tariffs on imported steel.", "economy")
    assert cb.problems() == []
    assert cb.validate() is cb


def test_dict_round_trip_keeps_file_format_and_key_order(cb: Codebook) -> None:
    data = cb.to_dict()
    assert data == SAMPLE
    assert list(data) == ["name", "instructions", "labels", "examples"]
    assert list(data["labels"][0]) == ["name", "definition"]
    assert list(data["examples"][0]) == ["text", "label"]
    assert Codebook.from_dict(data) == cb


def test_json_round_trip(cb: Codebook) -> None:
    text = cb.to_json()
    assert "\n  " in text  # indented for people
    assert Codebook.from_json(text) == cb
    assert Codebook.from_json(text.encode("utf-8")) == cb
    assert Codebook.from_json(cb.to_json(indent=None)) == cb


def test_json_keeps_non_ascii_readable_and_accepts_bom() -> None:
    data = with_(SAMPLE, name="Thèmes politiques — santé")
    cb = Codebook.from_dict(data)
    assert "Thèmes politiques — santé" in cb.to_json()
    assert Codebook.from_json(b"\xef\xbb\xbf" + cb.to_json().encode("utf-8")) == cb
    assert Codebook.from_json("\ufeff" + cb.to_json()) == cb


def test_from_dict_strips_whitespace_and_ignores_unknown_keys() -> None:
    data = with_(
        SAMPLE,
        name="  Policy topics \n",
        version=7,
        labels=[
            {"name": " health ", "definition": " Health. ", "color": "red"},
            {"name": "economy\t"},
        ],
        examples=[{"text": " A bill. ", "label": " health", "note": "x"}],
    )
    cb = Codebook.from_dict(data)
    assert cb.name == "Policy topics"
    assert cb.label_names == ["health", "economy"]
    assert cb.labels[0].definition == "Health."
    assert cb.labels[1].definition == ""
    assert cb.examples == (Example("A bill.", "health"),)


def test_from_dict_optional_fields_and_shorthands() -> None:
    cb = Codebook.from_dict({"name": "Stance", "labels": ["for", "against", {"name": 3}]})
    assert cb.instructions == ""
    assert cb.examples == ()
    assert cb.label_names == ["for", "against", "3"]


def test_codebook_accepts_lists_and_stays_hashable() -> None:
    cb = Codebook("x", labels=[Label("a"), Label("b")], examples=[Example("t", "a")])
    assert isinstance(cb.labels, tuple) and isinstance(cb.examples, tuple)
    assert hash(cb) == hash(
        Codebook("x", labels=(Label("a"), Label("b")), examples=(Example("t", "a"),))
    )


def test_from_dict_without_check_keeps_invalid_drafts() -> None:
    cb = Codebook.from_dict({"name": "", "labels": []}, check=False)
    assert cb.problems()  # still reports them
    with pytest.raises(CodebookError):
        cb.validate()


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [('{"name": "x",\n  "labels": [\n    {"name" "a"}]}', 3, 13), ("{", 1, 2), ("", 1, 1)],
)
def test_bad_json_names_line_and_column(text: str, line: int, column: int) -> None:
    with pytest.raises(CodebookError) as err:
        Codebook.from_json(text)
    assert str(err.value) == f"The codebook file is not valid JSON (line {line}, column {column})."


def test_not_utf8() -> None:
    with pytest.raises(CodebookError, match="not UTF-8"):
        Codebook.from_json(b'{"name": "\xff"}')


@pytest.mark.parametrize(
    ("doc", "kind"),
    [("[1, 2]", "a list"), ('"codebook"', "text"), ("3", "a number"), ("null", "null")],
)
def test_json_that_is_not_an_object(doc: str, kind: str) -> None:
    with pytest.raises(CodebookError) as err:
        Codebook.from_json(doc)
    assert "must be a JSON object" in str(err.value)
    assert f"not {kind}" in str(err.value)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"labels": "health, economy"}, '"labels" must be a list'),
        ({"labels": [{"name": "a"}, {"definition": "no name"}]}, 'Label 2 has no "name"'),
        ({"labels": [{"name": "a"}, 5]}, "Label 2 must be an object"),
        ({"labels": [{"name": "a"}, {"name": ["b"]}]}, "name of label 2 must be text"),
        (
            {"labels": [{"name": "a", "definition": 1}, {"name": "b"}]},
            "definition of label 1 must be text",
        ),
        ({"name": 12}, '"name" must be text, not a number'),
        ({"instructions": ["a"]}, '"instructions" must be text, not a list'),
        ({"examples": {"text": "t"}}, '"examples" must be a list'),
        ({"examples": ["t"]}, "Example 1 must be an object"),
        ({"examples": [{"text": "t"}]}, 'Example 1 has no "label"'),
        ({"examples": [{}]}, 'Example 1 has no "text" and no "label"'),
    ],
)
def test_wrong_shapes_raise_clear_errors(changes: dict, fragment: str) -> None:
    with pytest.raises(CodebookError) as err:
        Codebook.from_dict(with_(SAMPLE, **changes))
    assert fragment in str(err.value)
    assert "Traceback" not in str(err.value)


# --- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"name": "   "}, "The codebook needs a name"),
        ({"labels": []}, "has no labels"),
        ({"labels": [{"name": "health"}], "examples": []}, "A codebook needs at least two labels"),
        ({"labels": [{"name": "a"}, {"name": "  "}]}, "Label 2 has no name"),
        (
            {
                "labels": [{"name": "Health"}, {"name": "other"}, {"name": "health "}],
                "examples": [],
            },
            "'Health' and 'health' are duplicates",
        ),
        ({"labels": [{"name": "a b"}, {"name": "A  B"}]}, "duplicates"),
        (
            {"examples": [{"text": "x", "label": "health"}, {"text": "y", "label": "sports"}]},
            "Example 2 uses the label 'sports', which is not in the codebook",
        ),
        ({"examples": [{"text": "  ", "label": "health"}]}, "Example 1 has no text"),
        ({"examples": [{"text": "x", "label": ""}]}, "Example 1 has no label"),
        (
            {"labels": [{"name": "a"}, {"name": "b" * 101}]},
            "is 101 characters long, over the limit of 100",
        ),
        ({"labels": [{"name": "a"}, {"name": "b\nc"}]}, "line break"),
    ],
)
def test_each_validation_problem(changes: dict, fragment: str) -> None:
    data = with_(SAMPLE, **changes)
    with pytest.raises(CodebookError) as err:
        Codebook.from_dict(data)
    assert fragment in str(err.value)
    assert any(fragment.split("'")[0] in p for p in err.value.problems)
    # The same problem is reported by problems() on an unchecked codebook.
    assert any(fragment in p for p in Codebook.from_dict(data, check=False).problems())


def test_label_name_at_limit_is_fine() -> None:
    assert Codebook.from_dict(
        with_(SAMPLE, labels=[{"name": "a"}, {"name": "b" * 100}], examples=[])
    )


def test_example_label_case_mismatch_suggests_the_label() -> None:
    data = with_(SAMPLE, examples=[{"text": "x", "label": "Health"}])
    with pytest.raises(CodebookError, match=r"did you mean 'health'\?"):
        Codebook.from_dict(data)


def test_several_problems_are_joined_in_one_message() -> None:
    cb = Codebook("", labels=(Label("a"),), examples=(Example("", "a"),))
    problems = cb.problems()
    assert len(problems) == 3
    message = str(CodebookError(problems))
    assert message.count("; ") == 2
    assert message.startswith("The codebook needs a name; a codebook needs at least two labels")
    assert message.endswith("example 1 has no text.")


def test_empty_definitions_are_valid() -> None:
    cb = Codebook("x", labels=(Label("a"), Label("b", "")))
    assert cb.problems() == []


# --- fingerprint -----------------------------------------------------------------------------------


def test_fingerprint_is_stable_across_key_order_and_whitespace(cb: Codebook) -> None:
    reordered = {
        "examples": [{"label": e["label"], "text": e["text"]} for e in SAMPLE["examples"]],
        "labels": [
            {"definition": lab["definition"], "name": lab["name"]} for lab in SAMPLE["labels"]
        ],
        "instructions": SAMPLE["instructions"],
        "name": SAMPLE["name"],
    }
    compact = json.dumps(reordered, separators=(",", ":"))
    spaced = json.dumps(reordered, indent=8)
    fp = cb.fingerprint()
    assert len(fp) == 64 and int(fp, 16) >= 0
    assert Codebook.from_json(compact).fingerprint() == fp
    assert Codebook.from_json(spaced).fingerprint() == fp
    assert Codebook.from_json(cb.to_json()).fingerprint() == fp


def test_fingerprint_changes_with_content(cb: Codebook) -> None:
    fp = cb.fingerprint()
    changed = [
        with_(SAMPLE, name="Policy topics 2"),
        with_(SAMPLE, instructions="Pick one."),
        with_(SAMPLE, labels=[*SAMPLE["labels"], {"name": "defense"}]),
        with_(SAMPLE, labels=[SAMPLE["labels"][1], SAMPLE["labels"][0], SAMPLE["labels"][2]]),
        with_(SAMPLE, examples=SAMPLE["examples"][:1]),
    ]
    prints = {Codebook.from_dict(d).fingerprint() for d in changed}
    assert fp not in prints
    assert len(prints) == len(changed)


# --- prompts -----------------------------------------------------------------------------------


@pytest.mark.parametrize("structured", [True, False])
def test_render_messages_structure(cb: Codebook, structured: bool) -> None:
    text = "A bill to fund rural hospitals."
    messages = render_messages(cb, text, structured=structured)
    roles = [m["role"] for m in messages]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
    assert all(set(m) == {"role", "content"} for m in messages)

    system = messages[0]["content"]
    assert cb.name in system
    assert cb.instructions in system
    for label in cb.labels:
        assert label.name in system
        assert label.definition in system
    if structured:
        assert STRUCTURED_ANSWER_INSTRUCTION in system
        assert PLAIN_ANSWER_INSTRUCTION not in system
    else:
        assert PLAIN_ANSWER_INSTRUCTION in system
        assert STRUCTURED_ANSWER_INSTRUCTION not in system

    assert messages[-1]["content"] == f'Text:\n"""\n{text}\n"""'
    for example, user, assistant in zip(
        cb.examples, messages[1:-1:2], messages[2:-1:2], strict=True
    ):
        assert user["content"] == f'Text:\n"""\n{example.text}\n"""'
        if structured:
            assert assistant["content"] == json.dumps({"label": example.label})
            assert json.loads(assistant["content"]) == {"label": example.label}
        else:
            assert assistant["content"] == example.label


def test_render_messages_without_examples_and_instructions() -> None:
    cb = Codebook("Stance", labels=(Label("for"), Label("against")))
    messages = render_messages(cb, "We must act.")
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "Instructions" not in messages[0]["content"]
    assert "- for\n- against" in messages[0]["content"]


def test_render_messages_is_deterministic(cb: Codebook) -> None:
    assert render_messages(cb, "x") == render_messages(Codebook.from_json(cb.to_json()), "x")
    assert render_messages(cb, "x") != render_messages(cb, "y")


def test_answer_schema(cb: Codebook) -> None:
    spec = answer_schema(cb)
    assert spec["name"] == "label_answer"
    assert spec["strict"] is True
    schema = spec["schema"]
    assert schema["type"] == "object"
    assert schema["required"] == ["label"]
    assert schema["additionalProperties"] is False
    assert schema["properties"] == {"label": {"type": "string", "enum": cb.label_names}}
    assert json.loads(json.dumps(spec)) == spec  # plain JSON, ready for response_format


# --- answers ------------------------------------------------------------------------------------------

NAMES = ["health", "economy", "Foreign Affairs", "U.S."]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("health", "health"),
        ("Health", "health"),
        ("  HEALTH \n", "health"),
        ('"Health."', "health"),
        ("'economy'", "economy"),
        ("**economy**", "economy"),
        ("foreign   affairs", "Foreign Affairs"),
        ("Foreign\nAffairs.", "Foreign Affairs"),
        ("U.S.", "U.S."),
        ("u.s.", "U.S."),
        ("healthcare", None),
        ("health and economy", None),
        ("The label is health.", None),
        ("", None),
        ("   ", None),
        ('""', None),
    ],
)
def test_match_label(answer: str, expected: str | None) -> None:
    assert match_label(answer, NAMES) == expected


def test_match_label_prefers_exact_and_refuses_ambiguity() -> None:
    assert match_label("Health", ["health", "Health"]) == "Health"
    assert match_label("HEALTH", ["health", "Health"]) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"label": "health"}', "health"),
        ('{"label": "Economy"}', "economy"),
        ('  {"label": "health", "reason": "about hospitals"} ', "health"),
        ('```json\n{"label": "health"}\n```', "health"),
        ('{"label": "sports"}', None),
        ('{"label": 3}', None),
        ('{"category": "health"}', None),
        ('"health"', "health"),
        ("health", "health"),
        ("Economy.", "economy"),
        ("sports", None),
        ('{"label": "health"', None),
        ("[1]", None),
    ],
)
def test_parse_answer(raw: str, expected: str | None) -> None:
    assert parse_answer(raw, NAMES) == expected


def test_parse_answer_numeric_label_names() -> None:
    assert parse_answer("1", ["1", "2"]) == "1"
    assert parse_answer('{"label": "2"}', ["1", "2"]) == "2"


# --- diff -----------------------------------------------------------------------------------------


def test_diff_of_equal_codebooks_is_empty(cb: Codebook) -> None:
    assert diff(cb, cb) == []
    assert diff_text(cb, cb) == ""


def test_diff_detects_label_changes(cb: Codebook) -> None:
    new = Codebook.from_dict(
        with_(
            SAMPLE,
            labels=[
                {"name": "health", "definition": "Health care and public health."},
                {"name": "economy", "definition": "Taxes, trade, jobs and inflation."},
                {"name": "defense", "definition": "Military."},
            ],
            examples=SAMPLE["examples"],
        )
    )
    changes = diff(cb, new)
    assert Change("removed", "label 'other'", "", None) in changes
    assert Change("added", "label 'defense'", None, "Military.") in changes
    assert (
        Change(
            "changed",
            "label 'health'",
            "Health care, insurance, disease, drugs.",
            "Health care and public health.",
        )
        in changes
    )
    assert not any(c.field == "label 'economy'" for c in changes)
    assert len(changes) == 3


def test_diff_detects_name_instructions_and_order(cb: Codebook) -> None:
    new = Codebook.from_dict(
        with_(
            SAMPLE,
            name="Topics",
            instructions="Pick the main topic.",
            labels=[SAMPLE["labels"][1], SAMPLE["labels"][0], SAMPLE["labels"][2]],
        )
    )
    changes = diff(cb, new)
    assert Change("changed", "name", "Policy topics", "Topics") in changes
    assert (
        Change("changed", "instructions", SAMPLE["instructions"], "Pick the main topic.") in changes
    )
    assert (
        Change("changed", "label order", "health, economy, other", "economy, health, other")
        in changes
    )
    assert len(changes) == 3


def test_diff_detects_example_changes(cb: Codebook) -> None:
    first, second = SAMPLE["examples"]
    inserted = {"text": "Veterans' hospitals.", "label": "health"}
    new = Codebook.from_dict(with_(SAMPLE, examples=[inserted, first, second]))
    assert diff(cb, new) == [Change("added", "example 1", None, '"Veterans\' hospitals." → health')]

    removed = Codebook.from_dict(with_(SAMPLE, examples=[second]))
    assert diff(cb, removed) == [
        Change("removed", "example 1", '"To amend the Public Health Service Act." → health', None)
    ]

    relabelled = Codebook.from_dict(with_(SAMPLE, examples=[first, {**second, "label": "other"}]))
    (change,) = diff(cb, relabelled)
    assert change.kind == "changed" and change.field == "example 2"
    assert change.before.endswith("→ economy") and change.after.endswith("→ other")


def test_diff_text_shows_minus_and_plus_lines(cb: Codebook) -> None:
    new = Codebook.from_dict(
        with_(
            SAMPLE,
            instructions="Pick the main topic.",
            labels=[*SAMPLE["labels"][:2], {"name": "defense", "definition": "Military."}],
        )
    )
    text = diff_text(cb, new, old_title="version 1", new_title="version 2")
    lines = text.splitlines()
    assert lines[0] == "--- version 1"
    assert lines[1] == "+++ version 2"
    assert "-Assign the one topic that best fits the bill title." in lines
    assert "+Pick the main topic." in lines
    assert "-- **other**" in lines
    assert "+- **defense**: Military." in lines
    assert not any(line.startswith(("-", "+")) and "economy" in line for line in lines)


# --- readable text ------------------------------------------------------------------------------------


def test_render_text(cb: Codebook) -> None:
    text = render_text(cb)
    assert text.startswith("# Policy topics\n")
    assert "## Instructions\n\nAssign the one topic that best fits the bill title." in text
    assert "- **health**: Health care, insurance, disease, drugs." in text
    assert "- **other**\n" in text
    assert "1. **health**: To amend the Public Health Service Act." in text
    assert "2. **economy**: To reduce tariffs on imported steel." in text


def test_render_text_keeps_multiline_entries_under_their_bullet() -> None:
    cb = Codebook(
        "x",
        labels=(Label("a", "Line one.\nLine two."), Label("b")),
        examples=(Example("p\nq", "a"),),
    )
    text = render_text(cb)
    assert "- **a**: Line one.\n  Line two." in text
    assert "1. **a**: p\n   q" in text
    assert "## Examples" in text
    assert "## Examples" not in render_text(Codebook("x", labels=(Label("a"), Label("b"))))


def test_the_editor_asks_for_a_definition_of_every_named_label() -> None:
    cb = Codebook("T", labels=(Label("health", "Hospitals."), Label("economy"), Label("")))
    assert "Label 2 ('economy') has no definition." not in cb.problems()
    strict = cb.problems(definitions=True)
    assert "Label 2 ('economy') has no definition." in strict
    assert "Label 3 has no name." in strict
    assert not any("Label 1" in p for p in strict)


def test_with_labels_keeps_the_examples_whose_label_stays() -> None:
    cb = Codebook(
        "T",
        "Pick one.",
        labels=(Label("a", "A."), Label("b", "B.")),
        examples=(Example("x", "a"), Example("y", "b")),
    )
    new, dropped = cb.with_labels([Label("a", "Still A."), Label("c", "C.")])
    assert new.labels == (Label("a", "Still A."), Label("c", "C."))
    assert new.examples == (Example("x", "a"),) and dropped == 1
    assert (new.name, new.instructions) == ("T", "Pick one.")
