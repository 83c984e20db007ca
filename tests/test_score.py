"""The standalone scorer: a folder and the same images as an ADM .npz score alike, statistics written once score
the same images to ~0, the .npz is streamed in blocks, and bad inputs are one line (exit 2) before any work."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import DATA, REPO, one_line_exit
from gtr.cli import score
from gtr.data import FashionMNIST
from gtr.errors import GtRError
from gtr.eval.sources import npz_batches

SUBSET = DATA / "fashion_mnist_subset"


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """45 Fashion-MNIST test images as RGB PNGs, the same as an ADM .npz, and their labels."""
    root = tmp_path_factory.mktemp("score")
    data = FashionMNIST("test", SUBSET)
    pixels = np.stack([np.asarray(data[i][0]) for i in range(45)])
    if pixels.ndim == 4:  # [N, 1, H, W] float in [0, 1] or [-1, 1]
        pixels = pixels[:, 0]
    if pixels.dtype != np.uint8:
        pixels = np.clip((pixels - pixels.min()) / (pixels.max() - pixels.min()) * 255 + 0.5, 0, 255).astype(np.uint8)
    rgb = np.repeat(pixels[..., None], 3, axis=-1)
    folder = root / "images"
    folder.mkdir()
    for i, image in enumerate(rgb):
        Image.fromarray(image).save(folder / f"{i:05d}.png")
    np.savez(root / "samples.npz", arr_0=rgb)
    labels = np.array([int(data[i][1]) for i in range(45)], dtype=np.int64)
    np.save(root / "labels.npy", labels)
    return root, rgb


def run(*args):
    return subprocess.run([sys.executable, str(REPO / "scripts" / "score.py"), *map(str, args)], capture_output=True,
                          text=True, timeout=600)


def test_npz_is_streamed_in_blocks_equal_to_the_array(images):
    root, rgb = images
    count, batches = npz_batches(root / "samples.npz", batch_size=20)
    blocks = list(batches)
    assert count == 45 and [len(b) for b in blocks] == [20, 20, 5]
    assert torch.equal(torch.cat(blocks), torch.from_numpy(rgb))


def test_folder_and_npz_score_alike_and_saved_statistics_score_them_to_zero(images, capsys):
    root, _ = images
    common = ["--extractor", "fmnist", "--data-root", SUBSET, "--device", "cpu"]
    results = []
    for source in (root / "images", root / "samples.npz"):
        score([str(source), "--reference", "fashion_mnist:test", "--labels", str(root / "labels.npy"),
               "--out", str(root / f"{source.stem}.json"), *map(str, common)])
        results.append(json.loads((root / f"{source.stem}.json").read_text()))
    assert results[0]["num_images"] == results[1]["num_images"] == 45
    for key in ("fid_fmnist", "is_fmnist", "accuracy"):
        assert results[0][key] == pytest.approx(results[1][key], rel=1e-9)
    assert results[0]["accuracy"] > 0.5  # real images of their own classes
    score([str(root / "images"), "--save-stats", str(root / "stats.npz"), *map(str, common)])
    score([str(root / "samples.npz"), "--reference", str(root / "stats.npz"), "--out", str(root / "self.json"),
           *map(str, common)])
    assert abs(json.loads((root / "self.json").read_text())["fid_fmnist"]) < 1e-3
    capsys.readouterr()


@pytest.mark.parametrize("case, message", [
    ("no_reference", "say what to compare with: --reference adm_in256"),
    ("not_images", "is neither a folder of images nor an .npz of samples"),
    ("wrong_npz", "has no arr_0 (the ADM sample layout): it holds mu, sigma"),
    ("bad_labels", "got 3 labels for 45 images"),
])
def test_bad_inputs_are_one_line(images, case, message, capsys):
    """One case through the script (a real process: exit 2, one line, no traceback); the others through the same
    entry point in this process, which is what the script calls."""
    root, _ = images
    np.savez(root / "stats_only.npz", mu=np.zeros(2), sigma=np.eye(2))
    np.save(root / "three.npy", np.arange(3))
    args = {"no_reference": [root / "images"],
            "not_images": [root / "labels.npy", "--reference", "fashion_mnist:test"],
            "wrong_npz": [root / "stats_only.npz", "--reference", "fashion_mnist:test"],
            "bad_labels": [root / "images", "--reference", "fashion_mnist:test", "--labels", root / "three.npy"]}[case]
    args = [*args, "--extractor", "fmnist", "--data-root", SUBSET, "--device", "cpu"]
    if case == "no_reference":
        done = run(*args)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, done.stderr
        line = lines[0]
    else:
        line = one_line_exit(capsys, score, [str(a) for a in args])
    assert message in line


def test_scorer_module_rejects_a_truncated_npz(images, tmp_path):
    root, _ = images
    data = (root / "samples.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(GtRError):
        count, batches = npz_batches(tmp_path / "cut.npz")
        list(batches)


def test_pack_npz_streams_pngs_into_the_adm_layout(images, tmp_path):
    from gtr.jobs.generate import pack_npz
    root, rgb = images
    path = pack_npz(sorted((root / "images").glob("*.png")), tmp_path / "samples.npz")
    with np.load(path, allow_pickle=False) as data:
        assert list(data) == ["arr_0"] and np.array_equal(data["arr_0"], rgb)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "small.png")
    with pytest.raises(GtRError, match="one .npz holds images of one size"):
        pack_npz([root / "images" / "00000.png", tmp_path / "small.png"], tmp_path / "mixed.npz")
    assert not (tmp_path / "mixed.npz").exists() and not (tmp_path / ".mixed.tmp.npz").exists()


def test_a_reference_that_cannot_mean_anything_is_refused_or_flagged_before_generating(tmp_path):
    """metrics.reference is checked before any image is generated: statistics of another extractor's feature size
    and a folder of fewer than 2 images are refused; a run or reference smaller than the feature size is scored
    with a warning in its record."""
    from gtr.eval.metrics import Scoring
    from gtr.config import compose_config
    np.savez(tmp_path / "small.npz", mu=np.zeros(64), sigma=np.eye(64))
    cfg = compose_config("model=mar_tiny", f"metrics.reference={tmp_path / 'small.npz'}", name="generate")
    with pytest.raises(GtRError, match="64-d statistics but the inception extractor gives 2048-d features"):
        Scoring.from_config(cfg).preflight()
    (tmp_path / "one").mkdir()
    Image.fromarray(np.zeros((28, 28, 3), np.uint8)).save(tmp_path / "one" / "00000.png")
    cfg = compose_config("model=mar_fmnist", f"metrics.reference={tmp_path / 'one'}", name="generate")
    with pytest.raises(GtRError, match="holds 1 images: need at least 2"):
        Scoring.from_config(cfg).preflight()
    np.savez(tmp_path / "stats.npz", mu=np.zeros(128), sigma=np.eye(128))
    cfg = compose_config("model=mar_fmnist", f"metrics.reference={tmp_path / 'stats.npz'}", name="generate")
    Scoring.from_config(cfg).preflight()  # the analogue's 128-d statistics fit
    batch = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (20, 28, 28, 3), dtype=np.uint8))
    result = Scoring.from_config(cfg).score([batch], torch.device("cpu"), num_images=20)
    assert "the sample has 20 images, fewer than the 128 feature dimensions" in result["fid_warning"]
