"""Continuous image tokenizers: KL-regularised autoencoders (LDM's AutoencoderKL) through ``diffusers``.

MAR's KL-16 is LDM's architecture with ``ch_mult=(1,1,2,2,4)``, 16 latent channels, attention at 16x16 in the
encoder and none in the decoder's up path. diffusers' ``AutoencoderKL`` expresses exactly that (4 plain down blocks,
one ``AttnDownEncoderBlock2D``, 5 ``UpDecoderBlock2D``; same parameter count), so the official ``kl16.ckpt`` (LDM
key layout, state dict under ``"model"``) is loaded by renaming its keys.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

import torch
import torch.nn as nn

if TYPE_CHECKING:
    from diffusers import AutoencoderKL


def autoencoder(config: dict) -> "AutoencoderKL":
    """diffusers' AutoencoderKL of ``config``, imported on first use (diffusers takes seconds to import, and
    ``import gtr`` and the command line's help and config errors should not wait for it)."""
    from diffusers import AutoencoderKL
    return AutoencoderKL(**config)


KL16_SCALE = 0.2325  # MAR trains on posterior samples * 0.2325 ("normalize the std of latent to be 1")

KL16_CONFIG = dict(
    down_block_types=("DownEncoderBlock2D",) * 4 + ("AttnDownEncoderBlock2D",),
    up_block_types=("UpDecoderBlock2D",) * 5,
    block_out_channels=(128, 128, 256, 256, 512),
    layers_per_block=2,
    latent_channels=16,
    norm_num_groups=32,
    sample_size=256,
    scaling_factor=KL16_SCALE,
)

# The same architecture at a fraction of the width, for tests and the CPU demo.
KL16_TINY_CONFIG = dict(KL16_CONFIG, block_out_channels=(16, 16, 32, 32, 32), norm_num_groups=8)

# LightGen's image tokenizer: the SD3-family VAE (16 latent channels, x8, no quant convs), loaded from
# stabilityai/stable-diffusion-3.5-large/vae (gated). Latents are (posterior - 0.0609) * 1.5305 (its config).
SD3_VAE_SCALE, SD3_VAE_SHIFT = 1.5305, 0.0609
SD3_VAE_CONFIG = dict(
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(128, 256, 512, 512),
    layers_per_block=2,
    latent_channels=16,
    norm_num_groups=32,
    sample_size=1024,
    scaling_factor=SD3_VAE_SCALE,
    shift_factor=SD3_VAE_SHIFT,
    use_quant_conv=False,
    use_post_quant_conv=False,
)
SD3_VAE_TINY_CONFIG = dict(SD3_VAE_CONFIG, block_out_channels=(16, 16, 32, 32), norm_num_groups=8)

# The project's Fashion-MNIST tokenizer: grey-scale 28x28 -> 4 x 7 x 7 (stride 4), trained by scripts/train.py.
# Its latent scale and shift are measured after training and stored in the shipped file's metadata.
FMNIST_VAE_CONFIG = dict(
    in_channels=1,
    out_channels=1,
    down_block_types=("DownEncoderBlock2D",) * 3,
    up_block_types=("UpDecoderBlock2D",) * 3,
    block_out_channels=(16, 32, 64),
    layers_per_block=1,
    latent_channels=4,
    norm_num_groups=8,
    sample_size=28,
    mid_block_add_attention=False,
)

# The 16x16-token testbed's tokenizer: Fashion-MNIST resized to 32x32 (bilinear, so the garment fills the frame as
# in the 28x28 original) -> 4 x 16 x 16 (stride 2): the token grid of ImageNet MAR, on which GtR's stages are defined.
FMNIST16_VAE_CONFIG = dict(
    in_channels=1,
    out_channels=1,
    down_block_types=("DownEncoderBlock2D",) * 2,
    up_block_types=("UpDecoderBlock2D",) * 2,
    block_out_channels=(32, 64),
    layers_per_block=1,
    latent_channels=4,
    norm_num_groups=8,
    sample_size=32,
    mid_block_add_attention=False,
)

