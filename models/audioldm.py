"""Adapter for AudioLDM v1 (diffusers ``AudioLDMPipeline``, deprecated in diffusers).

In diffusers 0.42 the pipeline lives in ``diffusers.pipelines.deprecated.audioldm`` and
is still exported as ``diffusers.AudioLDMPipeline``. Denoiser ``unet``
(``UNet2DConditionModel``): the CLAP text embedding enters through the class embedding
(``class_labels``, concatenated to the time embedding), and the pipeline calls the UNet
with ``encoder_hidden_states=None``. Every ``attn2`` is built with a context width
(diffusers marks it ``is_cross_attention``) but receives ``encoder_hidden_states=None``
and attends to its own input: it is self-attention, and this model has no
cross-attention and no ``text`` sites. audioldm-s-full-v2 has 32 self-attention modules
(12 down, 2 mid, 18 up), 8 heads each.

Under guidance the pipeline calls the UNet once per step on ``[uncond, cond]`` rows
(empty-prompt CLAP embedding first).
"""

from typing import Any

from diffusers import AudioLDMPipeline, UNet2DConditionModel  # pyright: ignore[reportPrivateImportUsage]  # diffusers exports lazily
from torch import nn

from interp.adapter import GenerationOutput, GenerationRequest, ModelAdapter
from interp.catalog import SiteCatalog
from interp.errors import TadaError
from models.hub import load_pipeline, on_meta
from models.offline import structure_config
from models.pipeline_call import call_pipeline
from models.unet import one_waveform_per_prompt, unet_catalog


def audioldm_catalog(unet: nn.Module) -> SiteCatalog:
    """Sites of an AudioLDM v1 UNet: every attention module is self-attention."""
    return unet_catalog(unet, lambda path, module: "self")


class AudioLDMAdapter(ModelAdapter):
    """AudioLDM v1 behind the core's site interface."""

    family = "audioldm"

    def __init__(self, name: str, pipeline: AudioLDMPipeline | None, unet: nn.Module | None = None):
        if unet is None:
            if pipeline is None:
                raise TadaError("AudioLDMAdapter needs a pipeline or a UNet.")
            unet = pipeline.unet
        if not isinstance(unet, UNet2DConditionModel):
            raise TadaError(f"AudioLDMAdapter needs a UNet2DConditionModel, got {type(unet).__name__}.")
        self._unet = unet
        super().__init__(name, pipeline, audioldm_catalog(self._unet))
        if pipeline is not None:
            pipeline.set_progress_bar_config(disable=True)

    @property
    def denoiser(self) -> UNet2DConditionModel:
        return self._unet

    @property
    def sample_rate(self) -> int:
        return int(self.pipeline.vocoder.config.sampling_rate)

    def generate(self, request: GenerationRequest) -> GenerationOutput:
        self.require_weights("generate")
        one_waveform_per_prompt(request)
        return call_pipeline(
            self.pipeline,
            request,
            self.device,
            self.sample_rate,
            duration_argument="audio_length_in_s",
            decoder=None,  # its deprecated pipeline always decodes, whole batches
        )

    def default_request(self, prompts: list[str], seeds: list[int]) -> GenerationRequest:
        """AudioLDM v1 is not in the paper; its AudioLDM2 settings: 100 steps, CFG 4.5, 9 s."""
        return GenerationRequest(
            prompts=tuple(prompts),
            seeds=tuple(seeds),
            num_steps=100,
            guidance_scale=4.5,
            duration_s=9.0,
        )


class AudioLDMFamily:
    """Plugin entry for :mod:`interp.registry`."""

    family = "audioldm"
    aliases = {"audioldm-s-full-v2": "cvssp/audioldm-s-full-v2"}
    pipeline_classes = ("AudioLDMPipeline",)

    def load(self, source: str, weights: bool, device: str, dtype: Any) -> AudioLDMAdapter:
        hub_id = self.aliases.get(source, source)
        if not weights:
            config = structure_config(self.aliases, source, "unet")
            return AudioLDMAdapter(source, None, on_meta(UNet2DConditionModel, config))
        return AudioLDMAdapter(source, load_pipeline(AudioLDMPipeline, hub_id, device, dtype))

    def component_parameters(self, source: str) -> dict[str, int]:
        """Parameters of every component of the pipeline, counted without weights."""
        from models.sizes import pipeline_parameters

        return pipeline_parameters(self.aliases, source)


FAMILY = AudioLDMFamily()
