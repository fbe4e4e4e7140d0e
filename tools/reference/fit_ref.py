#!/usr/bin/env python3
"""A PyTorch FIT (Xiong et al., "A Learnable Fully Interacted Two-Tower Model
for Pre-Ranking System", SIGIR 2025, arXiv 2509.12948), written from
../shared/FIT.md: no official code exists and the paper's method section
could not be read, so this is a reconstruction. Every statement carries the
mark of its source, as in FIT.md:
  [P] the paper's abstract, [R] reviews that paraphrase its equations,
  [C] third-party code that cites it, [I] our choice (inference / serving),
and docs/family.md ("FIT") lists the [I] choices with the switch, if any.

The model (eval mode):
  item side  e   = embeddings of the item's id fields (single ids, pooled multi ids)
             v   = item_dnn([e, dense])                              (a DSSM item tower [I])
             e_c = cat(the ec_fields' embeddings) [C]; optionally mqm.proj(e_c) [C]  -> D
  MQM [R]    Q   = mqm.meta (N x D);  Q* = (Q Q^T) Q
             match = e_c Q^T (N logits, on the RAW rows of Q [R])
             soft query (training): softmax(match / tau) Q*;  hard query (serving): Q*[argmax match]
  user side  x   = [user id-field embeddings (the sequence field excluded), q,
                    DIN(q, sequence) if the model has a behaviour sequence, dense]   [C] (order [I])
             DIN [C]: per position s_j: a_j = din.mlp([q, s_j, q - s_j, q * s_j]),
                  softmax over the non-padding positions (id 0), sum_j a_j s_j; no positions -> 0 [I]
             u   = user_dnn(x)
  LSS [C]    (u, v optionally L2-normalised [C])
             Zu = lss.user_proj(u) as Hu x p, Zv = lss.item_proj(v) as Hv x p
             S  = Zu Zv^T (Hu x Hv); optional S *= exp(lss.log_scale), optional lss.bn over vec(S) [C]
             S1 = relu(S Wr^T + br)        lss.row: Linear(Hv -> o)    -> Hu x o
             S2 = relu(S1^T Wc^T + bc)     lss.col: Linear(Hu -> o)    -> o x o
             logit = lss.out(vec(S2)) (row-major vec [I]); p = sigmoid(logit) [C]

Choices where FIT.md is silent (all [I]; docs/family.md repeats them):
  * D with a behaviour sequence: the sequence field's embeddings are the DIN
    keys, so they have D values: a model with a sequence has D = the user
    side's embedding dim (e_c projected to D when its width differs);
  * the DIN MLP: Linear(4D -> A), ReLU, Linear(A -> 1) (DIN's Dice / PReLU
    replaced by ReLU); an all-padding sequence attends to nothing (zeros);
  * the user tower's input order: id embeddings, q, DIN output, dense;
  * the item tower: the DSSM tower (id embeddings pooled as the reference
    pools them, dense, Linear + BatchNorm + ReLU layers); its output v is
    the LSS item input; e_c reuses the item side's embedding tables;
  * vec(S2) is row-major (index a * o + b, a = row-FC output);
  * tau schedule (training only): tau_e = max(tau_min, tau0 * decay^e).

  /usr/bin/python3 tools/reference/fit_ref.py --train [--work DIR] [--epochs E]
trains on the structured synthetic data of tools/train_synthetic.py (with a
behaviour sequence: the user's other positive training items) and prints
the soft-query vs hard-query gap on the held-out rows.
"""

import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.dirname(HERE)
sys.path.insert(0, TOOLS)
sys.path.insert(0, HERE)
import export_inttower as ex  # noqa: E402
from dssm_ref import DNN  # noqa: E402
from inttower_ref import sequence_pool  # noqa: E402

SIDES = ("user", "item")


class FITOptions(object):
    """The shape and the optional parts of a FIT model."""

    def __init__(self, N=8, D=None, Hu=4, Hv=4, p=8, o=4, seq_field=None, ec_fields=None, ec_proj=False,
                 l2norm=False, lss_scale=False, lss_bn=False, din_hidden=16):
        self.N, self.D, self.Hu, self.Hv, self.p, self.o = N, D, Hu, Hv, p, o
        self.seq_field, self.ec_fields, self.ec_proj = seq_field, ec_fields, ec_proj
        self.l2norm, self.lss_scale, self.lss_bn, self.din_hidden = l2norm, lss_scale, lss_bn, din_hidden

    def to_json(self):
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, d):
        return cls(**d)


