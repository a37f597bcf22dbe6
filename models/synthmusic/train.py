"""Trains a SynthMusic text-to-audio model (DiT or UNet) for a fixed number of steps.

Rectified flow with x0-prediction: ``x_t = (1 - s) x0 + s noise`` with ``s`` logit-normal,
loss ``|denoiser(x_t, s, text) - x0|^2``. The text encoder is trained jointly; 10% of
captions are replaced by "" (the unconditional prompt of classifier-free guidance).
Captions are re-drawn every step from the style and canonical templates. EMA weights are
saved as a :class:`~models.synthmusic.pipeline.SynthMusicPipeline` directory together with
``training.json`` and ``loss.png``. Deterministic for a given seed on CPU.
"""

import copy
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from . import data
from .captions import caption
from .defaults import DEFAULTS
from .denoisers import (
    MAX_TOKENS,
    build_denoiser,
    build_text_encoder,
    build_tokenizer,
    denoiser_inputs,
    output_to_x0,
)
from .music import DATA_VERSION
from .pipeline import SynthMusicPipeline, make_scheduler


def _plot_loss(losses: list[float], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(losses, alpha=0.3, lw=0.6, label="loss")
    k = max(1, len(losses) // 50)
    smooth = np.convolve(losses, np.ones(k) / k, mode="valid")
    ax.plot(np.arange(len(smooth)) + k - 1, smooth, lw=1.5, label=f"mean of {k}")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("x0 MSE")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def train(
    kind: str,
    steps: int | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    batch: int = 64,
    n_train: int = 48000,
    ema_decay: float = 0.999,
    cfg_dropout: float = 0.1,
    command: str | None = None,
    threads: int = 1,
    init_from: str | Path | None = None,
    lr: float | None = None,
) -> Path:
    """Trains ``kind`` ("dit" or "unet") and saves the pipeline; returns the output directory.

    Args:
        kind: Denoiser kind.
        steps: Optimizer steps (default :data:`DEFAULTS`).
        seed: Seeds initialisation, batch order, captions, noise and noise levels.
        out: Output directory (default ``runs/synthmusic/{kind}``).
        batch: Clips per step.
        n_train: Size of the cached train set the batches are drawn from.
        ema_decay: Decay of the exponential moving average of the weights that is saved.
        cfg_dropout: Probability of replacing a caption by "".
        command: The command line to record in ``training.json``.
        init_from: A saved pipeline directory to continue from (its denoiser and text
            encoder weights; optimizer state starts fresh), or None to start from scratch.
        lr: Peak learning rate (default :data:`DEFAULTS`).
        threads: torch CPU threads. One thread is the default: on a shared 2-core machine it
            measured 3-5x faster per step than two (threads stall each other under load).
    """
    if kind not in DEFAULTS:
        raise ValueError(f"unknown model kind {kind!r}; valid kinds: {list(DEFAULTS)}")
    steps = steps or DEFAULTS[kind]["steps"]
    lr = lr or DEFAULTS[kind]["lr"]
    out = Path(out or f"runs/synthmusic/{kind}")
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    ds = data.load("train", n_train, workers=2)
    tokenizer = build_tokenizer()
    denoiser = build_denoiser(kind, seed)
    text_encoder = build_text_encoder(seed + 1)
    previous = None
    if init_from is not None:
        start = SynthMusicPipeline.from_pretrained(str(init_from), local_files_only=True)
        if type(start.denoiser) is not type(denoiser):
            raise ValueError(f"--init-from {init_from} holds a {type(start.denoiser).__name__}, not a {kind}")
        denoiser.load_state_dict(start.denoiser.state_dict())
        text_encoder.load_state_dict(start.text_encoder.state_dict())
        info_path = Path(init_from) / "training.json"
        previous = json.loads(info_path.read_text()) if info_path.exists() else {"init_from": str(init_from)}
    params = list(denoiser.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01, betas=(0.9, 0.99))
    warmup = max(1, min(300, steps // 10))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: min(1.0, (s + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * min(s / steps, 1.0)))),
    )
    ema_den, ema_te = copy.deepcopy(denoiser).eval(), copy.deepcopy(text_encoder).eval()
    for p in list(ema_den.parameters()) + list(ema_te.parameters()):
        p.requires_grad_(False)
    g = torch.Generator().manual_seed(seed)
    order = torch.cat([torch.randperm(len(ds), generator=g) for _ in range(steps * batch // len(ds) + 1)])
    losses: list[float] = []
    t0 = time.time()
    bar = tqdm(range(steps), desc=f"train {kind}", mininterval=5.0)
    for step in bar:
        idx = order[step * batch : (step + 1) * batch]
        rng = np.random.default_rng([seed, step])
        caps = [caption(ds.values(int(i)), rng) if rng.random() >= cfg_dropout else "" for i in idx]
        tokens = tokenizer(
            caps, padding="max_length", max_length=MAX_TOKENS, truncation=True, return_tensors="pt"
        )
        x0 = ds.specs[idx]
        sigma = torch.sigmoid(torch.randn(batch, generator=g) * 1.0)
        noise = torch.randn(x0.shape, generator=g)
        xt = (1 - sigma[:, None, None]) * x0 + sigma[:, None, None] * noise
        denoiser.train()
        text_encoder.train()
        text = text_encoder(
            input_ids=tokens.input_ids, attention_mask=tokens.attention_mask
        ).last_hidden_state
        pred = output_to_x0(
            denoiser, denoiser(**denoiser_inputs(denoiser, xt, sigma, text, tokens.attention_mask))
        )
        loss = torch.mean((pred - x0) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        with torch.no_grad():
            d = min(ema_decay, (1 + step) / (10 + step))
            for src, dst in ((denoiser, ema_den), (text_encoder, ema_te)):
                for ps, pd in zip(src.parameters(), dst.parameters()):
                    pd.mul_(d).add_(ps.detach(), alpha=1 - d)
        losses.append(float(loss))
        if step % 50 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
    seconds = time.time() - t0
    pipe = SynthMusicPipeline(
        denoiser=ema_den, text_encoder=ema_te, tokenizer=tokenizer, scheduler=make_scheduler()
    )
    pipe.save_pretrained(out)
    _plot_loss(losses, out / "loss.png", f"SynthMusic {kind}: {steps} steps, seed {seed}")
    info = {
        "command": command
        or f"python -m models.synthmusic.cli synthmusic train {kind} --steps {steps} --seed {seed}",
        "kind": kind,
        "seed": seed,
        "steps": steps,
        "batch": batch,
        "lr": lr,
        "ema_decay": ema_decay,
        "cfg_dropout": cfg_dropout,
        "data_version": DATA_VERSION,
        "train_clips": n_train,
        "objective": "rectified flow, x0-prediction, logit-normal sigma",
        "denoiser_parameters": sum(p.numel() for p in denoiser.parameters()),
        "text_encoder_parameters": sum(p.numel() for p in text_encoder.parameters()),
        "final_loss_mean_last_100": float(np.mean(losses[-100:])),
        "train_seconds": round(seconds),
        "continued_from": previous,
        "machine": f"{platform.machine()}, torch {torch.__version__}, {threads} thread(s)",
    }
    (out / "training.json").write_text(json.dumps(info, indent=2) + "\n")
    np.save(out / "losses.npy", np.asarray(losses, dtype=np.float32))
    return out
