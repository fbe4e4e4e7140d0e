#!/usr/bin/env python3
"""Regenerate tests/fixtures/golden_family/: small DSSM and DAT models with
reference scores, for the runtime's parity tests (docs/family.md).

  python3 tools/make_golden_family.py [--out tests/fixtures/golden_family] [--only NAME,...]
  python3 tools/make_golden_family.py --verify [DIR ...]   (standard library only)

Generating needs PyTorch: the scores come from tools/reference/dssm_ref.py
and dat_ref.py (the reference forward passes with the reference's parameter
names). Deterministic for a given torch build (seeded, one thread).
--verify checks, without torch, that every fixture's files match their
sha256 in manifest.json and that re-exporting state_dict.npz + config.json
with tools/export_family.py gives model.twr byte for byte.

Per model directory (as tests/fixtures/golden, plus expected_logits.txt):
  model.twr, state_dict.npz, config.json, items.txt, requests_ids.txt,
  requests_features.txt, expected_ids.txt, expected_features.txt (one line
  per request, '%.9g', the prediction layer's output), expected_logits.txt
  (the same candidates, score + out.bias before the sigmoid), manifest.json.
"""

import argparse
import hashlib
import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "reference"))
import export_inttower as ex  # noqa: E402
import export_family as ef  # noqa: E402
import towerrt_format as tf  # noqa: E402

REPO = os.path.dirname(HERE)
DEFAULT_OUT = os.path.join(REPO, "tests", "fixtures", "golden_family")


def F(name, kind, vocab=None, dim=None, maxlen=None, combiner=None, embedding_name=None):
    d = {"name": name, "kind": kind}
    for k, v in (("vocab", vocab), ("dim", dim), ("maxlen", maxlen), ("combiner", combiner),
                 ("embedding_name", embedding_name)):
        if v is not None:
            d[k] = v
    return d


