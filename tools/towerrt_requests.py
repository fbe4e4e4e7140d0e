#!/usr/bin/env python3
"""Write towerrt requests / item features text files (docs/format.md) from a
table of the model's input columns: an .npz (one array per column, as the
reference's predict() takes them), a CSV file or a Parquet file (needs
pyarrow). Standard library only for .npz and CSV.

The reading/writing functions live in towerrt_format.py (Request,
write_requests, read_requests, write_items, read_items); this module adds the
conversion from input columns and a command line:

  python3 tools/towerrt_requests.py --model M.twr --inputs TABLE --requests R.txt
      [--by-id --items-out F.txt] [--item-id COL] [--group-by COL[,COL..]]
      [--catalog TABLE]

Columns are named as the model's FIELDS (the feature configuration's names),
values already encoded as the reference's preprocessing leaves them. A
multi-id field is one column: a list (Parquet), a 2-D array (.npz), or ids
separated by '|', ';', ',' or spaces (CSV), padded with 0 to its maxlen; a
dense field wider than 1 likewise.

Requests: by default one per distinct user row (all user fields equal), in
order of first appearance; --group-by COL: one per distinct value of COL
(e.g. a request or session id; its rows must share one user row). Its rows,
in input order, are the candidates: by features, or (--by-id) by item id with
the distinct item rows written to an item features file. Item ids: 1, 2, 3,
... in order of first appearance (or --id-base/--id-stride); --item-id COL:
the column's own ids (unsigned 64-bit integers), which the item store then
maps (towerrt build-items). --catalog TABLE: the item rows of the item
features file come from that table (its item fields and the --item-id
column); the requests table then needs only the user fields, the id column
(and the --group-by column).
"""

import argparse
import csv
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import towerrt_format as tf  # noqa: E402
from towerrt_format import (Request, read_items, read_requests, write_items,  # noqa: E402,F401
                            write_requests)

CELL_SPLIT = re.compile(r"[|;,\s]+")


def side_rows(model, cols, side):
    """cols: name -> NpyArray (or anything with .shape and .tolist_flat()).
    -> list of (ids tuple, dense tuple) per row, in FIELDS order. Dense values
    are rounded to float32, as the reference feeds them (predict(): .float())."""
    fields = model.side_fields(side)
    n = None
    flat = []
    for f in fields:
        if f.name not in cols:
            raise ValueError("no input column %r (field of the model)" % f.name)
        a = cols[f.name]
        width = f.slots if f.kind != tf.KIND_DENSE else f.dim
        rows = a.shape[0]
        w = a.shape[1] if len(a.shape) == 2 else 1
        if w != width or len(a.shape) > 2:
            raise ValueError("column %r has shape %r; field needs width %d" % (f.name, a.shape, width))
        if n is None:
            n = rows
        elif rows != n:
            raise ValueError("column %r has %d rows, others %d" % (f.name, rows, n))
        flat.append((f, a.tolist_flat(), width))
    out = []
    for r in range(n or 0):
        ids, dense = [], []
        for f, vals, width in flat:
            chunk = vals[r * width:(r + 1) * width]
            if f.kind == tf.KIND_DENSE:
                dense += [tf.f32_round(float(v)) for v in chunk]
            else:
                ids += [int(v) for v in chunk]
        out.append((tuple(ids), tuple(dense)))
    return out


def group_by_user(users):
    """-> list of (user row, [row indices]) in order of first appearance."""
    order, groups = [], {}
    for r, u in enumerate(users):
        if u not in groups:
            groups[u] = []
            order.append(u)
        groups[u].append(r)
    return [(u, groups[u]) for u in order]


def group_by_key(users, keys, what):
    """One group per distinct key (order of first appearance); every row of a
    group must have the same user row. -> list of (user row, [row indices])."""
    order, groups = [], {}
    for r, (u, k) in enumerate(zip(users, keys)):
        if k not in groups:
            groups[k] = (u, [])
            order.append(k)
        elif groups[k][0] != u:
            first = groups[k][1][0]
            raise ValueError("request %r (%s): rows %d and %d have different user fields (%s vs %s); a request "
                             "has one user" % (k, what, first, r, _row_str(groups[k][0]), _row_str(u)))
        groups[k][1].append(r)
    return [groups[k] for k in order]


