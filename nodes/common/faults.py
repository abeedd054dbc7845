"""Deliberate defects for the mutation self-test (`testbed selftest`).

A reference node started with the setting `fault: NAME` misbehaves in exactly that one way and
is correct everywhere else, the kind of bug a vendor could ship. The self-test runs a role's
conformance profile against each such variant and expects the profile to catch it. Each role
names its defects in `nodes/<role>/faults.py`; a name a role does not know stops the node at
start, so a misspelt variant cannot pass for a caught one."""

from __future__ import annotations

from collections.abc import Mapping

from protocols.nodeconfig import NodeConfig


class UnknownFault(ValueError):
    pass


class FaultSwitch:
    """`faulty("name")` is true when this node was started with that defect switched on."""

    def __init__(self, config: NodeConfig, known: Mapping[str, str]):
        name = config.settings.get("fault")
        if name is not None and name not in known:
            raise UnknownFault(f"unknown fault {name!r} for a {config.role} node; known: {', '.join(sorted(known))}")
        self.active: str | None = name
        self._known = known

    def __call__(self, name: str) -> bool:
        if name not in self._known:  # a call site naming a defect the role does not list
            raise UnknownFault(f"fault {name!r} is not listed in this role's faults")
        return self.active == name


def fault_switch(config: NodeConfig) -> FaultSwitch:
    """The switch for a node of `config.role`, against the defects that role lists."""
    from importlib import import_module

    known: Mapping[str, str] = import_module(f"nodes.{config.role}.faults").FAULTS
    return FaultSwitch(config, known)
