"""Default training settings per model kind, in a module light enough for ``tada --help``
(the trainer itself imports diffusers)."""

DEFAULTS: dict[str, dict[str, float | int]] = {
    "dit": {"steps": 5000, "lr": 1e-3},
    "unet": {"steps": 2000, "lr": 1e-3},
}
"""Kind -> default optimizer steps and peak learning rate (the shipped models used these)."""
