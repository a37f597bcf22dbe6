"""Attribution patching: estimate every site's patching effect from one gradient pass
per denoising step.

For a (clean, corrupted) pair, the estimate for a site is the first-order Taylor term
``sum over steps of <a_clean - a_corrupted, d m_t / d a>``, evaluated on the corrupted
run, where ``m_t`` is a local metric of the denoiser's output at step ``t``: the
negative squared distance of the conditional rows' output to the clean run's output at
the same step. Pipelines run without gradients, so gradients are switched on only
inside the denoiser's forward (hooks on the denoiser) and taken right after it returns:
the corrupted generation costs one forward and one backward per step, whatever the
number of sites. Reads and captures go through the runner (nnsight) like every other
intervention.

With a ``metric`` (for example the concept classifier's contrast) on an adapter whose
sampler is differentiable end to end (:attr:`~interp.adapter.ModelAdapter.differentiable`,
SynthMusic), the estimate uses the gradient of that metric of the *final* output instead:
the corrupted run records the autograd graph of the whole trajectory and one backward
pass gives ``d m / d a`` for every site at every step. This is the first-order term of
the very quantity exact patching measures, for about three plain generations.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import Tensor

from interp.adapter import GenerationRequest, ModelAdapter
from interp.components import indexed_part
from interp.cost import Cost
from interp.edits import Apply, Edit, Read
from interp.errors import TadaError
from interp.metrics import Metric, MetricContext, needs_audio
from interp.patch_variants import stage_site
from interp.progress import expect, shown
from interp.prompts import PromptPair
from interp.runner import run
from interp.selection import Branch, Steps, StepsLike
from interp.sites import Site, as_site


@dataclass
class AttributionResult:
    """Per-site attribution estimates, averaged over (pair, seed) units.

    Attributes:
        scores: Site name -> mean estimate (higher: patching it moves the corrupted
            run towards the clean run).
        per_unit: Site name -> one estimate per unit.
    """

    scores: dict[str, float] = field(default_factory=dict)
    per_unit: dict[str, list[float]] = field(default_factory=dict)

    def ranking(self) -> list[str]:
        """Site names by decreasing estimate."""
        return sorted(self.scores, key=lambda k: -abs(self.scores[k]))


def _output_tensor(output):
    if isinstance(output, Tensor):
        return output
    if isinstance(output, (tuple, list)):
        return output[0]
    sample = getattr(output, "sample", None)
    if isinstance(sample, Tensor):
        return sample
    raise TadaError(f"Cannot find the tensor in the denoiser output of type {type(output).__name__}.")


class _DenoiserOutputs:
    """Records the denoiser's output at every call (plain hook; detached)."""

    def __init__(self, module: torch.nn.Module):
        self.values: list[Tensor] = []
        self._handle = module.register_forward_hook(
            lambda m, a, out: self.values.append(_output_tensor(out).detach().clone())
        )

    def close(self) -> None:
        self._handle.remove()


class _GradientPass:
    """Enables gradients inside each denoiser call and differentiates the local metric
    with respect to the activations captured during that call."""

    def __init__(self, module: torch.nn.Module, cond_rows: list[int], on_grads):
        self.step = 0
        self.captured: dict[str, Tensor] = {}
        self._outside = torch.is_grad_enabled()  # the mode to restore when done
        self.cond_rows = cond_rows
        self.on_grads = on_grads
        self._previous = False
        self._handles = [
            module.register_forward_pre_hook(self._before),
            module.register_forward_hook(self._after),
        ]

    def _before(self, module, args):
        self._previous = torch.is_grad_enabled()
        torch.set_grad_enabled(True)
        self.captured = {}

    def _after(self, module, args, output):
        out = _output_tensor(output)[self.cond_rows]
        grads = torch.autograd.grad(
            self.on_grads.metric(out, self.step), list(self.captured.values()), allow_unused=True
        )
        self.on_grads.accumulate(self.step, dict(zip(self.captured, grads)), self.captured)
        self.step += 1
        torch.set_grad_enabled(self._previous)
        if isinstance(output, Tensor):
            return output.detach()
        return output

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        torch.set_grad_enabled(self._outside)