def _row_str(row):
    return " ".join(str(x) for x in row[0]) + (" ; " + " ".join(repr(x) for x in row[1]) if row[1] else "")


def _item_id(v):
    """A cell -> int item id, or None when it is not an integer."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float):      # exact only below 2^53
        return int(v) if v.is_integer() and abs(v) < 2.0 ** 53 else None
    s = str(v).strip()
    return int(s) if re.match(r"^[+-]?\d+$", s) else None


def check_item_ids(ids, what):
    out = []
    for r, v in enumerate(ids):
        iid = _item_id(v)
        if iid is None:
            raise ValueError("%s row %d: item id %r is not an integer (item stores key items by unsigned "
                             "64-bit ids: map other ids to integers first)" % (what, r, v))
        if not 0 <= iid <= tf.U64_MASK:
            raise ValueError("%s row %d: item id %d is outside 0 .. 2^64-1" % (what, r, iid))
        out.append(iid)
    return out


def item_table(items, ids, what):
    """Distinct (id, item row) pairs in order of first appearance; the same id
    with two different item rows is an error. -> list of (id, ids, dense)."""
    seen, rows = {}, []
    for r, (iid, it) in enumerate(zip(ids, items)):
        if iid not in seen:
            seen[iid] = (r, it)
            rows.append((iid, list(it[0]), list(it[1])))
        elif seen[iid][1] != it:
            raise ValueError("%s: item id %d has different item fields in rows %d and %d (%s vs %s)"
                             % (what, iid, seen[iid][0], r, _row_str(seen[iid][1]), _row_str(it)))
    return rows


def build(model, cols, by_id=False, id_base=1, id_stride=1, item_ids=None, group_keys=None, catalog=None,
          what="inputs"):
    """-> (requests, item_rows or None, groups). item_ids: the rows' own item
    ids (implies by_id); group_keys: one request per distinct key instead of
    per distinct user row; catalog: item rows (id, ids, dense) for the item
    features file (then cols need no item fields)."""
    users = side_rows(model, cols, tf.SIDE_USER)
    if group_keys is None:
        groups = group_by_user(users)
    else:
        groups = group_by_key(users, group_keys, what)
    by_id = by_id or item_ids is not None or catalog is not None
    if not by_id:
        items = side_rows(model, cols, tf.SIDE_ITEM)
        return [Request(u[0], u[1], items=[items[r] for r in rs]) for u, rs in groups], None, groups
    if catalog is not None:
        if item_ids is None:
            raise ValueError("a catalog needs the requests' item ids (--item-id)")
        known = set(r[0] for r in catalog)
        missing = [i for i in item_ids if i not in known]
        if missing:
            raise ValueError("%s: %d candidate rows name item ids that are not in the catalog (first: %d)"
                             % (what, len(missing), missing[0]))
        rows = catalog
    else:
        items = side_rows(model, cols, tf.SIDE_ITEM)
        if item_ids is None:
            ids = {}
            for it in items:
                if it not in ids:
                    ids[it] = (id_base + id_stride * len(ids)) & tf.U64_MASK
            item_ids = [ids[it] for it in items]
        rows = item_table(items, item_ids, what)
    return [Request(u[0], u[1], item_ids=[item_ids[r] for r in rs]) for u, rs in groups], rows, groups


# --------------------------------------------------------------------------
# tables: .npz, CSV, Parquet -> {field name: NpyArray} plus extra columns

def table_format(path):
    low = path.lower()
    for ext, fmt in ((".npz", "npz"), (".csv", "csv"), (".parquet", "parquet"), (".pq", "parquet")):
        if low.endswith(ext):
            return fmt
    raise ValueError("%s: unknown table format (expected .npz, .csv or .parquet)" % path)


def _cell_values(cell, what, may_be_empty):
    """A cell -> list of its values (a list cell, a string of separated values, or a scalar)."""
    if isinstance(cell, (list, tuple)):
        vals = list(cell)
    elif hasattr(cell, "tolist"):
        v = cell.tolist()
        vals = v if isinstance(v, list) else [v]
    elif isinstance(cell, str):
        vals = [x for x in CELL_SPLIT.split(cell.strip()) if x != ""]
    else:
        vals = [] if cell is None else [cell]
    if not vals and not may_be_empty:
        raise ValueError("%s: empty cell" % what)
    return vals


def _field_column(field, cells, where):
    """Cells of one model field -> NpyArray (n, width) or (n,)."""
    dense = field.kind == tf.KIND_DENSE
    multi = field.kind == tf.KIND_MULTI
    width = field.dim if dense else field.slots
    flat = []
    for r, cell in enumerate(cells):
        what = "%s, column %r, row %d" % (where, field.name, r)
        vals = _cell_values(cell, what, multi)          # a multi-id field may hold no id: all padding
        try:
            vals = [float(v) for v in vals] if dense else [_to_int(v) for v in vals]
        except ValueError:
            raise ValueError("%s: %r is not %s" % (what, cell, "a number" if dense else "an encoded integer id"))
        if multi and len(vals) <= width:
            vals += [0] * (width - len(vals))          # 0 is padding in multi-id fields
        if len(vals) != width:
            raise ValueError("%s: %d values, the field takes %s %d" % (what, len(vals),
                             "at most" if multi else "exactly", width))
        flat += vals
    shape = (len(cells), width) if width != 1 else (len(cells),)
    return tf.make_array(flat, shape, "<f8" if dense else "<i8")


def _to_int(v):
    """An encoded id: an int, or an integral float / numeric string ('3', '3.0')."""
    if isinstance(v, bool):
        raise ValueError(v)
    if isinstance(v, int):
        return v
    f = float(v)
    if not f.is_integer() or abs(f) >= 2.0 ** 53:
        raise ValueError(v)
    return int(f)


def _read_csv(path):
    with open(path, "r", newline="", encoding="utf-8-sig") as f:      # -sig: a spreadsheet's BOM
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise ValueError("%s: empty CSV file" % path)
        header = [h.strip() for h in header]
        cols = {h: [] for h in header}
        for n, row in enumerate(reader, 2):
            if not row:
                continue
            if len(row) != len(header):
                raise ValueError("%s:%d: %d cells, the header has %d" % (path, n, len(row), len(header)))
            for h, v in zip(header, row):
                cols[h].append(v)
    return cols


def _read_parquet(path, names):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError("%s: reading Parquet needs pyarrow, which is not installed for %s "
                         "(python3 -m pip install pyarrow; tools/install_deps.sh installs it)"
                         % (path, sys.executable))
    try:
        schema = pq.read_schema(path)
        wanted = [n for n in schema.names if n in names]
        t = pq.read_table(path, columns=wanted)
    except Exception as e:  # noqa: BLE001 - pyarrow raises its own types
        raise ValueError("%s: not a readable Parquet file (%s)" % (path, e))
    return {n: t.column(n).to_pylist() for n in wanted}


def read_table(path, model, extra=()):
    """-> (cols: field name -> NpyArray for the model's fields the table has,
    extras: name -> list of values for the columns named in extra)."""
    fmt = table_format(path)
    fields = [f for side in (tf.SIDE_USER, tf.SIDE_ITEM) for f in model.side_fields(side)]
    if fmt == "npz":
        arrays = tf.read_npz(path)
        cols = {f.name: arrays[f.name] for f in fields if f.name in arrays}
        raw = {n: arrays[n].tolist_flat() for n in extra if n in arrays and arrays[n].ndim == 1}
        bad = [n for n in extra if n in arrays and arrays[n].ndim != 1]
        if bad:
            raise ValueError("%s: column %r has shape %r; an id or grouping column must be 1-D"
                             % (path, bad[0], arrays[bad[0]].shape))
    else:
        raw = _read_csv(path) if fmt == "csv" else _read_parquet(path, set(f.name for f in fields) | set(extra))
        cols = {f.name: _field_column(f, raw[f.name], path) for f in fields if f.name in raw}
    for n in extra:
        if n not in raw:
            raise ValueError("%s: no column %r" % (path, n))
    return cols, {n: raw[n] for n in extra}


def _split_names(s):
    return [x for x in (s or "").split(",") if x]


def _group_keys(extras, names):
    if not names:
        return None
    cols = [[v.strip() if isinstance(v, str) else v for v in extras[n]] for n in names]
    return cols[0] if len(cols) == 1 else list(zip(*cols))


def from_tables(model, inputs=None, item_id=None, group_by=None, catalog=None, by_id=False, id_base=1,
                id_stride=1):
    """The command line's work: -> (requests or None, item rows or None, groups)."""
    cat_rows = None
    if catalog is not None:
        if not item_id:
            raise ValueError("--catalog needs --item-id (the column that keys the catalog)")
        ccols, cext = read_table(catalog, model, [item_id])
        items = side_rows(model, ccols, tf.SIDE_ITEM)
        cat_rows = item_table(items, check_item_ids(cext[item_id], "%s, column %r" % (catalog, item_id)), catalog)
    if inputs is None:
        return None, cat_rows, None
    group = _split_names(group_by)
    extra = ([item_id] if item_id else []) + [g for g in group if g != item_id]
    cols, ext = read_table(inputs, model, extra)
    ids = check_item_ids(ext[item_id], "%s, column %r" % (inputs, item_id)) if item_id else None
    return build(model, cols, by_id, id_base, id_stride, item_ids=ids, group_keys=_group_keys(ext, group),
                 catalog=cat_rows, what=os.path.basename(inputs))