MODELS = [
    dict(
        name="dssm_basic",
        arch="dssm",
        description="reference DSSM: cosine, gamma 1 (the reference default), BatchNorm, 3 layers ending in 6 values "
                    "(ReLU; the last BN shifted so that 2 items and 1 request's user have all-zero vectors: the +1e-8 path); single-id fields and dense "
                    "widths 1 (user) / 2 (item); random weights; catalog ids include 0 and 2^64-1",
        config={
            "user": [F("user_id", "single", 23, 4), F("gender", "single", 3, 4), F("u_score", "dense", dim=1),
                     F("age", "single", 7, 4)],
            "item": [F("item_id", "single", 29, 4), F("i_price", "dense", dim=2), F("brand", "single", 13, 4)],
            "hidden_units": [12, 10, 6], "task": "binary",
        },
        seed=101, n_items=24, edge_ids=True, zero_items=2, zero_users=1),
    dict(
        name="dssm_multi_gamma",
        arch="dssm",
        description="DSSM with multi-id fields: mean (user hist, maxlen 4, shares its table with the single-id "
                    "field last_item), sum (maxlen 3), max (item, never all padding), mean (item genres, all-padding "
                    "rows present); no dense user fields; 2 layers; gamma 5 (the reference's temperature); "
                    "random weights",
        config={
            "user": [F("user_id", "single", 17, 6),
                     F("last_item", "single", 31, 6, embedding_name="item_seq"),
                     F("hist", "multi", 31, 6, maxlen=4, combiner="mean", embedding_name="item_seq"),
                     F("tags", "multi", 9, 6, maxlen=3, combiner="sum")],
            "item": [F("movie", "single", 31, 6), F("genres", "multi", 8, 6, maxlen=3, combiner="mean"),
                     F("i_pop", "dense", dim=1), F("cats", "multi", 6, 6, maxlen=2, combiner="max")],
            "hidden_units": [10, 7], "task": "binary", "gamma": 5.0,
        },
        seed=102, n_items=18, no_all_padding={"cats"}),
    dict(
        name="dssm_dot_nobn_regression",
        arch="dssm",
        description="OPTIONAL format features the reference DSSM does not use: similarity 'dot' (score = <u,i> x "
                    "gamma 0.5, no normalisation), no BatchNorm, task regression (identity output: score + bias); "
                    "towers of different depths (user 3 layers, item 1 layer); random weights",
        config={
            "user": [F("u", "single", 11, 3), F("u_d", "dense", dim=1),
                     F("u_hist", "multi", 11, 3, maxlen=3, combiner="sum")],
            "item": [F("i", "single", 15, 3), F("i_d", "dense", dim=2)],
            "hidden_units": {"user": [9, 7, 5], "item": [5]}, "task": "regression", "similarity": "dot",
            "gamma": 0.5,
        },
        seed=103, n_items=12, use_bn=False),
    dict(
        name="dat_input",
        arch="dat",
        description="reference DAT with its augmented vectors given per row (dat.augment input: the dense fields "
                    "user_aug_vector / item_aug_vector, first dense field of each side): every user and item gets "
                    "its own U[0,1) draw, fed to the reference forward pass in place of torch.rand; cosine, "
                    "gamma 1; BatchNorm; 3 layers; multi-id item field; random weights",
        config={
            "user": [F("user_id", "single", 19, 5), F("u_dense2", "dense", dim=2), F("region", "single", 5, 5)],
            "item": [F("iid", "single", 27, 5), F("kw", "multi", 12, 5, maxlen=4, combiner="mean"),
                     F("i_dense", "dense", dim=1)],
            "hidden_units": [14, 9, 6], "task": "binary", "dat_augment": "input",
        },
        seed=104, n_items=20),
    dict(
        name="dat_constant",
        arch="dat",
        description="reference DAT served deterministically (dat.augment constant): the augmented vectors are "
                    "0.5 = E[U(0,1)] on both sides (tensors user_aug_vector / item_aug_vector, folded into the "
                    "first Linear's bias at load); the reference forward pass with torch.rand returning 0.5; "
                    "cosine, gamma 2; BatchNorm; 2 layers; random weights",
        config={
            "user": [F("user_id", "single", 21, 4), F("gender", "single", 3, 4), F("u_mean", "dense", dim=1)],
            "item": [F("item_id", "single", 33, 4), F("tags", "multi", 10, 4, maxlen=3, combiner="mean"),
                     F("i_mean", "dense", dim=1)],
            "hidden_units": [10, 8], "task": "binary", "gamma": 2.0, "dat_augment": "constant",
        },
        seed=105, n_items=20),
    dict(
        name="dssm_trained",
        arch="dssm",
        description="DSSM briefly trained (Adam, BCE, dropout 0.3, 4 epochs) on synthetic MovieLens-like data; "
                    "user: user_id, gender, age + dense; item: movie_id, genres (multi-id mean, maxlen 3) + dense; "
                    "3 layers ending in 8 values; cosine, gamma 3; BN running statistics from training",
        config={
            "user": [F("user_id", "single", 40, 8), F("gender", "single", 2, 8), F("age", "single", 7, 8),
                     F("user_mean_rating", "dense", dim=1)],
            "item": [F("movie_id", "single", 50, 8), F("item_mean_rating", "dense", dim=1),
                     F("genres", "multi", 19, 8, maxlen=3, combiner="mean")],
            "hidden_units": [16, 16, 8], "task": "binary", "gamma": 3.0,
        },
        seed=106, n_items=24, train=True),
]


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def source_of(spec):
    return "tools/make_golden_family.py %s (seed %d)" % (spec["name"], spec["seed"])


def options_of(conf, arch):
    return ef.resolve_options(arch, ef.family_keys(conf))


def export(out_dir, conf, arch, source):
    sd_np = ex.load_state_dict(os.path.join(out_dir, "state_dict.npz"))
    notes = []
    mdl = ef.build_family_model(sd_np, ex.config_from_json(conf), options_of(conf, arch), source=source, log=notes.append)
    return mdl, notes


# ---------------------------------------------------------------------------- generation (torch)

def randomize(model, rng_t):
    import torch
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "embedding_dict" in name:
                p.normal_(0.0, 0.6, generator=rng_t)
            elif "_SE." in name or "sim_non_local" in name:
                p.normal_(0.0, 1.0, generator=rng_t)
            elif name == "out.bias":
                p.normal_(0.0, 0.5, generator=rng_t)
            elif ".bn." in name and name.endswith("weight"):
                p.uniform_(0.5, 1.5, generator=rng_t)
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


def aug_rows(model, side, n, rng):
    """Per-row DAT augmented vectors (float32-exact U[0,1) draws)."""
    return [[tf.f32_round(rng.random()) for _ in range(model.dims[side])] for _ in range(n)]


