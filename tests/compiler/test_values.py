"""Value types (compiler/values.py) and the multi-word values of the schema
(RouteType, QdiscType in compiler/schema.py): what each accepts, and what it
refuses with which message, hint and position inside the word."""

from __future__ import annotations

import ipaddress
from itertools import islice

import pytest

from vnetc.compiler.schema import Qdisc, QdiscType, Route, RouteType
from vnetc.compiler.values import (CIDR, IP, MAC, BadValue, Bool, Duration, Enum, Hex, Int, JSONObject, Name,
                                   Path, Prefix, Rate, Size, Text, VlanRange, Word, format_duration, ipv4_interface,
                                   parse_int)

NUMBER_HINT = "write a decimal number or hex like 0x8001"
VLAN = Int(1, 4094, "VLAN id")
MS = Duration("ms", 0, 2**31 * 1000)     # a `*-ms` property (miimon)
SECONDS = Duration("s")                  # any other duration
FORWARD_DELAY = Duration("s", 2_000_000, 30_000_000)
KEY = Hex("a MACsec key", sizes=(16, 32))
KEY_ID = Hex("MACsec key id", low=1, high=16)
BOND_MODE = Enum(("balance-rr", "active-backup", "802.3ad"), "bond mode")


def refuse(value_type, text):
    with pytest.raises(BadValue) as caught:
        value_type.parse(text)
    return caught.value


def refuse_words(value_type, text):
    with pytest.raises(BadValue) as caught:
        value_type.parse_words(text.split())
    return caught.value


# --- accepted values ---------------------------------------------------------------

