#!/usr/bin/env python3
"""A random IntTower in the reference configuration, and a synthetic catalog,
for item-store build measurements and tests (docs/item-stores.md).
Standard library only (no numpy, no torch).

  python3 bench/peers/item_tower_build_model.py --out-dir DIR [--items N]
      [--movie-vocab V] [--emb 32] [--hidden 300,300,128] [--heads 32]
      [--head-dim 64] [--genres-maxlen 6] [--seed 1]

Writes into DIR:
  config.json      the reference script's variables (tools/export_inttower.py reads it)
  state_dict.npz   random weights under the reference state_dict names
                   (BatchNorm statistics included), loadable with
                   load_state_dict(strict=True) by tools/reference/inttower_ref.py
  model.twr        the export of the two (tools/export_inttower.py)
  items.txt        N catalog rows (towerrt-items 1): unique 64-bit ids,
                   movie_id, genres (1..6 of 18, 0-padded), item_mean_rating

Reference configuration (docs/performance.md): user fields user_id, gender, age,
occupation + dense user_mean_rating; item fields movie_id, genres (multi-id,
mean) + dense item_mean_rating; embedding 32; towers 300-300-128 with
BatchNorm; 32 user / 32 item heads of 64 dims; FE on all 3 user layers.
"""

import argparse
import json
import math
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(os.path.dirname(os.path.dirname(HERE)), "tools")
sys.path.insert(0, TOOLS)
import towerrt_format as tf  # noqa: E402
import export_inttower as ex  # noqa: E402

MASK64 = (1 << 64) - 1


def splitmix64(x):
    z = (x + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def config(a):
    hidden = [int(x) for x in a.hidden.split(",")]
    return {
        "user_sparse": ["user_id", "gender", "age", "occupation"],
        "user_dense": ["user_mean_rating"],
        "item_sparse": ["movie_id"],
        "item_dense": ["item_mean_rating"],
        "vocab": {"user_id": 6041, "movie_id": a.movie_vocab, "gender": 2, "age": 7, "occupation": 21},
        "genres_vocab": 19,
        "genres_maxlen": a.genres_maxlen,
        "embedding_dim": a.emb,
        "field_dim": a.head_dim,
        "user_head": a.heads,
        "item_head": a.heads,
        "dnn_hidden_units": hidden,
        "user_filed_size": 4,
        "item_filed_size": 2,
    }


def state_dict(cfg, rng):
    """name -> (values, shape[, descr]), in the reference registration order."""
    emb, hd, heads = cfg["embedding_dim"], cfg["field_dim"], cfg["user_head"]
    hidden = cfg["dnn_hidden_units"]
    sd = {}

    def normal(shape, std):
        n = 1
        for s in shape:
            n *= s
        g = rng.gauss
        return ([g(0.0, std) for _ in range(n)], shape)

    def uniform(shape, lo, hi):
        n = 1
        for s in shape:
            n *= s
        u = rng.random
        return ([lo + (hi - lo) * u() for _ in range(n)], shape)

    for f in cfg["user_sparse"]:
        sd["user_embedding_dict.%s.weight" % f] = normal((cfg["vocab"][f], emb), 0.6)
    for f in cfg["item_sparse"]:
        sd["item_embedding_dict.%s.weight" % f] = normal((cfg["vocab"][f], emb), 0.6)
    sd["item_embedding_dict.genres.weight"] = normal((cfg["genres_vocab"], emb), 0.6)
    sd["out.bias"] = ([0.1], (1,))
    width = {"user": 4 * emb + 1, "item": 2 * emb + 1}
    for side in ("user", "item"):
        hu = [width[side]] + hidden
        p = "%s_fe_dnn." % side
        for i in range(len(hidden)):
            sd[p + "linears.%d.weight" % i] = normal((hu[i + 1], hu[i]), 1.0 / math.sqrt(hu[i]))
            sd[p + "linears.%d.bias" % i] = normal((hu[i + 1],), 0.2)
        n_fe = len(hidden) if side == "user" else 1
        for i in range(n_fe):
            fin = hu[i] if side == "user" else hu[-1]
            sd[p + "Fe_linears.%d.weight" % i] = normal((hd * heads, fin), 1.0 / math.sqrt(fin))
            sd[p + "Fe_linears.%d.bias" % i] = normal((hd * heads,), 0.2)
        for i in range(len(hidden)):
            w = hu[i + 1]
            sd[p + "bn.%d.weight" % i] = uniform((w,), 0.5, 1.5)
            sd[p + "bn.%d.bias" % i] = normal((w,), 0.2)
            sd[p + "bn.%d.running_mean" % i] = normal((w,), 0.3)
            sd[p + "bn.%d.running_var" % i] = uniform((w,), 0.4, 2.0)
            sd[p + "bn.%d.num_batches_tracked" % i] = ([1000], (), "<i8")
    sd["User_sim_non_local.excitation.0.weight"] = normal((4, 4), 1.0)
    sd["Item_sim_non_local.excitation.0.weight"] = normal((2, 2), 1.0)
    sd["User_SE.excitation.0.weight"] = normal((1, 4), 1.0)
    sd["User_SE.excitation.2.weight"] = normal((4, 1), 1.0)
    sd["Item_SE.excitation.0.weight"] = normal((1, 2), 1.0)
    sd["Item_SE.excitation.2.weight"] = normal((2, 1), 1.0)
    return sd


def write_items(path, n, cfg, rng, seed):
    """n rows: id, movie_id, genres slots ; item_mean_rating."""
    vocab = cfg["vocab"]["movie_id"]
    maxlen = cfg["genres_maxlen"]
    with open(path, "w") as f:
        f.write("towerrt-items 1\n")
        lines = []
        for i in range(n):
            item_id = splitmix64(i ^ (seed << 40))  # a bijection: ids are unique
            movie = 1 + i % (vocab - 1)
            k = rng.randint(1, min(6, maxlen))
            g = rng.sample(range(1, cfg["genres_vocab"]), k) + [0] * (maxlen - k)
            lines.append("%d %d %s ; %.6f\n" % (item_id, movie, " ".join(map(str, g)), rng.random()))
            if len(lines) == 65536:
                f.write("".join(lines))
                lines = []
        f.write("".join(lines))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--items", type=int, default=200000)
    ap.add_argument("--movie-vocab", type=int, default=None, help="movie_id vocabulary (default: items + 1)")
    ap.add_argument("--emb", type=int, default=32)
    ap.add_argument("--hidden", default="300,300,128")
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--genres-maxlen", type=int, default=6)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-items", action="store_true", help="write the model only")
    a = ap.parse_args(argv)
    if a.movie_vocab is None:
        a.movie_vocab = a.items + 1
    os.makedirs(a.out_dir, exist_ok=True)
    rng = random.Random(a.seed)
    cfg = config(a)
    cfg_path = os.path.join(a.out_dir, "config.json")
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=1)
    npz = os.path.join(a.out_dir, "state_dict.npz")
    tf.write_npz(npz, state_dict(cfg, rng))
    ex.export_inttower(npz, os.path.join(a.out_dir, "model.twr"), config=cfg_path, name="item_tower_build_bench",
                       log=lambda m: None)
    if not a.no_items:
        write_items(os.path.join(a.out_dir, "items.txt"), a.items, cfg, rng, a.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
