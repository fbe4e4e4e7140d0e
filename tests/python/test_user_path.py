#!/usr/bin/env python3
"""A user's path from a trained checkpoint and a table of their own data to
scores (README "From your own data"):

  export (configuration without fe_layers) -> towerrt info (no machine path)
  -> tools/towerrt_requests.py from a CSV / Parquet / .npz table, item ids
  and requests taken from the table's own columns -> build-items -> score,
  every score compared with the reference model's own prediction.

Data: tests/fixtures/trained/layer0 (the README's "Accelerate" variant,
which a default export would get wrong) and its test_inputs.npz, given
"own" item ids (10^12 + 1009 x the encoded movie id) and request ids (two
requests per user); multi-id genres without their padding (CSV: "3|7",
Parquet: a list column). Parquet needs pyarrow (tools/install_deps.sh
installs it); only that part is skipped without it.

  test_user_path.py TOWERRT_CLI TMP_DIR      (standard library only, + pyarrow)
"""

import csv
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools"))
import towerrt_format as tf  # noqa: E402

FIXTURE = os.path.join(REPO, "tests", "fixtures", "trained")
TOOLS = os.path.join(REPO, "tools")
REL_TOL = 1e-5
FAILS = []


def run(cmd, rc=0):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if p.returncode != rc:
        FAILS.append("exit %d (expected %d): %s\n%s" % (p.returncode, rc, " ".join(cmd), p.stderr.strip()))
    return p


def check(cond, msg):
    if not cond:
        FAILS.append(msg)
    return cond


