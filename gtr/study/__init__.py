"""The studies that decide the paper's claims on testbeds trained here: their statistics
(:mod:`gtr.study.statistics`, numpy and scipy only)."""
