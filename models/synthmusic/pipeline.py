"""``SynthMusicPipeline``: text -> semitone spectrogram -> waveform, a diffusers pipeline.

Components: ``denoiser`` (``StableAudioDiTModel`` or ``UNet2DConditionModel``, predicting
x0), ``text_encoder`` (``T5EncoderModel``), ``tokenizer`` (``PreTrainedTokenizerFast``) and
``scheduler`` (``FlowMatchEulerDiscreteScheduler``). Sampling is rectified-flow Euler: at
each step the x0 prediction is turned into the velocity ``(x_t - x0) / sigma`` and handed
to the scheduler.

The generation contract:

* the denoiser is called exactly once per step, as ``self.denoiser(...)``;
* with ``guidance_scale > 1`` the batch is ``[unconditional rows for all B prompts,
  conditional rows]``; otherwise only the B conditional rows;
* row ``i``'s initial noise comes from ``generator[i]`` when a list is given; no other
  randomness during sampling; everything runs under ``torch.no_grad()``.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import DiffusionPipeline, FlowMatchEulerDiscreteScheduler  # pyright: ignore[reportPrivateImportUsage]  # diffusers exports lazily
from diffusers.utils import BaseOutput  # pyright: ignore[reportPrivateImportUsage]  # diffusers exports lazily

from .denoisers import MAX_TOKENS, denoiser_inputs, output_to_x0
from .music import SAMPLE_RATE
from .spectrogram import N_BINS, N_FRAMES, to_audio

CHECKPOINT_DIR = Path(__file__).parent / "checkpoints"


@dataclass
class SynthMusicPipelineOutput(BaseOutput):
    """Output of :class:`SynthMusicPipeline`.

    Attributes:
        latents: Final spectrograms, float32 ``[batch, 80, 64]``.
        audios: Waveforms ``[batch, 32000]`` (numpy for ``output_type="np"``, torch for
            ``"pt"``), or None for ``output_type="latent"``.
        step_latents: Step -> latents before that step, for the requested ``keep_latents_at``.
    """

    latents: torch.Tensor
    audios: np.ndarray | torch.Tensor | None = None
    step_latents: dict[int, torch.Tensor] | None = None


class SynthMusicPipeline(DiffusionPipeline):
    """Text-to-audio for SynthMusic captions (see the module docstring for the contract)."""

    model_cpu_offload_seq = "text_encoder->denoiser"

    def __init__(self, denoiser, text_encoder, tokenizer, scheduler) -> None:
        super().__init__()
        self.register_modules(
            denoiser=denoiser, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler
        )

    @property
    def sample_rate(self) -> int:
        """Audio sample rate of :meth:`decode` (16000)."""
        return SAMPLE_RATE

    def encode_prompt(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokenizes (padded to 32 tokens) and encodes; returns ``(states, mask)``."""
        tokens = self.tokenizer(
            prompts, padding="max_length", max_length=MAX_TOKENS, truncation=True, return_tensors="pt"
        )
        mask = tokens.attention_mask.to(self.device)
        states = self.text_encoder(input_ids=tokens.input_ids.to(self.device), attention_mask=mask)
        return states.last_hidden_state, mask

    def prepare_latents(self, batch: int, generator, latents: torch.Tensor | None) -> torch.Tensor:
        """Initial noise ``[batch, 80, 64]``: given, per-row from a generator list, or one draw."""
        shape = (batch, N_BINS, N_FRAMES)
        if latents is not None:
            if tuple(latents.shape) != shape:
                raise ValueError(f"latents must have shape {shape}, got {tuple(latents.shape)}")
            return latents.to(self.device, torch.float32)
        if isinstance(generator, list):
            if len(generator) != batch:
                raise ValueError(f"got {len(generator)} generators for {batch} prompts; pass one per prompt")
            rows = [torch.randn(shape[1:], generator=g, dtype=torch.float32) for g in generator]
            return torch.stack(rows).to(self.device)
        return torch.randn(shape, generator=generator, dtype=torch.float32).to(self.device)

    def decode(self, latents: torch.Tensor) -> np.ndarray:
        """Spectrograms ``[batch, 80, 64]`` -> waveforms ``[batch, 32000]`` (Griffin-Lim)."""
        return to_audio(latents)

    @torch.no_grad()
    def __call__(self, prompt: str | list[str], **kwargs: Any) -> SynthMusicPipelineOutput:
        """Generates spectrograms (and audio) for ``prompt`` without gradients (see :meth:`sample`)."""
        return self.sample(prompt, **kwargs)

    def sample(
        self,
        prompt: str | list[str],
        num_inference_steps: int = 25,
        guidance_scale: float = 4.0,
        negative_prompt: str | list[str] | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        output_type: str = "np",
        start_step: int = 0,
        keep_latents_at: tuple[int, ...] = (),
        callback: Callable[[int], None] | None = None,
    ) -> SynthMusicPipelineOutput:
        """Generates spectrograms (and audio) for ``prompt`` in the caller's gradient mode
        (under ``torch.enable_grad()`` the graph reaches from the noise to the latents).

        Args:
            prompt: One caption or a list of B captions.
            num_inference_steps: Euler steps.
            guidance_scale: Classifier-free guidance weight; <= 1 disables the
                unconditional rows.
            negative_prompt: Unconditional caption(s); None means the empty caption "".
            generator: One generator, or one per prompt (row i's noise from generator[i]).
            latents: Initial noise ``[B, 80, 64]``; overrides ``generator``.
            output_type: ``"np"`` or ``"pt"`` (waveforms as numpy / torch) or ``"latent"``.
            start_step: Skip the steps before this one; ``latents`` then holds the state
                before it (from ``keep_latents_at`` of an earlier call). The sampler is
                deterministic, so the result equals the uninterrupted run's.
            keep_latents_at: Steps whose incoming latents are returned in ``step_latents``.
            callback: Called with the step index after each denoising step.

        Returns:
            :class:`SynthMusicPipelineOutput` with ``latents`` and ``audios``.
        """
        if output_type not in ("np", "pt", "latent"):
            raise ValueError(f"unknown output_type {output_type!r}; valid: ['np', 'pt', 'latent']")
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        b = len(prompts)
        do_cfg = guidance_scale > 1.0
        text, mask = self.encode_prompt(prompts)
        if do_cfg:
            neg = (
                [""] * b
                if negative_prompt is None
                else ([negative_prompt] * b if isinstance(negative_prompt, str) else list(negative_prompt))
            )
            if len(neg) != b:
                raise ValueError(f"got {len(neg)} negative prompts for {b} prompts")
            neg_text, neg_mask = self.encode_prompt(neg)
            text, mask = torch.cat([neg_text, text]), torch.cat([neg_mask, mask])
        if start_step and latents is None:
            raise ValueError("start_step > 0 needs latents: the state before that step")
        x = self.prepare_latents(b, generator, latents)
        self.scheduler.set_timesteps(num_inference_steps, device=self.device)
        self.scheduler.set_begin_index(start_step)
        kept: dict[int, torch.Tensor] = {}
        model_dtype = self.denoiser.dtype
        for i, t in enumerate(self.progress_bar(self.scheduler.timesteps[start_step:]), start=start_step):  # pyright: ignore[reportArgumentType, reportCallIssue]  # torch.compiler.disable hides progress_bar's signature
            if i in keep_latents_at:
                kept[i] = x.clone()
            sigma = self.scheduler.sigmas[i].to(x.dtype)
            x_in = torch.cat([x, x]) if do_cfg else x
            # the sampler state stays float32; a half-precision denoiser sees its own dtype
            out = self.denoiser(
                **denoiser_inputs(self.denoiser, x_in.to(model_dtype), sigma, text.to(model_dtype), mask)
            )
            x0 = output_to_x0(self.denoiser, out).to(x.dtype)
            if do_cfg:
                x0_uncond, x0_cond = x0.chunk(2)
                x0 = x0_uncond + guidance_scale * (x0_cond - x0_uncond)
            velocity = (x - x0) / sigma
            x = self.scheduler.step(velocity, t, x).prev_sample
            if callback is not None:
                callback(i)
        if output_type == "latent":
            return SynthMusicPipelineOutput(latents=x, audios=None, step_latents=kept)
        audio = self.decode(x.detach())
        return SynthMusicPipelineOutput(
            latents=x, audios=torch.from_numpy(audio) if output_type == "pt" else audio, step_latents=kept
        )


def make_scheduler() -> FlowMatchEulerDiscreteScheduler:
    """The sampling scheduler (no shift, 1000 training timesteps)."""
    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0)


def load_synthmusic(kind: str = "dit", directory: str | Path | None = None) -> SynthMusicPipeline:
    """Loads a shipped SynthMusic pipeline offline.

    Args:
        kind: ``"dit"`` or ``"unet"``.
        directory: Override the checkpoint directory (default ``checkpoints/{kind}``).

    Raises:
        ValueError: Unknown ``kind``.
        FileNotFoundError: The checkpoint directory does not exist.
    """
    if kind not in ("dit", "unet"):
        raise ValueError(f"unknown SynthMusic model {kind!r}; valid kinds: ['dit', 'unet']")
    path = Path(directory) if directory is not None else CHECKPOINT_DIR / kind
    if not (path / "model_index.json").exists():
        raise FileNotFoundError(
            f"no SynthMusic {kind} checkpoint at {path} (model_index.json missing); "
            f"train one with `python -m models.synthmusic.cli synthmusic train {kind}`"
        )
    pipe = SynthMusicPipeline.from_pretrained(str(path), local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe
