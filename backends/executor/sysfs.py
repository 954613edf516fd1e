"""netdevsim: simulated devices made through sysfs, and their VFs and offloads.

    echo "ID PORTS" > SYSFS/bus/netdevsim/new_device     (from inside the target namespace)
    echo N > SYSFS/bus/netdevsim/devices/netdevsimID/sriov_numvfs
    echo ID > SYSFS/bus/netdevsim/del_device             (the undo)

SYSFS is /sys unless the environment variable VNETC_SYSFS_ROOT names another
directory (tests point it at a fake tree). The kernel names the new ports
itself; vnetc finds them by their parent device (IFLA_PARENT_DEV_NAME
"netdevsimID") and renames port 0 to the device's name and port N to NAMEpN.
VF settings go over netlink (IFLA_VFINFO_LIST), hw-tc-offload through
ethtool, xdp-offload through `ip link set … xdpoffload obj FILE`.
vnetc sets all of them when it creates the device; a change later recreates it.
"""

from __future__ import annotations

import os
import struct
import time

from vnetc.compiler.ir import Device

from . import kinds as K
from . import netlink as nl
from . import tools
from .ops import Context, Op, phase

IFLA_PARENT_DEV_NAME, IFLA_VFINFO_LIST, IFLA_VF_INFO = 56, 22, 1
IFLA_VF_MAC, IFLA_VF_VLAN, IFLA_VF_SPOOFCHK, IFLA_VF_TRUST = 1, 2, 4, 9
WAIT = 5.0     # seconds for the kernel to register the new ports


def root() -> str:
    return os.environ.get("VNETC_SYSFS_ROOT", "/sys")


def bus(sysfs: str) -> str:
    return os.path.join(sysfs, "bus", "netdevsim")


def used_ids(sysfs: str) -> set[int]:
    devices = os.path.join(bus(sysfs), "devices")
    try:
        names = os.listdir(devices)
    except OSError:
        return set()
    return {int(n[len("netdevsim"):]) for n in names if n.startswith("netdevsim") and n[9:].isdigit()}


def port_name(device: Device, port: int) -> str:
    return device.name if port == 0 else f"{device.name}p{port}"[:15]


def _write(kns: str | None, path: str, text: str) -> None:
    def call() -> None:
        with open(path, "w") as handle:
            handle.write(text)
    try:
        nl.in_netns(kns, call)
    except OSError as exc:
        raise nl.KernelError(exc.errno or 1, f"{path}: {exc.strerror}") from None


def _find_ports(ctx: Context, kns: str | None, dev_id: int, count: int) -> list[int]:
    """The ifindexes of netdevsimID's ports, in port order, once the kernel has them all."""
    deadline = time.monotonic() + WAIT
    parent = f"netdevsim{dev_id}"
    while True:
        found = []
        for _, body in ctx.socket(kns).dump(nl.RTM_GETLINK, nl.ifinfo() + nl.u32(nl.IFLA_EXT_MASK,
                                                                               nl.RTEXT_FILTER_SKIP_STATS)):
            a = nl.attrs(body, nl.IFINFO_SIZE)
            if IFLA_PARENT_DEV_NAME in a and nl.get_str(a[IFLA_PARENT_DEV_NAME]) == parent:
                found.append(struct.unpack_from("=i", body, 4)[0])
        if len(found) >= count:
            return sorted(found)
        if time.monotonic() > deadline:
            raise nl.KernelError(19, f"netdevsim{dev_id} has {len(found)} of its {count} ports after {WAIT:.0f} s")
        time.sleep(0.05)