ACCEPT = [
    # Int: decimal, hex (either case of the x), leading zeros, both ends of the range
    ("int-decimal", VLAN, "100", 100),
    ("int-low", VLAN, "1", 1),
    ("int-high", VLAN, "4094", 4094),
    ("int-hex", Int(0, 0xFFFF, "EtherType"), "0x8001", 0x8001),
    ("int-hex-upper-x", VLAN, "0X10", 16),
    ("int-hex-upper-digits", VLAN, "0xFA", 250),
    ("int-leading-zero", VLAN, "007", 7),
    ("int-pkey-hex", Int(0x0001, 0xFFFF, "P_Key"), "0xffff", 0xFFFF),
    # Bool: the six words
    ("bool-on", Bool(), "on", True),
    ("bool-yes", Bool(), "yes", True),
    ("bool-true", Bool(), "true", True),
    ("bool-off", Bool(), "off", False),
    ("bool-no", Bool(), "no", False),
    ("bool-false", Bool(), "false", False),
    # Enum
    ("enum", BOND_MODE, "802.3ad", "802.3ad"),
    # MAC: lower-cased; multicast is fine where it is not a device's own address
    ("mac", MAC(unicast=True), "52:54:00:12:34:56", "52:54:00:12:34:56"),
    ("mac-upper", MAC(unicast=True), "52:54:00:AB:CD:EF", "52:54:00:ab:cd:ef"),
    ("mac-multicast-not-own", MAC(), "01:00:5e:00:00:01", "01:00:5e:00:00:01"),
    ("mac-zero-not-own", MAC(), "00:00:00:00:00:00", "00:00:00:00:00:00"),
    # IP
    ("ip-v4", IP(), "10.0.0.1", ipaddress.ip_address("10.0.0.1")),
    ("ip-v6", IP(), "fe80::1", ipaddress.ip_address("fe80::1")),
    ("ip-multicast-group", IP(multicast=True), "239.1.1.1", ipaddress.ip_address("239.1.1.1")),
    ("ip-multicast-group-v6", IP(multicast=True), "ff02::1", ipaddress.ip_address("ff02::1")),
    ("ip-unicast", IP(multicast=False), "192.0.2.1", ipaddress.ip_address("192.0.2.1")),
    # CIDR
    ("cidr-v4", CIDR(), "10.0.0.1/24", ipaddress.ip_interface("10.0.0.1/24")),
    ("cidr-v6", CIDR(), "2001:db8::1/64", ipaddress.ip_interface("2001:db8::1/64")),
    ("cidr-host-route", CIDR(), "10.0.0.1/32", ipaddress.ip_interface("10.0.0.1/32")),
    # Prefix
    ("prefix-v4", Prefix(), "10.1.0.0/16", ipaddress.ip_network("10.1.0.0/16")),
    ("prefix-v6", Prefix(), "2001:db8::/48", ipaddress.ip_network("2001:db8::/48")),
    ("prefix-default", Prefix(), "default", "default"),
    ("prefix-everything", Prefix(), "0.0.0.0/0", ipaddress.ip_network("0.0.0.0/0")),
    # Duration, in microseconds: a bare number is ms for `*-ms` properties, else seconds
    ("duration-bare-ms", MS, "100", 100_000),
    ("duration-bare-s", SECONDS, "2", 2_000_000),
    ("duration-ms", SECONDS, "100ms", 100_000),
    ("duration-s-on-ms-property", MS, "2s", 2_000_000),
    ("duration-us", SECONDS, "10us", 10),
    ("duration-usec", SECONDS, "10usec", 10),
    ("duration-msec", SECONDS, "5msec", 5_000),
    ("duration-sec", SECONDS, "3sec", 3_000_000),
    ("duration-m", SECONDS, "1m", 60_000_000),
    ("duration-min", SECONDS, "1min", 60_000_000),
    ("duration-h", SECONDS, "1h", 3_600_000_000),
    ("duration-fraction", SECONDS, "1.5s", 1_500_000),
    ("duration-bare-fraction-ms", MS, "1.5", 1_500),
    ("duration-unit-case", SECONDS, "100MS", 100_000),
    ("duration-range-low", FORWARD_DELAY, "2", 2_000_000),
    ("duration-range-high", FORWARD_DELAY, "30s", 30_000_000),
    # Rate, in bit/s: bare is bit/s, *bps are bytes, *ibit are binary
    ("rate-bare", Rate(), "1000", 1000),
    ("rate-bit", Rate(), "64bit", 64),
    ("rate-kbit", Rate(), "500kbit", 500_000),
    ("rate-mbit", Rate(), "1mbit", 1_000_000),
    ("rate-gbit", Rate(), "10gbit", 10_000_000_000),
    ("rate-mbps", Rate(), "1mbps", 8_000_000),
    ("rate-kibit", Rate(), "1kibit", 1024),
    ("rate-unit-case", Rate(), "1Mbit", 1_000_000),
    ("rate-fraction", Rate(), "1.5mbit", 1_500_000),
    # Size, in bytes: bare is bytes, k/m/g are 1024-based, kbit is 128 bytes
    ("size-bare", Size(), "1500", 1500),
    ("size-k", Size(), "64k", 65_536),
    ("size-kb", Size(), "2kb", 2048),
    ("size-m", Size(), "1m", 1_048_576),
    ("size-gb", Size(), "1gb", 1_073_741_824),
    ("size-kbit", Size(), "32kbit", 4096),
    ("size-b", Size(), "100b", 100),
    ("size-fraction", Size(), "1.5k", 1536),
    # Path
    ("path", Path(), "/etc/vnetc/keys/tx0.key", "/etc/vnetc/keys/tx0.key"),
    # Hex: lower-cased, 0x prefix dropped
    ("hex-16-bytes", KEY, "00112233445566778899aabbccddeeff", "00112233445566778899aabbccddeeff"),
    ("hex-32-bytes", KEY, "ab" * 32, "ab" * 32),
    ("hex-0x-prefix", KEY, "0x" + "00" * 16, "00" * 16),
    ("hex-upper", KEY, "AA" * 16, "aa" * 16),
    ("hex-range-low", KEY_ID, "01", "01"),
    ("hex-range-high", KEY_ID, "ff" * 16, "ff" * 16),
    # VlanRange
    ("vlan-id", VlanRange(), "10", (10, 10)),
    ("vlan-range", VlanRange(), "20-30", (20, 30)),
    ("vlan-full-range", VlanRange(), "1-4094", (1, 4094)),
    ("vlan-range-single", VlanRange(), "7-7", (7, 7)),
    # Name: at most 15 bytes; '...' is not '.' or '..'
    ("name", Name(), "eth0", "eth0"),
    ("name-dotted", Name(), "bond0.100", "bond0.100"),
    ("name-15-bytes", Name(), "a" * 15, "a" * 15),
    ("name-15-bytes-utf8", Name(), "é" * 7 + "a", "é" * 7 + "a"),
    ("name-three-dots", Name(), "...", "..."),
    ("name-dash-plus", Name(), "ve-blue+1", "ve-blue+1"),
    # JSONObject keeps the text
    ("json-empty", JSONObject(), "{}", "{}"),
    ("json-object", JSONObject(), '{"runner": {"name": "lacp"}}', '{"runner": {"name": "lacp"}}'),
    # Word and Text
    ("word", Word(), "e1000e", "e1000e"),
    ("text-empty", Text(), "", ""),
    ("text-spaces", Text(), "uplink to the core", "uplink to the core"),
]


