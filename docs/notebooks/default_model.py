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
# # The default model: listen, locate tempo, steer it
#
# SynthMusic DiT is a small text-to-spectrogram diffusion transformer trained offline on
# procedural music with known concepts, shipped with the project. Its concept classifier
# tells us, for any generation, which instrument, tempo, drums, mood and vocals it hears.

# %%
import warnings

import torch
from IPython.display import Audio, display

import interp

warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", message="IProgress not found")
torch.set_num_threads(1)

model = interp.load_model("synthmusic-dit")
scorer = model.concept_scorer()
model

# %% [markdown]
# ## Listen to two captions that differ only in tempo

# %%
pair = interp.pairs_from("synthmusic", ["tempo"], per_concept=1, seed=3)[0]
print("clean:    ", pair.clean, f"({pair.clean_value})")
print("corrupted:", pair.corrupted, f"({pair.corrupted_value})")
request = model.default_request([pair.clean, pair.corrupted], [0, 0])
out = model.generate(request)
with torch.no_grad():
    probs = scorer.probabilities(out.latents)["tempo"]
print("P(slow, medium, fast):", [[round(float(p), 2) for p in row] for row in probs])
display(Audio(out.audio[0].numpy(), rate=out.sample_rate))
display(Audio(out.audio[1].numpy(), rate=out.sample_rate))

# %% [markdown]
# ## Locate the heads that carry tempo
# Patch each cross-attention head of the clean run into the corrupted run (one head per
# row of a batched generation), then grow the best heads into the smallest set that
# restores 80% of the tempo gap, measured by the classifier's log-probabilities.

# %%
from interp.plots import plot_head_heatmap

pairs = interp.pairs_from("synthmusic", ["tempo"], per_concept=3, seed=0)
found = interp.locate(
    model,
    model.default_request(["-"], [0]),
    pairs,
    [0],
    interp.ConceptContrast(scorer),
    max_heads=4,
    batch_size=12,
    progress=False,
)
print(
    "located:",
    found.subset,
    "restores",
    round(found.restored.mean, 2),
    "necessity",
    round(found.necessity.mean, 2),
)
print("TADA layer impact:", {k: round(v, 2) for k, v in found.layer_impact.items()})
_ = plot_head_heatmap(found)

# %% [markdown]
# ## Steer towards "fast" at those heads (CAA)

# %%
from interp.steering import CAASteerer, compute_caa

positive = [
    p.clean if p.clean_value == "fast" else p.corrupted
    for p in interp.pairs_from("synthmusic", ["tempo"], 12, seed=5)
    if "fast" in (p.clean_value, p.corrupted_value)
]
negative = [
    p.corrupted if p.clean_value == "fast" else p.clean
    for p in interp.pairs_from("synthmusic", ["tempo"], 12, seed=5)
    if "fast" in (p.clean_value, p.corrupted_value)
]
vectors = compute_caa(model, model.default_request(positive[:1], [0]), positive, negative, found.subset)
slow = model.default_request([pair.corrupted if pair.corrupted_value != "fast" else pair.clean], [0])
for alpha in (0.0, 2.0, 4.0):
    steered = interp.run(model, slow, edits=CAASteerer(vectors).edits(alpha)).output
    with torch.no_grad():
        p_fast = float(scorer.score(steered, "tempo", "fast")[0])
    print(f"alpha {alpha:>4}: P(fast) = {p_fast:.2f}")
    display(Audio(steered.audio[0].numpy(), rate=steered.sample_rate))
