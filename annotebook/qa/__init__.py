"""Visual QA on the canonical tables: checks that return findings, evaluation against predictions, likely
mistakes, and plots.

- `qa` runs the checks of `CHECKS` and returns one findings table (`FINDING_COLUMNS`);
- `evaluate` matches predictions to ground truth COCO-style and gives AP, precision / recall and a confusion matrix;
- `mistakes` ranks ground-truth rows by how strongly confident predictions disagree with them;
- `annotebook.qa.plots` draws label counts, size and aspect histograms, confusion matrices and PR curves.
"""

from __future__ import annotations

from .evaluation import Evaluation, evaluate
from .findings import FINDING_COLUMNS, SEVERITY, findings_frame
from .mistakes import MISTAKE_COLUMNS, mistakes
from .plots import label_counts, plot_confusion, plot_pr, plot_sizes
from .run import CHECKS, qa
from .worklist import worklist

__all__ = [
    "CHECKS",
    "FINDING_COLUMNS",
    "MISTAKE_COLUMNS",
    "SEVERITY",
    "Evaluation",
    "evaluate",
    "findings_frame",
    "label_counts",
    "mistakes",
    "plot_confusion",
    "plot_pr",
    "plot_sizes",
    "qa",
    "worklist",
]
