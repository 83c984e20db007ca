"""MAR's diffusion head: a small AdaLN MLP that denoises one token at a time, conditioned on the transformer's
output z for that token (MAR paper, Sec. 3; ``SimpleMLPAdaLN`` in the official ``models/diffloss.py``).

Parameter names follow the official checkpoints (``diffloss.net.*``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
import torch.nn as nn

from gtr.models.diffusion import (NUM_TRAIN_STEPS, denoise_update, p_sample_loop, respaced_schedule,
                                  step_coefficients, training_loss)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding ordered [cos, sin] (the order the official checkpoints were trained with)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class TimestepEmbedder(nn.Module):
    def __init__(self, width: int, frequency_dim: int = 256):
        super().__init__()
        self.frequency_dim = frequency_dim
        self.mlp = nn.Sequential(nn.Linear(frequency_dim, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(timestep_embedding(t, self.frequency_dim))


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


class ResBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.in_ln = nn.LayerNorm(width, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 3 * width))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        shift, scale, gate = self.adaLN_modulation(y).chunk(3, dim=-1)
        return x + gate * self.mlp(modulate(self.in_ln(x), shift, scale))


class FinalLayer(nn.Module):
    def __init__(self, width: int, out_channels: int):
        super().__init__()
        self.norm_final = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(width, out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(y).chunk(2, dim=-1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class SimpleMLPAdaLN(nn.Module):
    """eps and variance prediction: input_proj(x) through ``depth`` AdaLN residual blocks conditioned on
    y = time_embed(t) + cond_embed(z)."""

    def __init__(self, in_channels: int, width: int, z_channels: int, depth: int):
        super().__init__()
        self.in_channels = in_channels
        self.time_embed = TimestepEmbedder(width)
        self.cond_embed = nn.Linear(z_channels, width)
        self.input_proj = nn.Linear(in_channels, width)
        self.res_blocks = nn.ModuleList(ResBlock(width) for _ in range(depth))
        self.final_layer = FinalLayer(width, 2 * in_channels)  # eps and the learned-range variance

    def initialize_weights(self) -> None:
        """The official initialisation: Xavier linears, N(0, 0.02) time MLP, zeroed modulations and output."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.time_embed.mlp[0].weight, std=0.02)
        nn.init.normal_(self.time_embed.mlp[2].weight, std=0.02)
        for layer in [*(b.adaLN_modulation[-1] for b in self.res_blocks), self.final_layer.adaLN_modulation[-1]]:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        nn.init.zeros_(self.final_layer.linear.weight)
        nn.init.zeros_(self.final_layer.linear.bias)

    def forward_embedded(self, x: torch.Tensor, t: torch.Tensor, c_emb: torch.Tensor) -> torch.Tensor:
        """Denoiser output for noisy tokens x [M, C] at timesteps t ([M] or [1]) given ``cond_embed(z)`` [M, W]."""
        return self.denoise(x, self.time_embed(t.reshape(-1)) + c_emb)

    def denoise(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The network body for noisy tokens x [M, C] and y = time_embed(t) + cond_embed(z) [M, W]."""
        x = self.input_proj(x)
        for block in self.res_blocks:
            x = block(x, y)
        return self.final_layer(x, y)

    def forward(self, x: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.forward_embedded(x, t, self.cond_embed(z))

    def forward_cached(self, x: torch.Tensor, t: torch.Tensor, c_emb: torch.Tensor, cache: "HeadCache", full: bool,
                       recompute_mlp: bool, delta_blocks: Sequence[int], rows: int) -> torch.Tensor:
        """:meth:`forward_embedded` with a block cache (LazyMAR's head cache). ``full``: every block runs and
        leaves, for the leading ``rows`` rows, its MLP output and (``delta_blocks``) its residual delta in
        ``cache``; otherwise the delta blocks add their cached delta and the others recompute adaLN with the cached
        MLP output (recomputed instead when ``recompute_mlp``)."""
        y = self.time_embed(t.reshape(-1)) + c_emb
        h = self.input_proj(x)
        for j, block in enumerate(self.res_blocks):
            if not full and j in delta_blocks:
                h = h + cache.delta[j]
                continue
            shift, scale, gate = block.adaLN_modulation(y).chunk(3, dim=-1)
            if full or recompute_mlp:
                mlp = block.mlp(modulate(block.in_ln(h), shift, scale))
                cache.mlp[j] = mlp[:rows]
            else:
                mlp = cache.mlp[j]
            new = h + gate * mlp
            if full and j in delta_blocks:
                cache.delta[j] = (new - h)[:rows]
            h = new
        return self.final_layer(h, y)


@dataclass
class HeadCache:
    """What a full evaluation of the diffusion MLP leaves for the cached ones of the same loop (leading rows)."""
    mlp: dict = field(default_factory=dict)
    delta: dict = field(default_factory=dict)
    cfg_delta: torch.Tensor | None = None


def guided(cond_out: torch.Tensor, uncond_eps: torch.Tensor, cfg_scale: float) -> torch.Tensor:
    """[eps, v] under classifier-free guidance: eps from the two branches, v from the conditional one (official
    ``forward_with_cfg``)."""
    channels = uncond_eps.shape[1]
    cond_eps = cond_out[:, :channels]
    return torch.cat([uncond_eps + cfg_scale * (cond_eps - uncond_eps), cond_out[:, channels:]], dim=1)


def head_step(net: SimpleMLPAdaLN, x: torch.Tensor, t_emb: torch.Tensor, c_emb: torch.Tensor, coef: torch.Tensor,
              noise: torch.Tensor, cfg_scale: torch.Tensor | None) -> torch.Tensor:
    """One whole denoising step as a pure function of tensors (the executor's ``mode=compile`` compiles
    :func:`head_steps`, ``UNROLL`` of them in a row): the network on x [M, C] (doubled when ``cfg_scale`` is given;
    c_emb then [2M, W]), guidance and the ancestral update with ``coef`` a row of
    :func:`~gtr.models.diffusion.step_coefficients`. ``t_emb`` [1, W]."""
    y = t_emb + c_emb
    if cfg_scale is None:
        out = net.denoise(x, y).float()
    else:
        cond, uncond = net.denoise(torch.cat([x, x]), y).float().chunk(2)
        out = guided(cond, uncond[:, :x.shape[1]], cfg_scale)
    return denoise_update(out, x, coef, noise)


def head_steps(net: SimpleMLPAdaLN, x: torch.Tensor, t_embs: tuple[torch.Tensor, ...], c_emb: torch.Tensor,
               coefs: tuple[torch.Tensor, ...], noises: tuple[torch.Tensor, ...],
               cfg_scale: torch.Tensor | None) -> torch.Tensor:
    """Consecutive :func:`head_step` calls, one per entry of ``t_embs``/``coefs``/``noises``: compiled, several
    steps are one graph, so the per-call cost (guards, wrapper) is paid once for all of them."""
    for t_emb, coef, noise in zip(t_embs, coefs, noises):
        x = head_step(net, x, t_emb, c_emb, coef, noise, cfg_scale)
    return x


# Diffusion steps per compiled call (a remainder runs one step per call: two graph sizes, whatever the step count).
UNROLL = 4


class DiffusionHead(nn.Module):
    """p(x | z) for one token given its condition z: :meth:`loss` trains it, :meth:`sample` draws from it (the
    official ``DiffLoss``)."""

    def __init__(self, token_dim: int, z_channels: int, depth: int, width: int):
        super().__init__()
        self.token_dim = token_dim
        self.net = SimpleMLPAdaLN(token_dim, width, z_channels, depth)

    def loss(self, z: torch.Tensor, target: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean diffusion loss of tokens ``target`` [M, C] given conditions z [M, D], one uniformly drawn timestep
        and noise per row (repeat rows for several draws per token, as MAR's ``diffusion_batch_mul`` does)."""
        t = torch.randint(0, NUM_TRAIN_STEPS, (target.shape[0],), generator=generator, device="cpu").to(target.device)
        noise = torch.randn(target.shape, generator=generator, device="cpu").to(target.device, target.dtype)
        return training_loss(lambda x, step: self.net(x, step, z), target, t, noise).mean()

    @torch.no_grad()
    def sample(
        self,
        z: torch.Tensor,
        x_T: torch.Tensor,
        num_steps: int,
        step_noise: Callable[[int], torch.Tensor],
        temperature: float = 1.0,
        z_uncond: torch.Tensor | None = None,
        cfg_scale: float = 1.0,
        clip_timestep: int | None = None,
        step: Callable[..., torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Token values [M, C] for conditions z [M, D], starting from x_T [M, C]. ``clip_timestep``: None is the
        official MAR respacing, 950 DiSA's min(t, 950) clipping (which the paper's FLOPs imply).

        With ``z_uncond``, classifier-free guidance is applied to eps only; the variance comes from the conditional
        branch (official ``forward_with_cfg``). The conditional and unconditional branches share the sampler state,
        so only the conditional half is carried: the official code carries both halves but discards the second.
        ``cond_embed(z)`` is the same at every diffusion step, so it is computed once (numerically identical).

        ``step``: :func:`head_steps` or a compiled version of it bound to this head's network (the executor's
        ``mode=compile``), called for ``UNROLL`` steps at a time, with the time embeddings of the whole schedule
        computed up front and the noise drawn by ``step_noise`` exactly as in the loop. Equal to float tolerance.
        """
        net = self.net
        if step is not None:
            return self._sample_stepped(step, z, x_T, num_steps, step_noise, temperature, z_uncond, cfg_scale,
                                        clip_timestep)
        if z_uncond is None:
            c_emb = net.cond_embed(z)

            def model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
                return net.forward_embedded(x, t, c_emb)

        else:
            c_emb = net.cond_embed(torch.cat([z, z_uncond]))
            channels = self.token_dim

            def model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
                cond, uncond = net.forward_embedded(torch.cat([x, x]), t, c_emb).float().chunk(2)
                return guided(cond, uncond[:, :channels], cfg_scale)

        return p_sample_loop(model, x_T, num_steps, step_noise, temperature, clip_timestep)

    def _sample_stepped(self, step, z, x_T, num_steps, step_noise, temperature, z_uncond, cfg_scale, clip_timestep):
        net, device = self.net, z.device
        sched = respaced_schedule(num_steps, clip_timestep)
        t_emb = net.time_embed(sched.model_timesteps.to(device))
        coef = step_coefficients(num_steps, clip_timestep, temperature).to(device)
        c_emb = net.cond_embed(z if z_uncond is None else torch.cat([z, z_uncond]))
        scale = None if z_uncond is None else torch.tensor(float(cfg_scale), device=device)
        # Rows copied out, not views: a compiled step would otherwise specialise on their storage offsets.
        t_rows, coef_rows = [r.clone() for r in t_emb.split(1)], [r.clone() for r in coef]
        countdown, x, k = list(reversed(range(sched.num_steps))), x_T, 0
        while k < len(countdown):
            size = UNROLL if len(countdown) - k >= UNROLL else 1
            rows = countdown[k:k + size]
            noises = tuple(step_noise(k + j) for j in range(size))  # drawn in the loop's order, as eager mode does
            x = step(x, tuple(t_rows[i] for i in rows), c_emb, tuple(coef_rows[i] for i in rows), noises, scale)
            k += size
        return x
