"""Codebooks: the one document that is both the human coders' instructions and the LLM prompt.

A codebook is a name, free-text instructions, the labels (each with an optional definition) and
optional few-shot examples. This module is pure: it validates codebooks, reads and writes the
JSON file format, renders the exact chat messages sent to an LLM, maps its answers back onto
labels, and compares two versions. Storing versions is the store's job (it keeps ``to_dict()``).

The file format (keys in this order)::

    {"name": "Policy topics", "instructions": "Assign the one topic that best fits the bill title.",
     "labels": [{"name": "health", "definition": "Health care, insurance, disease, drugs ..."}],
     "examples": [{"text": "To amend the Public Health Service Act ...", "label": "health"}]}
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_CODEBOOK_NAME_LENGTH",
    "MAX_LABEL_NAME_LENGTH",
    "PLAIN_ANSWER_INSTRUCTION",
    "STRUCTURED_ANSWER_INSTRUCTION",
    "SYSTEM_PREAMBLE",
    "USER_TEMPLATE",
    "Change",
    "Codebook",
    "CodebookError",
    "Example",
    "Label",
    "answer_schema",
    "diff",
    "diff_text",
    "match_label",
    "parse_answer",
    "render_messages",
    "render_text",
]

MAX_LABEL_NAME_LENGTH = 100
"""Longest label name accepted, in characters (an LLM has to repeat the name verbatim)."""
MAX_CODEBOOK_NAME_LENGTH = 500
"""Longest codebook name accepted, in characters (the store keeps no more: a test checks)."""

SYSTEM_PREAMBLE = "You label texts for a research project by following the codebook below."
USER_TEMPLATE = 'Text:\n"""\n{text}\n"""'
"""The user turn for one text (few-shot example texts use it too); the text is inserted as is."""
STRUCTURED_ANSWER_INSTRUCTION = 'Answer with a JSON object {"label": <one of the label names>}.'
PLAIN_ANSWER_INSTRUCTION = (
    "Answer with the label name only, exactly as written above, and nothing else."
)
_ANSWER_SCHEMA_NAME = "label_answer"


class CodebookError(ValueError):
    """A codebook a user supplied is malformed or invalid.

    ``str(e)`` is one sentence (several problems are joined with '; ') that a user can act on;
    ``e.problems`` keeps the individual sentences for a list display.
    """

    def __init__(self, problems: str | Sequence[str]) -> None:
        self.problems: list[str] = [problems] if isinstance(problems, str) else list(problems)
        super().__init__(_join_sentences(self.problems))


def _join_sentences(sentences: Sequence[str]) -> str:
    """Join sentences into one: 'A is wrong; b is missing.' (later first letters lower-cased)."""
    parts: list[str] = []
    for i, sentence in enumerate(sentences):
        s = sentence.strip().rstrip(".")
        first_word = s.split(" ", 1)[0]
        if i and first_word[:1].isupper() and first_word[1:] == first_word[1:].lower():
            s = s[0].lower() + s[1:]
        parts.append(s)
    return "; ".join(parts) + "." if parts else ""


@dataclass(frozen=True)
class Label:
    """One category of the codebook; the definition (may be empty) tells coders and the LLM when it applies."""

    name: str
    definition: str = ""


@dataclass(frozen=True)
class Example:
    """A few-shot example: a text and the label it should get (shown to the LLM as a solved turn)."""

    text: str
    label: str


@dataclass(frozen=True)
class Codebook:
    """An immutable codebook; ``validate()`` checks it, ``to_dict``/``from_dict`` are the file format."""

    name: str
    instructions: str = ""
    labels: tuple[Label, ...] = ()
    examples: tuple[Example, ...] = ()

    def __post_init__(self) -> None:
        # Accept lists from callers but keep tuples so that codebooks stay hashable and comparable.
        object.__setattr__(self, "labels", tuple(self.labels))
        object.__setattr__(self, "examples", tuple(self.examples))

    @property
    def label_names(self) -> list[str]:
        """The label names in codebook order."""
        return [label.name for label in self.labels]

    def problems(self, *, definitions: bool = False) -> list[str]:
        """Every validation problem as a sentence a user can act on; ``[]`` when the codebook is valid.

        With ``definitions``, a named label without a definition is a problem too: the editor
        asks for one before saving (coders and the LLM decide by it), while a file may still
        hold bare names.
        """
        problems: list[str] = []
        if not self.name.strip():
            problems.append("The codebook needs a name.")
        elif len(self.name) > MAX_CODEBOOK_NAME_LENGTH:
            problems.append(
                f"The codebook's name ({_quote(_shorten(self.name))}) is {len(self.name):,} "
                f"characters long, over the limit of {MAX_CODEBOOK_NAME_LENGTH}."
            )

        if not self.labels:
            problems.append("The codebook has no labels: add at least two.")
        elif len(self.labels) == 1:
            problems.append(
                "A codebook needs at least two labels, but this one has only "
                f"{_quote(self.labels[0].name)}."
            )

        groups: dict[str, list[str]] = {}
        for i, label in enumerate(self.labels, start=1):
            name = label.name.strip()
            if not name:
                problems.append(f"Label {i} has no name.")
                continue
            if len(name) > MAX_LABEL_NAME_LENGTH:
                problems.append(
                    f"The name of label {i} ({_quote(_shorten(name))}) is {len(name)} characters "
                    f"long, over the limit of {MAX_LABEL_NAME_LENGTH}."
                )
            if "\n" in name or "\r" in name:
                problems.append(
                    f"The name of label {i} ({_quote(_shorten(name))}) has a line break."
                )
            if definitions and not label.definition.strip():
                problems.append(f"Label {i} ({_quote(_shorten(name))}) has no definition.")
            groups.setdefault(_label_key(name), []).append(label.name)
        for names in groups.values():
            if len(names) > 1:
                problems.append(
                    f"The label names {_quote_list(names)} are duplicates "
                    "(names must differ in more than case or spacing)."
                )

        exact = set(self.label_names)
        by_key = {_label_key(n): n for n in self.label_names if n.strip()}
        for i, example in enumerate(self.examples, start=1):
            if not example.text.strip():
                problems.append(f"Example {i} has no text.")
            if not example.label.strip():
                problems.append(f"Example {i} has no label.")
            elif example.label not in exact:
                hint = by_key.get(_label_key(example.label))
                suggestion = f" (did you mean {_quote(hint)}?)" if hint is not None else ""
                problems.append(
                    f"Example {i} uses the label {_quote(example.label)}, which is not in the "
                    f"codebook{suggestion}."
                )
        return problems

    def with_labels(self, labels: Sequence[Label]) -> tuple[Codebook, int]:
        """This codebook with ``labels`` instead of its own (a label list imported in bulk),
        and how many of its examples were left out because their label is not among them."""
        names = {label.name for label in labels}
        kept = tuple(ex for ex in self.examples if ex.label in names)
        return (
            Codebook(self.name, self.instructions, tuple(labels), kept),
            len(self.examples) - len(kept),
        )

    def validate(self) -> Codebook:
        """Return ``self`` if valid; otherwise raise ``CodebookError`` naming every problem."""
        problems = self.problems()
        if problems:
            raise CodebookError(problems)
        return self

    def to_dict(self) -> dict[str, Any]:
        """The file format: ``{"name", "instructions", "labels": [...], "examples": [...]}``."""
        return {
            "name": self.name,
            "instructions": self.instructions,
            "labels": [{"name": lab.name, "definition": lab.definition} for lab in self.labels],
            "examples": [{"text": ex.text, "label": ex.label} for ex in self.examples],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The codebook file as JSON text (UTF-8 characters kept readable, not escaped)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Any, *, check: bool = True) -> Codebook:
        """Build a codebook from the file format, stripping surrounding whitespace of every field.

        Unknown keys are ignored; wrong shapes raise ``CodebookError``; with ``check`` (the
        default) the result is also validated, so a returned codebook is ready to use.
        """
        if not isinstance(data, dict):
            raise CodebookError(
                'The codebook must be a JSON object with "name", "instructions", "labels" and '
                f'"examples", not {_kind(data)}.'
            )
        problems: list[str] = []
        name = _text_field(data.get("name"), 'The codebook "name"', problems)
        instructions = _text_field(
            data.get("instructions"), 'The codebook "instructions"', problems
        )

        labels: list[Label] = []
        raw_labels = data.get("labels")
        if raw_labels is not None and not isinstance(raw_labels, list):
            problems.append(
                'The codebook "labels" must be a list of objects with "name" and "definition", '
                f"not {_kind(raw_labels)}."
            )
        for i, item in enumerate(raw_labels if isinstance(raw_labels, list) else [], start=1):
            if isinstance(item, str):  # shorthand: a bare label name
                labels.append(Label(item.strip()))
                continue
            if not isinstance(item, dict):
                problems.append(
                    f'Label {i} must be an object with "name" and "definition", not {_kind(item)}.'
                )
                continue
            if item.get("name") is None:
                problems.append(f'Label {i} has no "name".')
                continue
            label_name = _text_field(item["name"], f"The name of label {i}", problems, numbers=True)
            definition = _text_field(
                item.get("definition"), f"The definition of label {i}", problems
            )
            labels.append(Label(label_name, definition))

        examples: list[Example] = []
        raw_examples = data.get("examples")
        if raw_examples is not None and not isinstance(raw_examples, list):
            problems.append(
                'The codebook "examples" must be a list of objects with "text" and "label", '
                f"not {_kind(raw_examples)}."
            )
        for i, item in enumerate(raw_examples if isinstance(raw_examples, list) else [], start=1):
            if not isinstance(item, dict):
                problems.append(
                    f'Example {i} must be an object with "text" and "label", not {_kind(item)}.'
                )
                continue
            missing = [key for key in ("text", "label") if item.get(key) is None]
            if missing:
                problems.append(
                    f"Example {i} has no " + " and no ".join(f'"{k}"' for k in missing) + "."
                )
                continue
            text = _text_field(item["text"], f"The text of example {i}", problems)
            label = _text_field(item["label"], f"The label of example {i}", problems, numbers=True)
            examples.append(Example(text, label))

        if problems:
            raise CodebookError(problems)
        codebook = cls(name, instructions, tuple(labels), tuple(examples))
        return codebook.validate() if check else codebook

    @classmethod
    def from_json(cls, text: str | bytes, *, check: bool = True) -> Codebook:
        """Read a codebook file (UTF-8, with or without a byte-order mark); see ``from_dict``."""
        if isinstance(text, bytes | bytearray):
            try:
                text = bytes(text).decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise CodebookError("The codebook file is not UTF-8 text.") from exc
        text = text.removeprefix("\ufeff")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CodebookError(
                f"The codebook file is not valid JSON (line {exc.lineno}, column {exc.colno})."
            ) from exc
        return cls.from_dict(data, check=check)

    def fingerprint(self) -> str:
        """SHA-256 (hex) of the canonical JSON (sorted keys, no whitespace): same content, same id."""
        canonical = json.dumps(
            self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# --- from_dict helpers --------------------------------------------------------------------------


def _text_field(value: Any, what: str, problems: list[str], *, numbers: bool = False) -> str:
    """A stripped string field; ``None`` is empty; integers become text where ``numbers``."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if numbers and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    problems.append(f"{what} must be text, not {_kind(value)}.")
    return ""


