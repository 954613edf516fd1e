"""What `vnetc plan`, `vnetc apply` and `vnetc destroy` do, for the command line to call.

    status = command.main(Request(...), ui)

The command line parses options and prints; everything else happens here.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from . import SetupError, empty_kernel, lock, lock_name, make_plan, observe, run, target
from .apply import EXIT_OK, EXIT_ROLLED_BACK, Fault, LockBusy

EXIT_INPUT, EXIT_USAGE = 1, 2


class Request(NamedTuple):
    action: str                       # plan | apply | destroy
    file: str
    netns: str | None = None
    host: str | None = None
    adopt: bool = False
    residual: bool = False            # FILE is a residual file
    against_empty: bool = False       # plan against a kernel with only the site's existing devices
    yes: bool = False
    wait: float = 10.0                # seconds to wait for the lock


class UI(NamedTuple):
    out: Callable[[str], None]                    # the plan (stdout)
    err: Callable[[str], None]                    # messages (stderr)
    confirm: Callable[[str], bool] | None         # None: no terminal to ask on


def load(request: Request, ui: UI, compile_site: Callable[[str], object | None]):
    """The target of the request, or an exit status."""
    residual = residual_target = None
    if request.residual:
        from .residual import BadResidual, read as read_residual
        try:
            site, residual, residual_target = read_residual(request.file)
        except BadResidual as exc:
            ui.err(f"vnetc: {exc}")
            return EXIT_INPUT
    else:
        site = compile_site(request.file)
        if site is None:
            return EXIT_INPUT
    try:
        return target(site, request.file, request.host, request.netns, request.adopt, residual, residual_target,
                      offline=request.against_empty)
    except SetupError as exc:
        ui.err(f"vnetc: {exc}")
        return EXIT_USAGE


def main(request: Request, ui: UI, compile_site: Callable[[str], object | None], fault: Fault | None = None) -> int:
    t = load(request, ui, compile_site)
    if isinstance(t, int):
        return t
    try:
        if request.action == "plan":
            states = empty_kernel(t) if request.against_empty else observe(t)
            plan = make_plan(t, states)
            ui.out(plan.render())
            return EXIT_INPUT if plan.errors else EXIT_OK
        with lock(lock_name(t), request.wait):
            plan = make_plan(t, observe(t), destroy=request.action == "destroy")
            ui.out(plan.render())
            if plan.errors:
                ui.err("vnetc: nothing was changed: the plan has errors")
                return EXIT_INPUT
            if plan.empty:
                return EXIT_OK
            if not request.yes:
                if ui.confirm is None:
                    ui.err(f"vnetc: not on a terminal: pass --yes to {request.action} this plan")
                    return EXIT_USAGE
                if not ui.confirm(f"{request.action.capitalize()} this plan?"):
                    ui.err("vnetc: nothing was changed")
                    return EXIT_OK
            outcome = run(t, plan, fault)
    except LockBusy as exc:
        ui.err(f"vnetc: {exc}")
        return EXIT_ROLLED_BACK
    except OSError as exc:      # reading the kernel state failed (KernelError is one): nothing changed yet
        ui.err(f"vnetc: cannot read the kernel's state: {exc}; nothing was changed")
        return EXIT_ROLLED_BACK
    if outcome.status == EXIT_OK:
        ui.err(f"vnetc: {request.action}: done ({outcome.done} kernel operations)")
    elif outcome.status == EXIT_ROLLED_BACK:
        ui.err(f"vnetc: {request.action} failed: {outcome.message}\n"
               f"vnetc: rolled back: the kernel is as it was before")
    else:
        ui.err(f"vnetc: {request.action} failed: {outcome.message}\n"
               f"vnetc: the rollback left these differences:\n" + "\n".join(f"  {r}" for r in outcome.remains))
    return outcome.status
