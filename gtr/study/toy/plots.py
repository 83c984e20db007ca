"""The toy studies' figures: quality against FLOPs speed-up (labels placed off the points and error bars), the
ablations against their GtR row, and the Figure-3 strips."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import torch

from gtr.images import pyplot
from gtr.study.toy.rows import Testbed
from gtr.study.toy.verdicts import stat

MARKERS = {"baseline": ("o", "tab:blue"), "gtr": ("*", "tab:red"), "ablation": ("s", "tab:orange"),
           "baselines": ("D", "tab:green"), "order": ("^", "tab:purple"), "cached": ("P", "tab:brown"),
           "attempt": ("x", "0.45")}
GROUP_LABELS = {"attempt": "premise attempt 1 (CFG 4.0)"}


def _marker(group: str) -> dict:
    """errorbar() style of a row's group."""
    marker, colour = MARKERS.get(group, ("o", "0.3"))
    return {"fmt": marker, "color": colour, "capsize": 3, "markersize": 10 if marker == "*" else 6}


def _label_offsets() -> list[tuple[float, float, str, str]]:
    """Candidate label positions (offset in points, horizontal and vertical alignment): beside the marker first,
    then rings further out (drawn with a leader line)."""
    import math
    near = [(7, 0, "left", "center"), (-7, 0, "right", "center"), (0, 7, "center", "bottom"),
            (0, -7, "center", "top"), (6, 6, "left", "bottom"), (-6, 6, "right", "bottom"),
            (6, -6, "left", "top"), (-6, -6, "right", "top")]
    rings = []
    for r in (18, 28, 40, 54, 70):
        for angle in range(0, 360, 30):
            dx, dy = r * math.cos(math.radians(angle)), r * math.sin(math.radians(angle))
            rings.append((dx, dy, "left" if dx > 1 else "right" if dx < -1 else "center", "center"))
    return near + rings


def place_labels(ax, points: Sequence[tuple[float, float]], texts: Sequence[str], fontsize: float = 6.5,
                 obstacles: Sequence = ()) -> list:
    """Annotate each point with its text at the first candidate position where the label overlaps no other label,
    no marker, no ``obstacles`` (display-space boxes, e.g. error bars) and stays inside the axes (greedy, in
    display coordinates); labels away from their point get a leader line. Falls back to the least-overlapping
    position."""
    from matplotlib.text import Text
    from matplotlib.transforms import Bbox
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    inside = ax.get_window_extent(renderer)
    r = 3 * fig.dpi / 72  # a marker's half size, points -> pixels
    markers = [Bbox.from_bounds(mx - r, my - r, 2 * r, 2 * r)
               for mx, my in (ax.transData.transform(p) for p in points)]
    blocked = markers + list(obstacles)
    placed, annotations = [], []
    for (x, y), text in zip(points, texts):
        best = None
        for dx, dy, ha, va in _label_offsets():
            far = abs(dx) + abs(dy) > 12
            ann = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize,
                              ha=ha, va=va, arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "0.55",
                                                        "shrinkA": 1, "shrinkB": 4} if far else None)
            ann.update_positions(renderer)
            box = Text.get_window_extent(ann, renderer)  # the text, not its leader line
            overlap = sum(box.overlaps(b) for b in placed) + sum(box.overlaps(b) for b in blocked)
            overlap += 0 if (inside.contains(box.x0, box.y0) and inside.contains(box.x1, box.y1)) else 100
            if best is None or overlap < best[0]:
                if best is not None:
                    best[1].remove()
                best = (overlap, ann, box)
            else:
                ann.remove()
            if overlap == 0:
                break
        placed.append(best[2].expanded(1.06, 1.2))  # a little air between labels
        annotations.append(best[1])
    return annotations


def _errorbar_boxes(ax, points: Sequence[tuple[float, float]], stds: Sequence[float]) -> list:
    """Display-space boxes of vertical error bars (what a label should not cover)."""
    from matplotlib.transforms import Bbox
    boxes = []
    for (x, y), std in zip(points, stds):
        (x0, y0), (_, y1) = ax.transData.transform([(x, y - std), (x, y + std)])
        boxes.append(Bbox.from_extents(x0 - 3, min(y0, y1) - 2, x0 + 3, max(y0, y1) + 2))
    return boxes


ABLATION_GROUPS = ("ablation", "order")  # rows at one plan (the ablated GtR row's speed): their own figure


