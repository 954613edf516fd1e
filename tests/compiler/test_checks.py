"""One test per check of language.md §4 (and per warning): the exact message,
severity, position (line, col, end_col exclusive, 1-based) and hint.

Each row lists *every* diagnostic the input must produce, so a spurious second
error fails the row as surely as a wrong message does."""

from __future__ import annotations

from typing import NamedTuple

import pytest

from vnetc.compiler import CompileError, compile_source

from conftest import diagnostics_of, run_vnetc


class D(NamedTuple):
    severity: str
    message: str
    line: int
    col: int
    end_col: int
    hint: str | None = None
    notes: tuple[str, ...] = ()


def E(message, line, col, end_col, hint=None, notes=()):
    return D("error", message, line, col, end_col, hint, tuple(notes))


def W(message, line, col, end_col, hint=None, notes=()):
    return D("warning", message, line, col, end_col, hint, tuple(notes))


def as_rows(diagnostics):
    return [D(d.severity, d.message, d.span.line, d.span.col, d.span.end_col, d.hint, d.notes)
            for d in diagnostics]


def case(id, text, *expected):
    return pytest.param(text, list(expected), id=id)


NIC = "declare an existing NIC with 'interface {}'"
CYCLE_HINT = "a device cannot be below itself (through link, dev, master or ports)"
ONE_PORT_HINT = "a bridge with one port forwards nothing; add ports or an address"
INLINE_KEY_HINT = 'keep keys out of configuration: use key-file "/etc/…" readable only by root'
KEY = "00112233445566778899aabbccddeeff"

# --- errors -------------------------------------------------------------------------------

