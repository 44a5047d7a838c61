"""fakedist's benchmarks: fakedist side by side with what users would otherwise run.

Entry point: ``python -m bench.run`` (or ``nox -s bench``); see ``bench/run.py``.
"""
