#!/usr/bin/env python3
"""Markdown tables for docs/performance.md from the files bench/reproduce.sh
writes (standard library only):

    python3 bench/make_tables.py OUT_DIR > tables.md

Every table says which file it comes from; nothing is typed by hand.
"""

import glob
import json
import os
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def ms(us):
    if us is None:
        return "-"
    ms_ = us / 1e3
    return "%.3f" % ms_ if ms_ < 1 else ("%.2f" % ms_ if ms_ < 100 else "%.0f" % ms_)


def si(x):
    if x is None:
        return "-"
    for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= div:
            return "%.3g%s" % (x / div, suf)
    return "%.3g" % x


def machine_line(doc, name):
    m = doc["machine"]
    return ("*%s: %s, %d logical CPUs, L2 %d KiB, L3 %d MiB; %s; %s; %s; load average %.2f at start, %.2f at end.*"
            % (name, m["cpu"], m["logical_cpus"], m["l2_bytes"] // 1024, m["l3_bytes"] // (1 << 20), m["os"],
               m["compiler"], m["date_utc"], m.get("loadavg_1m_at_start", -1), m.get("loadavg_1m_at_end", -1)))


def sweep_tables(doc, name, series_dims):
    """One table per metric: rows k, columns the combinations of series_dims."""
    pts = doc["points"]
    ks = sorted(set(p["k"] for p in pts))
    series = []
    for p in pts:
        key = tuple(str(p[d]) for d in series_dims)
        if key not in series:
            series.append(key)
    by = {(tuple(str(p[d]) for d in series_dims), p["k"]): p for p in pts}
    out = [machine_line(doc, name), ""]
    heads = ["/".join(s) for s in series]
    for title, field, fmt in (("p50 latency (wall), ms", "p50_us", ms), ("p99 latency (wall), ms", "p99_us", ms),
                              ("CPU time per request, p50, ms", "cpu_p50_us", ms),
                              ("CPU share (CPU time / wall time; 1.0 = we had the core)", "cpu_share",
                               lambda v: "%.2f" % v),
                              ("candidates per second at the median (k / p50)", "cands_per_s_p50", si),
                              ("MaxSim GMAC/s at the median", "maxsim_gmac_per_s", lambda v: "%.1f" % v)):
        out.append("%s (%s: %s)" % (title, name, " / ".join(series_dims)))
        out.append("")
        out.append("| k | " + " | ".join(heads) + " |")
        out.append("|---:|" + "---:|" * len(heads))
        for k in ks:
            cells = [fmt(by[(s, k)][field]) if (s, k) in by and by[(s, k)].get(field) is not None else "-"
                     for s in series]
            out.append("| %d | %s |" % (k, " | ".join(cells)))
        out.append("")
    n = [p["requests"] for p in pts]
    out.append("Requests per point: %d to %d (fewer at large k: each point had a %.0f s budget)."
               % (min(n), max(n), doc["settings"]["seconds"]))
    out.append("")
    return "\n".join(out)


def profile_table(doc, name):
    p = doc["profile"]
    out = ["Profile (%s): ISA %s, %s store, FE layers %s, k = %d, median of %d requests; towerrt_score p50 on the "
           "same requests %.1f us; profiled scores equal towerrt_score's (max |diff| %g)."
           % (name, p["isa"], p.get("precision", "f32"), p["fe_layers"], p["k"], p["requests"], p["score_p50_us"],
              p["max_abs_diff"]), "",
           "| step | what | median us | % |", "|---|---|---:|---:|"]
    for s in p["steps"]:
        out.append("| %s | %s | %.2f | %.1f |" % (s["step"], s["what"], s["median_us"], s["percent"]))
    out.append("| total | sum of the step medians | %.2f | 100 |" % p["total_median_us"])
    return "\n".join(out) + "\n"


def roofline_tables(doc):
    r = doc["roofline"]
    out = ["| roof | instruction | value |", "|---|---|---:|"]
    for p in r["peaks"]:
        out.append("| %s | %s | %.1f %s |" % (p["roof"], p["instruction"], p["value"], p["unit"]))
    out += ["", "| kernel | ISA | shape | GMAC/s | % of peak | item/weight GB/s | % of bandwidth |",
            "|---|---|---|---:|---:|---:|---:|"]
    for k in r["kernels"]:
        bw = k["fraction_of_bandwidth"]
        out.append("| %s | %s | %s | %.2f | %.1f%% of %s | %.2f | %s |" % (
            k["kernel"], k["isa"], k["shape"], k["gmac_per_s"], 100 * (k["fraction_of_peak"] or 0), k["peak"],
            k["gb_per_s"], "%.1f%%" % (100 * bw) if bw is not None else "cache-resident"))
    return "\n".join(out) + "\n"


def gbench_table(doc):
    out = ["| benchmark | time/iteration | MACs/s | items/s | bytes/s |", "|---|---:|---:|---:|---:|"]
    for b in doc["benchmarks"]:
        if b.get("run_type") == "aggregate":
            continue
        unit = b.get("time_unit", "ns")
        out.append("| %s | %.3g %s | %s | %s | %s |" % (
            b["name"], b["real_time"], unit, si(b.get("MACs")), si(b.get("items_per_second")),
            si(b.get("bytes_per_second"))))
    return "\n".join(out) + "\n"


def main(out_dir):
    parts = []
    f = os.path.join(out_dir, "sweep.json")
    if os.path.exists(f):
        parts.append("## sweep (%s)\n\n%s" % (f, sweep_tables(load(f), "sweep", ["isa", "fe_mode"])))
    f = os.path.join(out_dir, "dims.json")
    if os.path.exists(f):
        parts.append("## dims (%s)\n\n%s" % (f, sweep_tables(load(f), "dims", ["precision", "threads"])))
    for f in sorted(glob.glob(os.path.join(out_dir, "profile-*.json"))):
        parts.append("## %s\n\n%s" % (f, profile_table(load(f), os.path.basename(f))))
    f = os.path.join(out_dir, "roofline.json")
    if os.path.exists(f):
        parts.append("## roofline (%s)\n\n%s" % (f, roofline_tables(load(f))))
    f = os.path.join(out_dir, "gbench-kernels.json")
    if os.path.exists(f):
        parts.append("## Google Benchmark kernels (%s)\n\n%s" % (f, gbench_table(load(f))))
    f = os.path.join(out_dir, "peers.md")
    if os.path.exists(f):
        with open(f) as fh:
            parts.append("## peers (%s)\n\n%s" % (f, fh.read()))
    print("\n".join(parts))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_tables.py OUT_DIR")
    main(sys.argv[1])
