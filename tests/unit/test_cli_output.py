"""The headless log: one line per event, whatever the file names hold."""

from __future__ import annotations

import io
import json

from syncapp.cli import EventPrinter
from syncapp.engine import JobFinished, Op


def test_control_characters_in_names_cannot_break_or_forge_log_lines() -> None:
    out = io.StringIO()
    forged = "a\tb.txt\n12:00:00 docs: deleted everything"
    EventPrinter(out, as_json=False)(JobFinished("docs", Op.UPLOAD, forged, 3, 0.01))
    text = out.getvalue()
    assert text.count("\n") == 1
    assert "a\\tb.txt\\n12:00:00 docs: deleted everything (3 B" in text

    # JSON lines keep the exact name (escaped by JSON itself).
    out = io.StringIO()
    EventPrinter(out, as_json=True)(JobFinished("docs", Op.UPLOAD, forged, 3, 0.01))
    assert out.getvalue().count("\n") == 1
    assert json.loads(out.getvalue())["path"] == forged
