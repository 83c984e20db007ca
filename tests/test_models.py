import pytest
import torch

from conftest import schema, write_mar_checkpoint
from gtr.errors import GtRError
from gtr.models import MAR, build_mar, identify_mar, load_mar, mar_config
from gtr.models.registry import PRESETS

OFFICIAL_COUNTS = {"mar_b": 207_924_768, "mar_l": 478_326_304, "mar_h": 942_403_104}


def meta_model(preset):
    with torch.device("meta"):
        return MAR(PRESETS[preset])


@pytest.mark.parametrize("preset", ["mar_b", "mar_l", "mar_h"])
def test_state_dict_is_the_official_one(preset):
    model = meta_model(preset)
    ours = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    ref = schema(preset)
    assert ours == [(k, shape) for k, shape, _ in ref["state_dict"]]  # same keys, order and shapes
    assert sum(p.numel() for p in model.parameters()) == OFFICIAL_COUNTS[preset] == ref["num_params"]
    assert not list(model.buffers())  # like the official model: nothing outside named_parameters


@pytest.mark.parametrize("preset", ["mar_b", "mar_l", "mar_h"])
def test_strict_load_of_official_layout(tmp_path, preset):
    path = tmp_path / "checkpoint-last.pth"
    model_sd, ema_sd = write_mar_checkpoint(path, preset)
    ema = load_mar(preset, path)
    assert sum(p.numel() for p in ema.parameters()) == OFFICIAL_COUNTS[preset]
    assert not ema.training
    key = "decoder_blocks.3.mlp.fc1.weight"
    assert torch.equal(ema.state_dict()[key], ema_sd[key])  # model_ema by default
    raw = load_mar(preset, path, ema=False)
    assert torch.equal(raw.state_dict()[key], model_sd[key])


def test_official_layout_under_weights_root(tmp_path):
    write_mar_checkpoint(tmp_path / "mar" / "mar_base" / "checkpoint-last.pth", "mar_b")
    assert isinstance(load_mar("mar_b", root=tmp_path), MAR)


def test_wrong_model_names_the_right_preset(tmp_path):
    path = tmp_path / "checkpoint-last.pth"
    write_mar_checkpoint(path, "mar_l")
    with pytest.raises(GtRError, match=r"does not fit MAR-B.*112 unexpected.*wrong shape.*MAR-L checkpoint \(use model=mar_l\)"):
        load_mar("mar_b", path)


def test_wrong_diffusion_mlp_size_is_named(tmp_path):
    path = tmp_path / "checkpoint-last.pth"
    write_mar_checkpoint(path, "mar_b")
    with pytest.raises(GtRError, match=r"24 unexpected.*MAR-B checkpoint \(use model=mar_b without hyperpar"):
        load_mar("mar_b", path, diffloss_d=3)  # the constructor's ablation default does not load
    del_keys = [k for k in torch.load(path, weights_only=True)["model_ema"] if ".res_blocks.5." in k]
    ckpt = torch.load(path, weights_only=True)
    for k in del_keys:
        del ckpt["model_ema"][k]
    torch.save(ckpt, path)
    with pytest.raises(GtRError, match="diffusion MLP has 5 blocks"):
        load_mar("mar_b", path)


def test_identify():
    assert identify_mar(meta_model("mar_h").state_dict()) == "mar_h"
    assert identify_mar({"x": torch.zeros(1)}) is None


def test_any_size_from_hyperparameters():
    model = build_mar(None, encoder_embed_dim=32, decoder_embed_dim=32, encoder_depth=1, decoder_depth=1,
                      encoder_num_heads=2, decoder_num_heads=2, diffloss_d=1, diffloss_w=16, class_num=3,
                      img_size=64)
    assert model.seq_len == 16 and model.diffloss.net.res_blocks[0].mlp[0].in_features == 16
    z = model(torch.zeros(2, 16, 16), torch.zeros(2, 16, dtype=torch.bool), model.condition(torch.tensor([0, 2])))
    assert z.shape == (2, 16, 32)


def test_bad_presets_and_hyperparameters():
    with pytest.raises(GtRError, match="unknown MAR preset 'mar_xl'.*mar_b"):
        build_mar("mar_xl")
    with pytest.raises(GtRError, match="unknown MAR hyperparameter.*depht"):
        mar_config("mar_b", depht=3)


def test_labels_out_of_range():
    model = build_mar("mar_tiny")
    with pytest.raises(GtRError, match=r"class label 10 is outside \[0, 10\)"):
        model.condition(torch.tensor([1, 10]))
    with pytest.raises(GtRError, match="class label -1"):
        model.condition(torch.tensor([-1]))
    for labels in ([1.7, 2.0], [True, False]):  # never truncated or read as classes 1 and 0
        with pytest.raises(GtRError, match="class labels must be integers"):
            model.condition(torch.tensor(labels))


def test_encoder_drops_unknown_tokens_like_the_official_model():
    """Unknown tokens must not influence z at all (they are dropped, not zeroed)."""
    model = build_mar("mar_tiny")
    tokens = torch.randn(1, 256, 16)
    known = torch.zeros(1, 256, dtype=torch.bool)
    known[0, :100] = True
    cond = model.condition(torch.tensor([4]))
    z1 = model(tokens, known, cond)
    tokens2 = tokens.clone()
    tokens2[0, 100:] = 123.0
    assert torch.equal(z1, model(tokens2, known, cond))
    tokens2[0, 5] += 1.0
    assert not torch.allclose(z1, model(tokens2, known, cond))


def test_ragged_known_counts_are_rejected():
    model = build_mar("mar_tiny")
    known = torch.zeros(2, 256, dtype=torch.bool)
    known[0, 0] = True
    with pytest.raises(ValueError, match="same number of known tokens"):
        model(torch.zeros(2, 256, 16), known, model.condition(torch.tensor([0, 1])))


def test_patchify_roundtrip():
    model = build_mar(None, encoder_embed_dim=32, decoder_embed_dim=32, encoder_depth=1, decoder_depth=1,
                      encoder_num_heads=2, decoder_num_heads=2, diffloss_d=1, diffloss_w=16, patch_size=2,
                      vae_stride=8, img_size=64, vae_embed_dim=4)
    latents = torch.randn(2, 4, 8, 8)
    tokens = model.patchify(latents)
    assert tokens.shape == (2, 16, 16)
    # token h*4+w, element c*4+p*2+q sits at [c, 2h+p, 2w+q]
    assert tokens[1, 1 * 4 + 2, 3 * 4 + 1 * 2 + 0] == latents[1, 3, 2 * 1 + 1, 2 * 2 + 0]
    assert torch.equal(model.unpatchify(tokens), latents)
