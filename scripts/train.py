"""Train the project's own Fashion-MNIST networks: ``python scripts/train.py train=tokenizer|mar|classifier``.

Resumable (re-run the same command after a kill), progress bar, optional wandb (``wandb.enabled=true``).
"""
from gtr.cli import train

if __name__ == "__main__":
    train()
