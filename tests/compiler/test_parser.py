"""The parser (compiler/parser.py): lark's errors in vnetc's words, each at its
position; comments; statement terminators; the nesting limit."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from vnetc.compiler import CompileError, compile_source
from vnetc.compiler.diagnostics import Source
from vnetc.compiler.parser import MAX_DEPTH, RawFile, _scan, _SyntaxError, lark_accepts, parse


def parse_text(text: str, path: str = "t.vnet") -> RawFile:
    return parse(Source(path, text))


def parse_error(text: str):
    with pytest.raises(CompileError) as caught:
        parse_text(text)
    diagnostics = caught.value.diagnostics
    assert len(diagnostics) == 1, [d.render() for d in diagnostics]
    return diagnostics[0]


def shape(raw_statements):
    """Statements as nested tuples of their word texts (blocks as lists)."""
    return [(tuple(w.value for w in s.words), shape(s.block.statements) if s.block else None)
            for s in raw_statements]


# --- each message of the error translation ----------------------------------------------
# (id, text, message, line, col, end_col, hint)

NEWLINE_HINT = "a statement ends at a newline or ';'; nothing may follow a block's '}' on its line"
BRACE_HINT = "write 'KIND NAME {' with the brace on the same line as the name"

SYNTAX_ERRORS = [
    ("unterminated-string", 'dummy d0 { description "no end }\n',
     "unterminated string", 1, 24, 33, 'a string ends with " on the same line'),
    ("unterminated-string-at-eol", 'dummy d0 {\n  description "abc\n}\n',
     "unterminated string", 2, 15, 19, 'a string ends with " on the same line'),
    ("unterminated-string-crlf", 'dummy d0 { description "abc\r\n}\r\n',
     "unterminated string", 1, 24, 28, 'a string ends with " on the same line'),
    ("unterminated-interpolation", "dummy d${i\n",
     "unterminated interpolation: '${' has no closing '}' on this line", 1, 8, 10, None),
    ("unexpected-character-nbsp", "dummy\u00a0d0\n",
     "unexpected character '\\xa0' (U+00A0)", 1, 6, 7, None),
    ("unexpected-character-line-separator", "dummy d0\u2028\n",
     "unexpected character '\\u2028' (U+2028)", 1, 9, 10, None),
    ("stray-close-brace", "dummy d0\n}\n",
     "unexpected '}': no block is open here", 2, 1, 2, None),
    ("extra-close-brace", "dummy d0 { mtu 1500 } }\n",
     "unexpected '}': no block is open here", 1, 23, 24, None),
    ("block-on-next-line", "dummy d0\n{ mtu 1500 }\n",
     "a block must follow the words of a statement", 2, 1, 2, BRACE_HINT),
    ("block-without-words", "{ }\n",
     "a block must follow the words of a statement", 1, 1, 2, BRACE_HINT),
    ("nested-bare-block", "dummy d0 {\n  { mtu 1500 }\n}\n",
     "a block must follow the words of a statement", 2, 3, 4, BRACE_HINT),
    ("string-after-block", 'dummy d0 { } "x"\n',
     "expected a newline or ';' after '}'", 1, 14, 17, None),
    ("statement-starts-with-string", '"dummy" d0\n',
     "a statement must start with a word, not a string", 1, 1, 8, None),
    ("property-starts-with-string", 'dummy d0 {\n  "mtu" 1500\n}\n',
     "a statement must start with a word, not a string", 2, 3, 8, None),
    ("word-after-block", "dummy d0 { } dummy d1\n",
     "expected a newline or ';' before 'dummy'", 1, 14, 19, NEWLINE_HINT),
    ("unterminated-block", "dummy d0 {\n  mtu 1500\n",
     "unterminated block: this '{' is never closed", 1, 10, 11, "add the missing '}'"),
    ("unterminated-inner-block", "bridge br0 {\n  port eth0 {\n    pvid 10\n}\n",
     "unterminated block: this '{' is never closed", 1, 12, 13, "add the missing '}'"),
    ("unterminated-block-innermost", "bridge br0 {\n  port eth0 { pvid 10 }\n  port eth1 {\n",
     "unterminated block: this '{' is never closed", 3, 13, 14, "add the missing '}'"),
]


@pytest.mark.parametrize("text, message, line, col, end_col, hint",
                         [r[1:] for r in SYNTAX_ERRORS], ids=[r[0] for r in SYNTAX_ERRORS])
def test_syntax_error(text, message, line, col, end_col, hint):
    d = parse_error(text)
    assert (d.severity, d.message, d.span.line, d.span.col, d.span.end_col, d.hint) == \
        ("error", message, line, col, end_col, hint)
    assert d.span.path == "t.vnet"


def test_syntax_error_through_the_facade_is_the_only_diagnostic():
    # A syntax error stops before expansion: the unknown kind on line 1 is not reported.
    with pytest.raises(CompileError) as caught:
        compile_source("brige br0\ndummy d0\n}\n", "site.vnet")
    assert [(d.message, d.span.line) for d in caught.value.diagnostics] == \
        [("unexpected '}': no block is open here", 3)]


def test_syntax_error_renders_with_caret():
    d = parse_error('dummy d0 { description "no end }\n')
    assert d.render() == (
        't.vnet:1:24: error: unterminated string\n'
        '    1 | dummy d0 { description "no end }\n'
        '      |                        ^^^^^^^^^\n'
        '      = hint: a string ends with " on the same line'
    )


def test_tabs_are_kept_in_the_caret_line():
    d = parse_error("dummy d0 {\n\tmtu 1 } }\n")
    assert d.render().splitlines()[1:3] == ["    2 | \tmtu 1 } }", "      | \t        ^"]


# --- what parses ---------------------------------------------------------------------------

def test_empty_file_has_no_statements():
    raw = parse_text("")
    assert raw.statements == () and raw.comments == ()


def test_blank_lines_and_comments_only():
    raw = parse_text("\n\n   # just a comment\n\n")
    assert raw.statements == ()
    assert [c.value for c in raw.comments] == ["# just a comment"]


def test_comments_are_collected_with_positions():
    raw = parse_text('# head\ndummy d0 { description "not # a comment" } # tail\n  # indented\n')
    assert [(c.value, c.line, c.column) for c in raw.comments] == \
        [("# head", 1, 1), ("# tail", 2, 44), ("# indented", 3, 3)]
    assert shape(raw.statements) == [(("dummy", "d0"), [(("description", '"not # a comment"'), None)])]


def test_comments_do_not_leak_into_the_next_parse():
    parse_text("# one\n")
    assert [c.value for c in parse_text("dummy d0 # two\n").comments] == ["# two"]


def test_semicolons_and_newlines_both_end_statements():
    with_semicolons = parse_text("dummy a; dummy b { mtu 1500; state up }; ;;\n")
    with_newlines = parse_text("\n\ndummy a\ndummy b {\n  mtu 1500\n\n  state up\n}\n\n")
    expected = [(("dummy", "a"), None), (("dummy", "b"), [(("mtu", "1500"), None), (("state", "up"), None)])]
    assert shape(with_semicolons.statements) == expected
    assert shape(with_newlines.statements) == expected


def test_last_statement_needs_no_terminator():
    assert shape(parse_text("dummy d0").statements) == [(("dummy", "d0"), None)]
    assert shape(parse_text("dummy d0 { mtu 1500 }").statements) == [(("dummy", "d0"), [(("mtu", "1500"), None)])]


def test_words_keep_interpolations_with_spaces_and_strings_their_quotes():
    raw = parse_text('vlan bond0.${i * 2} { description "a \\"b\\"" }\n')
    (stmt,) = raw.statements
    assert [(w.value, w.type, w.line, w.column) for w in stmt.words] == \
        [("vlan", "WORD", 1, 1), ("bond0.${i * 2}", "WORD", 1, 6)]
    (inner,) = stmt.block.statements
    assert [(w.value, w.type) for w in inner.words] == [("description", "WORD"), ('"a \\"b\\""', "STRING")]


@pytest.mark.parametrize("word", ["10.0.0.1/24", "fe80::1/64", "52:54:00:12:34:56", "802.3ad", "layer3+4",
                                  "0x8001", "1..4000", "10.${i / 250}.${i % 250}.1/24", "$NAME"])
def test_one_word(word):
    (stmt,) = parse_text(f"x {word}\n").statements
    assert [w.value for w in stmt.words] == ["x", word]


def test_crlf_line_endings():
    raw = parse_text("dummy d0 {\r\n  mtu 1500\r\n}\r\n")
    assert shape(raw.statements) == [(("dummy", "d0"), [(("mtu", "1500"), None)])]


# --- nesting depth -----------------------------------------------------------------------

def nested(depth: int) -> str:
    return "".join(f"{'  ' * i}a {{\n" for i in range(depth)) + "".join(f"{'  ' * i}}}\n" for i in reversed(range(depth)))


def test_max_depth_is_64():
    assert MAX_DEPTH == 64


def test_64_nested_blocks_parse():
    raw = parse_text(nested(64))
    assert raw.statements[0].block.depth == 64


def test_65_nested_blocks_is_an_error_at_the_65th_brace():
    d = parse_error(nested(65))
    # line 65 is "  " * 64 + "a {": the brace is at column 2 * 64 + 3
    assert (d.severity, d.message, d.span.line, d.span.col, d.span.end_col, d.hint) == \
        ("error", "blocks are nested more than 64 deep", 65, 131, 132,
         "flatten the file; deep nesting is never needed to describe devices")


def test_deep_nesting_on_one_line_points_at_the_65th_brace():
    d = parse_error("a { " * 65 + "} " * 65)
    assert (d.span.line, d.span.col) == (1, 64 * 4 + 3)


def test_deep_nesting_in_a_later_statement():
    d = parse_error("dummy d0 { mtu 1500 }\n" + nested(200))
    assert (d.message, d.span.line, d.span.col) == ("blocks are nested more than 64 deep", 66, 131)


def test_very_deep_nesting_is_refused_without_a_traceback():
    d = parse_error("a {\n" * 10_000 + "}\n" * 10_000)
    assert (d.message, d.span.line, d.span.col) == ("blocks are nested more than 64 deep", 65, 3)


# --- the scanner and lark's grammar agree ---------------------------------------------------
# parse() reads with a hand-written scanner and asks lark (grammar/vnet.lark) only to
# explain a refusal: both must accept exactly the same texts, or a valid file would be
# refused (AssertionError inside parse) or an invalid one let through.

ROOT = Path(__file__).resolve().parents[2]
CORPUS = sorted([*ROOT.glob("examples/**/*.vnet"), *ROOT.glob("golden/*/input.vnet")])
PIECES = ["{", "}", ";", "\n", '"', '"x"', "#", "${", "}", "${i}", "$", " ", "\\", "a", "\t", "\r\n", "{ }", "x {"]


def _mutants(count: int, seed: int = 20240601):
    rng = random.Random(seed)
    texts = [p.read_text(encoding="utf-8") for p in CORPUS]
    for _ in range(count):
        text = rng.choice(texts)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(text) + 1)
            if rng.random() < 0.4:
                text = text[:at] + text[at + rng.randint(1, 3):]
            else:
                text = text[:at] + rng.choice(PIECES) + text[at:]
        yield text


def _scanner_accepts(text: str) -> bool:
    try:
        _scan(text)
    except _SyntaxError:
        return False
    return True


def test_corpus_is_not_empty():
    assert len(CORPUS) >= 10


@pytest.mark.parametrize("path", CORPUS, ids=[str(p.relative_to(ROOT)) for p in CORPUS])
def test_scanner_and_lark_agree_on_every_example(path):
    text = path.read_text(encoding="utf-8")
    accepted = _scanner_accepts(text)
    assert accepted == lark_accepts(text)
    assert accepted == (not path.parent.name.startswith("error-syntax-"))


@pytest.mark.parametrize("text", [
    "", "\n", ";", "a", "a;b", "a {}", "a { } ", "a {\n}\n", "a { b { c } }", "a }", "}", "{", "a {", "a { } b",
    'a "b"', '"a" b', "a b\"c\"d", "a ${x", "a ${ } b", "a $", "a $$", "a #c\n", "a { # c\n}", "a\r\nb",
    "a { ; ; }", "a {} ;", "a {} }", "a \"\\\"\"", "a \"\\\"", "a\u00a0b", "a { } \"s\"",
], ids=repr)
def test_scanner_and_lark_agree_on_small_texts(text):
    assert _scanner_accepts(text) == lark_accepts(text)


def test_scanner_and_lark_agree_on_mutated_examples():
    disagreements = [text for text in _mutants(300) if _scanner_accepts(text) != lark_accepts(text)]
    assert disagreements == []


def test_every_refused_mutant_gets_one_positioned_diagnostic():
    for text in _mutants(300, seed=7):
        try:
            parse_text(text)
        except CompileError as exc:
            (d,) = exc.diagnostics
            assert d.severity == "error" and d.span is not None and d.span.line >= 1 and d.span.col >= 1
