#!/usr/bin/env python3
"""Tests of tools/export_inttower.py and tools/towerrt_format.py, standard
library only (run with any Python 3.8+: python3 tests/python/test_exporter.py).

Uses the reference checkpoint fixture (tests/fixtures/reference-inttower, or
$TOWERRT_REFERENCE_FIXTURE) and the golden fixtures. The .pt route is tested
only where some interpreter here has PyTorch.
"""

import json
import os
import pickle
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.path.join(REPO, "tools")
sys.path.insert(0, TOOLS)
import towerrt_format as tf  # noqa: E402
import export_inttower as ex  # noqa: E402

EXPORTER = os.path.join(TOOLS, "export_inttower.py")
GOLDEN = os.path.join(REPO, "tests", "fixtures", "golden")


def _fixture():
    for d in (os.environ.get("TOWERRT_REFERENCE_FIXTURE"), os.path.join(REPO, "tests", "fixtures", "reference-inttower"),
              "/work/shared/fixtures/reference-inttower"):
        if d and os.path.isfile(os.path.join(d, "state_dict.npz")):
            return d
    return None


FIXTURE = _fixture()
PROVENANCE = ("general.source", "general.name", "export.weights_sha256", "export.config", "export.config_sha256")


def run_exporter(*args):
    p = subprocess.run([sys.executable, EXPORTER] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True)
    return p.returncode, p.stderr


def model_summary(m, drop_meta=PROVENANCE):
    return (
        [(k, t, v) for k, t, v in m.meta_entries if k not in drop_meta],
        [(f.name, f.side, f.kind, f.vocab, f.dim, f.slots, f.combiner, f.table) for f in m.fields],
        [(t.name, t.dtype, t.shape, t.data) for t in m.tensors],
        [(n.op, n.side, n.layer, n.flags, tuple(n.inputs), n.output, tuple(n.tensors), n.eps, tuple(n.attrs))
         for n in m.graph],
    )


