#!/usr/bin/env python3
"""Train IntTower on a synthetic MovieLens-like data set, in two variants, and
write the small committed fixture tests/fixtures/trained/.

  /usr/bin/python3 tools/train_synthetic.py [--work /tmp/towerrt-trained]
        [--fixture tests/fixtures/trained] [--check-cli build/towerrt]

Needs PyTorch and NumPy (Debian's /usr/bin/python3). Everything is seeded:
the same torch build regenerates the same files.

The data (no real MovieLens offline) has real structure, so that a good model
ranks well and a bad one visibly does not:

  * items: 1-4 genres each (a multi-id field, padded with 0 to genres_maxlen),
    a latent factor that is mostly the mean of its genres' factors plus an
    item-specific part, and a bias (quality / popularity);
  * users: gender, age, occupation (MovieLens-1M categories), each with a
    latent effect; every user has `interests` latent interest vectors
    (demographic part + an individual part) and a bias;
  * which (user, item) pairs are rated: user activity x item popularity,
    sampled without replacement;
  * label ~ Bernoulli(sigmoid(logit)), logit = scale * max over the user's
    interests of <interest, item factor> / sqrt(latent) + user bias + item
    bias + offset (a multi-interest user: what MaxSim is built for);
  * dense features user_mean_rating / item_mean_rating: the mean label of the
    user / item in the TRAINING split (the reference script computes them in
    each split, test included, which leaks test labels; we do not), min-max
    scaled with the training split's range.

Split by the seed: 20% test, then the last 20% of the rest validation (the
reference's validation_split=0.2), the rest training.

The model is tools/reference/inttower_ref.py's IntTowerRef (the reference
architecture and parameter names: Light-SE, towers with BatchNorm + ReLU,
User_Fe_DNN / Item_Fe_DNN FE projections, MaxSim fe_score), initialised as the
reference does (embeddings and tower Linear weights ~ N(0, 1e-4)), trained as
train_movielens_IntTower.py does: Adam (lr 1e-3), binary cross-entropy
(summed over the batch) + L2 1e-5 on the embeddings, dropout 0.3 after every
tower ReLU, early stopping on validation AUC keeping the best epoch's weights
(ModelCheckpoint save_best_only). Differences: batch 256 (the script's 2048
would be 8 steps per epoch here); patience 20 epochs, not 5: validation AUC
plateaus for several epochs on this small data, and with patience 5 the
layer0 variant stops at epoch 25 (test AUC 0.845) where it reaches 0.877 if
trained on (--patience 5 reproduces that). The reference's contrastive term
(preprocessing.utils.contrast_loss) is off unless --contrast.

Two variants:
  all_layers  fe_score over user FE layers [0, 1, 2] (the reference)
  layer0      fe_score over user FE layer [0] only (the README's "Accelerate"
              variant: the projection of the Light-SE output)

Writes under --work (not committed): data.npz (every row, with the true
logits), test_inputs.npz (full test split), and per variant state_dict.npz,
config.json, test_pred.npy (the reference model's predictions on the full test
split), forced-subset predictions pred_<layers>.npy and train_log.json.
Writes under --fixture (committed, ~300 KB): test_inputs.npz (a fixed subset
of the test split), per variant state_dict.npz, config.json, test_pred.npy
(on that subset), manifest.json and README.md.

--check-cli CLI: exports both variants with tools/export_inttower.py, scores
the full test split with `CLI score` (as trained and with every forced FE
subset) and compares with the reference model's predictions (relative
tolerance 1e-5), printing the AUCs. --skip-train reuses --work.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "reference"))
import export_inttower as ex  # noqa: E402
import inttower_ref as ref  # noqa: E402
import towerrt_format as tf  # noqa: E402
import towerrt_requests as treq  # noqa: E402

# ---------------------------------------------------------------------------
# configuration

DATA = dict(seed=20240611, n_users=100, n_items=400, n_rows=30000, n_genres=18, genres_maxlen=4,
            latent=4, interests=2, scale=4.0, item_noise=0.4, user_noise=0.6, demo=0.6,
            test_frac=0.2, val_frac=0.2)
MODEL = dict(embedding_dim=16, hidden=[32, 32, 16], head_dim=8, user_heads=8, item_heads=8)
TRAIN = dict(seed=1023, lr=1e-3, batch_size=256, max_epochs=200, patience=20, dropout=0.3, l2_emb=1e-5,
             init_std=1e-4, contrast=False)
VARIANTS = (("all_layers", [0, 1, 2]), ("layer0", [0]))
FIXTURE_TEST_ROWS = 3000
FORCED_SUBSETS = {"all_layers": ["0", "1", "2", "0,1", "0,2", "1,2"], "layer0": []}

USER_SPARSE = ["user_id", "gender", "age", "occupation"]
USER_DENSE = ["user_mean_rating"]
ITEM_SPARSE = ["movie_id"]
ITEM_DENSE = ["item_mean_rating"]
# the reference's test_inputs.npz column order: sparse_features + dense_features, genres, label
NPZ_COLUMNS = ["user_id", "movie_id", "gender", "age", "occupation", "user_mean_rating",
               "item_mean_rating", "genres"]
AGE_P = [0.04, 0.18, 0.35, 0.20, 0.08, 0.08, 0.07]   # MovieLens-1M age buckets, roughly


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def auc(labels, scores):
    """Mann-Whitney AUC with average ranks for ties (as fe_mode_accuracy.py)."""
    labels = np.asarray(labels).astype(np.float64).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    order = np.argsort(scores, kind="mergesort")
    s = scores[order]
    ranks = np.empty(len(s), dtype=np.float64)
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    pos = labels > 0.5
    npos, nneg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - npos * (npos + 1) / 2.0) / (npos * nneg))


def logloss(labels, p):
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-7, 1 - 1e-7)
    y = np.asarray(labels, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


# ---------------------------------------------------------------------------
# data

def make_data(d=DATA):
    rng = np.random.default_rng(d["seed"])
    nu, ni, ng, L, K = d["n_users"], d["n_items"], d["n_genres"], d["latent"], d["interests"]
    # items: genres (popularity skewed), factors, bias
    gpop = 1.0 / np.arange(1, ng + 1) ** 0.8
    gpop /= gpop.sum()
    n_gen = rng.choice([1, 2, 3, 4], size=ni, p=[0.35, 0.35, 0.2, 0.1])
    n_gen = np.minimum(n_gen, d["genres_maxlen"])
    item_genres = [rng.choice(ng, size=c, replace=False, p=gpop) for c in n_gen]
    G = rng.normal(0.0, 1.0, (ng, L))
    item_v = np.stack([G[g].mean(0) for g in item_genres]) * 0.9 + rng.normal(0.0, d["item_noise"], (ni, L))
    item_b = rng.normal(0.0, 0.5, ni)
    # users: demographics, interests, bias
    gender = rng.choice(2, size=nu, p=[0.28, 0.72])
    age = rng.choice(7, size=nu, p=AGE_P)
    occ_p = rng.dirichlet(np.ones(21) * 2.0)
    occ = rng.choice(21, size=nu, p=occ_p)
    ds = d["demo"]
    Dg, Da, Do = rng.normal(0, ds, (2, L)), rng.normal(0, ds, (7, L)), rng.normal(0, 0.8 * ds, (21, L))
    demo = Dg[gender] + Da[age] + Do[occ]
    U = demo[:, None, :] + rng.normal(0.0, d["user_noise"], (nu, K, L))
    age_b = rng.normal(0.0, 0.2, 7)
    user_b = rng.normal(0.0, 0.5, nu) + age_b[age]
    # which pairs are rated
    act = rng.lognormal(0.0, 0.5, nu)
    pop = rng.lognormal(0.0, 0.7, ni)
    w = (act[:, None] * pop[None, :]).reshape(-1)
    pairs = rng.choice(nu * ni, size=d["n_rows"], replace=False, p=w / w.sum())
    uu, ii = pairs // ni, pairs % ni
    aff = np.einsum("nkl,nl->nk", U[uu], item_v[ii]).max(1) / np.sqrt(L)
    raw = d["scale"] * aff + user_b[uu] + item_b[ii]
    offset = np.log(0.575 / 0.425) - np.median(raw)   # ~57.5% positives, as MovieLens ratings > 3
    logit = raw + offset
    label = (rng.random(len(logit)) < sigmoid(logit)).astype(np.int64)
    # split: test first, then validation = the last val_frac of the rest (validation_split)
    perm = rng.permutation(len(label))
    nt = int(round(d["test_frac"] * len(label)))
    test, rest = perm[:nt], perm[nt:]
    split_at = int(len(rest) * (1.0 - d["val_frac"]))
    train, val = rest[:split_at], rest[split_at:]
    split = np.zeros(len(label), dtype=np.int8)  # 0 train, 1 validation, 2 test
    split[val], split[test] = 1, 2
    # encoding as the reference preprocessing leaves it: LabelEncoder over all rows
    def lbe(x):
        _, enc = np.unique(x, return_inverse=True)
        return enc.astype(np.int64)
    cols = {"user_id": lbe(uu), "movie_id": lbe(ii), "gender": lbe(gender[uu]), "age": lbe(age[uu]),
            "occupation": lbe(occ[uu])}
    # genres: ids from 1 in order of first appearance in the training rows (get_var_feature), 0 = padding
    key2index = {}
    for r in list(train) + list(val) + list(test):
        for g in item_genres[ii[r]]:
            if int(g) not in key2index:
                key2index[int(g)] = len(key2index) + 1
    gm = np.zeros((len(label), d["genres_maxlen"]), dtype=np.int32)
    for r in range(len(label)):
        gs = [key2index[int(g)] for g in item_genres[ii[r]]]
        gm[r, :len(gs)] = gs
    cols["genres"] = gm
    # dense: mean label per user / item over the training rows, min-max scaled on the training rows
    glob = label[train].mean()
    for name, key, n in (("user_mean_rating", uu, nu), ("item_mean_rating", ii, ni)):
        s = np.bincount(key[train], weights=label[train], minlength=n)
        c = np.bincount(key[train], minlength=n)
        m = np.where(c > 0, s / np.maximum(c, 1), glob)
        v = m[key]
        lo, hi = v[train].min(), v[train].max()
        cols[name] = ((v - lo) / (hi - lo)).astype(np.float32)
    vocab = {k: int(cols[k].max()) + 1 for k in ("user_id", "movie_id", "gender", "age", "occupation")}
    return dict(cols=cols, label=label, logit=logit, split=split, vocab=vocab,
                genres_vocab=ng + 1, train=train, val=val, test=test)


def config_json(data, fe_layers, extra=None):
    c = {"user_sparse": USER_SPARSE, "user_dense": USER_DENSE, "item_sparse": ITEM_SPARSE,
         "item_dense": ITEM_DENSE, "vocab": data["vocab"], "genres_vocab": data["genres_vocab"],
         "genres_maxlen": DATA["genres_maxlen"], "embedding_dim": MODEL["embedding_dim"],
         "field_dim": MODEL["head_dim"], "user_head": MODEL["user_heads"], "item_head": MODEL["item_heads"],
         "dnn_hidden_units": MODEL["hidden"], "user_filed_size": 4, "item_filed_size": 2,
         "fe_layers": list(fe_layers)}
    c.update(extra or {})
    return c


def flat_inputs(cfg, cols, rows=None):
    """The reference's flat input (build_input_features order), float32 as predict() feeds it."""
    parts = []
    for f, a, b in cfg.flat_layout():
        c = cols[f.name] if rows is None else cols[f.name][rows]
        if c.ndim == 1:
            c = c[:, None]
        assert c.shape[1] == b - a, (f.name, c.shape, a, b)
        parts.append(c.astype(np.float32))
    return np.concatenate(parts, axis=1)


