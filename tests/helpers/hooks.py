"""Independent ground truth: plain torch hooks that record or edit one module's calls."""

from contextlib import contextmanager

import torch


@contextmanager
def recorded(module: torch.nn.Module, what: str):
    """Record, per call, the first input (``'input'``), the ``encoder_hidden_states``
    keyword (``'text'``) or the output (``'output'``) of ``module``."""
    calls: list[torch.Tensor] = []
    if what == "input":
        handle = module.register_forward_pre_hook(lambda m, args: calls.append(args[0].clone()))
    elif what == "text":
        handle = module.register_forward_pre_hook(
            lambda m, args, kwargs: calls.append(kwargs["encoder_hidden_states"].clone()),
            with_kwargs=True,
        )
    else:
        handle = module.register_forward_hook(lambda m, args, out: calls.append(out.clone()))
    try:
        yield calls
    finally:
        handle.remove()


@contextmanager
def edited_input(module: torch.nn.Module, fn):
    """Replace the first input of ``module`` by ``fn(x, call_index)`` on every call."""
    counter = {"i": 0}

    def hook(m, args):
        x = fn(args[0].clone(), counter["i"])
        counter["i"] += 1
        return (x, *args[1:])

    handle = module.register_forward_pre_hook(hook)
    try:
        yield
    finally:
        handle.remove()
