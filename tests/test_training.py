"""Training: the objectives learn, a killed run resumes exactly, and the jobs of scripts/train.py export loadable
weights. Real images come from the committed Fashion-MNIST subset."""
import numpy as np
import pytest
import torch

from conftest import DATA
from gtr.data import FashionMNIST
from gtr.errors import GtRError
from gtr.models import build_mar
from gtr.config import compose_config
from gtr.tokenizers import build_tokenizer, load_tokenizer
from gtr.training.jobs import JOBS, export
from gtr.training.loop import EpochSampler, Trainer, cosine_lr
from gtr.training.objectives import mar_loss, mask_ratios

SUBSET = DATA / "fashion_mnist_subset"
SMALL_MAR = dict(encoder_embed_dim=32, decoder_embed_dim=32, encoder_depth=1, decoder_depth=1, encoder_num_heads=2,
                 decoder_num_heads=2, diffloss_d=1, diffloss_w=32)


def test_mask_ratios_follow_the_truncated_gaussian():
    r = mask_ratios(20000, np.random.default_rng(0))
    assert r.min() >= 0.7 and r.max() <= 1.0
    assert 0.86 < r.mean() < 0.88  # E of N(1, 0.25) truncated to [0.7, 1] is 0.871


def test_cosine_lr_warms_up_then_decays():
    lrs = [cosine_lr(s, 100, 10, 1.0) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:])) and lrs[-1] < 0.01


def test_epoch_sampler_is_a_reproducible_permutation():
    a, b = EpochSampler(100, 32, seed=3), EpochSampler(100, 32, seed=3)
    epoch = torch.cat([a.batch(k) for k in range(3)])
    assert len(set(epoch.tolist())) == 96
    assert torch.equal(a.batch(4), b.batch(4)) and not torch.equal(a.batch(0), a.batch(3))
    with pytest.raises(GtRError, match="batch_size"):
        EpochSampler(10, 32, 0)


def _mar_setup(tmp_path, total_steps=12, **trainer_options):
    images, labels = FashionMNIST("train", SUBSET).tensors()
    tokens = torch.nn.functional.avg_pool2d(images, 4).repeat(1, 4, 1, 1)  # [N, 4, 7, 7] stand-in latents
    model = build_mar("mar_fmnist", **SMALL_MAR).train()
    trainer = Trainer(model, tmp_path, total_steps=total_steps, lr=3e-3, warmup_steps=2, checkpoint_every=3,
                      log_every=4, ema_decay=0.9, grad_clip=3.0, progress=False, **trainer_options)
    batches = EpochSampler(len(images), 32, 0)

    def step(i, rnd):
        idx = batches.batch(i)
        return mar_loss(model, model.patchify(tokens[idx]), labels[idx], rnd.numpy, rnd.torch), {}

    return model, trainer, step


def test_mar_training_reduces_the_loss(tmp_path):
    _, trainer, step = _mar_setup(tmp_path, total_steps=40)
    trainer.run(step)
    losses = [h["loss"] for h in trainer.history]
    assert losses[-1] < 0.8 * losses[0], losses


def test_a_killed_run_resumes_exactly(tmp_path):
    _, full, step = _mar_setup(tmp_path / "full")
    full.run(step)

    _, first, step1 = _mar_setup(tmp_path / "killed")

    def killed_at_step_7(i, rnd):
        if i == 7:
            raise KeyboardInterrupt  # the job dies after its step-6 checkpoint
        return step1(i, rnd)

    with pytest.raises(KeyboardInterrupt):
        first.run(killed_at_step_7)
    _, second, step2 = _mar_setup(tmp_path / "killed")
    assert second.resume() and second.step == 6
    second.run(step2)
    for key, value in full.final_weights().items():
        assert torch.equal(value, second.final_weights()[key]), key
    assert [h["step"] for h in second.history] == [h["step"] for h in full.history]


