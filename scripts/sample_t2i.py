"""Text-to-image with LightGen and a named sampler; writes PNGs and a grid with one captioned row per prompt.

    python scripts/sample_t2i.py model=lightgen sampler=gtr prompt="a photo of a red apple"   # Table 2 GtR
    python scripts/sample_t2i.py model=lightgen_tiny prompt="two dogs"      # random tiny models, CPU, seconds
"""
from gtr.cli import sample_t2i

if __name__ == "__main__":
    sample_t2i()
