"""pytest suite of the towerrt Python package.

Needs the package installed (pip install ./python) and, for the bitwise
comparisons with the C library, the towerrt CLI of the same source tree:
TOWERRT_CLI=/path/to/build/towerrt (ctest python_venv sets it).
"""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import towerrt

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLDEN = os.path.join(REPO, "tests", "fixtures", "golden")
FIXTURES = sorted(d for d in os.listdir(GOLDEN) if os.path.isfile(os.path.join(GOLDEN, d, "model.twr")))
sys.path.insert(0, os.path.join(REPO, "tools"))
import towerrt_format as tf  # noqa: E402


def cli():
    path = os.environ.get("TOWERRT_CLI")
    if not path or not os.path.exists(path):
        raise RuntimeError("set TOWERRT_CLI to the towerrt CLI of this source tree (the C results to compare with)")
    return path


class Fixture:
    """A golden fixture: model, its store built by the CLI, the requests as numpy arrays."""

    def __init__(self, name, tmp):
        self.dir = os.path.join(GOLDEN, name)
        self.model = towerrt.Model(os.path.join(self.dir, "model.twr"))
        self.store = os.path.join(tmp, name + ".twi")
        subprocess.run([cli(), "build-items", "--model", os.path.join(self.dir, "model.twr"), "--features",
                        os.path.join(self.dir, "items.txt"), "--out", self.store], check=True, capture_output=True)
        self.items = towerrt.Items(self.store)
        self.by_id = [self._request(r) for r in tf.read_requests(os.path.join(self.dir, "requests_ids.txt"))]
        self.by_feat = [self._request(r) for r in tf.read_requests(os.path.join(self.dir, "requests_features.txt"))]
        self.tmp = tmp
        self.name = name

    def _request(self, r):
        m = self.model
        ud = np.array(r.user_dense, np.float32) if m.user_dense_width else None
        q = {"user_ids": np.array(r.user_ids, np.int64), "user_dense": ud}
        if r.item_ids is not None:
            q["item_ids"] = np.array(r.item_ids, np.uint64)
        else:
            q["feat_ids"] = np.array([a for a, _ in r.items], np.int64).reshape(len(r.items), m.item_id_slots)
            q["feat_dense"] = (np.array([b for _, b in r.items], np.float32).reshape(len(r.items), m.item_dense_width)
                               if m.item_dense_width else None)
        return q

    def cli_scores(self, requests, by_id):
        out = os.path.join(self.tmp, "%s.%s.out" % (self.name, "ids" if by_id else "feat"))
        cmd = [cli(), "score", "--model", os.path.join(self.dir, "model.twr")] + (["--items", self.store] if by_id else [])
        subprocess.run(cmd + ["--requests", os.path.join(self.dir, requests), "--out", out], check=True, capture_output=True)
        # %.9g round-trips a float32 exactly
        return [np.array(row, np.float32) for row in tf.read_scores(out)]


@pytest.fixture(scope="module", params=FIXTURES)
def fx(request, tmp_path_factory):
    return Fixture(request.param, str(tmp_path_factory.mktemp("golden")))


def test_golden_bitwise_equal_to_c(fx):
    sess = towerrt.Session(fx.model, fx.items)
    for q, want in zip(fx.by_id, fx.cli_scores("requests_ids.txt", True)):
        got = sess.score(q["user_ids"], q["user_dense"], q["item_ids"])
        assert got.dtype == np.float32 and np.array_equal(got.view(np.uint32), want.view(np.uint32))
    for q, want in zip(fx.by_feat, fx.cli_scores("requests_features.txt", False)):
        got = sess.score_features(q["user_ids"], q["user_dense"], q["feat_ids"], q["feat_dense"])
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


