"""Value types of the language (language.md §3, "Values").

Each type turns the text of one word into a Python value, or raises
:class:`BadValue` with a message (and maybe a hint) that the checker reports at
the word's position. Types are small objects so that the schema can hold them
as data (``Int(1, 4094, "VLAN id")``).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from .diagnostics import did_you_mean

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Integers longer than this many digits are refused before conversion.
MAX_DIGITS = 30


class BadValue(Exception):
    def __init__(self, message: str, hint: str | None = None, offset: int = 0, length: int = 0,
                 word: int = 0):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.offset = offset  # where in the word the problem starts
        self.length = length  # 0: the whole word
        self.word = word      # for values of several words: which one


class ValueType:
    """Base: ``describe`` names the type in messages, ``parse`` converts one word."""

    describe = "a value"

    def parse(self, text: str) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def render(self, value: Any) -> str:
        """The canonical text of a value (used by `ir` JSON and the backends)."""
        return str(value)


# --- numbers ---------------------------------------------------------------

_INT = re.compile(r"0[xX][0-9a-fA-F]+|[0-9]+")


def parse_int(text: str) -> int:
    """Decimal or hex; raises BadValue on anything else or on absurd length."""
    if len(text) > MAX_DIGITS:
        raise BadValue(f"number '{text[:12]}…' has {len(text)} digits; at most {MAX_DIGITS} are accepted")
    if not _INT.fullmatch(text):
        raise BadValue(f"'{text}' is not a number", "write a decimal number or hex like 0x8001")
    return int(text, 16) if text[:2] in ("0x", "0X") else int(text, 10)


class Int(ValueType):
    def __init__(self, low: int, high: int, label: str = ""):
        self.low, self.high, self.label = low, high, label

    @property
    def describe(self) -> str:
        return f"a number {self.low}–{self.high}"

    def parse(self, text: str) -> int:
        value = parse_int(text)
        if not self.low <= value <= self.high:
            label = self.label or "value"
            raise BadValue(f"{label} {text} is out of range {_fmt_int(self.low, text)}–{_fmt_int(self.high, text)}")
        return value


def _fmt_int(value: int, like: str) -> str:
    return f"0x{value:04x}" if like[:2] in ("0x", "0X") else str(value)


class Bool(ValueType):
    describe = "on or off"
    TRUE = ("on", "yes", "true")
    FALSE = ("off", "no", "false")

    def parse(self, text: str) -> bool:
        if text in self.TRUE:
            return True
        if text in self.FALSE:
            return False
        raise BadValue(f"'{text}' is not a boolean", "write on or off (yes/no and true/false work too)")

    def render(self, value: Any) -> str:
        return "on" if value else "off"


class Enum(ValueType):
    def __init__(self, choices: tuple[str, ...], label: str = "value"):
        self.choices, self.label = choices, label

    @property
    def describe(self) -> str:
        return "one of " + ", ".join(self.choices)

    def parse(self, text: str) -> str:
        if text in self.choices:
            return text
        hint = did_you_mean(text, self.choices) or f"expected one of: {', '.join(self.choices)}"
        raise BadValue(f"unknown {self.label} '{text}'", hint)


# --- names and text --------------------------------------------------------

_BAD_NAME = re.compile(r"[/:\s]")
_BLANK = re.compile(r"\s")


class Name(ValueType):
    """A Linux interface name (IFNAMSIZ - 1 bytes; the kernel's dev_valid_name)."""

    describe = "an interface name"

    def parse(self, text: str) -> str:
        size = len(text.encode("utf-8"))
        if size == 0:
            raise BadValue("an interface name cannot be empty")
        if size > 15:
            raise BadValue(f"interface name '{text}' is {size} bytes long; Linux allows at most 15")
        if text in (".", ".."):
            raise BadValue(f"'{text}' is not a valid interface name")
        if not _BAD_NAME.search(text) and text.isprintable():
            return text
        i, ch = _forbidden(text, "/:")
        shown = text.encode("unicode_escape").decode("ascii")
        raise BadValue(f"interface name '{shown}' contains {ch!r}, which Linux does not allow", offset=i, length=1)


def _forbidden(text: str, also: str = "") -> tuple[int, str]:
    """The first blank or control character of `text` (or one of `also`), with its index;
    the caller has seen that there is one."""
    return next((i, ch) for i, ch in enumerate(text) if ch in also or ch.isspace() or not ch.isprintable())


class Word(ValueType):
    """One word: a user or group name, a driver name. Every target writes it as a value of its
    own (a networkd `Driver=` glob list splits at blanks), so no blank or control character."""

    describe = "a word"

    def parse(self, text: str) -> str:
        if not text:
            raise BadValue("expected a word, got an empty string")
        if text.isprintable() and not _BLANK.search(text):
            return text
        i, ch = _forbidden(text)
        raise BadValue(f"a word cannot contain {ch!r}", "write one word, without blanks or control characters",
                       offset=i, length=1)


class Text(ValueType):
    describe = "a string"

    def parse(self, text: str) -> str:
        return text


class Path(ValueType):
    describe = "an absolute path"

    def parse(self, text: str) -> str:
        if not text.startswith("/"):
            raise BadValue(f"path '{text}' is not absolute",
                           "the target host reads this file at run time; write an absolute path")
        if "\n" in text or "\0" in text:
            raise BadValue("a path cannot contain a newline or NUL")
        return text


class Hex(ValueType):
    """Hex bytes; ``sizes`` are the allowed lengths in bytes (or a (low, high) range)."""

    def __init__(self, label: str, sizes: tuple[int, ...] = (), low: int = 1, high: int = 32):
        self.label, self.sizes, self.low, self.high = label, sizes, low, high

    @property
    def describe(self) -> str:
        return "hex bytes"

    def parse(self, text: str) -> str:
        digits = text[2:] if text[:2] in ("0x", "0X") else text
        if not digits or not re.fullmatch(r"[0-9a-fA-F]+", digits):
            raise BadValue(f"{self.label} is not hex")
        if len(digits) % 2:
            raise BadValue(f"{self.label} has an odd number of hex digits", "each byte is two hex digits")
        size = len(digits) // 2
        if self.sizes and size not in self.sizes:
            want = " or ".join(str(s) for s in self.sizes)
            digits_want = " or ".join(str(2 * s) for s in self.sizes)
            raise BadValue(f"{self.label} must be {want} bytes of hex ({digits_want} hex digits); this one is {size} bytes")
        if not self.sizes and not self.low <= size <= self.high:
            raise BadValue(f"{self.label} must be {self.low}–{self.high} bytes of hex; this one is {size} bytes")
        return digits.lower()


class JSONObject(ValueType):
    describe = "a JSON object"

    def parse(self, text: str) -> str:
        try:
            import json   # only teamd configurations are JSON: not imported at every start-up

            value = json.loads(text)
        except ValueError as exc:
            raise BadValue(f"not valid JSON: {exc.msg} at character {exc.pos + 1}") from None
        if not isinstance(value, dict):
            raise BadValue("the teamd configuration must be a JSON object ({...})")
        return text


# --- link layer and IP -----------------------------------------------------

#: An IPv4 address written as ipaddress itself writes it (no leading zeros), with an
#: optional prefix length 0–32. Such text is read here into integers, which ipaddress
#: takes without parsing it again (its own parser reads a CIDR twice, the slowest step
#: of checking a large site); any other text takes ipaddress's path, errors and all.
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}(?:/(3[0-2]|[12]?[0-9]))?")