ERRORS = [
    # unknown statement, kind or property, with the nearest valid name as a hint
    case("unknown-kind-did-you-mean", "brige br0\n",
         E("unknown statement 'brige'", 1, 1, 6, "did you mean 'bridge'?")),
    case("unknown-keyword-did-you-mean", 'inclde "x.vnet"\n',
         E("unknown statement 'inclde'", 1, 1, 7, "did you mean 'include'?")),
    case("unknown-statement-no-near-name", "frobnicate x\n",
         E("unknown statement 'frobnicate'", 1, 1, 11,
           "a statement is a device kind (bridge, vlan, …) or include, let, for, netns, host")),
    case("unknown-property-did-you-mean", "dummy d0 { mtuu 1500 }\n",
         E("unknown property 'mtuu' for dummy", 1, 12, 16, "did you mean 'mtu'?")),
    case("unknown-kind-property-did-you-mean", "vxlan vx0 {\n  vni 10\n  ttll 3\n}\n",
         E("unknown property 'ttll' for vxlan", 3, 3, 7, "did you mean 'ttl'?")),
    case("unknown-property-in-section", "interface eth0\nbridge br0 { address 10.0.0.1/24; port eth0 { pvd 10 } }\n",
         E("unknown property 'pvd' for port eth0", 2, 47, 50, "did you mean 'pvid'?")),
    case("kind-inside-a-block", "dummy d0 { dummy d1 }\n",
         E("unknown property 'dummy' for dummy", 1, 12, 17, "a dummy statement cannot stand inside a block")),

    # values of the wrong type or out of range
    case("vlan-id-5000", "interface eth0\nvlan v0 {\n    link eth0\n    id 5000\n}\n",
         E("VLAN id 5000 is out of range 1–4094", 4, 8, 12)),
    case("vni-2-to-the-24", "vxlan vx0 { vni 16777216 }\n",
         E("VNI 16777216 is out of range 0–16777215", 1, 17, 25)),
    case("address-10.0.0.300/24", "dummy d0 { address 10.0.0.300/24 }\n",
         E("'10.0.0.300/24' is not an address with prefix length", 1, 20, 33,
           "Octet 300 (> 255) not permitted in 10.0.0.300")),
    case("address-without-prefix", "dummy d0 { address 10.0.0.1 }\n",
         E("address 10.0.0.1 has no prefix length", 1, 20, 28, "write e.g. 10.0.0.1/24")),
    case("multicast-mac-as-device-address", "dummy d0 { mac 01:00:5e:00:00:01 }\n",
         E("01:00:5e:00:00:01 is a multicast MAC address; a device's own address must be unicast", 1, 16, 33,
           "clear the lowest bit of the first byte (e.g. 52:… instead of 53:…)")),
    case("interface-name-of-16-bytes", "dummy abcdefghijklmnop\n",
         E("interface name 'abcdefghijklmnop' is 16 bytes long; Linux allows at most 15", 1, 7, 23)),
    case("peer-name-of-16-bytes", "veth v0 { peer abcdefghijklmnop }\n",
         E("interface name 'abcdefghijklmnop' is 16 bytes long; Linux allows at most 15", 1, 16, 32)),
    case("name-with-slash-points-at-the-slash", "dummy d0 { master a/b }\n",
         E("interface name 'a/b' contains '/', which Linux does not allow", 1, 20, 21)),
    case("mtu-out-of-range", "dummy d0 { mtu 67 }\n",
         E("MTU 67 is out of range 68–65535", 1, 16, 18)),
    case("bool", "interface eth0\nbridge br0 { ports eth0; address 10.0.0.1/24; stp maybe }\n",
         E("'maybe' is not a boolean", 2, 51, 56, "write on or off (yes/no and true/false work too)")),
    case("enum-did-you-mean", "bond b0 { mode 802.3da }\n",
         E("unknown bond mode '802.3da'", 1, 16, 23, "did you mean '802.3ad'?")),
    case("route-host-bits", "dummy d0 { route 10.1.0.1/16 via 10.0.0.1 }\n",
         E("10.1.0.1/16 has host bits set", 1, 18, 29, "did you mean 10.1.0.0/16?")),
    case("route-unknown-option-at-its-word", "dummy d0 { route default dev eth0 }\n",
         E("unknown route option 'dev'", 1, 26, 29, "a route is written: PREFIX [via IP] [metric N] [table N]")),
    case("qdisc-tbf-needs-latency-or-limit", "ifb i0 { qdisc tbf rate 1mbit burst 32kbit }\n",
         E("tbf needs exactly one of 'latency' and 'limit'", 1, 16, 19,
           "e.g. qdisc tbf rate 1mbit burst 32kbit latency 400ms")),
    case("qdisc-parameter-did-you-mean", "ifb i0 { qdisc sfq perturbb 10 }\n",
         E("unknown sfq parameter 'perturbb'", 1, 20, 28, "did you mean 'perturb'?")),
    case("vlan-range-points-at-the-bad-end",
         "interface eth0\nbridge br0 { vlan-filtering on; address 10.0.0.1/24; port eth0 { vlans 10-5000 } }\n",
         E("VLAN id 5000 is out of range 1–4094", 2, 75, 79)),
    case("team-config-not-an-object", "interface eth0\nteam t0 { ports eth0; config \"[1]\" }\n",
         E("the teamd configuration must be a JSON object ({...})", 2, 30, 35)),
    case("property-without-value", "dummy d0 { mtu }\n",
         E("'mtu' needs a value", 1, 12, 15, "expected a number 68–65535")),

    # the shape of properties and devices
    case("property-given-twice", "dummy d0 { mtu 1500; mtu 1400 }\n",
         E("'mtu' is given twice", 1, 22, 25, notes=["first given at t.vnet:1:12"])),
    case("property-with-a-block", "dummy d0 { mtu 1500 { x } }\n",
         E("'mtu' takes no block", 1, 21, 22)),
    case("two-words-where-one-is-expected", "dummy d0 { mtu 1500 1400 }\n",
         E("'mtu' takes one value", 1, 21, 25)),
    case("word-after-device-name", "dummy d0 extra\n",
         E("unexpected 'extra' after the device name", 1, 10, 15,
           "properties go in a block: KIND NAME { property value }")),
    case("device-without-name", "dummy\n",
         E("dummy needs a name", 1, 1, 6, "write dummy NAME { … }")),
    case("section-with-two-labels", "interface eth0\nbridge br0 { address 10.0.0.1/24; port eth0 eth1 { } }\n",
         E("'port' is written: port NAME [{ … }]", 2, 45, 49)),
    case("section-needs-a-block", "interface eth0\nmacsec ms0 { link eth0; tx-sa 0 }\n",
         E("'tx-sa' needs a block", 2, 31, 32, "write tx-sa AN { … }")),
    case("peer-given-twice", "veth v0 { peer v1; peer v2 }\n",
         E("'peer' is given twice", 1, 20, 24, notes=["first given at t.vnet:1:11"])),

    # hosts
    case("device-outside-host-blocks", "host h1 {\n  dummy d0\n}\ndummy d1\n",
         E("dummy 'd1' is outside every host block", 4, 1, 6,
           "this file has host blocks, so every device must be inside one",
           notes=["the first host block is at t.vnet:1:1"])),
    case("duplicate-host-names", "host h1 { dummy d0 }\nhost h1 { dummy d1 }\n",
         E("host 'h1' is declared twice", 2, 6, 8, notes=["first declared at t.vnet:1:6"])),
    case("nested-host", "host h1 { host h2 { } }\n",
         E("host blocks cannot be nested", 1, 11, 15)),
    case("bad-host-name", "host -x { }\n",
         E("'-x' is not a valid host name", 1, 6, 8, "letters, digits, '-' and '.', starting with a letter or digit")),
    case("host-without-block", "host h1\n",
         E("'host' is written: host NAME { devices… }", 1, 1, 5)),
    case("netns-for-every-host-and-in-a-host", "netns blue\nhost h1 { netns blue }\n",
         E("namespace 'blue' is already declared for every host", 2, 17, 21, notes=["declared at t.vnet:1:7"])),

    # namespaces
    case("netns-undeclared", "dummy d0 { netns blue }\n",
         E("namespace 'blue' is not declared", 1, 18, 22, "declare it with 'netns blue'")),
    case("netns-undeclared-did-you-mean", "netns blue\ndummy d0 { netns bleu }\n",
         E("namespace 'bleu' is not declared", 2, 18, 22, "did you mean 'blue'?")),
    case("netns-declared-twice", "netns blue\nnetns blue\n",
         E("namespace 'blue' is declared twice", 2, 7, 11, notes=["first declared at t.vnet:1:7"])),
    case("netns-bad-name", "netns bl/ue\n",
         E("'bl/ue' is not a valid namespace name", 1, 7, 12, "letters, digits and . _ + -, at most 64 characters")),
    case("netns-with-block", "netns blue { }\n",
         E("'netns' takes no block", 1, 12, 13, "put the devices in the namespace with a 'netns NAME' property")),
    case("lower-link-in-another-namespace",
         "netns blue\nnetns red\ninterface eth0 { netns red }\nvlan v0 { link eth0; id 10; netns blue }\n",
         E("vlan 'v0' is in namespace 'blue' but its lower link 'eth0' is in namespace 'red'", 4, 16, 20,
           "vnetc creates a vlan next to its lower link and then moves it, so the link must be in namespace "
           "'blue' or in the host's own namespace")),
    case("port-in-another-namespace",
         "netns blue\ninterface eth0 { netns blue }\nbridge br0 { ports eth0; address 10.0.0.1/24 }\n",
         E("'eth0' is in namespace 'blue' but bridge 'br0' is in the host's own namespace", 3, 20, 24,
           "both must be in one namespace")),
    case("master-in-another-namespace",
         "netns blue\ninterface eth0 { netns blue; master br0 }\nbridge br0 { address 10.0.0.1/24 }\n",
         E("'br0' is in the host's own namespace but interface 'eth0' is in namespace 'blue'", 2, 37, 40,
           "both must be in one namespace")),

    # names and references
    case("duplicate-device", "dummy d0\ndummy d0\n",
         E("device 'd0' is declared twice", 2, 7, 9, notes=["dummy 'd0' is declared at t.vnet:1:7"])),
    case("duplicate-device-in-a-namespace", "netns blue\ndummy d0 { netns blue }\ndummy d0 { netns blue }\n",
         E("device 'd0' is declared twice in namespace 'blue'", 3, 7, 9,
           notes=["dummy 'd0' is declared at t.vnet:2:7"])),
    case("veth-peer-clashes-with-a-device", "dummy d0\nveth v0 { peer d0 }\n",
         E("device 'd0' is declared twice", 2, 16, 18, notes=["dummy 'd0' is declared at t.vnet:1:7"])),
    case("unknown-device-did-you-mean", "interface eth0\nvlan v0 { link eht0; id 1 }\n",
         E("unknown device 'eht0'", 2, 16, 20, "did you mean 'eth0'?")),
    case("device-names-itself", "ifb i0 { redirect-ingress i0 }\n",
         E("ifb 'i0' cannot name itself in 'redirect-ingress'", 1, 27, 29)),

    # masters
    case("master-not-bridge-bond-team", "dummy d0\ninterface eth0 { master d0 }\n",
         E("'d0' is a dummy; only a bridge, bond or team can be a master", 2, 25, 27)),
    case("master-is-a-vlan", "interface eth0\nvlan v0 { link eth0; id 10 }\ninterface eth1 { master v0 }\n",
         E("'v0' is a vlan; only a bridge, bond or team can be a master", 3, 25, 27)),
    case("enslaved-via-ports-of-two-masters",
         "interface eth0\nbridge br0 { ports eth0; address 10.0.0.1/24 }\nbond bond0 { ports eth0 }\n",
         E("'eth0' is enslaved to both 'br0' and 'bond0'", 3, 20, 24, "a device can have only one master",
           notes=["enslaved to 'br0' at t.vnet:2:20"])),
    case("enslaved-via-master-and-ports",
         "interface eth0 { master br0 }\nbridge br0 { address 10.0.0.1/24 }\nbond bond0 { ports eth0 }\n",
         E("'eth0' is enslaved to both 'br0' and 'bond0'", 3, 20, 24, "a device can have only one master",
           notes=["enslaved to 'br0' at t.vnet:1:25"])),
    case("own-master", "bridge br0 { master br0 }\n",
         E("bridge 'br0' cannot be its own port", 1, 21, 24)),
    case("bond-primary-not-a-port",
         "interface eth0\ninterface eth1\nbond b0 { mode active-backup; ports eth0; primary eth1 }\n",
         E("primary 'eth1' is not a port of bond 'b0'", 3, 51, 55, "add it to 'ports' or set 'master b0' on it")),

    # cycles
    case("cycle-bridge-bond-via-ports", "bridge br0 { ports bond0 }\nbond bond0 { ports br0 }\n",
         E("devices stacked in a cycle: br0 → bond0 → br0", 2, 20, 23, CYCLE_HINT)),
    case("cycle-bridge-bond-via-master", "bridge br0 { master bond0 }\nbond bond0 { master br0 }\n",
         E("devices stacked in a cycle: br0 → bond0 → br0", 1, 21, 26, CYCLE_HINT)),
    case("cycle-vlan-on-itself", "vlan v0 { link v0; id 10 }\n",
         E("devices stacked in a cycle: v0 → v0", 1, 16, 18, CYCLE_HINT)),
    case("cycle-two-vlans", "vlan v0 { link v1; id 10 }\nvlan v1 { link v0; id 11 }\n",
         E("devices stacked in a cycle: v0 → v1 → v0", 2, 16, 18, CYCLE_HINT)),
    case("cycle-vlan-on-the-bridge-it-is-a-port-of",
         "bridge br0 { ports v0; address 10.0.0.1/24 }\nvlan v0 { link br0; id 10 }\n",
         E("devices stacked in a cycle: br0 → v0 → br0", 2, 16, 19, CYCLE_HINT)),

    # required properties and the checks of each kind
    case("missing-required-property", "vlan v0 { id 10 }\n",
         E("vlan 'v0' needs 'link'", 1, 6, 8, "add 'link …' to its block")),
    case("veth-needs-peer", "veth v0\n",
         E("veth 'v0' needs 'peer'", 1, 6, 8, "add 'peer …' to its block")),
    case("vxlan-remote-and-group", "vxlan vx0 { vni 10; remote 10.0.0.1; group 239.1.1.1 }\n",
         E("'remote' and 'group' cannot both be given", 1, 44, 53,
           "a VXLAN sends either to one remote (unicast) or to a multicast group")),
    case("vxlan-local-other-family", "vxlan vx0 { vni 1; remote 10.0.0.1; local fe80::1 }\n",
         E("'local' fe80::1 and 'remote' 10.0.0.1 are of different IP versions", 1, 43, 50)),
    case("vxlan-group-not-multicast", "vxlan vx0 { vni 1; group 10.0.0.1 }\n",
         E("10.0.0.1 is not a multicast address", 1, 26, 34)),
    case("source-macs-without-mode-source",
         "interface eth0\nmacvlan mv0 { link eth0; source-macs 52:54:00:00:00:01 }\n",
         E("'source-macs' needs 'mode source'", 2, 38, 55, "source MACs filter traffic only in source mode")),
    case("source-macs-with-another-mode",
         "interface eth0\nmacvtap mt0 { link eth0; mode vepa; source-macs 52:54:00:00:00:01 }\n",
         E("'source-macs' needs 'mode source'", 2, 49, 66, "source MACs filter traffic only in source mode")),
    case("two-passthru-on-one-link",
         "interface eth0\nmacvlan m0 { link eth0; mode passthru }\nmacvlan m1 { link eth0; mode passthru }\n",
         E("'eth0' already has a passthru macvlan ('m0')", 3, 30, 38, "passthru takes over the whole lower device")),
    case("pvid-outside-port-vlans",
         "interface eth0\nbridge br0 { vlan-filtering on; address 10.0.0.1/24; port eth0 { pvid 10; vlans 20-30 } }\n",
         E("PVID 10 is outside the port's vlans", 2, 71, 73, "add 10 to 'vlans' or change the PVID")),
    case("untagged-outside-port-vlans",
         "interface eth0\nbridge br0 { vlan-filtering on; address 10.0.0.1/24; port eth0 { vlans 10-20; untagged 5 } }\n",
         E("untagged VLAN 5 is outside the port's vlans", 2, 88, 89, "untagged VLANs must also be listed in 'vlans'")),
    case("second-ipv4-gateway", "dummy d0 { gateway 10.0.0.1; gateway 10.0.0.2 }\n",
         E("a second IPv4 gateway", 1, 38, 46, "give at most one IPv4 and one IPv6 gateway; use 'route' for more",
           notes=["the first is at t.vnet:1:20"])),
    case("failover-same-primary-and-standby", "interface eth0\nfailover f0 { primary eth0; standby eth0 }\n",
         E("'primary' and 'standby' must be different devices", 2, 37, 41)),
    case("ingress-redirected-twice", "dummy d0\nifb i0 { redirect-ingress d0 }\nifb i1 { redirect-ingress d0 }\n",
         E("the ingress of 'd0' is already redirected into 'i0'", 3, 27, 29,
           "a device's ingress can be redirected into one IFB only")),
    case("netdevsim-id-twice", "netdevsim n0 { id 1 }\nnetdevsim n1 { id 1 }\n",
         E("netdevsim id 1 is already used by 'n0'", 2, 19, 20)),
    case("netdevsim-vf-beyond-vfs", "netdevsim n0 { vfs 1; vf 1 { trust on } }\n",
         E("vf 1 does not exist: netdevsim 'n0' has 1 VFs", 1, 26, 27, "set 'vfs 2' or more")),

    # MACsec
    case("macsec-duplicate-tx-sa-an",
         'interface eth0\nmacsec ms0 {\n    link eth0\n    tx-sa 0 { key-id 01; key-file "/k0" }\n'
         '    tx-sa 0 { key-id 02; key-file "/k1" }\n}\n',
         E("tx-sa 0 is given twice", 5, 5, 10, notes=["first given at t.vnet:4:5"])),
    case("macsec-an-out-of-range", 'interface eth0\nmacsec ms0 { link eth0; tx-sa 4 { key-id 01; key-file "/k" } }\n',
         E("association number 4 is out of range 0–3", 2, 31, 32)),
    case("macsec-key-and-key-file",
         f'interface eth0\nmacsec ms0 {{ link eth0; tx-sa 0 {{ key-id 01; key {KEY}; key-file "/k" }} }}\n',
         W("tx-sa 0 holds its key inline", 2, 50, 82, INLINE_KEY_HINT),
         E("tx-sa 0 has both 'key' and 'key-file'", 2, 93, 97, "give one of them")),
    case("macsec-sa-without-key", "interface eth0\nmacsec ms0 { link eth0; tx-sa 0 { key-id 01 } }\n",
         E("tx-sa 0 needs 'key' or 'key-file'", 2, 25, 30)),
    case("macsec-sa-without-key-id", 'interface eth0\nmacsec ms0 { link eth0; tx-sa 0 { key-file "/k" } }\n',
         E("tx-sa 0 needs 'key-id'", 2, 25, 30)),
    case("macsec-rx-sa-key-file-twice",
         'interface eth0\nmacsec ms0 { link eth0; rx-channel 52:54:00:00:00:01 1 { sa 0 { key-id 01; key-file "/k"; '
         'key-file "/j" } } }\n',
         E("'key-file' is given twice", 2, 91, 99, notes=["first given at t.vnet:2:76"])),
    case("macsec-mka-cak-and-cak-file",
         f'interface eth0\nmacsec ms0 {{ link eth0; mka-cak {KEY}; mka-cak-file "/c"; mka-ckn 01 }}\n',
         W("the MKA CAK is inline", 2, 33, 65, 'use mka-cak-file "/etc/…" readable only by root'),
         E("'mka-cak' and 'mka-cak-file' cannot both be given", 2, 80, 84)),
    case("macsec-mka-without-ckn", 'interface eth0\nmacsec ms0 { link eth0; mka-cak-file "/c" }\n',
         E("MKA needs 'mka-ckn' with the CAK", 2, 38, 42)),
    case("macsec-ckn-without-cak", "interface eth0\nmacsec ms0 { link eth0; mka-ckn 01 }\n",
         E("'mka-ckn' needs 'mka-cak' or 'mka-cak-file'", 2, 33, 35)),
    case("macsec-static-and-mka",
         'interface eth0\nmacsec ms0 { link eth0; mka-cak-file "/c"; mka-ckn 01; tx-sa 0 { key-id 01; key-file "/k" } }\n',
         E("static keys (tx-sa, rx-channel) and MKA cannot be combined", 2, 38, 42, "MKA negotiates the SAs itself")),

    # the brief's extra bad inputs (syntax and expansion, through the whole compiler)
    case("unterminated-string", 'dummy d0 { description "oops }\n',
         E("unterminated string", 1, 24, 31, 'a string ends with " on the same line')),
    case("unterminated-block", "dummy d0 {\n  mtu 1500\n",
         E("unterminated block: this '{' is never closed", 1, 10, 11, "add the missing '}'")),
    case("stray-close-brace", "dummy d0\n}\n",
         E("unexpected '}': no block is open here", 2, 1, 2)),
    case("for-range-reversed", "for i in 5..1 { dummy d${i} }\n",
         E("the range 5..1 is reversed", 1, 10, 14, "a range runs upwards: write 1..5")),
    case("for-range-over-the-limit", "for i in 1..1000001 { dummy d${i} }\n",
         E("this loop would bring the iterations of all loops to 1,000,001; the limit is 1,000,000", 1, 10, 20)),
    case("interpolation-of-an-unknown-name", "dummy d${x}\n",
         E("unknown name 'x' in interpolation", 1, 10, 11, "define it with 'let NAME = VALUE' or a 'for' loop")),
    case("division-by-zero", "dummy d${1 / 0}\n",
         E("division by zero in ${…}", 1, 12, 13)),
    case("let-redefined", "let a = 1\nlet a = 2\n",
         E("'a' is already defined", 2, 5, 6, notes=["the constant 'a' is defined at t.vnet:1:5"])),
]


