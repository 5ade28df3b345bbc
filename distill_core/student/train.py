"""Fine-tune a small transformer (the "student") on LLM-generated labels: knowledge
distillation as in Pangakis & Wolken (2024). A plain PyTorch loop (AdamW, linear warm-up and
decay, dynamic padding, length-grouped batches, early stopping on validation macro-F1) that
writes a folder loadable with ``AutoModelForSequenceClassification.from_pretrained``.

torch and transformers are imported inside functions so that importing this module is cheap.
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from distill_core.student import checkpoint
from distill_core.student.args import TrainingArgs, TrainingCancelled, TrainingError
from distill_core.student.card import METADATA_FILE, ModelMeta, model_card
from distill_core.student.recipes import RecipeChoice
from distill_core.student.threads import CpuProbe, ThreadChoice, device_threads

#: Bounds of the automatic max_length (tokens): see :func:`choose_max_length`.
AUTO_MAX_LENGTH_MIN = 32
AUTO_MAX_LENGTH_CAP_CPU = 256
AUTO_MAX_LENGTH_CAP_CUDA = 512
#: Fewest usable rows (after filters) that training accepts.
MIN_EXAMPLES = 10

R = TypeVar("R")


@dataclass
class TrainProgress:
    """A progress report: sent at most every half second, and at each epoch's end."""

    step: int
    total_steps: int
    epoch: int
    loss: float | None
    val_macro_f1: float | None
    message: str


@dataclass
class TrainResult:
    """What a finished run produced; ``metadata`` is what ``distill.json`` holds;
    ``val_macro_f1`` is NaN when val_share left no validation rows."""

    output_dir: Path
    labels: list[str]
    n_train: int
    n_val: int
    best_epoch: int
    val_macro_f1: float
    history: list[dict] = field(default_factory=list)
    train_seconds: float = 0.0
    device: str = "cpu"
    metadata: ModelMeta | None = None

    @property
    def val_accuracy(self) -> float | None:
        """The validation accuracy of the kept (best) epoch; None without validation rows."""
        best = next((h for h in self.history if h["epoch"] == self.best_epoch), {})
        return best.get("val_accuracy")


