"""``tada rehearse MODEL DIR``: a full-size pipeline directory with random weights."""

import argparse
import shutil
from pathlib import Path

from interp.errors import TadaError

DTYPES = ("float32", "float16", "bfloat16")


class RehearsalDirectoryError(TadaError, FileExistsError):
    """The rehearsal's target directory holds files and ``--force`` was not given."""


def _run(args: argparse.Namespace) -> int:
    import torch

    from models.rehearse import recipe, rehearse

    pipeline = "pipeline" in recipe(args.model)  # unknown names fail before anything is written
    out = Path(args.dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not args.force:
            raise RehearsalDirectoryError(
                f"{str(out)!r} exists and is not an empty directory; choose a new directory "
                f"or pass --force to replace it."
            )
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    built = rehearse(args.model, out, seed=args.seed, dtype=getattr(torch, args.dtype))
    for c in built:
        print(f"{c.name:18s} {c.class_name:34s} {c.parameters / 1e6:9.1f}M params  {c.seconds:6.1f}s")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    use = (
        f"load it with interp.load_model({str(out)!r}) or `model: {{name: {out}}}` in a spec"
        if pipeline
        else f"score with it: `metric: {{name: clap, options: {{scorer_model: {out}}}}}` in a spec, "
        f"or models.clap.ClapScorer.load({str(out)!r})"
    )
    print(
        f"wrote {args.model} ({sum(c.parameters for c in built) / 1e9:.3f}B parameters, random weights, "
        f"{size / 1e9:.2f} GB) to {out}; {use}."
    )
    return 0


def add_commands(subparsers) -> None:
    """Adds ``tada rehearse`` to the ``tada`` CLI (entry point group ``tada_interp.commands``).

    Imports nothing heavy: ``tada`` builds its parser for every command."""
    configs = Path(__file__).parent / "configs"
    rehearsable = tuple(sorted(p.parent.name for p in configs.glob("*/rehearsal.json")))

    p = subparsers.add_parser(
        "rehearse",
        help="write a model's real pipeline at full size with random weights",
        description="Write a complete save_pretrained directory of a model's real pipeline at "
        "full size, with random weights and an offline word-level tokenizer, built from the "
        "configs the project ships. Load it like a downloaded checkpoint to rehearse a spec "
        "(memory, time, errors) before the weights are at hand. Several GB on disk.",
        epilog="examples:\n  tada rehearse stable-audio-open-1.0 /tmp/sao\n"
        "  tada rehearse audioldm2-large /tmp/a2l --dtype float16\n"
        "  tada rehearse larger-clap-music /tmp/clap      # the paper's CLAP scorer",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", metavar="MODEL", choices=rehearsable, help=f"one of: {', '.join(rehearsable)}")
    p.add_argument("dir", metavar="DIR", help="output directory (new or empty)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights (default 0)")
    p.add_argument("--dtype", choices=DTYPES, default="float32", help="weight dtype (default float32)")
    p.add_argument("--force", action="store_true", help="replace DIR if it holds files")
    p.set_defaults(func=_run)