def create_ops(planner, device: Device, step) -> list[Op]:
    kns = planner.k(device.netns)
    sysfs = planner.o.sysfs_root
    if not os.path.isdir(bus(sysfs)) and not planner.o.offline:
        planner.plan.errors.append(f"{planner.subject(device)}: no {bus(sysfs)}: this kernel has no netdevsim")
        return []
    used = set() if planner.o.offline else used_ids(sysfs)
    taken = used | planner.netdevsim_ids | {d.get("id") for d in planner.host.devices if d.kind == "netdevsim"}
    dev_id = device.get("id")
    if dev_id is None:
        dev_id = next(i for i in range(len(taken) + 1) if i not in taken)
    elif dev_id in used:
        planner.plan.errors.append(f"{planner.subject(device)}: netdevsim id {dev_id} is taken")
        return []
    planner.netdevsim_ids.add(dev_id)
    ports = device.get("ports")
    names = [port_name(device, p) for p in range(ports)]

    def rename(ctx: Context) -> None:
        for name, index in zip(names, _find_ports(ctx, kns, dev_id, ports)):
            ctx.socket(kns).request(nl.RTM_SETLINK, 0, nl.ifinfo(index) + nl.string(nl.IFLA_IFNAME, name))
            ctx.indexes[(kns, name)] = index

    ops = [Op(kns, f"create netdevsim{dev_id} ({ports} port{'s' if ports > 1 else ''}) via sysfs", phase("create"),
              run=lambda ctx: _write(kns, os.path.join(bus(sysfs), "new_device"), f"{dev_id} {ports}"),
              undo=Op(kns, f"delete netdevsim{dev_id}", phase("create"),
                      run=lambda ctx: _write(kns, os.path.join(bus(sysfs), "del_device"), str(dev_id)))),
           Op(kns, f"name the ports of netdevsim{dev_id}", phase("create"), run=rename)]
    details = [f"id {dev_id}", f"ports {', '.join(names)}"]
    if device.get("vfs"):
        path = os.path.join(bus(sysfs), "devices", f"netdevsim{dev_id}", "sriov_numvfs")
        ops.append(Op(kns, f"enable {device.get('vfs')} VFs on {device.name}", phase("create"),
                      run=lambda ctx: _write(kns, path, str(device.get("vfs")))))
        details.append(f"vfs {device.get('vfs')}")
    for vf in device.get("vf"):
        ops.append(_vf_op(kns, device, vf))
        details.append(f"vf {vf.index}" + "".join(f" {p} {_on(vf.get(p))}" for p in ("mac", "vlan", "trust",
                                                                                      "spoofchk")
                                                  if vf.get(p) is not None))
    if device.get("hw-tc-offload") is not None:
        ethtool = planner.o.tools["ethtool"]
        if ethtool is None:
            planner.plan.errors.append(f"{planner.subject(device)}: {tools.missing('ethtool')}")
        else:
            value = _on(device.get("hw-tc-offload"))
            ops.append(Op(kns, f"ethtool -K {device.name} hw-tc-offload {value}", phase("extra"),
                          run=lambda ctx: tools.run(kns, [ethtool, "-K", device.name, "hw-tc-offload", value])))
            details.append(f"hw-tc-offload {value}")
    if device.get("xdp-offload") is not None:
        ip = planner.o.tools["ip"]
        program = device.get("xdp-offload")
        if ip is None:
            planner.plan.errors.append(f"{planner.subject(device)}: {tools.missing('ip')}")
        else:
            ops.append(Op(kns, f"load {program} on {device.name} (xdpoffload)", phase("extra"),
                          run=lambda ctx: tools.run(kns, [ip, "link", "set", "dev", device.name, "xdpoffload",
                                                          "obj", program])))
            details.append(f"xdp-offload {program}")
    step.details += details
    return ops


def _on(value) -> str:
    return ("on" if value else "off") if isinstance(value, bool) else str(value)


def _vf_op(kns: str | None, device: Device, vf) -> Op:
    def build(ctx: Context) -> tuple[int, int, bytes]:
        parts = b""
        if vf.mac is not None:
            parts += nl.nla(IFLA_VF_MAC, struct.pack("=I", vf.index) + K._mac(vf.mac) + b"\0" * 26)
        if vf.vlan is not None:
            parts += nl.nla(IFLA_VF_VLAN, struct.pack("=III", vf.index, vf.vlan, 0))
        if vf.spoofchk is not None:
            parts += nl.nla(IFLA_VF_SPOOFCHK, struct.pack("=II", vf.index, int(vf.spoofchk)))
        if vf.trust is not None:
            parts += nl.nla(IFLA_VF_TRUST, struct.pack("=II", vf.index, int(vf.trust)))
        return (nl.RTM_SETLINK, 0, nl.ifinfo(ctx.index(kns, device.name))
                + nl.nested(IFLA_VFINFO_LIST, nl.nested(IFLA_VF_INFO, parts)))
    return Op(kns, f"set VF {vf.index} of {device.name}", phase("extra"), request=build)
