"""Corpora: reading uploads faithfully (`readers`) and preparing them for a project
(`preparation`). Every problem a user can cause is a `CorpusError` with one sentence."""

from distill_core.corpus.preparation import (
    IdSuggestion,
    generate_ids,
    named_as_id,
    prepare_corpus,
    suggest_id_column,
    suggest_text_column,
    text_columns,
)
from distill_core.corpus.readers import (
    LONG_TEXT_CHARS,
    SUPPORTED_SUFFIXES,
    CorpusError,
    IngestReport,
    PreparedCorpus,
    Table,
    read_path,
    read_table,
)
from distill_core.values import id_text, is_blank

__all__ = [
    "LONG_TEXT_CHARS",
    "SUPPORTED_SUFFIXES",
    "CorpusError",
    "IdSuggestion",
    "IngestReport",
    "PreparedCorpus",
    "Table",
    "generate_ids",
    "id_text",
    "is_blank",
    "named_as_id",
    "prepare_corpus",
    "read_path",
    "read_table",
    "suggest_id_column",
    "suggest_text_column",
    "text_columns",
]
