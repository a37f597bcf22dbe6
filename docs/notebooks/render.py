"""Execute the percent-format notebooks here and write them as .ipynb with outputs.

    python docs/notebooks/render.py [NAME.py ...]

The .py files are the source (reviewable diffs); the .ipynb files show real outputs
(plots, tables, audio players). CI executes the .py notebooks (tests/test_notebooks.py).
"""

import sys
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent


def execute(source: Path, timeout: int = 900) -> nbformat.NotebookNode:
    """Run a percent-format notebook in a fresh kernel (working directory: the repo root)."""
    notebook = jupytext.read(source)
    NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(HERE.parents[1])}},
    ).execute()
    return notebook


def main(names: list[str]) -> None:
    sources = [HERE / n for n in names] if names else sorted(HERE.glob("*.py"))
    for source in sources:
        if source.name == Path(__file__).name:
            continue
        notebook = execute(source)
        target = source.with_suffix(".ipynb")
        nbformat.write(notebook, target)
        print(f"wrote {target.relative_to(HERE.parents[1])}")


if __name__ == "__main__":
    main(sys.argv[1:])
