import subprocess
import sys

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL

from conftest import schema, schema_state_dict
from gtr.errors import GtRError
from gtr.tokenizers import build_tokenizer, ldm_to_diffusers, load_tokenizer, to_uint8
from gtr.tokenizers.kl import KL16_CONFIG


def test_hf_tokenizers_and_transformers_import_beside_ours():
    """Our tokenizer package is namespaced: Hugging Face's top-level ``tokenizers`` (which transformers needs)
    must still be the real one in the same process."""
    code = ("import gtr.tokenizers, tokenizers, transformers; "
            "from transformers import PreTrainedTokenizerFast; "
            "assert 'site-packages' in tokenizers.__file__, tokenizers.__file__; "
            "assert hasattr(tokenizers, 'Tokenizer'); print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_official_kl16_layout_converts_exactly():
    ref = schema("kl16")
    with torch.device("meta"):
        vae = AutoencoderKL(**KL16_CONFIG)
    assert sum(p.numel() for p in vae.parameters()) == ref["num_params"]
    ldm = {k: torch.empty(shape, device="meta") for k, shape, _ in ref["state_dict"]}
    ldm["loss.discriminator.main.0.weight"] = torch.empty(3, device="meta")  # training-only entries are dropped
    converted = ldm_to_diffusers(ldm)
    assert {k: tuple(v.shape) for k, v in converted.items()} == {k: tuple(v.shape) for k, v in vae.state_dict().items()}
    # the decoder's up path is numbered the other way round in diffusers
    assert tuple(converted["decoder.up_blocks.0.resnets.0.conv1.weight"].shape) == (512, 512, 3, 3)
    assert tuple(converted["decoder.up_blocks.3.resnets.0.conv1.weight"].shape) == (128, 256, 3, 3)


def test_load_official_kl16_file(tmp_path):
    path = tmp_path / "vae" / "kl16.ckpt"
    path.parent.mkdir()
    sd = schema_state_dict("kl16", 0)
    torch.save({"model": sd}, path)
    tok = load_tokenizer("kl16", root=tmp_path)
    got = tok.vae.state_dict()["decoder.up_blocks.3.upsamplers.0.conv.weight"]
    assert torch.equal(got, sd["decoder.up.1.upsample.conv.weight"])
    assert torch.equal(tok.vae.state_dict()["decoder.mid_block.attentions.0.to_q.weight"],
                       sd["decoder.mid.attn_1.q.weight"][:, :, 0, 0])
    assert tok.scale == 0.2325


def test_wrong_vae_file(tmp_path):
    path = tmp_path / "kl16.ckpt"
    sd = schema_state_dict("kl16", 0)
    del sd["decoder.conv_out.weight"]
    torch.save({"model": sd}, path)
    with pytest.raises(GtRError, match=r"does not fit the kl16 tokenizer: 1 missing \(decoder.conv_out.weight\)"):
        load_tokenizer("kl16", path)
    with pytest.raises(GtRError, match="unknown tokenizer 'kl8'"):
        load_tokenizer("kl8", path)


def test_decode_shapes_and_scale():
    tok = build_tokenizer("kl16_tiny")
    latents = torch.randn(2, 16, 16, 16)
    images = tok.decode(latents)
    assert images.shape == (2, 3, 256, 256)
    # decode divides by the 0.2325 latent scale before the VAE (official: vae.decode(tokens / 0.2325))
    torch.testing.assert_close(images, tok.vae.decode(latents / 0.2325).sample)
    assert tok.encode(images.clamp(-1, 1), torch.Generator().manual_seed(0)).shape == (2, 16, 16, 16)


def test_uint8_conversion_matches_official_rounding():
    x = torch.tensor([-1.5, -1.0, 0.0, 1.0, 2.0]).view(1, 1, 1, 5)
    images = to_uint8(x.expand(1, 3, 1, 5))
    assert images.shape == (1, 1, 5, 3) and images.dtype == torch.uint8
    assert images[0, 0, :, 0].tolist() == [0, 0, 128, 255, 255]  # clipped; 127.5 rounds half to even
    # the official evaluation: np.round(np.clip(((x + 1) / 2) * 255, 0, 255)) on float32 arrays
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 1.2
    official = np.round(np.clip(((x + 1) / 2).numpy().transpose(0, 2, 3, 1) * 255, 0, 255)).astype(np.uint8)
    assert np.array_equal(to_uint8(x).numpy(), official)
