#!/usr/bin/env python3
"""Export a FIT state_dict (tools/reference/fit_ref.py FITRef, docs/family.md
"FIT") to a towerrt model file (.twr, docs/format.md "GRAPH: FIT").

  python3 tools/export_fit.py --weights state_dict.npz --config config.json --out model.twr
  (tools/export_family.py --arch fit ... is the same command)

The config is the general JSON layout of tools/export_inttower.py ('user' /
'item' field lists, 'hidden_units') plus a "fit" object: the FITOptions of
fit_ref.py (N, D, Hu, Hv, p, o, seq_field, ec_fields, ec_proj, l2norm,
lss_scale, lss_bn, din_hidden). Tensor names are FITRef's:
{user,item}_embedding_dict.<table>.weight, {user,item}_dnn.linears.<i>.*,
{user,item}_dnn.bn.<i>.*, mqm.meta, mqm.proj.*, din.mlp.{0,2}.*,
lss.{user_proj,item_proj,row,col,out}.*, lss.log_scale, lss.bn.*.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_inttower as ex  # noqa: E402
import towerrt_format as tf  # noqa: E402

EXPORTER_ID = "towerrt tools/export_fit.py 1.0"
BN_EPS = 1e-5
# GRAPH ops of FIT (docs/format.md, runtime/graph_records.h)
OP_MQM, OP_DIN, OP_LSS_PROJ, OP_LSS_NORM, OP_LSS = 11, 12, 13, 14, 15
for _op, _nm in ((OP_MQM, "MQM"), (OP_DIN, "DIN"), (OP_LSS_PROJ, "LSS_PROJ"), (OP_LSS_NORM, "LSS_NORM"), (OP_LSS, "LSS")):
    tf.OP_NAMES.setdefault(_op, _nm)
FLAG_PROJ, FLAG_L2NORM = 1, 4
LSS_NORM_SCALE, LSS_NORM_BN = 1, 2

ExportError = ex.ExportError
SIDES = ex.SIDES
FIT_KEYS = ("N", "D", "Hu", "Hv", "p", "o", "seq_field", "ec_fields", "ec_proj", "l2norm", "lss_scale", "lss_bn",
            "din_hidden")


def fit_options(obj):
    fit = obj.get("fit")
    if not isinstance(fit, dict):
        raise ExportError("config: a FIT model needs a 'fit' object (%s)" % ", ".join(FIT_KEYS))
    extra = set(fit) - set(FIT_KEYS)
    if extra:
        raise ExportError("config 'fit': unknown keys %s" % ", ".join(sorted(extra)))
    return fit


def build_fit_model(sd, cfg, fit, source="", log=None, extra_meta=()):
    """state_dict (name -> NpyArray) + ExportConfig + the config's 'fit' dict -> tf.Model."""
    log = log or (lambda m: None)
    w = ex._Weights(sd)
    if fit.get("l2norm"):
        raise ExportError("fit.l2norm: the L2-normalised LSS inputs are not served by this build (docs/family.md)")
    seq = fit.get("seq_field")
    fields_out, table_names, info = [], [], {}
    for side in SIDES:
        flds = cfg.fields(side)
        idf = [f for f in flds if f.kind != "dense"]
        dims = set()
        for f in idf:
            tn = "%s_embedding_dict.%s.weight" % (side, f.embedding_name)
            a = w.get(tn, (f.vocab, f.dim), "embedding table of %s field %r" % (side, f.name))
            dims.add(a.shape[1])
            f._table = tn
        if len(dims) != 1:
            raise ExportError("%s side: id fields need one embedding dim, got %s" % (side, sorted(dims)))
        for f in flds:
            fields_out.append(tf.Field(f.name, ex.SIDE_CODE[side], ex.KINDS[f.kind], f.vocab if f.kind != "dense" else 0,
                                       f.dim, f.slots, ex.COMBINERS[f.combiner] if f.kind == "multi" else 0, -1))
            table_names.append(getattr(f, "_table", None) if f.kind != "dense" else None)
        info[side] = dict(fields=flds, idf=idf, E=dims.pop(), dense=sum(f.dim for f in flds if f.kind == "dense"))
    user_fields = info["user"]["fields"]
    seq_index = -1
    if seq is not None:
        names = [f.name for f in user_fields]
        if seq not in names or user_fields[names.index(seq)].kind != "multi":
            raise ExportError("fit.seq_field %r is not a user multi-id field" % seq)
        seq_index = names.index(seq)
    item_idf = info["item"]["idf"]
    ec = fit.get("ec_fields") or [f.name for f in item_idf]
    idn = [f.name for f in item_idf]
    if any(n not in idn for n in ec) or [n for n in idn if n in ec] != list(ec):
        raise ExportError("fit.ec_fields %r must be item id fields in FIELDS order %r" % (ec, idn))
    ec_mask = sum(1 << idn.index(n) for n in ec)
    Q = w.get("mqm.meta", None, "the MQM meta matrix (N x D)")
    N, D = Q.shape
    ecw = len(ec) * info["item"]["E"]
    proj = bool(fit.get("ec_proj"))
    if proj:
        w.get("mqm.proj.weight", (D, ecw), "the e_c projection")
        w.get("mqm.proj.bias", (D,), "the e_c projection bias")
    elif D != ecw:
        raise ExportError("mqm.meta has D = %d but e_c has %d values and there is no projection" % (D, ecw))
    if seq is not None and D != info["user"]["E"]:
        raise ExportError("with a behaviour sequence D (%d) must be the user embedding dim (%d)" % (D, info["user"]["E"]))
    A = 0
    if seq is not None:
        A = w.get("din.mlp.0.weight", None, "DIN MLP layer 0").shape[0]
        w.get("din.mlp.0.weight", (A, 4 * D), "DIN MLP layer 0")
        w.get("din.mlp.0.bias", (A,), "DIN MLP layer 0 bias")
        w.get("din.mlp.2.weight", (1, A), "DIN MLP layer 1")
        w.get("din.mlp.2.bias", (1,), "DIN MLP layer 1 bias")
    n_uid = len(info["user"]["idf"]) - (1 if seq is not None else 0)
    width = {"user": n_uid * info["user"]["E"] + D + (D if seq is not None else 0) + info["user"]["dense"],
             "item": len(item_idf) * info["item"]["E"] + info["item"]["dense"]}
    layers = {}
    for side in SIDES:
        prefix = "%s_dnn" % side
        n = ex._layer_count(w, prefix, "%s tower" % side)
        bn = any(k.startswith(prefix + ".bn.") for k in sd)
        x, ls = width[side], []
        for i in range(n):
            out = w.shape("%s.linears.%d.weight" % (prefix, i))[0]
            w.get("%s.linears.%d.weight" % (prefix, i), (out, x), "layer %d of the %s tower (input %d)" % (i, side, x))
            w.get("%s.linears.%d.bias" % (prefix, i), (out,), "bias of layer %d of the %s tower" % (i, side))
            b = None
            if bn:
                b = ["%s.bn.%d.%s" % (prefix, i, p) for p in ("weight", "bias", "running_mean", "running_var")]
                for nm in b:
                    w.get(nm, (out,), "BatchNorm of layer %d of the %s tower" % (i, side))
            ls.append(dict(w="%s.linears.%d.weight" % (prefix, i), b="%s.linears.%d.bias" % (prefix, i), bn=b, inp=x, out=out))
            x = out
        layers[side] = ls
    Hu, Hv, p, o = int(fit["Hu"]), int(fit["Hv"]), int(fit["p"]), int(fit["o"])
    for side, H in (("user", Hu), ("item", Hv)):
        w.get("lss.%s_proj.weight" % side, (H * p, layers[side][-1]["out"]), "the LSS %s heads" % side)
        w.get("lss.%s_proj.bias" % side, (H * p,), "the LSS %s heads bias" % side)
    if fit.get("lss_scale"):
        w.get("lss.log_scale", (1,), "the LSS scale exp(s)")
    if fit.get("lss_bn"):
        for pn in ("weight", "bias", "running_mean", "running_var"):
            w.get("lss.bn.%s" % pn, (Hu * Hv,), "the LSS BatchNorm over vec(S)")
    for nm, shp in (("lss.row.weight", (o, Hv)), ("lss.row.bias", (o,)), ("lss.col.weight", (o, Hu)), ("lss.col.bias", (o,)),
                    ("lss.out.weight", (1, o * o)), ("lss.out.bias", (1,))):
        w.get(nm, shp, "the LSS scorer")
    unused = [k for k in sd if k not in w.used and not k.endswith("num_batches_tracked")]
    if unused:
        log("note: ignoring %d tensors not in the FIT graph: %s" % (len(unused), ", ".join(unused)))

    order = [k for k in sd if k in w.used]
    tensors = [tf.Tensor(k, tuple(sd[k].shape) if sd[k].shape != () else (1,), sd[k].to_f32_bytes()) for k in order]
    tix = {k: i for i, k in enumerate(order)}
    for f, tn in zip(fields_out, table_names):
        f.table = tix[tn] if tn else -1

    def t(name):
        return tix[name] if name in tix else -1
    nodes, nxt = [], [0]

    def val():
        nxt[0] += 1
        return nxt[0] - 1
    emb = {side: val() for side in SIDES}
    for side in SIDES:
        nodes.append(tf.Node(tf.OP_EMBED, ex.SIDE_CODE[side], emb[side]))
    q = val()
    nodes.append(tf.Node(OP_MQM, tf.SIDE_ITEM, q, inputs=[emb["item"]], layer=ec_mask, flags=FLAG_PROJ if proj else 0,
                         tensors=[tix["mqm.meta"], t("mqm.proj.weight"), t("mqm.proj.bias")], attrs=[N, D]))
    uq = q
    if seq is not None:
        uq = val()
        nodes.append(tf.Node(OP_DIN, tf.SIDE_USER, uq, inputs=[emb["user"], q], attrs=[A, seq_index],
                             tensors=[tix["din.mlp.0.weight"], tix["din.mlp.0.bias"], tix["din.mlp.2.weight"],
                                      tix["din.mlp.2.bias"]]))
    last = {}
    for side in SIDES:
        s = ex.SIDE_CODE[side]
        x = val()
        nodes.append(tf.Node(tf.OP_CONCAT_DENSE, s, x, inputs=[emb[side], uq] if side == "user" else [emb[side]],
                             attrs=[width[side], 0]))
        for i, L in enumerate(layers[side]):
            y = val()
            tt = [tix[L["w"]], tix[L["b"]]] + ([tix[b] for b in L["bn"]] if L["bn"] else [-1] * 4)
            nodes.append(tf.Node(tf.OP_LINEAR, s, y, inputs=[x], tensors=tt, layer=i,
                                 flags=tf.FLAG_RELU | (tf.FLAG_BN if L["bn"] else 0), eps=BN_EPS if L["bn"] else 0.0,
                                 attrs=[L["inp"], L["out"]]))
            x = y
        z = val()
        nodes.append(tf.Node(OP_LSS_PROJ, s, z, inputs=[x], attrs=[Hu if side == "user" else Hv, p],
                             tensors=[tix["lss.%s_proj.weight" % side], tix["lss.%s_proj.bias" % side]]))
        last[side] = z
    norm = (LSS_NORM_SCALE if fit.get("lss_scale") else 0) | (LSS_NORM_BN if fit.get("lss_bn") else 0)
    sim_in = [last["user"], last["item"]]
    lss_in = -1
    if norm:
        lss_in = val()
        nodes.append(tf.Node(OP_LSS_NORM, tf.SIDE_SCORE, lss_in, inputs=sim_in, flags=norm, eps=BN_EPS if fit.get("lss_bn") else 0.0,
                             tensors=[t("lss.log_scale"), t("lss.bn.weight"), t("lss.bn.bias"), t("lss.bn.running_mean"),
                                      t("lss.bn.running_var")], attrs=[Hu, Hv]))
    score = val()
    nodes.append(tf.Node(OP_LSS, tf.SIDE_SCORE, score, inputs=sim_in if not norm else [lss_in, -1], attrs=[o, 0],
                         tensors=[tix[n] for n in ("lss.row.weight", "lss.row.bias", "lss.col.weight", "lss.col.bias",
                                                   "lss.out.weight", "lss.out.bias")]))
    nodes.append(tf.Node(tf.OP_PREDICT, tf.SIDE_SCORE, val(), inputs=[score]))
    meta = [
        ("general.architecture", tf.META_STRING, "fit"),
        ("general.name", tf.META_STRING, cfg.name or "fit"),
        ("general.source", tf.META_STRING, source or "unknown"),
        ("general.exporter", tf.META_STRING, EXPORTER_ID),
        ("fit.meta_queries", tf.META_INT, N),
        ("fit.query_dim", tf.META_INT, D),
        ("fit.ec_fields", tf.META_STRING, ",".join(ec)),
        ("fit.sequence_field", tf.META_STRING, seq or ""),
        ("fit.lss", tf.META_STRING, "Hu=%d Hv=%d p=%d o=%d%s%s" % (Hu, Hv, p, o, " scale" if fit.get("lss_scale") else "",
                                                                  " batchnorm" if fit.get("lss_bn") else "")),
        ("fit.output", tf.META_STRING, "sigmoid" if cfg.task == "binary" else "identity"),
        ("quantization", tf.META_STRING, "none"),
    ]
    return tf.Model(meta + list(extra_meta), fields_out, tensors, nodes)