def test_train_script_jobs_export_loadable_weights(tmp_path):
    vae_path = export(build_tokenizer("fmnist_vae").vae.state_dict(), tmp_path / "vae.safetensors",
                      {"scale": 0.5, "shift": 0.1})
    tok = load_tokenizer("fmnist_vae", vae_path)
    assert (tok.scale, tok.shift) == (0.5, 0.1)
    common = [f"data.root={SUBSET}", "progress=false", "train.steps=2", "train.batch_size=16", "train.log_every=1"]
    for job, extra in [("tokenizer", []), ("mar", [f"train.tokenizer.checkpoint={vae_path}"]), ("classifier", [])]:
        cfg = compose_config(f"train={job}", f"out_dir={tmp_path / job}", *common, *extra, name="train")
        path = JOBS[job](cfg)
        assert path.is_file() and (tmp_path / job / "last.pt").is_file()
    from gtr.models import load_mar
    model = load_mar("mar_fmnist", tmp_path / "mar" / "mar_fmnist.safetensors")
    assert model.seq_h == 7 and model.config.vae_embed_dim == 4


def test_testbed16_jobs_train_on_32px_images_and_export_loadable_weights(tmp_path):
    """The 16x16-token testbed's jobs: the tokenizer trains on 32x32 resizes (stride 2 -> 16x16 latents) and records
    its image size; MAR trains on its latents and loads as mar_fmnist16."""
    common = [f"data.root={SUBSET}", "progress=false", "train.steps=2", "train.batch_size=16", "train.log_every=1"]
    cfg = compose_config("train=tokenizer16", f"out_dir={tmp_path / 'tok'}", *common, name="train")
    vae_path = JOBS["tokenizer"](cfg)
    from safetensors import safe_open
    with safe_open(str(vae_path), "pt") as f:
        meta = f.metadata()
    assert meta["image_size"] == "32" and meta["architecture"] == "fmnist16_vae"
    tok = load_tokenizer("fmnist16_vae", vae_path)
    assert tok.encode(torch.zeros(2, 1, 32, 32)).shape == (2, 4, 16, 16)
    cfg = compose_config("train=mar16", f"out_dir={tmp_path / 'mar'}", f"train.tokenizer.checkpoint={vae_path}",
                         *common, name="train")
    path = JOBS["mar"](cfg)
    from gtr.models import load_mar
    model = load_mar("mar_fmnist16", path)
    assert model.seq_h == 16 and model.seq_len == 256


def test_resize_fills_the_frame():
    """28 -> 32 is a bilinear resize (no constant border), 32 -> 28 antialiased; uint8 stays uint8."""
    from gtr.data import resize
    images = FashionMNIST("test", SUBSET).tensors()[0][:4]
    big = resize(images, 32)
    assert big.shape == (4, 1, 32, 32) and -1 <= big.min() and big.max() <= 1

    def extent(x):  # rows and columns that hold the garment
        on = x[0, 0] > -0.5
        rows, cols = on.any(1).nonzero(), on.any(0).nonzero()
        return (rows.max() - rows.min() + 1).item(), (cols.max() - cols.min() + 1).item()

    for small, large in zip(images, big):  # the garment is scaled with the frame, not surrounded by a border
        (h, w), (bh, bw) = extent(small[None]), extent(large[None])
        assert abs(bh - h * 32 / 28) <= 1.5 and abs(bw - w * 32 / 28) <= 1.5
    raw = FashionMNIST("test", SUBSET, normalize=False).images[:4, None]
    assert resize(raw, 32).dtype == torch.uint8
    assert (resize(big, 28) - images).abs().mean() < 0.1  # the round trip only blurs


@pytest.mark.parametrize("content, expected", [
    (b"", "truncated or not a PyTorch checkpoint"),
    (b"garbage" * 10, "truncated or not a PyTorch checkpoint"),
    (None, "no 'optimizer'"),  # a checkpoint of something else
])
def test_an_unreadable_last_checkpoint_is_one_line(tmp_path, content, expected):
    _, trainer, _ = _mar_setup(tmp_path)
    trainer.out.mkdir(parents=True, exist_ok=True)
    if content is None:
        torch.save({"model": trainer.model.state_dict()}, trainer.checkpoint_path)
    else:
        trainer.checkpoint_path.write_bytes(content)
    with pytest.raises(GtRError, match=f"cannot resume.*{expected}.*delete it to start over, or set resume=false"):
        trainer.resume()


def test_batch_size_must_be_a_positive_integer():
    for bad in (0, -4, 2.5, True):
        with pytest.raises(GtRError, match="train.batch_size must be an integer >= 1"):
            EpochSampler(100, bad, 0)


