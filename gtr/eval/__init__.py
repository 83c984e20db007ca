"""Evaluation: FID/IS (torch-fidelity), GenEval, FLOPs and latency. The MAR core ships none of these yet; they
land with the evaluation issues and read the images written by ``scripts/sample.py``."""
