#!/usr/bin/env python3
"""A small PyTorch IntTower, faithful to the reference forward pass
(github archersama/IntTower: model/IntTower.py, layers/core.py User_Fe_DNN /
Item_Fe_DNN / PredictionLayer, layers/interaction.py LightSE / SENETLayer,
layers/sequence.py SequencePoolingLayer, preprocessing/utils.py fe_score,
model/base_tower.py input_from_feature_columns), in eval mode, with the SAME
parameter names as the reference state_dict (so load_state_dict(strict=True)
takes a reference checkpoint as is), and without the reference's
dependencies (tensorflow, sklearn, deepctr_torch).

Differences from the reference, all opt-in:
  * fe_layers: which user FE layers are summed into the score. The reference
    fe_score uses [0, 1, 2] (hard-coded: [field_dim] * 3); its README's
    "Accelerate" variant uses [0] (user_rep[0] with item_rep[0]).
  * lightse_bias: a bias in the Light-SE excitation (the reference has none).
  * use_bn=False, task='regression': as the reference's options.
  * either side may have no dense fields (the reference item side needs one).

Forward takes the reference's flat input (B, columns) in build_input_features
order (user columns then item columns, each in its list order), or per-side
tensors (forward_sides) laid out as towerrt requests: id slots in FIELDS order
(single-id fields, then multi-id fields) and dense values in field order.
Returns probabilities (sigmoid(score + out.bias)), shape (B,).

Check against the shared reference checkpoint:
  /usr/bin/python3 tools/reference/inttower_ref.py --check /work/shared/fixtures/reference-inttower
"""

import argparse
import os
import sys

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import export_inttower as ex  # noqa: E402  (config parsing, FieldSpec)


class LightSE(nn.Module):
    def __init__(self, field_size, bias=False):
        super(LightSE, self).__init__()
        self.softmax = nn.Softmax(dim=1)
        self.field_size = field_size
        self.excitation = nn.Sequential(nn.Linear(field_size, field_size, bias=bias))

    def forward(self, inputs):
        Z = torch.mean(inputs, dim=-1)
        A = self.softmax(self.excitation(Z))
        return inputs + inputs * torch.unsqueeze(A, dim=2)


