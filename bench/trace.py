#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""make bench-trace: where the instructions of an operation go, one by one.

make bench measures in instruction time (QEMU icount): a figure is the
number of instructions the guest ran.  This counts the same instructions
directly, for the operations whose ratios make bench judges, and names the
function each one belongs to, on unpatched and patched KVM in one VM:

  zap1, zap8         madvise(MADV_DONTNEED) of 1 or 8 mapped 4K pages
  zap1-e0, zap8-e0   the same with the TDP exported, no importer (patched)
  zap1-e1, zap8-e1   ... and one C-sample importer (patched)
  fault4k            KVM_PRE_FAULT_MEMORY of one 4K page
  clear64            KVM_CLEAR_DIRTY_LOG of 64 dirty pages

The guest (selftests/vm-run.sh trace, bench/tdp_fd_bench.c trace) names,
in RESULTS/trace/current, the case and the function it enters by, sets
the case up, says so with the case's ready file and repeats the
operation.  This script, speaking GDB's remote protocol to
QEMU's gdbstub, sets a hardware breakpoint there, single-steps one call
from entry to return (QEMU steps with interrupts and timers masked, so only
the call's own instructions run), repeats that REPS times, then lets the
guest go on to the next case.  Symbols come from the guest's
/proc/kallsyms, read after the case's modules were loaded.

Usage: trace.py PORT RESULTS OUT_MD [REPS]   (while scripts/vm.sh trace runs;
       REPS defaults to 1: a step costs QEMU some 7 ms)
       trace.py report RESULTS OUT_MD   (the report of a finished run)
"""
import bisect
import collections
import json
import os
import socket
import subprocess
import sys
import time


class Rsp:
    """A minimal client of GDB's remote serial protocol (no-ack mode)."""

    def __init__(self, port):
        for _ in range(600):
            try:
                self.s = socket.create_connection(("127.0.0.1", port), 5)
                # One small packet per step: without this, Nagle's
                # algorithm and delayed ACKs cost tens of ms each.
                self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                break
            except OSError:
                time.sleep(1)
        else:
            raise RuntimeError("no gdbstub on port %d" % port)
        self.buf = b""
        self.s.sendall(b"+")
        self.ack = True
        if self.cmd("QStartNoAckMode") == "OK":
            self.ack = False

    def send(self, data):
        raw = data.encode()
        self.s.sendall(b"$%s#%02x" % (raw, sum(raw) & 0xFF))

    def recv(self, timeout=None):
        self.s.settimeout(timeout)
        while True:
            start = self.buf.find(b"$")
            end = self.buf.find(b"#", start)
            if start >= 0 and end >= 0 and len(self.buf) >= end + 3:
                pkt = self.buf[start + 1:end].decode()
                self.buf = self.buf[end + 3:]
                if self.ack:
                    self.s.sendall(b"+")
                return pkt
            chunk = self.s.recv(65536)
            if not chunk:
                raise RuntimeError("gdbstub closed the connection")
            self.buf += chunk

    def cmd(self, data, timeout=30):
        self.send(data)
        return self.recv(timeout)

    def reg(self, n):
        return int.from_bytes(bytes.fromhex(self.cmd("p%x" % n)), "little")

    def u64(self, addr):
        return int.from_bytes(bytes.fromhex(self.cmd("m%x,8" % addr)), "little")

    def close(self):
        try:
            self.send("D")
            self.recv(5)
        finally:
            self.s.close()


RIP, RSP = 16, 7


def trace_one(rsp, addr, limit):
    """Single-step one call of the function at @addr: its PCs, in order."""
    if rsp.cmd("Z1,%x,1" % addr) != "OK":
        raise RuntimeError("cannot set a hardware breakpoint at %x" % addr)
    rsp.send("c")
    try:
        stop = rsp.recv(300)
    except socket.timeout:
        # Stop the guest again (^C), or it stays paused once we detach:
        # QEMU drops a packet that arrives while the guest runs.
        rsp.s.sendall(b"\x03")
        rsp.recv(30)
        rsp.cmd("z1,%x,1" % addr)
        raise RuntimeError("the breakpoint at %x was not hit in 300 s" % addr)
    rsp.cmd("z1,%x,1" % addr)
    if not stop.startswith(("T", "S")):
        raise RuntimeError("unexpected stop %r" % stop)
    pc = rsp.reg(RIP)
    if pc != addr:
        raise RuntimeError("stopped at %x, not %x" % (pc, addr))
    sp0 = rsp.reg(RSP)
    ret = rsp.u64(sp0)
    pcs = []
    while True:
        if pc == ret and rsp.reg(RSP) > sp0:
            return pcs
        pcs.append(pc)
        if len(pcs) > limit:
            raise RuntimeError("no return after %d instructions" % limit)
        rsp.cmd("s")
        pc = rsp.reg(RIP)


class Symbols:
    def __init__(self, path):
        syms = []
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) < 3 or p[1] not in "tTwW":
                    continue
                name = p[2] + (" " + p[3] if len(p) > 3 else "")
                syms.append((int(p[0], 16), name, p[2]))
        syms.sort()
        self.addrs = [a for a, _, _ in syms]
        self.syms = syms

    def addr(self, name):
        hits = [a for a, _, n in self.syms if n == name]
        if not hits:
            raise RuntimeError("no symbol %s" % name)
        return hits[0]

    def name(self, pc):
        i = bisect.bisect_right(self.addrs, pc) - 1
        return self.syms[i][1] if i >= 0 else "?"


