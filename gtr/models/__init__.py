"""Networks: MAR, LightGen and their diffusion head, and the registry of named models
(:mod:`gtr.models.registry`). ``build_model`` makes a randomly initialised one, ``load_model`` a configured or
pretrained one through the weight resolver; ``build_mar``/``load_mar`` and ``build_lightgen``/``load_lightgen``
are the same for one family."""
from __future__ import annotations

import os
from typing import Any, Mapping

import torch

from gtr.models.lightgen import LightGen, LightGenConfig, initialize_official
from gtr.models.mar import MAR, MARConfig
from gtr.models.registry import (LIGHTGEN_PRESETS, PRESET_NAMES, PRESETS, REGISTRY, ModelConfig, Preset,
                                 lightgen_config, mar_config, preset)
from gtr.weights import DEFAULT_ROOT, load_into, read_checkpoint, resolve, seeded, select_state_dict


def build_model(name: str, seed: int | None = 0, device: str | torch.device = "cpu",
                **hyperparameters) -> MAR | LightGen:
    """A randomly initialised model of a registry entry (as its official initialisation), some architecture
    fields replaced by ``hyperparameters``."""
    entry = preset(name)
    with seeded(seed):
        if entry.family == "lightgen":
            model = initialize_official(LightGen(lightgen_config(name, **hyperparameters)))
        else:
            model = MAR(mar_config(name, **hyperparameters))
    return model.to(device).eval()


def build_mar(preset_name: str | None = None, seed: int | None = 0, device: str | torch.device = "cpu",
              **hyperparameters) -> MAR:
    """A randomly initialised MAR from a preset name and/or explicit hyperparameters (see ``MARConfig``)."""
    if preset_name is not None:
        preset(preset_name, "mar")
        return build_model(preset_name, seed, device, **hyperparameters)
    with seeded(seed):
        model = MAR(mar_config(None, **hyperparameters))
    return model.to(device).eval()


def build_lightgen(preset_name: str = "lightgen", seed: int | None = 0, device: str | torch.device = "cpu",
                   **hyperparameters) -> LightGen:
    """A randomly initialised LightGen (positions and tokens N(0, 0.02), as the official initialisation)."""
    preset(preset_name, "lightgen")
    return build_model(preset_name, seed, device, **hyperparameters)


def identify_mar(state_dict: dict[str, torch.Tensor]) -> str | None:
    """The MAR preset whose keys and shapes a state dict has exactly, if any."""
    shapes = {k: tuple(v.shape) for k, v in state_dict.items()}
    for name, config in PRESETS.items():
        with torch.device("meta"):
            reference = MAR(config).state_dict()
        if shapes == {k: tuple(v.shape) for k, v in reference.items()}:
            return name
    return None


def _mismatch_hint(name: str, state_dict: dict[str, torch.Tensor]) -> str:
    """What a MAR checkpoint that does not load into ``name`` looks like instead, for the error message."""
    guess = identify_mar(state_dict)
    if guess is not None:
        extra = " without hyperparameter overrides" if guess == name else ""
        return f"; it looks like a {PRESET_NAMES[guess]} checkpoint (use model={guess}{extra})"
    if any(k.startswith("diffloss.net.res_blocks.") for k in state_dict):
        depth = len({k.split(".")[3] for k in state_dict if k.startswith("diffloss.net.res_blocks.")})
        return f"; its diffusion MLP has {depth} blocks (set the matching diffloss_d/diffloss_w)"
    return ""


def load_pretrained(name: str, checkpoint: str | os.PathLike | None = None, *, root: str | os.PathLike = DEFAULT_ROOT,
                    download: bool = True, ema: bool | None = None, device: str | torch.device = "cpu",
                    **hyperparameters) -> MAR | LightGen:
    """A pretrained model of a registry entry in eval mode: ``checkpoint`` or the entry's weight file (the copy
    shipped in the package, else the official layout under ``root``, downloaded when missing). ``ema`` (default:
    the entry's, as its official evaluation loads it) picks ``model_ema`` over ``model``."""
    entry = preset(name)
    ema = entry.config.ema if ema is None else ema
    path = resolve(entry.weights, checkpoint, root, download)
    state_dict = select_state_dict(read_checkpoint(path), "model_ema" if ema else "model", path)
    lightgen = entry.family == "lightgen"
    with torch.device("meta"):
        model = LightGen(lightgen_config(name, **hyperparameters)) if lightgen else MAR(mar_config(name, **hyperparameters))
    hint = "" if lightgen else _mismatch_hint(name, state_dict)
    load_into(model, state_dict, path, f"{entry.config.title} ({name})", hint)
    return model.to(device).eval()


def load_mar(preset_name: str, checkpoint: str | os.PathLike | None = None, **options) -> MAR:
    """A pretrained MAR (EMA weights by default, as the official evaluation): see :func:`load_pretrained`."""
    preset(preset_name, "mar")
    return load_pretrained(preset_name, checkpoint, **options)


def load_lightgen(preset_name: str = "lightgen", checkpoint: str | os.PathLike | None = None, **options) -> LightGen:
    """A pretrained LightGen (the ``model`` weights, as the official inference scripts): see
    :func:`load_pretrained`."""
    preset(preset_name, "lightgen")
    return load_pretrained(preset_name, checkpoint, **options)


def load_model(model_cfg: Mapping[str, Any], weights_cfg: Mapping[str, Any] | None = None,
               device: str | torch.device = "cpu") -> MAR | LightGen:
    """The model of a ``model`` config (:class:`ModelConfig`), for every job, benchmark and study: random weights
    when ``random_init`` is set and no checkpoint is given, else pretrained (``weights_cfg``: ``root`` and
    ``download``)."""
    weights_cfg = weights_cfg or {"root": DEFAULT_ROOT, "download": True}
    hparams = dict(model_cfg.get("hparams") or {})
    if model_cfg.get("random_init") and not model_cfg.get("checkpoint"):
        return build_model(model_cfg["preset"], seed=model_cfg.get("init_seed", 0), device=device, **hparams)
    return load_pretrained(model_cfg["preset"], model_cfg.get("checkpoint"), root=weights_cfg["root"],
                           download=weights_cfg["download"], ema=model_cfg.get("ema"), device=device, **hparams)


__all__ = ["MAR", "MARConfig", "LightGen", "LightGenConfig", "ModelConfig", "Preset", "REGISTRY", "PRESETS",
           "LIGHTGEN_PRESETS", "PRESET_NAMES", "build_model", "build_mar", "build_lightgen", "load_model",
           "load_pretrained", "load_mar", "load_lightgen", "identify_mar", "mar_config", "lightgen_config", "preset"]
