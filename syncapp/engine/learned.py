"""What each remote's server was seen to do, kept in the state database.

A remote learns its server's behaviour once (``Remote.learn`` probes inside a folder's
``remote_path``); the answer is kept under the remote's display URL, so later runs, the dry run
and ``syncapp remotes`` use it without asking the server again. Whether its folder ETags
follow their contents (two-way polls) is kept the same way, under its own key.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

from syncapp.engine.remotepoll import probe_tree_etags
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


#: A kept answer about folder ETags is tried again after this long (servers get upgraded).
TREE_ETAGS_MAX_AGE = 7 * 86400.0


def tree_etags_key(remote: Remote) -> str:
    return f"tree-etags:{remote.kind}:{remote.display_url}"


def kept_tree_etags(state: StateDB, remote: Remote, now: float) -> bool | None:
    """What was learned of ``remote``'s folder ETags and is not too old to trust, or None."""
    raw = state.get_meta(tree_etags_key(remote))
    try:
        value = json.loads(raw) if raw else None
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    answer, at = value.get("tree_etags"), value.get("learned_at")
    if not isinstance(answer, bool) or not isinstance(at, int | float):
        return None
    return answer if 0 <= now - at < TREE_ETAGS_MAX_AGE else None


async def learn_tree_etags(
    remote: Remote, state: StateDB, where: str, *, probe: bool = True, now: float | None = None
) -> bool:
    """Whether ``remote``'s folder ETags change with everything below them (then a poll that
    finds nothing changed is one request): as kept, else tried inside ``where`` with probe
    names (``remotepoll.probe_tree_etags``) and kept. Only WebDAV servers are tried;
    ``probe=False`` (the dry run) never writes and answers False when nothing is kept."""
    when = time.time() if now is None else now
    kept = kept_tree_etags(state, remote, when)
    if kept is not None:
        return kept
    if not probe or remote.kind != "webdav":
        return False  # collection ETags are WebDAV's (S3, HTTP and local folders have none)
    answer = await probe_tree_etags(remote, where)
    if answer is None:
        return False  # not learned: the next hour's look asks again
    state.set_meta(tree_etags_key(remote), json.dumps({"tree_etags": answer, "learned_at": when}))
    return answer