@pytest.mark.parametrize("value_type, text, expected",
                         [row[1:] for row in ACCEPT], ids=[row[0] for row in ACCEPT])
def test_accepts(value_type, text, expected):
    assert value_type.parse(text) == expected


# --- refused values -------------------------------------------------------------------
# (id, type, text, message, hint, offset, length)

REJECT = [
    # Int
    ("int-above", VLAN, "4095", "VLAN id 4095 is out of range 1–4094", None, 0, 0),
    ("int-below", VLAN, "0", "VLAN id 0 is out of range 1–4094", None, 0, 0),
    ("int-5000", VLAN, "5000", "VLAN id 5000 is out of range 1–4094", None, 0, 0),
    ("int-vni-2-24", Int(0, 16777215, "VNI"), "16777216", "VNI 16777216 is out of range 0–16777215", None, 0, 0),
    ("int-hex-range-in-hex", VLAN, "0x8001", "VLAN id 0x8001 is out of range 0x0001–0x0ffe", None, 0, 0),
    ("int-pkey-zero", Int(0x0001, 0xFFFF, "P_Key"), "0x0000", "P_Key 0x0000 is out of range 0x0001–0xffff",
     None, 0, 0),
    ("int-no-label", Int(1, 3), "9", "value 9 is out of range 1–3", None, 0, 0),
    ("int-negative", VLAN, "-1", "'-1' is not a number", NUMBER_HINT, 0, 0),
    ("int-float", VLAN, "1.5", "'1.5' is not a number", NUMBER_HINT, 0, 0),
    ("int-exponent", VLAN, "1e3", "'1e3' is not a number", NUMBER_HINT, 0, 0),
    ("int-bare-0x", VLAN, "0x", "'0x' is not a number", NUMBER_HINT, 0, 0),
    ("int-bad-hex-digit", VLAN, "0x1g", "'0x1g' is not a number", NUMBER_HINT, 0, 0),
    ("int-empty", VLAN, "", "'' is not a number", NUMBER_HINT, 0, 0),
    ("int-too-long", VLAN, "1" * 31, "number '111111111111…' has 31 digits; at most 30 are accepted", None, 0, 0),
    # Bool
    ("bool-capital", Bool(), "On", "'On' is not a boolean", "write on or off (yes/no and true/false work too)", 0, 0),
    ("bool-digit", Bool(), "1", "'1' is not a boolean", "write on or off (yes/no and true/false work too)", 0, 0),
    ("bool-enabled", Bool(), "enabled", "'enabled' is not a boolean",
     "write on or off (yes/no and true/false work too)", 0, 0),
    # Enum
    ("enum-near", BOND_MODE, "balance-r", "unknown bond mode 'balance-r'", "did you mean 'balance-rr'?", 0, 0),
    ("enum-far", BOND_MODE, "xyz", "unknown bond mode 'xyz'",
     "expected one of: balance-rr, active-backup, 802.3ad", 0, 0),
    # MAC
    ("mac-multicast", MAC(unicast=True), "01:00:5e:00:00:01",
     "01:00:5e:00:00:01 is a multicast MAC address; a device's own address must be unicast",
     "clear the lowest bit of the first byte (e.g. 52:… instead of 53:…)", 0, 0),
    ("mac-odd-first-byte", MAC(unicast=True), "53:54:00:12:34:56",
     "53:54:00:12:34:56 is a multicast MAC address; a device's own address must be unicast",
     "clear the lowest bit of the first byte (e.g. 52:… instead of 53:…)", 0, 0),
    ("mac-broadcast", MAC(unicast=True), "FF:FF:FF:FF:FF:FF",
     "ff:ff:ff:ff:ff:ff is a multicast MAC address; a device's own address must be unicast",
     "clear the lowest bit of the first byte (e.g. 52:… instead of 53:…)", 0, 0),
    ("mac-zero", MAC(unicast=True), "00:00:00:00:00:00", "00:00:00:00:00:00 is not a usable MAC address", None, 0, 0),
    ("mac-five-pairs", MAC(), "52:54:00:12:34", "'52:54:00:12:34' is not a MAC address",
     "write six hex pairs like 52:54:00:12:34:56", 0, 0),
    ("mac-dashes", MAC(), "52-54-00-12-34-56", "'52-54-00-12-34-56' is not a MAC address",
     "write six hex pairs like 52:54:00:12:34:56", 0, 0),
    ("mac-cisco-dots", MAC(), "5254.0012.3456", "'5254.0012.3456' is not a MAC address",
     "write six hex pairs like 52:54:00:12:34:56", 0, 0),
    ("mac-not-hex", MAC(), "52:54:00:12:34:5g", "'52:54:00:12:34:5g' is not a MAC address",
     "write six hex pairs like 52:54:00:12:34:56", 0, 0),
    # IP
    ("ip-octet", IP(), "10.0.0.300", "'10.0.0.300' is not an IPv4 or IPv6 address",
     "Octet 300 (> 255) not permitted in 10.0.0.300", 0, 0),
    ("ip-word", IP(), "gateway", "'gateway' is not an IPv4 or IPv6 address", None, 0, 0),
    ("ip-with-prefix", IP(), "10.0.0.1/24", "'10.0.0.1/24' has a prefix length; an address is expected here",
     "write 10.0.0.1", 0, 0),
    ("ip-not-multicast", IP(multicast=True), "10.0.0.1", "10.0.0.1 is not a multicast address", None, 0, 0),
    ("ip-multicast", IP(multicast=False), "239.1.1.1",
     "239.1.1.1 is a multicast address; a unicast address is expected here", None, 0, 0),
    # CIDR
    ("cidr-no-prefix-v4", CIDR(), "10.0.0.1", "address 10.0.0.1 has no prefix length", "write e.g. 10.0.0.1/24",
     0, 0),
    ("cidr-no-prefix-v6", CIDR(), "fe80::1", "address fe80::1 has no prefix length", "write e.g. fe80::1/64", 0, 0),
    ("cidr-octet-300", CIDR(), "10.0.0.300/24", "'10.0.0.300/24' is not an address with prefix length",
     "Octet 300 (> 255) not permitted in 10.0.0.300", 0, 0),
    ("cidr-prefix-33", CIDR(), "10.0.0.1/33", "'10.0.0.1/33' is not an address with prefix length",
     "write e.g. 10.0.0.1/24 or 2001:db8::1/64", 0, 0),
    ("cidr-empty-prefix", CIDR(), "10.0.0.1/", "'10.0.0.1/' is not an address with prefix length",
     "write e.g. 10.0.0.1/24 or 2001:db8::1/64", 0, 0),
    ("cidr-word", CIDR(), "dhcp", "'dhcp' is not an address with prefix length",
     "write e.g. 10.0.0.1/24 or 2001:db8::1/64", 0, 0),
    # Prefix
    ("prefix-host-bits-v4", Prefix(), "10.1.0.1/16", "10.1.0.1/16 has host bits set", "did you mean 10.1.0.0/16?",
     0, 0),
    ("prefix-host-bits-v6", Prefix(), "2001:db8::1/48", "2001:db8::1/48 has host bits set",
     "did you mean 2001:db8::/48?", 0, 0),
    ("prefix-word", Prefix(), "defualt", "'defualt' is not a network prefix",
     "write e.g. 10.1.0.0/16, 2001:db8::/48 or default", 0, 0),
    ("prefix-octet", Prefix(), "10.300.0.0/16", "'10.300.0.0/16' is not a network prefix",
     "write e.g. 10.1.0.0/16, 2001:db8::/48 or default", 0, 0),
    # Duration
    ("duration-unknown-unit", SECONDS, "2x", "unknown unit 'x' in '2x'",
     "units: us, usec, ms, msec, s, sec, m, min, h", 1, 1),
    ("duration-near-unit", SECONDS, "100mss", "unknown unit 'mss' in '100mss'", "did you mean 'ms'?", 3, 3),
    ("duration-bare-unit", SECONDS, "ms", "'ms' is not a duration", "write e.g. 100ms or 2s", 0, 0),
    ("duration-negative", SECONDS, "-1s", "'-1s' is not a duration", "write e.g. 100ms or 2s", 0, 0),
    ("duration-empty", SECONDS, "", "'' is not a duration", "write e.g. 100ms or 2s", 0, 0),
    ("duration-below-range", FORWARD_DELAY, "1", "duration 1 is out of range 2s–30s", None, 0, 0),
    ("duration-above-range", FORWARD_DELAY, "31s", "duration 31s is out of range 2s–30s", None, 0, 0),
    # Rate
    ("rate-zero", Rate(), "0", "a rate must be greater than zero", None, 0, 0),
    ("rate-zero-unit", Rate(), "0kbit", "a rate must be greater than zero", None, 0, 0),
    ("rate-near-unit", Rate(), "1xbit", "unknown unit 'xbit' in '1xbit'", "did you mean 'bit'?", 1, 4),
    ("rate-bare-unit", Rate(), "kbit", "'kbit' is not a rate", "write e.g. 100mbit or 500kbit", 0, 0),
    # Size
    ("size-zero", Size(), "0", "a size must be greater than zero", None, 0, 0),
    ("size-unknown-unit", Size(), "1x", "unknown unit 'x' in '1x'",
     "units: b, k, kb, m, mb, g, gb, kbit, mbit, gbit", 1, 1),
    ("size-word", Size(), "big", "'big' is not a size", "write e.g. 32kbit, 1500 or 64k", 0, 0),
    # Path
    ("path-relative", Path(), "keys/tx0.key", "path 'keys/tx0.key' is not absolute",
     "the target host reads this file at run time; write an absolute path", 0, 0),
    ("path-empty", Path(), "", "path '' is not absolute",
     "the target host reads this file at run time; write an absolute path", 0, 0),
    ("path-newline", Path(), "/etc/a\nb", "a path cannot contain a newline or NUL", None, 0, 0),
    ("path-nul", Path(), "/etc/a\0b", "a path cannot contain a newline or NUL", None, 0, 0),
    # Hex
    ("hex-15-bytes", KEY, "00" * 15,
     "a MACsec key must be 16 or 32 bytes of hex (32 or 64 hex digits); this one is 15 bytes", None, 0, 0),
    ("hex-24-bytes", KEY, "00" * 24,
     "a MACsec key must be 16 or 32 bytes of hex (32 or 64 hex digits); this one is 24 bytes", None, 0, 0),
    ("hex-odd-digits", KEY, "0" * 31, "a MACsec key has an odd number of hex digits", "each byte is two hex digits",
     0, 0),
    ("hex-not-hex", KEY, "zz" * 16, "a MACsec key is not hex", None, 0, 0),
    ("hex-empty", KEY, "", "a MACsec key is not hex", None, 0, 0),
    ("hex-only-0x", KEY_ID, "0x", "MACsec key id is not hex", None, 0, 0),
    ("hex-range-above", KEY_ID, "00" * 17, "MACsec key id must be 1–16 bytes of hex; this one is 17 bytes", None, 0, 0),
    # VlanRange: a bad upper end points at the upper end
    ("vlan-id-zero", VlanRange(), "0", "VLAN id 0 is out of range 1–4094", None, 0, 0),
    ("vlan-id-4095", VlanRange(), "4095", "VLAN id 4095 is out of range 1–4094", None, 0, 0),
    ("vlan-range-high-end", VlanRange(), "10-5000", "VLAN id 5000 is out of range 1–4094", None, 3, 4),
    ("vlan-range-reversed", VlanRange(), "30-20", "VLAN range 30-20 is reversed", "write 20-30", 0, 0),
    ("vlan-word", VlanRange(), "all", "'all' is not a number", NUMBER_HINT, 0, 0),
    # Name
    ("name-16-bytes", Name(), "a" * 16, f"interface name '{'a' * 16}' is 16 bytes long; Linux allows at most 15",
     None, 0, 0),
    ("name-16-bytes-utf8", Name(), "é" * 8, f"interface name '{'é' * 8}' is 16 bytes long; Linux allows at most 15",
     None, 0, 0),
    ("name-slash", Name(), "a/b", "interface name 'a/b' contains '/', which Linux does not allow", None, 1, 1),
    ("name-colon", Name(), "eth0:1", "interface name 'eth0:1' contains ':', which Linux does not allow", None, 4, 1),
    ("name-space", Name(), "a b", "interface name 'a b' contains ' ', which Linux does not allow", None, 1, 1),
    ("name-tab", Name(), "a\tb", "interface name 'a\\tb' contains '\\t', which Linux does not allow", None, 1, 1),
    ("name-dot", Name(), ".", "'.' is not a valid interface name", None, 0, 0),
    ("name-dotdot", Name(), "..", "'..' is not a valid interface name", None, 0, 0),
    ("name-empty", Name(), "", "an interface name cannot be empty", None, 0, 0),
    # JSONObject
    ("json-array", JSONObject(), "[]", "the teamd configuration must be a JSON object ({...})", None, 0, 0),
    ("json-number", JSONObject(), "1", "the teamd configuration must be a JSON object ({...})", None, 0, 0),
    ("json-broken", JSONObject(), "{", "not valid JSON: Expecting property name enclosed in double quotes at character 2",
     None, 0, 0),
    ("json-empty", JSONObject(), "", "not valid JSON: Expecting value at character 1", None, 0, 0),
    # Word
    ("word-empty", Word(), "", "expected a word, got an empty string", None, 0, 0),
    ("word-newline", Word(), "kvm\nroot", "a word cannot contain '\\n'",
     "write one word, without blanks or control characters", 3, 1),
    ("word-blank", Word(), "e1000 igb", "a word cannot contain ' '",
     "write one word, without blanks or control characters", 5, 1),
    ("word-control", Word(), "a\x01", "a word cannot contain '\\x01'",
     "write one word, without blanks or control characters", 1, 1),
]