@pytest.mark.parametrize("text, expected", ERRORS)
def test_error(text, expected):
    assert as_rows(diagnostics_of(text)) == expected


# --- every kind that needs its lower link next to it -----------------------------------------

LOWER = {
    "vlan": "link eth0; id 10",
    "macvlan": "link eth0",
    "macvtap": "link eth0",
    "ipvlan": "link eth0",
    "ipvtap": "link eth0",
    "macsec": 'link eth0; tx-sa 0 { key-id 01; key-file "/k" }',
    "ipoib": "link eth0",
    "vxlan": "vni 1; dev eth0",
}


@pytest.mark.parametrize("kind", LOWER)
def test_lower_link_in_another_declared_namespace(kind):
    word = "dev" if kind == "vxlan" else "link"
    text = f"netns blue\nnetns red\ninterface eth0 {{ netns red }}\n{kind} x0 {{ netns blue; {LOWER[kind]} }}\n"
    col = text.splitlines()[3].index(f"{word} eth0") + len(word) + 2
    assert as_rows(diagnostics_of(text)) == [
        E(f"{kind} 'x0' is in namespace 'blue' but its lower link 'eth0' is in namespace 'red'", 4, col, col + 4,
          f"vnetc creates a {kind} next to its lower link and then moves it, so the link must be in namespace "
          f"'blue' or in the host's own namespace")]


