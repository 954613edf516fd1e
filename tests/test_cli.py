"""The `vnetc` command line: exit codes, where output goes, and what it says.

Exit codes (architecture.md): 0 success; 1 the input has errors; 2 usage error.
Diagnostics go to stderr as `file:line:col: severity: message`, then the source
line and a caret under the offending word.
"""

from __future__ import annotations

import json
import os
import random
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, run_vnetc

GOOD = """\
interface eth0

vlan eth0.10 {
    link eth0
    id 10
}
"""

BAD = """\
interface eth0

vlan eth0.5000 {
    link eth0
    id 5000
}
"""

BAD_EXCERPT = """\
bad.vnet:5:8: error: VLAN id 5000 is out of range 1–4094
    5 |     id 5000
      |        ^^^^
"""

#: a bridge with one port and no address: valid, with one warning
WARNS = """\
interface eth0

bridge br0 {
    ports eth0
}
"""

KEY = "00112233445566778899AABBCCDDEEFF"      # an inline tx-sa key (16 bytes)
KEY2 = "FFEEDDCCBBAA99887766554433221100FFEEDDCCBBAA99887766554433221100"  # an rx sa key (32 bytes)
CAK = "0F1E2D3C4B5A69788796A5B4C3D2E1F0"      # an inline MKA CAK

INLINE_KEYS = f"""\
interface eth1
interface eth2

macsec macsec0 {{
    link eth1
    tx-sa 0 {{
        key-id 01
        key {KEY}
    }}
    rx-channel 52:54:00:12:34:57 1 {{
        sa 0 {{
            key-id 02
            key {KEY2}
        }}
    }}
}}

macsec macsec1 {{
    link eth2
    mka-cak {CAK}
    mka-ckn 01
}}
"""