# ---------------------------------------------------------------------------
# model and training

def build_model(cfg, fe_layers, t=TRAIN):
    torch.manual_seed(t["seed"])
    m = ref.IntTowerRef(cfg, MODEL["hidden"], MODEL["head_dim"], MODEL["user_heads"], MODEL["item_heads"],
                        fe_layers=fe_layers)
    # the reference's initialisation: create_embedding_matrix and the tower Linears ~ N(0, init_std)
    with torch.no_grad():
        for d in (m.user_embedding_dict, m.item_embedding_dict):
            for e in d.values():
                torch.nn.init.normal_(e.weight, 0.0, t["init_std"])
        for dnn in (m.user_fe_dnn, m.item_fe_dnn):
            for lin in dnn.linears:
                torch.nn.init.normal_(lin.weight, 0.0, t["init_std"])
    return m


def forward_train(m, X):
    """Like IntTowerRef.forward, also returning the FE representations."""
    pos = {f.name: (a, b) for f, a, b in m.layout}

    def get_ids(f):
        a, b = pos[f.name]
        return X[:, a:b].long()

    def get_dense(f):
        a, b = pos[f.name]
        return X[:, a:b]
    u, i = m.reps(get_ids, get_dense)
    return m._finish(u, i, None), u, i


def contrast_loss(y, user_embedding, item_embedding):
    """preprocessing.utils.contrast_loss of the reference, as written."""
    user_embedding = F.normalize(user_embedding, dim=-1)
    item_embedding = F.normalize(item_embedding, dim=-1)
    scores = torch.matmul(user_embedding, item_embedding.t()) / 0.07
    scores = scores - scores.max()
    return (torch.log(scores.exp().sum(dim=1)) - scores[range(scores.shape[0]), y]).mean()


