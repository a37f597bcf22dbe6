"""The GPU check script: its per-model measurement runs on CPU on a tiny saved pipeline,
and without CUDA the script exits cleanly."""

import pytest
import torch

from tests.gpu.check import check_directory, main


def test_check_of_a_saved_pipeline_reports_a_full_row(tiny_sa, tmp_path):
    tiny_sa.pipeline.save_pretrained(tmp_path / "sa")
    row = check_directory(
        "tiny", tmp_path / "sa", "cpu", torch.float32, steps=3, exact_steps=2, duration_s=2.0
    )
    assert row.bit_exact and row.steps == 3
    assert row.generations_per_s > 0 and row.overhead > 0
    assert row.parameters_b == pytest.approx(
        sum(
            p.numel()
            for c in tiny_sa.pipeline.components.values()
            if isinstance(c, torch.nn.Module)
            for p in c.parameters()
        )
        / 1e9
    )
    assert row.line().startswith("| tiny |") and row.line().endswith("| yes |")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without CUDA")
def test_without_cuda_the_check_is_skipped_with_exit_0(capsys):
    assert main([]) == 0
    assert "skipped, no CUDA" in capsys.readouterr().out
