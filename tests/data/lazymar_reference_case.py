"""Writes tests/data/lazymar_reference.pt: the LazyMAR sampler's outputs *before* caching became its own axis, with
every pruning decision it took (the similarities it ranked and the order it chose, per cached step), so that the test
can replay the decisions on any CPU (they are near-ties at rounding level in these small models: a CPU kind that
rounds otherwise flips some) and compare the outputs with a tolerance. Run it with the code of commit a553794 (the
last one with LazyMARSampler) on the import path:

    git worktree add /tmp/pre_cache a553794
    PYTHONPATH=/tmp/pre_cache python tests/data/lazymar_reference_case.py /tmp/pre_cache

One thread, as the test: CPU matmuls split work by thread count. The old loader applies the Fashion-MNIST models'
diffusion.clip_timestep (950) to the model itself; the LightGen parity model runs unclipped."""
import inspect
import sys
from pathlib import Path

import torch

old = Path(sys.argv[1])
sys.path.insert(0, str(old / "tests"))
import gtr  # noqa: E402  (the old code, from PYTHONPATH)
from gtr.config import compose_config
from gtr.jobs.common import load_configured_model, sampler_from_config
from gtr.sampling import build_sampler  # noqa: E402
from gtr.sampling.executor import make_rng, run_schedule  # noqa: E402
from test_lightgen import _parity_model  # noqa: E402

assert Path(gtr.__file__).is_relative_to(old), f"not the pre-refactor code: {gtr.__file__}"
torch.set_num_threads(1)
torch.set_grad_enabled(False)
decisions = []
_argsort = torch.Tensor.argsort


def recording_argsort(self, *args, **kwargs):
    """The old sampler's one pruning decision (``similarity.argsort`` in gtr/sampling/lazymar.py), recorded."""
    order = _argsort(self, *args, **kwargs)
    if inspect.stack()[1].filename.endswith("sampling/lazymar.py"):
        decisions.append((self.clone(), order.clone()))
    return order


torch.Tensor.argsort = recording_argsort
out = {}
labels = torch.arange(4)
fmnist = load_configured_model(compose_config("model=mar_fmnist"), torch.device("cpu"))
out["mar_fmnist/pruned"] = gtr.sample(fmnist, build_sampler("lazymar", num_iter=16, cfg=4.0,
                                                            start_step=2, refresh_every=3, prune_layer=1,
                                                            keep_ratios=[0.5]), labels, seed=3)
out["mar_fmnist/pruned/decisions"], decisions = decisions, []
fmnist16 = load_configured_model(compose_config("model=mar_fmnist16"), torch.device("cpu"))
cfg = compose_config("model=mar_fmnist16", "sampler=lazymar", "sampler.diffusion_steps=20", "sampler.cfg=4.0")
out["mar_fmnist16/released"] = gtr.sample(fmnist16, sampler_from_config(cfg.sampler),
                                          labels[:2], seed=1)
out["mar_fmnist16/released/decisions"], decisions = decisions, []
model, texts = _parity_model()
out["lightgen_tiny/pruned"] = run_schedule(model, build_sampler("lazymar", num_iter=12, diffusion_steps=8, cfg=4.0,
                                                                cfg_schedule="constant", start_step=2,
                                                                refresh_every=4, prune_layer=0, keep_ratios=[0.5]),
                                           texts, make_rng("per_image", 2, 0, None, "cpu"))
out["lightgen_tiny/pruned/decisions"], decisions = decisions, []
path = Path(__file__).resolve().parent / "lazymar_reference.pt"
torch.save(out, path)
print(f"wrote {path}")