def device() -> str:
    """ "cuda" when a CUDA GPU is usable, else "cpu"."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# --------------------------------------------------------------------------- data preparation


@dataclass
class _Prepared:
    texts: list[str]
    labels: list[str]
    label_names: list[str]
    filters: dict[str, Any]
    rows: list[int] = field(default_factory=list)  # the input rows kept, in order


def _prepare(
    texts: Sequence[str],
    labels: Sequence[str],
    args: TrainingArgs,
    label_names: Sequence[str] | None,
    confidences: Sequence[float | None] | None,
    consistencies: Sequence[float | None] | None,
) -> _Prepared:
    """Drop unlabelled rows and rows under the confidence/consistency floors; check what is left."""
    if len(texts) != len(labels):
        raise TrainingError(f"There are {len(texts)} texts but {len(labels)} labels.")
    for name, values in (("confidences", confidences), ("consistencies", consistencies)):
        if values is not None and len(values) != len(texts):
            raise TrainingError(f"There are {len(texts)} texts but {len(values)} {name}.")
    if args.min_confidence is not None and confidences is None:
        raise TrainingError("A minimum confidence was set but no confidences were given.")
    if args.min_consistency is not None and consistencies is None:
        raise TrainingError("A minimum consistency was set but no consistencies were given.")

    filters: dict[str, Any] = {
        "n_input": len(texts),
        "dropped_no_label": 0,
        "min_confidence": args.min_confidence,
        "dropped_low_confidence": 0,
        "kept_missing_confidence": 0,
        "min_consistency": args.min_consistency,
        "dropped_low_consistency": 0,
        "kept_missing_consistency": 0,
    }
    kept_texts: list[str] = []
    kept_labels: list[str] = []
    kept_rows: list[int] = []
    for i, (text, label) in enumerate(zip(texts, labels, strict=True)):
        label = "" if label is None or (isinstance(label, float) and math.isnan(label)) else label
        label = str(label).strip()
        if not label:
            filters["dropped_no_label"] += 1
            continue
        if args.min_confidence is not None:
            c = confidences[i]  # type: ignore[index]
            if _missing(c):
                filters["kept_missing_confidence"] += 1
            elif below_floor(c, args.min_confidence):
                filters["dropped_low_confidence"] += 1
                continue
        if args.min_consistency is not None:
            c = consistencies[i]  # type: ignore[index]
            if _missing(c):
                filters["kept_missing_consistency"] += 1
            elif below_floor(c, args.min_consistency):
                filters["dropped_low_consistency"] += 1
                continue
        kept_texts.append("" if text is None else str(text))
        kept_labels.append(label)
        kept_rows.append(i)
    filters["n_kept"] = len(kept_texts)

    present = sorted(set(kept_labels))
    if label_names is not None:
        names = [str(n) for n in label_names]
        if len(set(names)) != len(names):
            raise TrainingError("The list of label names contains duplicates.")
        unknown = sorted(set(present) - set(names))
        if unknown:
            raise TrainingError(f"Labels not among the label names: {', '.join(unknown[:5])}.")
    else:
        names = present
    if len(kept_texts) < MIN_EXAMPLES:
        raise TrainingError(
            f"Only {len(kept_texts)} labelled examples are left after filtering; "
            f"training needs at least {MIN_EXAMPLES}."
        )
    if len(present) < 2:
        raise TrainingError(
            f"The training labels contain {len(present)} class after filtering; "
            "training needs at least 2."
        )
    return _Prepared(kept_texts, kept_labels, names, filters, kept_rows)


def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def below_floor(value: float | None, floor: float | None) -> bool:
    """Whether a row falls under a confidence or consistency floor. A row without a value (an
    endpoint that gives no token probabilities) is kept: the floor cannot judge it."""
    return floor is not None and not _missing(value) and value < floor


def stratified_split(
    labels: Sequence[int], val_share: float, seed: int
) -> tuple[list[int], list[int]]:
    """Seeded stratified split into (train, val) row indices: each class gives
    round(n_c * val_share) rows to validation, always leaving at least one in training."""
    rng = random.Random(seed)
    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(y, []).append(i)
    train_idx: list[int] = []
    val_idx: list[int] = []
    for y in sorted(by_class):
        rows = by_class[y][:]
        rng.shuffle(rows)
        n_val = min(len(rows) - 1, int(math.floor(len(rows) * val_share + 0.5)))
        n_val = max(0, n_val)
        val_idx.extend(rows[:n_val])
        train_idx.extend(rows[n_val:])
    return sorted(train_idx), sorted(val_idx)


def choose_max_length(token_lengths: Sequence[int], model_limit: int, on_cuda: bool) -> int:
    """The 95th percentile of the token lengths (with special tokens), rounded up to a multiple
    of 8, within [32, 256] on CPU or [32, 512] on CUDA, and never above the model's limit."""
    if not token_lengths:
        return AUTO_MAX_LENGTH_MIN
    ordered = sorted(token_lengths)
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
    rounded = int(math.ceil(p95 / 8) * 8)
    cap = AUTO_MAX_LENGTH_CAP_CUDA if on_cuda else AUTO_MAX_LENGTH_CAP_CPU
    return max(1, min(max(AUTO_MAX_LENGTH_MIN, rounded), cap, model_limit))


