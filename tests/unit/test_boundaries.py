"""Architecture rules: the core never imports streamlit; torch and transformers load lazily;
the upload limit is the same in the core and in Streamlit's config."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from distill_core.config import MAX_UPLOAD_MB

REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "distill_core"


def test_no_module_of_the_core_imports_streamlit() -> None:
    pattern = re.compile(r"^\s*(import\s+streamlit|from\s+streamlit\b)", re.M)
    offenders = [
        str(p.relative_to(REPO)) for p in CORE.rglob("*.py") if pattern.search(p.read_text())
    ]
    assert offenders == []


def test_importing_every_core_module_loads_neither_streamlit_nor_torch() -> None:
    code = (
        "import importlib, pkgutil, sys, distill_core\n"
        "skip = ('distill_core.__main__', 'distill_core.store.migrations')\n"
        "for m in pkgutil.walk_packages(distill_core.__path__, 'distill_core.'):\n"
        "    if not m.name.startswith(skip): importlib.import_module(m.name)\n"
        "heavy = sorted(n for n in ('streamlit', 'torch', 'transformers', 'sentence_transformers') if n in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def test_cli_help_works_without_loading_torch() -> None:
    code = "import sys, runpy\nsys.argv=['distill_core','--help']\ntry:\n    runpy.run_module('distill_core', run_name='__main__')\nexcept SystemExit: pass\nprint('TORCH' if 'torch' in sys.modules else 'LIGHT')"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert "ingest" in out.stdout
    assert out.stdout.strip().endswith("LIGHT")


def test_upload_limit_agrees_with_streamlit_config() -> None:
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == MAX_UPLOAD_MB


def test_bundled_model_is_found_offline() -> None:
    from distill_core.bundled import bundled_model_path, resolve_model

    path = bundled_model_path()
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    assert resolve_model(None) == str(path) == resolve_model("all-MiniLM-L6-v2")
    assert resolve_model("roberta-base") == "roberta-base"


def test_pages_live_in_steps_and_the_menu_lists_every_one() -> None:
    """The pages live in steps/, never pages/: a fresh server asked for a page's URL before
    app.py has run once treats a pages/ folder as Streamlit's legacy multipage app and runs
    the file bare, without app.py's menu and error guard (seen in a live run with Streamlit
    1.67; tests/e2e/test_browser.py checks the first load)."""
    from ui.context import PAGES

    listed = {script for script, _ in PAGES.values()}
    on_disk = {f"steps/{p.name}" for p in (REPO / "steps").glob("*.py")}
    assert listed == on_disk
    assert not (REPO / "pages").exists()


def test_pages_are_short_scripts_that_open_no_session_of_their_own() -> None:
    for page in (REPO / "steps").glob("*.py"):
        text = page.read_text()
        assert len(text.splitlines()) <= 150, page.name
        assert "store.session(" not in text, page.name


#: Layers of the core, lowest first: a module may import its own package and anything in a
#: lower layer, never a higher one (store ← study ← jobs, reports ← cli).
LAYERS = [
    {"__init__", "clock", "config", "values", "keys", "proportions"},
    {"agreement", "sampling", "estimate", "codebook", "bundled"},
    {"corpus", "llm", "student"},
    {"store"},
    {"study"},
    {"jobs", "reports"},
    {"cli"},
    {"__main__"},
]


def _core_imports() -> dict[str, set[str]]:
    """Every module of the core and the core modules it imports, at any depth of its code
    (imports inside functions included)."""
    import ast

    graph: dict[str, set[str]] = {}
    for path in CORE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        rel = path.relative_to(REPO).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.startswith("distill_core"):
                    found.add(node.module)
                    found |= {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("distill_core")}
        graph[name] = found
    return {m: {i for i in imps if i in graph and i != m} for m, imps in graph.items()}


def _layer(module: str) -> tuple[int, str]:
    part = module.split(".")[1] if "." in module else "__init__"
    for rank, names in enumerate(LAYERS):
        if part in names:
            return rank, part
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def test_no_import_reaches_a_higher_layer_or_a_sibling_package() -> None:
    bad = []
    for module, imports in _core_imports().items():
        rank, part = _layer(module)
        for target in imports:
            t_rank, t_part = _layer(target)
            if t_part != part and t_rank >= rank and t_part != "__init__":
                bad.append(f"{module} imports {target}")
    assert bad == []


def test_no_import_circle_in_the_core() -> None:
    graph = _core_imports()
    state: dict[str, int] = {}
    circles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append(path[path.index(nxt) :] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert circles == []
