#!/usr/bin/env python3
"""Regenerate tests/fixtures/golden/: small IntTower models with reference
scores, for the runtime's parity tests.

  /usr/bin/python3 tools/make_golden.py [--out tests/fixtures/golden]

Needs PyTorch (the scores come from tools/reference/inttower_ref.py, the
reference forward pass with the reference's parameter names). Deterministic
for a given torch build (seeded, one thread).

Per model directory:
  model.twr               exported with tools/export_inttower.py (build_model)
  state_dict.npz          the weights, reference names (f32)
  config.json             the feature configuration (general JSON layout)
  items.txt               item features file: the catalog (64-bit ids)
  requests_ids.txt        requests, candidates by item id from items.txt
  requests_features.txt   the same requests, candidates by features
  expected_ids.txt        reference scores, one line per request ('%.9g')
  expected_features.txt   the same scores (same candidates)
  manifest.json           what the model covers, how scores were computed,
                          sha256 of every file
"""

import argparse
import hashlib
import json
import os
import random
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "reference"))
import export_inttower as ex  # noqa: E402
import towerrt_format as tf  # noqa: E402
import inttower_ref as ref  # noqa: E402

REPO = os.path.dirname(HERE)


def F(name, kind, vocab=None, dim=None, maxlen=None, combiner=None, embedding_name=None):
    d = {"name": name, "kind": kind}
    if vocab is not None:
        d["vocab"] = vocab
    if dim is not None:
        d["dim"] = dim
    if maxlen is not None:
        d["maxlen"] = maxlen
    if combiner is not None:
        d["combiner"] = combiner
    if embedding_name is not None:
        d["embedding_name"] = embedding_name
    return d


