"""Datasets the project trains its embedded default model on."""
from gtr.data.fashion_mnist import (CLASS_NAMES, FashionMNIST, find_root, read_idx, resize, to_model_range,
                                    write_idx)

__all__ = ["CLASS_NAMES", "FashionMNIST", "find_root", "read_idx", "resize", "to_model_range", "write_idx"]