@pytest.mark.parametrize("value_type, text, message, hint, offset, length",
                         [row[1:] for row in REJECT], ids=[row[0] for row in REJECT])
def test_refuses(value_type, text, message, hint, offset, length):
    exc = refuse(value_type, text)
    assert (exc.message, exc.hint, exc.offset, exc.length) == (message, hint, offset, length)


@pytest.mark.parametrize("text", ["10-", "-10"])
def test_vlan_range_with_a_missing_end_names_the_word(text):
    # Fixed bug (regression test): the message is "'' is not a number" (the empty half), which names nothing
    # the user wrote; it should quote the whole item.
    exc = refuse(VlanRange(), text)
    assert f"'{text}'" in exc.message


def test_parse_int_is_decimal_or_hex():
    assert [parse_int(t) for t in ("0", "42", "0x2a", "0X2A", "0010")] == [0, 42, 42, 42, 10]
    assert refuse(Int(0, 10**40), "9" * 31).message == "number '999999999999…' has 31 digits; at most 30 are accepted"


def test_int_describe_names_the_range():
    assert VLAN.describe == "a number 1–4094"


@pytest.mark.parametrize("us, text", [(0, "0us"), (10, "10us"), (1000, "1ms"), (1_500_000, "1500ms"),
                                      (2_000_000, "2s"), (60_000_000, "1min"), (7_200_000_000, "2h")])
