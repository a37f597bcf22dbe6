"""The order in which a denoiser's modules receive their inputs and produce their outputs.

nnsight requires a trace to touch module inputs and outputs in the order the model runs
them. For attention sites the catalog's execution order is enough; a module site (the
escape hatch, ``module.<path>.<port>``) can be any module, and registration order is not
execution order (a diffusers UNet registers its up blocks before its mid block). So the
order is observed once per denoiser: one plain-torch run of the generation, stopped after
the first denoiser call, with a pre-hook and a hook on every module.
"""

import weakref

import torch
from torch import nn

from interp.adapter import GenerationRequest, ModelAdapter

#: ``(module path, "input" | "output")`` -> position in the first denoiser call.
HookOrder = dict[tuple[str, str], int]

_CACHE: "weakref.WeakKeyDictionary[nn.Module, HookOrder]" = weakref.WeakKeyDictionary()


class _Stop(Exception):
    """Raised from the denoiser's hook to end the probe after its first call."""


def hook_order(adapter: ModelAdapter, request: GenerationRequest) -> HookOrder:
    """Where each module's input and output come in one denoiser call (cached per denoiser).

    Modules called more than once per step are placed at their first call.
    """
    denoiser = adapter.denoiser
    cached = _CACHE.get(denoiser)
    if cached is not None:
        return cached
    events: HookOrder = {}
    handles = []

    def record(path: str, port: str) -> None:
        events.setdefault((path, port), len(events))

    for path, module in denoiser.named_modules():
        handles.append(module.register_forward_pre_hook(lambda m, a, p=path: record(p, "input")))
        handles.append(module.register_forward_hook(lambda m, a, o, p=path: record(p, "output")))

    def stop(module: nn.Module, args: object, output: object) -> None:
        raise _Stop

    handles.append(denoiser.register_forward_hook(stop))
    try:
        with torch.no_grad():
            adapter.generate(request)
    except _Stop:
        pass
    finally:
        for handle in handles:
            handle.remove()
    _CACHE[denoiser] = events
    return events
