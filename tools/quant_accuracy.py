#!/usr/bin/env python3
"""Measures what an item store's precision (f32, bf16, int8...) costs in
accuracy on a labelled held-out set.

  quant_accuracy.py --cli build/towerrt --model M.twr --inputs test.npz \\
      --items fp32.twi int8.twi [bf16.twi ...] [--names f32 int8 ...] [--logits]

INPUTS is an .npz of input columns plus a 'label' column (the reference's
test split format: tests/fixtures/trained/test_inputs.npz). Builds one request
per user (its distinct user row), whose candidates, by item id, are that
user's rows (as tools/towerrt_requests.py --by-id: item ids 1, 2, 3, ... in
order of first appearance of each distinct item row), scores the requests
with every item store (`towerrt score --items S`), and prints per store:

  * the test AUC over all rows, and its change vs the FIRST store;
  * the mean and the minimum over requests (k >= 2) of the Spearman rank
    correlation of the request's k scores with the first store's;
  * the largest absolute score difference from the first store.

The stores must hold every candidate's item id; build them from the item
features file this script writes with --items-out (the same ids), e.g.:

  quant_accuracy.py --model M.twr --inputs test.npz --items-out items.txt
  towerrt build-items --model M.twr --features items.txt --out fp32.twi
  towerrt quantize --precision int8 --items fp32.twi --out int8.twi
  quant_accuracy.py --cli towerrt --model M.twr --inputs test.npz --items fp32.twi int8.twi

or let the script do it: --make-stores DIR [--precisions bf16 int8] builds
DIR/items.txt, DIR/f32.twi (build-items) and one `towerrt quantize` store per
precision, then measures them (f32 first).

Scores are probabilities (the model's output); --logits passes --logits to
`towerrt score` (score before the sigmoid: differences are not squashed near
0 and 1). Ranks and AUC do not depend on it. Standard library only.
"""
import argparse
import os
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import towerrt_format as tf  # noqa: E402
import towerrt_requests as treq  # noqa: E402
from fe_mode_accuracy import auc  # noqa: E402


class UsageError(Exception):
    pass


