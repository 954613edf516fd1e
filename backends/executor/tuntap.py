"""tun and tap devices: made with the TUNSETIFF ioctl on /dev/net/tun, kept by TUNSETPERSIST.

The ioctl makes the device in the namespace of the thread that calls it, so
the call runs inside the device's namespace. Owner and group (TUNSETOWNER,
TUNSETGROUP) can change later by attaching to the device again; its flags
(multi-queue, vnet-hdr, packet-info) cannot: the plan recreates it.
"""

from __future__ import annotations

import fcntl
import os
import struct

from vnetc.compiler.ir import Device

from . import kinds as K
from . import netlink as nl
from .ops import Context, Op, phase

TUN_DEVICE = "/dev/net/tun"
TUNSETIFF, TUNSETPERSIST, TUNSETOWNER, TUNSETGROUP = 0x400454CA, 0x400454CB, 0x400454CC, 0x400454CE
IFF_TUN, IFF_TAP, IFF_NO_PI, IFF_MULTI_QUEUE, IFF_VNET_HDR = 0x0001, 0x0002, 0x1000, 0x0100, 0x4000


def _flags(device: Device) -> int:
    flags = IFF_TAP if device.kind == "tap" else IFF_TUN
    if not device.get("packet-info"):
        flags |= IFF_NO_PI
    if device.get("multi-queue"):
        flags |= IFF_MULTI_QUEUE
    if device.get("vnet-hdr"):
        flags |= IFF_VNET_HDR
    return flags


def _attach(kns: str | None, device: Device, persist: bool | None) -> None:
    def call() -> None:
        fd = os.open(TUN_DEVICE, os.O_RDWR | os.O_CLOEXEC)
        try:
            fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", device.name.encode(), _flags(device)))
            if device.get("owner") is not None:
                fcntl.ioctl(fd, TUNSETOWNER, K._uid(device.get("owner")))
            if device.get("group") is not None:
                fcntl.ioctl(fd, TUNSETGROUP, K._gid(device.get("group")))
            if persist is not None:
                fcntl.ioctl(fd, TUNSETPERSIST, 1 if persist else 0)
        finally:
            os.close(fd)
    try:
        nl.in_netns(kns, call)
    except OSError as exc:
        raise nl.KernelError(exc.errno or 1, f"{TUN_DEVICE}: {exc.strerror}") from None


def create_op(kns: str | None, device: Device) -> Op:
    def delete(ctx: Context) -> tuple[int, int, bytes]:
        return nl.RTM_DELLINK, 0, nl.ifinfo(ctx.index(kns, device.name))
    return Op(kns, f"create {device.kind} {device.name} (/dev/net/tun)", phase("create"),
              run=lambda ctx: _attach(kns, device, True),
              undo=Op(kns, f"delete {device.kind} {device.name}", phase("create"), request=delete))


def change_op(kns: str | None, device: Device, link) -> Op:
    """New owner/group of an existing persistent tun/tap."""
    return Op(kns, f"set owner/group of {device.name}", phase("create"), run=lambda ctx: _attach(kns, device, None))