def _kind(value: Any) -> str:
    """How a JSON value's type reads in an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _quote(name: str) -> str:
    return f"'{name}'"


def _quote_list(names: Sequence[str]) -> str:
    quoted = [_quote(n) for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _shorten(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# --- prompts and answers --------------------------------------------------------------------------


def render_messages(
    codebook: Codebook, text: str, *, structured: bool = True
) -> list[dict[str, str]]:
    """The exact chat messages sent to the LLM to label one ``text``.

    Order: one system message, then a (user, assistant) pair per few-shot example, then the
    user message with ``text``. The system message is ``SYSTEM_PREAMBLE``, the codebook name,
    its instructions, the labels as ``- name: definition`` lines, and the answer format:
    ``STRUCTURED_ANSWER_INSTRUCTION`` (JSON, for ``response_format``) when ``structured``,
    else ``PLAIN_ANSWER_INSTRUCTION``. Every user turn is ``USER_TEMPLATE`` —
    ``'Text:\\n\"\"\"\\n{text}\\n\"\"\"'`` with the text as is; an example's assistant turn is
    ``{"label": "x"}`` when ``structured``, else the bare label name. Deterministic, so the
    messages can key an LLM cache.
    """
    messages = [{"role": "system", "content": _system_prompt(codebook, structured=structured)}]
    for example in codebook.examples:
        messages.append({"role": "user", "content": USER_TEMPLATE.format(text=example.text)})
        answer = (
            json.dumps({"label": example.label}, ensure_ascii=False)
            if structured
            else example.label
        )
        messages.append({"role": "assistant", "content": answer})
    messages.append({"role": "user", "content": USER_TEMPLATE.format(text=text)})
    return messages


def _system_prompt(codebook: Codebook, *, structured: bool) -> str:
    sections = [SYSTEM_PREAMBLE, f"Codebook: {codebook.name}"]
    if codebook.instructions.strip():
        sections.append("Instructions:\n" + codebook.instructions.strip())
    label_lines = []
    for label in codebook.labels:
        definition = _indent_continuation(label.definition.strip(), "  ")
        label_lines.append(f"- {label.name}: {definition}" if definition else f"- {label.name}")
    sections.append("Labels:\n" + "\n".join(label_lines))
    answer = STRUCTURED_ANSWER_INSTRUCTION if structured else PLAIN_ANSWER_INSTRUCTION
    sections.append("Choose exactly one label. " + answer)
    return "\n\n".join(sections)


def _indent_continuation(text: str, prefix: str) -> str:
    """Indent every line but the first, so a multi-line entry stays under its bullet."""
    lines = text.splitlines()
    return "\n".join(lines[:1] + [prefix + line if line.strip() else "" for line in lines[1:]])


def answer_schema(codebook: Codebook) -> dict[str, Any]:
    """The ``json_schema`` for OpenAI structured outputs: ``{"label": <one of the label names>}``.

    Use as ``response_format={"type": "json_schema", "json_schema": answer_schema(cb)}``.
    """
    return {
        "name": _ANSWER_SCHEMA_NAME,
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"label": {"type": "string", "enum": list(codebook.label_names)}},
            "required": ["label"],
            "additionalProperties": False,
        },
    }


_WRAPPERS = "\"'`*“”‘’«»"
_WHITESPACE = re.compile(r"\s+")


def _answer_key(text: str) -> str:
    """Case-, spacing- and wrapping-insensitive form: strip quotes, asterisks and a final period."""
    previous = None
    while previous != text:
        previous = text
        text = text.strip().strip(_WRAPPERS).strip()
        text = text.removesuffix(".")
    return _WHITESPACE.sub(" ", text).casefold()


def _label_key(name: str) -> str:
    """Names that collide under this key are duplicates: case and spacing do not count."""
    return _WHITESPACE.sub(" ", name.strip()).casefold()


def match_label(answer: str, label_names: Sequence[str]) -> str | None:
    """Map a plain-text answer onto a label name, or ``None``.

    An exact match wins; otherwise the answer and the names are compared ignoring case, runs of
    whitespace, surrounding quotes/asterisks and a trailing period (``'"Health."'`` → ``health``).
    There is no fuzzy guessing: ``"healthcare"`` or ``"health and economy"`` give ``None``, as
    does an answer that fits more than one name.
    """
    if not isinstance(answer, str):
        return None
    if answer in label_names:
        return answer
    key = _answer_key(answer)
    if not key:
        return None
    hits = {name for name in label_names if _answer_key(name) == key}
    return hits.pop() if len(hits) == 1 else None


_FENCE = re.compile(r"^```[A-Za-z]*\s*\n?(.*?)\n?```$", re.DOTALL)


def parse_answer(raw: str, label_names: Sequence[str]) -> str | None:
    """Map a structured answer (a JSON object with ``"label"``) onto a label name, or ``None``.

    A code fence around the JSON is tolerated. If ``raw`` is not a JSON object, it is treated
    as a plain-text answer (``match_label``). ``None`` when the answer is not a codebook label.
    """
    if not isinstance(raw, str):
        return None
    body = raw.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, RecursionError):
        return match_label(raw, label_names)
    if isinstance(data, dict):
        value = data.get("label")
        return match_label(value, label_names) if isinstance(value, str) else None
    if isinstance(data, str):
        return match_label(data, label_names)
    return match_label(body, label_names)


# --- versions: diff and readable text -------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One difference between two codebook versions.

    ``kind`` is "added", "removed" or "changed"; ``field`` names what changed ("name",
    "instructions", "label 'health'", "label order", "example 3"); ``before``/``after`` are
    readable values (``None`` for the side where the thing does not exist).
    """

    kind: str
    field: str
    before: str | None
    after: str | None


