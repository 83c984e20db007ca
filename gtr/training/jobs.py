"""The training jobs of ``scripts/train.py``: the tokenizers, MAR on their latents, LightGen with its text encoder
(the text-to-image scenes), and the classifiers behind the domain metrics. Each trains with :class:`~gtr.training.loop.Trainer` (resumable) and exports
the weights to ship as a safetensors file with its settings in the metadata."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import torch
from omegaconf import OmegaConf
from safetensors.torch import save_file

from gtr.data import FashionMNIST, resize
from gtr.data.scenes import Scenes
from gtr.errors import GtRError
from gtr.files import atomic_path
from gtr.models.classifier import FashionClassifier
from gtr.data.scene_prompts import vocabulary
from gtr.models import MAR, mar_config
from gtr.models.lightgen import LightGen, initialize_official
from gtr.models.registry import lightgen_config
from gtr.text import WordT5
from gtr.tokenizers import TOKENIZERS, LatentTokenizer, load_tokenizer
from gtr.tokenizers.kl import autoencoder
from gtr.training.loop import EpochSampler, StepRandom, Trainer
from gtr.training.objectives import classifier_loss, mar_loss, vae_loss


def export(weights: dict[str, torch.Tensor], path: str | os.PathLike, metadata: Mapping[str, Any]) -> Path:
    """Write shipped weights atomically as safetensors (metadata values as strings)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file(weights, str(tmp), metadata={k: str(v) for k, v in metadata.items()})
        os.chmod(tmp, 0o644)
    return path


DATASETS = ("fashion_mnist", "scenes", "scene_prompts")


