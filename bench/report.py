#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""make bench, on the host: turn the VM's CSV into the results.

Reads the rows tdp_fd_bench and kvm_perf.sh printed in the VM and writes,
to the results directory: bench.csv (all rows), bench.md (the tables the
README shows, with each ratio against its target) and bench.png (the
plots).  Every figure is a ratio of two measurements from the same run, or
a count.

Usage: report.py RESULTS_DIR MACHINE_DESCRIPTION CSV...
"""

import csv
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def load(paths):
    rows = []
    for p in paths:
        if not Path(p).exists():
            continue
        with open(p) as f:
            for r in csv.reader(f):
                # The selftests library prints a line of its own first.
                if len(r) != 5 or r[0] == "item":
                    continue
                item, case, x, value, unit = r
                rows.append((item, case, int(x), float(value), unit))
    return rows


def slope(xs, ys):
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


def median_ci(vals):
    """The median of @vals and its 95% confidence interval's half-width,
    relative to it (distribution-free: order statistics n/2 -+ 0.98 sqrt(n)),
    as tdp_fd_bench.c computes it."""
    v = sorted(vals)
    n = len(v)
    med = statistics.median(v)
    k = 0
    while k * k < 0.9604 * n:
        k += 1
    lo, hi = max(0, n // 2 - k), min(n - 1, (n - 1) // 2 + k)
    return med, ((v[hi] - v[lo]) / 2 / med if med else 0.0)


def ratio_ci(by, item, num, den):
    """"±x%": the uncertainty of the ratio of two figures, the sum of their
    CIs' half-widths, or "" if they were not measured."""
    a, b = by[item + "-ci"].get(num), by[item + "-ci"].get(den)
    return "" if a is None or b is None else f"±{a + b:.2f}%"


def verdict(ratio, target):
    return "met" if ratio <= target else "**missed**"


def by_item(rows):
    """The rows' values by item, then by (case, x)."""
    by = defaultdict(dict)
    for item, case, x, value, unit in rows:
        by[item][(case, x)] = value
    return by


# Tables that are not timings: no "[instruction time]" in their heading.
UNTIMED = ("### 3. ",)

# Phases of KVM's perf tests (the rows in seconds; tdp_fd_bench's are in
# µs and always judged) shorter than this, the unpatched run's median, are
# printed but not judged: under icount their spread between rounds exceeds
# what they could show (README, Benchmark).  bench/kvm_perf.sh's extra
# rounds wait only for the judged ones, by the same rule.
JUDGED_MIN_S = 0.01


