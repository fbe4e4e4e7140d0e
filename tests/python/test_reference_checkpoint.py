#!/usr/bin/env python3
"""End-to-end check against a checkpoint made by the unmodified reference
code (tests/fixtures/reference-inttower and reference-inttower-live, from
shared/fixtures). Standard library only.

  test_reference_checkpoint.py TOWERRT_CLI FIXTURE_DIR TMP_DIR

1. exports FIXTURE_DIR/state_dict.npz + config.json with
   tools/export_inttower.py (its command line);
2. turns test_inputs.npz into requests: one request per distinct user row,
   its test rows as candidates, (a) by features and (b) by item id from an
   item store made with `TOWERRT_CLI build-items`;
3. runs `TOWERRT_CLI score` and checks every prediction against
   official_pred.npy within 1e-5 relative;
4. reports what the scores rank (test AUC, per-user AUC, distinct scores
   per request) and checks the AUC equals the reference predictions'.

TOWERRT_CLI may also be a .py file with the same command line (e.g.
tools/reference/twr_eval.py); it is then run with this Python.
Exit status 0 when every prediction matches.
"""

import bisect
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools"))
import towerrt_format as tf  # noqa: E402

REL_TOL = 1e-5


def cli_cmd(cli):
    return [sys.executable, cli] if cli.endswith(".py") else [cli]


def run(cmd, what):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if p.returncode != 0:
        sys.stderr.write("FAIL: %s exited with %d\n  command: %s\n  stdout: %s\n  stderr: %s\n"
                         % (what, p.returncode, " ".join(cmd), p.stdout[-2000:], p.stderr[-4000:]))
        sys.exit(1)
    return p


def side_rows(model, cols, side, n):
    """Per test row: (ids, dense) of one side, in FIELDS order."""
    fields = model.side_fields(side)
    flat = {}
    for f in fields:
        if f.name not in cols:
            sys.stderr.write("FAIL: test_inputs.npz has no column %r (field of the model)\n" % f.name)
            sys.exit(1)
        a = cols[f.name]
        width = f.slots if f.kind != tf.KIND_DENSE else f.dim
        w = a.shape[1] if a.ndim == 2 else 1
        if a.shape[0] != n or w != width:
            sys.stderr.write("FAIL: column %r has shape %r; expected (%d, %d)\n" % (f.name, a.shape, n, width))
            sys.exit(1)
        flat[f.name] = (a.tolist_flat(), width)
    rows = []
    for r in range(n):
        ids, dense = [], []
        for f in fields:
            vals, width = flat[f.name]
            chunk = vals[r * width:(r + 1) * width]
            if f.kind == tf.KIND_DENSE:
                # base_tower.predict feeds .float(): the model sees float32 values
                dense += [tf.f32_round(float(v)) for v in chunk]
            else:
                ids += [int(v) for v in chunk]
        rows.append((tuple(ids), tuple(dense)))
    return rows


def compare(tag, scores, requests_rows, official):
    if len(scores) != len(requests_rows):
        print("FAIL [%s]: %d output lines for %d requests" % (tag, len(scores), len(requests_rows)))
        return False
    max_abs = max_rel = 0.0
    worst = None
    bad = 0
    for q, (line, rows) in enumerate(zip(scores, requests_rows)):
        if len(line) != len(rows):
            print("FAIL [%s]: request %d: %d scores for %d candidates" % (tag, q, len(line), len(rows)))
            return False
        for got, r in zip(line, rows):
            want = official[r]
            ae = abs(got - want)
            re_ = ae / abs(want) if want else ae
            if re_ > max_rel:
                max_rel, worst = re_, (q, r, got, want)
            max_abs = max(max_abs, ae)
            if not re_ <= REL_TOL:
                bad += 1
    n = sum(len(r) for r in requests_rows)
    print("[%s] %d requests, %d predictions: max abs err %.3g, max rel err %.3g%s"
          % (tag, len(requests_rows), n, max_abs, max_rel,
             "" if worst is None else " (request %d, test row %d: got %.9g, official %.9g)" % worst))
    if bad:
        print("FAIL [%s]: %d predictions differ by more than %g relative" % (tag, bad, REL_TOL))
        return False
    return True


def auc(scores, labels):
    """Area under the ROC curve (ties count one half), or None with one class."""
    pos = sum(1 for y in labels if y)
    neg = len(labels) - pos
    if not pos or not neg:
        return None
    ranked = sorted(zip(scores, labels))
    rank_sum, i = 0.0, 0
    while i < len(ranked):  # average ranks over runs of equal scores
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        mid = (i + j + 1) / 2.0
        rank_sum += mid * sum(1 for _, y in ranked[i:j] if y)
        i = j
    return (rank_sum - pos * (pos + 1) / 2.0) / (pos * neg)


