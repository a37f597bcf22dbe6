"""The results of a run, as a Python object that also displays in Jupyter."""

import hashlib
import json
from pathlib import Path
from typing import Any

from interp.errors import TadaError


class Results:
    """A finished run directory.

    Attributes:
        path: The run directory.
        summary: The contents of ``summary.json``.
        rows: The results table as dictionaries.

    In Jupyter the object displays as the report: plots, audio players and the table.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        summary_file = self.path / "summary.json"
        if not summary_file.is_file():
            hint = (
                " It has a units/ folder: the run was interrupted; rerun `tada run` with the "
                "same spec and --out to finish it."
                if (self.path / "units").is_dir()
                else " Give a directory written by `tada run`."
            )
            raise TadaError(f"{str(self.path)!r} holds no finished run (no summary.json).{hint}")
        self.summary: dict[str, Any] = _read_summary(summary_file)
        self.rows: list[dict[str, Any]] = _read_rows(self.path / "results.csv", self.summary)

    @property
    def steps(self) -> dict[str, dict[str, Any]]:
        """Each step's outcome (method, units, summary, files) by name."""
        return {s["name"]: s for s in self.summary["steps"]}

    def _files(self, suffix: str) -> list[Path]:
        found = []
        for step in self.summary["steps"]:
            for f in step.get("files", []):
                if f.endswith(suffix) and self.path / f not in found:
                    found.append(self.path / f)
        return found

    @property
    def plots(self) -> list[Path]:
        """PNG files of the run."""
        return self._files(".png")

    @property
    def audio(self) -> list[Path]:
        """WAV files of the run."""
        return self._files(".wav")

    def to_pandas(self) -> Any:
        """The results table as a pandas DataFrame (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            raise TadaError("to_pandas() needs pandas: pip install pandas.") from None
        return pd.read_csv(self.path / "results.csv")

    def play(self, index: int = 0) -> Any:
        """An ``IPython.display.Audio`` player for one of :attr:`audio`."""
        from IPython.display import Audio

        return Audio(filename=str(self.audio[index]))

    def text(self) -> str:
        """A plain-text summary (what ``tada show`` prints)."""
        s = self.summary
        lines = [f"{s['experiment']}  (model {s['model']}, {s['rows']} rows)  {self.path}"]
        if s.get("description"):
            lines.append(f"  {s['description']}")
        for step in s["steps"]:
            lines.append(f"- {step['name']} [{step['method']}], {step['units']} units")
            for key, value in step["summary"].items():
                if key == "audio":
                    lines.append(f"    audio: {len(value)} files under audio/{step['name']}/")
                    continue
                text = json.dumps(value, sort_keys=True)
                lines.append(f"    {key}: {text if len(text) <= 200 else text[:197] + '...'}")
        lines.append(f"Files: {self.path / 'results.csv'}, {self.path / 'index.html'}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Results({str(self.path)!r}, rows={len(self.rows)})"

    def _repr_html_(self) -> str:
        from interp.experiments.report import render

        return render(self.path, self.summary, self.rows, inline=True)


def _damaged(run_dir: Path, what: str) -> TadaError:
    return TadaError(
        f"The run in {str(run_dir)!r} is damaged: {what}. Rerun `tada run` with the same spec "
        f"and --out to rebuild it (finished units are reused)."
    )


def table_digest(path: Path) -> str:
    """SHA-256 of a results table, kept in ``summary.json`` to detect damage."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_summary(path: Path) -> dict[str, Any]:
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
        valid = (
            isinstance(summary, dict)
            and {"experiment", "model"} <= set(summary)
            and isinstance(summary.get("rows"), int)
            and all(
                isinstance(s, dict) and {"name", "method", "units", "summary"} <= set(s)
                and isinstance(s["summary"], dict)
                for s in summary["steps"]
            )
        )  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise _damaged(path.parent, f"summary.json cannot be read ({error})") from None
    if not valid:
        raise _damaged(path.parent, "summary.json lacks the fields a run writes")
    return summary


def _read_rows(path: Path, summary: dict[str, Any]) -> list[dict[str, Any]]:
    from interp.experiments.table import read_table

    digest = summary.get("table_sha256")
    try:
        if digest is not None and table_digest(path) != digest:
            raise _damaged(
                path.parent, "results.csv differs from the table the run wrote (truncated or edited)"
            )
        rows = read_table(path)
    except (OSError, ValueError, TypeError) as error:
        raise _damaged(path.parent, f"results.csv cannot be read ({error})") from None
    if len(rows) != summary["rows"]:
        raise _damaged(
            path.parent, f"results.csv holds {len(rows)} rows where the run wrote {summary['rows']}"
        )
    return rows
