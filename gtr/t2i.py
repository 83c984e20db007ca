"""Text-to-image sampling (``scripts/sample_t2i.py``): prompts -> T5 features -> LightGen + any sampler -> VAE ->
PNGs and a grid with one captioned row per prompt."""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from omegaconf import OmegaConf
from tqdm.auto import tqdm

from gtr.errors import GtRError
from gtr.images import labelled_grid, save_png
from gtr.models import build_lightgen, load_lightgen
from gtr.pipeline import (batches_of_rank, cache_from_config, check_writable, load_image_tokenizer, render_batches,
                          resolve_device, run_job, sampler_from_config)
from gtr.sampling.compiled import check_mode
from gtr.sampling.executor import autocast
from gtr.sampling.schedule import check_plan
from gtr.text import T5TextEncoder, cached_features


def read_prompts(cfg) -> list[str]:
    if cfg.prompt_file:
        path = Path(cfg.prompt_file)
        if not path.is_file():
            raise GtRError(f"prompt_file {path} does not exist: give a text file with one prompt per line")
        prompts = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    else:
        prompts = [str(cfg.prompt)] if cfg.prompt else []
    if not prompts:
        raise GtRError("no prompt: set prompt=\"...\" or prompt_file=<one prompt per line>")
    return prompts


def load_text_model(cfg, device: torch.device):
    model_cfg = cfg.model
    if model_cfg.get("random_init") and not model_cfg.get("checkpoint"):
        model = build_lightgen(model_cfg.preset, seed=model_cfg.get("init_seed", 0), device=device,
                               **(model_cfg.get("hparams") or {}))
    else:
        model = load_lightgen(model_cfg.preset, model_cfg.get("checkpoint"), root=cfg.weights.root,
                              download=cfg.weights.download, ema=model_cfg.get("ema", False), device=device,
                              **(model_cfg.get("hparams") or {}))
    return model


class PromptEncoder:
    """T5 features [P, L, C] (float32, CPU) of prompts as the config asks: FLAN-T5 through transformers, loaded once
    at first use, with per-prompt features cached on disk under ``text_cache``; or, with
    ``text_encoder.random_init``, random features seeded by each prompt (pipeline tests without T5)."""

    def __init__(self, cfg, model, device: torch.device):
        enc = cfg.model.text_encoder
        self.shape = (model.config.max_length, model.config.caption_channels)
        self.cache = cfg.text_cache
        self.encoder = None if enc.get("random_init") else T5TextEncoder(
            enc.path, max_length=enc.max_length, dtype=enc.dtype, device=device)

    def __call__(self, prompts: list[str]) -> torch.Tensor:
        if self.encoder is None:
            seeds = [int(hashlib.sha256(p.encode()).hexdigest()[:8], 16) for p in prompts]
            return torch.stack([torch.randn(self.shape, generator=torch.Generator().manual_seed(s)) for s in seeds])
        return cached_features(self.encoder, prompts, self.cache).cpu()


def sample_t2i(cfg) -> Path:
    out = Path(cfg.output_dir)
    check_writable(out / "images")
    if cfg.images_per_prompt < 1 or cfg.batch_size < 1:
        raise GtRError("need images_per_prompt >= 1 and batch_size >= 1")
    prompts = read_prompts(cfg)
    device = resolve_device(cfg.device)
    autocast(device, cfg.precision)  # validates the precision name
    check_mode(cfg.mode, device)
    sampler, cache = sampler_from_config(cfg.sampler, cfg.diffusion), cache_from_config(cfg.get("cache"))
    model = load_text_model(cfg, device)
    check_plan(sampler.plan(model.seq_h, model.seq_w), model.seq_len, sampler.name)
    tokenizer = load_image_tokenizer(cfg.model.tokenizer, cfg.weights, device)
    features = PromptEncoder(cfg, model, device)(prompts)
    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))

    rows = torch.arange(len(prompts)).repeat_interleave(cfg.images_per_prompt)  # image k shows prompt rows[k]
    images = []
    with tqdm(total=len(rows), unit="img", desc=f"{cfg.model.name} / {sampler.name}", disable=not cfg.progress) as bar:
        for ids, batch in render_batches(model, sampler, tokenizer, batches_of_rank(len(rows), cfg.batch_size),
                                         lambda ids: features[rows[ids]], seed=cfg.seed, precision=cfg.precision,
                                         cache=cache, mode=cfg.mode):
            for image_id, image in zip(ids, batch):
                save_png(image, out / "images" / f"{image_id:05d}.png")
            images.append(batch)
            bar.update(len(ids))
    captions = [p if len(p) <= 40 else p[:37] + "..." for p in prompts]
    save_png(labelled_grid(torch.cat(images), captions), out / "grid.png")
    return out / "grid.png"


def main(cfg) -> None:
    """``scripts/sample_t2i.py``."""
    run_job(sample_t2i, cfg)
