"""Speed and memory benchmarks (``python -m benchmarks.run``): scripts that print and save figures.

Targets live here, never in timed tests.
"""
