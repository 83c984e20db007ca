"""GenEval (Ghosh et al. 2023) re-implemented on maintained models."""
