"""Backends: one module per target, each a pure function from the IR to files.

A target renders one host into a :class:`Rendering`: the files it writes (in
memory), the parts of the site it hands to the executor (the *residual*,
performed at boot by `vnetc apply` from a residual file and a systemd unit),
and the parts nothing can do (errors). Writing to disk is shared
(backends/output.py). ``TARGET_MODULES`` names the targets the command line
offers; ``target(name)`` (or ``TARGETS[name]``) loads one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, NamedTuple

from vnetc.compiler.diagnostics import Span
from vnetc.compiler.ir import Device, Host, Site
from vnetc.compiler.schema import python_name


class Artifact(NamedTuple):
    """One file: its name, the directory it is installed in (under --root) and its text.

    Immutable; a named tuple rather than a frozen dataclass, which takes twice as long
    to create (a build creates one per file: 8,000 for 4,000 VLANs)."""

    name: str
    install_dir: str            # e.g. "etc/systemd/network"
    content: str
    mode: int = 0o644
    group: str | None = None    # the group that must own it when installed (e.g. systemd-network)


@dataclass(frozen=True, slots=True)
class Gap:
    """Something of the site a target cannot express natively."""

    device: Device
    what: str                   # the property (or "device" for the whole device)
    reason: str
    span: Span | None

    def describe(self) -> str:
        where = f"{self.device.netns}/" if self.device.netns else ""
        subject = f"{self.device.kind} '{where}{self.device.name}'"
        return f"{subject}: {self.reason}" if self.what == "device" else f"{subject} {self.what}: {self.reason}"


#: Properties the executor cannot carry out, nor any target but those whose Target.can names them
#: (MKA needs wpa_supplicant, which NetworkManager runs).
NOBODY_CAN = ("mka-cak", "mka-cak-file", "mka-ckn")
_NOBODY_CAN_ATTRIBUTES = tuple((prop, python_name(prop)) for prop in NOBODY_CAN)   # asked of every device


def nobody_can(device: Device, target: str, can: tuple[str, ...] = ()) -> Gap | None:
    """The error for a device that uses what neither `target` (which does `can`) nor `vnetc apply` can do."""
    for prop, attribute in _NOBODY_CAN_ATTRIBUTES:
        if getattr(device, attribute, None) is not None and prop not in can:
            reason = (f"MACsec MKA needs wpa_supplicant (macsec_linux driver); neither {target} nor vnetc apply "
                      f"runs it")
            if can:
                reason = (f"{target} runs MKA only with {' and '.join(can)} (it keeps the CAK in its own "
                          f"configuration), and vnetc apply does not run it")
            return Gap(device, prop, reason, device.spans.get(prop, device.span))
    return None


@dataclass(slots=True)
class Rendering:
    files: list[Artifact] = field(default_factory=list)
    residual: list[Gap] = field(default_factory=list)   # handed to the executor
    errors: list[Gap] = field(default_factory=list)     # neither the target nor the executor can do it
    service: str | None = None  # the unit the residual runs after, when not the target's usual one


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    render: Callable[[Site, Host], Rendering]
    service: str               # the unit the residual runs after
    #: whether build adds the residual file and unit (False: the rendering embeds them, as the NixOS module does)
    residual_files: bool = True
    #: whether `vnetc apply` carries out its residual (False: the residual is only reported, as
    #: what the target does not do: the iproute2 script runs no DHCP client)
    hands_over: bool = True
    #: the properties of NOBODY_CAN this target does itself
    can: tuple[str, ...] = ()


#: target name -> the module (in this package) whose TARGET renders it; imported on first use
TARGET_MODULES: dict[str, str] = {"networkd": "networkd", "netplan": "netplan", "nixos": "nixos", "nm": "nm",
                                  "iproute2": "iproute2"}


def target(name: str) -> Target:
    """The registered target `name` (its module is imported only now: `check` never pays for it)."""
    import importlib

    return importlib.import_module(f"{__name__}.{TARGET_MODULES[name]}").TARGET


def __getattr__(name: str):
    if name == "TARGETS":  # every target, loaded (for tools and tests)
        return {n: target(n) for n in TARGET_MODULES}
    raise AttributeError(name)