def length_grouped_batches(
    lengths: Sequence[int], batch_size: int, rng: random.Random, bucket_batches: int = 50
) -> list[list[int]]:
    """Shuffle rows, cut them into buckets of ``bucket_batches`` batches, sort each bucket by
    length (less padding), cut into batches and shuffle the batches: seeded by ``rng``."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    bucket = max(1, batch_size * bucket_batches)
    batches: list[list[int]] = []
    for start in range(0, len(order), bucket):
        chunk = sorted(order[start : start + bucket], key=lambda i: lengths[i], reverse=True)
        batches.extend(chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def pad_batch(
    encoded: Sequence[Sequence[int]], pad_id: int, padding_side: str = "right"
) -> tuple[Any, Any]:
    """(input_ids, attention_mask) tensors for a list of token-id lists, padded to the longest."""
    import torch

    width = max(len(ids) for ids in encoded)
    ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, seq in enumerate(encoded):
        n = len(seq)
        if padding_side == "left":
            ids[row, width - n :] = torch.tensor(seq, dtype=torch.long)
            mask[row, width - n :] = 1
        else:
            ids[row, :n] = torch.tensor(seq, dtype=torch.long)
            mask[row, :n] = 1
    return ids, mask


# --------------------------------------------------------------------------- model loading


def _looks_like_path(name: str) -> bool:
    """A folder path rather than a hub id ("org/name" or "name")."""
    return name.startswith(("/", "./", "../", "~", ".")) or "\\" in name or name.count("/") > 1


def load_base(model_name: str | None, label_names: Sequence[str]) -> tuple[Any, Any, str]:
    """(model, tokenizer, resolved name) for a base model with a new classification head;
    never downloads when the files are local or ``HF_HUB_OFFLINE`` is set; errors in one sentence."""
    from distill_core.bundled import resolve_model

    try:
        resolved = resolve_model(model_name)
    except FileNotFoundError as exc:
        raise TrainingError(str(exc)) from exc
    shown = model_name or resolved
    path = Path(resolved).expanduser()
    if _looks_like_path(resolved) and not path.exists():
        raise TrainingError(f"Could not load the model '{shown}': the folder does not exist.")

    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    id2label = {i: name for i, name in enumerate(label_names)}
    label2id = {name: i for i, name in enumerate(label_names)}
    kwargs = dict(num_labels=len(label_names), id2label=id2label, label2id=label2id)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the "newly initialized head" warning is expected
    try:
        last: Exception | None = None
        attempts = [True] if (path.exists() or _offline()) else [True, False]
        for local_only in attempts:
            try:
                tokenizer = AutoTokenizer.from_pretrained(resolved, local_files_only=local_only)
                model = AutoModelForSequenceClassification.from_pretrained(
                    resolved, local_files_only=local_only, **kwargs
                )
                return model, tokenizer, resolved
            except (OSError, ValueError, KeyError) as exc:
                last = exc
        if path.exists():
            raise TrainingError(
                f"Could not load the model '{shown}': the folder is not a usable "
                f"transformers model ({type(last).__name__})."
            ) from last
        raise TrainingError(
            f"Could not load the model '{shown}': not found locally and this machine "
            "cannot download it."
        ) from last
    finally:
        hf_logging.set_verbosity(verbosity)


def _offline() -> bool:
    return any(
        os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
        for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


# --------------------------------------------------------------------------- evaluation


def _macro_f1(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, average="macro", zero_division=0))


def _predict_ids(
    model: Any,
    encoded: Sequence[Sequence[int]],
    targets: Sequence[int],
    pad_id: int,
    dev: str,
    batch_size: int,
    amp: Any,
) -> tuple[list[int], float]:
    """(argmax class ids in the original order, mean cross-entropy) for pre-tokenized rows."""
    import torch

    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    out = [0] * len(encoded)
    loss_sum = 0.0
    model.eval()
    with torch.inference_mode():
        for s in range(0, len(order), batch_size):
            rows = order[s : s + batch_size]
            ids, mask = pad_batch([encoded[i] for i in rows], pad_id)
            with amp():
                logits = model(input_ids=ids.to(dev), attention_mask=mask.to(dev)).logits
            y = torch.tensor([targets[i] for i in rows], device=dev)
            loss_sum += float(torch.nn.functional.cross_entropy(logits.float(), y, reduction="sum"))
            for i, p in zip(rows, logits.argmax(-1).tolist(), strict=True):
                out[i] = p
    model.train()
    return out, loss_sum / max(1, len(encoded))


# --------------------------------------------------------------------------- training


def train(
    texts: Sequence[str],
    labels: Sequence[str],
    output_dir: str | Path,
    args: TrainingArgs | None = None,
    *,
    label_names: Sequence[str] | None = None,
    confidences: Sequence[float | None] | None = None,
    consistencies: Sequence[float | None] | None = None,
    on_progress: Callable[[TrainProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    extra_metadata: dict | None = None,
) -> TrainResult:
    """Fine-tune ``args.base_model`` on (text, label) pairs and save it to ``output_dir``.

    The folder appears only when training succeeded (written beside it, then renamed). Raises
    TrainingError (bad inputs, unloadable model, non-empty output folder) or TrainingCancelled.
    """
    args = args or TrainingArgs()
    if args.recipe == "head":  # the fast recipe: frozen encoder + classifier head
        return train_head(
            texts,
            labels,
            output_dir,
            args,
            label_names=label_names,
            confidences=confidences,
            consistencies=consistencies,
            on_progress=on_progress,
            should_stop=should_stop,
            extra_metadata=extra_metadata,
        )
    out = output_folder(output_dir)
    if args.epochs < 1 or args.batch_size < 1 or args.lr <= 0:
        raise TrainingError("epochs and batch_size must be at least 1 and lr must be positive.")
    if not 0 <= args.val_share < 1:
        raise TrainingError("val_share must be at least 0 and below 1.")
    prep = _prepare(texts, labels, args, label_names, confidences, consistencies)
    stop = should_stop or (lambda: False)
    if stop():
        raise TrainingCancelled("Training was cancelled before it started.")

    import numpy as np
    import torch

    from distill_core.student.baseline import validation_macro_f1
    from distill_core.student.targets import soft_cross_entropy

    started = time.perf_counter()
    dev = device()
    on_cuda = dev == "cuda"
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    prev_threads = torch.get_num_threads()
    threads: ThreadChoice | None = None
    tmp = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    saved_at = checkpoint.folder_for(out)  # the last completed epoch (student/checkpoint.py)
    try:
        random.seed(args.seed)
        np.random.seed(args.seed % (2**32))
        torch.manual_seed(args.seed)
        if not on_cuda:
            torch.use_deterministic_algorithms(True, warn_only=True)
            probe = CpuProbe()  # other processes' CPU use, measured while the model loads
        else:
            torch.cuda.manual_seed_all(args.seed)

        model, tokenizer, resolved = load_base(args.base_model, prep.label_names)
        label_to_id = {name: i for i, name in enumerate(prep.label_names)}
        y_all = [label_to_id[lab] for lab in prep.labels]

        max_length, max_length_rule = max_length_for(args, model, tokenizer, prep.texts, on_cuda)
        encoded = tokenizer(prep.texts, truncation=True, max_length=max_length)["input_ids"]
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        if not on_cuda:  # the cores other processes leave free (threads.py)
            threads = probe.choose()
            torch.set_num_threads(threads.threads)

        split_seed = args.seed if args.split_seed is None else args.split_seed
        train_idx, val_idx = stratified_split(y_all, args.val_share, split_seed)
        if len(train_idx) < 2:
            raise TrainingError("Too few examples are left for training after the split.")
        tr_enc = [encoded[i] for i in train_idx]
        tr_y = [y_all[i] for i in train_idx]
        va_enc = [encoded[i] for i in val_idx]
        va_y = [y_all[i] for i in val_idx]

        model.to(dev)
        model.train()
        amp, scaler, precision = _amp(on_cuda)
        weight = None
        if args.class_weights:
            w = class_weights(tr_y, len(prep.label_names))
            weight = torch.tensor(w, dtype=torch.float32, device=dev)
        loss_fn = torch.nn.CrossEntropyLoss(weight=weight)
        soft = _teacher_targets(args, prep, train_idx, tr_y, confidences, consistencies)

        no_decay = ("bias", "LayerNorm.weight", "layernorm", "layer_norm", "norm.weight")
        params = [
            {
                "params": [
                    p
                    for n, p in model.named_parameters()
                    if p.requires_grad and not any(nd in n for nd in no_decay)
                ],
                "weight_decay": args.weight_decay,
            },
            {
                "params": [
                    p
                    for n, p in model.named_parameters()
                    if p.requires_grad and any(nd in n for nd in no_decay)
                ],
                "weight_decay": 0.0,
            },
        ]
        optimizer = torch.optim.AdamW(params, lr=args.lr)
        steps_per_epoch = math.ceil(len(tr_enc) / args.batch_size)
        total_steps = steps_per_epoch * args.epochs
        warmup = int(round(args.warmup_ratio * total_steps))

        def lr_lambda(step: int) -> float:
            if step < warmup:
                return (step + 1) / max(1, warmup)
            return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
        rng = random.Random(args.seed)
        tr_len = [len(x) for x in tr_enc]
        y_tensor = torch.tensor(tr_y, dtype=torch.long)

        history: list[dict] = []
        best_f1 = -1.0
        best_loss = float("inf")
        best_epoch = 0
        best_state: dict | None = None
        bad_epochs = 0
        step = 0
        last_report = 0.0
        first_epoch, finished = 1, False
        print_ = checkpoint.fingerprint(
            asdict(args), prep.texts, prep.labels, prep.label_names, resolved, max_length
        )
        resumed = checkpoint.load(saved_at, print_)
        if resumed is not None:
            model.load_state_dict(resumed["model"])
            optimizer.load_state_dict(resumed["optimizer"])
            scheduler.load_state_dict(resumed["scheduler"])
            if scaler is not None and resumed.get("scaler") is not None:
                scaler.load_state_dict(resumed["scaler"])
            rng.setstate(_as_random_state(resumed["batch_rng"]))
            torch.set_rng_state(resumed["torch_rng"])
            history = list(resumed["history"])
            best_f1, best_loss = float(resumed["best_f1"]), float(resumed["best_loss"])
            best_epoch, bad_epochs = int(resumed["best_epoch"]), int(resumed["bad_epochs"])
            best_state = resumed.get("best_state") or (
                {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
                if best_epoch == resumed["epoch"]
                else None
            )
            step, first_epoch = int(resumed["step"]), int(resumed["epoch"]) + 1
            finished = bool(resumed.get("finished"))

        def report(epoch: int, loss: float | None, f1: float | None, msg: str, force: bool):
            nonlocal last_report
            now = time.perf_counter()
            if on_progress is not None and (force or now - last_report >= 0.5):
                last_report = now
                on_progress(TrainProgress(step, total_steps, epoch, loss, f1, msg))

        if resumed is None:
            report(0, None, None, f"Training on {len(tr_enc)} texts ({dev}).", True)
        else:
            report(
                first_epoch - 1,
                None,
                None,
                f"Resuming from epoch {first_epoch - 1} of {args.epochs} (its checkpoint): "
                f"training on {len(tr_enc)} texts ({dev}).",
                True,
            )
        for epoch in range(first_epoch, 0 if finished else args.epochs + 1):
            t_epoch = time.perf_counter()
            loss_sum, loss_n = 0.0, 0
            for batch in length_grouped_batches(tr_len, args.batch_size, rng):
                if stop():
                    raise TrainingCancelled("Training was cancelled.")
                ids, mask = pad_batch([tr_enc[i] for i in batch], pad_id)
                target = y_tensor[batch].to(dev)
                with amp():
                    logits = model(input_ids=ids.to(dev), attention_mask=mask.to(dev)).logits
                if soft is None:
                    loss = loss_fn(logits.float(), target)
                else:  # the teacher's certainty: soft targets, weights (student/targets.py)
                    loss = soft_cross_entropy(
                        logits.float(), soft[0][batch].to(dev), soft[1][batch].to(dev), weight
                    )
                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                    optimizer.step()
                scheduler.step()
                step += 1
                loss_sum += float(loss.detach()) * len(batch)
                loss_n += len(batch)
                report(epoch, loss_sum / loss_n, None, f"Epoch {epoch}/{args.epochs}", False)

            train_loss = loss_sum / max(1, loss_n)
            if va_enc:
                pred, val_loss = _predict_ids(model, va_enc, va_y, pad_id, dev, 64, amp)
                f1 = _macro_f1(va_y, pred)
                acc = float(np.mean(np.array(pred) == np.array(va_y)))
            else:
                f1, acc, val_loss = float("nan"), float("nan"), float("nan")
            history.append(
                {
                    "epoch": epoch,
                    "train_loss": round(train_loss, 6),
                    "val_macro_f1": None if math.isnan(f1) else round(f1, 6),
                    "val_accuracy": None if math.isnan(acc) else round(acc, 6),
                    "val_loss": None if math.isnan(val_loss) else round(val_loss, 6),
                    "seconds": round(time.perf_counter() - t_epoch, 3),
                }
            )
            # better macro-F1, or the same macro-F1 with a lower validation loss
            improved = not va_enc or f1 > best_f1 or (f1 == best_f1 and val_loss < best_loss)
            if improved:
                best_f1, best_loss, best_epoch, bad_epochs = f1, val_loss, epoch, 0
                best_state = {
                    k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()
                }
            else:
                bad_epochs += 1
            finished = bool(
                va_enc
                and args.early_stopping_patience > 0
                and bad_epochs >= args.early_stopping_patience
            )
            checkpoint.save(
                saved_at,
                {
                    "fingerprint": print_,
                    "epoch": epoch,
                    "finished": finished,
                    "step": step,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict() if scaler is not None else None,
                    "batch_rng": list(rng.getstate()),
                    "torch_rng": torch.get_rng_state(),
                    "history": history,
                    "best_f1": best_f1,
                    "best_loss": best_loss,
                    "best_epoch": best_epoch,
                    "bad_epochs": bad_epochs,
                    # the best weights only when they are not the current ones
                    "best_state": best_state if best_epoch != epoch else None,
                },
            )
            report(
                epoch,
                train_loss,
                None if math.isnan(f1) else f1,
                f"Epoch {epoch}/{args.epochs} done: validation macro-F1 "
                + ("n/a" if math.isnan(f1) else f"{f1:.3f}"),
                True,
            )
            if finished:
                break

        if stop():
            raise TrainingCancelled("Training was cancelled.")
        if best_state is not None:
            model.load_state_dict(best_state)
        model.to("cpu")
        model.eval()

        tfidf = validation_macro_f1(prep.texts, prep.labels, train_idx, val_idx, args.seed)
        train_seconds = time.perf_counter() - started
        val_f1 = best_f1 if va_enc else float("nan")
        args_dict = asdict(args)

        metadata = ModelMeta(
            labels=prep.label_names,
            label_counts=dict(sorted(Counter(prep.labels).items())),
            base_model=args.base_model or "all-MiniLM-L6-v2",
            base_model_resolved=resolved,
            args=args_dict,
            max_length=max_length,
            max_length_rule=max_length_rule,
            n_train=len(tr_enc),
            n_val=len(va_enc),
            filters=prep.filters,
            history=history,
            best_epoch=best_epoch,
            val_macro_f1=None if math.isnan(val_f1) else round(val_f1, 6),
            device=dev,
            precision=precision,
            threads=torch.get_num_threads(),
            threads_rule=threads.sentence() if threads else None,
            train_seconds=round(train_seconds, 3),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            versions=versions(),
            recipe="full",
            recipe_choice=_choice(args, extra_metadata),
            tfidf_val_macro_f1=None if tfidf is None else round(tfidf, 6),
            extra=dict(extra_metadata or {}),
            other=dict(extra_metadata or {}),
        )

        publish(tmp, out, metadata, stop, lambda folder: _save(model, tokenizer, folder))
        checkpoint.remove(saved_at)
        report(best_epoch, None, None if math.isnan(val_f1) else val_f1, "Saved.", True)
        return TrainResult(
            output_dir=out,
            labels=prep.label_names,
            n_train=len(tr_enc),
            n_val=len(va_enc),
            best_epoch=best_epoch,
            val_macro_f1=val_f1,
            history=history,
            train_seconds=train_seconds,
            device=dev,
            metadata=metadata,
        )
    except (TrainingCancelled, TrainingError):
        checkpoint.remove(saved_at)  # nothing to resume: it was stopped or refused
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if not on_cuda:
            torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)
            torch.set_num_threads(prev_threads)


def _as_random_state(stored: Sequence) -> tuple:
    """``random.Random.getstate()``'s tuple from its stored (list) form."""
    version, internal, gauss = stored
    return (int(version), tuple(int(v) for v in internal), gauss)