# Each spec: config (general layout) + generation options.
MODELS = [
    dict(
        name="basic_single",
        description="single-id fields only; dense width 1 (user) and 2 (item); 3 layers; "
                    "3 user heads / 2 item heads x 5 dims; fe_layers [0,1,2] (reference fe_score); "
                    "random weights; catalog ids include 0 and 2^64-1",
        config={
            "user": [F("user_id", "single", 23, 4), F("gender", "single", 3, 4), F("u_score", "dense", dim=1),
                     F("age", "single", 7, 4)],
            "item": [F("item_id", "single", 29, 4), F("i_price", "dense", dim=2), F("brand", "single", 13, 4)],
            "hidden_units": [12, 10, 6], "head_dim": 5, "user_heads": 3, "item_heads": 2, "task": "binary",
        },
        seed=11, n_items=16, edge_ids=True),
    dict(
        name="multi_id",
        description="multi-id fields: mean (user hist, maxlen 4, shares its table with the single-id field "
                    "last_item), sum (maxlen 3), max (item, maxlen 2, never all padding), mean (item genres, "
                    "maxlen 3, all-padding rows present); padding (id 0) anywhere in a row; no dense user "
                    "fields; 2 layers; 2 user heads / 4 item heads x 3 dims; fe_layers [0,1] (reference "
                    "[0,1,2] clipped to 2 layers); random weights",
        config={
            "user": [F("user_id", "single", 17, 6),
                     F("last_item", "single", 31, 6, embedding_name="item_seq"),
                     F("hist", "multi", 31, 6, maxlen=4, combiner="mean", embedding_name="item_seq"),
                     F("tags", "multi", 9, 6, maxlen=3, combiner="sum")],
            "item": [F("movie", "single", 31, 6), F("genres", "multi", 8, 6, maxlen=3, combiner="mean"),
                     F("i_pop", "dense", dim=1), F("cats", "multi", 6, 6, maxlen=2, combiner="max")],
            "hidden_units": [10, 7], "head_dim": 3, "user_heads": 2, "item_heads": 4, "task": "binary",
        },
        seed=22, n_items=18, no_all_padding={"cats"}),
    dict(
        name="accel_deep",
        description="README 'Accelerate' variant: fe_layers [0] (user FE of the Light-SE output only; the "
                    "checkpoint still carries all 4 user FE projections); 4 layers; 4 user heads / 5 item heads "
                    "x 3 dims; dense width 2 (user) and 1 (item); item multi-id mean; random weights",
        config={
            "user": [F("uid", "single", 19, 5), F("u_dense2", "dense", dim=2), F("region", "single", 5, 5)],
            "item": [F("iid", "single", 27, 5), F("kw", "multi", 12, 5, maxlen=5, combiner="mean"),
                     F("i_dense", "dense", dim=1)],
            "hidden_units": [16, 12, 8, 6], "head_dim": 3, "user_heads": 4, "item_heads": 5, "task": "binary",
            "fe_layers": [0],
        },
        seed=33, n_items=20),
    dict(
        name="trained_movielens_like",
        description="briefly trained (Adam, BCE, dropout 0.3, 4 epochs) on synthetic MovieLens-like data with "
                    "the reference model code path; user: user_id, gender, age + dense; item: movie_id, genres "
                    "(multi-id mean, maxlen 3) + dense; 3 layers; 3 user heads / 3 item heads x 6 dims; "
                    "fe_layers [0,1,2]; BN running statistics from training",
        config={
            "user": [F("user_id", "single", 40, 8), F("gender", "single", 2, 8), F("age", "single", 7, 8),
                     F("user_mean_rating", "dense", dim=1)],
            "item": [F("movie_id", "single", 50, 8), F("item_mean_rating", "dense", dim=1),
                     F("genres", "multi", 19, 8, maxlen=3, combiner="mean")],
            "hidden_units": [16, 16, 8], "head_dim": 6, "user_heads": 3, "item_heads": 3, "task": "binary",
        },
        seed=44, n_items=24, train=True),
    dict(
        name="nobn_regression",
        description="OPTIONAL format features the reference code only reaches through options: no BatchNorm "
                    "(dnn_use_bn=False: LINEAR flags ReLU only, BN tensors -1), task regression (inttower.output "
                    "identity: score + bias, no sigmoid), a Light-SE excitation bias, and fe_layers [0,2] (a "
                    "subset: the MAXSIM of user FE layer 1 is in the graph but does not score); 3 layers; "
                    "2 user heads x 7 dims / 3 item heads; random weights",
        config={
            "user": [F("u", "single", 11, 3), F("u_d", "dense", dim=1), F("u_hist", "multi", 11, 3, maxlen=3,
                                                                             combiner="sum")],
            "item": [F("i", "single", 15, 3), F("i_d", "dense", dim=2)],
            "hidden_units": [9, 7, 5], "head_dim": 7, "user_heads": 2, "item_heads": 3, "task": "regression",
            "fe_layers": [0, 2],
        },
        seed=55, n_items=12, use_bn=False, lightse_bias=True),
]


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def side_width(cfg, side):
    fl = cfg.fields(side)
    return sum(f.slots for f in fl if f.kind != "dense"), sum(f.dim for f in fl if f.kind == "dense")


def random_row(rng, cfg, side, allow_all_padding=True, no_all_padding=()):
    ids, dense = [], []
    for f in cfg.fields(side):
        if f.kind == "single":
            ids.append(rng.randrange(f.vocab))
        elif f.kind == "multi":
            forbid_empty = (f.name in no_all_padding) or not allow_all_padding
            n = rng.randint(1 if forbid_empty else 0, f.maxlen)
            slots = [0] * f.maxlen
            for pos in rng.sample(range(f.maxlen), n):
                slots[pos] = rng.randrange(1, f.vocab)
            ids += slots
        else:
            dense += [tf.f32_round(rng.uniform(-1.0, 1.5)) for _ in range(f.dim)]
    return ids, dense


