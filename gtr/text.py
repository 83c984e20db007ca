"""Text conditions for LightGen: the FLAN-T5-XXL encoder through ``transformers``, fed as LightGen feeds it.

Prompts are padded (and truncated) to ``max_length`` = 128 tokens; the attention mask is used inside T5 only, and
all 128 output rows, padding included, go on to the model unmasked (docs/lightgen_geneval.md Sec. 1.3).
LightGen's GenEval script runs T5 in fp32; ``dtype="bf16"`` halves its memory at a small numerical cost.
Features can be cached on disk, one file per prompt, so GenEval's 553 prompts are encoded once for every sampler.

The text-to-image scenes testbed has its own encoder behind the same interface (:class:`WordT5`): a small T5
encoder (``transformers``' ``T5EncoderModel``, random init) over a word-level vocabulary, trained with
``lightgen_scenes`` and shipped beside it (``gtr/assets/scenes_text.safetensors``, the vocabulary and T5 settings in
its metadata).
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


# ----------------------------------------------------------------------------------------------------------------
# The scenes testbed's text encoder

PAD, EOS, UNK = 0, 1, 2  # T5's pad and eos ids; words start at 3


class WordT5(torch.nn.Module):
    """A small T5 encoder over a fixed word vocabulary: a prompt is lower-cased, split on spaces, each word mapped to
    its id, ``</s>`` appended, padded to ``max_length``. T5's relative position biases tell word order apart ("a red
    circle and a blue square" vs "a blue circle and a red square"). Output: ``last_hidden_state`` [B, L, d_model],
    padding rows included (LightGen's cross-attention reads all of them, as with FLAN-T5)."""

    def __init__(self, vocabulary: tuple[str, ...], d_model: int = 128, num_layers: int = 2, num_heads: int = 4,
                 d_ff: int = 256, max_length: int = 16):
        require("transformers", "t2i")
        from transformers import T5Config, T5EncoderModel
        super().__init__()
        self.vocabulary, self.max_length = tuple(vocabulary), int(max_length)
        self.settings = dict(d_model=d_model, num_layers=num_layers, num_heads=num_heads, d_ff=d_ff,
                             max_length=max_length)
        self._ids = {word: i + 3 for i, word in enumerate(self.vocabulary)}
        config = T5Config(vocab_size=len(self.vocabulary) + 3, d_model=d_model, d_kv=d_model // num_heads, d_ff=d_ff,
                          num_layers=num_layers, num_heads=num_heads, relative_attention_num_buckets=8,
                          relative_attention_max_distance=max_length, dropout_rate=0.0,
                          feed_forward_proj="gated-gelu", pad_token_id=PAD, eos_token_id=EOS,
                          decoder_start_token_id=PAD)
        self.t5 = T5EncoderModel(config)

    @property
    def hidden_size(self) -> int:
        return self.settings["d_model"]

    def ids(self, prompts: list[str]) -> torch.Tensor:
        """Token ids [B, max_length] of the prompts; an unknown word or a too-long prompt is a one-line error."""
        rows = []
        for prompt in prompts:
            words = prompt.lower().split()
            unknown = [w for w in words if w not in self._ids]
            if unknown:
                raise GtRError(f"prompt {prompt!r}: unknown word(s) {', '.join(map(repr, unknown))}; this text "
                               f"encoder knows {', '.join(self.vocabulary)}")
            if len(words) + 1 > self.max_length:
                raise GtRError(f"prompt {prompt!r} has {len(words)} words: this text encoder takes at most "
                               f"{self.max_length - 1}")
            row = [self._ids[w] for w in words] + [EOS]
            rows.append(row + [PAD] * (self.max_length - len(row)))
        return torch.tensor(rows, dtype=torch.long)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids = ids.to(self.t5.device)
        return self.t5(input_ids=ids, attention_mask=(ids != PAD).long()).last_hidden_state

    def metadata(self) -> dict[str, str]:
        """What :func:`load_word_t5` needs to rebuild it (safetensors metadata)."""
        return {"vocabulary": " ".join(self.vocabulary), **{k: str(v) for k, v in self.settings.items()}}


def load_word_t5(path: str | os.PathLike) -> WordT5:
    """A :class:`WordT5` from a safetensors file written by the ``lightgen`` training job."""
    from safetensors import safe_open
    from gtr.weights import load_into
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:  # safetensors raises its own error types for corrupt files
        raise GtRError(f"cannot read the text encoder {path} ({type(err).__name__}: {err}): re-export it with "
                       "scripts/train.py, or restore the shipped file") from None
    if "vocabulary" not in meta:
        raise GtRError(f"{path} holds no vocabulary in its metadata: not a text encoder written by scripts/train.py")
    encoder = WordT5(tuple(meta["vocabulary"].split()), **{k: int(meta[k]) for k in
                                                           ("d_model", "num_layers", "num_heads", "d_ff", "max_length")})
    load_into(encoder, state, path, "the scenes text encoder")
    return encoder.eval()


class WordTextEncoder:
    """:class:`WordT5` behind :class:`T5TextEncoder`'s interface (``__call__``, ``key``), for :func:`cached_features`;
    the cache key names the weights' SHA-256, so retrained weights never read stale features."""

    def __init__(self, path: str | os.PathLike, device: str | torch.device = "cpu"):
        self.path, self.device = Path(path), torch.device(device)
        self.sha256 = hashlib.sha256(self.path.read_bytes()).hexdigest()
        self._model: WordT5 | None = None

    @torch.no_grad()
    def __call__(self, prompts: list[str]) -> torch.Tensor:
        if self._model is None:
            self._model = load_word_t5(self.path).to(self.device)
        return self._model(self._model.ids(list(prompts))).float()

    def key(self, prompt: str) -> str:
        return hashlib.sha256(f"word-t5|{self.sha256}|{prompt}".encode()).hexdigest()[:32]


__all__ = ["T5TextEncoder", "T5_NAME", "WordT5", "WordTextEncoder", "cached_features", "load_word_t5"]
