"""The one scoring path: :func:`score` turns uint8 image batches into FID/IS (or their analogues), class accuracy,
KID and the scenes' exact validity, given an extractor and a reference, explicitly. ``scripts/generate.py``,
``gtr-score`` and the studies all score through it.

What an extractor and a reference are, built from names (:class:`Scoring`, what ``metrics.*`` and ``weights.*`` of a
job say, or ``gtr-score``'s flags): ``inception`` is torch-fidelity's Inception-v3, the paper's metric; ``fmnist`` and
``scenes`` are the project's classifiers, whose numbers are the analogues and are always labelled so (``fid_fmnist``,
``is_scenes``...). A reference is an .npz of ``mu``/``sigma``, a folder of reference images, a Fashion-MNIST split
(``fashion_mnist:test``, ``fashion_mnist32:test``), a generated scenes split (``scenes:test``: its features are kept,
so KID can be computed too) or a named statistics file (``adm_in256``, resolved like weights)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from gtr.errors import GtRError
from gtr.eval.fashion import parse_reference
from gtr.eval.fid import extract, frechet_distance, inception_score, load_statistics, statistics
from gtr.eval.sources import folder_images, png_batches
from gtr.weights import DEFAULT_ROOT

EXTRACTORS = ("inception", "fmnist", "scenes")
FEATURE_DIMS = {"inception": 2048, "fmnist": 128, "scenes": 128}  # what each extractor's statistics must have
# Reference statistics known by name: resolved like weights (official layout under weights.root, downloaded when
# missing and verified).
NAMED_REFERENCES = {"adm_in256": "adm_in256_stats"}
KID_SUBSET = 500  # images per KID subset (torch-fidelity's default is 1,000; a row's seed may have fewer)


@dataclass(frozen=True)
class Reference:
    """What samples are compared with: FID statistics, and the features themselves when known (for KID)."""
    statistics: dict[str, np.ndarray]
    features: torch.Tensor | None = None
    count: int | None = None  # number of reference images, when known (a small one makes FID singular)

    @classmethod
    def of_features(cls, features: torch.Tensor) -> "Reference":
        return cls(statistics(features), features, len(features))


def score(batches: Iterable[torch.Tensor], extractor, reference: Reference, *, labels=None,
          exact: Callable | None = None, kid: bool = False, per_image: bool = False, num_images: int | None = None,
          is_splits: int = 10, progress: bool = False) -> dict:
    """Scores of uint8 image batches [B, H, W, 3] against ``reference``, in one pass over the images.

    Always: ``fid``/``is`` (suffixed with the extractor's analogue name, e.g. ``fid_scenes``), ``is_std``,
    ``is_splits``, ``count`` and the extractor's name. With ``labels`` (one class per image) and an analogue
    extractor: ``accuracy``. With ``exact`` (``exact(images, labels) -> SceneScores``, the scenes' rule-based scorer)
    and labels: ``valid``, ``validity`` and each ``fail_*`` rate (``per_image``: ``valid_bits`` too). With ``kid`` and
    reference features: ``kid``/``kid_std`` (100 subsets of up to ``KID_SUBSET`` images, seed 0). A reference or
    sample smaller than the feature size gives a ``fid_warning``."""
    labels = None if labels is None else np.asarray(labels)
    outcomes = []
    if exact is not None and labels is not None:  # the exact scorer reads every image as it passes

        def scored(batches, done=0):
            for batch in batches:
                outcomes.append(exact(batch.numpy(), labels[done:done + len(batch)]))
                done += len(batch)
                yield batch
        batches = scored(batches)
    features, logits = extract(extractor, batches, num_images, progress=progress)
    count = len(features)
    suffix = extractor.suffix
    splits = min(is_splits, count)
    is_mean, is_std = inception_score(logits, splits=splits)
    result = {"extractor": extractor.name, "count": count,
              f"fid{suffix}": frechet_distance(statistics(features), reference.statistics),
              f"is{suffix}": is_mean, "is_std": is_std, "is_splits": splits}
    if kid and reference.features is not None:
        from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric
        size = min(KID_SUBSET, count, len(reference.features))
        out = kid_features_to_metric(features.float(), reference.features.float(), kid_subsets=100,
                                     kid_subset_size=size, rng_seed=0, verbose=False)
        result[f"kid{suffix}"], result[f"kid{suffix}_std"] = out[KEY_METRIC_KID_MEAN], out[KEY_METRIC_KID_STD]
    dims = len(reference.statistics["mu"])
    small = [f"{name} has {n:,} images, fewer than the {dims:,} feature dimensions: its covariance is singular and "
             "this FID is not comparable with one against a full set"
             for name, n in (("the reference", reference.count), ("the sample", count)) if n is not None and n < dims]
    if small:
        result["fid_warning"] = "; ".join(small)
        print(f"warning: {result['fid_warning']}", flush=True)
    if suffix and labels is not None:
        if len(labels) != count:
            raise GtRError(f"got {len(labels)} labels for {count} images: give one class label per image")
        result["accuracy"] = float((logits.argmax(1).numpy() == labels).mean())
    if outcomes:
        valid = np.concatenate([o.valid for o in outcomes])
        result["valid"], result["validity"] = int(valid.sum()), float(valid.mean())
        for kind in outcomes[0].failures:
            result[f"fail_{kind}"] = float(np.concatenate([o.failures[kind] for o in outcomes]).mean())
        if per_image:
            result["valid_bits"] = "".join("1" if v else "0" for v in valid)
    return result


def scenes_split(reference: str) -> str | None:
    """``scenes:<split>`` (a generated split of gtr.data.scenes) -> the split; None for any other reference."""
    head, _, split = str(reference).partition(":")
    if head != "scenes":
        return None
    from gtr.data.scenes import SPLIT_SIZES
    if split not in SPLIT_SIZES:
        raise GtRError(f"unknown scenes reference {reference!r}: use scenes:{' or scenes:'.join(SPLIT_SIZES)}")
    return split


@dataclass(frozen=True)
class Scoring:
    """The scoring inputs by name: which extractor, which reference, where their files live. A job builds it from
    its ``metrics.*``/``weights.*`` (:meth:`from_config`), ``gtr-score`` from its flags."""
    extractor: str = "inception"
    reference: str | None = None
    inception: str | None = None  # a local Inception-v3 file (else <weights_root>/inception/..., downloaded)
    classifier: str | None = None  # a local classifier file for fmnist/scenes (else the shipped one)
    data_root: str | None = None  # the Fashion-MNIST folder, for fashion_mnist references
    weights_root: str = DEFAULT_ROOT
    download: bool = False
    progress: bool = False

    @classmethod
    def from_config(cls, cfg) -> "Scoring":
        m = cfg.metrics
        return cls(m.extractor, m.reference, m.get("inception"), m.get("classifier"), m.get("data_root"),
                   cfg.weights.root, bool(cfg.weights.download), bool(cfg.get("progress", False)))

    def check_extractor(self) -> None:
        if self.extractor not in EXTRACTORS:
            raise GtRError(f"unknown feature extractor {self.extractor!r}: use metrics.extractor=inception, fmnist or "
                           "scenes")

    def check_reference(self) -> None:
        if self.reference is None:
            raise GtRError("no FID reference: set metrics.reference to adm_in256 (the official ImageNet-256 "
                           "statistics), an .npz of mu/sigma or a folder of reference images")

    def reference_file(self) -> Path:
        """The local path of a named reference (downloaded and verified when missing) or the path as given."""
        if self.reference in NAMED_REFERENCES:
            from gtr.weights import WEIGHTS, resolve
            return resolve(WEIGHTS[NAMED_REFERENCES[self.reference]], None, self.weights_root, self.download)
        return Path(self.reference)

    def preflight(self) -> None:
        """Fail before any image is generated when the scoring inputs are missing (one-line errors)."""
        self.check_reference()
        self.check_extractor()
        fashion = parse_reference(self.reference)
        if scenes_split(self.reference):
            from gtr.weights import WEIGHTS, resolve
            resolve(WEIGHTS["scenes_classifier"], self.classifier, self.weights_root, download=False)
        elif fashion:
            from gtr.data import FashionMNIST
            FashionMNIST(fashion[0], self.data_root)  # the split's files must be there
        elif self.reference_file().is_dir():
            files = folder_images(self.reference_file(), minimum=0)
            if len(files) < 2:
                raise GtRError(f"reference folder {self.reference_file()} holds {len(files)} images: need at least 2 "
                               f"(and {FEATURE_DIMS[self.extractor]:,} or more for a full-rank covariance)")
        else:
            stats = load_statistics(self.reference_file())
            expected = FEATURE_DIMS[self.extractor]
            if stats["mu"].shape[0] != expected:
                raise GtRError(f"{self.reference_file()} holds {stats['mu'].shape[0]}-d statistics but the "
                               f"{self.extractor} extractor gives {expected}-d features: give statistics of the "
                               f"same extractor (or set metrics.extractor)")
        if self.extractor == "inception":
            from gtr.eval.inception import INCEPTION
            from gtr.weights import resolve
            resolve(INCEPTION, self.inception, self.weights_root, self.download)

    def make_extractor(self, device: torch.device):
        self.check_extractor()
        if self.extractor == "inception":
            from gtr.eval.inception import InceptionExtractor
            return InceptionExtractor(self.inception, root=self.weights_root, download=self.download, device=device)
        if self.extractor == "scenes":
            from gtr.eval.scenes import SceneExtractor, load_classifier
            return SceneExtractor(load_classifier(self.classifier, self.weights_root, device=device))
        from gtr.eval.fashion import FashionExtractor, load_classifier
        return FashionExtractor(load_classifier(self.classifier, device=device))

    def load_reference(self, extractor) -> Reference:
        self.check_reference()
        if scenes_split(self.reference):
            from gtr.eval.scenes import reference_features
            return Reference.of_features(reference_features(extractor, scenes_split(self.reference)))
        fashion = parse_reference(self.reference)
        if fashion:
            from gtr.eval.fashion import reference_statistics
            return Reference(reference_statistics(extractor, fashion[0], self.data_root, size=fashion[1]))
        path = self.reference_file()
        if path.is_dir():
            files = folder_images(path, minimum=0)
            if len(files) < 2:
                raise GtRError(f"reference folder {path} holds {len(files)} images: need at least 2")
            features = extract(extractor, png_batches(files), len(files), progress=self.progress)[0]
            return Reference(statistics(features), count=len(files))
        return Reference(load_statistics(path))

    def exact_scorer(self) -> Callable | None:
        """The rule-based scorer that goes with the extractor (scenes), if any."""
        if self.extractor == "scenes":
            from gtr.eval.scenes import score as exact
            return exact
        return None

    def score(self, batches: Iterable[torch.Tensor], device: torch.device, *, labels=None,
              num_images: int | None = None) -> dict:
        """Build the extractor and reference and :func:`score` the batches (the reference's name recorded)."""
        extractor = self.make_extractor(device)
        reference = self.load_reference(extractor)
        result = score(batches, extractor, reference, labels=labels, exact=self.exact_scorer(), num_images=num_images,
                       progress=self.progress)
        return {"extractor": result.pop("extractor"), "reference": str(self.reference), **result}