@pytest.mark.parametrize("kind", LOWER)
@pytest.mark.parametrize("where", ["host", "same"])
def test_lower_link_in_the_host_namespace_or_the_same_one_is_fine(kind, where):
    nic = "interface eth0" if where == "host" else "interface eth0 { netns blue }"
    result = compile_source(f"netns blue\n{nic}\n{kind} x0 {{ netns blue; {LOWER[kind]} }}\n", "t.vnet")
    devices = {d.name: d for host in result.site.hosts for d in host.devices}
    assert devices["x0"].netns == "blue"


def test_lower_link_in_a_namespace_of_a_device_in_the_host_namespace():
    # The hint names the host's own namespace once (it used to repeat it).
    text = "netns blue\ninterface eth0 { netns blue }\nvlan v0 { link eth0; id 10 }\n"
    assert as_rows(diagnostics_of(text)) == [
        E("vlan 'v0' is in the host's own namespace but its lower link 'eth0' is in namespace 'blue'", 3, 16, 20,
          "vnetc creates a vlan next to its lower link and then moves it, so the link must be in the host's "
          "own namespace too")]


# --- every reference to an undeclared device ---------------------------------------------------

REFERENCES = [
    ("ports", "bridge br0 { address 10.0.0.1/24; ports nope }", 1, 41),
    ("port", "bridge br0 { address 10.0.0.1/24; port nope }", 1, 40),
    ("link", "vlan v0 { link nope; id 1 }", 1, 16),
    ("dev", "vxlan vx0 { vni 1; dev nope }", 1, 24),
    ("master", "interface eth0 { master nope }", 1, 25),
    ("primary", "bond b0 { primary nope }", 1, 19),
    ("standby", "interface eth0\nfailover f0 { primary eth0; standby nope }", 2, 37),
    ("redirect-ingress", "ifb i0 { redirect-ingress nope }", 1, 27),
]


