"""Typed schemas of the jobs' Hydra configs (structured configs in Hydra's ConfigStore).

- ``model``: :class:`gtr.models.registry.ModelConfig`; every registry entry is stored as ``model=<name>``.
- ``sampler`` and ``cache``: one schema per registered sampler or cache, made from its dataclass fields (so a
  sampler's options are declared once, on the sampler), stored as ``schema/sampler/<name>``; a composed
  ``sampler`` node is checked against the schema its ``name`` selects.
- the top level of each job (``sample``, ``generate``, ``geneval``, ``sample_t2i``, ``train``): the dataclasses
  below, stored as ``<job>_schema`` and named first in each job's defaults list, so a misspelt key or a value of
  the wrong type fails while Hydra composes; a training job's ``train`` node is checked against the schema of its
  ``job`` (:data:`TRAIN_JOBS`).

:func:`validate` runs after composition (:func:`gtr.config.compose_config`) and raises one-line
:class:`GtRError` messages.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import functools
import math
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, List, Optional

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from gtr.errors import GtRError

# ----------------------------------------------------------------------------------------------------------------
# The top level of each job


@dataclass
class WeightsConfig:
    root: str = "pretrained_models"  # official layout: <root>/mar/mar_huge/checkpoint-last.pth, <root>/vae/kl16.ckpt
    download: bool = True  # fetch missing official files when online (GTR_OFFLINE=1 disables)


@dataclass
class DiffusionConfig:
    clip_timestep: Optional[int] = None  # null: official MAR respacing; 950: DiSA's clipping


@dataclass
class WandbConfig:
    enabled: bool = False
    project: str = "gtr-mar"
    mode: Optional[str] = None  # null honours $WANDB_MODE (online | offline | disabled)


@dataclass
class JobConfig:
    """What every generation job has: the three groups, the run's seed, batching, device and numerics."""
    model: Any = MISSING
    sampler: Any = MISSING
    cache: Any = MISSING
    seed: int = 0
    batch_size: int = 1
    device: str = "auto"
    precision: str = "fp32"
    mode: str = "auto"  # gtr.sampling.compiled.JOB_MODES
    progress: bool = True
    output_dir: str = MISSING
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    weights: WeightsConfig = field(default_factory=WeightsConfig)


@dataclass
class SampleJob(JobConfig):
    classes: Any = None  # a list of class indices or null (Any: OmegaConf cannot take an interpolation into a typed list)
    images_per_class: int = 8
    rng: str = "per_image"


@dataclass
class SampleT2IJob(JobConfig):
    prompt: Optional[str] = None
    prompt_file: Optional[str] = None
    images_per_prompt: int = 4
    text_cache: Optional[str] = None


@dataclass
class GenerateMetrics:
    enabled: bool = True
    extractor: str = "inception"
    reference: Optional[str] = None
    inception: Optional[str] = None
    classifier: Optional[str] = None
    data_root: Optional[str] = None


@dataclass
class GenerateJob(JobConfig):
    images_per_class: int = 50
    num_images: Optional[int] = None
    npz: bool = True
    metrics: GenerateMetrics = field(default_factory=GenerateMetrics)
    wandb: WandbConfig = field(default_factory=WandbConfig)


@dataclass
class GenEvalThresholds:
    score: float = 0.3
    counting_score: float = 0.9
    max_objects: int = 16
    max_overlap: float = 1.0
    position: float = 0.1


@dataclass
class GenEvalOptions:
    prompts: Optional[str] = None
    detector: str = "mmdet"
    detector_path: Optional[str] = None
    clip_path: Optional[str] = None
    clip_amp: bool = True
    tf32: Optional[bool] = None
    thresholds: GenEvalThresholds = field(default_factory=GenEvalThresholds)


