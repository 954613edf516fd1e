"""NetworkManager keyfiles read by libnm, NetworkManager's own keyfile reader
(the recipe of shared/design/testing.md).

    reads = read_keyfiles({"vnetc-br0.nmconnection": text, ...})   # one libnm process per session
    assert reads["vnetc-br0.nmconnection"].problems == []
    assert graph_problems(reads) == []

libnm is reached from Debian's /usr/bin/python3 (python3-gi, gir1.2-nm-1.0),
not from the venv, so libnm_read.py (next to this file) runs as a subprocess,
one for the test session: it is given keyfiles in batches (a line of JSON
each) and answers, per file, the keyfile handler's
warnings, the sections and keys libnm does not know (it ignores them
silently), the load or verify() errors, what normalizing (which NetworkManager
does on every load) would change, and the connection as libnm read it.
graph_problems() checks what no single file can: every port's controller and
every stacked device's parent is one of the connections, UUIDs, ids and
interface names are unique, and the two ends of a veth name each other.
"""

from __future__ import annotations

import atexit
import functools
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .netns import skip_or_fail

SYSTEM_PYTHON = "/usr/bin/python3"
SCRIPT = Path(__file__).with_name("libnm_read.py")

#: connection type -> the setting whose `parent` names the lower link (a connection UUID or an interface name)
PARENT_SETTINGS = {"vlan": "vlan", "vxlan": "vxlan", "macvlan": "macvlan", "macsec": "macsec",
                   "infiniband": "infiniband", "ipvlan": "ipvlan"}
#: slave-type -> the connection types that can be that controller
CONTROLLER_TYPES = {"bridge": {"bridge"}, "bond": {"bond"}, "team": {"team"}}


@dataclass(frozen=True)
class Read:
    """One keyfile as libnm read it."""

    warnings: list[str]
    unknown: list[str]
    errors: list[str]
    normalized: list[str]
    #: setting -> property -> value: libnm's D-Bus form, with every property of a plain type (number, boolean,
    #: string, enum) also when at its default (libnm_read.settings_of)
    settings: dict[str, dict[str, Any]] | None

    @property
    def problems(self) -> list[str]:
        return ([f"warning: {w}" for w in self.warnings] + [f"unknown: {u}" for u in self.unknown]
                + [f"error: {e}" for e in self.errors] + [f"normalized: {n}" for n in self.normalized])

    def get(self, setting: str, prop: str, default: Any = None) -> Any:
        return ((self.settings or {}).get(setting) or {}).get(prop, default)


@functools.lru_cache(maxsize=1)
def libnm_problem() -> str | None:
    """Why libnm cannot be used here, or None."""
    try:
        run = subprocess.run([SYSTEM_PYTHON, "-c", "import gi; gi.require_version('NM', '1.0'); "
                                                   "from gi.repository import NM"],
                             capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        return f"no {SYSTEM_PYTHON} (Debian package python3)"
    if run.returncode != 0:
        return ("libnm is not reachable from /usr/bin/python3 (Debian packages python3-gi, gir1.2-nm-1.0): "
                + run.stderr.strip().splitlines()[-1])
    return None


def require_libnm() -> None:
    problem = libnm_problem()
    if problem is not None:
        skip_or_fail(problem)


@functools.lru_cache(maxsize=1)
def _reader() -> subprocess.Popen:
    """The libnm process of this test session (started on first use, ended when Python exits)."""
    process = subprocess.Popen([SYSTEM_PYTHON, str(SCRIPT)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    atexit.register(_stop, process)
    return process


def _stop(process: subprocess.Popen) -> None:
    process.stdin.close()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def read_keyfiles(files: dict[str, str]) -> dict[str, Read]:
    """Every keyfile of FILES (name -> text), read by libnm (one batch for the session's libnm process)."""
    process = _reader()
    process.stdin.write(json.dumps(files) + "\n")
    process.stdin.flush()
    line = process.stdout.readline()
    if not line:
        _reader.cache_clear()
        raise RuntimeError(f"{SCRIPT.name} exited {process.wait()}: {process.stderr.read()}")
    return {name: Read(**result) for name, result in json.loads(line).items()}


def graph_problems(reads: dict[str, Read]) -> list[str]:
    """What is wrong with the connections together (see the module's docstring)."""
    problems: list[str] = []
    by_uuid: dict[str, tuple[str, Read]] = {}
    by_ifname: dict[str, tuple[str, Read]] = {}
    by_id: dict[str, tuple[str, Read]] = {}
    for name, read in sorted(reads.items()):
        if read.settings is None:
            problems.append(f"{name}: not read")
            continue
        for table, key in ((by_uuid, read.get("connection", "uuid")), (by_id, read.get("connection", "id")),
                           (by_ifname, read.get("connection", "interface-name"))):
            if key is None:
                continue
            if key in table:
                problems.append(f"{name}: {key} is also {table[key][0]}'s")
            else:
                table[key] = (name, read)

    def find(ref: str) -> tuple[str, Read] | None:
        return by_uuid.get(ref) or by_ifname.get(ref)

    for name, read in sorted(reads.items()):
        if read.settings is None:
            continue
        master, port_type = read.get("connection", "master"), read.get("connection", "slave-type")
        if master is not None:
            found = find(master)
            if found is None:
                problems.append(f"{name}: its controller {master} is no connection")
            elif found[1].get("connection", "type") not in CONTROLLER_TYPES.get(port_type, ()):
                problems.append(f"{name}: its controller {found[0]} is a {found[1].get('connection', 'type')}, "
                                f"not a {port_type}")
        conn_type = read.get("connection", "type")
        parent = read.get(PARENT_SETTINGS.get(conn_type, ""), "parent")
        if parent is not None and find(parent) is None:
            problems.append(f"{name}: its parent {parent} is no connection")
        peer = read.get("veth", "peer")
        if peer is not None and peer in by_ifname:
            back = by_ifname[peer][1].get("veth", "peer")
            if back != read.get("connection", "interface-name"):
                problems.append(f"{name}: its peer {peer} names {back} as its own peer")
    return problems
