"""GPU check: every real model at full size, rehearsed with random weights.

Run with ``tests/gpu/check.sh`` (or ``python -m tests.gpu.check``) on a machine with
CUDA; without CUDA it prints one line and exits 0. For each model of
:data:`models.rehearse.REHEARSABLE` it

1. writes the full-size pipeline with random weights (``tada rehearse``, float16);
2. loads it on the GPU in float16 and generates once at the paper's settings (steps,
   guidance, duration of ``default_request``): generations/s and peak memory;
3. runs the same generation traced (a read of one layer's heads and an edit of one head,
   every step, conditional branch) and the same work through plain torch hooks:
   the overhead ratio;
4. reloads it in float32 and checks the bit-exactness contract on a short request:
   an identity edit changes no bit, and a read equals a plain hook's record.

It prints one table row per model. Budget: under 10 minutes on one H200.
"""

import argparse
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch


@dataclass
class CheckRow:
    model: str
    parameters_b: float
    steps: int
    generations_per_s: float
    overhead: float
    peak_gb: float
    bit_exact: bool

    def line(self) -> str:
        return (
            f"| {self.model} | {self.parameters_b:.2f} | {self.steps} | {self.generations_per_s:.3f} | "
            f"{self.overhead:.3f} | {self.peak_gb:.1f} | {'yes' if self.bit_exact else 'NO'} |"
        )


HEADER = (
    "| model | params (B) | steps | generations/s (fp16) | overhead (traced/hooks) | peak GPU GB | "
    "bit-exact fp32 |\n|---|---|---|---|---|---|---|"
)


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn, device: str) -> float:
    _synchronize(device)
    start = time.perf_counter()
    fn()
    _synchronize(device)
    return time.perf_counter() - start


def check_directory(
    name: str,
    directory: Path,
    device: str,
    dtype: torch.dtype,
    steps: int | None = None,
    exact_steps: int = 3,
    duration_s: float | None = None,
) -> CheckRow:
    """Throughput, overhead, peak memory and the float32 contract of one saved pipeline."""
    import interp
    from interp.edits import Add, Edit, Read, Scale
    from tests.helpers.contract import per_head
    from tests.helpers.hooks import recorded

    model = interp.load_model(str(directory), device=device, dtype=dtype)
    parameters = sum(
        p.numel()
        for c in model.pipeline.components.values()
        if isinstance(c, torch.nn.Module)
        for p in c.parameters()
    )
    request = model.default_request(["a sad violin piece"], [0])
    if steps is not None:
        request = replace(request, num_steps=steps)
    if duration_s is not None and request.duration_s is not None:
        request = replace(request, duration_s=duration_s)
    attention = "cross" if model.catalog.count("cross") else "self"
    layer = model.catalog.count(attention) // 2
    m = model.catalog.module(attention, layer)
    proj = model.denoiser.get_submodule(m.out_proj)
    vector = torch.randn(m.d_head, generator=torch.Generator().manual_seed(0))
    guided = request.guided

    def hooked() -> None:
        store: list[torch.Tensor] = []

        def hook(module, inputs):
            x = inputs[0].clone()
            view = per_head(x, m.n_heads)
            rows = slice(view.shape[0] // 2, None) if guided else slice(None)
            view[rows, :, 0] += vector.to(device=x.device, dtype=x.dtype)
            store.append(view[rows].detach().clone())
            return (x,)

        handle = proj.register_forward_pre_hook(hook)
        try:
            model.generate(request)
        finally:
            handle.remove()

    def traced() -> None:
        interp.run(
            model,
            request,
            edits=[Edit(f"{attention}.{layer}.head.0", Add(vector), branch="cond")],
            reads=[Read(f"{attention}.{layer}.heads", branch="cond")],
        )

    model.generate(replace(request, num_steps=min(2, request.num_steps)))  # warm up kernels
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    plain_s = _timed(lambda: model.generate(request), device)
    peak = torch.cuda.max_memory_allocated() / 1e9 if device.startswith("cuda") else float("nan")
    hooked_s, traced_s = _timed(hooked, device), _timed(traced, device)
    if device.startswith("cuda"):
        torch.cuda.empty_cache()

    exact = interp.load_model(str(directory), device=device, dtype=torch.float32)
    short = replace(request, num_steps=exact_steps)
    proj32 = exact.denoiser.get_submodule(m.out_proj)
    with recorded(proj32, "input") as heads:
        plain = exact.generate(short)
    result = interp.run(
        exact,
        short,
        edits=[Edit(f"{attention}.{layer}.head.1", Scale(1.0))],
        reads=[Read(f"{attention}.{layer}.heads")],
    )
    bit_exact = torch.equal(result.output.latents, plain.latents) and all(
        torch.equal(result.reads[f"{attention}.{layer}.heads"][s], per_head(heads[s], m.n_heads))
        for s in range(exact_steps)
    )
    del exact
    return CheckRow(
        name, parameters / 1e9, request.num_steps, 1.0 / plain_s, traced_s / hooked_s, peak, bit_exact
    )


def main(argv: list[str] | None = None) -> int:
    from models.rehearse import REHEARSABLE, rehearse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=list(REHEARSABLE), choices=REHEARSABLE)
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (default: the paper's)")
    parser.add_argument("--workdir", default=None, help="where rehearsals are written (default: a temp dir)")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("tests/gpu/check: skipped, no CUDA device on this machine.")
        return 0
    root = Path(args.workdir or tempfile.mkdtemp(prefix="tada-gpu-check-"))
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}")
    print(HEADER, flush=True)
    failed = False
    for name in args.models:
        directory = root / name
        try:
            rehearse(name, directory, dtype=torch.float16)
            row = check_directory(name, directory, "cuda", torch.float16, steps=args.steps)
            print(row.line(), flush=True)
            failed |= not row.bit_exact
        except Exception as error:
            print(
                f"| {name} | failed: {type(error).__name__}: {str(error).splitlines()[0][:200]} |", flush=True
            )
            failed = True
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
