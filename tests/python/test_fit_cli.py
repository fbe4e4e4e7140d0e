#!/usr/bin/env python3
"""FIT through the towerrt CLI, standard library only.

  test_fit_cli.py TOWERRT_CLI... WORKDIR FIXTURE_DIR...

test_fit (C) checks FIT's request path through the library; this checks
the doors a user of the CLI takes: every golden FIT fixture's requests
(tests/fixtures/golden_fit/*/requests.txt, expected values from the
float64 reference, tools/make_golden_fit.py) are written as a
`towerrt-requests 1` file and scored with `towerrt score --logits`
  * by features, and
  * by id, through a store that `towerrt build-items` builds from the
    candidates (ids in order of first appearance),
and `towerrt info` must describe the model. Tolerance as test_fit:
|got - expected| <= 2e-5 * max(1, |expected|).
"""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools"))
import towerrt_format as tf  # noqa: E402

TOL = 2e-5


def read_fixture(path):
    """[(user_ids, user_dense, [(item_ids, item_dense, logit)])]: the
    format make_golden_fit.py writes (its docstring)."""
    with open(path) as f:
        lines = [ln.split() for ln in f if ln.strip()]
    out, i = [], 0
    while i < len(lines):
        head = lines[i]
        assert head[0] == "request", "%s: line %d: expected 'request'" % (path, i + 1)
        k, us, ud, is_, idn = (int(t) for t in head[1:])
        user = lines[i + 1]
        cands = []
        for r in lines[i + 2:i + 2 + k]:
            cands.append(([int(t) for t in r[:is_]], [float(t) for t in r[is_:is_ + idn]], float(r[is_ + idn])))
        out.append(([int(t) for t in user[:us]], [float(t) for t in user[us:us + ud]], cands))
        i += 2 + k
    return out


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if p.returncode != 0:
        raise SystemExit("FAIL: %s exited %d: %s" % (" ".join(cmd), p.returncode, p.stderr.strip()))
    return p.stdout


def compare(tag, got, reqs):
    worst = 0.0
    if len(got) != len(reqs):
        raise SystemExit("FAIL %s: %d score lines, expected %d" % (tag, len(got), len(reqs)))
    for q, (line, (_, _, cands)) in enumerate(zip(got, reqs)):
        if len(line) != len(cands):
            raise SystemExit("FAIL %s: request %d: %d scores, expected %d" % (tag, q, len(line), len(cands)))
        for c, (g, (_, _, want)) in enumerate(zip(line, cands)):
            err = abs(g - want) / max(1.0, abs(want))
            worst = max(worst, err)
            if not err <= TOL:
                raise SystemExit("FAIL %s: request %d candidate %d: %r, expected %r" % (tag, q, c, g, want))
    return worst


def check_fixture(cli, work, d):
    name = os.path.basename(os.path.normpath(d))
    model = os.path.join(d, "model.twr")
    reqs = read_fixture(os.path.join(d, "requests.txt"))
    info = run(cli + ["info", model])
    if "general.architecture   fit" not in info:
        raise SystemExit("FAIL %s: towerrt info does not name the FIT family:\n%s" % (name, info))

    by_features = [tf.Request(u, ud, items=[(ids, dense) for ids, dense, _ in c]) for u, ud, c in reqs]
    req_path, out_path = os.path.join(work, name + "-features.txt"), os.path.join(work, name + "-features.out")
    tf.write_requests(req_path, by_features)
    run(cli + ["score", "--model", model, "--requests", req_path, "--logits", "--out", out_path])
    worst_f = compare(name + " by features", tf.read_scores(out_path), reqs)

    ids_of, rows = {}, []
    for _, _, cands in reqs:
        for ids, dense, _ in cands:
            key = (tuple(ids), tuple(dense))
            if key not in ids_of:
                ids_of[key] = len(ids_of) + 1
                rows.append((ids_of[key], ids, dense))
    items_path, store = os.path.join(work, name + "-items.txt"), os.path.join(work, name + ".twi")
    tf.write_items(items_path, rows)
    run(cli + ["build-items", "--model", model, "--features", items_path, "--out", store])
    by_id = [tf.Request(u, ud, item_ids=[ids_of[(tuple(i), tuple(x))] for i, x, _ in c]) for u, ud, c in reqs]
    req_path, out_path = os.path.join(work, name + "-ids.txt"), os.path.join(work, name + "-ids.out")
    tf.write_requests(req_path, by_id)
    run(cli + ["score", "--model", model, "--items", store, "--requests", req_path, "--logits", "--out", out_path])
    worst_i = compare(name + " by id", tf.read_scores(out_path), reqs)
    n = sum(len(c) for _, _, c in reqs)
    print("%s: %d requests, %d candidates; worst relative error by features %.2e, by id %.2e"
          % (name, len(reqs), n, worst_f, worst_i))


def main(argv):
    dirs = [a for a in argv if os.path.isfile(os.path.join(a, "requests.txt"))]
    rest = [a for a in argv if a not in dirs]
    if len(rest) < 2 or not dirs:
        raise SystemExit("usage: test_fit_cli.py TOWERRT_CLI... WORKDIR FIXTURE_DIR...")
    cli, work = rest[:-1], rest[-1]
    os.makedirs(work, exist_ok=True)
    for d in dirs:
        check_fixture(cli, work, d)
    print("PASS: %d FIT fixtures through the CLI" % len(dirs))


if __name__ == "__main__":
    main(sys.argv[1:])
