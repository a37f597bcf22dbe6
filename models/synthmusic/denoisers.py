"""Builders for the SynthMusic networks and the glue that calls a denoiser.

* :func:`build_tokenizer`: a word-level ``PreTrainedTokenizerFast`` over the caption
  vocabulary (unknown words -> ``<unk>``), captions padded to :data:`MAX_TOKENS`.
* :func:`build_text_encoder`: a tiny ``T5EncoderModel`` built from a config.
* :func:`build_dit`: ``StableAudioDiTModel`` with GQA cross-attention; the spectrogram
  ``[batch, 80, 64]`` is packed into 32 tokens of 2 frames x 80 bins = 160 channels.
* :func:`build_unet`: ``UNet2DConditionModel`` on the spectrogram as an 8-channel 20 x 32
  image (4 bins x 2 frames per pixel), cross-attention transformer blocks at the two
  coarsest resolutions.

Both denoisers predict the clean spectrogram x0 (rectified flow, ``x_t = (1 - s) x0 + s
noise``). :func:`denoiser_inputs` builds the keyword arguments of one denoiser call and
:func:`output_to_x0` turns its output back into ``[batch, 80, 64]``.
"""

import torch
from diffusers import StableAudioDiTModel, UNet2DConditionModel  # pyright: ignore[reportPrivateImportUsage]  # diffusers exports lazily
from diffusers.models.embeddings import get_1d_rotary_pos_embed
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

from .captions import EOS, PAD, UNK, VOCABULARY
from .spectrogram import N_BINS, N_FRAMES

MAX_TOKENS = 32
"""Captions are padded (and truncated) to this many tokens, end-of-sequence included."""
FRAMES_PER_TOKEN = 2
"""Spectrogram frames per DiT token."""
BINS_PER_PIXEL = 4
"""Semitone bins per UNet pixel (space-to-depth along frequency)."""
TEXT_DIM = 64
"""Width of the T5 text encoder."""
KINDS = ("dit", "unet")
"""Denoiser kinds."""


def build_tokenizer() -> PreTrainedTokenizerFast:
    """Word-level tokenizer over :data:`VOCABULARY`; lower-cases, appends ``</s>``."""
    vocab = {w: i for i, w in enumerate(VOCABULARY)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(r"\w+|[^\w\s]"), behavior="isolated")]
    )
    tok.post_processor = processors.TemplateProcessing(single=f"$A {EOS}", special_tokens=[(EOS, vocab[EOS])])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD,
        unk_token=UNK,
        eos_token=EOS,
        model_max_length=MAX_TOKENS,
        padding_side="right",
    )


def build_text_encoder(seed: int = 0) -> T5EncoderModel:
    """A 2-layer, 64-wide T5 encoder (about 70k parameters), randomly initialised by ``seed``."""
    torch.manual_seed(seed)
    cfg = T5Config(
        vocab_size=len(VOCABULARY),
        d_model=TEXT_DIM,
        d_kv=16,
        d_ff=128,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=16,
        relative_attention_max_distance=32,
        dropout_rate=0.0,
        pad_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=0,  # pyright: ignore[reportCallIssue]  # transformers configs keep extra fields
        feed_forward_proj="gated-gelu",
    )
    return T5EncoderModel(cfg)


def build_dit(seed: int = 0) -> StableAudioDiTModel:
    """6 layers, width 128, 4 query heads x 32, 2 key/value heads (about 2.1M parameters)."""
    torch.manual_seed(seed)
    return StableAudioDiTModel(
        sample_size=N_FRAMES // FRAMES_PER_TOKEN,
        in_channels=N_BINS * FRAMES_PER_TOKEN,
        num_layers=6,
        attention_head_dim=32,
        num_attention_heads=4,
        num_key_value_attention_heads=2,
        out_channels=N_BINS * FRAMES_PER_TOKEN,
        cross_attention_dim=128,
        time_proj_dim=64,
        global_states_input_dim=128,
        cross_attention_input_dim=TEXT_DIM,
    )


