"""Benchmarks: each module runs as `python -m bench.<name>` and prints ratios against a ceiling."""
