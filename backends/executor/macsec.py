"""MACsec static SAs over generic netlink (the "macsec" family: what `ip macsec add` sends).

A transmit SA is MACSEC_CMD_ADD_TXSA; a receive channel MACSEC_CMD_ADD_RXSC
(its SCI: the peer's MAC and port) and each of its SAs MACSEC_CMD_ADD_RXSA.
Keys come from the IR (an inline `key`) or are read from `key-file` when the
op runs (hex text, as networkd's KeyFile= reads it); a key file that its group
or others can read is a warning. Keys never appear in the plan, in messages
or in logs: an op's text names the SA, never its key.

vnetc adds the SAs when it creates the MACsec device; to change them, the
plan recreates the device (the SAs are not read back from the kernel).
"""

from __future__ import annotations

import os
import stat
import struct

from vnetc.compiler.ir import Device

from . import netlink as nl
from .ops import Context, Op, phase

GENL_ID_CTRL, CTRL_CMD_GETFAMILY, CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME = 0x10, 3, 1, 2
CMD_ADD_RXSC, CMD_ADD_TXSA, CMD_ADD_RXSA = 1, 4, 7
ATTR_IFINDEX, ATTR_RXSC_CONFIG, ATTR_SA_CONFIG = 1, 2, 3
RXSC_SCI, RXSC_ACTIVE = 1, 2
SA_AN, SA_ACTIVE, SA_PN, SA_KEY, SA_KEYID = 1, 2, 3, 4, 5
KEYID_LEN = 16


def _genl(cmd: int) -> bytes:
    return struct.pack("=BBH", cmd, 1, 0)


def family_id(sock: nl.Socket) -> int:
    for _, body in sock.dump(GENL_ID_CTRL, _genl(CTRL_CMD_GETFAMILY)):
        found = nl.attrs(body, 4)
        if CTRL_ATTR_FAMILY_NAME in found and nl.get_str(found[CTRL_ATTR_FAMILY_NAME]) == "macsec":
            return nl.get_u16(found[CTRL_ATTR_FAMILY_ID])
    raise nl.KernelError(2, "the kernel has no MACsec generic netlink family")


def check_key_file(path: str) -> tuple[str | None, str | None]:
    """(error, warning) about a key file, before anything changes: it must be readable; that its
    group or others can read it is a warning."""
    try:
        mode = os.stat(path).st_mode
        with open(path):
            pass
    except OSError as exc:
        return f"MACsec key file {path}: {exc.strerror}", None
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        return None, (f"MACsec key file {path} can be read by its group or others (mode {stat.S_IMODE(mode):04o}); "
                      f"chmod 0600 it")
    return None, None


def read_key(path: str) -> bytes:
    """A key file: hex text (never shown anywhere)."""
    with open(path) as handle:
        return bytes.fromhex("".join(handle.read().split()))


def _sa(an: int, sa) -> bytes:
    key = bytes.fromhex(sa.key) if sa.key else read_key(sa.key_file)
    key_id = bytes.fromhex(sa.key_id).ljust(KEYID_LEN, b"\0")
    return (nl.u8(SA_AN, an) + nl.u8(SA_ACTIVE, 1) + nl.u32(SA_PN, sa.pn or 1) + nl.nla(SA_KEY, key)
            + nl.nla(SA_KEYID, key_id))


def _sci(mac: str, port: int) -> bytes:
    return bytes(int(p, 16) for p in mac.split(":")) + struct.pack("!H", port)


def _send(ctx: Context, kns: str | None, cmd: int, body: bytes) -> None:
    sock = ctx.generic(kns)
    sock.request(family_id(sock), 0, _genl(cmd) + body)


def plan_sas(planner, device: Device, link, step) -> None:
    if link is not None:
        return   # SAs are added at creation; see the module docstring
    kns, name = planner.k(device.netns), device.name
    sas = list(device.get("tx-sa")) + [sa for channel in device.get("rx-channel") for sa in channel.sa]
    for path in dict.fromkeys(sa.key_file for sa in sas if sa.key_file and not planner.o.offline):
        error, warning = check_key_file(path)
        if error:
            planner.plan.errors.append(f"{planner.subject(device)}: {error}")
        if warning:
            planner.plan.notes.append(f"warning: {warning}")
    for sa in device.get("tx-sa"):
        step.details.append(f"+ tx-sa {sa.an} key-id {sa.key_id} " + _key_text(sa))
        step.ops.append(Op(kns, f"add MACsec tx SA {sa.an} to {name}", phase("extra"),
                           run=lambda ctx, sa=sa: _send(ctx, kns, CMD_ADD_TXSA,
                                                        nl.u32(ATTR_IFINDEX, ctx.index(kns, name))
                                                        + nl.nested(ATTR_SA_CONFIG, _sa(sa.an, sa)))))
    for channel in device.get("rx-channel"):
        sci = _sci(channel.mac, channel.port)
        step.details.append(f"+ rx-channel {channel.mac} port {channel.port}")
        step.ops.append(Op(kns, f"add MACsec rx channel {channel.mac} to {name}", phase("extra"),
                           run=lambda ctx, sci=sci: _send(ctx, kns, CMD_ADD_RXSC,
                                                          nl.u32(ATTR_IFINDEX, ctx.index(kns, name))
                                                          + nl.nested(ATTR_RXSC_CONFIG, nl.nla(RXSC_SCI, sci)
                                                                      + nl.u8(RXSC_ACTIVE, 1)))))
        for sa in channel.sa:
            step.details.append(f"+ rx-sa {sa.an} key-id {sa.key_id} " + _key_text(sa))
            step.ops.append(Op(kns, f"add MACsec rx SA {sa.an} to {name}", phase("extra"),
                               run=lambda ctx, sa=sa, sci=sci: _send(
                                   ctx, kns, CMD_ADD_RXSA, nl.u32(ATTR_IFINDEX, ctx.index(kns, name))
                                   + nl.nested(ATTR_RXSC_CONFIG, nl.nla(RXSC_SCI, sci))
                                   + nl.nested(ATTR_SA_CONFIG, _sa(sa.an, sa)))))


def _key_text(sa) -> str:
    return f"key-file {sa.key_file}" if sa.key_file else "key <redacted>"
