"""Adapter for SynthMusic, the project's offline default model.

Two trained text-to-spectrogram models, a ``StableAudioDiTModel`` (DiT with GQA
cross-attention) and a ``UNet2DConditionModel``, behind the core's site interface, plus
their ground-truth concept scorer (a classifier trained on the procedural generator's
clips) as the metric for patching and steering.
"""

from pathlib import Path
from typing import Any

import torch
from diffusers import StableAudioDiTModel, UNet2DConditionModel  # pyright: ignore[reportPrivateImportUsage]  # diffusers exports lazily

from interp.adapter import GenerationOutput, GenerationRequest, ModelAdapter
from interp.catalog import AttentionModule
from interp.context_tokens import ContextToken
from interp.errors import ModelNotFoundError, TadaError
from interp.progress import denoising_step
from models.attention import attention_catalog, attention_scores
from models.context import tokenized_context
from models.hub import on_meta
from models.synthmusic.denoisers import MAX_TOKENS
from models.synthmusic.music import CONCEPTS
from models.synthmusic.pipeline import CHECKPOINT_DIR, SynthMusicPipeline
from models.synthmusic.scorer import ConceptScorer
from models.unet import unet_execution_order

KINDS = {"synthmusic-dit": "dit", "synthmusic-unet": "unet"}