def ranking_report(scores, requests_rows, official, labels):
    """What the scores rank: the test AUC from towerrt's scores (which must
    equal the reference predictions' AUC), the mean AUC within a user, and
    how many distinct scores a request gets (1 everywhere = the item tower
    does not tell items apart)."""
    flat_s, flat_y, flat_o, per_user, distinct = [], [], [], [], []
    for line, rows in zip(scores, requests_rows):
        ys = [labels[r] for r in rows]
        flat_s += line
        flat_y += ys
        flat_o += [official[r] for r in rows]
        distinct.append(len(set(line)))
        a = auc(line, ys)
        if a is not None:
            per_user.append(a)
    ours, theirs = auc(flat_s, flat_y), auc(flat_o, flat_y)
    print("ranking: test AUC %.6f (reference predictions %.6f); mean per-user AUC %.4f over %d users with both labels; "
          "distinct scores per request: min %d, median %d"
          % (ours, theirs, sum(per_user) / len(per_user) if per_user else float("nan"), len(per_user),
             min(distinct), sorted(distinct)[len(distinct) // 2]))
    # Every score is within REL_TOL of its reference (checked above), so
    # only a (positive, negative) pair whose reference predictions are
    # within 2 REL_TOL (probabilities <= 1) can change order, each moving
    # the AUC by at most 1 / (pos * neg).
    pos_o = sorted(o for o, y in zip(flat_o, flat_y) if y)
    neg_o = sorted(o for o, y in zip(flat_o, flat_y) if not y)
    near = sum(bisect.bisect_right(neg_o, o + 2 * REL_TOL) - bisect.bisect_left(neg_o, o - 2 * REL_TOL) for o in pos_o)
    bound = near / float(len(pos_o) * len(neg_o))
    if abs(ours - theirs) > bound:
        print("FAIL: the AUC of towerrt's scores differs from the reference's by %.3g, above %.3g (%d near-tied pairs)"
              % (abs(ours - theirs), bound, near))
        return False
    return True


def main(argv):
    if len(argv) != 4:
        sys.stderr.write(__doc__)
        return 2
    cli, fixture, tmp = argv[1], argv[2], argv[3]
    os.makedirs(tmp, exist_ok=True)
    model_path = os.path.join(tmp, "reference.twr")
    run([sys.executable, os.path.join(REPO, "tools", "export_inttower.py"),
         "--weights", os.path.join(fixture, "state_dict.npz"),
         "--config", os.path.join(fixture, "config.json"), "--out", model_path], "export_inttower.py")
    model = tf.read_twr(model_path)

    cols = tf.read_npz(os.path.join(fixture, "test_inputs.npz"))
    official = tf.load_npy(os.path.join(fixture, "official_pred.npy")).tolist_flat()
    n = len(official)
    users = side_rows(model, cols, tf.SIDE_USER, n)
    items = side_rows(model, cols, tf.SIDE_ITEM, n)

    # one request per distinct user row, candidates in test-row order
    order = []
    by_user = {}
    for r, u in enumerate(users):
        if u not in by_user:
            by_user[u] = []
            order.append(u)
        by_user[u].append(r)
    req_rows = [by_user[u] for u in order]

    # (a) candidates by features
    reqs = [tf.Request(u[0], u[1], items=[items[r] for r in by_user[u]]) for u in order]
    rq_f = os.path.join(tmp, "requests_features.txt")
    tf.write_requests(rq_f, reqs, comments=["reference-inttower test split, candidates by features"])
    out_f = os.path.join(tmp, "scores_features.txt")
    run(cli_cmd(cli) + ["score", "--model", model_path, "--requests", rq_f, "--out", out_f], "score (by features)")
    ok = compare("by features", tf.read_scores(out_f), req_rows, official)

    # (b) item store + candidates by id (ids: sparse, large 64-bit values)
    item_id = {}
    rows = []
    for it in items:
        if it not in item_id:
            iid = (0x9E3779B97F4A7C15 * (len(item_id) + 1) + 12345) & tf.U64_MASK
            item_id[it] = iid
            rows.append((iid, list(it[0]), list(it[1])))
    feats = os.path.join(tmp, "items.txt")
    tf.write_items(feats, rows, comments=["distinct item rows of the reference-inttower test split"])
    store = os.path.join(tmp, "items.twi")
    run(cli_cmd(cli) + ["build-items", "--model", model_path, "--features", feats, "--out", store], "build-items")
    st = tf.read_twi(store)
    if st.meta["model.fingerprint"] != tf.model_fingerprint(model) or len(st.ids) != len(rows):
        print("FAIL: item store: fingerprint %d (model %d), %d rows (expected %d)"
              % (st.meta["model.fingerprint"], tf.model_fingerprint(model), len(st.ids), len(rows)))
        ok = False
    reqs = [tf.Request(u[0], u[1], item_ids=[item_id[items[r]] for r in by_user[u]]) for u in order]
    rq_i = os.path.join(tmp, "requests_ids.txt")
    tf.write_requests(rq_i, reqs, comments=["reference-inttower test split, candidates by item id"])
    out_i = os.path.join(tmp, "scores_ids.txt")
    run(cli_cmd(cli) + ["score", "--model", model_path, "--items", store, "--requests", rq_i, "--out", out_i],
        "score (by id)")
    scores_i = tf.read_scores(out_i)
    ok = compare("by item id", scores_i, req_rows, official) and ok
    if ok and "label" in cols:
        ok = ranking_report(scores_i, req_rows, official, [int(v) for v in cols["label"].tolist_flat()])
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