def main(argv=None):
    ap = argparse.ArgumentParser(prog="towerrt_requests.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help=".twr (for the field layout)")
    ap.add_argument("--inputs", help="table of requests' rows: .npz, .csv or .parquet")
    ap.add_argument("--requests", help="requests file to write")
    ap.add_argument("--by-id", action="store_true", help="candidates by item id (needs --items-out)")
    ap.add_argument("--items-out", help="item features file to write (with --by-id / --item-id / --catalog)")
    ap.add_argument("--item-id", help="column holding each row's own item id (implies --by-id)")
    ap.add_argument("--group-by", help="column(s) (comma-separated) naming each row's request "
                                       "(default: one request per distinct user row)")
    ap.add_argument("--catalog", help="table of item rows (item fields + the --item-id column) for --items-out")
    ap.add_argument("--id-base", type=int, default=1)
    ap.add_argument("--id-stride", type=int, default=1)
    a = ap.parse_args(argv)
    by_id = a.by_id or a.item_id is not None or a.catalog is not None
    if by_id and not a.items_out and not a.catalog:
        ap.error("candidates by id (--by-id / --item-id) need --items-out (or --catalog)")
    if a.inputs and not a.requests:
        ap.error("--inputs needs --requests")
    if not a.inputs and not (a.catalog and a.items_out):
        ap.error("give --inputs and --requests, or --catalog and --items-out")
    try:
        model = tf.read_twr(a.model)
        reqs, rows, _ = from_tables(model, a.inputs, a.item_id, a.group_by, a.catalog, by_id, a.id_base, a.id_stride)
        src = os.path.basename(a.inputs or a.catalog)
        if reqs is not None:
            write_requests(a.requests, reqs, comments=["from %s" % src])
        if rows is not None and a.items_out:
            note = "item rows of %s" % os.path.basename(a.catalog) if a.catalog else "distinct item rows of %s" % src
            write_items(a.items_out, rows, comments=[note])
    except (ValueError, OSError, tf.FormatError) as e:
        sys.stderr.write("towerrt_requests: error: %s\n" % e)
        return 1
    sys.stderr.write("towerrt_requests: %s%s\n" % (
        "" if reqs is None else "%d requests, %d candidates" % (len(reqs), sum(r.k() for r in reqs)),
        "" if rows is None or not a.items_out else "%s%d items" % (", " if reqs is not None else "", len(rows))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
