"""GenEval's detector converter (mmdet 2.x Mask2Former Swin-S -> transformers): every key of the official checkpoint
(schema derived from the mmdet source, tests/data) lands in the HF model, and each piece of tensor surgery gives the
numbers of a small pure-torch re-implementation of the mmdet/mmcv operation it replaces."""
import json
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers.models.swin.modeling_swin import SwinPatchMerging

from gtr.errors import GtRError
from gtr.eval.geneval.convert import (CHECKPOINT_URL, HF_OWN_KEYS, convert_mmdet_mask2former,
                                      load_mmdet_checkpoint, mmdet_to_hf)
from gtr.eval.geneval.rules import OBJECT_NAMES

SCHEMA = json.loads((Path(__file__).parent / "data" / "mmdet_mask2former_swin_s_schema.json").read_text())
NOT_THIS_FILE = "not the GenEval Mask2Former Swin-S mmdet checkpoint"


def mmdet_relative_position_index(window: int = 7) -> torch.Tensor:
    """mmdet WindowMSA's buffer: ``double_step_seq(2*Ww-1, Wh, 1, Ww)`` summed with its transpose, then flipped."""
    seq = (torch.arange(0, (2 * window - 1) * window, 2 * window - 1)[:, None] + torch.arange(window)).reshape(1, -1)
    return (seq + seq.T).flip(1).contiguous()


@pytest.fixture(scope="module")
def mmdet_sd() -> dict[str, torch.Tensor]:
    """Random tensors in the checkpoint's exact keys and shapes (the index buffers hold mmdet's real index)."""
    torch.manual_seed(0)
    return {key: mmdet_relative_position_index() if dtype == "int64" else 0.1 * torch.randn(shape)
            for key, shape, dtype in SCHEMA["state_dict"]}


@pytest.fixture(scope="module")
def hf(mmdet_sd):
    """The HF model converted from :func:`mmdet_sd` (built once: about 3 s)."""
    return mmdet_to_hf(mmdet_sd)


def sub(state_dict: dict, prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}


def test_every_checkpoint_key_converts_and_loads_strictly(mmdet_sd, hf):
    converted = convert_mmdet_mask2former(mmdet_sd)
    expected = hf.state_dict()
    assert set(converted).isdisjoint(HF_OWN_KEYS)
    assert set(converted) | set(HF_OWN_KEYS) == set(expected)
    assert {k: tuple(v.shape) for k, v in converted.items()} == {k: tuple(expected[k].shape) for k in converted}
    # the architecture matches mmdet's parameter for parameter, plus SwinModel's unused final LayerNorm (768)
    assert sum(p.numel() for p in hf.parameters()) == SCHEMA["num_params"] + 2 * 768
    assert len(hf.model.transformer_module.decoder.layers) == 9  # mmdet num_layers=9 (HF decoder_layers=10)
    assert hf.config.id2label[0] == "person" and hf.config.id2label[79] == "toothbrush" and hf.config.num_labels == 80
    assert len(OBJECT_NAMES) == 80 and not hf.training
    torch.testing.assert_close(hf.class_predictor.weight, mmdet_sd["panoptic_head.cls_embed.weight"])
    with torch.no_grad():
        out = hf(pixel_values=torch.randn(1, 3, 64, 64))
    assert out.class_queries_logits.shape == (1, 100, 81) and out.masks_queries_logits.shape == (1, 100, 16, 16)
    assert torch.isfinite(out.masks_queries_logits).all()


def mmdet_patch_merging(x, hw, norm_weight, norm_bias, reduction_weight):
    """mmcv PatchMerging (kernel 2, stride 2, 'corner' padding): nn.Unfold -> LayerNorm -> bias-free Linear."""
    (batch, _, channels), (height, width) = x.shape, hw
    x = F.pad(x.view(batch, height, width, channels).permute(0, 3, 1, 2), (0, width % 2, 0, height % 2))
    x = F.unfold(x, kernel_size=2, stride=2).transpose(1, 2)
    return F.layer_norm(x, (4 * channels,), norm_weight, norm_bias) @ reduction_weight.T


