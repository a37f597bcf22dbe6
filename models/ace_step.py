"""Adapter for ACE-Step 1.5 (diffusers ``AceStepPipeline``, a DiT with GQA attention).

Denoiser ``transformer`` (``AceStepTransformer1DModel``): ``layers.{i}`` each with
``self_attn`` (RoPE, sliding-window on even layers) and ``cross_attn``, both
``AceStepAttention`` modules (not diffusers' ``Attention`` class) whose processor works
on ``[batch, seq, head, d_head]`` tensors with ``heads`` query heads over ``kv_heads``
key/value heads. The processor flattens the heads and calls ``to_out[0]``: its input
is the concatenation of head outputs, the ``head``/``heads`` sites. ``cross_attn`` gets
its text as the keyword argument ``encoder_hidden_states``: the packed lyric + timbre +
caption sequence from ``AceStepConditionEncoder`` after the transformer's
``condition_embedder`` projection (width ``hidden_size``). That is the ``text`` site.

Classifier-free guidance differs from the core's convention in three ways:

* the pipeline batches ``[cond, uncond]`` (conditional rows first), the unconditional
  rows carrying the learned ``null_condition_emb``. While this adapter generates, a
  pre-hook on the transformer swaps the two halves of every batched input and a hook
  swaps the output back, so every module inside the denoiser sees ``[uncond, cond]``
  as the core assumes; the pipeline still sees its own layout.
* guidance runs only for steps inside ``[cfg_interval_start, cfg_interval_end]`` (all
  steps by default); a step outside runs the conditional rows alone, and ``cover``
  tasks with ``audio_cover_strength < 1`` call the transformer a second time per step.
  Both break "one call per step with a fixed row layout", so a guard refuses them.
* turbo checkpoints are guidance-distilled: the pipeline forces ``guidance_scale=1``,
  so a request with guidance is refused instead of silently running without an
  unconditional branch. The guidance itself is APG (momentum-normalised), not plain CFG.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from diffusers import AceStepPipeline  # pyright: ignore[reportPrivateImportUsage]  # diffusers exports lazily
from diffusers.models.transformers.ace_step_transformer import (
    AceStepAttention,
    AceStepTransformer1DModel,
)
from torch import nn

from interp.adapter import GenerationOutput, GenerationRequest, ModelAdapter
from interp.catalog import AttentionModule, SiteCatalog
from interp.context_tokens import ContextToken, words_of_offsets
from interp.errors import TadaError
from interp.progress import denoising_step
from models.attention import attention_catalog, attention_scores
from models.context import labelled
from models.hub import load_pipeline, on_meta
from models.offline import structure_config

#: The audio duration :meth:`AceStepAdapter.context_tokens` writes into the caption's
#: metadata lines (``default_request``'s 30 s). Only the length of the text section's
#: tail after the caption depends on it.
LABELLED_DURATION_S = 30.0

#: Keyword arguments of ``AceStepTransformer1DModel.forward`` batched over CFG rows.
BATCHED_INPUTS = ("hidden_states", "timestep", "timestep_r", "encoder_hidden_states", "context_latents")


def ace_step_catalog(transformer: nn.Module) -> SiteCatalog:
    """Sites of an ACE-Step transformer (registration order is execution order)."""
    return attention_catalog(transformer, attention_types=(AceStepAttention,))


def _swap_halves(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[0] // 2
    return torch.cat([x[half:], x[:half]])


@contextmanager
def uncond_first(transformer: nn.Module, batch_size: int, guided: bool) -> Iterator[None]:
    """Make the transformer's insides see ``[uncond, cond]`` rows, and check each call.

    Args:
        transformer: The ACE-Step transformer.
        batch_size: Number of samples.
        guided: Whether every call must carry both CFG branches.

    Raises:
        TadaError: From inside the generation, if a call's batch is not the expected
            ``2 * batch_size`` (guided) or ``batch_size`` (unguided) rows.
    """
    expected = 2 * batch_size if guided else batch_size

    def before(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        rows = kwargs["hidden_states"].shape[0]
        if args or rows != expected:
            raise TadaError(
                f"ACE-Step called its transformer with {rows} rows where the adapter expects "
                f"{expected} ({'both CFG branches' if guided else 'conditional rows only'}, "
                f"one call per step). Steps outside cfg_interval_start/end and cover tasks "
                f"with audio_cover_strength < 1 break that layout: leave those options at "
                f"their defaults."
            )
        if guided:
            kwargs = {k: _swap_halves(v) if k in BATCHED_INPUTS else v for k, v in kwargs.items()}
        return args, kwargs

    def after(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> Any:
        if not guided:
            return output
        if isinstance(output, tuple):
            return (_swap_halves(output[0]), *output[1:])
        output.sample = _swap_halves(output.sample)
        return output

    handles = [
        transformer.register_forward_pre_hook(before, with_kwargs=True),
        transformer.register_forward_hook(after, with_kwargs=True),
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def is_turbo(transformer: nn.Module) -> bool:
    """Whether a transformer is a guidance-distilled turbo checkpoint."""
    config = transformer.config
    return bool(getattr(config, "is_turbo", False) or getattr(config, "model_version", None) == "turbo")


class AceStepAdapter(ModelAdapter):
    """ACE-Step 1.5 behind the core's site interface."""

    family = "ace-step"

    def __init__(self, name: str, pipeline: AceStepPipeline | None, transformer=None):
        if transformer is None:
            if pipeline is None:
                raise TadaError("AceStepAdapter needs a pipeline or a transformer.")
            transformer = pipeline.transformer
        self._transformer = transformer
        super().__init__(name, pipeline, ace_step_catalog(self._transformer))
        if pipeline is not None:
            pipeline.set_progress_bar_config(disable=True)

    @property
    def denoiser(self) -> AceStepTransformer1DModel:
        return self._transformer

    @property
    def turbo(self) -> bool:
        """True for guidance-distilled checkpoints (no unconditional branch)."""
        return is_turbo(self._transformer)

    @property
    def sample_rate(self) -> int:
        return int(self.pipeline.sample_rate)

    def context_tokens(self, module: AttentionModule, prompt: str) -> tuple[ContextToken, ...]:
        """Lyric tokens, one timbre position, then the text tokens, as the condition
        encoder packs them for a batch of this prompt alone.

        The pipeline tokenizes the lyric block (``# Languages``, ``# Lyric``, the lyrics)
        and the SFT text template (``# Instruction``, ``# Caption`` = the prompt,
        ``# Metas``), each padded to the batch's longest, and the condition encoder packs
        ``[lyrics, timbre, text]`` per sample with valid positions stably moved to the
        front (``_pack_sequences``): lyric tokens, the one pooled timbre embedding, text
        tokens, then the lyric padding and the text padding. Lyric positions are labelled
        ``<lyric>`` + piece, the timbre position ``<timbre>``; of the text section only
        the caption's tokens carry a prompt word (template tokens carry ``None``).

        The labels hold for the settings the adapter generates with by default: no
        lyrics, ``vocal_language='en'``, the ``text2music`` instruction, no
        bpm/key/time signature, ``LABELLED_DURATION_S`` in the metas, no reference
        audio (one timbre position either way). Other lyrics shift every text position;
        another duration may change the number of metas tokens after the caption (word
        positions stay right). In a batch whose prompts tokenize to different lengths,
        shorter prompts get padding at the end (``<pad>``, from
        :func:`interp.word_reading.context_of`).

        Raises:
            TadaError: If the adapter has no pipeline (structure only).
        """
        self.require_weights("label context positions")
        pipe = self.pipeline
        tokenizer = pipe.tokenizer
        text, lyric_block = pipe._format_prompt(  # pyright: ignore[reportPrivateUsage]  # the pipeline's own template
            prompt=prompt,
            lyrics="",
            audio_duration=LABELLED_DURATION_S,
            instruction=pipe._get_task_instruction(),  # pyright: ignore[reportPrivateUsage]
        )
        lyric_ids = tokenizer(lyric_block, truncation=True, max_length=2048)["input_ids"]
        lyrics = [f"<lyric>{piece}" for piece in tokenizer.convert_ids_to_tokens(lyric_ids)]
        encoded = tokenizer(text, truncation=True, max_length=256, return_offsets_mapping=True)
        start = text.index("# Caption\n") + len("# Caption\n")
        end = start + len(prompt)
        offsets = [
            (max(s, start) - start, min(e, end) - start) if s < end and e > start else (0, 0)
            for s, e in encoded["offset_mapping"]
        ]
        words = words_of_offsets(prompt, offsets)
        first = len(lyrics) + 1
        captioned = [
            ContextToken(first + i, piece, word, index)
            for i, (piece, (word, index)) in enumerate(
                zip(tokenizer.convert_ids_to_tokens(encoded["input_ids"]), words)
            )
        ]
        return (*labelled(lyrics, 0), *labelled(["<timbre>"], len(lyrics)), *captioned)

    def attention_scores(
        self, module: AttentionModule, queries: torch.Tensor, keys: torch.Tensor
    ) -> torch.Tensor:
        return attention_scores(self._transformer.get_submodule(module.path), queries, keys)

    def generate(self, request: GenerationRequest) -> GenerationOutput:
        self.require_weights("generate")
        if request.guided and self.turbo:
            raise TadaError(
                f"{self.name!r} is a guidance-distilled turbo checkpoint: its pipeline ignores "
                f"guidance_scale={request.guidance_scale} and runs no unconditional branch. "
                f"Use guidance_scale=1 (default_request does)."
            )
        if request.negative_prompt is not None:
            raise TadaError(
                "ACE-Step has no negative prompt: its unconditional branch uses the learned "
                "null condition embedding. Leave negative_prompt=None."
            )
        options = dict(request.options)
        lyrics = options.pop("lyrics", "")
        if isinstance(lyrics, str):
            lyrics = [lyrics] * request.batch_size
        if request.duration_s is not None:
            options["audio_duration"] = request.duration_s
        final: dict[str, torch.Tensor] = {}

        def keep_latents(step: int, timestep: Any, latents: torch.Tensor) -> None:
            final["latents"] = latents
            denoising_step()

        with uncond_first(self._transformer, request.batch_size, request.guided):
            out = self.pipeline(
                prompt=list(request.prompts),
                lyrics=list(lyrics),
                num_inference_steps=request.num_steps,
                guidance_scale=request.guidance_scale,
                generator=request.generators(self.device),
                output_type="pt",
                callback=keep_latents,
                callback_steps=1,
                **options,
            )
        return GenerationOutput(final["latents"], out.audios, self.sample_rate)

    def default_request(self, prompts: list[str], seeds: list[int]) -> GenerationRequest:
        """The paper's ACE-Step settings: 50 steps, CFG 7, 30 s (CFG 1 on turbo checkpoints)."""
        return GenerationRequest(
            prompts=tuple(prompts),
            seeds=tuple(seeds),
            num_steps=50,
            guidance_scale=1.0 if self.turbo else 7.0,
            duration_s=30.0,
        )


class AceStepFamily:
    """Plugin entry for :mod:`interp.registry`."""

    family = "ace-step"
    aliases = {"ace-step-1.5": "ACE-Step/acestep-v15-xl-turbo-diffusers"}
    pipeline_classes = ("AceStepPipeline",)

    def load(self, source: str, weights: bool, device: str, dtype: Any) -> AceStepAdapter:
        hub_id = self.aliases.get(source, source)
        if not weights:
            config = structure_config(self.aliases, source, "transformer")
            return AceStepAdapter(source, None, on_meta(AceStepTransformer1DModel, config))
        return AceStepAdapter(source, load_pipeline(AceStepPipeline, hub_id, device, dtype))

    def component_parameters(self, source: str) -> dict[str, int]:
        """Parameters of every component of the pipeline, counted without weights."""
        from models.sizes import pipeline_parameters

        return pipeline_parameters(self.aliases, source)


FAMILY = AceStepFamily()