def test_scenes_jobs_train_on_generated_scenes_and_export_loadable_weights(tmp_path):
    """The scenes testbed's three jobs on a few generated images (train.limit): the RGB tokenizer gives 4x16x16
    latents of 32x32 scenes, MAR trains on them and loads as mar_scenes, the classifier has 12 classes."""
    common = ["progress=false", "train.steps=2", "train.batch_size=8", "train.log_every=1", "train.limit=64"]
    cfg = compose_config("train=tokenizer_scenes", f"out_dir={tmp_path / 'tok'}", *common, name="train")
    vae_path = JOBS["tokenizer"](cfg)
    tok = load_tokenizer("scenes_vae", vae_path)
    assert tok.encode(torch.zeros(2, 3, 32, 32)).shape == (2, 4, 16, 16)
    cfg = compose_config("train=mar_scenes", f"out_dir={tmp_path / 'mar'}", f"train.tokenizer.checkpoint={vae_path}",
                         *common, name="train")
    from gtr.models import load_mar
    model = load_mar("mar_scenes", JOBS["mar"](cfg))
    assert model.seq_h == 16 and model.config.class_num == 12
    cfg = compose_config("train=classifier_scenes", f"out_dir={tmp_path / 'cls'}", *common, name="train")
    from gtr.eval.scenes import load_classifier
    assert load_classifier(JOBS["classifier"](cfg)).head.out_features == 12


def test_a_resume_under_other_settings_is_refused(tmp_path):
    """train.lr, train.batch_size, the seed ... changed between a stop and its resume: one line naming the change;
    the options that change no result (checkpoint_every, log_every) may change."""
    common = [f"data.root={SUBSET}", "progress=false", "train.steps=2", "train.batch_size=16", "train.log_every=1"]
    out = f"out_dir={tmp_path}"
    JOBS["classifier"](compose_config("train=classifier", out, *common, name="train"))
    for change, named in (("train.lr=0.5", "train.lr"), ("seed=3", "seed"), ("train.batch_size=8", "train.batch_size")):
        cfg = compose_config("train=classifier", out, *common, change, name="train")
        with pytest.raises(GtRError, match=f"cannot resume .* under other settings \\({named}: .*set resume=false"):
            JOBS["classifier"](cfg)
    cfg = compose_config("train=classifier", out, *common, "train.steps=3", "train.log_every=2", name="train")
    with pytest.raises(GtRError, match="train.steps: 2 -> 3"):
        JOBS["classifier"](cfg)
    JOBS["classifier"](compose_config("train=classifier", out, *common, "train.checkpoint_every=7", name="train"))


@pytest.mark.parametrize("option, message", [
    ("train.lr=-1", "train.lr=-1: give a learning rate > 0"), ("train.lr=nan", "train.lr=nan"),
    ("train.warmup_steps=-5", "train.warmup_steps must be an integer >= 0"),
    ("train.ema_decay=1.5", "give an EMA decay in \\[0, 1\\)"), ("train.grad_clip=0", "gradient-norm clip > 0"),
    ("train.weight_decay=-1", "weight decay >= 0"), ("train.betas=[0.9]", "two Adam betas"),
    ("train.label_drop_prob=1.0", "train.label_drop_prob=1.0: give a probability in \\[0, 1\\)"),
])
def test_training_options_out_of_range_are_refused_before_any_work(option, message):
    with pytest.raises(GtRError, match=message):
        compose_config("train=mar_scenes", "out_dir=unused", option, name="train")


def test_a_full_disk_while_checkpointing_is_one_line(tmp_path, monkeypatch, capsys):
    """torch.save reports a failed write (a full disk) as a RuntimeError: the job ends with one line."""
    from gtr.errors import one_line_errors

    def full(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed writing file "
                           "data/0: file write failed")
    trainer = Trainer(torch.nn.Linear(2, 2), tmp_path, total_steps=1, lr=1e-3)
    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(SystemExit) as stop, one_line_errors(tmp_path):
        trainer.save()
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1 and "last.pt" in err and "re-run" in err
    assert not list(tmp_path.glob("*.tmp*"))  # nothing half-written left
