"""Training code: bit-for-bit determinism on CPU (a few steps on a few clips, not a real run)."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from models.synthmusic import data, train


@pytest.fixture
def small_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path / "cache")


def _weights(out: Path) -> dict[str, torch.Tensor]:
    files = sorted((out / "denoiser").glob("*.safetensors")) + sorted(
        (out / "text_encoder").glob("*.safetensors")
    )
    assert files, f"no weights saved under {out}"
    weights: dict[str, torch.Tensor] = {}
    for f in files:
        weights.update({f"{f.parent.name}.{k}": v for k, v in load_file(f).items()})
    return weights


@pytest.mark.parametrize("kind", ["dit", "unet"])
def test_training_is_bit_for_bit_deterministic(kind: str, tmp_path: Path, small_cache: None) -> None:
    kwargs = dict(steps=3, seed=5, batch=4, n_train=16, threads=1)
    a = train.train(kind, out=tmp_path / "a", **kwargs)
    b = train.train(kind, out=tmp_path / "b", **kwargs)
    c = train.train(kind, out=tmp_path / "c", **{**kwargs, "seed": 6})
    wa, wb, wc = _weights(a), _weights(b), _weights(c)
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert any(not torch.equal(wa[k], wc[k]) for k in wa), "the seed must matter"
    info = json.loads((a / "training.json").read_text())
    assert info["steps"] == 3 and info["seed"] == 5 and info["data_version"] == data.DATA_VERSION
    assert (a / "loss.png").stat().st_size > 0
