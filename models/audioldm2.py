"""Adapter for AudioLDM 2 (diffusers ``AudioLDM2Pipeline``, a two-stream UNet).

Denoiser ``unet`` (``AudioLDM2UNet2DConditionModel``). Every UNet layer holds one
``Transformer2DModel`` per entry of its ``cross_attention_dim`` list: ``[None, 768, 1024]``
in audioldm2 and audioldm2-music, ``[None, 768, 1024, None]`` in audioldm2-large. A
``None`` entry has no text (its ``attn2`` is a second self-attention); the UNet blocks
route ``encoder_hidden_states`` (GPT-2, 768) to positions 0-1 and
``encoder_hidden_states_1`` (FLAN-T5, 1024) to later positions (see
:meth:`AudioLDM2Adapter.text_source`).

Each cross ``attn2`` receives its stream as the keyword argument ``encoder_hidden_states``
(checked in the tests): that is the ``text`` site. A module is cross-attention when it
was built with a context width (``is_cross_attention``); modules are listed in execution
order (down blocks, mid block, up blocks), not registration order. audioldm2-large has
two transformer blocks per ``Transformer2DModel``: 64 cross-attention modules (24 down,
4 mid, 36 up) and 192 self-attention modules, 8 heads each.

Under guidance the pipeline calls the UNet once per step on ``[uncond, cond]`` rows.
"""

from typing import Any

import torch
from diffusers import AudioLDM2Pipeline, AudioLDM2UNet2DConditionModel  # pyright: ignore[reportPrivateImportUsage]  # diffusers exports lazily
from diffusers.pipelines.audioldm2.modeling_audioldm2 import (
    CrossAttnDownBlock2D,
    CrossAttnUpBlock2D,
    UNetMidBlock2DCrossAttn,
)
from torch import Tensor, nn
from transformers import GPT2LMHeadModel

from interp.adapter import GenerationOutput, GenerationRequest, ModelAdapter
from interp.catalog import AttentionModule, SiteCatalog
from interp.context_tokens import ContextToken
from interp.errors import TadaError
from models.attention import attention_scores
from models.context import tokenized_context
from models.hub import load_pipeline, on_meta
from models.offline import structure_config
from models.pipeline_call import call_pipeline, mel_decoder
from models.unet import one_waveform_per_prompt, unet_catalog

_STREAMS = ("gpt2", "flan-t5")


def audioldm2_catalog(unet: nn.Module) -> SiteCatalog:
    """Sites of an AudioLDM2 UNet, in execution order."""
    return unet_catalog(unet, lambda path, m: "cross" if m.is_cross_attention else "self")


def with_generation_head(pipe: AudioLDM2Pipeline) -> AudioLDM2Pipeline:
    """Give the pipeline a GPT-2 that can run its language-model loop.

    The hub checkpoints declare ``language_model`` as ``GPT2Model``; from transformers 5
    that class lacks ``_update_model_kwargs_for_generation``, which
    ``AudioLDM2Pipeline.generate_language_model`` calls. ``GPT2LMHeadModel`` (the type
    the pipeline annotates) has it and returns the same hidden states, so the base
    model's weights are moved into one.
    """
    base = pipe.language_model
    if hasattr(base, "_update_model_kwargs_for_generation"):
        return pipe
    with torch.device("meta"):
        head = GPT2LMHeadModel(base.config)
    head.transformer = base
    head.lm_head.weight = base.wte.weight
    head.eval()
    pipe.register_modules(language_model=head)
    return pipe