def output_folder(output_dir: str | Path) -> Path:
    """The resolved output folder; TrainingError when it exists and is not empty."""
    out = Path(output_dir).expanduser().resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TrainingError(f"The output folder {out} already exists and is not empty.")
    return out


def max_length_for(
    args: TrainingArgs, model: Any, tokenizer: Any, texts: Sequence[str], on_cuda: bool
) -> tuple[int, str]:
    """(max_length, the rule that gave it): the setting within the model's limit, or
    :func:`choose_max_length` over the texts' token lengths."""
    limit = _model_limit(model, tokenizer)
    if args.max_length is None:
        full = tokenizer(list(texts), add_special_tokens=True, truncation=False)["input_ids"]
        rule = "auto: p95 of token lengths, multiple of 8, within [32, cap]"
        return choose_max_length([len(x) for x in full], limit, on_cuda), rule
    return min(int(args.max_length), limit), "given"


def versions() -> dict[str, str]:
    """The versions a model's metadata records."""
    import torch
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


def _save(model: Any, tokenizer: Any, folder: Path) -> None:
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def publish(
    tmp: Path,
    out: Path,
    metadata: ModelMeta,
    stop: Callable[[], bool],
    write: Callable[[Path], None],
) -> None:
    """Write a model into ``tmp`` (``write``), its ``distill.json`` and model card, then
    rename it to ``out``: the folder appears whole or not at all (TrainingCancelled when
    ``stop()`` says so before the rename)."""
    tmp.mkdir(parents=True)
    write(tmp)
    (tmp / METADATA_FILE).write_text(
        json.dumps(metadata.to_dict(), indent=2, ensure_ascii=False, default=str),
        encoding="utf-8",
    )
    (tmp / "README.md").write_text(model_card(metadata), encoding="utf-8")
    if stop():
        raise TrainingCancelled("Training was cancelled.")
    if out.exists():
        out.rmdir()  # checked empty before training
    os.replace(tmp, out)


