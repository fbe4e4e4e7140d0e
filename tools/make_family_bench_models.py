#!/usr/bin/env python3
"""Models for the family table of docs/performance.md: DSSM, DAT, IntTower
(all FE layers, layer 0 only) and FIT at the MovieLens-1M reference shapes
(embeddings 32, towers 300-300-128; IntTower 32 + 32 heads of 64), random
weights (speed does not depend on the values; FIT's query indexes do: with
random Q and e_c every meta query is used).

  /usr/bin/python3 tools/make_family_bench_models.py --out /tmp/towerrt-family-bench
  build/bench/towerrt_family_bench /tmp/towerrt-family-bench/{dssm,dat,inttower,inttower_l0,fit}.twr

FIT's sizes are not known (docs/family.md): N = 16 meta queries, D = 64 (e_c =
movie_id + genres embeddings, no projection), Hu = Hv = 16 heads of p = 32,
o = 16, LSS scale and BatchNorm on, no behaviour sequence (the MovieLens
reference configuration has none) -- our choice, stated with the table.
"""

import argparse
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "reference"))
import export_family  # noqa: E402
import export_fit  # noqa: E402
import export_inttower as ex  # noqa: E402

E, HIDDEN = 32, [300, 300, 128]
USER = [dict(name="user_id", kind="single", vocab=6040, dim=E), dict(name="gender", kind="single", vocab=2, dim=E),
        dict(name="age", kind="single", vocab=7, dim=E), dict(name="occupation", kind="single", vocab=21, dim=E),
        dict(name="user_mean_rating", kind="dense", dim=1)]
ITEM = [dict(name="movie_id", kind="single", vocab=3706, dim=E),
        dict(name="genres", kind="multi", vocab=19, dim=E, maxlen=6),
        dict(name="item_mean_rating", kind="dense", dim=1)]
FIT = dict(N=16, Hu=16, Hv=16, p=32, o=16, lss_scale=True, lss_bn=True)


def save(path, m):
    np.savez(path, **{k: v.detach().numpy().astype(np.float32) for k, v in m.state_dict().items()
                      if v.dtype != torch.int64})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/towerrt-family-bench")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(1)
    conf = dict(user=USER, item=ITEM, hidden_units=HIDDEN, head_dim=64, user_heads=32, item_heads=32)
    cfg = ex.config_from_json(conf)
    quiet = lambda s: None  # noqa: E731
    import dssm_ref
    import dat_ref
    import inttower_ref
    import fit_ref
    for arch, cls in (("dssm", dssm_ref.TwoTowerRef), ("dat", dat_ref.DATRef)):
        m = cls(cfg, HIDDEN).eval()
        sd = os.path.join(a.out, arch + ".npz")
        save(sd, m)
        export_family.export_family(sd, os.path.join(a.out, arch + ".twr"), arch, config=dict(conf), log=quiet)
    for name, layers in (("inttower", [0, 1, 2]), ("inttower_l0", [0])):
        m = inttower_ref.IntTowerRef(cfg, HIDDEN, 64, 32, 32, fe_layers=layers).eval()
        sd = os.path.join(a.out, name + ".npz")
        save(sd, m)
        ex.export_inttower(sd, os.path.join(a.out, name + ".twr"), config=dict(conf, fe_layers=layers), log=quiet)
    m = fit_ref.FITRef(cfg, HIDDEN, fit_ref.FITOptions(**FIT)).eval()
    with torch.no_grad():
        m.mqm.meta.normal_(0.0, 0.3)
    sd = os.path.join(a.out, "fit.npz")
    save(sd, m)
    export_fit.export_fit(sd, os.path.join(a.out, "fit.twr"), dict(user=USER, item=ITEM, hidden_units=HIDDEN, fit=FIT), log=quiet)
    print("wrote %s/{dssm,dat,inttower,inttower_l0,fit}.twr" % a.out)


if __name__ == "__main__":
    main()