def gone(res, tdir, cur):
    """Whether the guest moved past case @cur, or the VM has ended."""
    try:
        with open(os.path.join(tdir, "current")) as f:
            if f.read().split() != cur:
                return True
    except OSError:
        pass
    return os.path.exists(os.path.join(res, "vm-exit-code"))


def drive(port, res, reps):
    """Trace each case the guest offers until it says "end"."""
    tdir = os.path.join(res, "trace")
    seen = None
    deadline = time.time() + 7200
    while time.time() < deadline:
        try:
            with open(os.path.join(tdir, "current")) as f:
                cur = f.read().split()
        except OSError:
            cur = None
        if not cur or cur == seen:
            if os.path.exists(os.path.join(res, "vm-exit-code")):
                raise RuntimeError("the VM ended before the last case")
            time.sleep(0.5)
            continue
        seen = cur
        if cur[0] == "end":
            return
        variant, case, func = cur
        out = {"variant": variant, "case": case, "function": func, "reps": []}
        # Set-up calls the traced function too (madvise): wait until done.
        ready = os.path.join(tdir, "%s-%s.ready" % (variant, case))
        while not os.path.exists(ready) and not gone(res, tdir, cur):
            time.sleep(0.2)
        try:
            if not os.path.exists(ready):
                raise RuntimeError("the case ended before it was set up")
            syms = Symbols(os.path.join(tdir, "kallsyms-" + variant))
            rsp = Rsp(port)
            try:
                for _ in range(reps):
                    pcs = trace_one(rsp, syms.addr(func), 5_000_000)
                    out["reps"].append(collections.Counter(
                        syms.name(pc) for pc in pcs))
            finally:
                rsp.close()
        except (RuntimeError, OSError) as e:
            out["error"] = str(e)
        print("# trace %s %s: %s" % (variant, case, out.get("error") or
              [sum(c.values()) for c in out["reps"]]), flush=True)
        with open(os.path.join(tdir, "%s-%s.json" % (variant, case)), "w") as f:
            json.dump(out, f)
        open(os.path.join(tdir, "%s-%s.done" % (variant, case)), "w").close()
    raise RuntimeError("the guest did not finish in time")


def failures(res):
    """Cases whose trace failed or is missing repetitions."""
    return ["%s %s: %s" % (v, c, d.get("error", "no repetition"))
            for (v, c), d in sorted(load(res).items())
            if d.get("error") or not d.get("reps")]


def load(res):
    cases = {}
    tdir = os.path.join(res, "trace")
    for fn in sorted(os.listdir(tdir)):
        if fn.endswith(".json"):
            with open(os.path.join(tdir, fn)) as f:
                d = json.load(f)
            cases[(d["variant"], d["case"])] = d
    return cases


