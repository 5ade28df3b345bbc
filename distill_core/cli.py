"""The command line: the same core functions the app's pages call.

Errors a user can cause end in one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

#: Exit code for a user-caused error (bad file, missing column, unknown label...).
USAGE_ERROR = 2
#: Exit code of ``label`` when the output was written but some texts ended in error.
TEXTS_IN_ERROR = 3


class UserError(Exception):
    """A problem the user can fix; its message is printed as the one line of output."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m distill_core",
        description=(
            "Distill: have an LLM label texts with a codebook, validate the labels against human "
            "codes and distil them into a small classifier."
        ),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    ingest = sub.add_parser(
        "ingest",
        help="validate a corpus file and print a summary",
        description="Validate a corpus file (CSV, TSV, Excel, Parquet, JSON Lines, Stata) and "
        "print a summary: rows, empty texts, duplicates, encoding.",
    )
    ingest.add_argument("file", help="the corpus file")
    ingest.add_argument("--text-column", required=True, help="column holding the texts")
    ingest.add_argument("--id-column", help="column holding unique ids (generated when absent)")
    ingest.add_argument("--json", action="store_true", help="print the summary as JSON")
    ingest.set_defaults(run=cmd_ingest)

    label = sub.add_parser(
        "label",
        help="label a corpus file with an LLM (or the offline baseline) and a codebook",
        description="Label every text of INPUT with a teacher and the codebook. OUTPUT holds the "
        "input's columns plus llm_label, llm_confidence, llm_consistency and llm_status "
        "(ok/invalid/error). Answers are kept in --workdir: a rerun sends no request and a "
        "killed run resumes. The API key comes from OPENAI_API_KEY. Requests in flight start "
        "at one and grow up to --concurrency while answers stay as fast, and back off when "
        "they slow down or time out. Exit status: 0 when every non-empty text got an answer, "
        f"{TEXTS_IN_ERROR} when some ended in error (the output is written; the last line "
        "gives the counts and the first error), 2 when nothing could be done.",
    )
    label.add_argument(
        "input", help="the corpus file (CSV, TSV, Excel, Parquet, JSON Lines, Stata)"
    )
    label.add_argument("--codebook", required=True, help="codebook JSON file")
    label.add_argument("--output", required=True, help="CSV file to write")
    label.add_argument("--text-column", default="text")
    label.add_argument(
        "--id-column", default="id", help="ids are generated when the column is absent"
    )
    label.add_argument("--provider", choices=("openai", "local"), default="openai")
    label.add_argument("--base-url", help="OpenAI-compatible base URL (default: OPENAI_BASE_URL)")
    label.add_argument("--model", help="model name (default: OPENAI_MODEL or gpt-4o-mini)")
    label.add_argument(
        "--concurrency", type=int, default=16, help="the most requests in flight (default: 16)"
    )
    label.add_argument(
        "--repeats", type=int, default=1, help="answers per text (modal label, consistency)"
    )
    label.add_argument("--temperature", type=float, default=None)
    label.add_argument("--max-tokens", type=int, default=None)
    label.add_argument("--seed", type=int, default=None)
    label.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="give up on one request after this long (default: 60); it is asked again",
    )
    label.add_argument(
        "--give-up",
        type=float,
        default=None,
        metavar="SECONDS",
        help="give up on a text after this long, every request and pause together "
        "(default: 300; 0: never); it ends in error and a rerun asks it again",
    )
    label.add_argument(
        "--no-logprobs",
        dest="logprobs",
        action="store_false",
        help="ask for no token probabilities (no llm_confidence; some local servers, e.g. "
        "llama.cpp, answer many times faster without)",
    )
    label.add_argument(
        "--workdir", default="distill_work", help="where answers are kept (default: ./distill_work)"
    )
    label.set_defaults(run=cmd_label)

    agree = sub.add_parser(
        "agree",
        help="agreement of predicted labels with gold (human) labels, as JSON",
        description="Match GOLD and PRED rows by id and print one JSON object: n, accuracy, "
        "macro_f1, weighted_f1, cohen_kappa, krippendorff_alpha, per_class and bootstrap 95%% "
        "intervals (ci). Ids found in only one file are counted on stderr.",
    )
    agree.add_argument("gold", help="file with the human labels")
    agree.add_argument("pred", help="file with the predicted labels")
    agree.add_argument("--gold-column", required=True)
    agree.add_argument("--pred-column", required=True)
    agree.add_argument("--id-column", default="id")
    agree.add_argument("--positive-label", help="also report the F1 of this class (binary tasks)")
    agree.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    agree.set_defaults(run=cmd_agree)

    train = sub.add_parser(
        "train",
        help="fine-tune a student model on labelled texts",
        description="Fine-tune a transformer (default: the bundled all-MiniLM-L6-v2, offline) on "
        "the labels of INPUT and save a model folder loadable with "
        "AutoModelForSequenceClassification, with metadata and a model card.",
    )
    train.add_argument("input")
    train.add_argument("--label-column", required=True)
    train.add_argument("--output", required=True, help="model folder to create")
    train.add_argument("--text-column", default="text")
    train.add_argument(
        "--base-model", help="Hugging Face id or local folder (default: bundled MiniLM)"
    )
    train.add_argument(
        "--epochs", type=int, help="upper bound; early stopping on validation macro-F1"
    )
    train.add_argument("--batch-size", type=int)
    train.add_argument("--lr", type=float)
    train.add_argument("--max-length", type=int, help="tokens per text (default: from the data)")
    train.add_argument("--seed", type=int)
    train.add_argument(
        "--seeds",
        type=int,
        help="train N students (seeds seed, seed+1, ...) on the same rows and validation split "
        "and report their validation macro-F1 and accuracy: mean and range; the first seed's "
        "model is the one saved. Each seed is a full training (default 1)",
    )
    train.add_argument(
        "--min-confidence", type=float, help="drop rows whose llm_confidence is below this"
    )
    train.add_argument(
        "--recipe",
        choices=["auto", "full", "head"],
        help="full: fine-tune every weight; head: the fast recipe (the frozen encoder's "
        "sentence embeddings and a trained classifier, seconds on a CPU); auto (default): full "
        "on a GPU or when a few timed steps say it fits --time-budget, else head",
    )
    train.add_argument(
        "--time-budget", type=float, help="minutes the auto recipe keeps to (default 10)"
    )
    train.add_argument(
        "--certainty",
        choices=["off", "weight", "soft"],
        help="use the llm_confidence and llm_consistency columns in the loss: weight each row, "
        "or soft targets (default off)",
    )
    train.add_argument(
        "--mistake-filter",
        type=float,
        help="head recipe: set aside the training rows whose label the head's cross-validated "
        "predictions put below this share of the label's mean probability, as likely LLM "
        "mistakes, before the final fit (0: off; default 0.5)",
    )
    train.add_argument(
        "--dry-run",
        action="store_true",
        help="time a few real training steps on this machine, print how long the training "
        "would take (every seed; with early stopping the most) and exit without training",
    )
    train.set_defaults(run=cmd_train)

    predict = sub.add_parser("predict", help="label texts with a trained model")
    predict.add_argument("model_dir")
    predict.add_argument("input")
    predict.add_argument(
        "--output", required=True, help="CSV: the input plus pred_label, pred_confidence"
    )
    predict.add_argument("--text-column", default="text")
    predict.set_defaults(run=cmd_predict)

    evaluate = sub.add_parser(
        "evaluate",
        help="score a trained model on labelled test texts (JSON as agree), or compare it with "
        "other labels on the same texts",
        description="Score the model in MODEL_DIR on the texts of TEST that have a gold label in "
        "--label-column and print the JSON of agree. With --compare, also score each compared "
        "system (a column of TEST holding another system's labels, e.g. the label command's "
        "llm_label, or another model folder) on exactly the same rows, and print one JSON object: "
        "n, left_out, systems (each with agree's figures) and differences (this model minus each "
        "compared system: macro-F1 and accuracy with a paired BCa bootstrap 95%% interval on the "
        "same resampled rows, and McNemar's exact test for accuracy).",
    )
    evaluate.add_argument("model_dir")
    evaluate.add_argument("test")
    evaluate.add_argument("--label-column", required=True, help="column holding the gold labels")
    evaluate.add_argument("--text-column", default="text")
    evaluate.add_argument("--positive-label")
    evaluate.add_argument(
        "--compare",
        action="append",
        metavar="COLUMN_OR_MODEL_DIR",
        help="a column of TEST with another system's labels (a column wins over a folder of "
        "the same name) or another model folder; repeat to compare several. Only rows where "
        "every system has a label are scored",
    )
    evaluate.add_argument(
        "--blank-is-wrong",
        action="store_true",
        help="with --compare: count a blank cell of a compared column as a wrong answer (as the "
        "app counts an invalid LLM answer) instead of leaving that row out for every system",
    )
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    evaluate.set_defaults(run=cmd_evaluate)

    export = sub.add_parser(
        "export",
        help="write a project's labelled corpus, codes, audit log, appendix or model to a file",
        description="Export from the app's store (DISTILL_HOME or DISTILL_DATABASE_URL): the "
        "labelled corpus (csv, xlsx, parquet, dta), the human codes (codes: CSV), the LLM audit "
        "log (audit: JSON Lines), the methods appendix (appendix-md, appendix-html), the newest "
        "student model (model: zip), or the validation sample for outside coders (sample-xlsx: "
        "the texts with an empty code column and the codebook; sample-csv, codebook-csv).",
    )
    export.add_argument("--project", required=True, help="project name or id")
    export.add_argument(
        "--format",
        required=True,
        choices=(
            "csv",
            "xlsx",
            "parquet",
            "dta",
            "codes",
            "audit",
            "appendix-md",
            "appendix-html",
            "model",
            "sample-xlsx",
            "sample-csv",
            "codebook-csv",
        ),
    )
    export.add_argument("--output", required=True, help="file to write")
    export.add_argument("--home", help="Distill's data folder (default: DISTILL_HOME)")
    export.add_argument(
        "--user",
        help="act as this user (their role in the project decides what may be exported; "
        "default: the local user, in single-user mode only)",
    )
    export.add_argument(
        "--probabilities", action="store_true", help="add the student's prob_<label> columns"
    )
    export.set_defaults(run=cmd_export)
    _add_admin_parser(sub)
    return parser