def all_padding_row(rng, cfg, side, no_all_padding=()):
    ids, dense = random_row(rng, cfg, side, no_all_padding=no_all_padding)
    out = []
    pos = 0
    for f in cfg.fields(side):
        if f.kind == "single":
            out.append(ids[pos])
            pos += 1
        elif f.kind == "multi":
            sl = ids[pos:pos + f.maxlen]
            pos += f.maxlen
            out += sl if f.name in no_all_padding else [0] * f.maxlen
    return out, dense


def randomize(model, rng_t, lightse_bias=False):
    """Non-trivial random weights everywhere (BN stats, Light-SE, out.bias)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "embedding_dict" in name:
                p.normal_(0.0, 0.6, generator=rng_t)
            elif "sim_non_local" in name:
                p.normal_(0.0, 1.0, generator=rng_t)
            elif name == "out.bias":
                p.normal_(0.0, 0.5, generator=rng_t)
            elif ".bn." in name and name.endswith("weight"):
                p.uniform_(0.5, 1.5, generator=rng_t)
            elif ".bn." in name and name.endswith("bias"):
                p.normal_(0.0, 0.2, generator=rng_t)
            elif name.endswith("bias"):
                p.normal_(0.0, 0.2, generator=rng_t)
            else:
                fan_in = p.shape[1] if p.dim() == 2 else 1
                p.normal_(0.0, 1.0 / fan_in ** 0.5, generator=rng_t)
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.normal_(0.0, 0.3, generator=rng_t)
            elif name.endswith("running_var"):
                b.uniform_(0.4, 2.0, generator=rng_t)
            elif name.endswith("num_batches_tracked"):
                b.fill_(1000)


def synth_train(model, cfg, rng, rng_t, epochs=4, n=3000, batch=128):
    """Brief training on synthetic data with a hidden rule; dropout 0.3 as in
    the reference script. Returns the train AUC-ish accuracy for the record."""
    model.user_fe_dnn.dropout.p = 0.3
    model.item_fe_dnn.dropout.p = 0.3
    nu = max(f.vocab for f in cfg.fields("user") if f.name == "user_id")
    rows_u, rows_i, ys = [], [], []
    for _ in range(n):
        u = random_row(rng, cfg, "user")
        i = random_row(rng, cfg, "item")
        # hidden rule: user-id parity vs movie-id parity, genre 1..6 liked by young users, dense effects
        uid, age = u[0][0], u[0][2]
        mid = i[0][0]
        genres = i[0][1:4]
        logit = (1.2 if (uid % 3) == (mid % 3) else -0.8) + (0.8 if age < 3 and any(0 < g < 7 for g in genres)
                                                               else 0.0)
        logit += 0.7 * u[1][0] - 0.5 * i[1][0]
        p = 1.0 / (1.0 + pow(2.718281828, -logit))
        ys.append(1.0 if rng.random() < p else 0.0)
        rows_u.append(u)
        rows_i.append(i)
    U_ids = torch.tensor([r[0] for r in rows_u], dtype=torch.long)
    U_d = torch.tensor([r[1] for r in rows_u], dtype=torch.float32)
    I_ids = torch.tensor([r[0] for r in rows_i], dtype=torch.long)
    I_d = torch.tensor([r[1] for r in rows_i], dtype=torch.float32)
    Y = torch.tensor(ys)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    for ep in range(epochs):
        perm = torch.randperm(n, generator=rng_t)
        tot = 0.0
        for s in range(0, n, batch):
            idx = perm[s:s + batch]
            pred = model.forward_sides(U_ids[idx], U_d[idx], I_ids[idx], I_d[idx])
            loss = torch.nn.functional.binary_cross_entropy(pred, Y[idx], reduction="sum")
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += loss.item()
    model.eval()
    with torch.no_grad():
        pred = model.forward_sides(U_ids, U_d, I_ids, I_d)
    acc = float(((pred > 0.5).float() == Y).float().mean())
    model.user_fe_dnn.dropout.p = 0.0
    model.item_fe_dnn.dropout.p = 0.0
    return {"epochs": epochs, "rows": n, "final_epoch_mean_loss": tot / n, "train_accuracy": acc}


def score_all(model, cfg, requests, catalog, dtype):
    """Scores of every request's candidates with the reference model in dtype."""
    m = model.to(dtype)
    out = []
    with torch.no_grad():
        for uids, udense, cand in requests:
            k = len(cand)
            uid = torch.tensor([uids] * k, dtype=torch.long)
            ud = torch.tensor([udense] * k, dtype=dtype) if udense else None
            iid = torch.tensor([catalog[c][0] for c in cand], dtype=torch.long)
            idn = torch.tensor([catalog[c][1] for c in cand], dtype=dtype) if catalog[cand[0]][1] else None
            out.append([float(x) for x in m.forward_sides(uid, ud, iid, idn).reshape(-1)])
    model.to(torch.float32)
    return out


