"""The light theme passes a contrast check: text at least 4.5:1 against its background (WCAG AA),
computed from the colours the theme gives each label of the dashboard (alpha blended as drawn)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from textual.color import Color
from textual.widget import Widget
from textual.widgets import Label, Static

from syncapp.tui.app import SyncApp
from syncapp.tui.folders import FolderPanel
from tests.tui.test_snapshots import ALL_FOLDERS, all_states, feed, make_app, make_config

AA = 4.5


def luminance(c: Color) -> float:
    def channel(v: int) -> float:
        s = v / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b)


def contrast(a: Color, b: Color) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_contrast_formula() -> None:
    assert contrast(Color(0, 0, 0), Color(255, 255, 255)) == pytest.approx(21)
    assert contrast(Color(119, 119, 119), Color(255, 255, 255)) == pytest.approx(4.48, abs=0.01)


def text_widgets(app: SyncApp) -> Iterator[tuple[str, Widget]]:
    for panel in app.dashboard.query(FolderPanel):
        for label in panel.query(Label):
            if label.display and str(label.content).strip():
                yield f"{panel.folder_name} {' '.join(label.classes)}", label
    for static in app.dashboard.query(Static):
        if static.id in ("total-progress",) and static.display:
            yield static.id, static


@pytest.mark.parametrize("theme", ["textual-light", "textual-dark"])
async def test_dashboard_text_is_readable(theme: str) -> None:
    app = make_app(make_config(*ALL_FOLDERS))
    async with app.run_test(size=(200, 60)) as pilot:
        await feed(all_states(), theme=theme)(pilot)
        await pilot.pause()
        failures = []
        checked = 0
        for name, widget in text_widgets(app):
            _, _, background, color = widget.colors
            ratio = contrast(color, background)
            checked += 1
            if ratio < AA:
                failures.append(f"{name}: {color.hex} on {background.hex} = {ratio:.2f}")
        # The activity log's tones, drawn on its background.
        log_bg = app.dashboard.activity.colors[2]
        for tone, colour in app.palette().items():
            ratio = contrast(Color.parse(colour), log_bg)
            checked += 1
            if ratio < AA:
                failures.append(f"log {tone}: {colour} on {log_bg.hex} = {ratio:.2f}")
        # The transfer percentages, drawn on the transfers table.
        transfers_bg = app.dashboard.transfers.colors[2]
        accent = Color.parse(app.theme_variables["text-accent"])
        ratio = contrast(accent, transfers_bg)
        if ratio < AA:
            failures.append(f"transfer %: {accent.hex} on {transfers_bg.hex} = {ratio:.2f}")
        assert checked > 20
        assert not failures, "\n".join(failures)
