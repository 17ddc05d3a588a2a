#!/usr/bin/env python3
"""Tabulate and plot the blackout benchmark.

Usage: report.py blackout.csv OUTDIR

Prints a table of median blackout and spread per device mode, guest memory
size and method, the same without the exec of the new image (the part the
kernel and libvdpalu own; both update flows exec the same binary), the
median time per step of each method, and how the figures compare with the
project's targets. Writes OUTDIR/summary.csv and
the plot OUTDIR/blackout.{png,svg} (gnuplot, log scales).
"""
import csv
import os
import statistics
import subprocess
import sys
from collections import defaultdict

METHODS = ["baseline", "update-reset", "update-resume"]


def load(path):
    runs = defaultdict(list)
    no_exec = defaultdict(list)
    steps = defaultdict(lambda: defaultdict(list))
    with open(path) as f:
        for row in csv.DictReader(f):
            key = (row["mode"], int(row["mem_mib"]), row["method"])
            runs[key].append(float(row["blackout_us"]))
            no_exec[key].append(float(row["blackout_us"]) - float(row["exec_us"]))
            for item in filter(None, row["steps"].split(";")):
                name, us = item.split("=")
                steps[key][name].append(float(us))
    return runs, no_exec, steps


def fmt_us(us):
    if us >= 1e6:
        return f"{us / 1e6:.2f} s"
    if us >= 1e3:
        return f"{us / 1e3:.2f} ms"
    return f"{us:.0f} us"


def main():
    src, outdir = sys.argv[1], sys.argv[2]
    runs, no_exec, steps = load(src)
    if not runs:
        sys.exit("report: no measurements in " + src)
    modes = sorted({k[0] for k in runs})
    sizes = sorted({k[1] for k in runs})
    med = {k: statistics.median(v) for k, v in runs.items()}
    med_ne = {k: statistics.median(v) for k, v in no_exec.items()}

    print(f"\nDevice blackout, median of n runs [min .. max] ({src})\n")
    table(modes, sizes, runs, med)
    print("\nThe same without the exec of the new image\n")
    table(modes, sizes, no_exec, med_ne)
    with open(os.path.join(outdir, "summary.csv"), "w") as f:
        f.write("mode,mem_mib,method,runs,median_us,min_us,max_us,median_no_exec_us\n")
        for key in sorted(runs):
            v = runs[key]
            f.write(f"{key[0]},{key[1]},{key[2]},{len(v)},{med[key]:.1f},"
                    f"{min(v):.1f},{max(v):.1f},{med_ne[key]:.1f}\n")

    print("\nMedian per step (us), largest size:")
    for mode in modes:
        size = max(s for (md, s, _) in runs if md == mode)
        for m in METHODS:
            st = steps.get((mode, size, m))
            if st:
                parts = ", ".join(f"{n} {statistics.median(v):.0f}" for n, v in st.items())
                print(f"  {mode} {size} MiB {m}: {parts}")

    print("\nTargets:")
    verdicts = []

    def target(ok, text):
        verdicts.append(ok)
        print(f"  [{'met' if ok else 'MISSED'}] {text}")

    # "<mode>-plain-exec" rows are for comparison, not held to the targets.
    target_modes = [md for md in modes if not md.endswith("-plain-exec")]
    for mode in target_modes:
        have = sorted(s for (md, s, m) in runs if md == mode and m == "update-resume")
        if len(have) < 2:
            continue
        lo, hi = have[0], have[-1]
        for m in METHODS[1:]:
            if (mode, lo, m) in med and (mode, hi, m) in med:
                r = med[(mode, hi, m)] / med[(mode, lo, m)]
                target(r <= 1.2, f"{mode} {m}: blackout at {hi} MiB is {r:.2f}x that at {lo} MiB (want <= 1.2x)")
                r = med_ne[(mode, hi, m)] / med_ne[(mode, lo, m)]
                print(f"         without exec: {r:.2f}x")
    for m in METHODS[1:]:
        key = ("pa", 4096, m)
        if key in med and ("pa", 4096, "baseline") in med:
            r = med[("pa", 4096, "baseline")] / med[key]
            target(r >= 100, f"pa 4096 MiB: baseline / {m} = {r:.0f}x (want >= 100x)")
    pa_sizes = sorted(s for (md, s, m) in med if md == "pa" and m == "baseline")
    if pa_sizes and pa_sizes[-1] != 4096:
        top = pa_sizes[-1]
        ratios = ", ".join(f"{m} {med[('pa', top, 'baseline')] / med[('pa', top, m)]:.0f}x"
                           for m in METHODS[1:] if ("pa", top, m) in med)
        print(f"         pa {top} MiB: baseline / {ratios}")
    for mode in target_modes:
        for size in sizes:
            a, b = (mode, size, "update-resume"), (mode, size, "update-reset")
            # Judged without the exec: both flows exec the same binary, and
            # its noise is larger than the steps the resume flow leaves out.
            if a in med and b in med:
                target(med_ne[a] < med_ne[b],
                       f"{mode} {size} MiB: resume < reset without exec: {fmt_us(med_ne[a])} < {fmt_us(med_ne[b])}"
                       f" (with exec: {fmt_us(med[a])} {'<' if med[a] < med[b] else '>='} {fmt_us(med[b])})")

    plot(outdir, modes, sizes, med)
    print(f"\n{sum(verdicts)} of {len(verdicts)} targets met")


def table(modes, sizes, runs, med):
    print(f"{'mode':4} {'MiB':>6}  " + "".join(f"{m:>38}" for m in METHODS))
    for mode in modes:
        for size in sizes:
            cells = []
            for m in METHODS:
                v = runs.get((mode, size, m))
                if not v:
                    cells.append(f"{'-':>38}")
                    continue
                cell = f"{fmt_us(med[(mode, size, m)])} [{fmt_us(min(v))} .. {fmt_us(max(v))}] n={len(v)}"
                cells.append(f"{cell:>38}")
            print(f"{mode:4} {size:>6}  " + "".join(cells))


def plot(outdir, modes, sizes, med):
    data = os.path.join(outdir, "plot.dat")
    series = []
    with open(data, "w") as f:
        for mode in modes:
            plain = mode.endswith("-plain-exec")
            for m in METHODS:
                pts = [(s, med[(mode, s, m)]) for s in sizes if (mode, s, m) in med]
                # The plain-exec chain's baseline repeats the other one.
                if not pts or (plain and m == "baseline"):
                    continue
                f.write(f"# {mode} {m}\n")
                for s, us in pts:
                    f.write(f"{s} {us / 1000:.4f}\n")
                f.write("\n\n")
                name = mode.split("-")[0].upper()
                series.append(f"{name} device, {m}" + (", plain exec" if plain else ""))
    plots = ", ".join(
        f"'{data}' index {i} with linespoints lw 2 pt {7 if 'update' in t else 5} title '{t}'"
        for i, t in enumerate(series))
    for term, ext in (("pngcairo size 900,600", "png"), ("svg size 900,600", "svg")):
        script = f"""
set terminal {term}
set output '{os.path.join(outdir, "blackout." + ext)}'
set title 'vhost-vdpa device blackout vs guest memory (vdpa\\_sim blk, TCG VM)'
set xlabel 'guest memory (MiB)'
set ylabel 'blackout (ms, median)'
set logscale xy
set grid
set key top left
plot {plots}
"""
        subprocess.run(["gnuplot"], input=script, text=True, check=True)


if __name__ == "__main__":
    main()
