"""A tiny AudioLDM2 pipeline: the real diffusers classes with small configs, offline.

Every component the pipeline needs is built from constructor arguments: CLAP (text and
audio towers), FLAN-T5 encoder, GPT-2 language model, projection model, the two-stream
``AudioLDM2UNet2DConditionModel``, a mel VAE and a HiFi-GAN vocoder. Tokenizers are
whole-word vocabularies over :data:`models.tiny.text.WORDS` (RoBERTa BPE for CLAP,
T5 unigram for FLAN-T5) that survive ``save_pretrained``; nothing is downloaded.
"""

import torch
from diffusers import (
    AudioLDM2Pipeline,  # pyright: ignore[reportPrivateImportUsage]  # diffusers exports lazily
    AudioLDM2ProjectionModel,  # pyright: ignore[reportPrivateImportUsage]  # diffusers exports lazily
    AudioLDM2UNet2DConditionModel,  # pyright: ignore[reportPrivateImportUsage]  # diffusers exports lazily
    AutoencoderKL,  # pyright: ignore[reportPrivateImportUsage]  # diffusers exports lazily
    DDIMScheduler,  # pyright: ignore[reportPrivateImportUsage]  # diffusers exports lazily
)
from transformers import (
    ClapAudioConfig,
    ClapConfig,
    ClapFeatureExtractor,
    ClapModel,
    ClapTextConfig,
    GPT2Config,
    GPT2LMHeadModel,
    RobertaTokenizerFast,
    SpeechT5HifiGan,
    SpeechT5HifiGanConfig,
    T5Config,
    T5EncoderModel,
    T5TokenizerFast,  # pyright: ignore[reportAttributeAccessIssue]  # transformers 5 keeps it as a lazy alias
)

from models.tiny.text import WORDS


def roberta_word_tokenizer(max_length: int = 16) -> RobertaTokenizerFast:
    """A RoBERTa (byte-level BPE) tokenizer whose merges spell out the words of :data:`WORDS`.

    The AudioLDM pipelines branch on ``isinstance(tokenizer, RobertaTokenizerFast)``.
    Each word is built letter by letter and then joined to the ``Ġ`` space marker, so a
    known word is one token; the vocabulary and merges survive ``save_pretrained``.
    """
    space = "\u0120"
    vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", "<mask>", space])}
    merges: list[tuple[str, str]] = []

    def merge(left: str, right: str) -> None:
        if (left, right) not in merges:
            merges.append((left, right))
        vocab.setdefault(left + right, len(vocab))

    for word in WORDS:
        for i, char in enumerate(word):
            vocab.setdefault(char, len(vocab))
            if i:
                merge(word[:i], char)
        merge(space, word)
    return RobertaTokenizerFast(vocab=vocab, merges=merges, model_max_length=max_length, unk_token="<unk>")  # pyright: ignore[reportArgumentType]  # it takes (left, right) pairs


def t5_word_tokenizer(max_length: int = 16) -> T5TokenizerFast:
    """A T5 (unigram) tokenizer whose pieces are the whole words of :data:`WORDS`.

    Unlike a word-level model wrapped in the T5 class, it survives ``save_pretrained``
    and ``from_pretrained``, so tiny pipelines can be loaded from a local directory.
    """
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), *(("\u2581" + w, -1.0) for w in WORDS)]
    return T5TokenizerFast(vocab=vocab, extra_ids=0, model_max_length=max_length)


def tiny_clap(vocab_size: int, text_dim: int = 16) -> ClapModel:
    """A tiny CLAP model (the pipelines use its text tower; scoring also its audio tower)."""
    text = ClapTextConfig(
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=1,
        hidden_size=16,
        intermediate_size=24,
        num_attention_heads=2,
        num_hidden_layers=1,
        vocab_size=vocab_size,
        projection_dim=text_dim,
        max_position_embeddings=40,
    )
    audio = ClapAudioConfig(
        spec_size=64,
        window_size=4,
        num_mel_bins=64,
        intermediate_size=24,  # pyright: ignore[reportCallIssue]  # transformers configs keep extra fields
        depths=[1, 1],
        num_attention_heads=[2, 2],
        num_hidden_layers=2,
        hidden_size=32,
        projection_dim=text_dim,
        patch_size=2,
        patch_stride=2,
        patch_embeds_hidden_size=16,
        patch_embed_input_channels=4,
    )
    return ClapModel(ClapConfig(text_config=text, audio_config=audio, projection_dim=text_dim))


