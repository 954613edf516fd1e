"""Coverage-guided fuzzing of vnetc with atheris (libFuzzer), for long runs by hand.

Each input is a .vnet file (bytes, maybe not UTF-8), read by the real reader in a
scratch directory that also holds `part.vnet` (so `include "part.vnet"` works).
vnetc must either compile it or refuse it with error diagnostics that each
point inside the file they name; a site that compiles must render for every
target in backends.TARGET_MODULES, and `fmt` must keep its meaning (the IR of
fmt(x) is the IR of x) and be idempotent. Anything else (an exception, a wrong
position, a changed meaning) is a crash that libFuzzer saves as crash-*.

    .venv/bin/pip install -e '.[fuzz]'
    .venv/bin/python fuzz/fuzz_vnetc.py -max_total_time=600 -timeout=10 -rss_limit_mb=2048
    .venv/bin/python fuzz/fuzz_vnetc.py crash-1234abcd       # re-run one input (no fuzzing)

The corpus (fuzz/corpus/, not committed) is seeded from examples/ and golden/ on
the first run; the dictionary (fuzz/vnet.dict) is written from the schema.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import atheris

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

with atheris.instrument_imports(include=["vnetc"]):
    from vnetc.backends import TARGET_MODULES, target
    from vnetc.backends.build import build_plan
    from vnetc.compiler import CompileError, compile_file, compile_source
    from vnetc.compiler.diagnostics import Source, render_all
    from vnetc.compiler.fmt import format_raw
    from vnetc.compiler.irjson import site_to_json
    from vnetc.compiler.parser import parse
    from vnetc.compiler.schema import KINDS, props_of

    TARGETS = sorted(TARGET_MODULES)
    for name in TARGETS:          # the target modules are imported on first use: instrument them too
        target(name)

#: Scratch files (libFuzzer ends the process without Python's clean-up: one directory, reused;
#: each process's input file, removed by a later run once that process is gone).
WORK = Path("/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()) / "vnetc-fuzz"
WORK.mkdir(exist_ok=True)
for old in WORK.glob("input-*.vnet"):
    try:
        os.kill(int(old.stem.removeprefix("input-")), 0)
    except (ProcessLookupError, ValueError):
        old.unlink(missing_ok=True)
(WORK / "part.vnet").write_text("# included by the fuzzed file\nlet INCLUDED_ = 1\ninterface part0\n")
INPUT = WORK / f"input-{os.getpid()}.vnet"


def check_refusal(error: CompileError) -> None:
    errors = [d for d in error.diagnostics if d.severity == "error"]
    assert errors, f"CompileError without an error: {error.diagnostics}"
    for d in errors:
        if d.span is None:        # a file that cannot be read at all names itself
            assert "vnetc reads" in d.message or "cannot read" in d.message, d.message
            continue
        lines = d.span.source.text.split("\n")
        assert 1 <= d.span.line <= len(lines), f"line outside the file: {d.render()}"
        assert 1 <= d.span.col <= len(lines[d.span.line - 1]) + 1, f"column outside the line: {d.render()}"
    render_all(error.diagnostics)


def ir_of(text: str, path: str) -> dict:
    return site_to_json(compile_source(text, path).site, show_secrets=True)


def test_one_input(data: bytes) -> None:
    path = INPUT
    path.write_bytes(data)
    try:
        result = compile_file(str(path))
    except CompileError as error:
        check_refusal(error)
        return
    build_plan(result.site, TARGETS, WORK / "out", None)
    text = data.decode("utf-8").removeprefix("\ufeff")
    once = format_raw(parse(Source(str(path), text)))
    assert format_raw(parse(Source(str(path), once))) == once, "fmt is not idempotent"
    assert ir_of(once, str(path)) == site_to_json(result.site, show_secrets=True), "fmt changed the meaning"


def seed_corpus(corpus: Path) -> None:
    corpus.mkdir(exist_ok=True)
    if any(corpus.iterdir()):
        return
    for n, source in enumerate(sorted([*REPO.glob("examples/**/*.vnet"), *REPO.glob("golden/*/input.vnet")])):
        (corpus / f"seed-{n:03d}.vnet").write_bytes(source.read_bytes())


def write_dictionary(path: Path) -> None:
    """libFuzzer's dictionary: the language's keywords and punctuation, every kind and property."""
    words = {"{", "}", ";", "\n", '"', "#", "${", "..", "$", "include", "let", "for", "in", "=", "host", "netns",
             "part.vnet", "on", "off", "up", "down", "0x", "10.0.0.1/24", "fe80::1/64", "52:54:00:00:00:01"}
    for kind, spec in KINDS.items():
        words.add(kind)
        words.update(props_of(spec))
    def quoted(word: str) -> str:   # libFuzzer's escapes: \\, \" and \xNN
        return "".join(chr(b) if 32 <= b < 127 and b not in b'"\\' else f"\\x{b:02x}" for b in word.encode())

    path.write_text("".join(f'"{quoted(w)}"\n' for w in sorted(words)))


def main() -> None:
    args = sys.argv[1:]
    if args and not args[0].startswith("-") and all(Path(a).is_file() for a in args):
        for name in args:                       # replay, without libFuzzer
            test_one_input(Path(name).read_bytes())
            print(f"{name}: ok")
        return
    corpus = HERE / "corpus"
    seed_corpus(corpus)
    dictionary = HERE / "vnet.dict"
    write_dictionary(dictionary)
    if not any(not a.startswith("-") for a in args):
        args.append(str(corpus))
    atheris.Setup([sys.argv[0], f"-dict={dictionary}", *args], test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