def _add_admin_parser(sub) -> None:
    """``admin …``: accounts of a hosted instance, acting as its administrator."""
    admin = sub.add_parser(
        "admin",
        help="manage the accounts of a hosted instance (run on the server, as its administrator)",
        description="Manage who may use a hosted instance (DISTILL_AUTH=accounts or oidc). These "
        "commands act as the administrator of this installation: run them on the server, with "
        "the app's DISTILL_DATABASE_URL or DISTILL_HOME. The store is migrated first.",
    )
    cmds = admin.add_subparsers(dest="admin_command", metavar="ADMIN_COMMAND", required=True)
    create = cmds.add_parser(
        "create-user",
        help="make an admitted account with a password",
        description="Make an admitted account. The password is asked twice on the terminal, or "
        "read as one line from standard input with --password-stdin.",
    )
    create.add_argument("name", help="the user name (no spaces) to sign in with")
    create.add_argument("--email", help="e-mail address (also accepted as the sign-in name)")
    create.add_argument("--admin", action="store_true", help="make it an administrator's account")
    create.add_argument("--display-name", default="", help="the name shown in the app")
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    create.set_defaults(run=cmd_admin_create_user)
    password = cmds.add_parser(
        "set-password",
        help="give an account a new password (clears a lock)",
        description="Reset an account's password: asked twice on the terminal, or one line from "
        "standard input with --password-stdin. Clears a lock after failed sign-ins and signs "
        "the account out of every browser.",
    )
    password.add_argument("name", help="user name or e-mail")
    password.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    password.set_defaults(run=cmd_admin_set_password)
    admit = cmds.add_parser(
        "admit", help="let a user who signed in through the identity provider in"
    )
    admit.add_argument("name", help="user name or e-mail")
    admit.set_defaults(run=cmd_admin_admit)
    listing = cmds.add_parser("list-users", help="list every user (those waiting first)")
    listing.add_argument("--json", action="store_true", help="print JSON Lines")
    listing.set_defaults(run=cmd_admin_list_users)


