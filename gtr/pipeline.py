"""From a (Hydra) config to images: the skeleton every generation job shares (:class:`Run`: the sampler, cache,
model and tokenizer a config names, rendered in batches), the run guard of output folders (:func:`claim_output`),
and ``scripts/sample.py``'s job on them (:func:`sample_to_folder`).
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np
import torch
from omegaconf import OmegaConf
from tqdm.auto import tqdm

from gtr import sample
from gtr.config import CONFIGS, compose_config, run_tag  # noqa: F401 -- re-exported for scripts and studies
from gtr.data import CLASS_NAMES as FASHION_CLASSES
from gtr.data.scenes import CLASS_NAMES as SCENE_CLASSES
from gtr.errors import GtRError, one_line_errors
from gtr.files import write_json
from gtr.images import imagenet_class_names, labelled_grid, save_png
from gtr.models import load_model
from gtr.sampling import build_cache, build_sampler
from gtr.sampling.cache import Cache
from gtr.sampling.compiled import JOB_MODES, check_mode, resolve_mode
from gtr.sampling.executor import RNG_MODES, autocast
from gtr.sampling.schedule import Schedule, check_plan
from gtr.tokenizers import LatentTokenizer, build_tokenizer, load_tokenizer, to_uint8


REPO_ROOT = Path(__file__).resolve().parent.parent  # the clone, for an editable install (git commit of a run)


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


def claim_output(out: Path, settings: dict, rank: int, folders: Iterable[Path] = ()) -> None:
    """Resume only what these settings made: ``<out>/run.json`` records what the folder's images are (model,
    resolved sampler, seed, precision, counts); the first run writes it and a run with other settings stops. Once
    claimed, ``out`` and ``folders`` are made (every rank makes them: none waits for another)."""
    path = out / "run.json"
    if path.is_file():
        try:
            stored = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise GtRError(f"{path} is not the JSON record a run writes (cut short or edited): delete {out} to start "
                           "over, or set output_dir=<another folder>") from None
        before, now = _decisive(stored), _decisive(settings)
        for key in RESUME_KEYS:  # folders written before these were recorded are compared without them
            if key not in before:
                now.pop(key, None)
        changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
        if changed:
            raise GtRError(f"{out} holds images made with other settings ({', '.join(changed)} differ): set "
                           f"output_dir=<another folder>, or delete {out} to start over")
    elif rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        write_json(path, settings)
    for folder in (out, *folders):
        folder.mkdir(parents=True, exist_ok=True)


# The model-config keys that decide a run's images (its name, title, demo grid, metrics do not; CFG and step defaults
# are already resolved into the sampler's options).
MODEL_KEYS_OF_IMAGES = ("preset", "checkpoint", "ema", "random_init", "init_seed", "hparams", "tokenizer",
                        "text_encoder")


# Settings that change some images' last bits (a batch's size changes matmul blocking; compiled kernels round
# otherwise than eager ones; a GPU otherwise than a CPU): a resumed folder must have been made under the same ones.
RESUME_KEYS = ("batch_size", "mode", "device_type")


def _decisive(settings: dict) -> dict:
    """Run settings as the guard compares them (older records may hold more model keys)."""
    model = settings.get("model")
    if not isinstance(model, dict):
        return dict(settings)
    return {**settings, "model": {k: model.get(k) for k in MODEL_KEYS_OF_IMAGES}}


def run_settings(cfg, device: torch.device | None = None, **counts) -> dict:
    """What decides a run's images: the model, sampler, seed, precision, ..., and (for resumable jobs, given
    ``device``) the batch size, executor mode and device type, which can change an image's last bits; not the world
    size, which changes none."""
    model = {k: v for k, v in OmegaConf.to_container(cfg.model, resolve=True).items() if k != "metrics"}
    exact = {} if device is None else {"batch_size": cfg.batch_size, "mode": cfg.mode, "device_type": device.type}
    return {"model": model, "sampler": OmegaConf.to_container(cfg.sampler, resolve=True), "seed": cfg.seed,
            "precision": cfg.precision, "diffusion": OmegaConf.to_container(cfg.diffusion, resolve=True),
            **cache_settings(cfg), **exact, **counts}


def check_count(name: str, value, minimum: int = 1) -> None:
    """An integer option >= ``minimum`` (Hydra passes 2.5 or "abc" through as they are)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise GtRError(f"{name} must be an integer >= {minimum}, got {value!r}")


def check_seed(seed, rng: str = "per_image") -> None:
    """Seeds are integers >= 0; the official RNG mode seeds numpy, which takes them below 2**32."""
    check_count("seed", seed, 0)
    if rng == "official" and seed >= 2**32:
        raise GtRError(f"seed={seed} is too large for rng=official (numpy takes seeds < 2**32): use a smaller seed or "
                       "rng=per_image")


def check_labels(classes) -> None:
    bad = [c for c in classes if isinstance(c, bool) or not isinstance(c, int)]
    if bad:
        raise GtRError(f"class labels must be integers, got {bad[0]!r}: e.g. classes=[207,360]")


def check_writable(folder: Path, key: str = "output_dir") -> None:
    """``folder`` could be made and take a file (probed in it or, when it does not exist yet, in its nearest existing
    ancestor: nothing is created, so a run refused later leaves no empty folder); else one line naming ``key``."""
    folder = Path(folder)
    probe_in = folder
    while not probe_in.exists() and probe_in != probe_in.parent:
        probe_in = probe_in.parent
    if not probe_in.is_dir():
        raise GtRError(f"cannot write to output folder {folder}: {probe_in} is a file, not a folder; set {key}=... "
                       "to a writable folder")
    try:
        with tempfile.NamedTemporaryFile(dir=probe_in, prefix=".write_test"):
            pass
    except OSError as err:
        raise GtRError(f"cannot write to output folder {folder} ({err.strerror}): set {key}=... to a writable "
                       f"folder") from None