class AudioLDM2Adapter(ModelAdapter):
    """AudioLDM 2 behind the core's site interface."""

    family = "audioldm2"

    def __init__(self, name: str, pipeline: AudioLDM2Pipeline | None, unet: nn.Module | None = None):
        if unet is None:
            if pipeline is None:
                raise TadaError("AudioLDM2Adapter needs a pipeline or a UNet.")
            unet = pipeline.unet
        if not isinstance(unet, AudioLDM2UNet2DConditionModel):
            raise TadaError(
                f"AudioLDM2Adapter needs an AudioLDM2UNet2DConditionModel, got {type(unet).__name__}."
            )
        self._unet = unet
        super().__init__(name, pipeline, audioldm2_catalog(self._unet))
        if pipeline is not None:
            with_generation_head(pipeline)
            pipeline.set_progress_bar_config(disable=True)

    @property
    def denoiser(self) -> AudioLDM2UNet2DConditionModel:
        return self._unet

    @property
    def sample_rate(self) -> int:
        return int(self.pipeline.vocoder.config.sampling_rate)

    def text_source(self, layer: int) -> str:
        """Which text stream feeds cross-attention layer ``layer``: ``'gpt2'`` or ``'flan-t5'``.

        The UNet blocks pass ``encoder_hidden_states`` (GPT-2) to the transformers at
        positions 0 and 1 of each layer group and ``encoder_hidden_states_1`` (T5) to the
        later ones.

        Raises:
            SiteError: If there is no such cross-attention layer.
        """
        parts = self.catalog.module("cross", layer).path.split(".")
        at = parts.index("attentions")
        block = self._unet.get_submodule(".".join(parts[:at]))
        assert isinstance(block, (CrossAttnDownBlock2D, UNetMidBlock2DCrossAttn, CrossAttnUpBlock2D))
        position = int(parts[at + 1]) % len(block.cross_attention_dim)
        return _STREAMS[0] if position <= 1 else _STREAMS[1]

    def context_tokens(self, module: AttentionModule, prompt: str) -> tuple[ContextToken, ...]:
        """FLAN-T5 layers: the T5 tokens of the prompt (the pipeline pads to the longest
        prompt of the batch: later positions are padding). GPT-2 layers attend to the
        language model's generated states, which encode no single word: no positions."""
        if self.text_source(module.layer) == "gpt2":
            return ()
        tokenizer = self.pipeline.tokenizer_2
        return tuple(tokenized_context(tokenizer, prompt, tokenizer.model_max_length, pad=False))

    def attention_scores(self, module: AttentionModule, queries: Tensor, keys: Tensor) -> Tensor:
        return attention_scores(self._unet.get_submodule(module.path), queries, keys)

    def generate(self, request: GenerationRequest) -> GenerationOutput:
        self.require_weights("generate")
        one_waveform_per_prompt(request)
        return call_pipeline(
            self.pipeline,
            request,
            self.device,
            self.sample_rate,
            duration_argument="audio_length_in_s",
            decoder=mel_decoder(self.pipeline),
        )

    def default_request(self, prompts: list[str], seeds: list[int]) -> GenerationRequest:
        """The paper's settings for AudioLDM2: 100 steps, CFG 4.5, 9 s."""
        return GenerationRequest(
            prompts=tuple(prompts),
            seeds=tuple(seeds),
            num_steps=100,
            guidance_scale=4.5,
            duration_s=9.0,
        )


class AudioLDM2Family:
    """Plugin entry for :mod:`interp.registry`."""

    family = "audioldm2"
    aliases = {
        "audioldm2": "cvssp/audioldm2",
        "audioldm2-large": "cvssp/audioldm2-large",
        "audioldm2-music": "cvssp/audioldm2-music",
    }
    pipeline_classes = ("AudioLDM2Pipeline",)

    def load(self, source: str, weights: bool, device: str, dtype: Any) -> AudioLDM2Adapter:
        hub_id = self.aliases.get(source, source)
        if not weights:
            config = structure_config(self.aliases, source, "unet")
            return AudioLDM2Adapter(source, None, on_meta(AudioLDM2UNet2DConditionModel, config))
        return AudioLDM2Adapter(source, load_pipeline(AudioLDM2Pipeline, hub_id, device, dtype))

    def component_parameters(self, source: str) -> dict[str, int]:
        """Parameters of every component of the pipeline, counted without weights."""
        from models.sizes import pipeline_parameters

        return pipeline_parameters(self.aliases, source)


FAMILY = AudioLDM2Family()