def cmd_ingest(args: argparse.Namespace) -> int:
    from distill_core.corpus import prepare_corpus, read_path

    table = read_path(args.file)
    prepared = prepare_corpus(table, args.text_column, args.id_column)
    report = prepared.report
    if args.json:
        print(json.dumps({"file": table.filename, "format": table.file_format, **report.to_dict()}))
    else:
        print(f"{table.filename} ({table.file_format})")
        for line in report.summary_lines():
            print(f"  {line}")
    return 0


def cmd_label(args: argparse.Namespace) -> int:
    from pathlib import Path

    import pandas as pd

    from distill_core.codebook import Codebook
    from distill_core.corpus import prepare_corpus, read_path
    from distill_core.jobs.label import failed_texts, teacher_options
    from distill_core.llm import Endpoint, make_teacher
    from distill_core.store import Store
    from distill_core.study import labelling, runs

    if args.repeats < 1 or args.concurrency < 1:
        raise UserError("--repeats and --concurrency must be at least 1.")
    if args.timeout is not None and args.timeout <= 0:
        raise UserError("--timeout must be more than 0 seconds.")
    if args.give_up is not None and args.give_up < 0:
        raise UserError("--give-up must be 0 (never) or more seconds.")
    codebook = Codebook.from_json(Path(args.codebook).read_bytes())
    table = read_path(args.input)
    id_column = args.id_column if args.id_column in table.frame.columns else None
    prepared = prepare_corpus(table, args.text_column, id_column)
    if args.provider == "openai":
        temperature = args.temperature
        if temperature is None:
            temperature = 1.0 if args.repeats > 1 else 0.0
        endpoint = Endpoint.from_env(
            base_url=args.base_url,
            model=args.model,
            temperature=temperature,
            max_tokens=args.max_tokens,
            seed=args.seed,
            timeout_s=args.timeout,
        )
        options = teacher_options(logprobs=args.logprobs, give_up_s=args.give_up)
        teacher = make_teacher("openai", endpoint, **options)
    else:
        teacher = make_teacher(args.provider)
    workdir = Path(args.workdir)
    store = Store(f"sqlite:///{workdir.resolve() / 'distill.db'}")
    store.migrate()
    items = list(zip(prepared.ids, prepared.texts, strict=True))
    with store.session() as s:
        run_id = labelling.create_run(
            s,
            teacher=teacher,
            codebook=codebook,
            n_texts=len(items),
            scope="file",
            repeats=args.repeats,
        ).id
    bar = _ProgressBar("Labelling")
    outcome = labelling.label_texts(
        store,
        run_id,
        teacher,
        items,
        repeats=args.repeats,
        concurrency=args.concurrency,
        on_progress=lambda p: bar.update(p.done, p.total, p.concurrency_note()),
    )
    bar.close()
    if outcome.stopped == "failing":
        raise UserError(f"Every request failed, so nothing was written: {outcome.first_error}")
    with store.session() as s:
        results = runs.items_frame(s, run_id, with_text=False)
    frame = table.frame.copy()
    if id_column is None:
        frame.insert(0, "id", prepared.ids)
    ids = pd.Series(prepared.ids, index=frame.index)
    for col, values in runs.llm_columns(ids, results, missing_status="error").items():
        frame[col] = values
    _write_csv_atomically(frame, Path(args.output))
    p, c = outcome.progress, outcome.counts
    print(
        f"{len(items):,} texts ({outcome.n_distinct:,} distinct non-empty): {c.get('ok', 0):,} ok, "
        f"{c.get('invalid', 0):,} invalid, {c.get('error', 0):,} error. {p.requested:,} requests "
        f"sent, {p.cached:,} answers from {workdir}; {p.prompt_tokens:,} prompt and "
        f"{p.completion_tokens:,} completion tokens. Wrote {args.output}.",
        file=sys.stderr,
    )
    failed, empty = failed_texts(outcome, items)
    if not failed:
        return 0
    invalid = f", {c['invalid']:,} invalid" if c.get("invalid") else ""
    first = (outcome.first_error or "see llm_status").rstrip(".")
    print(
        f"Labelled {c.get('ok', 0):,} of {len(items) - empty:,} texts: {failed:,} ended in "
        f"error (first: {first}){invalid}; exit {TEXTS_IN_ERROR}",
        file=sys.stderr,
    )
    return TEXTS_IN_ERROR


