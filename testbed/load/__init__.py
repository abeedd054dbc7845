"""Scenarios under load: a scenario's steps as a Locust user flow, run in Locust's own
processes, with k6-style thresholds and a performance report."""