@dataclass
class GenEvalJob(JobConfig):
    n_samples: int = 4
    num_prompts: Optional[int] = None
    text_cache: Optional[str] = None
    generate: bool = True
    score: bool = True
    geneval: GenEvalOptions = field(default_factory=GenEvalOptions)
    wandb: WandbConfig = field(default_factory=WandbConfig)


@dataclass
class DataConfig:
    root: Optional[str] = None  # folder with the 4 IDX .gz files; null: $GTR_FASHION_MNIST, Debian's package, cache
    download: bool = True


@dataclass
class TrainJob:
    train: Any = MISSING  # the train/ group: its keys differ by job (tokenizer, mar, classifier)
    seed: int = 0
    out_dir: str = MISSING
    export: Optional[str] = None
    resume: bool = True
    progress: bool = True
    data: DataConfig = field(default_factory=DataConfig)
    weights: WeightsConfig = field(default_factory=WeightsConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)


@dataclass
class TrainOptions:
    """What every training job of the ``train/`` group has."""
    name: str = MISSING
    job: str = MISSING
    steps: int = MISSING
    batch_size: int = MISSING
    lr: float = MISSING
    warmup_steps: int = 0
    weight_decay: float = 0.0
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])
    grad_clip: Optional[float] = None
    ema_decay: Optional[float] = None
    checkpoint_every: int = 100
    log_every: int = 25
    limit: Optional[int] = None  # train on the first N images only (tests)
    image_size: int = 28
    dataset: str = "fashion_mnist"  # fashion_mnist | scenes (gtr.data.scenes) | scene_prompts (its captioned
                                    # text-to-image pairs, gtr.data.scene_prompts); the scenes are generated


@dataclass
class TrainTokenizerOptions(TrainOptions):
    architecture: str = MISSING
    kl_weight: float = 1e-6
    init: Optional[str] = None  # start from a trained tokenizer of the same architecture (a TOKENIZERS name or path)


@dataclass
class TrainTokenizerRef:
    name: str = MISSING
    checkpoint: Optional[str] = None


@dataclass
class TrainMAROptions(TrainOptions):
    preset: str = MISSING
    hparams: Any = field(default_factory=dict)
    tokenizer: TrainTokenizerRef = field(default_factory=TrainTokenizerRef)
    mask_ratio_min: float = 0.7
    label_drop_prob: float = 0.1
    diffusion_batch_mul: int = 4


@dataclass
class TrainClassifierOptions(TrainOptions):
    augment: bool = True


@dataclass
class TrainTextOptions:
    """The scenes testbed's WordT5 (gtr.text), trained with the model."""
    name: str = "scenes_text"  # exported beside the model as <name>.safetensors
    d_model: int = 128
    num_layers: int = 2
    num_heads: int = 4
    d_ff: int = 256


@dataclass
class TrainLightGenOptions(TrainMAROptions):
    text: TrainTextOptions = field(default_factory=TrainTextOptions)


TRAIN_JOBS: dict[str, type] = {"tokenizer": TrainTokenizerOptions, "mar": TrainMAROptions,
                               "lightgen": TrainLightGenOptions, "classifier": TrainClassifierOptions}

JOBS: dict[str, type] = {"sample": SampleJob, "sample_t2i": SampleT2IJob, "generate": GenerateJob,
                         "geneval": GenEvalJob, "train": TrainJob}


# ----------------------------------------------------------------------------------------------------------------
# Sampler and cache schemas, from their classes


