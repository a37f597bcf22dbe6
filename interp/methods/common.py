"""Settings shared by the localization methods: prompt pairs, metrics, site selection."""

from typing import Any, ClassVar, Literal

from pydantic import Field

from interp.errors import TadaError
from interp.experiments.fields import BranchName, StepWindow, StrictModel
from interp.metrics import AudioSimilarity, ConceptContrast, LatentSimilarity, Metric
from interp.prompts import PromptPair

MetricName = Literal["concept", "latent_distance", "audio_distance", "clap", "tempo"]


class PairsSpec(StrictModel):
    """Ready counterfactual pairs from a named source."""

    source: str = Field(default="tada", description="Pair source: 'tada' (the paper's 21 "
                        "concepts) or one a model package adds, e.g. 'synthmusic'.")
    concepts: list[str] | None = Field(default=None, description="Concepts (default: all).")
    per_concept: int = Field(default=8, ge=1, description="Pairs per concept.")
    seed: int = Field(default=0, description="Seed of the pair sampling.")


class PatchingSettings(StrictModel):
    """Fields every localization method has (mixed into each method)."""

    #: their layers are checked against the model before anything runs
    needs_catalog: ClassVar[bool] = True

    pairs: PairsSpec | None = Field(
        default=None,
        description="Where the (clean, corrupted) pairs come from; default: the step's "
        "prompt set, each prompt with a 'corrupted' field (and optional 'clean_value', "
        "'corrupted_value').",
    )
    metric: MetricName = Field(
        default="concept",
        description="'concept': the model's own concept scorer (score of the clean value "
        "minus the corrupted value); 'clap': LAION-CLAP text-audio similarity (real models; "
        "weights from the hub cache or `scorer_model`); 'tempo': librosa beat tracking "
        "(fast/slow pairs); 'latent_distance' / 'audio_distance': closeness to the clean run.",
    )
    scorer_model: str | None = Field(
        default=None, description="Checkpoint (hub id or directory) of the 'clap' scorer.")
    patch_steps: StepWindow = Field(default="all", description="Denoising steps to intervene on.")
    branch: BranchName = Field(default="cond", description="CFG branch to intervene on.")
    batch_size: int = Field(default=8, ge=1, description="Variants per batched forward pass.")


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
        pairs.append(PromptPair(prompt.text, corrupted, prompt.concept or "concept",
                                prompt.fields.get("clean_value"),
                                prompt.fields.get("corrupted_value")))
    return pairs


def by_concept(pairs: list[PromptPair]) -> dict[str, list[PromptPair]]:
    """Pairs grouped by concept, in first-seen order."""
    groups: dict[str, list[PromptPair]] = {}
    for pair in pairs:
        groups.setdefault(pair.concept, []).append(pair)
    return groups


def build_metric(name: str, adapter: Any, scorer_model: str | None = None) -> Metric:
    """The metric object for a metric name."""
    if name == "latent_distance":
        return LatentSimilarity()
    if name == "audio_distance":
        return AudioSimilarity()
    if name in ("clap", "tempo"):
        from interp.scorers import load_scorer

        options = {"source": scorer_model} if scorer_model else {}
        return ConceptContrast(load_scorer(name, **options), name=name)
    scorer = adapter.concept_scorer()
    if scorer is None:
        raise TadaError(
            f"metric 'concept' needs a concept scorer, and {adapter.name!r} ships none. Use "
            f"metric: latent_distance, or a model with a scorer (synthmusic-dit)."
        )
    return ConceptContrast(scorer)
