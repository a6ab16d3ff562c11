"""Figures and tables of a recon-grid sweep, read back from MLflow (``python analysis/report.py``).

``load`` finds the sweep (experiment, parent run; default: the latest grid of the demo's store) and reads
its finished trials, ``tables`` makes the test-metric table with paired Wilcoxon tests across test volumes,
``figures`` the studies' figures, and ``report`` writes everything (PNG/PDF, CSV/Markdown/LaTeX and one
self-contained HTML file) and logs it to the parent run under ``analysis/``.

A package beside ``phaselab/`` and ``sweeps/``, not part of the installed ``phaselab``: run it from the
repository root as ``python analysis/report.py`` (the script puts the root on ``sys.path`` itself) or
``python -m analysis.report``; the tests import ``analysis.report`` (pytest puts the root on the path).
"""