def _ipv4(text: str) -> tuple[int, int | None] | None:
    """(address, prefix length or None) of a plain IPv4 text, else None."""
    match = _IPV4.fullmatch(text)
    if match is None:
        return None
    a, b, c, d, prefix = match.groups()
    return int(a) << 24 | int(b) << 16 | int(c) << 8 | int(d), None if prefix is None else int(prefix)


def ipv4_interface(address: int, prefixlen: int) -> ipaddress.IPv4Interface:
    """``ipaddress.IPv4Interface((address, prefixlen))``, made without its constructor, which
    splits and checks its argument twice (once more for the network) and is most of the time
    of reading an address. The attributes set are exactly those the constructor sets (CPython
    3.11-3.13; tests/compiler/test_values.py compares the two on every prefix length);
    /31 and /32, whose network the constructor treats specially, take its own path."""
    if prefixlen >= 31:
        return ipaddress.IPv4Interface((address, prefixlen))
    netmask = ipaddress.IPv4Network._make_netmask(prefixlen)[0]   # ipaddress's own cache of masks
    network = object.__new__(ipaddress.IPv4Network)
    network.network_address = ipaddress.IPv4Address(address & netmask._ip)
    network.netmask = netmask
    network._prefixlen = prefixlen
    interface = object.__new__(ipaddress.IPv4Interface)
    interface._ip = address
    interface.network = network
    interface.netmask = netmask
    interface._prefixlen = prefixlen
    return interface


