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
TUN_TYPE = 3                    # IFLA_TUN_TYPE (the others: the tap row of kinds.py)
IFF_TUN, IFF_TAP, IFF_NO_PI, IFF_MULTI_QUEUE, IFF_VNET_HDR = 0x0001, 0x0002, 0x1000, 0x0100, 0x4000


def _flags(device: Device) -> int:
    return _flag_bits(device.kind == "tap", device.get("packet-info"), device.get("multi-queue"),
                      device.get("vnet-hdr"))


def _flag_bits(tap: bool, packet_info: bool, multi_queue: bool, vnet_hdr: bool) -> int:
    """TUNSETIFF's flags."""
    return ((IFF_TAP if tap else IFF_TUN) | (0 if packet_info else IFF_NO_PI)
            | (IFF_MULTI_QUEUE if multi_queue else 0) | (IFF_VNET_HDR if vnet_hdr else 0))


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
    attrs = K.KINDS["tap"].by_prop

    def raw(prop: str) -> bytes | None:
        return link.data.get(attrs[prop].nla)

    def flag(prop: str) -> bool:
        value = raw(prop)
        return bool(value and value[0])
    tun_type = link.data.get(TUN_TYPE)
    flags = _flag_bits(not tun_type or tun_type[0] == IFF_TAP, flag("packet-info"), flag("multi-queue"),
                       flag("vnet-hdr"))
    owner, group = raw("owner"), raw("group")
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
