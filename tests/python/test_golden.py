#!/usr/bin/env python3
"""Check the golden fixtures (tests/fixtures/golden), standard library only.

  test_golden.py [--cli TOWERRT_CLI] [--tmp DIR] [GOLDEN_DIR]

For every model directory:
  * the files match the sha256 in manifest.json;
  * re-exporting state_dict.npz + config.json with tools/export_inttower.py
    (build_model) gives model.twr byte for byte;
  * tools/reference/twr_eval.py (an independent stdlib executor of the .twr
    graph) reproduces expected_*.txt, by features and by id through an item
    store built from items.txt;
  * with --cli, the towerrt CLI (build-items, score) does too.
Tolerance: |got - expected| <= 1e-5 * max(1, |expected|).
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools"))
sys.path.insert(0, os.path.join(REPO, "tools", "reference"))
import towerrt_format as tf  # noqa: E402
import export_inttower as ex  # noqa: E402
import twr_eval  # noqa: E402

TOL = 1e-5


def compare(tag, got, want):
    if len(got) != len(want):
        return "%s: %d lines, expected %d" % (tag, len(got), len(want)), 0.0
    worst = 0.0
    for q, (g, w) in enumerate(zip(got, want)):
        if len(g) != len(w):
            return "%s: request %d: %d scores, expected %d" % (tag, q, len(g), len(w)), 0.0
        for a, b in zip(g, w):
            e = abs(a - b) / max(1.0, abs(b))
            worst = max(worst, e)
            if not e <= TOL:
                return "%s: request %d: got %.9g, expected %.9g" % (tag, q, a, b), worst
    return None, worst


def check_dir(d, cli, tmp):
    name = os.path.basename(d.rstrip("/"))
    errors = []
    with open(os.path.join(d, "manifest.json")) as f:
        man = json.load(f)
    for fn, info in man["files"].items():
        with open(os.path.join(d, fn), "rb") as f:
            h = hashlib.sha256(f.read()).hexdigest()
        if h != info["sha256"]:
            errors.append("%s: sha256 differs from manifest" % fn)
    # re-export
    model = tf.read_twr(os.path.join(d, "model.twr"))
    with open(os.path.join(d, "config.json")) as f:
        conf = json.load(f)
    sd = ex.load_state_dict(os.path.join(d, "state_dict.npz"))
    m2 = ex.build_model(sd, ex.config_from_json(conf, name), source=model.meta["general.source"],
                        log=lambda m: None)
    again = tf.write_twr(None, m2)
    with open(os.path.join(d, "model.twr"), "rb") as f:
        if f.read() != again:
            errors.append("re-exporting state_dict.npz + config.json does not give model.twr byte for byte")
    # stdlib evaluator
    exp_i = tf.read_scores(os.path.join(d, "expected_ids.txt"))
    exp_f = tf.read_scores(os.path.join(d, "expected_features.txt"))
    store = os.path.join(tmp, name + ".py.twi")
    twr_eval.build_items(os.path.join(d, "model.twr"), os.path.join(d, "items.txt"), store)
    worst = 0.0
    for tag, got, want in (
            ("twr_eval by features", twr_eval.score_requests(os.path.join(d, "model.twr"),
                                                             os.path.join(d, "requests_features.txt")), exp_f),
            ("twr_eval by id", twr_eval.score_requests(os.path.join(d, "model.twr"),
                                                       os.path.join(d, "requests_ids.txt"), store), exp_i)):
        err, w = compare(tag, got, want)
        worst = max(worst, w)
        if err:
            errors.append(err)
    line = "%-24s twr_eval max err %.2g" % (name, worst)
    if cli:
        cmd = [sys.executable, cli] if cli.endswith(".py") else [cli]
        cstore = os.path.join(tmp, name + ".cli.twi")
        outs = {}
        p = subprocess.run(cmd + ["build-items", "--model", os.path.join(d, "model.twr"), "--features",
                                  os.path.join(d, "items.txt"), "--out", cstore],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        if p.returncode:
            errors.append("cli build-items failed: %s" % p.stderr.strip()[-500:])
        for tag, rq, extra in (("features", "requests_features.txt", []),
                               ("ids", "requests_ids.txt", ["--items", cstore])):
            o = os.path.join(tmp, "%s.%s.out" % (name, tag))
            p = subprocess.run(cmd + ["score", "--model", os.path.join(d, "model.twr")] + extra +
                               ["--requests", os.path.join(d, rq), "--out", o],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
            if p.returncode:
                errors.append("cli score (%s) failed: %s" % (tag, p.stderr.strip()[-500:]))
                continue
            err, w = compare("cli by " + tag, tf.read_scores(o), exp_i if tag == "ids" else exp_f)
            outs[tag] = w
            if err:
                errors.append(err)
        line += "; cli max err " + ", ".join("%s %.2g" % kv for kv in sorted(outs.items()))
    print(line + ("" if not errors else "  FAIL"))
    for e in errors:
        print("  " + e)
    return not errors


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("golden", nargs="?", default=os.path.join(REPO, "tests", "fixtures", "golden"))
    ap.add_argument("--cli", help="towerrt CLI binary to check as well")
    ap.add_argument("--tmp")
    a = ap.parse_args(argv)
    tmp = a.tmp or tempfile.mkdtemp(prefix="towerrt_golden_")
    os.makedirs(tmp, exist_ok=True)
    dirs = sorted(os.path.join(a.golden, x) for x in os.listdir(a.golden)
                  if os.path.isfile(os.path.join(a.golden, x, "manifest.json")))
    if not dirs:
        print("FAIL: no golden fixtures under %s" % a.golden)
        return 1
    ok = all([check_dir(d, a.cli, tmp) for d in dirs])
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
