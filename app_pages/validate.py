"""Validate: draw a sample, code it blind, import existing codes, score the LLM against humans."""

import html

import pandas as pd
import streamlit as st

import ui
from distill_core import agreement
from distill_core.corpus import CorpusError, read_table
from distill_core.study import projects, runs, validation

ctx = ui.context()
st.title("Validate")
st.caption(
    "Experts code a random sample; the LLM is scored against them. Revise the codebook on the "
    "development part; look at the held-out test part once, for the final judgement."
)
ui.require_step(ctx, "Data", "a corpus")
ui.require_step(ctx, "Codebook", "a saved codebook")
with ctx.store.session() as s:
    version = projects.latest_codebook(s, ctx.project_id)
    sample = validation.current_sample(s, ctx.project_id)
    label_runs = runs.project_runs(s, ctx.project_id, with_results=True)
codebook = projects.as_codebook(version)
names = codebook.label_names

code_tab, agree_tab, sample_tab, import_tab = st.tabs(
    ["Code", "Agreement", "Sample", "Import codes"]
)

# ---------------------------------------------------------------- sample
with sample_tab:
    if sample is not None:
        with ctx.store.session() as s:
            parts = pd.Series([d.part for d in validation.sample_docs(s, sample)]).value_counts()
        how = {
            "random": "simple random",
            "stratified": "stratified by LLM label",
            "imported": "given",
        }
        st.markdown(
            f"**Current sample:** {sample.n:,} texts ({how.get(sample.method, sample.method)}, seed "
            f"{sample.seed}): {parts.get('dev', 0):,} for development, {parts.get('test', 0):,} held out."
        )
        if sample.details.get("source"):
            st.caption(f"Source: {sample.details['source']}.")
    st.markdown(
        "**Draw a new sample.** The papers suggest 250–1,250 texts; rare categories need more (or "
        "a sample stratified by the LLM's labels, so that they appear). Codes already made are kept."
    )
    with st.form("draw_sample"):
        c1, c2, c3 = st.columns(3)
        n = c1.number_input("Sample size", 2, 100_000, 250)
        seed = c2.number_input("Random seed", 0, 2**31 - 1, 42)
        test_share = c3.slider("Held-out test share", 0.1, 0.9, 0.5, 0.05)
        method = st.radio(
            "Method",
            ["Simple random", "Stratified by LLM label"],
            horizontal=True,
            help="Stratified needs an LLM label run; its category shares are not the corpus's.",
        )
        run_for_strata = st.selectbox(
            "Label run to stratify by", label_runs, format_func=lambda r: f"Run {r.id} ({r.model})"
        )
        min_per = st.number_input("At least this many per label (stratified)", 0, 1000, 10)
        drawn = st.form_submit_button("Draw the sample", type="primary")
    half = agreement.expected_accuracy_halfwidth(int(n * (1 - test_share)))
    st.caption(
        f"With {int(n * (1 - test_share)):,} development texts, a 95% interval for an accuracy "
        f"of 80% is about ±{half:.1%} wide on each side."
    )
    if drawn:
        try:
            with ctx.store.session() as s:
                validation.draw_sample(
                    s,
                    ctx.user(s),
                    ctx.project_id,
                    n=int(n),
                    seed=int(seed),
                    test_share=float(test_share),
                    method="random" if method == "Simple random" else "stratified",
                    strata_run_id=run_for_strata.id if run_for_strata else None,
                    min_per_stratum=int(min_per),
                )
            st.session_state.pop("code_position", None)
            st.rerun()
        except validation.ValidationError as exc:
            st.error(str(exc))

if sample is None:
    with code_tab:
        st.info("Draw a sample first (Sample tab).")
    st.stop()

with ctx.store.session() as s:
    docs = validation.sample_docs(s, sample)
    codes = validation.codes_frame(s, ctx.project_id)
sample_ids = {d.doc_id for d in docs}