class FITRef(nn.Module):
    ARCH = "fit"

    def __init__(self, cfg, hidden_units, opts, item_hidden_units=None, use_bn=True, dropout_rate=0.0):
        super(FITRef, self).__init__()
        self.cfg, self.opts = cfg, opts
        emb = {}
        for side in SIDES:
            d = set(f.dim for f in cfg.fields(side) if f.kind != "dense")
            if len(d) != 1:
                raise ValueError("%s side: id fields must share one embedding dim, got %s" % (side, d))
            emb[side] = d.pop()
        self.emb_dim = emb
        cols = {s: cfg.columns[s] for s in SIDES}
        if opts.seq_field is not None:
            sf = [f for f in cols["user"] if f.name == opts.seq_field]
            if not sf or sf[0].kind != "multi":
                raise ValueError("the behaviour sequence %r must be a user multi-id field" % opts.seq_field)
        ec = opts.ec_fields or [f.name for f in cfg.fields("item") if f.kind != "dense"]
        self.ec_fields = [next(f for f in cfg.fields("item") if f.name == n) for n in ec]
        ec_width = len(self.ec_fields) * emb["item"]
        D = opts.D or (emb["user"] if opts.seq_field else ec_width)
        if opts.seq_field and D != emb["user"]:
            raise ValueError("with a behaviour sequence D must be the user embedding dim %d" % emb["user"])
        if D != ec_width and not opts.ec_proj:
            raise ValueError("e_c has %d values and D = %d: set ec_proj" % (ec_width, D))
        self.D = D

        def emb_dict(side):
            return nn.ModuleDict({f.embedding_name: nn.Embedding(f.vocab, f.dim)
                                  for f in cfg.fields(side) if f.kind != "dense"})
        self.user_embedding_dict = emb_dict("user")
        self.item_embedding_dict = emb_dict("item")
        n_user_id = len([f for f in cfg.fields("user") if f.kind != "dense" and f.name != opts.seq_field])
        user_dense = sum(f.dim for f in cfg.fields("user") if f.kind == "dense")
        item_id = len([f for f in cfg.fields("item") if f.kind != "dense"])
        item_dense = sum(f.dim for f in cfg.fields("item") if f.kind == "dense")
        uw = n_user_id * emb["user"] + D + (D if opts.seq_field else 0) + user_dense
        iw = item_id * emb["item"] + item_dense
        self.user_dnn = DNN(uw, hidden_units, use_bn, dropout_rate)
        self.item_dnn = DNN(iw, list(item_hidden_units or hidden_units), use_bn, dropout_rate)
        self.mqm = nn.Module()
        self.mqm.meta = nn.Parameter(torch.randn(opts.N, D) * 0.3)
        if opts.ec_proj:
            self.mqm.proj = nn.Linear(ec_width, D)
        if opts.seq_field:
            self.din = nn.Module()
            self.din.mlp = nn.Sequential(nn.Linear(4 * D, opts.din_hidden), nn.ReLU(), nn.Linear(opts.din_hidden, 1))
        du, dv = list(hidden_units)[-1], list(item_hidden_units or hidden_units)[-1]
        self.lss = nn.Module()
        self.lss.user_proj = nn.Linear(du, opts.Hu * opts.p)
        self.lss.item_proj = nn.Linear(dv, opts.Hv * opts.p)
        if opts.lss_scale:
            self.lss.log_scale = nn.Parameter(torch.zeros(1))
        if opts.lss_bn:
            self.lss.bn = nn.BatchNorm1d(opts.Hu * opts.Hv)
        self.lss.row = nn.Linear(opts.Hv, opts.o)
        self.lss.col = nn.Linear(opts.Hu, opts.o)
        self.lss.out = nn.Linear(opts.o * opts.o, 1)
        self.layout = cfg.flat_layout()

    # ---- MQM
    def hard_queries(self):
        Q = self.mqm.meta
        return (Q @ Q.t()) @ Q

    def ec(self, get_ids):
        parts = []
        for f in self.ec_fields:
            ids = get_ids(f)
            e = self.item_embedding_dict[f.embedding_name](ids)
            parts.append(e[:, 0] if f.kind == "single" else sequence_pool(e, ids, f.combiner)[:, 0])
        e = torch.cat(parts, dim=-1)
        return self.mqm.proj(e) if self.opts.ec_proj else e

    def match(self, get_ids):
        """(B, N) match logits e_c . q_i on the raw rows of Q [R]."""
        return self.ec(get_ids) @ self.mqm.meta.t()

    def query(self, match, tau=None, hard=True):
        Qs = self.hard_queries()
        if hard:
            return Qs[match.argmax(dim=1)]
        return torch.softmax(match / tau, dim=1) @ Qs

    # ---- towers
    def item_vec(self, get_ids, get_dense):
        parts, dense = [], []
        for f in self.cfg.columns["item"]:
            if f.kind == "single":
                parts.append(self.item_embedding_dict[f.embedding_name](get_ids(f)))
        for f in self.cfg.columns["item"]:
            if f.kind == "multi":
                ids = get_ids(f)
                parts.append(sequence_pool(self.item_embedding_dict[f.embedding_name](ids), ids, f.combiner))
        dense = [get_dense(f) for f in self.cfg.columns["item"] if f.kind == "dense"]
        x = torch.flatten(torch.cat(parts, dim=-1), start_dim=1)
        if dense:
            x = torch.cat([x, torch.flatten(torch.cat(dense, dim=-1), start_dim=1)], dim=-1)
        return self.item_dnn(x)

    def din_pool(self, q, ids):
        s = self.user_embedding_dict[self.opts.seq_field](ids)           # (B, L, D)
        t = q[:, None, :].expand_as(s)
        a = self.din.mlp(torch.cat([t, s, t - s, t * s], dim=-1))[..., 0]  # (B, L)
        mask = ids != 0
        a = a.masked_fill(~mask, float("-inf"))
        w = torch.softmax(a, dim=1)
        w = torch.where(mask, w, torch.zeros_like(w))                      # all padding: NaN -> 0
        return torch.sum(w[..., None] * s, dim=1)

    def user_vec(self, get_ids, get_dense, q):
        cols = self.cfg.columns["user"]
        parts = [self.user_embedding_dict[f.embedding_name](get_ids(f))[:, 0] for f in cols if f.kind == "single"]
        for f in cols:
            if f.kind == "multi" and f.name != self.opts.seq_field:
                ids = get_ids(f)
                parts.append(sequence_pool(self.user_embedding_dict[f.embedding_name](ids), ids, f.combiner)[:, 0])
        parts.append(q)
        if self.opts.seq_field:
            sf = next(f for f in cols if f.name == self.opts.seq_field)
            parts.append(self.din_pool(q, get_ids(sf)))
        parts += [get_dense(f) for f in cols if f.kind == "dense"]
        return self.user_dnn(torch.cat(parts, dim=-1))

    # ---- LSS
    def item_heads(self, v):
        if self.opts.l2norm:
            v = F.normalize(v, dim=-1)
        return self.lss.item_proj(v).reshape(-1, self.opts.Hv, self.opts.p)

    def user_heads(self, u):
        if self.opts.l2norm:
            u = F.normalize(u, dim=-1)
        return self.lss.user_proj(u).reshape(-1, self.opts.Hu, self.opts.p)

    def lss_logit(self, Zu, Zv):
        o = self.opts
        S = Zu @ Zv.transpose(1, 2)                                         # (B, Hu, Hv)
        if o.lss_scale:
            S = S * torch.exp(self.lss.log_scale)
        if o.lss_bn:
            S = self.lss.bn(S.reshape(-1, o.Hu * o.Hv)).reshape(-1, o.Hu, o.Hv)
        S1 = torch.relu(self.lss.row(S))                                    # (B, Hu, o)
        S2 = torch.relu(self.lss.col(S1.transpose(1, 2)))                   # (B, o, o)
        return self.lss.out(S2.reshape(-1, o.o * o.o))[:, 0]

    def getters(self, X):
        pos = {f.name: (a, b) for f, a, b in self.layout}

        def get_ids(f):
            a, b = pos[f.name]
            return X[:, a:b].long()

        def get_dense(f):
            a, b = pos[f.name]
            return X[:, a:b].float()
        return get_ids, get_dense

    def query_index(self, X):
        """The serving query index of each row: argmax_i e_c . q_i [R][C]."""
        return self.match(self.getters(X)[0]).argmax(dim=1)

    def forward(self, X, tau=None, hard=True, logits=False):
        """X: (B, n_columns) flat input (cfg.flat_layout()). hard=False: the
        soft query at temperature tau (training)."""
        get_ids, get_dense = self.getters(X)
        q = self.query(self.match(get_ids), tau, hard)
        z = self.lss_logit(self.user_heads(self.user_vec(get_ids, get_dense, q)),
                           self.item_heads(self.item_vec(get_ids, get_dense)))
        return z if logits else torch.sigmoid(z)


