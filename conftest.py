"""Doctests: the ``>>>`` examples of the packages run with the suite.

pytest's ``--doctest-modules`` would also import every ``conftest.py`` under ``tests/`` as
a plain module, and those share one basename; so the packages' modules are collected
for doctests here instead, and only they.
"""

from pathlib import Path

import pytest
from _pytest.doctest import DoctestModule

_ROOT = Path(__file__).parent
_PACKAGES = tuple(_ROOT / name for name in ("interp", "models", "saes"))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix != ".py" or file_path.name == "__main__.py":
        return None
    if any(file_path.is_relative_to(package) for package in _PACKAGES):
        return DoctestModule.from_parent(parent, path=file_path)
    return None
