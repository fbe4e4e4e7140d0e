#!/usr/bin/env python3
"""Cross-check the golden fixtures against the UNMODIFIED reference code
(github archersama/IntTower: model/IntTower.py and what it imports), run in
PyTorch with its unused heavy imports (tensorflow, sklearn, tqdm,
tensorboard) replaced by empty stand-ins.

  /usr/bin/python3 tools/reference/run_reference_code.py --ref-git /work/.mirror/archersama+IntTower/repo \\
      [tests/fixtures/golden/NAME ...]

For each golden model: builds IntTower from the reference's SparseFeat /
VarLenSparseFeat / DenseFeat columns (config.json), loads state_dict.npz
strictly, runs base_tower.predict on the flat input of requests_features.txt
and compares with expected_features.txt and with inttower_ref.py (float32).
Where the reference code cannot express a fixture, it is patched, and the
report says so:
  * fe_layers other than [0,1,2] with >= 3 layers: preprocessing.utils.fe_score
    replaced by the loop over fe_layers (for [0]: exactly the README's
    "Accelerate" fe_score);
  * a Light-SE bias: the excitation Linear rebuilt with bias=True.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import types

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.dirname(HERE)
REPO = os.path.dirname(TOOLS)
sys.path.insert(0, TOOLS)
sys.path.insert(0, HERE)
import towerrt_format as tf  # noqa: E402


def _stub(name, **attrs):
    m = types.ModuleType(name)
    for k, v in attrs.items():
        setattr(m, k, v)
    sys.modules[name] = m
    return m


def install_stubs():
    class _Any(object):
        def __init__(self, *a, **k):
            pass

        def __getattr__(self, n):
            return lambda *a, **k: None
    _stub("tensorflow")
    _stub("tensorflow.python")
    _stub("tensorflow.python.keras")
    _stub("tensorflow.python.keras.layers", Layer=_Any)
    _stub("tensorflow.python.keras.callbacks", CallbackList=_Any, EarlyStopping=_Any, History=_Any,
          ModelCheckpoint=_Any)
    _stub("sklearn")
    _stub("sklearn.metrics")
    _stub("tqdm", tqdm=_Any)
    _stub("torch.utils.tensorboard", SummaryWriter=_Any)


def extract_reference(ref_git, dest):
    """Copy the reference's Python sources out of a (bare) git repository (read only)."""
    names = subprocess.check_output(["git", "-C", ref_git, "ls-tree", "-r", "--name-only", "HEAD"],
                                    universal_newlines=True).split()
    for n in names:
        if n.endswith(".py") and n.split("/")[0] in ("model", "layers", "preprocessing"):
            data = subprocess.check_output(["git", "-C", ref_git, "show", "HEAD:" + n])
            os.makedirs(os.path.join(dest, os.path.dirname(n)), exist_ok=True)
            with open(os.path.join(dest, n), "wb") as f:
                f.write(data)


def load_reference(ref_dir):
    install_stubs()
    sys.path.insert(0, ref_dir)
    import model.IntTower as mi  # noqa: E402
    import preprocessing.inputs as pin  # noqa: E402
    return mi, pin


def columns(conf, pin):
    out = {}
    for side in ("user", "item"):
        cols = []
        for f in conf[side]:
            if f["kind"] == "dense":
                cols.append(pin.DenseFeat(f["name"], f.get("dim", 1)))
                continue
            sf = pin.SparseFeat(f["name"], f["vocab"], embedding_dim=f["dim"], embedding_name=f.get("embedding_name"))
            if f["kind"] == "single":
                cols.append(sf)
            else:
                cols.append(pin.VarLenSparseFeat(sf, maxlen=f["maxlen"], combiner=f.get("combiner", "mean"),
                                                 length_name=None))
        out[side] = cols
    return out


