"""Steering: contrastive activation addition (CAA) and its evaluation, for any adapter.

*Methods describe, one runner executes*: :func:`compute_caa` reads activations through
:func:`interp.runner.run`; a steerer (:class:`CAASteerer`, or the SAE steerers of
:mod:`saes.steer`) turns a strength alpha into :class:`~interp.edits.Edit` values;
:func:`evaluate_steering` runs an alpha grid and measures concept alignment against
preservation.

Example (needs a model, a request and a scorer, so it is not run as a doctest)::

    from interp.steering import *
    concept = steering_concept("happy")
    vectors = compute_caa(model, request, concept.positive, concept.negative, ["cross.1.out"])
    steerer = CAASteerer(vectors)
    result = evaluate_steering(model, request, steerer, alpha_grid(8, 4), scorer,
                               concept.scorer_concept, concept.target, out_dir="runs/happy")
"""

from interp.steering.artifacts import write_wav
from interp.steering.caa import SteeringVectors, activation_means, compute_caa
from interp.steering.concepts import SteeringConcept, steering_concept, steering_concept_names
from interp.steering.evaluation import (
    SteeringEvaluation,
    alignment_auc,
    compare,
    evaluate_steering,
    relative_distance,
)
from interp.steering.scoring import CentroidScorer
from interp.steering.steer import CAASteerer, Steerer, alpha_grid, renormalized, sweep_alpha
from interp.steering.vectors_io import load_vectors, save_vectors
from interp.steering.workflow import CAASettings, run_caa

__all__ = [
    "CAASettings",
    "CAASteerer",
    "CentroidScorer",
    "SteeringConcept",
    "SteeringEvaluation",
    "SteeringVectors",
    "Steerer",
    "activation_means",
    "alignment_auc",
    "alpha_grid",
    "compare",
    "compute_caa",
    "evaluate_steering",
    "load_vectors",
    "relative_distance",
    "renormalized",
    "run_caa",
    "save_vectors",
    "steering_concept",
    "steering_concept_names",
    "sweep_alpha",
    "write_wav",
]
