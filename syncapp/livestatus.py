"""``syncapp status`` while an engine runs: what it is doing now, per folder.

The running engine's ``FolderInfo`` (``GET /v1/folders``) becomes the ``live`` object of
``status --json`` and the "now" lines of the text output: the folder's word, files queued, in
flight (with bytes sent) and failed, upload and (two-way) download rates, the round's done of
total and the time left when the engine can tell.
"""

from __future__ import annotations

from typing import Any

from syncapp.engine.live import human_size

#: In the text output, at most this many files in flight are named.
SHOWN_TRANSFERS = 5


def live_of(info: dict[str, Any]) -> dict[str, Any] | None:
    """The ``live`` object of one folder from its ``FolderInfo`` as JSON; None when it is not
    open in the engine."""
    st = info.get("status")
    if st is None:
        return None
    live = {k: st[k] for k in ("state", "reason", "queued", "in_flight", "failed")}
    fig = info.get("figures") or {}
    live.update(
        up_rate=fig.get("up_rate"),
        up_files_rate=fig.get("up_files_rate"),
        down_rate=fig.get("down_rate"),
        eta=fig.get("eta"),
        progress={
            k: fig.get(k, 0) for k in ("files_done", "files_total", "bytes_done", "bytes_total")
        },
        transfers=list(fig.get("transfers") or []),
    )
    return live


def live_lines(live: dict[str, Any]) -> list[str]:
    """The text lines (indented two spaces) for one folder's ``live`` object."""
    why = f" ({live['reason']})" if live["reason"] else ""
    lines = [
        f"  now: {live['state']}{why}; {live['in_flight']} in flight, {live['queued']} queued"
        + (f", {live['failed']} failed" if live["failed"] else "")
    ]
    speed = _speed(live)
    prog = live["progress"]
    if prog["files_total"]:
        speed.append(
            f"{prog['files_done']} of {prog['files_total']} files, "
            f"{human_size(prog['bytes_done'])} of {human_size(prog['bytes_total'])} done"
        )
    if live["eta"] is not None and prog["files_done"] < prog["files_total"]:
        speed.append(f"about {duration(live['eta'])} left")
    if speed:
        lines.append("  speed: " + "; ".join(speed))
    transfers = live["transfers"]
    if transfers:
        named = ", ".join(_transfer(t) for t in transfers[:SHOWN_TRANSFERS])
        more = len(transfers) - SHOWN_TRANSFERS
        lines.append("  in flight: " + named + (f" and {more} more" if more > 0 else ""))
    return lines


def _speed(live: dict[str, Any]) -> list[str]:
    parts = []
    up, files = live["up_rate"], live["up_files_rate"]
    if up is None:
        parts.append("up: measuring")
    elif up > 0 or live["transfers"]:
        parts.append(f"up {human_size(up)}/s" + (f" ({files:.1f} files/s)" if files else ""))
    down = live["down_rate"]
    if down is not None and (down > 0 or parts):
        parts.append(f"down {human_size(down)}/s")
    return parts


def _transfer(t: dict[str, Any]) -> str:
    if t["op"] not in ("upload", "download"):
        return f"{t['path']} ({t['op']})"
    way = "down " if t["op"] == "download" else ""
    if t["size"] <= 0:
        return f"{t['path']} ({way.strip()})" if way else str(t["path"])
    return f"{t['path']} ({way}{human_size(t['done'])} of {human_size(t['size'])})"


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {s:02d} s"
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m:02d} min"
