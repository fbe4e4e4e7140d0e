"""Item-store builds on Apache Spark: one shard per partition, merged.

    python -m towerrt.spark build-items --model M.twr --catalog CATALOG.parquet \\
        --out DIR/store.twi [--precision f32|bf16|int8] [--shards N] [--id-column item_id] \\
        [--master local[2]] [--format parquet] [--threads 1] [--keep-shards]

What it does (docs/item-stores.md, "Spark"):
 1. reads the catalog table with Spark (`--format`, default Parquet; the
    columns are the model's item fields and the id column, as
    towerrt.catalog reads them);
 2. gives every row its ordinal in the catalog: Parquet file order (files
    sorted by path, then each file's row index, `_metadata.row_index`), or
    the `--order-column` (values 0..N-1) for other sources;
 3. assigns each row the shard of its item id (towerrt's rule,
    towerrt.item_shard) and repartitions by shard, sorted by ordinal;
 4. in the executors (mapInArrow), builds each shard through the Python
    package from its own rows only (ItemsBuilder with the rows' ordinals
    and the catalog's row count), quantizes it there if asked, and writes it
    to `<out>.shards/` (a local or shared path; a URI with a scheme, e.g.
    hdfs:// or s3://, is written through pyarrow.fs from a local staging
    file: written but never run here);
 5. on the driver, writes the shards no row fell into (empty shards) and
    merges them all into `--out` (towerrt.merge_items: byte for byte the
    single-machine build of the catalog in that order).

The executors need the towerrt package importable (local mode: the
driver's environment; a cluster: ship the wheel, e.g. --archives of a venv)
and read the model through SparkContext.addFile.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from typing import Dict, List, Optional

import numpy as np

import towerrt
from towerrt import catalog as _cat

__all__ = ["build_items", "main"]


def _has_scheme(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def _local(path: str) -> str:
    return path[len("file://"):] if path.startswith("file://") else path


def _put(local_file: str, target: str) -> None:
    """Moves a finished shard to its target: a local or shared path, or a URI (pyarrow.fs)."""
    if not _has_scheme(target):
        target = _local(target)
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        if os.path.abspath(local_file) != os.path.abspath(target):
            shutil.move(local_file, target)
        return
    import pyarrow.fs as pafs  # untested path: any filesystem pyarrow reaches
    fs, path = pafs.FileSystem.from_uri(target)
    with open(local_file, "rb") as src, fs.open_output_stream(path) as dst:
        shutil.copyfileobj(src, dst, 1 << 24)
    os.remove(local_file)


def _get(target: str, local_file: str) -> str:
    if not _has_scheme(target):
        return _local(target)
    import pyarrow.fs as pafs
    fs, path = pafs.FileSystem.from_uri(target)
    with fs.open_input_stream(path) as src, open(local_file, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 24)
    return local_file


def _shard_name(i: int, n: int) -> str:
    return "shard-%05d-of-%05d.twi" % (i, n)


def _executor_builder(model_name: str, shards_dir: str, n: int, total: int, id_column: str, precision: str, threads: int):
    """The mapInArrow function: builds the shards of one partition (rows sorted by shard, then ordinal)."""

    def build(batches):
        import pyarrow as pa
        from pyspark import SparkFiles

        import towerrt as t
        from towerrt import catalog as cat

        model = t.Model(SparkFiles.get(model_name))
        staging = tempfile.mkdtemp(prefix="towerrt-shards-")
        done = {"shard": [], "rows": [], "path": [], "seconds": []}
        state = {"b": None, "shard": -1, "t0": 0.0}

        def finish():
            b, s = state["b"], state["shard"]
            if b is None:
                return
            b.finish()
            local = b.path
            if precision != "f32":
                q = local + "." + precision
                t.Items(local).quantize(q, precision, centre="none")  # shards are never centred
                os.remove(local)
                local = q
            target = shards_dir.rstrip("/") + "/" + _shard_name(s, n)
            _put(local, target)
            done["shard"].append(s)
            done["rows"].append(b.rows)
            done["path"].append(target)
            done["seconds"].append(time.time() - state["t0"])
            state["b"] = None

        try:
            for batch in batches:
                shard = batch.column("_shard").to_numpy(zero_copy_only=False)
                if len(shard) == 0:
                    continue
                cuts = np.flatnonzero(np.diff(shard)) + 1
                for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(shard)]):
                    part = batch.slice(int(lo), int(hi - lo))
                    s = int(shard[lo])
                    if s != state["shard"]:
                        finish()
                        state["shard"], state["t0"] = s, time.time()
                        path = os.path.join(staging, _shard_name(s, n))
                        state["b"] = t.ItemsBuilder(model, path, threads=threads, shard=(s, n), input_rows=total)
                    keys = cat.item_ids(part.column(id_column), id_column)
                    ids, dense = cat.item_features(model, part, keys.shape[0])
                    ords = np.ascontiguousarray(part.column("_ord").to_numpy(zero_copy_only=False).astype(np.uint64))
                    state["b"].append(keys, ids, dense, ords)
            finish()
        except BaseException:
            if state["b"] is not None:
                state["b"].abort()
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        yield pa.RecordBatch.from_pydict(done, schema=pa.schema([("shard", pa.int64()), ("rows", pa.int64()),
                                                                 ("path", pa.string()), ("seconds", pa.float64())]))

    return build


def _with_ordinals(df, id_column: str, fields: List[str], order_column: Optional[str]):
    """(DataFrame of id, fields, _ord; row count): ordinals 0..N-1 in catalog order."""
    from pyspark.sql import functions as F
    if order_column:
        df = df.select(id_column, *fields, F.col(order_column).cast("long").alias("_ord"))
        return df, df.count()
    df = df.select(id_column, *fields, F.col("_metadata.file_path").alias("_file"), F.col("_metadata.row_index").alias("_row"))
    counts = sorted((r["_file"], r["count"]) for r in df.groupBy("_file").count().collect())
    offsets, total = {}, 0
    for path, c in counts:
        offsets[path] = total
        total += c
    if len(offsets) == 1:
        return df.select(id_column, *fields, F.col("_row").alias("_ord")), total
    mapping = F.create_map(*[x for path, off in offsets.items() for x in (F.lit(path), F.lit(off))])
    return df.select(id_column, *fields, (mapping[F.col("_file")] + F.col("_row")).alias("_ord")), total


def build_items(spark, model_path: str, catalog_path: str, out: str, *, id_column: str = "item_id",
                precision: str = "f32", shards: Optional[int] = None, fmt: str = "parquet",
                order_column: Optional[str] = None, threads: int = 1, keep_shards: bool = False) -> Dict:
    """Runs the whole job on `spark` (a SparkSession); returns a summary."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import IntegerType, LongType, StructField, StructType

    t0 = time.time()
    model = towerrt.Model(model_path)
    fields = [f.name for f in model.item_fields()]
    spark.sparkContext.addFile(os.path.abspath(model_path) if not _has_scheme(model_path) else model_path)
    model_name = os.path.basename(model_path)
    df = spark.read.format(fmt).load(catalog_path)
    df, total = _with_ordinals(df, id_column, fields, order_column)
    n = int(shards or df.rdd.getNumPartitions())
    t_scan = time.time()

    def add_shard(batches):
        import pyarrow as pa
        import towerrt as t
        for b in batches:
            keys = _cat.item_ids(b.column(id_column), id_column)
            shard = t.item_shard(keys, n).astype(np.int32)
            yield b.append_column("_shard", pa.array(shard, pa.int32()))

    schema = StructType(df.schema.fields + [StructField("_shard", IntegerType(), False)])
    shards_dir = out + ".shards"
    if not _has_scheme(out):
        os.makedirs(_local(shards_dir), exist_ok=True)
    keyed = df.mapInArrow(add_shard, schema).repartition(n, "_shard").sortWithinPartitions("_shard", "_ord")
    result_schema = "shard long, rows long, path string, seconds double"
    built = keyed.mapInArrow(_executor_builder(model_name, shards_dir, n, total, id_column, precision, threads),
                             result_schema).collect()
    t_build = time.time()
    paths = {r["shard"]: r["path"] for r in built}
    staging = tempfile.mkdtemp(prefix="towerrt-merge-")
    try:
        local_paths = []
        for i in range(n):
            if i not in paths:  # no row of the catalog is in shard i
                p = os.path.join(staging, _shard_name(i, n))
                with towerrt.ItemsBuilder(model, p + ".f32" if precision != "f32" else p, shard=(i, n), input_rows=total) as b:
                    pass
                if precision != "f32":
                    towerrt.Items(p + ".f32").quantize(p, precision, centre="none")
                    os.remove(p + ".f32")
                local_paths.append(p)
            else:
                local_paths.append(_get(paths[i], os.path.join(staging, _shard_name(i, n))))
        local_out = out if not _has_scheme(out) else os.path.join(staging, "merged.twi")
        towerrt.merge_items(model, local_paths, _local(local_out))
        if _has_scheme(out):
            _put(local_out, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not keep_shards and not _has_scheme(out):
        shutil.rmtree(_local(shards_dir), ignore_errors=True)
    t_end = time.time()
    return {"rows": total, "shards": n, "empty_shards": n - len(paths), "precision": precision,
            "rows_per_shard_max": max((r["rows"] for r in built), default=0),
            "seconds": {"total": round(t_end - t0, 3), "ordinals": round(t_scan - t0, 3),
                        "shard_builds": round(t_build - t_scan, 3), "merge": round(t_end - t_build, 3),
                        "slowest_shard": round(max((r["seconds"] for r in built), default=0.0), 3)},
            "out": out}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m towerrt.spark", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build-items", help="build an item store from a catalog table, one shard per partition")
    b.add_argument("--model", required=True)
    b.add_argument("--catalog", required=True, help="table path (Parquet file or directory, or any --format source)")
    b.add_argument("--out", required=True, help="the merged store (.twi)")
    b.add_argument("--precision", default="f32", choices=["f32", "bf16", "int8"])
    b.add_argument("--shards", type=int, default=0, help="shards (default: the catalog's partitions)")
    b.add_argument("--id-column", default="item_id")
    b.add_argument("--format", default="parquet")
    b.add_argument("--order-column", help="row order for sources without a Parquet row index (values 0..N-1)")
    b.add_argument("--threads", type=int, default=1, help="builder threads per shard (one core per Spark task)")
    b.add_argument("--master", help="Spark master (default: spark-submit's, else local[*])")
    b.add_argument("--keep-shards", action="store_true")
    a = ap.parse_args(argv)
    from pyspark.sql import SparkSession
    # local mode: the Python workers run this interpreter (its numpy, pyarrow, towerrt)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("towerrt build-items")
    if a.master:
        builder = builder.master(a.master)
    spark = builder.getOrCreate()
    try:
        summary = build_items(spark, a.model, a.catalog, a.out, id_column=a.id_column, precision=a.precision,
                              shards=a.shards or None, fmt=a.format, order_column=a.order_column, threads=a.threads,
                              keep_shards=a.keep_shards)
    finally:
        spark.stop()
    json.dump(summary, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
