"""Hypothesis strategies for vnetc: random VALID .vnet sites, generated from the schema.

`sites()` draws a whole site (one implicit host or several `host` blocks) and
renders it as .vnet text with random layout. Everything about the devices is
driven by the tables of compiler/schema.py:

- every kind of KINDS and every property of props_of(kind) (and of every
  Section, and PEER) is generated: generically from its value type (VALUE_TYPES
  below maps each ValueType class to a generator), or by a handler of SPECIAL
  when the language ties it to other devices or properties (references,
  exclusive choices, the checks of compiler/check.py);
- at import time the module checks that every kind, property, section key,
  qdisc parameter and route option has a generator, and that the per-kind
  checks of the checker (check.KIND_CHECKS) are the ones this module knows.
  A new kind, property, value type or check fails here, loudly, until it is
  taught to the strategy.

The cross-device rules kept so that the site is valid (language.md §4):
references name declared devices of the right namespace (a lower link may be
in the host's own namespace); a device has at most one master, and masters are
bridge/bond/team; no cycles, neither in what is stacked on what (devices are
ranked: a lower link ranks below its upper device, a port below its master) nor
in what must exist first (redirect-ingress and failover primary/standby never
lead back to the device); no device listed twice; bond `primary` is one of its ports;
failover primary != standby; pvid and untagged inside the port's vlans; no
remote + group (and `local` of the same IP version); `source-macs` only with
`mode source`; at most one passthru macvlan/macvtap per link; MACsec either
static SAs (key-id + exactly one of key/key-file, unique ANs) or MKA (cak or
cak-file, with ckn); netdevsim vf index < vfs, unique ids per host; an IPoIB
P_Key is not 0x8000; tbf with
rate + burst + (latency | limit); at most one IPv4 and one IPv6 gateway; unique
names per namespace, names of at most 15 bytes; every namespace declared; each
device's ingress redirected into one IFB at most.

The layout varies: `;` or newlines, indentation, inline blocks `{ a; b }`,
comments, blank lines, CRLF, `let` constants used as `${NAME}`, `$NAME` and
inside words and strings, `${…}` arithmetic, `for` loops (also nested) that
generate devices with `${i}` arithmetic, quoted or bare values where a string
is allowed, optional `host` blocks.

Settings profiles (HYPOTHESIS_PROFILE=NAME): "vnetc", the default, 60 examples, no deadline and no
shrinking (bounded time); "long", 2000 examples, and a failure is shrunk; "quick", 10 examples.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from vnetc.compiler import check as _check
from vnetc.compiler import values as V
from vnetc.compiler.schema import (FLAG, KINDS, MASTER_KINDS, PEER, QDISCS, Kind, Prop, QdiscType, RouteType,
                                   Section, props_of)

# --- settings profiles --------------------------------------------------------------------

_COMMON_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                               HealthCheck.filter_too_much])
#: CI: bounded time even when a property fails, so no shrinking (a site takes ~0.1 s to check and
#: shrinking one runs for minutes); the failing site is printed as generated and saved in .hypothesis/.
settings.register_profile("vnetc", max_examples=60, phases=[Phase.explicit, Phase.reuse, Phase.generate],
                          **_COMMON_SETTINGS)
settings.register_profile("quick", max_examples=10, phases=[Phase.explicit, Phase.reuse, Phase.generate],
                          **_COMMON_SETTINGS)
#: Long runs: many examples, and failures shrunk to a small site.
settings.register_profile("long", max_examples=2000, **_COMMON_SETTINGS)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "vnetc"))


# --- the model: words, statements, devices ----------------------------------------------------

#: A word that may be written bare (language.md §1, and grammar/vnet.lark's WORD without `$`).
_BARE = re.compile(r'[^\s{};#"$]+')


def bare_ok(text: str) -> bool:
    return bool(_BARE.fullmatch(text))


def quote(text: str) -> str:
    """`text` as a vnet string (escapes \\ \" \\n \\t)."""
    out = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{out}"'


@dataclass(eq=False)
class W:
    """One word of the generated file.

    `text` is what the compiler sees after expansion (None when it depends on
    loop variables); `src`, when set, is how the word is written (interpolation);
    `quote` is "no" (bare only), "may" (bare or string) or "must" (a string).
    """

    text: str | None
    src: str | None = None
    quote: str = "no"
    subst: bool = True          # may be replaced by a `let` constant
    num: int | None = None      # the integer value, for `${K + n}` arithmetic


def kw(text: str, subst: bool = True) -> W:
    """A keyword: a kind, a property name. `subst=False` for let/for/in/= which must be written as is."""
    return W(text, subst=subst)


@dataclass(eq=False)
class St:
    words: list[W]
    block: list[St] | None = None


@dataclass(eq=False)
class Group:
    """A `for` loop (or two nested ones) generating devices of one kind from one template."""

    loops: list[tuple[str, int, int]]            # (variable, A, B), outermost first
    envs: list[dict[str, int]]
    name_src: str = ""
    peer_src: str = ""
    devices: list[Dev] = field(default_factory=list)   # the devices of the loop, in order (with peers)
    representative: Dev | None = None


@dataclass(eq=False)
class Dev:
    kind: str
    name: str
    netns: str | None
    rank: float
    group: Group | None = None
    env: dict[str, int] | None = None
    owner: Dev | None = None                 # a veth/vxcan peer: the device that creates it
    peer: Dev | None = None
    master: Dev | None = None
    via: frozenset[str] = frozenset()        # how the master relation is written: master, ports, port
    ports: list[Dev] = field(default_factory=list)
    lower: Dev | None = None
    refs: dict[str, list[Dev]] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)
    shares: Dev | None = None                # a loop device: the representative whose body it shares


@dataclass(eq=False)
class HostModel:
    name: str | None
    netns: list[str]          # usable namespaces: the site's, then the host's own
    own_netns: list[str]      # declared inside the host block
    devices: list[Dev] = field(default_factory=list)
    entries: list[Any] = field(default_factory=list)   # Dev (not a peer) or Group, in text order
    sim_ids: set[int] = field(default_factory=set)
    redirected: set[int] = field(default_factory=set)
    passthru: set[int] = field(default_factory=set)

    def names(self, netns: str | None) -> set[str]:
        return {d.name for d in self.devices if d.netns == netns}


@dataclass
class GenSite:
    """A generated site: its text, and what its IR must contain."""

    text: str
    devices: frozenset[tuple[str | None, str | None, str, str]]     # (host, netns, name, kind)
    masters: dict[tuple[str | None, str | None, str], str]            # (host, netns, name) -> master
    namespaces: dict[str | None, frozenset[str]]                      # host -> declared namespaces
    used: frozenset[tuple[str, str]]                                  # (kind, property) written

    def __repr__(self) -> str:
        return f"GenSite(text=\n{self.text})"


# --- the generator state ---------------------------------------------------------------------

class Gen:
    def __init__(self, draw: Callable, density: float, full: bool = False):
        self.draw = draw
        self.density = density
        self.full = full                    # write every property the rules allow (coverage runs)
        self.loop: Group | None = None      # the loop whose template is being generated
        self.used: set[tuple[str, str]] = set()
        self.counter = 0
        self.host: HostModel | None = None

    def chance(self, p: float) -> bool:
        """True with probability p; shrinks towards False."""
        if p <= 0:
            return False
        if p >= 1:
            return True
        return self.draw(st.integers(0, 99)) >= round(100 * (1 - p))

    def optional(self) -> bool:
        return self.full or self.chance(self.density)

    def pick(self, seq):
        seq = list(seq)
        return seq[self.draw(st.integers(0, len(seq) - 1))]

    def int(self, low: int, high: int) -> int:
        return self.draw(st.integers(low, high))

    def subset(self, seq, low: int = 0, high: int | None = None) -> list:
        seq = list(seq)
        high = len(seq) if high is None else min(high, len(seq))
        if high < low:
            return []
        n = self.int(low, high)
        chosen = []
        pool = list(range(len(seq)))
        for _ in range(n):
            chosen.append(pool.pop(self.int(0, len(pool) - 1)))
        return [seq[i] for i in chosen]

    def shuffle(self, seq) -> list:
        return self.subset(seq, len(seq), len(seq))

    def fresh(self) -> int:
        self.counter += 1
        return self.counter


