"""Reading a file target's residual (etc/vnetc/residual/TARGET.json, see backends/residual.py).

The file holds the host's IR and the items the target left undone. `vnetc
apply --residual FILE` plans only those items: a whole device ("device": made
and configured by vnetc, and owned by it) or one property of a device the
daemon made (the IFB redirect filter, a qdisc, MACsec send-sci, a team
port). Every other device is the daemon's: it must exist, and vnetc neither
changes nor deletes it.
"""

from __future__ import annotations

import json

from vnetc.compiler.ir import Site
from vnetc.compiler.irjson import BadJSON, site_from_json

FORMAT_VERSION = 1


class BadResidual(Exception):
    pass


def read(path: str) -> tuple[Site, dict[tuple[str | None, str], set[str]], str]:
    """(site of one host, {(netns, device): {what}}, target name)."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise BadResidual(f"{path}: cannot read a residual file: {exc}") from None
    if not isinstance(data, dict) or data.get("vnetc-residual") != FORMAT_VERSION:
        raise BadResidual(f"{path}: not a vnetc residual file (format {FORMAT_VERSION})")
    try:
        site = site_from_json({"hosts": [data["site"]]})
        items: dict[tuple[str | None, str], set[str]] = {}
        for item in data["items"]:
            items.setdefault((item.get("netns"), item["name"]), set()).add(item["what"])
    except (BadJSON, KeyError, TypeError) as exc:
        raise BadResidual(f"{path}: {exc}") from None
    return site, items, str(data.get("target"))
