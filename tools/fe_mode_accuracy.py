#!/usr/bin/env python3
"""Measures what forcing a subset of user FE layers costs in accuracy.

  fe_mode_accuracy.py --cli build/towerrt --model M.twr --inputs test.npz [--subsets 0 1 2 0,1]

Scores every labelled row of INPUTS (one request per row, candidate by
features) with the model's trained FE layers and with each forced subset
(`towerrt score --fe-layers`), and prints the AUC of each. INPUTS is an
.npz of input columns plus a 'label' column (the reference's test split
format). Standard library only.
"""
import argparse
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import towerrt_format as tf  # noqa: E402


def auc(labels, scores):
    """Mann-Whitney AUC with average ranks for ties."""
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for t in range(i, j + 1):
            ranks[order[t]] = (i + j) / 2.0 + 1.0
        i = j + 1
    pos = sum(1 for y in labels if y > 0.5)
    neg = len(labels) - pos
    rank_sum = sum(r for r, y in zip(ranks, labels) if y > 0.5)
    return (rank_sum - pos * (pos + 1) / 2.0) / (pos * neg)


def row_values(model, cols, side, r):
    ids, dense = [], []
    for f in model.side_fields(side):
        a = cols[f.name]
        vals = a.tolist_flat()
        width = f.slots if f.kind != tf.KIND_DENSE else f.dim
        chunk = vals[r * width:(r + 1) * width]
        if f.kind == tf.KIND_DENSE:
            dense += [tf.f32_round(float(v)) for v in chunk]
        else:
            ids += [int(v) for v in chunk]
    return ids, dense


def write_requests(model, cols, n, path):
    with open(path, "w") as out:
        out.write("towerrt-requests 1\n")
        for r in range(n):
            uid, ud = row_values(model, cols, 0, r)
            iid, idn = row_values(model, cols, 1, r)
            out.write("user %s%s\n" % (" ".join(map(str, uid)), (" ; " + " ".join(repr(v) for v in ud)) if ud else ""))
            out.write("item %s%s\nend\n" % (" ".join(map(str, iid)), (" ; " + " ".join(repr(v) for v in idn)) if idn else ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--subsets", nargs="*", default=None, help="FE layer sets to force, e.g. 0 1 2 0,1")
    a = ap.parse_args()
    model = tf.read_twr(a.model)
    cols = tf.read_npz(a.inputs)
    labels = [float(v) for v in cols["label"].tolist_flat()]
    n = len(labels)
    present = sorted(f.layer for f in model.user_fe_projections()) if hasattr(model, "user_fe_projections") else [0, 1, 2]
    subsets = a.subsets if a.subsets is not None else [str(L) for L in present]
    with tempfile.TemporaryDirectory() as tmp:
        req = os.path.join(tmp, "requests.txt")
        write_requests(model, cols, n, req)
        print("%d labelled rows, %d positive" % (n, sum(1 for y in labels if y > 0.5)))
        print("| FE layers | AUC |\n|---|---|")
        for subset in [None] + subsets:
            out = os.path.join(tmp, "scores.txt")
            cmd = [a.cli, "score", "--model", a.model, "--requests", req, "--out", out]
            if subset is not None:
                cmd += ["--fe-layers", subset]
            subprocess.run(cmd, check=True)
            scores = [float(line) for line in open(out)]
            print("| %s | %.4f |" % ("as trained" if subset is None else subset, auc(labels, scores)))


if __name__ == "__main__":
    main()
