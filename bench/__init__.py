"""Benchmarks: each compares freshroot against a reference tool in the same run, as ratios."""