def test_golden_reference_within_tolerance(fx, tmp_path):
    # a store built from Python (numpy arrays) against the PyTorch reference's scores
    rows = tf.read_items(os.path.join(fx.dir, "items.txt"))
    m = fx.model
    keys = np.array([r[0] for r in rows], np.uint64)
    ids = np.array([r[1] for r in rows], np.int64).reshape(len(rows), m.item_id_slots)
    dense = np.array([r[2] for r in rows], np.float32).reshape(len(rows), m.item_dense_width) if m.item_dense_width else None
    items = m.build_items(str(tmp_path / "py.twi"), keys, ids, dense)
    assert len(items) == len(rows) and items.precision == "f32"
    sess = towerrt.Session(m, items)
    want = tf.read_scores(os.path.join(fx.dir, "expected_ids.txt"))
    for q, w in zip(fx.by_id, want):
        got = sess.score(q["user_ids"], q["user_dense"], q["item_ids"])
        np.testing.assert_allclose(got, np.array(w), rtol=1e-5, atol=1e-7)


def stable_top(scores, ids, n):
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), int(ids[i]), i))[:n]
    return scores[order], ids[order]


def test_topn_is_the_stable_sort(fx):
    sess = towerrt.Session(fx.model, fx.items)
    for q in fx.by_id:
        ids = np.ascontiguousarray(np.tile(q["item_ids"], 3))  # every id thrice: ties
        scores = sess.score(q["user_ids"], q["user_dense"], ids)
        for n in (1, 2, len(ids)):
            got_s, got_i = sess.score_topn(q["user_ids"], q["user_dense"], ids, n)
            want_s, want_i = stable_top(scores, ids, n)
            assert np.array_equal(got_i, want_i) and np.array_equal(got_s.view(np.uint32), want_s.view(np.uint32))
    q = fx.by_id[0]
    s, i = sess.score_topn(q["user_ids"], q["user_dense"], q["item_ids"], len(q["item_ids"]) + 2)
    assert np.isnan(s[-1]) and i[-1] == np.uint64(2**64 - 1)


def test_user_heads_and_score_heads(fx):
    sess = towerrt.Session(fx.model, fx.items)
    q = fx.by_id[0]
    users = np.stack([fx.by_id[j]["user_ids"] for j in range(len(fx.by_id))])
    dense = np.stack([fx.by_id[j]["user_dense"] for j in range(len(fx.by_id))]) if fx.model.user_dense_width else None
    heads = sess.user_heads(users, dense)
    assert heads.shape == (len(fx.by_id), sess.user_heads_size)
    a = sess.score_heads(heads[0], q["item_ids"])
    s, i = sess.score_heads_topn(heads[0], q["item_ids"], 1)
    assert s[0] == a.max()
    np.testing.assert_allclose(a, sess.score(q["user_ids"], q["user_dense"], q["item_ids"]), rtol=1e-5)


def test_errors(fx, tmp_path):
    sess = towerrt.Session(fx.model, fx.items, max_k=50, max_topn=5)
    q = fx.by_id[0]
    u, d = q["user_ids"], q["user_dense"]
    with pytest.raises(towerrt.UnknownItemError) as e:
        sess.score(u, d, np.array([12345678901234], np.uint64))
    assert e.value.status == "TOWERRT_ERR_UNKNOWN_ITEM" and "12345678901234" in e.value.message
    assert isinstance(e.value, towerrt.TowerrtError)
    with pytest.raises(towerrt.LimitError):
        sess.score(u, d, np.ascontiguousarray(np.resize(q["item_ids"], 51)))
    with pytest.raises(towerrt.LimitError):
        sess.score_topn(u, d, q["item_ids"], 6)
    with pytest.raises(towerrt.EmptyRequestError):
        sess.score(u, d, np.array([], np.uint64))
    with pytest.raises(TypeError, match="uint64"):
        sess.score(u, d, q["item_ids"].astype(np.int64))
    with pytest.raises(TypeError, match="int64"):
        sess.score(u.astype(np.int32), d, q["item_ids"])
    with pytest.raises(ValueError, match="C-contiguous"):
        sess.score(u, d, np.repeat(np.resize(q["item_ids"], 4), 2)[::2])
    with pytest.raises(ValueError, match="shape"):
        sess.score(np.concatenate([u, u]), d, q["item_ids"])
    with pytest.raises(TypeError):
        sess.score(list(u), d, q["item_ids"])
    bad = u.copy()
    bad[0] = -1
    with pytest.raises(towerrt.IdOutOfRangeError):
        sess.score(bad, d, q["item_ids"])
    with pytest.raises(towerrt.IOFailureError):
        towerrt.Model(str(tmp_path / "missing.twr"))
    (tmp_path / "junk.twi").write_bytes(b"\0" * 256)
    with pytest.raises(towerrt.BadMagicError):
        towerrt.Items(str(tmp_path / "junk.twi"))
    with pytest.raises(towerrt.NoItemsError):
        towerrt.Session(fx.model).score(u, d, q["item_ids"])
    with pytest.raises(ValueError, match="verify"):
        towerrt.Items(fx.store, verify="nope")
    with pytest.raises(towerrt.InvalidArgumentError):
        towerrt.Session(fx.model, fx.items, max_k=0)


