"""Ray executor against the local one: the default experiment's ``locate`` step.

Runs the step with the local executor on one thread, then on a local Ray instance with
2 one-thread workers, checks that both write the same ``results.csv`` byte for byte, and
prints the speedup (goal >= 1.7x on 2 idle cores) and Ray's start-up cost. Then prints
the bound that the number of work items (chunks) puts on the speedup of the paper specs
for 8, 64 and 512 workers (docs/distributed.md quotes it).

    .venv/bin/python tests/benchmarks/bench_distributed.py           # 5 concepts x 6 pairs
    .venv/bin/python tests/benchmarks/bench_distributed.py --quick   # 2 concepts x 2 pairs
    .venv/bin/python tests/benchmarks/bench_distributed.py --quick --profile

``--profile`` measures CPU time instead of wall time (meaningful on a loaded machine):
the local run's CPU seconds (in work items, and the driver's own), then each Ray
worker's (start-up, items, Ray's threads) and the driver's, on actors started before the
run, and prints the bound they put on the speedup:
local CPU / (busiest worker's CPU + driver CPU), and the same with the actors' start-up.
"""

import argparse
import logging
import math
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

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


def timed_run(spec: dict, out: Path, executor: Any) -> tuple[float, bytes]:
    from interp.experiments import run

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run(spec, out=out, progress=False, executor=executor)
    return time.perf_counter() - start, (out / "results.csv").read_bytes()


def count_rows(adapter: Any) -> None:
    """Count the denoiser's forward calls and batch rows on ``adapter`` (a torch hook)."""
    counts = adapter.bench_rows = [0, 0]

    def hook(module: Any, args: Any, kwargs: Any) -> None:
        import torch

        first = next(v for v in (*args, *kwargs.values()) if isinstance(v, torch.Tensor))
        counts[0] += 1
        counts[1] += int(first.shape[0])

    adapter.denoiser.register_forward_pre_hook(hook, with_kwargs=True)


def counted_rows(adapter: Any) -> tuple[int, int]:
    counts = adapter.bench_rows
    return counts[0], counts[1]


def profile(quick: bool) -> None:
    """CPU seconds per phase and per worker, and the speedup bound they give."""
    import ray

    from interp.distributed import LocalExecutor, ModelSettings, RayExecutor
    from interp.experiments import model as models

    spec = locate_spec(quick)
    tmp = Path(tempfile.mkdtemp(prefix="bench-distributed-"))
    driver_model = models.load(spec["model"]["name"])
    count_rows(driver_model)
    local = LocalExecutor()
    start = time.process_time()
    timed_run(spec, tmp / "local", local)
    local_cpu = time.process_time() - start
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    pool = RayExecutor(ModelSettings(spec["model"]["name"], threads=1), workers=2)
    try:
        local_rows = counted_rows(driver_model)
        pool.on_every_worker(count_rows)
        before = {u["worker"]: u for u in pool.usage()}  # waits for both actors
        start, began = time.process_time(), time.time()
        wall, table = timed_run(spec, tmp / "ray", pool)
        driver_cpu = time.process_time() - start
        after = pool.usage()
        rows = pool.on_every_worker(counted_rows)
    finally:
        pool.close()
        ray.shutdown()
    same = table == (tmp / "local" / "results.csv").read_bytes()
    print(f"CPU seconds, locate step of experiments/default.yaml ({'quick' if quick else 'full'})")
    print(f"  local: {local_cpu:6.1f} = items {local.item_cpu_s:6.1f} ({local.items} items) "
          f"+ driver {local_cpu - local.item_cpu_s:5.1f}")  # fmt: skip
    busiest, startup = 0.0, 0.0
    for u in after:
        total = u["total_cpu_s"] - before[u["worker"]]["total_cpu_s"]
        busiest, startup = max(busiest, total), max(startup, u["ready_cpu_s"])
        print(f"  worker {u['worker']}: start-up {u['ready_cpu_s']:5.1f}, run {total:6.1f} "
              f"(items {u['item_cpu_s']:6.1f}, {u['items']} items); wall: busy {u['item_wall_s']:5.1f} "
              f"of {wall:5.1f} s, first item at {u['first'] - began:4.1f} s, last ended "
              f"{began + wall - u['last']:4.1f} s before the end")  # fmt: skip
    workers = sum(u["total_cpu_s"] - before[u["worker"]]["total_cpu_s"] for u in after)
    print(f"  driver during the Ray run: {driver_cpu:5.1f}")
    print(
        f"  denoiser work (calls, batch rows): local {local_rows}, workers {[tuple(r) for r in rows]}, "
        f"driver during the Ray run {tuple(a - b for a, b in zip(counted_rows(driver_model), local_rows))}"
    )
    warm = local_cpu / max(busiest + driver_cpu, (workers + driver_cpu) / 2)
    cold = local_cpu / max(busiest + startup + driver_cpu, (workers + 2 * startup + driver_cpu) / 2)
    print(f"  speedup bound, actors warm:         {warm:5.2f}x")
    print(f"  speedup bound, with actor start-up: {cold:5.2f}x")
    print(f"  results.csv identical: {same}")


def measure(quick: bool) -> None:
    import ray

    from interp.distributed import ExecutorConfig, ModelSettings, RayExecutor
    from interp.experiments import model as models

    spec = locate_spec(quick)
    tmp = Path(tempfile.mkdtemp(prefix="bench-distributed-"))
    models.load(spec["model"]["name"])  # the driver's model is loaded in both cases
    local_s, local_table = timed_run(spec, tmp / "local", "local")

    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
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
        "SAO spec, layers then heads (layer impact reused)": [
            concepts * sweep_items(pairs, seeds, 24, batch),  # layers
            concepts * sweep_items(pairs, seeds, 24, batch),  # heads: prefixes
            concepts * sweep_items(pairs, seeds, 1, batch),  # noising; layer impact from the store
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
    print(f"  {'case':52s} {'items':>7s} {'8':>7s} {'64':>7s} {'512':>7s}")  # items computed
    for name, phases in cases.items():
        cells = " ".join(f"{bound(phases, w):7.1f}" for w in (8, 64, 512))
        print(f"  {name:52s} {sum(phases):7d} {cells}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2 concepts x 2 pairs")
    parser.add_argument("--bounds-only", action="store_true", help="print the paper bounds only")
    parser.add_argument("--profile", action="store_true", help="CPU seconds per phase and worker")
    args = parser.parse_args()
    from interp.quiet import quiet_libraries

    quiet_libraries()  # no loading bars
    if args.profile:
        profile(args.quick)
    elif not args.bounds_only:
        measure(args.quick)
    paper_bounds()