class SENETLayer(nn.Module):
    """Carried (never used in forward) so the state_dict names match."""

    def __init__(self, filed_size, reduction_ratio=3):
        super(SENETLayer, self).__init__()
        self.reduction_size = max(1, filed_size // reduction_ratio)
        self.excitation = nn.Sequential(nn.Linear(filed_size, self.reduction_size, bias=False), nn.ReLU(),
                                        nn.Linear(self.reduction_size, filed_size, bias=False), nn.ReLU())


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


class FeDNN(nn.Module):
    """User_Fe_DNN (fe='input': Fe_linears[i] projects the input of layer i,
    one per layer) or Item_Fe_DNN (fe='last': n_fe projections of the last
    layer's output)."""

    def __init__(self, inputs_dim, hidden_units, field_dim, heads, fe="input", use_bn=True, n_fe=1,
                 dropout_rate=0.0):
        super(FeDNN, self).__init__()
        hu = [inputs_dim] + list(hidden_units)
        self.use_bn = use_bn
        self.fe = fe
        self.dropout = nn.Dropout(dropout_rate)
        self.linears = nn.ModuleList([nn.Linear(hu[i], hu[i + 1]) for i in range(len(hu) - 1)])
        if fe == "input":
            self.Fe_linears = nn.ModuleList([nn.Linear(hu[i], field_dim * heads) for i in range(len(hu) - 1)])
        else:
            self.Fe_linears = nn.ModuleList([nn.Linear(hu[-1], field_dim * heads) for _ in range(n_fe)])
        if use_bn:
            self.bn = nn.ModuleList([nn.BatchNorm1d(hu[i + 1]) for i in range(len(hu) - 1)])
        self.act = nn.ReLU()

    def forward(self, x):
        reps = []
        for i in range(len(self.linears)):
            fc = self.linears[i](x)
            if self.fe == "input":
                reps.append(self.Fe_linears[i](x))
            if self.use_bn:
                fc = self.bn[i](fc)
            x = self.dropout(self.act(fc))
        if self.fe != "input":
            for fl in self.Fe_linears:
                reps.append(fl(x))
        return reps


def sequence_pool(emb, ids, mode):
    """SequencePoolingLayer(mode, support_masking=True) with mask = ids != 0.
    emb (B, T, E) -> (B, 1, E). The mean divides by (count + 1e-8) computed in
    float32 exactly as the reference does (so it is exactly count for count >= 1)."""
    mask = (ids != 0).to(emb.dtype)                       # (B, T)
    length = torch.sum((ids != 0).float(), 1, keepdim=True)  # float32 as in the reference
    mask3 = mask.unsqueeze(2).expand_as(emb)
    if mode == "max":
        hist = emb - (1 - mask3) * 1e9
        return torch.max(hist, dim=1, keepdim=True)[0]
    hist = torch.sum(emb * mask3, dim=1)
    if mode == "mean":
        denom = (length + torch.tensor([1e-8], dtype=torch.float32)).to(emb.dtype)
        hist = hist / denom
    return hist.unsqueeze(1)


def fe_score(user_reps, item_reps, user_heads, item_heads, head_dim, fe_layers):
    """preprocessing/utils.py fe_score restricted to fe_layers (reference: [0,1,2])."""
    item = torch.reshape(item_reps[-1], (-1, item_heads, head_dim))
    score = []
    for i in fe_layers:
        u = torch.reshape(user_reps[i], (-1, user_heads, head_dim))
        score.append((u @ item.permute(0, 2, 1)).max(2).values.sum(1))
    return torch.sum(torch.stack(score).transpose(1, 0), 1)


class IntTowerRef(nn.Module):
    def __init__(self, cfg, hidden_units, head_dim, user_heads, item_heads, fe_layers=None, use_bn=True,
                 task="binary", lightse_bias=False, item_hidden_units=None, n_item_fe=1):
        """cfg: export_inttower.ExportConfig (columns in reference order, vocab
        and dim set for id fields)."""
        super(IntTowerRef, self).__init__()
        self.cfg = cfg
        self.head_dim, self.user_heads, self.item_heads = head_dim, user_heads, item_heads
        self.task = task
        item_hidden_units = list(item_hidden_units or hidden_units)
        nu = len(hidden_units)
        self.fe_layers = list(fe_layers) if fe_layers is not None else [i for i in (0, 1, 2) if i < nu]
        dims = {}
        for side in ex.SIDES:
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

        # registration order = the reference state_dict order
        self.user_embedding_dict = emb_dict("user")
        self.item_embedding_dict = emb_dict("item")
        self.out = PredictionLayer(task)
        F = {s: len([f for f in cfg.fields(s) if f.kind != "dense"]) for s in ex.SIDES}
        width = {s: F[s] * dims[s] + sum(f.dim for f in cfg.fields(s) if f.kind == "dense") for s in ex.SIDES}
        self.user_fe_dnn = FeDNN(width["user"], hidden_units, head_dim, user_heads, "input", use_bn)
        self.item_fe_dnn = FeDNN(width["item"], item_hidden_units, head_dim, item_heads, "last", use_bn,
                                 n_fe=n_item_fe)
        self.User_sim_non_local = LightSE(F["user"], lightse_bias)
        self.Item_sim_non_local = LightSE(F["item"], lightse_bias)
        self.User_SE = SENETLayer(F["user"], 3)
        self.Item_SE = SENETLayer(F["item"], 3)
        self.layout = cfg.flat_layout()

    # ---- inputs
    def _side_input(self, side, get_ids, get_dense):
        ed = self.user_embedding_dict if side == "user" else self.item_embedding_dict
        cols = self.cfg.columns[side]
        sparse = [ed[f.embedding_name](get_ids(f)) for f in cols if f.kind == "single"]      # (B,1,E)
        varlen = []
        for f in cols:
            if f.kind == "multi":
                ids = get_ids(f)
                varlen.append(sequence_pool(ed[f.embedding_name](ids), ids, f.combiner))
        dense = [get_dense(f) for f in cols if f.kind == "dense"]
        se = self.User_sim_non_local if side == "user" else self.Item_sim_non_local
        x = torch.flatten(se(torch.cat(sparse + varlen, dim=1)), start_dim=1)
        if dense:
            x = torch.cat([x, torch.flatten(torch.cat(dense, dim=-1), start_dim=1)], dim=-1)
        return x

    def _dtype(self):
        return self.out.bias.dtype

    def reps(self, get_ids, get_dense):
        u = self.user_fe_dnn(self._side_input("user", get_ids, get_dense))
        i = self.item_fe_dnn(self._side_input("item", get_ids, get_dense))
        return u, i

    def _finish(self, u, i, fe_layers):
        fl = self.fe_layers if fe_layers is None else fe_layers
        score = fe_score(u, i, self.user_heads, self.item_heads, self.head_dim, fl)
        return self.out(score)

    def forward(self, X, fe_layers=None):
        """X: (B, n_columns) flat reference input (as base_tower.predict builds it)."""
        pos = {f.name: (a, b) for f, a, b in self.layout}
        X = X.to(self._dtype())

        def get_ids(f):
            a, b = pos[f.name]
            return X[:, a:b].long()

        def get_dense(f):
            a, b = pos[f.name]
            return X[:, a:b]
        u, i = self.reps(get_ids, get_dense)
        return self._finish(u, i, fe_layers)

    def _side_getters(self, side, ids, dense):
        off = {}
        o = 0
        for f in self.cfg.fields(side):
            if f.kind != "dense":
                off[f.name] = (o, o + f.slots)
                o += f.slots
        doff = {}
        o = 0
        for f in self.cfg.fields(side):
            if f.kind == "dense":
                doff[f.name] = (o, o + f.dim)
                o += f.dim
        return off, doff

    def forward_sides(self, user_ids, user_dense, item_ids, item_dense, fe_layers=None):
        """Per-side inputs, rows as in a towerrt request: ids (B, sum slots) int64
        in FIELDS order; dense (B, width) in field order (or None)."""
        dt = self._dtype()
        uo, ud = self._side_getters("user", user_ids, user_dense)
        io_, idn = self._side_getters("item", item_ids, item_dense)
        t = {"user": (user_ids, None if user_dense is None else user_dense.to(dt), uo, ud),
             "item": (item_ids, None if item_dense is None else item_dense.to(dt), io_, idn)}

        def get_ids(f):
            ids, _, o, _ = t[f.side]
            a, b = o[f.name]
            return ids[:, a:b].long()

        def get_dense(f):
            _, dn, _, o = t[f.side]
            a, b = o[f.name]
            return dn[:, a:b]
        u, i = self.reps(get_ids, get_dense)
        return self._finish(u, i, fe_layers)


def hidden_from_state_dict(sd, side):
    n = 0
    out = []
    while "%s_fe_dnn.linears.%d.weight" % (side, n) in sd:
        out.append(int(sd["%s_fe_dnn.linears.%d.weight" % (side, n)].shape[0]))
        n += 1
    return out


def from_checkpoint(config_path, state_dict, fe_layers=None, dtype=torch.float32):
    """Build from a config (JSON/pickle, as the exporter reads it) and a
    reference state_dict (path or dict of tensors); loads it strictly."""
    cfg = ex.load_config(config_path) if not isinstance(config_path, ex.ExportConfig) else config_path
    if isinstance(state_dict, str):
        state_dict = torch.load(state_dict, map_location="cpu")
    use_bn = any(k.startswith("user_fe_dnn.bn.") for k in state_dict)
    lightse_bias = "User_sim_non_local.excitation.0.bias" in state_dict
    n_item_fe = len([k for k in state_dict if k.startswith("item_fe_dnn.Fe_linears.") and k.endswith(".weight")])
    m = IntTowerRef(cfg, hidden_from_state_dict(state_dict, "user"), cfg.head_dim, cfg.user_heads, cfg.item_heads,
                    fe_layers=fe_layers if fe_layers is not None else cfg.fe_layers, use_bn=use_bn, task=cfg.task,
                    lightse_bias=lightse_bias, item_hidden_units=hidden_from_state_dict(state_dict, "item"),
                    n_item_fe=n_item_fe)
    m.load_state_dict(state_dict, strict=True)
    return m.to(dtype).eval()


def check_official(fixture_dir, batch_size=256):
    """Reproduce official_pred.npy from state_dict.pt + test_inputs.npz."""
    import numpy as np
    pt = os.path.join(fixture_dir, "state_dict.pt")
    if os.path.exists(pt):
        sd = torch.load(pt, map_location="cpu")
    else:   # the same tensors as .npz
        z = np.load(os.path.join(fixture_dir, "state_dict.npz"))
        sd = {k: torch.from_numpy(z[k].copy()) for k in z.files}
    m32 = from_checkpoint(os.path.join(fixture_dir, "config.json"), sd)
    m64 = from_checkpoint(os.path.join(fixture_dir, "config.json"), sd, dtype=torch.float64)
    inp = np.load(os.path.join(fixture_dir, "test_inputs.npz"))
    official = np.load(os.path.join(fixture_dir, "official_pred.npy")).reshape(-1).astype(np.float64)
    # base_tower.predict: x = [x[feature] for feature in feature_index]; expand 1-d to (n,1); concat; .float()
    cols = []
    for f, a, b in m32.layout:
        c = inp[f.name]
        if c.ndim == 1:
            c = c[:, None]
        assert c.shape[1] == b - a, (f.name, c.shape, a, b)
        cols.append(c)
    X = np.concatenate(cols, axis=-1)
    res = {}
    with torch.no_grad():
        for tag, m in (("float32", m32), ("float64", m64)):
            outs = []
            for s in range(0, X.shape[0], batch_size):
                x = torch.from_numpy(X[s:s + batch_size]).float()   # predict(): .float()
                outs.append(m(x).cpu().numpy().astype(np.float64).reshape(-1))
            pred = np.concatenate(outs)
            ae = np.abs(pred - official)
            res[tag] = (float(ae.max()), float((ae / np.abs(official)).max()))
    return res, X.shape[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", metavar="FIXTURE_DIR", help="compare with official_pred.npy")
    a = ap.parse_args()
    if a.check:
        res, n = check_official(a.check)
        ok = True
        for tag, (ae, re_) in res.items():
            print("inttower_ref (%s) vs official_pred.npy, %d rows: max abs err %.3g, max rel err %.3g"
                  % (tag, n, ae, re_))
            ok = ok and re_ < 1e-5
        return 0 if ok else 1
    ap.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