def predict(m, X, fe_layers=None, batch_size=2048):
    m.eval()
    out = []
    with torch.no_grad():
        for s in range(0, X.shape[0], batch_size):
            out.append(m(torch.from_numpy(X[s:s + batch_size]), fe_layers=fe_layers).numpy().reshape(-1))
    return np.concatenate(out).astype(np.float32)


def train_variant(cfg, data, fe_layers, log, t=TRAIN):
    m = build_model(cfg, fe_layers, t)
    m.user_fe_dnn.dropout.p = t["dropout"]
    m.item_fe_dnn.dropout.p = t["dropout"]
    cols, y = data["cols"], data["label"]
    Xtr, ytr = flat_inputs(cfg, cols, data["train"]), y[data["train"]].astype(np.float32)
    Xva, yva = flat_inputs(cfg, cols, data["val"]), y[data["val"]]
    opt = torch.optim.Adam(m.parameters(), lr=t["lr"])
    emb_params = list(m.user_embedding_dict.parameters()) + list(m.item_embedding_dict.parameters())
    g = torch.Generator().manual_seed(t["seed"])
    Xtr_t, ytr_t = torch.from_numpy(Xtr), torch.from_numpy(ytr)
    best, best_state, best_epoch, bad, hist = -1.0, None, -1, 0, []
    t0 = time.time()
    for epoch in range(t["max_epochs"]):
        m.train()
        perm = torch.randperm(len(ytr), generator=g)
        tot = 0.0
        for s in range(0, len(ytr), t["batch_size"]):
            idx = perm[s:s + t["batch_size"]]
            xb, yb = Xtr_t[idx], ytr_t[idx]
            pred, u, i = forward_train(m, xb)
            loss = F.binary_cross_entropy(pred.reshape(-1), yb, reduction="sum")
            reg = sum(t["l2_emb"] * torch.sum(p * p) for p in emb_params)
            total = loss + reg
            if t["contrast"]:
                total = total + contrast_loss(yb.long(), u[-1], i[-1])
            opt.zero_grad()
            total.backward()
            opt.step()
            tot += float(loss)
        va = auc(yva, predict(m, Xva))
        hist.append({"epoch": epoch + 1, "train_logloss": tot / len(ytr), "val_auc": va,
                     "seconds": round(time.time() - t0, 2)})
        log("  epoch %2d  train logloss %.4f  val AUC %.4f  (%.1fs)" % (epoch + 1, tot / len(ytr), va,
                                                                       time.time() - t0))
        if va > best:
            best, best_epoch, bad = va, epoch + 1, 0
            best_state = {k: v.detach().clone() for k, v in m.state_dict().items()}
        else:
            bad += 1
            if bad >= t["patience"]:
                break
    m.load_state_dict(best_state)
    m.user_fe_dnn.dropout.p = 0.0
    m.item_fe_dnn.dropout.p = 0.0
    m.eval()
    return m, {"best_epoch": best_epoch, "epochs_run": len(hist), "val_auc": best,
               "train_seconds": round(time.time() - t0, 1), "history": hist}


