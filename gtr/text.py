"""Text conditions for LightGen: the FLAN-T5-XXL encoder through ``transformers``, fed as LightGen feeds it.

Prompts are padded (and truncated) to ``max_length`` = 128 tokens; the attention mask is used inside T5 only, and
all 128 output rows, padding included, go on to the model unmasked (shared notes lightgen_geneval.md Sec. 1.3).
LightGen's GenEval script runs T5 in fp32; ``dtype="bf16"`` halves its memory at a small numerical cost.
Features can be cached on disk, one file per prompt, so GenEval's 553 prompts are encoded once for every sampler.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import torch

from gtr.errors import GtRError, require
from gtr.weights import offline

T5_NAME = "google/flan-t5-xxl"
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


class T5TextEncoder:
    """The encoder and tokenizer are loaded on first use, so a run whose prompts are all cached never loads T5."""

    def __init__(self, name_or_path: str | os.PathLike = T5_NAME, max_length: int = 128, dtype: str = "fp32",
                 device: str | torch.device = "cpu"):
        if dtype not in DTYPES:
            raise GtRError(f"unknown text-encoder dtype {dtype!r}: choose fp32 or bf16")
        self.name = str(name_or_path)
        self.max_length = max_length
        self.dtype = dtype
        self.device = torch.device(device)
        self._tokenizer = self._model = None

    def load(self) -> "T5TextEncoder":
        if self._model is not None:
            return self
        require("transformers", "t2i")
        from transformers import AutoTokenizer, T5EncoderModel  # imported here: slow to import
        local = offline() or Path(self.name).is_dir()
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(self.name, local_files_only=local)
            self._model = T5EncoderModel.from_pretrained(self.name, dtype=DTYPES[self.dtype],
                                                         local_files_only=local).to(self.device).eval()
        except OSError as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise GtRError(f"T5 text encoder {self.name!r} not found ({first}): `huggingface-cli download "
                           f"{T5_NAME}` when online, or set model.text_encoder.path=<local folder>") from None
        return self

    @torch.no_grad()
    def __call__(self, prompts: list[str]) -> torch.Tensor:
        """float32 features [B, max_length, hidden] of the prompts (T5's ``last_hidden_state``, padding rows kept)."""
        self.load()
        batch = self._tokenizer(list(prompts), padding="max_length", max_length=self.max_length, truncation=True,
                                return_tensors="pt")
        out = self._model(input_ids=batch.input_ids.to(self.device),
                          attention_mask=batch.attention_mask.to(self.device))
        return out.last_hidden_state.float()

    def key(self, prompt: str) -> str:
        """A file name for the features of ``prompt`` under this encoder and settings."""
        ident = f"{Path(self.name).name}|{self.max_length}|{self.dtype}|{prompt}"
        return hashlib.sha256(ident.encode()).hexdigest()[:32]


def cached_features(encoder: T5TextEncoder, prompts: list[str],
                    cache_dir: str | os.PathLike | None) -> torch.Tensor:
    """Features [B, L, hidden] of ``prompts``, encoding only those not cached yet under ``cache_dir`` (one
    safetensors file per prompt, written atomically); no cache when ``cache_dir`` is None.

    Each prompt is encoded alone, so its features do not depend on which prompts share a batch (on a GPU, batch
    composition changes the rounding): a run gives the same features whatever was cached and on any rank.
    """
    from safetensors.torch import load_file, save_file
    if cache_dir is None:
        return torch.cat([encoder([p]) for p in prompts])
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    paths = [cache / f"{encoder.key(p)}.safetensors" for p in prompts]
    for prompt, path in zip(prompts, paths):
        if path.is_file():
            continue
        fd, tmp = tempfile.mkstemp(dir=cache, prefix=f".{path.name}.", suffix=".tmp")  # ranks may write at once
        os.close(fd)
        save_file({"features": encoder([prompt])[0].contiguous()}, tmp, metadata={"prompt": prompt})
        os.replace(tmp, path)
    return torch.stack([load_file(str(path))["features"] for path in paths])


__all__ = ["T5TextEncoder", "T5_NAME", "cached_features"]
