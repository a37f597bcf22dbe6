"""Measures how well SynthMusic models carry each concept, scored by the concept scorer.

For each model, N test captions are drawn over all 216 combinations (held-out ones
included), each row generated with its own seed, and the final spectrogram is classified
by the scorer. Accuracy per concept comes with chance level and a 95% Wilson interval.
"""

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from interp.statistics import wilson

from .captions import caption, is_held_out
from .data import TEST_SEED_OFFSET, values_for_seed
from .music import CONCEPTS, ConceptValues
from .pipeline import SynthMusicPipeline, load_synthmusic
from .scorer import ConceptScorer, load_scorer

EVAL_SEED_OFFSET = TEST_SEED_OFFSET + 5_000_000
"""First seed of evaluation prompts (disjoint from the scorer's test clips)."""


@dataclass(frozen=True)
class EvalPrompt:
    """One evaluation row: concepts, caption, generator seed, whether it is held out."""

    values: ConceptValues
    caption: str
    seed: int
    held_out: bool


def eval_prompts(n: int, seed: int = 0) -> list[EvalPrompt]:
    """``n`` deterministic test prompts (uniform over all combinations)."""
    out = []
    for i in range(n):
        s = EVAL_SEED_OFFSET + 1000 * seed + i
        v = values_for_seed("test", s)
        rng = np.random.default_rng([s, 3])
        out.append(EvalPrompt(v, caption(v, rng), s, is_held_out(v)))
    return out


def generate_latents(
    pipe: SynthMusicPipeline,
    prompts: list[EvalPrompt],
    guidance: float,
    steps: int = 25,
    batch: int = 50,
    bar: tqdm | None = None,
) -> torch.Tensor:
    """Final spectrograms ``[n, 80, 64]`` for ``prompts``; row i uses generator seed prompts[i].seed.

    ``bar`` (optional) advances by the number of prompts generated.
    """
    outs = []
    for i in range(0, len(prompts), batch):
        chunk = prompts[i : i + batch]
        gens = [torch.Generator().manual_seed(p.seed) for p in chunk]
        res = pipe(
            [p.caption for p in chunk],
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=gens,
            output_type="latent",
        )
        outs.append(res.latents)
        if bar is not None:
            bar.update(len(chunk))
    return torch.cat(outs)


def concept_accuracy(
    scorer: ConceptScorer, latents: torch.Tensor, prompts: list[EvalPrompt]
) -> dict[str, dict]:
    """``{concept: {"accuracy", "chance", "ci_low", "ci_high", "n"}}`` of ``latents``."""
    pred = scorer.predict(latents)
    result = {}
    for concept, values in CONCEPTS.items():
        target = torch.tensor([values.index(getattr(p.values, concept)) for p in prompts])
        k = int((pred[concept] == target).sum())
        lo, hi = wilson(k, len(prompts), z=1.959964)
        result[concept] = {
            "accuracy": k / max(1, len(prompts)),
            "chance": 1.0 / len(values),
            "ci_low": lo,
            "ci_high": hi,
            "n": len(prompts),
        }
    return result


def evaluate(
    models: list[str],
    samples: int = 400,
    guidance: list[float] | None = None,
    steps: int = 25,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Runs the evaluation.

    Args:
        models: Model kinds to evaluate ("dit", "unet").
        samples: Prompts per model.
        guidance: Guidance scales; the first is the main one.
        steps: Euler steps per generation.
        seed: Chooses the prompt set.
        progress: Show a progress bar (on stderr) over all generations.

    Returns:
        ``{"main": {model: {concept: stats}}, "by_guidance": {g: {model: ...}},
        "held_out": {model: {concept: stats}}}`` (held-out prompts at the main guidance).
    """
    guidance = guidance or [4.0]
    torch.set_num_threads(1)  # on the shared 2-core machine 1 thread is faster than 2
    scorer = load_scorer()
    prompts = eval_prompts(samples, seed)
    held = [i for i, p in enumerate(prompts) if p.held_out]
    out: dict = {
        "main": {},
        "by_guidance": {str(g): {} for g in guidance},
        "held_out": {},
        "samples": samples,
        "steps": steps,
        "guidance": guidance,
        "seed": seed,
    }
    bar = tqdm(
        total=len(models) * len(guidance) * samples,
        desc="eval generations",
        unit="clip",
        disable=not progress,
    )
    for kind in models:
        pipe = load_synthmusic(kind)
        for j, g in enumerate(guidance):
            bar.set_postfix(model=kind, guidance=g)
            lat = generate_latents(pipe, prompts, g, steps, bar=bar)
            res = concept_accuracy(scorer, lat, prompts)
            out["by_guidance"][str(g)][kind] = res
            if j == 0:
                out["main"][kind] = res
                out["held_out"][kind] = concept_accuracy(scorer, lat[held], [prompts[i] for i in held])
    bar.close()
    return out


def format_table(results: dict) -> str:
    """Plain-text table of every model, guidance scale and concept."""
    lines = [f"{'model':6} {'cfg':>5} {'concept':11} {'acc':>6} {'chance':>7} {'95% CI':>15}"]
    for g, per_model in results["by_guidance"].items():
        for kind, res in per_model.items():
            for c, r in res.items():
                lines.append(
                    f"{kind:6} {float(g):5.1f} {c:11} {r['accuracy']:6.3f} {r['chance']:7.3f} "
                    f"  [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
                )
    for kind, res in results["held_out"].items():
        n = next(iter(res.values()))["n"]
        accs = ", ".join(f"{c} {r['accuracy']:.3f}" for c, r in res.items())
        lines.append(f"held-out combinations only ({kind}, n={n}, cfg {results['guidance'][0]}): {accs}")
    return "\n".join(lines)
