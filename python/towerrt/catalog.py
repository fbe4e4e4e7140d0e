"""Item stores from catalog tables, without a text catalog.

    import towerrt, towerrt.catalog as tc
    model = towerrt.Model("model.twr")
    tc.build_items(model, "catalog.parquet", "items.twi", id_column="item_id", precision="int8")

A catalog table has one column per item field of the model, named as the
model's FIELDS (model.item_fields()), plus an id column (unsigned 64-bit
item ids). A single-id field is an integer column; a multi-id field a list
column (or a 2-D array) of at most `width` ids, padded with 0; a dense field
a float column, or a list / 2-D array of exactly `width` values. Sources:
a dict of numpy arrays, a pyarrow Table or RecordBatch, an iterable of
RecordBatches, or the path of a Parquet file or a directory of them (read
in sorted file order, row groups in order: that order is the store's row
order). Rows stream through towerrt's builder in batches, so the memory is
one batch of columns plus the builder's id map.
"""

from __future__ import annotations

import glob
import os
from typing import Dict, Iterable, Iterator, List, Optional, Tuple, Union

import numpy as np

from . import Field, Items, ItemsBuilder, Model, PathLike

__all__ = ["item_features", "build_items", "parquet_files", "iter_batches"]


def _pa():
    try:
        import pyarrow as pa
        return pa
    except ImportError:  # pragma: no cover - numpy columns work without it
        return None


def _list_to_2d(arr, width: int, name: str, pad: bool) -> np.ndarray:
    """An Arrow list array -> (n, width) numpy, short rows padded with 0 when `pad`."""
    pa = _pa()
    if arr.null_count:
        raise ValueError("column %r: %d null cells" % (name, arr.null_count))
    if pa.types.is_fixed_size_list(arr.type):
        if arr.type.list_size != width:
            raise ValueError("column %r: lists of %d values, the field takes %d" % (name, arr.type.list_size, width))
        return arr.flatten().to_numpy(zero_copy_only=False).reshape(len(arr), width)
    offsets = arr.offsets.to_numpy()
    values = arr.flatten().to_numpy(zero_copy_only=False)
    lengths = np.diff(offsets)
    n = len(arr)
    if (lengths > width).any() or (not pad and (lengths != width).any()):
        r = int(np.argmax(lengths > width)) if (lengths > width).any() else int(np.argmax(lengths != width))
        raise ValueError("column %r, row %d: %d values, the field takes %s %d"
                         % (name, r, lengths[r], "at most" if pad else "exactly", width))
    if not pad:
        return values.reshape(n, width)
    out = np.zeros((n, width), dtype=values.dtype if values.size else np.int64)
    rows = np.repeat(np.arange(n), lengths)
    pos = np.arange(values.size) - np.repeat(offsets[:-1] - offsets[0], lengths)
    out[rows, pos] = values
    return out


def _column_2d(col, f: Field, n: Optional[int]) -> np.ndarray:
    """One field's column -> a 2-D numpy array (n, f.width)."""
    pa = _pa()
    pad = f.kind == "multi"
    if pa is not None and isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if pa is not None and isinstance(col, pa.Array):
        if pa.types.is_list(col.type) or pa.types.is_large_list(col.type) or pa.types.is_fixed_size_list(col.type):
            a = _list_to_2d(col, f.width, f.name, pad)
        else:
            if col.null_count:
                raise ValueError("column %r: %d null cells" % (f.name, col.null_count))
            a = col.to_numpy(zero_copy_only=False).reshape(-1, 1)
    else:
        a = np.asarray(col)
        if a.dtype == object:  # ragged python lists
            rows = [list(r) for r in col]
            if any(len(r) > f.width or (not pad and len(r) != f.width) for r in rows):
                raise ValueError("column %r: a row of the wrong length (field width %d)" % (f.name, f.width))
            a = np.array([r + [0] * (f.width - len(r)) for r in rows])
        if a.ndim == 1:
            a = a.reshape(-1, 1)
    if a.ndim != 2 or (a.shape[1] != f.width and not (pad and a.shape[1] < f.width)):
        raise ValueError("column %r has shape %s; the field takes width %d" % (f.name, a.shape, f.width))
    if pad and a.shape[1] < f.width:
        a = np.pad(a, ((0, 0), (0, f.width - a.shape[1])))
    if n is not None and a.shape[0] != n:
        raise ValueError("column %r has %d rows, the id column %d" % (f.name, a.shape[0], n))
    return a


def _as_ids(a: np.ndarray, name: str) -> np.ndarray:
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or not np.all(a == np.floor(a)) or np.any(np.abs(a) >= 2.0 ** 53):
            raise ValueError("column %r: values that are not exact integer ids" % name)
    elif a.dtype.kind not in "iu":
        raise ValueError("column %r: dtype %s is not an integer id" % (name, a.dtype))
    return a.astype(np.int64, copy=False)


