"""Every engine event survives the control API's JSON both ways (what an attached UI sees is
what the engine published), and an unknown kind is skipped, not a crash."""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing

import pytest

from syncapp.engine.client import _TYPES, event_from_dict
from syncapp.engine.events import Event


def _sample(hint: object) -> object:
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return list(hint)[-1]
    origin = typing.get_origin(hint)
    if origin is tuple:
        return ("a b.txt", "dir/ü#%?.txt")
    if origin is typing.Literal:
        return typing.get_args(hint)[-1]  # not the default, so the round trip proves it
    if origin in (typing.Union, types.UnionType):
        return _sample(next(a for a in typing.get_args(hint) if a is not type(None)))
    return {str: "docs/a b#1.txt", int: 7, float: 1.5, bool: True}[hint]  # type: ignore[index]


@pytest.mark.parametrize("name", sorted(_TYPES))
def test_round_trip(name: str) -> None:
    cls = _TYPES[name]
    hints = typing.get_type_hints(cls)
    kwargs = {
        f.name: _sample(hints[f.name]) for f in dataclasses.fields(cls) if f.name != "at"
    }
    event = cls(**kwargs, at=123.25)
    wire = json.loads(json.dumps(event.to_dict()))
    assert event_from_dict(wire) == event


def test_unknown_kind_is_skipped() -> None:
    assert event_from_dict({"event": "SomethingNew", "folder": "docs"}) is None
    assert issubclass(_TYPES["JobStarted"], Event)
