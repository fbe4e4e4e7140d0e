#!/usr/bin/env python3
"""Python call overhead: towerrt.Session.score against the C towerrt_score
for the same request, in the same run.

  python_overhead.py MODEL.twr STORE.twi --call-bench build/bench/towerrt_call_bench
                     [--k 100 1000] [--reps 201] [--rounds 5]

Per k, `rounds` times in alternation: the C bench (towerrt_call_bench, a
median of `reps` calls) then Session.score from Python on the very same
request (user ids 0, dense 0.5, the item ids the C bench wrote; median of
`reps` calls, the output array preallocated as a serving loop would, and
also with a fresh output array per call). Prints the median over rounds of
each, and the overhead (python / c - 1).
"""

import argparse
import os
import statistics
import subprocess
import tempfile
import time

import numpy as np

import towerrt


def c_median_us(bench, model, store, k, reps, ids_path):
    out = subprocess.run([bench, model, store, str(k), str(reps), ids_path], check=True, capture_output=True, text=True).stdout
    return float(out.split()[1])


def py_median_us(sess, uid, ud, ids, reps, out):
    t = []
    for _ in range(reps):
        t0 = time.perf_counter()
        sess.score(uid, ud, ids, out=out)
        t.append(time.perf_counter() - t0)
    return statistics.median(t) * 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("store")
    ap.add_argument("--call-bench", required=True)
    ap.add_argument("--k", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--reps", type=int, default=201)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    model = towerrt.Model(a.model)
    sess = towerrt.Session(model, towerrt.Items(a.store))
    uid = np.zeros(model.user_id_slots, np.int64)
    ud = np.full(model.user_dense_width, 0.5, np.float32) if model.user_dense_width else None
    print("# python_overhead %s, kernels %s, 1 thread, towerrt %s" % (os.path.basename(a.model), model.isa, towerrt.version()))
    print("%6s %10s %12s %14s %10s %12s" % ("k", "c_us", "python_us", "py_new_out_us", "overhead", "new_out_ovh"))
    with tempfile.TemporaryDirectory() as tmp:
        for k in a.k:
            ids_path = os.path.join(tmp, "ids.bin")
            cs, ps, pn = [], [], []
            for _ in range(a.rounds):
                cs.append(c_median_us(a.call_bench, a.model, a.store, k, a.reps, ids_path))
                ids = np.fromfile(ids_path, np.uint64)
                out = np.empty(k, np.float32)
                sess.score(uid, ud, ids, out=out)  # warm
                ps.append(py_median_us(sess, uid, ud, ids, a.reps, out))
                pn.append(py_median_us(sess, uid, ud, ids, a.reps, None))
            c, p, n = statistics.median(cs), statistics.median(ps), statistics.median(pn)
            print("%6d %10.2f %12.2f %14.2f %9.2f%% %11.2f%%" % (k, c, p, n, (p / c - 1) * 100, (n / c - 1) * 100))


if __name__ == "__main__":
    main()
