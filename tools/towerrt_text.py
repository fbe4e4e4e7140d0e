"""The text files, standard library only (docs/format.md): requests
(towerrt-requests 1), item features (towerrt-items 1) and scores.
towerrt_format.py re-exports every name; import that.
"""

import math

from towerrt_container import U64_MASK, FormatError


def _fmt_float(x):
    """Exact text for a float32/float64 value (round-trips through strtod)."""
    x = float(x)
    if not math.isfinite(x):
        raise FormatError("dense value %r is not finite" % x)
    return repr(x)


def _row_text(ids, dense):
    s = " ".join(str(int(i)) for i in ids)
    if dense is not None and len(dense):
        s += " ; " + " ".join(_fmt_float(v) for v in dense)
    return s


class Request(object):
    """user_ids / user_dense: the user row; either item_ids (candidates by id)
    or items: list of (ids, dense) (candidates by features)."""
    __slots__ = ("user_ids", "user_dense", "item_ids", "items")

    def __init__(self, user_ids, user_dense=(), item_ids=None, items=None):
        self.user_ids = list(user_ids)
        self.user_dense = list(user_dense)
        self.item_ids = None if item_ids is None else list(item_ids)
        self.items = None if items is None else [(list(a), list(b)) for a, b in items]

    def k(self):
        return len(self.item_ids) if self.item_ids is not None else len(self.items)


def requests_text(requests, comments=(), ids_per_line=16):
    out = ["towerrt-requests 1"]
    out += ["# " + c for c in comments]
    for r in requests:
        out.append("user " + _row_text(r.user_ids, r.user_dense))
        if r.item_ids is not None:
            if not r.item_ids:
                raise FormatError("request without candidates")
            for i in range(0, len(r.item_ids), ids_per_line):
                out.append("items " + " ".join(str(int(x)) for x in r.item_ids[i:i + ids_per_line]))
        else:
            if not r.items:
                raise FormatError("request without candidates")
            for ids, dense in r.items:
                out.append("item " + _row_text(ids, dense))
        out.append("end")
    return "\n".join(out) + "\n"


def write_requests(path, requests, comments=(), ids_per_line=16):
    with open(path, "w") as f:
        f.write(requests_text(requests, comments, ids_per_line))


def _parse_row(tokens, where):
    if ";" in tokens:
        k = tokens.index(";")
        ids, dense = tokens[:k], tokens[k + 1:]
        if ";" in dense:
            raise FormatError("%s: more than one ';'" % where)
    else:
        ids, dense = tokens, []
    try:
        return [int(t) for t in ids], [float(t) for t in dense]
    except ValueError as e:
        raise FormatError("%s: %s" % (where, e))


def _lines(path):
    with open(path, "r") as f:
        for n, line in enumerate(f, 1):
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            yield n, s


def read_requests(path):
    reqs = []
    cur = None
    header = False
    for n, s in _lines(path):
        where = "%s:%d" % (path, n)
        # allow ';' glued to numbers
        tokens = s.replace(";", " ; ").split()
        if not header:
            if tokens != ["towerrt-requests", "1"]:
                raise FormatError("%s: expected 'towerrt-requests 1'" % where)
            header = True
            continue
        d = tokens[0]
        if d == "user":
            if cur is not None:
                raise FormatError("%s: 'user' before 'end'" % where)
            ids, dense = _parse_row(tokens[1:], where)
            cur = Request(ids, dense)
        elif d == "items":
            if cur is None or cur.items is not None:
                raise FormatError("%s: 'items' outside a request or mixed with 'item'" % where)
            if cur.item_ids is None:
                cur.item_ids = []
            cur.item_ids += [int(t) for t in tokens[1:]]
        elif d == "item":
            if cur is None or cur.item_ids is not None:
                raise FormatError("%s: 'item' outside a request or mixed with 'items'" % where)
            if cur.items is None:
                cur.items = []
            cur.items.append(_parse_row(tokens[1:], where))
        elif d == "end":
            if cur is None or (cur.item_ids is None and cur.items is None):
                raise FormatError("%s: 'end' without a request with candidates" % where)
            reqs.append(cur)
            cur = None
        else:
            raise FormatError("%s: unknown directive %r" % (where, d))
    if not header:
        raise FormatError("%s: empty file" % path)
    if cur is not None:
        raise FormatError("%s: last request has no 'end'" % path)
    return reqs


def items_text(rows, comments=()):
    """rows: list of (item_id, ids, dense)."""
    out = ["towerrt-items 1"] + ["# " + c for c in comments]
    seen = set()
    for iid, ids, dense in rows:
        if not 0 <= int(iid) <= U64_MASK:
            raise FormatError("item id %r is not u64" % (iid,))
        if iid in seen:
            raise FormatError("item id %d appears twice" % iid)
        seen.add(iid)
        out.append("%d %s" % (iid, _row_text(ids, dense)))
    return "\n".join(out) + "\n"


def write_items(path, rows, comments=()):
    with open(path, "w") as f:
        f.write(items_text(rows, comments))


def read_items(path):
    rows = []
    header = False
    for n, s in _lines(path):
        where = "%s:%d" % (path, n)
        tokens = s.replace(";", " ; ").split()
        if not header:
            if tokens != ["towerrt-items", "1"]:
                raise FormatError("%s: expected 'towerrt-items 1'" % where)
            header = True
            continue
        iid = int(tokens[0])
        ids, dense = _parse_row(tokens[1:], where)
        rows.append((iid, ids, dense))
    return rows


def write_scores(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(" ".join("%.9g" % v for v in r) + "\n")


def read_scores(path):
    """One list of floats per request; None for a request that
    `towerrt score --on-error skip` refused (its line: "error STATUS")."""
    with open(path) as f:
        return [None if line.startswith("error ") else [float(t) for t in line.split()] for line in f if line.strip()]
