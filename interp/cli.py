"""The ``tada`` command line: validate and run experiments, show results, list sites.

Errors raised on purpose (:class:`~interp.errors.TadaError`) print as one clear message
and exit with code 2; ``--debug`` shows the traceback instead. Other packages add
sub-commands through the entry-point group ``tada_interp.commands``: each entry point is
a function ``add_commands(subparsers) -> None`` that adds parsers and sets
``func=handler`` on them (``handler(args) -> int | None``).
"""

import argparse
import json
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from interp.errors import TadaError

COMMANDS_GROUP = "tada_interp.commands"

_MAIN_EPILOG = """\
examples:
  tada sites tiny-stable-audio                 list the intervention sites of a model
  tada sites stable-audio-open-1.0 --no-weights --json > sites.json
  tada validate experiments/tiny.yaml          check a spec (every problem at once)
  tada run experiments/tiny.yaml --out runs/tiny
  tada show runs/tiny                          print a finished run's summary

A run directory holds spec.yaml, results.csv, summary.json, plots/, audio/ and
index.html (open it in a browser). Rerunning `tada run` on it resumes an interrupted
run and reuses finished units. Docs: docs/cli.md, docs/spec-reference.md.
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)


def _cmd_validate(args: argparse.Namespace) -> int:
    from interp.experiments import SpecError, load_spec

    failed = 0
    for path in args.files:
        try:
            loaded = load_spec(path, check_model=not args.no_model)
        except SpecError as error:
            if len(args.files) == 1:
                raise
            print(f"tada: error: {error}", file=sys.stderr)
            failed += 1
            continue
        steps = ", ".join(f"{s.name} ({s.method})" for s in loaded.spec.steps[:8])
        steps += ", ..." if len(loaded.spec.steps) > 8 else ""
        n_prompts = sum(len(p) for p in loaded.prompts.values())
        checked = "schema only" if args.no_model else f"sites checked against {loaded.spec.model.name}"
        print(f"{path}: valid; {len(loaded.spec.steps)} step(s): {steps}; {n_prompts} prompt(s); {checked}.")
    if failed:
        print(f"tada: {failed} of {len(args.files)} specs are invalid.", file=sys.stderr)
    return 2 if failed else 0


def _cmd_run(args: argparse.Namespace) -> int:
    from interp.distributed import ExecutorConfig
    from interp.experiments import run

    executor = ExecutorConfig(args.executor, args.address, args.workers)
    results = run(args.file, out=args.out, progress=not args.no_progress, force=args.force, executor=executor)
    print(results.text())
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    from interp.experiments import load_spec
    from interp.experiments.plan_report import pilot_rows, plan_rates, plan_text, power_text
    from interp.experiments.planning import plan

    if args.pilot is not None:
        pilot_rows(args.pilot)  # a bad pilot directory fails before any planning
    loaded = load_spec(args.file)
    planned = plan(loaded, calibrate=args.calibrate)
    rates, calibration = plan_rates(loaded, planned, args.calibrate)
    print(plan_text(planned, rates, calibration))
    if args.pilot is not None:
        print()
        print(power_text(loaded, planned, rates, args.pilot))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from interp.experiments import Results

    results = Results(args.dir)
    if args.json:
        print(json.dumps(results.summary, indent=1, sort_keys=True))
    else:
        print(results.text())
        from interp.experiments.runlog import summarize

        print(summarize(args.dir))
    return 0


def _sites_table(records: list[dict[str, Any]]) -> str:
    columns = ("name", "attention", "layer", "component", "head", "shape", "module")
    cells = [[("" if r[c] is None else str(r[c])) for c in columns] for r in records]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def _cmd_sites(args: argparse.Namespace) -> int:
    from interp.components import component_names
    from interp.experiments.model import load, sites_of

    unknown = [c for c in args.component or () if c not in component_names()]
    if unknown:
        raise TadaError(f"Unknown component(s) {unknown} for --component; valid: {component_names()}.")
    adapter = load(args.model, weights=not args.no_weights)
    components = args.component or None
    records = sites_of(adapter, components=components, attention=args.attention)
    if args.json:
        print(json.dumps(records, indent=1))
        return 0
    print(_sites_table(records))
    summary = adapter.catalog.summary()
    print(
        f"\n{len(records)} sites of {args.model}: {summary['self']['layers']} self- and "
        f"{summary['cross']['layers']} cross-attention layers, "
        f"{summary['self']['head_sites'] + summary['cross']['head_sites']} heads"
        + ("" if adapter.has_weights else " (structure only, no weights)")
        + "."
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``tada`` argument parser, with plug-in sub-commands."""
    parser = argparse.ArgumentParser(
        prog="tada",
        description="Locate musical concepts in the attention heads of audio diffusion "
        "models and steer them: declarative experiments, sites, reports.",
        epilog=_MAIN_EPILOG,
        formatter_class=_Formatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show third-party loading bars, logs and warnings")  # fmt: skip
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "validate",
        help="check experiment specs without running a model",
        description="Check experiment specs: schema (unknown keys, types, ranges), prompt "
        "files, references between steps, and every site string against the model's real "
        "sites (built without weights). Every problem is reported at once; exit code 2 if "
        "any.",
        epilog="examples:\n  tada validate experiments/tiny.yaml\n"
        "  tada validate experiments/*.yaml\n  tada validate my.yaml --no-model   # schema only",
        formatter_class=_Formatter,
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="YAML experiment spec(s)")
    p.add_argument("--no-model", action="store_true", help="skip checks that build the model")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser(
        "run",
        help="run an experiment (resumes an interrupted run)",
        description="Run an experiment spec and write a results directory: spec.yaml, "
        "units/ (one file per finished unit), results.csv (one row per unit x metric), "
        "summary.json, plots/, audio/ and index.html. Rerunning on the same directory "
        "skips finished units, so an interrupted run (Ctrl-C, kill) completes without "
        "redoing work.",
        epilog="examples:\n  tada run experiments/tiny.yaml\n"
        "  tada run experiments/tiny.yaml --out runs/tiny-2   # another directory\n"
        "  tada run experiments/default.yaml --executor ray --workers 2",
        formatter_class=_Formatter,
    )
    p.add_argument("file", metavar="FILE", help="YAML experiment spec")
    p.add_argument("--out", metavar="DIR", help="results directory (default: the spec's "
                   "'output', else runs/<name>)")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--force", action="store_true", help="use a non-empty --out that is not a "
                   "tada run directory (files there may be overwritten)")  # fmt: skip
    p.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="where the work runs: this process (default) or Ray workers (docs/distributed.md)",
    )
    p.add_argument(
        "--address",
        metavar="ADDR",
        help="Ray cluster: 'auto', host:port or ray://host:port (default: start a local Ray instance)",
    )
    p.add_argument(
        "--workers",
        metavar="N",
        type=int,
        help="Ray workers, one model each (default: as many as the cluster hosts)",
    )
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser(
        "plan",
        help="count a spec's work and estimate its time and memory, before running it",
        description="Plan a spec without running it: per step, the pipeline calls, samples, "
        "denoiser forwards and row-steps, decodes and batch shapes, counted by the code that "
        "schedules them; the estimated wall time and peak memory from measured rates (the "
        "shipped table, or --calibrate on the spec's model and device); with --pilot, the "
        "pairs each concept needs and the cost resized to them. Docs: docs/plan.md.",
        epilog="examples:\n  tada plan experiments/default.yaml\n"
        "  tada plan experiments/paper/stable_audio_open.yaml\n"
        "  tada plan experiments/tiny.yaml --calibrate\n"
        "  tada plan experiments/significance.yaml --pilot runs/significance",
        formatter_class=_Formatter,
    )
    p.add_argument("file", metavar="FILE", help="YAML experiment spec")
    p.add_argument("--calibrate", action="store_true",
                   help="load the model (spec's device and dtype) and time its denoiser")  # fmt: skip
    p.add_argument("--pilot", metavar="RUN_DIR",
                   help="a finished run with a locate step: pairs needed for the spec's power_effect")  # fmt: skip
    p.set_defaults(func=_cmd_plan)

    p = sub.add_parser(
        "show",
        help="print the summary of a finished run",
        description="Print the summary of a run directory written by `tada run`.",
        epilog="examples:\n  tada show runs/tiny\n  tada show runs/tiny --json",
        formatter_class=_Formatter,
    )
    p.add_argument("dir", metavar="DIR", help="run directory")
    p.add_argument("--json", action="store_true", help="print summary.json")
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser(
        "sites",
        help="list the intervention sites of a model",
        description="List every site of a model: the canonical name (use it in specs and "
        "code), the torch module, attention kind, layer, component, head and the tensor "
        "shape convention. Sites: '<self|cross>.<layer>.<head.H|heads|out|text>'.",
        epilog="examples:\n  tada sites tiny-stable-audio\n"
        "  tada sites stable-audio-open-1.0 --no-weights --attention cross --component head\n"
        "  tada sites stable-audio-open-1.0 --no-weights --json",
        formatter_class=_Formatter,
    )
    p.add_argument("model", metavar="MODEL", help="model name, hub id or local directory")
    p.add_argument("--no-weights", action="store_true",
                   help="build the architecture on the meta device (no download)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print a JSON list of site records")
    p.add_argument("--attention", choices=("self", "cross"), help="only this attention kind")
    p.add_argument("--component", action="append", metavar="COMPONENT",
                   help="only these components (repeatable): head, heads, out, text, mask, "
                   "queries, keys, key, values, value, or one a plug-in registers")  # fmt: skip
    p.set_defaults(func=_cmd_sites)

    from interp.plugins import load_entry_points

    for point, add_commands in load_entry_points(COMMANDS_GROUP, "command", skip_broken=True):
        try:
            add_commands(sub)
        except Exception as error:  # a broken plug-in must not break tada
            print(f"tada: warning: skipped plug-in commands {point.name!r} ({point.value}): "
                  f"{type(error).__name__}: {error}", file=sys.stderr)  # fmt: skip
    for command in sub.choices.values():  # `tada run x.yaml -v` works too
        try:
            command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                                 help="show third-party loading bars, logs and warnings")  # fmt: skip
        except argparse.ArgumentError:
            pass  # a plug-in command with its own -v
    return parser


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM unwinds like Ctrl-C: temporary files are removed


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tada`` console script; returns the exit code."""
    previous = _on_sigterm(_interrupt)
    try:
        return _main(argv)
    except KeyboardInterrupt:  # from the first instruction on, plug-in loading included
        print("\ntada: interrupted. Finished units are saved; rerun the same command to "
              "continue.", file=sys.stderr)  # fmt: skip
        return 130
    finally:
        _on_sigterm(previous)


def _on_sigterm(handler: Any) -> Any:
    try:
        return signal.signal(signal.SIGTERM, handler)
    except (ValueError, TypeError):  # not the main thread, or no previous Python handler
        return None


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get("TADA_DEBUG") == "1"
    from interp.quiet import quiet_libraries

    quiet_libraries(verbose=args.verbose or debug)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except TadaError as error:
        if debug:
            traceback.print_exc()
        else:
            notes = "".join(f"\n{note}" for note in getattr(error, "__notes__", []))
            print(f"tada: error: {error}{notes}", file=sys.stderr)
        return 2
    except OSError as error:  # disk full, permissions: the user's to fix, not a bug
        if debug:
            raise
        where = f" {str(error.filename)!r}" if error.filename else ""
        print(f"tada: error: cannot access{where}: {error.strerror or error}.", file=sys.stderr)
        return 2
    except Exception as error:  # unexpected: say so, traceback on --debug
        if debug:
            raise
        notes = "".join(f"\n{note}" for note in getattr(error, "__notes__", []))
        print(f"tada: unexpected {type(error).__name__}: {error}{notes}\n(This is likely a bug; "
              f"rerun with --debug for the traceback.)", file=sys.stderr)  # fmt: skip
        return 1


if __name__ == "__main__":
    sys.exit(main())
