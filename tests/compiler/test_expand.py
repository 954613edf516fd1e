"""Expansion (compiler/expand.py): include, let, for, ${…} interpolation, and
the limits. Positions are 1-based; end_col is exclusive."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vnetc.compiler import CompileError, compile_source
from vnetc.compiler.diagnostics import Source
from vnetc.compiler.expand import MAX_ITERATIONS, MAX_WORD, expand
from vnetc.compiler.parser import parse

from conftest import diagnostics_of, run_vnetc

UNKNOWN_NAME_HINT = "define it with 'let NAME = VALUE' or a 'for' loop"


def expanded(text: str, path: str = "t.vnet"):
    """The expanded statements as nested tuples of word texts; fails on any diagnostic."""
    statements, _, out = expand(parse(Source(path, text)))
    assert out.items == [], [d.render() for d in out.items]
    return shape(statements)


def shape(statements):
    return [(tuple(w.text for w in s.words), shape(s.block) if s.block is not None else None) for s in statements]


def heads(text: str, path: str = "t.vnet"):
    return [s[0] for s in expanded(text, path)]


def errors(text: str, path: str = "t.vnet"):
    """(severity, message, line, col, end_col, hint) of every diagnostic, in order."""
    return [(d.severity, d.message, d.span.line, d.span.col, d.span.end_col, d.hint)
            for d in diagnostics_of(text, path)]


def only(text: str, path: str = "t.vnet"):
    diagnostics = diagnostics_of(text, path)
    assert len(diagnostics) == 1, [d.render() for d in diagnostics]
    return diagnostics[0]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def device_names(text: str, path: str = "t.vnet"):
    result = compile_source(text, path)
    return [d.name for host in result.site.hosts for d in host.devices]


# --- include ---------------------------------------------------------------------------

def test_include_is_relative_to_the_including_file(tmp_path):
    write(tmp_path / "lib" / "nics.vnet", 'interface eth0\ninclude "more/bonds.vnet"\n')
    write(tmp_path / "lib" / "more" / "bonds.vnet", "bond bond0 { ports eth0 }\n")
    main = tmp_path / "site.vnet"
    text = 'include "lib/nics.vnet"\ndummy d0\n'
    assert heads(text, str(main)) == [("interface", "eth0"), ("bond", "bond0"), ("dummy", "d0")]
    statements, files, _ = expand(parse(Source(str(main), text)))
    assert [s.path for s in files] == [str(main), str(tmp_path / "lib" / "nics.vnet"), str(tmp_path / "lib" / "more" / "bonds.vnet")]


def test_include_does_not_depend_on_the_working_directory(tmp_path, monkeypatch):
    write(tmp_path / "a" / "inc.vnet", "dummy d0\n")
    monkeypatch.chdir(tmp_path)
    assert device_names('include "inc.vnet"\n', os.path.join("a", "main.vnet")) == ["d0"]


def test_include_path_may_be_interpolated(tmp_path):
    write(tmp_path / "part2.vnet", "dummy d2\n")
    assert heads('let n = 2\ninclude "part${n}.vnet"\n', str(tmp_path / "m.vnet")) == [("dummy", "d2")]


def test_lets_of_an_included_file_are_visible_after_it(tmp_path):
    write(tmp_path / "consts.vnet", "let uplink = eth7\n")
    assert heads('include "consts.vnet"\ninterface ${uplink}\n', str(tmp_path / "m.vnet")) == \
        [("interface", "eth7")]


def test_include_of_a_missing_file_is_an_error_at_the_path_word(tmp_path):
    main = str(tmp_path / "m.vnet")
    missing = os.path.join(str(tmp_path), "nope.vnet")
    assert errors('dummy d0\ninclude "nope.vnet"\n', main) == [
        ("error", f"cannot read '{missing}': No such file or directory", 2, 9, 20, None)]


def test_include_of_a_directory_is_an_error(tmp_path):
    (tmp_path / "dir.vnet").mkdir()
    main = str(tmp_path / "m.vnet")
    assert errors('include "dir.vnet"\n', main) == [
        ("error", f"'{tmp_path / 'dir.vnet'}' is a directory, not a .vnet file", 1, 9, 19, None)]


def test_include_cycle_names_the_cycle(tmp_path):
    write(tmp_path / "a.vnet", 'include "b.vnet"\n')
    write(tmp_path / "b.vnet", 'dummy d0\ninclude "a.vnet"\n')
    d = only('include "b.vnet"\n', str(tmp_path / "a.vnet"))
    assert (d.severity, d.message, d.span.path, d.span.line, d.span.col, d.span.end_col) == \
        ("error", "include cycle: 'a.vnet' is already being read", str(tmp_path / "b.vnet"), 2, 9, 17)
    assert d.notes == ("the cycle: a.vnet -> b.vnet -> a.vnet",)
    assert f"= note: in a file included from {tmp_path / 'a.vnet'}:1:9" in d.render()


def test_a_file_including_itself(tmp_path):
    d = only('dummy d0\ninclude "self.vnet"\n', str(tmp_path / "self.vnet"))
    assert (d.message, d.span.line, d.span.col, d.notes) == \
        ("include cycle: 'self.vnet' is already being read", 2, 9, ("the cycle: self.vnet -> self.vnet",))


def test_including_one_file_twice_is_not_a_cycle(tmp_path):
    write(tmp_path / "vlan.vnet", "vlan v${n} { link eth0; id ${n} }\n")
    text = 'interface eth0\nlet n = 10\ninclude "vlan.vnet"\nfor n2 in 1..1 { }\n'
    assert heads(text, str(tmp_path / "m.vnet")) == [("interface", "eth0"), ("vlan", "v10")]


def test_syntax_error_in_an_included_file_is_reported_in_that_file(tmp_path):
    write(tmp_path / "lib" / "inner.vnet", "dummy d0 {\n  mtu 1500\n")
    write(tmp_path / "lib" / "outer.vnet", 'include "inner.vnet"\n')
    main = tmp_path / "site.vnet"
    diagnostics = diagnostics_of('dummy d1\ninclude "lib/outer.vnet"\nbrige br0\n', str(main))
    d = diagnostics[0]
    assert (d.severity, d.message, d.span.path, d.span.line, d.span.col, d.span.end_col, d.hint) == \
        ("error", "unterminated block: this '{' is never closed", str(tmp_path / "lib" / "inner.vnet"), 1, 10, 11,
         "add the missing '}'")
    rendered = d.render().splitlines()
    assert rendered[-2:] == [f"      = note: in a file included from {tmp_path / 'lib' / 'outer.vnet'}:1:9",
                             f"      = note: in a file included from {main}:2:9"]
    # The expansion phase goes on after the broken include, and the checker does not run.
    assert len(diagnostics) == 1


def test_check_error_in_an_included_file_has_the_include_note(tmp_path):
    write(tmp_path / "inc.vnet", "dummy d0 { mtu 5 }\n")
    d = only('include "inc.vnet"\n', str(tmp_path / "m.vnet"))
    assert (d.message, d.span.path, d.span.line, d.span.col) == \
        ("MTU 5 is out of range 68–65535", str(tmp_path / "inc.vnet"), 1, 16)
    assert d.render().endswith(f"= note: in a file included from {tmp_path / 'm.vnet'}:1:9")


def test_errors_after_a_broken_include_are_still_reported(tmp_path):
    main = str(tmp_path / "m.vnet")
    assert [(m, line) for _, m, line, *_ in errors('include "gone.vnet"\ndummy d${nope}\n', main)] == [
        (f"cannot read '{tmp_path / 'gone.vnet'}': No such file or directory", 1),
        ("unknown name 'nope' in interpolation", 2)]


@pytest.mark.parametrize("text, message, col, end_col, hint", [
    ("include\n", "'include' takes one path", 1, 8, 'write include "other.vnet"'),
    ('include "a.vnet" "b.vnet"\n', "'include' takes one path", 1, 8, 'write include "other.vnet"'),
    ('include "a.vnet" { }\n', "'include' takes no block", 18, 19, None),
], ids=["no-path", "two-paths", "block"])
def test_include_form(text, message, col, end_col, hint):
    assert errors(text) == [("error", message, 1, col, end_col, hint)]


def test_too_deep_includes_and_blocks_are_an_error_not_a_traceback(tmp_path):
    # Fixed bug (regression test): each file nests 64 blocks (the parser's limit per file) and includes the
    # next inside them; 32 files deep the expander recurses past Python's limit and
    # raises RecursionError instead of reporting an error.
    for k in range(32):
        inner = f'include "f{k + 1}.vnet"\n' if k < 31 else "dummy d0\n"
        write(tmp_path / f"f{k}.vnet", "a {\n" * 64 + inner + "}\n" * 64)
    text = (tmp_path / "f0.vnet").read_text()
    with pytest.raises(CompileError) as caught:
        compile_source(text, str(tmp_path / "f0.vnet"))
    assert all(d.span is not None for d in caught.value.diagnostics)


# --- let ---------------------------------------------------------------------------------

def test_let_in_words_and_strings():
    text = 'let uplink = eth0\nlet vid = 100\nvlan ${uplink}.${vid} { link $uplink; id $vid; description "on ${uplink}" }\n'
    assert expanded(text) == [(("vlan", "eth0.100"), [(("link", "eth0"), None), (("id", "100"), None),
                                                       (("description", "on eth0"), None)])]


def test_let_value_may_be_a_string_with_spaces():
    assert expanded('let what = "the uplink"\ndummy d0 { description "to ${what}" }\n') == \
        [(("dummy", "d0"), [(("description", "to the uplink"), None)])]


def test_let_value_may_use_earlier_lets():
    assert heads("let a = 4\nlet b = ${a * 10}\nlet c = x${b}\ndummy ${c}\n") == [("dummy", "x40")]


def test_redefining_a_let_is_an_error_with_a_note():
    d = only("let a = 1\ndummy d0\nlet a = 2\n")
    assert (d.severity, d.message, d.span.line, d.span.col, d.span.end_col, d.hint, d.notes) == \
        ("error", "'a' is already defined", 3, 5, 6, None, ("the constant 'a' is defined at t.vnet:1:5",))


def test_redefining_an_outer_let_inside_a_block_is_an_error():
    d = only("let a = 1\ndummy d0 {\n  let a = 2\n}\n")
    assert (d.message, d.span.line, d.span.col, d.notes) == \
        ("'a' is already defined", 3, 7, ("the constant 'a' is defined at t.vnet:1:5",))


def test_a_let_inside_a_block_is_not_visible_after_it():
    assert errors("dummy d0 {\n  let z = 1\n}\ndummy d${z}\n") == [
        ("error", "unknown name 'z' in interpolation", 4, 10, 11, UNKNOWN_NAME_HINT)]


def test_a_let_inside_a_block_is_visible_in_it():
    assert expanded("dummy d0 {\n  let m = 9000\n  mtu ${m}\n}\n") == [(("dummy", "d0"), [(("mtu", "9000"), None)])]


def test_a_let_in_a_loop_body_is_new_in_each_iteration_and_gone_after():
    assert heads("for i in 1..2 {\n  let k = ${i * 10}\n  dummy d${k}\n}\n") == [("dummy", "d10"), ("dummy", "d20")]
    assert [m for _, m, *_ in errors("for i in 1..2 { let k = ${i} }\ndummy d${k}\n")] == \
        ["unknown name 'k' in interpolation"]


def test_two_blocks_may_use_the_same_let_name():
    assert expanded("dummy a { let m = 1500; mtu $m }\ndummy b { let m = 9000; mtu $m }\n") == \
        [(("dummy", "a"), [(("mtu", "1500"), None)]), (("dummy", "b"), [(("mtu", "9000"), None)])]


@pytest.mark.parametrize("text, message, col, end_col, hint", [
    ("let a 1\n", "'let' is written: let NAME = VALUE", 1, 4, None),
    ("let a = 1 2\n", "'let' is written: let NAME = VALUE", 1, 4, None),
    ("let 1a = 2\n", "'1a' is not a valid name for a constant", 5, 7,
     "names are letters, digits and '_', starting with a letter or '_'"),
    ('let "a" = 2\n', "'\"a\"' is not a valid name for a constant", 5, 8,
     "names are letters, digits and '_', starting with a letter or '_'"),
    ("let a = 1 { }\n", "'let' takes no block", 11, 12, None),
], ids=["no-equals", "two-values", "bad-name", "string-name", "block"])
def test_let_form(text, message, col, end_col, hint):
    assert errors(text) == [("error", message, 1, col, end_col, hint)]


# --- interpolation -------------------------------------------------------------------------

@pytest.mark.parametrize("expr, value", [
    ("i * 2 + 1", "15"),
    ("1 + i * 2", "15"),
    ("(i + 1) * 2", "16"),
    ("i / 2", "3"),
    ("i % 4", "3"),
    ("-i", "-7"),
    ("-(i - 10)", "3"),
    ("- - i", "7"),
    ("+i", "7"),
    ("0x10 + i", "23"),
    ("0X0a", "10"),
    ("100 - i - 3", "90"),
    ("i*i", "49"),
    ("  i  ", "7"),
    ("((((i))))", "7"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_arithmetic(expr, value):
    assert heads(f"let i = 7\ndummy d${{{expr}}}\n") == [("dummy", f"d{value}")]


def test_arithmetic_on_a_negative_constant():
    assert heads("let x = -5\ndummy d${x * 2}\n") == [("dummy", "d-10")]


def test_arithmetic_on_a_hex_constant():
    assert heads("let x = 0x10\ndummy d${x + 1}\n") == [("dummy", "d17")]


def test_several_interpolations_in_one_word():
    assert expanded("let i = 260\ndummy d0 { address 10.${i / 250}.${i % 250}.1/24 }\n") == \
        [(("dummy", "d0"), [(("address", "10.1.10.1/24"), None)])]


def test_interpolation_inside_a_string_with_escapes():
    assert expanded('let x = 3\ndummy d0 { description "x=${x}, \\"${x * 2}\\"\\tend\\\\" }\n') == \
        [(("dummy", "d0"), [(("description", 'x=3, "6"\tend\\'), None)])]


def test_dollar_name_as_a_whole_word():
    assert expanded("let m = 9000\ndummy d0 { mtu $m }\n") == [(("dummy", "d0"), [(("mtu", "9000"), None)])]


def test_dollar_name_inside_a_word_is_literal():
    # Only `$NAME` as a whole word is interpolated (language.md §1).
    assert heads("let x = 1\ndummy a$x\n") == [("dummy", "a$x")]


def test_a_quoted_dollar_name_is_literal():
    assert expanded('let x = 1\ndummy d0 { description "$x" }\n') == [(("dummy", "d0"), [(("description", "$x"), None)])]


# (id, text, message, col, end_col, hint) — all on line 2 after "let i = 7"
INTERPOLATION_ERRORS = [
    ("unknown-name", "dummy d${nope}", "unknown name 'nope' in interpolation", 10, 14, UNKNOWN_NAME_HINT),
    ("unknown-name-did-you-mean", "dummy d${ii}", "unknown name 'ii' in interpolation", 10, 12, "did you mean 'i'?"),
    ("unknown-name-in-expression", "dummy d${i + nope}", "unknown name 'nope' in interpolation", 14, 18,
     UNKNOWN_NAME_HINT),
    ("unknown-dollar-name", "dummy $nope", "unknown name 'nope' in interpolation", 8, 12, UNKNOWN_NAME_HINT),
    ("unknown-name-in-string", 'dummy d0 { description "a ${nope}" }', "unknown name 'nope' in interpolation",
     29, 33, UNKNOWN_NAME_HINT),
    ("division-by-zero", "dummy d${i / 0}", "division by zero in ${…}", 12, 13, None),
    ("modulo-by-zero", "dummy d${i % (i - 7)}", "division by zero in ${…}", 12, 13, None),
    ("empty", "dummy d${ }", "empty interpolation '${}'", 8, 12, None),
    ("incomplete", "dummy d${i +}", "incomplete expression in ${…}", 13, 14, None),
    ("missing-paren", "dummy d${(i}", "missing ')' in ${…}", 12, 13, None),
    ("stray-paren", "dummy d${)}", "unexpected ')' in ${…}", 10, 11, None),
    ("two-numbers", "dummy d${i 2}", "unexpected '2' in ${…}", 12, 13, None),
    ("bad-operator", "dummy d${i & 1}", "unexpected '&' in ${…}", 12, 13, "only + - * / % and parentheses are allowed"),
    ("overflow", "dummy d${99999999999 * 99999999999}", "arithmetic result is out of range (beyond ±2^63)", 22, 23,
     None),
    ("too-many-digits", "dummy d${1111111111111111111111111111111111}",
     "number has 34 digits; at most 30 are accepted", 10, 44, None),
    ("unknown-escape", 'dummy d0 { description "a\\qb" }', "unknown escape '\\q' in a string", 26, 28,
     'strings know \\" \\\\ \\n and \\t'),
    ("unterminated-in-string", 'dummy d0 { description "a ${i" }',
     "unterminated interpolation: '${' has no closing '}'", 27, 29, None),
]


@pytest.mark.parametrize("text, message, col, end_col, hint",
                         [r[1:] for r in INTERPOLATION_ERRORS], ids=[r[0] for r in INTERPOLATION_ERRORS])
def test_interpolation_error(text, message, col, end_col, hint):
    assert errors(f"let i = 7\n{text}\n") == [("error", message, 2, col, end_col, hint)]


def test_a_constant_that_is_not_a_number_in_arithmetic():
    assert errors("let s = abc\ndummy d${s + 1}\n") == [
        ("error", "'s' is 'abc', not a number, so it cannot be used in arithmetic", 2, 10, 11, None)]


def test_deeply_nested_parentheses_are_an_error_not_a_traceback():
    # Fixed bug (regression test): 1,000 nested parentheses in ${…} make the recursive-descent parser raise
    # RecursionError (a traceback) instead of a positioned error.
    text = "dummy d${" + "(" * 1000 + "1" + ")" * 1000 + "}\n"
    d = only(text)
    assert (d.severity, d.span.line) == ("error", 1)
    assert 8 <= d.span.col < 8 + 2 + 2001 + 1


def test_many_unary_minus_signs_are_an_error_not_a_traceback():
    # Fixed bug (regression test): same RecursionError with a long run of unary minus signs.
    d = only("dummy d${" + "-" * 1000 + "1}\n")
    assert (d.severity, d.span.line) == ("error", 1)


# --- for -----------------------------------------------------------------------------------

def test_for_repeats_the_block_with_each_value():
    assert heads("for i in 1..3 { dummy d${i} }\n") == [("dummy", "d1"), ("dummy", "d2"), ("dummy", "d3")]


def test_for_with_one_iteration_and_zero():
    assert heads("for i in 0..0 { dummy d${i} }\n") == [("dummy", "d0")]


def test_for_with_hex_bounds():
    assert heads("for i in 0x10..0x12 { dummy d${i} }\n") == [("dummy", "d16"), ("dummy", "d17"), ("dummy", "d18")]


def test_for_bounds_may_be_interpolated():
    assert heads("let n = 2\nfor i in 1..${n + 1} { dummy d${i} }\n") == \
        [("dummy", "d1"), ("dummy", "d2"), ("dummy", "d3")]


def test_nested_loops():
    text = "for i in 1..2 {\n  for j in 0..1 {\n    dummy d${i}x${j} { mtu ${1000 + i * 10 + j} }\n  }\n}\n"
    assert expanded(text) == [
        (("dummy", "d1x0"), [(("mtu", "1010"), None)]),
        (("dummy", "d1x1"), [(("mtu", "1011"), None)]),
        (("dummy", "d2x0"), [(("mtu", "1020"), None)]),
        (("dummy", "d2x1"), [(("mtu", "1021"), None)]),
    ]


def test_for_inside_a_device_block():
    assert expanded("bond b0 {\n  for i in 0..1 { ports eth${i} }\n}\n") == \
        [(("bond", "b0"), [(("ports", "eth0"), None), (("ports", "eth1"), None)])]


def test_the_documented_vlan_loop_compiles():
    text = "interface eth0\nfor i in 100..103 {\n    vlan eth0.${i} { link eth0; id ${i} }\n}\n"
    assert device_names(text) == ["eth0", "eth0.100", "eth0.101", "eth0.102", "eth0.103"]


def test_an_error_inside_a_loop_names_the_iteration():
    text = "interface eth0\nfor i in 1..3 {\n  vlan v${i} { link eth0; id ${i * 2000} }\n}\n"
    d = only(text)
    assert (d.message, d.span.line, d.span.col, d.span.end_col) == ("VLAN id 6000 is out of range 1–4094", 3, 30, 41)
    assert d.render() == (
        "t.vnet:3:30: error: VLAN id 6000 is out of range 1–4094\n"
        "    3 |   vlan v${i} { link eth0; id ${i * 2000} }\n"
        "      |                              ^^^^^^^^^^^\n"
        "      = note: in the loop iteration where i = 3"
    )


def test_the_iteration_note_names_every_loop_variable():
    text = "for i in 1..2 {\n  for j in 1..2 {\n    dummy d${i}${j} { mtu 5 }\n  }\n}\n"
    d = only(text)
    assert d.render().splitlines()[-1] == "      = note: in the loop iteration where i = 1, j = 1"


def test_the_same_error_in_every_iteration_is_reported_once():
    assert errors("for i in 1..50 { dummy d${i} { mtu 5 } }\n") == [
        ("error", "MTU 5 is out of range 68–65535", 1, 36, 37, None)]


def test_an_expansion_error_in_every_iteration_is_reported_once():
    assert errors("for i in 1..50 { dummy d${i / 0} }\n") == [
        ("error", "division by zero in ${…}", 1, 29, 30, None)]


# (id, text, message, line, col, end_col, hint)
FOR_ERRORS = [
    ("reversed", "for i in 5..1 { }", "the range 5..1 is reversed", 1, 10, 14, "a range runs upwards: write 1..5"),
    ("over-the-limit", "for i in 1..1000001 { }",
     "this loop would bring the iterations of all loops to 1,000,001; the limit is 1,000,000", 1, 10, 20, None),
    ("huge", "for i in 0..99999999999999999999 { }",
     "this loop would bring the iterations of all loops to 100,000,000,000,000,000,000; the limit is 1,000,000",
     1, 10, 33, None),
    ("not-a-range", "for i in 1-3 { }", "'1-3' is not a range", 1, 10, 13, "write A..B, e.g. 1..10"),
    ("bound-not-a-number", "for i in a..3 { }", "'a' is not a number", 1, 10, 14,
     "write a decimal number or hex like 0x8001"),
    ("negative-bound", "for i in -1..3 { }", "'-1' is not a number", 1, 10, 15,
     "write a decimal number or hex like 0x8001"),
    ("no-block", "for i in 1..3", "'for' is written: for VAR in A..B { ... }", 1, 1, 4, None),
    ("no-in", "for i 1..3 { }", "'for' is written: for VAR in A..B { ... }", 1, 1, 4, None),
    ("bad-variable", "for 1i in 1..3 { }", "'1i' is not a valid loop variable name", 1, 5, 7, None),
    ("variable-shadows-loop-variable", "for i in 1..2 {\n  for i in 1..2 { }\n}", "'i' is already defined", 2, 7, 8,
     None),
    ("variable-shadows-constant", "let i = 3\nfor i in 1..2 { }", "'i' is already defined", 2, 5, 6, None),
]


@pytest.mark.parametrize("text, message, line, col, end_col, hint",
                         [r[1:] for r in FOR_ERRORS], ids=[r[0] for r in FOR_ERRORS])
def test_for_error(text, message, line, col, end_col, hint):
    assert errors(text + "\n") == [("error", message, line, col, end_col, hint)]


def test_redefinition_note_says_loop_variable():
    d = only("for i in 1..2 {\n  let i = 3\n}\n")
    assert d.notes == ("the loop variable 'i' is defined at t.vnet:1:5",)


def test_a_let_may_reuse_a_name_after_its_loop():
    assert heads("for i in 1..1 { }\nlet i = 5\ndummy d${i}\n") == [("dummy", "d5")]


# --- limits ----------------------------------------------------------------------------------

def test_limits():
    assert (MAX_ITERATIONS, MAX_WORD) == (1_000_000, 4096)


def test_a_word_of_exactly_4096_characters_is_fine():
    a = "x" * 512
    assert heads(f"let a = {a}\nlet b = ${{a}}${{a}}${{a}}${{a}}${{a}}${{a}}${{a}}${{a}}\ndummy d0 {{ description \"${{b}}\" }}\n") \
        == [("dummy", "d0")]


def test_a_word_growing_beyond_4096_characters_through_chained_lets():
    a = "x" * 100
    text = (f"let a = {a}\n"
            "let b = ${a}${a}${a}${a}${a}${a}${a}${a}\n"
            "let c = ${b}${b}${b}${b}${b}${b}${b}${b}\n"
            'dummy d0 { description "${c}" }\n')
    # Fixed bug (regression test): after the error on `let c`, the use of ${c} on line 4 is reported too
    # ("unknown name 'c' in interpolation"): a cascade of the first error.
    assert errors(text) == [
        ("error", "this word grows to 6,400 characters by interpolation; the limit is 4,096", 3, 9, 41, None)]


def test_a_failed_let_does_not_cascade_into_unknown_names():
    # Fixed bug (regression test): the same cascade for a `let` whose value has an error.
    assert errors("let a = ${nope}\ndummy d${a}\n") == [
        ("error", "unknown name 'nope' in interpolation", 1, 11, 15, UNKNOWN_NAME_HINT)]


def test_a_word_growing_beyond_the_limit_in_a_device():
    text = "let a = " + "y" * 3000 + "\ndummy d0 { description \"${a}${a}\" }\n"
    assert errors(text) == [
        ("error", "this word grows to 6,000 characters by interpolation; the limit is 4,096", 2, 24, 34, None)]


def test_iteration_budget_counts_nested_loops():
    # 1000 outer iterations + 1000 inner ones in each: the 1000th inner loop crosses the limit.
    text = "for i in 1..1000 {\n  for j in 1..1000 { }\n}\n"
    d = only(text)
    assert (d.message, d.span.line, d.span.col, d.span.end_col) == \
        ("this loop would bring the iterations of all loops to 1,001,000; the limit is 1,000,000", 2, 12, 19)
    assert d.render().splitlines()[-1] == "      = note: in the loop iteration where i = 1000"


def test_iteration_budget_counts_loops_one_after_another_up_to_the_limit():
    # 999 + 999 * 1000 + 1 = 1,000,000 iterations are fine; one more is not.
    text = "for i in 1..999 {\n  for j in 1..1000 { }\n}\nfor k in 1..1 { }\nfor m in 1..1 { }\n"
    assert errors(text) == [
        ("error", "this loop would bring the iterations of all loops to 1,000,001; the limit is 1,000,000",
         5, 10, 14, None)]


def test_an_include_of_a_device_file_is_refused_without_reading_it(tmp_path):
    # /dev/zero has size 0 and never ends: it must not be read at all.
    (tmp_path / "main.vnet").write_text('include "/dev/zero"\n')
    run = run_vnetc("check", "main.vnet", cwd=tmp_path)
    assert run.exit_code == 1
    assert run.stderr.startswith("main.vnet:1:9: error: '/dev/zero' is not a regular file\n")
