"""syncapp: live folder-to-remote sync with a terminal UI."""

import sys

__version__ = "0.1.0"

# httpx imports its own command-line client (rich, click, pygments: ~70 ms of every start) when
# those are installed, as Textual's dependencies are; syncapp never uses it.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
