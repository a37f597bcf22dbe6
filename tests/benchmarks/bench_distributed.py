"""Ray executor against the local one: the default experiment's ``locate`` step.

Runs the step with the local executor on one thread, then on a local Ray instance with
2 one-thread workers, checks that both write the same ``results.csv`` byte for byte, and
prints the speedup (goal >= 1.7x on 2 idle cores) and Ray's start-up cost. Then prints
the bound that the number of work items (chunks) puts on the speedup of the paper specs
for 8, 64 and 512 workers (docs/distributed.md quotes it).

    .venv/bin/python tests/benchmarks/bench_distributed.py           # 5 concepts x 6 pairs
    .venv/bin/python tests/benchmarks/bench_distributed.py --quick   # 2 concepts x 2 pairs
"""

import argparse
import math
import tempfile
import time
import warnings
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def locate_spec(quick: bool) -> dict:
    """The default experiment's first step alone, on one thread."""
    spec = yaml.safe_load((ROOT / "experiments" / "default.yaml").read_text())
    spec["steps"] = spec["steps"][:1]
    spec["model"]["threads"] = 1
    if quick:
        spec["steps"][0]["pairs"].update(concepts=["tempo", "mood"], per_concept=2)
    return spec


def timed_run(spec: dict, out: Path, executor: object) -> tuple[float, bytes]:
    from interp.experiments import run

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run(spec, out=out, progress=False, executor=executor)
    return time.perf_counter() - start, (out / "results.csv").read_bytes()


def measure(quick: bool) -> None:
    import ray

    from interp.distributed import ExecutorConfig, ModelSettings, RayExecutor
    from interp.experiments import model as models

    spec = locate_spec(quick)
    tmp = Path(tempfile.mkdtemp(prefix="bench-distributed-"))
    models.load(spec["model"]["name"])  # the driver's model is loaded in both cases
    local_s, local_table = timed_run(spec, tmp / "local", "local")

    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    init_s = time.perf_counter() - start
    start = time.perf_counter()
    pool = RayExecutor(ModelSettings(spec["model"]["name"], threads=1), workers=2)
    pool.pids()  # both actors up, model loaded
    actors_s = time.perf_counter() - start
    pool.close()
    ray_s, ray_table = timed_run(spec, tmp / "ray", ExecutorConfig("ray", workers=2))
    ray.shutdown()

    print(
        f"locate step of experiments/default.yaml ({'quick' if quick else 'full'}), "
        f"{len(local_table.splitlines()) - 1} rows"
    )
    print(f"  local executor, 1 thread:        {local_s:7.1f} s")
    print(f"  Ray, 2 workers x 1 thread:       {ray_s:7.1f} s  (actors started and loaded inside)")
    print(f"  speedup:                         {local_s / ray_s:7.2f}x  (goal >= 1.7x on 2 idle cores)")
    print(f"  speedup without actor start-up:  {local_s / max(ray_s - actors_s, 1e-9):7.2f}x")
    print(f"  Ray start-up: ray.init {init_s:.1f} s, 2 actors + model load {actors_s:.1f} s")
    print(f"  results.csv identical: {ray_table == local_table}")


def sweep_items(pairs: int, seeds: int, variants: int, batch_size: int) -> int:
    """Work items of one sweep: one per (pair, seed, chunk of batch_size variants)."""
    return pairs * seeds * math.ceil(variants / batch_size)


def bound(phases: list[int], workers: int) -> float:
    """Best speedup on ``workers`` for phases run one after the other, each a set of
    equal-cost items: total items / sum of ceil(items / workers)."""
    return sum(phases) / sum(math.ceil(p / workers) for p in phases)


def paper_bounds() -> None:
    """Chunk-count bounds of the paper specs (21 concepts x 16 pairs x 2 seeds, batch 8)."""
    concepts, pairs, seeds, batch = 21, 16, 2, 8
    cases = {
        # spec step: phases (items of all concepts side by side, phase after phase)
        "SAO layers (24 text sites)": [concepts * sweep_items(pairs, seeds, 24, batch)],
        "SAO heads, attribution ranking (as in the spec)": [
            concepts * sweep_items(pairs, seeds, 24, batch),  # prefixes (max_heads 24)
            concepts * sweep_items(pairs, seeds, 1, batch),  # noising of the subset
            concepts * sweep_items(pairs, seeds, 24, batch),  # layer impact
        ],
        "SAO heads, patching ranking of 576 heads": [
            concepts * sweep_items(pairs, seeds, 576, batch),
            concepts * sweep_items(pairs, seeds, 24, batch),
            concepts * sweep_items(pairs, seeds, 1, batch),
            concepts * sweep_items(pairs, seeds, 24, batch),
        ],
        "one SAO concept, patching ranking of 576 heads": [
            sweep_items(pairs, seeds, 576, batch),
            sweep_items(pairs, seeds, 24, batch),
            sweep_items(pairs, seeds, 1, batch),
            sweep_items(pairs, seeds, 24, batch),
        ],
        "ACE-Step heads, patching ranking of 480 heads": [
            concepts * sweep_items(pairs, seeds, 480, batch),
            concepts * sweep_items(pairs, seeds, 32, batch),
            concepts * sweep_items(pairs, seeds, 1, batch),
            concepts * sweep_items(pairs, seeds, 24, batch),
        ],
        "AudioLDM2 layers (64 attn2 text sites)": [concepts * sweep_items(pairs, seeds, 64, batch)],
    }
    print("\nchunk-count bound on the speedup (items / sum of ceil(items / workers) per phase)")
    print(f"  {'case':52s} {'items':>7s} {'8':>7s} {'64':>7s} {'512':>7s}")
    for name, phases in cases.items():
        cells = " ".join(f"{bound(phases, w):7.1f}" for w in (8, 64, 512))
        print(f"  {name:52s} {sum(phases):7d} {cells}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2 concepts x 2 pairs")
    parser.add_argument("--bounds-only", action="store_true", help="print the paper bounds only")
    args = parser.parse_args()
    if not args.bounds_only:
        measure(args.quick)
    paper_bounds()
