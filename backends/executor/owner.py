"""The ownership mark: how vnetc tells the devices it created for a site.

Every device vnetc creates gets two marks:

- its interface alias (`ip link` shows it): ``vnetc:OWNER`` followed by the
  device's `description`, if any;
- its link group: a number derived from OWNER, so that `destroy` can delete
  all of a namespace's devices in one kernel operation (RTM_DELLINK by group),
  which frees them in one batch instead of one RCU grace period per device.

OWNER is 8 hex digits of SHA-256 over the real path of the site file (or
residual file) and the host name: the same file applied twice is the same
owner; another file is another owner. The alias is what decides ownership;
the group is only trusted for a bulk delete once every device in it carries
the alias. Routes and addresses vnetc adds are marked with their protocol
number (RTPROT 118 for routes, IFA_PROTO 118 for addresses), the tc filters
with an action cookie.
"""

from __future__ import annotations

import hashlib
import os

PREFIX = "vnetc:"
PROTO = 118          # rtm_protocol of routes and IFA_PROTO of addresses vnetc adds
ALIAS_MAX = 255      # IFALIASZ - 1


def owner_id(path: str, host: str | None) -> str:
    real = os.path.realpath(path)
    return hashlib.sha256(f"{real}\0{host or ''}".encode()).hexdigest()[:8]


def alias(owner: str, description: str | None) -> str:
    text = PREFIX + owner + (f" {' '.join(description.split())}" if description else "")
    return text.encode()[:ALIAS_MAX].decode(errors="ignore")


def group(owner: str) -> int:
    """The link group of the owner's devices: never 0 (the default group)."""
    return int(owner, 16) | 0x1


_OWNER = slice(len(PREFIX), len(PREFIX) + 8)      # where the alias holds the owner


def marks(alias_text: str | None, owner: str) -> bool:
    """Whether a device's alias marks it as made by vnetc for OWNER."""
    return alias_text is not None and alias_text.startswith(PREFIX) and alias_text[_OWNER] == owner


def cookie(owner: str) -> bytes:
    """The tc action cookie of the filters vnetc adds (at most 16 bytes)."""
    return PREFIX.encode() + bytes.fromhex(owner)