def build_unet(seed: int = 0) -> UNet2DConditionModel:
    """A 3-level UNet on ``[batch, 8, 20, 32]`` (see :func:`pack_image`), about 2M parameters.

    Resolutions 20x32 -> 10x16 -> 5x8; cross-attention transformer blocks at 10x16, 5x8
    and in the mid block (like AudioLDM's ``attn2`` layers).
    """
    torch.manual_seed(seed)
    return UNet2DConditionModel(
        sample_size=(N_BINS // BINS_PER_PIXEL, N_FRAMES // FRAMES_PER_TOKEN),
        in_channels=BINS_PER_PIXEL * FRAMES_PER_TOKEN,
        out_channels=BINS_PER_PIXEL * FRAMES_PER_TOKEN,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(32, 64, 96),
        layers_per_block=1,
        norm_num_groups=16,
        cross_attention_dim=TEXT_DIM,
        attention_head_dim=(2, 4, 4),  # pyright: ignore[reportArgumentType]  # diffusers annotates tuple[int] for any length
    )


def build_denoiser(kind: str, seed: int = 0) -> StableAudioDiTModel | UNet2DConditionModel:
    """Builds ``"dit"`` or ``"unet"``."""
    if kind == "dit":
        return build_dit(seed)
    if kind == "unet":
        return build_unet(seed)
    raise ValueError(f"unknown denoiser kind {kind!r}; valid kinds: {list(KINDS)}")


def pack(spec: torch.Tensor) -> torch.Tensor:
    """``[batch, 80, 64]`` -> DiT layout ``[batch, 160, 32]`` (channel = frame_offset * 80 + bin)."""
    b = spec.shape[0]
    x = spec.reshape(b, N_BINS, N_FRAMES // FRAMES_PER_TOKEN, FRAMES_PER_TOKEN)
    return x.permute(0, 3, 1, 2).reshape(b, N_BINS * FRAMES_PER_TOKEN, N_FRAMES // FRAMES_PER_TOKEN)


def unpack(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`pack`."""
    b = x.shape[0]
    x = x.reshape(b, FRAMES_PER_TOKEN, N_BINS, N_FRAMES // FRAMES_PER_TOKEN)
    return x.permute(0, 2, 3, 1).reshape(b, N_BINS, N_FRAMES)


def pack_image(spec: torch.Tensor) -> torch.Tensor:
    """``[batch, 80, 64]`` -> UNet layout ``[batch, 8, 20, 32]``.

    Groups of 4 adjacent semitone bins and 2 adjacent frames become the 8 channels of one
    pixel (space-to-depth), so the UNet's full resolution is 20 x 32.
    """
    b = spec.shape[0]
    x = spec.reshape(
        b, N_BINS // BINS_PER_PIXEL, BINS_PER_PIXEL, N_FRAMES // FRAMES_PER_TOKEN, FRAMES_PER_TOKEN
    )
    return x.permute(0, 2, 4, 1, 3).reshape(
        b, BINS_PER_PIXEL * FRAMES_PER_TOKEN, N_BINS // BINS_PER_PIXEL, N_FRAMES // FRAMES_PER_TOKEN
    )


def unpack_image(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`pack_image`."""
    b = x.shape[0]
    x = x.reshape(b, BINS_PER_PIXEL, FRAMES_PER_TOKEN, N_BINS // BINS_PER_PIXEL, N_FRAMES // FRAMES_PER_TOKEN)
    return x.permute(0, 3, 1, 4, 2).reshape(b, N_BINS, N_FRAMES)


def denoiser_inputs(
    denoiser: torch.nn.Module,
    latents: torch.Tensor,
    sigma: torch.Tensor,
    text: torch.Tensor,
    text_mask: torch.Tensor,
) -> dict:
    """Keyword arguments for one call ``denoiser(**kwargs)``.

    Args:
        denoiser: A model from :func:`build_denoiser`.
        latents: Noisy spectrograms ``[batch, 80, 64]``.
        sigma: Noise level(s) in [0, 1], scalar or ``[batch]``.
        text: Text encoder states ``[batch, MAX_TOKENS, TEXT_DIM]``.
        text_mask: ``[batch, MAX_TOKENS]`` 1 for real tokens, 0 for padding.
    """
    b = latents.shape[0]
    sigma = torch.as_tensor(sigma, dtype=latents.dtype).reshape(-1).expand(b)
    if isinstance(denoiser, StableAudioDiTModel):
        head_dim = denoiser.config["attention_head_dim"]
        rotary = get_1d_rotary_pos_embed(
            head_dim // 2, denoiser.config["sample_size"] + 1, use_real=True, repeat_interleave_real=False
        )
        glob = torch.zeros(b, 1, denoiser.config["global_states_input_dim"], dtype=latents.dtype)
        return {
            "hidden_states": pack(latents),
            "timestep": sigma,
            "encoder_hidden_states": text,
            "global_hidden_states": glob,
            "rotary_embedding": rotary,
            "encoder_attention_mask": text_mask.bool(),
            "return_dict": False,
        }  # the output object is deprecated in diffusers
    if isinstance(denoiser, UNet2DConditionModel):
        return {
            "sample": pack_image(latents),
            "timestep": sigma * 1000.0,
            "encoder_hidden_states": text,
            "encoder_attention_mask": text_mask,
        }
    raise TypeError(
        f"unsupported denoiser {type(denoiser).__name__}; expected StableAudioDiTModel "
        "or UNet2DConditionModel"
    )


def output_to_x0(denoiser: torch.nn.Module, output) -> torch.Tensor:
    """The denoiser's output (an output object or tensor) -> x0 estimate ``[batch, 80, 64]``."""
    sample = (
        output.sample if hasattr(output, "sample") else output[0] if isinstance(output, tuple) else output
    )
    if isinstance(denoiser, StableAudioDiTModel):
        return unpack(sample)
    return unpack_image(sample)
