"""The embedded default: Fashion-MNIST data, the shipped tokenizer / MAR / classifier, the domain metrics and the
toy study in its reduced mode."""
import gzip
import json

import numpy as np
import pytest
import scipy.linalg
import torch

import gtr
from conftest import DATA, write_random_inception
from gtr.data import FashionMNIST, fashion_mnist, read_idx
from gtr.errors import GtRError
from gtr.eval.fashion import FashionExtractor, load_classifier, reference_statistics
from gtr.eval.metrics import Reference, score
from gtr.eval.fid import frechet_distance, inception_score, load_statistics, save_statistics, statistics
from gtr.config import compose_config
from gtr.jobs.common import load_configured_model, load_image_tokenizer, sampler_from_config

SUBSET = DATA / "fashion_mnist_subset"


def test_subset_loads_as_a_dataset():
    data = FashionMNIST("test", SUBSET)
    image, label = data[0]
    assert len(data) == 160 and image.shape == (1, 28, 28) and -1 <= image.min() < image.max() <= 1
    assert data.labels.bincount().tolist() == [16] * 10


def test_missing_data_names_every_route(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "debian")
    monkeypatch.setattr(fashion_mnist, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.delenv("GTR_FASHION_MNIST", raising=False)
    with pytest.raises(GtRError, match=r"apt-get install dataset-fashion-mnist.*data.root=.*online"):
        FashionMNIST("train")
    with pytest.raises(GtRError, match="does not hold the Fashion-MNIST files"):
        FashionMNIST("train", tmp_path)


def test_download_route_fills_the_cache(tmp_path, monkeypatch):
    """With no local copy and downloads allowed, the four files are fetched into the cache (network stubbed)."""
    import shutil
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "debian")
    monkeypatch.setattr(fashion_mnist, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.delenv("GTR_FASHION_MNIST", raising=False)
    monkeypatch.setenv("GTR_OFFLINE", "0")
    fetched = []

    def fake_download(url, dest, desc="", check=None):
        assert url.startswith(fashion_mnist.MIRROR)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SUBSET / url.rsplit("/", 1)[1], dest)
        fetched.append(dest.name)

    monkeypatch.setattr(fashion_mnist, "download_file", fake_download)
    data = FashionMNIST("test")
    assert data.root == tmp_path / "cache" and len(fetched) == 4 and len(data) == 160
    FashionMNIST("train")  # now cached: no second download
    assert len(fetched) == 4


def test_truncated_idx_file_is_a_clear_error(tmp_path):
    raw = gzip.decompress((SUBSET / "t10k-images-idx3-ubyte.gz").read_bytes())
    bad = tmp_path / "bad.gz"
    bad.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(GtRError, match="truncated"):
        read_idx(bad)


def test_frechet_distance_matches_an_independent_scipy_computation():
    g = np.random.default_rng(0)
    a, b = g.normal(size=(300, 8)), g.normal(0.3, 1.2, size=(200, 8)) @ g.normal(size=(8, 8))
    s1, s2 = statistics(torch.from_numpy(a)), statistics(torch.from_numpy(b))
    mu1, mu2, c1, c2 = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(c1 @ c2).real
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(c1 + c2 - 2 * covmean)
    assert frechet_distance(s1, s2) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(s1, s1) == pytest.approx(0, abs=1e-6)


def test_inception_score_on_known_logits():
    # Confident, uniformly spread predictions over K classes give IS = K; identical predictions give 1.
    k = 10
    logits = torch.full((1000, k), -1e4, dtype=torch.float64)
    logits[torch.arange(1000), torch.arange(1000) % k] = 0
    assert inception_score(logits, splits=1)[0] == pytest.approx(k, rel=1e-6)
    assert 9.0 < inception_score(logits, splits=10)[0] < k  # shuffled splits are not exactly balanced
    assert inception_score(torch.zeros(100, k), splits=10)[0] == pytest.approx(1.0)


def test_statistics_file_round_trip_and_errors(tmp_path):
    stats = statistics(torch.randn(50, 4, dtype=torch.float64))
    path = save_statistics(stats, tmp_path / "ref.npz")
    assert np.array_equal(load_statistics(path)["sigma"], stats["sigma"])
    np.savez(tmp_path / "bad.npz", mean=stats["mu"])
    with pytest.raises(GtRError, match="no 'mu' and 'sigma'"):
        load_statistics(tmp_path / "bad.npz")
    with pytest.raises(GtRError, match="not found"):
        load_statistics(tmp_path / "missing.npz")