def cmd_agree(args: argparse.Namespace) -> int:
    from distill_core.agreement import compare
    from distill_core.corpus import read_path

    gold = _labels_by_id(read_path(args.gold), args.id_column, args.gold_column, args.gold)
    pred = _labels_by_id(read_path(args.pred), args.id_column, args.pred_column, args.pred)
    uncoded = [i for i, label in gold.items() if label is None]
    gold = {i: label for i, label in gold.items() if label is not None}
    both = [i for i in gold if i in pred]
    only_gold, only_pred = len(gold) - len(both), len(pred) - len(both)
    if uncoded:
        print(
            f"note: {len(uncoded):,} rows of {args.gold} have no gold label and were left out.",
            file=sys.stderr,
        )
    if not both:
        raise UserError(f"No id of {args.gold} is in {args.pred}: nothing to compare.")
    if only_gold or only_pred:
        print(
            f"note: {only_gold:,} ids only in {args.gold} and {only_pred:,} only in {args.pred} "
            f"were left out; {len(both):,} compared.",
            file=sys.stderr,
        )
    _check_positive(args.positive_label, list(gold.values()))
    result = compare(
        [gold[i] for i in both],
        [pred[i] for i in both],
        positive_label=args.positive_label,
        seed=args.seed,
    )
    print(json.dumps(result.to_dict(), ensure_ascii=False))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from distill_core.corpus import is_blank, read_path
    from distill_core.student.args import TrainingArgs
    from distill_core.student.train import train

    frame = read_path(args.input).frame
    _require_columns(frame, [args.text_column, args.label_column], args.input)
    keep = [not is_blank(v) for v in frame[args.label_column]]
    frame = frame[keep]
    confidences = consistencies = None
    if args.min_confidence is not None and "llm_confidence" not in frame.columns:
        raise UserError(
            "--min-confidence needs an llm_confidence column (the label command's output)."
        )
    if args.min_confidence is not None or args.certainty not in (None, "off"):
        confidences = _float_column(frame, "llm_confidence")
        consistencies = _float_column(frame, "llm_consistency") if args.certainty else None
    overrides = {
        k: v
        for k, v in {
            "base_model": args.base_model,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "max_length": args.max_length,
            "seed": args.seed,
            "seeds": args.seeds,
            "min_confidence": args.min_confidence,
            "recipe": args.recipe,
            "time_budget_s": None if args.time_budget is None else args.time_budget * 60,
            "certainty": args.certainty,
            "noise_filter": args.mistake_filter,
        }.items()
        if v is not None
    }
    settings = TrainingArgs(**overrides)
    texts = [str(t) for t in frame[args.text_column].fillna("")]
    labels = [str(v).strip() for v in frame[args.label_column]]
    if args.dry_run:
        return _print_estimate(texts, labels, settings, confidences)
    settings, choice = _recipe(texts, labels, settings, confidences)
    print(choice.sentence(), file=sys.stderr)
    bar = _ProgressBar("Training")

    def on_progress(p) -> None:
        if p.message.startswith("Resuming"):  # a killed training of this folder goes on
            print(p.message, file=sys.stderr)
        bar.update(p.step, p.total_steps)

    result = train(
        texts,
        labels,
        Path(args.output),
        settings,
        confidences=confidences,
        consistencies=consistencies,
        on_progress=on_progress,
        extra_metadata={
            "source_file": Path(args.input).name,
            "label_column": args.label_column,
            "recipe_choice": choice.to_dict(),
        },
    )
    bar.close()
    print(
        f"Trained on {result.n_train:,} texts (validation {result.n_val:,}); best epoch "
        f"{result.best_epoch}, validation macro-F1 {result.val_macro_f1:.3f}; "
        f"{result.train_seconds:.0f} s on {result.device}. Saved {result.output_dir}.",
        file=sys.stderr,
    )
    if settings.seeds > 1:
        _train_other_seeds(texts, labels, settings, result, confidences, consistencies)
    return 0


