#!/usr/bin/env python3
"""ctest spark_build: the Spark job (python -m towerrt.spark build-items) in
local mode on 2 cores against the single-machine build of the same catalog.

A synthetic catalog of --items rows (default 1,000,000) for a tiny-head
golden model, written as two Parquet files of several row groups (so the
job's ordinals cross files), ids random below 2^63. Checks:
  - the job's merged f32 store == towerrt.catalog.build_items of the same
    Parquet directory, byte for byte (the single-process build);
  - an int8 job (shards quantized in the executors, merged quantized) on a
    smaller catalog == the int8 single build, byte for byte; with more
    shards than some shards have rows (empty shards written by the driver);
  - scores from the merged store == scores from the single build.
Prints both builds' wall times (never asserted).

usage: test_spark_build.py --module _towerrt.so --model M.twr --work DIR [--items N]
Needs pyspark (with pandas, pyarrow, numpy) and Java for this python: exits
77 (skipped) naming what is missing when they are not installed
(tools/install_deps.sh installs them)."""

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.normpath(os.path.join(HERE, "..", ".."))


def stage_package(module, work):
    """The towerrt package as a directory: python/towerrt/*.py + the built extension."""
    pkg = os.path.join(work, "pkg", "towerrt")
    shutil.rmtree(os.path.dirname(pkg), ignore_errors=True)
    os.makedirs(pkg)
    for f in glob.glob(os.path.join(SRC, "python", "towerrt", "*.py")):
        shutil.copy(f, pkg)
    shutil.copy(module, pkg)
    return os.path.dirname(pkg)