def save_state_dict(path, m):
    sd = m.state_dict()
    arrays = {}
    for k, v in sd.items():
        a = v.detach().cpu().numpy()
        arrays[k] = a.astype(np.float32) if a.dtype != np.int64 else a
    np.savez_compressed(path, **arrays)


def save_inputs(path, cols, label, rows):
    out = {}
    for k in NPZ_COLUMNS:
        out[k] = cols[k][rows]
    out["label"] = label[rows].astype(np.int64)
    np.savez_compressed(path, **out)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def param_bytes(m):
    return sum(v.numel() * 4 for v in m.state_dict().values())


# ---------------------------------------------------------------------------
# main steps

def run_training(work, fixture, log):
    os.makedirs(work, exist_ok=True)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    t0 = time.time()
    data = make_data()
    cols, y, test = data["cols"], data["label"], data["test"]
    oracle = auc(y[test], data["logit"][test])
    log("data: %d rows (%d train, %d validation, %d test), %d users, %d items, %.1f%% positive; "
        "oracle test AUC (true logits) %.4f" % (len(y), len(data["train"]), len(data["val"]), len(test),
                                                DATA["n_users"], DATA["n_items"], 100 * y.mean(), oracle))
    np.savez_compressed(os.path.join(work, "data.npz"), label=y, logit=data["logit"], split=data["split"],
                        **cols)
    save_inputs(os.path.join(work, "test_inputs.npz"), cols, y, test)
    # the fixture's subset of the test split: a seeded sample, in test-split order
    rng = np.random.default_rng(DATA["seed"] + 1)
    sub_pos = np.sort(rng.choice(len(test), size=min(FIXTURE_TEST_ROWS, len(test)), replace=False))
    sub = test[sub_pos]
    results = {}
    for name, fe in VARIANTS:
        log("training %s (fe_layers %s)" % (name, fe))
        cfgj = config_json(data, fe)
        cfg = ex.config_from_json(json.loads(json.dumps(cfgj)))
        m, info = train_variant(cfg, data, fe, log)
        Xte = flat_inputs(cfg, cols, test)
        pred = predict(m, Xte)
        info.update({"test_auc": auc(y[test], pred), "test_logloss": logloss(y[test], pred),
                     "test_rows": int(len(test)), "state_dict_bytes_f32": param_bytes(m)})
        forced, forced_pred = {}, {}
        for s in FORCED_SUBSETS[name]:
            forced_pred[s] = predict(m, Xte, fe_layers=[int(v) for v in s.split(",")])
            forced[s] = auc(y[test], forced_pred[s])
        info["forced_test_auc"] = forced
        log("  %s: best epoch %d of %d, val AUC %.4f, test AUC %.4f, logloss %.4f, %.1fs%s"
            % (name, info["best_epoch"], info["epochs_run"], info["val_auc"], info["test_auc"],
               info["test_logloss"], info["train_seconds"],
               "".join("; [%s] %.4f" % (k, v) for k, v in forced.items())))
        meta = {"dropout": TRAIN["dropout"], "lr": TRAIN["lr"], "batch_size": TRAIN["batch_size"],
                "best_epoch": info["best_epoch"], "val_auc": round(info["val_auc"], 6),
                "test_auc": round(info["test_auc"], 6), "test_logloss": round(info["test_logloss"], 6),
                "oracle_test_auc": round(oracle, 6),
                "data": "synthetic MovieLens-like (tools/train_synthetic.py): %d rows, %d users, %d items"
                        % (len(y), DATA["n_users"], DATA["n_items"])}
        # full outputs
        d = os.path.join(work, name)
        os.makedirs(d, exist_ok=True)
        save_state_dict(os.path.join(d, "state_dict.npz"), m)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(config_json(data, fe, meta), f, indent=1)
        np.save(os.path.join(d, "test_pred.npy"), pred)
        for s, p in forced_pred.items():
            np.save(os.path.join(d, "pred_%s.npy" % s.replace(",", "_")), p)
        with open(os.path.join(d, "train_log.json"), "w") as f:
            json.dump(info, f, indent=1)
        # fixture
        if fixture:
            fd = os.path.join(fixture, name)
            os.makedirs(fd, exist_ok=True)
            save_state_dict(os.path.join(fd, "state_dict.npz"), m)
            with open(os.path.join(fd, "config.json"), "w") as f:
                json.dump(config_json(data, fe, meta), f, indent=1)
            np.save(os.path.join(fd, "test_pred.npy"), predict(m, flat_inputs(cfg, cols, sub)))
        results[name] = info
    if fixture:
        save_inputs(os.path.join(fixture, "test_inputs.npz"), cols, y, sub)
        write_fixture_docs(fixture, data, results, oracle, sub, time.time() - t0)
    log("total %.1fs" % (time.time() - t0))
    return results