@pytest.mark.parametrize("text, line, col", [r[1:] for r in REFERENCES], ids=[r[0] for r in REFERENCES])
def test_reference_to_an_undeclared_device(text, line, col):
    assert as_rows(diagnostics_of(text + "\n")) == [
        E("unknown device 'nope'", line, col, col + 4, NIC.format("nope"))]


# --- checks that today report more, or less, than they should --------------------------------

@pytest.mark.parametrize("key, expected", [
    ("0011223344",
     E("a MACsec key must be 16 or 32 bytes of hex (32 or 64 hex digits); this one is 5 bytes", 2, 50, 60)),
    ("ab" * 24,
     E("a MACsec key must be 16 or 32 bytes of hex (32 or 64 hex digits); this one is 24 bytes", 2, 50, 98)),
    (KEY + "0", E("a MACsec key has an odd number of hex digits", 2, 50, 83, "each byte is two hex digits")),
    ("zz" * 16, E("a MACsec key is not hex", 2, 50, 82)),
], ids=["5-bytes", "24-bytes", "odd-digits", "not-hex"])
def test_macsec_bad_key_is_one_error(key, expected):
    # A key that fails to parse is still a key: no second "tx-sa 0 needs 'key' or
    # 'key-file'" at 2:25 (found in review; check.py now looks at what was given).
    text = f"interface eth0\nmacsec ms0 {{ link eth0; tx-sa 0 {{ key-id 01; key {key} }} }}\n"
    assert as_rows(diagnostics_of(text)) == [expected]


