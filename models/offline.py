"""Configs for structure-only (``weights=False``) builds of the full-size denoiser.

A known model name uses the config the project ships under ``models/configs/<alias>/``;
a local ``save_pretrained`` directory uses its own ``<component>/config.json``.
"""

import json
from pathlib import Path
from typing import Any

from models.hub import shipped_config


def structure_config(aliases: dict[str, str], source: str, component: str) -> dict[str, Any]:
    """The config of ``component`` for a model name, hub id or local directory.

    Raises:
        ModelNotFoundError: If neither a shipped config nor a local one exists.
    """
    local = Path(source) / component / "config.json"
    if local.is_file():
        return json.loads(local.read_text())
    alias = next((a for a, hub in aliases.items() if source in (a, hub)), source)
    return shipped_config(alias, component)