def _trainings(texts, labels, settings, confidences) -> list:
    """The trainings of ``train`` (each seed), for a time estimate."""
    from distill_core.student.timing import Training

    n = settings.seeds
    return [
        Training(
            "Student" + (f", seed {i} of {n}" if n > 1 else ""),
            texts,
            labels,
            setting,
            confidences=confidences,
        )
        for i, setting in enumerate(settings.seed_settings(), start=1)
    ]


def _recipe(texts, labels, settings, confidences):
    """(the settings with a concrete recipe, why): auto times a few steps of full
    fine-tuning here (student/recipes.py), once for every seed."""
    from distill_core.student.recipes import as_full, resolve
    from distill_core.student.timing import estimate

    planned = _trainings(texts, labels, as_full(settings), confidences)
    return resolve(
        settings,
        lambda _full: estimate(planned),
        n_texts=len(set(texts)),
        steps=sum(t.steps() for t in planned),
    )


def _float_column(frame, column: str) -> list | None:
    """A column of the label command's output as floats (None per blank; None without it)."""
    from distill_core.corpus import is_blank

    if column not in frame.columns:
        return None
    return [None if is_blank(v) else float(v) for v in frame[column]]


def _print_estimate(texts, labels, settings, confidences) -> int:
    """``train --dry-run``: the projected time of the training (each seed), measured here."""
    from distill_core.clock import fmt_duration
    from distill_core.student.recipes import as_full, estimate_sentence
    from distill_core.student.timing import estimate

    found = estimate(_trainings(texts, labels, as_full(settings), confidences))
    print(found.sentence())
    for phase in found.phases:
        print(f"  {phase.phase}: {phase.steps:,} steps, about {fmt_duration(phase.seconds)}")
    threads = f", {found.threads} CPU thread{'s' * (found.threads != 1)}" if found.threads else ""
    print(
        f"Timed {found.steps_timed} real steps on {found.device}{threads} in "
        f"{found.measured_seconds:.0f} s; nothing was trained (--dry-run).",
        file=sys.stderr,
    )
    if settings.recipe != "full":
        print(estimate_sentence(settings, found), file=sys.stderr)
    return 0


def _train_other_seeds(texts, labels, settings, kept, confidences, consistencies=None) -> None:
    """Seeds 2 … N of ``settings`` scored on the kept model's validation rows (against the
    input's labels); their spread goes to the kept model's metadata and card, and to stderr."""
    from distill_core.student.card import SeedRuns, SeedScore, write_metadata
    from distill_core.student.train import train_other_seeds

    bar: list[_ProgressBar] = []

    def progress(i: int, n: int):
        bar[:] = [_ProgressBar(f"Training seed {i} of {n}")]
        return lambda p: bar[0].update(p.step, p.total_steps)

    def score(result) -> SeedScore:
        if bar:
            bar[0].close()
        meta = result.metadata
        return SeedScore(int(meta.args["seed"]), meta.val_macro_f1, result.val_accuracy)

    others = train_other_seeds(
        texts,
        labels,
        settings,
        lambda _folder, result: score(result),
        on_progress=progress,
        confidences=confidences,
        consistencies=consistencies,
    )
    bar.clear()
    seeds = SeedRuns(
        [score(kept), *others], n=kept.n_val, scored_on="validation texts (the input's labels)"
    )
    kept.metadata.seeds = seeds
    write_metadata(kept.output_dir, kept.metadata)
    print(seeds.sentence(), file=sys.stderr)