def write_fixture_docs(fixture, data, results, oracle, sub, seconds):
    y = data["label"]
    files = {}
    for root, _, names in os.walk(fixture):
        for n in sorted(names):
            if n in ("manifest.json", "README.md"):
                continue
            p = os.path.join(root, n)
            files[os.path.relpath(p, fixture)] = {"bytes": os.path.getsize(p), "sha256": sha256(p)}
    man = {
        "generator": "tools/train_synthetic.py",
        "torch": torch.__version__, "numpy": np.__version__,
        "data": DATA, "model": MODEL, "train": {k: v for k, v in TRAIN.items()},
        "variants": {n: fe for n, fe in VARIANTS},
        "rows": {"all": int(len(y)), "train": int(len(data["train"])), "validation": int(len(data["val"])),
                 "test": int(len(data["test"])), "fixture_test_subset": int(len(sub)),
                 "fixture_test_positive": int(y[sub].sum())},
        "oracle_test_auc": oracle,
        "results": {n: {k: v for k, v in r.items() if k != "history"} for n, r in results.items()},
        "total_seconds": round(seconds, 1),
        "files": files,
    }
    with open(os.path.join(fixture, "manifest.json"), "w") as f:
        json.dump(man, f, indent=1, sort_keys=False)
    r0, r1 = results["all_layers"], results["layer0"]
    txt = """# Trained IntTower fixture (synthetic MovieLens-like data)

Regenerate (PyTorch + NumPy; deterministic for a given torch build):

    /usr/bin/python3 tools/train_synthetic.py --fixture tests/fixtures/trained

Two models of the reference architecture (tools/reference/inttower_ref.py:
Light-SE, towers %(hidden)s with BatchNorm + ReLU, %(uh)d user heads x %(ih)d item
heads of %(hd)d dims, embedding dim %(ed)d), trained with Adam / BCE / dropout
%(drop)s / early stopping on validation AUC as the reference MovieLens script
does, on %(rows)d synthetic ratings (%(nu)d users, %(ni)d items, genres as a
padded multi-id field of up to %(ml)d ids; see tools/train_synthetic.py):

| variant | fe_layers | best epoch | validation AUC | test AUC (%(nt)d rows) |
|---|---|---|---|---|
| all_layers/ | [0, 1, 2] (reference fe_score) | %(e0)d | %(v0).4f | %(t0).4f |
| layer0/ | [0] (README "Accelerate") | %(e1)d | %(v1).4f | %(t1).4f |

The true logits of the generator reach a test AUC of %(oracle).4f (the ceiling).

Files:
- `<variant>/state_dict.npz`: the reference state_dict (same names, float32;
  num_batches_tracked int64), compressed .npz (tools/export_inttower.py reads it);
- `<variant>/config.json`: the feature configuration in the reference
  script's layout (docs/exporter.md), with `fe_layers` and the training record;
- `<variant>/test_pred.npy`: the reference model's predicted probabilities
  (float32, eval mode) on `test_inputs.npz`;
- `test_inputs.npz`: %(ns)d rows of the held-out test split (a seeded sample;
  %(npos)d positive), one array per input column as the reference's
  predict() takes them, plus `label`;
- `manifest.json`: generator settings, row counts, AUCs, training times,
  file sizes and sha256.

Use:

    python3 tools/export_inttower.py --weights tests/fixtures/trained/all_layers/state_dict.npz \\
        --config tests/fixtures/trained/all_layers/config.json --out /tmp/all.twr
    python3 tools/fe_mode_accuracy.py --cli build/towerrt --model /tmp/all.twr \\
        --inputs tests/fixtures/trained/test_inputs.npz --subsets 0 1 2 0,1 0,2 1,2

docs/accuracy.md has the measured tables.
""" % dict(hidden=tuple(MODEL["hidden"]), uh=MODEL["user_heads"], ih=MODEL["item_heads"],
           hd=MODEL["head_dim"], ed=MODEL["embedding_dim"], drop=TRAIN["dropout"], rows=len(y),
           nu=DATA["n_users"], ni=DATA["n_items"], ml=DATA["genres_maxlen"], nt=len(data["test"]),
           e0=r0["best_epoch"], v0=r0["val_auc"], t0=r0["test_auc"], e1=r1["best_epoch"], v1=r1["val_auc"],
           t1=r1["test_auc"], oracle=oracle, ns=len(sub), npos=int(y[sub].sum()))
    with open(os.path.join(fixture, "README.md"), "w") as f:
        f.write(txt)


