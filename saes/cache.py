"""Cache site activations to disk in shards, with bounded memory, and stream them back.

Every (row, position) of a site tensor at a denoising step is one vector (see
:mod:`saes.layout`). A cache directory holds::

    manifest.json                     model, sites, widths, steps, branch, prompts,
                                      seeds, generation settings, shard list, memory bound
    <site>/shard_00000.safetensors    acts [n, d] plus per-vector labels: step [n] int16,
                                      branch [n] int8 (0 uncond, 1 cond), sample [n] int32
                                      (index into prompts x seeds), position [n] int32

Memory stays bounded by ``memory_budget_bytes`` however much is cached: each site writes
through one preallocated shard buffer sized so that all buffers plus one generation
batch's reads fit the budget; a full buffer goes to disk and is reused. Reading streams
one shard at a time (:meth:`ActivationCache.batches`).
"""

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import torch
from beartype import beartype
from safetensors.torch import load_file, save_file
from torch import Tensor

from interp.adapter import GenerationRequest, ModelAdapter
from interp.batching import AUTO, BatchSize, check_batch_size, probe, resolve_batch_size
from interp.cost import Cost, prompt_batches, prompt_sets_cost
from interp.distributed.executor import current, run_tasks
from interp.distributed.tasks import GenerationTask
from interp.edits import Read
from interp.errors import TadaError, did_you_mean
from interp.progress import expect
from interp.selection import Branch, Steps, StepsLike, branch_rows
from interp.sites import Site
from saes.layout import site_width

MANIFEST = "manifest.json"
FORMAT = "tada-activation-cache"
_LABELS = {"step": torch.int16, "branch": torch.int8, "sample": torch.int32, "position": torch.int32}
_LABEL_BYTES = sum(torch.empty(0, dtype=t).element_size() for t in _LABELS.values())
Split = Literal["all", "train", "eval"]


def _dir_name(site: str) -> str:
    return site.replace("/", "_")


class _ShardWriter:
    """One site's preallocated shard buffer; full buffers are written and reused."""

    def __init__(self, directory: Path, width: int, rows: int, dtype: torch.dtype):
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.buffers = {"acts": torch.empty(rows, width, dtype=dtype)}
        self.buffers.update({k: torch.empty(rows, dtype=t) for k, t in _LABELS.items()})
        self.capacity, self.fill = rows, 0
        self.shards: list[dict[str, Any]] = []

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.buffers.values())

    def append(self, columns: dict[str, Tensor]) -> None:
        n, start = columns["acts"].shape[0], 0
        while start < n:
            take = min(n - start, self.capacity - self.fill)
            for key, buffer in self.buffers.items():
                buffer[self.fill : self.fill + take] = columns[key][start : start + take]
            self.fill += take
            start += take
            if self.fill == self.capacity:
                self.flush()

    def flush(self) -> None:
        if self.fill == 0:
            return
        name = f"shard_{len(self.shards):05d}.safetensors"
        save_file({k: t[: self.fill] for k, t in self.buffers.items()}, str(self.directory / name))
        self.shards.append({"file": name, "vectors": self.fill})
        self.fill = 0


def _labels(rows: list[int], batch: int, guided: bool, offset: int, seq: int, step: int) -> dict[str, Tensor]:
    """Per-vector labels of one step's read ``[len(rows) * seq, d]`` (row-major)."""
    row = torch.as_tensor(rows)
    branch = (row >= batch).to(torch.int8) if guided else torch.ones_like(row, dtype=torch.int8)
    sample = (row % batch if guided else row) + offset
    return {
        "step": torch.full((len(rows) * seq,), step, dtype=torch.int16),
        "branch": branch.repeat_interleave(seq),
        "sample": sample.to(torch.int32).repeat_interleave(seq),
        "position": torch.arange(seq, dtype=torch.int32).repeat(len(rows)),
    }


@beartype
def cache_cost(
    request: GenerationRequest,
    n_prompts: int,
    *,
    seeds: Sequence[int] | None = None,
    batch_size: BatchSize = AUTO,
) -> Cost:
    """What :func:`cache_activations` runs: ``n_prompts x seeds`` samples, batched."""
    return prompt_sets_cost(
        request,
        (n_prompts,),
        seeds=seeds,
        batch_size=batch_size,
        label="cache",
        decode=False,
    )