# --- value generators, one per ValueType class -------------------------------------------------

HEX = "0123456789abcdef"
NAME_FIRST = "abcdefghijklmnopqrstuvwxyz"
NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-_."
NAME_UNICODE = "éüßøλ"
WORD_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.+@,"
PATH_ROOTS = ("/etc/vnetc", "/usr/lib/vnetc", "/var/lib/vnetc", "/run/vnetc")   # never existing files


def _render_int(g: Gen, value: int, arithmetic: bool = True) -> W:
    form = g.int(0, 9)
    if form == 1:
        text = f"0x{value:x}"
    elif form == 2:
        text = f"0X{value:04X}"
    elif form == 3:
        text = f"00{value}"
    else:
        text = str(value)
    w = W(text, num=value)
    if arithmetic and g.chance(0.08):
        w.src = "${" + _expr(g, value) + "}"
    return w


def _expr(g: Gen, value: int) -> str:
    """An integer expression (language.md §1) worth `value`."""
    form = g.int(0, 5)
    b = g.int(0, 50)
    if form == 0:
        return f"{value - b} + {b}"
    if form == 1:
        return f"{value + b}-{b}"
    if form == 2:
        k = g.int(1, 7)
        return f"({value * k + (b % k)}) / {k}"
    if form == 3:
        return f"{value} % {value + b + 1}"
    if form == 4:
        return f"-{b} + 0x{value + b:x}"
    return f" {value} * 1 "


def gen_int(g: Gen, vt: V.Int, value: int | None = None) -> W:
    if value is None:
        value = g.draw(st.one_of(st.integers(vt.low, vt.high), st.sampled_from([vt.low, vt.high])))
    return _render_int(g, value)


def gen_bool(g: Gen, vt: V.Bool) -> W:
    return W(g.pick(vt.TRUE + vt.FALSE))


def gen_enum(g: Gen, vt: V.Enum) -> W:
    return W(g.pick(vt.choices))


def new_name(g: Gen, taken: set[str], budget: int = 15) -> str:
    """A fresh interface name (1–`budget` bytes), not in `taken`."""
    size = g.int(1, max(1, budget if g.chance(0.2) else min(budget, 8)))   # sometimes the longest (15 bytes)
    chars = [g.pick(NAME_FIRST)]
    for _ in range(size - 1):
        chars.append(g.pick(NAME_UNICODE) if g.chance(0.03) else g.pick(NAME_CHARS))
    name = "".join(chars)
    while len(name.encode()) > budget:
        name = name[:-1]
    if name in taken:
        suffix = str(g.fresh())
        name = name[: max(1, budget - len(suffix))] + suffix
        while len(name.encode()) > budget:
            name = name[1:]
        while name in taken:   # pragma: no cover - the counter is unique
            name = "n" + str(g.fresh())
    return name


def gen_name(g: Gen, vt: V.Name) -> W:
    return W(new_name(g, set()))


def gen_word(g: Gen, vt: V.Word) -> W:
    size = g.int(1, 12)
    return W("".join(g.pick(WORD_CHARS) for _ in range(size)), quote="may")


_TEXT = st.text(st.one_of(st.characters(blacklist_categories=("Cs", "Cc")), st.sampled_from("\t\n#;{}\"\\$ ")),
                max_size=24)


def gen_text(g: Gen, vt: V.Text) -> W:
    text = g.draw(_TEXT).replace("${", "$ {")
    w = W(text, quote="may" if bare_ok(text) else "must")
    if g.loop is not None and g.chance(0.3):
        var = g.pick([v for v, _, _ in g.loop.loops])
        w.src = quote(text + " ").rstrip('"') + "${" + var + '}"'
        w.text = None
    return w


def gen_path(g: Gen, vt: V.Path) -> W:
    parts = [g.pick(PATH_ROOTS)]
    for _ in range(g.int(1, 3)):
        parts.append("".join(g.pick(WORD_CHARS) for _ in range(g.int(1, 8))))
    text = "/".join(parts)
    if g.chance(0.2):
        text += g.pick([" with space", "/é.key", "/a b.o"])
    return W(text, quote="may" if bare_ok(text) else "must")


def gen_hex(g: Gen, vt: V.Hex) -> W:
    size = g.pick(vt.sizes) if vt.sizes else g.int(vt.low, vt.high)
    digits = "".join(g.pick(HEX) for _ in range(2 * size))
    if g.chance(0.2):
        digits = digits.upper()
    if g.chance(0.15):
        digits = g.pick(["0x", "0X"]) + digits
    return W(digits)


_JSON = st.recursive(st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                  max_size=3), max_leaves=6)


def gen_json(g: Gen, vt: V.JSONObject) -> W:
    obj = g.draw(st.dictionaries(st.text(max_size=8), _JSON, max_size=4))
    text = json.dumps(obj, ensure_ascii=g.chance(0.5), indent=g.pick([None, None, 1]))
    if "${" in text:
        text = "{}"
    return W(text, quote="must")


def _mac_text(g: Gen, octets: list[int]) -> str:
    text = ":".join(f"{o:02x}" for o in octets)
    return text.upper() if g.chance(0.2) else text


def gen_mac(g: Gen, vt: V.MAC) -> W:
    octets = [g.int(0, 255) for _ in range(6)]
    if vt.unicast:
        octets[0] &= 0xFE
        if not any(octets):
            octets[5] = 1
    return W(_mac_text(g, octets))


#: Networks addresses come from half of the time, so that sites look like sites (the rest: anything).
_NETS = {4: [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "192.168.0.0/16", "172.16.0.0/12", "192.0.2.0/24")],
         6: [ipaddress.ip_network(n) for n in ("2001:db8::/32", "fd00::/8", "fe80::/64")]}


def ip_value(g: Gen, family: int | None = None, multicast: bool | None = None):
    family = family or g.pick([4, 6])
    if multicast is not True and g.chance(0.5):
        net = g.pick(_NETS[family])
        return net[g.int(0, min(net.num_addresses - 1, 2**32))]
    if family == 4:
        value = g.int(0, 2**32 - 1)
        if multicast is True:
            value = 0xE0000000 | (value & 0x0FFFFFFF)
        elif multicast is False and (value >> 28) == 0xE:
            value ^= 0x80000000
        return ipaddress.IPv4Address(value)
    value = g.int(0, 2**128 - 1)
    if multicast is True:
        value = (0xFF << 120) | (value & ((1 << 120) - 1))
    elif multicast is False and (value >> 120) == 0xFF:
        value ^= 0xDF << 120
    if multicast is not True and (value >> 32) == 0xFFFF:     # an IPv4-mapped address: keep it plain
        value |= 1 << 100
    return ipaddress.IPv6Address(value)


def _ip_text(g: Gen, ip) -> str:
    if ip.version == 6 and g.chance(0.15):
        return ip.exploded.upper() if g.chance(0.5) else ip.exploded
    return str(ip)


def gen_ip(g: Gen, vt: V.IP, family: int | None = None) -> W:
    return W(_ip_text(g, ip_value(g, family, vt.multicast)))


def gen_cidr(g: Gen, vt: V.CIDR) -> W:
    ip = ip_value(g)
    length = g.int(0, ip.max_prefixlen)
    if g.loop is not None and ip.version == 4 and g.chance(0.4):
        var, low, high = g.pick(g.loop.loops)
        if high <= 255:
            octets = str(ip).split(".")
            at = g.int(0, 3)
            octets[at] = "${" + var + "}"
            return W(None, src=".".join(octets) + f"/{length}")
    return W(f"{_ip_text(g, ip)}/{length}")


