"""The HTML report of a run: plots, audio players, summaries and the results table.

The same renderer serves ``index.html`` (files linked by relative path, so the
directory can be moved or served as is) and Jupyter (files embedded inline).
"""

import base64
import html
import json
from pathlib import Path
from typing import Any

from interp.experiments.units import write_text

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 72em; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 2px 8px; text-align: left; }
th { background: #f0f0f0; }
img { max-width: 100%; border: 1px solid #ddd; margin: 4px; }
.audio { display: inline-block; margin: 4px 12px 4px 0; font-size: 0.8em; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
"""


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _image(out_dir: Path, relative: str, inline: bool) -> str:
    if inline:
        data = base64.b64encode((out_dir / relative).read_bytes()).decode()
        return f'<img src="data:image/png;base64,{data}" alt="{_esc(relative)}">'
    return f'<img src="{_esc(relative)}" alt="{_esc(relative)}">'


def _audio(out_dir: Path, relative: str, inline: bool) -> str:
    if inline:
        try:
            from IPython.display import Audio

            player = Audio(filename=str(out_dir / relative))._repr_html_()
        except ImportError:
            data = base64.b64encode((out_dir / relative).read_bytes()).decode()
            player = f'<audio controls src="data:audio/wav;base64,{data}"></audio>'
    else:
        player = f'<audio controls preload="none" src="{_esc(relative)}"></audio>'
    return f'<div class="audio">{_esc(Path(relative).stem)}<br>{player}</div>'


def table_html(rows: list[dict[str, Any]], limit: int = 50) -> str:
    """An HTML table of the first ``limit`` rows (empty columns dropped)."""
    if not rows:
        return "<p>No rows.</p>"
    names = [n for n in rows[0] if any(r.get(n) not in (None, "") for r in rows)]
    head = "".join(f"<th>{_esc(n)}</th>" for n in names)
    body = "".join(
        "<tr>" + "".join(f"<td>{_esc(_fmt(r.get(n)))}</td>" for n in names) + "</tr>" for r in rows[:limit]
    )
    more = f"<p>{len(rows) - limit} more rows in results.csv.</p>" if len(rows) > limit else ""
    return f"<table><tr>{head}</tr>{body}</table>{more}"


def _fmt(value: Any) -> Any:
    return f"{value:.6g}" if isinstance(value, float) else value


def render(out_dir: Path, summary: dict[str, Any], rows: list[dict[str, Any]], inline: bool,
           audio_limit: int = 24) -> str:  # fmt: skip
    """The report's HTML body."""
    parts = [f"<h1>{_esc(summary.get('experiment'))}</h1>"]
    if summary.get("description"):
        parts.append(f"<p>{_esc(summary['description'])}</p>")
    parts.append(
        f"<p>Model <code>{_esc(summary.get('model'))}</code> &middot; {summary.get('rows', 0)} "
        f"rows &middot; "
        + ("" if inline else '<a href="results.csv">results.csv</a> &middot; '
           '<a href="summary.json">summary.json</a> &middot; <a href="spec.yaml">spec.yaml</a>')
        + "</p>"
    )  # fmt: skip
    for step in summary.get("steps", []):
        parts.append(f"<h2>{_esc(step['name'])} <small>({_esc(step['method'])}, "
                     f"{step['units']} units)</small></h2>")  # fmt: skip
        files = list(step.get("files", []))
        for plot in [f for f in files if f.endswith(".png")]:
            parts.append(_image(out_dir, plot, inline))
        shown = {k: v for k, v in step["summary"].items() if k != "audio"}
        parts.append(f"<pre>{_esc(json.dumps(shown, indent=1, sort_keys=True))}</pre>")
        audio = [f for f in files if f.endswith(".wav")]
        for clip in audio[:audio_limit]:
            parts.append(_audio(out_dir, clip, inline))
        if len(audio) > audio_limit:
            parts.append(f"<p>{len(audio) - audio_limit} more clips in audio/.</p>")
    parts.append("<h2>Results</h2>")
    parts.append(table_html(rows))
    return "\n".join(parts)


def write_report(out_dir: Path) -> Path:
    """Write ``index.html`` for a finished run directory."""
    from interp.experiments.table import read_table

    summary = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))
    rows = read_table(out_dir / "results.csv")
    body = render(out_dir, summary, rows, inline=False)
    page = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{_esc(summary.get('experiment'))}</title><style>{_STYLE}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )
    path = out_dir / "index.html"
    write_text(path, page)
    return path