def _auto_batch(
    adapter: ModelAdapter, request: GenerationRequest, reads: Sequence[Read], units: int, budget: int,
    widths: dict[str, int], itemsize: int,
) -> int:  # fmt: skip
    """The most generations that fit in free memory and whose reads (kept twice while
    the runner stacks them, plus their labels) take at most half the cache's budget."""
    request = replace(request, decode=False)
    fits = resolve_batch_size(AUTO, adapter, request, units, reads=reads)  # probes first: then cached
    per_generation = 0
    for name, read_bytes in probe(adapter, request, reads).read_bytes.items():
        vectors = read_bytes // (itemsize * widths[name])
        per_generation += 2 * read_bytes + vectors * _LABEL_BYTES
    by_budget = max(1, (budget // 2) // max(per_generation, 1))
    return min(fits, by_budget)


@beartype
def cache_activations(
    adapter: ModelAdapter,
    request: GenerationRequest,
    prompts: Sequence[str],
    sites: Sequence[Site | str],
    out_dir: str | Path,
    *,
    seeds: Sequence[int] | None = None,
    steps: StepsLike = None,
    branch: Branch | str = Branch.COND,
    batch_size: BatchSize = "auto",
    memory_budget_bytes: int = 256 * 2**20,
    dtype: torch.dtype = torch.float32,
    overwrite: bool = False,
) -> "ActivationCache":
    """Generate ``prompts x seeds`` and write every vector of ``sites`` to disk shards.

    Args:
        adapter: The model.
        request: Generation settings; prompts and seeds are replaced.
        prompts: Prompts to generate.
        sites: Sites to cache (each gets its own shards).
        out_dir: Cache directory (created; must be empty unless ``overwrite``).
        seeds: Each prompt runs once per seed (default: the request's first seed).
        steps: Denoising steps to cache (default all).
        branch: CFG branch(es) to cache (default ``cond``, as in TADA).
        batch_size: Generations per batched forward pass, or ``"auto"``: the most that
            fit in free memory (:mod:`interp.batching`) whose reads take at most half of
            ``memory_budget_bytes``.
        memory_budget_bytes: Bound on the memory the cache holds at once (shard
            buffers plus one batch of reads); shards are sized to fit it.
        dtype: Storage dtype of the activations (e.g. ``torch.float16`` halves disk).
        overwrite: Replace an existing cache in ``out_dir``.

    Returns:
        A reader for the written cache.

    Raises:
        TadaError: If the budget cannot hold one batch of reads plus one vector per
            site, or ``out_dir`` already holds a cache.
    """
    out = Path(out_dir)
    if (out / MANIFEST).exists() and not overwrite:
        raise TadaError(f"{str(out)!r} already holds an activation cache; pass overwrite=True.")
    if not prompts:
        raise TadaError("Caching needs at least one prompt.")
    batch_size = check_batch_size(batch_size)
    names = [s.name for s in adapter.catalog.parse_many(sites)]
    widths = {n: site_width(adapter, n) for n in names}
    selection, parsed_branch = Steps.parse(steps), Branch.parse(branch)
    resolved = selection.resolve(request.num_steps)
    seeds = (request.seeds[0],) if seeds is None else tuple(int(s) for s in seeds)
    units = [(p, s) for p in prompts for s in seeds]
    itemsize = torch.empty(0, dtype=dtype).element_size()
    writers: dict[str, _ShardWriter] = {}
    reserve, started, generation_s = 0, time.perf_counter(), 0.0
    expect(len(units))
    reads = tuple(
        Read(
            n, steps=selection, branch=parsed_branch, reduce=lambda x, w=widths[n]: x.reshape(-1, w).to(dtype)
        )
        for n in names
    )
    size = batch_size if batch_size != AUTO else _auto_batch(adapter, request, reads, len(units),
                                                              memory_budget_bytes, widths, itemsize)  # fmt: skip
    batches = list(zip(range(0, len(units), size), prompt_batches(request, units, size, decode=False)))
    # one batch per worker at a time (the local executor: one), written in batch order
    window = current().workers
    for first in range(0, len(batches), window):
        group = batches[first : first + window]
        tick = time.perf_counter()
        results = run_tasks(adapter, [GenerationTask(batch, reads=reads) for _, batch in group])
        generation_s += time.perf_counter() - tick
        for (offset, batch), result in zip(group, results, strict=True):
            rows = branch_rows(parsed_branch, batch.batch_size, batch.guided)
            if not writers:
                read_bytes = sum(t.numel() * t.element_size() for t in result.reads.values())
                vectors = sum(t.shape[0] * t.shape[1] for t in result.reads.values())
                reserve = 2 * read_bytes + vectors * _LABEL_BYTES  # the runner stacks its reads
                per_row = sum(w * itemsize + _LABEL_BYTES for w in widths.values())
                shard_rows = (memory_budget_bytes - reserve) // per_row
                if shard_rows < 1:
                    raise TadaError(
                        f"memory_budget_bytes={memory_budget_bytes} is too small: one batch of "
                        f"{batch.batch_size} generations reads {read_bytes} bytes at {len(names)} "
                        f"site(s) x {len(resolved)} step(s), and needs at least {reserve + per_row}. "
                        f"Lower batch_size, cache fewer steps or sites, or raise the budget."
                    )
                writers = {n: _ShardWriter(out / _dir_name(n), widths[n], shard_rows, dtype) for n in names}
            for name in names:
                stacked = result.reads[name]  # [step, rows * seq, d]
                seq = stacked.shape[1] // len(rows)
                for i, step in enumerate(resolved):
                    columns = _labels(rows, batch.batch_size, batch.guided, offset, seq, step)
                    columns["acts"] = stacked[i]
                    writers[name].append(columns)
        del results
    for writer in writers.values():
        writer.flush()
    manifest = {
        "format": FORMAT,
        "version": 1,
        "model": adapter.name,
        "family": adapter.family,
        "sites": {
            n: {
                "width": widths[n],
                "vectors": sum(s["vectors"] for s in w.shards),
                "dir": _dir_name(n),
                "shards": w.shards,
            }
            for n, w in writers.items()
        },
        "steps": list(resolved),
        "branch": parsed_branch.value,
        "dtype": str(dtype).removeprefix("torch."),
        "prompts": list(prompts),
        "seeds": list(seeds),
        "units": len(units),
        "generation": {
            "num_steps": request.num_steps,
            "guidance_scale": request.guidance_scale,
            "duration_s": request.duration_s,
            "negative_prompt": request.negative_prompt,
        },
        "memory_budget_bytes": memory_budget_bytes,
        "memory_bound_bytes": reserve + sum(w.nbytes for w in writers.values()),
        "seconds": time.perf_counter() - started,
        "generation_seconds": generation_s,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return ActivationCache(out)


class ActivationCache:
    """Reader of a cache written by :func:`cache_activations`.

    Attributes:
        path: The cache directory.
        manifest: The parsed ``manifest.json``.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        file = self.path / MANIFEST
        if not file.is_file():
            raise TadaError(
                f"No activation cache at {str(self.path)!r} ({MANIFEST} missing); write one "
                f"with saes.cache_activations."
            )
        self.manifest: dict[str, Any] = json.loads(file.read_text())
        if self.manifest.get("format") != FORMAT:
            raise TadaError(f"{file} is not an activation cache (format {self.manifest.get('format')!r}).")

    @property
    def sites(self) -> list[str]:
        """Cached site names."""
        return list(self.manifest["sites"])

    def _site(self, site: Site | str) -> dict[str, Any]:
        name = str(site)
        if name not in self.manifest["sites"]:
            raise TadaError(
                f"Site {name!r} is not in the cache at {str(self.path)!r}."
                f"{did_you_mean(name, self.sites)} Cached sites: {self.sites}."
            )
        return self.manifest["sites"][name]

    def width(self, site: Site | str) -> int:
        """Vector width of a cached site."""
        return int(self._site(site)["width"])

    def count(self, site: Site | str) -> int:
        """Number of vectors cached for a site (before any filter)."""
        return int(self._site(site)["vectors"])

    def shard_paths(self, site: Site | str) -> list[Path]:
        """The site's shard files, in write order."""
        entry = self._site(site)
        return [self.path / entry["dir"] / s["file"] for s in entry["shards"]]

    def iter_shards(
        self,
        site: Site | str,
        *,
        steps: Sequence[int] | None = None,
        branch: str | None = None,
        split: Split = "all",
        holdout: int = 0,
        order: Sequence[int] | None = None,
    ) -> Iterator[dict[str, Tensor]]:
        """Yield each shard's columns (``acts`` and labels), filtered; one in memory.

        Args:
            site: Cached site.
            steps: Keep only these denoising steps.
            branch: Keep only ``'cond'`` or ``'uncond'`` vectors.
            split: ``'train'`` drops, ``'eval'`` keeps only, the held-out generations.
            holdout: Every ``holdout``-th generation (by sample index) is held out.
            order: Shard indices to visit, in order (default: all, in write order).
        """
        if branch not in (None, "cond", "uncond"):
            raise TadaError(f"Unknown branch filter {branch!r}; valid: None, 'cond', 'uncond'.")
        if split != "all" and holdout < 2:
            raise TadaError(f"split={split!r} needs holdout >= 2 (every n-th generation), got {holdout}.")
        paths = self.shard_paths(site)
        wanted = None if steps is None else torch.as_tensor(list(steps), dtype=torch.int16)
        for index in order if order is not None else range(len(paths)):
            columns = load_file(str(paths[index]))
            keep = torch.ones(columns["acts"].shape[0], dtype=torch.bool)
            if wanted is not None:
                keep &= torch.isin(columns["step"], wanted)
            if branch is not None:
                keep &= columns["branch"] == (1 if branch == "cond" else 0)
            if split != "all":
                held = columns["sample"] % holdout == holdout - 1
                keep &= held if split == "eval" else ~held
            if not bool(keep.all()):
                columns = {k: v[keep] for k, v in columns.items()}
            if columns["acts"].shape[0]:
                yield columns

    def batches(
        self,
        site: Site | str,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        loop: bool = False,
        **filters: Any,
    ) -> Iterator[Tensor]:
        """Float32 batches of exactly ``batch_size`` vectors, streamed shard by shard.

        Shuffling permutes the shard order every epoch and the vectors within each
        shard; memory holds one shard plus fewer than ``batch_size`` leftover vectors.
        With ``loop`` the stream never ends (for SAE training). ``filters`` go to
        :meth:`iter_shards` (steps, branch, split, holdout).
        """
        if batch_size < 1:
            raise TadaError(f"batch_size must be >= 1, got {batch_size}.")
        n_shards, epoch, carry = len(self.shard_paths(site)), 0, None
        while True:
            generator = torch.Generator().manual_seed(seed + epoch)
            order = torch.randperm(n_shards, generator=generator).tolist() if shuffle else None
            produced = False
            for columns in self.iter_shards(site, order=order, **filters):
                acts = columns["acts"].float()
                if shuffle:
                    acts = acts[torch.randperm(acts.shape[0], generator=generator)]
                if carry is not None:
                    acts = torch.cat([carry, acts])
                full = acts.shape[0] // batch_size * batch_size
                for start in range(0, full, batch_size):
                    produced = True
                    yield acts[start : start + batch_size]
                carry = acts[full:] if full < acts.shape[0] else None
            epoch += 1
            if not loop:
                return
            if not produced and epoch > 1:
                raise TadaError(
                    f"The cache holds fewer than batch_size={batch_size} vectors of {site!s} "
                    f"after filtering; lower the batch size."
                )

    def take(self, site: Site | str, n: int, **filters: Any) -> Tensor:
        """The first ``n`` vectors (float32, write order) that pass the filters."""
        parts, have = [], 0
        for columns in self.iter_shards(site, **filters):
            part = columns["acts"][: n - have].float()
            parts.append(part)
            have += part.shape[0]
            if have >= n:
                break
        if not parts:
            raise TadaError(f"No cached vectors of {site!s} pass the filters {filters}.")
        return torch.cat(parts)
