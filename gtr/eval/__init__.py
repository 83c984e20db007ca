"""Evaluation: FLOPs (``flops.py``), latency (``latency.py``), FID/IS through torch-fidelity (``fid.py``,
``inception.py``, ``metrics.py``), their Fashion-MNIST analogues (``fashion.py``) and GenEval (``geneval/``)."""