def plot(bed: Testbed, rows: Mapping, path: Path) -> None:
    """FID analogue and class accuracy against the FLOPs speed-up, every point labelled by its row; the ablations
    (all at one plan) are left to :func:`ablation_plot` when the testbed names their base row."""
    ref = rows.get(bed.reference_row)
    if not ref:
        return
    plt = pyplot()
    shown = {k: r for k, r in rows.items() if not (bed.ablation_base and r["group"] in ABLATION_GROUPS)}
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.6))
    handles, drawn = {}, []
    for ax, metric, title in ((axes[0], "fid_fmnist", "FID analogue (lower is better)"),
                              (axes[1], "accuracy", "class accuracy (higher is better)")):
        points, stds = [], []
        for row in shown.values():
            mean, std = stat(row["per_seed"], metric)
            points.append((ref["gflops"] / row["gflops"], mean))
            stds.append(std)
            handle = ax.errorbar(*points[-1], yerr=std, **_marker(row["group"]))
            handles.setdefault(GROUP_LABELS.get(row["group"], row["group"]), handle)
        drawn.append((ax, points, stds))
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.xaxis.set_minor_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}x" if v in (2, 3, 5) else ""))
        ax.set_xlabel(f"speed-up in FLOPs vs {bed.reference_row} (log scale)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.margins(x=0.12, y=0.12)  # room for the labels of the outermost points
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=len(handles), fontsize=8,
               frameon=False)
    fig.suptitle(f"{bed.title} (mean ± std over seeds)", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    for ax, points, stds in drawn:  # labels once the layout is final
        place_labels(ax, points, list(shown), obstacles=_errorbar_boxes(ax, points, stds))
    fig.savefig(path, dpi=130)
    plt.close(fig)


def ablation_plot(bed: Testbed, rows: Mapping, path: Path) -> bool:
    """Tables 3-5 at a glance: each ablation row's FID analogue and accuracy (mean ± std over seeds, one line per
    row, labelled on the axis) against the band of the GtR row they ablate (its mean ± std). False (nothing drawn)
    when the testbed names no base row or none of these rows is measured."""
    base = rows.get(bed.ablation_base)
    shown = [k for k, r in rows.items() if r["group"] in ABLATION_GROUPS]
    if base is None or not shown:
        return False
    plt = pyplot()
    keys = [bed.ablation_base, *shown]
    fig, axes = plt.subplots(1, 2, figsize=(11, 1.3 + 0.32 * len(keys)), sharey=True)
    for ax, metric, title in ((axes[0], "fid_fmnist", "FID analogue (lower is better)"),
                              (axes[1], "accuracy", "class accuracy (higher is better)")):
        mean, std = stat(base["per_seed"], metric)
        ax.axvspan(mean - std, mean + std, color="tab:red", alpha=0.15, lw=0,
                   label=f"{bed.ablation_base}: mean ± std")
        for y, key in enumerate(keys):
            m, s = stat(rows[key]["per_seed"], metric)
            ax.errorbar(m, y, xerr=s, **_marker(rows[key]["group"]))
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, axis="x")
    axes[0].set_yticks(range(len(keys)), [f"{k}  ({rows[k]['group']})" for k in keys], fontsize=8)
    axes[0].invert_yaxis()
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", fontsize=8, frameon=False)
    fig.suptitle(f"Ablations at {bed.ablation_base}'s plan (Tables 3-5): an error bar touching the band = equal "
                 "within error", fontsize=10)
    fig.tight_layout(rect=(0, 0.35 / (1.3 + 0.32 * len(keys)), 1, 1))
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return True


def figure3_plot(reference: torch.Tensor, strips: Mapping[str, tuple[torch.Tensor, torch.Tensor]], path: Path) -> None:
    """One labelled row per pattern: the reference sample, the half given to the model (the rest dimmed), then the
    completions of each seed."""
    plt = pyplot()
    h = reference.shape[0]
    seeds = next(iter(strips.values()))[1].shape[0]
    fig, axes = plt.subplots(len(strips), seeds + 2, figsize=(1.3 * (seeds + 2), 1.55 * len(strips)), squeeze=False)
    for r, (pattern, (mask, completions)) in enumerate(strips.items()):
        side = round(mask.numel() ** 0.5)  # the mask is flat over the square token grid
        cell = torch.as_tensor(mask, dtype=torch.float32).reshape(side, side)
        cell = cell.repeat_interleave(h // side, 0).repeat_interleave(h // side, 1)
        given = reference[..., 0].float() * (0.25 + 0.75 * cell)
        panels = [(reference[..., 0], "reference sample"), (given, f"given: {pattern}")]
        panels += [(completions[s][..., 0], f"seed {s}") for s in range(seeds)]
        for c, (image, title) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(image.numpy(), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(title, fontsize=7)
        axes[r, 0].set_ylabel(f"{pattern} half", fontsize=8)
    fig.suptitle("Figure 3: the other half completed with different seeds (less spread = the given half pins the "
                 "image down)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
