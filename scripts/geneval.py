"""GenEval for LightGen with any sampler: generate the official layout (resumable, any number of processes), score
it with the pip-installable GenEval scorer, write results.jsonl, summary.txt and results.json (per-task scores).

    python scripts/geneval.py sampler=gtr                              # Table 2's GtR row (16 AR steps)
    torchrun --nproc_per_node 8 scripts/geneval.py sampler=mar         # LightGen-32 baseline on 8 GPUs
    python scripts/geneval.py model=lightgen_tiny num_prompts=6 geneval.detector=hf geneval.detector_path=<folder>
"""
from gtr.cli import geneval

if __name__ == "__main__":
    geneval()
