"""A small, long-lived process that runs the commands the benchmarks time.

Why: Linux charges a child's ``ru_maxrss`` with the peak RSS of the process it
was forked from (exec keeps the larger of the old and the new high-water mark),
so a child forked by the benchmark process itself (which has imported and
compiled things) would report the benchmark's memory, not its own. This process
stays at a bare interpreter's size, so the figures it reports are the child's.

Protocol (one JSON object per line): stdin gets
``{"argv": [...], "cwd": str|null, "env": {...}|null, "out": path, "err": path}``,
stdout answers ``{"wall": s, "user": s, "sys": s, "maxrss_kib": int, "rc": int}``.
Wall time is taken here, from just before fork to the reap. Standard library only.
"""

import json
import os
import sys
import time


def _child(req):
    try:
        fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(fd, 0)
        out = os.open(req["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        err = os.open(req["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(out, 1)
        os.dup2(err, 2)
        if req.get("cwd"):
            os.chdir(req["cwd"])
        env = req.get("env") or os.environ
        os.execvpe(req["argv"][0], req["argv"], env)
    except BaseException as exc:  # noqa: BLE001 - report anything, then leave without cleanup
        try:
            os.write(2, f"bench spawner: cannot run {req.get('argv')}: {exc}\n".encode())
        finally:
            os._exit(127)


def main():
    for line in sys.stdin:
        req = json.loads(line)
        start = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            _child(req)
        _, status, usage = os.wait4(pid, 0)
        wall = time.perf_counter() - start
        sys.stdout.write(json.dumps({"wall": wall, "user": usage.ru_utime, "sys": usage.ru_stime,
                                     "maxrss_kib": usage.ru_maxrss,
                                     "rc": os.waitstatus_to_exitcode(status)}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
