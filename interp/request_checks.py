"""Type and range checks of a :class:`~interp.adapter.GenerationRequest`'s values.

A request built in Python gets the same bounds a spec gets at validation, so a wrong
value fails at once with a :class:`~interp.errors.TadaError` naming the argument, the
value and what is allowed, instead of deep inside torch or diffusers.
"""

import math
import numbers
from collections.abc import Sequence
from typing import Any

from interp.errors import TadaError

#: Seeds must lie in ``[0, SEED_LIMIT)`` (torch generators take 64-bit seeds; larger or
#: negative values would alias other seeds).
SEED_LIMIT = 2**63


class RequestError(TadaError, ValueError):
    """A generation request holds a value of the wrong type or out of range."""


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _sequence(name: str, value: Any, what: str) -> Sequence[Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise RequestError(f"GenerationRequest.{name} must be a list or tuple of {what}, got {value!r}.")
    return value


def check_request_values(request: Any) -> None:
    """Raise :class:`RequestError` for values of the wrong type or out of range."""
    for index, prompt in enumerate(_sequence("prompts", request.prompts, "strings")):
        if not isinstance(prompt, str):
            raise RequestError(f"GenerationRequest.prompts[{index}] must be a string, got {prompt!r}.")
    for index, seed in enumerate(_sequence("seeds", request.seeds, "integers")):
        if not _is_int(seed) or not 0 <= seed < SEED_LIMIT:
            raise RequestError(
                f"GenerationRequest.seeds[{index}] = {seed!r}: a seed must be an integer with "
                f"0 <= seed < 2**63."
            )
    for name in ("num_steps", "start_step"):
        value = getattr(request, name)
        if not _is_int(value):
            raise RequestError(f"GenerationRequest.{name} must be an integer, got {value!r}.")
    for index, step in enumerate(_sequence("keep_latents_at", request.keep_latents_at, "integers")):
        if not _is_int(step):
            raise RequestError(
                f"GenerationRequest.keep_latents_at[{index}] must be an integer, got {step!r}."
            )
    guidance = request.guidance_scale
    if not _is_real(guidance) or not math.isfinite(guidance) or guidance < 0:
        raise RequestError(
            f"GenerationRequest.guidance_scale must be a finite number >= 0 (<= 1 disables "
            f"guidance), got {guidance!r}."
        )
    duration = request.duration_s
    if duration is not None and (not _is_real(duration) or not math.isfinite(duration) or duration <= 0):
        raise RequestError(
            f"GenerationRequest.duration_s must be None or a finite number of seconds > 0, got {duration!r}."
        )
    negative = request.negative_prompt
    if negative is not None and not isinstance(negative, str):
        raise RequestError(f"GenerationRequest.negative_prompt must be a string or None, got {negative!r}.")
    if negative is not None and guidance <= 1:
        raise RequestError(
            f"GenerationRequest.negative_prompt is set but guidance_scale is {guidance} (<= 1 "
            f"disables classifier-free guidance, so the negative prompt would be ignored); "
            f"raise guidance_scale or drop negative_prompt."
        )
