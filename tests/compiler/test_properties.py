"""Property tests of the front end (hypothesis).

- every random valid site (tests/strategies.py, generated from compiler/schema.py) compiles, and its IR
  holds the generated hosts, namespaces, devices, kinds and masters; the strategy writes every property
  of every kind;
- `fmt` keeps the meaning (the IR JSON of fmt(x) is the IR JSON of x) and is idempotent; on any text
  that parses, fmt also keeps the diagnostics (less their positions);
- `include` is textual: statements moved into an included file keep the IR;
- random mutations of valid files (generated sites and examples/) either still compile or are refused
  with positioned error diagnostics, never with another exception; through the CLI (`check`,
  `fmt --check`), exit code 0 or 1 and no traceback, also for bytes that are not UTF-8.

Examples per test: the settings profile of tests/strategies.py (60 by default, without shrinking;
HYPOTHESIS_PROFILE=long for 2000 and shrunk failures; =quick for 10).
"""

from __future__ import annotations

import os
import tempfile

import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st

from conftest import EXAMPLES, run_vnetc
from strategies import GenSite, mutated, mutated_bytes, sites
from vnetc.compiler import CompileError, compile_file, compile_source
from vnetc.compiler.diagnostics import Source, render_all
from vnetc.compiler.fmt import format_raw
from vnetc.compiler.irjson import site_to_json
from vnetc.compiler.parser import parse
from vnetc.compiler.schema import KINDS, props_of

EXAMPLE_FILES = sorted(EXAMPLES.rglob("*.vnet"))
EXAMPLE_TEXTS = [p.read_text("utf-8") for p in EXAMPLE_FILES]
VALID_TEXTS = st.one_of(st.sampled_from(EXAMPLE_TEXTS), sites(max_devices=5).map(lambda s: s.text))
#: Mutants are compiled in an empty directory but for this file, which some of them include.
PART = "part.vnet"
PART_TEXT = "# an included file\nlet INCLUDED_ = 1\n"
MUTATION_BASES = st.tuples(st.booleans(), VALID_TEXTS).map(lambda t: f'include "{PART}"\n' * t[0] + t[1])
#: Mutants are cheap (small files, most refused early): four times the profile's examples.
MORE = 4 * settings.default.max_examples


# --- helpers -----------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _no_assertion_pass_hook(monkeypatch):
    """pyproject.toml sets enable_assertion_pass_hook (for pytest-golden). pytest then rewrites the asserts
    of every plugin's distribution, hypothesis included, and with a pass hook registered it formats an
    explanation for every assert that *passes*: hypothesis's own asserts made these tests ~40x slower.
    Nothing here needs the pass hook (failures are still explained)."""
    from _pytest.assertion import util
    monkeypatch.setattr(util, "_assertion_pass", None)


def fmt(text: str, path: str = "site.vnet") -> str:
    return format_raw(parse(Source(path, text)))


def ir(text: str, path: str = "site.vnet") -> dict:
    return site_to_json(compile_source(text, path).site, show_secrets=True)


def assert_fmt_keeps_meaning(text: str, path: str = "site.vnet") -> None:
    """fmt(x) compiles to the IR of x, and fmt(fmt(x)) == fmt(x)."""
    before = ir(text, path)
    once = fmt(text, path)
    try:
        after = ir(once, path)
    except CompileError as exc:
        raise AssertionError(f"fmt output does not compile:\n{once}\n{render_all(exc.diagnostics)}") from None
    assert after == before, f"fmt changed the meaning; fmt output:\n{once}"
    assert fmt(once, path) == once, "fmt is not idempotent"


def verdict(text: str, path: str) -> list[tuple[str, str]] | dict:
    """The IR JSON, or the diagnostics without their positions."""
    try:
        return ir(text, path)
    except CompileError as exc:
        return sorted((d.severity, d.message) for d in exc.diagnostics)