def synth_train(model, cfg, rng, rng_t, mg, epochs=4, n=3000, batch=128):
    import torch
    model.user_dnn.dropout.p = 0.3
    model.item_dnn.dropout.p = 0.3
    rows_u, rows_i, ys = [], [], []
    for _ in range(n):
        u = mg.random_row(rng, cfg, "user")
        i = mg.random_row(rng, cfg, "item")
        uid, age, mid, genres = u[0][0], u[0][2], i[0][0], i[0][1:4]
        logit = (1.2 if (uid % 3) == (mid % 3) else -0.8) + (0.8 if age < 3 and any(0 < g < 7 for g in genres) else 0.0)
        logit += 0.7 * u[1][0] - 0.5 * i[1][0]
        ys.append(1.0 if rng.random() < 1.0 / (1.0 + pow(2.718281828, -logit)) else 0.0)
        rows_u.append(u)
        rows_i.append(i)
    U_ids = torch.tensor([r[0] for r in rows_u], dtype=torch.long)
    U_d = torch.tensor([r[1] for r in rows_u], dtype=torch.float32)
    I_ids = torch.tensor([r[0] for r in rows_i], dtype=torch.long)
    I_d = torch.tensor([r[1] for r in rows_i], dtype=torch.float32)
    Y = torch.tensor(ys)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    tot = 0.0
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
    model.user_dnn.dropout.p = 0.0
    model.item_dnn.dropout.p = 0.0
    return {"epochs": epochs, "rows": n, "final_epoch_mean_loss": tot / n, "train_accuracy": acc}


def run_requests(model, requests, catalog, dtype, logits, aug):
    """Scores of every request's candidates. aug: None, or (mode, user aug per
    request, item aug per catalog id) for DAT."""
    import torch
    m = model.to(dtype)
    out = []
    with torch.no_grad():
        for q, (uids, udense, cand) in enumerate(requests):
            k = len(cand)
            uid = torch.tensor([uids] * k, dtype=torch.long)
            ud = torch.tensor([udense] * k, dtype=dtype) if udense else None
            iid = torch.tensor([catalog[c][0] for c in cand], dtype=torch.long)
            idn = torch.tensor([catalog[c][1] for c in cand], dtype=dtype) if catalog[cand[0]][1] else None
            ua = ia = None
            if aug is not None:
                mode, uaug, iaug = aug
                if mode == "constant":
                    import dat_ref
                    ua = dat_ref.constant_aug(k, m.dims["user"], dtype=dtype)
                    ia = dat_ref.constant_aug(k, m.dims["item"], dtype=dtype)
                else:
                    ua = torch.tensor([uaug[q]] * k, dtype=dtype)
                    ia = torch.tensor([iaug[c] for c in cand], dtype=dtype)
            out.append([float(x) for x in m.forward_sides(uid, ud, iid, idn, ua, ia, logits=logits).reshape(-1)])
    model.to(torch.float32)
    return out


def vectors_zero(model, requests, catalog, aug):
    """How many request users / candidate items have an all-zero vector (float64)."""
    import torch
    zu = zi = 0
    m = model.to(torch.float64)
    dt = torch.float64
    with torch.no_grad():
        for q, (uids, udense, cand) in enumerate(requests):
            k = len(cand)
            ua = ia = None
            if aug is not None:
                import dat_ref
                mode, uaug, iaug = aug
                if mode == "constant":
                    ua = dat_ref.constant_aug(k, m.dims["user"], dtype=dt)
                    ia = dat_ref.constant_aug(k, m.dims["item"], dtype=dt)
                else:
                    ua = torch.tensor([uaug[q]] * k, dtype=dt)
                    ia = torch.tensor([iaug[c] for c in cand], dtype=dt)
            u, i = m.forward_sides(torch.tensor([uids] * k, dtype=torch.long),
                                   torch.tensor([udense] * k, dtype=dt) if udense else None,
                                   torch.tensor([catalog[c][0] for c in cand], dtype=torch.long),
                                   torch.tensor([catalog[c][1] for c in cand], dtype=dt) if catalog[cand[0]][1] else None,
                                   ua, ia, vectors=True)
            zu += int(float(u[0].abs().sum()) == 0.0)
            zi += int((i.abs().sum(-1) == 0).sum())
    model.to(torch.float32)
    return zu, zi


