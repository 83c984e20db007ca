"""What every job shares, from a composed config to images: the device, the model and tokenizer a config names, its
sampler and cache, and :func:`render`, the one loop that turns batches of image ids into uint8 images (every job and
both studies render through it). :class:`Run` is the skeleton of a generation job around it; :func:`run_job` the
scripts' entry (one-line errors).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping

import torch
from omegaconf import OmegaConf

from gtr.config import compose_config, run_tag
from gtr.config.schema import check_count, check_seed
from gtr.errors import GtRError, one_line_errors
from gtr.models import load_model
from gtr.sampling import build_cache, build_sampler, sample
from gtr.sampling.cache import Cache
from gtr.sampling.compiled import JOB_MODES, check_mode, resolve_mode
from gtr.sampling.executor import RNG_MODES, autocast
from gtr.sampling.schedule import Schedule, check_plan
from gtr.tokenizers import LatentTokenizer, build_tokenizer, load_tokenizer, to_uint8


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise GtRError(f"device={name} but no CUDA GPU is visible: use device=cpu (or device=auto)")
    try:
        return torch.device(name)
    except RuntimeError:
        raise GtRError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N") from None


def load_configured_model(cfg, device: torch.device, condition: str = "class"):
    """The model of a job's config, which must take ``condition`` (class labels or text)."""
    if cfg.model.get("condition", "class") != condition:
        if condition == "class":
            raise GtRError(f"model={cfg.model.name} is a text-to-image model: run it with gtr-sample-t2i "
                           "(scripts/sample_t2i.py) or gtr-geneval, or choose a class-conditional model (mar_b, "
                           "mar_fmnist, ...)")
        raise GtRError(f"model={cfg.model.name} is not a text-to-image model: use model=lightgen (or lightgen_tiny), "
                       "or gtr-sample / scripts/sample.py for class-conditional models")
    return load_model(cfg.model, cfg.weights, device)


def load_image_tokenizer(tok_cfg: Mapping[str, Any], weights_cfg: Mapping[str, Any],
                         device: torch.device) -> LatentTokenizer:
    if tok_cfg.get("random_init") and not tok_cfg.get("checkpoint"):
        return build_tokenizer(tok_cfg["name"], seed=tok_cfg.get("init_seed", 0), device=device)
    return load_tokenizer(tok_cfg["name"], tok_cfg.get("checkpoint"), root=weights_cfg["root"],
                          download=weights_cfg["download"], device=device)


def sampling_options(model: str, key: str, overrides: Mapping[str, Any] | None = None) -> tuple[dict, dict]:
    """The resolved sampler and cache options of ``model=<model> sampler=<s>`` for a row key ``s``, or with
    ``cache=<c>`` for ``s+c`` (the run tag of output folders: ``gtr_16+lazymar``), sampler options replaced by
    ``overrides``. For tables, benchmarks and studies."""
    sampler, _, cache = key.partition("+")
    cfg = compose_config(f"model={model}", f"sampler={sampler}", *([f"cache={cache}"] if cache else []))
    options = {**OmegaConf.to_container(cfg.sampler, resolve=True), **(overrides or {})}
    return options, OmegaConf.to_container(cfg.cache, resolve=True)


def sampler_from_config(sampler_cfg: Mapping[str, Any], diffusion_cfg: Mapping[str, Any] | None = None) -> Schedule:
    """The sampler of a config's ``sampler`` group, respacing diffusion steps as its ``diffusion`` group says
    (``clip_timestep``, the model's default)."""
    options = OmegaConf.to_container(sampler_cfg, resolve=True) if OmegaConf.is_config(sampler_cfg) else dict(sampler_cfg)
    clip = (diffusion_cfg or {}).get("clip_timestep")
    return build_sampler(options.pop("name"), clip_timestep=clip, **options)


def cache_from_config(cache_cfg: Mapping[str, Any] | None) -> Cache:
    """The ``cache`` group of a config (None or absent: no cache)."""
    cache_cfg = cache_cfg or {"name": "none"}
    options = OmegaConf.to_container(cache_cfg, resolve=True) if OmegaConf.is_config(cache_cfg) else dict(cache_cfg)
    return build_cache(options.pop("name"), **options)


def cache_record(cache: Mapping[str, Any] | None) -> dict:
    """``{"cache": options}`` for a run's records, empty without a cache (so records and run guards of cache-free
    runs read as before the cache axis existed)."""
    if cache is None or cache.get("name", "none") == "none":
        return {}
    return {"cache": OmegaConf.to_container(cache, resolve=True) if OmegaConf.is_config(cache) else dict(cache)}


def cache_settings(cfg) -> dict:
    """The resolved cache options of a run's config for its records (:func:`cache_record`)."""
    return cache_record(cfg.get("cache"))


def check_labels(classes) -> None:
    bad = [c for c in classes if isinstance(c, bool) or not isinstance(c, int)]
    if bad:
        raise GtRError(f"class labels must be integers, got {bad[0]!r}: e.g. classes=[207,360]")


def batches_of_rank(num_images: int, batch_size: int, rank: int = 0, world: int = 1) -> list[list[int]]:
    """Image ids 0..num_images-1 cut into fixed batches of ``batch_size``; rank k of ``world`` takes every world-th
    batch from the k-th (one process: all of them)."""
    ids = list(range(num_images))
    batches = [ids[i:i + batch_size] for i in range(0, num_images, batch_size)]
    return batches[rank::world]


