#!/usr/bin/env python3
"""Golden fixtures of FIT (docs/family.md "FIT"): tests/fixtures/golden_fit/<case>/
{state_dict.npz, config.json, model.twr, requests.txt}, scored by
tests/test_fit.c on every kernel set (tests/fit.cmake).

  /usr/bin/python3 tools/make_golden_fit.py [--out tests/fixtures/golden_fit]   (needs torch + numpy)
  python3 tools/make_golden_fit.py --verify    (standard library: re-exports every model.twr byte for byte)

Cases (shapes ragged on purpose: N, Hu, Hv, p, o all different):
  trained_seq     trained briefly on the synthetic data of tools/train_synthetic.py
                  (tools/reference/fit_ref.py train()): behaviour sequence + DIN,
                  e_c projection, LSS scale and BatchNorm
  plain           random weights: no sequence, no projection, no scale, no BatchNorm
  seq_bn          random weights: sequence, projection, BatchNorm only, tower BN off
  one_query       random weights: N = 1, scale only
Expected values: the reference in float64 with hard queries (serving). A
candidate whose two best match logits are closer than MARGIN is left out
(an f32 runtime could pick the other query). requests.txt:
  request K USER_SLOTS USER_DENSE ITEM_SLOTS ITEM_DENSE
  <user ids> <user dense>
  K lines: <item ids> <item dense> <expected logit> <expected probability>
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "reference"))
OUT = os.path.join(REPO, "tests", "fixtures", "golden_fit")
MARGIN = 1e-3


def cases():
    return [
        dict(name="trained_seq", trained=True,
             fit=dict(N=8, Hu=4, Hv=6, p=8, o=5, seq_field="user_hist", ec_proj=True, lss_scale=True, lss_bn=True)),
        dict(name="plain", seed=3, E=6, hidden=[11, 7], item_hidden=[9], use_bn=True,
             fit=dict(N=5, Hu=3, Hv=7, p=5, o=3)),
        dict(name="seq_bn", seed=4, E=5, hidden=[13], item_hidden=[10, 6], use_bn=False, seq=6,
             fit=dict(N=3, Hu=5, Hv=2, p=9, o=6, seq_field="hist", ec_proj=True, lss_bn=True, din_hidden=7)),
        dict(name="one_query", seed=5, E=4, hidden=[8, 8], item_hidden=[8], use_bn=True,
             fit=dict(N=1, Hu=2, Hv=3, p=4, o=2, lss_scale=True)),
    ]


def random_case(c):
    import numpy as np
    import torch
    import export_inttower as ex
    import fit_ref
    E = c["E"]
    user = [dict(name="uid", kind="single", vocab=23, dim=E), dict(name="age", kind="single", vocab=5, dim=E),
            dict(name="tags", kind="multi", vocab=9, dim=E, maxlen=3)]
    if c.get("seq"):
        user.append(dict(name="hist", kind="multi", vocab=31, dim=E, maxlen=c["seq"]))
    user.append(dict(name="u_dense", kind="dense", dim=2))
    item = [dict(name="iid", kind="single", vocab=31, dim=E), dict(name="cat", kind="single", vocab=4, dim=E),
            dict(name="genres", kind="multi", vocab=7, dim=E, maxlen=4), dict(name="i_dense", kind="dense", dim=1)]
    conf = dict(user=user, item=item, hidden_units=dict(user=c["hidden"], item=c["item_hidden"]))
    fit = dict(c["fit"])
    if fit.get("seq_field"):
        fit["D"] = E
    cfg = ex.config_from_json(conf)
    torch.manual_seed(c["seed"])
    m = fit_ref.FITRef(cfg, c["hidden"], fit_ref.FITOptions(**fit), item_hidden_units=c["item_hidden"], use_bn=c["use_bn"])
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "embedding" in name or "mqm.meta" in name:
                p.normal_(0.0, 0.6)
            if name == "lss.log_scale":
                p.fill_(0.3)
            elif name.startswith("lss.") and name.endswith("weight") and "bn" not in name:
                p.mul_(4.0)   # a score that moves with the candidate and its query (default init is nearly flat)
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm1d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
    m.eval()
    rng = np.random.default_rng(c["seed"])

    def rows(side, n):
        cols = {}
        for f in cfg.columns[side]:
            if f.kind == "single":
                cols[f.name] = rng.integers(0, f.vocab, n)
            elif f.kind == "multi":
                ids = rng.integers(1, f.vocab, (n, f.maxlen))
                keep = rng.integers(0, f.maxlen + 1, n)   # 0 .. maxlen valid ids, padding after
                keep[0] = 0 if f.name == fit.get("seq_field") else keep[0]   # an empty sequence once
                cols[f.name] = np.where(np.arange(f.maxlen)[None, :] < keep[:, None], ids, 0)
            else:
                cols[f.name] = rng.normal(0.0, 1.0, (n, f.dim)).astype(np.float32)
        return cols
    return m, cfg, conf, fit, rows


def trained_case(c):
    import numpy as np
    import fit_ref
    opts = fit_ref.FITOptions(**c["fit"])
    m, cfg, conf, data, gap = fit_ref.train(opts, True, True, dict(fit_ref.TRAIN, epochs=8), embedding_dim=8)
    test = data["test"]
    rng = np.random.default_rng(11)

    def rows(side, n):
        pick = rng.choice(test, n, replace=False)
        return {f.name: data["cols"][f.name][pick] for f in cfg.columns[side]}
    return m, cfg, conf, opts.to_json(), rows, gap


def side_arrays(cfg, side, cols, n):
    import numpy as np
    ids, dense = [], []
    for f in cfg.fields(side):
        v = np.asarray(cols[f.name])
        v = v.reshape(n, -1)
        (dense if f.kind == "dense" else ids).append(v)
    ids = np.concatenate(ids, axis=1).astype(np.int64)
    dense = np.concatenate(dense, axis=1).astype(np.float32) if dense else np.zeros((n, 0), np.float32)
    return ids, dense


def flat_input(m, cfg, ucols, icols, k):
    import numpy as np
    import torch
    parts = []
    for f, a, b in cfg.flat_layout():
        src = ucols if f.side == "user" else icols
        v = np.asarray(src[f.name])
        if f.side == "user":
            v = np.repeat(v.reshape(1, -1), k, axis=0)
        parts.append(v.reshape(k, -1).astype(np.float64))
    return torch.from_numpy(np.concatenate(parts, axis=1))


def write_case(out, c):
    import numpy as np
    import torch
    import export_fit
    import train_synthetic as ts
    if c.get("trained"):
        m, cfg, conf, fit, rows, gap = trained_case(c)
    else:
        (m, cfg, conf, fit, rows), gap = random_case(c), None
    d = os.path.join(out, c["name"])
    os.makedirs(d, exist_ok=True)
    ts.save_state_dict(os.path.join(d, "state_dict.npz"), m)
    conf = dict(conf, fit={k: v for k, v in fit.items() if v not in (None, False)})
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(conf, f, indent=1, sort_keys=True)
        f.write("\n")
    export_fit.export_fit(os.path.join(d, "state_dict.npz"), os.path.join(d, "model.twr"), os.path.join(d, "config.json"),
                          log=lambda s: None)
    m = m.double().eval()
    lines, kept_total, dropped, groups = [], 0, 0, []
    for k in (37, 150):
        ucols = rows("user", 1)
        icols = rows("item", k)
        X = flat_input(m, cfg, ucols, icols, k)
        with torch.no_grad():
            get_ids, _ = m.getters(X)
            match = m.match(get_ids).numpy()
            z = m(X, logits=True).numpy()
        top2 = np.sort(match, axis=1)[:, -2:] if match.shape[1] > 1 else None
        keep = np.ones(k, bool) if top2 is None else (top2[:, 1] - top2[:, 0]) > MARGIN * np.maximum(1.0, np.abs(top2[:, 1]))
        dropped += int((~keep).sum())
        groups.append(len(np.unique(match[keep].argmax(1))))
        uid, ud = side_arrays(cfg, "user", ucols, 1)
        iid, idn = side_arrays(cfg, "item", icols, k)
        iid, idn, z = iid[keep], idn[keep], z[keep]
        kept_total += len(z)
        lines.append("request %d %d %d %d %d" % (len(z), uid.shape[1], ud.shape[1], iid.shape[1], idn.shape[1]))
        lines.append(" ".join(str(int(v)) for v in uid[0]) + " " + " ".join(repr(float(v)) for v in ud[0]))
        for r in range(len(z)):
            lines.append(" ".join(str(int(v)) for v in iid[r]) + " " + " ".join(repr(float(v)) for v in idn[r]) + " %r %r"
                         % (float(z[r]), float(1.0 / (1.0 + np.exp(-z[r])))))
    with open(os.path.join(d, "requests.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("%s: %d candidates (%d left out: match margin), query indexes per request %s, %d bytes%s" % (
        c["name"], kept_total, dropped, groups, sum(os.path.getsize(os.path.join(d, x)) for x in os.listdir(d)),
        "; soft/hard gap %s" % json.dumps(gap) if gap else ""))


def verify(out):
    import export_fit
    bad = 0
    import tempfile
    for c in cases():
        d = os.path.join(out, c["name"])
        with tempfile.TemporaryDirectory() as t:
            p = os.path.join(t, "model.twr")
            export_fit.export_fit(os.path.join(d, "state_dict.npz"), p, os.path.join(d, "config.json"), log=lambda s: None)
            with open(p, "rb") as a, open(os.path.join(d, "model.twr"), "rb") as b:
                if a.read() != b.read():
                    print("%s: model.twr differs from a fresh export" % c["name"])
                    bad += 1
    print("verify: %d fixtures, %d differ" % (len(cases()), bad))
    return 1 if bad else 0


def main(argv=None):
    ap = argparse.ArgumentParser(description="FIT golden fixtures")
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--verify", action="store_true")
    a = ap.parse_args(argv)
    if a.verify:
        return verify(a.out)
    for c in cases():
        write_case(a.out, c)
    return 0


if __name__ == "__main__":
    sys.exit(main())
