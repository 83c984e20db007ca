"""Evaluation: FLOPs (``flops.py``) now; FID/IS with torch-fidelity, GenEval and latency land with the evaluation
issues and read the images written by ``scripts/sample.py``."""
