"""The listenable head grid: one concept's per-head effects as a layer x head table whose
cells play the audio of that head patched, next to the clean and corrupted audio.

A step that measures heads writes a *head-grid document* (:func:`head_grid_data`) as a
JSON file named ``head-grid-<concept>.json`` among its files (``StepContext.save_json``);
the report draws every such file of a step as a grid (:func:`head_grid_html`). The
document holds relative paths of WAV files the step wrote; a cell without one is drawn
but does not play.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from interp.experiments.report.media import audio, esc, file_url
from interp.experiments.report.tables import fmt
from interp.sites import Site
from interp.statistics import Effect

#: File names (under the step's ``data/`` folder) the report draws as head grids.
HEAD_GRID_PREFIX = "head-grid-"


def head_grid_data(
    concept: str,
    effects: Mapping[str, Effect],
    *,
    subset: Sequence[str] = (),
    significant: Sequence[str] = (),
    q: Mapping[str, float] | None = None,
    alpha: float | None = None,
    audio: Mapping[str, str] | None = None,
    clips: Mapping[str, str] | None = None,
    pair: tuple[str, str] | None = None,
    seed: int | None = None,
    direction: str = "denoising",
) -> dict[str, Any]:
    """A JSON-ready head-grid document.

    Args:
        concept: The concept's name (the grid's title).
        effects: Head site name -> its normalized effect.
        subset: The located heads (outlined).
        significant: Heads whose effect is significant (marked ``*``).
        q: Head site name -> its q value (shown on hover).
        alpha: The false discovery rate of ``significant``.
        audio: Head site name -> the run-relative WAV of that head patched.
        clips: Label (``clean``, ``corrupted``, ...) -> run-relative WAV shown beside the grid.
        pair: The (clean, corrupted) prompts of the audio.
        seed: The seed of the audio.
        direction: The patching direction of the effects (``denoising``: clean into
            corrupted, a positive effect restores the concept; ``noising`` or
            ``ablation``: a positive effect removes it).
    """
    audio, q = audio or {}, q or {}
    cells = []
    for name, effect in effects.items():
        site = Site.parse(name)
        if site.head is None:
            raise ValueError(f"{name!r} is not a head site (a head grid shows heads such as cross.3.head.1)")
        cells.append(
            {
                "site": name,
                "row": f"{site.attention} {site.layer}",
                "head": site.head,
                "effect": effect.mean,
                "ci_low": effect.ci_low,
                "ci_high": effect.ci_high,
                "q": q.get(name),
                "significant": name in significant,
                "in_subset": name in subset,
                "audio": audio.get(name),
            }
        )
    return {
        "concept": concept,
        "cells": cells,
        "alpha": alpha,
        "clips": dict(clips or {}),
        "pair": None if pair is None else {"clean": pair[0], "corrupted": pair[1]},
        "seed": seed,
        "direction": direction,
    }


def _colour(value: float, bound: float) -> tuple[str, str]:
    """Background (white to red for positive, to blue for negative) and text colour."""
    t = max(-1.0, min(1.0, value / bound)) if bound > 0 else 0.0
    end = (178, 24, 43) if t >= 0 else (33, 102, 172)
    rgb = tuple(round(255 + (e - 255) * abs(t)) for e in end)
    return "#{:02x}{:02x}{:02x}".format(*rgb), ("#fff" if abs(t) > 0.6 else "#111")


def _rows(cells: Sequence[Mapping[str, Any]]) -> list[str]:
    def key(row: str) -> tuple[str, int]:
        name, _, layer = row.rpartition(" ")
        return (name, int(layer)) if layer.isdigit() else (row, 0)

    return sorted({c["row"] for c in cells}, key=key)


def _cell(cell: Mapping[str, Any], bound: float, out_dir: Path, inline: bool) -> str:
    value = cell["effect"]
    background, colour = _colour(value, bound)
    mark = "*" if cell["significant"] else ""
    hover = f"{cell['site']}: effect {fmt(value)} [{fmt(cell['ci_low'])}, {fmt(cell['ci_high'])}]"
    if cell.get("q") is not None:
        hover += f", q {fmt(cell['q'])}"
    css = ' class="subset"' if cell["in_subset"] else ""
    text = f"{value:.2f}".replace("-0.00", "0.00") + mark
    style = f"background:{background};color:{colour}"
    if cell.get("audio"):
        url = esc(file_url(out_dir, cell["audio"], inline))
        body = (
            f'<button type="button" data-audio="{url}" data-label="{esc(hover)}" '
            f'onclick="tadaPlay(this)" style="color:{colour}">{esc(text)}</button>'
        )
    else:
        body = esc(text)
    return f'<td{css} style="{style}" title="{esc(hover)}">{body}</td>'


def head_grid_html(doc: Mapping[str, Any], out_dir: Path, inline: bool) -> str:
    """A head-grid document as a clickable grid with its audio players."""
    cells = list(doc.get("cells", []))
    if not cells:
        return f"<p>{esc(doc.get('concept'))}: no heads measured.</p>"
    n_heads = max(int(c["head"]) for c in cells) + 1
    bound = max(abs(float(c["effect"])) for c in cells)
    at = {(c["row"], int(c["head"])): c for c in cells}
    head = "".join(f"<th>{h}</th>" for h in range(n_heads))
    body = []
    for row in _rows(cells):
        tds = "".join(
            _cell(at[(row, h)], bound, out_dir, inline) if (row, h) in at else "<td></td>"
            for h in range(n_heads)
        )
        body.append(f"<tr><th>{esc(row)}</th>{tds}</tr>")
    direction = str(doc.get("direction", "denoising"))
    red = "restores the concept" if direction == "denoising" else "removes the concept"
    legend = f"colour: normalized {esc(direction)} effect (red {red}, blue the opposite)"
    if any(c["in_subset"] for c in cells):
        legend += "; outlined: located subset"
    if any(c["significant"] for c in cells) or doc.get("alpha") is not None:
        legend += f"; *: significant (q &le; {esc(fmt(doc.get('alpha')))})"
    playable = sum(1 for c in cells if c.get("audio"))
    if playable:
        legend += f"; click one of the {playable} heads to hear it patched"
    pair = doc.get("pair")
    prompts = (
        f'<p class="pair">clean: <q>{esc(pair["clean"])}</q> &middot; corrupted: '
        f"<q>{esc(pair['corrupted'])}</q>"
        + (f" &middot; seed {esc(doc.get('seed'))}" if doc.get("seed") is not None else "")
        + "</p>"
        if pair
        else ""
    )
    players = "".join(audio(out_dir, path, inline, label) for label, path in doc.get("clips", {}).items())
    if playable:
        players += (
            '<div class="audio patched"><span class="now">click a head</span><br>'
            '<audio class="patched" controls preload="none"></audio></div>'
        )
    return (
        f'<div class="grid"><h4>{esc(doc.get("concept"))}: {esc(direction)} effect per head</h4>{prompts}'
        f'<table class="heads"><thead><tr><th>layer \\ head</th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
        f'<p class="legend">{legend}</p><div class="players">{players}</div></div>'
    )