# The scenes testbed's tokenizer (gtr.data.scenes): 32x32 RGB -> 4 x 16 x 16 (stride 2), fmnist16_vae's layout with
# three colour channels: its reconstructions must keep flat colours and sharp edges exact enough for the rule-based
# scorer (results/scenes_scorer.md: the reconstructions' validity is the testbed's ceiling).
SCENES_VAE_CONFIG = {**FMNIST16_VAE_CONFIG, "in_channels": 3, "out_channels": 3}


def ldm_to_diffusers(state_dict: dict[str, torch.Tensor], num_levels: int = 5) -> dict[str, torch.Tensor]:
    """Rename an LDM-layout autoencoder state dict (``encoder.down.0.block.0...``) to diffusers' layout.

    LDM numbers decoder levels from the lowest resolution up; diffusers from the highest, so ``up.i`` becomes
    ``up_blocks.(L-1-i)``. Attention 1x1 convolutions become linear layers. Training-only entries (``loss.*``,
    the discriminator and LPIPS) are dropped.
    """
    rules = [
        (r"^(encoder|decoder)\.norm_out\.", r"\1.conv_norm_out."),
        (r"^(encoder|decoder)\.mid\.block_(\d)\.", lambda m: f"{m[1]}.mid_block.resnets.{int(m[2]) - 1}."),
        (r"^(encoder|decoder)\.mid\.attn_1\.", r"\1.mid_block.attentions.0."),
        (r"^encoder\.down\.(\d+)\.block\.", r"encoder.down_blocks.\1.resnets."),
        (r"^encoder\.down\.(\d+)\.attn\.", r"encoder.down_blocks.\1.attentions."),
        (r"^encoder\.down\.(\d+)\.downsample\.", r"encoder.down_blocks.\1.downsamplers.0."),
        (r"^decoder\.up\.(\d+)\.block\.", lambda m: f"decoder.up_blocks.{num_levels - 1 - int(m[1])}.resnets."),
        (r"^decoder\.up\.(\d+)\.upsample\.", lambda m: f"decoder.up_blocks.{num_levels - 1 - int(m[1])}.upsamplers.0."),
        (r"\.nin_shortcut\.", ".conv_shortcut."),
        (r"(attentions\.\d+)\.norm\.", r"\1.group_norm."),
        (r"(attentions\.\d+)\.(q|k|v)\.", r"\1.to_\2."),
        (r"(attentions\.\d+)\.proj_out\.", r"\1.to_out.0."),
    ]
    converted = {}
    for key, value in state_dict.items():
        if key.startswith("loss."):
            continue
        new = key
        for pattern, repl in rules:
            new = re.sub(pattern, repl, new)
        if ".attentions." in new and new.endswith(".weight") and value.ndim == 4:
            value = value[:, :, 0, 0]  # 1x1 conv -> linear
        converted[new] = value
    return converted


class LatentTokenizer(nn.Module):
    """Images <-> normalised latents for a generator: ``latents = (posterior - shift) * scale``."""

    def __init__(self, vae: AutoencoderKL, scale: float, shift: float = 0.0):
        super().__init__()
        self.vae = vae
        self.scale = scale
        self.shift = shift

    @property
    def stride(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents [B, C, h, w] -> images [B, 3 (or 1), h*s, w*s] in [-1, 1] (unclipped)."""
        return self.vae.decode(latents / self.scale + self.shift).sample

    @torch.no_grad()
    def encode(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Images in [-1, 1] -> normalised latents, sampled from the posterior as MAR's training does."""
        posterior = self.vae.encode(images).latent_dist
        return (posterior.sample(generator=generator) - self.shift) * self.scale


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1], [B, 3, H, W] -> uint8 [B, H, W, 3], exactly as the official evaluation saves them:
    ``round(clip((x + 1) / 2 * 255, 0, 255))`` (round half to even). Grey-scale [B, 1, H, W] is repeated to RGB."""
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    x = (images.float() + 1) / 2
    return (x * 255).clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu()