def batches_of_rank(num_images: int, batch_size: int, rank: int = 0, world: int = 1) -> list[list[int]]:
    """Image ids 0..num_images-1 cut into fixed batches of ``batch_size``; rank k of ``world`` takes every world-th
    batch from the k-th (one process: all of them)."""
    ids = list(range(num_images))
    batches = [ids[i:i + batch_size] for i in range(0, num_images, batch_size)]
    return batches[rank::world]


def render_batches(model, sampler: Schedule, tokenizer: LatentTokenizer, batches: Iterable[list[int]],
                   condition_of: Callable[[list[int]], Any], *, seed: int | None, precision: str,
                   rng: str = "per_image", cache: Cache | None = None,
                   mode: str = "eager") -> Iterator[tuple[list[int], torch.Tensor]]:
    """For each batch of image ids, yield the ids and their uint8 images [B, H, W, 3]: the latents of the batch's
    conditions (``condition_of(ids)``: class labels, text features, or None: unconditional) sampled with each image's
    own stream, decoded
    under the run's precision (the official evaluation decodes under autocast too), through ``cache``, in executor
    ``mode`` (eager | compile | cudagraphs)."""
    device = next(model.parameters()).device
    for ids in batches:
        condition = condition_of(ids)
        if isinstance(condition, torch.Tensor):
            condition = condition.to(device)
        latents = sample(model, sampler, condition, seed=seed, image_ids=ids, rng=rng, precision=precision,
                         cache=cache, num_images=len(ids), mode=mode)
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
        :class:`gtr.generate.Distributed`): its ranks agree, so one that cannot compile makes them all run eager."""
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
        """:func:`render_batches` with the run's model, sampler, cache, precision, mode and seed (``rng=official``:
        the global generators, seeded once by the caller)."""
        rng = self.cfg.get("rng", "per_image")
        return render_batches(self.model, self.sampler, self.tokenizer, batches, condition_of,
                              seed=None if rng == "official" else self.cfg.seed, rng=rng,
                              precision=self.cfg.precision, cache=self.cache, mode=self.mode)


def clear_images(folder: Path) -> None:
    """Remove a previous run's numbered images, so that a used folder holds only the new run's."""
    for stale in folder.glob("[0-9][0-9][0-9][0-9][0-9].png"):
        stale.unlink()


def row_names(model_cfg: Mapping[str, Any], classes: list[int]) -> list[str]:
    kind = model_cfg.get("class_names")
    names = {"imagenet": imagenet_class_names, "fashion_mnist": lambda: list(FASHION_CLASSES),
             "scenes": lambda: list(SCENE_CLASSES)}.get(kind, lambda: None)()
    return [f"{c} {names[c]}" if names else str(c) for c in classes]


def sample_to_folder(cfg) -> Path:
    """Run ``scripts/sample.py``'s job: PNGs ``images/{id:05d}.png``, ``grid.png`` and ``config.yaml`` in
    ``cfg.output_dir``. Returns the grid's path."""
    out = Path(cfg.output_dir)
    check_writable(out / "images")
    run = Run.configure(cfg, resolve_device(cfg.device))
    unconditional = cfg.classes is None  # classes=null: one row of images without a class (the model's null class)
    classes = [] if unconditional else list(cfg.classes)
    if not unconditional and not classes:
        raise GtRError("need at least one class (or classes=null for unconditional samples)")
    check_labels(classes)
    check_count("images_per_class", cfg.images_per_class)
    labels = np.repeat(np.asarray(classes, dtype=np.int64), cfg.images_per_class)  # row-major grid, a row per class
    count = cfg.images_per_class if unconditional else len(labels)
    run.load("class", images=count)
    if not unconditional:  # bad labels fail before any work is done
        run.model.condition(torch.as_tensor(labels, device=run.device))
    claim_output(out, run_settings(cfg, classes=None if unconditional else classes,
                                   images_per_class=cfg.images_per_class, rng=cfg.rng), rank=0,
                 folders=[out / "images"])
    clear_images(out / "images")  # this run draws them again (and a folder of an older version holds only its own)
    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))

    if cfg.rng == "official":  # the official scripts seed the global generators once per process
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)
    images = []
    with tqdm(total=count, unit="img", desc=run.description, disable=not cfg.progress) as bar:
        for ids, batch in run.render(batches_of_rank(count, cfg.batch_size),
                                     lambda ids: None if unconditional else labels[ids]):
            for image_id, image in zip(ids, batch):
                save_png(image, out / "images" / f"{image_id:05d}.png")
            images.append(batch)
            bar.update(len(ids))
    tiles = torch.cat(images)
    upscale = int(cfg.model.get("grid_upscale", 1))
    if upscale > 1:
        tiles = tiles.repeat_interleave(upscale, dim=1).repeat_interleave(upscale, dim=2)
    grid = labelled_grid(tiles, ["unconditional"] if unconditional else row_names(cfg.model, classes))
    save_png(grid, out / "grid.png")
    return out / "grid.png"


def run_job(job, cfg) -> None:
    """Entry point shared by scripts: run ``job(cfg)`` (which returns the path it wrote); user errors become one
    line on stderr and exit status 2 (:func:`gtr.errors.one_line_errors`)."""
    with one_line_errors(cfg.get("output_dir")):
        path = job(cfg)
    print(f"wrote {path}")


def main(cfg) -> None:
    """``scripts/sample.py``."""
    run_job(sample_to_folder, cfg)
