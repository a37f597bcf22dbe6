"""Find the attention modules of a diffusers denoiser and read their head geometry.

Shared by the adapters of every family whose attention uses diffusers' ``Attention``
class (or another class with ``heads``, ``to_q/to_k/to_v`` and ``to_out[0]``). Head
counts and widths come from the loaded modules, never from config field names.
"""

from collections.abc import Callable

import torch
from diffusers.models.attention_processor import Attention
from torch import Tensor, nn

from interp.catalog import AttentionModule, SiteCatalog
from interp.errors import UnsupportedModelError


def _linear_width(module: nn.Module, attribute: str, path: str, name: str) -> int:
    linear = getattr(module, attribute, None)
    if not isinstance(linear, nn.Linear):
        raise UnsupportedModelError(
            f"Attention module {path!r} has no nn.Linear {name}; adapters need one to expose per-head sites."
        )
    return linear.out_features if attribute != "in" else linear.in_features


def describe(
    path: str, module: nn.Module, attention: str, layer: int, out_proj: str = "to_out.0"
) -> AttentionModule:
    """Geometry of one attention module.

    Args:
        path: Dotted path of the module in the denoiser.
        module: The module.
        attention: ``"self"`` or ``"cross"``.
        layer: Its index among modules of the same kind.
        out_proj: Path of the output projection relative to the module.
    """
    proj = module.get_submodule(out_proj)
    heads = getattr(module, "heads", None)
    if not isinstance(proj, nn.Linear) or not isinstance(heads, int) or heads < 1:
        raise UnsupportedModelError(
            f"Cannot read the head geometry of {path!r} ({type(module).__name__}): it needs "
            f"an integer `heads` attribute and an nn.Linear output projection {out_proj!r}."
        )
    if proj.in_features % heads:
        raise UnsupportedModelError(
            f"{path!r}: output projection width {proj.in_features} is not divisible by {heads} heads."
        )
    d_head = proj.in_features // heads
    to_k = getattr(module, "to_k", None)
    n_kv = to_k.out_features // d_head if isinstance(to_k, nn.Linear) else heads
    return AttentionModule(
        path=path,
        attention=attention,
        layer=layer,
        n_heads=heads,
        d_head=d_head,
        n_kv_heads=n_kv,
        d_model=proj.out_features,
        d_context=to_k.in_features if attention == "cross" and isinstance(to_k, nn.Linear) else None,
        out_proj=f"{path}.{out_proj}",
        text_argument="encoder_hidden_states" if attention == "cross" else None,
        mask_argument="attention_mask" if attention == "cross" else None,
    )


def attention_catalog(
    denoiser: nn.Module,
    execution_order: Callable[[str], tuple] | None = None,
    attention_types: tuple[type, ...] = (Attention,),
) -> SiteCatalog:
    """Catalog every diffusers attention module of ``denoiser``.

    Args:
        denoiser: The denoiser module.
        execution_order: Sort key over module paths giving the order in which the
            forward pass runs them; registration order when ``None``.
        attention_types: Module classes to treat as attention.

    Raises:
        UnsupportedModelError: If no attention module is found.
    """
    found = [(p, m) for p, m in denoiser.named_modules() if isinstance(m, attention_types)]
    if not found:
        names = sorted({type(m).__name__ for m in denoiser.modules()})[:20]
        raise UnsupportedModelError(
            f"No attention module of type {[t.__name__ for t in attention_types]} in "
            f"{type(denoiser).__name__}; its module classes include {names}."
        )
    if execution_order is not None:
        found.sort(key=lambda item: execution_order(item[0]))
    counters = {"self": 0, "cross": 0}
    modules = []
    for path, module in found:
        kind = "cross" if getattr(module, "is_cross_attention", False) else "self"
        modules.append(describe(path, module, kind, counters[kind]))
        counters[kind] += 1
    return SiteCatalog(modules)


#: Attention processors whose math :func:`attention_scores` reproduces: queries and keys
#: from the projections, optional per-head query/key norms, grouped-query repetition,
#: ``softmax(q k^T * scale + mask)``, no rotary embedding on cross-attention.
_DEFAULT_SCALE = ("StableAudioAttnProcessor2_0", "AttnProcessor2_0")  # SDPA's 1/sqrt(d_head)
_MODULE_SCALE = {"AttnProcessor": "scale", "AceStepAttnProcessor2_0": "scaling"}


def attention_scores(attention: nn.Module, queries: Tensor, keys: Tensor) -> Tensor:
    """Pre-softmax scores of a cross-attention module from its projections' outputs,
    as its processor computes them (without the mask).

    Args:
        attention: A diffusers ``Attention`` or ACE-Step ``AceStepAttention`` module.
        queries: Output of ``to_q`` viewed ``[batch, seq, head, d_head]``.
        keys: Output of ``to_k`` viewed ``[batch, ctx, kv_head, d_head]``.

    Returns:
        ``[batch, head, seq, ctx]`` in float32.

    Raises:
        UnsupportedModelError: For a processor whose math is not known here.
    """
    processor = type(getattr(attention, "processor", None)).__name__
    if processor not in (*_DEFAULT_SCALE, *_MODULE_SCALE):
        raise UnsupportedModelError(
            f"Attention patterns are computed for the processors {[*_DEFAULT_SCALE, *_MODULE_SCALE]}; "
            f"{type(attention).__name__} uses {processor}. Restore its default processor "
            f"(module.set_default_attn_processor()) to read its patterns."
        )
    d_head = queries.shape[-1]
    for name in ("norm_q", "norm_k"):
        norm = getattr(attention, name, None)
        weight = getattr(norm, "weight", None)
        if norm is not None and weight is not None and weight.shape[-1] != d_head:
            raise UnsupportedModelError(
                f"{name} of {type(attention).__name__} normalizes {weight.shape[-1]} features, not "
                f"one head's {d_head}; patterns of norms across heads are not supported."
            )
    norm_q, norm_k = getattr(attention, "norm_q", None), getattr(attention, "norm_k", None)
    q = queries if norm_q is None else norm_q(queries)
    k = keys if norm_k is None else norm_k(keys)
    repeat = q.shape[2] // k.shape[2]
    k = k.repeat_interleave(repeat, dim=2)
    scale = (
        d_head**-0.5 if processor in _DEFAULT_SCALE else float(getattr(attention, _MODULE_SCALE[processor]))
    )
    return torch.einsum("bshd,bchd->bhsc", q.float(), k.float()) * scale
