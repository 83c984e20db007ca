"""The model registry: every preset name (``mar_b``, ``lightgen``, ``mar_fmnist``, ...) is defined here, once.

An entry holds everything the repository knows about a model: its architecture (:class:`MARConfig` or
:class:`LightGenConfig`), its weight file (official layout, download, checksum), its condition kind (class labels or
text), its tokenizer, and its sampling defaults (CFG scale, AR steps, diffusion respacing) as the Hydra ``model``
config, :class:`ModelConfig`. The Hydra group ``model`` is this registry (:func:`register_configs` stores each
entry's :class:`ModelConfig` in Hydra's ConfigStore), :func:`gtr.models.load_model` loads any entry, and tables,
benchmarks and studies read names and architectures from here.

A model of your own is a YAML file in a config folder of yours that starts from an entry, e.g.
``defaults: [mar_b, _self_]`` and ``name: my_mar``, ``checkpoint: /path/to/checkpoint-last.pth``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Union

from omegaconf import MISSING

from gtr.errors import GtRError
from gtr.models.lightgen import LightGenConfig
from gtr.models.mar import MARConfig, replace_checked
from gtr.weights import WeightFile

IMAGENET_DEMO = [207, 360, 387, 974, 88, 979, 417, 279]
_DROPBOX = "https://www.dropbox.com/scl/fi"


# ----------------------------------------------------------------------------------------------------------------
# The Hydra schema of the ``model`` group


@dataclass
class TokenizerConfig:
    name: str = MISSING  # a gtr.tokenizers.TOKENIZERS name
    checkpoint: Optional[str] = None  # explicit path; null: the shipped copy or the official layout under weights.root
    random_init: bool = False
    init_seed: int = 0


@dataclass
class TextEncoderConfig:
    kind: str = "t5"  # t5: a transformers T5 from ``path`` | words: the scenes testbed's WordT5 (gtr.text)
    path: Optional[str] = "google/flan-t5-xxl"  # t5: hub id or local folder; words: a .safetensors (null: shipped)
    dtype: str = "fp32"  # fp32 (as LightGen's GenEval script) | bf16
    max_length: int = 128
    random_init: bool = False  # true: random features per prompt (pipeline tests only, no T5)


@dataclass
class GenEvalDefaults:
    """The GenEval setting of a text-to-image model whose testbed has its own detector and prompts."""
    detector: str = "mmdet"  # mmdet | hf | scenes (gtr.eval.geneval.scenes: the exact parser)
    prompts: Optional[str] = None  # a metadata file, or scenes (gtr.data.scene_prompts' evaluation set)


@dataclass
class MetricsConfig:
    extractor: str = "inception"  # inception (FID/IS) | fmnist (the Fashion-MNIST analogues)
    reference: str = "adm_in256"  # a named reference, an .npz of mu/sigma, or a folder of images


@dataclass
class GtRDefaults:
    """The paper's GtR setting for a model whose schedule differs from ImageNet MAR's (``sampler=gtr``)."""
    num_stages: int = 3
    rates: List[float] = field(default_factory=lambda: [2.67, 10.67, 64.0])


@dataclass
class ModelConfig:
    name: str = MISSING  # the config's name (output folders are named by it)
    preset: str = MISSING  # the registry entry whose architecture and weight file it loads
    title: str = ""  # human name in tables and messages
    condition: str = "class"  # class (labels; null: unconditional) | text (prompts through the text encoder)
    checkpoint: Optional[str] = None  # explicit path; null: the official layout under weights.root (downloaded)
    ema: bool = True  # load model_ema (as the official evaluation); false: model
    random_init: bool = False  # random weights (pipeline tests, parity architectures)
    init_seed: int = 0
    hparams: Dict[str, Any] = field(default_factory=dict)  # override architecture fields, e.g. {diffloss_d: 3}
    default_cfg: float = 1.0  # the guidance scale of the paper's runs
    default_num_iter: int = 64  # the baseline's AR steps (sampler=mar)
    default_diffusion_steps: int = 100  # per token (sampler=mar)
    default_cfg_schedule: str = "linear"  # linear | constant
    gtr: Optional[GtRDefaults] = None  # sampler=gtr's stages on this model (null: the paper's ImageNet setting)
    clip_timestep: Optional[int] = None  # null: the official MAR respacing; 950: DiSA's clipping
    grid_upscale: int = 1  # tiles drawn this many times larger in grids
    class_names: Optional[str] = None  # imagenet | fashion_mnist | scenes | null (class indices)
    num_classes: int = 0  # 0: text-conditioned
    demo_classes: List[int] = field(default_factory=list)  # rows of sample.py's grid
    demo_images_per_class: int = 8
    tokenizer: TokenizerConfig = MISSING
    text_encoder: Optional[TextEncoderConfig] = None
    metrics: Optional[MetricsConfig] = None
    geneval: Optional[GenEvalDefaults] = None  # null: GenEval's own detector and prompts


@dataclass(frozen=True)
class Preset:
    """One registry entry: the Hydra model config, the architecture it builds and the weight file it loads."""
    config: ModelConfig
    architecture: Union[MARConfig, LightGenConfig]
    weights: WeightFile

    @property
    def family(self) -> str:
        return "lightgen" if isinstance(self.architecture, LightGenConfig) else "mar"


REGISTRY: dict[str, Preset] = {}


def _add(architecture: MARConfig | LightGenConfig, weights: WeightFile, **config) -> None:
    cfg = ModelConfig(preset=config["name"], title=weights.name, **config)
    REGISTRY[cfg.name] = Preset(cfg, architecture, weights)


def _mar(width: int, depth: int, heads: int, diffloss_d: int, diffloss_w: int, **kwargs) -> MARConfig:
    return MARConfig(encoder_embed_dim=width, encoder_depth=depth, encoder_num_heads=heads, decoder_embed_dim=width,
                     decoder_depth=depth, decoder_num_heads=heads, diffloss_d=diffloss_d, diffloss_w=diffloss_w,
                     **kwargs)


def _official_mar(name: str, title: str, folder: str, url: str, size_mib: int, default_cfg: float,
                  architecture: MARConfig) -> None:
    """An official ImageNet-256 MAR: EMA weights of ``<root>/mar/<folder>/checkpoint-last.pth``, KL-16 tokens,
    FID against ADM's reference statistics, 64 AR steps as the paper's baseline rows."""
    _add(architecture, WeightFile(title, f"mar/{folder}/checkpoint-last.pth", f"{_DROPBOX}/{url}&dl=1", size_mib,
                                  "model.checkpoint"),
         name=name, default_cfg=default_cfg, class_names="imagenet", num_classes=1000, demo_classes=IMAGENET_DEMO,
         tokenizer=TokenizerConfig("kl16"), metrics=MetricsConfig("inception", "adm_in256"))


# The released checkpoints: transformer sizes from the official factories, diffusion-MLP depth/width from the
# official README's evaluation commands (the constructor default 3/1024 is the ablation setting and does not load);
# guidance scales of the official FID settings.
_official_mar("mar_b", "MAR-B", "mar_base", "f6dpuyjb7fudzxcyhvrhk/checkpoint-last.pth?rlkey=a6i4bo71vhfo4anp33n9ukujb",
              1587, 2.9, _mar(768, 12, 12, diffloss_d=6, diffloss_w=1024))
_official_mar("mar_l", "MAR-L", "mar_large", "pxacc5b2mrt3ifw4cah6k/checkpoint-last.pth?rlkey=m48ovo6g7ivcbosrbdaz0ehqt",
              3650, 3.0, _mar(1024, 16, 16, diffloss_d=8, diffloss_w=1280))
_official_mar("mar_h", "MAR-H", "mar_huge", "1qmfx6fpy3k7j9vcjjs3s/checkpoint-last.pth?rlkey=4lae281yzxb406atp32vzc83o",
              7191, 3.2, _mar(1280, 20, 16, diffloss_d=12, diffloss_w=1536))

# The architecture of the official-code parity case (tests/data): 16x16 tokens, width 64, 10 classes, randomly
# initialised: it exercises the whole pipeline anywhere in seconds; its images are not meant to look like anything.
_add(_mar(64, 2, 4, diffloss_d=2, diffloss_w=64, class_num=10),
     WeightFile("tiny MAR", "mar/mar_tiny/checkpoint-last.pth", None, 0, "model.checkpoint"),
     name="mar_tiny", random_init=True, default_cfg=3.0, num_classes=10, demo_classes=list(range(10)),
     tokenizer=TokenizerConfig("kl16_tiny", random_init=True), metrics=MetricsConfig("inception", "adm_in256"))

# The project's own MAR, trained on Fashion-MNIST (scripts/train.py) and shipped in gtr/assets with its tokenizer:
# 28x28 grey images, 7x7 tokens of 4 channels, 10 classes; sized to train in about an hour on a 2-core CPU. Dropout
# is off: at this size and budget it only slows training (torch's CPU dropout is ~20 % of a step).
# CFG 4.0: GtR default sampler, 500 samples: cfg 2/3/4/5/6 -> FID analogue 30.0/24.8/23.0/22.7/22.1, accuracy
# 0.87/0.91/0.93/0.95/0.96. 16 AR steps: with 49 tokens, the toy study's reference baseline.
# clip_timestep 950: the first step of the unclipped respacing (t = 999, alpha_bar ~ 1e-5) amplifies any eps error
# ~100x, and a model trained for an hour has not learned eps(x_999) that precisely: samples blow up. DiSA's
# min(t, 950), which the paper's own FLOPs imply for every row (100 steps run as 96), removes that step.
_FMNIST = dict(default_cfg=4.0, clip_timestep=950, grid_upscale=3, class_names="fashion_mnist", num_classes=10,
               demo_classes=list(range(10)))
_add(_mar(128, 3, 4, diffloss_d=3, diffloss_w=128, img_size=28, vae_stride=4, vae_embed_dim=4, class_num=10,
          buffer_size=4, attn_dropout=0.0, proj_dropout=0.0),
     WeightFile("Fashion-MNIST MAR", "fmnist/mar_fmnist.safetensors", None, 0, "model.checkpoint",
                bundled="mar_fmnist.safetensors"),
     name="mar_fmnist", default_num_iter=16, tokenizer=TokenizerConfig("fmnist_vae"),
     metrics=MetricsConfig("fmnist", "fashion_mnist:test"), **_FMNIST)
# The 16x16-token testbed (32x32 Fashion-MNIST through the stride-2 fmnist16_vae): ImageNet MAR's token grid, so
# the paper's sampler configs run unchanged. mar_fmnist's width and depth: 5x its tokens already make a training
# step ~4x dearer, and the whole model must train in under ~2 h on a 2-core CPU. No guidance (CFG 1.0): at CFG 4.0
# (its best FID analogue, 35.8 at 64 AR steps) 8 AR steps are no worse than 64 and the paper's premise fails; without
# guidance 8 steps are clearly worse (results/toy_study_16x16.md, premise attempts 1 and 2).
_add(_mar(128, 3, 4, diffloss_d=3, diffloss_w=128, img_size=32, vae_stride=2, vae_embed_dim=4, class_num=10,
          buffer_size=4, attn_dropout=0.0, proj_dropout=0.0),
     WeightFile("Fashion-MNIST 16x16-token MAR", "fmnist/mar_fmnist16.safetensors", None, 0, "model.checkpoint",
                bundled="mar_fmnist16.safetensors"),
     name="mar_fmnist16", default_num_iter=64, demo_images_per_class=4, tokenizer=TokenizerConfig("fmnist16_vae"),
     metrics=MetricsConfig("fmnist", "fashion_mnist32:test"), **{**_FMNIST, "default_cfg": 1.0})

# The scenes testbed (gtr.data.scenes: 32x32 RGB through the stride-2 scenes_vae, 16x16 tokens, 12 classes = object
# count x shape, colours and background drawn per image): a sample is scored exactly by rule (gtr.eval.scenes).
# mar_fmnist16's width with one more block on each side: whether all objects agree on colour and count is a relation
# across the whole image. clip_timestep 950 as the other testbeds. default_cfg is set from the CFG sweep of the
# premise gate (results/scenes_study.md); 1.0 until it has run.
_add(_mar(128, 4, 4, diffloss_d=3, diffloss_w=128, img_size=32, vae_stride=2, vae_embed_dim=4, class_num=12,
          buffer_size=4, attn_dropout=0.0, proj_dropout=0.0),
     WeightFile("scenes MAR", "scenes/mar_scenes.safetensors", None, 0, "model.checkpoint",
                bundled="mar_scenes.safetensors"),
     name="mar_scenes", default_num_iter=64, demo_images_per_class=6, tokenizer=TokenizerConfig("scenes_vae"),
     metrics=MetricsConfig("scenes", "scenes:test"), default_cfg=1.0, clip_timestep=950, grid_upscale=3,
     class_names="scenes", num_classes=12, demo_classes=list(range(12)))

# LightGen (fluid_large, 512 px), DPO-finetuned as LightGen's GenEval script loads it: the "model" weights of
# <root>/lightgen/fluid_dpo/checkpoint-last.pth (hosted on the hub as Beckham808/LightGen, whose file list is not
# public: place the official file there, or pass its path). Text: FLAN-T5-XXL through transformers; pixels: the
# SD3-family VAE through diffusers (<root>/vae/sd3_vae.safetensors: the diffusers state dict of
# stabilityai/stable-diffusion-3.5-large/vae, a gated hub repo). Defaults are Table 2's baseline row (32 AR steps x
# 50 diffusion steps, constant CFG 4.0; LightGen's own scripts use 64 x 100) and, for sampler=gtr, its K=4 schedule
# (8, 3, 3, 2) = 16 AR steps.
_LIGHTGEN = dict(condition="text", ema=False, default_cfg=4.0, default_num_iter=32, default_diffusion_steps=50,
                 default_cfg_schedule="constant", gtr=GtRDefaults(4, [16.0, 42.6, 85.3, 256.0]))
_add(LightGenConfig(), WeightFile("LightGen", "lightgen/fluid_dpo/checkpoint-last.pth", None, 3030, "model.checkpoint"),
     name="lightgen", tokenizer=TokenizerConfig("sd3_vae"), text_encoder=TextEncoderConfig(), **_LIGHTGEN)
# The official-code parity case (tests/data/tiny_lightgen_parity.pt), random weights, random text features.
_add(LightGenConfig(width=32, encoder_depth=2, encoder_num_heads=4, decoder_depth=2, decoder_num_heads=4,
                    cross_depth=2, cross_num_heads=2, text_depth=1, caption_channels=48, diffloss_d=2, diffloss_w=64),
     WeightFile("tiny LightGen", "lightgen/lightgen_tiny/checkpoint-last.pth", None, 0, "model.checkpoint"),
     name="lightgen_tiny", random_init=True, tokenizer=TokenizerConfig("sd3_vae_tiny", random_init=True),
     text_encoder=TextEncoderConfig(random_init=True), **_LIGHTGEN)


# The text-to-image scenes testbed (gtr.data.scene_prompts: GenEval's six tasks with shapes for classes and the
# palette for colours; scored by GenEval's rules on exact detections, gtr.eval.geneval.scenes). LightGen's
# architecture at mar_scenes' scale on 16x16 tokens of scenes_t2i_vae (scenes_vae fine-tuned on these scenes: trained
# only on images whose objects share one shape, scenes_vae redraws a second shape as the first); text through WordT5 (a 2-layer T5
# encoder over the prompts' 23 words), trained with it. LightGen's 1,024-token GtR setting maps to 256 tokens by
# dividing the rates by 4: the stages hold a quarter of the tokens each, so the AR steps stay (8, 3, 3, 2) = 16.
# default_cfg is set from the CFG sweep of the premise gate (results/scenes_t2i_study.md); 4.0 (LightGen's) until then.
_add(LightGenConfig(img_size=32, vae_stride=2, patch_size=1, vae_embed_dim=4, width=128, encoder_depth=4,
                    encoder_num_heads=4, decoder_depth=4, decoder_num_heads=4, cross_depth=2, cross_num_heads=4,
                    text_depth=1, caption_channels=128, max_length=16, pos_grid=16, diffloss_d=3, diffloss_w=128,
                    attn_dropout=0.0, proj_dropout=0.0),
     WeightFile("scenes LightGen", "scenes/lightgen_scenes.safetensors", None, 0, "model.checkpoint",
                bundled="lightgen_scenes.safetensors"),
     name="lightgen_scenes", tokenizer=TokenizerConfig("scenes_t2i_vae"), clip_timestep=950, grid_upscale=3,
     text_encoder=TextEncoderConfig(kind="words", path=None, max_length=16),
     geneval=GenEvalDefaults("scenes", "scenes"),
     **{**_LIGHTGEN, "ema": True, "gtr": GtRDefaults(4, [4.0, 10.65, 21.325, 64.0])})


# ----------------------------------------------------------------------------------------------------------------
# Views and lookups


PRESETS: dict[str, MARConfig] = {k: p.architecture for k, p in REGISTRY.items() if p.family == "mar"}
LIGHTGEN_PRESETS: dict[str, LightGenConfig] = {k: p.architecture for k, p in REGISTRY.items()
                                               if p.family == "lightgen"}
PRESET_NAMES: dict[str, str] = {k: p.config.title for k, p in REGISTRY.items()}


def preset(name: str, family: str | None = None) -> Preset:
    """A registry entry by name (of ``family`` when given), or a one-line error listing the valid names."""
    names = [k for k, p in REGISTRY.items() if family in (None, p.family)]
    if name not in names:
        what = {"mar": "MAR preset", "lightgen": "LightGen preset"}.get(family, "model")
        raise GtRError(f"unknown {what} {name!r}: choose one of {', '.join(names)}")
    return REGISTRY[name]


def mar_config(name: str | None = None, **overrides) -> MARConfig:
    """A MAR preset's architecture by name, optionally with some hyperparameters replaced, or any size from
    hyperparameters alone."""
    base = MARConfig() if name is None else preset(name, "mar").architecture
    return replace_checked(base, overrides, "MAR")


def lightgen_config(name: str, **overrides) -> LightGenConfig:
    return replace_checked(preset(name, "lightgen").architecture, overrides, "LightGen")


def register_configs() -> None:
    """Store every entry's :class:`ModelConfig` as ``model=<name>`` in Hydra's ConfigStore (idempotent)."""
    from hydra.core.config_store import ConfigStore
    store = ConfigStore.instance()
    for name, entry in REGISTRY.items():
        store.store(group="model", name=name, node=dataclasses.replace(entry.config))


__all__ = ["ModelConfig", "Preset", "REGISTRY", "PRESETS", "LIGHTGEN_PRESETS", "PRESET_NAMES", "preset",
           "mar_config", "lightgen_config", "register_configs"]