def _example_text(example: Example) -> str:
    return f'"{example.text}" → {example.label}'


def diff(old: Codebook, new: Codebook) -> list[Change]:
    """Structured differences from ``old`` to ``new``; ``[]`` when the content is the same.

    Labels are matched by name (a renamed label shows as removed + added, its definition as
    before/after); a different order of the shared labels is a "label order" change. Examples
    are aligned by content (difflib), so inserting one does not mark every later one changed;
    an example is numbered by its position in ``new`` (in ``old`` when removed), from 1.
    """
    changes: list[Change] = []
    if old.name != new.name:
        changes.append(Change("changed", "name", old.name, new.name))
    if old.instructions != new.instructions:
        changes.append(Change("changed", "instructions", old.instructions, new.instructions))

    old_labels = {lab.name: lab for lab in old.labels}
    new_labels = {lab.name: lab for lab in new.labels}
    for lab in old.labels:
        if lab.name not in new_labels:
            changes.append(Change("removed", f"label {_quote(lab.name)}", lab.definition, None))
    for lab in new.labels:
        if lab.name not in old_labels:
            changes.append(Change("added", f"label {_quote(lab.name)}", None, lab.definition))
        elif old_labels[lab.name].definition != lab.definition:
            before = old_labels[lab.name].definition
            changes.append(Change("changed", f"label {_quote(lab.name)}", before, lab.definition))
    old_order = [n for n in old.label_names if n in new_labels]
    new_order = [n for n in new.label_names if n in old_labels]
    if old_order != new_order:
        changes.append(Change("changed", "label order", ", ".join(old_order), ", ".join(new_order)))

    matcher = difflib.SequenceMatcher(a=old.examples, b=new.examples, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        paired = min(i2 - i1, j2 - j1) if tag == "replace" else 0
        for k in range(paired):
            before, after = old.examples[i1 + k], new.examples[j1 + k]
            changes.append(
                Change(
                    "changed", f"example {j1 + k + 1}", _example_text(before), _example_text(after)
                )
            )
        for i in range(i1 + paired, i2):
            changes.append(
                Change("removed", f"example {i + 1}", _example_text(old.examples[i]), None)
            )
        for j in range(j1 + paired, j2):
            changes.append(
                Change("added", f"example {j + 1}", None, _example_text(new.examples[j]))
            )
    return changes


def render_text(codebook: Codebook) -> str:
    """The codebook as readable Markdown for people: the human coders' instructions.

    Sections: a title, "Instructions", "Labels" (one ``- **name**: definition`` bullet each) and
    "Examples" (numbered). One line per label and example keeps ``diff_text`` readable.
    """
    parts = [f"# {codebook.name.strip() or 'Untitled codebook'}"]
    if codebook.instructions.strip():
        parts.append("## Instructions\n\n" + codebook.instructions.strip())
    label_lines = []
    for label in codebook.labels:
        definition = _indent_continuation(label.definition.strip(), "  ")
        bullet = f"- **{label.name}**"
        label_lines.append(f"{bullet}: {definition}" if definition else bullet)
    parts.append("## Labels\n\n" + ("\n".join(label_lines) if label_lines else "(none)"))
    if codebook.examples:
        example_lines = []
        for i, example in enumerate(codebook.examples, start=1):
            prefix = f"{i}. "
            text = _indent_continuation(example.text.strip(), " " * len(prefix))
            example_lines.append(f"{prefix}**{example.label}**: {text}")
        parts.append("## Examples\n\n" + "\n".join(example_lines))
    return "\n\n".join(parts) + "\n"


def diff_text(
    old: Codebook, new: Codebook, *, old_title: str = "before", new_title: str = "after"
) -> str:
    """A unified diff (``-``/``+`` lines) of ``render_text`` of both versions; ``""`` if equal."""
    lines = difflib.unified_diff(
        render_text(old).splitlines(),
        render_text(new).splitlines(),
        fromfile=old_title,
        tofile=new_title,
        lineterm="",
    )
    return "\n".join(lines)