def _teacher_targets(args, prep, train_idx, tr_y, confidences, consistencies):
    """(soft targets, weights) tensors of the training rows when the settings use the
    teacher's certainty or label smoothing (student/targets.py), else None (plain CE)."""
    from distill_core.student.targets import certainties, teacher_targets, uses_targets

    if not uses_targets(args.certainty, args.label_smoothing):
        return None
    import torch

    cert = certainties(confidences, consistencies, max(prep.rows, default=-1) + 1)
    kept = [cert[i] for i in prep.rows]
    q, w = teacher_targets(
        tr_y,
        len(prep.label_names),
        [kept[i] for i in train_idx],
        args.certainty,
        args.label_smoothing,
    )
    return torch.from_numpy(q), torch.from_numpy(w)


def class_weights(ids: Sequence[int], n_labels: int) -> list[float]:
    """Inverse-frequency weight of each label id: n / (labels present × its count); 1 for a
    label absent from ``ids``."""
    counts = Counter(ids)
    return [len(ids) / (len(counts) * counts[c]) if counts.get(c) else 1.0 for c in range(n_labels)]


def _choice(args: TrainingArgs, extra: dict | None) -> RecipeChoice | None:
    """Why this training fine-tuned: the job's choice (``extra_metadata["recipe_choice"]``),
    or "auto" given straight to ``train()``, which fine-tunes (the job and the command line
    decide "auto" from the whole job's estimated time)."""
    given = (extra or {}).get("recipe_choice")
    if given:
        return RecipeChoice.from_dict(given)
    if args.recipe == "auto":
        return RecipeChoice("auto", "full", "train() was called without a time estimate.")
    return None