def assert_fmt_keeps_verdict(text: str, path: str) -> None:
    """For any text that parses, valid or not: fmt(fmt(x)) == fmt(x), and fmt(x) has the IR or the
    diagnostics (less positions) of x."""
    try:
        once = fmt(text, path)
    except CompileError:
        return
    assert fmt(once, path) == once, f"fmt is not idempotent; fmt output:\n{once}"
    assert verdict(once, path) == verdict(text, path), f"fmt changed the meaning; fmt output:\n{once}"


def assert_compiles_or_refused_cleanly(text: str, path: str) -> None:
    """Compiles or CompileError with positioned error diagnostics; and fmt keeps the verdict."""
    assert_fmt_keeps_verdict(text, path)
    try:
        compile_source(text, path)
    except CompileError as exc:
        errors = [d for d in exc.diagnostics if d.severity == "error"]
        assert errors, f"CompileError without an error: {exc.diagnostics}"
        for d in errors:
            assert d.span is not None, f"error without a position: {d.message}"
            lines = d.span.source.text.split("\n")     # the mutant, or a file it includes
            assert 1 <= d.span.line <= len(lines), f"line outside the file: {d.render()}"
            assert 1 <= d.span.col <= len(lines[d.span.line - 1]) + 1, f"column outside the line: {d.render()}"
        render_all(exc.diagnostics)   # rendering never fails either


def expected_ir_contents(site: GenSite, ir_json: dict) -> None:
    hosts = {h["name"]: h for h in ir_json["hosts"]}
    assert set(hosts) == set(site.namespaces)
    for name, host in hosts.items():
        assert set(host["namespaces"]) == site.namespaces[name]
    got = {(h["name"], d["netns"], d["name"], d["kind"]) for h in ir_json["hosts"] for d in h["devices"]}
    assert got == site.devices
    masters = {(h["name"], d["netns"], d["name"]): d["master"]["name"]
               for h in ir_json["hosts"] for d in h["devices"] if d.get("master")}
    assert masters == site.masters


# --- valid sites ---------------------------------------------------------------------------

@given(sites())
def test_generated_sites_compile(site: GenSite):
    try:
        result = compile_source(site.text, "site.vnet")
    except CompileError as exc:
        raise AssertionError("a valid site is refused:\n" + render_all(exc.diagnostics)) from None
    expected_ir_contents(site, site_to_json(result.site))


@given(sites())
def test_fmt_keeps_meaning_and_is_idempotent(site: GenSite):
    assert_fmt_keeps_meaning(site.text)


@given(sites(max_devices=5), st.data())
def test_include_is_textual(site: GenSite, data):
    """Moving a run of top-level statements into a file that the site includes in their place keeps
    the IR (language.md §2: `include` reads another file *here*)."""
    text = site.text
    lines = text.split("\n")
    heads = [s.words[0] for s in parse(Source("site.vnet", text)).statements]
    starts = sorted({h.line for h in heads if h.column == 1})
    cuts = [line - 1 for line in starts] + [len(lines)]
    first = data.draw(st.sampled_from(cuts), label="first line moved")
    last = data.draw(st.sampled_from([c for c in cuts if c >= first]), label="end of the lines moved")
    main = "\n".join(lines[:first] + ['include "part.vnet"'] + lines[last:])
    part = "\n".join(lines[first:last])
    with tempfile.TemporaryDirectory() as tmp:
        for name, content in (("site.vnet", main), ("part.vnet", part)):
            with open(os.path.join(tmp, name), "w", encoding="utf-8", newline="") as out:
                out.write(content)
        try:
            split = compile_file(os.path.join(tmp, "site.vnet"))
        except CompileError as exc:
            raise AssertionError(f"refused once split:\n{main}\n--- part.vnet:\n{part}\n"
                                 + render_all(exc.diagnostics)) from None
    assert site_to_json(split.site, show_secrets=True) == ir(text)


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_examples_compile_and_fmt_keeps_meaning(path):
    assert_fmt_keeps_meaning(path.read_text("utf-8"), str(path))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_strategy_writes_every_property_of(kind):
    """The strategy writes every property of every kind, and those sites compile to the IR they
    describe. Deterministic: batches of examples with fixed seeds until every property was written."""
    wanted, seen = set(props_of(KINDS[kind])), set()
    for batch in range(8):
        @seed(batch)
        @settings(max_examples=4, database=None)
        @given(sites(focus=kind, full=True, max_devices=3))
        def run(site: GenSite):
            test_generated_sites_compile.hypothesis.inner_test(site)
            seen.update(prop for k, prop in site.used if k == kind)

        run()
        if wanted <= seen:
            break
    assert wanted - seen == set(), f"never written in {batch + 1} batches"


