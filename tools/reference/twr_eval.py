#!/usr/bin/env python3
"""A second, independent reader and executor of towerrt files, standard
library only, in double precision: it runs a .twr GRAPH node by node exactly
as docs/format.md describes it. Slow (pure Python) and meant for tests: it
shows that the exported file alone carries everything needed to reproduce the
reference, and it lets the Python tests run without the C runtime.

Same command line contract as the towerrt CLI:
  twr_eval.py score --model M.twr [--items S.twi] --requests R.txt [--out O.txt] [--fe-layers 0,1,2]
  twr_eval.py build-items --model M.twr --features F.txt --out S.twi
"""

import argparse
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import towerrt_format as tf  # noqa: E402


class EvalError(Exception):
    pass


def _dot(a, b):
    return sum(x * y for x, y in zip(a, b))


class Evaluator(object):
    def __init__(self, model, fe_layers=None):
        self.m = model
        meta = model.meta
        if meta.get("general.architecture") != "inttower":
            raise EvalError("not an inttower model: %r" % meta.get("general.architecture"))
        self.p = meta["inttower.head_dim"]
        self.Hu = meta["inttower.user_heads"]
        self.Hi = meta["inttower.item_heads"]
        self.output = meta.get("inttower.output", "sigmoid")
        self.fe_layers = list(fe_layers) if fe_layers is not None else list(meta["inttower.fe_layers"])
        self.vals = [list(t.values()) if t.dtype == tf.DT_F32 else None for t in model.tensors]
        self.shapes = [t.shape for t in model.tensors]
        self.fields = {s: model.side_fields(s) for s in (tf.SIDE_USER, tf.SIDE_ITEM)}
        self.nodes = {s: [n for n in model.graph if n.side == s] for s in (0, 1, 2)}
        self.fe_node_layer = {n.output: n.layer for n in model.graph if n.op == tf.OP_FE_PROJ and n.side == 0}
        for f in model.fields:
            if f.kind != tf.KIND_DENSE:
                shp = self.shapes[f.table]
                if shp != (f.vocab, f.dim):
                    raise EvalError("field %r: table %d has shape %r, field says (%d, %d)"
                                    % (f.name, f.table, shp, f.vocab, f.dim))

    def _row_widths(self, side):
        fl = self.fields[side]
        return (sum(f.slots for f in fl if f.kind != tf.KIND_DENSE),
                sum(f.dim for f in fl if f.kind == tf.KIND_DENSE))

    def _embed(self, side, ids):
        out = []
        pos = 0
        for f in self.fields[side]:
            if f.kind == tf.KIND_DENSE:
                continue
            tab = self.vals[f.table]
            d = f.dim
            sl = ids[pos:pos + f.slots]
            pos += f.slots
            for i in sl:
                if not 0 <= i < f.vocab:
                    raise EvalError("field %r: id %d out of range [0, %d)" % (f.name, i, f.vocab))
            if f.kind == tf.KIND_SINGLE:
                out.append(tab[sl[0] * d:(sl[0] + 1) * d])
                continue
            rows = [tab[i * d:(i + 1) * d] for i in sl if i != 0]
            if f.combiner == tf.COMBINER_MAX:
                if rows:
                    out.append([max(c) for c in zip(*rows)])
                else:   # the reference: max over (e - 1e9) of the padding rows
                    allr = [tab[i * d:(i + 1) * d] for i in sl]
                    out.append([max(c) - 1e9 for c in zip(*allr)])
                continue
            s = [sum(c) for c in zip(*rows)] if rows else [0.0] * d
            if f.combiner == tf.COMBINER_MEAN and rows:
                # reference: sum / (count + 1e-8) in float32, i.e. exactly count
                s = [v / len(rows) for v in s]
            out.append(s)
        return out

    def run_side(self, side, ids, dense):
        nid, nd = self._row_widths(side)
        if len(ids) != nid or len(dense) != nd:
            raise EvalError("%s row has %d ids and %d dense values; the model needs %d and %d"
                            % ("user" if side == 0 else "item", len(ids), len(dense), nid, nd))
        v = {}
        for n in self.nodes[side]:
            t = n.tensors
            if n.op == tf.OP_EMBED:
                v[n.output] = self._embed(side, ids)
            elif n.op == tf.OP_LIGHTSE:
                e = v[n.inputs[0]]
                F, d = n.attrs
                if len(e) != F or any(len(r) != d for r in e):
                    raise EvalError("LIGHTSE attrs [%d, %d] do not match its input" % (F, d))
                W = self.vals[t[0]]
                z = [sum(r) / d for r in e]
                a = [_dot(W[i * F:(i + 1) * F], z) for i in range(F)]
                if t[1] >= 0:
                    a = [x + b for x, b in zip(a, self.vals[t[1]])]
                mx = max(a)
                ex = [math.exp(x - mx) for x in a]
                s = sum(ex)
                a = [x / s for x in ex]
                v[n.output] = [[x + x * a[i] for x in r] for i, r in enumerate(e)]
            elif n.op == tf.OP_CONCAT_DENSE:
                x = [y for r in v[n.inputs[0]] for y in r] + list(dense)
                if n.attrs[0] != len(x):
                    raise EvalError("CONCAT_DENSE width %d, computed %d" % (n.attrs[0], len(x)))
                v[n.output] = x
            elif n.op == tf.OP_LINEAR:
                x = v[n.inputs[0]]
                ni, no = n.attrs
                if len(x) != ni:
                    raise EvalError("LINEAR layer %d expects %d inputs, got %d" % (n.layer, ni, len(x)))
                W, b = self.vals[t[0]], self.vals[t[1]]
                y = [_dot(W[o * ni:(o + 1) * ni], x) + b[o] for o in range(no)]
                if n.flags & tf.FLAG_BN:
                    g, be, mu, var = (self.vals[k] for k in t[2:6])
                    eps = n.eps
                    y = [(y[o] - mu[o]) / math.sqrt(var[o] + eps) * g[o] + be[o] for o in range(no)]
                if n.flags & tf.FLAG_RELU:
                    y = [max(0.0, q) for q in y]
                v[n.output] = y
            elif n.op == tf.OP_FE_PROJ:
                x = v[n.inputs[0]]
                H, p = n.attrs
                W, b = self.vals[t[0]], self.vals[t[1]]
                ni = len(x)
                if self.shapes[t[0]] != (H * p, ni):
                    raise EvalError("FE_PROJ weight shape %r, expected (%d, %d)" % (self.shapes[t[0]], H * p, ni))
                v[n.output] = [_dot(W[o * ni:(o + 1) * ni], x) + b[o] for o in range(H * p)]
            else:
                raise EvalError("unexpected op %s on side %d" % (tf.OP_NAMES.get(n.op), side))
        return v

    def user(self, ids, dense):
        return self.run_side(tf.SIDE_USER, ids, dense)

    def item_heads(self, ids, dense):
        v = self.run_side(tf.SIDE_ITEM, ids, dense)
        fe = [n for n in self.nodes[tf.SIDE_ITEM] if n.op == tf.OP_FE_PROJ]
        return v[fe[-1].output]

    def score(self, uv, item_fe):
        """uv: user side values; item_fe: H_i * p floats."""
        p, Hu, Hi = self.p, self.Hu, self.Hi
        item = [item_fe[h * p:(h + 1) * p] for h in range(Hi)]
        v = {}
        for n in self.nodes[tf.SIDE_SCORE]:
            if n.op == tf.OP_MAXSIM:
                ufe_id = n.inputs[0]
                if self.fe_node_layer[ufe_id] not in self.fe_layers:
                    v[n.output] = 0.0
                    continue
                u = uv[ufe_id]
                v[n.output] = sum(max(_dot(u[k * p:(k + 1) * p], ih) for ih in item) for k in range(Hu))
            elif n.op == tf.OP_SUM:
                v[n.output] = v[n.inputs[0]] + v[n.inputs[1]]
            elif n.op == tf.OP_PREDICT:
                s = v[n.inputs[0]]
                if n.tensors[0] >= 0:
                    s += self.vals[n.tensors[0]][0]
                if self.output == "sigmoid":
                    s = 1.0 / (1.0 + math.exp(-s)) if s >= 0 else math.exp(s) / (1.0 + math.exp(s))
                return s
        raise EvalError("graph has no PREDICT node")


