"""Generate an evaluation set (resumable, any number of processes) and score it with FID/IS.

    python scripts/generate.py model=mar_fmnist sampler=gtr
    torchrun --nproc_per_node 8 scripts/generate.py model=mar_h sampler=gtr_16 diffusion.clip_timestep=950
    python scripts/generate.py -m model=mar_b,mar_l sampler=mar,gtr_16 seed=0,1,2   # Hydra sweep
"""
from gtr.cli import generate

if __name__ == "__main__":
    generate()
