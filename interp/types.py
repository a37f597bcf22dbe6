"""Tensor type aliases with named axes, shared by the whole package.

One axis vocabulary: ``batch seq head kv_head d_head d_model ctx d_ctx step``; the components of
:mod:`interp.components` name their axes with it. The aliases annotate the core tensors;
the test run checks them with jaxtyping + beartype (``--jaxtyping-packages``).
"""

from jaxtyping import Float, Shaped
from torch import Tensor

#: The selected rows of a site's tensor, as an :class:`~interp.edits.Operation` sees it:
#: batch (the rows) first, then the component's own axes.
SiteTensor = Float[Tensor, "batch *rest"]
#: A value an edit writes or adds: the site tensor's shape or trailing axes of it.
EditValue = Float[Tensor, "*axes"]
#: A read as returned by the runner: stacked over its steps; after a ``reduce`` the
#: remaining axes (and dtype) are whatever the reduction returns.
ReadTrace = Shaped[Tensor, "step *rest"]
#: Steering vectors of one site, one per step: ``[step, *site dims]``.
StepVectors = Float[Tensor, "step *dims"]
#: The L2 norm of each step's vector.
StepNorms = Float[Tensor, " step"]
#: One steering vector (a site's own axes).
SiteVector = Float[Tensor, "*dims"]
#: Final latents of a generation, batch first.
Latents = Float[Tensor, "batch *latent"]
#: Decoded waveforms, ``[batch, samples]`` or ``[batch, channels, samples]``.
Audio = Float[Tensor, "batch *samples"]
#: Attention probabilities over the context, stacked over steps: ``[step, rows, head, ctx]``
#: (averaged over the audio positions) or ``[step, rows, head, seq, ctx]``.
Pattern = Float[Tensor, "step batch head *seq ctx"]
