"""tc over netlink: an IFB's root qdisc and the `redirect-ingress` chain.

The chain, per source device: an ingress qdisc (handle ffff:) and a u32
filter matching every packet (one key, mask 0) whose mirred action redirects
it to the IFB's egress — `tc filter add dev SRC ingress protocol all u32 match
u32 0 0 action mirred egress redirect dev IFB`. vnetc's filters carry the
action cookie owner.cookie(OWNER) and priority PRIO; that is how it finds them again.

QDISCS: one row per root qdisc of the language (schema.QDISCS): how each
parameter becomes the qdisc's TCA_OPTIONS.
"""

from __future__ import annotations

import struct
from typing import Any, Callable

from . import netlink as nl
from . import owner as mark
from .ops import Context, Op, Step, phase

PRIO = 0xC0DE & 0xFFFF       # the priority of vnetc's redirect filters
ETH_P_ALL = 0x0003
INGRESS_HANDLE = 0xFFFF0000
INGRESS_PARENT = 0xFFFFFFF2  # `tc filter … ingress` (works for ingress and clsact qdiscs)
ROOT_HANDLE = 0x00010000     # 1:
_TC = struct.Struct("=BxxxiIII")
TCA_U32_SEL, TCA_U32_ACT = 5, 7
TCA_ACT_KIND, TCA_ACT_OPTIONS, TCA_ACT_COOKIE = 1, 2, 6
TCA_MIRRED_PARMS = 2
TC_ACT_STOLEN, TCA_EGRESS_REDIR, TC_U32_TERMINAL = 4, 1, 1
_MIRRED = struct.Struct("=IIiiiiI")   # tc_gen (index, capab, action, refcnt, bindcnt), eaction, ifindex


def tcmsg(index: int, handle: int, parent: int, info: int = 0) -> bytes:
    return _TC.pack(0, index, handle, parent, info)


# --- root qdiscs -----------------------------------------------------------------

def _u32(n: int) -> Callable[[Any], bytes]:
    return lambda v: nl.u32(n, int(v))


def _flag(n: int, on: bool) -> Callable[[Any], bytes]:
    return lambda v: nl.u32(n, 1 if on else 0)


def _tbf(params: dict) -> bytes:
    rate = params["rate"] // 8                    # bytes per second
    burst = params["burst"]
    limit = params.get("limit")
    if limit is None:                             # as tc computes it from latency
        limit = rate * params["latency"] // 1_000_000 + burst
    peak = params.get("peakrate", 0) // 8
    ratespec = struct.pack("=BBHhHI", 0, 1, 0, -1, params.get("mpu", 0), min(rate, 0xFFFFFFFF))
    peakspec = struct.pack("=BBHhHI", 0, 1 if peak else 0, 0, -1 if peak else 0, 0, min(peak, 0xFFFFFFFF))
    qopt = ratespec + peakspec + struct.pack("=III", limit, 0, params.get("mtu", 0) if peak else 0)
    out = nl.nla(1, qopt) + nl.u32(6, burst)      # TCA_TBF_PARMS, TCA_TBF_BURST
    if rate > 0xFFFFFFFF:
        out += nl.u64(4, rate)
    if peak:
        out += nl.u32(7, params.get("mtu", 2048))  # TCA_TBF_PBURST
    return out


def _sfq(params: dict) -> bytes:
    return struct.pack("=IiIII", params.get("quantum", 0), params.get("perturb", 0) // 1_000_000,
                       params.get("limit", 0), params.get("divisor", 0), 0)


_CODEL = {"target": _u32(1), "limit": _u32(2), "interval": _u32(3), "ecn": _flag(4, True), "noecn": _flag(4, False)}