def prefix_text(g: Gen, family: int | None = None) -> str:
    ip = ip_value(g, family)
    length = g.int(0, ip.max_prefixlen)
    return str(ipaddress.ip_network(f"{ip}/{length}", strict=False))


def gen_prefix(g: Gen, vt: V.Prefix) -> W:
    return W("default" if g.chance(0.2) else prefix_text(g))


_TIME_UNITS = (("", None), ("us", 1), ("usec", 1), ("ms", 1000), ("msec", 1000), ("s", 10**6), ("sec", 10**6),
               ("min", 60 * 10**6), ("h", 3600 * 10**6), ("MS", 1000))
_BARE_TIME = {"us": 1, "ms": 1000, "s": 10**6}
_RATE_UNITS = (("", 1), ("bit", 1), ("kbit", 1000), ("mbit", 10**6), ("gbit", 10**9), ("bps", 8), ("kbps", 8000),
               ("mbps", 8 * 10**6), ("kibit", 1024), ("mibit", 1024**2), ("Mbit", 10**6))
_SIZE_UNITS = (("", 1), ("b", 1), ("k", 1024), ("kb", 1024), ("m", 1024**2), ("mb", 1024**2), ("kbit", 128),
               ("mbit", 128 * 1024), ("K", 1024))


def _quantity(g: Gen, units, low: int, high: int, default_scale: int, fallback: str) -> str:
    """A number with a unit whose value (in base units) is within [low, high]."""
    for _ in range(4):
        unit, scale = g.pick(units)
        scale = scale or default_scale
        first, last = -(-low // scale), min(high // scale, 10**7)
        if first > last:
            continue
        n = g.draw(st.one_of(st.integers(first, last), st.sampled_from([first, last])))
        if g.chance(0.15):
            digit = g.int(0, 9)
            value = n * scale + digit * scale // 10
            if low <= value <= high and (n >= 1 or units is _TIME_UNITS):
                return f"{n}.{digit}{unit}"
        return f"{n}{unit}"
    return fallback


def gen_duration(g: Gen, vt: V.Duration) -> W:
    return W(_quantity(g, _TIME_UNITS, vt.low_us, vt.high_us, _BARE_TIME[vt.bare_unit], f"{vt.low_us}us"))


def gen_rate(g: Gen, vt: V.Rate) -> W:
    return W(_quantity(g, _RATE_UNITS, 1, 10**13, 1, "1"))


def gen_size(g: Gen, vt: V.Size) -> W:
    return W(_quantity(g, _SIZE_UNITS, 1, 2**40, 1, "1"))


def vlan_range(g: Gen, low: int = 1, high: int = 4094) -> tuple[int, int]:
    a = g.int(low, high)
    b = a if g.chance(0.5) else g.int(a, min(high, a + g.pick([0, 1, 10, 100, 4094])))
    return (a, b)


def range_text(r: tuple[int, int]) -> str:
    return str(r[0]) if r[0] == r[1] else f"{r[0]}-{r[1]}"


def gen_vlan_range(g: Gen, vt: V.VlanRange) -> W:
    return W(range_text(vlan_range(g)))


def gen_route(g: Gen, vt: RouteType) -> list[W]:
    family = g.pick([4, 6])
    words = [W("default") if g.chance(0.25) else W(prefix_text(g, family))]
    options = g.subset(vt.OPTIONS)
    for option in options:
        words.append(kw(option))
        kind_of_value = vt.OPTIONS[option]
        if option == "via":
            words.append(gen_ip(g, kind_of_value, family if words[0].text != "default" else None))
        else:
            words.append(gen_value(g, kind_of_value))
    return words


#: Qdisc rules beyond the parameter table (schema.QdiscType.parse_words).
QDISC_REQUIRED = {"tbf": ("rate", "burst")}
QDISC_ONE_OF = {"tbf": ("latency", "limit")}


def gen_qdisc(g: Gen, vt: QdiscType) -> list[W]:
    kind = g.pick(QDISCS)
    table = QDISCS[kind]
    words = [W(kind)]
    required = list(QDISC_REQUIRED.get(kind, ()))
    one_of = QDISC_ONE_OF.get(kind, ())
    if one_of:
        required.append(g.pick(one_of))
    flags = [p for p, t in table.items() if t is FLAG]
    chosen = required + [p for p in g.subset(table) if p not in required and p not in one_of and p not in flags]
    if flags and g.chance(0.5):
        chosen.append(g.pick(flags))     # ecn and noecn contradict each other: at most one flag
    for param in g.shuffle(chosen):
        words.append(kw(param))
        if table[param] is not FLAG:
            words.append(gen_value(g, table[param]))
    return words


#: ValueType class -> generator (g, type) -> W, or a list of W for types of several words.
VALUE_TYPES: dict[type, Callable] = {
    V.Int: gen_int, V.Bool: gen_bool, V.Enum: gen_enum, V.Name: gen_name, V.Word: gen_word, V.Text: gen_text,
    V.Path: gen_path, V.Hex: gen_hex, V.JSONObject: gen_json, V.MAC: gen_mac, V.IP: gen_ip, V.CIDR: gen_cidr,
    V.Prefix: gen_prefix, V.Duration: gen_duration, V.Rate: gen_rate, V.Size: gen_size,
    V.VlanRange: gen_vlan_range, RouteType: gen_route, QdiscType: gen_qdisc,
}


def gen_value(g: Gen, vt: V.ValueType, **kwargs) -> W:
    return VALUE_TYPES[type(vt)](g, vt, **kwargs)


def gen_words(g: Gen, vt: V.ValueType) -> list[W]:
    out = VALUE_TYPES[type(vt)](g, vt)
    return out if isinstance(out, list) else [out]


def ref(d: Dev) -> W:
    return W(d.name)


# --- properties: generic (from the value type) and special (the rules of §4) ------------------

def generic_prop(g: Gen, d: Dev, spec: Prop) -> list[St]:
    if not (spec.required or g.optional()):
        return []
    statements = []
    for _ in range(g.int(1, 2) if spec.repeat else 1):
        if getattr(spec.type, "words", False):
            values = gen_words(g, spec.type)
        elif spec.many:
            values = [gen_value(g, spec.type) for _ in range(g.int(1, 3))]
        else:
            values = [_loop_int(g, spec.type) or gen_value(g, spec.type)]
        statements.append(St([kw(spec.name), *values]))
    return statements


def _loop_int(g: Gen, vt) -> W | None:
    """Inside a loop, an Int property may follow the loop variable: ${i * k + c}."""
    if g.loop is None or type(vt) is not V.Int or not g.chance(0.4):
        return None
    var, a, b = g.pick(g.loop.loops)
    k = g.int(1, 3)
    low, high = vt.low - k * a, vt.high - k * b
    if low > high:
        return None
    c = g.int(low, high)
    if k == 1 and c == 0 and g.chance(0.5):
        return W(None, src="$" + var)
    form = f"{var}" if k == 1 else f"{var} * {k}" if g.chance(0.5) else f"{k}*{var}"
    form += "" if c == 0 else f" + {c}" if c > 0 else f" - {-c}"
    return W(None, src="${" + form + "}")


def generic_section(g: Gen, d: Dev, spec: Section, special: dict[str, Callable] | None = None,
                    count: int | None = None) -> list[St]:
    """Sections nobody has taught the strategy about: distinct labels, generic properties."""
    if count is None:
        low = 1 if spec.required or spec.single else 0
        count = low if spec.single else g.int(low, max(low, 2 if g.optional() else 0))
    out, seen = [], set()
    for _ in range(count):
        labels = [gen_value(g, t) for _, t in spec.keys]
        key = tuple(t.parse(w.text) for w, (_, t) in zip(labels, spec.keys))
        if key in seen:
            continue
        seen.add(key)
        out.append(St([kw(spec.name), *labels], section_body(g, d, spec.props, special or {})))
    return out


def section_body(g: Gen, d: Dev, table: dict[str, Prop | Section], special: dict[str, Callable]) -> list[St]:
    body: list[St] = []
    for name, spec in table.items():
        if name in special:
            body.extend(special[name](g, d, spec))
        elif isinstance(spec, Section):
            body.extend(generic_section(g, d, spec))
        else:
            body.extend(generic_prop(g, d, spec))
    return g.shuffle(body)


Handler = Callable[[Gen, Dev, Any], list[St]]


def h_master(g: Gen, d: Dev, spec: Prop) -> list[St]:
    return [St([kw("master"), ref(d.master)])] if d.master and "master" in d.via else []


def h_netns(g: Gen, d: Dev, spec: Prop) -> list[St]:
    return [St([kw("netns"), W(d.netns)])] if d.netns else []


def h_gateway(g: Gen, d: Dev, spec: Prop) -> list[St]:
    families = g.subset([4, 6], 1 if g.full else 0, 2 if g.optional() else 0)
    return [St([kw("gateway"), gen_ip(g, spec.type, family)]) for family in families]


def h_ports(g: Gen, d: Dev, spec: Prop) -> list[St]:
    names = [p for p in d.ports if "ports" in p.via]
    out = []
    while names:
        n = g.int(1, len(names))
        out.append(St([kw(spec.name), *(ref(p) for p in names[:n])]))
        names = names[n:]
    return out


def h_bridge_port(g: Gen, d: Dev, spec: Section) -> list[St]:
    out = []
    for p in d.ports:
        if "port" not in p.via:
            continue
        members: list[tuple[int, int]] = []

        def vlans(g: Gen, d: Dev, s: Prop) -> list[St]:
            if not g.optional():
                return []
            members.extend(vlan_range(g) for _ in range(g.int(1, 3)))
            return [St([kw(s.name), *(W(range_text(r)) for r in members)])]

        def pvid(g: Gen, d: Dev, s: Prop) -> list[St]:
            if not g.optional():
                return []
            if members:
                low, high = g.pick(members)
                return [St([kw(s.name), gen_int(g, s.type, g.int(low, high))])]
            return [St([kw(s.name), gen_int(g, s.type)])]

        def untagged(g: Gen, d: Dev, s: Prop) -> list[St]:
            if not g.optional():
                return []
            if members:
                items = []
                for _ in range(g.int(1, 2)):
                    low, high = g.pick(members)
                    items.append(vlan_range(g, low, high))
            else:
                items = [vlan_range(g) for _ in range(g.int(1, 2))]
            return [St([kw(s.name), *(W(range_text(r)) for r in items)])]

        # vlans first: pvid and untagged must fall inside them (the statements are shuffled later).
        special = {"vlans": vlans, "pvid": pvid, "untagged": untagged}
        table = {"vlans": spec.props["vlans"], **spec.props}
        body = section_body(g, d, table, special)
        block = None if not body and g.chance(0.5) else body
        out.append(St([kw(spec.name), ref(p)], block))
    return out


def h_primary_bond(g: Gen, d: Dev, spec: Prop) -> list[St]:
    if d.group is not None or not d.ports or not g.optional():
        return []
    return [St([kw(spec.name), ref(g.pick(d.ports))])]


def h_refs(g: Gen, d: Dev, spec: Prop) -> list[St]:
    """failover primary/standby, ifb redirect-ingress: chosen in plan_relations."""
    targets = d.refs.get(spec.name, [])
    if not targets:
        return []
    if spec.many:
        out, rest = [], list(targets)
        while rest:
            n = g.int(1, len(rest))
            out.append(St([kw(spec.name), *(ref(t) for t in rest[:n])]))
            rest = rest[n:]
        return out
    return [St([kw(spec.name), ref(targets[0])])]


def h_lower(g: Gen, d: Dev, spec: Prop) -> list[St]:
    return [St([kw(spec.name), ref(d.lower)])] if d.lower else []


def h_vxlan_far(g: Gen, d: Dev, spec: Prop) -> list[St]:
    if d.plan.get("far") != spec.name:
        return []
    return [St([kw(spec.name), gen_ip(g, spec.type, d.plan["family"])])]


def h_vxlan_local(g: Gen, d: Dev, spec: Prop) -> list[St]:
    if not d.plan.get("local"):
        return []
    return [St([kw(spec.name), gen_ip(g, spec.type, d.plan["family"])])]


def h_macvlan_mode(g: Gen, d: Dev, spec: Prop) -> list[St]:
    mode = d.plan.get("mode")
    return [St([kw(spec.name), W(mode)])] if mode else []


def h_source_macs(g: Gen, d: Dev, spec: Prop) -> list[St]:
    if d.plan.get("mode") != "source" or not g.optional():
        return []
    return [St([kw(spec.name), *(gen_mac(g, spec.type) for _ in range(g.int(1, 3)))])
            for _ in range(g.int(1, 2))]


def _sa_sections(g: Gen, d: Dev, spec: Section, at_least: int = 0) -> list[St]:
    """tx-sa / sa sections: distinct ANs, key-id and exactly one of key and key-file."""
    an_type = spec.keys[0][1]
    ans = g.subset(range(an_type.low, an_type.high + 1), 1 if g.full else at_least)

    def key_id(g: Gen, d: Dev, s: Prop) -> list[St]:
        return [St([kw(s.name), gen_value(g, s.type)])]

    use_file = g.chance(0.5)

    def key(g: Gen, d: Dev, s: Prop) -> list[St]:
        return [] if use_file else [St([kw(s.name), gen_value(g, s.type)])]

    def key_file(g: Gen, d: Dev, s: Prop) -> list[St]:
        return [St([kw(s.name), gen_value(g, s.type)])] if use_file else []

    special = {"key-id": key_id, "key": key, "key-file": key_file}
    return [St([kw(spec.name), gen_int(g, an_type, an)], section_body(g, d, spec.props, special)) for an in ans]


def h_tx_sa(g: Gen, d: Dev, spec: Section) -> list[St]:
    return _sa_sections(g, d, spec, 1) if d.plan.get("keys") == "static" else []


def h_rx_channel(g: Gen, d: Dev, spec: Section) -> list[St]:
    if d.plan.get("keys") != "static":
        return []
    out, seen = [], set()
    for _ in range(g.int(1 if g.full else 0, 2)):
        mac = gen_value(g, spec.keys[0][1])
        port_type = spec.keys[1][1]
        port = g.int(port_type.low, port_type.high)
        if (mac.text.lower(), port) in seen:
            continue
        seen.add((mac.text.lower(), port))
        special = {"sa": lambda g, d, s: _sa_sections(g, d, s)}
        out.append(St([kw(spec.name), mac, gen_int(g, port_type, port)], section_body(g, d, spec.props, special)))
    return out


def h_mka(g: Gen, d: Dev, spec: Prop) -> list[St]:
    if d.plan.get("keys") != "mka":
        return []
    if spec.name == "mka-ckn" or spec.name == d.plan["cak"]:
        return [St([kw(spec.name), gen_value(g, spec.type)])]
    return []


def h_peer(g: Gen, d: Dev, spec: Section) -> list[St]:
    peer = d.peer
    body = device_body(g, peer)
    name = W(None, src=d.group.peer_src, subst=False) if d.group else ref(peer)
    return [St([kw(spec.name), name], None if not body and g.chance(0.5) else body)]


def h_sim_id(g: Gen, d: Dev, spec: Prop) -> list[St]:
    if not g.optional():
        return []
    vt = spec.type
    if d.group is not None:
        if len(d.group.loops) != 1:
            return []
        var, a, b = d.group.loops[0]
        for _ in range(3):
            c = g.int(vt.low - a, min(vt.high - b, 1000))
            values = set(range(a + c, b + c + 1))
            if not values & g.host.sim_ids:
                g.host.sim_ids |= values
                form = f"{var} + {c}" if c >= 0 else f"{var} - {-c}"
                return [St([kw(spec.name), W(None, src="${" + form + "}")])]
        return []
    value = g.draw(st.one_of(st.integers(vt.low, vt.high), st.integers(vt.low, 20)))
    if value in g.host.sim_ids:
        return []
    g.host.sim_ids.add(value)
    return [St([kw(spec.name), gen_int(g, vt, value)])]


def h_vfs(g: Gen, d: Dev, spec: Prop) -> list[St]:
    count = d.plan.get("vfs")
    return [] if count is None else [St([kw(spec.name), gen_int(g, spec.type, count)])]


def h_vf(g: Gen, d: Dev, spec: Section) -> list[St]:
    count = d.plan.get("vfs") or 0
    index_type = spec.keys[0][1]
    indexes = g.subset(range(index_type.low, min(count, index_type.high + 1)), 1 if g.full and count else 0, 3)
    return [St([kw(spec.name), gen_int(g, index_type, i)], section_body(g, d, spec.props, {})) for i in indexes]


def h_pkey(g: Gen, d: Dev, spec: Prop) -> list[St]:
    """An IPoIB P_Key: its low 15 bits must not be zero (0x8000 is no partition)."""
    if not g.optional():
        return []
    vt = spec.type
    value = g.draw(st.one_of(st.integers(vt.low, vt.high), st.sampled_from([vt.low, vt.high, 0x7FFF, 0x8001])))
    if value & 0x7FFF == 0:
        value += 1
    return [St([kw(spec.name), gen_int(g, vt, value)])]


#: (kind or "*" for the common properties, property) -> handler. Everything else is generic.
SPECIAL: dict[tuple[str, str], Handler] = {
    ("*", "master"): h_master,
    ("*", "netns"): h_netns,
    ("*", "gateway"): h_gateway,
    ("bridge", "port"): h_bridge_port,
    ("bond", "primary"): h_primary_bond,
    ("failover", "primary"): h_refs,
    ("failover", "standby"): h_refs,
    ("ifb", "redirect-ingress"): h_refs,
    ("vxlan", "remote"): h_vxlan_far,
    ("vxlan", "group"): h_vxlan_far,
    ("vxlan", "local"): h_vxlan_local,
    ("macsec", "tx-sa"): h_tx_sa,
    ("macsec", "rx-channel"): h_rx_channel,
    ("macsec", "mka-cak"): h_mka,
    ("macsec", "mka-cak-file"): h_mka,
    ("macsec", "mka-ckn"): h_mka,
    ("netdevsim", "id"): h_sim_id,
    ("netdevsim", "vfs"): h_vfs,
    ("netdevsim", "vf"): h_vf,
    ("ipoib", "pkey"): h_pkey,
}
for _name, _kind in KINDS.items():
    if _kind.lower:
        SPECIAL[(_name, _kind.lower)] = h_lower
    if _kind.master and "ports" in _kind.props:
        SPECIAL[(_name, "ports")] = h_ports
    if "peer" in _kind.props:
        SPECIAL[(_name, "peer")] = h_peer
    if {"mode", "source-macs"} <= set(_kind.props):
        SPECIAL[(_name, "mode")] = h_macvlan_mode
        SPECIAL[(_name, "source-macs")] = h_source_macs


def handler_of(kind: str, name: str) -> Handler | None:
    return SPECIAL.get((kind, name)) or (SPECIAL.get(("*", name)) if name in PEER.props else None)


# --- per-kind plans: choices several properties depend on ---------------------------------------

def plan_vxlan(g: Gen, d: Dev) -> None:
    d.plan["family"] = g.pick([4, 6])
    d.plan["far"] = g.pick(["remote", "group"]) if g.optional() else None
    d.plan["local"] = g.optional()


def plan_macvlan(g: Gen, d: Dev) -> None:
    choices = list(props_of(KINDS[d.kind])["mode"].type.choices)
    link = d.lower
    if d.group is not None or link is None or id(link) in g.host.passthru:
        choices.remove("passthru")
    mode = g.pick(choices) if g.optional() else None
    if g.full and "source" in choices and g.chance(0.5):
        mode = "source"     # the only mode that allows every property (source-macs)
    if mode == "passthru":
        g.host.passthru.add(id(link))
    d.plan["mode"] = mode


def plan_macsec(g: Gen, d: Dev) -> None:
    d.plan["keys"] = g.pick(["static", "mka"]) if g.optional() else None
    d.plan["cak"] = g.pick(["mka-cak", "mka-cak-file"])


def plan_netdevsim(g: Gen, d: Dev) -> None:
    vt = KINDS["netdevsim"].props["vfs"].type
    d.plan["vfs"] = g.int(max(vt.low, 1 if g.full else 0), min(vt.high, g.pick([4, vt.high]))) \
        if g.optional() else None


KIND_PLANS: dict[str, Callable[[Gen, Dev], None]] = {
    "vxlan": plan_vxlan, "macvlan": plan_macvlan, "macvtap": plan_macvlan, "macsec": plan_macsec,
    "netdevsim": plan_netdevsim,
}

#: The per-kind checks of check.py this module keeps (a new one must be taught here first).
KNOWN_KIND_CHECKS = {"vxlan", "macvlan", "macvtap", "bridge", "bond", "macsec", "netdevsim", "failover", "ipoib"}

#: Properties of sections handled by the section's handler rather than generically.
SECTION_SPECIAL = {
    ("bridge", "port"): {"pvid", "vlans", "untagged"},
    ("macsec", "tx-sa"): {"key-id", "key", "key-file"},
    ("macsec", "rx-channel"): {"sa"},
    ("macsec", "sa"): {"key-id", "key", "key-file"},
    ("netdevsim", "vf"): set(),
}


def device_body(g: Gen, d: Dev) -> list[St]:
    if d.owner is not None:
        table = PEER.props
    else:
        table = props_of(KINDS[d.kind])
        plan = KIND_PLANS.get(d.kind)
        if plan:
            plan(g, d)
    body = []
    for name, spec in table.items():
        handler = handler_of(d.kind, name) if d.owner is None else SPECIAL.get(("*", name))
        if handler is not None:
            produced = handler(g, d, spec)
        elif isinstance(spec, Section):
            produced = generic_section(g, d, spec)
        else:
            produced = generic_prop(g, d, spec)
        if produced:
            g.used.add((d.kind, name))
        body.extend(produced)
    return g.shuffle(body)


# --- the import-time check: every kind, property and value type has a generator -----------------

def _types_of(table: dict[str, Prop | Section], where: str):
    for name, spec in table.items():
        if isinstance(spec, Section):
            for key, t in spec.keys:
                yield f"{where} {name} label {key}", t
            yield from _types_of(spec.props, f"{where} {name}")
        else:
            yield f"{where} {name}", spec.type


def _generic_problems(table: dict[str, Prop | Section], where: str, handled: set[str] = frozenset()) -> list[str]:
    """What generic_prop/generic_section cannot do right in `table` (besides the `handled` names)."""
    problems = []
    for name, spec in table.items():
        if name in handled:
            continue
        if spec.ref:
            problems.append(f"{where} '{name}' names devices but has no handler")
        if isinstance(spec, Section):
            problems.extend(_generic_problems(spec.props, f"{where} {name}",
                                              SECTION_SPECIAL.get((where.split()[0], name), set())))
    return problems


def _check_coverage() -> None:
    problems = []
    unknown_checks = set(_check.KIND_CHECKS) ^ KNOWN_KIND_CHECKS
    if unknown_checks:
        problems.append(f"check.KIND_CHECKS changed ({sorted(unknown_checks)}): teach the strategy the new rules")
    types = list(_types_of(PEER.props, "common"))
    for kind_name, kind in KINDS.items():
        types.extend(_types_of(kind.props, kind_name))
        table = props_of(kind)
        handled = {name for name in table if handler_of(kind_name, name) is not None}
        problems.extend(_generic_problems(table, kind_name, handled))
        for name in handled:
            spec = table[name]
            if isinstance(spec, Section) and spec is not PEER:
                if (kind_name, name) not in SECTION_SPECIAL:
                    problems.append(f"{kind_name} section '{name}' has a handler but no SECTION_SPECIAL entry")
                problems.extend(_generic_problems(spec.props, f"{kind_name} {name}",
                                                  SECTION_SPECIAL.get((kind_name, name), set())))
        if kind.lower and kind.lower not in kind.props:
            problems.append(f"{kind_name}: lower property '{kind.lower}' is not in its table")
    for kind_name, params in QDISCS.items():
        types.extend((f"qdisc {kind_name} {p}", t) for p, t in params.items() if t is not FLAG)
        if sum(t is FLAG for t in params.values()) > 2:
            problems.append(f"qdisc {kind_name} has new flags: teach gen_qdisc which contradict")
    types.extend((f"route {o}", t) for o, t in RouteType.OPTIONS.items())
    for where, t in types:
        if type(t) not in VALUE_TYPES:
            problems.append(f"{where}: no generator for value type {type(t).__name__} (add it to VALUE_TYPES)")
    if set(MASTER_KINDS) - {"bridge", "bond", "team"}:
        problems.append(f"new master kinds {MASTER_KINDS}: check how their ports are written")
    assert not problems, "the strategy does not cover the schema:\n  " + "\n  ".join(problems)


_check_coverage()


# --- the skeleton: hosts, namespaces, devices, relations ------------------------------------------

LOOP_VARS = ("i", "j", "n")


def _netns_name(g: Gen, taken: set[str]) -> str:
    chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.+-"
    name = g.pick("abcdefghijklmnopqrstuvwxyz") + "".join(g.pick(chars) for _ in range(g.int(0, 8)))
    while name in taken:
        name += str(g.fresh())
    return name


def _host_name(g: Gen, taken: set[str]) -> str:
    chars = "abcdefghijklmnopqrstuvwxyz0123456789.-"
    name = g.pick("abcdefghijklmnopqrstuvwxyz0123456789") + "".join(g.pick(chars) for _ in range(g.int(0, 10)))
    while name in taken:
        name += str(g.fresh())
    return name


def _add(host: HostModel, d: Dev) -> Dev:
    host.devices.append(d)
    return d


def _make_loop(g: Gen, host: HostModel, kind: str, netns: str | None, peer_netns: str | None, rank: float) -> Group:
    nested = g.chance(0.25)
    loops = []
    for var in LOOP_VARS[: 2 if nested else 1]:
        a = g.pick([0, 1, g.int(0, 300), g.int(0, 9)])
        b = a + g.int(0, 1 if nested else 3)
        loops.append((var, a, b))
    envs = [{}]
    for var, a, b in loops:
        envs = [{**env, var: v} for env in envs for v in range(a, b + 1)]
    group = Group(loops, envs)

    def template(taken_ns: str | None, extra: set[str]) -> tuple[str, Callable[[dict], str]]:
        taken = host.names(taken_ns) | extra
        for _ in range(20):
            prefix = new_name(g, set(), 8)
            if len(loops) == 1:
                var, a, b = loops[0]
                k, c = g.pick([1, 1, 2]), g.int(0, 20)
                if k == 1 and c == 0:
                    src = g.pick(["${" + var + "}", "${ " + var + " }"])
                    f = lambda env, var=var: str(env[var])  # noqa: E731
                elif k == 1:
                    src, f = "${" + f"{var} + {c}" + "}", (lambda env, var=var, c=c: str(env[var] + c))
                else:
                    src, f = "${" + f"{var}*{k}+{c}" + "}", (lambda env, var=var, k=k, c=c: str(env[var] * k + c))
            else:
                (i, ai, bi), (j, aj, bj) = loops
                if bj <= 9 and g.chance(0.5):
                    src, f = "${" + f"{i} * 10 + {j}" + "}", (lambda env, i=i, j=j: str(env[i] * 10 + env[j]))
                else:
                    src, f = "${" + i + "}x${" + j + "}", (lambda env, i=i, j=j: f"{env[i]}x{env[j]}")
            names = [prefix + f(env) for env in envs]
            if all(len(n.encode()) <= 15 for n in names) and not set(names) & taken:
                return prefix + src, (lambda env, prefix=prefix, f=f: prefix + f(env))
        raise _GiveUp

    group.name_src, name_of = template(netns, set())
    has_peer = "peer" in KINDS[kind].props
    if has_peer:
        owners = {name_of(env) for env in envs} if peer_netns == netns else set()
        group.peer_src, peer_of = template(peer_netns, owners)
    step = 1 / (2 * len(envs) + 2)
    for n, env in enumerate(envs):
        d = _add(host, Dev(kind, name_of(env), netns, rank + n * step * 2, group, env))
        group.devices.append(d)
        if has_peer:
            peer = _add(host, Dev(kind, peer_of(env), peer_netns, d.rank + step, group, env, owner=d))
            d.peer = peer
            group.devices.append(peer)
    rep = group.devices[0]
    group.representative = rep
    for d in group.devices:
        if d.owner is None and d is not rep:
            d.shares = rep
        elif d.owner is not None and d is not rep.peer:
            d.shares = rep.peer
    return group


class _GiveUp(Exception):
    """The drawn choices cannot make a valid loop; the caller drops the entry."""


def _skeleton(g: Gen, host: HostModel, count: int, focus: str | None) -> None:
    kinds = list(KINDS) + list(MASTER_KINDS)     # masters a little more often: more ports and stacking
    plan = [g.pick(kinds) for _ in range(count)]
    shared_ns = None
    if focus:
        plan[0] = focus
        if g.full:    # a port for it, then it, then a master for it: every property can be written
            plan[:1] = [g.pick([k for k in KINDS if k not in MASTER_KINDS]), focus, g.pick(MASTER_KINDS)]
            shared_ns = g.pick([None, *host.netns])
        else:
            plan = [focus if g.chance(0.3) else k for k in plan]
    for kind in plan:
        netns = g.pick(host.netns) if host.netns and g.chance(0.3) else None
        if g.full:
            netns = shared_ns
        peer_netns = None
        if "peer" in KINDS[kind].props:
            peer_netns = g.pick(host.netns) if host.netns and g.chance(0.5) else None
        rank = float(len(host.entries))
        if not g.full and g.chance(0.15):
            snapshot = list(host.devices)
            try:
                host.entries.append(_make_loop(g, host, kind, netns, peer_netns, rank))
                continue
            except _GiveUp:
                host.devices[:] = snapshot
        d = _add(host, Dev(kind, new_name(g, host.names(netns)), netns, rank))
        host.entries.append(d)
        if "peer" in KINDS[kind].props:
            taken = host.names(peer_netns)
            d.peer = _add(host, Dev(kind, new_name(g, taken), peer_netns, rank + 0.5, owner=d))


def _interface(g: Gen, host: HostModel, netns: str | None, below: float) -> Dev:
    """A new `interface` ranked below `below` (for a required reference with no candidate)."""
    d = _add(host, Dev("interface", new_name(g, host.names(netns)), netns, below - 0.25 - g.fresh() * 1e-6))
    host.entries.append(d)
    return d


def _lower_candidates(host: HostModel, d: Dev) -> list[Dev]:
    out = []
    own = host.names(d.netns)
    for t in host.devices:
        if t.rank >= d.rank or (t.group is not None and t.group is d.group):
            continue
        if t.netns == d.netns or (t.netns is None and t.name not in own):
            out.append(t)
    return out


def _dependencies(d: Dev) -> list[Dev]:
    """What must exist before `d` (check.py's creation order): its lower link, master, creator, the
    devices an IFB takes ingress from, a failover's slaves."""
    deps = [x for x in (d.lower, d.master, d.owner) if x is not None]
    for targets in d.refs.values():
        deps.extend(targets)
    return deps


def _reaches(start: Dev, goals: set[int]) -> bool:
    seen, todo = set(), [start]
    while todo:
        x = todo.pop()
        if id(x) in goals:
            return True
        if id(x) not in seen:
            seen.add(id(x))
            todo.extend(_dependencies(x))
    return False


def _relations(g: Gen, host: HostModel) -> None:
    """Lower links (ranked down: no stacking cycle), then the other references (never back to the device
    through what must exist first), then masters (ranked up)."""
    by_rank = sorted(host.devices, key=lambda x: x.rank)
    for d in by_rank:
        kind = KINDS[d.kind]
        if kind.lower and d.owner is None:
            if d.shares is not None:
                d.lower = d.shares.lower
            elif kind.props[kind.lower].required or g.full or g.chance(0.6):
                candidates = _lower_candidates(host, d)
                d.lower = g.pick(candidates) if candidates and g.chance(0.9) else _interface(g, host, d.netns, d.rank)
    for d in by_rank:
        if d.owner is not None:
            continue
        if d.shares is not None:
            d.refs = d.shares.refs
            continue
        siblings = {id(x) for x in d.group.devices} if d.group else {id(d)}

        def acyclic(t: Dev) -> bool:
            return id(t) not in siblings and not _reaches(t, siblings)

        if d.kind == "failover":
            pool = [t for t in host.devices if t.netns == d.netns and acyclic(t)]
            while len(pool) < 2:
                pool.append(_interface(g, host, d.netns, d.rank))
            first = g.pick(pool)
            second = g.pick([t for t in pool if t is not first])
            d.refs["primary"], d.refs["standby"] = [first], [second]
        if d.kind == "ifb" and d.group is None and g.optional():
            pool = [t for t in host.devices if t.netns == d.netns and id(t) not in host.redirected and acyclic(t)]
            chosen = g.subset(pool, 1, 3)
            host.redirected.update(id(t) for t in chosen)
            d.refs["redirect-ingress"] = chosen
    for d in sorted(host.devices, key=lambda x: x.rank):
        rep = d.shares
        if rep is not None and rep.master is not None:
            d.master, d.via = rep.master, rep.via
            rep.master.ports.append(d)
            continue
        if not (g.full or g.chance(0.5)):
            continue
        masters = [m for m in host.devices if m.kind in MASTER_KINDS and m.rank > d.rank and m.netns == d.netns
                   and m is not d and (m.group is None or m.group is not d.group)]
        if not masters:
            continue
        m = g.pick(masters)
        ways = ["master"] + [p for p in ("ports", "port") if p in KINDS[m.kind].props]
        if m.group is not None:
            ways = ["master"]           # a loop's body is shared: its devices cannot list ports
        if rep is not None:
            ways.remove("master")       # ... nor can one device of a loop name a master the others lack
        if not ways:
            continue
        # Saying it in several places is allowed ("the same as listing it in that device's ports").
        d.master, d.via = m, frozenset(ways if g.full else g.subset(ways, 1))
        m.ports.append(d)


# --- rendering: statements to text with random layout ----------------------------------------

class Renderer:
    """Layout. The knobs are drawn (they shrink to the plainest layout); the choices for each statement
    come from a seeded Random, which costs far less than a draw each."""

    COMMENT_CHARS = "abcdefghij XYZ0123456789#{}\";$\t\\é€λ\u00a0\u2028\U0001f600"

    def __init__(self, g: Gen):
        self.g = g
        self.rng = random.Random(g.int(0, 2**32 - 1))
        self.indent = g.pick(["    ", "  ", "\t", "", "        "])
        self.inline_p = g.pick([0.0, 0.2, 0.6])
        self.semicolon_p = g.pick([0.0, 0.1, 0.4])
        self.comment_p = g.pick([0.0, 0.1, 0.3])
        self.blank_p = g.pick([0.0, 0.1, 0.3])
        self.gap_p = g.pick([0.0, 0.2])
        self.quote_p = g.pick([0.0, 0.5, 1.0])

    def chance(self, p: float) -> bool:
        return p > 0 and self.rng.random() < p

    def pick(self, seq):
        return self.rng.choice(seq)

    def comment(self) -> str:
        return "#" + "".join(self.rng.choice(self.COMMENT_CHARS) for _ in range(self.rng.randint(0, 20)))

    def word(self, w: W) -> str:
        if w.src is not None:
            return w.src
        assert w.text is not None
        if w.quote == "must" or (w.quote == "may" and self.chance(self.quote_p)) or not w.text:
            return quote(w.text)
        return w.text

    def words(self, ws: list[W]) -> str:
        gap = self.pick(["  ", "\t", " \f", " \v "]) if self.chance(self.gap_p) else " "
        return gap.join(self.word(w) for w in ws)

    def inline(self, s: St) -> str:
        text = self.words(s.words)
        if s.block is not None:
            text += self.pick([" ", "", "  "]) + self.block_inline(s.block)
        return text

    def block_inline(self, block: list[St]) -> str:
        if not block:
            return self.pick(["{}", "{ }"])
        sep = self.pick(["; ", ";", " ; ", ";; "])
        inner = sep.join(self.inline(s) for s in block)
        return "{" + self.pick([" ", "", ";"]) + inner + self.pick([" ", "", "; "]) + "}"

    def statement(self, s: St, depth: int) -> str:
        text = self.words(s.words)
        if s.block is None:
            return text
        if not s.block:
            return text + self.pick([" {}", "{}", " { }", " {\n" + self.indent * depth + "}"])
        if self.chance(self.inline_p):
            return text + " " + self.block_inline(s.block)
        head = text + " {"
        if self.chance(self.comment_p):
            head += " " + self.comment()
        return head + "\n" + self.items(s.block, depth + 1) + self.indent * depth + "}"

    def items(self, statements: list[St], depth: int) -> str:
        out: list[str] = []
        same_line = False
        for n, s in enumerate(statements):
            if not same_line:
                if self.chance(self.blank_p):
                    out.append(self.pick(["\n", "\n\n", "  \n"]))
                if self.chance(self.comment_p):
                    out.append(self.indent * depth + self.comment() + "\n")
                out.append(self.indent * depth)
            out.append(self.statement(s, depth))
            last = n == len(statements) - 1
            if not last and self.chance(self.semicolon_p):
                out.append(self.pick(["; ", ";", " ; ", ";; "]))
                same_line = True
                continue
            same_line = False
            if self.chance(self.semicolon_p):
                out.append(";")
            if self.chance(self.comment_p):
                out.append(self.pick([" ", "  ", "\t"]) + self.comment())
            out.append("\n")
        return "".join(out)


# --- let constants -------------------------------------------------------------------------

def _walk(statements: list[St]):
    for s in statements:
        yield from s.words
        if s.block:
            yield from _walk(s.block)


def _let_name(r: Renderer, taken: set[str]) -> str:
    first = "ABCDEFGHIJKLMNOPQRSTUVWXYZ_"
    rest = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"
    name = r.pick(first) + "".join(r.pick(rest) for _ in range(r.rng.randint(0, 6)))
    while name in taken or name in LOOP_VARS:
        name += str(len(taken))
    return name


def _lets(g: Gen, statements: list[St], r: Renderer) -> list[St]:
    """Replace some words by `let` constants; return the `let` statements."""
    p = g.pick([0.0, 0.05, 0.2])
    lets: list[St] = []
    taken: set[str] = set()
    for w in _walk(statements):
        if not w.subst or w.src is not None or w.text is None or not r.chance(p):
            continue
        name = _let_name(r, taken)
        taken.add(name)
        text = w.text
        form = r.rng.randint(0, 3)
        as_string = w.quote == "must" or (w.quote == "may" and r.chance(0.5))
        if form == 0 and text:                              # part of the word
            start = r.rng.randint(0, len(text) - 1)
            end = r.rng.randint(start + 1, len(text))
            value = text[start:end]
            pre, post = text[:start], text[end:]
            if as_string:
                w.src = quote(pre)[:-1] + "${" + name + "}" + quote(post)[1:]
            else:
                w.src = pre + "${" + name + "}" + post
        elif form == 1 and w.num is not None:               # arithmetic on a constant
            delta = r.rng.randint(-5, 5)
            value = str(w.num - delta)
            w.src = "${" + f"{name} + {delta}" + "}" if delta >= 0 else "${" + f"{name} - {-delta}" + "}"
        elif form == 2 and bare_ok(text):                   # $NAME
            value = text
            w.src = "$" + name
        else:                                               # the whole word
            value = text
            w.src = '"${' + name + '}"' if as_string else "${" + name + "}"
        rendered = value if bare_ok(value) and not r.chance(0.2) else quote(value)
        lets.append(St([kw("let", False), W(name, subst=False), kw("=", False), W(None, src=rendered)]))
    return lets


# --- the site strategy -----------------------------------------------------------------------

def _entry_statements(g: Gen, host: HostModel, entry) -> St:
    if isinstance(entry, Group):
        rep = entry.representative
        g.loop = entry
        body = device_body(g, rep)
        g.loop = None
        device = St([kw(rep.kind), W(None, src=entry.name_src, subst=False)], body)
        for var, a, b in reversed(entry.loops):
            bounds = f"{a}..{b}" if g.chance(0.8) else f"0x{a:x}..0x{b:X}"
            device = St([kw("for", False), W(var, subst=False), kw("in", False), W(bounds)], [device])
        return device
    body = device_body(g, entry)
    block = body if body or g.chance(0.5) else None
    return St([kw(entry.kind), ref(entry)], block)


@st.composite
def sites(draw, focus: str | None = None, full: bool = False, max_devices: int = 8) -> GenSite:
    """A random valid site. `focus`: a kind that appears at least once; `full`: write every property
    the rules allow, on a device of the focus kind with a port and a master (for coverage runs)."""
    density = 1.0 if full else draw(st.sampled_from([0.1, 0.3, 0.6, 1.0]))
    g = Gen(draw, density, full)
    multi = g.chance(0.25)
    site_ns: list[str] = []
    taken_ns: set[str] = set()
    for _ in range(g.int(1 if full else 0, 2)):
        site_ns.append(_netns_name(g, taken_ns))
        taken_ns.add(site_ns[-1])
    hosts: list[HostModel] = []
    host_names: set[str] = set()
    for _ in range(g.int(1, 3) if multi else 1):
        name = _host_name(g, host_names) if multi else None
        if name:
            host_names.add(name)
        own = []
        if multi:
            for _ in range(g.int(0, 1)):
                own.append(_netns_name(g, taken_ns | set(own)))
        host = HostModel(name, site_ns + own, own)
        g.host = host
        _skeleton(g, host, g.int(1, max_devices), focus)
        _relations(g, host)
        hosts.append(host)

    top: list[St] = []
    netns_statements = [St([kw("netns"), W(ns)]) for ns in site_ns]
    for host in hosts:
        g.host = host
        entries = [_entry_statements(g, host, e) for e in host.entries]
        entries = g.shuffle(entries)
        if host.name is None:
            top.extend(entries)
        else:
            own = [St([kw("netns"), W(ns)]) for ns in host.own_netns]
            body = own + entries
            if own and g.chance(0.5):
                body = g.shuffle(body)
            top.append(St([kw("host"), W(host.name)], body))
    if netns_statements:
        at = g.int(0, len(top))
        top[at:at] = netns_statements

    renderer = Renderer(g)
    lets = _lets(g, top, renderer)
    text = renderer.items(lets + top, 0)
    if g.chance(0.2):
        text = renderer.comment() + "\n" + text
    if g.chance(0.1):
        text = text.rstrip("\n")
    if g.chance(0.08):
        text = text.replace("\n", "\r\n")

    devices, masters, namespaces = set(), {}, {}
    for host in hosts:
        namespaces[host.name] = frozenset(host.netns)
        for d in host.devices:
            devices.add((host.name, d.netns, d.name, d.kind))
            if d.master is not None:
                masters[(host.name, d.netns, d.name)] = d.master.name
    return GenSite(text, frozenset(devices), masters, namespaces, frozenset(g.used))


# --- mutations of valid files ----------------------------------------------------------------

#: A lexer good enough to cut a file into the pieces a person would edit.
TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"?|#[^\n]*|\$\{[^}\n]*\}?|[{};]|\r?\n|[ \t\r\f\v]+|[^\s{};#"$]+|.', re.S)

