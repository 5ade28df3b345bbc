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


def test_no_pages_folder_beside_the_entry_script() -> None:
    """Streamlit runs a `pages/` folder beside app.py in its legacy mode and never runs app.py
    (no st.navigation, no sidebar, no page config): the pages live in app_pages/."""
    assert not (REPO / "pages").exists()
    assert (REPO / "app_pages").is_dir()