def logits_of(model, cfg, requests, catalog):
    """Raw fe_score (before out.bias) for rescaling random models."""
    with torch.no_grad():
        vals = []
        for uids, udense, cand in requests:
            k = len(cand)
            uid = torch.tensor([uids] * k, dtype=torch.long)
            ud = torch.tensor([udense] * k, dtype=torch.float32) if udense else None
            iid = torch.tensor([catalog[c][0] for c in cand], dtype=torch.long)
            idn = torch.tensor([catalog[c][1] for c in cand], dtype=torch.float32) if catalog[cand[0]][1] else None
            old_task = model.out.task
            model.out.task = "regression"
            s = model.forward_sides(uid, ud, iid, idn) - model.out.bias
            model.out.task = old_task
            vals += [float(x) for x in s.reshape(-1)]
    return vals


def make_one(spec, out_dir):
    rng = random.Random(spec["seed"])
    rng_t = torch.Generator().manual_seed(spec["seed"])
    torch.manual_seed(spec["seed"])
    conf = dict(spec["config"])
    conf["name"] = spec["name"]
    cfg = ex.config_from_json(json.loads(json.dumps(conf)), spec["name"])
    hidden = conf["hidden_units"]
    model = ref.IntTowerRef(cfg, hidden, cfg.head_dim, cfg.user_heads, cfg.item_heads, fe_layers=cfg.fe_layers,
                            use_bn=spec.get("use_bn", True), task=cfg.task,
                            lightse_bias=spec.get("lightse_bias", False))
    randomize(model, rng_t)
    train_info = None
    if spec.get("train"):
        # start from the reference's own init (small normal embeddings) rather than the random one
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "embedding_dict" in name:
                    p.normal_(0.0, 0.1, generator=rng_t)
            for name, b in model.named_buffers():
                if name.endswith("running_mean"):
                    b.zero_()
                elif name.endswith("running_var"):
                    b.fill_(1.0)
                elif name.endswith("num_batches_tracked"):
                    b.zero_()
        train_info = synth_train(model, cfg, rng, rng_t)
    model.eval()

    # catalog: non-contiguous 64-bit ids
    nset = set()
    ids = []
    if spec.get("edge_ids"):
        ids += [0, tf.U64_MASK]
    while len(ids) < spec["n_items"]:
        v = rng.getrandbits(64) if rng.random() < 0.6 else rng.randrange(1, 10 ** 6) * 1000 + 7
        if v not in nset and v not in ids:
            ids.append(v)
        nset.add(v)
    nap = spec.get("no_all_padding", set())
    catalog = {}
    for n, iid in enumerate(ids):
        if n in (1, 5):
            catalog[iid] = all_padding_row(rng, cfg, "item", nap)
        else:
            catalog[iid] = random_row(rng, cfg, "item", no_all_padding=nap)

    # requests: k = 1, 3, 7, all, and a long one with repeats
    ks = [1, 3, 7, len(ids), len(ids) + 9]
    requests = []
    for q, k in enumerate(ks):
        if q == 2:
            u = all_padding_row(rng, cfg, "user")
        else:
            u = random_row(rng, cfg, "user")
        if k <= len(ids):
            cand = rng.sample(ids, k)
        else:
            cand = ids[:] + [rng.choice(ids) for _ in range(k - len(ids))]
            rng.shuffle(cand)
        requests.append((u[0], u[1], cand))

    # random models: scale the item FE projection so logits are moderate (not saturated)
    if not spec.get("train"):
        raw = logits_of(model, cfg, requests, catalog)
        mean = sum(raw) / len(raw)
        std = (sum((x - mean) ** 2 for x in raw) / len(raw)) ** 0.5
        c = 1.5 / max(std, 1e-6)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.startswith("item_fe_dnn.Fe_linears."):
                    p.mul_(c)
            model.out.bias.copy_(torch.tensor([-mean * c + 0.3 * float(model.out.bias)]))

    sd = model.state_dict()
    os.makedirs(out_dir, exist_ok=True)
    # state_dict.npz (f32, reference names; num_batches_tracked as int64)
    arrays = {}
    for k, v in sd.items():
        if v.is_floating_point():
            arrays[k] = tf.NpyArray(tuple(v.shape), "<f4", v.float().contiguous().numpy().tobytes())
        else:
            arrays[k] = tf.make_array([int(x) for x in v.reshape(-1).tolist()], tuple(v.shape), "<i8")
    tf.write_npz(os.path.join(out_dir, "state_dict.npz"), arrays, compress=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(conf, f, indent=1)
        f.write("\n")

    # model.twr through the exporter's own code path, from the npz
    sd_np = ex.load_state_dict(os.path.join(out_dir, "state_dict.npz"))
    notes = []
    mdl = ex.build_model(sd_np, ex.config_from_json(conf, spec["name"]),
                         source="tools/make_golden.py %s (seed %d)" % (spec["name"], spec["seed"]),
                         log=notes.append)
    tf.write_twr(os.path.join(out_dir, "model.twr"), mdl)

    # text files
    tf.write_items(os.path.join(out_dir, "items.txt"), [(iid, catalog[iid][0], catalog[iid][1]) for iid in ids],
                   comments=["golden model %s: catalog of %d items" % (spec["name"], len(ids))])
    tf.write_requests(os.path.join(out_dir, "requests_ids.txt"),
                      [tf.Request(u, d, item_ids=c) for u, d, c in requests],
                      comments=["golden model %s: candidates by item id (items.txt)" % spec["name"]], ids_per_line=6)
    tf.write_requests(os.path.join(out_dir, "requests_features.txt"),
                      [tf.Request(u, d, items=[catalog[x] for x in c]) for u, d, c in requests],
                      comments=["golden model %s: the same candidates by features" % spec["name"]])
    s64 = score_all(model, cfg, requests, catalog, torch.float64)
    s32 = score_all(model, cfg, requests, catalog, torch.float32)
    for fn in ("expected_ids.txt", "expected_features.txt"):
        tf.write_scores(os.path.join(out_dir, fn), s64)
    d32 = max(abs(a - b) / max(1.0, abs(b)) for ra, rb in zip(s32, s64) for a, b in zip(ra, rb))
    allv = [x for r in s64 for x in r]

    def fdesc(f):
        d = {"name": f.name, "kind": f.kind}
        if f.kind != "dense":
            d.update(vocab=f.vocab, dim=f.dim, table="%s_embedding_dict.%s.weight" % (f.side, f.embedding_name))
        else:
            d["width"] = f.dim
        if f.kind == "multi":
            d.update(maxlen=f.maxlen, combiner=f.combiner)
        return d
    meta = mdl.meta
    man = {
        "name": spec["name"],
        "description": spec["description"],
        "fields": {s: [fdesc(f) for f in cfg.fields(s)] for s in ex.SIDES},
        "hidden_units": hidden,
        "batchnorm": spec.get("use_bn", True),
        "lightse_bias": spec.get("lightse_bias", False),
        "head_dim": meta["inttower.head_dim"], "user_heads": meta["inttower.user_heads"],
        "item_heads": meta["inttower.item_heads"], "fe_layers": meta["inttower.fe_layers"],
        "output": meta["inttower.output"],
        "n_items": len(ids), "requests_k": ks,
        "weights": "trained: %s" % json.dumps(train_info) if train_info else
                   "random (seeded): embeddings N(0,0.6), Light-SE N(0,1), BN gamma U(0.5,1.5), beta/mean/biases "
                   "normal, running_var U(0.4,2); item FE projection rescaled so logits have std 1.5, out.bias shifted to centre them",
        "expected": "float64 forward of tools/reference/inttower_ref.py (the reference forward pass) on the "
                    "float32 weights in model.twr and the float32-exact dense values of the request files; "
                    "written with %.9g. expected_ids.txt == expected_features.txt (same candidates).",
        "float32_vs_float64_max_diff": d32,
        "suggested_tolerance": "|got - expected| <= 1e-5 * max(1, |expected|)",
        "score_range": [min(allv), max(allv)],
        "exporter_notes": notes,
        "torch_version": torch.__version__,
        "files": {},
    }
    for fn in sorted(os.listdir(out_dir)):
        if fn != "manifest.json":
            man["files"][fn] = {"bytes": os.path.getsize(os.path.join(out_dir, fn)),
                                "sha256": sha256(os.path.join(out_dir, fn))}
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(man, f, indent=1)
        f.write("\n")
    return man


README = """# Golden IntTower fixtures

Regenerate: `/usr/bin/python3 tools/make_golden.py` (needs PyTorch; deterministic
for a given torch build). Check with the standard-library evaluator:
`python3 tests/python/test_golden.py`.

Each directory is one small model (see its manifest.json: fields, towers,
heads, fe_layers, how the weights were made, file hashes):

%s

Files per model: model.twr (the exporter's output), state_dict.npz + config.json
(its inputs: reference tensor names; general JSON layout of docs/exporter.md),
items.txt (catalog, item features file), requests_ids.txt (candidates by
item id: build the item store from items.txt first), requests_features.txt
(same candidates by features), expected_ids.txt / expected_features.txt
(identical: one line per request, '%%.9g').

Expected scores: float64 forward pass of tools/reference/inttower_ref.py
(the reference forward pass; it reproduces the shared reference checkpoint's
official predictions bit for bit in float32) over the float32 weights and the
float32-exact dense inputs. A float32 implementation differs by ~1e-7
relative (manifest: float32_vs_float64_max_diff); suggested tolerance
|got - expected| <= 1e-5 * max(1, |expected|).

Cross-check with the unmodified reference code (model/IntTower.py and its
imports, heavy unused imports stubbed; fe_score patched where a fixture uses
other FE layers than [0,1,2], Light-SE rebuilt with a bias for
`nobn_regression`): `/usr/bin/python3 tools/reference/run_reference_code.py`
(identical to inttower_ref.py in float32 on every fixture).

Optional features: `nobn_regression` uses format features the reference code
reaches only through options (no BatchNorm, identity output, Light-SE bias,
fe_layers subset [0,2]).
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "fixtures", "golden"))
    ap.add_argument("--only", help="comma-separated model names")
    a = ap.parse_args()
    torch.set_num_threads(1)
    only = set(a.only.split(",")) if a.only else None
    lines = []
    for spec in MODELS:
        if only and spec["name"] not in only:
            continue
        man = make_one(spec, os.path.join(a.out, spec["name"]))
        lines.append("- `%s`: %s" % (spec["name"], spec["description"]))
        print("%-24s %6d bytes model.twr  scores %.4g..%.4g  f32-vs-f64 %.2g" % (
            spec["name"], man["files"]["model.twr"]["bytes"], man["score_range"][0], man["score_range"][1],
            man["float32_vs_float64_max_diff"]))
    if not only:
        with open(os.path.join(a.out, "README.md"), "w") as f:
            f.write(README % "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
