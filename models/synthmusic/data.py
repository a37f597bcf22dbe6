"""Deterministic SynthMusic datasets: (concepts, seed) -> audio -> spectrogram, cached.

Clip ``i`` of a split is fully determined by ``(split, seed = start + i)``: its concept
combination is drawn uniformly from the split's combinations with a stream seeded by the
seed, then rendered with that seed. Train seeds start at 0, test seeds at
:data:`TEST_SEED_OFFSET`, so the two never share a clip.
"""

import multiprocessing as mp
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .captions import split_combinations
from .music import CONCEPTS, DATA_VERSION, ConceptValues, render
from .spectrogram import to_spec

TEST_SEED_OFFSET = 10_000_000
"""First seed of the test split."""

CACHE_DIR = Path(os.environ.get("SYNTHMUSIC_CACHE", "runs/synthmusic/cache"))


def values_for_seed(split: str, seed: int) -> ConceptValues:
    """The concept combination of clip ``seed`` in ``split`` (uniform over the split)."""
    combos = split_combinations(split)
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 99])
    return combos[int(rng.integers(len(combos)))]


@dataclass
class SpecDataset:
    """A batch of clips as tensors.

    Attributes:
        specs: float32 ``[n, 80, 64]`` normalized spectrograms.
        labels: int64 ``[n, n_concepts]`` class indices in :data:`CONCEPTS` order.
        seeds: int64 ``[n]`` seeds of the clips.
    """

    specs: torch.Tensor
    labels: torch.Tensor
    seeds: torch.Tensor

    def values(self, i: int) -> ConceptValues:
        """The concept values of clip ``i``."""
        return ConceptValues(*(CONCEPTS[c][int(k)] for c, k in zip(CONCEPTS, self.labels[i])))

    def __len__(self) -> int:
        return len(self.seeds)


def _render_chunk(args: tuple[str, list[int]]) -> tuple[np.ndarray, np.ndarray]:
    split, seeds = args
    torch.set_num_threads(1)
    vals = [values_for_seed(split, s) for s in seeds]
    audio = np.stack([render(v, s) for v, s in zip(vals, seeds)])
    labels = np.array([[v.indices()[c] for c in CONCEPTS] for v in vals], dtype=np.int64)
    return to_spec(audio).numpy().astype(np.float16), labels


def build(split: str, n: int, start: int | None = None, workers: int = 1) -> SpecDataset:
    """Renders ``n`` clips of ``split`` (no cache).

    Args:
        split: ``"train"``, ``"test"`` or ``"held_out"``.
        n: Number of clips.
        start: First seed; defaults to 0 for train and :data:`TEST_SEED_OFFSET` otherwise.
        workers: Processes to render with (results do not depend on it).
    """
    if start is None:
        start = 0 if split == "train" else TEST_SEED_OFFSET
    seeds = list(range(start, start + n))
    chunks = [(split, seeds[i : i + 256]) for i in range(0, n, 256)]
    if workers > 1:
        with mp.get_context("fork").Pool(workers) as pool:
            parts = pool.map(_render_chunk, chunks)
    else:
        parts = [_render_chunk(c) for c in chunks]
    specs = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, 80, 64), np.float16)
    labels = np.concatenate([p[1] for p in parts]) if parts else np.zeros((0, len(CONCEPTS)), np.int64)
    return SpecDataset(
        torch.from_numpy(specs.astype(np.float32)),
        torch.from_numpy(labels),
        torch.tensor(seeds, dtype=torch.int64),
    )


def load(split: str, n: int, start: int | None = None, workers: int = 1) -> SpecDataset:
    """Like :func:`build`, cached as float16 ``.npz`` under :data:`CACHE_DIR`."""
    if start is None:
        start = 0 if split == "train" else TEST_SEED_OFFSET
    path = CACHE_DIR / f"{DATA_VERSION}_{split}_{start}_{n}.npz"
    if path.exists():
        z = np.load(path)
        return SpecDataset(
            torch.from_numpy(z["specs"].astype(np.float32)),
            torch.from_numpy(z["labels"]),
            torch.from_numpy(z["seeds"]),
        )
    ds = build(split, n, start, workers)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, specs=ds.specs.numpy().astype(np.float16), labels=ds.labels.numpy(), seeds=ds.seeds.numpy())
    tmp.rename(path)
    return ds


if __name__ == "__main__":  # python -m models.synthmusic.data train 40000 [workers]
    import sys

    split, n = sys.argv[1], int(sys.argv[2])
    w = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    ds = load(split, n, workers=w)
    print(f"{split}: {len(ds)} clips, specs {tuple(ds.specs.shape)}")
