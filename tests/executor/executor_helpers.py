"""Helpers of the executor tests: run plan/apply/destroy on a site in a fresh namespace, and read
back what the kernel holds there and in the namespaces the site declares (NS-NAME)."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from conftest import run_vnetc
from harness import compare
from harness.netns import add_veth, delete_netns, fresh_netns, list_netns, require_netns, snapshot
from vnetc.compiler import compile_source


def write_site(tmp_path: Path, text: str, name: str = "site.vnet") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


@contextmanager
def namespace() -> Iterator[str]:
    """A fresh namespace; afterwards it and every NS-* namespace vnetc made for it are deleted.
    vnetc's run directory (locks, namespace markers, interface records) is a temporary one
    unless the test chose one (VNETC_RUN_DIR), so that tests leave nothing in /run/vnetc."""
    require_netns(("ip", "tc"))
    chosen = os.environ.get("VNETC_RUN_DIR")
    with tempfile.TemporaryDirectory(prefix="vnetc-run-") as run_dir, fresh_netns() as ns:
        if chosen is None:
            os.environ["VNETC_RUN_DIR"] = run_dir
        try:
            yield ns
        finally:
            if chosen is None:
                del os.environ["VNETC_RUN_DIR"]
            for other in list_netns():
                if other.startswith(f"{ns}-"):
                    delete_netns(other)


def fake_interfaces(ns: str, site: str) -> None:
    """Every `interface` of the site as one end of a veth pair (NAME <-> p-NAME), down."""
    result = compile_source(Path(site).read_text(), site)
    for _, device in result.site.devices():
        if device.kind == "interface":
            add_veth(ns, device.name, f"p-{device.name}", up=False)


def vnetc(action: str, site: str, ns: str, *extra: str):
    args = [action, site, "--netns", ns, *extra]
    if action in ("apply", "destroy") and "--yes" not in extra:
        args.append("--yes")
    return run_vnetc(*args)


def kernel_namespace(ns: str, declared: str | None) -> str:
    return ns if declared is None else f"{ns}-{declared}"


def problems(site: str, ns: str) -> list[str]:
    """Every difference between the IR and the kernel, over all the site's namespaces."""
    result = compile_source(Path(site).read_text(), site)
    host = result.site.hosts[0]
    states = {d: compare.kernel_state(kernel_namespace(ns, d)) for d in [None, *host.declared_netns]}
    found = []
    for device in host.devices:
        state = states[device.netns]
        for problem in compare.device_problems(device, state) + compare.route_problems(device, state):
            other = device.get("peer") or device.lower
            crossing = other is not None and other.netns != device.netns
            if crossing and ("peer is None" in problem or "lower link is None" in problem):
                continue    # a peer or lower link in another namespace: `ip -j` names no link, only a netnsid
            found.append(f"{device.netns or '(host)'}: {problem}")
    return found


#: what the kernel changes by itself, some time after a change (carrier, operational state)
CARRIER_FLAGS = {"LOWER_UP", "NO-CARRIER", "M-DOWN", "DORMANT"}


def full_snapshot(ns: str, declared: tuple[str, ...] = ()) -> dict:
    """harness.netns.snapshot of NS and of its declared namespaces that exist, without what the kernel
    changes by itself (operstate, carrier flags, a bridge port's forwarding state)."""
    out = {}
    for d in [None, *declared]:
        if kernel_namespace(ns, d) not in list_netns():
            continue
        shot = snapshot(kernel_namespace(ns, d))
        for link in shot["links"].values():
            link.pop("operstate", None)
            link["flags"] = [f for f in link["flags"] if f not in CARRIER_FLAGS]
            if isinstance(link.get("slave"), dict):     # a bridge port's STP state follows its carrier
                link["slave"] = {k: v for k, v in link["slave"].items() if k != "state"}
        out[d] = shot
    return out
