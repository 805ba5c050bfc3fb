"""`prmbench report`: one self-contained HTML page over one or more run directories.

prmbench.report.data reads the runs (records, trees, step-level cells) into the page's JSON;
prmbench.report.figures draws the figures (matplotlib, inline PNG); prmbench.report.page writes
the HTML with the inline CSS/JS of prmbench/report/assets. Every number on the page is computed
from the runs' records and metrics files.
"""

from prmbench.report.page import write_report

__all__ = ["write_report"]