def attribute(
    adapter: ModelAdapter,
    base: GenerationRequest,
    pairs: Sequence[PromptPair],
    seeds: Sequence[int],
    sites: Sequence[Site | str],
    *,
    steps: StepsLike = None,
    progress: bool = True,
    metric: Metric | None = None,
) -> AttributionResult:
    """Estimate the denoising patching effect of every site at once.

    Args:
        adapter: The model.
        base: Generation settings (prompts and seeds replaced per unit).
        pairs: Counterfactual prompt pairs.
        seeds: Seeds; every pair with every seed.
        sites: Sites to score (``head``, ``heads``, ``out`` or ``text`` components);
            patching is on the conditional branch.
        steps: Steps whose contributions are summed (default all).
        metric: Differentiate this metric of the final output through the whole sampler
            (needs a differentiable adapter); ``None``: the per-step local metric.
    """
    if metric is not None:
        if not adapter.differentiable:
            raise TadaError(
                f"Attribution against the {metric.name!r} metric needs a sampler that is "
                f"differentiable end to end; {type(adapter).__name__} is not. Leave metric "
                f"unset to use the per-step local metric."
            )
        if needs_audio(metric):
            raise TadaError(
                f"Attribution differentiates the final latents; the {metric.name!r} "
                f"metric reads decoded audio. Use a metric of the latents."
            )
    parsed = adapter.catalog.parse_many([as_site(s) for s in sites])
    base = replace(base, decode=False)  # only activations and denoiser outputs are used
    step_sel = Steps.parse(steps)
    wanted_steps = set(step_sel.resolve(base.num_steps))
    stages = sorted({stage_site(s).name for s in parsed})
    result = AttributionResult()
    per_unit: dict[str, list[float]] = defaultdict(list)
    with shown(progress, "attribution"):
        expect(2 * len(pairs) * len(seeds))  # a clean and a corrupted run per unit
        for pair in pairs:
            for seed in seeds:
                if metric is not None:
                    totals = _trajectory_unit(adapter, base, pair, seed, stages, wanted_steps, metric)
                    _collect(parsed, totals, per_unit)
                    continue
                # 1. the clean run: cached activations and denoiser outputs at every step
                clean_request = replace(base, prompts=(pair.clean,), seeds=(seed,))
                recorder = _DenoiserOutputs(adapter.denoiser)
                try:
                    clean = run(adapter, clean_request, reads=[Read(n, branch=Branch.COND) for n in stages])
                finally:
                    recorder.close()
                clean_outputs = [v[-1:] for v in recorder.values]  # the conditional row

                # 2. the corrupted run with one backward pass per step
                totals: dict[str, Tensor] = {}

                class Accumulator:
                    def metric(self, out: Tensor, step: int) -> Tensor:
                        return -((out.float() - clean_outputs[step].float()) ** 2).sum()  # noqa: B023 - called within this iteration only

                    def accumulate(self, step: int, grads: dict, captured: dict) -> None:
                        if step not in wanted_steps:
                            return
                        for name, grad in grads.items():
                            if grad is None:
                                continue
                            delta = clean.reads[name][step].float() - captured[name].detach().float()  # noqa: B023 - called within this iteration only
                            totals[name] = totals.get(name, 0) + _delta_times_grad(name, delta, grad)  # noqa: B023 - called within this iteration only

                accumulator = Accumulator()
                gradient_pass = None

                def capture(name: str):
                    def fn(x: Tensor, step: int) -> Tensor:
                        assert gradient_pass is not None  # noqa: B023 - created before the run that calls this
                        gradient_pass.captured[name] = x  # noqa: B023 - called within this iteration only
                        return x

                    return fn

                edits = [Edit(n, Apply(capture(n)), branch=Branch.COND) for n in stages]
                corrupted_request = replace(base, prompts=(pair.corrupted,), seeds=(seed,))
                cond_rows = [1] if base.guided else [0]
                gradient_pass = _GradientPass(adapter.denoiser, cond_rows, accumulator)
                try:
                    with torch.enable_grad():
                        run(adapter, corrupted_request, edits=edits)
                finally:
                    gradient_pass.close()
                _collect(parsed, totals, per_unit)
    result.per_unit = dict(per_unit)
    result.scores = {k: float(np.mean(v)) for k, v in per_unit.items()}
    return result


def _collect(parsed: Sequence[Site], totals: dict[str, Tensor], per_unit: dict[str, list[float]]) -> None:
    """Append each site's estimate (from its stage's totals) to ``per_unit``."""
    for s in parsed:
        total = totals.get(stage_site(s).name)
        if total is None:
            value = 0.0
        elif s.spec.index is not None:
            value = float(total[s.head])
        elif total.ndim > 0:
            value = float(total.sum())
        else:
            value = float(total)
        per_unit[s.name].append(value)


