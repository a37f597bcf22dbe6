"""Head-grid documents the report draws (:mod:`interp.experiments.report.heads`): the
``locate`` step's listenable grid (the first pair's clean, corrupted and subset-patched
audio, and each shown head's audio patched alone), and the ``patch`` step's silent one."""

from collections.abc import Sequence

from interp.adapter import GenerationRequest
from interp.batching import BatchSize
from interp.experiments.context import StepContext
from interp.experiments.report import HEAD_GRID_PREFIX, head_grid_data
from interp.experiments.units import Row
from interp.listening import Listening, patched_generations
from interp.localization import Localization
from interp.patch_variants import Variant, single_site_variants
from interp.prompts import PromptPair
from interp.selection import Branch, StepsLike
from interp.sites import Site
from interp.statistics import Effect

#: The label of the located subset's variant (head variants are labelled by site).
_SUBSET = "patched"


def write_head_grid(
    result: Localization,
    pair: PromptPair,
    seed: int,
    base: GenerationRequest,
    ctx: StepContext,
    *,
    audio_heads: int | None,
    steps: StepsLike = None,
    branch: Branch | str = Branch.COND,
    batch_size: BatchSize = "auto",
) -> str:
    """Write the grid document of ``result`` and, unless ``audio_heads`` is ``None``, the
    audio it plays: clean, corrupted, the located subset patched, and the ``audio_heads``
    heads of largest |effect| patched one at a time (one batched generation per head).

    Returns:
        The document's path relative to the run directory.
    """
    clips: dict[str, str] = {}
    head_audio: dict[str, str] = {}
    if audio_heads is not None:
        variants = _variants(result, audio_heads)
        listening = patched_generations(
            ctx.adapter, base, pair, seed, variants, steps=steps, branch=branch, batch_size=batch_size
        )
        clips, head_audio = _save(result.concept, listening, ctx)
    test = result.significance
    grid = head_grid_data(
        result.concept,
        result.head_effects,
        subset=result.subset,
        significant=result.significant,
        q=None if test is None else test.q,
        alpha=None if test is None else test.alpha,
        audio=head_audio,
        clips=clips,
        pair=(pair.clean, pair.corrupted),
        seed=seed,
    )
    return ctx.save_json(f"{HEAD_GRID_PREFIX}{result.concept}", grid)


def _variants(result: Localization, audio_heads: int) -> list[Variant]:
    """The located subset patched together, then the heads of largest |effect| alone."""
    heads = sorted(result.head_effects, key=lambda h: -abs(result.head_effects[h].mean))
    variants = single_site_variants(heads[:audio_heads])
    if result.subset:
        variants.insert(0, Variant.of(result.subset, _SUBSET))
    return variants


def _save(concept: str, listening: Listening, ctx: StepContext) -> tuple[dict[str, str], dict[str, str]]:
    """Write the clips; returns (label -> path beside the grid, head -> path)."""
    clips: dict[str, str] = {}
    head_audio: dict[str, str] = {}
    for label, out in (("clean", listening.clean), ("corrupted", listening.corrupted)):
        if out.audio is not None:
            clips[label] = ctx.save_audio(f"{concept}-{label}", out.audio[0], out.sample_rate)
    for label, out in listening.patched.items():
        if out.audio is None:
            continue
        if label == _SUBSET:
            clips["subset patched"] = ctx.save_audio(f"{concept}-patched", out.audio[0], out.sample_rate)
        else:
            head_audio[label] = ctx.save_audio(f"{concept}-head-{label}", out.audio[0], out.sample_rate)
    return clips, head_audio


def write_silent_grids(rows: Sequence[Row], ctx: StepContext, direction: str) -> list[str]:
    """One grid document per concept of the single-head rows among ``rows`` (rows of other
    sites, such as layers' text inputs, are left out); returns their paths."""
    effects: dict[str, dict[str, Effect]] = {}
    for row in rows:
        name = row.site
        if not name or name.startswith("module.") or Site.parse(name).component != "head":
            continue
        labels = row.labels
        effect = Effect(row.value, labels["ci_low"], labels["ci_high"], labels["n"])
        effects.setdefault(row.concept or "", {})[name] = effect
    return [
        ctx.save_json(f"{HEAD_GRID_PREFIX}{concept}", head_grid_data(concept, heads, direction=direction))
        for concept, heads in effects.items()
    ]
