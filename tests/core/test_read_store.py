"""Reads over the read budget stream to memory-mapped files and equal in-memory reads."""

from dataclasses import replace

import pytest
import torch

from interp.adapter import GenerationRequest
from interp.edits import Read
from interp.read_store import read_budget
from interp.runner import run


@pytest.fixture(scope="module")
def tiny_sa():
    from models.stable_audio import StableAudioAdapter
    from models.tiny.stable_audio import tiny_stable_audio

    return StableAudioAdapter("tiny", tiny_stable_audio(seed=1))


@pytest.fixture
def request_3():
    return GenerationRequest(prompts=("a sad violin", "fast drums"), seeds=(0, 1), num_steps=3,
                             guidance_scale=3.0, duration_s=4.0)  # fmt: skip


def _file_backed(tensor: torch.Tensor) -> bool:
    return tensor.untyped_storage().filename is not None


def test_a_read_over_the_budget_streams_to_a_file_and_equals_the_in_memory_read(tiny_sa, request_3, tmp_path):
    reads = [Read("cross.0.heads", branch="both"), Read("cross.1.out", steps="1:", branch="cond")]
    kept = run(tiny_sa, request_3, reads=reads)
    with read_budget(max_bytes=0, directory=tmp_path):
        streamed = run(tiny_sa, request_3, reads=reads)
    assert list(tmp_path.iterdir()) == []  # the files are unlinked once mapped
    for key in ("cross.0.heads", "cross.1.out"):
        assert not _file_backed(kept.reads[key])
        assert _file_backed(streamed.reads[key])
        assert streamed.reads[key].shape == kept.reads[key].shape
        assert torch.equal(streamed.reads[key], kept.reads[key])
    assert streamed.read_steps == kept.read_steps
    assert torch.equal(streamed.output.latents, kept.output.latents)


def test_reads_share_the_budget_and_only_those_past_it_stream(tiny_sa, request_3):
    first = run(tiny_sa, request_3, reads=[Read("cross.0.heads", branch="both")]).reads["cross.0.heads"]
    size = first.numel() * first.element_size()
    reads = [Read("cross.0.heads", branch="both"), Read("cross.1.heads", branch="both")]
    with read_budget(max_bytes=size + size // 2):  # room for one of the two
        result = run(tiny_sa, request_3, reads=reads)
    assert not _file_backed(result.reads["cross.0.heads"])
    assert _file_backed(result.reads["cross.1.heads"])


def test_a_sweep_with_streamed_baseline_reads_gives_the_same_rows(tiny_sa, request_3):
    from interp.metrics import Metric, get_metric
    from interp.patching import single_site_variants, sweep
    from interp.prompts import PromptPair

    metric: Metric = get_metric("latent_distance")  # pyright: ignore[reportAssignmentType]
    pairs = [PromptPair("a sad violin song", "a happy trumpet song", "mood", "sad", "happy")]
    variants = single_site_variants(["cross.0.head.1", "cross.1.head.0"])
    base = replace(request_3, prompts=("x",), seeds=(0,))
    kept = sweep(tiny_sa, base, pairs, [0], variants, metric, batch_size=2, progress=False)
    with read_budget(max_bytes=0):
        streamed = sweep(tiny_sa, base, pairs, [0], variants, metric, batch_size=2, progress=False)
    assert streamed.rows == kept.rows


def test_a_negative_budget_is_refused():
    from interp.errors import TadaError

    with pytest.raises(TadaError, match="max_bytes must be >= 0"):
        with read_budget(max_bytes=-1):
            pass


_FULL_DISK = """
import resource, signal, sys
from models.stable_audio import StableAudioAdapter
from models.tiny.stable_audio import tiny_stable_audio
from interp.adapter import GenerationRequest
from interp.edits import Read
from interp.errors import TadaError
from interp.read_store import read_budget
from interp.runner import run

model = StableAudioAdapter("tiny", tiny_stable_audio(seed=1))
request = GenerationRequest(prompts=("a sad violin",), seeds=(0,), num_steps=3, guidance_scale=3.0,
                            duration_s=4.0)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file past the limit fails with EFBIG instead
limit = 4096  # the disk is "full" past 4 KiB: far less than the read needs
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
try:
    with read_budget(max_bytes=0, directory=sys.argv[1]):
        run(model, request, reads=[Read("cross.0.heads", branch="both")])
except TadaError as error:
    print("TadaError:", error)
"""


def test_a_disk_too_small_for_a_streamed_read_is_one_clear_error_not_a_crash(tmp_path):
    import subprocess
    import sys

    # a separate process, whose file-size limit stands for a full disk (without root, no
    # small disk can be mounted). On a real full disk (a 256 KiB tmpfs, tried by hand) the
    # sparse file used to be made and the first step past the space killed the process
    # with SIGBUS; here the old code died of an uncaught OSError.
    done = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "TadaError: A read of" in done.stdout
    assert "streams to disk" in done.stdout and str(tmp_path) in done.stdout
    assert list(tmp_path.iterdir()) == []  # the unusable file is removed
