"""Attention modules of diffusers UNets, listed in the order the forward pass runs them.

A UNet registers ``down_blocks`` and ``up_blocks`` before ``mid_block`` (both module
lists are created first and filled later), so ``named_modules()`` yields
down, up, mid while the forward pass runs down, mid, up. :func:`unet_execution_order`
is the sort key that restores execution order; the tests check it against the order of
forward-hook calls on tiny models.
"""

from collections.abc import Callable

from diffusers.models.attention_processor import Attention
from torch import nn

from interp.adapter import GenerationRequest
from interp.catalog import SiteCatalog
from interp.errors import TadaError, UnsupportedModelError
from models.attention import describe

_STAGE_RANK = {"down_blocks": 0, "mid_block": 1, "up_blocks": 2}


def unet_execution_order(path: str) -> tuple:
    """Sort key over module paths of a UNet: down blocks, mid block, up blocks.

    Inside a stage, numeric path components compare as numbers (``attentions.10`` after
    ``attentions.9``), which is the order the blocks call their children.
    """
    parts = path.split(".")
    stage = _STAGE_RANK.get(parts[0])
    if stage is None:
        raise UnsupportedModelError(
            f"Attention module {path!r} lies outside down_blocks/mid_block/up_blocks; "
            f"this UNet layout is not supported."
        )
    return (stage, *((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts[1:]))


def unet_catalog(unet: nn.Module, kind_of: Callable[[str, Attention], str]) -> SiteCatalog:
    """Catalog every ``Attention`` module of a UNet in execution order.

    Args:
        unet: The denoiser.
        kind_of: Maps ``(path, module)`` to ``"self"`` or ``"cross"``; adapters decide
            from how their pipeline calls the module, not only from its construction.
    """
    found = [(p, m) for p, m in unet.named_modules() if isinstance(m, Attention)]
    if not found:
        raise UnsupportedModelError(
            f"No diffusers Attention module in {type(unet).__name__}; cannot list its sites."
        )
    found.sort(key=lambda item: unet_execution_order(item[0]))
    counters = {"self": 0, "cross": 0}
    modules = []
    for path, module in found:
        kind = kind_of(path, module)
        modules.append(describe(path, module, kind, counters[kind]))
        counters[kind] += 1
    return SiteCatalog(modules)


def one_waveform_per_prompt(request: GenerationRequest) -> None:
    """Refuse ``num_waveforms_per_prompt > 1`` for the AudioLDM pipelines.

    Several waveforms per prompt add denoiser rows the core does not know about (its
    row layout is one row per prompt and branch), and the pipelines then reorder the
    outputs by CLAP score.
    """
    count = dict(request.options).get("num_waveforms_per_prompt", 1)
    if count != 1:
        raise TadaError(
            f"num_waveforms_per_prompt={count} is not supported: repeat the prompt with "
            f"different seeds instead (one row per prompt keeps reads and edits aligned)."
        )