def test_shipped_classifier_recognises_real_images():
    data = FashionMNIST("test", SUBSET, normalize=False)
    images = data.images[..., None].expand(-1, -1, -1, 3)
    extractor = FashionExtractor()
    result = score(images.split(1000), extractor, Reference(reference_statistics(extractor, "test", SUBSET)),
                   labels=data.labels)
    assert result["accuracy"] >= 0.8
    assert result["fid_fmnist"] < 5.0  # the same images as the reference


def test_shipped_models_generate_recognisable_classes():
    """The shipped MAR + tokenizer with the default GtR sampler; the shipped classifier must recognise the
    requested class of most samples (the toy study measures ~the same on 1000s of samples)."""
    cfg = compose_config()
    assert cfg.model.name == "mar_fmnist" and cfg.sampler.name == "gtr"
    model = load_configured_model(cfg, torch.device("cpu"))
    tokenizer = load_image_tokenizer(cfg.model.tokenizer, cfg.weights, torch.device("cpu"))
    sampler = sampler_from_config(dict(cfg.sampler), cfg.diffusion)
    labels = torch.arange(40) % 10
    images = gtr.to_uint8(tokenizer.decode(gtr.sample(model, sampler, labels, seed=0)))
    assert images.shape == (40, 28, 28, 3)
    _, logits = FashionExtractor(load_classifier())(images)
    accuracy = (logits.argmax(1) == labels).float().mean().item()
    assert accuracy >= 0.6, accuracy


def test_toy_study_reduced_mode(tmp_path, monkeypatch):
    """The script's three uses, in this process (its main, as the command line calls it)."""
    from gtr.study.cli import toy
    out = tmp_path / "toy_study"

    def toy_study(*args):
        toy(["--quick", "--rows", "mar_16", "gtr_10", "--samples", "20", "--out", str(out), *args])

    toy_study("--figure3-images", "4", "--data-root", str(SUBSET))
    report = out.with_suffix(".md").read_text()
    assert "GtR (6, 2, 2)" in report and "checkerboard" in report
    assert (tmp_path / "toy_study_speed_quality.png").is_file() and (tmp_path / "toy_study_figure3.png").is_file()

    # Rows measured on a GPU get CPU timings on this machine without being re-measured.
    state = json.loads(out.with_suffix(".json").read_text())
    state["settings"]["device"] = "cuda"
    out.with_suffix(".json").write_text(json.dumps(state))
    toy_study("--device", "cuda", "--cpu-timing", "3")
    timed = json.loads(out.with_suffix(".json").read_text())
    assert all(timed["rows"][k]["cpu_s_per_image"] > 0 for k in ("mar_16", "gtr_10"))
    assert timed["rows"]["gtr_10"]["per_seed"] == state["rows"]["gtr_10"]["per_seed"]
    assert "speed (CPU time)" in out.with_suffix(".md").read_text()

    # --retime: every row timed again in one pass, side by side, quality untouched
    toy_study("--retime", "--cpu-timing", "2")
    again = json.loads(out.with_suffix(".json").read_text())
    assert again["cpu_timing"]["images"] == 2 and all("cpu_s_per_image" in r for r in again["rows"].values())
    assert again["rows"]["gtr_10"]["per_seed"] == state["rows"]["gtr_10"]["per_seed"]


def test_inception_extractor_runs_the_real_code_path_on_random_weights(tmp_path, monkeypatch):
    """torch-fidelity's Inception-v3 with random weights saved in the real file layout, through the resolver."""
    from gtr.eval.inception import InceptionExtractor
    root = tmp_path / "weights"
    write_random_inception(root)
    extractor = InceptionExtractor(root=root, download=False)
    images = torch.randint(0, 256, (3, 32, 32, 3), dtype=torch.uint8)
    features, logits = extractor(images)
    assert features.shape == (3, 2048) and logits.shape == (3, 1008) and torch.isfinite(features).all()
    with pytest.raises(GtRError, match="Inception-v3 .* not found .*download"):
        InceptionExtractor(root=tmp_path / "nowhere", download=False)
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "bad.pth")
    with pytest.raises(GtRError, match="does not fit torch-fidelity's Inception-v3"):
        InceptionExtractor(tmp_path / "bad.pth")
