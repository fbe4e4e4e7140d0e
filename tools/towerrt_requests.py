#!/usr/bin/env python3
"""Write towerrt requests / item features text files (docs/format.md) from
the reference's input columns, standard library only.

The reading/writing functions live in towerrt_format.py (Request,
write_requests, read_requests, write_items, read_items); this module adds the
conversion from per-column arrays (an .npz with one array per input column,
named as the model's FIELDS, as the reference's predict() takes them) and a
command line:

  python3 tools/towerrt_requests.py --model M.twr --inputs cols.npz --requests R.txt
      [--by-id --items-out F.txt]

One request per distinct user row (all user fields equal), its rows as
candidates in input order; by features, or (--by-id) by item id with the
distinct item rows written to an item features file (ids 1, 2, 3, ... in
order of first appearance, or --id-base/--id-stride).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import towerrt_format as tf  # noqa: E402
from towerrt_format import (Request, read_items, read_requests, write_items,  # noqa: E402,F401
                            write_requests)


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


def build(model, cols, by_id=False, id_base=1, id_stride=1):
    """-> (requests, item_rows or None, groups)."""
    users = side_rows(model, cols, tf.SIDE_USER)
    items = side_rows(model, cols, tf.SIDE_ITEM)
    groups = group_by_user(users)
    if not by_id:
        return [Request(u[0], u[1], items=[items[r] for r in rs]) for u, rs in groups], None, groups
    ids = {}
    rows = []
    for it in items:
        if it not in ids:
            ids[it] = (id_base + id_stride * len(ids)) & tf.U64_MASK
            rows.append((ids[it], list(it[0]), list(it[1])))
    return [Request(u[0], u[1], item_ids=[ids[items[r]] for r in rs]) for u, rs in groups], rows, groups


def main(argv=None):
    ap = argparse.ArgumentParser(prog="towerrt_requests.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help=".twr (for the field layout)")
    ap.add_argument("--inputs", required=True, help=".npz, one array per input column")
    ap.add_argument("--requests", required=True, help="requests file to write")
    ap.add_argument("--by-id", action="store_true", help="candidates by item id (needs --items-out)")
    ap.add_argument("--items-out", help="item features file to write (with --by-id)")
    ap.add_argument("--id-base", type=int, default=1)
    ap.add_argument("--id-stride", type=int, default=1)
    a = ap.parse_args(argv)
    if a.by_id and not a.items_out:
        ap.error("--by-id needs --items-out")
    try:
        model = tf.read_twr(a.model)
        cols = tf.read_npz(a.inputs)
        reqs, rows, groups = build(model, cols, a.by_id, a.id_base, a.id_stride)
    except (ValueError, OSError) as e:
        sys.stderr.write("towerrt_requests: error: %s\n" % e)
        return 1
    write_requests(a.requests, reqs, comments=["from %s" % os.path.basename(a.inputs)])
    if rows is not None:
        write_items(a.items_out, rows, comments=["distinct item rows of %s" % os.path.basename(a.inputs)])
    sys.stderr.write("towerrt_requests: %d requests, %d candidates%s\n" % (
        len(reqs), sum(r.k() for r in reqs), "" if rows is None else ", %d items" % len(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
