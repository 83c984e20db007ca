"""Measuring a toy testbed: rows rendered through the jobs' one render path and scored through the one scorer,
saved after every row (a re-run skips finished rows), timed on this CPU side by side, and the Figure-3 experiment;
:func:`run` drives a study from measuring to the report."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Mapping, Sequence

import torch

from gtr.errors import GtRError
from gtr.files import write_json
from gtr.study.toy.plots import figure3_plot
from gtr.study.toy.report import report
from gtr.study.toy.rows import Testbed, built, sampling_options


def generate(model, tokenizer, sampler, count: int, seed: int, batch_size: int, cache=None
             ) -> tuple[torch.Tensor, torch.Tensor, float]:
    """``count`` class-balanced images (label = id % 10) from seed ``seed``: uint8 [N, H, W, 3], labels, sampling
    seconds (the VAE not timed)."""
    from gtr.jobs.common import batches_of_rank, render
    labels = torch.arange(count) % 10
    timings = []
    images = [im.cpu() for _, im in render(model, sampler, tokenizer, batches_of_rank(count, batch_size),
                                           lambda ids: labels[ids], seed=seed, precision="fp32", cache=cache,
                                           timings=timings)]
    return torch.cat(images), labels, sum(timings)


def figure3(bed: Testbed, model, tokenizer, extractor, count: int, seeds: int, out: Path) -> dict:
    """Half the tokens of the model's own samples (the reference row's sampler) given as a checkerboard or as a
    block (the top rows), the rest completed with ``seeds`` seeds. Spread = per image, the std across seeds (of
    pixels in [0, 1] and of classifier features), averaged over images (± standard error). Saves the labelled
    strips of the first image."""
    from gtr.sampling import sample
    from gtr.eval.fid import extract
    from gtr.models.registry import preset
    from gtr.jobs.common import sampler_from_config
    from gtr.sampling.completion import CompletionSampler, block_mask, checkerboard_mask
    from gtr.tokenizers import to_uint8
    rows = {r.key: r for r in bed.rows}
    clip = preset(bed.model).config.clip_timestep  # the model's diffusion.clip_timestep
    base = sampler_from_config(sampling_options(bed, rows[bed.reference_row])[0], {"clip_timestep": clip})
    labels = torch.arange(count) % 10
    reference = model.patchify(sample(model, base, labels, seed=10_000))
    reference_image = to_uint8(tokenizer.decode(model.unpatchify(reference[:1])))[0].cpu()
    side = model.seq_h
    result, strips = {}, {}
    for pattern, mask in (("checkerboard", checkerboard_mask(side, side)), ("block", block_mask(side, side))):
        completion = CompletionSampler(num_iter=bed.figure3_completion_steps, diffusion_steps=base.diffusion_steps,
                                       cfg=base.cfg, given_tokens=reference, given=mask)
        completion.clip_timestep = base.clip_timestep
        stack = torch.stack([to_uint8(tokenizer.decode(sample(model, completion, labels, seed=s))).cpu()
                             for s in range(seeds)])  # [S, N, H, W, 3]
        pixel_std = (stack[..., 0].double() / 255).std(dim=0).mean(dim=(1, 2))
        feature_std = torch.stack([extract(extractor, [images])[0] for images in stack]).std(dim=0).mean(dim=1)
        result[pattern] = {"pixel_std_mean": pixel_std.mean().item(),
                           "pixel_std_sem": (pixel_std.std() / count**0.5).item(),
                           "feature_std_mean": feature_std.mean().item(),
                           "feature_std_sem": (feature_std.std() / count**0.5).item(), "images": count,
                           "seeds": seeds}
        strips[pattern] = (mask, stack[:, 0])
    figure3_plot(reference_image, strips, out.with_name(f"{out.name}_figure3.png"))
    return result


STORED = ("fid_fmnist", "is_fmnist", "accuracy", "count")  # the scores kept per row and seed


def measure_rows(bed: Testbed, state: dict, keys: Sequence[str], device: torch.device, *, samples: int,
                 seeds: Sequence[int], batch_size: int, figure3_images: int, data_root, out: Path,
                 command: str) -> None:
    """Quality (and time on ``device``) of the rows ``keys`` and the Figure-3 experiment, saved after each row."""
    from gtr.data import FashionMNIST
    from gtr.eval.fashion import FashionExtractor, parse_reference, reference_statistics
    from gtr.eval.metrics import Reference, score
    from gtr.eval.flops import FlopsCounter
    from gtr.eval.latency import device_name
    from gtr.jobs.common import cache_record, load_configured_model, load_image_tokenizer
    from gtr.config import compose_config
    cfg = compose_config(f"model={bed.model}")
    model = load_configured_model(cfg, device)
    tokenizer = load_image_tokenizer(cfg.model.tokenizer, cfg.weights, device)
    extractor = FashionExtractor()
    split, size = parse_reference(cfg.model.metrics.reference)
    reference = Reference(reference_statistics(extractor, split, data_root, size=size))
    resized = f", resized to {size}x{size} as the training data" if size != 28 else ""
    state["reference"] = f"the {len(FashionMNIST(split, data_root))} Fashion-MNIST {split} images{resized}"
    if device.type == state["settings"].get("device", "cpu"):
        state["device"], state["command"] = device_name(device), command
    elif keys:
        state.setdefault("added", []).append({"rows": list(keys), "device": device_name(device), "command": command})
    json_path = out.with_suffix(".json")
    if figure3_images and "figure3" not in state:
        state["figure3"] = figure3(bed, model, tokenizer, extractor, figure3_images, 7, out)
        write_json(json_path, state)
    counter = FlopsCounter(model.config)
    rows = {r.key: r for r in bed.rows}
    for key in keys:
        row = rows[key]
        options, cache_options = sampling_options(bed, row)
        cached = cache_record(cache_options)
        sampler, cache = built({"sampler": options, **cached}, cfg.diffusion.clip_timestep)
        # Seeds finished by a stopped run of the same row and settings are kept (a long row survives a stop).
        partial = state.setdefault("partial", {}).get(key, {})
        done = partial.get("per_seed", []) if partial.get("sampler") == options and \
            partial.get("cache") == cached.get("cache") else []
        per_seed = [r for r in done if r["seed"] in seeds]
        for seed in seeds:
            if any(r["seed"] == seed for r in per_seed):
                continue
            images, labels, seconds = generate(model, tokenizer, sampler, samples, seed, batch_size, cache)
            scored = score(images.split(1000), extractor, reference, labels=labels)
            scores = {k: scored[k] for k in STORED}
            per_seed.append({"seed": seed, "s_per_image": seconds / samples, **scores})
            print(f"{key} seed {seed}: {per_seed[-1]}", flush=True)
            state["partial"][key] = {"sampler": options, "cache": cached.get("cache"), "per_seed": per_seed}
            write_json(json_path, state)
        per_seed.sort(key=lambda r: list(seeds).index(r["seed"]))
        state["partial"].pop(key, None)
        flops = counter.sample(sampler, cfg.diffusion.clip_timestep, cache).total
        state["rows"][key] = {"group": row.group, "label": row.label, "config": row.config, "sampler": options, **cached,
                              **({} if device.type == state["settings"].get("device", "cpu")
                                 else {"device": device_name(device)}),
                              "gflops": flops / 1e9, "ar_steps": len(sampler.plan(model.seq_h, model.seq_w)),
                              "per_seed": per_seed}
        write_json(json_path, state)
        report(bed, state, out)  # partial results are readable while the study runs


def _signature(sampler: Mapping, cache: Mapping | None) -> str:
    import json

    from gtr.jobs.common import cache_record
    return json.dumps([sampler, cache_record(cache).get("cache")], sort_keys=True)


def adopt_measured(bed: Testbed, state: dict) -> None:
    """Match stored rows to the testbed's rows by what they run (resolved sampler and cache options), not by key: a
    renamed row keeps its measurements, a row whose config now resolves to other options (a model default changed)
    is measured again, and stored rows no current row runs move to ``state["retired"]`` (kept, not reported)."""
    stored = {**state.get("retired", {}), **state["rows"]}
    by_signature = {_signature(row["sampler"], row.get("cache")): key for key, row in stored.items()}
    rows, used = {}, set()
    for row in bed.rows:
        options, cache = sampling_options(bed, row)
        key = by_signature.get(_signature(options, cache))
        if key is not None:
            rows[row.key] = {**stored[key], "group": row.group, "label": row.label, "config": row.config}
            used.add(key)
    state["rows"] = rows
    retired = {key: row for key, row in stored.items() if key not in used}
    if retired:
        state["retired"] = retired
    else:
        state.pop("retired", None)


def time_on_cpu(bed: Testbed, state: dict, keys: Sequence[str], images: int, json_path: Path,
                passes: int = 1) -> None:
    """Sampling time per image on this machine's CPU for the rows that lack it: ``passes`` rounds over the rows,
    each timing one batch of ``images`` images per row after a small warm-up, every other round in reverse order,
    so the rows are timed side by side and a slow spell of a shared machine lands on all of them. A row's time is
    its median over the rounds (the rounds are kept: ``cpu_s_per_image_passes``). Finished rounds survive a stop."""
    import statistics

    from gtr.sampling import sample
    from gtr.eval.latency import device_name
    from gtr.config import compose_config
    from gtr.jobs.common import load_configured_model
    rows = [key for key in keys if key in state["rows"] and "cpu_s_per_image" not in state["rows"][key]]
    if not rows:
        return
    cfg = compose_config(f"model={bed.model}")
    model = load_configured_model(cfg, torch.device("cpu"))
    labels = torch.arange(images) % 10
    cpu = device_name(torch.device("cpu"))
    timing = state.get("cpu_timing", {})
    if timing.get("device") not in (None, cpu):
        raise GtRError(f"results were timed on another CPU ({timing['device']}); remove the "
                       "cpu_s_per_image fields (or pass --cpu-timing 0) to time them all on this one")
    if (timing.get("images"), timing.get("passes", 1)) != (images, passes):  # other settings: start the rounds over
        for key in rows:
            state["rows"][key].pop("cpu_s_per_image_passes", None)
    state["cpu_timing"] = {"device": cpu, "images": images, "passes": passes}
    samplers = {key: built(state["rows"][key], cfg.diffusion.clip_timestep) for key in rows}
    for round_ in range(passes):
        for key in rows if round_ % 2 == 0 else rows[::-1]:
            row = state["rows"][key]
            if len(row.setdefault("cpu_s_per_image_passes", [])) > round_:
                continue  # timed before a stop
            sampler, cache = samplers[key]
            sample(model, sampler, labels[:2], seed=0, cache=cache)  # warm-up
            start = time.perf_counter()
            sample(model, sampler, labels, seed=0, cache=cache)
            row["cpu_s_per_image_passes"].append((time.perf_counter() - start) / images)
            print(f"{key} (round {round_ + 1}/{passes}): {row['cpu_s_per_image_passes'][-1] * 1e3:.1f} ms per "
                  "image on the CPU", flush=True)
            write_json(json_path, state)
    for key in rows:
        row = state["rows"][key]
        row["cpu_s_per_image"] = statistics.median(row["cpu_s_per_image_passes"])
    write_json(json_path, state)


def run(bed: Testbed, *, keys: Sequence[str] | None = None, samples: int = 1000, seeds: Sequence[int] = (0, 1, 2),
        batch_size: int = 500, figure3_images: int = 100, device: str = "cpu", cpu_timing: int = 100,
        retime: bool = False, timing_passes: int = 3, data_root=None, out: Path, command: str) -> dict:
    """Measure what is missing (rows, Figure 3, CPU timings of GPU-measured rows), then write the report.
    ``retime``: drop every CPU timing and time all measured rows again on this CPU side by side, in
    ``timing_passes`` interleaved rounds (median per row); a stopped retime resumes from its finished rounds."""
    keys = list(keys or [r.key for r in bed.rows])
    unknown = sorted(set(keys) - {r.key for r in bed.rows})
    if unknown:
        raise GtRError(f"unknown row(s) {', '.join(unknown)} for testbed {bed.name}: choose from "
                       f"{', '.join(r.key for r in bed.rows)}")
    torch.set_grad_enabled(False)
    dev = torch.device(device)
    out.parent.mkdir(parents=True, exist_ok=True)
    json_path = out.with_suffix(".json")
    import json
    state = json.loads(json_path.read_text()) if json_path.is_file() else {}
    settings = {"samples": samples, "seeds": list(seeds)}
    stored = state.get("settings", {})
    if {k: stored.get(k) for k in settings} != settings:  # other sample counts or seeds start over
        state = {"settings": {**settings, "device": dev.type}, "rows": {}}
    # Rows may be added on another device than the study's (its "settings" device): quality does not depend on it;
    # their time over the quality runs is not compared with the others, and they get a CPU timing as GPU rows do.
    adopt_measured(bed, state)
    missing = [key for key in keys if key not in state["rows"]]
    if missing or (figure3_images and "figure3" not in state):
        measure_rows(bed, state, missing, dev, samples=samples, seeds=seeds, batch_size=batch_size,
                     figure3_images=figure3_images, data_root=data_root, out=out, command=command)
    if retime:
        images = cpu_timing or 100
        resuming = state.get("retiming") == {"images": images, "passes": timing_passes}
        if not resuming:  # a new retime drops every CPU timing; a stopped one keeps its finished rounds
            for row in state["rows"].values():
                row.pop("cpu_s_per_image", None)
                row.pop("cpu_s_per_image_passes", None)
            state.pop("cpu_timing", None)
            state["retiming"] = {"images": images, "passes": timing_passes}
        time_on_cpu(bed, state, list(state["rows"]), images, json_path, passes=timing_passes)
        state.pop("retiming")
        write_json(json_path, state)
    elif cpu_timing and state["settings"].get("device", "cpu") != "cpu":  # a CPU study's own times are CPU times
        time_on_cpu(bed, state, keys, cpu_timing, json_path)
    report(bed, state, out)
    return state
