"""The documentation notebooks execute without errors in a fresh Jupyter kernel."""

import importlib.util
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "docs" / "notebooks"
SOURCES = sorted(p for p in NOTEBOOKS.glob("*.py") if p.name != "render.py")


def _render_module():
    spec = importlib.util.spec_from_file_location("render", NOTEBOOKS / "render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_there_are_notebooks():
    assert any(p.name == "quickstart.py" for p in SOURCES)


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_notebook_executes(source):
    notebook = _render_module().execute(source)
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    images = [o for c in notebook.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, "a notebook should show at least one figure"
