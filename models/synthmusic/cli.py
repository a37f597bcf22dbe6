"""Command line for SynthMusic: ``synthmusic train dit|unet`` and ``synthmusic eval``.

The project's ``tada`` CLI calls :func:`add_commands`; meanwhile
``python -m models.synthmusic.cli synthmusic ...`` works on its own.
"""

import argparse
import json
import shlex
import sys

from .defaults import DEFAULTS


def _parse_guidance(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--guidance must be comma-separated numbers, got {text!r}"
        ) from None


def _parse_models(text: str) -> list[str]:
    kinds = [x.strip() for x in text.split(",") if x.strip()]
    bad = [k for k in kinds if k not in ("dit", "unet")]
    if bad or not kinds:
        raise argparse.ArgumentTypeError(
            f"--models must be a comma-separated subset of dit,unet, got {text!r}"
        )
    return kinds


def _run_train(args: argparse.Namespace) -> int:
    from .train import train

    command = f"tada synthmusic train {args.kind}" + "".join(
        f" --{k} {shlex.quote(str(v))}"
        for k, v in (
            ("steps", args.steps),
            ("seed", args.seed),
            ("out", args.out),
            ("init-from", args.init_from),
            ("lr", args.lr),
        )
        if v is not None
    )
    out = train(
        args.kind,
        steps=args.steps,
        seed=args.seed,
        out=args.out,
        command=command,
        init_from=args.init_from,
        lr=args.lr,
    )
    print(f"saved {args.kind} pipeline to {out}")
    return 0


def _run_eval(args: argparse.Namespace) -> int:
    from .evaluate import evaluate, format_table

    results = evaluate(
        args.models, samples=args.samples, guidance=args.guidance, steps=args.steps, seed=args.seed
    )
    if args.details:
        with open(args.details, "w") as f:
            json.dump(results, f, indent=2)
    if args.json:
        print(
            json.dumps(
                {
                    k: {
                        c: {f: r[f] for f in ("accuracy", "chance", "ci_low", "ci_high")}
                        for c, r in res.items()
                    }
                    for k, res in results["main"].items()
                },
                indent=2,
            )
        )
    else:
        print(f"{args.samples} test prompts per model (held-out combinations included), {args.steps} steps")
        print(format_table(results))
    return 0


def add_commands(subparsers) -> None:
    """Adds the ``synthmusic`` sub-command (with ``train`` and ``eval``) to an argparse subparsers."""
    sm = subparsers.add_parser("synthmusic", help="SynthMusic: train and evaluate the offline default models")
    sub = sm.add_subparsers(dest="synthmusic_command", required=True)
    tr = sub.add_parser("train", help="train the DiT or UNet from scratch (fixed number of steps)")
    tr.add_argument("kind", choices=["dit", "unet"])
    tr.add_argument(
        "--steps",
        type=int,
        default=None,
        help=f"optimizer steps (default: dit {DEFAULTS['dit']['steps']}, unet {DEFAULTS['unet']['steps']})",
    )
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--out", default=None, help="output directory (default runs/synthmusic/KIND)")
    tr.add_argument("--init-from", default=None, help="continue from this saved pipeline directory")
    tr.add_argument("--lr", type=float, default=None, help="peak learning rate (default 1e-3)")
    tr.set_defaults(func=_run_train)
    ev = sub.add_parser("eval", help="concept accuracy of generated audio, scored by the concept scorer")
    ev.add_argument("--samples", type=int, default=400, help="test prompts per model (default 400)")
    ev.add_argument(
        "--json",
        action="store_true",
        help="print JSON {model: {concept: {accuracy, chance, ci_low, ci_high}}}",
    )
    ev.add_argument("--models", type=_parse_models, default=["dit", "unet"], help="comma-separated: dit,unet")
    ev.add_argument(
        "--guidance",
        type=_parse_guidance,
        default=[4.0, 1.0, 7.0],
        help="comma-separated guidance scales; the first is the main one (default 4,1,7)",
    )
    ev.add_argument("--steps", type=int, default=25, help="Euler steps per generation")
    ev.add_argument("--seed", type=int, default=0, help="chooses the prompt set")
    ev.add_argument(
        "--details", default=None, help="also write all results (every guidance, held-out) to this JSON file"
    )
    ev.set_defaults(func=_run_eval)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m models.synthmusic.cli``."""
    parser = argparse.ArgumentParser(prog="python -m models.synthmusic.cli")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
