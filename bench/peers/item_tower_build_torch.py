#!/usr/bin/env python3
"""PyTorch peer of `towerrt build-items`: the same item tower (the same
weights, the same catalog) run in batches by PyTorch, timed.

  /usr/bin/python3 bench/peers/item_tower_build_torch.py --dir DIR --threads T
      [--batch 1024] [--reps 3] [--fold-bn] [--write PATH] [--check STORE.twi]

DIR is made by bench/peers/item_tower_build_model.py (config.json,
state_dict.npz, items.txt). The model is tools/reference/inttower_ref.py
(the reference forward pass, reference parameter names, loaded strictly),
in eval mode under torch.inference_mode(), torch.set_num_threads(T).
Per batch: embedding gather + genres mean pooling + Light-SE + dense
concat, the 3 tower layers (Linear, BatchNorm, ReLU) and the item FE
projection, i.e. each item's 32 x 64 heads. --fold-bn folds BatchNorm into
the Linear layers first (what towerrt does at load), a stronger peer.

Timed: the batches only (the catalog is parsed into tensors before the
clock starts). --write PATH also writes every batch's heads (float32 rows)
to PATH inside the timed loop, the peer of the store build's output.
--check STORE.twi compares the heads with a towerrt store of the same
catalog (max abs / relative difference), with numpy.

Prints one line of JSON: items, threads, batch, best and median seconds, items/s.
"""

import argparse
import json
import os
import statistics
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tools"))
sys.path.insert(0, os.path.join(REPO, "tools", "reference"))
np = torch = inttower_ref = None  # imported in main(), once the thread count is in the environment


def load_catalog(path, n_slots, n_dense):
    """items.txt -> keys (list), ids int64 (N, slots), dense f32 (N, width)."""
    keys, ids, dense = [], [], []
    with open(path) as f:
        head = f.readline().split()
        if head[:1] != ["towerrt-items"]:
            raise SystemExit("%s: not a towerrt-items file" % path)
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            left, _, right = line.partition(";")
            t = left.split()
            keys.append(int(t[0]))
            ids.append([int(x) for x in t[1:]])
            dense.append([float(x) for x in right.split()])
    ids = torch.tensor(ids, dtype=torch.int64)
    dense = torch.tensor(dense, dtype=torch.float32).reshape(len(keys), n_dense)
    if ids.shape[1] != n_slots:
        raise SystemExit("%s: %d id slots per row, the model has %d" % (path, ids.shape[1], n_slots))
    return keys, ids, dense


class ItemTower(object):
    """The item side of IntTowerRef: ids/dense (B, ...) -> heads (B, H*p)."""

    def __init__(self, model, fold_bn):
        self.m = model
        self.ioff, self.doff = model._side_getters("item", None, None)
        self.fold = None
        if fold_bn:
            dnn = model.item_fe_dnn
            self.fold = []
            for i, lin in enumerate(dnn.linears):
                w, b = lin.weight.detach().double(), lin.bias.detach().double()
                if dnn.use_bn:
                    bn = dnn.bn[i]
                    s = bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps)
                    w = w * s[:, None]
                    b = (b - bn.running_mean.double()) * s + bn.bias.detach().double()
                self.fold.append((w.float().contiguous(), b.float().contiguous()))
            fe = dnn.Fe_linears[-1]
            self.fe = (fe.weight.detach().contiguous(), fe.bias.detach().contiguous())

    def __call__(self, ids, dense):
        m = self.m

        def get_ids(f):
            a, b = self.ioff[f.name]
            return ids[:, a:b]

        def get_dense(f):
            a, b = self.doff[f.name]
            return dense[:, a:b]
        x = m._side_input("item", get_ids, get_dense)
        if self.fold is None:
            return m.item_fe_dnn(x)[-1]
        for w, b in self.fold:
            x = torch.relu(torch.nn.functional.linear(x, w, b))
        return torch.nn.functional.linear(x, *self.fe)


