"""Escaping, and how the report points at a run's files: a relative link in ``index.html``
(the directory can be moved or opened from disk), the file's bytes inline in Jupyter."""

import base64
import html
from pathlib import Path
from typing import Any

_MIME = {".png": "image/png", ".wav": "audio/wav", ".json": "application/json"}


def esc(value: Any) -> str:
    """``value`` as HTML text or attribute value (``None`` as empty)."""
    return html.escape("" if value is None else str(value), quote=True)


def file_url(out_dir: Path, relative: str, inline: bool) -> str:
    """The URL of a run file: its relative path, or a ``data:`` URL when ``inline``."""
    if not inline:
        return relative
    mime = _MIME.get(Path(relative).suffix, "application/octet-stream")
    return f"data:{mime};base64," + base64.b64encode((out_dir / relative).read_bytes()).decode()


def caption(relative: str, prefix: str = "") -> str:
    """A caption from a file name: ``plots/locate-heads-tempo.png`` -> ``heads tempo``
    (``prefix``, the step's name, dropped from the front)."""
    stem = Path(relative).stem
    if prefix and stem.startswith(prefix + "-"):
        stem = stem[len(prefix) + 1 :]
    return " ".join(stem.replace("_", " ").replace("-", " ").split()) or stem


def image(out_dir: Path, relative: str, inline: bool, prefix: str = "") -> str:
    """A captioned image (lazy-loaded from disk, or inline)."""
    text = esc(caption(relative, prefix))
    return (
        f'<figure><img loading="lazy" src="{esc(file_url(out_dir, relative, inline))}" alt="{text}">'
        f"<figcaption>{text}</figcaption></figure>"
    )


def audio(out_dir: Path, relative: str, inline: bool, label: str | None = None, css: str = "") -> str:
    """A labelled audio player that loads nothing until played (``preload="none"``)."""
    name = esc(Path(relative).stem if label is None else label)
    kind = f" {esc(css)}" if css else ""
    return (
        f'<div class="audio{kind}"><span>{name}</span><br><audio controls preload="none" '
        f'src="{esc(file_url(out_dir, relative, inline))}"></audio></div>'
    )
