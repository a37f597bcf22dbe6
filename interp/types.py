"""Tensor type aliases with named axes, shared by the whole package.

One axis vocabulary: ``batch seq head d_head d_model ctx d_ctx step``. The aliases are
used with jaxtyping + beartype at API boundaries; the test run checks shapes at runtime.
"""

from jaxtyping import Float, Shaped
from torch import Tensor

HeadOutput = Float[Tensor, "batch seq d_head"]
HeadsOutput = Float[Tensor, "batch seq head d_head"]
AttentionOutput = Float[Tensor, "batch seq d_model"]
TextInput = Float[Tensor, "batch ctx d_ctx"]
#: Any site tensor: batch first, then the component's own axes.
SiteTensor = Float[Tensor, "batch *rest"]
#: Reads stacked over the selected denoising steps.
SiteTrace = Float[Tensor, "step batch *rest"]
Latents = Float[Tensor, "batch *latent"]
Audio = Float[Tensor, "batch *samples"]
#: A read as returned by the runner: stacked over its steps; after a ``reduce`` the
#: remaining axes (and dtype) are whatever the reduction returns.
ReadTrace = Shaped[Tensor, "step *rest"]