class SynthMusicScorer:
    """The trained concept classifier as an :class:`interp.metrics.ConceptScorer`.

    ``score(output, concept, value)`` is the probability of ``value``; ``concept`` is a
    concept name (``'mood'``) or, TADA-style, a value itself (``'piano'``), whose
    concept is then looked up.
    """

    needs_audio = False  # it reads the spectrogram latents

    def __init__(self, classifier: ConceptScorer):
        self.classifier = classifier.eval()
        self.concepts = dict(CONCEPTS)

    def concept_of(self, concept: str, value: str) -> str:
        """The concept whose values include ``value`` (``concept`` if it is one)."""
        if concept in self.concepts:
            if value not in self.concepts[concept]:
                raise TadaError(
                    f"SynthMusic concept {concept!r} has no value {value!r}; valid values: "
                    f"{list(self.concepts[concept])}."
                )
            return concept
        for name, values in self.concepts.items():
            if value in values:
                return name
        valid = {k: list(v) for k, v in self.concepts.items()}
        raise TadaError(f"Unknown SynthMusic concept value {value!r}; valid: {valid}.")

    def probabilities(self, latents: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-concept probabilities for spectrogram latents ``[batch, 80, 64]``."""
        return self.classifier(latents)

    def score(self, output: GenerationOutput, concept: str, value: str) -> torch.Tensor:
        """Probability of ``value`` per sample."""
        return self.log_score(output, concept, value).exp()

    def log_score(self, output: GenerationOutput, concept: str, value: str) -> torch.Tensor:
        """Log-probability of ``value`` per sample (does not saturate like probabilities,
        so differences of it grade patching effects: a logit difference)."""
        name = self.concept_of(concept, value)
        logits = self.classifier.logits(output.latents)[name]
        return logits.log_softmax(dim=-1)[:, self.concepts[name].index(value)]


class SynthMusicAdapter(ModelAdapter):
    """A SynthMusic pipeline (DiT or UNet) behind the core's site interface."""

    family = "synthmusic"
    can_resume = True  # Euler sampling of a flow is deterministic: no noise after the first step
    differentiable = True  # the whole sampler is torch: attribution can reach the final latents

    def __init__(self, name: str, pipeline: SynthMusicPipeline | None, denoiser=None):
        if denoiser is None:
            if pipeline is None:
                raise TadaError("SynthMusicAdapter needs a pipeline or a denoiser.")
            denoiser = pipeline.denoiser
        self._denoiser = denoiser
        order = unet_execution_order if isinstance(self._denoiser, UNet2DConditionModel) else None
        super().__init__(name, pipeline, attention_catalog(self._denoiser, execution_order=order))
        if pipeline is not None:
            pipeline.set_progress_bar_config(disable=True)
        self._scorer: SynthMusicScorer | None = None

    @property
    def denoiser(self) -> torch.nn.Module:
        return self._denoiser

    def generate(self, request: GenerationRequest) -> GenerationOutput:
        self.require_weights("generate")
        with torch.set_grad_enabled(request.keep_graph):
            out = self._sample(request)
        return GenerationOutput(out.latents, out.audios, self.pipeline.sample_rate, out.step_latents or {})

    def _sample(self, request: GenerationRequest):  # SynthMusicPipelineOutput
        return self.pipeline.sample(
            list(request.prompts),
            num_inference_steps=request.num_steps,
            guidance_scale=request.guidance_scale,
            negative_prompt=request.negative_prompt,
            generator=request.generators(self.device),
            output_type="pt" if request.decode else "latent",
            latents=request.start_latents,
            start_step=request.start_step,
            keep_latents_at=request.keep_latents_at,
            callback=lambda step: denoising_step(),
            **dict(request.options),
        )

    def context_tokens(self, module: AttentionModule, prompt: str) -> tuple[ContextToken, ...]:
        """The caption's word-level tokens, ``</s>``, then ``<pad>`` up to 32 positions."""
        return tuple(tokenized_context(self.pipeline.tokenizer, prompt, MAX_TOKENS))

    def attention_scores(
        self, module: AttentionModule, queries: torch.Tensor, keys: torch.Tensor
    ) -> torch.Tensor:
        return attention_scores(self.denoiser.get_submodule(module.path), queries, keys)

    def default_request(self, prompts: list[str], seeds: list[int]) -> GenerationRequest:
        """The settings the models were evaluated with: 25 Euler steps, CFG 4."""
        return GenerationRequest(prompts=tuple(prompts), seeds=tuple(seeds), num_steps=25, guidance_scale=4.0)

    def concept_scorer(self) -> SynthMusicScorer:
        """The ground-truth concept scorer (loaded once)."""
        if self._scorer is None:
            from models.synthmusic.scorer import load_scorer

            self._scorer = SynthMusicScorer(load_scorer())
        return self._scorer


def _directory(source: str) -> Path:
    if source in KINDS:
        return CHECKPOINT_DIR / KINDS[source]
    return Path(source)


class SynthMusicFamily:
    """Plugin entry for :mod:`interp.registry`."""

    family = "synthmusic"
    aliases = {name: str(CHECKPOINT_DIR / kind) for name, kind in KINDS.items()}
    pipeline_classes = ("SynthMusicPipeline",)

    def load(self, source: str, weights: bool, device: str, dtype: Any) -> SynthMusicAdapter:
        path = _directory(source)
        if not (path / "model_index.json").is_file():
            raise ModelNotFoundError(
                f"No SynthMusic checkpoint at {str(path)!r}; the shipped ones are "
                f"{sorted(KINDS)}; retrain with `tada synthmusic train dit|unet`."
            )
        if not weights:
            import json

            config = json.loads((path / "denoiser" / "config.json").read_text())
            cls = {"StableAudioDiTModel": StableAudioDiTModel, "UNet2DConditionModel": UNet2DConditionModel}[
                config["_class_name"]
            ]
            return SynthMusicAdapter(source, None, on_meta(cls, config))
        pipe = SynthMusicPipeline.from_pretrained(str(path), local_files_only=True)
        if dtype is not None:
            pipe = pipe.to(dtype=dtype)
        return SynthMusicAdapter(source, pipe.to(device))

    def component_parameters(self, source: str) -> dict[str, int]:
        """Parameters of every component of the pipeline, counted without weights."""
        from models.sizes import pipeline_parameters

        return pipeline_parameters(self.aliases, source)


FAMILY = SynthMusicFamily()