def _omegaconf_type(annotation):
    """An annotation OmegaConf can type-check (``X | None`` -> Optional, sequences -> List), else Any."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        inner = _omegaconf_type(rest[0]) if len(rest) == 1 else Any
        return Optional[inner] if len(rest) < len(args) and inner is not Any else inner
    if origin in (list, tuple, collections.abc.Sequence):
        item = _omegaconf_type(args[0]) if args and args[0] is not Ellipsis else Any
        return List[item]
    return annotation if annotation in (int, float, bool, str) else Any


# Sampler options whose default is the model's (the registry's ModelConfig field, or the class's default where a model
# does not set it): the one place where a sampler config meets the model. The other defaults are the classes'.
MODEL_DEFAULTS = {"num_iter": "default_num_iter", "diffusion_steps": "default_diffusion_steps", "cfg": "default_cfg",
                  "cfg_schedule": "default_cfg_schedule", "num_stages": "gtr.num_stages", "rates": "gtr.rates"}


def _from_model(option: str, default):
    """``${oc.select:model.<field>,<default>}`` for an option of :data:`MODEL_DEFAULTS`, else ``default``."""
    if option not in MODEL_DEFAULTS or default is MISSING:
        return default
    literal = "null" if default is None else (
        f"[{','.join(repr(v) for v in default)}]" if isinstance(default, list) else str(default))
    return f"${{oc.select:model.{MODEL_DEFAULTS[option]},{literal}}}"


def options_schema(kind: str, name: str, cls: type) -> type:
    """A structured-config dataclass of ``cls``'s init fields plus ``name``: the defaults are the class's, except the
    options of :data:`MODEL_DEFAULTS`, which interpolate the model's (``configs/sampler`` and ``configs/cache`` name
    these schemas first and keep only what they change)."""
    hints = typing.get_type_hints(cls) if dataclasses.is_dataclass(cls) else {}
    fields = [("name", str, field(default=name))]
    for f in dataclasses.fields(cls) if dataclasses.is_dataclass(cls) else ():
        if not f.init:
            continue
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else MISSING)
        if isinstance(default, tuple):
            default = list(default)
        kind_type = _omegaconf_type(hints[f.name])
        if kind == "sampler" and f.name in MODEL_DEFAULTS:
            fields.append((f.name, kind_type, field(default=_from_model(f.name, default))))
        elif isinstance(default, list):
            fields.append((f.name, kind_type, field(default_factory=lambda d=default: list(d))))
        else:
            fields.append((f.name, kind_type, field(default=default)))
    return dataclasses.make_dataclass(f"{name.title()}{kind.title()}Options", fields)


@functools.lru_cache(maxsize=None)
def _option_schemas() -> dict[str, dict[str, type]]:
    from gtr.sampling import CACHES, SAMPLERS
    return {"sampler": {n: options_schema("sampler", n, c) for n, c in SAMPLERS.items()},
            "cache": {n: options_schema("cache", n, c) for n, c in CACHES.items()}}


_REGISTERED = False


def register() -> None:
    """Store the model registry, the job schemas and the sampler/cache schemas in Hydra's ConfigStore (once)."""
    global _REGISTERED
    if _REGISTERED:
        return
    from hydra.core.config_store import ConfigStore

    from gtr.models.registry import register_configs
    register_configs()
    store = ConfigStore.instance()
    for job, schema in JOBS.items():
        store.store(name=f"{job}_schema", node=schema)  # the first entry of configs/<job>.yaml's defaults
    for kind, schemas in _option_schemas().items():
        for name, schema in schemas.items():
            store.store(group=f"schema/{kind}", name=name, node=schema)
    _REGISTERED = True


# ----------------------------------------------------------------------------------------------------------------
# Checking a composed config


def validate(cfg: DictConfig, job: str) -> None:
    """Resolve every interpolation of a composed config and check its ``sampler`` and ``cache`` nodes against their
    schemas: one-line :class:`GtRError` on the first problem."""
    try:
        for key in cfg:
            value = cfg[key] if key != "hydra" else None  # reading a scalar resolves it
            if OmegaConf.is_config(value):
                OmegaConf.to_container(value, resolve=True)
    except OmegaConfBaseException as err:
        raise GtRError(describe(err, "cannot resolve")) from None
    if job == "train":
        _check_train(cfg.train)
    schemas = _option_schemas()
    for kind in ("sampler", "cache"):
        node = cfg.get(kind)
        if node is None:
            continue
        name = node.get("name")
        if name not in schemas[kind]:
            raise GtRError(f"unknown {kind} {name!r} ({kind}.name): choose one of {', '.join(schemas[kind])}")
        _check_options(node, schemas[kind][name], f"{kind} {name!r}", kind, selector="name")


