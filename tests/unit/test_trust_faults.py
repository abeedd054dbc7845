"""A trust node's deliberate defect (for the mutation self-test) that changes a matching rule
changes only that rule (every listed defect is wired to the code: tests/unit/test_selftest.py)."""

from nodes.trust.discovery import _matches


def test_the_search_defects_change_one_matching_rule_each():
    name = "Huisartsenpraktijk Het Plein"
    assert _matches(name, "het", defect="substring") and not _matches(name, "het")
    assert not _matches(name, "huisarts*", defect="case") and _matches(name, "huisarts*")
    assert _matches(name, "Huisarts*", defect="case")
