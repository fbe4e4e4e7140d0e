#!/usr/bin/env python3
"""`towerrt quantize --calibration` reports rank agreement by candidate-count
bucket (tools/rank_agreement.c). This test recomputes every number of that
report independently: it scores the same requests with the f32 and the
quantized side through `towerrt score`, and computes per request, in Python,
Spearman's rho, the top-10 and top-tenth overlaps and the largest score
difference, then the mean / min per bucket (1-9, 10-99, 100-999, 1000-9999,
10000+).

Model: tests/fixtures/trained/all_layers (exported here); requests: test
users with k = 1 .. 1500 candidates drawn from its catalog (k above the
catalog's 399 repeats ids: exact ties, broken by position on both sides).

  test_calibration_report.py TOWERRT_CLI TMP_DIR      (standard library only)
"""

import os
import random
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools"))
import quant_accuracy as qa  # noqa: E402
import towerrt_format as tf  # noqa: E402
import towerrt_requests as treq  # noqa: E402

FIXTURE = os.path.join(REPO, "tests", "fixtures", "trained")
BUCKETS = [(1, 9, "1-9"), (10, 99, "10-99"), (100, 999, "100-999"), (1000, 9999, "1000-9999"),
           (10000, float("inf"), "10000+")]
SIZES = [1, 2, 3, 5, 8, 9, 10, 11, 25, 60, 99, 100, 150, 250, 399, 1000, 1500]
PRINTED = 5e-7 + 1e-9      # the report prints 6 decimals


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if p.returncode != 0:
        raise SystemExit("FAIL: %s\n%s" % (" ".join(cmd), p.stderr))
    return p.stdout


def top(scores, n):
    """Indices of the top n, by score descending, ties by position (first wins)."""
    return set(sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:n])


def expected_report(ref, other, ks):
    rows = {}
    for a, b, k in zip(ref, other, ks):
        name = [nm for lo, hi, nm in BUCKETS if lo <= k <= hi][0]
        r = rows.setdefault(name, {"requests": 0, "scores": 0, "rho": [], "top10": [], "tenth": [], "max": 0.0})
        r["requests"] += 1
        r["scores"] += k
        r["rho"].append(qa.spearman(a, b))
        if k > 10:
            r["top10"].append(len(top(a, 10) & top(b, 10)) / 10.0)
        if k >= 2:
            n = (k + 9) // 10
            r["tenth"].append(len(top(a, n) & top(b, n)) / float(n))
        r["max"] = max([r["max"]] + [abs(x - y) for x, y in zip(a, b)])
    return rows


def parse_report(out):
    rows = {}
    for line in out.splitlines():
        t = line.split()
        if len(t) == 10 and re.match(r"^\d+(-\d+|\+)$", t[0]):
            val = [None if x == "-" else float(x) for x in t[3:9]]
            rows[t[0]] = {"requests": int(t[1]), "scores": int(t[2]), "rho": val[0:2], "top10": val[2:4],
                          "tenth": val[4:6], "max": float(t[9])}
    return rows


def compare(tag, got, want):
    errors = []
    if sorted(got) != sorted(want):
        return ["%s: buckets %s, expected %s" % (tag, sorted(got), sorted(want))]
    for name, w in want.items():
        g = got[name]
        for key in ("requests", "scores"):
            if g[key] != w[key]:
                errors.append("%s %s: %s %d, expected %d" % (tag, name, key, g[key], w[key]))
        for key in ("rho", "top10", "tenth"):
            vals = w[key]
            exp = [sum(vals) / len(vals), min(vals)] if vals else [None, None]
            for what, x, y in zip(("mean", "min"), g[key], exp):
                if (x is None) != (y is None) or (x is not None and abs(x - y) > PRINTED):
                    errors.append("%s %s: %s %s %s, expected %s" % (tag, name, key, what, x, y))
        if g["max"] != float("%.3g" % w["max"]):     # printed with 3 significant digits
            errors.append("%s %s: max |diff| %g, expected %g" % (tag, name, g["max"], w["max"]))
    return errors


def main(argv):
    if len(argv) != 3:
        print(__doc__)
        return 2
    cli, tmp = argv[1], argv[2]
    os.makedirs(tmp, exist_ok=True)
    p = lambda n: os.path.join(tmp, n)  # noqa: E731
    run([sys.executable, os.path.join(REPO, "tools", "export_inttower.py"), "-q", "--weights",
         os.path.join(FIXTURE, "all_layers", "state_dict.npz"), "--config",
         os.path.join(FIXTURE, "all_layers", "config.json"), "--out", p("model.twr")])
    model = tf.read_twr(p("model.twr"))
    reqs, rows, _ = treq.build(model, tf.read_npz(os.path.join(FIXTURE, "test_inputs.npz")), by_id=True)
    tf.write_items(p("items.txt"), rows)
    ids = [r[0] for r in rows]
    rng = random.Random(20)
    cal = []
    for i, k in enumerate(SIZES):
        u = reqs[i % len(reqs)]
        cand = rng.sample(ids, k) if k <= len(ids) else [rng.choice(ids) for _ in range(k)]
        cal.append(tf.Request(u.user_ids, u.user_dense, item_ids=cand))
    tf.write_requests(p("calibration.txt"), cal)
    run([cli, "build-items", "--model", p("model.twr"), "--features", p("items.txt"), "--out", p("items.twi")])

    def scores(model_path, store):
        run([cli, "score", "--model", model_path, "--items", store, "--requests", p("calibration.txt"),
             "--out", p("s.txt")])
        return tf.read_scores(p("s.txt"))
    base = scores(p("model.twr"), p("items.twi"))
    ks = [r.k() for r in cal]
    errors = []
    # the model form (int8 user tower on the f32 store) and the store form (int8 store, f32 model)
    out_m = run([cli, "quantize", "--model", p("model.twr"), "--precision", "int8", "--out", p("model-int8.twr"),
                 "--calibration", p("calibration.txt"), "--items", p("items.twi")])
    out_s = run([cli, "quantize", "--items", p("items.twi"), "--model", p("model.twr"), "--precision", "int8",
                 "--out", p("items-int8.twi"), "--calibration", p("calibration.txt")])
    for tag, out, other in (("int8 model", out_m, scores(p("model-int8.twr"), p("items.twi"))),
                            ("int8 store", out_s, scores(p("model.twr"), p("items-int8.twi")))):
        print("%s:\n%s" % (tag, out.rstrip()))
        want = expected_report(base, other, ks)
        errors += compare(tag, parse_report(out), want)
        rhos = [qa.spearman(a, b) for a, b in zip(base, other)]
        m = re.search(r"(\d+) requests, (\d+) scores: Spearman rho mean ([\d.]+), min ([\d.]+)", out)
        if not m or (int(m.group(1)), int(m.group(2))) != (len(ks), sum(ks)) or \
                abs(float(m.group(3)) - sum(rhos) / len(rhos)) > PRINTED or abs(float(m.group(4)) - min(rhos)) > PRINTED:
            errors.append("%s: overall line differs from %d requests, %d scores, rho mean %.6f min %.6f"
                          % (tag, len(ks), sum(ks), sum(rhos) / len(rhos), min(rhos)))
        if len(want) != 4:
            errors.append("%s: the requests should fill 4 buckets, got %s" % (tag, sorted(want)))
    for e in errors:
        print("FAIL: " + e)
    print("PASS" if not errors else "FAIL")
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
