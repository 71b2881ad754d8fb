"""The footer of the main screens: Textual's, rebuilt only when the keys it shows change.

Textual's ``Footer`` queues a rebuild (remove every key, compose and mount them again, restyle
each) for every bindings signal, and one screen switch sends several (the stack, the focus, our
own ``refresh_bindings``): measured, two to three rebuilds per key press, about a third of the
time a screen switch takes. This one queues at most one at a time, and skips it when the keys
are those already shown (going back to the dashboard, a focus move).
"""

from __future__ import annotations

from typing import Any

from textual.screen import Screen
from textual.widgets import Footer as TextualFooter


class Footer(TextualFooter):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._rebuild_queued = False
        self._composed: tuple[object, ...] | None = None

    def bindings_changed(self, screen: Screen[Any]) -> None:
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen and not self._rebuild_queued:
            self._rebuild_queued = True
            self.call_after_refresh(self._rebuild)

    def _keys(self) -> tuple[object, ...]:
        """What ``compose`` reads: every active binding, enabled or not, with its tooltip."""
        return tuple(
            (key, binding.action, binding.description, binding.show, enabled, tooltip)
            for key, (_, binding, enabled, tooltip) in self.screen.active_bindings.items()
        )

    async def _rebuild(self) -> None:
        self._rebuild_queued = False
        if not self.is_attached:
            return
        keys = self._keys()
        if keys == self._composed:
            return
        self._composed = keys
        await self.recompose()