# --- mutations -----------------------------------------------------------------------------

def _directory(tmp: str) -> None:
    with open(os.path.join(tmp, PART), "w", encoding="utf-8") as out:
        out.write(PART_TEXT)


@settings(max_examples=MORE)
@given(mutated(MUTATION_BASES))
def test_mutants_compile_or_are_refused_with_positions(text: str):
    with tempfile.TemporaryDirectory() as tmp:
        _directory(tmp)
        assert_compiles_or_refused_cleanly(text, os.path.join(tmp, "mutant.vnet"))


@given(mutated_bytes(MUTATION_BASES))
def test_mutants_through_the_cli(data: bytes):
    with tempfile.TemporaryDirectory() as tmp:
        _directory(tmp)
        path = os.path.join(tmp, "mutant.vnet")
        with open(path, "wb") as out:
            out.write(data)
        for args in (("check", path), ("fmt", "--check", path)):
            run = run_vnetc(*args)
            assert run.exit_code in (0, 1), (args, run.exit_code, run.stderr)
            assert "Traceback" not in run.stdout + run.stderr
            if run.exit_code == 1:
                assert run.stderr.strip(), f"{args}: exit 1 without a word"
            if args[0] == "check" and run.exit_code == 1:
                assert "error" in run.stderr


# --- bugs found by the properties (inputs kept; each is a small regression test) ---------------

@pytest.mark.parametrize("text", [
    # an IFB redirecting the ingress of a device stacked on it
    "ifb i0 { redirect-ingress v0 }\nvlan v0 { link i0; id 5 }\n",
    # two IFBs redirecting each other's ingress
    "ifb a { redirect-ingress b }\nifb b { redirect-ingress a }\n",
    # a failover whose primary is stacked on the failover
    "interface s\nfailover f { primary v; standby s }\nvlan v { link f; id 5 }\n",
], ids=["ifb-under-its-source", "ifbs-redirect-each-other", "failover-under-its-primary"])
def test_bug_dependency_cycle_outside_link_and_master(text):
    """check.py's _cycles sees only link/dev and master edges, but _dependency_order also orders by
    redirect-ingress, failover primary/standby and veth peers, and asserts: AssertionError('dependency
    cycle survived the cycle check'), a traceback. Expected: compiled, or an error with a position."""
    assert_compiles_or_refused_cleanly(text, "t.vnet")


@pytest.mark.parametrize("text", ['include "a\0b.vnet"\n', "include a\0b.vnet\n"], ids=["string", "word"])
def test_bug_include_path_with_nul(text):
    """expand.read_source turns OSError into a diagnostic, but os.path.* raise ValueError('embedded null
    byte') for a path with NUL: a traceback from `vnetc check`. Expected: an error at the path."""
    assert_compiles_or_refused_cleanly(text, "t.vnet")


def test_bug_include_path_with_nul_through_the_cli():
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "nul.vnet")
        with open(path, "wb") as out:
            out.write(b'include "a\x00b.vnet"\n')
        run = run_vnetc("check", path)
        assert run.exit_code == 1 and "nul.vnet:1:" in run.stderr, run.stderr