@unittest.skipIf(FIXTURE is None, "reference-inttower fixture not found")
class ReferenceExport(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="towerrt_exporter_")
        cls.sd = tf.read_npz(os.path.join(FIXTURE, "state_dict.npz"))
        with open(os.path.join(FIXTURE, "config.json")) as f:
            cls.conf = json.load(f)
        cls.out = os.path.join(cls.tmp, "ref.twr")
        rc, err = run_exporter("--weights", os.path.join(FIXTURE, "state_dict.npz"),
                               "--config", os.path.join(FIXTURE, "config.json"), "--out", cls.out)
        assert rc == 0, err
        cls.stderr = err
        cls.model = tf.read_twr(cls.out)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def export_with(self, sd=None, conf=None, extra=(), name="x"):
        w = self.path(name + ".npz")
        c = self.path(name + ".json")
        tf.write_npz(w, sd if sd is not None else self.sd)
        with open(c, "w") as f:
            if isinstance(conf, str):
                f.write(conf)
            else:
                json.dump(conf if conf is not None else self.conf, f)
        return run_exporter("--weights", w, "--config", c, "--out", self.path(name + ".twr"), *extra)

    def assertFails(self, rc_err, *needles):
        rc, err = rc_err
        self.assertNotEqual(rc, 0, "exporter succeeded; expected failure mentioning %r" % (needles,))
        self.assertIn("error:", err)
        self.assertNotIn("Traceback", err)
        for n in needles:
            self.assertIn(n, err)

    # ---- successful export
    def test_meta(self):
        m = self.model.meta
        self.assertEqual(m["general.architecture"], "inttower")
        self.assertEqual((m["inttower.head_dim"], m["inttower.user_heads"], m["inttower.item_heads"]), (8, 4, 4))
        self.assertEqual(m["inttower.fe_layers"], [0, 1, 2])
        self.assertEqual(m["inttower.output"], "sigmoid")
        self.assertEqual(m["quantization"], "none")
        self.assertIn("sha256:", m["general.source"])
        self.assertEqual(len(m["export.weights_sha256"]), 64)

    def test_provenance_has_no_directory(self):
        # file names and checksums only: a shipped model must not carry the exporting machine's layout
        m = self.model.meta
        self.assertEqual(m["general.source"], "state_dict.npz sha256:%s" % ex.sha256_file(
            os.path.join(FIXTURE, "state_dict.npz")))
        self.assertEqual(m["export.config"], "config.json")
        self.assertEqual(m["export.config_sha256"], ex.sha256_file(os.path.join(FIXTURE, "config.json")))
        for k, t, v in self.model.meta_entries:
            if t == tf.META_STRING and k != "general.exporter":
                self.assertNotIn(os.sep, v, k)
                self.assertNotIn(os.path.basename(self.tmp), v, k)
        rc, err = self.export_with(extra=("--no-provenance",), name="noprov")
        self.assertEqual(rc, 0, err)
        m2 = tf.read_twr(self.path("noprov.twr"))
        self.assertEqual(m2.meta["general.source"], "not recorded")
        self.assertFalse([k for k in m2.meta if k.startswith("export.") and k != "export.fe_layers_from"])
        self.assertEqual(model_summary(m2), model_summary(self.model))

    def test_family_provenance_has_no_directory(self):
        import export_family  # noqa: F401 - registers the family ops with towerrt_format
        d = os.path.join(REPO, "tests", "fixtures", "golden_family", "dssm_basic")
        for extra, source in (((), "state_dict.npz sha256:%s" % ex.sha256_file(os.path.join(d, "state_dict.npz"))),
                              (("--no-provenance",), "not recorded")):
            out = self.path("dssm%d.twr" % len(extra))
            rc, err = run_exporter("--arch", "dssm", "--weights", os.path.join(d, "state_dict.npz"),
                                   "--config", os.path.join(d, "config.json"), "--out", out, *extra)
            self.assertEqual(rc, 0, err)
            m = tf.read_twr(out)
            self.assertEqual(m.meta["general.source"], source)
            self.assertEqual(m.meta.get("export.config"), None if extra else "config.json")
            self.assertFalse([v for k, t, v in m.meta_entries
                              if t == tf.META_STRING and k != "general.exporter" and os.sep in v])

    def test_fields_in_reference_order(self):
        got = [(f.name, f.side, f.kind, f.vocab, f.dim, f.slots) for f in self.model.fields]
        self.assertEqual(got, [
            ("user_id", 0, 0, 60, 8, 1), ("gender", 0, 0, 2, 8, 1), ("age", 0, 0, 7, 8, 1),
            ("occupation", 0, 0, 20, 8, 1), ("user_mean_rating", 0, 2, 0, 1, 0),
            ("movie_id", 1, 0, 80, 8, 1), ("genres", 1, 1, 1000, 8, 3), ("item_mean_rating", 1, 2, 0, 1, 0)])
        for f in self.model.fields:
            if f.kind != tf.KIND_DENSE:
                side = "user" if f.side == 0 else "item"
                self.assertEqual(self.model.tensors[f.table].name, "%s_embedding_dict.%s.weight" % (side, f.name))

    def test_tensors_copied_exactly(self):
        for t in self.model.tensors:
            self.assertEqual(t.dtype, tf.DT_F32)
            src = self.sd[t.name]
            self.assertEqual(tuple(t.shape), tuple(src.shape))
            self.assertEqual(t.data, src.to_f32_bytes())
            self.assertEqual(t.offset % 64, 0)
        names = set(t.name for t in self.model.tensors)
        self.assertFalse(any(n.startswith(("User_SE", "Item_SE")) for n in names))
        self.assertFalse(any(n.endswith("num_batches_tracked") for n in names))
        for i in range(3):
            self.assertIn("user_fe_dnn.Fe_linears.%d.weight" % i, names)

    def test_unused_keys_noted(self):
        self.assertIn("User_SE.excitation.0.weight", self.stderr)
        self.assertIn("ignoring", self.stderr)

    def test_graph_pattern(self):
        ops = [(tf.OP_NAMES[n.op], n.side, n.layer) for n in self.model.graph]
        self.assertEqual(ops, [
            ("EMBED", 0, -1), ("LIGHTSE", 0, -1), ("CONCAT_DENSE", 0, -1),
            ("LINEAR", 0, 0), ("FE_PROJ", 0, 0), ("LINEAR", 0, 1), ("FE_PROJ", 0, 1), ("LINEAR", 0, 2),
            ("FE_PROJ", 0, 2),
            ("EMBED", 1, -1), ("LIGHTSE", 1, -1), ("CONCAT_DENSE", 1, -1),
            ("LINEAR", 1, 0), ("LINEAR", 1, 1), ("LINEAR", 1, 2), ("FE_PROJ", 1, 0),
            ("MAXSIM", 2, -1), ("MAXSIM", 2, -1), ("SUM", 2, -1), ("MAXSIM", 2, -1), ("SUM", 2, -1),
            ("PREDICT", 2, -1)])
        g = self.model.graph
        self.assertEqual(g[2].attrs, [33, 0])       # CONCAT_DENSE width: 4 x 8 + 1
        self.assertEqual(g[3].attrs, [33, 16])
        self.assertEqual(g[3].flags, tf.FLAG_RELU | tf.FLAG_BN)
        self.assertAlmostEqual(g[3].eps, 1e-5, places=9)
        self.assertEqual(g[4].inputs[0], g[3].inputs[0])   # FE 0 projects the input of layer 0
        self.assertEqual(g[6].inputs[0], g[3].output)      # FE 1 projects the output of layer 0
        self.assertEqual(g[15].inputs[0], g[14].output)    # item FE on the last item layer
        self.assertEqual(self.model.tensors[g[21].tensors[0]].name, "out.bias")

    def test_fe_layers_option(self):
        rc, err = self.export_with(extra=("--fe-layers", "0"), name="fe0")
        self.assertEqual(rc, 0, err)
        m = tf.read_twr(self.path("fe0.twr"))
        self.assertEqual(m.meta["inttower.fe_layers"], [0])
        self.assertEqual(len([n for n in m.graph if n.op == tf.OP_FE_PROJ and n.side == 0]), 3)
        self.assertEqual(len([n for n in m.graph if n.op == tf.OP_MAXSIM]), 1)
        self.assertFails(self.export_with(extra=("--fe-layers", "0,3"), name="fe3"), "user layer 3")

    def test_general_layout_equivalent(self):
        c = self.conf
        gen = {
            "user": [{"name": n, "kind": "single", "vocab": c["vocab"][n], "dim": 8} for n in c["user_sparse"]]
                    + [{"name": "user_mean_rating", "kind": "dense", "dim": 1}],
            "item": [{"name": "movie_id", "kind": "single", "vocab": 80, "dim": 8},
                     {"name": "item_mean_rating", "kind": "dense"},
                     {"name": "genres", "kind": "multi", "vocab": 1000, "dim": 8, "maxlen": 3, "combiner": "mean"}],
            "head_dim": 8, "user_heads": 4, "item_heads": 4, "hidden_units": [16, 16, 8],
        }
        rc, err = self.export_with(conf=gen, name="general")
        self.assertEqual(rc, 0, err)
        self.assertEqual(model_summary(tf.read_twr(self.path("general.twr"))), model_summary(self.model))

    def test_pickled_reference_columns(self):
        # a stand-in for the reference's preprocessing/inputs.py (its namedtuple classes, verbatim
        # signatures), so the pickle names preprocessing.inputs.SparseFeat etc. like a real one
        pkg = os.path.join(self.tmp, "fakeref", "preprocessing")
        os.makedirs(pkg, exist_ok=True)
        open(os.path.join(pkg, "__init__.py"), "w").close()
        with open(os.path.join(pkg, "inputs.py"), "w") as f:
            f.write(FAKE_INPUTS)
        script = (
            "import pickle, sys\n"
            "from preprocessing.inputs import SparseFeat, DenseFeat, VarLenSparseFeat\n"
            "u = [SparseFeat(n, v, embedding_dim=8) for n, v in [('user_id', 60), ('gender', 2), ('age', 7), "
            "('occupation', 20)]] + [DenseFeat('user_mean_rating', 1)]\n"
            "i = [SparseFeat('movie_id', 80, embedding_dim=8), DenseFeat('item_mean_rating', 1)] + "
            "[VarLenSparseFeat(SparseFeat('genres', vocabulary_size=1000, embedding_dim=8), maxlen=3, "
            "combiner='mean', length_name=LN)]\n"
            "obj = %s\n"
            "pickle.dump(obj, open(sys.argv[1], 'wb'))\n")
        env = dict(os.environ, PYTHONPATH=os.path.join(self.tmp, "fakeref"))
        cases = [("dict", "{'user': u, 'item': i, 'user_head': 4, 'item_head': 4, 'field_dim': 8}", None, ()),
                 ("pair", "[u, i]", None, ("--user-heads", "4", "--item-heads", "4", "--head-dim", "8"))]
        for tag, expr, ln, extra in cases:
            pk = self.path("cols_%s.pkl" % tag)
            subprocess.check_call([sys.executable, "-c", (script % expr).replace("LN", repr(ln)), pk], env=env)
            rc, err = run_exporter("--weights", os.path.join(FIXTURE, "state_dict.npz"), "--config", pk,
                                   "--out", self.path("pk_%s.twr" % tag), *extra)
            self.assertEqual(rc, 0, err)
            self.assertEqual(model_summary(tf.read_twr(self.path("pk_%s.twr" % tag))), model_summary(self.model))
        # VarLenSparseFeat with length_name: rejected
        pk = self.path("cols_len.pkl")
        subprocess.check_call([sys.executable, "-c", (script % "[u, i]").replace("LN", "'genres_len'"), pk], env=env)
        rc, err = run_exporter("--weights", os.path.join(FIXTURE, "state_dict.npz"), "--config", pk,
                               "--out", self.path("pk_len.twr"), "--head-dim", "8")
        self.assertFails((rc, err), "length_name", "genres_len", "not supported")

    def test_columns_from_python(self):
        u = [ex.SparseFeat(n, v, embedding_dim=8) for n, v in [("user_id", 60), ("gender", 2), ("age", 7),
                                                               ("occupation", 20)]] + [ex.DenseFeat("user_mean_rating")]
        i = [ex.SparseFeat("movie_id", 80, embedding_dim=8), ex.DenseFeat("item_mean_rating", 1),
             ex.VarLenSparseFeat(ex.SparseFeat("genres", 1000, embedding_dim=8), maxlen=3)]
        m = ex.export_inttower(self.sd, self.path("py.twr"), user_columns=u, item_columns=i, user_heads=4,
                               item_heads=4, head_dim=8, log=lambda s: None)
        self.assertEqual(m.meta["general.source"], "in-memory state_dict")
        self.assertEqual(model_summary(tf.read_twr(self.path("py.twr"))), model_summary(self.model))

    def test_pt_matches_npz(self):
        py = None
        for cand in (sys.executable, "/usr/bin/python3"):
            if cand and os.path.exists(cand) and subprocess.call([cand, "-c", "import torch"],
                                                                stderr=subprocess.DEVNULL) == 0:
                py = cand
                break
        pt_dir = next((d for d in (FIXTURE, "/work/shared/fixtures/reference-inttower")
                       if os.path.exists(os.path.join(d, "state_dict.pt"))), None)
        if py is None or pt_dir is None:
            self.skipTest("no interpreter with torch, or no state_dict.pt")
        p = subprocess.run([py, EXPORTER, "--weights", os.path.join(pt_dir, "state_dict.pt"), "--config",
                            os.path.join(FIXTURE, "config.json"), "--out", self.path("pt.twr")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(model_summary(tf.read_twr(self.path("pt.twr"))), model_summary(self.model))

    # ---- errors
    def test_missing_tensor(self):
        sd = dict(self.sd)
        del sd["user_fe_dnn.linears.1.bias"]
        self.assertFails(self.export_with(sd=sd, name="miss1"), "missing tensor user_fe_dnn.linears.1.bias",
                         "(16,)")
        sd = dict(self.sd)
        del sd["item_embedding_dict.genres.weight"]
        self.assertFails(self.export_with(sd=sd, name="miss2"), "item_embedding_dict.genres.weight", "genres")
        sd = dict(self.sd)
        del sd["Item_sim_non_local.excitation.0.weight"]
        self.assertFails(self.export_with(sd=sd, name="miss3"), "Item_sim_non_local.excitation.0.weight", "(2, 2)")
        sd = dict(self.sd)
        del sd["out.bias"]
        self.assertFails(self.export_with(sd=sd, name="miss4"), "out.bias")
        sd = dict(self.sd)
        del sd["user_fe_dnn.bn.2.running_var"]
        self.assertFails(self.export_with(sd=sd, name="miss5"), "user_fe_dnn.bn.2.running_var")

    def test_wrong_shape(self):
        sd = dict(self.sd)
        sd["user_fe_dnn.Fe_linears.0.weight"] = tf.make_array([0.0] * 32 * 30, (32, 30))
        self.assertFails(self.export_with(sd=sd, name="shape1"), "user_fe_dnn.Fe_linears.0.weight", "(32, 30)",
                         "(32, 33)")
        sd = dict(self.sd)
        sd["item_fe_dnn.linears.1.weight"] = tf.make_array([0.0] * 16 * 17, (16, 17))
        self.assertFails(self.export_with(sd=sd, name="shape2"), "item_fe_dnn.linears.1.weight", "(16, 17)",
                         "(16, 16)")
        sd = dict(self.sd)
        sd["user_embedding_dict.age.weight"] = tf.make_array([0.0] * 7 * 6, (7, 6))
        self.assertFails(self.export_with(sd=sd, name="shape3"), "user_embedding_dict.age.weight", "(7, 6)")

    def test_bad_config(self):
        c = dict(self.conf, user_head=5)
        self.assertFails(self.export_with(conf=c, name="cfg1"), "user_fe_dnn.Fe_linears.0.weight", "(40, 33)",
                         "(32, 33)")
        c = dict(self.conf, vocab=dict(self.conf["vocab"], user_id=61))
        self.assertFails(self.export_with(conf=c, name="cfg2"), "user_embedding_dict.user_id.weight", "(61, 8)",
                         "(60, 8)")
        self.assertFails(self.export_with(conf="{not json", name="cfg3"), "not valid JSON")
        c = dict(self.conf, tags_maxlen=4, tags_vocab=10)
        self.assertFails(self.export_with(conf=c, name="cfg4"), "'tags'", "user_varlen")
        c = dict(self.conf, dnn_hidden_units=[16, 16, 4])
        self.assertFails(self.export_with(conf=c, name="cfg5"), "hidden_units")
        c = dict(self.conf, user_filed_size=5)
        self.assertFails(self.export_with(conf=c, name="cfg6"), "user_filed_size", "4 id fields")
        c = dict(self.conf, embedding_dim=16)
        self.assertFails(self.export_with(conf=c, name="cfg7"), "embedding")
        self.assertFails(self.export_with(conf={"foo": 1}, name="cfg8"), "unrecognised layout")
        c = dict(self.conf)
        c["vocab"] = {k: v for k, v in self.conf["vocab"].items() if k != "age"}
        self.assertFails(self.export_with(conf=c, name="cfg9"), "'age'", "vocab")
        gen = {"user": [{"name": "user_id", "kind": "single", "vocab": 60, "dim": 8},
                        {"name": "h", "kind": "multi", "vocab": 9, "dim": 8, "maxlen": 3, "length_name": "h_len"}],
               "item": [{"name": "movie_id", "kind": "single"}], "head_dim": 8}
        self.assertFails(self.export_with(conf=gen, name="cfg10"), "length_name", "not supported")
        gen["user"][1] = {"name": "h", "kind": "bag"}
        self.assertFails(self.export_with(conf=gen, name="cfg11"), "kind must be one of")

    def test_nan_rejected(self):
        sd = dict(self.sd)
        vals = [0.5] * 16
        vals[3] = float("nan")
        sd["user_fe_dnn.bn.0.bias"] = tf.make_array(vals, (16,))
        self.assertFails(self.export_with(sd=sd, name="nan"), "user_fe_dnn.bn.0.bias", "element 3")

    def test_missing_files(self):
        rc, err = run_exporter("--weights", self.path("nope.npz"), "--config", os.path.join(FIXTURE, "config.json"),
                               "--out", self.path("nope.twr"))
        self.assertFails((rc, err), "does not exist")

    # ---- container robustness
    def test_corruption_detected(self):
        with open(self.out, "rb") as f:
            buf = bytearray(f.read())
        for off, what in ((3, "magic"), (70, "table"), (len(buf) - 5, "DATA CRC")):
            b = bytearray(buf)
            b[off] ^= 0x40
            with self.assertRaises(tf.FormatError, msg=what):
                tf.read_twr(bytes(b))
        with self.assertRaises(tf.FormatError):
            tf.read_twr(bytes(buf[:-1]))


@unittest.skipIf(not os.path.isdir(GOLDEN), "no golden fixtures")
class GoldenExports(unittest.TestCase):
    def test_shared_table_and_no_user_dense(self):
        m = tf.read_twr(os.path.join(GOLDEN, "multi_id", "model.twr"))
        f = {x.name: x for x in m.fields}
        self.assertEqual(f["last_item"].table, f["hist"].table)
        self.assertEqual(m.tensors[f["hist"].table].name, "user_embedding_dict.item_seq.weight")
        self.assertFalse([x for x in m.fields if x.side == 0 and x.kind == tf.KIND_DENSE])
        self.assertEqual([(x.name, x.kind, x.combiner) for x in m.fields if x.kind == tf.KIND_MULTI],
                         [("hist", 1, 0), ("tags", 1, 1), ("genres", 1, 0), ("cats", 1, 2)])
        self.assertEqual(m.meta["inttower.fe_layers"], [0, 1])

    def test_accelerate_keeps_all_projections(self):
        m = tf.read_twr(os.path.join(GOLDEN, "accel_deep", "model.twr"))
        self.assertEqual(m.meta["inttower.fe_layers"], [0])
        self.assertEqual([n.layer for n in m.graph if n.op == tf.OP_FE_PROJ and n.side == 0], [0, 1, 2, 3])


class FormatRoundTrips(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="towerrt_fmt_")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_meta_roundtrip(self):
        e = [("a", tf.META_INT, -5), ("b.c", tf.META_FLOAT, 0.25), ("s", tf.META_STRING, "h\u00e9llo"),
             ("arr", tf.META_INT_ARRAY, [0, 2, -1 << 40]), ("empty", tf.META_INT_ARRAY, [])]
        d, back = tf.decode_meta(tf.encode_meta(e))
        self.assertEqual(back, e)
        with self.assertRaises(tf.FormatError):
            tf.decode_meta(tf.encode_meta(e)[:-3])

    def test_twi_roundtrip(self):
        rng = random.Random(5)
        ids = [0, tf.U64_MASK] + [rng.getrandbits(64) for _ in range(37)]
        heads = [[rng.uniform(-1, 1) for _ in range(15)] for _ in ids]
        p = os.path.join(self.tmp, "s.twi")
        tf.write_twi(p, ids, heads, 3, 5, 0xDEADBEEF, source="test")
        s = tf.read_twi(p)
        self.assertEqual(s.meta["items.count"], len(ids))
        self.assertEqual(s.meta["items.row_stride"], 64)
        self.assertEqual(s.meta["model.fingerprint"], 0xDEADBEEF)
        self.assertEqual(s.ids, ids)
        for r, iid in enumerate(ids):
            self.assertEqual(s.lookup(iid), r)
            self.assertEqual(s.heads[r], [tf.f32_round(x) for x in heads[r]])
        self.assertIsNone(s.lookup(12345))
        self.assertEqual(len(s.id_slots), 128)
        with self.assertRaises(tf.FormatError):
            tf.write_twi(p, [1, 1], heads[:2], 3, 5, 0)

    def test_splitmix64(self):
        # reference values of splitmix64 (the mixing function of SplitMix64 / Java's SplittableRandom)
        self.assertEqual(tf.splitmix64(0), 0xE220A8397B1DCDAF)
        self.assertEqual(tf.splitmix64(tf.U64_MASK) >> 64, 0)

    def test_twr_roundtrip(self):
        t = [tf.Tensor("w", (2, 3), tf.f32_bytes([1, 2, 3, 4, 5, 6])), tf.Tensor("b", (1,), tf.f32_bytes([0.5]))]
        f = [tf.Field("a", 0, 0, 2, 3, 1, 0, 0), tf.Field("d", 0, 2, 0, 2, 0, 0, -1)]
        g = [tf.Node(tf.OP_EMBED, 0, 0), tf.Node(tf.OP_PREDICT, 2, 1, inputs=[0], tensors=[1])]
        m = tf.Model([("general.architecture", tf.META_STRING, "inttower")], f, t, g)
        p = os.path.join(self.tmp, "m.twr")
        buf = tf.write_twr(p, m)
        self.assertEqual(len(buf), os.path.getsize(p))
        back = tf.read_twr(p)
        self.assertEqual(model_summary(back, ()), model_summary(m, ()))
        # header fields
        self.assertEqual(buf[:8], b"TWRMODEL")
        self.assertEqual(struct.unpack_from("<IIQQI", buf, 8), (1, 64, len(buf), 64, 5))
        with self.assertRaises(tf.FormatError):
            tf.write_twr(None, tf.Model([], f, [tf.Tensor("x" * 80, (1,), tf.f32_bytes([1]))], g))

    def test_text_roundtrip(self):
        reqs = [tf.Request([1, 2, 0, 3], [0.5, -1e-3], item_ids=[0, tf.U64_MASK, 7]),
                tf.Request([4, 0, 0, 0], [], items=[([1, 2], [0.1]), ([3, 0], [2.5])])]
        p = os.path.join(self.tmp, "r.txt")
        tf.write_requests(p, reqs, comments=["c"], ids_per_line=2)
        back = tf.read_requests(p)
        self.assertEqual([(r.user_ids, r.user_dense, r.item_ids, r.items) for r in back],
                         [(r.user_ids, r.user_dense, r.item_ids, r.items) for r in reqs])
        rows = [(5, [1, 0, 2], [0.25]), (tf.U64_MASK, [3, 3, 0], [-1.5])]
        p = os.path.join(self.tmp, "i.txt")
        tf.write_items(p, rows)
        self.assertEqual(tf.read_items(p), rows)

    def test_npy_dtypes(self):
        cases = [("<f4", [1.5, -2.0, 3.25, 0.0]), ("<f8", [1e-300, 2.0, 3.0, 4.0]), ("<i8", [1, -2, 3, 1 << 40]),
                 ("<i4", [1, 2, -3, 4]), ("|b1", [True, False, True, True]), ("<f2", [0.5, 1.0, -2.0, 65504.0])]
        arrays = {}
        for descr, vals in cases:
            arrays[descr[1:]] = tf.make_array(vals, (2, 2), descr)
        p = os.path.join(self.tmp, "a.npz")
        tf.write_npz(p, arrays, compress=True)
        back = tf.read_npz(p)
        for descr, vals in cases:
            a = back[descr[1:]]
            self.assertEqual(a.shape, (2, 2))
            self.assertEqual(a.tolist_flat(), vals)
        # big-endian and Fortran order
        raw = struct.pack(">4f", 1, 2, 3, 4)
        hdr = "{'descr': '>f4', 'fortran_order': True, 'shape': (2, 2), }"
        hdr += " " * (118 - len(hdr)) + "\n"
        npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + raw
        a = tf.read_npy(npy)
        self.assertEqual(a.tolist_flat(), [1.0, 3.0, 2.0, 4.0])
        self.assertEqual(tf.f32_values(a.to_f32_bytes()).tolist(), [1.0, 3.0, 2.0, 4.0])


FAKE_INPUTS = '''
from collections import namedtuple
DEFAULT_GROUP_NAME = "default_group"


class SparseFeat(namedtuple('SparseFeat', ['name', 'vocabulary_size', 'embedding_dim', 'use_hash', 'dtype',
                                           'embedding_name', 'group_name'])):
    def __new__(cls, name, vocabulary_size, embedding_dim=4, use_hash=False, dtype='int32', embedding_name=None,
                group_name=DEFAULT_GROUP_NAME):
        if embedding_name is None:
            embedding_name = name
        if embedding_dim == 'auto':
            embedding_dim = 6 * int(pow(vocabulary_size, 0.25))
        return super(SparseFeat, cls).__new__(cls, name, vocabulary_size, embedding_dim, use_hash, dtype,
                                              embedding_name, group_name)

    def __hash__(self):
        return self.name.__hash__()


class VarLenSparseFeat(namedtuple('VarLenSparseFeat', ['sparsefeat', 'maxlen', 'combiner', 'length_name'])):
    def __new__(cls, sparsefeat, maxlen, combiner='mean', length_name=None):
        return super(VarLenSparseFeat, cls).__new__(cls, sparsefeat, maxlen, combiner, length_name)

    @property
    def name(self):
        return self.sparsefeat.name

    @property
    def vocabulary_size(self):
        return self.sparsefeat.vocabulary_size

    @property
    def embedding_dim(self):
        return self.sparsefeat.embedding_dim

    @property
    def embedding_name(self):
        return self.sparsefeat.embedding_name

    def __hash__(self):
        return self.name.__hash__()


class DenseFeat(namedtuple('DenseFeat', ['name', 'dimension', 'dtype'])):
    def __new__(cls, name, dimension=1, dtype="float32"):
        return super(DenseFeat, cls).__new__(cls, name, dimension, dtype)

    def __hash__(self):
        return self.name.__hash__()
'''

if __name__ == "__main__":
    unittest.main(verbosity=1)