def write(directory: Path, name: str, text: str | bytes) -> Path:
    path = directory / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def no_secret(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret.lower() not in text.lower(), f"a key leaked into the output:\n{text}"


# --- check -------------------------------------------------------------------------


def test_check_valid_file_exits_0_silently(tmp_path):
    write(tmp_path, "good.vnet", GOOD)
    run = run_vnetc("check", "good.vnet", cwd=tmp_path)
    assert (run.exit_code, run.stdout, run.stderr) == (0, "", "")


def test_check_error_exits_1_with_positioned_diagnostic_on_stderr(tmp_path):
    write(tmp_path, "bad.vnet", BAD)
    run = run_vnetc("check", "bad.vnet", cwd=tmp_path)
    assert run.exit_code == 1
    assert run.stdout == ""
    assert run.stderr == BAD_EXCERPT


def test_check_hint_is_printed(tmp_path):
    write(tmp_path, "typo.vnet", "interface eth0\nvxlan vx0 {\n    vni 1\n    dev eht0\n}\n")
    run = run_vnetc("check", "typo.vnet", cwd=tmp_path)
    assert run.exit_code == 1
    assert run.stderr.splitlines() == [
        "typo.vnet:4:9: error: unknown device 'eht0'",
        "    4 |     dev eht0",
        "      |         ^^^^",
        "      = hint: did you mean 'eth0'?",
    ]


def test_check_reports_the_path_as_given(tmp_path):
    (tmp_path / "site").mkdir()
    write(tmp_path / "site", "bad.vnet", BAD)
    run = run_vnetc("check", "site/bad.vnet", cwd=tmp_path)
    assert run.exit_code == 1
    assert run.stderr.startswith("site/bad.vnet:5:8: error: VLAN id 5000 is out of range 1–4094\n")


def test_check_several_files_all_good(tmp_path):
    write(tmp_path, "a.vnet", GOOD)
    write(tmp_path, "b.vnet", "dummy d0\n")
    run = run_vnetc("check", "a.vnet", "b.vnet", cwd=tmp_path)
    assert (run.exit_code, run.stderr) == (0, "")


def test_check_several_files_one_bad_exits_1(tmp_path):
    write(tmp_path, "a.vnet", GOOD)
    write(tmp_path, "bad.vnet", BAD)
    write(tmp_path, "c.vnet", "dummy d0\n")
    run = run_vnetc("check", "a.vnet", "bad.vnet", "c.vnet", cwd=tmp_path)
    assert run.exit_code == 1
    assert run.stderr == BAD_EXCERPT


def test_check_several_bad_files_are_all_reported(tmp_path):
    write(tmp_path, "bad.vnet", BAD)
    write(tmp_path, "good.vnet", GOOD)
    write(tmp_path, "worse.vnet", "brige br0\n")
    write(tmp_path, "broken.vnet", "dummy d0 {\n")
    run = run_vnetc("check", "bad.vnet", "good.vnet", "worse.vnet", "broken.vnet", cwd=tmp_path)
    assert run.exit_code == 1
    heads = [line for line in run.stderr.splitlines() if ": error: " in line]
    assert heads == [
        "bad.vnet:5:8: error: VLAN id 5000 is out of range 1–4094",
        "worse.vnet:1:1: error: unknown statement 'brige'",
        "broken.vnet:1:10: error: unterminated block: this '{' is never closed",
    ]
    assert "good.vnet" not in run.stderr


def test_check_reports_all_errors_of_one_file(tmp_path):
    write(tmp_path, "many.vnet", "interface eth0\nvlan v1 {\n    link eth0\n    id 0\n}\n"
                                 "vlan v2 {\n    link eth0\n    id 4095\n}\nbond b0 {\n    mode fast\n}\n")
    run = run_vnetc("check", "many.vnet", cwd=tmp_path)
    assert run.exit_code == 1
    heads = [line for line in run.stderr.splitlines() if ": error: " in line]
    assert heads == [
        "many.vnet:4:8: error: VLAN id 0 is out of range 1–4094",
        "many.vnet:8:8: error: VLAN id 4095 is out of range 1–4094",
        "many.vnet:11:10: error: unknown bond mode 'fast'",
    ]


def test_check_warning_only_exits_0(tmp_path):
    write(tmp_path, "w.vnet", WARNS)
    run = run_vnetc("check", "w.vnet", cwd=tmp_path)
    assert run.exit_code == 0
    assert run.stdout == ""
    assert run.stderr.splitlines() == [
        "w.vnet:3:8: warning: bridge 'br0' has one port and no address",
        "    3 | bridge br0 {",
        "      |        ^^^",
        "      = hint: a bridge with one port forwards nothing; add ports or an address",
    ]


def test_check_strict_turns_warnings_into_errors(tmp_path):
    write(tmp_path, "w.vnet", WARNS)
    run = run_vnetc("check", "--strict", "w.vnet", cwd=tmp_path)
    assert run.exit_code == 1
    assert run.stderr.splitlines() == [
        "w.vnet:3:8: error: bridge 'br0' has one port and no address",
        "    3 | bridge br0 {",
        "      |        ^^^",
        "      = hint: a bridge with one port forwards nothing; add ports or an address",
        "      = note: a warning, made an error by --strict",
    ]
    assert "warning:" not in run.stderr


def test_check_strict_without_warnings_exits_0(tmp_path):
    write(tmp_path, "good.vnet", GOOD)
    run = run_vnetc("check", "--strict", "good.vnet", cwd=tmp_path)
    assert (run.exit_code, run.stderr) == (0, "")


def test_check_strict_applies_to_each_file(tmp_path):
    write(tmp_path, "good.vnet", GOOD)
    write(tmp_path, "w.vnet", WARNS)
    run = run_vnetc("check", "good.vnet", "w.vnet", "--strict", cwd=tmp_path)
    assert run.exit_code == 1
    assert run.stderr.startswith("w.vnet:3:8: error: bridge 'br0' has one port and no address\n")


def test_check_follows_includes_relative_to_the_including_file(tmp_path):
    (tmp_path / "site" / "parts").mkdir(parents=True)
    write(tmp_path / "site", "main.vnet", 'include "parts/nics.vnet"\nbond bond0 {\n    ports eth0\n}\n')
    write(tmp_path / "site" / "parts", "nics.vnet", "interface eth0 {\n    mtu 10\n}\n")
    run = run_vnetc("check", "site/main.vnet", cwd=tmp_path)
    assert run.exit_code == 1
    assert run.stderr.splitlines() == [
        "site/parts/nics.vnet:2:9: error: MTU 10 is out of range 68–65535",
        "    2 |     mtu 10",
        "      |         ^^",
        "      = note: in a file included from site/main.vnet:1:9",
    ]


def test_empty_file_is_valid(tmp_path):
    write(tmp_path, "empty.vnet", "")
    check = run_vnetc("check", "--strict", "empty.vnet", cwd=tmp_path)
    assert (check.exit_code, check.stdout, check.stderr) == (0, "", "")
    ir = run_vnetc("ir", "empty.vnet", cwd=tmp_path)
    assert ir.exit_code == 0
    assert json.loads(ir.stdout) == {"hosts": [{"name": None, "namespaces": [], "devices": []}]}
    fmt = run_vnetc("fmt", "--check", "empty.vnet", cwd=tmp_path)
    assert (fmt.exit_code, fmt.stderr) == (0, "")
    assert (tmp_path / "empty.vnet").read_bytes() == b""


def test_file_of_comments_and_blank_lines_is_valid(tmp_path):
    write(tmp_path, "c.vnet", "# nothing here yet\n\n   \n# still nothing\n")
    run = run_vnetc("check", "c.vnet", cwd=tmp_path)
    assert (run.exit_code, run.stderr) == (0, "")


def test_non_utf8_file_is_an_input_error_with_its_position(tmp_path):
    write(tmp_path, "latin1.vnet", b'dummy d0 {\n    description "caf\xe9"\n}\n')
    run = run_vnetc("check", "latin1.vnet", cwd=tmp_path)
    assert run.exit_code == 1
    assert "UTF-8" in run.stderr
    assert "0xe9" in run.stderr
    # Like every other diagnostic: file:line:col first, so that editors can jump to it.
    assert run.stderr.startswith("latin1.vnet:2:21: error: "), run.stderr


def test_non_utf8_included_file_is_reported_in_that_file_with_the_include(tmp_path):
    write(tmp_path, "main.vnet", 'include "latin1.vnet"\n')
    write(tmp_path, "latin1.vnet", b"dummy d\xe90\n")
    run = run_vnetc("check", "main.vnet", cwd=tmp_path)
    assert run.exit_code == 1
    assert run.stderr.startswith("latin1.vnet:1:8: error: this file is not UTF-8 text: byte 0xe9 cannot be "
                                 "decoded\n"), run.stderr
    assert "= note: in a file included from main.vnet:1:9" in run.stderr


def test_utf8_bom_is_accepted(tmp_path):
    write(tmp_path, "bom.vnet", b"\xef\xbb\xbfdummy d0\n")
    run = run_vnetc("ir", "bom.vnet", cwd=tmp_path)
    assert run.exit_code == 0
    assert [d["name"] for d in json.loads(run.stdout)["hosts"][0]["devices"]] == ["d0"]


# --- usage errors: exit 2 ------------------------------------------------------------

@pytest.mark.parametrize("command", [["check"], ["check", "--strict"], ["fmt"], ["fmt", "--check"], ["ir"]])
def test_no_file_argument_is_a_usage_error(tmp_path, command):
    run = run_vnetc(*command, cwd=tmp_path)
    assert run.exit_code == 2
    assert "Missing argument" in run.stderr
    assert run.stdout == ""


@pytest.mark.parametrize("command", [["check"], ["fmt"], ["fmt", "--check"], ["ir"], ["ir", "--show-secrets"]])
def test_nonexistent_file_is_a_usage_error(tmp_path, command):
    run = run_vnetc(*command, "nowhere.vnet", cwd=tmp_path)
    assert run.exit_code == 2
    assert "nowhere.vnet" in run.stderr
    assert "does not exist" in run.stderr


@pytest.mark.parametrize("command", [["check"], ["fmt"], ["fmt", "--check"], ["ir"]])
def test_directory_argument_is_a_usage_error(tmp_path, command):
    (tmp_path / "site").mkdir()
    run = run_vnetc(*command, "site", cwd=tmp_path)
    assert run.exit_code == 2
    assert "is a directory" in run.stderr


def test_nonexistent_file_among_good_ones_is_a_usage_error(tmp_path):
    write(tmp_path, "good.vnet", GOOD)
    run = run_vnetc("check", "good.vnet", "missing.vnet", cwd=tmp_path)
    assert run.exit_code == 2
    assert "missing.vnet" in run.stderr


def test_unknown_command_is_a_usage_error(tmp_path):
    run = run_vnetc("compile", "x.vnet", cwd=tmp_path)
    assert run.exit_code == 2
    assert "No such command 'compile'" in run.stderr


@pytest.mark.parametrize("command", ["check", "fmt", "ir"])
def test_unknown_option_is_a_usage_error(tmp_path, command):
    write(tmp_path, "good.vnet", GOOD)
    run = run_vnetc(command, "--frobnicate", "good.vnet", cwd=tmp_path)
    assert run.exit_code == 2
    assert "No such option: --frobnicate" in run.stderr or "No such option '--frobnicate'" in run.stderr


def test_ir_takes_one_file(tmp_path):
    write(tmp_path, "a.vnet", GOOD)
    write(tmp_path, "b.vnet", GOOD)
    run = run_vnetc("ir", "a.vnet", "b.vnet", cwd=tmp_path)
    assert run.exit_code == 2
    assert "unexpected extra argument" in run.stderr


def test_no_command_prints_usage(tmp_path):
    run = run_vnetc(cwd=tmp_path)
    assert run.exit_code in (0, 2)   # click: a group without a command shows its help
    assert "Usage:" in run.stdout + run.stderr
    for command in ("check", "fmt", "ir"):
        assert command in run.stdout + run.stderr


def test_help_lists_the_commands(tmp_path):
    run = run_vnetc("--help", cwd=tmp_path)
    assert run.exit_code == 0
    assert run.stdout.startswith("Usage: ")
    for command in ("check", "fmt", "ir"):
        assert f"  {command} " in run.stdout


def test_check_help_mentions_strict(tmp_path):
    run = run_vnetc("check", "--help", cwd=tmp_path)
    assert run.exit_code == 0
    assert "--strict" in run.stdout


def test_python_dash_m_vnetc_help():
    done = subprocess.run([sys.executable, "-m", "vnetc", "--help"], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout
    for command in ("check", "fmt", "ir"):
        assert command in done.stdout
    assert done.stderr == ""


def test_python_dash_m_vnetc_check(tmp_path):
    write(tmp_path, "bad.vnet", BAD)
    done = subprocess.run([sys.executable, "-m", "vnetc", "check", "bad.vnet"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert done.returncode == 1
    assert done.stderr == BAD_EXCERPT


# --- ir --------------------------------------------------------------------------------


def test_ir_prints_json_on_stdout(tmp_path):
    write(tmp_path, "good.vnet", GOOD)
    run = run_vnetc("ir", "good.vnet", cwd=tmp_path)
    assert (run.exit_code, run.stderr) == (0, "")
    site = json.loads(run.stdout)
    devices = site["hosts"][0]["devices"]
    assert [(d["kind"], d["name"]) for d in devices] == [("interface", "eth0"), ("vlan", "eth0.10")]
    vlan = devices[1]
    assert vlan["id"] == 10
    assert vlan["link"] == {"name": "eth0", "netns": None}
    assert vlan["protocol"] == "802.1q"   # the default is filled in
    assert vlan["state"] == "up"


def test_ir_of_bad_input_exits_1_and_prints_no_json(tmp_path):
    write(tmp_path, "bad.vnet", BAD)
    run = run_vnetc("ir", "bad.vnet", cwd=tmp_path)
    assert run.exit_code == 1
    assert run.stdout == ""
    assert run.stderr == BAD_EXCERPT


def test_ir_warnings_go_to_stderr_and_json_stays_clean(tmp_path):
    write(tmp_path, "w.vnet", WARNS)
    run = run_vnetc("ir", "w.vnet", cwd=tmp_path)
    assert run.exit_code == 0
    assert run.stderr.startswith("w.vnet:3:8: warning: bridge 'br0' has one port and no address\n")
    site = json.loads(run.stdout)
    bridge = next(d for d in site["hosts"][0]["devices"] if d["name"] == "br0")
    assert bridge["ports"] == [{"name": "eth0", "netns": None}]


def test_ir_is_deterministic(tmp_path):
    text = (ROOT / "examples" / "site.vnet").read_text(encoding="utf-8")
    write(tmp_path, "site.vnet", text)
    first = run_vnetc("ir", "site.vnet", cwd=tmp_path)
    second = run_vnetc("ir", "site.vnet", cwd=tmp_path)
    assert first.exit_code == 0
    assert first.stdout == second.stdout


def test_ir_redacts_macsec_keys(tmp_path):
    write(tmp_path, "keys.vnet", INLINE_KEYS)
    run = run_vnetc("ir", "keys.vnet", cwd=tmp_path)
    assert run.exit_code == 0
    no_secret(run.stdout, KEY, KEY2, CAK)
    devices = {d["name"]: d for d in json.loads(run.stdout)["hosts"][0]["devices"]}
    tx = devices["macsec0"]["tx-sa"]
    assert tx == [{"an": 0, "key-id": "01", "key": "<redacted>"}]
    rx = devices["macsec0"]["rx-channel"]
    assert rx == [{"mac": "52:54:00:12:34:57", "port": 1,
                   "sa": [{"an": 0, "key-id": "02", "key": "<redacted>"}]}]
    assert devices["macsec1"]["mka-cak"] == "<redacted>"
    assert devices["macsec1"]["mka-ckn"] == "01"


def test_ir_show_secrets_prints_the_keys(tmp_path):
    write(tmp_path, "keys.vnet", INLINE_KEYS)
    run = run_vnetc("ir", "--show-secrets", "keys.vnet", cwd=tmp_path)
    assert run.exit_code == 0
    devices = {d["name"]: d for d in json.loads(run.stdout)["hosts"][0]["devices"]}
    assert devices["macsec0"]["tx-sa"][0]["key"] == KEY.lower()
    assert devices["macsec0"]["rx-channel"][0]["sa"][0]["key"] == KEY2.lower()
    assert devices["macsec1"]["mka-cak"] == CAK.lower()
    assert "<redacted>" not in run.stdout


def test_ir_key_files_are_not_secrets(tmp_path):
    write(tmp_path, "kf.vnet", 'interface eth1\nmacsec m0 {\n    link eth1\n    tx-sa 0 {\n        key-id 01\n'
                               '        key-file "/etc/vnetc/keys/m0.key"\n    }\n}\n')
    run = run_vnetc("ir", "kf.vnet", cwd=tmp_path)
    assert (run.exit_code, run.stderr) == (0, "")
    macsec = json.loads(run.stdout)["hosts"][0]["devices"][1]
    assert macsec["tx-sa"] == [{"an": 0, "key-id": "01", "key-file": "/etc/vnetc/keys/m0.key"}]


def test_ir_qdisc_durations_are_canonical_text(tmp_path):
    # irjson: "durations [become] their canonical text (`100ms`)", as for every other duration.
    write(tmp_path, "ifb.vnet", "interface eth0\nifb ifb0 {\n    qdisc tbf rate 1mbit burst 32kbit latency 400ms\n"
                                "    redirect-ingress eth0\n}\nifb ifb1 {\n    qdisc sfq perturb 10\n}\n")
    run = run_vnetc("ir", "ifb.vnet", cwd=tmp_path)
    assert run.exit_code == 0
    devices = {d["name"]: d for d in json.loads(run.stdout)["hosts"][0]["devices"]}
    assert devices["ifb0"]["qdisc"]["kind"] == "tbf"
    assert devices["ifb0"]["qdisc"]["latency"] == "400ms"
    assert devices["ifb1"]["qdisc"] == {"kind": "sfq", "perturb": "10s"}


# --- secrets never reach a diagnostic ---------------------------------------------------


def test_check_reports_inline_keys_without_printing_them(tmp_path):
    write(tmp_path, "keys.vnet", INLINE_KEYS)
    run = run_vnetc("check", "keys.vnet", cwd=tmp_path)
    assert run.exit_code == 0
    heads = [line for line in run.stderr.splitlines() if ": warning: " in line]
    assert heads == [
        "keys.vnet:8:13: warning: tx-sa 0 holds its key inline",
        "keys.vnet:13:17: warning: sa 0 holds its key inline",
        "keys.vnet:20:13: warning: the MKA CAK is inline",
    ]
    no_secret(run.stderr, KEY, KEY2, CAK)


def test_check_strict_reports_inline_keys_without_printing_them(tmp_path):
    write(tmp_path, "keys.vnet", INLINE_KEYS)
    run = run_vnetc("check", "--strict", "keys.vnet", cwd=tmp_path)
    assert run.exit_code == 1
    assert "keys.vnet:8:13: error: tx-sa 0 holds its key inline" in run.stderr
    no_secret(run.stderr, KEY, KEY2, CAK)


def test_ir_warnings_do_not_print_keys(tmp_path):
    write(tmp_path, "keys.vnet", INLINE_KEYS)
    run = run_vnetc("ir", "keys.vnet", cwd=tmp_path)
    assert run.exit_code == 0
    assert "holds its key inline" in run.stderr
    no_secret(run.stderr, KEY, KEY2, CAK)
    no_secret(run.stdout, KEY, KEY2, CAK)


def test_errors_elsewhere_do_not_print_keys(tmp_path):
    # An unrelated error on the key's own line: the excerpt must not show the key.
    text = INLINE_KEYS.replace(f"key {KEY}", f"key {KEY}; bogus 1")
    write(tmp_path, "keys.vnet", text)
    run = run_vnetc("check", "keys.vnet", cwd=tmp_path)
    assert run.exit_code == 1
    assert "keys.vnet:8:47: error: unknown property 'bogus' for tx-sa 0" in run.stderr
    no_secret(run.stderr, KEY, KEY2, CAK)


def test_a_key_of_the_wrong_length_is_not_printed(tmp_path):
    # One byte short: almost the whole key. The error names the problem, not the key.
    short = KEY[:-2]
    write(tmp_path, "short.vnet", f"interface eth1\nmacsec m0 {{\n    link eth1\n    tx-sa 0 {{\n"
                                  f"        key-id 01\n        key {short}\n    }}\n}}\n")
    run = run_vnetc("check", "short.vnet", cwd=tmp_path)
    assert run.exit_code == 1
    assert run.stderr.startswith("short.vnet:6:13: error: a MACsec key must be 16 or 32 bytes of hex "
                                 "(32 or 64 hex digits); this one is 15 bytes\n")
    no_secret(run.stderr, short)


def test_a_bad_key_is_reported_once(tmp_path):
    # The key is there, only malformed: no second error claiming that it is missing.
    write(tmp_path, "bad.vnet", "interface eth1\nmacsec m0 {\n    link eth1\n    tx-sa 0 {\n"
                                "        key-id zz\n        key 0011\n    }\n}\n")
    run = run_vnetc("check", "bad.vnet", cwd=tmp_path)
    assert run.exit_code == 1
    heads = [line for line in run.stderr.splitlines() if ": error: " in line]
    assert heads == [
        "bad.vnet:5:16: error: MACsec key id is not hex",
        "bad.vnet:6:13: error: a MACsec key must be 16 or 32 bytes of hex (32 or 64 hex digits); "
        "this one is 2 bytes",
    ]


# --- fmt ---------------------------------------------------------------------------------

UGLY = "interface eth0\n\n\n\nvlan eth0.10 {   link eth0 ;  id 10 }\n"
PRETTY = "interface eth0\n\nvlan eth0.10 {\n    link eth0\n    id 10\n}\n"


def test_fmt_rewrites_in_place(tmp_path):
    path = write(tmp_path, "x.vnet", UGLY)
    run = run_vnetc("fmt", "x.vnet", cwd=tmp_path)
    assert run.exit_code == 0
    assert run.stdout == ""
    assert run.stderr == "reformatted x.vnet\n"
    assert path.read_text(encoding="utf-8") == PRETTY


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o664, 0o755])
def test_fmt_keeps_the_file_mode(tmp_path, mode):
    path = write(tmp_path, "x.vnet", UGLY)
    os.chmod(path, mode)
    run = run_vnetc("fmt", "x.vnet", cwd=tmp_path)
    assert run.exit_code == 0
    assert path.read_text(encoding="utf-8") == PRETTY
    assert stat.S_IMODE(os.stat(path).st_mode) == mode


def test_fmt_leaves_no_temporary_file(tmp_path):
    write(tmp_path, "x.vnet", UGLY)
    run = run_vnetc("fmt", "x.vnet", cwd=tmp_path)
    assert run.exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.vnet"]


def test_fmt_of_a_canonical_file_changes_nothing(tmp_path):
    path = write(tmp_path, "x.vnet", PRETTY)
    before = os.stat(path)
    run = run_vnetc("fmt", "x.vnet", cwd=tmp_path)
    assert (run.exit_code, run.stdout, run.stderr) == (0, "", "")
    after = os.stat(path)
    assert path.read_text(encoding="utf-8") == PRETTY
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_fmt_check_on_a_non_canonical_file_exits_1_and_changes_nothing(tmp_path):
    path = write(tmp_path, "x.vnet", UGLY)
    os.chmod(path, 0o640)
    before = os.stat(path)
    run = run_vnetc("fmt", "--check", "x.vnet", cwd=tmp_path)
    assert run.exit_code == 1
    assert run.stdout == ""
    assert run.stderr == "x.vnet: not in canonical layout (run: vnetc fmt x.vnet)\n"
    after = os.stat(path)
    assert path.read_text(encoding="utf-8") == UGLY
    assert (after.st_ino, after.st_mtime_ns, stat.S_IMODE(after.st_mode)) == \
        (before.st_ino, before.st_mtime_ns, 0o640)


def test_fmt_check_on_a_canonical_file_exits_0(tmp_path):
    write(tmp_path, "x.vnet", PRETTY)
    run = run_vnetc("fmt", "--check", "x.vnet", cwd=tmp_path)
    assert (run.exit_code, run.stdout, run.stderr) == (0, "", "")


def test_fmt_check_several_files_names_each_non_canonical_one(tmp_path):
    write(tmp_path, "a.vnet", UGLY)
    write(tmp_path, "b.vnet", PRETTY)
    write(tmp_path, "c.vnet", "dummy d0 {  }\n")
    run = run_vnetc("fmt", "--check", "a.vnet", "b.vnet", "c.vnet", cwd=tmp_path)
    assert run.exit_code == 1
    assert run.stderr.splitlines() == [
        "a.vnet: not in canonical layout (run: vnetc fmt a.vnet)",
        "c.vnet: not in canonical layout (run: vnetc fmt c.vnet)",
    ]


def test_fmt_several_files(tmp_path):
    a = write(tmp_path, "a.vnet", UGLY)
    b = write(tmp_path, "b.vnet", PRETTY)
    c = write(tmp_path, "c.vnet", "dummy d0 {  }\n")
    run = run_vnetc("fmt", "a.vnet", "b.vnet", "c.vnet", cwd=tmp_path)
    assert run.exit_code == 0
    assert run.stderr.splitlines() == ["reformatted a.vnet", "reformatted c.vnet"]
    assert (a.read_text(), b.read_text(), c.read_text()) == (PRETTY, PRETTY, "dummy d0 {}\n")


def test_fmt_of_a_syntax_error_exits_1_and_changes_nothing(tmp_path):
    text = "dummy d0 {\n    mtu 1500\n"
    path = write(tmp_path, "x.vnet", text)
    run = run_vnetc("fmt", "x.vnet", cwd=tmp_path)
    assert run.exit_code == 1
    assert run.stderr.startswith("x.vnet:1:10: error: unterminated block: this '{' is never closed\n")
    assert path.read_text(encoding="utf-8") == text


def test_fmt_one_broken_file_does_not_stop_the_others(tmp_path):
    write(tmp_path, "broken.vnet", "}\n")
    good = write(tmp_path, "ugly.vnet", UGLY)
    run = run_vnetc("fmt", "broken.vnet", "ugly.vnet", cwd=tmp_path)
    assert run.exit_code == 1
    assert "broken.vnet:1:1: error: unexpected '}': no block is open here" in run.stderr
    assert "reformatted ugly.vnet" in run.stderr
    assert good.read_text(encoding="utf-8") == PRETTY


def test_fmt_does_not_check_meaning(tmp_path):
    # fmt works on the parse alone: an unknown kind or a bad value is still laid out.
    path = write(tmp_path, "x.vnet", "brige br0 { mtu 5 }\n")
    run = run_vnetc("fmt", "x.vnet", cwd=tmp_path)
    assert run.exit_code == 0
    assert path.read_text(encoding="utf-8") == "brige br0 {\n    mtu 5\n}\n"


def test_fmt_does_not_touch_included_files(tmp_path):
    main = write(tmp_path, "main.vnet", 'include "nics.vnet"\n\n\n\ndummy d0\n')
    nics = write(tmp_path, "nics.vnet", "interface eth0 {  mtu 9000 }\n")
    run = run_vnetc("fmt", "main.vnet", cwd=tmp_path)
    assert run.exit_code == 0
    assert main.read_text(encoding="utf-8") == 'include "nics.vnet"\n\ndummy d0\n'
    assert nics.read_text(encoding="utf-8") == "interface eth0 {  mtu 9000 }\n"


def test_fmt_of_non_utf8_exits_1_and_changes_nothing(tmp_path):
    data = b'dummy d0 {\n    description "caf\xe9"\n}\n'
    path = write(tmp_path, "latin1.vnet", data)
    run = run_vnetc("fmt", "latin1.vnet", cwd=tmp_path)
    assert run.exit_code == 1
    assert "UTF-8" in run.stderr
    assert path.read_bytes() == data


def test_fmt_keeps_secrets_in_the_file_but_prints_none(tmp_path):
    path = write(tmp_path, "keys.vnet", INLINE_KEYS.replace("    link eth1\n", "    link eth1;  port 1\n"))
    run = run_vnetc("fmt", "keys.vnet", cwd=tmp_path)
    assert run.exit_code == 0
    assert run.stderr == "reformatted keys.vnet\n"
    assert path.read_text(encoding="utf-8") == INLINE_KEYS.replace("    link eth1\n", "    link eth1\n    port 1\n", 1)


# --- never a traceback: the installed console script on broken input ---------------------

VNETC = Path(sys.executable).with_name("vnetc")

BROKEN: dict[str, bytes] = {
    "unterminated-block": b"bridge br0 {\n    stp on\n",
    "stray-brace": b"}\n",
    "unterminated-string": b'dummy d0 {\n    description "x\n}\n',
    "unterminated-interpolation": b"dummy d${i\n",
    "lonely-brace": b"{\n}\n",
    "string-first": b'"dummy" d0\n',
    "not-utf8": b"dummy d\xff0\n",
    "random-bytes": random.Random(0).randbytes(512),
    "too-deep": b"a {\n" * 70 + b"}\n" * 70,
    "too-many-iterations": b"for i in 1..2000000 {\n    dummy d${i}\n}\n",
    "arithmetic-overflow": b"dummy d${99999999999999999999 * 99999999999999999999 * 99999999999999999999}\n",
    "division-by-zero": b"dummy d${1 % 0}\n",
    "self-include": b'include "case.vnet"\n',
    "include-directory": b'include "."\n',
    "let-of-itself": b"let a = ${a}\n",
    "bad-escape": b'dummy d0 {\n    description "\\q"\n}\n',
    "huge-number": b"interface eth0\nvlan v0 {\n    link eth0\n    id " + b"9" * 5000 + b"\n}\n",
    "nul-in-name": b"dummy d\x00x\n",
    "empty-name": b'dummy ""\n',
    "everything-wrong": b"host h { host i { } }\nnetns\nfor in { }\nlet = \nport x\nvlan\nvxlan a b c\n",
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_input_never_gives_a_traceback(tmp_path, name):
    assert VNETC.is_file(), f"no console script at {VNETC}"
    write(tmp_path, "case.vnet", BROKEN[name])
    for command in (["check"], ["ir"]):
        done = subprocess.run([str(VNETC), *command, "case.vnet"], capture_output=True, cwd=tmp_path, timeout=120)
        stderr = done.stderr.decode("utf-8", "replace")
        assert "Traceback" not in stderr, stderr
        assert done.returncode == 1, (command, stderr)
        assert " error: " in stderr, stderr
        if command == ["ir"]:
            assert done.stdout == b""


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_fmt_check_of_broken_input_never_gives_a_traceback(tmp_path, name):
    path = write(tmp_path, "case.vnet", BROKEN[name])
    done = subprocess.run([str(VNETC), "fmt", "--check", "case.vnet"], capture_output=True, cwd=tmp_path,
                          timeout=120)
    stderr = done.stderr.decode("utf-8", "replace")
    assert "Traceback" not in stderr, stderr
    assert done.returncode in (0, 1), stderr
    assert path.read_bytes() == BROKEN[name]


def test_build_lists_the_first_residual_items_of_each_target_and_counts_the_rest(tmp_path):
    """A large site can leave thousands of items to vnetc apply: stderr shows the first
    MAX_SHOWN of each target (as diagnostics do), then how many more and where they all are."""
    from vnetc.compiler.diagnostics import MAX_SHOWN

    many = MAX_SHOWN + 7
    write(tmp_path, "site.vnet", f"netns n1\nfor i in 1..{many} {{\n    veth v${{i}} {{ peer p${{i}} {{ netns n1 }} }}\n}}\n")
    run = run_vnetc("build", "site.vnet", "-t", "networkd", "-t", "iproute2", "-o", "out", cwd=tmp_path)
    assert run.exit_code == 0, run.stderr
    listed = [line for line in run.stderr.splitlines() if line.startswith("  residual (networkd -> vnetc apply): ")]
    assert len(listed) == MAX_SHOWN
    assert listed[0].endswith("veth 'n1/p1': the veth peer lives in namespace 'n1', which networkd does not manage; "
                              "vnetc apply creates the pair and moves it")
    assert f"  … and 7 more for networkd; /etc/vnetc/residual/networkd.json lists every one" in run.stderr
    items = json.loads((tmp_path / "out" / "networkd" / "networkd.json").read_text())["items"]
    assert len(items) == many
    assert "more for iproute2" not in run.stderr     # the script does everything: nothing to list