@pytest.mark.parametrize("hw", [(8, 6), (7, 5)])
def test_patch_merging_matches_mmdet_unfold(mmdet_sd, hf, hw):
    torch.manual_seed(1)
    p = sub(mmdet_sd, "backbone.stages.1.downsample.")
    x = torch.randn(2, hw[0] * hw[1], 192)
    want = mmdet_patch_merging(x, hw, p["norm.weight"], p["norm.bias"], p["reduction.weight"])
    with torch.no_grad():
        got = hf.model.pixel_level_module.encoder.swin.encoder.layers[1].downsample(x, hw)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        naive = SwinPatchMerging(192)  # the weights as mmdet stores them, not reordered, give other numbers
        naive.load_state_dict({k: p[k] for k in ("norm.weight", "norm.bias", "reduction.weight")})
        assert not torch.allclose(naive(x, hw), want, rtol=1e-3, atol=1e-3)


def mmdet_swin_block(x, p, heads):
    """One mmdet SwinBlock on a single unshifted 7x7 window: x + WindowMSA(norm1(x)), then + FFN(norm2(x))."""
    batch, tokens, channels = x.shape
    h = F.layer_norm(x, (channels,), p["norm1.weight"], p["norm1.bias"])
    qkv = F.linear(h, p["attn.w_msa.qkv.weight"], p["attn.w_msa.qkv.bias"])
    q, k, v = qkv.reshape(batch, tokens, 3, heads, channels // heads).permute(2, 0, 3, 1, 4)
    index = mmdet_relative_position_index().view(-1)
    bias = p["attn.w_msa.relative_position_bias_table"][index].view(tokens, tokens, heads).permute(2, 0, 1)
    attn = (q * (channels // heads) ** -0.5 @ k.transpose(-2, -1) + bias).softmax(-1)
    h = (attn @ v).transpose(1, 2).reshape(batch, tokens, channels)
    x = x + F.linear(h, p["attn.w_msa.proj.weight"], p["attn.w_msa.proj.bias"])
    h = F.layer_norm(x, (channels,), p["norm2.weight"], p["norm2.bias"])
    h = F.gelu(F.linear(h, p["ffn.layers.0.0.weight"], p["ffn.layers.0.0.bias"]))
    return x + F.linear(h, p["ffn.layers.1.weight"], p["ffn.layers.1.bias"])


def test_swin_block_matches_mmdet(mmdet_sd, hf):
    """The fused qkv split, the relative position bias table (looked up by mmdet's index) and the block's norms."""
    torch.manual_seed(2)
    x = torch.randn(2, 49, 96)
    want = mmdet_swin_block(x, sub(mmdet_sd, "backbone.stages.0.blocks.0."), heads=3)
    with torch.no_grad():
        got = hf.model.pixel_level_module.encoder.swin.encoder.layers[0].blocks[0](x, (7, 7), always_partition=True)
    torch.testing.assert_close(got[0], want, rtol=1e-5, atol=1e-5)


def mmcv_deformable_attention(query, value, reference_points, shapes, p, heads=8, points=4):
    """mmcv MultiScaleDeformableAttention (batch first, 2-d reference points, pure-torch sampling), no residual."""
    batch, num_query, channels = query.shape
    levels = len(shapes)
    value = F.linear(value, p["value_proj.weight"], p["value_proj.bias"]).view(batch, -1, heads, channels // heads)
    offsets = F.linear(query, p["sampling_offsets.weight"], p["sampling_offsets.bias"])
    offsets = offsets.view(batch, num_query, heads, levels, points, 2)
    weights = F.linear(query, p["attention_weights.weight"], p["attention_weights.bias"])
    weights = weights.view(batch, num_query, heads, levels * points).softmax(-1)
    normalizer = torch.tensor([[w, h] for h, w in shapes], dtype=query.dtype)
    grids = 2 * (reference_points[:, :, None, :, None, :] + offsets / normalizer[None, None, None, :, None]) - 1
    sampled = []
    for level, ((h, w), level_value) in enumerate(zip(shapes, value.split([h * w for h, w in shapes], dim=1))):
        level_value = level_value.flatten(2).transpose(1, 2).reshape(batch * heads, channels // heads, h, w)
        grid = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)
        sampled.append(F.grid_sample(level_value, grid, mode="bilinear", padding_mode="zeros", align_corners=False))
    weights = weights.transpose(1, 2).reshape(batch * heads, 1, num_query, levels * points)
    out = (torch.stack(sampled, dim=-2).flatten(-2) * weights).sum(-1).view(batch, channels, num_query)
    return F.linear(out.transpose(1, 2), p["output_proj.weight"], p["output_proj.bias"])


def test_pixel_decoder_encoder_layer_matches_mmdet(mmdet_sd, hf):
    """BaseTransformerLayer('self_attn', 'norm', 'ffn', 'norm') with MSDeformAttn: value without, query with pos."""
    torch.manual_seed(3)
    p = sub(mmdet_sd, "panoptic_head.pixel_decoder.encoder.layers.2.")
    shapes = [(2, 3), (4, 5), (6, 4)]
    x, pos = torch.randn(2, 50, 256), torch.randn(2, 50, 256)
    reference_points = torch.rand(2, 50, 3, 2)
    want = x + mmcv_deformable_attention(x + pos, x, reference_points, shapes, sub(p, "attentions.0."))
    want = F.layer_norm(want, (256,), p["norms.0.weight"], p["norms.0.bias"])
    ffn = F.linear(F.relu(F.linear(want, p["ffns.0.layers.0.0.weight"], p["ffns.0.layers.0.0.bias"])),
                   p["ffns.0.layers.1.weight"], p["ffns.0.layers.1.bias"])
    want = F.layer_norm(want + ffn, (256,), p["norms.1.weight"], p["norms.1.bias"])
    with torch.no_grad():
        got = hf.model.pixel_level_module.decoder.encoder.layers[2](
            x, torch.zeros(2, 50, dtype=torch.bool), position_embeddings=pos, reference_points=reference_points,
            spatial_shapes_list=shapes, level_start_index=torch.tensor([0, 6, 26]))
    torch.testing.assert_close(got[0], want, rtol=1e-4, atol=1e-5)


def multihead_attention(query, key, value, p, heads=8, mask=None):
    """nn.MultiheadAttention on (length, batch, channels) with a fused in_proj; bool ``mask`` True = not attended."""
    length, batch, channels = query.shape
    head_dim = channels // heads

    def project(t, w, b):
        return F.linear(t, w, b).reshape(t.shape[0], batch * heads, head_dim).transpose(0, 1)

    (wq, wk, wv), (bq, bk, bv) = p["attn.in_proj_weight"].chunk(3), p["attn.in_proj_bias"].chunk(3)
    logits = project(query, wq, bq) @ project(key, wk, bk).transpose(1, 2) * head_dim ** -0.5
    if mask is not None:
        logits = logits.masked_fill(mask, float("-inf"))
    out = (logits.softmax(-1) @ project(value, wv, bv)).transpose(0, 1).reshape(length, batch, channels)
    return F.linear(out, p["attn.out_proj.weight"], p["attn.out_proj.bias"])


def mmdet_decoder_layer(query, query_pos, memory, memory_pos, mask, p):
    """DetrTransformerDecoderLayer, operation_order ('cross_attn', 'norm', 'self_attn', 'norm', 'ffn', 'norm'):
    mmcv MultiheadAttention adds query_pos/key_pos to query and key (not value) and the un-positioned identity."""
    def norm(x, i):
        return F.layer_norm(x, (x.shape[-1],), p[f"norms.{i}.weight"], p[f"norms.{i}.bias"])

    x = norm(query + multihead_attention(query + query_pos, memory + memory_pos, memory, sub(p, "attentions.0."),
                                         mask=mask), 0)
    x = norm(x + multihead_attention(x + query_pos, x + query_pos, x, sub(p, "attentions.1.")), 1)
    ffn = F.linear(F.relu(F.linear(x, p["ffns.0.layers.0.0.weight"], p["ffns.0.layers.0.0.bias"])),
                   p["ffns.0.layers.1.weight"], p["ffns.0.layers.1.bias"])
    return norm(x + ffn, 2)


def test_masked_attention_decoder_layer_matches_mmdet(mmdet_sd, hf):
    torch.manual_seed(4)
    queries, batch, keys = 10, 2, 12
    query, query_pos = torch.randn(queries, batch, 256), torch.randn(queries, batch, 256)
    memory, memory_pos = torch.randn(keys, batch, 256), torch.randn(keys, batch, 256)
    mask = torch.rand(batch * 8, queries, keys) < 0.4  # True = masked out, as mmdet's ``sigmoid() < 0.5``
    mask[..., 0] = False  # no fully masked row
    want = mmdet_decoder_layer(query, query_pos, memory, memory_pos, mask,
                               sub(mmdet_sd, "panoptic_head.transformer_decoder.layers.4."))
    with torch.no_grad():
        got = hf.model.transformer_module.decoder.layers[4](
            query, level_index=0, position_embeddings=[memory_pos], query_position_embeddings=query_pos,
            encoder_hidden_states=[memory], encoder_attention_mask=mask)
    torch.testing.assert_close(got[0], want, rtol=1e-4, atol=1e-5)


def test_first_prediction_matches_mmdet(mmdet_sd, hf):
    """mmdet ``_forward_head`` on the bare ``query_feat`` (the prediction made before any decoder layer):
    post_norm, then cls_embed, and the Linear-ReLU-Linear-ReLU-Linear mask_embed dotted with the mask features."""
    torch.manual_seed(5)
    p = sub(mmdet_sd, "panoptic_head.")
    features, mask_features = [torch.randn(1, 256, s, s) for s in (2, 4, 8)], torch.randn(1, 256, 16, 16)
    normed = F.layer_norm(p["query_feat.weight"], (256,), p["transformer_decoder.post_norm.weight"],
                          p["transformer_decoder.post_norm.bias"])
    embed = normed
    for i in (0, 2, 4):
        embed = F.linear(embed, p[f"mask_embed.{i}.weight"], p[f"mask_embed.{i}.bias"])
        embed = F.relu(embed) if i < 4 else embed
    with torch.no_grad():
        out = hf.model.transformer_module(features, mask_features)
        torch.testing.assert_close(hf.class_predictor(out.intermediate_hidden_states[0][:, 0]),
                                   F.linear(normed, p["cls_embed.weight"], p["cls_embed.bias"]))
    torch.testing.assert_close(out.masks_queries_logits[0][0], torch.einsum("qc,chw->qhw", embed, mask_features[0]),
                               rtol=1e-4, atol=1e-5)


def assert_one_line_error(excinfo, *parts):
    message = str(excinfo.value)
    assert "\n" not in message
    for part in parts:
        assert part in message


def test_unknown_key_is_one_line_error(mmdet_sd):
    with pytest.raises(GtRError) as err:
        convert_mmdet_mask2former({**mmdet_sd, "panoptic_head.extra_head.weight": torch.zeros(1)})
    assert_one_line_error(err, "'panoptic_head.extra_head.weight'", NOT_THIS_FILE)
    with pytest.raises(GtRError) as err:  # the whole checkpoint instead of its state dict
        convert_mmdet_mask2former({"meta": {}, "state_dict": mmdet_sd})
    assert_one_line_error(err, "'meta'", NOT_THIS_FILE)


def test_foreign_relative_position_index_is_refused(mmdet_sd):
    key = "backbone.stages.2.blocks.7.attn.w_msa.relative_position_index"
    with pytest.raises(GtRError) as err:  # the index without mmdet's flip: a different bias lookup
        convert_mmdet_mask2former({**mmdet_sd, key: mmdet_relative_position_index().flip(1)})
    assert_one_line_error(err, key, NOT_THIS_FILE)


def test_missing_key_is_one_line_error(mmdet_sd):
    incomplete = {k: v for k, v in mmdet_sd.items() if k != "panoptic_head.query_feat.weight"}
    with pytest.raises(GtRError) as err:
        mmdet_to_hf(incomplete)
    assert_one_line_error(err, "1 missing", "model.transformer_module.queries_features.weight", NOT_THIS_FILE)


def mmcv_checkpoint(state_dict: dict) -> dict:
    """What mmcv 1.x ``save_checkpoint`` writes (optimizer already dropped by mmdet's publish_model)."""
    meta = {"env_info": "sys.platform: linux", "config": "model = dict(type='Mask2Former')", "seed": 42,
            "exp_name": "mask2former_swin-s-p4-w7-224_lsj_8x2_50e_coco.py", "mmdet_version": "2.24.1+abc1234",
            "epoch": 1, "iter": 368750, "hook_msgs": {"last_ckpt": "work_dirs/iter_368750.pth"},
            "mmcv_version": "1.4.8", "time": "Wed May  4 00:17:56 2022", "CLASSES": OBJECT_NAMES}
    return {"meta": meta, "state_dict": OrderedDict(state_dict)}


# torch's zip reader fails one way on a cut file and another (OSError) when the cut leaves under ~64 KB
@pytest.mark.parametrize("zipfile, queries", [(True, 400), (True, 10), (False, 100)],
                         ids=["zip", "small-zip", "legacy"])
def test_checkpoint_file_reads_weights_only_and_truncation_is_one_line(tmp_path, zipfile, queries):
    torch.manual_seed(6)
    state_dict = {"panoptic_head.query_feat.weight": torch.randn(queries, 256),
                  "backbone.stages.0.blocks.0.attn.w_msa.relative_position_index": mmdet_relative_position_index()}
    path = tmp_path / "m2f.pth"
    torch.save(mmcv_checkpoint(state_dict), path, _use_new_zipfile_serialization=zipfile)
    loaded = load_mmdet_checkpoint(path)
    assert loaded.keys() == state_dict.keys() and all(torch.equal(loaded[k], v) for k, v in state_dict.items())
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(GtRError) as err:
        load_mmdet_checkpoint(path)
    assert_one_line_error(err, str(path), CHECKPOINT_URL)


def test_missing_or_foreign_file_is_one_line_error(tmp_path):
    with pytest.raises(GtRError) as err:
        load_mmdet_checkpoint(tmp_path / "absent.pth")
    assert_one_line_error(err, "absent.pth", CHECKPOINT_URL)
    torch.save({"model": {"w": torch.zeros(1)}}, tmp_path / "other.pth")
    with pytest.raises(GtRError) as err:
        load_mmdet_checkpoint(tmp_path / "other.pth")
    assert_one_line_error(err, "state_dict", NOT_THIS_FILE, CHECKPOINT_URL)


def test_geneval_detector_from_the_official_file_layout(tmp_path, mmdet_sd):
    """load_detector("mmdet") finds the file where the official evaluator keeps it (under weights.root), converts
    it and runs mmdet's test pipeline and post-processing on an image; without it, one line naming the key."""
    from PIL import Image
    from gtr.eval.geneval.detector import load_detector
    from gtr.weights import WEIGHTS
    path = tmp_path / WEIGHTS["geneval_mask2former"].relpath
    path.parent.mkdir(parents=True)
    torch.save(mmcv_checkpoint(mmdet_sd), path)
    detector = load_detector("mmdet", root=tmp_path, download=False)
    assert detector.label == "GenEval"
    per_class = detector(Image.new("RGB", (64, 48), (90, 140, 200)))
    assert len(per_class) == 80 and sum(len(boxes) for boxes, _ in per_class) == 100  # top 100 (query, class)
    boxes, masks = max(per_class, key=lambda bm: len(bm[0]))
    assert boxes.shape[1] == 5 and masks.shape[1:] == (48, 64) and ((boxes[:, 4] >= 0) & (boxes[:, 4] <= 1)).all()
    with pytest.raises(GtRError) as err:
        load_detector("mmdet", root=tmp_path / "nowhere", download=False)
    assert_one_line_error(err, "geneval.detector_path", CHECKPOINT_URL)
