"""GenEval for LightGen and any sampler (``scripts/geneval.py``): generate the official layout, score it, write
the per-task JSON that the tables script reads (Table 2).

Generation reuses the FID sampler's machinery (:func:`gtr.jobs.distributed.render_sharded`): image k shows prompt
k // n_samples and draws from its own (seed, k) stream, fixed batches go round-robin to ranks, PNGs are written
atomically, a re-run resumes, and 1 or N processes write the same images. T5 runs once per prompt (features cached
on disk, ``text_cache``) and is not loaded at all when every prompt is cached. Rank 0 then scores the folder
(resumable too) and writes ``results.jsonl`` (the official evaluator's format), ``summary.txt`` (its printout)
and ``results.json`` (the run record with a ``geneval`` field of Table 2 cells, and the detector's label).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

import torch
from omegaconf import OmegaConf

from gtr.errors import GtRError, require
from gtr.files import write_json
from gtr.eval.geneval.colors import load_color_classifier
from gtr.eval.geneval.detector import load_detector
from gtr.eval.geneval.prompts import image_path, read_metadata, resolve_metadata, write_metadata
from gtr.eval.geneval.rules import Thresholds
from gtr.eval.geneval.score import score_folder
from gtr.eval.geneval.summary import format_summary, scores, summarize
from gtr.jobs.distributed import Distributed, render_sharded
from gtr.jobs.output import check_complete, git_commit
from gtr.jobs.common import Run, batches_of_rank, cache_settings, resolve_device, run_job
from gtr.jobs.output import check_writable, claim_output, run_settings
from gtr.config.schema import check_count
from gtr.config import run_tag
from gtr.jobs.sample_t2i import PromptEncoder


def load_prompts(cfg) -> list[dict]:
    """The prompt records: a metadata file checked against the detector's vocabulary, or (``geneval.prompts=scenes``)
    the scenes testbed's evaluation set."""
    g = cfg.geneval
    detector = g.get("detector", "mmdet")
    scenes = detector == "scenes"
    if g.prompts == "scenes":
        if not scenes:
            raise GtRError(f"geneval.prompts=scenes asks for shapes and palette colours, which the {detector} "
                           "detector does not know: set geneval.detector=scenes")
        from gtr.data.scene_prompts import evaluation_metadata
        records = evaluation_metadata()
    else:
        path = resolve_metadata(g.prompts, cfg.weights.root, cfg.weights.download)
        if scenes:
            from gtr.data.scenes import COLOURS, SHAPES
            records = read_metadata(path, SHAPES, tuple(COLOURS))
        else:
            records = read_metadata(path)
    if cfg.num_prompts is not None:
        if cfg.num_prompts < 1:
            raise GtRError("num_prompts must be >= 1 (or null for all prompts)")
        if cfg.num_prompts > len(records):
            raise GtRError(f"num_prompts={cfg.num_prompts} but the prompt file holds {len(records)}: give at most "
                           f"{len(records)} (or null for all)")
        records = records[:cfg.num_prompts]
    return records