def test_extension_checks_buffers(fx):
    """The C layer's own checks (score_buffers in _towerrt.c), past the
    Python layer's: no call reads or writes past a buffer."""
    from towerrt import _towerrt as c
    sess = towerrt.Session(fx.model, fx.items)
    q = fx.by_id[0]
    u, d, keys = q["user_ids"], q["user_dense"], q["item_ids"]
    k = keys.shape[0]
    out = np.empty(k, np.float32)
    c.score(sess._h, c.S_IDS, u, d, keys, None, k, 0, None, out)
    np.testing.assert_array_equal(out, sess.score(u, d, keys))
    with pytest.raises(ValueError, match="unknown scoring call"):
        c.score(sess._h, c.S_USER_HEADS + 1, u, d, keys, None, k, 0, None, out)
    with pytest.raises(ValueError, match="buffer sizes"):
        c.score(sess._h, c.S_IDS, u, d, keys, None, k + 1, 0, None, out)
    with pytest.raises(ValueError, match="buffer sizes"):
        c.score(sess._h, c.S_USER_HEADS, u, d, None, None, 1, 0, None, out[:1])
    ids = np.empty(2, np.uint64)
    with pytest.raises(ValueError, match="buffer sizes"):
        c.score(sess._h, c.S_TOPN, u, d, keys, None, k, 3, ids, np.empty(3, np.float32))


def test_skip_unknown(fx):
    q = fx.by_id[-1]
    u, d, ids = q["user_ids"], q["user_dense"], q["item_ids"]
    mixed = np.concatenate([np.array([2**63 + 5], np.uint64), ids])
    clean = towerrt.Session(fx.model, fx.items).score(u, d, ids)
    sess = towerrt.Session(fx.model, fx.items, skip_unknown_items=True)
    got = sess.score(u, d, mixed)
    assert np.isnan(got[0]) and np.array_equal(got[1:], clean) and sess.last_skipped == 1
    s, i = sess.score_topn(u, d, mixed, len(mixed))
    assert np.uint64(2**63 + 5) not in i[: len(ids)] and np.isnan(s[-1]) and sess.last_skipped == 1


def test_quantize_and_swap(fx, tmp_path):
    q = fx.by_id[0]
    i8 = fx.items.quantize(str(tmp_path / "i8.twi"), "int8")
    assert i8.precision == "int8"
    fx.model.quantize(str(tmp_path / "m.bf16.twr"), "bf16")
    assert towerrt.Model(str(tmp_path / "m.bf16.twr")).user_id_slots == fx.model.user_id_slots
    trusted = towerrt.Items(fx.store, verify="structure")
    sess = towerrt.Session(fx.model, fx.items)
    a = sess.score(q["user_ids"], q["user_dense"], q["item_ids"])
    sess.set_items(i8)
    b = sess.score(q["user_ids"], q["user_dense"], q["item_ids"])
    sess.set_items(trusted)
    c = sess.score(q["user_ids"], q["user_dense"], q["item_ids"])
    assert np.array_equal(a, c)
    np.testing.assert_allclose(a, b, rtol=0.05, atol=0.02)
    # centred int8 stores (docs/quantization.md "Centred stores") score as
    # close to f32 as the plain one; the Items report their centring
    # by default, what `towerrt quantize` does: int8 of a many-head store is row-centred
    assert i8.centring == "row-mean"
    plain = fx.items.quantize(str(tmp_path / "p8.twi"), "int8", centre="none")
    assert plain.centring == "none"
    assert fx.items.quantize(str(tmp_path / "b16.twi"), "bf16").centring == "none"
    for centre in ("none", "mean", "row-mean"):
        c8 = fx.items.quantize(str(tmp_path / ("c8-%s.twi" % centre)), "int8", centre=centre)
        assert c8.centring == centre and c8.precision == "int8"
        sess.set_items(c8)
        np.testing.assert_allclose(a, sess.score(q["user_ids"], q["user_dense"], q["item_ids"]), rtol=0.05, atol=0.02)
    with pytest.raises(ValueError):
        fx.items.quantize(str(tmp_path / "x.twi"), "int8", centre="median")


