"""Shared helpers for the experiment-framework tests: small valid specs on the tiny model."""

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

BASE: dict[str, Any] = {
    "name": "t",
    "model": {"name": "tiny-stable-audio"},
    "generation": {"num_steps": 4, "guidance_scale": 3.0, "duration_s": 4.0, "seeds": [0]},
    "prompts": {"default": ["a sad violin song", "a happy trumpet song"]},
    "metrics": ["rms"],
    "steps": [{"name": "gen", "method": "generate"}],
}


def spec(**changes: Any) -> dict[str, Any]:
    """A deep copy of :data:`BASE` with top-level keys replaced."""
    data = copy.deepcopy(BASE)
    data.update(copy.deepcopy(changes))
    return data


def write(path: Path, data: Any) -> Path:
    """Write ``data`` as YAML to ``path``."""
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


#: Environment for ``tada`` subprocesses: quiet, one thread.
SUBPROCESS_ENV = {"PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture
def quiet_warnings() -> Any:
    """Silence known library warnings (torchsde, weight_norm) during a run test."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"torchsde\..*")
        warnings.filterwarnings("ignore", category=FutureWarning)
        yield
