"""The pieces of a transformer pass that caches reuse across AR steps (LazyMAR, :mod:`gtr.sampling.lazymar`), for
the models whose encoder and decoder are timm ``Block`` stacks (MAR, LightGen).

A model that mixes in :class:`CachedPasses` and defines the four model-specific hooks below can be run by a cache:

- :meth:`CachedPasses.forward_recorded`: the model's own forward (bit for bit), keeping what a cache needs of the
  leading rows (per-layer keys and values, the decoder's input and output);
- :meth:`CachedPasses.encode_cached`: the encoder for a few new queries against cached keys and values;
- :meth:`CachedPasses.decode_pruned`: the decoder with only some positions carried on after a given layer.

Model-specific: ``buffer_size`` (leading class-token rows of encoder and decoder), ``encoder_queries`` (the encoder's
input rows for the buffer and some new tokens), ``decoder_positions`` (the decoder's position embedding of some
rows), ``cached_output`` (z from the last decoder features) and ``guidance_site``: where the difference between the
CFG halves is taken, ``"decoder"`` (the last decoder features, MAR's released LazyMAR) or ``"output"`` (z).

Everything here is a function of explicit tensors, so the FLOPs counter runs the same code on the meta device.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def heads(block, qkv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """q, k, v [B, H, N, hd] from the output [B, N, 3D] of a timm ``Block``'s ``attn.qkv``."""
    attn = block.attn
    b, n, _ = qkv.shape
    q, k, v = qkv.reshape(b, n, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
    return attn.q_norm(q), attn.k_norm(k), v


def split_qkv(block, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """q, k, v of the block's attention for its normalised input x [B, N, D]."""
    return heads(block, block.attn.qkv(x))


def attend(block, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The rest of the block's attention (as timm's ``Attention.forward``), for queries q against keys/values k, v."""
    attn = block.attn
    b, _, n, _ = q.shape
    x = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, -1)
    return block.ls1(attn.proj(attn.norm(x)))


def feed_forward(block, x: torch.Tensor) -> torch.Tensor:
    return block.ls2(block.mlp(block.norm2(x)))


def select_kept(similarity: torch.Tensor, keep: int) -> torch.Tensor:
    """LazyMAR's pruning decision: the ``keep`` positions [B, keep] (ascending) with the lowest similarity [B, L] to the
    cached pass, ties broken by position. Its own function so that a test can check and replay the decisions."""
    return similarity.argsort(dim=1, stable=True)[:, :keep].sort(dim=1).values


@dataclass
class PassRecord:
    """What one full transformer pass leaves for the cached ones (leading ``rows`` of the batch): per-layer keys and
    values [B, H, L, hd] of encoder and decoder, the decoder's input [B, L, D] and its last features [B', L, D]
    (every row: the CFG difference is taken on them)."""
    enc_keys: list
    enc_values: list
    dec_keys: list
    dec_values: list
    dec_input: torch.Tensor
    dec_output: torch.Tensor


class CachedPasses:
    """Mixin of :class:`gtr.models.mar.MAR` and :class:`gtr.models.lightgen.LightGen` (see the module docstring)."""

    buffer_size: int = 0
    guidance_site: str = "decoder"

    def forward_recorded(self, tokens: torch.Tensor, known: torch.Tensor, cond: torch.Tensor,
                         rows: int) -> tuple[torch.Tensor, PassRecord]:
        """``self(tokens, known, cond)`` and the record of its first ``rows`` rows (hooks observe, never alter)."""
        seen = {}

        def keep_qkv(name):
            def hook(module, args, out):
                seen[name] = out[:rows]
            return hook

        handles = [blk.attn.qkv.register_forward_hook(keep_qkv(("enc", i))) for i, blk in enumerate(self.encoder_blocks)]
        handles += [blk.attn.qkv.register_forward_hook(keep_qkv(("dec", i))) for i, blk in enumerate(self.decoder_blocks)]
        handles.append(self.decoder_blocks[0].register_forward_pre_hook(lambda mod, args: seen.update(dec_in=args[0])))
        handles.append(self.decoder_norm.register_forward_pre_hook(lambda mod, args: seen.update(dec_out=args[0])))
        try:
            z = self(tokens, known, cond)
        finally:
            for handle in handles:
                handle.remove()
        # LightGen's encoder does not run while nothing is known: its caches start empty.
        nothing = seen["dec_in"].new_zeros(rows, 0, 3 * seen["dec_in"].shape[-1])
        enc = [heads(blk, seen.get(("enc", i), nothing)) for i, blk in enumerate(self.encoder_blocks)]
        dec = [heads(blk, seen["dec", i]) for i, blk in enumerate(self.decoder_blocks)]
        return z, PassRecord([k for _, k, _ in enc], [v for _, _, v in enc], [k for _, k, _ in dec],
                             [v for _, _, v in dec], seen["dec_in"][:rows], seen["dec_out"])

    def encode_cached(self, new_tokens: torch.Tensor, new_positions: torch.Tensor, cond: torch.Tensor,
                      keys: list, values: list) -> torch.Tensor:
        """Decoder inputs (before the position embedding) of the buffer and the newly known tokens [B, buf + n, D]:
        only they are queries; ``keys``/``values`` [B, H, buf + k, hd] per layer are updated in place (buffer rows
        replaced, the new tokens appended)."""
        x = self.encoder_queries(new_tokens, new_positions, cond)
        buf = self.buffer_size
        for layer, block in enumerate(self.encoder_blocks):
            q, k, v = split_qkv(block, block.norm1(x))
            keys[layer] = torch.cat([k[:, :, :buf], keys[layer][:, :, buf:], k[:, :, buf:]], dim=2)
            values[layer] = torch.cat([v[:, :, :buf], values[layer][:, :, buf:], v[:, :, buf:]], dim=2)
            x = x + attend(block, q, keys[layer], values[layer])
            x = x + feed_forward(block, x)
        return self.decoder_embed(self.encoder_norm(x))

    def decode_pruned(self, x: torch.Tensor, keys: list, values: list, forced: torch.Tensor, keep: int,
                      prune_layer: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Last decoder-block features [B, L, D] (before ``decoder_norm``) at the kept positions, zeros elsewhere
        (never read), and the kept positions [B, keep] (None: all). x [B, L, D]: the decoder input. Layers up to
        ``prune_layer`` run on every position; after that layer's attention only the ``keep`` positions whose values
        changed most since the cached pass (lowest cosine similarity of V, averaged over heads; ``forced`` [B, f]
        always kept) go on, attending to the cached keys and values of the others. ``keys``/``values`` per layer
        [B, H, L, hd] are updated in place."""
        for layer, block in enumerate(self.decoder_blocks[:prune_layer + 1]):
            q, k, v = split_qkv(block, block.norm1(x))
            previous_v = values[layer]
            keys[layer], values[layer] = k, v
            x = x + attend(block, q, k, v)
            if layer < prune_layer:
                x = x + feed_forward(block, x)
        if prune_layer >= len(self.decoder_blocks):  # a decoder too shallow to prune: every position runs
            return x, None
        similarity = F.cosine_similarity(values[prune_layer].float(), previous_v.float(), dim=-1).mean(dim=1)
        kept = select_kept(similarity.scatter(1, forced, 0.0), keep)  # forced positions score 0: always kept
        rows = kept[..., None].expand(-1, -1, x.shape[-1])
        h = torch.gather(x, 1, rows)
        h = h + feed_forward(self.decoder_blocks[prune_layer], h)
        index = kept[:, None, :, None].expand(-1, keys[0].shape[1], -1, keys[0].shape[-1])
        for layer in range(prune_layer + 1, len(self.decoder_blocks)):
            block = self.decoder_blocks[layer]
            q, k, v = split_qkv(block, block.norm1(h))
            keys[layer] = keys[layer].scatter(2, index, k.to(keys[layer].dtype))
            values[layer] = values[layer].scatter(2, index, v.to(values[layer].dtype))
            h = h + attend(block, q, keys[layer], values[layer])
            h = h + feed_forward(block, h)
        return torch.zeros_like(x).scatter(1, rows, h.to(x.dtype)), kept

    # Model-specific ------------------------------------------------------------------------------------------------
    def encoder_queries(self, new_tokens: torch.Tensor, new_positions: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decoder_positions(self, rows: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def cached_output(self, out: torch.Tensor, cond: torch.Tensor, kept: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError


__all__ = ["CachedPasses", "PassRecord", "attend", "feed_forward", "heads", "split_qkv"]
