"""Ownership, confirmation, secrets and the residual of a file target, in fresh namespaces."""

from __future__ import annotations

import json
import pytest

from conftest import run_vnetc
from executor_helpers import fake_interfaces, full_snapshot, namespace, problems, vnetc, write_site
from harness import kernel
from harness.netns import filters, ip, links, qdiscs, tc


def test_a_foreign_device_of_the_same_name_is_an_error_unless_adopted(tmp_path):
    kernel.require_kind("bridge")
    site = write_site(tmp_path, "bridge br0 { address 10.0.0.1/24 }\n")
    with namespace() as ns:
        ip(ns, "link", "add", "br0", "type", "bridge")
        before = full_snapshot(ns)
        run = vnetc("apply", site, ns)
        assert run.exit_code == 1
        assert "bridge br0: the name is taken by a device vnetc did not create" in run.stdout
        assert "--adopt" in run.stdout and full_snapshot(ns) == before
        adopted = vnetc("apply", site, ns, "--adopt")
        assert adopted.exit_code == 0, adopted.stderr
        assert "adopt the existing bridge" in adopted.stdout
        assert links(ns)["br0"]["info"] and problems(site, ns) == []
        assert vnetc("plan", site, ns).stdout.startswith("No changes")
        assert vnetc("destroy", site, ns).exit_code == 0
        assert "br0" not in links(ns)


def test_another_sites_devices_are_left_alone(tmp_path):
    kernel.require_kind("bridge")
    one = write_site(tmp_path, "bridge br1 { address 10.0.0.1/24 }\n", "one.vnet")
    two = write_site(tmp_path, "bridge br2 { address 10.0.1.1/24 }\n", "two.vnet")
    with namespace() as ns:
        assert vnetc("apply", one, ns).exit_code == 0
        assert vnetc("apply", two, ns).exit_code == 0           # br1 is not two.vnet's to delete
        assert {"br1", "br2"} <= set(links(ns))
        assert vnetc("destroy", one, ns).exit_code == 0
        assert "br1" not in links(ns) and "br2" in links(ns)


def test_a_device_removed_from_the_site_is_deleted_and_a_changed_one_recreated(tmp_path):
    kernel.require_kind("vxlan")
    kernel.require_kind("bridge")
    site = tmp_path / "s.vnet"
    site.write_text("bridge br0 { stp off }\nvxlan vx0 { vni 10; remote 10.0.0.9; learning on }\nbridge old0\n")
    with namespace() as ns:
        assert vnetc("apply", str(site), ns).exit_code == 0
        site.write_text("bridge br0 { stp on }\nvxlan vx0 { vni 20; remote 10.0.0.9; learning off }\n")
        plan = vnetc("plan", str(site), ns).stdout
        assert "~ bridge br0: change\n    stp off -> on" in plan
        assert "-/+ vxlan vx0: recreate (the kernel cannot change vni in place)" in plan
        assert "- bridge old0: delete" in plan
        assert vnetc("apply", str(site), ns).exit_code == 0
        assert problems(str(site), ns) == [] and "old0" not in links(ns)
        assert vnetc("plan", str(site), ns).stdout.startswith("No changes")


def test_without_a_terminal_apply_wants_yes(tmp_path):
    kernel.require_kind("bridge")
    site = write_site(tmp_path, "bridge br0\n")
    with namespace() as ns:
        run = run_vnetc("apply", site, "--netns", ns)
        assert run.exit_code == 2 and "pass --yes" in run.stderr
        assert "br0" not in links(ns)


def test_a_readable_key_file_is_a_warning_and_keys_stay_secret(tmp_path):
    key = tmp_path / "tx.key"
    key.write_text("00112233445566778899aabbccddeeff\n")
    key.chmod(0o644)
    site = write_site(tmp_path, f'interface eth0\nmacsec ms0 {{ link eth0; tx-sa 0 {{ key-id 01; key-file "{key}" }} }}\n')
    with namespace() as ns:
        fake_interfaces(ns, site)
        run = vnetc("plan", site, ns)
        assert f"warning: MACsec key file {key} can be read by its group or others (mode 0644)" in run.stdout
        key.chmod(0o600)
        run = vnetc("plan", site, ns)
        assert "warning" not in run.stdout
        before = full_snapshot(ns)
        applied = vnetc("apply", site, ns)
        if kernel.probe("macsec").ok:
            pytest.skip("this kernel has MACsec: see the apply tests")
        assert applied.exit_code == 4, applied.stderr          # this kernel refuses macsec: rolled back
        assert "00112233" not in applied.stdout + applied.stderr
        assert full_snapshot(ns) == before


def test_the_residual_of_networkd(tmp_path):
    """networkd makes eth0's ingress qdisc and ifb0; vnetc apply --residual does the rest: the
    veth pair whose peer lives in a namespace, and the redirect filter."""
    for kind in ("veth", "ifb"):
        kernel.require_kind(kind)
    kernel.require_qdisc("ingress")
    site = write_site(tmp_path, "netns blue\ninterface eth0\n"
                                "veth ve0 { address 10.0.0.1/24; peer ve0-in { netns blue; address 10.0.0.2/24 } }\n"
                                "ifb ifb0 { redirect-ingress eth0 }\n")
    out = tmp_path / "out"
    assert run_vnetc("build", site, "-t", "networkd", "-o", str(out)).exit_code == 0
    residual = out / "networkd" / "networkd.json"
    items = {(i["name"], i["what"]) for i in json.loads(residual.read_text())["items"]}
    assert items == {("ve0-in", "device"), ("ifb0", "redirect-ingress")}    # ve0 comes with its peer
    with namespace() as ns:
        fake_interfaces(ns, site)
        ip(ns, "link", "add", "ifb0", "type", "ifb")          # what networkd made
        tc(ns, "qdisc", "add", "dev", "eth0", "ingress")
        first = vnetc("apply", str(residual), ns, "--residual")
        assert first.exit_code == 0, first.stdout + first.stderr
        assert [p for p in problems(site, ns) if "ve0" in p] == []    # eth0 and ifb0 are networkd's to configure
        assert [f["options"]["actions"][0]["to_dev"] for f in filters(ns, "eth0")] == ["ifb0"]
        assert vnetc("plan", str(residual), ns, "--residual").stdout.startswith("No changes")
        gone = vnetc("destroy", str(residual), ns, "--residual")
        assert gone.exit_code == 0, gone.stdout + gone.stderr
        assert "ve0" not in links(ns) and "ifb0" in links(ns) and filters(ns, "eth0") == []
        assert any(q["kind"] == "ingress" for q in qdiscs(ns))          # networkd's, left alone
