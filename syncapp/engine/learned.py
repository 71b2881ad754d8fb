"""What each remote's server was seen to do, kept in the state database.

A remote learns its server's behaviour once (``Remote.learn`` probes inside a folder's
``remote_path``); the answer is kept under the remote's display URL, so later runs, the dry run
and ``syncapp remotes`` use it without asking the server again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from syncapp.engine.state import StateDB
from syncapp.remotes.base import Remote


def facts_key(remote: Remote) -> str:
    # The display URL never holds credentials; another URL is another server.
    return f"learned:{remote.kind}:{remote.display_url}"


def kept_facts(state: StateDB, remote: Remote) -> Mapping[str, object] | None:
    raw = state.get_meta(facts_key(remote))
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


async def learn_remote(
    remote: Remote, state: StateDB, where: str, *, probe: bool = True
) -> Mapping[str, object]:
    """Apply what is kept about ``remote``'s server, or find it out inside ``where`` and keep
    it. ``probe=False`` (the dry run) never sends a request for it."""
    kept = kept_facts(state, remote)
    facts = await remote.learn(where, kept=kept, probe=probe)
    if facts and facts != kept and probe:
        state.set_meta(facts_key(remote), json.dumps(dict(facts)))
    return facts