def test_format_duration(us, text):
    assert format_duration(us) == text
    assert SECONDS.render(us) == text


def test_render_of_bool_and_vlan_range():
    assert (Bool().render(True), Bool().render(False)) == ("on", "off")
    assert (VlanRange().render((10, 10)), VlanRange().render((20, 30))) == ("10", "20-30")


# --- route: PREFIX [via IP] [metric N] [table N] ---------------------------------------------

ROUTE_HINT = "a route is written: PREFIX [via IP] [metric N] [table N]"

ROUTE_ACCEPT = [
    ("default", "default", Route("default")),
    ("prefix", "10.1.0.0/16", Route(ipaddress.ip_network("10.1.0.0/16"))),
    ("via", "10.1.0.0/16 via 10.0.0.1", Route(ipaddress.ip_network("10.1.0.0/16"), ipaddress.ip_address("10.0.0.1"))),
    ("all-options", "default via fe80::1 metric 100 table 10",
     Route("default", ipaddress.ip_address("fe80::1"), 100, 10)),
    ("options-any-order", "2001:db8::/48 table 5 metric 0",
     Route(ipaddress.ip_network("2001:db8::/48"), None, 0, 5)),
    ("metric-u32-max", "default metric 4294967295", Route("default", None, 4294967295)),
]


