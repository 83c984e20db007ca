"""Training curves of the project's own jobs, and the reconstruction quality of a tokenizer.

    python scripts/report_training.py --runs runs/fmnist16_vae runs/mar_fmnist16 --tokenizer fmnist16_vae \
        --out results/training_fmnist16

Reads the loss history kept in each run's ``last.pt`` (loaded with ``weights_only=True``) and plots it
(``<out>.png``); for ``--tokenizer`` (a shipped tokenizer name), measures on the first 1,000 Fashion-MNIST test
images the reconstruction MSE / PSNR and how many reconstructions the shipped classifier recognises, beside the
originals. Writes ``<out>.json`` and ``<out>.md``.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from gtr.errors import GtRError, one_line_errors
from gtr.files import write_json, write_text
from gtr.images import pyplot
from gtr.weights import read_checkpoint


@torch.no_grad()
def reconstruction_quality(name: str, count: int = 1000, data_root=None) -> dict:
    from gtr.data import FashionMNIST, resize
    from gtr.eval.fashion import FashionExtractor
    from gtr.tokenizers import load_tokenizer, to_uint8
    tokenizer = load_tokenizer(name, download=False)
    data = FashionMNIST("test", data_root)
    images, labels = data.tensors()
    images, labels = images[:count], labels[:count]
    size = int(tokenizer.vae.config.sample_size)
    images = resize(images, size)
    generator = torch.Generator().manual_seed(0)
    recon = torch.cat([tokenizer.decode(tokenizer.encode(x, generator)) for x in images.split(250)]).clamp(-1, 1)
    mse = ((recon - images) ** 2).mean().item()
    extractor = FashionExtractor()

    def accuracy(x):
        return (extractor(to_uint8(x))[1].argmax(1) == labels).double().mean().item()

    return {"tokenizer": name, "images": count, "image_size": size, "mse": mse,
            "psnr_db": 10 * math.log10(4 / mse), "accuracy_reconstructions": accuracy(recon),
            "accuracy_originals": accuracy(images)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", type=Path, required=True, help="run folders holding last.pt")
    parser.add_argument("--tokenizer", default=None, help="a tokenizer name whose reconstructions to measure")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", type=Path, required=True, help="output stem: <out>.json, <out>.md, <out>.png")
    args = parser.parse_args()
    with one_line_errors(args.out.parent):
        histories = {}
        for run in args.runs:
            path = run / "last.pt"
            if not path.is_file():
                raise GtRError(f"{path} does not exist: pass run folders of scripts/train.py (runs/<name>)")
            state = read_checkpoint(path)
            if "history" not in state:
                raise GtRError(f"{path} holds no training history: not a checkpoint of scripts/train.py")
            histories[run.name] = json.loads(state["history"])
            if not histories[run.name]:
                raise GtRError(f"{path} has logged no step yet: train longer (train.log_every steps) first")
        result = {"runs": {k: {"steps": h[-1]["step"], "first_loss": h[0]["loss"], "final_loss": h[-1]["loss"]}
                           for k, h in histories.items()}}
        if args.tokenizer:
            result["reconstruction"] = reconstruction_quality(args.tokenizer, data_root=args.data_root)
    plt = pyplot()
    fig, axes = plt.subplots(1, len(histories), figsize=(5 * len(histories), 3.6), squeeze=False)
    for ax, (name, history) in zip(axes[0], histories.items()):
        ax.plot([h["step"] for h in history], [h["loss"] for h in history], lw=1.2)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("training loss (mean over 25 steps, log scale)")
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out.with_suffix(".png"), dpi=120)
    write_json(args.out.with_suffix(".json"), result)
    lines = [f"# Training: {', '.join(histories)}", "",
             f"Measured here: `python scripts/report_training.py --runs {' '.join(str(r) for r in args.runs)}"
             + (f" --tokenizer {args.tokenizer}" if args.tokenizer else "") + f" --out {args.out}`", "",
             "| run | steps | first logged loss | final loss |", "|---|---|---|---|"]
    lines += [f"| {k} | {v['steps']} | {v['first_loss']:.4f} | {v['final_loss']:.4f} |"
              for k, v in result["runs"].items()]
    if "reconstruction" in result:
        r = result["reconstruction"]
        lines += ["", f"Reconstructions of the first {r['images']} test images ({r['image_size']}x{r['image_size']}) "
                  f"by `{r['tokenizer']}`: MSE {r['mse']:.4f} in [-1, 1] (PSNR {r['psnr_db']:.1f} dB); the shipped "
                  f"classifier recognises {100 * r['accuracy_reconstructions']:.1f} % of them vs "
                  f"{100 * r['accuracy_originals']:.1f} % of the originals at the same size."]
    lines += ["", f"![training curves]({args.out.name}.png)"]
    write_text(args.out.with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
