"""Benchmarks, run by `make bench`: measured as ratios against a raw endpoint on the same
machine in the same run, since timings on a shared machine are noisy."""


class BenchError(RuntimeError):
    """A benchmark that cannot measure what it should (a driver that fails, a server that
    does not start, answers that are not what was asked for): told in one line, no traceback."""


# Where meter.py, loaded in Locust's processes, writes its samples (a folder).
METER_FOLDER_VARIABLE = "TESTBED_BENCH_METER"
