"""The deliberate defects a station reference node can be started with (setting `fault: NAME`),
for the mutation self-test; see nodes/common/faults.py. Name -> what the node then does wrong."""

FAULTS: dict[str, str] = {}
