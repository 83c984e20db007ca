"""GenEval's detector checkpoint, converted from mmdetection to Hugging Face ``transformers``.

GenEval scores images with mmdetection's Mask2Former Swin-S COCO instance model,
``mask2former_swin-s-p4-w7-224_lsj_8x2_50e_coco_20220504_001756-743b7d99.pth`` (config
``configs/mask2former/mask2former_swin-s-p4-w7-224_lsj_8x2_50e_coco.py``). This module renames its state dict,
with the tensor surgery the two implementations need, into ``transformers.Mask2FormerForUniversalSegmentation``
(5.23), so the detector runs without mmcv.

Read from open-mmlab/mmdetection branch 2.x (the config chain swin-s -> swin-t -> r50_lsj; backbones/swin.py,
utils/transformer.py, utils/ckpt_convert.py, plugins/msdeformattn_pixel_decoder.py,
dense_heads/mask2former_head.py, detectors/maskformer.py) and open-mmlab/mmcv branch 1.x at 1d8f9285
(cnn/bricks/transformer.py, cnn/bricks/conv_module.py, ops/multi_scale_deform_attn.py, runner/checkpoint.py).
"""
from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from gtr.errors import GtRError
from gtr.eval.geneval.rules import OBJECT_NAMES  # the checkpoint's 80 class logits in COCO order (81st: no object)
from gtr.weights import WEIGHTS, load_into, read_checkpoint

if TYPE_CHECKING:  # transformers is imported where used (importing it is slow)
    from transformers import Mask2FormerConfig, Mask2FormerForUniversalSegmentation

CHECKPOINT_URL = WEIGHTS["geneval_mask2former"].url
CHECKPOINT_NAME = CHECKPOINT_URL.rsplit("/", 1)[1]
NOT_THIS_FILE = f"not the GenEval Mask2Former Swin-S mmdet checkpoint ({CHECKPOINT_NAME})"

# The only HF state-dict entries the mmdet checkpoint has no counterpart for; the freshly built model's own values
# are kept for them. Neither takes part in inference.
HF_OWN_KEYS = {
    "model.pixel_level_module.encoder.swin.layernorm.weight":
        "SwinModel's final LayerNorm: SwinBackbone returns the per-stage hidden_states_norms instead and never uses "
        "it (HF itself ignores it when missing)",
    "model.pixel_level_module.encoder.swin.layernorm.bias": "as above",
    "criterion.empty_weight": "training-loss class weights, a buffer HF builds from config.no_object_weight",
}

_SWIN = "model.pixel_level_module.encoder."
_PIXEL = "model.pixel_level_module.decoder."
_QUERY = "model.transformer_module."
_WINDOW = 7


def mmdet_swin_s_config() -> Mask2FormerConfig:
    """The ``Mask2FormerConfig`` of the mmdet model, dimension for dimension (mmdet value in the comments)."""
    from transformers import Mask2FormerConfig, SwinConfig
    backbone = SwinConfig(
        embed_dim=96, depths=[2, 2, 18, 2], num_heads=[3, 6, 12, 24], window_size=_WINDOW,  # swin-s config
        patch_size=4, mlp_ratio=4.0, qkv_bias=True, hidden_act="gelu",  # nn.GELU(), exact erf form
        use_absolute_embeddings=False, layer_norm_eps=1e-5,  # use_abs_pos_embed=False; nn.LayerNorm default eps
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, drop_path_rate=0.3,  # inactive in eval mode
        out_features=["stage1", "stage2", "stage3", "stage4"],  # out_indices=(0, 1, 2, 3), each with its norm{i}
    )
    return Mask2FormerConfig(
        backbone_config=backbone,
        feature_strides=[4, 8, 16, 32],  # strides
        feature_size=256, mask_feature_size=256, hidden_dim=256,  # feat_channels = out_channels = embed_dims
        encoder_layers=6, encoder_feedforward_dim=1024,  # pixel decoder: DetrTransformerEncoder, FFN 1024
        common_stride=4,  # one FPN lateral/output conv pair, at stride 4, like mmdet's single lateral_convs entry
        num_attention_heads=8,  # MSDeformAttn (3 levels x 4 points, hard-coded in HF too) and decoder heads
        # HF builds decoder_layers - 1 masked-attention layers (its first "layer" is the prediction from the bare
        # queries, which mmdet makes before its loop too), so mmdet's num_layers=9 is 10 here.
        decoder_layers=10,
        dim_feedforward=2048, activation_function="relu",  # decoder FFN
        pre_norm=False,  # operation_order ('cross_attn', 'norm', 'self_attn', 'norm', 'ffn', 'norm') is post-norm
        enforce_input_projection=False,  # enforce_decoder_input_project=False: nn.Identity projections
        num_queries=100, dropout=0.0,
        no_object_weight=0.1, class_weight=2.0, mask_weight=5.0, dice_weight=5.0,  # losses (training only)
        train_num_points=12544, oversample_ratio=3.0, importance_sample_ratio=0.75,
        id2label=dict(enumerate(OBJECT_NAMES)), label2id={name: i for i, name in enumerate(OBJECT_NAMES)},
    )