def export_fit(weights, out_path, config, name=None, log=None, provenance_record=True):
    log = log or (lambda m: sys.stderr.write("export_fit: %s\n" % m))
    if isinstance(config, dict):
        obj = config
    else:
        with open(config) as f:
            obj = json.load(f)
    fit = fit_options(obj)
    cfg = ex.config_from_json({k: v for k, v in obj.items() if k != "fit"})
    ex._apply_overrides(cfg, name=name)
    sd = ex.load_state_dict(weights, log)
    source, extra, default_name = ex.provenance(weights, config, provenance_record)
    if cfg.name is None:
        cfg.name = default_name
    model = build_fit_model(sd, cfg, fit, source=source, log=log, extra_meta=extra)
    try:
        tf.write_twr(out_path, model)
    except tf.FormatError as e:
        raise ExportError(str(e))
    return model


def main(argv=None):
    ap = argparse.ArgumentParser(prog="export_fit.py", description="Export a FIT state_dict to a towerrt .twr model.")
    ap.add_argument("--arch", choices=("fit",), default="fit")
    ap.add_argument("--weights", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--out", "-o", required=True)
    ap.add_argument("--name")
    ap.add_argument("--no-provenance", action="store_true")
    ap.add_argument("--quiet", "-q", action="store_true")
    a = ap.parse_args(argv)

    def log(m):
        if not a.quiet:
            sys.stderr.write("export_fit: %s\n" % m)
    try:
        model = export_fit(a.weights, a.out, a.config, name=a.name, log=log, provenance_record=not a.no_provenance)
    except (ExportError, tf.FormatError, OSError, ValueError) as e:
        sys.stderr.write("export_fit: error: %s\n" % e)
        return 1
    log("wrote %s: fit, %d fields, %d tensors, %d graph nodes" % (a.out, len(model.fields), len(model.tensors), len(model.graph)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
