"""Declarative experiments: YAML specs, pluggable methods and metrics, resumable runs.

Run from Python exactly as ``tada run`` does::

    from interp.experiments import run
    results = run("experiments/tiny.yaml", out="runs/tiny")
    results            # in Jupyter: plots, audio players and the table
    results.rows[:3]   # the tidy table as dictionaries

Add a method by subclassing :class:`MethodSpec` and decorating it with
:func:`register_method` (see :mod:`interp.experiments.methods`); add a metric with
:func:`register_metric`.
"""

from interp.experiments.context import CheckContext, StepContext
from interp.experiments.fields import BranchName, Ref, Refable, SiteStr, StepWindow, StrictModel
from interp.experiments.issues import Issue, SpecError
from interp.experiments.methods import (
    GenerationOverride,
    MethodSpec,
    get_method,
    method_names,
    register_method,
    unregister_method,
)
from interp.experiments.metric_specs import MetricSpec
from interp.experiments.prompt_specs import Prompt
from interp.experiments.spec import ExperimentSpec, GenerationSpec, ModelSpec
from interp.experiments.units import Row, Unit, UnitResult
from interp.metrics import MetricContext, metric_names, register_metric

# loading first, then the built-in 'generate' method registers itself
# isort: off
from interp.experiments.loading import LoadedSpec, load_spec, validate
from interp.spec_steps import generate_step as _builtin_generate  # noqa: F401 - registers 'generate'
from interp.experiments.engine import run
from interp.experiments.results import Results
# isort: on

__all__ = [
    "BranchName",
    "CheckContext",
    "ExperimentSpec",
    "GenerationOverride",
    "GenerationSpec",
    "Issue",
    "LoadedSpec",
    "MethodSpec",
    "MetricContext",
    "MetricSpec",
    "ModelSpec",
    "Prompt",
    "Ref",
    "Refable",
    "Results",
    "Row",
    "SiteStr",
    "SpecError",
    "StepContext",
    "StepWindow",
    "StrictModel",
    "Unit",
    "UnitResult",
    "get_method",
    "load_spec",
    "method_names",
    "metric_names",
    "register_method",
    "register_metric",
    "run",
    "unregister_method",
    "validate",
]
