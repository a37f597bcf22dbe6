# ---
# jupyter:
#   jupytext:
#     formats: py:percent,ipynb
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Quickstart: sites, edits and patching on a tiny Stable Audio model
#
# Everything here runs offline in seconds on a randomly initialised Stable Audio
# pipeline built from the real diffusers classes. Swap `"tiny-stable-audio"` for
# `"synthmusic-dit"` (the trained default model) or `"stable-audio-open-1.0"` (real
# weights from your Hugging Face cache) and the code stays the same.

# %%
import warnings

import torch

import interp

# the tiny model's SDE scheduler and diffusers' weight-norm layers are chatty
warnings.filterwarnings("ignore", message="Should have")
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", message="IProgress not found")

torch.manual_seed(0)
model = interp.load_model("tiny-stable-audio")
model

# %% [markdown]
# ## Sites
# Every attention module offers per-head outputs, the whole output and, for
# cross-attention, the text input that feeds keys and values.

# %%
sites = interp.sites_of(model)
print(len(sites), "sites; the first few:")
for record in sites[:6]:
    print(f"  {record['name']:<16} {record['shape']:<24} {record['module']}")

# %% [markdown]
# ## Read and write during a generation
# Reads and edits choose denoising steps and the CFG branch. Here head 2 of cross layer 1
# is zeroed on the conditional branch for the first two steps, and the layer's heads are
# read back.

# %%
request = interp.GenerationRequest(
    prompts=("a sad violin song",), seeds=(0,), num_steps=4, guidance_scale=3.0, duration_s=4.0
)
plain = interp.run(model, request)
edited = interp.run(
    model,
    request,
    edits=[interp.Edit("cross.1.head.2", interp.Zero(), steps="0:2", branch="cond")],
    reads=[interp.Read("cross.1.heads", branch="cond")],
)
heads = edited.reads["cross.1.heads"]
print("read shape [step, rows, seq, head, d_head]:", tuple(heads.shape))
print("head 2 at steps 0-1 is zero:", bool((heads[:2, :, :, 2] == 0).all()))
print("audio changed by", float((edited.output.audio - plain.output.audio).abs().max()))

# %% [markdown]
# ## Activation patching
# Patch each cross-attention head of the clean prompt into the corrupted run, one head per
# row of a batched generation, and measure how much of the clean output comes back.

# %%
from interp.metrics import get_metric
from interp.patching import single_site_variants, sweep
from interp.prompts import PromptPair

pairs = [PromptPair("a sad violin song", "a happy trumpet song", "mood", "sad", "happy")]
heads = model.catalog.where(attention="cross", component="head")
result = sweep(
    model, request, pairs, [0, 1], single_site_variants(heads), get_metric("latent_distance"), progress=False
)
for row in sorted(result.table(), key=lambda r: -abs(r["effect"]))[:5]:
    print(
        f"{row['variant']:<16} effect {row['effect']:+.3f}  "
        f"95% CI [{row['ci_low']:+.3f}, {row['ci_high']:+.3f}]"
    )

# %% [markdown]
# ## Locate a concept's heads
# The smallest set of heads that restores 80% of the clean-corrupted gap, its necessity
# (noising those heads in the clean run), and TADA's per-layer impact.

# %%
from interp.localization import locate
from interp.plots import plot_head_heatmap

found = locate(model, request, pairs, [0, 1], get_metric("latent_distance"), max_heads=4, progress=False)
print(
    "located heads:",
    found.subset,
    "restores",
    round(found.restored.mean, 3),
    "necessity",
    round(found.necessity.mean, 3),
)
print("layer impact I(l):", {k: round(v, 3) for k, v in found.layer_impact.items()})
_ = plot_head_heatmap(found)  # shown inline