def test_two_words_for_a_text_property_hint_at_quoting():
    # Fixed bug (regression test): the hint 'quote text with spaces: "…"' is never given: check.py tests
    # isinstance(prop.type, type(None)), which is never true.
    assert as_rows(diagnostics_of("dummy d0 { description uplink to core }\n")) == [
        E("'description' takes one value", 1, 31, 33, 'quote text with spaces: "…"')]


def test_misspelt_required_property_is_one_error():
    # Fixed bug (regression test): the typo also yields "vxlan 'vx0' needs 'vni'" (1:7), a second error for
    # the one mistake whose hint already says "did you mean 'vni'?".
    assert as_rows(diagnostics_of("vxlan vx0 { vin 10 }\n")) == [
        E("unknown property 'vin' for vxlan", 1, 13, 16, "did you mean 'vni'?")]


@pytest.mark.parametrize("text", [
    "vlan v0 { link i0; id 10 }\nifb i0 { redirect-ingress v0 }\n",
    "ifb i0 { redirect-ingress i1 }\nifb i1 { redirect-ingress i0 }\n",
], ids=["vlan-on-an-ifb-that-takes-its-ingress", "two-ifbs-redirecting-into-each-other"])
def test_redirect_loops_do_not_crash(text):
    # Fixed bug (regression test): AssertionError "dependency cycle survived the cycle check" (a traceback):
    # the cycle check ignores redirect-ingress, the dependency order does not.
    try:
        compile_source(text, "t.vnet")
    except CompileError as exc:
        assert all(d.span is not None for d in exc.diagnostics)


def test_failover_on_a_vlan_stacked_on_it_is_a_cycle():
    # primary/standby are edges of the creation order, which is checked for cycles too
    # (this used to end in an AssertionError).
    text = "interface eth1\nfailover f0 { primary v0; standby eth1 }\nvlan v0 { link f0; id 10 }\n"
    diagnostics = diagnostics_of(text)
    assert [d.severity for d in diagnostics] == ["error"]
    assert diagnostics[0].message in ("devices that each need the other to exist first: f0 → v0 → f0",
                                      "devices that each need the other to exist first: v0 → f0 → v0")


def test_value_error_inside_an_interpolated_word_points_into_that_word():
    # Fixed bug (regression test): the offset of the bad part is counted in the expanded text ("a1/b") but
    # applied to the source ("a${x}/b"), so the caret lands on '$' (2:21) instead of
    # on '/' (2:24) or the whole word (2:19-26).
    (d,) = diagnostics_of("let x = 1\ndummy d0 { master a${x}/b }\n")
    assert d.message == "interface name 'a1/b' contains '/', which Linux does not allow"
    assert (d.span.line, d.span.col, d.span.end_col) in [(2, 24, 25), (2, 19, 26)]


def test_vlan_range_error_inside_an_interpolated_word_points_into_that_word():
    # Fixed bug (regression test): same mapping error: the caret covers "}-${" (3:77-81), not "${base * 5}" (3:80-91)
    # or the whole word (3:72-91).
    text = ("let base = 1000\ninterface eth0\n"
            "bridge br0 { vlan-filtering on; address 10.0.0.1/24; port eth0 { vlans ${base}-${base * 5} } }\n")
    (d,) = diagnostics_of(text)
    assert d.message == "VLAN id 5000 is out of range 1–4094"
    assert (d.span.line, d.span.col, d.span.end_col) in [(3, 80, 91), (3, 72, 91)]


# --- warnings -------------------------------------------------------------------------------

