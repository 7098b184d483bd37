"""Labelled PMU scenarios from the ANDES power-system simulator (development tool only).

``andes`` is GPL-3.0: it is imported only by ``tools/scenarios/andes_sim.py`` and
installed through the optional extra ``edgepipe[andes]``; ``edgepipe`` and ``adapters``
never import it (import-linter contract). The schema of the Parquet files is
``docs/scenarios.md``; ``tools/scenarios/dataset.py`` turns them into pipeline windows.
"""