def train_head(
    texts: Sequence[str],
    labels: Sequence[str],
    output_dir: str | Path,
    args: TrainingArgs | None = None,
    *,
    label_names: Sequence[str] | None = None,
    confidences: Sequence[float | None] | None = None,
    consistencies: Sequence[float | None] | None = None,
    on_progress: Callable[[TrainProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    extra_metadata: dict | None = None,
    cache_dir: Path | None = None,
) -> TrainResult:
    """The fast recipe, with ``train()``'s contract (same filters, validation split, metadata,
    progress, cancel, and a folder that appears only when done): embed every text once with
    the frozen base model, choose the head's C by cross-validation on the training rows, fit
    it on them, score it on the validation rows beside a TF-IDF baseline, save the encoder
    and the head. Progress counts in the steps ``train()`` would take (epochs × batches), so
    a job's one progress bar needs no second unit (student/head.py has the head's math)."""
    import numpy as np
    import torch

    from distill_core.student.baseline import validation_macro_f1
    from distill_core.student.embed import Embedder
    from distill_core.student.head import HeadSpec, fit_head, mean_soft_ce, save_head
    from distill_core.student.targets import certainties, teacher_targets

    args = args or TrainingArgs(recipe="head")
    out = output_folder(output_dir)
    prep = _prepare(texts, labels, args, label_names, confidences, consistencies)
    cert_all = certainties(confidences, consistencies, len(texts))
    kept_cert = [cert_all[i] for i in prep.rows]
    stop = should_stop or (lambda: False)
    if stop():
        raise TrainingCancelled("Training was cancelled before it started.")

    started = time.perf_counter()
    dev = device()
    on_cuda = dev == "cuda"
    label_to_id = {name: i for i, name in enumerate(prep.label_names)}
    y_all = [label_to_id[lab] for lab in prep.labels]
    split_seed = args.seed if args.split_seed is None else args.split_seed
    train_idx, val_idx = stratified_split(y_all, args.val_share, split_seed)
    if len(train_idx) < 2:
        raise TrainingError("Too few examples are left for training after the split.")
    # what train() would count, so that a job's progress bar keeps one unit
    total_steps = max(1, -(-len(train_idx) // args.batch_size) * args.epochs)

    def report(fraction: float, message: str, f1: float | None = None, epoch: int = 0) -> None:
        if on_progress is not None:
            step = min(total_steps, int(round(fraction * total_steps)))
            on_progress(TrainProgress(step, total_steps, epoch, None, f1, message))

    tmp = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        torch.manual_seed(args.seed)
        report(0.0, f"Loading the encoder to embed {len(prep.texts):,} texts ({dev}).")
        model, tokenizer, resolved = load_base(args.base_model, prep.label_names)
        encoder = model.base_model
        max_length, max_length_rule = max_length_for(args, model, tokenizer, prep.texts, on_cuda)
        embedder = Embedder(
            encoder, tokenizer, resolved, max_length, cache_dir=cache_dir, device=dev
        )
        with device_threads(dev) as choice:
            threads_used = torch.get_num_threads()
            threads_rule = choice.sentence() if choice is not None else None
            x = embedder.encode(
                prep.texts,
                on_progress=lambda done, n: report(
                    0.9 * done / max(1, n), f"Embedding texts: {done:,} of {n:,}"
                ),
                should_stop=stop,
            )
        if stop():
            raise TrainingCancelled("Training was cancelled.")
        report(0.9, "Fitting the classifier head (cross-validated).")
        k = len(prep.label_names)
        t_fit = time.perf_counter()
        tr_y = [y_all[i] for i in train_idx]
        q, w = teacher_targets(
            tr_y, k, [kept_cert[i] for i in train_idx], args.certainty, args.label_smoothing
        )
        if args.class_weights:
            w = w * np.asarray(class_weights(tr_y, k), dtype=np.float32)[np.asarray(tr_y)]
        x_tr = x[train_idx]
        fit = fit_head(x_tr, tr_y, q, w, args.seed, args.noise_filter)
        weight, bias, c, cv = fit.weight, fit.bias, fit.c, fit.cv
        kept = ~fit.set_aside
        train_loss = mean_soft_ce(x_tr[kept] @ weight.T + bias, q[kept], w[kept])
        val_f1 = val_acc = val_loss = None
        if val_idx:
            va_y = np.asarray([y_all[i] for i in val_idx])
            logits_va = x[val_idx] @ weight.T + bias
            pred = logits_va.argmax(axis=1)
            val_f1 = _macro_f1(va_y.tolist(), pred.tolist())
            val_acc = float(np.mean(pred == va_y))
            onehot = np.eye(k, dtype=np.float32)[va_y]
            val_loss = mean_soft_ce(logits_va, onehot, None)
        tfidf = validation_macro_f1(prep.texts, prep.labels, train_idx, val_idx, args.seed)
        history = [
            {
                "epoch": 1,
                "train_loss": round(train_loss, 6),
                "val_macro_f1": None if val_f1 is None else round(val_f1, 6),
                "val_accuracy": None if val_acc is None else round(val_acc, 6),
                "val_loss": None if val_loss is None else round(val_loss, 6),
                "seconds": round(time.perf_counter() - t_fit, 3),
            }
        ]
        if stop():
            raise TrainingCancelled("Training was cancelled.")
        spec = HeadSpec(dim=x.shape[1], n_labels=k, c=c, cv=cv)
        extra = dict(extra_metadata or {})
        train_seconds = time.perf_counter() - started
        choice_data = extra.pop("recipe_choice", None)
        metadata = ModelMeta(
            labels=prep.label_names,
            label_counts=dict(sorted(Counter(prep.labels).items())),
            base_model=args.base_model or "all-MiniLM-L6-v2",
            base_model_resolved=resolved,
            args=asdict(args),
            max_length=max_length,
            max_length_rule=max_length_rule,
            n_train=len(train_idx),
            n_val=len(val_idx),
            filters=prep.filters
            | {
                "embedded_now": embedder.encoded_now,
                "set_aside_likely_mistakes": int(fit.set_aside.sum()),
            },
            history=history,
            best_epoch=1,
            val_macro_f1=None if val_f1 is None else round(val_f1, 6),
            device=dev,
            precision="fp32",
            threads=threads_used,
            threads_rule=threads_rule,
            train_seconds=round(train_seconds, 3),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            versions=versions(),
            recipe="head",
            recipe_choice=RecipeChoice.from_dict(choice_data) if choice_data else None,
            tfidf_val_macro_f1=None if tfidf is None else round(tfidf, 6),
            extra=extra,
            other=dict(extra),
        )
        metadata.other["head"] = asdict(spec)

        def write(folder: Path) -> None:
            encoder.to("cpu").save_pretrained(folder)
            tokenizer.save_pretrained(folder)
            save_head(folder, weight, bias, spec)

        publish(tmp, out, metadata, stop, write)
        report(1.0, "Saved.", val_f1, 1)
        return TrainResult(
            output_dir=out,
            labels=prep.label_names,
            n_train=len(train_idx),
            n_val=len(val_idx),
            best_epoch=1,
            val_macro_f1=float("nan") if val_f1 is None else val_f1,
            history=history,
            train_seconds=train_seconds,
            device=dev,
            metadata=metadata,
        )
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def train_other_seeds(
    texts: Sequence[str],
    labels: Sequence[str],
    args: TrainingArgs,
    score: Callable[[Path, TrainResult], R],
    *,
    on_progress: Callable[[int, int], Callable[[TrainProgress], None] | None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    **kwargs: Any,
) -> list[R]:
    """Train the students of seeds 2 … N of ``args.seed_settings()`` (the first, the kept model,
    is the caller's own ``train``), each on the same rows with the same validation split, in a
    temporary folder removed once ``score(folder, result)`` has read it. ``on_progress(i, n)``
    gives seed i of n its progress callback; ``kwargs`` go to :func:`train`. Raises as ``train``
    does (TrainingCancelled when ``should_stop()`` says so)."""
    settings = args.seed_settings()
    scores = []
    for i, setting in enumerate(settings[1:], start=2):
        with tempfile.TemporaryDirectory(prefix="distill-seed-") as tmp:
            result = train(
                texts,
                labels,
                Path(tmp) / "model",
                setting,
                on_progress=on_progress(i, len(settings)) if on_progress else None,
                should_stop=should_stop,
                **kwargs,
            )
            scores.append(score(result.output_dir, result))
    return scores


def _model_limit(model: Any, tokenizer: Any) -> int:
    """Longest input the model accepts (position embeddings, tokenizer limit), at most 512."""
    limits = [512]
    pos = getattr(model.config, "max_position_embeddings", None)
    if isinstance(pos, int) and pos > 0:
        limits.append(pos - 2 if getattr(model.config, "model_type", "") in ("roberta",) else pos)
    tml = getattr(tokenizer, "model_max_length", None)
    if isinstance(tml, int) and 0 < tml < 1_000_000:
        limits.append(tml)
    return min(limits)


def _amp(on_cuda: bool) -> tuple[Callable[[], Any], Any, str]:
    """(autocast context factory, GradScaler or None, precision name) for the device (on a GPU
    by ``threads.cuda_half``: bf16 where supported, fp16 with a scaler, or fp32 when set)."""
    import contextlib

    import torch

    from distill_core.student.threads import cuda_half

    if not on_cuda:
        return contextlib.nullcontext, None, "fp32"
    dtype, name = cuda_half()
    if dtype is None:
        return contextlib.nullcontext, None, name
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    return (lambda: torch.autocast("cuda", dtype=dtype)), scaler, name
