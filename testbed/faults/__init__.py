"""Faults a run can inject: nodes stopped, killed or paused; links cut, slowed or lossy."""