# --------------------------------------------------------------------------
# training on the structured synthetic data (tools/train_synthetic.py)

SEQ_LEN = 8
MODEL = dict(embedding_dim=16, hidden=[32, 16], item_hidden=[32, 24])
TRAIN = dict(seed=1029, lr=2e-3, batch_size=256, epochs=24, tau0=1.0, tau_min=0.05, dropout=0.1)


def synthetic(with_seq, embedding_dim=MODEL["embedding_dim"]):
    import train_synthetic as ts
    data = ts.make_data()
    cols, y = data["cols"], data["label"]
    n_items = data["vocab"]["movie_id"]
    user = [dict(name=n, kind="single", vocab=data["vocab"][n], dim=embedding_dim) for n in ts.USER_SPARSE]
    if with_seq:
        user.append(dict(name="user_hist", kind="multi", vocab=n_items + 1, dim=embedding_dim, maxlen=SEQ_LEN))
        # the user's positive training items other than the row's own, ids + 1 (0 = padding) [I]
        rng = np.random.default_rng(7)
        pos = {}
        for r in data["train"]:
            if y[r]:
                pos.setdefault(int(cols["user_id"][r]), []).append(int(cols["movie_id"][r]))
        for u in pos:
            rng.shuffle(pos[u])
        hist = np.zeros((len(y), SEQ_LEN), dtype=np.int64)
        for r in range(len(y)):
            lst = [m for m in pos.get(int(cols["user_id"][r]), []) if m != int(cols["movie_id"][r])][:SEQ_LEN]
            hist[r, :len(lst)] = np.array(lst, dtype=np.int64) + 1
        cols["user_hist"] = hist
    user.append(dict(name="user_mean_rating", kind="dense", dim=1))
    item = [dict(name="movie_id", kind="single", vocab=n_items, dim=embedding_dim),
            dict(name="genres", kind="multi", vocab=data["genres_vocab"], dim=embedding_dim,
                 maxlen=ts.DATA["genres_maxlen"]),
            dict(name="item_mean_rating", kind="dense", dim=1)]
    conf = dict(user=user, item=item, hidden_units=dict(user=MODEL["hidden"], item=MODEL["item_hidden"]))
    return data, conf


