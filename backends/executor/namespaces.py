"""Named network namespaces (`ip netns add` semantics: a bind mount under /run/netns).

pyroute2 does the mount dance (pyroute2.netns.create/remove); it is imported
only when a plan creates or removes a namespace.
"""

from __future__ import annotations

import os

from . import netlink as nl
from .ops import Op, phase


def exists(name: str) -> bool:
    return os.path.exists(nl.netns_path(name))


def create(name: str) -> None:
    from pyroute2 import netns
    netns.create(name)


def remove(name: str) -> None:
    from pyroute2 import netns
    netns.remove(name)


def create_op(name: str, owner: str) -> Op:
    return Op(None, f"create netns {name}", phase("namespaces"), run=lambda ctx: create_marked(name, owner),
              undo=Op(None, f"remove netns {name}", phase("namespaces"), run=lambda ctx: remove_marked(name)))


def remove_op(name: str, owner: str) -> Op:
    return Op(None, f"remove netns {name}", phase("teardown"), run=lambda ctx: remove_marked(name),
              undo=Op(None, f"create netns {name}", phase("teardown"), run=lambda ctx: create_marked(name, owner)))


def _marker(name: str) -> str:
    from .apply import run_dir
    return os.path.join(run_dir(), "netns", name)


def owner_of(name: str) -> str | None:
    """The owner that created namespace NAME (vnetc leaves a marker under the run directory)."""
    try:
        with open(_marker(name)) as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def create_marked(name: str, owner: str) -> None:
    create(name)
    with nl.Socket(name) as sock:   # its loopback up, as `ip netns add` users and the iproute2 script do
        sock.request(nl.RTM_NEWLINK, 0, nl.ifinfo(1, nl.IFF_UP, nl.IFF_UP))
    os.makedirs(os.path.dirname(_marker(name)), exist_ok=True)
    with open(_marker(name), "w") as handle:
        handle.write(owner + "\n")


def remove_marked(name: str) -> None:
    remove(name)
    try:
        os.unlink(_marker(name))
    except FileNotFoundError:
        pass