def _predict_frame(model_dir: str, path: str, text_column: str):
    from distill_core.corpus import read_path

    frame = read_path(path).frame
    _require_columns(frame, [text_column], path)
    return frame, _predict_texts(model_dir, frame[text_column])


def _predict_texts(model_dir: str, column):
    """The predictions of the model in ``model_dir`` for a column of texts (blank ones too)."""
    from distill_core.corpus import is_blank
    from distill_core.student.predict import load

    predictor = _load_model(load, model_dir)
    bar = _ProgressBar("Predicting")
    texts = ["" if is_blank(t) else str(t) for t in column]
    predictions = predictor.predict(texts, on_progress=bar.update)
    bar.close()
    return predictions


def _load_model(load, model_dir: str):
    from pathlib import Path

    if not (Path(model_dir) / "config.json").is_file():
        raise UserError(f"{model_dir} is not a model folder (no config.json): train one first.")
    return load(model_dir)


def cmd_predict(args: argparse.Namespace) -> int:
    from pathlib import Path

    frame, predictions = _predict_frame(args.model_dir, args.input, args.text_column)
    out = frame.copy()
    out["pred_label"] = predictions.labels
    out["pred_confidence"] = predictions.confidence
    _write_csv_atomically(out, Path(args.output))
    print(f"Labelled {len(out):,} texts. Wrote {args.output}.", file=sys.stderr)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from distill_core.agreement import compare
    from distill_core.corpus import is_blank

    frame, predictions = _predict_frame(args.model_dir, args.test, args.text_column)
    _require_columns(frame, [args.label_column], args.test)
    gold = [None if is_blank(g) else str(g).strip() for g in frame[args.label_column]]
    if all(g is None for g in gold):
        raise UserError(f"{args.test} has no rows with a label in '{args.label_column}'.")
    if args.compare:
        return _evaluate_compared(args, frame, gold, list(predictions.labels))
    pairs = [(g, p) for g, p in zip(gold, predictions.labels, strict=True) if g is not None]
    truth = [g for g, _ in pairs]
    _check_positive(args.positive_label, truth)
    result = compare(
        truth, [p for _, p in pairs], positive_label=args.positive_label, seed=args.seed
    )
    print(json.dumps(result.to_dict(), ensure_ascii=False))
    return 0


def _evaluate_compared(args: argparse.Namespace, frame, gold: list, own: list) -> int:
    """``evaluate --compare``: every system scored on the same rows (those with a gold label
    and, unless ``--blank-is-wrong``, a label of every system), and this model minus each
    compared system (``agreement.paired_difference``: macro-F1 and accuracy, McNemar)."""
    from distill_core.agreement import compare, paired_difference

    systems = {args.model_dir: ("model", own)}
    for source in args.compare:
        if source in systems:
            raise UserError(f"'{source}' is compared twice; name each system once.")
        systems[source] = _compared_labels(frame, source, args)
    coded = [i for i, g in enumerate(gold) if g is not None]
    blanks = {name: sum(labels[i] is None for i in coded) for name, (_, labels) in systems.items()}
    blanks = {name: k for name, k in blanks.items() if k}
    rows = [
        i
        for i in coded
        if args.blank_is_wrong or all(labels[i] is not None for _, labels in systems.values())
    ]
    if not rows:
        raise UserError(f"No row of {args.test} has a gold label and a label of every system.")
    truth = [gold[i] for i in rows]
    _check_positive(args.positive_label, truth)
    preds = {name: [labels[i] for i in rows] for name, (_, labels) in systems.items()}
    fate = "counted as wrong answers" if args.blank_is_wrong else "left out for every system"
    for name, k in blanks.items():
        print(
            f"note: {k:,} rows have a gold label but no label from {name}: {fate}.", file=sys.stderr
        )
    print(f"note: every system is scored on the same {len(rows):,} rows.", file=sys.stderr)
    out = {
        "n": len(rows),
        "left_out": {
            "no_gold_label": len(gold) - len(coded),
            "blank_label": len(coded) - len(rows),
        },
        "blank_labels": blanks,
        "blank_is_wrong": args.blank_is_wrong,
        "systems": [
            {
                "name": name,
                "kind": kind,
                **compare(
                    truth, preds[name], positive_label=args.positive_label, seed=args.seed
                ).to_dict(),
            }
            for name, (kind, _) in systems.items()
        ],
        "differences": [
            {
                "a": args.model_dir,
                "b": name,
                **{
                    metric: paired_difference(
                        truth, preds[args.model_dir], preds[name], metric=metric, seed=args.seed
                    ).to_dict()
                    for metric in ("macro_f1", "accuracy")
                },
            }
            for name in args.compare
        ],
    }
    print(json.dumps(out, ensure_ascii=False))
    return 0


def _check_positive(positive_label: str | None, truth: list) -> None:
    if positive_label is not None and positive_label not in set(truth):
        raise UserError(f"The positive label '{positive_label}' is not among the gold labels.")