def flat(cfg, cols, rows):
    parts = []
    for f, a, b in cfg.flat_layout():
        c = cols[f.name][rows]
        parts.append((c[:, None] if c.ndim == 1 else c).astype(np.float32))
    return torch.from_numpy(np.concatenate(parts, axis=1))


def tau_at(epoch, t=TRAIN):
    decay = (t["tau_min"] / t["tau0"]) ** (1.0 / max(1, t["epochs"] - 1))
    return max(t["tau_min"], t["tau0"] * decay ** epoch)


def train(opts, with_seq, anneal=True, t=TRAIN, log=print, embedding_dim=MODEL["embedding_dim"]):
    import train_synthetic as ts
    data, conf = synthetic(with_seq, embedding_dim)
    cfg = ex.config_from_json(conf)
    torch.manual_seed(t["seed"])
    m = FITRef(cfg, MODEL["hidden"], opts, item_hidden_units=MODEL["item_hidden"], dropout_rate=t["dropout"])
    y = torch.from_numpy(data["label"].astype(np.float32))
    Xtr, ytr = flat(cfg, data["cols"], data["train"]), y[data["train"]]
    Xte, yte = flat(cfg, data["cols"], data["test"]), data["label"][data["test"]]
    opt = torch.optim.Adam(m.parameters(), lr=t["lr"])
    g = torch.Generator().manual_seed(t["seed"])
    for e in range(t["epochs"]):
        tau = tau_at(e, t) if anneal else t["tau0"]
        m.train()
        perm = torch.randperm(Xtr.shape[0], generator=g)
        for s in range(0, len(perm), t["batch_size"]):
            b = perm[s:s + t["batch_size"]]
            loss = F.binary_cross_entropy_with_logits(m(Xtr[b], tau=tau, hard=False, logits=True), ytr[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    m.eval()
    with torch.no_grad():
        soft = m(Xte, tau=tau, hard=False).numpy()
        hard = m(Xte).numpy()
        used = np.unique(m.query_index(Xte).numpy())
    gap = dict(final_tau=tau, auc_soft=ts.auc(yte, soft), auc_hard=ts.auc(yte, hard),
               mean_abs_gap=float(np.mean(np.abs(soft - hard))), max_abs_gap=float(np.max(np.abs(soft - hard))),
               queries_used=int(len(used)), test_rows=int(len(yte)))
    log("fit (seq=%s, anneal=%s): %s" % (with_seq, anneal, json.dumps(gap)))
    return m, cfg, conf, data, gap


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", action="store_true", help="train on the synthetic data and report the soft/hard gap")
    ap.add_argument("--epochs", type=int, default=TRAIN["epochs"])
    a = ap.parse_args(argv)
    if not a.train:
        ap.print_help()
        return 0
    t = dict(TRAIN, epochs=a.epochs)
    for with_seq, anneal in ((True, True), (True, False), (False, True)):
        opts = FITOptions(N=8, Hu=4, Hv=6, p=8, o=5, seq_field="user_hist" if with_seq else None,
                          ec_proj=with_seq, l2norm=with_seq, lss_scale=with_seq, lss_bn=with_seq)
        train(opts, with_seq, anneal, t)
    return 0


if __name__ == "__main__":
    sys.exit(main())