def _delta_times_grad(name: str, delta: Tensor, grad: Tensor) -> Tensor:
    """Per index for a tensor whose components select one (per head for a layer's heads,
    ``[rows, seq, head, d_head]``), else a scalar.

    Accumulates in float32 whatever the model's dtype: half-precision sums over a
    sequence lose most of their digits."""
    product = (delta.float() * grad.detach().float()).detach()
    part = indexed_part(as_site(name).spec)
    if part is None:
        return product.sum()
    keep = part.index_position()
    return product.sum(dim=tuple(d for d in range(product.ndim) if d != keep))


def _trajectory_unit(
    adapter: ModelAdapter,
    base: GenerationRequest,
    pair: PromptPair,
    seed: int,
    stages: list[str],
    wanted_steps: set[int],
    metric: Metric,
) -> dict[str, Tensor]:
    """Stage name -> summed <a_clean - a_corrupted, d metric(final) / d a> for one unit."""
    clean_request = replace(base, prompts=(pair.clean,), seeds=(seed,))
    steps = sorted(wanted_steps)
    clean = run(adapter, clean_request, reads=[Read(n, steps=steps, branch=Branch.COND) for n in stages])
    captured: dict[tuple[str, int], Tensor] = {}

    def capture(name: str):
        def fn(x: Tensor, step: int) -> Tensor:
            captured[(name, step)] = x
            return x

        return fn

    edits = [Edit(n, Apply(capture(n)), steps=steps, branch=Branch.COND) for n in stages]
    corrupted_request = replace(base, prompts=(pair.corrupted,), seeds=(seed,), keep_graph=True)
    output = run(adapter, corrupted_request, edits=edits).output
    detached = type(output)(output.latents.detach(), None, output.sample_rate)
    with torch.enable_grad():
        value = metric(output, MetricContext.for_pair(clean.output, detached, pair))[0]
    keys = list(captured)
    grads = torch.autograd.grad(value, [captured[k] for k in keys], allow_unused=True)
    totals: dict[str, Tensor] = {}
    for (name, step), grad in zip(keys, grads):
        if grad is None:
            continue
        index = clean.read_steps[name].index(step)
        delta = clean.reads[name][index].float() - captured[(name, step)].detach().float()
        totals[name] = totals.get(name, 0) + _delta_times_grad(name, delta, grad)
    return totals


GradientMode = Literal["auto", "final", "local"]


def attribute_cost(base: GenerationRequest, n_pairs: int, n_seeds: int, metric: Metric | None) -> Cost:
    """What :func:`attribute` runs: per (pair, seed), a clean run and a corrupted run with
    gradients (through the whole sampler with a ``metric``, else one backward per step)."""
    base = replace(base, decode=False, prompts=("x",), seeds=(0,))
    units = n_pairs * n_seeds
    corrupted = replace(base, keep_graph=metric is not None)
    gradients = Cost([replace(c, gradients=True) for c in Cost.of(corrupted, units, "corrupted").calls])
    return Cost.of(base, units, "clean") + gradients


def gradient_metric(adapter: ModelAdapter, metric: Metric, mode: GradientMode = "auto") -> Metric | None:
    """The ``metric`` argument of :func:`attribute` for a gradient mode.

    ``final`` differentiates ``metric`` of the final output (differentiable adapters
    only), ``local`` the per-step local metric (``None``), ``auto`` picks ``final``
    whenever the adapter and the metric allow it.
    """
    if mode == "local":
        return None
    if mode == "final":
        return metric
    if mode != "auto":
        raise TadaError(f"unknown gradient mode {mode!r}; valid: ['auto', 'final', 'local']")
    return metric if adapter.differentiable and not needs_audio(metric) else None


def rank_agreement(estimates: dict[str, float], exact: dict[str, float]) -> float:
    """Spearman rank correlation between attribution estimates and exact effects on the
    sites present in both."""
    common = sorted(set(estimates) & set(exact))
    if len(common) < 3:
        raise TadaError(f"Need at least 3 common sites to compare rankings, got {len(common)}.")
    rho = spearmanr([estimates[k] for k in common], [exact[k] for k in common]).statistic  # pyright: ignore[reportAttributeAccessIssue]  # scipy's inferred result type lacks the fields
    return float(rho)
