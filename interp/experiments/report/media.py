"""Escaping, and how the report points at a run's files: a relative link in ``index.html``
(the directory can be moved or opened from disk), the file's bytes inline in Jupyter."""

import base64
import html
import re
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


#: Folder names that say nothing about a file (the run's standard folders).
_GENERIC = {"plots", "audio", "data", "arrays"}


def short_name(relative: str, step: str = "") -> str:
    """A run file's path without its top folder, generic folders and the step's name:
    ``steering/steer/localized/curves.png`` -> ``localized/curves.png`` (step ``steer``),
    ``plots/locate-heads-tempo.png`` -> ``heads-tempo.png`` (step ``locate``)."""
    parts = Path(relative).parts
    folders = [p for p in parts[1:-1] if p != step and p not in _GENERIC]
    name = parts[-1]
    if step and name.startswith(step + "-"):
        name = name[len(step) + 1 :]
    return "/".join([*folders, name])


def caption(relative: str, step: str = "") -> str:
    """A caption from a file's path: ``plots/locate-heads-tempo.png`` -> ``heads tempo``,
    ``steering/steer/localized/curves.png`` -> ``localized curves`` (step ``steer``)."""
    text = str(Path(short_name(relative, step)).with_suffix(""))
    spaced = " " + text.replace("_", " ").replace("/", " ")
    spaced = re.sub(r"(?<!\s)-|-(?!\d)", " ", spaced)  # a separator, not the sign of a number
    return " ".join(spaced.split()) or text


def image(out_dir: Path, relative: str, inline: bool, step: str = "") -> str:
    """A captioned image (lazy-loaded from disk, or inline)."""
    text = esc(caption(relative, step))
    return (
        f'<figure><img loading="lazy" src="{esc(file_url(out_dir, relative, inline))}" alt="{text}">'
        f"<figcaption>{text}</figcaption></figure>"
    )


def audio(out_dir: Path, relative: str, inline: bool, label: str | None = None, step: str = "") -> str:
    """A labelled audio player (default label: the file's caption) that loads nothing
    until played (``preload="none"``)."""
    name = esc(caption(relative, step) if label is None else label)
    return (
        f'<div class="audio"><span>{name}</span><br><audio controls preload="none" '
        f'src="{esc(file_url(out_dir, relative, inline))}"></audio></div>'
    )
