"""Checks only a GPU can make (skipped without one): the same seed gives the same images on CUDA whatever the batch
split, a rerun is bit-identical, and CUDA agrees with the CPU. Run them with ``python -m pytest tests/test_cuda.py``
on a GPU machine."""
import pytest
import torch
from omegaconf import OmegaConf

import gtr
from gtr.config import compose_config
from gtr.jobs.common import load_configured_model, sampler_from_config

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def setup():
    cfg = compose_config("model=mar_fmnist", "sampler=gtr")
    sampler = sampler_from_config(OmegaConf.to_container(cfg.sampler, resolve=True), cfg.diffusion)
    return cfg, sampler, load_configured_model(cfg, torch.device("cuda"))


@pytest.mark.parametrize("precision,batch_tolerance", [("fp32", 1e-4), ("bf16", 5e-2)])
def test_cuda_batch_split_and_rerun(setup, precision, batch_tolerance):
    _, sampler, model = setup
    labels = torch.arange(80) % 10
    full = gtr.sample(model, sampler, labels, seed=0, precision=precision)
    again = gtr.sample(model, sampler, labels, seed=0, precision=precision)
    parts = torch.cat([gtr.sample(model, sampler, labels[i:i + 40], seed=0, image_ids=range(i, i + 40),
                                  precision=precision) for i in (0, 40)])
    assert torch.equal(full, again)
    # cuBLAS may pick other kernels for other shapes: equal up to float rounding, not bit for bit
    assert (full - parts).abs().max().item() <= batch_tolerance


def test_cuda_matches_cpu(setup):
    cfg, sampler, model = setup
    labels = torch.arange(8)
    on_gpu = gtr.sample(model, sampler, labels, seed=0).cpu()
    on_cpu = gtr.sample(load_configured_model(cfg, torch.device("cpu")), sampler, labels, seed=0)
    assert (on_gpu - on_cpu).abs().max().item() <= 1e-4


@pytest.mark.parametrize("precision,tolerance", [("fp32", 1e-4), ("bf16", 5e-2)])
def test_cuda_compiled_equals_eager(setup, precision, tolerance):
    """mode=compile (Triton kernels) and mode=cudagraphs (the same, replayed as CUDA graphs) against eager on the
    GPU, GtR with FTS and LazyMAR's caches."""
    _, sampler, model = setup
    labels = torch.arange(16) % 10
    for cache in (None, gtr.build_cache("lazymar")):
        eager = gtr.sample(model, sampler, labels, seed=0, precision=precision, cache=cache)
        for mode in ("compile", "cudagraphs"):
            compiled = gtr.sample(model, sampler, labels, seed=0, precision=precision, cache=cache, mode=mode)
            assert (compiled - eager).abs().max().item() <= tolerance * max(1.0, eager.abs().max().item()), mode