_MAC = re.compile(r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}")


class MAC(ValueType):
    def __init__(self, unicast: bool = False):
        self.unicast = unicast

    describe = "a MAC address"

    def parse(self, text: str) -> str:
        if not _MAC.fullmatch(text):
            raise BadValue(f"'{text}' is not a MAC address", "write six hex pairs like 52:54:00:12:34:56")
        value = text.lower()
        if self.unicast:
            if int(value[:2], 16) & 1:
                raise BadValue(f"{value} is a multicast MAC address; a device's own address must be unicast",
                               "clear the lowest bit of the first byte (e.g. 52:… instead of 53:…)")
            if value == "00:00:00:00:00:00":
                raise BadValue("00:00:00:00:00:00 is not a usable MAC address")
        return value


class IP(ValueType):
    describe = "an IP address"

    def __init__(self, multicast: bool | None = None):
        self.multicast = multicast  # True: must be multicast; False: must not be

    def parse(self, text: str) -> IPAddress:
        if "/" in text:
            raise BadValue(f"'{text}' has a prefix length; an address is expected here",
                           f"write {text.split('/')[0]}")
        if "%" in text:
            raise BadValue(f"'{text}' has a scope (%…); write the address alone")
        v4 = _ipv4(text)
        try:
            value = ipaddress.IPv4Address(v4[0]) if v4 is not None else ipaddress.ip_address(text)
        except ValueError:
            raise BadValue(f"'{text}' is not an IPv4 or IPv6 address", _why(text)) from None
        if self.multicast is True and not value.is_multicast:
            raise BadValue(f"{value} is not a multicast address")
        if self.multicast is False and value.is_multicast:
            raise BadValue(f"{value} is a multicast address; a unicast address is expected here")
        return value


def _why(address: str) -> str | None:
    """ipaddress's own reason an address is invalid, when it has one worth showing."""
    try:
        ipaddress.ip_address(address)
    except ValueError:
        for kind in (ipaddress.IPv4Address, ipaddress.IPv6Address):
            try:
                kind(address)
            except ValueError as exc:
                if kind is ipaddress.IPv4Address and ("." in address and ":" not in address):
                    return str(exc).replace("'", "")
                if kind is ipaddress.IPv6Address and ":" in address:
                    return str(exc).replace("'", "")
    return None


class CIDR(ValueType):
    describe = "an address with prefix length"

    def parse(self, text: str) -> IPInterface:
        if "/" not in text:
            try:
                ipaddress.ip_address(text)
            except ValueError:
                pass
            else:
                raise BadValue(f"address {text} has no prefix length", f"write e.g. {text}/{'24' if '.' in text else '64'}")
        if "%" in text:
            raise BadValue(f"'{text}' has a scope (%…); write the address alone")
        v4 = _ipv4(text)
        if v4 is not None and v4[1] is not None:
            return ipv4_interface(*v4)
        try:
            return ipaddress.ip_interface(text)
        except ValueError:
            raise BadValue(f"'{text}' is not an address with prefix length",
                           _why(text.split("/")[0]) or "write e.g. 10.0.0.1/24 or 2001:db8::1/64") from None


class Prefix(ValueType):
    describe = "a network prefix or 'default'"

    def parse(self, text: str) -> IPNetwork | str:
        if text == "default":
            return "default"
        v4 = _ipv4(text)
        if v4 is not None and v4[1] is not None and v4[0] & (0xFFFFFFFF << (32 - v4[1])) == v4[0]:
            return ipaddress.IPv4Network(v4)
        try:
            return ipaddress.ip_network(text, strict=True)
        except ValueError:
            pass
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise BadValue(f"'{text}' is not a network prefix",
                           "write e.g. 10.1.0.0/16, 2001:db8::/48 or default") from None
        raise BadValue(f"{text} has host bits set", f"did you mean {loose}?")


# --- time, rates and sizes -------------------------------------------------

_QUANTITY = re.compile(r"([0-9]+(?:\.[0-9]+)?)([a-zA-Z]*)")
_TIME_UNITS = {"us": 1, "usec": 1, "ms": 1000, "msec": 1000, "s": 1_000_000, "sec": 1_000_000,
               "m": 60_000_000, "min": 60_000_000, "h": 3_600_000_000}
