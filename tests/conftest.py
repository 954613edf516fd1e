"""Shared fixtures: run the vnetc command line in-process, compile text."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from vnetc.cli import main
from vnetc.compiler import CompileError, compile_source

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str


def run_vnetc(*args: str, cwd: Path | None = None) -> Run:
    """`vnetc ARGS` in this process (exceptions propagate: a traceback fails the test)."""
    runner = CliRunner()
    old = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        result = runner.invoke(main, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)
    return Run(result.exit_code, result.stdout, result.stderr)


def diagnostics_of(text: str, path: str = "t.vnet") -> list:
    """The diagnostics compiling `text` raises (fails if it compiles)."""
    try:
        result = compile_source(text, path)
    except CompileError as exc:
        return list(exc.diagnostics)
    raise AssertionError(f"expected errors, but it compiled (warnings: {result.warnings})")


@pytest.fixture
def vnetc():
    return run_vnetc
