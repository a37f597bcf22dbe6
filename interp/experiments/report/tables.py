"""Readable tables for a step's summary (nested dicts and lists) and the results table.

A summary's plain values form one ``key | value`` table; each nested entry gets its own:
a dict of dicts becomes rows (the outer keys, e.g. concepts) by columns (the inner keys,
e.g. metrics or sites), a list of dicts a table of records, anything else a two-column
table. Values nested deeper are written as compact cells (``a, b, c``; ``k: v; k: v``).
Everything is escaped.
"""

import math
from collections.abc import Mapping, Sequence
from typing import Any

from interp.experiments.report.media import esc

#: Items of a list shown in one compact cell before "(N more)".
CELL_ITEMS = 12
#: Columns of a rows-by-columns table before the rest is folded into one cell.
MAX_COLUMNS = 24


def fmt(value: Any) -> str:
    """A scalar as short text: floats to 4 significant digits, ``None`` as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def compact(value: Any) -> str:
    """Any JSON value as one line of plain (not yet escaped) text."""
    if _scalar(value):
        return fmt(value)
    if not value:
        return "(none)"
    if isinstance(value, Mapping):
        items = [f"{k}: {compact(v)}" for k, v in list(value.items())[:CELL_ITEMS]]
        more = len(value) - CELL_ITEMS
        return "; ".join(items) + (f"; ({more} more)" if more > 0 else "")
    if isinstance(value, Sequence):
        nested = any(not _scalar(v) for v in value)
        items = [f"[{compact(v)}]" if nested and not _scalar(v) else compact(v) for v in value[:CELL_ITEMS]]
        more = len(value) - CELL_ITEMS
        return ", ".join(items) + (f", ({more} more)" if more > 0 else "")
    return str(value)


def _cell(value: Any, tag: str = "td") -> str:
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    css = ' class="num"' if numeric else ""
    return f"<{tag}{css}>{esc(compact(value))}</{tag}>"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], css: str = "") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    cls = f' class="{esc(css)}"' if css else ""
    return (
        f'<div class="scroll"><table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
    )


def _columns(records: Sequence[Mapping[str, Any]]) -> list[str]:
    return list(dict.fromkeys(str(k) for r in records for k in r))


def value_table(value: Any, key_name: str = "") -> str:
    """One nested summary entry as a table (or a line, for a plain list or an empty value)."""
    if isinstance(value, Mapping) and value and all(isinstance(v, Mapping) for v in value.values()):
        columns = _columns(list(value.values()))
        shown, rest = columns[:MAX_COLUMNS], columns[MAX_COLUMNS:]
        rows = [
            [key, *(inner.get(c) for c in shown)]
            + ([{c: inner[c] for c in rest if c in inner}] if rest else [])
            for key, inner in value.items()
        ]
        return _table([key_name, *shown] + (["more"] if rest else []), rows)
    if isinstance(value, Mapping) and value:
        return _table([key_name, "value"], [[k, v] for k, v in value.items()])
    if isinstance(value, Sequence) and value and all(isinstance(v, Mapping) for v in value):
        columns = _columns(value)
        return _table(columns, [[r.get(c) for c in columns] for r in value])
    text = compact(value) if value not in ({}, []) else "(none)"
    return f'<p class="cell">{esc(text)}</p>'


def summary_tables(summary: Mapping[str, Any], skip: Sequence[str] = ()) -> str:
    """A step's summary as tables: plain values together, then one table per nested entry."""
    entries = {k: v for k, v in summary.items() if k not in skip}
    plain = [[k, v] for k, v in entries.items() if _scalar(v)]
    parts = [_table(["", "value"], plain, "plain")] if plain else []
    for key, value in entries.items():
        if not _scalar(value):
            parts.append(f"<h4>{esc(key)}</h4>{value_table(value)}")
    return "\n".join(parts)


def _number(value: Any) -> Any:
    """A CSV label column's number (read as text) as a float, to be shown short."""
    if isinstance(value, str) and value.strip():
        try:
            return float(value)
        except ValueError:
            return value
    return value


def table_html(rows: list[dict[str, Any]], limit: int = 50) -> str:
    """The first ``limit`` rows of the results (empty columns dropped); a click on a
    column's header sorts the rows shown."""
    if not rows:
        return "<p>No rows.</p>"
    names = [n for n in rows[0] if any(r.get(n) not in (None, "") for r in rows)]
    head = "".join(f'<th onclick="tadaSort(this)" title="sort">{esc(n)}</th>' for n in names)
    body = "".join("<tr>" + "".join(_cell(_number(r.get(n))) for n in names) + "</tr>" for r in rows[:limit])
    more = f"<p>{len(rows) - limit} more rows in results.csv.</p>" if len(rows) > limit else ""
    return (
        f'<div class="scroll"><table class="results"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>{more}"
    )