def make_catalog(model, path, n, seed):
    """n item rows as two Parquet files under `path` (ids unique, below 2^63)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    rng = np.random.default_rng(seed)
    ids = np.unique(rng.integers(0, 2 ** 63, n + n // 100 + 10, dtype=np.int64))[:n]
    ids = rng.permutation(ids)
    cols = {"item_id": pa.array(ids, pa.int64())}
    for f in model.item_fields():
        if f.kind == "single":
            cols[f.name] = pa.array(rng.integers(0, f.vocab, n), pa.int64())
        elif f.kind == "multi":
            lens = rng.integers(0, f.width + 1, n)
            offsets = np.r_[0, np.cumsum(lens)].astype(np.int32)
            values = pa.array(rng.integers(1, f.vocab, int(offsets[-1])), pa.int64())
            cols[f.name] = pa.ListArray.from_arrays(pa.array(offsets), values)
        elif f.width == 1:
            cols[f.name] = pa.array(rng.random(n, dtype=np.float32), pa.float32())
        else:
            vals = pa.array(rng.random(n * f.width, dtype=np.float32), pa.float32())
            cols[f.name] = pa.FixedSizeListArray.from_arrays(vals, f.width)
    table = pa.table(cols)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    cut = n * 3 // 5
    pq.write_table(table.slice(0, cut), os.path.join(path, "part-0.parquet"), row_group_size=max(1, n // 8))
    pq.write_table(table.slice(cut), os.path.join(path, "part-1.parquet"), row_group_size=max(1, n // 8))
    return ids


def same(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 24), fb.read(1 << 24)
            if x != y:
                return False
            if not x:
                return True


def run_job(pkg, args, log):
    env = dict(os.environ, PYTHONPATH=pkg + os.pathsep + os.environ.get("PYTHONPATH", ""), PYSPARK_PYTHON=sys.executable)
    t0 = time.time()
    with open(log, "w") as lf:
        p = subprocess.run([sys.executable, "-m", "towerrt.spark", "build-items", "--master", "local[2]"] + args,
                           stdout=subprocess.PIPE, stderr=lf, env=env, text=True)
    wall = time.time() - t0
    if p.returncode != 0:
        sys.stderr.write(open(log).read()[-6000:])
        raise SystemExit("FAIL: the Spark job exited %d" % p.returncode)
    return json.loads(p.stdout), wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--module", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--items", type=int, default=1000000)
    ap.add_argument("--shards", type=int, default=4)
    a = ap.parse_args()
    missing = []
    for mod in ("pyspark", "pandas", "pyarrow", "numpy"):
        try:
            __import__(mod)
        except ImportError:
            missing.append(mod)
    if not shutil.which("java") and not os.environ.get("JAVA_HOME"):
        missing.append("java (openjdk-17-jre-headless)")
    if missing:
        print("SKIPPED: %s not installed for %s (tools/install_deps.sh installs them)" % (", ".join(missing), sys.executable))
        return 77
    os.makedirs(a.work, exist_ok=True)
    pkg = stage_package(a.module, a.work)
    sys.path.insert(0, pkg)
    import numpy as np
    import towerrt
    import towerrt.catalog as tc
    model = towerrt.Model(a.model)
    failures = 0

    cat = os.path.join(a.work, "catalog")
    t0 = time.time()
    ids = make_catalog(model, cat, a.items, 18)
    print("catalog: %d rows in 2 Parquet files (%.1f MB), written in %.1f s"
          % (a.items, sum(os.path.getsize(f) for f in glob.glob(cat + "/*")) / 1e6, time.time() - t0))
    single = os.path.join(a.work, "single.twi")
    t0 = time.time()
    tc.build_items(model, cat, single, threads=2)
    t_single = time.time() - t0
    print("single-process build (towerrt.catalog.build_items, 2 threads): %.1f s, %.1f MB"
          % (t_single, os.path.getsize(single) / 1e6))
    merged = os.path.join(a.work, "spark.twi")
    summary, wall = run_job(pkg, ["--model", a.model, "--catalog", cat, "--out", merged, "--shards", str(a.shards)],
                            os.path.join(a.work, "spark-f32.log"))
    print("spark job, f32, %d shards, local[2]: %.1f s wall (job %s)" % (a.shards, wall, json.dumps(summary["seconds"])))
    if not same(single, merged):
        print("FAIL: the Spark job's merged store != the single-process build")
        failures += 1
    else:
        print("ok: merged store == single-process build, byte for byte (%d bytes)" % os.path.getsize(merged))
    # scores: a sample of ids on both stores
    sample = np.ascontiguousarray(ids[:: max(1, len(ids) // 5000)].astype(np.uint64))
    user = towerrt.Session(model, towerrt.Items(single))
    uid = np.zeros(model.user_id_slots, np.int64)
    ud = np.full(model.user_dense_width, 0.5, np.float32) if model.user_dense_width else None
    s1 = user.score(uid, ud, sample)
    s2 = towerrt.Session(model, towerrt.Items(merged)).score(uid, ud, sample)
    if s1.tobytes() != s2.tobytes():
        print("FAIL: scores of the merged store differ")
        failures += 1

    # int8, quantized in the executors; more shards than rows in some
    small = os.path.join(a.work, "catalog-small")
    n_small = min(a.items, 40)
    make_catalog(model, small, n_small, 7)
    single8 = os.path.join(a.work, "single-int8.twi")
    tc.build_items(model, small, single8, precision="int8")
    merged8 = os.path.join(a.work, "spark-int8.twi")
    summary8, wall8 = run_job(pkg, ["--model", a.model, "--catalog", small, "--out", merged8, "--shards", "24",
                                    "--precision", "int8"], os.path.join(a.work, "spark-int8.log"))
    print("spark job, int8, %d rows, 24 shards (%d empty): %.1f s wall" % (n_small, summary8["empty_shards"], wall8))
    if summary8["empty_shards"] == 0:
        print("FAIL: expected empty shards")
        failures += 1
    if not same(single8, merged8):
        print("FAIL: the int8 Spark job's merged store != the int8 single build")
        failures += 1
    else:
        print("ok: int8 merged store == int8 single build, byte for byte")
    for f in (single, merged, single8, merged8):
        os.remove(f)
    shutil.rmtree(cat, ignore_errors=True)
    print("test_spark_build: %s" % ("FAILED" if failures else "OK"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