def check(golden_dir, mi, pin):
    import inttower_ref as ref
    import export_inttower as ex
    with open(os.path.join(golden_dir, "config.json")) as f:
        conf = json.load(f)
    z = np.load(os.path.join(golden_dir, "state_dict.npz"))
    sd = {k: torch.from_numpy(z[k].copy()) for k in z.files}
    cols = columns(conf, pin)
    hidden = conf["hidden_units"]
    nl = len(hidden)
    fe_layers = conf.get("fe_layers", [i for i in (0, 1, 2) if i < nl])
    use_bn = any(k.startswith("user_fe_dnn.bn.") for k in sd)
    patches = []
    orig_fe = mi.fe_score
    if not (fe_layers == [0, 1, 2] and nl >= 3):
        def fe_patched(user_rep, item_rep, ufc, ifc, ued, ied):
            score = []
            for i in fe_layers:
                u = torch.reshape(user_rep[i], (-1, ufc, ued[0]))
                it = torch.reshape(item_rep[-1], (-1, ifc, ied[0]))
                score.append((u @ it.permute(0, 2, 1)).max(2).values.sum(1))
            return torch.sum(torch.stack(score).transpose(1, 0), 1)
        mi.fe_score = fe_patched
        patches.append("fe_score over layers %s" % fe_layers)
    F = {s: len([c for c in conf[s] if c["kind"] != "dense"]) for s in ("user", "item")}
    model = mi.IntTower(cols["user"], cols["item"], dnn_use_bn=use_bn, dnn_hidden_units=tuple(hidden),
                        field_dim=conf["head_dim"], user_head=conf["user_heads"], item_head=conf["item_heads"],
                        task=conf.get("task", "binary"), user_filed_size=F["user"], item_filed_size=F["item"])
    if "User_sim_non_local.excitation.0.bias" in sd:
        for nm, fsz in (("User_sim_non_local", F["user"]), ("Item_sim_non_local", F["item"])):
            getattr(model, nm).excitation[0] = torch.nn.Linear(fsz, fsz, bias=True)
        patches.append("Light-SE excitation with bias")
    model.load_state_dict(sd, strict=True)
    model.eval()
    model.metrics = {}

    # flat input rows (feature_index order) from requests_features.txt
    reqs = tf.read_requests(os.path.join(golden_dir, "requests_features.txt"))
    cfg = ex.config_from_json(conf)
    layout = cfg.flat_layout()

    def side_cols(side, ids, dense):
        out = {}
        o = 0
        for f in cfg.fields(side):
            if f.kind != "dense":
                out[f.name] = ids[o:o + f.slots]
                o += f.slots
        o = 0
        for f in cfg.fields(side):
            if f.kind == "dense":
                out[f.name] = dense[o:o + f.dim]
                o += f.dim
        return out
    rows = []
    for r in reqs:
        u = side_cols("user", r.user_ids, r.user_dense)
        for ids, dn in r.items:
            it = side_cols("item", ids, dn)
            vals = dict(u)
            vals.update(it)
            rows.append([float(v) for f, a, b in layout for v in vals[f.name]])
    X = np.array(rows, dtype=np.float64)
    x_cols = [X[:, a:b] for f, a, b in layout]
    pred = model.predict(x_cols, batch_size=64).reshape(-1)
    mi.fe_score = orig_fe
    expected = [v for line in tf.read_scores(os.path.join(golden_dir, "expected_features.txt")) for v in line]
    err = max(abs(a - b) / max(1.0, abs(b)) for a, b in zip(pred, expected))
    # inttower_ref in float32 on the same rows
    m2 = ref.from_checkpoint(cfg, sd)
    with torch.no_grad():
        p2 = m2(torch.from_numpy(X).float()).numpy().astype(np.float64)
    same = float(np.max(np.abs(p2 - pred)))
    return pred.size, err, same, patches


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dirs", nargs="*")
    ap.add_argument("--ref-git", default="/work/.mirror/archersama+IntTower/repo")
    ap.add_argument("--ref-dir", help="a checkout of archersama/IntTower (instead of --ref-git)")
    a = ap.parse_args()
    ref_dir = a.ref_dir
    if not ref_dir:
        ref_dir = tempfile.mkdtemp(prefix="inttower_ref_code_")
        extract_reference(a.ref_git, ref_dir)
    if not a.ref_dir:
        import atexit
        import shutil
        atexit.register(shutil.rmtree, ref_dir, True)
    mi, pin = load_reference(ref_dir)
    dirs = a.dirs or sorted(os.path.join(REPO, "tests", "fixtures", "golden", d)
                            for d in os.listdir(os.path.join(REPO, "tests", "fixtures", "golden"))
                            if os.path.isdir(os.path.join(REPO, "tests", "fixtures", "golden", d)))
    ok = True
    torch.set_num_threads(1)
    for d in dirs:
        n, err, same, patches = check(d, mi, pin)
        good = err <= 1e-5
        ok = ok and good
        print("%-24s %3d rows: reference code vs expected (f64) max err %.2g; vs inttower_ref f32 max abs diff %.2g%s%s"
              % (os.path.basename(d), n, err, same, "" if not patches else "  [patched: %s]" % "; ".join(patches),
                 "" if good else "  FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
