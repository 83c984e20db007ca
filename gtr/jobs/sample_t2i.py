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
from gtr.jobs.common import Run, batches_of_rank, resolve_device, run_job
from gtr.jobs.output import check_writable, claim_output, clear_images, run_settings
from gtr.config.schema import check_count
from gtr.text import T5TextEncoder, WordTextEncoder, cached_features


def read_prompts(cfg) -> list[str]:
    if cfg.prompt_file:
        path = Path(cfg.prompt_file)
        if not path.is_file():
            raise GtRError(f"prompt_file {path} does not exist: give a text file with one prompt per line")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise GtRError(f"prompt_file {path} is not UTF-8 text ({err.reason} at byte {err.start}): save it as "
                           "UTF-8, one prompt per line") from None
        except OSError as err:
            raise GtRError(f"cannot read prompt_file {path} ({err.strerror}): give a readable text file") from None
        prompts = [line.strip() for line in text.splitlines() if line.strip()]
    else:
        prompts = [str(cfg.prompt)] if cfg.prompt else []
    if not prompts:
        raise GtRError("no prompt: set prompt=\"...\" or prompt_file=<one prompt per line>")
    return prompts


class PromptEncoder:
    """T5 features [P, L, C] (float32, CPU) of prompts as the config asks: FLAN-T5 through transformers (or, with
    ``text_encoder.kind=words``, the scenes testbed's WordT5), loaded once at first use, with per-prompt features
    cached on disk under ``text_cache``; or, with
    ``text_encoder.random_init``, random features seeded by each prompt (pipeline tests without T5)."""

    def __init__(self, cfg, model, device: torch.device):
        enc = cfg.model.text_encoder
        self.shape = (model.config.max_length, model.config.caption_channels)
        self.cache = cfg.text_cache
        if enc.get("random_init"):
            self.encoder = None
        elif enc.get("kind", "t5") == "words":  # the scenes testbed's encoder, shipped beside its model
            from gtr.weights import WEIGHTS, resolve
            self.encoder = WordTextEncoder(resolve(WEIGHTS["scenes_text"], enc.path, cfg.weights.root, download=False),
                                           device)
        else:
            self.encoder = T5TextEncoder(enc.path, max_length=enc.max_length, dtype=enc.dtype, device=device)

    def __call__(self, prompts: list[str]) -> torch.Tensor:
        if self.encoder is None:
            seeds = [int(hashlib.sha256(p.encode()).hexdigest()[:8], 16) for p in prompts]
            return torch.stack([torch.randn(self.shape, generator=torch.Generator().manual_seed(s)) for s in seeds])
        return cached_features(self.encoder, prompts, self.cache).cpu()


def sample_t2i(cfg) -> Path:
    out = Path(cfg.output_dir)
    check_writable(out / "images")
    check_count("images_per_prompt", cfg.images_per_prompt)
    prompts = read_prompts(cfg)
    run = Run.configure(cfg, resolve_device(cfg.device)).load("text", images=len(prompts) * cfg.images_per_prompt)
    prompts_sha256 = hashlib.sha256("\n".join(prompts).encode()).hexdigest()
    claim_output(out, run_settings(cfg, prompts_sha256=prompts_sha256, images_per_prompt=cfg.images_per_prompt),
                 rank=0, folders=[out / "images"])
    features = PromptEncoder(cfg, run.model, run.device)(prompts)
    clear_images(out / "images")
    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))

    rows = torch.arange(len(prompts)).repeat_interleave(cfg.images_per_prompt)  # image k shows prompt rows[k]
    images = []
    with tqdm(total=len(rows), unit="img", desc=run.description, disable=not cfg.progress) as bar:
        for ids, batch in run.render(batches_of_rank(len(rows), cfg.batch_size), lambda ids: features[rows[ids]]):
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