def _unfold_to_swin_order(t: Tensor) -> Tensor:
    """Reorder the merged-patch (4C) last dimension of a ``PatchMerging`` weight from mmdet's to HF's layout.

    mmdet gathers each 2x2 patch with ``nn.Unfold``, whose output is channel-major with the kernel positions
    (row, col) = (0,0), (0,1), (1,0), (1,1) innermost: index c*4 + pos. HF, like the original Swin, concatenates
    whole quarter-maps [x0 | x1 | x2 | x3] = positions (0,0), (1,0), (0,1), (1,1): index k*C + c. This is the
    inverse of mmdet's ``swin_converter`` (``correct_unfold_reduction_order`` / ``_norm_order``); the position
    permutation [0, 2, 1, 3] is its own inverse.
    """
    *lead, merged = t.shape
    return t.reshape(*lead, merged // 4, 4)[..., [0, 2, 1, 3]].transpose(-1, -2).reshape(*lead, merged)


@functools.cache
def _hf_relative_position_index() -> Tensor:
    """The window's relative-position index that HF Swin computes itself (a non-persistent buffer)."""
    from transformers.models.swin.modeling_swin import SwinRelativePositionBias
    return SwinRelativePositionBias(1, (_WINDOW, _WINDOW)).relative_position_index.view(_WINDOW ** 2, _WINDOW ** 2)


Handler = Callable[[re.Match, Tensor], dict[str, Tensor]]


def _to(template: str) -> Handler:
    """A plain rename; ``template`` may refer to the pattern's groups (``\\1``)."""
    return lambda m, t: {m.expand(template): t}


def _split_qkv(template: str) -> Handler:
    """A fused [q; k; v] projection (rows stacked in that order, heads contiguous within each: mmdet's WindowMSA
    reshapes qkv to (3, heads, head_dim), nn.MultiheadAttention's in_proj likewise) into three projections;
    ``template`` has ``{}`` for q/k/v."""
    return lambda m, t: {m.expand(template.format(name)): part for name, part in zip("qkv", t.chunk(3))}


def _merged_patch(template: str) -> Handler:
    """A rename of a PatchMerging norm/reduction tensor, reordered by :func:`_unfold_to_swin_order`."""
    return lambda m, t: {m.expand(template): _unfold_to_swin_order(t)}


def _stage_norm(m: re.Match, t: Tensor) -> dict[str, Tensor]:
    # mmdet's backbone.norm{i} normalises stage i's output; HF names the same LayerNorm after stage i+1.
    return {f"{_SWIN}hidden_states_norms.stage{int(m[1]) + 1}.{m[2]}": t}


def _mask_mlp(m: re.Match, t: Tensor) -> dict[str, Tensor]:
    # mmdet: nn.Sequential(Linear, ReLU, Linear, ReLU, Linear) -> Linears at 0, 2, 4; HF: one block per Linear.
    return {f"{_QUERY}decoder.mask_predictor.mask_embedder.{int(m[1]) // 2}.0.{m[2]}": t}


def _check_relative_position_index(m: re.Match, t: Tensor) -> dict[str, Tensor]:
    # mmdet stores the index (a "2x faster" double_step_seq construction) as a persistent buffer; HF recomputes
    # its own and keeps none. Dropped, but only once it is the same lookup, so the bias tables transfer as they are.
    if t.shape != (_WINDOW ** 2, _WINDOW ** 2) or not torch.equal(t.long(), _hf_relative_position_index()):
        raise GtRError(f"{m[0]} is not the 7x7-window relative position index HF Swin uses: {NOT_THIS_FILE}")
    return {}


_BLOCK = r"backbone\.stages\.(\d+)\.blocks\.(\d+)\."
_HF_BLOCK = _SWIN + r"swin.encoder.layers.\1.blocks.\2."
_ENC = r"panoptic_head\.pixel_decoder\.encoder\.layers\.(\d+)\."
_HF_ENC = _PIXEL + r"encoder.layers.\1."
_DEC = r"panoptic_head\.transformer_decoder\.layers\.(\d+)\."
_HF_DEC = _QUERY + r"decoder.layers.\1."
_WB = r"(weight|bias)"

# (mmdet key pattern, handler), matched in full; the patterns are disjoint and every mmdet key must match one.
_RULES: list[tuple[str, Handler]] = [
    # --- Swin-S backbone (mmdet SwinTransformer -> HF SwinBackbone)
    (r"backbone\.patch_embed\.projection\." + _WB, _to(_SWIN + r"swin.embeddings.patch_embeddings.projection.\1")),
    (r"backbone\.patch_embed\.norm\." + _WB, _to(_SWIN + r"swin.embeddings.norm.\1")),
    (_BLOCK + r"norm1\." + _WB, _to(_HF_BLOCK + r"layernorm_before.\3")),  # x + attn(norm1(x))
    (_BLOCK + r"norm2\." + _WB, _to(_HF_BLOCK + r"layernorm_after.\3")),  # x + ffn(norm2(x))
    (_BLOCK + r"attn\.w_msa\.relative_position_bias_table",
     _to(_HF_BLOCK + "attention.relative_position_bias.relative_position_bias_table")),
    (_BLOCK + r"attn\.w_msa\.relative_position_index", _check_relative_position_index),
    (_BLOCK + r"attn\.w_msa\.qkv\." + _WB, _split_qkv(_HF_BLOCK + r"attention.{}_proj.\3")),
    (_BLOCK + r"attn\.w_msa\.proj\." + _WB, _to(_HF_BLOCK + r"attention.o_proj.\3")),
    (_BLOCK + r"ffn\.layers\.0\.0\." + _WB, _to(_HF_BLOCK + r"mlp.fc1.\3")),  # mmcv FFN: Sequential(Linear, act, drop)
    (_BLOCK + r"ffn\.layers\.1\." + _WB, _to(_HF_BLOCK + r"mlp.fc2.\3")),
    (r"backbone\.stages\.(\d+)\.downsample\.norm\." + _WB,
     _merged_patch(_SWIN + r"swin.encoder.layers.\1.downsample.norm.\2")),
    (r"backbone\.stages\.(\d+)\.downsample\.reduction\.weight",
     _merged_patch(_SWIN + r"swin.encoder.layers.\1.downsample.reduction.weight")),
    (r"backbone\.norm(\d)\." + _WB, _stage_norm),
    # --- pixel decoder (MSDeformAttnPixelDecoder). Both order the 3 encoder levels from low to high resolution
    # (input_convs / input_projections, level_encoding / level_embed); ConvModule(conv, gn) -> Sequential(conv, gn).
    (r"panoptic_head\.pixel_decoder\.input_convs\.(\d)\.conv\." + _WB, _to(_PIXEL + r"input_projections.\1.0.\2")),
    (r"panoptic_head\.pixel_decoder\.input_convs\.(\d)\.gn\." + _WB, _to(_PIXEL + r"input_projections.\1.1.\2")),
    (_ENC + r"attentions\.0\.(sampling_offsets|attention_weights|value_proj|output_proj)\." + _WB,
     _to(_HF_ENC + r"self_attn.\2.\3")),
    # operation_order ('self_attn', 'norm', 'ffn', 'norm'): post-norm, as HF's encoder layer.
    (_ENC + r"norms\.0\." + _WB, _to(_HF_ENC + r"self_attn_layer_norm.\2")),
    (_ENC + r"norms\.1\." + _WB, _to(_HF_ENC + r"final_layer_norm.\2")),
    (_ENC + r"ffns\.0\.layers\.0\.0\." + _WB, _to(_HF_ENC + r"fc1.\2")),
    (_ENC + r"ffns\.0\.layers\.1\." + _WB, _to(_HF_ENC + r"fc2.\2")),
    (r"panoptic_head\.pixel_decoder\.level_encoding\.weight", _to(_PIXEL + "level_embed")),
    # The one FPN level below the encoder (stride 4): lateral 1x1 conv and output 3x3 conv, both bias-free + GN.
    (r"panoptic_head\.pixel_decoder\.lateral_convs\.0\.conv\.weight", _to(_PIXEL + "adapter_1.0.weight")),
    (r"panoptic_head\.pixel_decoder\.lateral_convs\.0\.gn\." + _WB, _to(_PIXEL + r"adapter_1.1.\1")),
    (r"panoptic_head\.pixel_decoder\.output_convs\.0\.conv\.weight", _to(_PIXEL + "layer_1.0.weight")),
    (r"panoptic_head\.pixel_decoder\.output_convs\.0\.gn\." + _WB, _to(_PIXEL + r"layer_1.1.\1")),
    (r"panoptic_head\.pixel_decoder\.mask_feature\." + _WB, _to(_PIXEL + r"mask_projection.\1")),
    # --- masked-attention transformer decoder. mmdet's operation_order ('cross_attn', 'norm', 'self_attn', 'norm',
    # 'ffn', 'norm') makes attentions.0 the (masked) cross-attention and attentions.1 the self-attention. Both are
    # mmcv MultiheadAttention wrapping nn.MultiheadAttention (.attn); HF keeps an nn.MultiheadAttention for the
    # cross-attention but separate q/k/v projections for the self-attention.
    (_DEC + r"attentions\.0\.attn\.(in_proj_weight|in_proj_bias|out_proj\.weight|out_proj\.bias)",
     _to(_HF_DEC + r"cross_attn.\2")),
    (_DEC + r"attentions\.1\.attn\.in_proj_" + _WB, _split_qkv(_HF_DEC + r"self_attn.{}_proj.\2")),
    (_DEC + r"attentions\.1\.attn\.out_proj\." + _WB, _to(_HF_DEC + r"self_attn.out_proj.\2")),
    (_DEC + r"norms\.0\." + _WB, _to(_HF_DEC + r"cross_attn_layer_norm.\2")),
    (_DEC + r"norms\.1\." + _WB, _to(_HF_DEC + r"self_attn_layer_norm.\2")),
    (_DEC + r"norms\.2\." + _WB, _to(_HF_DEC + r"final_layer_norm.\2")),
    (_DEC + r"ffns\.0\.layers\.0\.0\." + _WB, _to(_HF_DEC + r"fc1.\2")),
    (_DEC + r"ffns\.0\.layers\.1\." + _WB, _to(_HF_DEC + r"fc2.\2")),
    # mmdet applies transformer_decoder.post_norm before every prediction, as HF its decoder.layernorm.
    (r"panoptic_head\.transformer_decoder\.post_norm\." + _WB, _to(_QUERY + r"decoder.layernorm.\1")),
    # query_embed is the query positional embedding, query_feat the initial query content.
    (r"panoptic_head\.query_embed\.weight", _to(_QUERY + "queries_embedder.weight")),
    (r"panoptic_head\.query_feat\.weight", _to(_QUERY + "queries_features.weight")),
    (r"panoptic_head\.level_embed\.weight", _to(_QUERY + "level_embed.weight")),
    # 81 logits in both: the 80 classes, then "no object".
    (r"panoptic_head\.cls_embed\." + _WB, _to(r"class_predictor.\1")),
    (r"panoptic_head\.mask_embed\.([024])\." + _WB, _mask_mlp),
]
_COMPILED = [(re.compile(pattern), handler) for pattern, handler in _RULES]


def convert_mmdet_mask2former(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """The mmdet checkpoint's ``state_dict`` under HF ``Mask2FormerForUniversalSegmentation`` names (all but
    :data:`HF_OWN_KEYS`). A key no rule knows raises :class:`GtRError`."""
    unknown = []
    converted: dict[str, Tensor] = {}
    for key, tensor in state_dict.items():
        for pattern, handler in _COMPILED:
            match = pattern.fullmatch(key)
            if match:
                converted.update(handler(match, tensor))
                break
        else:
            unknown.append(key)
    if unknown:
        raise GtRError(f"{len(unknown)} unknown state-dict key(s) (first: {unknown[0]!r}): {NOT_THIS_FILE}")
    return converted


def load_mmdet_checkpoint(path: str | os.PathLike) -> dict[str, Tensor]:
    """The ``state_dict`` of an mmdet checkpoint file (``{"meta": {...}, "state_dict": {...}}``).

    Read with ``torch.load(..., weights_only=True)`` (:func:`gtr.weights.read_checkpoint`), with no extra safe
    globals: mmcv 1.x ``save_checkpoint`` stores in ``meta`` only ``mmcv_version`` and ``time.asctime()`` (str),
    the model's ``CLASSES`` (a tuple of str) and the runner's meta (mmdet 2.x: env_info/config/exp_name/
    mmdet_version str, seed int, epoch/iter int, hook_msgs of str), all plain types the weights-only unpickler accepts.
    """
    path = Path(path)
    if not path.is_file():
        raise GtRError(f"GenEval detector checkpoint {path} not found; download {CHECKPOINT_URL} there")
    try:
        checkpoint = read_checkpoint(path)
    except GtRError as err:
        raise GtRError(f"{err} (the GenEval detector: {CHECKPOINT_URL})") from None
    state_dict = checkpoint.get("state_dict")
    if not isinstance(state_dict, dict):
        raise GtRError(f"{path} has no mmdet 'state_dict' entry: {NOT_THIS_FILE}; download {CHECKPOINT_URL}")
    return state_dict


def mmdet_to_hf(source: str | os.PathLike | dict[str, Tensor]) -> Mask2FormerForUniversalSegmentation:
    """The GenEval detector as a ``Mask2FormerForUniversalSegmentation`` in eval mode, from the mmdet checkpoint
    file or its state dict, loaded strictly (every HF key but :data:`HF_OWN_KEYS` comes from the checkpoint; its
    tensors are assigned, not copied)."""
    from transformers import Mask2FormerForUniversalSegmentation
    state_dict = source if isinstance(source, dict) else load_mmdet_checkpoint(source)
    converted = convert_mmdet_mask2former(state_dict)
    model = Mask2FormerForUniversalSegmentation(mmdet_swin_s_config())
    own = model.state_dict()
    converted.update({key: own[key] for key in HF_OWN_KEYS})
    where = "the given state dict" if isinstance(source, dict) else source
    load_into(model, converted, where, "the GenEval Mask2Former Swin-S", hint=f"; it is {NOT_THIS_FILE}")
    return model.eval()
