"""A paper spec end to end on a rehearsed (full-size, random-weight) model, on CPU.

Run on demand (not collected by pytest; GBs of memory and many minutes on a CPU)::

    tada rehearse stable-audio-open-1.0 /work/rehearsed/sao
    tada rehearse larger-clap-music /work/rehearsed/clap
    python tests/benchmarks/bench_paper_specs.py experiments/paper/stable_audio_open.yaml \\
        /work/rehearsed/sao /work/rehearsed/clap --out /tmp/sao-run

Rewrites the paper spec so that it fits a CPU: ``model.name`` becomes the rehearsed
directory, ``device: cpu`` (``--dtype`` keeps or replaces the spec's dtype),
``num_steps`` and ``duration_s`` reduced, and **pairs, seeds and concepts reduced to
1** (one pair of one concept, one seed), and with ``--max-heads`` the ``locate`` steps
get a smaller head budget (their prefix sweeps are most of a CPU run); the ``clap`` metric reads the rehearsed CLAP
directory (option ``scorer_model``). Every other field (the methods, layers, ranking,
max_heads, fraction, guidance, negative prompt) stays the paper's. Writes the reduced
spec beside ``OUT`` (``OUT.spec.yaml``), prints ``tada plan --calibrate``'s estimate of it
(a rehearsed directory has no row in the shipped rates table), runs it through
:func:`interp.experiments.run`, and prints per step the measured wall time and peak
resident memory (from the run's ``run.log``) next to the plan's estimate.
"""

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml


def reduced_spec(
    paper: dict[str, Any],
    model_dir: str,
    clap_dir: str,
    steps: int,
    duration_s: float,
    concept: str,
    dtype: str | None,
    max_heads: int | None = None,
) -> dict[str, Any]:
    """The paper spec with the rehearsed model, CPU, fewer steps and one pair, seed and
    concept (and, with ``max_heads``, a smaller head budget for its ``locate`` steps)."""
    spec = dict(paper)
    spec["model"] = {**paper["model"], "name": model_dir, "device": "cpu"}
    if dtype is not None:
        spec["model"]["dtype"] = dtype
    spec["generation"] = {**paper["generation"], "num_steps": steps, "duration_s": duration_s}
    spec["generation"]["seeds"] = paper["generation"].get("seeds", [0])[:1]
    spec["steps"] = [_reduced_step(step, clap_dir, concept, max_heads) for step in paper["steps"]]
    spec["name"] = f"{paper['name']}-rehearsal"
    return spec


def _reduced_step(step: dict[str, Any], clap_dir: str, concept: str, max_heads: int | None) -> dict[str, Any]:
    step = dict(step)
    if max_heads is not None and "max_heads" in step:
        step["max_heads"] = max_heads
    if "pairs" in step:
        step["pairs"] = {**step["pairs"], "concepts": [concept], "per_concept": 1}
    metric: str | dict[str, Any] = step.get("metric") or {}
    name = metric if isinstance(metric, str) else metric.get("name")
    if name == "clap":
        options = {} if isinstance(metric, str) else dict(metric.get("options", {}))
        step["metric"] = {"name": "clap", "options": {**options, "scorer_model": clap_dir}}
    return step


def _peak_gb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return own / 1024**2


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("spec", help="a paper spec, e.g. experiments/paper/stable_audio_open.yaml")
    parser.add_argument("model_dir", help="the model rehearsed by `tada rehearse MODEL DIR`")
    parser.add_argument("clap_dir", help="the CLAP scorer rehearsed by `tada rehearse larger-clap-music DIR`")
    parser.add_argument("--out", required=True, help="results directory (new)")
    parser.add_argument("--steps", type=int, default=2, help="denoising steps (default 2)")
    parser.add_argument("--duration", type=float, default=1.0, help="seconds requested (default 1)")
    parser.add_argument("--concept", default="fast", help="the one concept kept (default fast)")
    parser.add_argument("--dtype", default=None, help="replace the spec's dtype (e.g. float32)")
    parser.add_argument(
        "--max-heads",
        type=int,
        default=None,
        help="head budget of the locate steps (default: the paper's; smaller on a slow CPU)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--no-calibrate", dest="calibrate", action="store_false", help="plan without timing the denoiser"
    )
    args = parser.parse_args()

    paper = yaml.safe_load(Path(args.spec).read_text())
    spec = reduced_spec(
        paper,
        args.model_dir,
        args.clap_dir,
        args.steps,
        args.duration,
        args.concept,
        args.dtype,
        args.max_heads,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    spec_path = out.parent / f"{out.name}.spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    print(f"reduced spec: {spec_path}")
    print(yaml.safe_dump(spec, sort_keys=False))

    tada = Path(sys.executable).with_name("tada")
    start = time.perf_counter()
    calibrate = ["--calibrate"] if args.calibrate else []  # a rehearsed directory has no shipped rates
    plan = subprocess.run([str(tada), "plan", str(spec_path), *calibrate], capture_output=True, text=True)
    print(f"--- tada plan ({time.perf_counter() - start:.1f}s, exit {plan.returncode}) ---")
    print(plan.stdout + plan.stderr)

    import torch

    from interp.experiments import run
    from interp.experiments.runlog import read_log

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    run(spec_path, out=out, progress=True, force=True)
    wall = time.perf_counter() - start
    print(f"--- measured: whole run {wall:.1f}s, peak RSS {_peak_gb():.2f} GB ---")
    per_step: dict[str, dict[str, float]] = {}
    for entry in read_log(out):
        if entry.get("event") != "end":
            continue
        step = per_step.setdefault(
            entry["step"], {"wall_s": 0.0, "units": 0, "peak_gb": 0.0, "generations": 0}
        )
        step["wall_s"] += float(entry.get("wall_s", 0.0))
        step["units"] += 1
        step["generations"] += int(entry.get("generations", 0))
        step["peak_gb"] = max(step["peak_gb"], float(entry.get("peak_memory_mb", 0.0)) / 1024)
    for name, s in per_step.items():
        print(
            f"  {name:10s} {s['units']:3d} units  {s['generations']:4d} generations  "
            f"{s['wall_s']:8.1f}s  peak {s['peak_gb']:.2f} GB"
        )


if __name__ == "__main__":
    main()