def read_store_heads(path, keys, limit):
    """Heads of the first `limit` catalog keys from a .twi (numpy, no copy)."""
    buf = np.memmap(path, dtype=np.uint8, mode="r")
    n_sec = struct.unpack_from("<I", buf, 32)[0]
    secs = {}
    for i in range(n_sec):
        kind, _, off, size = struct.unpack_from("<IIQQ", buf, 64 + 32 * i)
        secs[kind] = (off, size)
    meta_off, _ = secs[1]
    # META: just what we need, by scanning the entries
    pos = meta_off + 4
    meta = {}
    for _ in range(struct.unpack_from("<I", buf, meta_off)[0]):
        kl = struct.unpack_from("<H", buf, pos)[0]
        key = bytes(buf[pos + 2:pos + 2 + kl]).decode()
        t = buf[pos + 2 + kl]
        pos += 3 + kl
        if t == 1:
            meta[key] = struct.unpack_from("<q", buf, pos)[0]
            pos += 8
        elif t == 2:
            pos += 8
        elif t == 3:
            n = struct.unpack_from("<I", buf, pos)[0]
            pos += 4 + n
        else:
            n = struct.unpack_from("<I", buf, pos)[0]
            pos += 4 + 8 * n
    H, p, stride, count = meta["items.heads"], meta["items.head_dim"], meta["items.row_stride"], meta["items.count"]
    hoff, _ = secs[8]
    moff, _ = secs[9]
    n_slots = struct.unpack_from("<Q", buf, moff)[0]
    slots = np.frombuffer(buf, dtype=np.dtype([("id", "<u8"), ("row", "<u4"), ("r", "<u4")]), count=n_slots, offset=moff + 16)
    filled = slots[slots["row"] != 0xFFFFFFFF]
    row_of = dict(zip(filled["id"].tolist(), filled["row"].tolist()))
    rows = np.frombuffer(buf, dtype=np.float32, count=count * stride // 4, offset=hoff).reshape(count, stride // 4)
    out = np.stack([rows[row_of[k], :H * p] for k in keys[:limit]])
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description="PyTorch peer of towerrt build-items")
    ap.add_argument("--dir", required=True, help="made by item_tower_build_model.py")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--fold-bn", action="store_true")
    ap.add_argument("--write", help="also write the heads (float32 rows) here, inside the timed loop")
    ap.add_argument("--check", help="compare the heads with this towerrt store")
    ap.add_argument("--check-rows", type=int, default=2000)
    ap.add_argument("--blas-threads", type=int, help="OpenBLAS threads (default: --threads)")
    ap.add_argument("--omp-threads", type=int, help="torch intra-op (OpenMP) threads (default: --threads)")
    a = ap.parse_args(argv)

    # Debian's torch runs Linear through OpenBLAS (pthreads), which takes its
    # thread count from the environment, not from torch.set_num_threads.
    omp = a.omp_threads or a.threads
    blas = a.blas_threads or a.threads
    os.environ["OMP_NUM_THREADS"] = str(omp)
    os.environ["OPENBLAS_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(blas)
    global np, torch, inttower_ref
    import numpy as np
    import torch
    import inttower_ref
    torch.set_num_threads(omp)
    sd = dict(np.load(os.path.join(a.dir, "state_dict.npz")))
    sd = {k: torch.from_numpy(v.copy()) for k, v in sd.items()}
    model = inttower_ref.from_checkpoint(os.path.join(a.dir, "config.json"), sd)
    n_slots = sum(f.slots for f in model.cfg.fields("item") if f.kind != "dense")
    n_dense = sum(f.dim for f in model.cfg.fields("item") if f.kind == "dense")
    keys, ids, dense = load_catalog(os.path.join(a.dir, "items.txt"), n_slots, n_dense)
    tower = ItemTower(model, a.fold_bn)
    n = len(keys)
    times, cpu = [], []
    with torch.inference_mode():
        tower(ids[:a.batch], dense[:a.batch])  # warm-up
        for _ in range(a.reps):
            out = open(a.write, "wb") if a.write else None
            t0, c0 = time.perf_counter(), time.process_time()
            for s in range(0, n, a.batch):
                h = tower(ids[s:s + a.batch], dense[s:s + a.batch])
                if out:
                    out.write(h.numpy().tobytes())
            if out:
                out.close()
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        res = {"peer": "pytorch %s%s" % (torch.__version__, " bn-folded" if a.fold_bn else ""),
               "items": n, "threads": a.threads, "omp_threads": omp, "blas_threads": blas, "batch": a.batch, "write": bool(a.write),
               "best_s": min(times), "median_s": statistics.median(times),
               "items_per_s_best": n / min(times), "items_per_s_median": n / statistics.median(times),
               "cpu_s_median": statistics.median(cpu)}
        if a.check:
            k = min(a.check_rows, n)
            ref = tower(ids[:k], dense[:k]).numpy().astype(np.float64)
            got = read_store_heads(a.check, keys, k).astype(np.float64)
            diff = np.abs(got - ref)
            res["check_rows"] = k
            res["check_max_abs"] = float(diff.max())
            res["check_max_rel"] = float((diff / np.maximum(1.0, np.abs(ref))).max())
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
