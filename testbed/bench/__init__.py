"""Benchmarks, run by `make bench`: measured as ratios against a raw endpoint on the same
machine in the same run, since timings on a shared machine are noisy."""