def score_requests(model_path, requests_path, items_path=None, fe_layers=None):
    m = tf.read_twr(model_path)
    ev = Evaluator(m, fe_layers)
    store = None
    if items_path:
        store = tf.read_twi(items_path)
        sm = store.meta
        fp = tf.model_fingerprint(m)
        if sm["model.fingerprint"] != fp or sm["items.heads"] != ev.Hi or sm["items.head_dim"] != ev.p:
            raise EvalError("item store %s does not belong to model %s (fingerprint %d vs %d)"
                            % (items_path, model_path, sm["model.fingerprint"], fp))
    out = []
    for r in tf.read_requests(requests_path):
        uv = ev.user(r.user_ids, r.user_dense)
        if r.item_ids is not None:
            if store is None:
                raise EvalError("request has candidates by id but no --items store was given")
            rows = []
            for iid in r.item_ids:
                row = store.lookup(iid)
                if row is None:
                    raise EvalError("item id %d is not in the store" % iid)
                rows.append(store.heads[row])
        else:
            rows = [[tf.f32_round(x) for x in ev.item_heads(ids, dn)] for ids, dn in r.items]
        out.append([ev.score(uv, h) for h in rows])
    return out


def build_items(model_path, features_path, out_path):
    m = tf.read_twr(model_path)
    ev = Evaluator(m)
    rows = tf.read_items(features_path)
    ids = [r[0] for r in rows]
    heads = [ev.item_heads(r[1], r[2]) for r in rows]
    tf.write_twi(out_path, ids, heads, ev.Hi, ev.p, tf.model_fingerprint(m),
                 source="twr_eval.py build-items %s" % os.path.basename(features_path))


def main(argv=None):
    ap = argparse.ArgumentParser(prog="twr_eval.py")
    sub = ap.add_subparsers(dest="cmd")
    s = sub.add_parser("score")
    s.add_argument("--model", required=True)
    s.add_argument("--items")
    s.add_argument("--requests", required=True)
    s.add_argument("--out")
    s.add_argument("--fe-layers")
    b = sub.add_parser("build-items")
    b.add_argument("--model", required=True)
    b.add_argument("--features", required=True)
    b.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    try:
        if a.cmd == "score":
            fl = [int(x) for x in a.fe_layers.split(",")] if a.fe_layers else None
            res = score_requests(a.model, a.requests, a.items, fl)
            text = "".join(" ".join("%.9g" % x for x in r) + "\n" for r in res)
            if a.out:
                with open(a.out, "w") as f:
                    f.write(text)
            else:
                sys.stdout.write(text)
        elif a.cmd == "build-items":
            build_items(a.model, a.features, a.out)
        else:
            ap.print_help()
            return 2
    except (EvalError, tf.FormatError, OSError) as e:
        sys.stderr.write("twr_eval: error: %s\n" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
