"""The paper's claims measured on the project's own Fashion-MNIST models, where anyone can re-run them.

Two testbeds (:data:`TESTBEDS`): ``fmnist`` (``mar_fmnist``, 7x7 tokens: the embedded default, on which the paper's
premise does not hold) and ``fmnist16`` (``mar_fmnist16``, a 16x16 token grid as ImageNet MAR's, on which the paper's
sampler configs run unchanged). For every row of a testbed: per-image FLOPs (counted), sampling time, and quality
from the shipped classifier (FID analogue, IS analogue, class accuracy), mean and std over seeds; plus the Figure-3
experiment. Results are saved after every row (a re-run skips finished rows) and the report (Markdown, a
speed-quality plot, the Figure-3 strips) is rewritten from them. ``scripts/toy_study.py`` is the entry point.

Modules: :mod:`.rows` (testbeds, rows and claims as data), :mod:`.measure` (rendering, scoring, timing,
Figure 3, the driver :func:`run`), :mod:`.verdicts`, :mod:`.report`, :mod:`.plots`.

Verdicts (:func:`claim_lines`) follow :mod:`gtr.study.statistics`: each pair of rows is compared on the FID analogue
by Welch's t-test over seeds (accuracy beside it, over images), Holm-corrected over the report's comparisons, with a
margin of 5 % of the compared row's FID analogue; a claim *holds* when all its pairs hold, *does not hold* when any
does not, and is *undecided* otherwise.
"""
from gtr.study.toy.measure import run
from gtr.study.toy.report import report
from gtr.study.toy.rows import TESTBEDS, Claim, Row, Testbed, built, sampling_options, testbed
from gtr.study.toy.verdicts import claim_lines, comparisons, figure3_comparison, verdict

__all__ = ["Claim", "Row", "TESTBEDS", "Testbed", "built", "claim_lines", "comparisons", "figure3_comparison",
           "report", "run", "sampling_options", "testbed", "verdict"]
