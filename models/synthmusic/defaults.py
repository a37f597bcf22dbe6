"""Default training settings per model kind, in a module light enough for ``tada --help``
(the trainer itself imports diffusers)."""

from typing import TypedDict


class TrainingDefaults(TypedDict):
    """Default optimizer steps and peak learning rate of one model kind."""

    steps: int
    lr: float


DEFAULTS: dict[str, TrainingDefaults] = {
    "dit": {"steps": 5000, "lr": 1e-3},
    "unet": {"steps": 2000, "lr": 1e-3},
}
"""Kind -> default optimizer steps and peak learning rate (the shipped models used these)."""
