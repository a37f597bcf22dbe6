"""Train sparse autoencoders on cached activations with the sae-lens trainer.

One SAE per site: :func:`train_saes` streams a site's vectors from an
:class:`~saes.cache.ActivationCache` into ``sae_lens.SAETrainer`` (any iterator of
``[batch, d]`` tensors works too, see :func:`train_sae`), reports explained variance, L0
and dead features on held-out generations, and saves the SAE in sae-lens's own format
(``cfg.json`` + ``sae_weights.safetensors``) with the canonical site string as
``hook_name``, so ``sae_lens.SAE.load_from_disk(path)`` opens it. BatchTopK SAEs are
saved as JumpReLU (sae-lens's inference form of BatchTopK).

sae-lens is imported inside the functions: importing it takes about 5 s.
"""

import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict

import torch
from beartype import beartype
from jaxtyping import Float, jaxtyped
from torch import Tensor, nn

from interp.errors import TadaError
from saes.cache import ActivationCache
from saes.layout import as_sae, hook_name

if TYPE_CHECKING:
    from sae_lens import SAE, BatchTopKTrainingSAE, SAEConfig, StandardTrainingSAE, TopKTrainingSAE

Architecture = Literal["topk", "batchtopk", "standard"]
ARCHITECTURES: tuple[str, ...] = ("topk", "batchtopk", "standard")


@dataclass(frozen=True)
class SAESettings:
    """How to train one SAE.

    Attributes:
        architecture: ``'batchtopk'`` (TADA's choice), ``'topk'`` or ``'standard'`` (L1).
        k: Active features per vector (TopK) or on average (BatchTopK).
        expansion_factor: ``d_sae = expansion_factor x d_in``.
        lr: Adam learning rate.
        lr_end: Final learning rate of a decaying schedule (default: ``lr``).
        lr_scheduler: sae-lens scheduler name (``'constant'``, ``'cosineannealing'``, ...).
        lr_warm_up_steps: Linear warm-up steps.
        training_steps: Optimizer steps.
        batch_size: Vectors per step.
        l1_coefficient: Sparsity penalty of the standard SAE.
        dead_feature_window: Steps without firing after which a feature counts as dead
            for the trainer's resampling / auxiliary loss.
        denoising_steps: Train on these cached denoising steps only (default all).
        branch: Train on this cached CFG branch only (default ``'cond'``; None: all).
        holdout: Every ``holdout``-th generation is kept out of training and used for
            the report (0: report on the first training vectors).
        eval_vectors: Vectors used for the report.
        normalize_activations: sae-lens input normalization (``'none'`` or
            ``'expected_average_only_in'``; folded into the weights after training).
        seed: Seed of the initialization and the data order.
        device: Training device.
        threads: torch CPU threads during training (None: leave as is). One thread is
            much faster for small SAEs on shared CPUs.
    """

    architecture: Architecture = "batchtopk"
    k: int = 24
    expansion_factor: int = 4
    lr: float = 3e-4
    lr_end: float | None = None
    lr_scheduler: str = "constant"
    lr_warm_up_steps: int = 0
    training_steps: int = 2000
    batch_size: int = 4096
    l1_coefficient: float = 1.0
    dead_feature_window: int = 1000
    denoising_steps: tuple[int, ...] | None = None
    branch: str | None = "cond"
    holdout: int = 10
    eval_vectors: int = 8192
    normalize_activations: Literal["none", "expected_average_only_in"] = "none"
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise TadaError(f"Unknown SAE architecture {self.architecture!r}; valid: {list(ARCHITECTURES)}.")
        for name in ("k", "expansion_factor", "training_steps", "batch_size"):
            if getattr(self, name) < 1:
                raise TadaError(f"SAESettings.{name} must be >= 1, got {getattr(self, name)}.")


@dataclass
class SAEReport:
    """How well one trained SAE reconstructs held-out activations.

    Attributes:
        site: Site (and sae-lens ``hook_name``).
        architecture: Training architecture.
        d_in: Input width.
        d_sae: Number of features.
        explained_variance: ``1 - sum |x - x_hat|^2 / sum |x - mean x|^2``.
        l0: Mean number of active features per vector.
        dead_features: Features that never fire on the evaluation vectors.
        dead_fraction: ``dead_features / d_sae``.
        mse: Mean squared reconstruction error per element.
        eval_vectors: Vectors the report is computed on.
        held_out: Whether they were held out of training.
        training_steps: Optimizer steps taken.
        seconds: Training wall time.
        path: Where the SAE was saved (sae-lens format), if saved.
    """

    site: str
    architecture: str
    d_in: int
    d_sae: int
    explained_variance: float
    l0: float
    dead_features: int
    dead_fraction: float
    mse: float
    eval_vectors: int
    held_out: bool
    training_steps: int
    seconds: float
    path: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextlib.contextmanager
