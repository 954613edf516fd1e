"""The `vnetc` command line. The commands hold no logic: they call the compiler.

Exit codes (architecture.md): 0 success; 1 the input has errors; 2 usage error;
3 the target cannot express the input under --strict; 4 apply failed and was
rolled back; 5 apply failed and could not be fully rolled back.
"""

from __future__ import annotations

import json
import sys

import click

from vnetc.compiler import CompileError, compile_file
from vnetc.compiler.diagnostics import Diagnostic, render_all
from vnetc.compiler.expand import read_source
from vnetc.compiler.fmt import format_raw
from vnetc.compiler.irjson import site_to_json
from vnetc.compiler.parser import parse
from vnetc.compiler.values import BadValue

EXIT_OK, EXIT_INPUT, EXIT_USAGE = 0, 1, 2

_FILES = click.Path(exists=True, dir_okay=False, readable=True)


def _report(diagnostics) -> None:
    if diagnostics:
        click.echo(render_all(list(diagnostics)), err=True)


def _promote(warnings) -> list[Diagnostic]:
    return [Diagnostic("error", w.message, w.span, w.hint, (*w.notes, "a warning, made an error by --strict"))
            for w in warnings]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vnetc")
def main() -> None:
    """vnetc: compile .vnet descriptions of virtual network devices."""


@main.command()
@click.argument("files", nargs=-1, required=True, type=_FILES)
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
def check(files: tuple[str, ...], strict: bool) -> None:
    """Parse and check FILES; print diagnostics."""
    failed = False
    for path in files:
        try:
            result = compile_file(path)
        except CompileError as exc:
            _report(exc.diagnostics)
            failed = True
            continue
        if strict and result.warnings:
            _report(_promote(result.warnings))
            failed = True
        else:
            _report(result.warnings)
    sys.exit(EXIT_INPUT if failed else EXIT_OK)


@main.command()
@click.argument("file", type=_FILES)
@click.option("--show-secrets", is_flag=True, help="Print MACsec keys instead of <redacted>.")
def ir(file: str, show_secrets: bool) -> None:
    """Print the checked IR of FILE as JSON (for tools and tests)."""
    try:
        result = compile_file(file)
    except CompileError as exc:
        _report(exc.diagnostics)
        sys.exit(EXIT_INPUT)
    _report(result.warnings)
    click.echo(json.dumps(site_to_json(result.site, show_secrets=show_secrets), indent=2, ensure_ascii=False))


@main.command()
@click.argument("files", nargs=-1, required=True, type=_FILES)
@click.option("--check", "check_only", is_flag=True, help="Change nothing; exit 1 if a file is not canonical.")
def fmt(files: tuple[str, ...], check_only: bool) -> None:
    """Rewrite FILES in the canonical layout (comments are kept)."""
    failed = False
    for path in files:
        try:
            source = read_source(path)
            raw = parse(source)
        except BadValue as exc:
            _report([Diagnostic("error", exc.message, None, exc.hint)])
            failed = True
            continue
        except CompileError as exc:
            _report(exc.diagnostics)
            failed = True
            continue
        formatted = format_raw(raw)
        if formatted == source.text:
            continue
        if check_only:
            click.echo(f"{path}: not in canonical layout (run: vnetc fmt {path})", err=True)
            failed = True
        else:
            _write_in_place(path, formatted)
            click.echo(f"reformatted {path}", err=True)
    sys.exit(EXIT_INPUT if failed else EXIT_OK)


def _write_in_place(path: str, text: str) -> None:
    """Replace the file atomically, keeping its mode."""
    import os
    import tempfile

    directory = os.path.dirname(os.path.abspath(path))
    mode = os.stat(path).st_mode & 0o7777
    handle, temp = tempfile.mkstemp(prefix=".vnetc-fmt-", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


if __name__ == "__main__":  # pragma: no cover
    main()
