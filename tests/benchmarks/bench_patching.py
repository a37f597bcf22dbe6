"""Patching speed on the default model: batched vs sequential sweeps, attribution vs
exhaustive head patching. Run on demand (not collected by pytest)::

    python tests/benchmarks/bench_patching.py [--model synthmusic-dit] [--pairs 2]

Prints, in one run (each timing the best of ``--repeats`` runs): wall time per patched
generation sequentially (batch 1) and batched
(goal: batched >= 3x faster per variant); the cost of attribution for all heads in units
of one plain generation (goal <= 4, whatever the number of heads) and its Spearman rank
correlation with exhaustive single-head patching (goal >= 0.8), through the whole sampler
and with the per-step local metric; and a late patch window with and without reusing the
corrupted run's latents.
"""

import argparse
import time

import torch

from interp.adapter import GenerationRequest
from interp.attribution import attribute, gradient_metric, rank_agreement
from interp.metrics import ConceptContrast, get_metric
from interp.pairsources import pairs_from
from interp.patching import single_site_variants, sweep
from interp.registry import load_model


def timed(fn, repeats: int = 1):
    """(value, best wall time of ``repeats`` runs): the best run is the least disturbed."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return value, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="synthmusic-dit")
    parser.add_argument("--concept", default="tempo")
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=24)
    parser.add_argument("--metric", choices=["concept", "latent_distance"], default="concept")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many timed runs")
    parser.add_argument(
        "--threads",
        type=int,
        default=torch.get_num_threads(),
        help="torch CPU threads (default: torch's, one per core)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    base = model.default_request(["-"], [0])
    pairs = pairs_from("synthmusic", [args.concept], args.pairs, 0)
    metric = (
        ConceptContrast(model.concept_scorer()) if args.metric == "concept" else get_metric("latent_distance")
    )
    heads = model.catalog.where(attention="cross", component="head")
    variants = single_site_variants(heads)
    print(
        f"model {args.model}: {len(heads)} cross-attention heads, {base.num_steps} steps, "
        f"CFG {base.guidance_scale}; {args.pairs} pair(s) of '{args.concept}', 1 seed, "
        f"{args.threads} thread(s)"
    )

    single = GenerationRequest(
        prompts=(pairs[0].corrupted,),
        seeds=(0,),
        num_steps=base.num_steps,
        guidance_scale=base.guidance_scale,
    )
    model.generate(single)  # warm up
    _, t_plain = timed(lambda: model.generate(single), 5)

    seq, t_seq = timed(
        lambda: sweep(model, base, pairs, [0], variants, metric, batch_size=1, progress=False), args.repeats
    )
    bat, t_bat = timed(
        lambda: sweep(model, base, pairs, [0], variants, metric, batch_size=args.batch, progress=False),
        args.repeats,
    )
    n_variants = len(variants) * len(pairs)
    print(f"plain generation: {t_plain:.3f} s")
    print(f"sequential sweep: {t_seq / n_variants:.3f} s per patched generation")
    print(f"batched sweep (batch {args.batch}): {t_bat / n_variants:.3f} s per patched generation")
    print(f"speed-up batched vs sequential: {t_seq / t_bat:.2f}x   (goal >= 3)")
    exact = {k: e.mean for k, e in bat.effects().items()}
    diff = max(abs(a["value"] - b["value"]) for a, b in zip(seq.rows, bat.rows))
    print(f"largest difference batched vs sequential metric: {diff:.2e}")

    for mode in ("final", "local"):
        chosen = gradient_metric(model, metric, "auto" if mode == "final" else "local")
        if mode == "final" and chosen is None:
            print("attribution through the whole sampler: not available for this model")
            continue
        est, t_attr = timed(
            lambda chosen=chosen: attribute(model, base, pairs, [0], heads, progress=False, metric=chosen),
            args.repeats,
        )
        per_unit = t_attr / len(pairs)
        what = f"d {metric.name}(final output)" if mode == "final" else "per-step local metric"
        print(
            f"attribution ({what}), all {len(heads)} heads: {per_unit:.3f} s per pair = "
            f"{per_unit / t_plain:.2f} plain generations   (goal <= 4); "
            f"Spearman vs exact patching: {rank_agreement(est.scores, exact):.3f}   (goal >= 0.8)"
        )
    print(f"exhaustive head patching: {t_bat / len(pairs) / t_plain:.2f} plain generations per pair")

    late = f"{base.num_steps // 2}:"
    _, t_reuse = timed(
        lambda: sweep(
            model, base, pairs, [0], variants, metric, batch_size=args.batch, steps=late, progress=False
        ),
        args.repeats,
    )
    _, t_full = timed(
        lambda: sweep(
            model,
            base,
            pairs,
            [0],
            variants,
            metric,
            batch_size=args.batch,
            steps=late,
            progress=False,
            reuse_latents=False,
        ),
        args.repeats,
    )
    print(
        f"patch window {late} (second half of the steps): {t_reuse / n_variants:.3f} s per patched "
        f"generation reusing the corrupted run's latents vs {t_full / n_variants:.3f} s recomputing "
        f"them ({t_full / t_reuse:.2f}x)"
    )


if __name__ == "__main__":
    main()