def _threads(count: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class SAEScores(TypedDict):
    """What :func:`evaluate_sae` measures (the :class:`SAEReport` fields of the same names)."""

    explained_variance: float
    l0: float
    dead_features: int
    dead_fraction: float
    mse: float


@jaxtyped(typechecker=beartype)
@torch.no_grad()
def evaluate_sae(sae: nn.Module, x: Float[Tensor, "n d"], batch_size: int = 4096) -> SAEScores:
    """Explained variance, L0, dead features and MSE of ``sae`` on vectors ``x``."""
    sae = as_sae(sae)
    x = x.float()
    mean = x.mean(dim=0)
    err = total = active = 0.0
    fired = None
    for start in range(0, x.shape[0], batch_size):
        chunk = x[start : start + batch_size].to(sae.device)
        features = sae.encode(chunk)
        recon = sae.decode(features)
        err += float(((chunk - recon) ** 2).sum())
        total += float(((chunk - mean.to(chunk.device)) ** 2).sum())
        on = features > 0
        active += float(on.sum())
        fired = on.any(dim=0) if fired is None else fired | on.any(dim=0)
    assert fired is not None  # x has at least one vector
    dead = int((~fired).sum())
    return {
        "explained_variance": 1.0 - err / max(total, 1e-30),
        "l0": active / x.shape[0],
        "dead_features": dead,
        "dead_fraction": dead / fired.numel(),
        "mse": err / x.numel(),
    }


class _CommonConfig(TypedDict):
    """Config fields every sae-lens training SAE architecture takes."""

    d_in: int
    d_sae: int
    device: str
    normalize_activations: Literal["none", "expected_average_only_in"]


def _training_sae(
    settings: SAESettings, d_in: int
) -> "TopKTrainingSAE | BatchTopKTrainingSAE | StandardTrainingSAE":
    import sae_lens

    d_sae = settings.expansion_factor * d_in
    common = _CommonConfig(
        d_in=d_in, d_sae=d_sae, device=settings.device, normalize_activations=settings.normalize_activations
    )
    if settings.architecture == "topk":
        return sae_lens.TopKTrainingSAE(sae_lens.TopKTrainingSAEConfig(k=settings.k, **common))
    if settings.architecture == "batchtopk":
        return sae_lens.BatchTopKTrainingSAE(
            sae_lens.BatchTopKTrainingSAEConfig(k=float(settings.k), **common)
        )
    return sae_lens.StandardTrainingSAE(
        sae_lens.StandardTrainingSAEConfig(l1_coefficient=settings.l1_coefficient, **common)
    )


def load_sae(path: str | Path, device: str = "cpu") -> "SAE[SAEConfig]":
    """Open an SAE saved in sae-lens format (``sae_lens.SAE.load_from_disk``)."""
    path = Path(path)
    if not (path / "cfg.json").is_file():
        raise TadaError(
            f"No sae-lens SAE at {str(path)!r} (cfg.json missing); train one with saes.train_saes."
        )
    from sae_lens import SAE

    return SAE.load_from_disk(str(path), device=device)


@jaxtyped(typechecker=beartype)
def train_sae(
    batches: Iterator[Tensor],
    d_in: int,
    settings: SAESettings,
    *,
    site: str,
    eval_vectors: Float[Tensor, "n d"],
    held_out: bool = True,
    out_dir: str | Path | None = None,
    metadata: dict[str, Any] | None = None,
) -> tuple[nn.Module, SAEReport]:
    """Train one SAE with ``sae_lens.SAETrainer`` on an iterator of ``[batch, d_in]``.

    Args:
        batches: Endless iterator of exactly ``settings.batch_size`` vectors each.
        d_in: Vector width.
        settings: Architecture and optimization settings.
        site: Canonical site string, saved as the SAE's ``hook_name``.
        eval_vectors: Vectors for the report.
        held_out: Whether ``eval_vectors`` were kept out of ``batches``.
        out_dir: Save the SAE here in sae-lens format and reload it from there.
        metadata: Extra JSON-ready fields stored in the SAE's metadata (model, steps...).

    Returns:
        The inference SAE (reloaded from disk when saved) and its report.
    """
    from sae_lens import SAETrainer
    from sae_lens.config import LoggingConfig, SAETrainerConfig

    torch.manual_seed(settings.seed)
    with _threads(settings.threads):
        sae = _training_sae(settings, d_in)
        sae.cfg.metadata.hook_name = hook_name(site)
        for key, value in (metadata or {}).items():
            sae.cfg.metadata[key] = value
        config = SAETrainerConfig(
            total_training_samples=settings.training_steps * settings.batch_size,
            train_batch_size_samples=settings.batch_size,
            lr=settings.lr,
            lr_end=settings.lr if settings.lr_end is None else settings.lr_end,
            lr_scheduler_name=settings.lr_scheduler,
            lr_warm_up_steps=settings.lr_warm_up_steps,
            device=settings.device,
            dead_feature_window=settings.dead_feature_window,
            feature_sampling_window=max(1, min(2000, settings.training_steps)),
            n_batches_for_norm_estimate=min(100, settings.training_steps),
            logger=LoggingConfig(log_to_wandb=False),
        )
        started = time.perf_counter()
        with torch.enable_grad():  # callers may run under no_grad (pipelines, other tools)
            SAETrainer(cfg=config, sae=sae, data_provider=_checked(batches, settings.batch_size, d_in)).fit()
        seconds = time.perf_counter() - started
        path = None
        if out_dir is not None:
            path = Path(out_dir)
            sae.save_inference_model(str(path))
            sae = load_sae(path, settings.device)
        else:
            sae = _inference_copy(sae)
        scores = evaluate_sae(sae, eval_vectors, settings.batch_size)
    report = SAEReport(
        site=hook_name(site),
        architecture=settings.architecture,
        d_in=d_in,
        d_sae=int(sae.cfg.d_sae),
        eval_vectors=int(eval_vectors.shape[0]),
        held_out=held_out,
        training_steps=settings.training_steps,
        seconds=seconds,
        path=None if path is None else str(path),
        **scores,
    )
    if path is not None:
        (path / "report.json").write_text(json.dumps(report.as_dict(), indent=2))
    return sae, report


def _inference_copy(sae: "TopKTrainingSAE | BatchTopKTrainingSAE | StandardTrainingSAE") -> "SAE[SAEConfig]":
    """The inference form of a training SAE, via a temporary sae-lens save."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        sae.save_inference_model(tmp)
        return load_sae(tmp, str(sae.device))


def _checked(batches: Iterator[Tensor], batch_size: int, d_in: int) -> Iterator[Tensor]:
    for batch in batches:
        if batch.dim() != 2 or batch.shape != (batch_size, d_in):
            raise TadaError(f"SAE training batches must be [{batch_size}, {d_in}], got {tuple(batch.shape)}.")
        yield batch.float()
    raise TadaError("The SAE training data ran out; give an endless iterator (loop=True).")


@beartype
def train_saes(
    cache: ActivationCache | str | Path,
    settings: SAESettings,
    out_dir: str | Path,
    *,
    sites: Sequence[str] | None = None,
) -> dict[str, SAEReport]:
    """Train one SAE per cached site; save each under ``out_dir/<site>``.

    Writes ``out_dir/reports.json`` with every report. Training streams shard by
    shard; the report uses held-out generations (``settings.holdout``).
    """
    cache = cache if isinstance(cache, ActivationCache) else ActivationCache(cache)
    out = Path(out_dir)
    filters: dict[str, Any] = {"steps": settings.denoising_steps, "branch": settings.branch}
    reports: dict[str, SAEReport] = {}
    for site in sites or cache.sites:
        held_out = settings.holdout >= 2
        train_filters = {**filters, "split": "train", "holdout": settings.holdout} if held_out else filters
        eval_filters = {**filters, "split": "eval", "holdout": settings.holdout} if held_out else filters
        eval_vectors = cache.take(site, settings.eval_vectors, **eval_filters)
        batches = cache.batches(site, settings.batch_size, seed=settings.seed, loop=True, **train_filters)
        metadata = {
            "model_name": cache.manifest["model"],
            "tada_site": site,
            "tada_denoising_steps": list(settings.denoising_steps or cache.manifest["steps"]),
            "tada_branch": settings.branch or cache.manifest["branch"],
            "tada_cache": str(cache.path),
        }
        _, reports[site] = train_sae(
            batches,
            cache.width(site),
            settings,
            site=site,
            eval_vectors=eval_vectors,
            held_out=held_out,
            out_dir=out / site,
            metadata=metadata,
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "reports.json").write_text(json.dumps({s: r.as_dict() for s, r in reports.items()}, indent=2))
    return reports