# ---------------------------------------------------------------- coding
with code_tab:
    coder = st.text_input(
        "Your name as a coder",
        key="coder_name",
        help="Each coder's labels are kept apart, so several people can code the same texts.",
    ).strip()
    if not coder:
        st.info("Type your name to start coding.")
    else:
        part = st.radio("Part", ["Development", "Held-out test"], horizontal=True, key="code_part")
        part_key = "dev" if part == "Development" else "test"
        items = [d for d in docs if d.part == part_key]
        mine = codes[codes["coder"] == coder].set_index("doc_id")["label"].to_dict()
        done = sum(1 for d in items if d.doc_id in mine)
        pos_key = f"code_position_{sample.id}_{part_key}"
        if pos_key not in st.session_state:
            st.session_state[pos_key] = next(
                (i for i, d in enumerate(items) if d.doc_id not in mine), 0
            )
        pos = min(st.session_state[pos_key], len(items) - 1)
        st.progress(done / len(items) if items else 0.0, text=f"{done} of {len(items)} coded")
        item = items[pos]
        llm = ui.llm_labels_for(ctx, label_runs, sample_ids)
        left, right = st.columns([3, 2])
        with left:
            st.caption(f"Text {pos + 1} of {len(items)} · id {item.doc_id}")
            with st.container(border=True):
                st.markdown(
                    f"<div style='font-size:1.2rem;line-height:1.6'>{html.escape(item.text)}</div>",
                    unsafe_allow_html=True,
                )
            own = mine.get(item.doc_id)

            def submit(label: str, doc_id: str = item.doc_id) -> None:
                with ctx.store.session() as s:
                    validation.save_code(s, ctx.user(s), ctx.project_id, doc_id, coder, label)
                st.session_state[f"_last_{sample.id}"] = doc_id
                st.session_state[pos_key] = _next_uncoded(pos)

            def _next_uncoded(start: int) -> int:
                for i in range(start + 1, len(items)):
                    if items[i].doc_id not in mine:
                        return i
                return min(start + 1, len(items) - 1)

            cols = st.columns(min(4, len(names)))
            for i, label in enumerate(names):
                shortcut = str(i + 1) if i < 9 else None
                cols[i % len(cols)].button(
                    f"{label}",
                    key=f"code_{label}",
                    type="primary" if own == label else "secondary",
                    shortcut=shortcut,
                    on_click=submit,
                    args=(label,),
                    width="stretch",
                )
            nav = st.columns(3)
            nav[0].button(
                "Back",
                shortcut="Left",
                disabled=pos == 0,
                key="code_back",
                on_click=lambda: st.session_state.update({pos_key: pos - 1}),
            )
            nav[1].button(
                "Skip",
                shortcut="Right",
                disabled=pos >= len(items) - 1,
                key="code_skip",
                on_click=lambda: st.session_state.update({pos_key: pos + 1}),
            )
            st.caption("Keys: 1–9 choose a label, ← back, → skip.")
            if own is not None:
                # Blind until submitted: the LLM's label shows only for texts this coder has coded.
                said = llm.get(item.doc_id)
                st.info(
                    f"Your code: **{own}**. "
                    + (f"The LLM said: **{said}**." if said else "No LLM label for this text yet.")
                )
            last = st.session_state.get(f"_last_{sample.id}")
            if last and last != item.doc_id and last in mine:
                said = llm.get(last)
                st.caption(
                    f"Previous text ({last}): you coded **{mine[last]}**"
                    + (f"; the LLM said **{said}**." if said else ".")
                )
        with right:
            st.markdown(f"**{codebook.name}**")
            if codebook.instructions:
                st.caption(codebook.instructions)
            for i, label in enumerate(codebook.labels):
                st.markdown(f"**{i + 1} · {label.name}** — {label.definition}")

