"""Sparse autoencoders on denoiser activations: cache, train with sae-lens, select, steer.

Pipeline (TADA's SAE steering, generic over adapters)::

    from saes import *
    cache = cache_activations(model, request, prompts, ["cross.1.out"], "runs/cache")
    reports = train_saes(cache, SAESettings(architecture="batchtopk", k=24), "runs/saes")
    sae = load_sae("runs/saes/cross.1.out")            # sae_lens.SAE.load_from_disk
    selection = concept_features(model, request, concept.positive, concept.negative, sae, k=20)
    steerer = SAEFeatureSteerer(sae, selection)        # or SAEClampSteerer(...)
    interp.steering.evaluate_steering(model, request, steerer, alphas, scorer, ...)

This package may import :mod:`interp` and ``sae_lens`` (lazily: it takes ~5 s), never
``diffusers`` or ``models``.
"""

from saes.cache import ActivationCache, cache_activations
from saes.features import (
    FeatureSelection,
    concept_features,
    feature_activations,
    score_features,
    select_features,
)
from saes.layout import site_shape, site_width
from saes.steer import SAEClampSteerer, SAEFeatureSteerer, decoder_directions
from saes.train import SAEReport, SAESettings, evaluate_sae, load_sae, train_sae, train_saes
from saes.workflow import SAESteeringSettings, run_sae_steering

__all__ = [
    "ActivationCache",
    "FeatureSelection",
    "SAEClampSteerer",
    "SAEFeatureSteerer",
    "SAEReport",
    "SAESettings",
    "SAESteeringSettings",
    "cache_activations",
    "concept_features",
    "decoder_directions",
    "evaluate_sae",
    "feature_activations",
    "load_sae",
    "run_sae_steering",
    "score_features",
    "select_features",
    "site_shape",
    "site_width",
    "train_sae",
    "train_saes",
]