def test_threads(fx):
    # 4 threads, a session each, every request many times: equal to one thread, bitwise
    base = towerrt.Session(fx.model, fx.items)
    want = [base.score(q["user_ids"], q["user_dense"], q["item_ids"]) for q in fx.by_id]

    def work(t):
        sess = towerrt.Session(fx.model, fx.items)
        ok = True
        for rep in range(50):
            for q, w in zip(fx.by_id, want):
                ok &= np.array_equal(sess.score(q["user_ids"], q["user_dense"], q["item_ids"]), w)
                ok &= np.array_equal(base.score(q["user_ids"], q["user_dense"], q["item_ids"]), w)  # shared: serialised
        return ok

    with ThreadPoolExecutor(4) as ex:
        assert all(ex.map(work, range(4)))


def test_out_buffer_no_copy(fx):
    sess = towerrt.Session(fx.model, fx.items)
    q = fx.by_id[0]
    out = np.empty(len(q["item_ids"]), np.float32)
    res = sess.score(q["user_ids"], q["user_dense"], q["item_ids"], out=out)
    assert res is out


def _catalog_columns(model, n, seed):
    """n synthetic item rows as numpy columns named by the model's item fields, ids in "key"."""
    rng = np.random.default_rng(seed)
    cols = {"key": rng.permutation(np.unique(rng.integers(0, 2 ** 63, n + 50, dtype=np.int64))[:n]).astype(np.uint64)}
    for f in model.item_fields():
        if f.kind == "dense":
            cols[f.name] = rng.random((n, f.width), dtype=np.float32) if f.width > 1 else rng.random(n, dtype=np.float32)
        elif f.kind == "multi":
            a = rng.integers(1, f.vocab, (n, f.width))
            a[rng.random((n, f.width)) < 0.3] = 0  # padding
            cols[f.name] = a
        else:
            cols[f.name] = rng.integers(0, f.vocab, n)
    return cols


def test_catalog_columns_shards_and_merges(fx, tmp_path):
    """towerrt.catalog from numpy columns == ItemsBuilder by hand; shards
    (any order) merged == the single build, f32 and quantized."""
    import towerrt.catalog as tc
    m = fx.model
    cols = _catalog_columns(m, 3000, 5)
    single = str(tmp_path / "single.twi")
    assert tc.build_items(m, cols, single, id_column="key", batch_rows=700) == 3000
    ids, dense = tc.item_features(m, cols)
    by_hand = str(tmp_path / "hand.twi")
    with towerrt.ItemsBuilder(m, by_hand, threads=2, expected_rows=3000) as b:
        b.append(cols["key"], ids, dense)
    assert open(single, "rb").read() == open(by_hand, "rb").read()
    for prec in ("f32", "bf16", "int8"):
        # shards are never centred (each shard's centres would differ), so the single build's match is uncentred
        want = single if prec == "f32" else towerrt.Items(single).quantize(str(tmp_path / ("q-" + prec)), prec,
                                                                          centre="none").path
        parts = [str(tmp_path / ("s%d-%s.twi" % (i, prec))) for i in range(3)]
        for i, p in enumerate(parts):
            tc.build_items(m, cols, p, id_column="key", shard=(i, 3), precision=prec)
        merged = str(tmp_path / ("m-" + prec))
        towerrt.merge_items(m, parts[::-1], merged)
        assert open(want, "rb").read() == open(merged, "rb").read(), prec
    shard = towerrt.item_shard(cols["key"], 3)
    assert shard.dtype == np.uint64 and set(np.unique(shard)) <= {0, 1, 2}
    with pytest.raises(towerrt.InvalidArgumentError):  # a row of another shard, with ordinals
        with towerrt.ItemsBuilder(m, str(tmp_path / "x.twi"), shard=(0, 3), input_rows=3000) as b:
            r = int(np.flatnonzero(shard != 0)[0])
            b.append(cols["key"][r:r + 1], ids[r:r + 1], None if dense is None else dense[r:r + 1],
                     np.array([r], np.uint64))
    assert not os.path.exists(str(tmp_path / "x.twi")) and not os.path.exists(str(tmp_path / "x.twi.tmp"))