def place_zero_vectors(model, requests, catalog, ids, n_users, n_items):
    """Lowers the last BatchNorm (or Linear) bias of a side, unit by unit, just
    enough that n chosen rows end with an all-zero vector after the ReLU
    (the reference then scores 0 / (0 + 1e-8) = 0: the +1e-8 path of the
    cosine). The rows chosen are those whose zeroing silences the fewest
    units of the other rows."""
    import torch
    for side, n, rows in (("user", n_users, [(r[0], r[1]) for r in requests]),
                          ("item", n_items, [catalog[i] for i in ids])):
        dnn = model.user_dnn if side == "user" else model.item_dnn
        bias = dnn.bn[-1].bias if dnn.use_bn else dnn.linears[-1].bias
        for _ in range(n):
            with torch.no_grad():
                pre = model.last_preactivation(side, torch.tensor([r[0] for r in rows], dtype=torch.long),
                                               torch.tensor([r[1] for r in rows], dtype=torch.float32) if rows[0][1] else None)
                alive = [r for r in range(pre.shape[0]) if float(pre[r].max()) > 0]

                def cost(r):
                    return sum(int((pre[:, j] <= pre[r, j]).sum()) for j in range(pre.shape[1]) if pre[r, j] > 0)
                r = min(alive, key=cost)
                shift = torch.clamp(pre[r], min=0.0) + 1e-3 * (pre[r] > 0).float()
                bias.sub_(shift)