WARNINGS = [
    case("inline-tx-sa-key", f"interface eth0\nmacsec ms0 {{ link eth0; tx-sa 1 {{ key-id 01; key {KEY} }} }}\n",
         W("tx-sa 1 holds its key inline", 2, 50, 82, INLINE_KEY_HINT)),
    case("inline-rx-sa-key",
         f"interface eth0\nmacsec ms0 {{ link eth0; rx-channel 52:54:00:00:00:01 1 {{ sa 2 {{ key-id 01; key {KEY} }} }} }}\n",
         W("sa 2 holds its key inline", 2, 80, 112, INLINE_KEY_HINT)),
    case("inline-mka-cak", f"interface eth0\nmacsec ms0 {{ link eth0; mka-cak {KEY}; mka-ckn 01 }}\n",
         W("the MKA CAK is inline", 2, 33, 65, 'use mka-cak-file "/etc/…" readable only by root')),
    case("bridge-with-one-port-and-no-address", "interface eth0\nbridge br0 { ports eth0 }\n",
         W("bridge 'br0' has one port and no address", 2, 8, 11, ONE_PORT_HINT)),
    case("port-mtu-larger-than-master",
         "interface eth0 { mtu 9000; master br0 }\ninterface eth1 { master br0 }\nbridge br0 { mtu 1500 }\n",
         W("MTU 9000 of port 'eth0' is larger than MTU 1500 of its master 'br0'", 1, 22, 26)),
    case("port-mtu-smaller-than-master",
         "interface eth0 { mtu 1000; master br0 }\ninterface eth1 { master br0 }\nbridge br0 { mtu 1500 }\n",
         W("MTU 1000 of port 'eth0' is smaller than MTU 1500 of its master 'br0'; larger frames are dropped",
           1, 22, 26)),
    case("address-on-a-port",
         "interface eth0 { master br0; address 10.0.0.2/24 }\nbridge br0 { address 10.0.0.1/24 }\n",
         W("'eth0' is a port of bridge 'br0'; its address is not used", 1, 38, 49,
           "give the address to 'br0' instead")),
    case("dhcp-on-a-port", "interface eth0 { master br0; dhcp v4 }\nbridge br0 { address 10.0.0.1/24 }\n",
         W("'eth0' is a port of bridge 'br0'; dhcp on it is not used", 1, 35, 37)),
    case("lacp-rate-outside-802.3ad", "interface eth0\nbond b0 { ports eth0; lacp-rate fast }\n",
         W("'lacp-rate' has no effect in mode balance-rr", 2, 33, 37, "it applies to mode 802.3ad")),
    case("primary-in-a-mode-without-primary", "interface eth0\nbond b0 { ports eth0; primary eth0 }\n",
         W("'primary' has no effect in mode balance-rr", 2, 31, 35,
           "it applies to active-backup, balance-tlb and balance-alb")),
    case("port-vlans-without-vlan-filtering",
         "interface eth0\nbridge br0 { address 10.0.0.1/24; port eth0 { pvid 10 } }\n",
         W("port VLAN settings of 'eth0' have no effect: bridge 'br0' has no 'vlan-filtering on'", 2, 52, 54)),
]


@pytest.mark.parametrize("text, expected", WARNINGS)
def test_warning(text, expected):
    result = compile_source(text, "t.vnet")
    assert as_rows(result.warnings) == expected


@pytest.mark.parametrize("text", [
    "interface eth0\ninterface eth1\nbridge br0 { ports eth0 eth1 }\n",
    "interface eth0\nbridge br0 { ports eth0; address 10.0.0.1/24 }\n",
    "interface eth0\nbridge br0 { ports eth0; dhcp v4 }\n",
    "interface eth0\nbridge br0 { ports eth0 }\nbond b0 { ports br0; address 10.0.0.1/24 }\n",
], ids=["two-ports", "address", "dhcp", "itself-a-port"])
def test_no_one_port_warning(text):
    assert compile_source(text, "t.vnet").warnings == ()


def test_strict_makes_a_warning_an_error(tmp_path):
    (tmp_path / "s.vnet").write_text("interface eth0\nbridge br0 { ports eth0 }\n")
    assert run_vnetc("check", "s.vnet", cwd=tmp_path).exit_code == 0
    strict = run_vnetc("check", "--strict", "s.vnet", cwd=tmp_path)
    assert strict.exit_code == 1
    assert strict.stderr.startswith("s.vnet:2:8: error: bridge 'br0' has one port and no address\n")


# --- valid input ----------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["", "\n\n", "# nothing here\n", "let a = 1\n", "netns blue\n"],
                         ids=["empty", "blank-lines", "comment", "let-only", "netns-only"])
def test_a_file_without_devices_is_valid(text):
    result = compile_source(text, "t.vnet")
    assert result.warnings == ()
    assert [len(host.devices) for host in result.site.hosts] == [0]


def test_same_name_in_two_namespaces_is_fine():
    result = compile_source("netns blue\ndummy d0\ndummy d0 { netns blue }\n", "t.vnet")
    assert sorted((d.name, d.netns or "") for d in result.site.hosts[0].devices) == [("d0", ""), ("d0", "blue")]


def test_same_name_in_two_hosts_is_fine():
    result = compile_source("host a { dummy d0 }\nhost b { dummy d0 }\n", "t.vnet")
    assert [(h.name, [d.name for d in h.devices]) for h in result.site.hosts] == [("a", ["d0"]), ("b", ["d0"])]


# --- all errors of a phase, in order ----------------------------------------------------------

