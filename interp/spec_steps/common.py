"""Settings shared by the localization methods: prompt pairs, metrics, site selection."""

from typing import Any, ClassVar

from pydantic import Field

from interp.errors import TadaError
from interp.experiments.fields import BatchSizeSetting, BranchName, StepWindow, StrictModel
from interp.experiments.metric_specs import MetricSpec, step_metric
from interp.metrics import Metric
from interp.prompts import PromptPair

METRIC_HELP = (
    "A registered metric (name or {name, options}; higher = closer to the clean "
    "run or more of the concept): 'concept': the model's own concept scorer; "
    "'clap': LAION-CLAP text-audio similarity (real models; weights from the hub "
    "cache or `scorer_model`); 'tempo': librosa beat tracking (fast/slow pairs); "
    "'latent_distance' / 'audio_distance': closeness to the clean run; or one a "
    "plug-in registers."
)


class PairsSpec(StrictModel):
    """Ready counterfactual pairs from a named source."""

    source: str = Field(
        default="tada",
        description="Pair source: 'tada' (the paper's 21 "
        "concepts) or one a model package adds, e.g. 'synthmusic'.",
    )
    concepts: list[str] | None = Field(default=None, description="Concepts (default: all).")
    per_concept: int = Field(default=8, ge=1, description="Pairs per concept.")
    seed: int = Field(default=0, description="Seed of the pair sampling.")


class PairSettings(StrictModel):
    """Fields of every method that patches prompt pairs (mixed into each method)."""

    #: their layers are checked against the model before anything runs
    needs_catalog: ClassVar[bool] = True

    pairs: PairsSpec | None = Field(
        default=None,
        description="Where the (clean, corrupted) pairs come from; default: the step's "
        "prompt set, each prompt with a 'corrupted' field (and optional 'clean_value', "
        "'corrupted_value').",
    )
    metric: MetricSpec = Field(default=MetricSpec(name="concept"), description=METRIC_HELP)
    scorer_model: str | None = Field(
        default=None, description="Checkpoint (hub id or directory) of the 'clap' scorer."
    )
    branch: BranchName = Field(default="cond", description="CFG branch to intervene on.")
    batch_size: BatchSizeSetting = Field(
        default="auto",
        description="Variants per batched forward pass: 'auto' (the device's ceiling, 8 on CPU and 64 "
        "on CUDA, or the most that fit in free memory below it, resolved once per step and kept on "
        "resume) or a number. A batch that runs out of memory is halved and retried.",
    )


class PatchingSettings(PairSettings):
    """Fields every localization method has: the pairs' fields and the steps to patch."""

    patch_steps: StepWindow = Field(default="all", description="Denoising steps to intervene on.")


def check_pairs(settings: Any, ctx: Any) -> None:
    """Check a step's ``layers`` against the model and that it has pairs to patch."""
    layers = getattr(settings, "layers", None)
    if layers and ctx.catalog is not None:
        n = ctx.catalog.count("cross")
        bad = [layer for layer in layers if not 0 <= layer < n]
        if bad:
            ctx.error(
                "layers", f"no cross-attention layer(s) {bad}; the model has cross layers 0..{n - 1}", layers
            )
    if settings.pairs is None and ctx.prompts == []:
        ctx.error(
            "pairs",
            "this step needs (clean, corrupted) pairs: give `pairs: {source: "
            "tada}` (or 'synthmusic'), or a prompt set whose prompts have a 'corrupted' field",
        )
    if settings.pairs is not None:
        from interp.pairsources import sources

        if settings.pairs.source not in sources():
            ctx.error(
                "pairs.source", f"unknown pair source; valid: {sorted(sources())}", settings.pairs.source
            )


def step_pairs(settings: Any, ctx: Any) -> list[PromptPair]:
    """The step's pairs: from ``settings.pairs`` or the step's prompt set."""
    if settings.pairs is not None:
        from interp.pairsources import pairs_from

        p = settings.pairs
        return pairs_from(p.source, p.concepts, p.per_concept, p.seed)
    pairs = []
    for prompt in ctx.prompts:
        corrupted = prompt.fields.get("corrupted")
        if corrupted is None:
            raise TadaError(
                f"Prompt {prompt.text!r} has no 'corrupted' field: localization needs "
                f"(clean, corrupted) pairs. Add fields: {{corrupted: ...}} to each prompt, or "
                f"use pairs: {{source: tada}}."
            )
        pairs.append(
            PromptPair(
                prompt.text,
                corrupted,
                prompt.concept or "concept",
                prompt.fields.get("clean_value"),
                prompt.fields.get("corrupted_value"),
            )
        )
    return pairs


def by_concept(pairs: list[PromptPair]) -> dict[str, list[PromptPair]]:
    """Pairs grouped by concept, in first-seen order."""
    groups: dict[str, list[PromptPair]] = {}
    for pair in pairs:
        groups.setdefault(pair.concept, []).append(pair)
    return groups


def build_metric(spec: MetricSpec, adapter: Any, scorer_model: str | None = None) -> Metric:
    """The registered metric of ``spec`` on ``adapter`` (``scorer_model`` is the checkpoint
    of a metric with a ``scorer_model`` option, e.g. 'clap'):
    :func:`interp.experiments.metric_specs.step_metric`."""
    return step_metric(spec, adapter, scorer_model)