# ---------------------------------------------------------------- agreement
with agree_tab:
    if codes.empty or not label_runs:
        st.info("Agreement needs human codes (Code or Import tab) and an LLM label run.")
    else:
        c1, c2, c3 = st.columns(3)
        run = c1.selectbox(
            "LLM label run",
            label_runs,
            format_func=lambda r: f"Run {r.id} ({r.model})",
            key="agree_run",
        )
        coder_names = sorted(codes["coder"].unique())
        gold_from = c2.selectbox(
            "Human labels", ["majority of coders"] + coder_names, key="agree_gold"
        )
        positive = c3.selectbox("Positive class for binary F1", ["(none)"] + names, key="agree_pos")
        gold, ties = validation.gold_labels(
            codes, None if gold_from == "majority of coders" else gold_from
        )
        if ties:
            st.caption(f"{ties} texts left out: their coders tie.")
        with ctx.store.session() as s:
            results = {r.doc_id: r for r in runs.run_results(s, run.id)}
        pred = {d: r.label for d, r in results.items()}
        parts = {d.doc_id: d.part for d in docs}

        def scores(part: str):
            """Agreement on one part, per-class F1 intervals, and the texts scored."""
            ids = [d for d in gold if parts.get(d) == part and d in pred]
            if len(ids) < 2:
                return None, None, ids
            g, p = [gold[d] for d in ids], [pred[d] for d in ids]
            result = agreement.compare(
                g, p, labels=names, positive_label=None if positive == "(none)" else positive
            )
            return result, agreement.class_f1_intervals(g, p, names), ids

        dev, dev_ci, dev_ids = scores("dev")
        st.subheader("Development part")
        if dev is None:
            st.info("Fewer than 2 development texts have both a human code and an LLM label.")
        else:
            ui.show_agreement(dev, title=f"LLM run {run.id} vs human, development", class_ci=dev_ci)
            disagree = validation.disagreements(
                {d.doc_id: d.text for d in docs}, codes, gold, results, dev_ids
            )
            st.markdown(
                f"**Disagreements** ({len(disagree)} of {len(dev_ids)}): where to sharpen the "
                "codebook. Click a column to sort."
            )
            f1, f2 = st.columns(2)
            by_human = f1.multiselect("Human label", names, key="dis_human")
            by_llm = f2.multiselect("LLM label", names, key="dis_llm")
            if by_human:
                disagree = disagree[disagree["human"].isin(by_human)]
            if by_llm:
                disagree = disagree[disagree["LLM"].isin(by_llm)]
            st.dataframe(disagree, hide_index=True, width="stretch")
        if len(label_runs) > 1:
            st.subheader("Codebook versions on the same development texts")
            with ctx.store.session() as s:
                version_of = {
                    v.id: v.version for v in projects.codebook_versions(s, ctx.project_id)
                }
                preds = {
                    f"v{version_of.get(r.codebook_version_id, '?')} · run {r.id} ({r.model})": {
                        i.doc_id: i.label for i in runs.run_results(s, r.id)
                    }
                    for r in label_runs
                }
            dev_docs = [d.doc_id for d in docs if d.part == "dev"]
            summary, wins = validation.compare_runs(gold, preds, dev_docs)
            if summary.empty:
                st.info("The runs share fewer than 2 human-coded development texts.")
            else:
                st.dataframe(summary, hide_index=True, width="stretch")
                differ = wins[wins.drop(columns=["doc_id", "human"]).nunique(axis=1) > 1]
                st.caption(f"{len(differ)} texts where the runs disagree on being right:")
                st.dataframe(differ, hide_index=True, width="stretch")
        st.subheader("Held-out test part")
        seen = sample.test_seen_at is not None
        if not seen:
            st.warning(
                "Look at the test score once, when the codebook is final: re-scoring revised "
                "codebooks on the same texts overfits. Distill records when you first looked."
            )
        if seen or st.button("Show the held-out test score"):
            with ctx.store.session() as s:
                validation.mark_test_seen(s, sample.id, version.version)
            test, test_ci, _ = scores("test")
            if test is None:
                st.info("Fewer than 2 test texts have both a human code and an LLM label.")
            else:
                ui.show_agreement(
                    test, title=f"LLM run {run.id} vs human, held-out test", class_ci=test_ci
                )
        if len(coder_names) > 1:
            st.subheader("Agreement among human coders")
            per_coder = {
                c: dict(zip(g["doc_id"], g["label"], strict=True))
                for c, g in codes.groupby("coder")
            }
            inter = agreement.pairwise_agreement(per_coder)
            ui.show_intercoder(inter)

# ---------------------------------------------------------------- import
with import_tab:
    st.markdown("Import codes made elsewhere (CSV, TSV, Excel), matched to the corpus by id.")
    upload = st.file_uploader("Codes file", type=["csv", "tsv", "txt", "xlsx"], key="codes_upload")
    if upload is not None:
        try:
            table = read_table(upload.getvalue(), upload.name)
        except CorpusError as exc:
            st.error(str(exc))
        else:
            cols = list(table.frame.columns)
            c1, c2, c3 = st.columns(3)
            id_col = c1.selectbox("Id column", cols, key="imp_id")
            label_col = c2.selectbox(
                "Label column", cols, index=min(1, len(cols) - 1), key="imp_label"
            )
            coder_col = c3.selectbox("Coder column", ["(one coder)"] + cols, key="imp_coder_col")
            coder_name = ""
            if coder_col == "(one coder)":
                coder_name = st.text_input("Coder name for these codes", key="imp_coder")
            try:
                with ctx.store.session() as s:
                    plan = validation.plan_import(
                        s,
                        ctx.project_id,
                        table.frame,
                        id_column=id_col,
                        label_column=label_col,
                        label_names=names,
                        coder_column=None if coder_col == "(one coder)" else coder_col,
                        coder=coder_name,
                    )
            except validation.ValidationError as exc:
                st.error(str(exc))
            else:
                st.markdown("\n".join(f"- {line}" for line in plan.lines()))
                if plan.codes and st.button(f"Import {len(plan.codes):,} codes", type="primary"):
                    with ctx.store.session() as s:
                        validation.apply_import(
                            s, ctx.user(s), ctx.project_id, plan, f"import:{upload.name}"
                        )
                    st.toast(f"Imported {len(plan.codes):,} codes.")
                    st.rerun()