def natural(text):
    """Sort key that orders "importers=4" before "importers=16"."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def tables(rows):
    out = []
    by = by_item(rows)

    inval = by["inval"]
    if inval:
        counts = [0, 1, 4, 16, 64]
        out += ["### 1. Invalidation: madvise(MADV_DONTNEED) of N mapped 4K pages (median, µs)", "",
                "| N pages | no export | 0 importers | 1 | 4 | 16 | 64 "
                "| export, 0 importers / no export (target ≤ 1.01) "
                "| 1 imp. / 0 imp. (target ≤ 1.01) | slope per further importer "
                "| reports per zap (most) |",
                "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for n in sorted({x for _, x in inval}):
            ne = inval.get(("no-export", n))
            v = [inval.get((f"importers={c}", n)) for c in counts]
            if ne is None or None in v:
                continue
            r0 = v[0] / ne
            r1 = v[1] / v[0]
            s = slope(counts[1:], v[1:])
            out.append(f"| {n} | {ne:.2f} | " + " | ".join(f"{t:.2f}" for t in v) +
                       f" | {r0:.4f} {ratio_ci(by, 'inval', ('importers=0', n), ('no-export', n))} "
                       f"({verdict(r0, 1.01)}) "
                       f"| {r1:.4f} {ratio_ci(by, 'inval', ('importers=1', n), ('importers=0', n))} "
                       f"({verdict(r1, 1.01)}) "
                       f"| {s:+.3f} µs ({s / v[0] * 100:+.3f}%) "
                       f"| {by['inval-reports'].get(('importers', n), float('nan')):.0f} |")
        out.append("")

    fault = by["fault"]
    if fault:
        out += ["### 2. Fault throughput: time per page, importer fault vs the vCPU path (KVM_PRE_FAULT_MEMORY)", "",
                "| page size | pages | vCPU path (µs) | importer (µs) | importer / vCPU (target ≤ 1.2) |",
                "|---|---:|---:|---:|---:|"]
        for size in ("4K", "2M"):
            for (case, n), v in sorted(fault.items()):
                if case != f"vcpu-{size}":
                    continue
                i = fault.get((f"importer-{size}", n))
                if i is None:
                    continue
                r = i / v
                out.append(f"| {size} | {n} | {v:.1f} | {i:.1f} | {r:.2f} ({verdict(r, 1.2)}) |")
        out.append("")

    pt = by["ptmem"]
    if pt:
        out += ["### 3. Page-table memory of a fully mapped guest (4K pages)", "",
                "| guest | KVM's table | added by sharing (target 0) | added by a shadow table "
                "| shadow / KVM's | pinned by the shadow |",
                "|---:|---:|---:|---:|---:|---:|"]
        for mib in sorted({x for _, x in pt}):
            k = pt.get(("kvm-table", mib))
            sh = pt.get(("shared-added", mib))
            sd = pt.get(("shadow-added", mib))
            pin = pt.get(("shadow-pinned", mib))
            if None in (k, sh, sd, pin):
                continue
            out.append(f"| {mib} MiB | {k:.0f} KiB | {sh:.0f} KiB ({'met' if sh == 0 else '**missed**'}) "
                       f"| {sd:.0f} KiB | {sd / k:.2f} | {pin / 1024:.0f} MiB |")
        out.append("")

    dma = by["dma"]
    if dma:
        warm = dma.get(("shared-warm", 64))
        out += ["### 4. DMA translation: one 8-byte importer read (median ns per read, ioctl included)", "",
                "| case | pages | ns | / shared warm |", "|---|---:|---:|---:|"]
        names = {"shared-warm": "shared table, IOTLB warm", "shared-cold": "shared table, IOTLB cold (walk)",
                 "shadow-warm": "shadow table, IOTLB warm", "shadow-cold": "shadow table, IOTLB cold (walk)",
                 "shared-fault": "shared table, never mapped (I/O page fault)"}
        for (case, n), v in dma.items():
            out.append(f"| {names.get(case, case)} | {n} | {v:.0f} | {v / warm:.2f} |")
        out.append("")

    perf = defaultdict(lambda: defaultdict(list))
    for item, case, x, value, unit in rows:
        # Round 0 is kvm_perf.sh's warm-up.
        if item == "kvmperf" and x > 0:
            test_metric, variant = case.rsplit(":", 1)
            perf[test_metric][variant].append(value)
    if perf:
        out += ["### 5. Nothing exported: patched / unpatched KVM modules, KVM's perf selftests (s) and "
                "tdp_fd_bench's zaps and faults (µs), median of the rounds", "",
                "Each round runs both module sets in turn (order alternating); ± is the half-width of "
                "the 95% confidence interval of the median, in % of it; the ratio's is the sum of both.", "",
                "| test: metric | rounds | unpatched | ± | patched | ± | patched / unpatched (target ≤ 1.005) |",
                "|---|---:|---:|---:|---:|---:|---:|"]
        for tm in sorted(perf):
            b, p = perf[tm].get("base"), perf[tm].get("patched")
            if not b or not p:
                continue
            mb, cb = median_ci(b)
            mp, cp = median_ci(p)
            r = mp / mb if mb else float("nan")
            judged = tm.startswith("tdp_fd_bench:") or mb >= JUDGED_MIN_S
            v = verdict(r, 1.005) if judged else "not judged: too short"
            out.append(f"| {tm} | {len(p)} | {mb:.6g} | {cb * 100:.2f}% | {mp:.6g} | {cp * 100:.2f}% "
                       f"| {r:.4f} ±{(cb + cp) * 100:.2f}% ({v}) |")
        out.append("")

    ci = by["inval-ci"] | {("fault " + c, x): v for (c, x), v in by["fault-ci"].items()} | \
        {("dma " + c, x): v for (c, x), v in by["dma-ci"].items()}
    if ci:
        out += ["### 6. How well each timed figure is known: repetitions, min / median / max, and the "
                "half-width of the median's 95% confidence interval", "",
                "One warm-up repetition is thrown away; repetitions go on until the interval is within "
                "±0.5% (so that two runs' medians differ by less than 1%) or a cap is reached. "
                "A figure over ±0.5% is marked.", "",
                "| figure | x | reps | min | median | max | (max − min) / median | CI ± |",
                "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for item in ("inval", "fault", "dma"):
            for (case, x), med in sorted(by[item].items(), key=lambda kv: (kv[0][1], natural(kv[0][0]))):
                n = by[item + "-n"].get((case, x))
                lo, hi = by[item + "-min"].get((case, x)), by[item + "-max"].get((case, x))
                c = by[item + "-ci"].get((case, x))
                if None in (n, lo, hi, c) or not med:
                    continue
                mark = "" if c <= 0.5 else " **over**"
                out.append(f"| {item} {case} | {x} | {n:.0f} | {lo:.3f} | {med:.3f} | {hi:.3f} "
                           f"| {(hi - lo) / med * 100:.2f}% | {c:.2f}%{mark} |")
        out.append("")
    return "\n".join(out)


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by = by_item(rows)
    fig, ax = plt.subplots(2, 2, figsize=(12, 9))

    a = ax[0][0]
    counts = [0, 1, 4, 16, 64]
    for n in sorted({x for _, x in by["inval"]}):
        v = [by["inval"].get((f"importers={c}", n)) for c in counts]
        if None in v:
            continue
        a.plot(counts, [t / v[0] for t in v], marker="o", label=f"{n} pages")
    a.axhline(1.01, color="grey", linestyle=":", label="target for 1 importer")
    a.set_xscale("symlog", linthresh=1)
    a.set_xlim(-0.3, 80)
    a.set_xlabel("importers")
    a.set_ylabel("zap time / zap time with 0 importers")
    a.set_title("1. invalidation fan-out")
    a.legend()

    a = ax[0][1]
    labels, vals = [], []
    for size in ("4K", "2M"):
        for (case, n), v in by["fault"].items():
            if case == f"vcpu-{size}" and (f"importer-{size}", n) in by["fault"]:
                labels.append(size)
                vals.append(by["fault"][(f"importer-{size}", n)] / v)
    a.bar(labels, vals)
    a.axhline(1.2, color="grey", linestyle=":", label="target")
    a.set_ylabel("importer fault / vCPU fault, per page")
    a.set_title("2. fault throughput")
    a.legend()

    a = ax[1][0]
    sizes = sorted({x for _, x in by["ptmem"]})
    for case, label, style in (("kvm-table", "KVM's table", "-"),
                               ("shared-added", "added by sharing", "-"),
                               ("shadow-added", "added by a shadow table", "--")):
        pts = [(s, by["ptmem"][(case, s)]) for s in sizes if (case, s) in by["ptmem"]]
        a.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", linestyle=style,
               label=label)
    a.set_xlabel("guest MiB (all mapped, 4K)")
    a.set_ylabel("page-table KiB")
    a.set_title("3. page-table memory")
    a.legend()

    a = ax[1][1]
    warm = by["dma"].get(("shared-warm", 64))
    cases = [c for c in ("shared-warm", "shared-cold", "shadow-warm", "shadow-cold", "shared-fault")
             if any(k[0] == c for k in by["dma"])]
    a.bar(cases, [next(v for k, v in by["dma"].items() if k[0] == c) / warm for c in cases])
    a.set_ylabel("time per read / shared, IOTLB warm")
    a.set_title("4. DMA translation")
    a.tick_params(axis="x", labelrotation=20)

    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main():
    res = Path(sys.argv[1])
    machine = sys.argv[2]
    rows = load(sys.argv[3:])
    if not rows:
        sys.exit("report: no rows")
    res.mkdir(parents=True, exist_ok=True)
    with open(res / "bench.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["item", "case", "x", "value", "unit"])
        w.writerows(rows)
    md = tables(rows)
    if machine.startswith("instruction time"):
        # Every heading says which clock its figures are in.
        md = "\n".join(line + " [instruction time]"
                       if line.startswith("### ") and not line.startswith(UNTIMED) else line
                       for line in md.split("\n"))
    md = f"Measured on: {machine}\n\n" + md
    (res / "bench.md").write_text(md)
    plot(rows, res / "bench.png")
    print(md)


if __name__ == "__main__":
    main()