def _data(cfg, split: str = "train", limit: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """A split of the job's dataset (``train.dataset``), as float images in [-1, 1] and labels; the training split
    cut to ``train.limit`` images when set (tests)."""
    dataset = cfg.train.get("dataset", "fashion_mnist")
    if dataset not in DATASETS:
        raise GtRError(f"unknown dataset {dataset!r} (train.dataset): choose one of {', '.join(DATASETS)}")
    if dataset == "scenes":  # generated: a limit generates only the images it keeps
        return Scenes(split, size=cfg.train.get("limit") if limit else None).tensors()
    if dataset == "scene_prompts":  # (images, prompts): captioned pairs for text-to-image training
        from gtr.data.scene_prompts import SPLIT_SEEDS, TRAIN_SIZE, generate_pairs
        from gtr.data.scenes import to_model_range
        size = cfg.train.get("limit") if limit and cfg.train.get("limit") else TRAIN_SIZE
        images, prompts = generate_pairs(size, SPLIT_SEEDS[split])
        return to_model_range(torch.from_numpy(images)), prompts
    images, labels = FashionMNIST(split, cfg.data.root, cfg.data.download).tensors()
    if limit and cfg.train.get("limit"):
        images, labels = images[: cfg.train.limit], labels[: cfg.train.limit]
    if cfg.train.get("image_size"):  # the 16x16-token testbed trains on 32x32 resizes
        images = resize(images, cfg.train.image_size)
    return images, labels


# Options that change no result: a resume may change them.
FREE_OPTIONS = ("checkpoint_every", "log_every")


def resume_settings(cfg) -> dict[str, Any]:
    """What a training run's result depends on: the job's options (``train``, less :data:`FREE_OPTIONS`) and the
    seed; a resume under other settings is refused."""
    options = {f"train.{k}": v for k, v in OmegaConf.to_container(cfg.train, resolve=True).items()
               if k not in FREE_OPTIONS}
    return {**options, "seed": cfg.seed}


def _trainer(model: torch.nn.Module, cfg, wandb_run) -> Trainer:
    t = cfg.train
    trainer = Trainer(model, cfg.out_dir, total_steps=t.steps, lr=t.lr, warmup_steps=t.warmup_steps,
                      weight_decay=t.weight_decay, betas=tuple(t.betas), grad_clip=t.grad_clip,
                      ema_decay=t.ema_decay, seed=cfg.seed, checkpoint_every=t.checkpoint_every,
                      log_every=t.log_every, progress=cfg.progress, wandb_run=wandb_run, description=t.name,
                      settings=resume_settings(cfg))
    if cfg.resume and trainer.resume():
        print(f"resumed {t.name} from {trainer.checkpoint_path} at step {trainer.step}/{t.steps}")
    return trainer


def _metadata(cfg, trainer: Trainer, **extra) -> dict[str, Any]:
    return {"job": cfg.train.name, "steps": trainer.step, "seed": cfg.seed,
            "train_config": json.dumps(OmegaConf.to_container(cfg.train, resolve=True)),
            "final_loss": trainer.history[-1]["loss"] if trainer.history else "nan", **extra}


def train_tokenizer(cfg, wandb_run=None) -> Path:
    images, _ = _data(cfg)
    config = TOKENIZERS[cfg.train.architecture]
    torch.manual_seed(cfg.seed)
    vae = autoencoder(config)
    if cfg.train.get("init"):  # fine-tune: a shipped tokenizer by name, or a file
        init = cfg.train.init
        name, path = (init, None) if init in TOKENIZERS else (cfg.train.architecture, init)
        start = load_tokenizer(name, path, root=cfg.weights.root, download=cfg.weights.download)
        if start.vae.state_dict().keys() != vae.state_dict().keys():
            raise GtRError(f"train.init={init} is not a {cfg.train.architecture} tokenizer: give one of that architecture")
        vae.load_state_dict(start.vae.state_dict())
    trainer = _trainer(vae, cfg, wandb_run)
    batches = EpochSampler(len(images), cfg.train.batch_size, cfg.seed)

    def step(i: int, rnd: StepRandom):
        return vae_loss(vae, images[batches.batch(i)], rnd.torch, cfg.train.kl_weight)

    trainer.run(step)
    # Normalise latents to zero mean and unit std over posterior samples of (up to) 10k training images.
    ema = trainer.ema if trainer.ema is not None else vae
    with torch.no_grad():
        gen = torch.Generator().manual_seed(cfg.seed)
        lat = torch.cat([ema.encode(x).latent_dist.sample(generator=gen) for x in images[:10000].split(500)])
    shift, scale = lat.mean().item(), 1.0 / lat.std().item()
    return export(trainer.final_weights(), cfg.export or Path(cfg.out_dir) / f"{cfg.train.name}.safetensors",
                  _metadata(cfg, trainer, scale=f"{scale:.6f}", shift=f"{shift:.6f}",
                            architecture=cfg.train.architecture, image_size=images.shape[-1]))


@torch.no_grad()
def encode_moments(tokenizer: LatentTokenizer, images: torch.Tensor, batch: int = 500
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and std of every image, normalised by the tokenizer's scale/shift (MAR's cached latents)."""
    means, stds = [], []
    for x in images.split(batch):
        dist = tokenizer.vae.encode(x).latent_dist
        means.append((dist.mean - tokenizer.shift) * tokenizer.scale)
        stds.append(dist.std * tokenizer.scale)
    return torch.cat(means), torch.cat(stds)


def job_latents(cfg, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The posterior moments of a MAR-family job's images under its tokenizer (``train.tokenizer``)."""
    t = cfg.train
    tokenizer = load_tokenizer(t.tokenizer.name, t.tokenizer.checkpoint, root=cfg.weights.root,
                               download=cfg.weights.download)
    print(f"encoding {len(images)} images with the {t.tokenizer.name} tokenizer ...")
    return encode_moments(tokenizer, images)


def check_grid(latents: torch.Tensor, model, preset: str) -> None:
    """Latents [N, C, H, W] must fill the model's token grid."""
    c = model.config
    if latents.shape[1:] != (c.vae_embed_dim, model.seq_h * c.patch_size, model.seq_w * c.patch_size):
        raise GtRError(f"tokenizer latents {tuple(latents.shape[1:])} do not fit {preset}'s token grid")


def train_mar(cfg, wandb_run=None) -> Path:
    t = cfg.train
    images, labels = _data(cfg)
    mean, std = job_latents(cfg, images)
    torch.manual_seed(cfg.seed)
    model = MAR(mar_config(t.preset, **(t.get("hparams") or {})))
    check_grid(mean, model, t.preset)
    trainer = _trainer(model, cfg, wandb_run)
    batches = EpochSampler(len(images), t.batch_size, cfg.seed)

    def step(i: int, rnd: StepRandom):
        idx = batches.batch(i)
        noise = torch.randn(mean[idx].shape, generator=rnd.torch)
        tokens = model.patchify(mean[idx] + std[idx] * noise)  # a posterior sample, as MAR trains on
        loss = mar_loss(model, tokens, labels[idx], rnd.numpy, rnd.torch, t.mask_ratio_min, t.label_drop_prob,
                        t.diffusion_batch_mul)
        return loss, {}

    trainer.run(step)
    return export(trainer.final_weights(), cfg.export or Path(cfg.out_dir) / f"{t.name}.safetensors",
                  _metadata(cfg, trainer, preset=t.preset, weights="ema" if t.ema_decay else "model"))


class TextConditioned(torch.nn.Module):
    """LightGen and its text encoder as one network to train (one optimizer, one EMA, one checkpoint): the
    condition of a batch is its prompts' token ids, which ``condition`` runs through the encoder; everything else is
    LightGen's, so :func:`mar_loss` trains it as it trains MAR."""

    def __init__(self, model: LightGen, text: WordT5):
        super().__init__()
        self.model, self.text = model, text

    @property
    def diffloss(self):
        return self.model.diffloss

    def condition(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.condition(self.text(ids))

    def null_condition(self, batch_size: int) -> torch.Tensor:
        return self.model.null_condition(batch_size)

    def forward(self, tokens: torch.Tensor, known: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.model(tokens, known, cond)


def train_lightgen(cfg, wandb_run=None) -> Path:
    """LightGen (``train.preset``'s architecture) and a WordT5 text encoder, trained together on captioned scenes
    with MAR's objective; exports the model and, beside it, ``<train.text.name>.safetensors``."""
    t = cfg.train
    if t.get("dataset") != "scene_prompts":
        raise GtRError(f"the lightgen job trains on captioned scenes: set train.dataset=scene_prompts "
                       f"(got {t.get('dataset')!r})")
    images, prompts = _data(cfg)
    mean, std = job_latents(cfg, images)
    torch.manual_seed(cfg.seed)
    model = initialize_official(LightGen(lightgen_config(t.preset, **(t.get("hparams") or {}))))
    text = WordT5(vocabulary(), d_model=t.text.d_model, num_layers=t.text.num_layers, num_heads=t.text.num_heads,
                  d_ff=t.text.d_ff, max_length=model.config.max_length)
    if text.hidden_size != model.config.caption_channels:
        raise GtRError(f"train.text.d_model={t.text.d_model} but {t.preset} reads {model.config.caption_channels}-d "
                       "text features: make them equal")
    check_grid(mean, model, t.preset)
    ids = text.ids(prompts)
    joint = TextConditioned(model, text)
    trainer = _trainer(joint, cfg, wandb_run)
    batches = EpochSampler(len(images), t.batch_size, cfg.seed)

    def step(i: int, rnd: StepRandom):
        idx = batches.batch(i)
        noise = torch.randn(mean[idx].shape, generator=rnd.torch)
        tokens = model.patchify(mean[idx] + std[idx] * noise)
        loss = mar_loss(joint, tokens, ids[idx], rnd.numpy, rnd.torch, t.mask_ratio_min, t.label_drop_prob,
                        t.diffusion_batch_mul)
        return loss, {}

    trainer.run(step)
    weights = trainer.final_weights()
    path = Path(cfg.export) if cfg.export else Path(cfg.out_dir) / f"{t.name}.safetensors"
    # clone: T5 ties its input embedding to encoder.embed_tokens, and safetensors stores no shared tensors
    export({k[len("text."):]: v.clone() for k, v in weights.items() if k.startswith("text.")},
           path.with_name(f"{t.text.name}.safetensors"), {**_metadata(cfg, trainer), **text.metadata()})
    return export({k[len("model."):]: v for k, v in weights.items() if k.startswith("model.")}, path,
                  _metadata(cfg, trainer, preset=t.preset, weights="ema" if t.ema_decay else "model"))


# The classifier's input and classes per dataset (its architecture is FashionClassifier's either way).
CLASSIFIER_SHAPES = {"fashion_mnist": dict(num_classes=10, in_channels=1, image_size=28),
                     "scenes": dict(num_classes=12, in_channels=3, image_size=32)}


def train_classifier(cfg, wandb_run=None) -> Path:
    images, labels = _data(cfg)
    shape = CLASSIFIER_SHAPES[cfg.train.get("dataset", "fashion_mnist")]
    torch.manual_seed(cfg.seed)
    net = FashionClassifier(**shape)
    trainer = _trainer(net, cfg, wandb_run)
    batches = EpochSampler(len(images), cfg.train.batch_size, cfg.seed)

    def step(i: int, rnd: StepRandom):
        x = images[batches.batch(i)]
        if cfg.train.augment:  # random shifts of up to 2 pixels, and horizontal flips
            shifts = torch.randint(-2, 3, (2,), generator=rnd.torch).tolist()
            x = torch.roll(x, shifts=shifts, dims=(2, 3))
            if torch.rand(1, generator=rnd.torch).item() < 0.5:
                x = x.flip(3)
        return classifier_loss(net, x, labels[batches.batch(i)])

    trainer.run(step)
    test_images, test_labels = _data(cfg, "test", limit=False)
    final = FashionClassifier(**shape)
    final.load_state_dict(trainer.final_weights())
    final.eval()
    with torch.no_grad():
        accuracy = torch.cat([final(x).argmax(1) for x in test_images.split(1000)]).eq(test_labels).float().mean()
    print(f"test accuracy {accuracy.item():.4f}")
    return export(trainer.final_weights(), cfg.export or Path(cfg.out_dir) / f"{cfg.train.name}.safetensors",
                  _metadata(cfg, trainer, test_accuracy=f"{accuracy.item():.4f}", **shape))


JOBS = {"tokenizer": train_tokenizer, "mar": train_mar, "lightgen": train_lightgen, "classifier": train_classifier}