def counts(d):
    """The repetition with the fewest instructions, and whether all agree."""
    reps = [collections.Counter(r) for r in d.get("reps", [])]
    if not reps:
        return None, False
    totals = [sum(r.values()) for r in reps]
    best = reps[totals.index(min(totals))]
    return best, len(set(totals)) == 1


def diff_table(a, b, top=25):
    rows = []
    for fn in set(a) | set(b):
        d = b.get(fn, 0) - a.get(fn, 0)
        if d:
            rows.append((-abs(d), fn, a.get(fn, 0), b.get(fn, 0), d))
    rows.sort()
    return rows[:top], len(rows)


def demangle(names):
    """Rust (v0) names readable, by LLVM's demangler, if it is installed."""
    names = sorted(names)
    for tool in ("llvm-cxxfilt-19", "llvm-cxxfilt"):
        try:
            out = subprocess.run([tool], input="\n".join(n.split(" ")[0] for n in names),
                                 capture_output=True, text=True, check=True).stdout.split("\n")
        except (OSError, subprocess.CalledProcessError):
            continue
        return {n: o + n[len(n.split(" ")[0]):] for n, o in zip(names, out)}
    return {n: n for n in names}


def report(res, out_md):
    cases = load(res)
    every = set()
    for d in cases.values():
        for r in d.get("reps", []):
            every |= set(r)
    pretty = demangle(every)
    lines = ["# Instructions per operation, function by function (make bench-trace)", "",
             "Each operation single-stepped from its entry function to its return through",
             "QEMU's gdbstub (interrupts and timers masked while stepping), on the",
             "production kernel with the unpatched (base) and the patched KVM modules",
             "loaded in turn in one VM.  A repetition's count is exact; the table gives",
             "the repetition with the fewest instructions and whether all repetitions",
             "ran the same number.  Ratios here are of the traced call alone; make",
             "bench's also count the system call's entry and the benchmark's loop.", "",
             "| case | variant | entry | instructions | repetitions | all equal |",
             "|---|---|---|---:|---:|---|"]
    for (v, c), d in sorted(cases.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        best, agree = counts(d)
        total = sum(best.values()) if best else d.get("error", "none")
        n = len(d.get("reps", []))
        lines.append("| %s | %s | %s | %s | %d | %s |" % (
            c, v, d["function"], total, n, "-" if n < 2 else "yes" if agree else "no"))
    pairs = []
    for (v, c) in sorted(cases):
        if v == "patched" and ("base", c) in cases:
            pairs.append((("base", c), ("patched", c), "the series, nothing exported"))
    for n in ("1", "8"):
        for a, b, what in (("zap%s" % n, "zap%s-e0" % n, "exporting, no importer"),
                           ("zap%s-e0" % n, "zap%s-e1" % n, "one importer")):
            if ("patched", a) in cases and ("patched", b) in cases:
                pairs.append((("patched", a), ("patched", b), what))
    for ka, kb, what in pairs:
        a, _ = counts(cases[ka])
        b, _ = counts(cases[kb])
        if a is None or b is None:
            continue
        ta, tb = sum(a.values()), sum(b.values())
        rows, n = diff_table(a, b)
        lines += ["", "## %s %s -> %s %s: %s" % (ka[0], ka[1], kb[0], kb[1], what), "",
                  "%d -> %d instructions: %+d (x%.4f).  Functions whose count changed"
                  " (%d; the largest %d):" % (ta, tb, tb - ta, tb / ta, n, len(rows)), "",
                  "| function | before | after | change |", "|---|---:|---:|---:|"]
        for _, fn, x, y, d in rows:
            lines.append("| %s | %d | %d | %+d |" % (pretty.get(fn, fn).replace("|", "/"),
                                                     x, y, d))
    with open(out_md, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "report":
        report(sys.argv[2], sys.argv[3])
        return
    port, res, out_md = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    reps = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    drive(port, res, reps)
    report(res, out_md)
    bad = failures(res)
    if bad:
        sys.exit("trace: failed: " + "; ".join(bad))


if __name__ == "__main__":
    main()
