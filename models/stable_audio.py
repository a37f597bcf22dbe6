"""Adapter for Stable Audio Open (diffusers ``StableAudioPipeline``, a DiT).

Denoiser ``transformer``: ``transformer_blocks.{i}`` each with ``attn1`` (self-attention
with rotary embeddings) and ``attn2`` (cross-attention to T5 text + duration tokens,
grouped-query: 24 query heads over 12 key/value heads in the 1.0 release). Under
guidance the pipeline batches ``[uncond, cond]``; its scheduler draws per-row noise from
the per-row generators this adapter passes.
"""

from typing import Any

from diffusers import StableAudioDiTModel, StableAudioPipeline  # pyright: ignore[reportPrivateImportUsage]  # diffusers exports lazily
from torch import Tensor

from interp.adapter import GenerationOutput, GenerationRequest, ModelAdapter
from interp.catalog import AttentionModule
from interp.context_tokens import ContextToken
from interp.errors import TadaError
from models.attention import attention_catalog, attention_scores
from models.context import labelled, tokenized_context
from models.hub import load_pipeline, on_meta, shipped_config
from models.pipeline_call import call_pipeline, stable_audio_decoder


class StableAudioAdapter(ModelAdapter):
    """Stable Audio Open behind the core's site interface."""

    family = "stable-audio"

    def __init__(self, name: str, pipeline: StableAudioPipeline | None, transformer=None):
        if transformer is None:
            if pipeline is None:
                raise TadaError("StableAudioAdapter needs a pipeline or a transformer.")
            transformer = pipeline.transformer
        self._transformer = transformer
        super().__init__(name, pipeline, attention_catalog(self._transformer))
        if pipeline is not None:
            pipeline.set_progress_bar_config(disable=True)

    @property
    def denoiser(self) -> StableAudioDiTModel:
        return self._transformer

    @property
    def sample_rate(self) -> int:
        return int(self.pipeline.vae.sampling_rate)

    @property
    def max_duration_s(self) -> float:
        """The pipeline denoises ``sample_size`` latent frames and crops: no longer audio.
        A structure-only build has no VAE: Stable Audio Open's Oobleck VAE (hop 2048 at
        44.1 kHz) is assumed."""
        return self._transformer.config.sample_size * self.min_duration_s

    @property
    def min_duration_s(self) -> float:
        """One latent frame: shorter requests would crop the audio to nothing."""
        vae = self.pipeline.vae if self.pipeline is not None else None
        hop, rate = (vae.hop_length, vae.sampling_rate) if vae is not None else (2048, 44100)
        return float(hop / rate)

    def context_tokens(self, module: AttentionModule, prompt: str) -> tuple[ContextToken, ...]:
        """The T5 tokens, padded to the tokenizer's ``model_max_length``, then the two
        duration tokens (seconds start, seconds end) the pipeline appends."""
        tokenizer = self.pipeline.tokenizer
        text = tokenized_context(tokenizer, prompt, tokenizer.model_max_length)
        return (*text, *labelled(["<seconds_start>", "<seconds_end>"], len(text)))

    def attention_scores(self, module: AttentionModule, queries: Tensor, keys: Tensor) -> Tensor:
        return attention_scores(self.denoiser.get_submodule(module.path), queries, keys)

    def generate(self, request: GenerationRequest) -> GenerationOutput:
        self.require_weights("generate")
        return call_pipeline(
            self.pipeline,
            request,
            self.device,
            self.sample_rate,
            duration_argument="audio_end_in_s",
            decoder=stable_audio_decoder(self.pipeline),
        )

    def default_request(self, prompts: list[str], seeds: list[int]) -> GenerationRequest:
        """The paper's settings: 100 steps, CFG 7, 9 s, its negative prompt."""
        return GenerationRequest(
            prompts=tuple(prompts),
            seeds=tuple(seeds),
            num_steps=100,
            guidance_scale=7.0,
            duration_s=9.0,
            negative_prompt="Low quality, average quality.",
        )


class StableAudioFamily:
    """Plugin entry for :mod:`interp.registry`."""

    family = "stable-audio"
    aliases = {"stable-audio-open-1.0": "stabilityai/stable-audio-open-1.0"}
    pipeline_classes = ("StableAudioPipeline",)

    def load(self, source: str, weights: bool, device: str, dtype: Any) -> StableAudioAdapter:
        hub_id = self.aliases.get(source, source)
        if not weights:
            config = shipped_config("stable-audio-open-1.0", "transformer")
            return StableAudioAdapter(source, None, on_meta(StableAudioDiTModel, config))
        return StableAudioAdapter(source, load_pipeline(StableAudioPipeline, hub_id, device, dtype))

    def component_parameters(self, source: str) -> dict[str, int]:
        """Parameters of every component of the pipeline, counted without weights."""
        from models.sizes import pipeline_parameters

        return pipeline_parameters(self.aliases, source)


FAMILY = StableAudioFamily()
