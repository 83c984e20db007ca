"""Text-to-image with LightGen and a named sampler; writes PNGs and a grid with one captioned row per prompt.

    python scripts/sample_t2i.py model=lightgen sampler=gtr prompt="a photo of a red apple"   # Table 2 GtR
    python scripts/sample_t2i.py model=lightgen_tiny prompt="two dogs"      # random tiny models, CPU, seconds
"""
import hydra

from gtr.t2i import main


@hydra.main(config_path="../configs", config_name="sample_t2i", version_base="1.3")
def run(cfg) -> None:
    main(cfg)


if __name__ == "__main__":
    run()
