"""The `vnetc` command line. The commands hold no logic: they call the compiler.

Exit codes (architecture.md): 0 success; 1 the input has errors; 2 usage error;
3 the target cannot express the input under --strict; 4 apply failed and was
rolled back; 5 apply failed and could not be fully rolled back.
"""

from __future__ import annotations

import gc
import os
import sys

from pathlib import Path

import click

from vnetc.backends import TARGET_MODULES
from vnetc.backends import target as _target
from vnetc.compiler import CompileError, compile_file
from vnetc.compiler.diagnostics import Diagnostic, render_all
from vnetc.compiler.expand import read_source
from vnetc.compiler.fmt import format_raw
from vnetc.compiler.parser import parse
from vnetc.compiler.values import BadValue

EXIT_OK, EXIT_INPUT, EXIT_USAGE, EXIT_INEXPRESSIBLE = 0, 1, 2, 3

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
            result = compile_file(path, build_ir=False)   # checking needs no IR
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
    import json

    from vnetc.compiler.irjson import site_to_json

    click.echo(json.dumps(site_to_json(result.site, show_secrets=show_secrets), indent=2, ensure_ascii=False))


def _nm_version(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, int] | None:
    """The release given with --nm-version; None when it is not given (the nm target's default),
    so that a build of other targets does not import the nm target (18 ms) to read it."""
    if ctx.get_parameter_source(param.name) is click.core.ParameterSource.DEFAULT:
        return None
    from vnetc.backends.nm import parse_version

    try:
        return parse_version(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@main.command()
@click.argument("file", type=_FILES)
@click.option("-t", "--target", "targets", multiple=True, required=True,
              type=click.Choice(sorted(TARGET_MODULES)), help="What to generate (repeatable).")
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Output directory (default ./out); files go to OUT/TARGET[/HOST]/.")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path),
              help="Write files at their installed paths under ROOT (image builds).")
@click.option("--host", help="Build only this host of a multi-host site.")
@click.option("--strict", is_flag=True, help="Fail (exit 3) instead of handing anything to the executor.")
@click.option("--check", "check_only", is_flag=True,
              help="Write nothing; exit 1 and show the diff if the output on disk differs.")
@click.option("--netplan-renderer", type=click.Choice(["networkd", "NetworkManager"]), default="networkd",
              show_default=True, help="The renderer netplan hands the configuration to (-t netplan).")
@click.option("--nm-version", default="1.42", show_default=True, callback=_nm_version,
              help="The NetworkManager release the keyfiles are for (-t nm); 1.52 adds ipvlan.")
def build(file: str, targets: tuple[str, ...], out_dir: Path | None, root: Path | None, host: str | None,
          strict: bool, check_only: bool, netplan_renderer: str, nm_version: tuple[int, int] | None) -> None:
    """Compile FILE for each TARGET."""
    from vnetc.backends import output
    from vnetc.backends.build import build_plan, secrets_of

    if out_dir is not None and root is not None:
        raise click.UsageError("give -o or --root, not both")
    try:
        result = compile_file(file)
    except CompileError as exc:
        _report(exc.diagnostics)
        sys.exit(EXIT_INPUT)
    site = result.site
    if host is not None and host not in [h.name for h in site.hosts]:
        names = ", ".join(str(h.name) for h in site.hosts)
        raise click.BadParameter(f"no host '{host}' in {file} (hosts: {names})", param_hint="--host")
    if strict and result.warnings:
        _report(_promote(result.warnings))
        sys.exit(EXIT_INPUT)
    _report(result.warnings)
    options = {"netplan": {"renderer": netplan_renderer}, "nm": {} if nm_version is None else {"version": nm_version}}
    plan = build_plan(site, list(dict.fromkeys(targets)), out_dir, root, host, options)
    if plan.errors:
        _report([Diagnostic("error", f"{target}: {gap.describe()}", gap.span) for target, gap in plan.errors])
        sys.exit(EXIT_INEXPRESSIBLE)
    if strict and plan.residual:
        _report([Diagnostic("error", f"{target} cannot express {gap.describe()}", gap.span,
                            notes=("--strict refuses to hand it to vnetc apply" if _target(target).hands_over
                                   else f"--strict refuses what {target} does not do",))
                 for target, gap in plan.residual])
        sys.exit(EXIT_INEXPRESSIBLE)
    if check_only:
        differs = False
        for target_plan in plan.plans:
            lines = output.diff(target_plan, secrets_of(site))
            if lines:
                differs = True
                click.echo("".join(lines), nl=False)
        sys.exit(EXIT_INPUT if differs else EXIT_OK)
    for target_plan in plan.plans:
        report = output.write(target_plan, install=root is not None)
        where = ", ".join(sorted({str(d) for d in target_plan.dirs})) or "nowhere (no devices)"
        click.echo(f"{target_plan.target}: {len(report.written)} written, {len(report.unchanged)} unchanged, "
                   f"{len(report.removed)} removed in {where}", err=True)
        for note in report.notes:
            click.echo(f"  note: {note}", err=True)
    _report_residual(plan.residual)
    sys.exit(EXIT_OK)


