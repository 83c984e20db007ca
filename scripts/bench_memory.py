"""Peak memory of packing and scoring N generated images: rank 0's work after generation, which must not grow with N.

    python scripts/bench_memory.py                      # 5,000 and 50,000 64x64 PNGs (CPU, a few minutes)
    python scripts/bench_memory.py --counts 1000 10000

For each N: write N small PNGs, then in a fresh process (i) pack them into ``samples.npz`` as ``scripts/generate.py``
does and (ii) stream that ``.npz`` back in batches as ``scripts/score.py`` does; the process's peak RSS is reported.
Writes results/bench_memory.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from gtr.errors import one_line_errors
from gtr.eval.latency import command_line

REPO = Path(__file__).resolve().parent.parent
CHILD = """
import resource, sys
from pathlib import Path
from gtr.eval.sources import npz_batches
from gtr.jobs.generate import pack_npz
folder = Path(sys.argv[1])
path = pack_npz(sorted(folder.glob("*.png")), folder.parent / "samples.npz")
count, batches = npz_batches(path)
total = sum(int(b.sum()) for b in batches)
print(count, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[5_000, 50_000])
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench_memory")
    args = parser.parse_args()
    if min(args.counts) < 1 or args.size < 1:
        parser.error("--counts and --size must be >= 1")
    rows = []
    for count in args.counts:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "images"
            folder.mkdir()
            rng = np.random.default_rng(0)
            for i in range(count):
                Image.fromarray(rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)).save(
                    folder / f"{i:05d}.png")
            done = subprocess.run([sys.executable, "-c", CHILD, str(folder)], capture_output=True, text=True,
                                  check=True)
            n, peak_mib = done.stdout.split()
            rows.append({"num_images": int(n), "image_bytes": args.size * args.size * 3,
                         "array_mib": int(n) * args.size * args.size * 3 / 2**20, "peak_rss_mib": float(peak_mib)})
            print(rows[-1], flush=True)
    command = command_line(__file__, REPO)
    result = {"command": command, "size": args.size, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# Peak memory of packing and scoring N images (measured)", "", f"Command: `{command}`  ",
             f"{args.size}x{args.size} RGB PNGs; one fresh process per N packs them into samples.npz "
             "(gtr.jobs.generate.pack_npz) and streams the .npz back (gtr.eval.sources.npz_batches); peak RSS of that "
             "process (includes torch's import).", "",
             "| images | the images as one array (MiB) | peak RSS (MiB) |", "|---|---|---|"]
    lines += [f"| {r['num_images']:,} | {r['array_mib']:.1f} | {r['peak_rss_mib']:.0f} |" for r in rows]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    with one_line_errors():
        main()
