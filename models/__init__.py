"""Model adapters: one module per model family, each exposing its denoiser's attention
heads as sites of the model-agnostic core in :mod:`interp`."""
