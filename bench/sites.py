"""Generators of .vnet text for synthetic sites of N devices.

Every generator returns a :class:`Site`: the text and the number of devices
(every veth peer counts as a device) the text declares. The benchmarks check
that the text compiles (``vnetc check`` exits 0 and prints nothing).

``trunk``  -- hypervisor uplinks: groups of 2 NICs, an LACP bond, a VLAN-aware
              bridge on the bond, and VLANs on the bond, one address each.
              A group is 1,000 devices (4 + 996 VLANs, ids 1..996), so VLAN ids
              stay within 1..4094 per link however large N is.
              form "flat": every statement written out;
              form "loop": the same site with ``for`` and ``${…}`` arithmetic;
              both compile to the same IR (checked by the benchmark).
``veth``   -- a container host: bridges with ~500 ports each; per container a
              namespace and a veth pair whose peer (``eth0``) lives in it.
``mixed``  -- a multi-tenant host: per tenant a namespace, a bridge with a veth,
              a TAP and a VXLAN as ports, a dummy, a macvlan and an ipvlan in the
              tenant's namespace, a VLAN on the uplink and an IFB shaping the TAP.
``vlan``   -- the site of the networkd issue's target: N VLANs with one address
              each, on an 802.3ad bond of two NICs per 4,000 VLANs (here N counts
              the VLANs, not the devices: 4,000 VLANs are 4,003 devices).

All generators are deterministic and produce exactly N devices (but ``vlan``:
N VLANs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

#: Devices per trunk group: 2 NICs + bond + bridge + VLANS_PER_GROUP VLANs.
GROUP = 1000
VLANS_PER_GROUP = GROUP - 4
#: Containers per bridge in the veth site.
CONTAINERS_PER_BRIDGE = 250
#: Tenants per uplink bond in the mixed site (one VLAN id per tenant, 1..4094).
TENANTS_PER_UPLINK = 4000
TENANT_DEVICES = 10     # bridge, veth + peer, tap, vxlan, dummy, macvlan, ipvlan, vlan, ifb


@dataclass(frozen=True)
class Site:
    shape: str     # trunk | veth | mixed
    form: str      # flat | loop
    devices: int
    text: str

    @property
    def label(self) -> str:
        return f"{self.shape}-{self.form}" if self.shape == "trunk" else self.shape

    @property
    def pretty(self) -> str:
        """The label in tables: "trunk, flat", "trunk, for", "veth", "mixed", "vlan"."""
        return {"trunk-flat": "trunk, flat", "trunk-loop": "trunk, for"}.get(self.label, self.label)

    @property
    def lines(self) -> int:
        return self.text.count("\n")


def _v4(k: int, a: int = 10, last: int = 1) -> str:
    """The k-th /24 under a.0.0.0/8: a.(k/256).(k%256).last."""
    if k >= 65536:
        raise ValueError("site too large for one /8")
    return f"{a}.{k // 256}.{k % 256}.{last}"


# --- trunk: NICs, bond, bridge, VLANs ------------------------------------------

def _trunk_groups(n: int) -> list[int]:
    """The VLAN count of each group: full groups, then the remainder."""
    if n < 5:
        raise ValueError("a trunk site needs at least 5 devices")
    full, rest = divmod(n, GROUP)
    sizes = [VLANS_PER_GROUP] * full
    if rest:
        if rest < 5:  # too small for a group of its own: take it from the last full group
            sizes[-1] -= 5 - rest
            rest = 5
        sizes.append(rest - 4)
    return sizes


def _trunk_head(g: str, bridge_k: str) -> list[str]:
    """The 4 devices of group g (g may be text with ${…})."""
    return [
        f"interface nic{g}a",
        f"interface nic{g}b",
        f"bond bond{g} {{",
        "    mode 802.3ad",
        "    miimon 100",
        f"    ports nic{g}a nic{g}b",
        "}",
        f"bridge br{g} {{",
        "    vlan-filtering on",
        f"    ports bond{g}",
        f"    address 172.16.{bridge_k}.1/24",
        "}",
    ]


def trunk_flat(n: int) -> Site:
    out = [f"# trunk site, {n} devices, written flat (bench/sites.py)"]
    base = 0  # global index of the first VLAN of the group
    for g, vlans in enumerate(_trunk_groups(n)):
        out.extend(_trunk_head(str(g), str(g)))
        for v in range(1, vlans + 1):
            out.append(f"vlan bond{g}.{v} {{ link bond{g}; id {v}; address {_v4(base + v - 1)}/24 }}")
        base += vlans
    return Site("trunk", "flat", n, "\n".join(out) + "\n")


def trunk_loop(n: int) -> Site:
    """The same site as trunk_flat(n), with `for` and arithmetic."""
    sizes = _trunk_groups(n)
    out = [f"# trunk site, {n} devices, written with for (bench/sites.py)",
           f"let per = {VLANS_PER_GROUP}"]
    full = sum(1 for s in sizes if s == VLANS_PER_GROUP)

    def group(g: str, first_vlan: str, vlans: str) -> list[str]:
        # g: the group number as it is written in names ("${g}" or "5");
        # first_vlan: the global index of the group's first VLAN, as an expression
        return [*_trunk_head(g, g),
                f"for v in 1..{vlans} {{",
                f"    vlan bond{g}.${{v}} {{ link bond{g}; id ${{v}}; "
                f"address 10.${{({first_vlan} + v - 1) / 256}}.${{({first_vlan} + v - 1) % 256}}.1/24 }}",
                "}"]

    if full:
        out.append(f"for g in 0..{full - 1} {{")
        out.extend("    " + line for line in group("${g}", "g * per", "${per}"))
        out.append("}")
    # the remainder group(s) (at most two: a shortened last full group and the rest)
    base = full * VLANS_PER_GROUP
    for g, vlans in list(enumerate(sizes))[full:]:
        out.extend(group(str(g), str(base), str(vlans)))
        base += vlans
    return Site("trunk", "loop", n, "\n".join(out) + "\n")


# --- veth: a container host -----------------------------------------------------

def veth(n: int) -> Site:
    """Bridges with veth ports; each container's end (eth0) in its own namespace."""
    if n < 3:
        raise ValueError("a veth site needs at least 3 devices")
    bridges = -(-n // (2 * CONTAINERS_PER_BRIDGE + 1))
    containers, odd = divmod(n - bridges, 2)
    out = [f"# veth site, {n} devices (bench/sites.py)"]
    for b in range(bridges):
        out.append(f"bridge cbr{b} {{ address 10.{100 + b}.0.1/16 }}")
    for c in range(containers):
        b, k = c % bridges, c // bridges
        out.append(f"netns c{c}")
        out.append(f"veth vc{c} {{")
        out.append(f"    master cbr{b}")
        out.append(f"    peer eth0 {{ netns c{c}; address 10.{100 + b}.{1 + k // 250}.{1 + k % 250}/16; "
                   f"gateway 10.{100 + b}.0.1 }}")
        out.append("}")
    if odd:
        out.append("dummy pad0")
    return Site("veth", "flat", n, "\n".join(out) + "\n")


# --- mixed: a multi-tenant host ---------------------------------------------------

def mixed(n: int) -> Site:
    """Per tenant 10 devices of 9 kinds; uplinks (2 NICs + bond) per 4,000 tenants; dummies pad."""
    uplinks = -(-n // (TENANTS_PER_UPLINK * TENANT_DEVICES + 3))
    tenants = (n - 3 * uplinks) // TENANT_DEVICES
    pad = n - 3 * uplinks - tenants * TENANT_DEVICES
    if tenants < 1:
        raise ValueError(f"a mixed site needs at least {3 + TENANT_DEVICES} devices")
    out = [f"# mixed site, {n} devices (bench/sites.py)"]
    for u in range(uplinks):
        out += [f"interface up{u}a {{ match-mac 52:54:00:00:{u:02x}:01 }}",
                f"interface up{u}b {{ match-mac 52:54:00:00:{u:02x}:02 }}",
                f"bond up{u} {{",
                "    mode 802.3ad",
                "    miimon 100",
                "    lacp-rate fast",
                "    mtu 9000",
                f"    ports up{u}a up{u}b",
                f"    address 192.168.{u}.11/24",
                "}"]
    for t in range(tenants):
        u, vid = divmod(t, TENANTS_PER_UPLINK)
        vid += 1
        net = _v4(t, 10, 1)
        out += [
            f"netns t{t}",
            f"bridge tb{t} {{",
            "    mtu 1500",
            f"    address {net}/24",
            f"    ports tv{t} tt{t} tx{t}",
            "}",
            f"veth tv{t} {{",
            "    mtu 1500",
            f"    peer tv{t}p {{ netns t{t}; address {_v4(t, 10, 2)}/24; gateway {net} }}",
            "}",
            f"tap tt{t} {{ owner libvirt-qemu; mtu 1500 }}",
            f"vxlan tx{t} {{ vni {10000 + t}; local 192.168.{u}.11; remote 192.168.{u}.12; dev up{u}; mtu 1500 }}",
            f"dummy td{t} {{ address {_v4(t, 172, 1)}/32 }}",
            f"macvlan tm{t} {{ link up{u}; mode bridge; netns t{t}; address {_v4(t, 11, 1)}/24 }}",
            f"ipvlan ti{t} {{ link up{u}; mode l2; netns t{t}; address {_v4(t, 12, 1)}/24 }}",
            f"vlan up{u}.{vid} {{ link up{u}; id {vid}; address {_v4(t, 13, 1)}/24 }}",
            f"ifb tq{t} {{ qdisc tbf rate 100mbit burst 32kbit latency 400ms; redirect-ingress tt{t} }}",
        ]
    out += [f"dummy pad{i}" for i in range(pad)]
    return Site("mixed", "flat", n, "\n".join(out) + "\n")


# --- vlan: the networkd issue's site ----------------------------------------------

#: VLANs per bond in the vlan site (ids 1..4000).
VLANS_PER_BOND = 4000


def vlan(n: int) -> Site:
    """n VLANs, one /24 address each, on a bond of two NICs per VLANS_PER_BOND VLANs."""
    if n < 1:
        raise ValueError("a vlan site needs at least 1 VLAN")
    out = [f"# vlan site, {n} VLANs (bench/sites.py)"]
    groups = 0
    for first in range(0, n, VLANS_PER_BOND):
        g, groups = groups, groups + 1
        out += [f"interface eth{2 * g}", f"interface eth{2 * g + 1}",
                f"bond bond{g} {{", "    mode 802.3ad", f"    ports eth{2 * g} eth{2 * g + 1}", "}"]
        for vid in range(1, min(VLANS_PER_BOND, n - first) + 1):
            out.append(f"vlan bond{g}.{vid} {{ link bond{g}; id {vid}; address {_v4(first + vid - 1)}/24 }}")
    return Site("vlan", "flat", n + 3 * groups, "\n".join(out) + "\n")


#: label -> generator; the labels the benchmarks accept.
GENERATORS: dict[str, Callable[[int], Site]] = {
    "trunk-flat": trunk_flat,
    "trunk-loop": trunk_loop,
    "veth": veth,
    "mixed": mixed,
    "vlan": vlan,
}


def generate(label: str, n: int) -> Site:
    try:
        return GENERATORS[label](n)
    except KeyError:
        raise ValueError(f"unknown site {label!r}; known: {', '.join(GENERATORS)}") from None


if __name__ == "__main__":  # python -m bench.sites LABEL N  > site.vnet
    import sys

    if len(sys.argv) != 3:
        sys.exit(f"usage: python -m bench.sites {{{','.join(GENERATORS)}}} N")
    sys.stdout.write(generate(sys.argv[1], int(sys.argv[2])).text)
