"""What apply changed on devices vnetc configures but does not own, and what they were before.

An `interface` (or `failover` master) is configured, never created: when apply
first changes its MTU, MAC or up/down state, the value it had before is
recorded with the value vnetc set; a later apply that sets another value keeps
the first "before". `destroy` puts back each value that is still the one vnetc
set (one someone changed since is left as it is) and forgets the record.
Addresses, routes and filters need no record: vnetc marks its own and removes
them; a port leaves its master when vnetc deletes the master. A record names the device by its namespace's inode
and its ifindex too: a device or namespace made anew under the same name is
not the one vnetc changed, and its record is ignored (apply) or forgotten
without putting anything back (destroy).

For a device vnetc makes whose kind has properties the kernel does not report
(kinds.py `unreported`: MACsec SAs and MKA, a team's runner, link watch and
config, netdevsim's ports, VFs and offloads), apply records a digest of each
(kinds.fingerprint) under "unreported"; a later plan recreates the device when
the site's digests differ ("the plan says which"), and destroy forgets them.

The records of one owner in one set of namespaces are in
RUN_DIR/originals/LOCK-OWNER.json, LOCK being the name of the lock every apply
and destroy there holds (`host`, `netns-NS`). RUN_DIR is /run/vnetc (or
$VNETC_RUN_DIR): a reboot resets the kernel and the records together. The file
is rewritten whole (a temporary sibling, then a rename) by an op of the plan,
so that a rolled-back apply takes its record back.

    {"version": 1, "devices": [{"netns": "NS" | null, "name": "eth0", "identity": [NETNS_INODE, IFINDEX],
                                "mtu": {"before": 1500, "set": 9000}, "up": {"before": false, "set": true}},
                               {"netns": null, "name": "ms0", "identity": [...], "unreported": {"tx-sa": "9f…"}}]}

The file is readable by root only (mode 0600): a digest of a MACsec key is not the key, but
nothing else needs to read it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from .ops import Op, phase

VERSION = 1
PROPERTIES = ("mtu", "mac", "up")
UNREPORTED = "unreported"
Key = tuple[str | None, str]            # (the kernel's name of the namespace, the device's name)
Identity = tuple[int, int]              # (the namespace's inode, the device's ifindex)
Record = dict[str, Any]                 # "identity": Identity; property -> {"before": value, "set": value}


def path(lock: str, owner: str) -> Path:
    from .apply import run_dir
    return Path(run_dir()) / "originals" / f"{lock}-{owner}.json"


def read(where: Path) -> dict[Key, Record]:
    """The records in a file (none if it is missing or unreadable: nothing to put back)."""
    try:
        text = where.read_text(encoding="utf-8")
    except OSError:
        return {}
    import json
    try:
        data = json.loads(text)
        if data.get("version") != VERSION:
            return {}
        return {(entry["netns"], entry["name"]): {"identity": tuple(entry["identity"]),
                                                  **{p: entry[p] for p in (*PROPERTIES, UNREPORTED) if p in entry}}
                for entry in data["devices"]}
    except (ValueError, KeyError, TypeError, AttributeError):
        return {}


def _write(where: Path, records: dict[Key, Record]) -> None:
    import json

    from vnetc.backends.output import atomic_write
    if not records:
        where.unlink(missing_ok=True)
        return
    where.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    devices = [{"netns": netns, "name": name, **record, "identity": list(record["identity"])}
               for (netns, name), record in sorted(records.items(), key=lambda item: (item[0][0] or "", item[0][1]))]
    atomic_write(where, json.dumps({"version": VERSION, "devices": devices}, indent=2) + "\n", 0o600)


def _set(where: Path, key: Key, record: Record | None) -> Record | None:
    """Set (None: remove) the record of one device; the record it had."""
    records = read(where)
    old = records.pop(key, None)
    if record is not None:
        records[key] = record
    _write(where, records)
    return old


def _op(where: Path, key: Key, record: Record | None | Callable[[Any], Record], at: int, text: str) -> Op:
    """An op setting (None: removing) the record of one device (or the record a function of the
    run's context gives); its undo puts the old one back."""
    old: list[Record | None] = []
    return Op(key[0], text, at, run=lambda ctx: old.append(_set(where, key, record(ctx) if callable(record) else record)),
              undo=Op(key[0], f"undo: {text}", at, run=lambda ctx: _set(where, key, old[-1] if old else None)))


def changes(record: Record) -> dict[str, dict[str, Any]]:
    """The recorded properties: property -> {"before": value, "set": value}."""
    return {prop: values for prop, values in record.items() if prop in PROPERTIES}


def record_op(where: Path, key: Key, identity: Identity, known: Record | None,
              changes_now: dict[str, tuple[Any, Any]]) -> Op:
    """Record that apply sets properties of a device (property -> (its value now, the value set)),
    keeping the "before" an earlier apply recorded for this very device."""
    if known is not None and known["identity"] != identity:
        known = None                    # another device of that name: what it had is not this one's
    record: Record = {"identity": identity, **{p: dict(v) for p, v in changes(known or {}).items()}}
    for prop, (now, new) in changes_now.items():
        record[prop] = {"before": record.get(prop, {}).get("before", now), "set": new}
    return _op(where, key, record, phase("create"), f"remember {key[1]}'s {', '.join(changes_now)} before vnetc")


def forget_op(where: Path, key: Key, at: int = phase("extra")) -> Op:
    return _op(where, key, None, at, f"forget {key[1]}'s values before vnetc")


def unreported_op(where: Path, key: Key, digests: dict[str, str]) -> Op:
    """Record the digests of the unreported properties of a device apply makes; its identity is
    read when the op runs (the device exists by then)."""
    from . import netlink as nl

    def record(ctx) -> Record:
        index = ctx.indexes.get(key) or ctx.learn(*key)
        return {"identity": (nl.netns_inode(key[0]), index), UNREPORTED: digests}
    return _op(where, key, record, phase("extra"), f"remember what {key[1]} was made with")


def changed_unreported(record: Record | None, identity: Identity, digests: dict[str, str]) -> list[str]:
    """The unreported properties whose digest differs from the one recorded for this very device
    (none when there is no record of it)."""
    if record is None or UNREPORTED not in record or record["identity"] != identity:
        return []
    known = record[UNREPORTED]
    return sorted(p for p in set(known) | set(digests) if known.get(p) != digests.get(p))
