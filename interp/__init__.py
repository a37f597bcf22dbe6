"""tada-interp: locate musical concepts in the attention heads of audio diffusion models,
and steer them.

The curated public API (imported lazily, so ``import interp`` stays fast)::

    import interp

    model = interp.load_model("tiny-stable-audio")
    interp.sites_of(model)[:3]                      # every intervention point
    request = interp.GenerationRequest(prompts=("a sad violin song",), seeds=(0,), num_steps=4)
    out = interp.run(model, request, edits=[interp.Edit("cross.1.head.2", interp.Zero())])
    results = interp.experiments.run("experiments/tiny.yaml")   # a whole experiment

Sites (:class:`Site`) say where, operations (:class:`Zero`, :class:`Add`, ...) say what,
:class:`Edit` / :class:`Read` bind them to denoising steps and a CFG branch, and
:func:`run` executes them in one traced generation.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    # sites and selections
    "Site": "interp.sites",
    "SiteCatalog": "interp.catalog",
    "AttentionModule": "interp.catalog",
    "Steps": "interp.selection",
    "Branch": "interp.selection",
    # edits, reads and the runner
    "Edit": "interp.edits",
    "Read": "interp.edits",
    "Replace": "interp.edits",
    "Add": "interp.edits",
    "Scale": "interp.edits",
    "Zero": "interp.edits",
    "Apply": "interp.edits",
    "ReplaceTokens": "interp.edits",
    "run": "interp.runner",
    "RunResult": "interp.runner",
    # localization
    "PromptPair": "interp.prompts",
    "tada_pairs": "interp.prompts",
    "pairs_from": "interp.pairsources",
    "Variant": "interp.patch_variants",
    "sweep": "interp.patching",
    "attribute": "interp.attribution",
    "locate": "interp.localization",
    "overlap_matrix": "interp.localization",
    "time_resolved_patching": "interp.time_patching",
    "Window": "interp.windows",
    "WindowPlan": "interp.windows",
    "get_metric": "interp.metrics",
    "register_metric": "interp.metrics",
    "ConceptContrast": "interp.metrics",
    "normalized_effect": "interp.statistics",
    # which word a head reads
    "read_patterns": "interp.attention_patterns",
    "attention_by_word": "interp.word_reading",
    "token_patching": "interp.word_reading",
    "context_of": "interp.word_reading",
    # models
    "GenerationRequest": "interp.adapter",
    "GenerationOutput": "interp.adapter",
    "ModelAdapter": "interp.adapter",
    "load_model": "interp.registry",
    "sites_of": "interp.experiments.model",
    # errors
    "TadaError": "interp.errors",
    "SiteError": "interp.errors",
    "SelectionError": "interp.errors",
    "EditError": "interp.errors",
    "ModelNotFoundError": "interp.errors",
    "UnsupportedModelError": "interp.errors",
}

__all__ = sorted([*_EXPORTS, "experiments", "steering"])


def __getattr__(name: str) -> Any:
    if name in ("experiments", "steering"):
        return import_module(f"interp.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'interp' has no attribute {name!r}; public names: {__all__}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