def test_several_independent_errors_are_all_reported_in_order():
    text = ("vlan v0 { id 5000 }\n"            # 1:6 needs link (found after 1:14), 1:14 id
            "brige br0\n"                      # 2:1
            "dummy d0 { mtu 10; mtuu 1 }\n"    # 2 errors on line 3
            "vxlan vx0 { vni 16777216; ttl 0; remote 10.0.0.1; group 239.1.1.1 }\n"
            "interface eth0 { master nope }\n")
    assert as_rows(diagnostics_of(text)) == [
        E("vlan 'v0' needs 'link'", 1, 6, 8, "add 'link …' to its block"),
        E("VLAN id 5000 is out of range 1–4094", 1, 14, 18),
        E("unknown statement 'brige'", 2, 1, 6, "did you mean 'bridge'?"),
        E("MTU 10 is out of range 68–65535", 3, 16, 18),
        E("unknown property 'mtuu' for dummy", 3, 20, 24, "did you mean 'mtu'?"),
        E("VNI 16777216 is out of range 0–16777215", 4, 17, 25),
        E("TTL 0 is out of range 1–255", 4, 31, 32),
        E("'remote' and 'group' cannot both be given", 4, 57, 66,
          "a VXLAN sends either to one remote (unicast) or to a multicast group"),
        E("unknown device 'nope'", 5, 25, 29, NIC.format("nope")),
    ]


def test_errors_of_different_checks_come_sorted_by_position():
    # Found in the order: property values, then references, then cycles — reported by position.
    text = ("bridge br0 { ports bond0 }\n"
            "bond bond0 { ports br0 }\n"
            "dummy d0 { master x }\n"
            "dummy d1 { mtu 1 }\n"
            "dummy d0\n")
    diagnostics = diagnostics_of(text)
    positions = [(d.span.line, d.span.col) for d in diagnostics]
    assert positions == sorted(positions)
    assert [d.message for d in diagnostics] == [
        "devices stacked in a cycle: br0 → bond0 → br0",
        "unknown device 'x'",
        "MTU 1 is out of range 68–65535",
        "device 'd0' is declared twice",
    ]


def test_several_expansion_errors_are_all_reported_in_order():
    text = "dummy d${a}\nlet b = ${1 / 0}\nfor i in 3..1 { }\ndummy d${c}\n"
    assert [(d.message, d.span.line) for d in diagnostics_of(text)] == [
        ("unknown name 'a' in interpolation", 1),
        ("division by zero in ${…}", 2),
        ("the range 3..1 is reversed", 3),
        ("unknown name 'c' in interpolation", 4),
    ]


def test_expansion_errors_stop_before_the_checks():
    assert [d.message for d in diagnostics_of("brige br0\ndummy d${x}\n")] == ["unknown name 'x' in interpolation"]


def test_errors_and_warnings_together_are_sorted():
    text = "interface eth0\nbridge br0 { ports eth0 }\ndummy d0 { mtu 1 }\n"
    assert as_rows(diagnostics_of(text)) == [
        W("bridge 'br0' has one port and no address", 2, 8, 11, ONE_PORT_HINT),
        E("MTU 1 is out of range 68–65535", 3, 16, 17),
    ]


# --- the rendered form --------------------------------------------------------------------------

def test_rendered_diagnostic_as_in_the_architecture_document(tmp_path):
    (tmp_path / "site.vnet").write_text("interface eth0\nvlan v0 {\n    link eth0\n    id 5000\n}\n")
    run = run_vnetc("check", "site.vnet", cwd=tmp_path)
    assert run.exit_code == 1
    assert run.stderr == (
        "site.vnet:4:8: error: VLAN id 5000 is out of range 1–4094\n"
        "    4 |     id 5000\n"
        "      |        ^^^^\n"
    )


def test_rendered_hint_and_note():
    (d,) = diagnostics_of("dummy d0 { mtu 1500; mtu 1400 }\n", "x.vnet")
    assert d.render() == (
        "x.vnet:1:22: error: 'mtu' is given twice\n"
        "    1 | dummy d0 { mtu 1500; mtu 1400 }\n"
        "      |                      ^^^\n"
        "      = note: first given at x.vnet:1:12"
    )
    (d,) = diagnostics_of("brige br0\n", "x.vnet")
    assert d.render().splitlines()[-1] == "      = hint: did you mean 'bridge'?"


@pytest.mark.parametrize("pkey", ["0x8000"])
def test_ipoib_pkey_without_a_partition_is_refused(pkey):
    text = f"interface ib0\nipoib i0 {{ link ib0; pkey {pkey} }}\n"
    assert as_rows(diagnostics_of(text)) == [
        E(f"P_Key {pkey} is not a usable partition key", 2, 27, 33,
          "the kernel refuses 0x0000 and 0x8000 (the default partition is 0x7fff/0xffff)")]


def test_a_second_route_to_one_destination_table_and_metric_is_a_warning():
    text = ("interface eth0 {\n    gateway 10.0.0.1\n    route default\n"
            "    route 10.1.0.0/16 via 10.0.0.3\n    route 10.1.0.0/16 via 10.0.0.4 table 7\n}\n")
    result = compile_source(text, "t.vnet")
    assert [(w.message, w.span.line, w.span.col) for w in result.warnings] == [
        ("a second IPv4 default route with metric 0 on 'eth0'", 3, 11)]
    assert result.warnings[0].notes == ("the first is at t.vnet:2:13",)