def _check_options(node: DictConfig, schema: type, what: str, key: str, selector: str | None = None) -> None:
    """A composed node (its interpolations resolved) against a schema dataclass: one line naming the unknown option
    (with the valid ones, less the ``selector`` field that chose the schema) or the value of the wrong type, at
    ``<key>.<option>``."""
    try:
        OmegaConf.merge(OmegaConf.structured(schema), OmegaConf.to_container(node, resolve=True))
    except ConfigKeyError as err:
        valid = sorted(f.name for f in dataclasses.fields(schema) if f.name != selector)
        raise GtRError(f"{what} has no option {err.key!r} ({key}.{err.key}): valid ones are "
                       f"{', '.join(valid)}") from None
    except ValidationError as err:
        raise GtRError(f"{key}.{describe(err)}") from None


def first_line(err: BaseException) -> str:
    """The first non-empty line of an exception's message (Hydra and OmegaConf append context lines)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def describe(err: OmegaConfBaseException, prefix: str | None = None) -> str:
    """One line for an OmegaConf error: ``<key>: <what is wrong>``."""
    key = getattr(err, "full_key", None)
    message = first_line(err)
    match = re.match(r"^Value '(.*)' of type '(\w+)' could not be converted to (\w+)$", message)
    if match:
        message = f"{match[1]!r} is not {'an' if match[3][0] in 'AEIOU' else 'a'} {match[3].lower()}"
    elif "is not a ListConfig" in message:
        message = "expected a list, e.g. [1, 2]"
    text = f"{key}: {message}" if key else message
    return f"{prefix} {text}" if prefix else text


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


def _check_train(node: DictConfig) -> None:
    """The ``train`` node against the schema of its ``job`` (tokenizer, mar, classifier)."""
    job = node.get("job")
    if job not in TRAIN_JOBS:
        raise GtRError(f"unknown training job {job!r} (train.job): choose train=tokenizer, mar or classifier (or "
                       "their 16x16 variants tokenizer16, mar16)")
    _check_options(node, TRAIN_JOBS[job], f"training job {job!r}", "train")
    for key in ("steps", "batch_size", "checkpoint_every", "log_every"):
        check_count(f"train.{key}", node[key])
    check_count("train.warmup_steps", node.warmup_steps, minimum=0)

    def check(key: str, ok: bool, wanted: str) -> None:
        if not ok:
            raise GtRError(f"train.{key}={node[key]!r}: give {wanted}")

    finite = math.isfinite
    check("lr", finite(node.lr) and node.lr > 0, "a learning rate > 0, e.g. 1e-3")
    check("weight_decay", finite(node.weight_decay) and node.weight_decay >= 0, "a weight decay >= 0")
    check("betas", len(node.betas) == 2 and all(finite(b) and 0 <= b < 1 for b in node.betas),
          "two Adam betas in [0, 1), e.g. [0.9, 0.95]")
    check("grad_clip", node.grad_clip is None or (finite(node.grad_clip) and node.grad_clip > 0),
          "a gradient-norm clip > 0, or null for none")
    check("ema_decay", node.ema_decay is None or (finite(node.ema_decay) and 0 <= node.ema_decay < 1),
          "an EMA decay in [0, 1), or null for none")
    if "mask_ratio_min" in node:
        check("mask_ratio_min", finite(node.mask_ratio_min) and 0 <= node.mask_ratio_min <= 1, "a ratio in [0, 1]")
        check("label_drop_prob", finite(node.label_drop_prob) and 0 <= node.label_drop_prob < 1,
              "a probability in [0, 1)")
        check_count("train.diffusion_batch_mul", node.diffusion_batch_mul)