FRAGMENTS = ("{", "}", '"', "$", "${", "}", ";", "\0", "#", "\n", "\\", "${i", "${}", "${1/0}", "${x}", "..",
             "=", "let", "for", "host", "netns", "include", "in", "\u00a0", "\ufeff", "é", "\t", " ", "\r", "0x",
             "-", "/", ":", "\\n", "\"\\q\"", "0..0", "{}", "; }", "\u2028", "\x1c", "\x85", "99999999999999999",
             "${1*99999999999}", "${(((((", "$$", "x" * 20, 'include "', 'include "part.vnet"\n', "include part.vnet",
             'include "part.vnet', "x {" * 70, "}" * 70, "$A", "${A}", "let A = 1\n")
BAD_BYTES = (b"\xff", b"\xfe", b"\xc3", b"\xe2\x82", b"\x80", b"\xef\xbb\xbf", b"\x00", b"\xed\xa0\x80", b"\xc0\xaf")


def tokens(text: str) -> list[str]:
    out = TOKEN.findall(text)
    assert "".join(out) == text
    return out


@st.composite
def mutated(draw, base: st.SearchStrategy[str]) -> str:
    """A valid file with 1–3 random edits: a token deleted, duplicated, swapped, random text inserted, or
    the file truncated."""
    text = draw(base)
    kinds_and_props = sorted({*KINDS, *(p for k in KINDS.values() for p in props_of(k))})
    for _ in range(draw(st.integers(1, 3))):
        parts = tokens(text)
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "replace", "insert", "insert", "truncate"]))
        if not parts:
            op = "insert"
        if op == "delete":
            i = draw(st.integers(0, len(parts) - 1))
            del parts[i]
        elif op == "duplicate":
            i = draw(st.integers(0, len(parts) - 1))
            parts.insert(i, parts[i])
        elif op == "swap":
            i, j = draw(st.integers(0, len(parts) - 1)), draw(st.integers(0, len(parts) - 1))
            parts[i], parts[j] = parts[j], parts[i]
        elif op == "replace":
            i = draw(st.integers(0, len(parts) - 1))
            parts[i] = draw(st.one_of(st.sampled_from(parts), st.sampled_from(FRAGMENTS),
                                      st.sampled_from(kinds_and_props)))
        elif op == "insert":
            fragment = draw(st.one_of(st.sampled_from(FRAGMENTS), st.sampled_from(kinds_and_props),
                                      st.text(max_size=4), st.sampled_from(parts or ["x"])))
            where = draw(st.sampled_from(["anywhere", "between tokens", "inside a token"]))
            if where == "anywhere" or not parts:
                at = draw(st.integers(0, len(text)))
                text = text[:at] + fragment + text[at:]
                continue
            if where == "between tokens":
                parts.insert(draw(st.integers(0, len(parts))), fragment)
            else:
                i = draw(st.integers(0, len(parts) - 1))
                at = draw(st.integers(0, len(parts[i])))
                parts[i] = parts[i][:at] + fragment + parts[i][at:]
        else:
            at = draw(st.integers(0, len(text)))
            text = text[:at]
            continue
        text = "".join(parts)
    return text


@st.composite
def mutated_bytes(draw, base: st.SearchStrategy[str]) -> bytes:
    """A mutated file as bytes, sometimes with bytes that are not UTF-8."""
    data = draw(mutated(base)).encode("utf-8")
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from(BAD_BYTES) | st.binary(min_size=1, max_size=3)) + data[at:]
    return data
