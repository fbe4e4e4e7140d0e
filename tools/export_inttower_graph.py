"""An IntTower model as towerrt serves it, built from a checkpoint and its
feature configuration (tools/export_inttower.py): the FIELDS, the tensors
(embedding tables, Light-SE, tower layers with their BatchNorm, FE
projections, prediction bias), the GRAPH nodes and the META of a .twr,
as a towerrt_format.Model ready for towerrt_format.write_twr."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import towerrt_format as tf  # noqa: E402
from export_checkpoint import _fe_indices, _layer_count, _shp, _Weights, choose_fe_layers  # noqa: E402
from export_config import COMBINERS, KINDS, SIDE_CODE, SIDES, ExportError  # noqa: E402

EXPORTER_VERSION = "1.0"
EXPORTER_ID = "towerrt tools/export_inttower.py %s" % EXPORTER_VERSION
BN_EPS = 1e-5


def side_tables(w, cfg, side, why_ids, why_one_dim, check_config_dim=False):
    """One side's fields, its id fields and their one embedding dim, every
    table checked against the config (shape, vocabulary, dim); each id
    field gets _rows, _d, _table. why_ids / why_one_dim end the messages
    for a side without id fields / with several dims (the family exporters
    say what needs them). Shared by every exporter of the two-tower graph."""
    flds = cfg.fields(side)
    names = [f.name for f in cfg.columns[side]]
    dup = set(n for n in names if names.count(n) > 1)
    if dup:
        raise ExportError("%s side: field %s appears twice" % (side, sorted(dup)[0]))
    idf = [f for f in flds if f.kind != "dense"]
    if not idf:
        raise ExportError("%s side has no id fields%s" % (side, why_ids))
    dims = set()
    for f in idf:
        tname = "%s_embedding_dict.%s.weight" % (side, f.embedding_name)
        if not w.has(tname):
            w.get(tname, (f.vocab or "vocabulary_size", f.dim or "embedding_dim"),
                  "embedding table of %s field %r" % (side, f.name))
        if len(w.shape(tname)) != 2:
            raise ExportError("tensor %s has shape %s, expected (vocabulary_size, embedding_dim) (%s field %r)"
                              % (tname, _shp(w.shape(tname)), side, f.name))
        rows, d = w.shape(tname)
        exp = (f.vocab if f.vocab is not None else rows, f.dim if f.dim is not None else d)
        w.get(tname, exp, "embedding table of %s field %r: (vocabulary_size, embedding_dim) from the config"
              % (side, f.name))
        if check_config_dim and cfg.embedding_dim is not None and d != cfg.embedding_dim:
            raise ExportError("tensor %s has embedding dim %d but the config says embedding_dim %d"
                              % (tname, d, cfg.embedding_dim))
        dims.add(d)
        f._rows, f._d, f._table = rows, d, tname
    if len(dims) > 1:
        raise ExportError("%s side: id fields have different embedding dims %s; %s (%s)"
                          % (side, sorted(dims), why_one_dim, ", ".join("%s:%d" % (f.name, f._d) for f in idf)))
    return flds, idf, dims.pop()


def build_model(sd, cfg, source="", log=None, extra_meta=(), record_fe_origin=False):
    """state_dict (name -> NpyArray) + ExportConfig -> tf.Model. record_fe_origin: add
    export.fe_layers_from (where inttower.fe_layers came from) to META."""
    log = log or (lambda m: None)
    w = _Weights(sd)
    fields_out = []
    table_names = []       # in field order; tensor index resolved later
    side_info = {}
    for side in SIDES:
        flds, idf, d = side_tables(w, cfg, side, "; Light-SE needs at least one", "Light-SE needs one dim",
                                   check_config_dim=True)
        F = len(idf)
        fs = cfg.field_sizes.get(side)
        if fs is not None and fs != F:
            raise ExportError("config %s_filed_size is %d but the %s side has %d id fields (%s)"
                              % (side, fs, side, F, ", ".join(f.name for f in idf)))
        dense_w = sum(f.dim for f in flds if f.kind == "dense")
        for f in flds:
            fields_out.append(tf.Field(f.name, SIDE_CODE[side], KINDS[f.kind],
                                       f._rows if f.kind != "dense" else 0,
                                       f._d if f.kind != "dense" else f.dim,
                                       f.slots, COMBINERS[f.combiner] if f.kind == "multi" else 0, -1))
            table_names.append(f._table if f.kind != "dense" else None)
        side_info[side] = dict(F=F, d=d, dense=dense_w, width=F * d + dense_w)

    # Light-SE
    cap = {"user": "User", "item": "Item"}
    for side in SIDES:
        F = side_info[side]["F"]
        pre = "%s_sim_non_local.excitation.0" % cap[side]
        side_info[side]["se_w"] = pre + ".weight"
        w.get(pre + ".weight", (F, F), "%s Light-SE excitation: (F, F) with F = %d id fields" % (side, F))
        side_info[side]["se_b"] = pre + ".bias" if w.has(pre + ".bias") else None
        if side_info[side]["se_b"]:
            w.get(pre + ".bias", (F,), "%s Light-SE excitation bias" % side)

    # towers
    for side in SIDES:
        prefix = "%s_fe_dnn" % side
        what = "%s tower" % side
        n = _layer_count(w, prefix, what)
        has_bn = any(k.startswith(prefix + ".bn.") for k in sd)
        width = side_info[side]["width"]
        layers = []
        for i in range(n):
            wn = "%s.linears.%d.weight" % (prefix, i)
            shp = w.shape(wn)
            if len(shp) != 2:
                raise ExportError("tensor %s has shape %s, expected (out, %d)" % (wn, _shp(shp), width))
            out = shp[0]
            why = ("layer %d of the %s: its input is %s" % (i, what,
                   "%d id fields x %d dims + %d dense = %d" % (side_info[side]["F"], side_info[side]["d"],
                                                              side_info[side]["dense"], width)
                   if i == 0 else "the %d outputs of layer %d" % (width, i - 1)))
            w.get(wn, (out, width), why)
            w.get("%s.linears.%d.bias" % (prefix, i), (out,), "bias of layer %d of the %s" % (i, what))
            bn = None
            if has_bn:
                bn = []
                for part in ("weight", "bias", "running_mean", "running_var"):
                    nm = "%s.bn.%d.%s" % (prefix, i, part)
                    w.get(nm, (out,), "BatchNorm of layer %d of the %s" % (i, what))
                    bn.append(nm)
                var = sd["%s.bn.%d.running_var" % (prefix, i)].tolist_flat()
                if any(v < 0 for v in var):
                    raise ExportError("tensor %s.bn.%d.running_var has negative entries" % (prefix, i))
            layers.append(dict(w=wn, b="%s.linears.%d.bias" % (prefix, i), bn=bn, inp=width, out=out))
            width = out
        side_info[side]["layers"] = layers
        hu = (cfg.hidden_units or {}).get(side)
        if hu is not None and list(hu) != [l["out"] for l in layers]:
            raise ExportError("config hidden_units %s do not match the %s tower's tensors %s"
                              % (list(hu), side, [l["out"] for l in layers]))

    # FE heads
    p, Hu, Hi = cfg.head_dim, cfg.user_heads, cfg.item_heads
    ufe = _fe_indices(w, "user_fe_dnn")
    ife = _fe_indices(w, "item_fe_dnn")
    nu = len(side_info["user"]["layers"])
    if not ufe:
        raise ExportError("missing tensor user_fe_dnn.Fe_linears.0.weight: the user tower has no FE projections")
    if not ife:
        raise ExportError("missing tensor item_fe_dnn.Fe_linears.0.weight: the item tower has no FE projection")
    bad = [i for i in ufe if i >= nu]
    if bad:
        raise ExportError("tensor user_fe_dnn.Fe_linears.%d.* exists but the user tower has only %d layers"
                          % (bad[0], nu))
    r0 = w.shape("user_fe_dnn.Fe_linears.%d.weight" % ufe[0])[0]
    ri = w.shape("item_fe_dnn.Fe_linears.%d.weight" % ife[-1])[0]
    if p is None:
        if Hu is not None and r0 % Hu == 0:
            p = r0 // Hu
        elif Hi is not None and ri % Hi == 0:
            p = ri // Hi
        else:
            raise ExportError("the head dim (field_dim) is not in the config; give head_dim/field_dim "
                              "(or --head-dim) and user/item heads")
    if Hu is None:
        if r0 % p:
            raise ExportError("tensor user_fe_dnn.Fe_linears.%d.weight has %d rows, not a multiple of head dim %d"
                              % (ufe[0], r0, p))
        Hu = r0 // p
        log("note: user heads not in the config; %d from the tensors" % Hu)
    if Hi is None:
        if ri % p:
            raise ExportError("tensor item_fe_dnn.Fe_linears.%d.weight has %d rows, not a multiple of head dim %d"
                              % (ife[-1], ri, p))
        Hi = ri // p
        log("note: item heads not in the config; %d from the tensors" % Hi)
    user_fe = []
    for i in ufe:
        inp = side_info["user"]["layers"][i]["inp"]
        why = ("user FE projection %d: user_head %d x field_dim %d rows, input = the input of user layer %d "
               "(%d wide)" % (i, Hu, p, i, inp))
        w.get("user_fe_dnn.Fe_linears.%d.weight" % i, (Hu * p, inp), why)
        w.get("user_fe_dnn.Fe_linears.%d.bias" % i, (Hu * p,), why)
        user_fe.append(i)
    last = side_info["item"]["layers"][-1]["out"]
    iidx = ife[-1]
    if len(ife) > 1:
        log("note: item_fe_dnn has Fe_linears %s; the reference scores with the last one (item_rep[-1]): %d"
            % (ife, iidx))
    why = "item FE projection: item_head %d x field_dim %d rows, input = the last item layer (%d wide)" % (Hi, p, last)
    w.get("item_fe_dnn.Fe_linears.%d.weight" % iidx, (Hi * p, last), why)
    w.get("item_fe_dnn.Fe_linears.%d.bias" % iidx, (Hi * p,), why)
    w.get("out.bias", (1,), "the PredictionLayer bias")

    # fe_layers
    if cfg.fe_layers is not None and not cfg.fe_layers:
        raise ExportError("fe_layers is empty")
    fe_layers, fe_origin = choose_fe_layers(sd, nu, user_fe, cfg.fe_layers, cfg.fe_layers_from, log)
    missing = [i for i in fe_layers if i not in user_fe]
    if missing:
        raise ExportError("fe_layers %s: user layer %d has no FE projection (user_fe_dnn.Fe_linears.%d.weight); "
                          "the checkpoint has %s" % (fe_layers, missing[0], missing[0], user_fe))

    # notes on unused tensors
    unused = [k for k in sd if k not in w.used]
    se = [k for k in unused if k.startswith(("User_SE.", "Item_SE."))]
    nbt = [k for k in unused if k.endswith(".num_batches_tracked")]
    other = [k for k in unused if k not in se and k not in nbt]
    if se:
        log("note: ignoring %d tensors the reference forward pass never uses: %s" % (len(se), ", ".join(se)))
    if other:
        log("note: ignoring %d tensors that are not part of the IntTower graph: %s" % (len(other), ", ".join(other)))

    # tensors in state_dict order
    order = [k for k in sd if k in w.used]
    tensors = [tf.Tensor(k, tuple(sd[k].shape) if sd[k].shape != () else (1,), sd[k].to_f32_bytes()) for k in order]
    tix = {k: i for i, k in enumerate(order)}
    for f, tn in zip(fields_out, table_names):
        f.table = tix[tn] if tn else -1

    # graph
    nodes = []
    nxt = [0]

    def val():
        v = nxt[0]
        nxt[0] += 1
        return v

    fe_vals = {}
    for side in SIDES:
        s = SIDE_CODE[side]
        si = side_info[side]
        v = val()
        nodes.append(tf.Node(tf.OP_EMBED, s, v))
        v2 = val()
        nodes.append(tf.Node(tf.OP_LIGHTSE, s, v2, inputs=[v],
                             tensors=[tix[si["se_w"]], tix[si["se_b"]] if si["se_b"] else -1],
                             attrs=[si["F"], si["d"]]))
        v3 = val()
        nodes.append(tf.Node(tf.OP_CONCAT_DENSE, s, v3, inputs=[v2], attrs=[si["width"], 0]))
        x = v3
        for i, L in enumerate(si["layers"]):
            y = val()
            t = [tix[L["w"]], tix[L["b"]]] + ([tix[b] for b in L["bn"]] if L["bn"] else [-1] * 4)
            flags = tf.FLAG_RELU | (tf.FLAG_BN if L["bn"] else 0)
            nodes.append(tf.Node(tf.OP_LINEAR, s, y, inputs=[x], tensors=t, layer=i, flags=flags,
                                 eps=BN_EPS if L["bn"] else 0.0, attrs=[L["inp"], L["out"]]))
            if side == "user" and i in user_fe:
                fv = val()
                wn = "user_fe_dnn.Fe_linears.%d" % i
                nodes.append(tf.Node(tf.OP_FE_PROJ, s, fv, inputs=[x], tensors=[tix[wn + ".weight"], tix[wn + ".bias"]],
                                     layer=i, attrs=[Hu, p]))
                fe_vals[i] = fv
            x = y
        if side == "item":
            fv = val()
            wn = "item_fe_dnn.Fe_linears.%d" % iidx
            nodes.append(tf.Node(tf.OP_FE_PROJ, s, fv, inputs=[x], tensors=[tix[wn + ".weight"], tix[wn + ".bias"]],
                                 layer=iidx, attrs=[Hi, p]))
            item_fv = fv
    # One MAXSIM per user FE layer the model was trained with (inttower.fe_layers);
    # FE_PROJ nodes above cover every user projection the checkpoint carries.
    acc = None
    for i in fe_layers:
        m = val()
        nodes.append(tf.Node(tf.OP_MAXSIM, tf.SIDE_SCORE, m, inputs=[fe_vals[i], item_fv]))
        if acc is None:
            acc = m
        else:
            s_ = val()
            nodes.append(tf.Node(tf.OP_SUM, tf.SIDE_SCORE, s_, inputs=[acc, m]))
            acc = s_
    nodes.append(tf.Node(tf.OP_PREDICT, tf.SIDE_SCORE, val(), inputs=[acc], tensors=[tix["out.bias"]]))

    meta = [
        ("general.architecture", tf.META_STRING, "inttower"),
        ("general.name", tf.META_STRING, cfg.name or "inttower"),
        ("general.source", tf.META_STRING, source or "unknown"),
        ("general.exporter", tf.META_STRING, EXPORTER_ID),
        ("inttower.head_dim", tf.META_INT, p),
        ("inttower.user_heads", tf.META_INT, Hu),
        ("inttower.item_heads", tf.META_INT, Hi),
        ("inttower.fe_layers", tf.META_INT_ARRAY, fe_layers),
        ("inttower.output", tf.META_STRING, "sigmoid" if cfg.task == "binary" else "identity"),
        ("quantization", tf.META_STRING, "none"),
    ] + list(extra_meta)
    if record_fe_origin:
        meta.append(("export.fe_layers_from", tf.META_STRING, fe_origin))
    return tf.Model(meta, fields_out, tensors, nodes)