def item_features(model: Model, columns, n: Optional[int] = None) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """The item feature rows of a table: (ids int64[n, item_id_slots],
    dense float32[n, item_dense_width] or None), fields in model order.
    columns: a mapping name -> column, or a pyarrow Table / RecordBatch."""
    fields = model.item_fields()
    get = (lambda name: columns.column(name)) if hasattr(columns, "column") and not isinstance(columns, dict) else columns.__getitem__
    names = set(columns.schema.names) if hasattr(columns, "schema") else set(columns)
    id_parts, dense_parts = [], []
    for f in fields:
        if f.name not in names:
            raise ValueError("no column %r (item field of the model; the table has %s)" % (f.name, sorted(names)))
        a = _column_2d(get(f.name), f, n)
        n = a.shape[0]
        if f.kind == "dense":
            dense_parts.append(a.astype(np.float32, copy=False))
        else:
            id_parts.append(_as_ids(a, f.name))
    n = n or 0
    ids = np.ascontiguousarray(np.concatenate(id_parts, axis=1) if id_parts else np.zeros((n, 0), np.int64))
    dense = np.ascontiguousarray(np.concatenate(dense_parts, axis=1)) if dense_parts else None
    return ids, dense


def item_ids(col, name: str = "item id") -> np.ndarray:
    """An id column -> uint64 (negative or non-integral values refused)."""
    pa = _pa()
    if pa is not None and isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if pa is not None and isinstance(col, pa.Array):
        if col.null_count:
            raise ValueError("column %r: %d null ids" % (name, col.null_count))
        if pa.types.is_decimal(col.type):  # Spark reads a Parquet uint64 as decimal(20,0)
            col = col.cast(pa.uint64())
        col = col.to_numpy(zero_copy_only=False)
    a = np.asarray(col)
    if a.dtype.kind == "i" and (a < 0).any():
        raise ValueError("column %r: negative item ids" % name)
    if a.dtype.kind not in "iu":
        raise ValueError("column %r: dtype %s is not an unsigned 64-bit item id" % (name, a.dtype))
    return np.ascontiguousarray(a.astype(np.uint64, copy=False))


def parquet_files(path: PathLike) -> List[str]:
    """A Parquet file, or the *.parquet files under a directory, sorted."""
    p = os.fspath(path)
    if os.path.isdir(p):
        files = sorted(glob.glob(os.path.join(p, "**", "*.parquet"), recursive=True))
        if not files:
            raise ValueError("%s: no *.parquet files" % p)
        return files
    return [p]


def iter_batches(source, columns: List[str], batch_rows: int = 65536) -> Iterator:
    """Record batches (or dicts of numpy columns) of `source`, in row order."""
    if isinstance(source, (str, os.PathLike)):
        import pyarrow.parquet as pq
        for path in parquet_files(source):
            yield from pq.ParquetFile(path).iter_batches(batch_size=batch_rows, columns=columns)
        return
    if isinstance(source, dict):
        n = len(next(iter(source.values()))) if source else 0
        for lo in range(0, n, batch_rows):
            yield {k: v[lo:lo + batch_rows] for k, v in source.items()}
        return
    pa = _pa()
    if pa is not None and isinstance(source, pa.Table):
        yield from source.select(columns).to_batches(max_chunksize=batch_rows)
        return
    if pa is not None and isinstance(source, pa.RecordBatch):
        yield source
        return
    yield from source  # an iterable of batches


def build_items(model: Model, source, out: PathLike, *, id_column: str = "item_id", precision: str = "f32",
                tower_precision: str = "f32", threads: int = 0, batch_rows: int = 65536,
                shard: Optional[Tuple[int, int]] = None, expected_rows: int = 0) -> int:
    """Builds the item store of a catalog table at `out`; returns the rows
    kept. precision: the store's ("f32", or "bf16" / "int8": built in f32,
    then quantized per row, as towerrt quantize does); tower_precision: the
    item tower's arithmetic; shard: (i, n) keeps shard i of n (every row is
    read; towerrt.spark reads only a shard's own rows)."""
    out = os.fspath(out)
    f32_path = out if precision == "f32" else out + ".f32.part"
    columns = [id_column] + [f.name for f in model.item_fields()]
    try:
        with ItemsBuilder(model, f32_path, tower_precision=tower_precision, threads=threads, shard=shard,
                          expected_rows=expected_rows) as b:
            for batch in iter_batches(source, columns, batch_rows):
                get = batch.column if hasattr(batch, "column") else batch.__getitem__
                keys = item_ids(get(id_column), id_column)
                ids, dense = item_features(model, batch, keys.shape[0])
                b.append(keys, ids, dense)
        rows = b.rows
        if precision != "f32":
            # uncentred, so that a sharded build (towerrt.spark) merges into these very bytes;
            # to centre, build f32 and call Items.quantize (docs/quantization.md)
            Items(f32_path).quantize(out, precision, centre="none")
    finally:
        if precision != "f32" and os.path.exists(f32_path):
            os.remove(f32_path)
    return rows
