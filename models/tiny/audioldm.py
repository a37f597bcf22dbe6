"""A tiny AudioLDM (v1) pipeline: the real diffusers classes with small configs, offline.

AudioLDM conditions its ``UNet2DConditionModel`` on the CLAP text embedding through the
class embedding (``class_embed_type="simple_projection"``, concatenated to the time
embedding); the UNet's ``attn2`` layers are built with a context width equal to the
block width but are called without text, so they act as self-attention.
"""

import torch
from diffusers import AudioLDMPipeline, DDIMScheduler, UNet2DConditionModel  # pyright: ignore[reportPrivateImportUsage]  # diffusers exports lazily
from transformers import ClapTextConfig, ClapTextModelWithProjection

from models.tiny.audioldm2 import roberta_word_tokenizer, tiny_mel_vae, tiny_vocoder


def tiny_audioldm(seed: int = 0, heads: int = 2) -> AudioLDMPipeline:
    """A randomly initialised ``AudioLDMPipeline``.

    Args:
        seed: Seed of the weight initialisation.
        heads: Attention heads per module (``attention_head_dim`` in the UNet config).
    """
    torch.manual_seed(seed)
    clap_dim = 16
    tokenizer = roberta_word_tokenizer()
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(16, 32),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=(16, 32),  # pyright: ignore[reportArgumentType]  # diffusers annotates tuple[int] for any length
        class_embed_type="simple_projection",
        projection_class_embeddings_input_dim=clap_dim,
        class_embeddings_concat=True,
        attention_head_dim=heads,
        norm_num_groups=8,
    )
    text_encoder = ClapTextModelWithProjection(
        ClapTextConfig(
            bos_token_id=0,
            eos_token_id=2,
            pad_token_id=1,
            hidden_size=16,
            intermediate_size=24,
            num_attention_heads=2,
            num_hidden_layers=1,
            vocab_size=len(tokenizer),
            projection_dim=clap_dim,
            max_position_embeddings=40,
        )
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
    )
    pipe = AudioLDMPipeline(
        vae=tiny_mel_vae(),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,  # pyright: ignore[reportArgumentType]  # diffusers annotates an enum where it takes a scheduler
        vocoder=tiny_vocoder(mel_bins=16),
    )
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            component.eval()  # no dropout: generations must be deterministic
    pipe.set_progress_bar_config(disable=True)
    return pipe