@pytest.mark.parametrize("text, expected", [r[1:] for r in ROUTE_ACCEPT], ids=[r[0] for r in ROUTE_ACCEPT])
def test_route_accepts(text, expected):
    assert RouteType().parse_words(text.split()) == expected


# (id, words, message, hint, index of the word it points at)
ROUTE_REJECT = [
    ("host-bits", "10.1.0.1/16", "10.1.0.1/16 has host bits set", "did you mean 10.1.0.0/16?", 0),
    ("bad-prefix", "nowhere", "'nowhere' is not a network prefix", "write e.g. 10.1.0.0/16, 2001:db8::/48 or default", 0),
    ("unknown-option", "10.1.0.0/16 dev eth0", "unknown route option 'dev'", ROUTE_HINT, 1),
    ("option-without-value", "10.1.0.0/16 via", "'via' needs a value", None, 1),
    ("option-twice", "10.1.0.0/16 via 10.0.0.1 via 10.0.0.2", "'via' is given twice in this route", None, 3),
    ("family-mismatch", "10.1.0.0/16 via fe80::1", "gateway fe80::1 is IPv6 but the route 10.1.0.0/16 is IPv4",
     None, 2),
    ("multicast-via", "10.1.0.0/16 via 239.1.1.1",
     "239.1.1.1 is a multicast address; a unicast address is expected here", None, 2),
    ("metric-not-number", "10.1.0.0/16 metric low", "'low' is not a number", NUMBER_HINT, 2),
    ("metric-above-u32", "10.1.0.0/16 metric 4294967296", "route metric 4294967296 is out of range 0–4294967295",
     None, 2),
    ("table-zero", "10.1.0.0/16 table 0", "route table 0 is out of range 1–4294967295", None, 2),
]


