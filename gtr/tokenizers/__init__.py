"""Image tokenizers (VAEs). Namespaced as ``gtr.tokenizers`` so that Hugging Face's top-level ``tokenizers``
package (needed by ``transformers``) is never shadowed."""
from __future__ import annotations

import os

import torch

from gtr.errors import GtRError
from gtr.tokenizers.kl import (FMNIST16_VAE_CONFIG, FMNIST_VAE_CONFIG, KL16_CONFIG, KL16_TINY_CONFIG,
                              SCENES_VAE_CONFIG, SD3_VAE_CONFIG, SD3_VAE_TINY_CONFIG, LatentTokenizer, autoencoder,
                              ldm_to_diffusers, to_uint8)
from gtr.weights import (DEFAULT_ROOT, WEIGHTS, WeightFile, load_into, read_checkpoint, resolve, seeded,
                         select_state_dict)

# name -> diffusers AutoencoderKL config; its scaling_factor / shift_factor are the latent normalisation. A
# safetensors file's metadata ("scale", "shift") overrides them: the project's own tokenizers record the values
# measured after training.
TOKENIZERS = {"kl16": KL16_CONFIG, "kl16_tiny": KL16_TINY_CONFIG, "fmnist_vae": FMNIST_VAE_CONFIG,
              "fmnist16_vae": FMNIST16_VAE_CONFIG, "scenes_vae": SCENES_VAE_CONFIG,
              "scenes_t2i_vae": SCENES_VAE_CONFIG,
              "sd3_vae": SD3_VAE_CONFIG, "sd3_vae_tiny": SD3_VAE_TINY_CONFIG}


def default_normalisation(config: dict) -> tuple[float, float]:
    return float(config.get("scaling_factor", 1.0)), float(config.get("shift_factor") or 0.0)


def latent_normalisation(path, config: dict) -> tuple[float, float]:
    """(scale, shift) from a safetensors file's metadata, else the architecture's defaults."""
    scale, shift = default_normalisation(config)
    if str(path).endswith(".safetensors"):
        from safetensors import safe_open
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        return float(meta.get("scale", scale)), float(meta.get("shift", shift))
    return scale, shift


def _config(name: str):
    if name not in TOKENIZERS:
        raise GtRError(f"unknown tokenizer {name!r}: choose one of {', '.join(TOKENIZERS)}")
    return TOKENIZERS[name]


def build_tokenizer(name: str, seed: int | None = 0, device: str | torch.device = "cpu") -> LatentTokenizer:
    """A randomly initialised tokenizer of a named architecture (for tests and demos)."""
    config = _config(name)
    with seeded(seed):
        tokenizer = LatentTokenizer(autoencoder(config), *default_normalisation(config))
    return tokenizer.to(device).eval()


def load_tokenizer(name: str = "kl16", checkpoint: str | os.PathLike | None = None, *,
                   root: str | os.PathLike = DEFAULT_ROOT, download: bool = True,
                   device: str | torch.device = "cpu") -> LatentTokenizer:
    """A pretrained tokenizer from the official LDM-layout file (state dict under ``"model"``) or a diffusers-layout
    state dict."""
    config = _config(name)
    file = WEIGHTS.get(name) or WeightFile(f"{name} tokenizer", f"vae/{name}.ckpt", None, 0, "model.tokenizer.checkpoint")
    path = resolve(file, checkpoint, root, download)
    state_dict = select_state_dict(read_checkpoint(path), "model", path)
    if any(k.startswith(("encoder.down.", "decoder.up.")) for k in state_dict):
        state_dict = ldm_to_diffusers(state_dict)
    with torch.device("meta"):
        vae = autoencoder(config)
    load_into(vae, state_dict, path, f"the {name} tokenizer")
    scale, shift = latent_normalisation(path, config)
    return LatentTokenizer(vae, scale, shift).to(device).eval()


__all__ = ["LatentTokenizer", "TOKENIZERS", "build_tokenizer", "load_tokenizer", "ldm_to_diffusers", "to_uint8"]
