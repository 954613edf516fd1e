"""Plan-level golden tests: `vnetc plan --against-empty` for every golden case with valid input.

golden/<case>/plan.yml holds what the plan says against a kernel that has only the site's
`interface`s and `failover` masters, unconfigured — for every kind, those this kernel lacks
included (no root needed). `pytest --update-goldens` rewrites them; read the diff.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_vnetc
from test_golden import case_input

GOLDEN = Path(__file__).resolve().parents[2] / "golden"


def plan_of(case: Path) -> dict:
    run = run_vnetc("plan", case_input(case), "--against-empty", *_host_option(case), cwd=case)
    return {"exit": run.exit_code, "stdout": run.stdout, "stderr": run.stderr}


def _host_option(case: Path) -> list[str]:
    """A multi-host case is planned for its first host."""
    from vnetc.compiler import compile_file
    import os
    old = os.getcwd()
    try:
        os.chdir(case)
        site = compile_file(case_input(case)).site
    finally:
        os.chdir(old)
    return ["--host", site.hosts[0].name] if len(site.hosts) > 1 else []


@pytest.mark.golden_test("../../golden/*/plan.yml")
def test_golden_plan(golden):
    case = Path(golden.path).parent
    assert golden.out["plan"] == plan_of(case)


def test_every_valid_case_has_a_plan():
    for case in sorted(p for p in GOLDEN.iterdir() if p.is_dir()):
        valid = run_vnetc("check", case_input(case), cwd=case).exit_code == 0
        assert (case / "plan.yml").exists() == valid, f"{case.name}: plan.yml {'missing' if valid else 'for invalid input'}"


def test_plans_show_no_secret(tmp_path):
    """An inline MACsec key never reaches the plan; the plan says <redacted>."""
    key = "00112233445566778899aabbccddeeff"
    site = tmp_path / "s.vnet"
    site.write_text(f"interface eth0\nmacsec ms0 {{ link eth0; tx-sa 0 {{ key-id 01; key {key} }}\n"
                    f"rx-channel 52:54:00:12:34:57 1 {{ sa 1 {{ key-id 02; key {key[::-1]} }} }} }}\n")
    run = run_vnetc("plan", str(site), "--against-empty")
    assert run.exit_code == 0
    assert "key <redacted>" in run.stdout
    assert key not in run.stdout + run.stderr and key[::-1] not in run.stdout + run.stderr