# ---------------------------------------------------------------------------
# parity with the towerrt CLI

def check_cli(cli, work, log, rtol=1e-5):
    """Export both variants, score the full test split with the CLI (as
    trained and every forced subset), compare with the reference predictions:
    the float32 ones saved by training and the float64 forward pass of the
    same weights. A line passes if towerrt is within rtol (relative) of either:
    when the logit is a sum of large MaxSim terms (an undertrained model),
    torch's own float32 rounding can exceed 1e-5 while towerrt stays within
    ~1e-6 of float64."""
    inputs = os.path.join(work, "test_inputs.npz")
    cols = tf.read_npz(inputs)
    labels = np.array(cols["label"].tolist_flat())
    ok = True
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, fe in VARIANTS:
            d = os.path.join(work, name)
            twr = os.path.join(tmp, name + ".twr")
            ex.export_inttower(os.path.join(d, "state_dict.npz"), twr, config=os.path.join(d, "config.json"),
                               log=lambda msg: None)
            model = tf.read_twr(twr)
            reqs, _, groups = treq.build(model, cols)
            req = os.path.join(tmp, "req.txt")
            tf.write_requests(req, reqs)
            order = np.concatenate([np.array(rs) for _, rs in groups])
            z = np.load(os.path.join(d, "state_dict.npz"))
            m64 = ref.from_checkpoint(os.path.join(d, "config.json"),
                                      {k: torch.from_numpy(z[k].copy()) for k in z.files}, dtype=torch.float64)
            X64 = torch.from_numpy(flat_inputs(m64.cfg, {k: np.load(inputs)[k] for k in np.load(inputs).files}
                                               ).astype(np.float64))
            for s in [None] + FORCED_SUBSETS[name]:
                out = os.path.join(tmp, "out.txt")
                cmd = [cli, "score", "--model", twr, "--requests", req, "--out", out]
                if s is not None:
                    cmd += ["--fe-layers", s]
                subprocess.run(cmd, check=True)
                got = np.empty(len(labels))
                got[order] = np.array([float(v) for line in open(out) for v in line.split()])
                exp = np.load(os.path.join(d, "test_pred.npy" if s is None else
                                           "pred_%s.npy" % s.replace(",", "_"))).astype(np.float64)
                with torch.no_grad():
                    e64 = m64(X64, fe_layers=None if s is None else [int(v) for v in s.split(",")]).numpy()
                rel = float(np.max(np.abs(got - exp) / np.maximum(np.abs(exp), 1e-30)))
                rel64 = float(np.max(np.abs(got - e64) / np.maximum(np.abs(e64), 1e-30)))
                good = min(rel, rel64) <= rtol
                ok = ok and good
                a_got, a_exp = auc(labels, got), auc(labels, exp)
                rows.append((name, "as trained %s" % fe if s is None else s, a_got, a_exp, rel, rel64, good))
                log("%-10s %-20s towerrt AUC %.4f  reference AUC %.4f  max rel diff vs float32 %.2e, "
                    "vs float64 %.2e %s" % (name, rows[-1][1], a_got, a_exp, rel, rel64, "ok" if good else "FAIL"))
    return ok, rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="/tmp/towerrt-trained", help="full outputs (not committed)")
    ap.add_argument("--fixture", default=os.path.join(REPO, "tests", "fixtures", "trained"),
                    help="committed fixture directory ('' for none)")
    ap.add_argument("--check-cli", metavar="CLI", help="towerrt binary: parity + AUC of every FE subset")
    ap.add_argument("--skip-train", action="store_true", help="reuse --work (with --check-cli)")
    ap.add_argument("--contrast", action="store_true", help="add the reference's contrast_loss term")
    ap.add_argument("--patience", type=int, default=TRAIN["patience"],
                    help="early stopping patience in epochs (default %(default)s; the reference script: 5)")
    ap.add_argument("--max-epochs", type=int, default=TRAIN["max_epochs"], help="default %(default)s")
    ap.add_argument("--quiet", "-q", action="store_true")
    a = ap.parse_args(argv)
    TRAIN["contrast"] = a.contrast
    TRAIN["patience"], TRAIN["max_epochs"] = a.patience, a.max_epochs

    def log(msg):
        if not a.quiet:
            print(msg, flush=True)
    if not a.skip_train:
        run_training(a.work, a.fixture or None, log)
    if a.check_cli:
        ok, _ = check_cli(a.check_cli, a.work, log)
        log("parity with the reference (rel 1e-5, float32 or float64): %s" % ("ok" if ok else "FAILED"))
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
