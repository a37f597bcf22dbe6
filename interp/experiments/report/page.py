"""The report page: one section per step (its head grids, captioned plots, summary tables,
audio players and data files), then the first rows of the results table.

The same renderer serves ``index.html`` (files linked by relative path, so the directory
can be moved or opened from disk with no server) and Jupyter (files embedded inline).
The page carries its own small CSS and script: nothing is loaded from the network.
"""

import json
from pathlib import Path
from typing import Any

from interp.experiments.report.heads import HEAD_GRID_PREFIX, head_grid_html
from interp.experiments.report.media import audio, esc, image, short_name
from interp.experiments.report.tables import summary_tables, table_html
from interp.experiments.units import write_text

STYLE = """
.tada { font-family: system-ui, sans-serif; color: #222; }
body.tada { margin: 2em; max-width: 80em; }
.tada table { border-collapse: collapse; font-size: 0.85em; margin: 0.4em 0 1.2em; }
.tada th, .tada td { border: 1px solid #ccc; padding: 2px 8px; text-align: left; vertical-align: top; }
.tada th { background: #f0f0f0; }
.tada td.num { text-align: right; font-variant-numeric: tabular-nums; }
.tada table.results th { cursor: pointer; }
.tada figure { display: inline-block; margin: 4px 12px 8px 0; vertical-align: top; }
.tada figure img { max-width: 100%; border: 1px solid #ddd; }
.tada figcaption { font-size: 0.8em; color: #555; }
.tada .audio { display: inline-block; margin: 4px 12px 4px 0; font-size: 0.8em; }
.tada .grid { margin: 0.5em 0 1.5em; }
.tada table.heads td { padding: 0; text-align: center; min-width: 3.2em; }
.tada table.heads td.subset { outline: 3px solid #000; outline-offset: -3px; }
.tada table.heads button { all: unset; cursor: pointer; display: block; padding: 3px 6px; }
.tada table.heads button:focus, .tada table.heads button.on { outline: 2px dashed #000; }
.tada .legend, .tada .pair, .tada .files { font-size: 0.8em; color: #555; }
.tada nav a { margin-right: 1em; }
.tada .scroll { overflow-x: auto; max-width: 100%; }
"""

#: Plays a head's audio in its grid's player; sorts the results table by a column.
SCRIPT = """
function tadaPlay(b) {
  var g = b.closest('.grid'), a = g.querySelector('audio.patched');
  g.querySelectorAll('button.on').forEach(function (x) { x.classList.remove('on'); });
  b.classList.add('on');
  a.src = b.getAttribute('data-audio');
  g.querySelector('.now').textContent = b.getAttribute('data-label');
  var p = a.play();
  if (p) { p.catch(function () {}); }
}
function tadaSort(th) {
  var body = th.closest('table').tBodies[0], i = th.cellIndex;
  var dir = th.getAttribute('data-dir') === 'asc' ? -1 : 1;
  th.setAttribute('data-dir', dir > 0 ? 'asc' : 'desc');
  var rows = Array.prototype.slice.call(body.rows);
  rows.sort(function (x, y) {
    var u = x.cells[i].textContent, v = y.cells[i].textContent, m = parseFloat(u), n = parseFloat(v);
    return dir * (isNaN(m) || isNaN(n) ? u.localeCompare(v) : m - n);
  });
  rows.forEach(function (r) { body.appendChild(r); });
}
"""


def _grid_files(files: list[str]) -> list[str]:
    return [f for f in files if Path(f).name.startswith(HEAD_GRID_PREFIX) and f.endswith(".json")]


def _step_section(out_dir: Path, step: dict[str, Any], inline: bool, audio_limit: int) -> list[str]:
    name = str(step["name"])
    parts = [
        f'<h2 id="step-{esc(name)}">{esc(name)} <small>({esc(step["method"])}, '
        f"{esc(step['units'])} units)</small></h2>"
    ]
    files = [str(f) for f in step.get("files", [])]
    grids = _grid_files(files)
    in_grids: set[str] = set()
    for path in grids:
        try:
            doc = json.loads((out_dir / path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            parts.append(f"<p>Head grid {esc(path)} cannot be read ({esc(error)}).</p>")
            continue
        in_grids.update(c["audio"] for c in doc.get("cells", []) if c.get("audio"))
        in_grids.update(doc.get("clips", {}).values())
        parts.append(head_grid_html(doc, out_dir, inline))
    parts.extend(image(out_dir, f, inline, step=name) for f in files if f.endswith(".png"))
    parts.append(summary_tables(step.get("summary", {}), skip=("audio",)))
    clips = [f for f in files if f.endswith(".wav") and f not in in_grids]
    parts.extend(audio(out_dir, clip, inline, step=name) for clip in clips[:audio_limit])
    if len(clips) > audio_limit:
        parts.append(f"<p>{len(clips) - audio_limit} more clips in audio/{esc(name)}/.</p>")
    data = [f for f in files if f.endswith((".json", ".csv", ".npy"))]
    if data and not inline:
        links = ", ".join(f'<a href="{esc(f)}">{esc(short_name(f, name))}</a>' for f in data)
        parts.append(f'<p class="files">Data: {links}</p>')
    return parts


def render(
    out_dir: Path, summary: dict[str, Any], rows: list[dict[str, Any]], inline: bool, audio_limit: int = 24
) -> str:
    """The report's HTML body (inside a ``<div class="tada">`` with its style and script).

    Args:
        out_dir: The run directory.
        summary: The run's ``summary.json``.
        rows: The rows of ``results.csv``.
        inline: Embed files as ``data:`` URLs (Jupyter) instead of linking them.
        audio_limit: Players shown per step, besides the head grids'.
    """
    steps = list(summary.get("steps", []))
    parts = [f"<style>{STYLE}</style><script>{SCRIPT}</script>", f"<h1>{esc(summary.get('experiment'))}</h1>"]
    if summary.get("description"):
        parts.append(f"<p>{esc(summary['description'])}</p>")
    links = (
        ""
        if inline
        else '<a href="results.csv">results.csv</a> &middot; <a href="summary.json">summary.json</a> '
        '&middot; <a href="spec.yaml">spec.yaml</a>'
    )
    parts.append(
        f"<p>Model <code>{esc(summary.get('model'))}</code> &middot; {esc(summary.get('rows', 0))} rows"
        + (f" &middot; {links}" if links else "")
        + "</p>"
    )
    if len(steps) > 1 and not inline:
        anchors = "".join(f'<a href="#step-{esc(s["name"])}">{esc(s["name"])}</a>' for s in steps)
        parts.append(f'<nav>{anchors}<a href="#results">results</a></nav>')
    for step in steps:
        parts.extend(_step_section(out_dir, step, inline, audio_limit))
    parts.append('<h2 id="results">Results</h2>')
    parts.append(table_html(rows))
    return '<div class="tada">\n' + "\n".join(parts) + "\n</div>"


def write_report(out_dir: Path) -> Path:
    """Write ``index.html`` for a finished run directory."""
    from interp.experiments.table import read_table

    summary = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))
    rows = read_table(out_dir / "results.csv")
    body = render(out_dir, summary, rows, inline=False)
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{esc(summary.get('experiment'))}</title></head>"
        f'<body class="tada">\n{body}\n</body></html>\n'
    )
    path = out_dir / "index.html"
    write_text(path, page)
    return path
