"""``tada plan``'s estimated wall time against a measured run. Run on demand (not
collected by pytest), on an idle machine::

    python tests/benchmarks/bench_plan.py            # the default experiment and tiny.yaml
    python tests/benchmarks/bench_plan.py --quick    # a reduced default and tiny.yaml

For each spec, in one process and back to back (so that both see the same machine
load): plan it, calibrate on its model (``tada plan --calibrate``: the model's rates and
a probe run for the run's own costs), run it into a temporary directory, and print the
estimate (calibrated, and from the shipped table where it has the model), the measured
wall time of the run (the model already loaded) and their ratio; at the end, every
spec's ratio and the load average before and after. Goal: every ratio within 0.75-1.25.
``--table`` prints the calibrated rates as entries for ``interp/experiments/cost_rates.json``.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from interp.experiments import load_spec, run
from interp.experiments.estimates import lookup, rates_entry
from interp.experiments.plan_report import duration, plan_rates, plan_seconds
from interp.experiments.planning import plan

ROOT = Path(__file__).resolve().parents[2]


def reduced_default() -> dict:
    """The default experiment with every step kept, small enough for a smoke run."""
    sys.path.insert(0, str(ROOT))
    from tests.experiments.test_plan import reduced_default as reduced

    return reduced()


def measure(name: str, spec: "dict | Path", table: bool) -> tuple[float, float | None]:
    loaded = load_spec(spec)
    planned = plan(loaded)
    calibrated, raw = plan_rates(loaded, planned, calibrate=True)
    stored = lookup(loaded.spec.model.name, loaded.spec.model.device, loaded.spec.model.dtype)
    assert calibrated is not None
    units, steps = sum(s.units for s in planned.steps), len(planned.steps)
    estimate = plan_seconds(calibrated, planned.total, units, steps)
    from_table = plan_seconds(stored, planned.total, units, steps)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        run(spec, out=Path(out) / "run", progress=False)
        measured = time.perf_counter() - start
    ratio = (estimate or float("nan")) / measured
    table_ratio = f"{from_table / measured:.2f}" if from_table is not None else "-"
    print(
        f"{name:<16} row-steps {planned.total.row_steps:>9,}  estimate {duration(estimate):>8} "
        f"(table {duration(from_table) if from_table is not None else 'none':>8})  "
        f"measured {duration(measured):>8}  ratio {ratio:.2f} (table {table_ratio})  "
        f"{'ok' if 0.75 <= ratio <= 1.25 else 'OUTSIDE +-25%'}",
        flush=True,
    )
    print(f"    {raw}", flush=True)
    if table:
        print("    " + json.dumps({loaded.spec.model.name: rates_entry(calibrated)}), flush=True)
    return ratio, from_table


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a reduced default experiment (smoke run)")
    parser.add_argument("--table", action="store_true", help="print the calibrated rates as table entries")
    args = parser.parse_args()
    default = reduced_default() if args.quick else ROOT / "experiments" / "default.yaml"
    specs = {
        "default" + (" (reduced)" if args.quick else ""): default,
        "tiny": ROOT / "experiments" / "tiny.yaml",
    }
    load = os.getloadavg()[0]
    ratios = {name: measure(name, spec, args.table)[0] for name, spec in specs.items()}
    print(f"load average (1 min): {load:.1f} before, {os.getloadavg()[0]:.1f} after")
    for name, ratio in ratios.items():
        print(f"ratio {name}: {ratio:.2f}  {'ok' if 0.75 <= ratio <= 1.25 else 'OUTSIDE +-25%'}")


if __name__ == "__main__":
    main()