@pytest.mark.parametrize("text, message, hint, word", [r[1:] for r in ROUTE_REJECT], ids=[r[0] for r in ROUTE_REJECT])
def test_route_refuses(text, message, hint, word):
    exc = refuse_words(RouteType(), text)
    assert (exc.message, exc.hint, exc.word) == (message, hint, word)


# --- qdisc: KIND [PARAM VALUE | FLAG]… --------------------------------------------------------

TBF_HINT = "e.g. qdisc tbf rate 1mbit burst 32kbit latency 400ms"

QDISC_ACCEPT = [
    ("sfq", "sfq", Qdisc("sfq", ())),
    ("sfq-perturb-seconds", "sfq perturb 10", Qdisc("sfq", (("perturb", 10_000_000),))),
    ("fq_codel", "fq_codel", Qdisc("fq_codel", ())),
    ("fq_codel-flag", "fq_codel ecn", Qdisc("fq_codel", (("ecn", True),))),
    ("fq_codel-bare-target-is-us", "fq_codel target 5000 interval 100ms",
     Qdisc("fq_codel", (("target", 5000), ("interval", 100_000)))),
    ("tbf-latency", "tbf rate 1mbit burst 32kbit latency 400ms",
     Qdisc("tbf", (("rate", 1_000_000), ("burst", 4096), ("latency", 400_000)))),
    ("tbf-limit", "tbf rate 1mbit burst 32kbit limit 10k",
     Qdisc("tbf", (("rate", 1_000_000), ("burst", 4096), ("limit", 10240)))),
    ("pfifo_fast", "pfifo_fast", Qdisc("pfifo_fast", ())),
]


