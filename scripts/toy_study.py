"""The paper's claims tested on the project's own Fashion-MNIST MAR (7x7 tokens), where anyone can re-run them.

    python scripts/toy_study.py                      # full study: 1000 samples x 3 seeds per row (~CPU hours)
    python scripts/toy_study.py --quick              # reduced mode (tests): few samples, 2 seeds, 4 rows

For every row (baseline at several AR step counts, GtR operating points and ablations, the schedule baselines,
Table-5 orders): per-image FLOPs (counted), sampling time, and quality from the shipped classifier (FID analogue vs the
test split, IS analogue, class accuracy), mean and std over seeds. ``--device cuda`` runs it on a GPU in minutes
(its time column is then GPU time; the FLOPs column does not depend on the device). Plus the Figure-3 experiment: half of each
image's tokens given as a checkerboard or as a contiguous block, the rest completed with 7 seeds; the spread across
seeds says how much the given half pins down. Results are appended to results/toy_study.json after every row
(re-running skips finished rows), then results/toy_study.md and PNG plots are written.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

import gtr
from gtr.data import FashionMNIST
from gtr.errors import GtRError
from gtr.eval.fashion import FashionExtractor, reference_statistics, score
from gtr.eval.flops import FlopsCounter
from gtr.eval.latency import device_name
from gtr.eval.fid import extract
from gtr.files import write_json
from gtr.pipeline import compose_config, load_configured_model, load_image_tokenizer, sampler_from_config
from gtr.sampling.completion import CompletionSampler, checkerboard_mask, block_mask
from gtr.tokenizers import to_uint8

REPO = Path(__file__).resolve().parent.parent

# (key, group, label, sampler config, overrides)
ROWS = [  # in the order they are run (the most informative first: the study resumes row by row)
    ("mar_16", "baseline", "MAR, 16 AR steps (reference)", "mar", {"num_iter": 16}),
    ("gtr_6", "gtr", "GtR rates 2.67/10.67/64 -> (4, 1, 1) = 6 steps", "gtr", {}),
    ("gtr_10", "gtr", "GtR (6, 2, 2) = 10 steps", "gtr", {"steps": [6, 2, 2]}),
    ("mar_8", "baseline", "MAR, 8 AR steps", "mar", {"num_iter": 8}),
    ("gtr_dagger", "ablation", "GtR† only (stage-aware steps, random order)", "gtr",
     {"steps": [6, 2, 2], "token_order": "random", "fts": False}),
    ("gtr_star", "ablation", "GtR* only (constant 100 diffusion steps, GtR order)", "gtr",
     {"steps": [6, 2, 2], "diffusion": "constant", "constant_steps": 100, "fts": False}),
    ("gtr_no_fts", "ablation", "GtR without FTS", "gtr", {"steps": [6, 2, 2], "fts": False}),
    ("gtr_13", "gtr", "GtR (8, 3, 2) = 13 steps", "gtr", {"steps": [8, 3, 2]}),
    ("mar_32", "baseline", "MAR, 32 AR steps", "mar", {"num_iter": 32}),
    ("mar_4", "baseline", "MAR, 4 AR steps", "mar", {"num_iter": 4}),
    ("disa_16", "baselines", "DiSA 50->5, 16 AR steps", "disa", {"num_iter": 16}),
    ("halton_16", "baselines", "Halton, 16 AR steps", "halton", {"num_iter": 16}),
    ("disa_8", "baselines", "DiSA 50->5, 8 AR steps", "disa", {"num_iter": 8}),
    ("halton_8", "baselines", "Halton, 8 AR steps", "halton", {"num_iter": 8}),
    ("lazymar_16", "baselines", "LazyMAR, 16 AR steps (released defaults; 3 decoder layers: no pruning)", "lazymar",
     {"num_iter": 16}),
    ("gtr_fts_random", "ablation", "FTS: random tokens", "gtr", {"steps": [6, 2, 2], "fts_selection": "random"}),
    ("gtr_fts_low", "ablation", "FTS: low-frequency tokens", "gtr", {"steps": [6, 2, 2], "fts_selection": "low"}),
    ("gtr_fts_all", "ablation", "FTS: all tokens (Full-Enhanced)", "gtr", {"steps": [6, 2, 2], "fts_selection": "all"}),
    ("order_raster", "order", "Table 5: raster order", "gtr", {"steps": [6, 2, 2], "token_order": "raster"}),
    ("order_subsample", "order", "Table 5: subsample order", "gtr", {"steps": [6, 2, 2], "token_order": "subsample"}),
]
QUICK_ROWS = ["mar_16", "gtr_10", "gtr_dagger", "halton_8"]


def sampler_options(name: str, overrides: dict) -> dict:
    cfg = compose_config("model=mar_fmnist", f"sampler={name}")
    options = OmegaConf.to_container(cfg.sampler, resolve=True)
    options.update(overrides)
    return options


def generate(model, tokenizer, sampler, count: int, seed: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor,
                                                                                            float]:
    """``count`` class-balanced images (label = id % 10) from seed ``seed``; uint8 [N, 28, 28, 3], labels, seconds."""
    labels = torch.arange(count) % 10
    images, seconds = [], 0.0
    for start in range(0, count, batch_size):
        ids = list(range(start, min(count, start + batch_size)))
        t0 = time.perf_counter()
        latents = gtr.sample(model, sampler, labels[ids], seed=seed, image_ids=ids)
        if latents.is_cuda:
            torch.cuda.synchronize(latents.device)
        seconds += time.perf_counter() - t0
        images.append(to_uint8(tokenizer.decode(latents)).cpu())
    return torch.cat(images), labels, seconds


def figure3(model, tokenizer, extractor, count: int, seeds: int, out: Path) -> dict:
    """Half the tokens of the model's own samples given as a checkerboard or as a block (the top rows), the rest
    completed with ``seeds`` seeds. Spread = per image, the std across seeds (of pixels in [0, 1] and of classifier
    features), averaged over images (± standard error). Saves a strip per pattern: the full reference sample, then
    its completions."""
    base = sampler_from_config(sampler_options("mar", {"num_iter": 16}))
    labels = torch.arange(count) % 10
    reference = model.patchify(gtr.sample(model, base, labels, seed=10_000))
    reference_image = to_uint8(tokenizer.decode(model.unpatchify(reference[:1])))[0].cpu()
    result, strips = {}, []
    for pattern, mask in (("checkerboard", checkerboard_mask(7, 7)), ("block", block_mask(7, 7))):
        completion = CompletionSampler(num_iter=8, diffusion_steps=base.diffusion_steps, cfg=base.cfg,
                                       given_tokens=reference, given=mask)
        stack = torch.stack([to_uint8(tokenizer.decode(gtr.sample(model, completion, labels, seed=s))).cpu()
                             for s in range(seeds)])  # [S, N, 28, 28, 3]
        pixel_std = (stack[..., 0].double() / 255).std(dim=0).mean(dim=(1, 2))
        feature_std = torch.stack([extract(extractor, [images])[0] for images in stack]).std(dim=0).mean(dim=1)
        result[pattern] = {"pixel_std_mean": pixel_std.mean().item(), "pixel_std_sem": (pixel_std.std() / count**0.5).item(),
                           "feature_std_mean": feature_std.mean().item(),
                           "feature_std_sem": (feature_std.std() / count**0.5).item(), "images": count, "seeds": seeds}
        strips.append(torch.cat([reference_image, *stack[:, 0]], dim=1))
    from gtr.images import save_png
    grid = torch.cat(strips, dim=0).repeat_interleave(3, 0).repeat_interleave(3, 1)
    save_png(grid.numpy(), out.with_name("toy_study_figure3.png"))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=None, help="images per row and seed (1000; --quick: 40)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="(0 1 2; --quick: 0 1)")
    parser.add_argument("--rows", nargs="+", default=None, help=f"row keys (default all): {[r[0] for r in ROWS]}")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--figure3-images", type=int, default=None,
                        help="reference images of the Figure-3 experiment (100; --quick: 10); 0 skips it")
    parser.add_argument("--quick", action="store_true", help="reduced mode: 40 samples, seeds 0 1, 4 rows")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "toy_study")
    parser.add_argument("--data-root", default=None, help="Fashion-MNIST folder (for the FID reference)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda: where the quality rows run (and are timed)")
    parser.add_argument("--cpu-timing", type=int, default=None,
                        help="images per row timed on this CPU, for rows measured on a GPU (100; --quick: 0)")
    args = parser.parse_args()
    quick = {"samples": 40, "seeds": [0, 1], "figure3_images": 10, "rows": QUICK_ROWS, "cpu_timing": 0}
    full = {"samples": 1000, "seeds": [0, 1, 2], "figure3_images": 100, "rows": None, "cpu_timing": 100}
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    keys = args.rows or [r[0] for r in ROWS]
    unknown = set(keys) - {r[0] for r in ROWS}
    if unknown:
        parser.error(f"unknown row(s) {sorted(unknown)}")

    torch.set_grad_enabled(False)
    device = torch.device(args.device)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    json_path = args.out.with_suffix(".json")
    state = json.loads(json_path.read_text()) if json_path.is_file() else {}
    settings = {"samples": args.samples, "seeds": args.seeds, "device": device.type}
    if {"device": "cpu", **state.get("settings", {})} != settings:  # a different device restarts the timings
        state = {"settings": settings, "rows": {}}
    cfg = compose_config("model=mar_fmnist")
    missing = [key for key in keys if key not in state["rows"]]
    if missing or (args.figure3_images and "figure3" not in state):
        measure_rows(state, missing, cfg, device, args, json_path)
    if args.cpu_timing and device.type != "cpu":  # on the CPU, the rows' own times are CPU times
        time_on_cpu(state, keys, cfg, args.cpu_timing, json_path)
    report(state, args.out)


def measure_rows(state: dict, keys: list[str], cfg, device: torch.device, args, json_path: Path) -> None:
    """Quality (and time on ``device``) of the rows ``keys`` and the Figure-3 experiment, saved after each row."""
    model = load_configured_model(cfg, device)
    tokenizer = load_image_tokenizer(cfg.model.tokenizer, cfg.weights, device)
    extractor = FashionExtractor()
    reference = reference_statistics(extractor, "test", args.data_root)
    state["reference"] = f"the {len(FashionMNIST('test', args.data_root))} Fashion-MNIST test images"
    state["device"] = device_name(device)
    state["command"] = " ".join(["python scripts/toy_study.py", *(f"--device {args.device}".split()
                                                                   if args.device != "cpu" else [])])
    counter = FlopsCounter(model.config)
    if args.figure3_images and "figure3" not in state:
        state["figure3"] = figure3(model, tokenizer, extractor, args.figure3_images, 7, args.out)
        write_json(json_path, state)
    by_key = {r[0]: r for r in ROWS}
    for key in keys:
        _, group, label, name, overrides = by_key[key]
        options = sampler_options(name, overrides)
        sampler = sampler_from_config(options)
        per_seed = []
        for seed in args.seeds:
            images, labels, seconds = generate(model, tokenizer, sampler, args.samples, seed, args.batch_size)
            scores = score(images, labels, extractor, reference).as_dict()
            per_seed.append({"seed": seed, "s_per_image": seconds / args.samples, **scores})
            print(f"{key} seed {seed}: {per_seed[-1]}", flush=True)
        flops = counter.sample(sampler, cfg.diffusion.clip_timestep).total
        state["rows"][key] = {"group": group, "label": label, "sampler": options, "gflops": flops / 1e9,
                              "ar_steps": len(sampler.plan(7, 7)), "per_seed": per_seed}
        write_json(json_path, state)
        report(state, args.out)  # partial results are readable while the study runs


def time_on_cpu(state: dict, keys: list[str], cfg, images: int, json_path: Path) -> None:
    """Sampling time per image on this machine's CPU for the rows that lack it: one batch of ``images`` images
    after a small warm-up, so a study measured on a GPU still reports CPU speed-ups measured side by side."""
    rows = [key for key in keys if key in state["rows"] and "cpu_s_per_image" not in state["rows"][key]]
    if not rows:
        return
    model = load_configured_model(cfg, torch.device("cpu"))
    labels = torch.arange(images) % 10
    cpu = device_name(torch.device("cpu"))
    if state.get("cpu_timing", {}).get("device") not in (None, cpu):
        raise GtRError(f"results were timed on another CPU ({state['cpu_timing']['device']}); remove the "
                       "cpu_s_per_image fields (or pass --cpu-timing 0) to time them all on this one")
    state["cpu_timing"] = {"device": cpu, "images": images}
    for key in rows:
        sampler = sampler_from_config(state["rows"][key]["sampler"])
        gtr.sample(model, sampler, labels[:2], seed=0)  # warm-up
        start = time.perf_counter()
        gtr.sample(model, sampler, labels, seed=0)
        state["rows"][key]["cpu_s_per_image"] = (time.perf_counter() - start) / images
        print(f"{key}: {state['rows'][key]['cpu_s_per_image'] * 1e3:.1f} ms per image on the CPU", flush=True)
        write_json(json_path, state)


def _stat(rows: list[dict], key: str) -> tuple[float, float]:
    values = np.array([r[key] for r in rows], dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def report(state: dict, out: Path) -> None:
    rows = state["rows"]
    ref = rows.get("mar_16")
    cpu = state.get("cpu_timing")
    timed_on = "CPU" if state["settings"].get("device", "cpu") == "cpu" else state["device"]
    lines = ["# Toy study: the paper's claims on the Fashion-MNIST MAR (7x7 tokens)", "",
             f"Measured here: `{state.get('command', 'python scripts/toy_study.py')}` on {state['device']}; "
             f"{state['settings']['samples']} samples per row and seed, seeds {state['settings']['seeds']}; mean ± std "
             "over seeds. FID/IS: the analogues from the shipped Fashion-MNIST classifier's features/logits (FID vs "
             f"{state.get('reference', 'the test split')}); accuracy: the classifier's agreement with the requested "
             "class. Speed: FLOPs ratio to the 16-step baseline (counted) and sampling-time ratios (the VAE and "
             f"scoring not timed): on {timed_on}, over the quality runs"
             + (f"; on the CPU ({cpu['device']}), {cpu['images']} images per row in one batch after a warm-up"
                if cpu else "") + ".", "",
             f"| group | method | AR steps | GFLOPs/img | speed (FLOPs) | speed ({'CPU' if timed_on == 'CPU' else 'GPU'} time) | "
             + ("speed (CPU time) | " if cpu else "") + "FID (fmnist) | IS (fmnist) | accuracy |",
             "|---|---|---|---|---|---|---|---|---|" + ("---|" if cpu else "")]
    for key, row in rows.items():
        fid, is_, acc, seconds = (_stat(row["per_seed"], k) for k in ("fid_fmnist", "is_fmnist", "accuracy",
                                                                       "s_per_image"))
        speed = ref["gflops"] / row["gflops"] if ref else float("nan")
        time_speed = _stat(ref["per_seed"], "s_per_image")[0] / seconds[0] if ref else float("nan")
        cpu_cell = ""
        if cpu:
            timed = ref and "cpu_s_per_image" in ref and "cpu_s_per_image" in row
            cpu_cell = f"{ref['cpu_s_per_image'] / row['cpu_s_per_image']:.2f}x | " if timed else "— | "
        lines.append(f"| {row['group']} | {row['label']} | {row['ar_steps']} | {row['gflops']:.3f} | {speed:.2f}x | "
                     f"{time_speed:.2f}x | {cpu_cell}{fid[0]:.2f} ± {fid[1]:.2f} | {is_[0]:.2f} ± {is_[1]:.2f} | "
                     f"{acc[0]:.3f} ± {acc[1]:.3f} |")
    lines += ["", "## The paper's claims at this scale", ""] + claims(state)
    if "figure3" in state:
        f3 = state["figure3"]
        lines += ["", "## Figure 3: what a half-decoded image pins down", "",
                  "| given half | pixel std across 7 seeds | feature std across 7 seeds |", "|---|---|---|"]
        for pattern, v in f3.items():
            lines.append(f"| {pattern} | {v['pixel_std_mean']:.4f} ± {v['pixel_std_sem']:.4f} | "
                         f"{v['feature_std_mean']:.4f} ± {v['feature_std_sem']:.4f} |")
        lines += ["", "![Figure 3 strips](toy_study_figure3.png)"]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    plot(rows, out)
    print("\n".join(lines))


def compare(rows: dict, a: str, b: str, metric: str, lower_is_better: bool) -> str | None:
    """'better', 'worse' or 'equal within error' for row a against row b (difference beyond the two seed stds)."""
    if a not in rows or b not in rows:
        return None
    (ma, sa), (mb, sb) = _stat(rows[a]["per_seed"], metric), _stat(rows[b]["per_seed"], metric)
    if abs(ma - mb) <= sa + sb:
        return "equal within error"
    return "better" if (ma < mb) == lower_is_better else "worse"


def claims(state: dict) -> list[str]:
    """Each claim of the paper restated for the toy model, with the verdict the measured rows give (or 'not
    measured yet')."""
    rows = state["rows"]
    out = []

    def verdict(text: str, pairs: list[tuple[str, str]], expect: set[str]) -> None:
        """The claim holds when the FID comparison of every (a, b) pair is in ``expect``."""
        found = [(a, b, compare(rows, a, b, "fid_fmnist", True), compare(rows, a, b, "accuracy", False))
                 for a, b in pairs]
        if any(fid is None for _, _, fid, _ in found):
            out.append(f"- {text}: **not measured yet**.")
            return
        holds = all(fid in expect for _, _, fid, _ in found)
        detail = "; ".join(f"{a} vs {b}: FID {fid}, accuracy {acc}" for a, b, fid, acc in found)
        out.append(f"- {text}: **{'holds' if holds else 'does not hold'}** ({detail}).")

    verdict("Premise: parallel decoding costs quality (the baseline at 8 and 4 AR steps is worse than at 16)",
            [("mar_8", "mar_16"), ("mar_4", "mar_16")], {"worse"})
    if "mar_16" in rows and "gtr_10" in rows:
        speed = rows["mar_16"]["gflops"] / rows["gtr_10"]["gflops"]
        verdict(f"GtR keeps the baseline's quality at {speed:.1f}x fewer FLOPs", [("gtr_10", "mar_16")],
                {"equal within error", "better"})
    else:
        out.append("- GtR keeps the baseline's quality at a fraction of the FLOPs: **not measured yet**.")
    verdict("GtR beats step reduction at a similar or higher speed-up", [("gtr_6", "mar_4"), ("gtr_10", "mar_8")],
            {"better", "equal within error"})
    verdict("GtR beats the schedule baselines (DiSA, Halton) at similar FLOPs", [("gtr_10", "disa_16"),
                                                                                  ("gtr_6", "disa_8")],
            {"better", "equal within error"})
    verdict("The GtR order matters (GtR† with a random order is worse)", [("gtr_no_fts", "gtr_dagger")], {"better"})
    verdict("FTS helps (high-frequency selection beats none / random / low)",
            [("gtr_10", "gtr_no_fts"), ("gtr_10", "gtr_fts_random"), ("gtr_10", "gtr_fts_low")], {"better"})
    verdict("Table 5: the GtR order beats raster and subsample orders", [("gtr_10", "order_raster"),
                                                                         ("gtr_10", "order_subsample")], {"better"})
    if "figure3" in state:
        f3 = state["figure3"]
        c, b = f3["checkerboard"], f3["block"]
        smaller = c["pixel_std_mean"] + 2 * c["pixel_std_sem"] < b["pixel_std_mean"] - 2 * b["pixel_std_sem"]
        out.append(f"- Figure 3: a spread-out (checkerboard) half pins the image down more than a contiguous half: "
                   f"**{'holds' if smaller else 'does not hold'}** (pixel std across seeds {c['pixel_std_mean']:.4f} "
                   f"vs {b['pixel_std_mean']:.4f}).")
    else:
        out.append("- Figure 3 (checkerboard vs block): **not measured yet**.")
    out.append("")
    out.append("'equal within error': the means differ by less than the sum of the two seed standard deviations.")
    return out


def plot(rows: dict, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ref = rows.get("mar_16")
    if not ref:
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    markers = {"baseline": "o", "gtr": "*", "ablation": "s", "order": "^", "baselines": "D"}
    for ax, metric, title in ((axes[0], "fid_fmnist", "FID analogue (lower is better)"),
                              (axes[1], "accuracy", "class accuracy (higher is better)")):
        for key, row in rows.items():
            mean, std = _stat(row["per_seed"], metric)
            speed = ref["gflops"] / row["gflops"]
            ax.errorbar(speed, mean, yerr=std, fmt=markers.get(row["group"], "o"), capsize=3, label=key)
            ax.annotate(key, (speed, mean), fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("speed-up in FLOPs vs MAR 16 steps")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out.with_name("toy_study_speed_quality.png"), dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
