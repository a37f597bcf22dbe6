"""The HTML report of a run, an explorer of static files that opens from disk.

* :mod:`.page`: the page (``index.html``, or inline in Jupyter), one section per step;
* :mod:`.heads`: the listenable head grid and the document a step writes for it;
* :mod:`.tables`: step summaries and the results as tables;
* :mod:`.media`: escaping, links and inline files.
"""

from interp.experiments.report.heads import HEAD_GRID_PREFIX, head_grid_data, head_grid_html
from interp.experiments.report.page import render, write_report
from interp.experiments.report.tables import summary_tables, table_html

__all__ = [
    "HEAD_GRID_PREFIX",
    "head_grid_data",
    "head_grid_html",
    "render",
    "summary_tables",
    "table_html",
    "write_report",
]