@pytest.mark.parametrize("text, expected", [r[1:] for r in QDISC_ACCEPT], ids=[r[0] for r in QDISC_ACCEPT])
def test_qdisc_accepts(text, expected):
    assert QdiscType().parse_words(text.split()) == expected


QDISC_REJECT = [
    ("unknown-near", "sfqq", "unknown qdisc 'sfqq'", "did you mean 'sfq'?", 0),
    ("unknown-far", "mqprio", "unknown qdisc 'mqprio'", "vnetc knows: sfq, fq_codel, codel, tbf, fq, pfifo, bfifo, pfifo_fast",
     0),
    ("unknown-parameter", "sfq perturbb 10", "unknown sfq parameter 'perturbb'", "did you mean 'perturb'?", 1),
    ("parameter-of-none", "pfifo_fast limit 10", "unknown pfifo_fast parameter 'limit'", "pfifo_fast takes: none", 1),
    ("parameter-without-value", "sfq perturb", "'perturb' needs a value", None, 1),
    ("parameter-twice", "sfq perturb 1 perturb 2", "'perturb' is given twice", None, 3),
    ("parameter-out-of-range", "sfq limit 70000", "sfq limit 70000 is out of range 1–65535", None, 2),
    ("ecn-and-noecn", "fq_codel ecn noecn", "'ecn' and 'noecn' contradict each other", None, 0),
    ("tbf-without-rate", "tbf burst 32kbit latency 400ms", "tbf needs 'rate'", TBF_HINT, 0),
    ("tbf-without-burst", "tbf rate 1mbit latency 400ms", "tbf needs 'burst'", TBF_HINT, 0),
    ("tbf-neither-latency-nor-limit", "tbf rate 1mbit burst 32kbit",
     "tbf needs exactly one of 'latency' and 'limit'", TBF_HINT, 0),
    ("tbf-both-latency-and-limit", "tbf rate 1mbit burst 32kbit latency 400ms limit 10k",
     "tbf needs exactly one of 'latency' and 'limit'", TBF_HINT, 0),
    ("tbf-zero-rate", "tbf rate 0 burst 32kbit latency 400ms", "a rate must be greater than zero", None, 2),
]


@pytest.mark.parametrize("text, message, hint, word", [r[1:] for r in QDISC_REJECT], ids=[r[0] for r in QDISC_REJECT])
def test_qdisc_refuses(text, message, hint, word):
    exc = refuse_words(QdiscType(), text)
    assert (exc.message, exc.hint, exc.word) == (message, hint, word)


@pytest.mark.parametrize("prefixlen", range(33))
@pytest.mark.parametrize("address", [0, 1, 0x0A000001, 0xC0A80AFF, 0x7F000001, 0xE0000001, 0xFFFFFFFF])
def test_ipv4_interface_is_what_ipaddress_makes(address, prefixlen):
    """The fast construction of CIDR.parse must be indistinguishable from ipaddress's constructor."""
    fast, slow = ipv4_interface(address, prefixlen), ipaddress.IPv4Interface((address, prefixlen))
    assert type(fast) is type(slow) and type(fast.network) is type(slow.network)
    def state(obj):   # (a /31 or /32 network holds its own `hosts` function: compared below by its result)
        return {key: value for key, value in vars(obj).items() if key != "hosts"}, sorted(vars(obj))
    assert state(fast) == state(slow) and state(fast.network) == state(slow.network)
    assert (fast._ip, fast.ip, fast.network, fast.netmask, fast.hostmask, fast.with_prefixlen, str(fast), repr(fast),
            hash(fast), fast.network.network_address, fast.network.broadcast_address, fast.network.num_addresses) == \
           (slow._ip, slow.ip, slow.network, slow.netmask, slow.hostmask, slow.with_prefixlen, str(slow), repr(slow),
            hash(slow), slow.network.network_address, slow.network.broadcast_address, slow.network.num_addresses)
    assert fast == slow and list(islice(fast.network.hosts(), 3)) == list(islice(slow.network.hosts(), 3))
