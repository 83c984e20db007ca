"""GenEval's colour classifier: zero-shot CLIP ViT-L/14 (OpenAI weights, through ``transformers``) on each object's
crop, as ``evaluation/evaluate_images.py`` builds it with open_clip and clip_benchmark:

- crop: the object's binary mask composited over a ``#999`` grey canvas, cropped to its box (PIL rounds the float
  box), then open_clip's eval transform (bicubic resize of the short side to 224, centre crop, OpenAI mean/std);
- classifier per object class: for each colour the mean of the L2-normalised text embeddings of three templates
  ("a photo of a {c} {cls}", "a photo of a {c}-colored {cls}", "a photo of a {c} object"), renormalised;
- prediction: the colour with the largest cosine similarity;
- on CUDA, text and image features and the logits under fp16 autocast (clip_benchmark's ``amp=True`` default);
  ``amp=False`` for fp32.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

from gtr.errors import GtRError, require
from gtr.eval.geneval.rules import COLORS, Detection

CLIP_NAME = "openai/clip-vit-large-patch14"  # the weights of open_clip's ViT-L-14 "openai"
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
TEMPLATES = ("a photo of a {c} {cls}", "a photo of a {c}-colored {cls}", "a photo of a {c} object")


class ColorClassifier:
    """``colors(image, objects, classname)`` -> one of :data:`COLORS` per object."""

    def __init__(self, model, tokenizer, device: str | torch.device = "cpu", batch_size: int = 16, amp: bool = True):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.amp = amp
        self._classifiers: dict[str, torch.Tensor] = {}
        self.to(device)
        self.batch_size = batch_size  # the official DataLoader's
        size = model.config.vision_config.image_size
        self.transform = transforms.Compose([
            transforms.Resize(size, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.CenterCrop(size), transforms.ToTensor(), transforms.Normalize(OPENAI_MEAN, OPENAI_STD)])

    @property
    def identity(self) -> str:
        """The weights it runs (part of a resumable scoring's key)."""
        return self.model.config._name_or_path

    @torch.no_grad()
    def classifier(self, classname: str) -> torch.Tensor:
        """[D, len(COLORS)] normalised colour embeddings for objects of ``classname`` (cached)."""
        if classname not in self._classifiers:
            columns = []
            for color in COLORS:
                texts = [t.format(c=color, cls=classname) for t in TEMPLATES]
                batch = self.tokenizer(texts, padding=True, return_tensors="pt").to(self.device)
                with self._autocast():
                    emb = self.model.get_text_features(input_ids=batch["input_ids"],
                                                       attention_mask=batch["attention_mask"]).pooler_output
                    emb = torch.nn.functional.normalize(emb, dim=-1).mean(0)
                    columns.append(emb / emb.norm())
            self._classifiers[classname] = torch.stack(columns, dim=1)
        return self._classifiers[classname]

    def to(self, device: str | torch.device) -> "ColorClassifier":
        self.device = torch.device(device)
        self.model.to(self.device)
        self._classifiers.clear()
        return self

    def _autocast(self):
        return torch.autocast("cuda", dtype=torch.float16, enabled=self.amp and self.device.type == "cuda")

    def crops(self, image: Image.Image, objects: Sequence[Detection]) -> list[Image.Image]:
        image = image.convert("RGB")
        blank = Image.new("RGB", image.size, color="#999")
        out = []
        for obj in objects:
            crop = image
            if obj.mask is not None:
                if tuple(obj.mask.shape) != (image.height, image.width):
                    raise GtRError(f"a detection mask of shape {tuple(obj.mask.shape)} does not fit the "
                                   f"{image.height}x{image.width} image: masks must be at the image's size")
                crop = Image.composite(image, blank, Image.fromarray(np.asarray(obj.mask, dtype=bool)))
            out.append(crop.crop(tuple(float(v) for v in obj.box[:4])))
        return out

    @torch.no_grad()
    def __call__(self, image: Image.Image, objects: Sequence[Detection], classname: str) -> list[str]:
        weights = self.classifier(classname)
        crops = self.crops(image, objects)
        predictions = []
        for start in range(0, len(crops), self.batch_size):
            pixels = torch.stack([self.transform(c) for c in crops[start:start + self.batch_size]]).to(self.device)
            with self._autocast():  # clip_benchmark computes the logits under autocast too
                features = self.model.get_image_features(pixel_values=pixels).pooler_output
                logits = 100.0 * torch.nn.functional.normalize(features, dim=-1) @ weights
            predictions += logits.float().argmax(1).tolist()
        return [COLORS[i] for i in predictions]


def load_color_classifier(name_or_path: str | os.PathLike | None = None, download: bool = True,
                          device: str | torch.device = "cpu", amp: bool = True) -> ColorClassifier:
    """CLIP ViT-L/14 (hub id or local folder holding the model and its tokenizer)."""
    require("transformers", "t2i")
    from transformers import AutoTokenizer, CLIPModel
    from gtr.weights import offline
    name = str(name_or_path or CLIP_NAME)
    local = offline() or not download or Path(name).is_dir()
    try:
        model = CLIPModel.from_pretrained(name, local_files_only=local)
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local)
    except OSError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise GtRError(f"CLIP model {name!r} not found ({first}): `huggingface-cli download {CLIP_NAME}` when "
                       f"online, or set geneval.clip_path=<local folder>") from None
    return ColorClassifier(model, tokenizer, device, amp=amp)
