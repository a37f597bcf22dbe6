"""``tada plan``'s resident memory: the whole pipeline at the spec's dtype and the metrics'
scorers, counted without weights.

Ground truth: the parameter bytes of the same pipeline and scorer loaded with their
weights (summed with plain torch), and the full-size totals of docs/full-size.md.
"""

from pathlib import Path

import pytest
import torch

from interp.experiments import model as models
from interp.experiments.planning import plan
from interp.registry import component_parameters

SYNTHMUSIC = Path(__file__).resolve().parents[2] / "models" / "synthmusic" / "checkpoints" / "dit"


def loaded_bytes(pipeline, *extra: torch.nn.Module) -> int:
    """Bytes of every parameter the loaded pipeline's modules and ``extra`` hold."""
    modules = [m for m in pipeline.components.values() if isinstance(m, torch.nn.Module)]
    seen = {id(p): p.numel() * p.element_size() for m in [*modules, *extra] for p in m.parameters()}
    return sum(seen.values())


def spec(model: str, dtype: str | None, metric: str) -> dict:
    return {
        "name": "resident",
        "model": {"name": model, **({"dtype": dtype} if dtype else {})},
        "generation": {"num_steps": 2, "guidance_scale": 4.0, "seeds": [0]},
        "steps": [
            {"name": "layers", "method": "patch", "component": "text", "metric": metric,
             "pairs": {"source": "synthmusic", "concepts": ["tempo"], "per_concept": 1}, "batch_size": 4},
        ],
    }  # fmt: skip


def test_synthmusic_pipeline_and_scorer_equal_the_loaded_bytes():
    planned = plan(spec(str(SYNTHMUSIC), None, "concept"))
    adapter = models.load(str(SYNTHMUSIC))  # with weights
    scorer = adapter.concept_scorer().classifier
    assert planned.resident.complete
    assert planned.resident.pipeline_bytes == loaded_bytes(adapter.pipeline)
    assert planned.resident.denoiser == sum(p.numel() for p in adapter.denoiser.parameters())
    assert planned.resident.device_bytes("cpu") == loaded_bytes(adapter.pipeline, scorer)
    assert planned.resident.scorer_bytes == sum(p.numel() * p.element_size() for p in scorer.parameters())


def test_a_saved_tiny_pipeline_in_bfloat16_counts_every_component(tiny_sa, tmp_path):
    tiny_sa.pipeline.save_pretrained(tmp_path / "sa")
    planned = plan(spec(str(tmp_path / "sa"), "bfloat16", "latent_distance"))
    loaded = models.load(str(tmp_path / "sa"), dtype="bfloat16")
    modules = {k for k, v in loaded.pipeline.components.items() if isinstance(v, torch.nn.Module)}
    assert set(planned.resident.components) == modules and len(modules) >= 3  # not the denoiser alone
    assert planned.resident.pipeline_bytes == loaded_bytes(loaded.pipeline)
    assert planned.resident.scorers == {}  # latent_distance loads no scorer
    assert planned.resident.device_bytes("cuda") == planned.resident.pipeline_bytes


@pytest.mark.parametrize(
    ("model", "billions"), [("audioldm2-large", 1.449), ("stable-audio-open-1.0", 1.323)]
)
def test_full_size_pipelines_on_meta_match_docs_full_size(model, billions):
    counts = component_parameters(model)
    assert counts is not None and round(sum(counts.values()) / 1e9, 3) == billions


def test_the_clap_scorer_of_a_paper_spec_is_counted_in_cpu_memory():
    planned = plan(spec("audioldm2-large", "float16", "clap"))
    assert round(planned.resident.pipeline / 1e9, 3) == 1.449
    assert planned.resident.scorers == {"clap scorer": pytest.approx(193.9e6, rel=1e-3)}
    assert planned.resident.pipeline_bytes == planned.resident.pipeline * 2  # float16
    on_gpu = planned.resident.device_bytes("cuda")
    assert on_gpu == planned.resident.pipeline_bytes  # the scorer is loaded on the CPU
    assert planned.resident.device_bytes("cpu") == on_gpu + planned.resident.scorer_bytes