def generate_images(cfg, runtime: Distributed, records: list[dict]) -> dict:
    """Render (or resume) the layout under ``cfg.output_dir``; returns what rank 0 knows of the generation."""
    out, n = Path(cfg.output_dir), cfg.n_samples
    prompts = hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()
    claim_output(out, run_settings(cfg, runtime.device, prompts=len(records), prompts_sha256=prompts, n_samples=n),
                 runtime.rank)
    num_images = len(records) * n
    run = Run.configure(cfg, runtime.device).load("text", images=num_images, runtime=runtime)
    if runtime.rank == 0:
        for index, record in enumerate(records):
            write_metadata(out, index, record)
        (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))

    def path_of(i: int) -> Path:
        return image_path(out, i // n, i % n)

    # This rank's prompts are encoded before sampling (read from the cache where possible), so T5 is freed before
    # LightGen runs.
    mine = sorted({i // n for batch in batches_of_rank(num_images, cfg.batch_size, runtime.rank, runtime.world)
                   for i in batch})
    encode = PromptEncoder(cfg, run.model, run.device)
    features = dict(zip(mine, encode([records[p]["prompt"] for p in mine])))
    del encode
    if run.device.type == "cuda":
        torch.cuda.empty_cache()

    def condition_of(ids: list[int]) -> torch.Tensor:
        return torch.stack([features[i // n] for i in ids])

    generated, seconds = render_sharded(runtime, run, num_images, path_of, condition_of,
                                        desc=f"GenEval {run.description}")
    if runtime.rank == 0:
        check_complete(num_images, path_of)
    return {"num_images": num_images, "generated_by_rank0": generated, "seconds_rank0": seconds,
            "world_size": runtime.world, "mode": run.mode}


def load_scorer(cfg):
    """The detector and the CLIP colour classifier, on the CPU: loaded before generation so that missing weights
    stop the run before any image is made."""
    g = cfg.geneval
    if g.detector == "scenes":  # the scenes testbed: GenEval's rules on exact detections, nothing to load
        from gtr.eval.geneval.scenes import SceneColors, SceneDetector
        return SceneDetector(), SceneColors()
    detector = load_detector(g.detector, g.detector_path, cfg.weights.root, cfg.weights.download)
    colors = load_color_classifier(g.clip_path, cfg.weights.download, amp=g.clip_amp)
    return detector, colors


@contextlib.contextmanager
def tf32(enabled: bool | None):
    """TF32 for matmuls and cuDNN as asked (None: leave PyTorch's settings), restored afterwards so that a later job
    of the same process (a Hydra sweep) samples with the numerics it would have alone."""
    flags = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    if enabled is not None:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = bool(enabled)
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags


def score(cfg, scorer, device: torch.device) -> tuple[dict, str]:
    """Score the folder; returns the summary and the detector's label."""
    detector, colors = (part.to(device) for part in scorer)
    with tf32(cfg.geneval.tf32):
        rows = score_folder(cfg.output_dir, detector, colors, Thresholds(**cfg.geneval.thresholds),
                            progress=cfg.progress, images_per_prompt=cfg.n_samples)
    summary = summarize(rows)
    (Path(cfg.output_dir) / "summary.txt").write_text(f"{detector.label}\n\n{format_summary(summary)}\n")
    return summary, detector.label


def run_geneval(cfg, sampler_config: str | None = None) -> dict:
    """Generate (``generate=true``) and score (``score=true``) ``cfg.output_dir``; returns the run record that rank 0
    writes to ``results.json``."""
    out = Path(cfg.output_dir)
    check_writable(out)
    check_count("n_samples", cfg.n_samples)
    check_count("batch_size", cfg.batch_size)
    if cfg.score:
        Thresholds(**cfg.geneval.thresholds)  # each in range, before anything is loaded or generated
    records = load_prompts(cfg) if cfg.generate else None
    runtime = Distributed(resolve_device(cfg.device))
    try:
        scorer, error = None, None
        if cfg.score and runtime.rank == 0:
            try:
                scorer = load_scorer(cfg)
            except GtRError as err:
                error = err
        if not runtime.all_ok(error is None):  # every rank stops before generating, not only rank 0
            raise error or GtRError("rank 0 could not load GenEval's scorer: see its message")
        if cfg.generate:
            generation = generate_images(cfg, runtime, records)
            if runtime.rank == 0:
                generation = {"model": cfg.model.name, "sampler_config": sampler_config,
                              "sampler": OmegaConf.to_container(cfg.sampler, resolve=True), **cache_settings(cfg),
                              "seed": cfg.seed,
                              "prompts": len(records), "n_samples": cfg.n_samples, "device": str(runtime.device),
                              "precision": cfg.precision, "git_commit": git_commit(), **generation}
                write_json(out / "generation.json", generation)
        else:  # scoring a folder: what generated it, when this repository did
            generation = json.loads((out / "generation.json").read_text()) if (out / "generation.json").is_file() \
                else {"model": None, "sampler_config": None, "note": f"{out} was not generated by scripts/geneval.py"}
        record = {}
        if runtime.rank == 0:
            record = {**generation, "images": str(out)}
            if cfg.score:
                summary, label = score(cfg, scorer, runtime.device)
                record.update(evaluator=label, geneval_summary=summary, geneval=scores(summary))
            write_json(out / "results.json", record)
            log_to_wandb(cfg, record, out)
        return record  # the other ranks leave after generation: none waits on rank 0's scoring
    finally:
        runtime.close()


def log_to_wandb(cfg, record: dict, out: Path) -> None:
    """Config, per-task scores and the first image of the first 16 prompts (captioned) to wandb, when
    ``wandb.enabled``."""
    from gtr.tracking import start_wandb
    run = start_wandb(cfg, job_type="geneval")
    if run is None:
        return
    wandb = require("wandb", "track")
    firsts = [p / "samples" / "0000.png" for p in sorted(out.glob("[0-9]" * 5))[:16]]
    samples = [wandb.Image(str(path), caption=json.loads((path.parent.parent / "metadata.jsonl").read_text())["prompt"])
               for path in firsts if path.is_file()]
    run.log({**{f"geneval/{k}": v for k, v in record.get("geneval", {}).items()}, "samples": samples})
    run.summary.update({"evaluator": record.get("evaluator"), "git_commit": record.get("git_commit")})
    run.finish()


def main(cfg) -> None:
    """``scripts/geneval.py``: the run, with the sampler config's name (and a chosen cache: ``gtr+lazymar``) in the
    record (the tables match rows by it)."""
    def job(cfg) -> Path:
        record = run_geneval(cfg, sampler_config=run_tag(cfg.sampler.name))
        if record.get("geneval"):
            print(f"{record['evaluator']}: " + ", ".join(f"{k} {v:.3f}" for k, v in record["geneval"].items()))
        return Path(cfg.output_dir) / "results.json"

    run_job(job, cfg)