def own_tables(tmp, model):
    """The fixture's test rows as a user's table: columns per field + 'movie' (own item id) + 'request'."""
    cols = tf.read_npz(os.path.join(FIXTURE, "test_inputs.npz"))
    n = cols["label"].shape[0]
    names = [f.name for side in (tf.SIDE_USER, tf.SIDE_ITEM) for f in model.side_fields(side)]
    multi = [f.name for side in (tf.SIDE_USER, tf.SIDE_ITEM) for f in model.side_fields(side) if f.kind == tf.KIND_MULTI]
    rows = []
    for name in names:
        a = cols[name]
        w = a.shape[1] if a.ndim == 2 else 1
        v = a.tolist_flat()
        rows.append([v[r * w:(r + 1) * w] if w > 1 else v[r] for r in range(n)])
    table = {nm: col for nm, col in zip(names, rows)}
    table["movie"] = [10 ** 12 + 1009 * m for m in table["movie_id"]]
    table["request"] = [u * 2 + (r % 2) for r, u in enumerate(table["user_id"])]
    for nm in multi:                                    # own data has no padding
        table[nm] = [[x for x in cell if x != 0] for cell in table[nm]]
    order = names + ["movie", "request"]
    with open(os.path.join(tmp, "rows.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(order)
        for r in range(n):
            w.writerow(["|".join(str(x) for x in table[c][r]) if c in multi else repr(table[c][r]) for c in order])
    arrays = {c: cols[c] for c in names}
    arrays["movie"] = tf.make_array(table["movie"], (n,), "<i8")
    arrays["request"] = tf.make_array(table["request"], (n,), "<i8")
    tf.write_npz(os.path.join(tmp, "rows.npz"), arrays)
    parquet = None
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
        parquet = os.path.join(tmp, "rows.parquet")
        pq.write_table(pa.table({c: table[c] for c in order}), parquet)
    except ImportError:
        print("SKIP: Parquet (pyarrow is not installed for %s)" % sys.executable)
    return table, order, multi, parquet


def expected_order(table):
    """Requests in order of first appearance of 'request', candidates in row order."""
    keys, rows = [], {}
    for r, k in enumerate(table["request"]):
        if k not in rows:
            keys.append(k)
            rows[k] = []
        rows[k].append(r)
    return [rows[k] for k in keys]


def body(path):
    with open(path) as f:
        return [l for l in f if not l.startswith("#")]


def score_and_compare(cli, tmp, model, items_txt, requests_txt, groups, tag):
    store, out = os.path.join(tmp, tag + ".twi"), os.path.join(tmp, tag + ".scores.txt")
    run([cli, "build-items", "--model", model, "--features", items_txt, "--out", store])
    run([cli, "score", "--model", model, "--items", store, "--requests", requests_txt, "--out", out])
    if FAILS:
        return
    pred = tf.load_npy(os.path.join(FIXTURE, "layer0", "test_pred.npy")).tolist_flat()
    got = tf.read_scores(out)
    check(len(got) == len(groups), "%s: %d score lines, expected %d requests" % (tag, len(got), len(groups)))
    worst = max(abs(s - pred[r]) / abs(pred[r]) for rs, line in zip(groups, got) for r, s in zip(rs, line))
    print("%s: %d requests, max relative error vs the reference %.3g" % (tag, len(got), worst))
    check(worst <= REL_TOL, "%s: max relative error %.3g > %g" % (tag, worst, REL_TOL))


def main(argv):
    if len(argv) != 3:
        print(__doc__)
        return 2
    cli, tmp = argv[1], argv[2]
    os.makedirs(tmp, exist_ok=True)
    p = lambda n: os.path.join(tmp, n)  # noqa: E731
    # 1. export as a user would: the configuration has no fe_layers
    with open(os.path.join(FIXTURE, "layer0", "config.json")) as f:
        conf = json.load(f)
    conf.pop("fe_layers")
    with open(p("features.json"), "w") as f:
        json.dump(conf, f)
    e = run([sys.executable, os.path.join(TOOLS, "export_inttower.py"), "--weights",
             os.path.join(FIXTURE, "layer0", "state_dict.npz"), "--config", p("features.json"), "--out", p("model.twr")])
    check("fe_layers [0] inferred from the checkpoint (unambiguous)" in e.stderr, "export log: " + e.stderr)
    # 2. towerrt info: file name and checksum, no directory
    info = run([cli, "info", p("model.twr")]).stdout
    check("state_dict.npz sha256:" in info, "towerrt info shows no 'state_dict.npz sha256:' source:\n" + info)
    meta = info.split("\nmetadata:", 1)[-1].split("\nfields", 1)[0]     # the first line names the file given
    check(FIXTURE not in meta and tmp not in meta and "general.source" in meta,
          "towerrt info's metadata shows a directory:\n" + meta)
    model = tf.read_twr(p("model.twr"))
    table, order, multi, parquet = own_tables(tmp, model)
    groups = expected_order(table)
    # 3. requests and catalog from each table format, own ids, grouped by 'request'
    req = [sys.executable, os.path.join(TOOLS, "towerrt_requests.py"), "--model", p("model.twr")]
    tables = [("csv", p("rows.csv")), ("npz", p("rows.npz"))] + ([("parquet", parquet)] if parquet else [])
    for tag, path in tables:
        run(req + ["--inputs", path, "--item-id", "movie", "--group-by", "request", "--requests",
                   p(tag + ".requests.txt"), "--items-out", p(tag + ".items.txt")])
    if FAILS:
        return report()
    items = tf.read_items(p("csv.items.txt"))
    check(sorted(i for i, _, _ in items) == sorted(set(table["movie"])), "items.txt is not keyed by the own ids")
    for tag, _ in tables[1:]:
        for kind in ("requests", "items"):
            check(body(p("csv.%s.txt" % kind)) == body(p("%s.%s.txt" % (tag, kind))),
                  "%s.%s.txt differs from the CSV's" % (tag, kind))
    score_and_compare(cli, tmp, p("model.twr"), p("csv.items.txt"), p("csv.requests.txt"), groups, "csv")
    # 4. a separate catalog: the requests table has only user fields, the id and the request
    users = [f.name for f in model.side_fields(tf.SIDE_USER)]
    item_cols = [f.name for f in model.side_fields(tf.SIDE_ITEM)]
    write_csv(p("log.csv"), table, users + ["movie", "request"], multi, range(len(table["movie"])))
    first = {}
    for r, m in enumerate(table["movie"]):
        first.setdefault(m, r)
    write_csv(p("catalog.csv"), table, ["movie"] + item_cols, multi, sorted(first.values(), reverse=True))
    run(req + ["--catalog", p("catalog.csv"), "--item-id", "movie", "--items-out", p("cat.items.txt")])
    run(req + ["--inputs", p("log.csv"), "--catalog", p("catalog.csv"), "--item-id", "movie", "--group-by", "request",
               "--requests", p("cat.requests.txt")])
    if not FAILS:
        check(body(p("cat.requests.txt")) == body(p("csv.requests.txt")), "requests from log + catalog differ")
        score_and_compare(cli, tmp, p("model.twr"), p("cat.items.txt"), p("cat.requests.txt"), groups, "catalog")
    # 5. what spreadsheets and dataframes write: a BOM, ids as "324.0", a multi-id cell with no id
    lenient(req, p, table, order, multi)
    # 6. errors a user's own table can hold, each named
    errors(req, p, table, order, multi)
    return report()


def write_csv(path, table, cols, multi, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in rows:
            w.writerow(["|".join(str(x) for x in table[c][r]) if c in multi else repr(table[c][r]) for c in cols])


def lenient(req, p, table, order, multi):
    t = {c: list(v) for c, v in table.items()}
    m0 = t["movie"][0]
    for r, m in enumerate(t["movie"]):
        if m == m0:
            t[multi[0]][r] = []
    write_csv(p("lenient.csv"), t, order, multi, range(len(t["movie"])))
    with open(p("lenient.csv"), encoding="utf-8") as f:
        text = f.read()
    lines = text.split("\n")
    hdr = lines[0].split(",")
    k = hdr.index("movie_id")
    lines[1:] = [",".join(c + ".0" if i == k else c for i, c in enumerate(l.split(","))) if l else l
                 for l in lines[1:]]
    with open(p("lenient.csv"), "w", encoding="utf-8-sig") as f:
        f.write("\n".join(lines))
    run(req + ["--inputs", p("lenient.csv"), "--item-id", "movie", "--group-by", "request", "--requests",
               p("lenient.requests.txt"), "--items-out", p("lenient.items.txt")])
    if not FAILS:
        row = [r for r in tf.read_items(p("lenient.items.txt")) if r[0] == m0][0]
        fields = tf.read_twr(p("model.twr")).side_fields(tf.SIDE_ITEM)
        start = sum(f.slots for f in fields if f.kind != tf.KIND_DENSE and fields.index(f) < fields.index(
            [f for f in fields if f.name == multi[0]][0]))
        want = [f.slots for f in fields if f.name == multi[0]][0]
        check(row[1][0] == t["movie_id"][0] and row[1][start:start + want] == [0] * want,
              "lenient CSV: item row %r" % (row,))


def errors(req, p, table, order, multi):
    def bad(name, edit, extra, needle):
        t = {c: list(v) for c, v in table.items()}
        edit(t)
        write_csv(p(name + ".csv"), t, order, multi, range(len(t["movie"])))
        e = run(req + ["--inputs", p(name + ".csv"), "--requests", p("x.txt"), "--items-out", p("x.items.txt")]
                + extra, rc=1)
        check(needle in e.stderr and "Traceback" not in e.stderr, "%s: stderr lacks %r:\n%s" % (name, needle, e.stderr))
    by = ["--item-id", "movie", "--group-by", "request"]
    bad("conflict", lambda t: t["item_mean_rating"].__setitem__(5, 99.0), by,
        "item id %d has different item fields" % table["movie"][5])
    bad("mixed_users", lambda t: t["request"].__setitem__(7, t["request"][0]), by, "have different user fields")
    bad("string_id", lambda t: t["movie"].__setitem__(3, "tt0114709"), by, "is not an integer")
    bad("long_multi", lambda t: t[multi[0]].__setitem__(2, [1, 2, 3, 4, 5]), by, "at most 4")
    bad("no_column", lambda t: None, ["--item-id", "movie_key"], "no column 'movie_key'")
    e = run(req + ["--inputs", p("log.csv"), "--catalog", p("catalog.csv"), "--item-id", "movie", "--requests",
                   p("x.txt")], rc=0)
    t = {c: list(v) for c, v in table.items()}
    t["movie"][0] = 42
    write_csv(p("unknown.csv"), t, order, multi, range(len(t["movie"])))
    e = run(req + ["--inputs", p("unknown.csv"), "--catalog", p("catalog.csv"), "--item-id", "movie", "--requests",
                   p("x.txt")], rc=1)
    check("not in the catalog (first: 42)" in e.stderr, "unknown id: " + e.stderr)


def report():
    for f in FAILS:
        print("FAIL: " + f)
    print("PASS" if not FAILS else "FAIL")
    return 0 if not FAILS else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