def make_one(spec, out_dir):
    import torch
    import dssm_ref
    import dat_ref
    import make_golden as mg   # random rows, catalogs (shared with the IntTower fixtures)
    rng = random.Random(spec["seed"])
    rng_t = torch.Generator().manual_seed(spec["seed"])
    torch.manual_seed(spec["seed"])
    conf = json.loads(json.dumps(spec["config"]))
    conf["name"] = spec["name"]
    conf["architecture"] = spec["arch"]
    cfg = ex.config_from_json(conf, spec["name"])
    opts = options_of(conf, spec["arch"])
    hu = conf["hidden_units"]
    hidden = hu["user"] if isinstance(hu, dict) else hu
    item_hidden = hu["item"] if isinstance(hu, dict) else hu
    cls = dat_ref.DATRef if spec["arch"] == "dat" else dssm_ref.DSSMRef
    model = cls(cfg, hidden, item_hidden_units=item_hidden, gamma=opts.gamma, similarity=opts.similarity,
                use_bn=spec.get("use_bn", True), task=cfg.task)
    randomize(model, rng_t)
    train_info = None
    if spec.get("train"):
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
        train_info = synth_train(model, cfg, rng, rng_t, mg)
    model.eval()

    # catalog: non-contiguous 64-bit ids
    ids, seen = [], set()
    if spec.get("edge_ids"):
        ids += [0, tf.U64_MASK]
    while len(ids) < spec["n_items"]:
        v = rng.getrandbits(64) if rng.random() < 0.6 else rng.randrange(1, 10 ** 6) * 1000 + 7
        if v not in seen and v not in ids:
            ids.append(v)
        seen.add(v)
    nap = spec.get("no_all_padding", set())
    catalog = {}
    for n, iid in enumerate(ids):
        catalog[iid] = mg.all_padding_row(rng, cfg, "item", nap) if n in (1, 5) else \
            mg.random_row(rng, cfg, "item", no_all_padding=nap)
    ks = [1, 3, 7, len(ids), len(ids) + 9]
    requests = []
    for q, k in enumerate(ks):
        u = mg.all_padding_row(rng, cfg, "user") if q == 2 else mg.random_row(rng, cfg, "user")
        if k <= len(ids):
            cand = rng.sample(ids, k)
        else:
            cand = ids[:] + [rng.choice(ids) for _ in range(k - len(ids))]
            rng.shuffle(cand)
        requests.append((u[0], u[1], cand))
    aug = None
    if spec["arch"] == "dat":
        if opts.dat_augment == "input":
            ia = dict(zip(ids, aug_rows(model, "item", len(ids), rng)))
            aug = ("input", aug_rows(model, "user", len(requests), rng), ia)
        else:
            aug = ("constant", None, None)

    # dot similarity: scale the item vectors (ReLU is positively homogeneous) so logits are moderate
    if opts.similarity == "dot" and not spec.get("train"):
        raw = [x for r in run_requests(model, requests, catalog, torch.float32, True, aug) for x in r]
        b0 = model.out.bias.item()
        raw = [x - b0 for x in raw]
        mean = sum(raw) / len(raw)
        std = (sum((x - mean) ** 2 for x in raw) / len(raw)) ** 0.5
        c = 1.5 / max(std, 1e-6)
        with torch.no_grad():
            last = len(model.item_dnn.linears) - 1
            model.item_dnn.linears[last].weight.mul_(c)
            model.item_dnn.linears[last].bias.mul_(c)
            model.out.bias.copy_(torch.tensor([-mean * c + 0.3 * b0]))

    if spec.get("zero_items") or spec.get("zero_users"):
        place_zero_vectors(model, requests, catalog, ids, spec.get("zero_users", 0), spec.get("zero_items", 0))

    sd = model.state_dict()
    os.makedirs(out_dir, exist_ok=True)
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
    mdl, notes = export(out_dir, conf, spec["arch"], source_of(spec))
    tf.write_twr(os.path.join(out_dir, "model.twr"), mdl)

    # request / catalog files (DAT input: the augmented vector is the first dense value block of its side)
    def item_dense(iid):
        return (aug[2][iid] if aug and aug[0] == "input" else []) + list(catalog[iid][1])

    def user_dense(q):
        return (aug[1][q] if aug and aug[0] == "input" else []) + list(requests[q][1])
    tf.write_items(os.path.join(out_dir, "items.txt"), [(iid, catalog[iid][0], item_dense(iid)) for iid in ids],
                   comments=["golden %s model %s: catalog of %d items" % (spec["arch"], spec["name"], len(ids))])
    tf.write_requests(os.path.join(out_dir, "requests_ids.txt"),
                      [tf.Request(u, user_dense(q), item_ids=c) for q, (u, d, c) in enumerate(requests)],
                      comments=["golden model %s: candidates by item id (items.txt)" % spec["name"]], ids_per_line=6)
    tf.write_requests(os.path.join(out_dir, "requests_features.txt"),
                      [tf.Request(u, user_dense(q), items=[(catalog[x][0], item_dense(x)) for x in c])
                       for q, (u, d, c) in enumerate(requests)],
                      comments=["golden model %s: the same candidates by features" % spec["name"]])
    s64 = run_requests(model, requests, catalog, torch.float64, False, aug)
    s32 = run_requests(model, requests, catalog, torch.float32, False, aug)
    l64 = run_requests(model, requests, catalog, torch.float64, True, aug)
    for fn in ("expected_ids.txt", "expected_features.txt"):
        tf.write_scores(os.path.join(out_dir, fn), s64)
    tf.write_scores(os.path.join(out_dir, "expected_logits.txt"), l64)
    d32 = max(abs(a - b) / max(1.0, abs(b)) for ra, rb in zip(s32, s64) for a, b in zip(ra, rb))
    zu, zi = vectors_zero(model, requests, catalog, aug)
    allv = [x for r in s64 for x in r]
    meta = mdl.meta
    man = {
        "name": spec["name"],
        "architecture": spec["arch"],
        "description": spec["description"],
        "source": source_of(spec),
        "similarity": meta["two_tower.similarity"], "gamma": meta["two_tower.gamma"], "dim": meta["two_tower.dim"],
        "output": meta["two_tower.output"],
        "hidden_units": {"user": hidden, "item": item_hidden},
        "batchnorm": spec.get("use_bn", True),
        "n_items": len(ids), "requests_k": ks,
        "zero_vectors": {"user_requests": zu, "item_candidates": zi},
        "weights": "trained: %s" % json.dumps(train_info) if train_info else
                   "random (seeded): embeddings N(0,0.6), BN gamma U(0.5,1.5), biases N(0,0.2), weights "
                   "N(0,1/fan_in), running_var U(0.4,2), out.bias N(0,0.5)%s"
                   % ("; item vectors rescaled so logits have std 1.5" if opts.similarity == "dot" else ""),
        "expected": "float64 forward of tools/reference/%s_ref.py (the reference forward pass) on the float32 "
                    "weights in model.twr and the float32-exact inputs of the request files; '%%.9g'. "
                    "expected_ids == expected_features (same candidates); expected_logits = score + out.bias."
                    % spec["arch"],
        "float32_vs_float64_max_diff": d32,
        "suggested_tolerance": "|got - expected| <= 1e-5 * max(1, |expected|)",
        "score_range": [min(allv), max(allv)],
        "exporter_notes": notes,
        "torch_version": torch.__version__,
        "files": {},
    }
    if spec["arch"] == "dat":
        man["dat_augment"] = opts.dat_augment
        if opts.dat_augment == "input":
            man["aug_input_width"] = {"user": model.dims["user"], "item": model.dims["item"]}
        else:
            man["aug_value"] = opts.aug_value
    for fn in sorted(os.listdir(out_dir)):
        if fn != "manifest.json":
            man["files"][fn] = {"bytes": os.path.getsize(os.path.join(out_dir, fn)),
                                "sha256": sha256(os.path.join(out_dir, fn))}
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(man, f, indent=1)
        f.write("\n")
    return man


