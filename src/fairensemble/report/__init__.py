"""Rendering what the analysis computed: the run's files (``build``), figures (``plots``), the
tables every output shares (``tables``), recommendation and learning-curve parts
(``parts``), report.html (``html``) and what the terminal prints (``terminal``). Nothing here
evaluates or fits."""

from fairensemble.report.build import RECOMMENDATION, read_recommendation, write_report
from fairensemble.report.plots import Drawn, all_figures
from fairensemble.report.terminal import print_recommendation, print_summary

__all__ = ["RECOMMENDATION", "Drawn", "all_figures", "print_recommendation",
           "print_summary", "read_recommendation", "write_report"]