def test_delta_overlay_compact(fx, tmp_path):
    """A delta (changed, new, removed items) over a base: overlay scores ==
    the full rebuild's, compaction == the full rebuild byte for byte."""
    import towerrt.catalog as tc
    m = fx.model
    cols = _catalog_columns(m, 900, 9)
    keys = cols["key"]
    base_rows, new_rows = np.arange(600), np.arange(600, 900)
    changed = base_rows[::5]
    removed = keys[base_rows[3::7]]
    removed = removed[~np.isin(removed, keys[changed])]

    def sub(rows, feature_rows=None):
        fr = rows if feature_rows is None else feature_rows
        out = {k: v[fr] for k, v in cols.items()}
        out["key"] = keys[rows]
        return out

    base = tc.build_items(m, sub(base_rows), str(tmp_path / "base.twi"), id_column="key") and towerrt.Items(str(tmp_path / "base.twi"))
    # changed items take another row's features
    ch_rows = np.r_[changed, new_rows]
    ch_feat = np.r_[(changed + 1) % 900, new_rows]
    tc.build_items(m, sub(ch_rows, ch_feat), str(tmp_path / "changes.twi"), id_column="key")
    delta = base.make_delta(str(tmp_path / "delta.twi"), towerrt.Items(str(tmp_path / "changes.twi")), removed)
    ov = base.overlay([delta])
    # the final catalog in compaction order: base rows still present (changed in place), then the new ones
    feat = {int(r): int(r) for r in base_rows}
    feat.update({int(r): int(f) for r, f in zip(changed, (changed + 1) % 900)})
    gone = set(int(k) for k in removed)
    final = [int(r) for r in base_rows if int(keys[r]) not in gone] + [int(r) for r in new_rows]
    full = str(tmp_path / "full.twi")
    tc.build_items(m, sub(np.array(final), np.array([feat.get(r, r) for r in final])), full, id_column="key")
    assert len(ov) == len(final)
    compact = ov.compact(str(tmp_path / "compact.twi"))
    assert open(compact.path, "rb").read() == open(full, "rb").read()
    q = fx.by_id[0]
    ids = np.ascontiguousarray(keys[np.array(final)])
    a = towerrt.Session(m, ov).score(q["user_ids"], q["user_dense"], ids)
    b = towerrt.Session(m, towerrt.Items(full)).score(q["user_ids"], q["user_dense"], ids)
    assert a.tobytes() == b.tobytes()
    with pytest.raises(towerrt.UnknownItemError):
        towerrt.Session(m, ov).score(q["user_ids"], q["user_dense"], np.ascontiguousarray(removed[:1]))
    sess = towerrt.Session(m, base, skip_unknown_items=True)
    sess.set_items(ov)
    assert sess.score(q["user_ids"], q["user_dense"], ids).tobytes() == b.tobytes()
    with pytest.raises(towerrt.MismatchError):
        towerrt.Items(full).overlay([delta])
