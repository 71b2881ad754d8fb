from __future__ import annotations

import pytest

from syncapp.ignore import IgnoreRules


def test_defaults_and_config_patterns_say_which_rule() -> None:
    rules = IgnoreRules(["*.tmp", ".cache/", "!keep.tmp"])
    assert rules.match("notes/.report.swp") is not None
    m = rules.match("a/b.tmp")
    assert m is not None and m.pattern == "*.tmp" and m.source == "config"
    assert "folder's ignore setting" in m.describe()
    assert rules.match("keep.tmp") is None
    assert rules.ignored(".cache", is_dir=True)
    assert rules.ignored(".cache/x/y")
    assert rules.match("~$report.docx") is not None
    assert rules.match("report.docx") is None


def test_reserved_names_cannot_be_reincluded() -> None:
    rules = IgnoreRules(["!.syncapp-versions"])
    m = rules.match(".syncapp-versions", is_dir=True)
    assert m is not None and m.source == "syncapp"
    assert rules.ignored(".syncapp-tmp-abc123")


def test_defaults_can_be_turned_off() -> None:
    assert not IgnoreRules(defaults=False).ignored("a.swp")


def test_bad_pattern_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        IgnoreRules(["a/**/**/[z-a]"])
