"""Robustness and secrets (issue 9), through the real command line.

- Pathological input is refused with an error at its place, never a traceback, and
  quickly (the time is printed; speed is measured in bench/, not asserted): 10,000
  nested blocks, 1,000,000-iteration loops, numbers of 10,000 digits, a 50 MB file,
  include chains 1,000 deep, interpolation that doubles a word 63 times, an
  expression of 20,000 terms, files of millions of statements.
- Every target in backends.TARGET_MODULES (whatever it holds when the test runs)
  renders random valid sites (tests/strategies.py) without an exception.
- MACsec keys drawn by hypothesis never appear in what vnetc prints (check, ir,
  build, build --check, plan) unless asked (`ir --show-secrets`), nor in
  diagnostics about them, and a file holding one is never world-readable.

Fuzzing of valid files by mutation (token and byte level) is in tests/compiler/test_properties.py;
fuzz/ has the long-running fuzzer.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import run_vnetc
from strategies import GenSite, sites
from vnetc.backends import TARGET_MODULES
from vnetc.backends.build import build_plan
from vnetc.cli import main as cli
from vnetc.compiler import CompileError, compile_source
from vnetc.compiler.diagnostics import render_all


@pytest.fixture(autouse=True)
def _no_assertion_pass_hook(monkeypatch):
    """As in tests/compiler/test_properties.py: no pass hook, or hypothesis runs ~40x slower."""
    from _pytest.assertion import util
    monkeypatch.setattr(util, "_assertion_pass", None)


# --- pathological input -------------------------------------------------------------------

def _write(directory: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))


def _doubling(times: int) -> str:
    lines = ["let a0 = xx"] + [f"let a{i} = ${{a{i - 1}}}${{a{i - 1}}}" for i in range(1, times + 1)]
    return "\n".join(lines) + f"\ninterface ${{a{times}}}\n"


#: name -> (files, the error's start "FILE:LINE:COL: error: " (or "vnetc: error: "), words of the message)
PATHOLOGICAL = {
    "10,000 nested blocks": ({"main.vnet": "a {\n" * 10_000 + "}\n" * 10_000},
                             "main.vnet:65:3", "blocks are nested more than 64 deep"),
    "10,000 nested blocks on one line": ({"main.vnet": "bridge b {" * 10_000 + "}" * 10_000 + "\n"},
                                         "main.vnet:1:650", "blocks are nested more than 64 deep"),
    "a 1,000,000-iteration loop making devices": (
        {"main.vnet": "for i in 1..1000000 { dummy d${i} }\n"},
        "main.vnet:1:10", "this loop would bring the statements of the site to 1,000,000 or more; the limit is 200,000"),
    "1,000 x 1,000 nested loops making devices": (
        {"main.vnet": "for i in 1..1000 {\n  for j in 1..1000 { dummy d${i}x${j} }\n}\n"},
        "main.vnet:2:12", "the limit is 200,000"),
    "1,000,001 iterations doing nothing": ({"main.vnet": "for i in 1..1000001 { }\n"},
                                           "main.vnet:1:10", "the limit is 1,000,000"),
    "a number of 10,000 digits": ({"main.vnet": "interface eth0\nvlan v { link eth0; id " + "9" * 10_000 + " }\n"},
                                  "main.vnet:2:24", "has 10000 digits; at most 30 are accepted"),
    "a number of 10,000 digits in ${…}": ({"main.vnet": "let x = ${" + "7" * 10_000 + "}\n"},
                                          "main.vnet:1:11", "number has 10000 digits; at most 30 are accepted"),
    "a loop bound of 10,000 digits": ({"main.vnet": "for i in 1.." + "1" * 10_000 + " { }\n"},
                                      "main.vnet:1:10", "has 10000 digits; at most 30 are accepted"),
    "an expression of 20,000 terms": ({"main.vnet": "dummy d${" + "+".join(["1"] * 20_000) + "}\n"},
                                      "main.vnet:1:266", "the expression has 39,999 numbers, names and operators"),
    "a 50 MB file": ({"main.vnet": b"# " + b"x" * (50 * 2**20) + b"\n"},
                     "vnetc: error: ", "is too large: vnetc reads at most 4 MiB"),
    "a 50 MB file, included": ({"main.vnet": 'include "big.vnet"\n', "big.vnet": b"#" * (50 * 2**20)},
                               "main.vnet:1:9", "big.vnet' is too large: vnetc reads at most 4 MiB"),
    "3 MiB included twice": ({"main.vnet": 'include "big.vnet"\ninclude "big.vnet"\n',
                              "big.vnet": ("#" + "x" * 1023 + "\n") * 3 * 1024},
                             "main.vnet:2:9", "is too large: vnetc reads at most 4 MiB, all included files together"),
    "an include chain 1,000 deep": (
        {f"f{i}.vnet": f'include "f{i + 1}.vnet"\n' for i in range(1000)} | {"f1000.vnet": "interface eth0\n"},
        "f31.vnet:1:9", "includes are nested more than 32 deep"),
    "interpolation doubling a word 63 times": ({"main.vnet": _doubling(63)},
                                               "main.vnet:13:11", "this word grows to 8,192 characters"),
    "2,000,000 statements (4 MiB of 'a')": ({"main.vnet": "a\n" * (2 * 2**20 - 1)},
                                           "main.vnet:200002:1", "more than 200,000 lines and ';' together"),
    "300,000 statements on one line": ({"main.vnet": "a;" * 300_000},
                                       "main.vnet:1:400003", "more than 200,000 lines and ';' together"),
}


@pytest.mark.parametrize("case", sorted(PATHOLOGICAL))
def test_pathological_input_is_refused_with_a_positioned_error(case, tmp_path):
    files, where, message = PATHOLOGICAL[case]
    _write(tmp_path, files)
    main = tmp_path / next(iter(files))
    start = time.perf_counter()
    run = run_vnetc("check", str(main), cwd=tmp_path)
    took = time.perf_counter() - start
    print(f"{case}: refused in {took:.2f} s")
    assert run.exit_code == 1
    first = run.stderr.splitlines()[0]
    prefix = where if where.startswith("vnetc:") else f"{tmp_path}/{where}: error: "
    assert first.startswith(prefix), first[:300]
    assert message in first, first[:300]
    excerpts = [line for line in run.stderr.splitlines() if re.match(r" *\d* \| ", line)]
    assert all(len(line) <= 140 for line in excerpts), "a source excerpt was not cut"


def test_the_limits_are_what_the_language_reference_states():
    import sys

    expand, parser, values = (sys.modules[f"vnetc.compiler.{m}"] for m in ("expand", "parser", "values"))

    limits = (Path(__file__).resolve().parent.parent / "docs" / "language.md").read_text("utf-8")
    table = limits[limits.index("### Limits"):limits.index("## Hosts and namespaces")]
    for stated in (f"{expand.MAX_FILE_BYTES // 2**20} MiB", f"{parser.MAX_LINES:,}", f"{parser.MAX_DEPTH} deep",
                   f"{expand.MAX_INCLUDE_DEPTH} files deep", f"{expand.MAX_ITERATIONS:,}",
                   f"{expand.MAX_STATEMENTS:,}", f"{expand.MAX_WORD:,} characters", f"{values.MAX_DIGITS}",
                   f"{expand.MAX_EXPRESSION_TOKENS}", f"{expand.MAX_EXPRESSION_DEPTH}"):
        assert stated in table, f"docs/language.md does not state {stated!r}"


# --- every target on random valid sites ------------------------------------------------------

@settings(max_examples=max(10, settings.default.max_examples // 2))
@given(sites())
def test_every_target_renders_random_valid_sites(site: GenSite):
    try:
        result = compile_source(site.text, "site.vnet")
    except CompileError as exc:
        raise AssertionError("a valid site is refused:\n" + render_all(exc.diagnostics)) from None
    plan = build_plan(result.site, sorted(TARGET_MODULES), Path("/nonexistent/out"), None)
    for target_plan in plan.plans:
        for directory, artifacts in target_plan.dirs.items():
            names = [a.name for a in artifacts]
            assert len(names) == len(set(names)), f"{target_plan.target}: one file name twice in {directory}"
            for artifact in artifacts:
                assert "/" not in artifact.name and artifact.name not in ("", ".", "..")
                assert not artifact.name.endswith((".vnetc-tmp", ".vnetc-new")) and \
                    not artifact.name.startswith(".vnetc-"), "a name output.py keeps for itself"


# --- secrets ---------------------------------------------------------------------------------

KEYS = st.binary(min_size=16, max_size=16) | st.binary(min_size=32, max_size=32)


@st.composite
def keyed_sites(draw) -> tuple[str, list[str]]:
    """A site with MACsec keys (static SAs or an MKA CAK), written inline in various ways
    (case, 0x, quotes, a `let`, interpolation): its text and the keys as lower-case hex."""
    keys = [k.hex() for k in draw(st.lists(KEYS, min_size=1, max_size=3, unique=True))]

    def spelled(key: str) -> str:
        form = draw(st.sampled_from(["plain", "upper", "0x", "quoted"]))
        return {"plain": key, "upper": key.upper(), "0x": "0x" + key, "quoted": f'"{key}"'}[form]

    lets = []

    def value(key: str) -> str:
        if draw(st.booleans()):
            lets.append(f"let k{len(lets)} = {spelled(key)}")
            return "${k" + str(len(lets) - 1) + "}"
        return spelled(key)

    if draw(st.booleans()):
        keys = keys[:1]
        body = [f"    mka-cak {value(keys[0])}", "    mka-ckn 0102030405060708"]
    else:
        body = [f"    tx-sa 0 {{ key-id 01; key {value(keys[0])} }}"]
        if len(keys) > 1:
            body.append("    rx-channel 52:54:00:00:00:02 1 {")
            body += [f"        sa {an} {{ key-id 0{an + 2}; key {value(k)} }}" for an, k in enumerate(keys[1:])]
            body.append("    }")
    mistake = draw(st.sampled_from(["", "    port 0", "    encrypt maybe", f"    key {keys[0]}"]))
    text = "\n".join(lets + ["interface eth1", "macsec sec0 {", "    link eth1", *body, mistake, "}", ""])
    return text, keys


def _leaks(text: str, keys: list[str]) -> list[str]:
    low = text.lower()
    return [k for k in keys if k in low]


def _commands(path: Path, out: Path) -> list[tuple[str, ...]]:
    commands = [("check", str(path)), ("ir", str(path))]
    for target in sorted(TARGET_MODULES):
        commands.append(("build", str(path), "-t", target, "-o", str(out), "--check"))
        commands.append(("build", str(path), "-t", target, "-o", str(out)))
    if "plan" in cli.commands:
        commands.append(("plan", str(path), "--against-empty"))
    if "graph" in cli.commands:
        commands.append(("graph", str(path)))
    return commands


@settings(max_examples=max(10, settings.default.max_examples // 3))
@given(keyed_sites())
def test_keys_never_appear_in_what_vnetc_prints(case):
    text, keys = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "site.vnet"
        path.write_text(text)
        out = Path(tmp) / "out"
        valid = run_vnetc("check", str(path)).exit_code == 0
        for command in _commands(path, out):
            run = run_vnetc(*command)
            assert run.exit_code in (0, 1, 3), (command, run.exit_code, run.stderr)
            assert not _leaks(run.stdout + run.stderr, keys), f"vnetc {' '.join(command[:4])} printed a key"
        if valid:
            shown = run_vnetc("ir", str(path), "--show-secrets")
            assert set(_leaks(shown.stdout, keys)) == set(keys), "the test looks for the keys in the wrong form"
            for file in out.rglob("*"):
                if file.is_file() and _leaks(file.read_text("utf-8", "replace"), keys):
                    assert file.stat().st_mode & 0o007 == 0, f"{file} holds a key and is world-readable"


def test_a_key_in_a_file_that_is_written_is_never_world_readable_under_root(tmp_path):
    """--root: the networkd .netdev with an inline key is 0640, group systemd-network where it exists."""
    path = tmp_path / "site.vnet"
    key = "00112233445566778899aabbccddeeff"
    path.write_text(f"interface eth1\nmacsec sec0 {{ link eth1; tx-sa 0 {{ key-id 01; key {key} }} }}\n")
    run = run_vnetc("build", str(path), "-t", "networkd", "--root", str(tmp_path / "root"))
    assert run.exit_code == 0 and key not in run.stderr
    netdev = tmp_path / "root/etc/systemd/network/10-vnetc-sec0.netdev"
    assert key in netdev.read_text()
    assert netdev.stat().st_mode & 0o777 == 0o640


def test_the_ir_shows_keys_only_when_asked(tmp_path):
    path = tmp_path / "site.vnet"
    key = "ffeeddccbbaa99887766554433221100"
    path.write_text(f"interface eth1\nmacsec sec0 {{ link eth1; tx-sa 0 {{ key-id 01; key {key} }} }}\n")
    hidden, shown = run_vnetc("ir", str(path)), run_vnetc("ir", str(path), "--show-secrets")
    assert key not in hidden.stdout and "<redacted>" in hidden.stdout
    assert key in shown.stdout and json.loads(shown.stdout)


@pytest.mark.parametrize("line", [
    "let k = 00112233445566778899aabbccddeeff\nlet k = 00112233445566778899aabbccddeeff",
    'description "00112233445566778899aabbccddeeff" oops',
    "key 00112233445566778899aabbccddeeff00112233445566778899aabbccddeef",
], ids=["redefined-let", "in-a-string", "odd-length"])
def test_a_key_on_a_line_with_an_error_is_masked_in_the_excerpt(line, tmp_path):
    path = tmp_path / "site.vnet"
    path.write_text(line + "\n")
    run = run_vnetc("check", str(path))
    assert run.exit_code == 1 and re.search(r"\*{32}", run.stderr), run.stderr
    assert "00112233445566778899aabbccddeeff" not in run.stderr


@pytest.mark.parametrize("target", sorted(TARGET_MODULES))
def test_a_file_name_with_a_newline_stays_in_a_comment(target, tmp_path):
    """Targets name the site file in a comment: a file name holding a newline (or what looks like
    a section, a key or a command after it) gives comment lines, nothing a reader takes as more."""
    site = tmp_path / "x\n[Injected]\nDNS=6.6.6.6\nrm -rf \"$HOME\"\n.vnet"
    site.write_text("bridge br0 { address 10.0.0.1/24 }\n", encoding="utf-8")
    out = tmp_path / "out"
    run = run_vnetc("build", str(site), "-t", target, "-o", str(out))
    assert run.exit_code == 0, run.stderr
    written = [p for p in out.rglob("*") if p.is_file()]
    assert written
    for path in written:
        for line in path.read_text(encoding="utf-8").splitlines():
            if "6.6.6.6" in line or "rm -rf" in line or "[Injected]" in line:
                assert line.lstrip().startswith("#"), f"{path.name}: {line!r}"