def _report_residual(residual) -> None:
    """What each target leaves to vnetc apply (or to nobody): the first MAX_SHOWN items of each
    target, then how many more (a 16,000-device site can leave thousands; the residual file
    lists them all)."""
    from vnetc.backends.residual import RESIDUAL_DIR, residual_name
    from vnetc.compiler.diagnostics import MAX_SHOWN

    lines: list[str] = []
    shown: dict[str, int] = {}
    for target, gap in residual:
        shown[target] = shown.get(target, 0) + 1
        if shown[target] > MAX_SHOWN:
            continue
        if _target(target).hands_over:
            lines.append(f"  residual ({target} -> vnetc apply): {gap.describe()}")
        else:
            lines.append(f"  not done by {target}: {gap.describe()}")
    for target, count in shown.items():
        if count > MAX_SHOWN:
            where = (f"; /{RESIDUAL_DIR}/{residual_name(_target(target))} lists every one"
                     if _target(target).hands_over else "")
            lines.append(f"  … and {count - MAX_SHOWN:,} more for {target}{where}")
    if lines:
        click.echo("\n".join(lines), err=True)


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
        except CompileError as exc:  # also NotUTF8
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
    """Replace the file through a temporary sibling and a rename, keeping its mode."""
    import os

    from vnetc.backends.output import atomic_write

    atomic_write(Path(path), text, os.stat(path).st_mode & 0o7777)


def _executor_options(command):
    """The options plan, apply and destroy share."""
    for option in reversed([
        click.argument("file", type=_FILES),
        click.option("--netns", help="Treat this named namespace as the host's own (declared ones become NETNS-NAME)."),
        click.option("--host", help="The host of a multi-host site."),
        click.option("--residual", is_flag=True, help="FILE is a residual file of a file target (etc/vnetc/residual/*.json)."),
    ]):
        command = option(command)
    return command


def _executor(action: str, file: str, **options) -> None:
    from vnetc.backends.executor.apply import run_dir
    from vnetc.backends.executor.command import UI, Request, main as run_command
    from vnetc.compiler import cache

    def compile_site(path: str):
        try:
            if options.get("against_empty"):   # an offline plan, for review: no run directory
                result = compile_file(path)
            else:                              # an unchanged site is not compiled again
                result = cache.compile_file(path, os.path.join(run_dir(), "cache"))
        except CompileError as exc:
            _report(exc.diagnostics)
            return None
        _report(result.warnings)
        return result.site

    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    ui = UI(out=lambda text: click.echo(text, nl=False), err=lambda text: click.echo(text, err=True),
            confirm=(lambda question: click.confirm(question, default=False)) if interactive else None)
    sys.exit(run_command(Request(action, file, **options), ui, compile_site))


@main.command()
@_executor_options
@click.option("--against-empty", is_flag=True, help="Plan against a kernel holding only the site's interfaces (no root needed).")
def plan(file: str, **options) -> None:
    """Show what `vnetc apply` would change in the kernel."""
    _executor("plan", file, **options)


@main.command()
@_executor_options
@click.option("--yes", is_flag=True, help="Do not ask before changing anything.")
@click.option("--adopt", is_flag=True, help="Take over devices of the site's names that vnetc did not create.")
@click.option("--wait", type=float, default=10.0, show_default=True, help="Seconds to wait for another apply's lock.")
def apply(file: str, **options) -> None:
    """Make the kernel match FILE over netlink (all or nothing)."""
    _executor("apply", file, **options)


@main.command()
@_executor_options
@click.option("--yes", is_flag=True, help="Do not ask before changing anything.")
@click.option("--wait", type=float, default=10.0, show_default=True, help="Seconds to wait for another apply's lock.")
def destroy(file: str, **options) -> None:
    """Remove what vnetc created for FILE, and nothing else."""
    _executor("destroy", file, **options)


def run() -> None:
    """The `vnetc` program: :func:`main`, then an exit that skips tearing down the heap.

    A large build leaves a few hundred thousand objects alive when it exits; freeing them
    one by one is 20-40 ms of every 4,000-device build. Everything vnetc writes is
    closed by then (files, locks, journals: their `with` blocks and `finally`s have run
    while SystemExit unwound), so what is left is to flush stdout and stderr.
    The cyclic garbage collector is off for the same reason: a command allocates and keeps,
    and makes no cycles worth collecting before it exits (compiling and rendering switch it
    off themselves; this also spares the full collection between them, 10 ms at 4k).
    Tests call :func:`main` through click's runner, which this does not change."""
    gc.disable()
    try:
        main()
        code = EXIT_OK
    except SystemExit as exc:
        code = exc.code
    if code is None:
        code = EXIT_OK
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = EXIT_INPUT
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:            # a closed pipe (vnetc … | head): the output is lost, not an error
        pass
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