def tiny_vocoder(mel_bins: int) -> SpeechT5HifiGan:
    """A tiny HiFi-GAN vocoder: 4x upsampling from ``mel_bins`` channels."""
    return SpeechT5HifiGan(
        SpeechT5HifiGanConfig(
            model_in_dim=mel_bins,
            sampling_rate=16000,
            upsample_initial_channel=8,
            upsample_rates=[2, 2],
            upsample_kernel_sizes=[4, 4],
            resblock_kernel_sizes=[3],
            resblock_dilation_sizes=[[1, 3]],
            normalize_before=False,
        )
    )


def tiny_mel_vae(latent_channels: int = 4) -> AutoencoderKL:
    """A tiny mel-spectrogram VAE (1 channel in and out, 2x downsampling)."""
    return AutoencoderKL(
        block_out_channels=[8, 8],  # pyright: ignore[reportArgumentType]  # diffusers annotates tuple[int] for any length
        in_channels=1,
        out_channels=1,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],  # pyright: ignore[reportArgumentType]  # diffusers annotates tuple[int] for any length
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],  # pyright: ignore[reportArgumentType]  # diffusers annotates tuple[int] for any length
        latent_channels=latent_channels,
        norm_num_groups=4,
        layers_per_block=1,
    )


def tiny_audioldm2(
    seed: int = 0,
    heads: int = 2,
    transformer_layers_per_block: int = 1,
    gpt2_dim: int = 16,
    t5_dim: int = 24,
    large_layout: bool = False,
) -> AudioLDM2Pipeline:
    """A randomly initialised ``AudioLDM2Pipeline`` with two cross-attention streams.

    Args:
        seed: Seed of the weight initialisation.
        heads: Attention heads per module (AudioLDM2 calls this ``attention_head_dim``).
        transformer_layers_per_block: Transformer blocks per ``Transformer2DModel``.
        gpt2_dim: Width of the GPT-2 stream (``encoder_hidden_states``).
        t5_dim: Width of the FLAN-T5 stream (``encoder_hidden_states_1``).
        large_layout: Use audioldm2-large's four transformers per layer,
            ``[None, gpt2, t5, None]``, instead of ``[None, gpt2, t5]``.
    """
    torch.manual_seed(seed)
    streams = [None, gpt2_dim, t5_dim] + ([None] if large_layout else [])
    unet = AudioLDM2UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(16, 32),  # pyright: ignore[reportArgumentType]  # diffusers annotates tuple[int] for any length
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),  # pyright: ignore[reportArgumentType]  # diffusers annotates tuple[int] for any length
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),  # pyright: ignore[reportArgumentType]  # diffusers annotates tuple[int] for any length
        # like the real checkpoints: a text-free transformer, then GPT-2, then T5
        cross_attention_dim=(streams, streams),  # pyright: ignore[reportArgumentType]  # diffusers annotates tuple[int] for any length
        attention_head_dim=heads,
        norm_num_groups=8,
        transformer_layers_per_block=transformer_layers_per_block,
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
    )
    clap_dim = 16
    tokenizer = roberta_word_tokenizer()
    text_encoder = tiny_clap(len(tokenizer), clap_dim)
    text_encoder_2 = T5EncoderModel(
        T5Config(vocab_size=len(WORDS) + 3, d_model=t5_dim, d_ff=32, d_kv=8, num_heads=2, num_layers=1)
    )
    language_model = GPT2LMHeadModel(
        GPT2Config(
            n_embd=gpt2_dim, n_head=2, n_layer=1, vocab_size=8, n_positions=64, bos_token_id=0, eos_token_id=0
        )
    )
    language_model.config.max_new_tokens = 4
    projection = AudioLDM2ProjectionModel(
        text_encoder_dim=clap_dim, text_encoder_1_dim=t5_dim, langauge_model_dim=gpt2_dim
    )
    pipe = AudioLDM2Pipeline(
        vae=tiny_mel_vae(),
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        projection_model=projection,
        language_model=language_model,
        tokenizer=tokenizer,
        tokenizer_2=t5_word_tokenizer(),
        feature_extractor=ClapFeatureExtractor(),
        unet=unet,
        scheduler=scheduler,  # pyright: ignore[reportArgumentType]  # diffusers annotates an enum where it takes a scheduler
        vocoder=tiny_vocoder(mel_bins=16),
    )
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            component.eval()  # no dropout: generations must be deterministic
    pipe.set_progress_bar_config(disable=True)
    return pipe
