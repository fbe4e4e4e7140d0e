#!/usr/bin/env python3
"""A small PyTorch DSSM (the plain two-tower model), faithful to the
reference forward pass (github archersama/IntTower: model/dssm.py, layers/core.py
DNN / PredictionLayer, preprocessing/utils.py Cosine_Similarity,
preprocessing/inputs.py combined_dnn_input, model/base_tower.py
input_from_feature_columns), in eval mode, with the SAME parameter names as
the reference state_dict (load_state_dict(strict=True) takes a reference
checkpoint as is) and without the reference's dependencies (tensorflow,
sklearn, deepctr_torch).

The forward pass of the reference DSSM:
  per side: x = [flatten(cat(single-id embeddings, pooled multi-id embeddings)),
                 dense values]                            (combined_dnn_input; no Light-SE / SENET)
            v = DNN(x): per layer Linear -> BatchNorm1d -> ReLU -> Dropout (eval: identity)
  score   = Cosine_Similarity(u, i, gamma)
          = clamp(sum(u * i) / (|u| |i| + 1e-8), -1, 1) * gamma
  output  = PredictionLayer: sigmoid(score + out.bias) (task binary), score + bias (regression)
The reference constructs SENETLayer User_SE / Item_SE (field sizes hard-coded
to 4 and 2) but never calls them; they are carried here so that the
state_dict names and shapes match.

Options beyond the reference (opt-in, used by the golden fixtures to cover
format features): similarity='dot' (score = sum(u * i) * gamma), use_bn=False,
task='regression'.

Also: tools/reference/dat_ref.py (DAT, the same towers with augmented vectors).

Cross-check the golden fixtures with the UNMODIFIED reference code:
  python3 tools/reference/dssm_ref.py --check-reference-code [FIXTURE_DIR ...]
"""

import argparse
import json
import os
import sys

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.dirname(HERE)
REPO = os.path.dirname(TOOLS)
sys.path.insert(0, TOOLS)
sys.path.insert(0, HERE)
import export_inttower as ex  # noqa: E402  (config parsing, FieldSpec)
from inttower_ref import sequence_pool  # noqa: E402  (SequencePoolingLayer with masking)

SIDES = ("user", "item")


