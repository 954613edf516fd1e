"""Random valid sites (tests/strategies.py): planning never raises, and against an empty kernel
every device the site makes is created (or the plan names why it cannot be)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from strategies import sites
from vnetc.backends.executor import empty_kernel, make_plan, target
from vnetc.backends.executor.kinds import KINDS
from vnetc.compiler import compile_source


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sites())
def test_planning_a_random_site_against_an_empty_kernel(generated):
    site = compile_source(generated.text, "site.vnet").site
    for host in site.hosts:
        t = target(site, "site.vnet", host.name, netns="rig", offline=True)
        plan = make_plan(t, empty_kernel(t))
        text = plan.render()
        if plan.errors:
            assert all(e for e in plan.errors)
            continue
        created = {step.subject for step in plan.steps if step.action == "create"}
        for device in host.devices:
            if KINDS[device.kind].make != "existing":
                where = f"{device.netns}/" if device.netns else ""
                assert f"{device.kind} {where}{device.name}" in created, text
        assert plan.ops, text
