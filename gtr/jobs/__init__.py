"""The jobs, one module each, read top to bottom: ``sample`` (a labelled grid), ``sample_t2i`` (prompts to images),
``generate`` (evaluation-scale generation, sharded and resumable, scored with FID/IS), ``geneval`` (GenEval's
folder layout, generated and scored), ``train`` (the project's own networks) and ``score`` (images made anywhere).
They share :mod:`gtr.jobs.common` (config to model, sampler, cache and :func:`~gtr.jobs.common.render`),
:mod:`gtr.jobs.output` (the output folder's guard) and :mod:`gtr.jobs.distributed` (sharded rendering). Jobs sit above
the core (models, sampling, tokenizers, weights, data) and the config layer, which import none of them (a test
says so: ``tests/test_layers.py``)."""
