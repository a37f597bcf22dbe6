"""Save and load steering vectors: safetensors for the tensors, JSON for the metadata.

``save_vectors(v, "runs/happy.safetensors")`` writes ``happy.safetensors`` (tensors
``vector/<site>`` ``[step, *dims]`` and ``norm/<site>`` ``[step]``) and ``happy.json``
(format version, sites with shapes, steps, branch, normalization, averaging, and the
metadata: model, concept, prompts, seeds, generation settings). Loading checks that the
two files agree.
"""

import json
from pathlib import Path

from beartype import beartype
from safetensors import safe_open
from safetensors.torch import save_file

from interp.errors import TadaError
from interp.steering.caa import SteeringVectors

FORMAT = "tada-steering-vectors"
VERSION = 1


def _paths(path: str | Path) -> tuple[Path, Path]:
    path = Path(path)
    if path.suffix == ".json":
        path = path.with_suffix(".safetensors")
    elif path.suffix != ".safetensors":
        path = path.with_name(path.name + ".safetensors")
    return path, path.with_suffix(".json")


@beartype
def save_vectors(vectors: SteeringVectors, path: str | Path) -> tuple[Path, Path]:
    """Write ``<path>.safetensors`` and ``<path>.json``; return both paths."""
    tensors_path, meta_path = _paths(path)
    tensors_path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for name in vectors.sites:
        tensors[f"vector/{name}"] = vectors.vectors[name].detach().cpu().contiguous()
        tensors[f"norm/{name}"] = vectors.norms[name].detach().cpu().contiguous()
    save_file(tensors, str(tensors_path), metadata={"format": FORMAT, "version": str(VERSION)})
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "sites": {n: list(vectors.vectors[n].shape[1:]) for n in vectors.sites},
        "steps": list(vectors.steps),
        "branch": vectors.branch,
        "normalized": vectors.normalized,
        "averaged": vectors.averaged,
        "metadata": vectors.metadata,
    }
    meta_path.write_text(json.dumps(meta, indent=2, default=str))
    return tensors_path, meta_path


@beartype
def load_vectors(path: str | Path) -> SteeringVectors:
    """Read vectors saved by :func:`save_vectors` (give either file, or the stem).

    Raises:
        TadaError: If a file is missing, of another format, or the two disagree.
    """
    tensors_path, meta_path = _paths(path)
    for needed in (tensors_path, meta_path):
        if not needed.is_file():
            raise TadaError(
                f"Steering vectors: {str(needed)!r} does not exist (both the .safetensors "
                f"and the .json file written by save_vectors are needed)."
            )
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != FORMAT:
        raise TadaError(
            f"{meta_path.name} is not a steering-vector file (format {meta.get('format')!r}, "
            f"expected {FORMAT!r})."
        )
    if meta.get("version") != VERSION:
        raise TadaError(f"{meta_path.name} has version {meta.get('version')}; this reads {VERSION}.")
    vectors, norms = {}, {}
    with safe_open(str(tensors_path), framework="pt") as handle:
        keys = set(handle.keys())
        for name, shape in meta["sites"].items():
            missing = {f"vector/{name}", f"norm/{name}"} - keys
            if missing:
                raise TadaError(f"{tensors_path.name} lacks {sorted(missing)} listed in {meta_path.name}.")
            vectors[name] = handle.get_tensor(f"vector/{name}")
            norms[name] = handle.get_tensor(f"norm/{name}")
            if list(vectors[name].shape[1:]) != shape:
                raise TadaError(
                    f"Site {name!r}: {tensors_path.name} holds shape "
                    f"{list(vectors[name].shape[1:])}, {meta_path.name} says {shape}."
                )
    return SteeringVectors(
        vectors=vectors,
        norms=norms,
        steps=tuple(meta["steps"]),
        normalized=bool(meta["normalized"]),
        averaged=bool(meta["averaged"]),
        branch=meta["branch"],
        metadata=meta.get("metadata", {}),
    )
