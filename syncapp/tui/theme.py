"""The light and dark themes, with text colours that read at 4.5:1 (WCAG AA) on our panels.

Textual's own ``textual-light`` draws warnings, successes and errors in tones meant for dark
backgrounds (3:1 on a light grey panel); ``textual-dark`` its secondary text at 4.2:1. These are
the same themes with those text variants darkened (light) or lightened (dark) until they pass on
every background the dashboard uses (surface, panel, a focused card); ``tests/tui/
test_contrast.py`` measures them.
"""

from __future__ import annotations

import dataclasses

from textual.theme import BUILTIN_THEMES, Theme

READABLE_TEXT = {
    "textual-light": {
        "text-success": "#215330",
        "text-warning": "#644110",
        "text-error": "#852438",
        "text-secondary": "#004A83",
        "text-accent": "#783800",
    },
    "textual-dark": {
        "text-secondary": "#80AED0",
    },
}


def readable_themes() -> list[Theme]:
    themes = []
    for name, text in READABLE_TEXT.items():
        base = BUILTIN_THEMES[name]
        themes.append(dataclasses.replace(base, variables={**base.variables, **text}))
    return themes
