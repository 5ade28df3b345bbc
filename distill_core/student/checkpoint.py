"""Full fine-tuning resumes from its last completed epoch after its process was killed.

At the end of every epoch ``train()`` writes the model, the optimiser, the scheduler, the
gradient scaler, the random states, the history and the best epoch so far to one file beside
the output folder (``.<name>.checkpoint/state.pt``, written to a temporary name and renamed,
so a kill while writing leaves the previous epoch's file whole). A later ``train()`` into the
same output folder with the same settings, texts, labels and base model (the fingerprint)
continues from the epoch after it, with the same batches and dropout as an uninterrupted run;
a checkpoint with another fingerprint, or one that cannot be read, is removed and training
starts over. The checkpoint is removed when the model is saved, and when training is
cancelled or refused; it stays only when the process died.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: The file inside the checkpoint folder.
STATE_FILE = "state.pt"
#: The stored form's version (a checkpoint of another version is not used).
CHECKPOINT_VERSION = 1


def folder_for(out: Path) -> Path:
    """Where the checkpoint of a training into ``out`` lives: beside it, hidden."""
    out = Path(out)
    return out.parent / f".{out.name}.checkpoint"


def fingerprint(
    args: Mapping[str, Any],
    texts: Sequence[str],
    labels: Sequence[str],
    label_names: Sequence[str],
    base_model: str,
    max_length: int,
) -> str:
    """A hash of everything a resumed training must share with the one it continues."""
    h = hashlib.sha256()
    h.update(json.dumps(dict(args), sort_keys=True, default=str).encode())
    h.update(json.dumps([list(label_names), base_model, int(max_length)]).encode())
    for text, label in zip(texts, labels, strict=True):
        h.update(text.encode("utf-8", "replace"))
        h.update(b"\x00")
        h.update(str(label).encode("utf-8", "replace"))
        h.update(b"\x01")
    return h.hexdigest()


def save(folder: Path, state: dict[str, Any]) -> None:
    """Write ``state`` (tensors, numbers, strings, lists, dicts) as the checkpoint, whole."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f"{STATE_FILE}.partial"
    torch.save({**state, "version": CHECKPOINT_VERSION}, partial)
    os.replace(partial, folder / STATE_FILE)


def load(folder: Path, expected: str) -> dict[str, Any] | None:
    """The checkpoint's state when it exists and was written by a training with fingerprint
    ``expected``; otherwise None, and the folder is removed (nothing to resume from)."""
    import torch

    path = folder / STATE_FILE
    if not path.is_file():
        remove(folder)
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - a torn or foreign file: start over
        remove(folder)
        return None
    if (
        not isinstance(state, dict)
        or state.get("version") != CHECKPOINT_VERSION
        or state.get("fingerprint") != expected
    ):
        remove(folder)
        return None
    return state


def remove(folder: Path) -> None:
    """Delete a checkpoint folder (nothing when there is none)."""
    if Path(folder).exists():
        shutil.rmtree(folder, ignore_errors=True)