def render(model, sampler: Schedule, tokenizer: LatentTokenizer, batches: Iterable[list[int]],
           condition_of: Callable[[list[int]], Any], *, seed: int | None, precision: str, rng: str = "per_image",
           cache: Cache | None = None, mode: str = "eager",
           timings: list[float] | None = None) -> Iterator[tuple[list[int], torch.Tensor]]:
    """For each batch of image ids, yield the ids and their uint8 images [B, H, W, 3]: the latents of the batch's
    conditions (``condition_of(ids)``: class labels, text features, or None: unconditional) sampled with each image's
    own stream through ``cache`` in executor ``mode`` (eager | compile | cudagraphs), decoded under the run's
    precision (the official evaluation decodes under autocast too). ``timings``: a list that receives each batch's
    sampling seconds (the decoder not counted; CUDA synchronised)."""
    device = next(model.parameters()).device
    for ids in batches:
        condition = condition_of(ids)
        if isinstance(condition, torch.Tensor):
            condition = condition.to(device)
        start = time.perf_counter()
        latents = sample(model, sampler, condition, seed=seed, image_ids=ids, rng=rng, precision=precision,
                         cache=cache, num_images=len(ids), mode=mode)
        if timings is not None:
            if latents.is_cuda:
                torch.cuda.synchronize(latents.device)
            timings.append(time.perf_counter() - start)
        if not torch.isfinite(latents).all():  # never a black PNG or a meaningless score from NaN/inf
            settings = ", ".join(f"{k}={getattr(sampler, k)}" for k in ("cfg", "temperature") if hasattr(sampler, k))
            raise GtRError(f"sampling gave non-finite latents for images {ids[0]}-{ids[-1]} (sampler "
                           f"{sampler.name}: {settings}, precision {precision}); nothing was written for them: check "
                           "the sampler settings and the weights (fp16 can overflow: try precision=bf16 or fp32)")
        with autocast(device, precision):
            images = to_uint8(tokenizer.decode(latents))
        yield ids, images


@dataclass
class Run:
    """The skeleton every generation job (sample, sample_t2i, generate, geneval) shares: the sampling options of its
    config checked first (:meth:`configure`: no file is read), then the networks (:meth:`load`), then images rendered
    batch by batch (:meth:`render`). The job adds what is its own: conditions, folders, sharding, scoring."""
    cfg: Any
    device: torch.device
    sampler: Schedule
    cache: Cache
    model: Any = None
    tokenizer: LatentTokenizer | None = None
    mode: str = "eager"  # the executor mode, ``cfg.mode`` with ``auto`` decided by :meth:`load`

    @classmethod
    def configure(cls, cfg, device: torch.device) -> "Run":
        sampler, cache = sampler_from_config(cfg.sampler, cfg.diffusion), cache_from_config(cfg.get("cache"))
        autocast(device, cfg.precision)  # validates the precision name
        check_mode(cfg.mode, device, JOB_MODES)
        check_count("batch_size", cfg.batch_size)
        rng = cfg.get("rng", "per_image")
        if rng not in RNG_MODES:
            raise GtRError(f"unknown rng mode {rng!r}: choose one of {', '.join(RNG_MODES)}")
        check_seed(cfg.seed, rng)
        return cls(cfg, device, sampler, cache)

    def load(self, condition: str = "class", *, images: int, runtime=None) -> "Run":
        """The model (taking ``condition``: class or text) and tokenizer, the sampler's plan checked on the model's
        token grid, and the executor mode of a run of ``images`` images in all (``mode=auto``: compiled where that
        is measured to pay off, said in one line by rank 0). ``runtime`` (a sharded run's
        :class:`gtr.jobs.distributed.Distributed`): its ranks agree, so one that cannot compile makes them all run eager."""
        self.mode, why = resolve_mode(self.cfg.mode, self.device, images, self.cfg.precision)
        if self.cfg.mode == "auto" and runtime is not None and runtime.world > 1:
            all_compile = runtime.all_ok(self.mode == "compile")  # a collective: every rank calls it
            if self.mode == "compile" and not all_compile:
                self.mode, why = "eager", ("mode=auto: eager (another rank of this run cannot compile, and every rank "
                                           "runs the same mode so that the images do not depend on the world size)")
        if why and (runtime is None or runtime.rank == 0):
            print(why, flush=True)
        self.model = load_configured_model(self.cfg, self.device, condition)
        check_plan(self.sampler.plan(self.model.seq_h, self.model.seq_w), self.model.seq_len, self.sampler.name)
        self.tokenizer = load_image_tokenizer(self.cfg.model.tokenizer, self.cfg.weights, self.device)
        return self

    @property
    def description(self) -> str:
        return f"{self.cfg.model.name} / {run_tag(self.sampler.name)}"

    def render(self, batches: Iterable[list[int]],
               condition_of: Callable[[list[int]], Any]) -> Iterator[tuple[list[int], torch.Tensor]]:
        """:func:`render` with the run's model, sampler, cache, precision, mode and seed (``rng=official``:
        the global generators, seeded once by the caller)."""
        rng = self.cfg.get("rng", "per_image")
        return render(self.model, self.sampler, self.tokenizer, batches, condition_of,
                              seed=None if rng == "official" else self.cfg.seed, rng=rng,
                              precision=self.cfg.precision, cache=self.cache, mode=self.mode)


def run_job(job, cfg) -> None:
    """Entry point shared by scripts: run ``job(cfg)`` (which returns the path it wrote); user errors become one
    line on stderr and exit status 2 (:func:`gtr.errors.one_line_errors`)."""
    with one_line_errors(cfg.get("output_dir")):
        path = job(cfg)
    print(f"wrote {path}")