def _compared_labels(frame, source: str, args: argparse.Namespace) -> tuple[str, list]:
    """A compared system's label per row of the test file: a column of it, or the predictions
    of another model folder (None where a cell is blank)."""
    from pathlib import Path

    from distill_core.corpus import is_blank

    if source in frame.columns:
        return "column", [None if is_blank(v) else str(v).strip() for v in frame[source]]
    if Path(source).is_dir():
        return "model", list(_predict_texts(source, frame[args.text_column]).labels)
    raise UserError(
        f"--compare '{source}' is neither a column of {args.test} nor a model folder "
        f"(columns: {', '.join(map(str, frame.columns))})."
    )


def cmd_export(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from sqlalchemy import select

    from distill_core.config import Settings
    from distill_core.reports import export
    from distill_core.store import Project, Store
    from distill_core.study.projects import ProjectError
    from distill_core.study.students import StudentError

    env = dict(os.environ, DISTILL_HOME=args.home) if args.home else None
    settings = Settings.from_env(env)
    if settings.is_sqlite:
        db = Path(settings.database_url.split("///", 1)[-1])
        if not db.is_file():
            raise UserError(f"There is no Distill store at {db}; give --home or DISTILL_HOME.")
    store = Store(settings.database_url)
    try:
        store.migrate()
        with store.session() as s:
            wanted = args.project.strip()
            project = s.scalar(select(Project).where(Project.name == wanted))
            if project is None and wanted.isdigit():
                project = s.get(Project, int(wanted))
            if project is None:
                raise UserError(f"There is no project named or numbered '{wanted}'.")
            user = _acting_user(s, settings, args.user)
            output = Path(args.output)
            try:
                renames = _write_atomically(
                    output,
                    lambda fh: export.export_project(
                        s,
                        user,
                        project.id,
                        args.format,
                        fh,
                        settings=settings,
                        probabilities=args.probabilities,
                    ),
                )
            except (export.ExportError, ProjectError, StudentError) as exc:
                raise UserError(str(exc)) from exc
    finally:
        store.dispose()
    if renames:
        listed = ", ".join(f"{a} -> {b}" for a, b in renames.items())
        print(f"note: renamed for Stata: {listed}.", file=sys.stderr)
    print(f"Wrote {output}.", file=sys.stderr)
    return 0


def _acting_user(session, settings, username: str | None):
    """The user a command acts as: the one named, or the local user in single-user mode; roles
    apply to the command line as to the pages."""
    from sqlalchemy import select

    from distill_core.store import User
    from distill_core.study.projects import LOCAL_USERNAME

    if username is None:
        if settings.hosted:
            raise UserError("Name the user to act as with --user (sign-in is on for this server).")
        username = LOCAL_USERNAME
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        raise UserError(f"There is no admitted user named '{username}'.")
    return user


def _admin_store():
    """The app's store (DISTILL_DATABASE_URL or DISTILL_HOME), migrated."""
    from distill_core.config import Settings
    from distill_core.store import Store

    settings = Settings.from_env()
    if settings.is_sqlite:
        settings.home.mkdir(parents=True, exist_ok=True)
    store = Store(settings.database_url)
    store.migrate()
    return store


def _admin_call(fn: Callable):
    """``fn(session)`` in a committed session of the app's store; account errors become one
    line."""
    from distill_core.study.access import ProjectError
    from distill_core.study.accounts import AccountError

    store = _admin_store()
    try:
        with store.session() as s:
            return fn(s)
    except (AccountError, ProjectError) as exc:
        raise UserError(str(exc)) from exc
    finally:
        store.dispose()


def _named_user(session, name: str):
    from distill_core.study.accounts import find_user

    user = find_user(session, name)
    if user is None:
        raise UserError(f"There is no user named '{name}'.")
    return user


def _new_password(args: argparse.Namespace) -> str:
    """One line of standard input (--password-stdin), or asked twice on the terminal."""
    import getpass

    if args.password_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            raise UserError("Standard input held no password (one line was expected).")
        return password
    if not sys.stdin.isatty():
        raise UserError("There is no terminal to ask for the password: use --password-stdin.")
    first = getpass.getpass("New password: ")
    if getpass.getpass("The same password again: ") != first:
        raise UserError("The two passwords differ; nothing was changed.")
    return first


def cmd_admin_create_user(args: argparse.Namespace) -> int:
    from distill_core.study import accounts

    password = _new_password(args)
    user = _admin_call(
        lambda s: accounts.create_user(
            s,
            None,
            args.name,
            password,
            email=args.email,
            admin=args.admin,
            display_name=args.display_name,
        )
    )
    kind = "administrator's account" if user.is_admin else "account"
    print(f"Made the {kind} '{user.username}' (id {user.id}).", file=sys.stderr)
    return 0


def cmd_admin_set_password(args: argparse.Namespace) -> int:
    from distill_core.study import accounts

    password = _new_password(args)
    user = _admin_call(
        lambda s: accounts.set_password(s, None, _named_user(s, args.name).id, password)
    )
    print(f"Set a new password for '{user.username}'.", file=sys.stderr)
    return 0


def cmd_admin_admit(args: argparse.Namespace) -> int:
    from distill_core.study import accounts

    user = _admin_call(lambda s: accounts.admit(s, None, _named_user(s, args.name).id))
    print(f"Admitted '{user.username}'.", file=sys.stderr)
    return 0


def cmd_admin_list_users(args: argparse.Namespace) -> int:
    from distill_core.clock import utcnow
    from distill_core.study import accounts

    users = _admin_call(lambda s: accounts.list_users(s, None))
    now = utcnow()
    rows = []
    for u in users:
        locked = u.locked_until is not None and u.locked_until > now
        rows.append(
            {
                "id": u.id,
                "username": u.username,
                "name": u.display_name,
                "email": u.email or "",
                "admin": u.is_admin,
                "admitted": u.active,
                "password": u.has_password,
                "locked": locked,
            }
        )
    if args.json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
        return 0
    if not rows:
        print("No users yet: make one with `admin create-user NAME --admin`.", file=sys.stderr)
        return 0
    header = ["id", "username", "name", "email", "admin", "admitted", "password", "locked"]
    cells = [
        [str(r[h]) if not isinstance(r[h], bool) else ("yes" if r[h] else "no") for h in header]
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    for line in [header, *cells]:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    return 0


def _require_columns(frame, columns, name: str) -> None:
    for column in columns:
        if column not in frame.columns:
            raise UserError(
                f"The column '{column}' is not in {name} (columns: {', '.join(map(str, frame.columns))})."
            )


def _labels_by_id(table, id_column: str, label_column: str, name: str) -> dict[str, str | None]:
    """id → label of a read table; missing labels stay None (they count as wrong predictions)."""
    from distill_core.corpus import id_text, is_blank

    frame = table.frame
    for column in (id_column, label_column):
        if column not in frame.columns:
            raise UserError(
                f"The column '{column}' is not in {name} (columns: {', '.join(map(str, frame.columns))})."
            )
    ids = [id_text(v) for v in frame[id_column]]
    if len(set(ids)) != len(ids):
        raise UserError(f"The id column '{id_column}' of {name} has repeated values.")
    labels = [None if is_blank(v) else str(v).strip() for v in frame[label_column]]
    return dict(zip(ids, labels, strict=True))


class _ProgressBar:
    """A one-line progress bar on stderr (redrawn in place when stderr is a terminal)."""

    def __init__(self, title: str) -> None:
        self.title, self.last, self.width = title, -1.0, 0
        self.tty = sys.stderr.isatty()

    def update(self, done: int, total: int, note: str = "") -> None:
        share = done / total if total else 1.0
        if not self.tty and share - self.last < 0.1 and share < 1.0:
            return
        self.last = share
        filled = int(share * 30)
        line = (
            f"{self.title} [{'#' * filled}{'.' * (30 - filled)}] {done:,}/{total:,} ({share:.0%})"
        )
        if note:
            line = f"{line}, {note}"
        if self.tty:
            line = line.ljust(self.width)  # blank what a longer line left
            self.width = len(line)
        print(
            ("\r" + line) if self.tty else line,
            end="" if self.tty else "\n",
            file=sys.stderr,
            flush=True,
        )

    def close(self) -> None:
        if self.tty:
            print(file=sys.stderr)


def _write_csv_atomically(frame, path) -> None:
    """Write to a temporary file beside ``path`` and rename: never a half-written output."""
    import io

    def write(fh) -> None:
        text = io.TextIOWrapper(fh, encoding="utf-8", newline="")
        frame.to_csv(text, index=False)
        text.flush()
        text.detach()

    _write_atomically(path, write)


def _write_atomically(path, write: Callable):
    """Call ``write`` with a binary file beside ``path``, then rename it to ``path`` (never a
    half-written output: on any error the temporary file is removed); returns what it returned."""
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            result = write(fh)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return result


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exception types whose message is meant for the user."""
    from distill_core.codebook import CodebookError
    from distill_core.corpus import CorpusError
    from distill_core.student.args import TrainingError

    return (
        UserError,
        CorpusError,
        CodebookError,
        TrainingError,
        FileNotFoundError,
        IsADirectoryError,
        PermissionError,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except _user_errors() as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print("error: interrupted.", file=sys.stderr)
        return 130


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError | IsADirectoryError | PermissionError) and exc.filename:
        reason = {
            FileNotFoundError: "does not exist",
            IsADirectoryError: "is a folder, not a file",
            PermissionError: "cannot be read (permission denied)",
        }[type(exc)]
        return f"The file {exc.filename} {reason}."
    return " ".join(str(exc).split())