README = """# Golden two-tower family fixtures (DSSM, DAT)

Regenerate: `python3 tools/make_golden_family.py` (needs PyTorch; deterministic
for a given torch build). Check without torch: `python3 tools/make_golden_family.py --verify`
(sha256 of every file, and the exporter reproduces model.twr byte for byte).
Cross-check with the unmodified reference classes (model/dssm.py, model/DAT.py):
`python3 tools/reference/dssm_ref.py --check-reference-code`.

%s

Files per model: as tests/fixtures/golden (model.twr, state_dict.npz,
config.json with the family keys architecture / gamma / similarity /
dat_augment, items.txt, requests_ids.txt, requests_features.txt,
expected_ids.txt, expected_features.txt), plus expected_logits.txt (score +
out.bias before the sigmoid). DAT fixtures with dat_augment "input" carry the
augmented vectors as the first dense values of each side's rows.

Expected scores: float64 forward pass of tools/reference/dssm_ref.py /
dat_ref.py over the float32 weights and inputs; tolerance
|got - expected| <= 1e-5 * max(1, |expected|). Scored by towerrt in
tests/test_family.c (by features, by item-store id, logits) under every
kernel set the CPU runs (tests/family.cmake).
"""


# ---------------------------------------------------------------------------- verify (stdlib only)

def verify(dirs):
    ok = True
    for d in dirs:
        errors = []
        with open(os.path.join(d, "manifest.json")) as f:
            man = json.load(f)
        for fn, info in man["files"].items():
            if sha256(os.path.join(d, fn)) != info["sha256"]:
                errors.append("%s: sha256 differs from manifest" % fn)
        with open(os.path.join(d, "config.json")) as f:
            conf = json.load(f)
        mdl, _ = export(d, conf, man["architecture"], man["source"])
        import tempfile
        with tempfile.NamedTemporaryFile(suffix=".twr") as t:
            tf.write_twr(t.name, mdl)
            with open(t.name, "rb") as f:
                again = f.read()
        with open(os.path.join(d, "model.twr"), "rb") as f:
            if f.read() != again:
                errors.append("re-exporting state_dict.npz + config.json does not give model.twr byte for byte")
        back = tf.read_twr(os.path.join(d, "model.twr"))
        if back.meta.get("general.architecture") != man["architecture"]:
            errors.append("model.twr architecture %r" % back.meta.get("general.architecture"))
        print("%-26s %s" % (os.path.basename(d.rstrip("/")), "ok" if not errors else "FAIL: " + "; ".join(errors)))
        ok = ok and not errors
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--only", help="comma-separated model names")
    ap.add_argument("--verify", action="store_true", help="check the fixtures (standard library only)")
    ap.add_argument("dirs", nargs="*")
    a = ap.parse_args()
    if a.verify:
        dirs = a.dirs or sorted(os.path.join(a.out, d) for d in os.listdir(a.out) if os.path.isdir(os.path.join(a.out, d)))
        if not dirs:
            print("no fixtures under %s" % a.out)
            return 1
        return 0 if verify(dirs) else 1
    import torch
    torch.set_num_threads(1)
    only = set(a.only.split(",")) if a.only else None
    lines = []
    for spec in MODELS:
        if only and spec["name"] not in only:
            continue
        man = make_one(spec, os.path.join(a.out, spec["name"]))
        lines.append("- `%s`: %s" % (spec["name"], spec["description"]))
        print("%-26s %6d bytes model.twr  scores %.4g..%.4g  f32-vs-f64 %.2g  zero vectors u%d/i%d" % (
            spec["name"], man["files"]["model.twr"]["bytes"], man["score_range"][0], man["score_range"][1],
            man["float32_vs_float64_max_diff"], man["zero_vectors"]["user_requests"],
            man["zero_vectors"]["item_candidates"]))
    if not only:
        with open(os.path.join(a.out, "README.md"), "w") as f:
            f.write(README % "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
