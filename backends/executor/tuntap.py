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
TUNSETIFINDEX = 0x400454DA      # the ifindex the next TUNSETIFF gives its device
#: IFLA_TUN_* of the kernel's dump
TUN_OWNER, TUN_GROUP, TUN_TYPE, TUN_PI, TUN_VNET_HDR, TUN_MULTI_QUEUE = 1, 2, 3, 4, 5, 7
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
    owner, group = device.get("owner"), device.get("group")
    _ioctls(kns, device.name, _flags(device), None if owner is None else K._uid(owner),
            None if group is None else K._gid(group), persist)


def _ioctls(kns: str | None, name: str, flags: int, uid: int | None, gid: int | None, persist: bool | None,
            index: int | None = None) -> None:
    def call() -> None:
        fd = os.open(TUN_DEVICE, os.O_RDWR | os.O_CLOEXEC)
        try:
            if index is not None:
                fcntl.ioctl(fd, TUNSETIFINDEX, struct.pack("I", index))
            fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), flags))
            if uid is not None:
                fcntl.ioctl(fd, TUNSETOWNER, uid)
            if gid is not None:
                fcntl.ioctl(fd, TUNSETGROUP, gid)
            if persist is not None:
                fcntl.ioctl(fd, TUNSETPERSIST, 1 if persist else 0)
        finally:
            os.close(fd)
    try:
        nl.in_netns(kns, call)
    except OSError as exc:
        raise nl.KernelError(exc.errno or 1, f"{TUN_DEVICE}: {exc.strerror}") from None


def recreate(kns: str | None, link) -> None:
    """A deleted persistent tun/tap again, from its dump (state.Link): type, flags, owner,
    group and ifindex."""
    def flag(number: int) -> bool:
        raw = link.data.get(number)
        return bool(raw and raw[0])
    raw_type = link.data.get(TUN_TYPE)
    flags = raw_type[0] if raw_type else IFF_TAP
    flags |= (0 if flag(TUN_PI) else IFF_NO_PI) | (IFF_MULTI_QUEUE if flag(TUN_MULTI_QUEUE) else 0) \
        | (IFF_VNET_HDR if flag(TUN_VNET_HDR) else 0)
    owner, group = link.data.get(TUN_OWNER), link.data.get(TUN_GROUP)
    _ioctls(kns, link.name, flags, None if owner is None else int.from_bytes(owner, "little"),
            None if group is None else int.from_bytes(group, "little"), True, link.index)


def create_op(kns: str | None, device: Device) -> Op:
    def delete(ctx: Context) -> tuple[int, int, bytes]:
        return nl.RTM_DELLINK, 0, nl.ifinfo(ctx.index(kns, device.name))
    return Op(kns, f"create {device.kind} {device.name} (/dev/net/tun)", phase("create"),
              run=lambda ctx: _attach(kns, device, True),
              undo=Op(kns, f"delete {device.kind} {device.name}", phase("create"), request=delete))


def change_op(kns: str | None, device: Device, link) -> Op:
    """New owner/group of an existing persistent tun/tap."""
    return Op(kns, f"set owner/group of {device.name}", phase("create"), run=lambda ctx: _attach(kns, device, None))