_RATE_UNITS = {"bit": 1, "kbit": 1000, "mbit": 10**6, "gbit": 10**9, "tbit": 10**12,
               "bps": 8, "kbps": 8000, "mbps": 8 * 10**6, "gbps": 8 * 10**9, "tbps": 8 * 10**12,
               "kibit": 1024, "mibit": 1024**2, "gibit": 1024**3, "tibit": 1024**4}
_SIZE_UNITS = {"b": 1, "k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2, "g": 1024**3, "gb": 1024**3,
               "kbit": 128, "mbit": 128 * 1024, "gbit": 128 * 1024**2}


def _quantity(text: str, units: dict[str, int], bare: int, what: str, example: str) -> int:
    match = _QUANTITY.fullmatch(text)
    if not match or len(text) > MAX_DIGITS:
        raise BadValue(f"'{text}' is not {what}", f"write e.g. {example}")
    number, unit = match.groups()
    unit = unit.lower()
    if unit and unit not in units:
        hint = did_you_mean(unit, units) or "units: " + ", ".join(units)
        raise BadValue(f"unknown unit '{unit}' in '{text}'", hint, offset=len(number), length=len(unit))
    scale = units[unit] if unit else bare
    whole, _, frac = number.partition(".")
    value = int(whole) * scale + (int(frac) * scale) // (10 ** len(frac)) if frac else int(whole) * scale
    return value


class Duration(ValueType):
    """Stored in microseconds. A bare number is milliseconds for `*-ms` properties, else seconds."""

    def __init__(self, bare_unit: str = "s", low_us: int = 0, high_us: int = 2**32 * 1_000_000):
        self.bare_unit, self.low_us, self.high_us = bare_unit, low_us, high_us

    describe = "a duration"

    def parse(self, text: str) -> int:
        value = _quantity(text, _TIME_UNITS, _TIME_UNITS[self.bare_unit], "a duration", "100ms or 2s")
        if not self.low_us <= value <= self.high_us:
            raise BadValue(f"duration {text} is out of range {format_duration(self.low_us)}–{format_duration(self.high_us)}")
        return value

    def render(self, value: Any) -> str:
        return format_duration(value)


def format_duration(us: int) -> str:
    for unit, scale in (("h", 3_600_000_000), ("min", 60_000_000), ("s", 1_000_000), ("ms", 1000)):
        if us and us % scale == 0:
            return f"{us // scale}{unit}"
    return f"{us}us"


class Rate(ValueType):
    """tc rates, stored in bits per second (a bare number is bits per second, as in tc)."""

    describe = "a rate"

    def parse(self, text: str) -> int:
        value = _quantity(text, _RATE_UNITS, 1, "a rate", "100mbit or 500kbit")
        if value <= 0:
            raise BadValue("a rate must be greater than zero")
        return value


class Size(ValueType):
    """tc sizes, stored in bytes (a bare number is bytes; k/m/g are 1024-based, as in tc)."""

    describe = "a size"

    def parse(self, text: str) -> int:
        value = _quantity(text, _SIZE_UNITS, 1, "a size", "32kbit, 1500 or 64k")
        if value <= 0:
            raise BadValue("a size must be greater than zero")
        return value


# --- bridge VLAN lists -------------------------------------------------------

class VlanRange(ValueType):
    """One item of a VLAN LIST: an id or a range ``20-30``; stored as (low, high)."""

    describe = "a VLAN id or range"

    def parse(self, text: str) -> tuple[int, int]:
        low_text, sep, high_text = text.partition("-")
        if sep and (not low_text or not high_text):
            raise BadValue(f"'{text}' is not a VLAN range", "write an id like 10 or a range like 20-30")
        ids = Int(1, 4094, "VLAN id")
        low = ids.parse(low_text)
        if not sep:
            return (low, low)
        try:
            high = ids.parse(high_text)
        except BadValue as exc:
            raise BadValue(exc.message, exc.hint, offset=len(low_text) + 1, length=len(high_text)) from None
        if high < low:
            raise BadValue(f"VLAN range {text} is reversed", f"write {high}-{low}")
        return (low, high)

    def render(self, value: Any) -> str:
        low, high = value
        return str(low) if low == high else f"{low}-{high}"
