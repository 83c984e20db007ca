"""Networks: MAR and its diffusion head. ``build_mar`` makes a randomly initialised model; ``load_mar`` a
pretrained one through the weight resolver."""
from __future__ import annotations

import os

import torch

from gtr.models.lightgen import LightGen, LightGenConfig, build_lightgen, lightgen_config
from gtr.models.mar import MAR, PRESET_NAMES, PRESETS, MARConfig, mar_config
from gtr.weights import DEFAULT_ROOT, WEIGHTS, WeightFile, load_into, read_checkpoint, resolve, select_state_dict


def build_mar(preset: str | None = None, seed: int | None = 0, device: str | torch.device = "cpu",
              **hyperparameters) -> MAR:
    """A randomly initialised MAR from a preset name and/or explicit hyperparameters (see ``MARConfig``)."""
    config = mar_config(preset, **hyperparameters)
    if seed is not None:
        torch.manual_seed(seed)
    return MAR(config).to(device).eval()


def identify_mar(state_dict: dict[str, torch.Tensor]) -> str | None:
    """The preset whose keys and shapes a state dict has exactly, if any."""
    shapes = {k: tuple(v.shape) for k, v in state_dict.items()}
    for name, config in PRESETS.items():
        with torch.device("meta"):
            reference = MAR(config).state_dict()
        if shapes == {k: tuple(v.shape) for k, v in reference.items()}:
            return name
    return None


def load_mar(preset: str, checkpoint: str | os.PathLike | None = None, *, root: str | os.PathLike = DEFAULT_ROOT,
             download: bool = True, ema: bool = True, device: str | torch.device = "cpu",
             **hyperparameters) -> MAR:
    """A pretrained MAR in eval mode: ``checkpoint`` or the official file of ``preset`` (found under ``root`` or
    downloaded). The EMA weights (``model_ema``) are loaded by default, as the official evaluation does."""
    config = mar_config(preset, **hyperparameters)
    file = WEIGHTS.get(preset) or WeightFile(PRESET_NAMES.get(preset, preset), f"mar/{preset}/checkpoint-last.pth",
                                             None, 0, "model.checkpoint")
    path = resolve(file, checkpoint, root, download)
    state_dict = select_state_dict(read_checkpoint(path), "model_ema" if ema else "model", path)
    with torch.device("meta"):
        model = MAR(config)
    hint = ""
    guess = identify_mar(state_dict)
    if guess is not None:
        extra = " without hyperparameter overrides" if guess == preset else ""
        hint = f"; it looks like a {PRESET_NAMES[guess]} checkpoint (use model={guess}{extra})"
    elif guess is None and any(k.startswith("diffloss.net.res_blocks.") for k in state_dict):
        depth = len({k.split(".")[3] for k in state_dict if k.startswith("diffloss.net.res_blocks.")})
        hint = f"; its diffusion MLP has {depth} blocks (set the matching diffloss_d/diffloss_w)"
    load_into(model, state_dict, path, f"{PRESET_NAMES.get(preset, preset)} ({preset})", hint)
    return model.to(device).eval()


def load_lightgen(preset: str = "lightgen", checkpoint: str | os.PathLike | None = None, *,
                  root: str | os.PathLike = DEFAULT_ROOT, download: bool = True, ema: bool = False,
                  device: str | torch.device = "cpu", **hyperparameters) -> LightGen:
    """A pretrained LightGen in eval mode. The official inference scripts load ``checkpoint["model"]`` (the
    non-EMA weights), so that is the default here too."""
    config = lightgen_config(preset, **hyperparameters)
    file = WEIGHTS.get(preset) or WeightFile("LightGen", f"lightgen/{preset}/checkpoint-last.pth", None, 0,
                                             "model.checkpoint")
    path = resolve(file, checkpoint, root, download)
    state_dict = select_state_dict(read_checkpoint(path), "model_ema" if ema else "model", path)
    with torch.device("meta"):
        model = LightGen(config)
    return load_into(model, state_dict, path, f"LightGen ({preset})").to(device).eval()


__all__ = ["MAR", "MARConfig", "PRESETS", "LightGen", "LightGenConfig", "build_mar", "build_lightgen", "load_mar",
           "load_lightgen", "identify_mar", "mar_config", "lightgen_config"]