def average_ranks(values):
    """1-based ranks, ties get their average rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for t in range(i, j + 1):
            ranks[order[t]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def spearman(a, b):
    """Spearman rank correlation (Pearson correlation of average ranks).
    Two constant score lists rank identically: 1.0; one constant and the other
    not: 0.0."""
    n = len(a)
    ra, rb = average_ranks(a), average_ranks(b)
    ma, mb = sum(ra) / n, sum(rb) / n
    sab = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    saa = sum((x - ma) ** 2 for x in ra)
    sbb = sum((y - mb) ** 2 for y in rb)
    if saa == 0.0 and sbb == 0.0:
        return 1.0
    if saa == 0.0 or sbb == 0.0:
        return 0.0
    return sab / (saa * sbb) ** 0.5


SEC_ITEM_CENTRE, SEC_ROW_CENTRES = 14, 15  # docs/format.md: centred stores (catalog mean, per item)


def store_info(path, centre=False):
    """-> (META dict, set of item ids) from an item store of any precision
    (reads the header, the section table, META and ID_MAP only); with
    centre=True also whether the store is centred (has ITEM_CENTRE)."""
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 64 or buf[:8] != tf.MAGIC_ITEMS:
        raise UsageError("%s: not a towerrt item store (.twi)" % path)
    (_, _, _, fsize, toff, nsec, _, _, _, _) = tf._HEADER.unpack_from(buf, 0)
    if fsize != len(buf) or not 1 <= nsec <= 16 or toff + 32 * nsec > len(buf):
        raise UsageError("%s: damaged item store header" % path)
    secs = {}
    for i in range(nsec):
        kind, _, off, size, _ = tf._SECTION.unpack_from(buf, toff + 32 * i)
        if off + size > len(buf):
            raise UsageError("%s: section %d runs past the end of the file" % (path, kind))
        secs[kind] = buf[off:off + size]
    if tf.SEC_META not in secs or tf.SEC_ID_MAP not in secs:
        raise UsageError("%s: no META or ID_MAP section" % path)
    meta, _ = tf.decode_meta(secs[tf.SEC_META])
    mb = secs[tf.SEC_ID_MAP]
    (n_slots,) = struct.unpack_from("<Q", mb, 0)
    if len(mb) < 16 + 16 * n_slots:
        raise UsageError("%s: ID_MAP is truncated" % path)
    ids = set()
    for s in range(n_slots):
        iid, row, _ = struct.unpack_from("<QII", mb, 16 + 16 * s)
        if row != tf.EMPTY_ROW:
            ids.add(iid)
    centring = "mean" if SEC_ITEM_CENTRE in secs else "row-mean" if SEC_ROW_CENTRES in secs else "no"
    return (meta, ids, centring) if centre else (meta, ids)


def build_requests(model, cols):
    """-> (requests by id, item rows for an item features file, groups)."""
    reqs, rows, groups = treq.build(model, cols, by_id=True)
    return reqs, rows, groups


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if p.returncode != 0:
        raise UsageError("command failed (exit %d): %s\n%s" % (p.returncode, " ".join(cmd), p.stderr.strip()))
    return p


def make_stores(cli, model_path, items_txt, out_dir, precisions):
    stores = [os.path.join(out_dir, "f32.twi")]
    run([cli, "build-items", "--model", model_path, "--features", items_txt, "--out", stores[0]])
    for prec in precisions:
        out = os.path.join(out_dir, "%s.twi" % prec)
        try:
            run([cli, "quantize", "--precision", prec, "--items", stores[0], "--out", out])
        except UsageError as e:
            raise UsageError("%s\n(does this towerrt have the quantize command? pass existing stores with --items)"
                             % e)
        stores.append(out)
    return stores


def score_all(cli, model_path, stores, reqs, logits, tmp):
    """Scores of every request with every store (a store, or a (model, store) pair)."""
    req_path = os.path.join(tmp, "requests.txt")
    tf.write_requests(req_path, reqs)
    per_store = []
    for s in stores:
        # a store, or a (model, store) pair: a quantized model on its store
        mp, s = s if isinstance(s, tuple) else (model_path, s)
        out = os.path.join(tmp, "scores.txt")
        cmd = [cli, "score", "--model", mp, "--items", s, "--requests", req_path, "--out", out]
        if logits:
            cmd.append("--logits")
        run(cmd)
        got = tf.read_scores(out)
        if len(got) != len(reqs) or any(len(g) != r.k() for g, r in zip(got, reqs)):
            raise UsageError("%s: %s wrote %d lines for %d requests (or a wrong number of scores)"
                             % (s, cli, len(got), len(reqs)))
        per_store.append(got)
    return per_store


def rank_stats(base, sc, min_k):
    """Spearman mean / min over the requests with k >= max(2, min_k), and their count."""
    rhos = [spearman(b, x) for b, x in zip(base, sc) if len(x) >= max(2, min_k)]
    if not rhos:
        return float("nan"), float("nan"), 0
    return sum(rhos) / len(rhos), min(rhos), len(rhos)


def measure(cli, model_path, stores, names, reqs, groups, labels, logits=False, tmp=None, min_k=0, catalog=None):
    """catalog: requests of each user against the whole catalog, or None."""
    per_store = score_all(cli, model_path, stores, reqs, logits, tmp)
    cat = score_all(cli, model_path, stores, catalog, logits, tmp) if catalog else None
    # scores back to input rows for the AUC
    n = len(labels)
    results = []
    base = per_store[0]
    base_auc = None
    for name, sc in zip(names, per_store):
        flat = [0.0] * n
        for (_, rs), line in zip(groups, sc):
            for r, v in zip(rs, line):
                flat[r] = v
        a = auc(labels, flat)
        if base_auc is None:
            base_auc = a
        maxdiff = 0.0
        for b_line, line in zip(base, sc):
            for x, y in zip(b_line, line):
                maxdiff = max(maxdiff, abs(x - y))
        mean, low, n_req = rank_stats(base, sc, min_k)
        r = {"name": name, "auc": a, "auc_delta": a - base_auc, "spearman_mean": mean, "spearman_min": low,
             "max_abs_diff": maxdiff, "requests": n_req}
        if cat:
            i = len(results)
            r["catalog_mean"], r["catalog_min"], r["catalog_requests"] = rank_stats(cat[0], cat[i], 0)
        results.append(r)
    return results


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cli", help="the towerrt binary")
    ap.add_argument("--model", required=True, help=".twr")
    ap.add_argument("--inputs", required=True, help=".npz of input columns + 'label'")
    ap.add_argument("--items", nargs="+", default=[], help="item stores (.twi); the first is the baseline")
    ap.add_argument("--names", nargs="+", help="a label per store (default: file names)")
    ap.add_argument("--items-out", help="write the item features file (the ids the requests use)")
    ap.add_argument("--make-stores", metavar="DIR",
                    help="build DIR/items.txt, DIR/f32.twi and a quantized store per --precisions")
    ap.add_argument("--precisions", nargs="*", default=["bf16", "int8"],
                    help="with --make-stores: precisions for `towerrt quantize` (default bf16 int8)")
    ap.add_argument("--logits", action="store_true", help="compare logits (towerrt score --logits)")
    ap.add_argument("--min-k", type=int, default=0,
                    help="Spearman over the requests with at least this many candidates only (default: all, k >= 2)")
    ap.add_argument("--catalog", action="store_true",
                    help="also score each user against the whole catalog (every item of the requests) and report "
                         "the Spearman mean / min of those requests")
    a = ap.parse_args(argv)
    try:
        model = tf.read_twr(a.model)
        cols = tf.read_npz(a.inputs)
        if "label" not in cols:
            raise UsageError("%s has no 'label' column" % a.inputs)
        labels = [float(v) for v in cols["label"].tolist_flat()]
        reqs, rows, groups = build_requests(model, cols)
        if a.items_out:
            tf.write_items(a.items_out, rows, comments=["distinct item rows of %s (quant_accuracy.py ids)"
                                                        % os.path.basename(a.inputs)])
            sys.stderr.write("quant_accuracy: wrote %s (%d items)\n" % (a.items_out, len(rows)))
        stores = list(a.items)
        if a.make_stores:
            if not a.cli:
                raise UsageError("--make-stores needs --cli")
            os.makedirs(a.make_stores, exist_ok=True)
            items_txt = os.path.join(a.make_stores, "items.txt")
            tf.write_items(items_txt, rows, comments=["distinct item rows of %s" % os.path.basename(a.inputs)])
            stores = make_stores(a.cli, a.model, items_txt, a.make_stores, a.precisions) + stores
        if not stores:
            if a.items_out:
                return 0
            raise UsageError("no item stores: give --items S1.twi S2.twi ... or --make-stores DIR")
        if len(stores) < 2:
            raise UsageError("give at least two item stores (the first is the baseline)")
        if not a.cli:
            raise UsageError("--cli is required to score")
        names = a.names or [os.path.splitext(os.path.basename(s))[0] for s in stores]
        if len(names) != len(stores):
            raise UsageError("%d names for %d stores" % (len(names), len(stores)))
        need = set(i for r in reqs for i in r.item_ids)
        for s in stores:
            meta, ids = store_info(s)
            missing = need - ids
            if missing:
                raise UsageError("%s lacks %d of the %d candidate item ids (e.g. %d): build it from the item "
                                 "features file written by --items-out" % (s, len(missing), len(need),
                                                                           min(missing)))
        with tempfile.TemporaryDirectory() as tmp:
            catalog = None
            if a.catalog:
                every = sorted(need)
                catalog = [tf.Request(r.user_ids, r.user_dense, item_ids=every) for r in reqs]
            res = measure(a.cli, a.model, stores, names, reqs, groups, labels, a.logits, tmp, a.min_k, catalog)
    except (UsageError, tf.FormatError, ValueError, OSError) as e:
        sys.stderr.write("quant_accuracy: error: %s\n" % e)
        return 1
    k = [r.k() for r in reqs]
    print("%d labelled rows, %d positive; %d requests (k %d..%d, mean %.1f), %d distinct items; scores: %s"
          % (len(labels), sum(1 for y in labels if y > 0.5), len(reqs), min(k), max(k), sum(k) / float(len(k)),
             len(rows), "logits" if a.logits else "probabilities"))
    if a.min_k:
        print("Spearman over the %d requests with k >= %d" % (res[0]["requests"], a.min_k))
    cat_head = " catalog Spearman mean | catalog Spearman min |" if a.catalog else ""
    print("| store | dtype | centred | test AUC | AUC delta | Spearman mean | Spearman min | max abs diff |" + cat_head)
    print("|---|---|---|---|---|---|---|---|" + ("---|---|" if a.catalog else ""))
    for s, r in zip(stores, res):
        meta, _, centred = store_info(s, centre=True)
        cat = " %.6f | %.6f |" % (r["catalog_mean"], r["catalog_min"]) if a.catalog else ""
        print("| %s | %s | %s | %.4f | %+.6f | %.6f | %.6f | %.3g |%s" % (
            r["name"], meta.get("items.dtype", "?"), centred, r["auc"], r["auc_delta"], r["spearman_mean"],
            r["spearman_min"], r["max_abs_diff"], cat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
