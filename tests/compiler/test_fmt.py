"""`vnetc fmt`: the canonical layout (compiler/fmt.py's docstring), rule by rule;
fmt of fmt is fmt; and fmt never changes what a file means.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from vnetc.compiler import CompileError, compile_source
from vnetc.compiler.diagnostics import Source
from vnetc.compiler.fmt import format_raw
from vnetc.compiler.irjson import site_to_json
from vnetc.compiler.parser import parse

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_FILES = sorted((ROOT / "examples").rglob("*.vnet"))
GOLDEN_FILES = sorted((ROOT / "golden").glob("*/*.vnet"))


def fmt(text: str, path: str = "t.vnet") -> str:
    return format_raw(parse(Source(path, text)))


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def lines(*rows: str) -> str:
    return "".join(row + "\n" for row in rows)


# --- statements and words ------------------------------------------------------------


def test_semicolons_become_lines():
    assert fmt("interface eth0; interface eth1;dummy d0\n") == lines("interface eth0", "interface eth1", "dummy d0")


def test_semicolons_inside_a_block_become_lines():
    assert fmt("vlan eth0.2 { link eth0; id 2 }\n") == lines(
        "vlan eth0.2 {",
        "    link eth0",
        "    id 2",
        "}",
    )


def test_a_trailing_semicolon_adds_nothing():
    assert fmt("dummy d0;\n;;\ndummy d1;;\n") == lines("dummy d0", "", "dummy d1")


def test_words_are_separated_by_one_space():
    assert fmt("bond   bond0\t{\n ports\teth0    eth1  \n}\n") == lines(
        "bond bond0 {",
        "    ports eth0 eth1",
        "}",
    )


def test_four_spaces_per_level():
    text = "host h1 {\nbridge br0 {\n\t\t\tport eth0 {\n  pvid 1\n}\n}\n}\n"
    assert fmt(text) == lines(
        "host h1 {",
        "    bridge br0 {",
        "        port eth0 {",
        "            pvid 1",
        "        }",
        "    }",
        "}",
    )


def test_brace_moves_to_the_statement_line_and_closing_brace_to_its_own():
    assert fmt("dummy d0 {mtu 1500}\n") == lines("dummy d0 {", "    mtu 1500", "}")
    assert fmt("dummy d0 {\n    mtu 1500 }\n") == lines("dummy d0 {", "    mtu 1500", "}")


@pytest.mark.parametrize("block", ["{}", "{ }", "{\n}", "{\n\n\n}", "{ ; }", "{\t}"])
def test_an_empty_block_is_braces(block):
    assert fmt(f"bridge br0 {block}\n") == "bridge br0 {}\n"


def test_an_empty_nested_block_is_braces():
    assert fmt("bridge br0 {\n    port eth0 {\n    }\n}\n") == lines("bridge br0 {", "    port eth0 {}", "}")


def test_a_block_with_only_a_comment_is_not_empty():
    assert fmt("bridge br0 {\n# no ports yet\n}\n") == lines("bridge br0 {", "    # no ports yet", "}")


def test_strings_are_kept_exactly():
    text = 'team t0 {\n    config   "{\\"runner\\":  {\\"name\\": \\"lacp\\"}}"\n' \
           '    description "two  spaces, a tab\\t, a # and a ; and {braces}"\n}\n'
    assert fmt(text) == lines(
        "team t0 {",
        '    config "{\\"runner\\":  {\\"name\\": \\"lacp\\"}}"',
        '    description "two  spaces, a tab\\t, a # and a ; and {braces}"',
        "}",
    )


def test_an_empty_string_is_kept():
    assert fmt('dummy d0 {\n    description   ""\n}\n') == lines("dummy d0 {", '    description ""', "}")


def test_interpolations_are_kept_exactly():
    text = "for  i  in 1..${ n }{\n vlan  bond0.${ i * 2 + 1 } { id ${i*2+1};  link  $uplink }\n}\n"
    assert fmt(text) == lines(
        "for i in 1..${ n } {",
        "    vlan bond0.${ i * 2 + 1 } {",
        "        id ${i*2+1}",
        "        link $uplink",
        "    }",
        "}",
    )


def test_interpolations_inside_strings_are_kept_exactly():
    assert fmt('dummy d0 {  description "tenant ${ i  +  1 }"  }\n') == lines(
        "dummy d0 {", '    description "tenant ${ i  +  1 }"', "}")


def test_let_and_include_stay_as_written():
    text = 'let  base  =  100\ninclude   "parts/nics.vnet"\n'
    assert fmt(text) == lines("let base = 100", 'include "parts/nics.vnet"')


def test_unicode_words_are_kept():
    assert fmt('dummy d0 {\n  description "café ☕"\n}\n') == lines("dummy d0 {", '    description "café ☕"', "}")


# --- blank lines ----------------------------------------------------------------------


def test_runs_of_blank_lines_become_one():
    assert fmt("dummy a\n\n\n\n\ndummy b\n\ndummy c\ndummy d\n") == lines(
        "dummy a", "", "dummy b", "", "dummy c", "dummy d")


def test_lines_of_spaces_count_as_blank():
    assert fmt("dummy a\n   \n\t\n  \ndummy b\n") == lines("dummy a", "", "dummy b")


def test_no_blank_line_after_an_opening_brace_or_before_a_closing_one():
    text = "dummy d0 {\n\n\n    mtu 1500\n\n    address 10.0.0.1/24\n\n\n}\n"
    assert fmt(text) == lines("dummy d0 {", "    mtu 1500", "", "    address 10.0.0.1/24", "}")


def test_no_blank_lines_at_the_start_or_the_end():
    assert fmt("\n\n\n   \ndummy d0\n\n\n\n") == "dummy d0\n"


def test_the_file_ends_with_one_newline():
    assert fmt("dummy d0") == "dummy d0\n"
    assert fmt("dummy d0 { mtu 1500 }") == lines("dummy d0 {", "    mtu 1500", "}")


def test_a_blank_line_between_blocks_is_kept():
    assert fmt("dummy a {\n}\n\ndummy b\n") == lines("dummy a {}", "", "dummy b")


def test_empty_input():
    assert fmt("") == ""
    assert fmt("\n\n  \n;\n") == ""


def test_windows_line_endings():
    assert fmt("dummy d0 {\r\n    mtu 1500\r\n}\r\n") == lines("dummy d0 {", "    mtu 1500", "}")


# --- comments ---------------------------------------------------------------------------


def test_a_standalone_comment_stays_before_the_next_statement_at_its_indentation():
    text = "bridge br0 {\n# the uplink\n            ports eth0\n  # timers\nstp on\n}\n"
    assert fmt(text) == lines(
        "bridge br0 {",
        "    # the uplink",
        "    ports eth0",
        "    # timers",
        "    stp on",
        "}",
    )


def test_a_standalone_comment_is_dedented_to_the_statement_that_follows():
    assert fmt("dummy a {\n        # about b\n}\n        # about c\ndummy c\n") == lines(
        "dummy a {",
        "    # about b",
        "}",
        "# about c",
        "dummy c",
    )


def test_comment_text_is_kept_exactly_except_trailing_white_space():
    assert fmt("#no space   \n#    wide   gap\t\ndummy d0\n") == lines("#no space", "#    wide   gap", "dummy d0")


def test_a_comment_block_with_blank_lines_keeps_its_shape():
    text = "# head 1\n# head 2\n\n\n# about d0\ndummy d0\n"
    assert fmt(text) == lines("# head 1", "# head 2", "", "# about d0", "dummy d0")


def test_a_trailing_comment_stays_on_its_line():
    assert fmt("dummy d0   # the first\n") == "dummy d0  # the first\n"


def test_a_trailing_comment_after_a_semicolon_goes_with_the_last_statement():
    assert fmt("dummy d0 { mtu 1500; dhcp v4  # both\n}\n") == lines(
        "dummy d0 {",
        "    mtu 1500",
        "    dhcp v4  # both",
        "}",
    )


def test_trailing_comments_of_consecutive_lines_are_aligned():
    text = "let mgmt = 10 # management\nlet storage_vlan = 20 # storage\nlet x = 1 # x\n"
    assert fmt(text) == lines(
        "let mgmt = 10          # management",
        "let storage_vlan = 20  # storage",
        "let x = 1              # x",
    )


def test_trailing_comments_align_across_indentation_levels():
    text = "bond b0 { # the trunk\nmode 802.3ad # LACP\nminilinks 1 # x\n}\n"
    assert fmt(text) == lines(
        "bond b0 {         # the trunk",
        "    mode 802.3ad  # LACP",
        "    minilinks 1   # x",
        "}",
    )


def test_a_line_without_a_comment_breaks_the_alignment():
    text = "dummy a # a\ndummy bbbbbbbb\ndummy c # c\ndummy dddd # d\n"
    assert fmt(text) == lines(
        "dummy a  # a",
        "dummy bbbbbbbb",
        "dummy c     # c",
        "dummy dddd  # d",
    )


def test_a_blank_line_breaks_the_alignment():
    text = "dummy a # a\n\ndummy bbbbbbbb # b\n"
    assert fmt(text) == lines("dummy a  # a", "", "dummy bbbbbbbb  # b")


def test_a_standalone_comment_breaks_the_alignment():
    text = "dummy a # a\n# about b\ndummy bbbbbbbb # b\n"
    assert fmt(text) == lines("dummy a  # a", "# about b", "dummy bbbbbbbb  # b")


def test_a_trailing_comment_on_an_opening_brace():
    assert fmt("bridge br0 {   # the switch\n    stp on\n}\n") == lines(
        "bridge br0 {  # the switch",
        "    stp on",
        "}",
    )


def test_a_trailing_comment_on_an_empty_block_stays_on_the_statement_line():
    out = fmt("bridge br0 {     # later\n}\n")
    first = out.splitlines()[0]
    assert first.startswith("bridge br0 {") and first.endswith("  # later")
    assert out.count("# later") == 1
    assert fmt(out) == out


def test_a_trailing_comment_on_a_closing_brace():
    assert fmt("dummy d0 { mtu 1500 } # done\n") == lines("dummy d0 {", "    mtu 1500", "}  # done")


def test_a_comment_before_a_closing_brace_stays_inside_the_block():
    assert fmt("bridge br0 {\n    stp on\n# end of br0\n}\n") == lines(
        "bridge br0 {",
        "    stp on",
        "    # end of br0",
        "}",
    )


def test_a_comment_before_a_closing_brace_of_a_nested_block():
    assert fmt("host h {\n bridge br0 {\n  port eth0 {\n   pvid 1\n# pvid only\n  }\n# br0 done\n }\n}\n") == lines(
        "host h {",
        "    bridge br0 {",
        "        port eth0 {",
        "            pvid 1",
        "            # pvid only",
        "        }",
        "        # br0 done",
        "    }",
        "}",
    )


def test_comments_at_the_end_of_the_file_are_kept():
    assert fmt("dummy d0\n\n\n# the end\n#   really\n\n\n") == lines("dummy d0", "", "# the end", "#   really")


def test_a_file_of_comments_only():
    assert fmt("\n\n# one\n\n\n\n# two\n") == lines("# one", "", "# two")


def test_a_hash_inside_a_string_is_not_a_comment():
    assert fmt('dummy d0 {\n    description "port #1"   # real one\n}\n') == lines(
        "dummy d0 {",
        '    description "port #1"  # real one',
        "}",
    )


# --- fmt of fmt is fmt -----------------------------------------------------------------------

TRICKY = [
    "dummy a # x\n\n# y\n",
    "bridge br0 { # c\n}\n",
    "dummy d0 { mtu 1; dhcp v4 } # c\n",
    "a {\n\n  # first\n\n  b\n\n  # last\n\n}\n",
    "a { b { c { } } } # deep\n",
    "a # 1\nb { # 2\nc # 3\n} # 4\n",
    "# only\n",
    "a\n# before b\n\n\nb\n",
]


@pytest.mark.parametrize("text", TRICKY)
def test_fmt_is_idempotent_on_tricky_layouts(text):
    once = fmt(text)
    assert fmt(once) == once


@pytest.mark.parametrize("path", EXAMPLE_FILES + GOLDEN_FILES, ids=rel)
def test_fmt_is_idempotent_on_every_example_and_golden_file(path):
    text = path.read_text(encoding="utf-8")
    if path.parent.name.startswith("error-syntax-"):
        with pytest.raises(CompileError):
            fmt(text, str(path))
        return
    once = fmt(text, str(path))
    assert fmt(once, str(path)) == once


def _shape(text: str) -> tuple[list, list]:
    """The words (with block structure) and the comments of a file: what fmt must keep."""
    raw = parse(Source("t.vnet", text))
    out: list = []

    def walk(statements):
        for statement in statements:
            out.append(tuple(w.value for w in statement.words))
            if statement.block is not None:
                out.append("{")
                walk(statement.block.statements)
                out.append("}")

    walk(raw.statements)
    return out, [c.value.rstrip() for c in raw.comments]


def _random_file(rng: random.Random, depth: int = 0) -> str:
    parts = []
    for _ in range(rng.randint(0, 4)):
        roll = rng.random()
        if roll < 0.15:
            parts.append("\n" * rng.randint(1, 3))
            continue
        if roll < 0.3:
            parts.append(" " * rng.randint(0, 6) + f"# c{rng.randint(0, 99)}\n")
            continue
        words = [rng.choice(["a", "bb", "${x + 1}", '"s t"', "10.0.0.1/24"]) for _ in range(rng.randint(0, 3))]
        statement = " ".join(["w", *words])
        if depth < 3 and rng.random() < 0.4:
            statement += " {" + rng.choice(["", " # open\n", "\n"]) + _random_file(rng, depth + 1) \
                + rng.choice(["", "\n", " # inner\n", "\n  # before close\n"]) + "}"
        statement += rng.choice(["\n", ";", "  # trailing\n", "; ", "\n\n"])
        parts.append(statement)
    return "".join(parts)


def test_fmt_is_idempotent_and_keeps_words_and_comments_on_generated_files():
    rng = random.Random(20240601)
    checked = 0
    for _ in range(1500):
        text = _random_file(rng)
        try:
            before = _shape(text)
        except CompileError:
            continue
        once = fmt(text)
        assert fmt(once) == once, text
        assert _shape(once) == before, text
        checked += 1
    assert checked > 1000


# --- fmt keeps the meaning ----------------------------------------------------------------------

def _valid_golden_inputs() -> list[Path]:
    return sorted(p for p in (ROOT / "golden").glob("*/input.vnet") if (p.parent / "golden.yml").is_file()
                  and "\nir:" in "\n" + (p.parent / "golden.yml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", EXAMPLE_FILES + _valid_golden_inputs(), ids=rel)
def test_fmt_keeps_the_meaning(path, tmp_path):
    text = path.read_text(encoding="utf-8")
    before = compile_source(text, str(path))
    formatted = fmt(text, str(path))
    # Compile the formatted text at the same path, so that includes resolve the same way.
    after = compile_source(formatted, str(path))
    assert site_to_json(after.site, show_secrets=True) == site_to_json(before.site, show_secrets=True)
    assert [d.message for d in after.warnings] == [d.message for d in before.warnings]


def test_there_are_files_to_check():
    assert len(EXAMPLE_FILES) >= 20
    assert len(_valid_golden_inputs()) >= 8