#: qdisc kind -> its TCA_OPTIONS from the parameters
QDISCS: dict[str, Callable[[dict], bytes]] = {
    "tbf": _tbf,
    "sfq": _sfq,
    "fq_codel": lambda p: b"".join({**_CODEL, "flows": _u32(5), "quantum": _u32(6)}[k](v) for k, v in p.items()),
    "codel": lambda p: b"".join(_CODEL[k](v) for k, v in p.items()),
    "fq": lambda p: b"".join({"limit": _u32(1), "flow_limit": _u32(2), "quantum": _u32(3),
                              "maxrate": lambda v: nl.u32(7, v // 8)}[k](v) for k, v in p.items()),
    "pfifo": lambda p: struct.pack("=I", p.get("limit", 1000)),
    "bfifo": lambda p: struct.pack("=I", p.get("limit", 1000 * 1514)),
    "pfifo_fast": lambda p: b"",
}


def qdisc_matches(kind: str, params: dict, observed) -> bool:
    """Whether the kernel's root qdisc is the wanted one (tbf compared by rate, limit and burst)."""
    if observed is None or observed.kind != kind:
        return False
    if kind == "tbf":
        found = nl.attrs(observed.options)
        if 1 not in found:
            return False
        parms = bytes(found[1])
        rate = struct.unpack_from("=I", parms, 8)[0]
        if 4 in found:
            rate = nl.get_u64(found[4])
        limit, buffer = struct.unpack_from("=II", parms, 24)
        want = nl.attrs(_tbf(params))
        want_limit = struct.unpack_from("=I", bytes(want[1]), 24)[0]
        burst = (buffer << 6) * rate // 1_000_000_000      # PSCHED ticks are 64 ns
        return rate == params["rate"] // 8 and limit == want_limit and abs(burst - params["burst"]) <= \
            max(2, params["burst"] // 100)
    want = QDISCS[kind](params)
    if not want:
        return True
    if kind in ("sfq", "pfifo", "bfifo"):
        return observed.options[:len(want)] == want if kind != "sfq" else True
    have = nl.attrs(observed.options)
    return all(bytes(have.get(n, b"")) == bytes(v) for n, v in nl.attrs(want).items())


def qdisc_text(qdisc) -> str:
    from vnetc.compiler.schema import QDISCS as TYPES
    words = [qdisc.kind]
    for name, value in qdisc.params:
        kind = TYPES[qdisc.kind][name]
        words.append(name if kind is None else f"{name} {kind.render(value)}")
    return " ".join(words)


def _root_of(state, index: int):
    return next((q for q in state.qdiscs.get(index, []) if q.parent == nl.TC_H_ROOT and q.handle), None)


# --- planning ---------------------------------------------------------------------

def plan_tc(planner, device, link, step: Step) -> None:
    """The IFB's root qdisc, and the redirect chain of every device redirected into an IFB."""
    kns, name = planner.k(device.netns), device.name
    state = planner.states[device.netns]
    qdisc = device.get("qdisc") if device.kind == "ifb" else None
    if qdisc is not None and (planner.o.residual is None or planner.in_residual(device, "qdisc")
                              or planner.in_residual(device, "device")):
        params = dict(qdisc.params)
        old = _root_of(state, link.index) if link is not None else None
        if not qdisc_matches(qdisc.kind, params, old):
            step.details.append(f"root qdisc {old.kind if old else '(default)'} -> {qdisc_text(qdisc)}")

            def build(ctx: Context) -> tuple[int, int, bytes]:
                body = tcmsg(ctx.index(kns, name), ROOT_HANDLE, nl.TC_H_ROOT) + nl.string(nl.TCA_KIND, qdisc.kind)
                options = QDISCS[qdisc.kind](params)
                if options or qdisc.kind != "pfifo_fast":
                    body += nl.nla(nl.TCA_OPTIONS, options) if qdisc.kind in ("sfq", "pfifo", "bfifo") else \
                        nl.nested(nl.TCA_OPTIONS, options)
                return nl.RTM_NEWQDISC, nl.NLM_F_CREATE | nl.NLM_F_REPLACE, body

            undo = None
            if link is not None:
                if old is None:
                    undo = Op(kns, f"remove root qdisc of {name}", phase("tc"),
                              request=lambda ctx, i=link.index: (nl.RTM_DELQDISC, 0, tcmsg(i, 0, nl.TC_H_ROOT)))
                else:
                    undo = Op(kns, f"restore root qdisc of {name}", phase("tc"),
                              request=lambda ctx, i=link.index, o=old: (
                                  nl.RTM_NEWQDISC, nl.NLM_F_CREATE | nl.NLM_F_REPLACE,
                                  tcmsg(i, o.handle, nl.TC_H_ROOT) + nl.string(nl.TCA_KIND, o.kind)
                                  + nl.nla(nl.TCA_OPTIONS, o.options)))
            step.ops.append(Op(kns, f"set root qdisc {qdisc.kind} on {name}", phase("tc"), request=build, undo=undo))
    ifb = next((d for d in planner.host.devices if d.kind == "ifb" and device.ref in (d.get("redirect-ingress") or ())),
               None)
    if ifb is not None:
        _plan_redirect(planner, device, link, ifb, step)


def _filters_of(state, index: int) -> list:
    return state.filters.get(index, [])


def redirect_target(options: bytes) -> tuple[int, bytes | None] | None:
    """(ifindex, cookie) of a u32 filter's mirred egress redirect, if it has one."""
    acts = nl.attrs(options).get(TCA_U32_ACT)
    if acts is None:
        return None
    for _, act in nl.attr_list(acts):
        parts = nl.attrs(act)
        if nl.get_str(parts.get(TCA_ACT_KIND, memoryview(b""))) != "mirred" or TCA_ACT_OPTIONS not in parts:
            continue
        parms = nl.attrs(parts[TCA_ACT_OPTIONS]).get(TCA_MIRRED_PARMS)
        if parms is None:
            continue
        fields = _MIRRED.unpack_from(parms)
        if fields[5] == TCA_EGRESS_REDIR:
            return fields[6], bytes(parts[TCA_ACT_COOKIE]) if TCA_ACT_COOKIE in parts else None
    return None


def _plan_redirect(planner, device, link, ifb, step: Step) -> None:
    kns, name = planner.k(device.netns), device.name
    state = planner.states[device.netns]
    ifb_link = planner.link_of(ifb.ref)
    has_ingress = link is not None and any(q.kind in ("ingress", "clsact") for q in state.qdiscs.get(link.index, []))
    if link is not None and ifb_link is not None:
        for f in _filters_of(state, link.index):
            target = redirect_target(f.options) if f.kind == "u32" else None
            if target is not None and target[0] == ifb_link.index:
                return                             # the chain is there
    cookie = mark.cookie(planner.o.owner)
    if not has_ingress:
        step.details.append("+ ingress qdisc")
        step.ops.append(Op(kns, f"add ingress qdisc to {name}", phase("tc"),
                           request=lambda ctx: _add_ingress(ctx.index(kns, name)),
                           undo=Op(kns, f"remove ingress qdisc of {name}", phase("tc"),
                                   request=lambda ctx: (nl.RTM_DELQDISC, 0,
                                                        tcmsg(ctx.index(kns, name), INGRESS_HANDLE,
                                                              nl.TC_H_INGRESS)))))
    step.details.append(f"+ filter: redirect ingress to {ifb.name}")

    step.ops.append(Op(kns, f"redirect ingress of {name} to {ifb.name}", phase("tc"),
                       request=lambda ctx: _redirect(ctx.index(kns, name), ctx.index(kns, ifb.name), cookie),
                       undo=_delete_filter_op(kns, name, None)))


def _redirect(index: int, ifb_index: int, cookie: bytes) -> tuple[int, int, bytes]:
    """The request adding vnetc's filter: ingress of device INDEX redirected to IFB_INDEX."""
    selector = struct.pack("=BBBxHHhhI", TC_U32_TERMINAL, 0, 1, 0, 0, 0, 0, 0) + struct.pack("=IIii", 0, 0, 0, 0)
    mirred = _MIRRED.pack(0, 0, TC_ACT_STOLEN, 0, 0, TCA_EGRESS_REDIR, ifb_index)
    action = nl.nested(1, nl.string(TCA_ACT_KIND, "mirred")
                       + nl.nested(TCA_ACT_OPTIONS, nl.nla(TCA_MIRRED_PARMS, mirred))
                       + nl.nla(TCA_ACT_COOKIE, cookie))
    options = nl.nla(TCA_U32_SEL, selector) + nl.nested(TCA_U32_ACT, action)
    body = tcmsg(index, 0, INGRESS_PARENT, PRIO << 16 | _htons(ETH_P_ALL))
    return nl.RTM_NEWTFILTER, nl.CREATE, body + nl.string(nl.TCA_KIND, "u32") + nl.nested(nl.TCA_OPTIONS, options)


def _add_ingress(index: int) -> tuple[int, int, bytes]:
    return (nl.RTM_NEWQDISC, nl.CREATE, tcmsg(index, INGRESS_HANDLE, nl.TC_H_INGRESS) + nl.string(nl.TCA_KIND, "ingress"))


def _htons(value: int) -> int:
    return struct.unpack("=H", struct.pack("!H", value))[0]


def _delete_filter_op(kns, name: str, index: int | None) -> Op:
    def build(ctx: Context) -> tuple[int, int, bytes]:
        i = index if index is not None else ctx.index(kns, name)
        return (nl.RTM_DELTFILTER, 0, tcmsg(i, 0, INGRESS_PARENT, PRIO << 16 | _htons(ETH_P_ALL))
                + nl.string(nl.TCA_KIND, "u32"))
    return Op(kns, f"remove vnetc's redirect filter of {name}", phase("tc"), request=build)


def plan_stale_filters(planner, destroying: bool = False) -> None:
    """vnetc's redirect filters that the site no longer asks for (or that point at a recreated IFB)."""
    cookie = mark.cookie(planner.o.owner)
    wanted = {}
    for d in () if destroying else planner.host.devices:
        if d.kind == "ifb" and d.ref not in planner.fresh:
            for source in d.get("redirect-ingress") or ():
                wanted[source] = d
    for ns, state in planner.states.items():
        for index, filters in state.filters.items():
            link = state.by_index.get(index)
            if link is not None and planner.owned(link) and destroying:
                continue    # goes with the device
            for f in filters:
                target = redirect_target(f.options) if f.kind == "u32" else None
                if target is None or target[1] != cookie or link is None:
                    continue
                from vnetc.compiler.ir import DeviceRef
                ifb = wanted.get(DeviceRef(link.name, ns))
                ifb_link = planner.link_of(ifb.ref) if ifb is not None else None
                if ifb_link is not None and ifb_link.index == target[0]:
                    continue
                others = [g for g in filters if g.kind != "u32" or (
                    TCA_U32_SEL in nl.attrs(g.options)
                    and (redirect_target(g.options) or (0, None))[1] != cookie)]
                kns = planner.k(ns)
                if destroying and not others and planner.o.residual is None:
                    # the ingress qdisc holds nothing but vnetc's filter: it goes too
                    def restore(ctx: Context, i=index, t=target[0]) -> None:
                        ctx.socket(kns).request(*_add_ingress(i))
                        ctx.socket(kns).request(*_redirect(i, t, cookie))
                    op = Op(kns, f"remove the ingress qdisc of {link.name}", phase("tc"),
                            request=lambda ctx, i=index: (nl.RTM_DELQDISC, 0, tcmsg(i, INGRESS_HANDLE,
                                                                                    nl.TC_H_INGRESS)),
                            undo=Op(kns, f"add the ingress qdisc of {link.name} and vnetc's filter again",
                                    phase("tc"), run=restore))
                    detail = "- ingress qdisc and vnetc's redirect filter"
                else:
                    op = _delete_filter_op(kns, link.name, index)
                    op.undo = Op(kns, f"add vnetc's redirect filter of {link.name} again", phase("tc"),
                                 request=lambda ctx, i=index, t=target[0]: _redirect(i, t, cookie))
                    detail = "- filter: vnetc's ingress redirect, no longer in the site"
                planner.plan.steps.append(Step("change", f"device {ns + '/' if ns else ''}{link.name}", [detail],
                                               [op]))