class SENETLayer(nn.Module):
    """layers/interaction.py SENETLayer: carried (never used in forward)."""

    def __init__(self, filed_size, reduction_ratio=3):
        super(SENETLayer, self).__init__()
        self.reduction_size = max(1, filed_size // reduction_ratio)
        self.excitation = nn.Sequential(nn.Linear(filed_size, self.reduction_size, bias=False), nn.ReLU(),
                                        nn.Linear(self.reduction_size, filed_size, bias=False), nn.ReLU())


class LightSE(nn.Module):
    """layers/interaction.py LightSE (named SimNonLocal when DAT.py was
    written): carried by DAT (never used in its forward)."""

    def __init__(self, field_size):
        super(LightSE, self).__init__()
        self.excitation = nn.Sequential(nn.Linear(field_size, field_size, bias=False))


class PredictionLayer(nn.Module):
    def __init__(self, task="binary"):
        super(PredictionLayer, self).__init__()
        self.task = task
        self.bias = nn.Parameter(torch.zeros((1,)))

    def forward(self, X):
        out = X + self.bias
        if self.task == "binary":
            out = torch.sigmoid(out)
        return out


class DNN(nn.Module):
    """layers/core.py DNN (activation relu): Linear -> BN -> ReLU -> Dropout per layer."""

    def __init__(self, inputs_dim, hidden_units, use_bn=True, dropout_rate=0.0):
        super(DNN, self).__init__()
        hu = [inputs_dim] + list(hidden_units)
        self.use_bn = use_bn
        self.dropout = nn.Dropout(dropout_rate)
        self.linears = nn.ModuleList([nn.Linear(hu[i], hu[i + 1]) for i in range(len(hu) - 1)])
        if use_bn:
            self.bn = nn.ModuleList([nn.BatchNorm1d(hu[i + 1]) for i in range(len(hu) - 1)])
        self.act = nn.ReLU()

    def forward(self, x):
        for i in range(len(self.linears)):
            fc = self.linears[i](x)
            if self.use_bn:
                fc = self.bn[i](fc)
            x = self.dropout(self.act(fc))
        return x


def cosine_similarity(query, candidate, gamma=1, dim=-1):
    """preprocessing/utils.py Cosine_Similarity, operation for operation."""
    query_norm = torch.norm(query, dim=dim)
    candidate_norm = torch.norm(candidate, dim=dim)
    cosine_score = torch.sum(torch.mul(query, candidate), dim=-1)
    cosine_score = torch.div(cosine_score, query_norm * candidate_norm + 1e-8)
    return torch.clamp(cosine_score, -1, 1.0) * gamma


class TwoTowerRef(nn.Module):
    """DSSM (arch='dssm'); DAT (arch='dat', tools/reference/dat_ref.py) adds
    the augmented vectors. cfg: export_inttower.ExportConfig (reference column
    order; vocab and dim set for id fields)."""

    ARCH = "dssm"

    def __init__(self, cfg, hidden_units, gamma=1.0, similarity="cosine", use_bn=True, task="binary",
                 item_hidden_units=None, se_field_sizes=(4, 2), dropout_rate=0.0):
        super(TwoTowerRef, self).__init__()
        if similarity not in ("cosine", "dot"):
            raise ValueError("similarity must be cosine or dot")
        self.cfg = cfg
        self.gamma = gamma
        self.similarity = similarity
        self.task = task
        dims = {}
        for side in SIDES:
            d = set(f.dim for f in cfg.fields(side) if f.kind != "dense")
            if len(d) != 1:
                raise ValueError("%s side: id fields must share one embedding dim, got %s" % (side, d))
            dims[side] = d.pop()
        self.dims = dims

        def emb_dict(side):
            tables = {}
            for f in cfg.fields(side):
                if f.kind == "dense":
                    continue
                if f.embedding_name in tables and tables[f.embedding_name] != (f.vocab, f.dim):
                    raise ValueError("shared table %r with different shapes" % f.embedding_name)
                tables[f.embedding_name] = (f.vocab, f.dim)
            return nn.ModuleDict({k: nn.Embedding(v, d) for k, (v, d) in tables.items()})

        # registration order = the reference state_dict order (BaseTower, then the model)
        self.user_embedding_dict = emb_dict("user")
        self.item_embedding_dict = emb_dict("item")
        self.out = PredictionLayer(task)
        width = {s: self.input_width(s) for s in SIDES}
        self.user_dnn = DNN(width["user"], hidden_units, use_bn, dropout_rate)
        self.item_dnn = DNN(width["item"], list(item_hidden_units or hidden_units), use_bn, dropout_rate)
        self.User_SE = SENETLayer(se_field_sizes[0], 3)
        self.Item_SE = SENETLayer(se_field_sizes[1], 3)
        self.layout = cfg.flat_layout()

    def aug_width(self, side):
        return 0

    def input_width(self, side):
        F = len([f for f in self.cfg.fields(side) if f.kind != "dense"])
        return F * self.dims[side] + self.aug_width(side) + sum(f.dim for f in self.cfg.fields(side) if f.kind == "dense")

    def _dtype(self):
        return self.out.bias.dtype

    # ---- inputs
    def side_input(self, side, get_ids, get_dense, aug=None):
        """input_from_feature_columns + combined_dnn_input; aug (B, d): DAT's
        augmented vector, appended after the id embeddings (DAT.py)."""
        ed = self.user_embedding_dict if side == "user" else self.item_embedding_dict
        cols = self.cfg.columns[side]
        sparse = [ed[f.embedding_name](get_ids(f)) for f in cols if f.kind == "single"]      # (B,1,E)
        for f in cols:
            if f.kind == "multi":
                ids = get_ids(f)
                sparse.append(sequence_pool(ed[f.embedding_name](ids), ids, f.combiner))
        if aug is not None:
            sparse.append(aug.reshape(aug.shape[0], 1, -1).to(self._dtype()))
        dense = [get_dense(f) for f in cols if f.kind == "dense"]
        x = torch.flatten(torch.cat(sparse, dim=-1), start_dim=1)
        if dense:
            x = torch.cat([x, torch.flatten(torch.cat(dense, dim=-1), start_dim=1)], dim=-1)
        return x

    def vectors(self, get_ids, get_dense, user_aug=None, item_aug=None):
        u = self.user_dnn(self.side_input("user", get_ids, get_dense, user_aug))
        i = self.item_dnn(self.side_input("item", get_ids, get_dense, item_aug))
        return u, i

    def score(self, u, i):
        if self.similarity == "cosine":
            return cosine_similarity(u, i, gamma=self.gamma)
        return torch.sum(torch.mul(u, i), dim=-1) * self.gamma

    def forward(self, X, user_aug=None, item_aug=None, logits=False):
        """X: (B, n_columns) flat reference input (base_tower.predict's layout)."""
        pos = {f.name: (a, b) for f, a, b in self.layout}
        X = X.to(self._dtype())

        def get_ids(f):
            a, b = pos[f.name]
            return X[:, a:b].long()

        def get_dense(f):
            a, b = pos[f.name]
            return X[:, a:b]
        u, i = self.vectors(get_ids, get_dense, user_aug, item_aug)
        s = self.score(u, i)
        return s + self.out.bias if logits else self.out(s)

    def _offsets(self, side):
        off, o = {}, 0
        for f in self.cfg.fields(side):
            if f.kind != "dense":
                off[f.name] = (o, o + f.slots)
                o += f.slots
        doff, o = {}, 0
        for f in self.cfg.fields(side):
            if f.kind == "dense":
                doff[f.name] = (o, o + f.dim)
                o += f.dim
        return off, doff

    def forward_sides(self, user_ids, user_dense, item_ids, item_dense, user_aug=None, item_aug=None, logits=False,
                      vectors=False):
        """Per-side inputs laid out as a towerrt request row of the REFERENCE
        columns: ids (B, sum slots) int64 in FIELDS order, dense (B, width) in
        field order (or None); DAT: user_aug / item_aug (B, d) separately.
        Returns (B,) probabilities (logits=True: score + bias; vectors=True:
        the tower outputs (u, i))."""
        dt = self._dtype()
        t = {}
        for side, ids, dn in (("user", user_ids, user_dense), ("item", item_ids, item_dense)):
            o, do = self._offsets(side)
            t[side] = (ids, None if dn is None else dn.to(dt), o, do)

        def get_ids(f):
            ids, _, o, _ = t[f.side]
            a, b = o[f.name]
            return ids[:, a:b].long()

        def get_dense(f):
            _, dn, _, o = t[f.side]
            a, b = o[f.name]
            return dn[:, a:b]
        u, i = self.vectors(get_ids, get_dense, user_aug, item_aug)
        if vectors:
            return u, i
        s = self.score(u, i)
        return s + self.out.bias if logits else self.out(s)


    def last_preactivation(self, side, ids, dense, aug=None):
        """The last Linear (+ BN) of a side's tower before its ReLU, for rows
        laid out as in forward_sides (used to place exact zeros in fixtures)."""
        o, do = self._offsets(side)
        dn = None if dense is None else dense.to(self._dtype())
        x = self.side_input(side, lambda f: ids[:, o[f.name][0]:o[f.name][1]].long(),
                            lambda f: dn[:, do[f.name][0]:do[f.name][1]], aug)
        dnn = self.user_dnn if side == "user" else self.item_dnn
        n = len(dnn.linears)
        for i in range(n):
            fc = dnn.linears[i](x)
            if dnn.use_bn:
                fc = dnn.bn[i](fc)
            if i == n - 1:
                return fc
            x = dnn.act(fc)


class DSSMRef(TwoTowerRef):
    ARCH = "dssm"


def hidden_from_state_dict(sd, prefix):
    out, n = [], 0
    while "%s.linears.%d.weight" % (prefix, n) in sd:
        out.append(int(sd["%s.linears.%d.weight" % (prefix, n)].shape[0]))
        n += 1
    return out


def se_sizes(sd, default):
    try:
        return (int(sd["User_SE.excitation.0.weight"].shape[1]), int(sd["Item_SE.excitation.0.weight"].shape[1]))
    except KeyError:
        return default


def from_checkpoint(config, state_dict, cls=DSSMRef, dtype=torch.float32, **kw):
    """config: path / dict / ExportConfig (export_inttower's readers); state_dict:
    path (.pt, .npz) or dict of tensors. Loads strictly."""
    if isinstance(config, ex.ExportConfig):
        cfg = config
    elif isinstance(config, dict):
        cfg = ex.config_from_json(config)
    else:
        cfg = ex.load_config(config)
    if isinstance(state_dict, str):
        if state_dict.endswith(".npz"):
            import numpy as np
            z = np.load(state_dict)
            state_dict = {k: torch.from_numpy(z[k].copy()) for k in z.files}
        else:
            state_dict = torch.load(state_dict, map_location="cpu")
    use_bn = any(k.startswith("user_dnn.bn.") for k in state_dict)
    m = cls(cfg, hidden_from_state_dict(state_dict, "user_dnn"), use_bn=use_bn,
            item_hidden_units=hidden_from_state_dict(state_dict, "item_dnn"),
            se_field_sizes=se_sizes(state_dict, (4, 2) if cls.ARCH == "dssm" else (2, 2)), **kw)
    m.load_state_dict(state_dict, strict=True)
    return m.to(dtype).eval()


# --------------------------------------------------------------------------
# cross-check against the unmodified reference code

def reference_columns(conf, pin):
    cols = {}
    for side in SIDES:
        out = []
        for f in conf[side]:
            if f["kind"] == "dense":
                out.append(pin.DenseFeat(f["name"], f.get("dim", 1)))
                continue
            sf = pin.SparseFeat(f["name"], f["vocab"], embedding_dim=f["dim"], embedding_name=f.get("embedding_name"))
            out.append(sf if f["kind"] == "single" else
                       pin.VarLenSparseFeat(sf, maxlen=f["maxlen"], combiner=f.get("combiner", "mean"), length_name=None))
        cols[side] = out
    return cols


def flat_rows(fixture_dir, cfg, conf):
    """requests_features.txt -> (X rows in the reference's flat layout, user
    aug rows, item aug rows). DAT 'input' fixtures carry the augmented
    vectors as the dense fields user_aug_vector / item_aug_vector (first
    dense field of each side, towerrt layout); they are split off here."""
    import towerrt_format as tf
    reqs = tf.read_requests(os.path.join(fixture_dir, "requests_features.txt"))
    layout = cfg.flat_layout()
    aug_w = {s: conf.get("_aug_input_width", {}).get(s, 0) for s in SIDES}

    def side_cols(side, ids, dense):
        out, o = {}, 0
        for f in cfg.fields(side):
            if f.kind != "dense":
                out[f.name] = ids[o:o + f.slots]
                o += f.slots
        aug, dense = list(dense[:aug_w[side]]), dense[aug_w[side]:]
        o = 0
        for f in cfg.fields(side):
            if f.kind == "dense":
                out[f.name] = dense[o:o + f.dim]
                o += f.dim
        return out, aug
    rows, ua, ia = [], [], []
    for r in reqs:
        u, uaug = side_cols("user", r.user_ids, r.user_dense)
        for ids, dn in r.items:
            it, iaug = side_cols("item", ids, dn)
            vals = dict(u)
            vals.update(it)
            rows.append([float(v) for f, a, b in layout for v in vals[f.name]])
            ua.append(uaug)
            ia.append(iaug)
    return rows, ua, ia


def check_reference_code(dirs, ref_git=None, ref_dir=None):
    """Scores requests_features.txt of each family fixture with the reference
    code's own classes (model/dssm.py, model/DAT.py), unmodified but for the
    patches listed in the report, and compares with expected_features.txt."""
    import tempfile
    import numpy as np
    import run_reference_code as rrc
    import towerrt_format as tf
    if not ref_dir:
        ref_dir = tempfile.mkdtemp(prefix="family_ref_code_")
        rrc.extract_reference(ref_git or "/work/.mirror/archersama+IntTower/repo", ref_dir)
    rrc.install_stubs()
    sys.path.insert(0, ref_dir)
    import preprocessing.inputs as pin  # noqa: E402
    ok = True
    torch.set_num_threads(1)
    for d in dirs:
        with open(os.path.join(d, "config.json")) as f:
            conf = json.load(f)
        with open(os.path.join(d, "manifest.json")) as f:
            man = json.load(f)
        arch = man["architecture"]
        if man.get("similarity", "cosine") != "cosine" or man.get("output", "sigmoid") != "sigmoid":
            print("%-24s skipped: %s / %s output is not expressible in the reference code (an opt-in format feature)"
                  % (os.path.basename(d), man.get("similarity"), man.get("output")))
            continue
        z = np.load(os.path.join(d, "state_dict.npz"))
        sd = {k: torch.from_numpy(z[k].copy()) for k in z.files}
        cfg = ex.config_from_json({k: v for k, v in conf.items() if not k.startswith("_")})
        conf["_aug_input_width"] = man.get("aug_input_width", {})
        cols = reference_columns(conf, pin)
        hidden = hidden_from_state_dict(sd, "user_dnn")
        use_bn = any(k.startswith("user_dnn.bn.") for k in sd)
        patches = []
        if arch == "dssm":
            import model.dssm as md  # noqa: E402
            model = md.DSSM(cols["user"], cols["item"], gamma=conf.get("gamma", 1), dnn_use_bn=use_bn,
                            dnn_hidden_units=tuple(hidden), task=conf.get("task", "binary"))
        else:
            import dat_ref
            model, patches = dat_ref.reference_dat(cols, conf, sd, hidden, use_bn)
        model.load_state_dict(sd, strict=True)
        model.eval()
        model.metrics = {}
        rows, ua, ia = flat_rows(d, cfg, conf)
        X = np.array(rows, dtype=np.float64)
        layout = cfg.flat_layout()
        x_cols = [X[:, a:b] for f, a, b in layout]
        if arch == "dat":
            import dat_ref
            mode = man["dat_augment"]
            with dat_ref.feed_augmented_vectors(mode, ua, ia, cfg, batch_size=64):
                pred = model.predict(x_cols, batch_size=64).reshape(-1)
            patches.append("torch.rand -> the fixture's augmented vectors (%s)" % mode)
        else:
            pred = model.predict(x_cols, batch_size=64).reshape(-1)
        expected = [v for line in tf.read_scores(os.path.join(d, "expected_features.txt")) for v in line]
        err = max(abs(a - b) / max(1.0, abs(b)) for a, b in zip(pred, expected))
        good = err <= 1e-5 and len(expected) == pred.size
        ok = ok and good
        print("%-24s %3d rows: reference code (%s) vs expected (f64) max err %.2g%s%s"
              % (os.path.basename(d), pred.size, arch, err, "" if not patches else "  [patched: %s]" % "; ".join(patches),
                 "" if good else "  FAIL"))
    return ok


def fixture_dirs():
    root = os.path.join(REPO, "tests", "fixtures", "golden_family")
    return sorted(os.path.join(root, d) for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check-reference-code", action="store_true",
                    help="score the golden_family fixtures with the unmodified reference classes")
    ap.add_argument("--ref-git", default="/work/.mirror/archersama+IntTower/repo")
    ap.add_argument("--ref-dir", help="a checkout of archersama/IntTower (instead of --ref-git)")
    ap.add_argument("dirs", nargs="*")
    a = ap.parse_args()
    if a.check_reference_code:
        return 0 if check_reference_code(a.dirs or fixture_dirs(), a.ref_git, a.ref_dir) else 1
    ap.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
