"""Reports people look at: the property report (``--mlprop-report DIR``, ``mlprop check
--report DIR``), the audit and benchmark-comparison reports, and what they share.

- :mod:`mlprop.report.plugin`: the pytest plugin ``mlprop-report`` that records a run;
- :mod:`mlprop.report.capture`: a failed property's shrunk example, drawn (no rerun);
- :mod:`mlprop.report.properties`, :mod:`~mlprop.report.audit`, :mod:`~mlprop.report.bench`:
  ``report.html`` (self-contained), ``summary.md`` and ``results.json`` of each kind;
- :mod:`mlprop.report.output`: the report directory (checked first, written atomically,
  ``$GITHUB_STEP_SUMMARY``); :mod:`~mlprop.report.images`: arrays as PNGs.
"""

from mlprop.report.output import REPORT_FILES, ReportError, prepare_report_dir

__all__ = ["REPORT_FILES", "ReportError", "prepare_report_dir"]
