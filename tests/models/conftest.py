"""Fixtures for the adapter tests of tests/models."""

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """Run the tiny models on one intra-op thread.

    On a small shared machine, two OpenMP threads competing with other processes make
    these millisecond-sized kernels up to a hundred times slower.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
