#!/usr/bin/env python3
"""Export the two-tower family baselines of the reference code (github
archersama/IntTower: model/dssm.py, model/DAT.py) to towerrt model files
(.twr, docs/format.md; docs/family.md).

  python3 tools/export_family.py --arch dssm --weights state_dict.npz --config config.json --out model.twr
      [--similarity cosine|dot] [--gamma G] [--task binary|regression]
  python3 tools/export_family.py --arch dat ... [--dat-augment constant|input]
  python3 tools/export_family.py --arch fit ...   (tools/export_fit.py: FIT, docs/family.md)
  (tools/export_inttower.py --arch dssm|dat ... is the same command)

Weights: a state_dict (.npz read with the standard library, anything else
with torch); names as the reference: {user,item}_embedding_dict.<table>.weight,
{user,item}_dnn.linears.<i>.{weight,bias}, {user,item}_dnn.bn.<i>.*, out.bias.
Configuration: the JSON layouts (or column pickle) of tools/export_inttower.py;
family keys in a JSON config: "gamma" (the reference's Cosine_Similarity
gamma; default 1 as in DSSM/DAT), "similarity" ("cosine" as the reference,
or "dot"), "dat_augment". Command-line values override the config.

DAT's augmented vectors: in the reference they are torch.rand noise drawn at
every forward pass (nothing in the checkpoint; tools/reference/dat_ref.py).
--dat-augment constant (default) stores a constant vector of 0.5 = E[U(0,1)]
per side (folded into the first Linear's bias at load: deterministic
serving); --dat-augment input makes each side's vector a request input, the
dense field user_aug_vector / item_aug_vector (the first dense field of its
side), for parity with a given draw of the reference's noise.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_inttower as ex  # noqa: E402
import export_inttower_graph as exg  # noqa: E402
import towerrt_format as tf  # noqa: E402

EXPORTER_VERSION = "1.0"
EXPORTER_ID = "towerrt tools/export_family.py %s" % EXPORTER_VERSION
BN_EPS = 1e-5
ARCHS = ("dssm", "dat")
SIMILARITIES = {"cosine": 0, "dot": 1}
AUGMENT_MODES = ("constant", "input")
AUG_MEAN = 0.5          # E[U(0,1)], the mean of the reference's torch.rand

# GRAPH ops of the family (docs/format.md); registered with the shared
# reader so that towerrt_format.read_twr / describe accept family files.
OP_SIMILARITY, OP_AUGMENT = 9, 10
tf.OP_NAMES.setdefault(OP_SIMILARITY, "SIMILARITY")
tf.OP_NAMES.setdefault(OP_AUGMENT, "AUGMENT")

ExportError = ex.ExportError
SIDES = ex.SIDES


class FamilyOptions(object):
    def __init__(self, arch, similarity="cosine", gamma=1.0, dat_augment="constant", aug_value=AUG_MEAN):
        if arch not in ARCHS:
            raise ExportError("architecture %r is not one of %s" % (arch, ", ".join(ARCHS)))
        if similarity not in SIMILARITIES:
            raise ExportError("similarity %r is not one of cosine, dot" % (similarity,))
        if dat_augment not in AUGMENT_MODES:
            raise ExportError("dat_augment %r is not one of constant, input" % (dat_augment,))
        try:
            gamma = float(gamma)
        except (TypeError, ValueError):
            raise ExportError("gamma must be a number, got %r" % (gamma,))
        if gamma != gamma or gamma in (float("inf"), float("-inf")):
            raise ExportError("gamma must be finite")
        self.arch, self.similarity, self.gamma = arch, similarity, tf.f32_round(gamma)
        self.dat_augment, self.aug_value = dat_augment, tf.f32_round(float(aug_value))


def family_keys(obj):
    """The family keys of a parsed JSON config."""
    out = {}
    for k in ("gamma", "similarity", "dat_augment", "architecture"):
        if k in obj:
            out[k] = obj[k]
    return out


def _aug_field(side, d):
    return ex.FieldSpec("%s_aug_vector" % side, side, "dense", dim=d, order=-1)


def build_family_model(sd, cfg, opts, source="", log=None, extra_meta=()):
    """state_dict (name -> NpyArray) + ExportConfig + FamilyOptions -> tf.Model."""
    log = log or (lambda m: None)
    w = ex._Weights(sd)
    if any(k.startswith(("user_fe_dnn.", "item_fe_dnn.")) for k in sd):
        raise ExportError("the state_dict has user_fe_dnn / item_fe_dnn tensors: it is an IntTower checkpoint "
                          "(export it with --arch inttower)")
    dat = opts.arch == "dat"
    const_aug = dat and opts.dat_augment == "constant"
    fields_out, table_names, side_info = [], [], {}
    for side in SIDES:
        flds, idf, d = exg.side_tables(w, cfg, side, " (towerrt's EMBED needs at least one)",
                                       "towerrt gathers one embedding dim per side")
        dense = [f for f in flds if f.kind == "dense"]
        if dat and not const_aug:
            if any(f.name == "%s_aug_vector" % side for f in cfg.columns[side]):
                raise ExportError("%s side already has a field named %s_aug_vector" % (side, side))
            dense = [_aug_field(side, d)] + dense   # DAT.py: appended after the id embeddings, before dense
        for f in idf + dense:
            fields_out.append(tf.Field(f.name, ex.SIDE_CODE[side], ex.KINDS[f.kind],
                                       f._rows if f.kind != "dense" else 0,
                                       f._d if f.kind != "dense" else f.dim,
                                       f.slots, ex.COMBINERS[f.combiner] if f.kind == "multi" else 0, -1))
            table_names.append(f._table if f.kind != "dense" else None)
        dense_w = sum(f.dim for f in dense)
        aug = d if const_aug else 0
        side_info[side] = dict(F=len(idf), d=d, dense=dense_w, aug=aug, width=len(idf) * d + aug + dense_w)

    for side in SIDES:
        prefix = "%s_dnn" % side
        what = "%s tower" % side
        n = ex._layer_count(w, prefix, what)
        has_bn = any(k.startswith(prefix + ".bn.") for k in sd)
        si = side_info[side]
        width = si["width"]
        layers = []
        for i in range(n):
            wn = "%s.linears.%d.weight" % (prefix, i)
            shp = w.shape(wn)
            if len(shp) != 2:
                raise ExportError("tensor %s has shape %s, expected (out, %d)" % (wn, ex._shp(shp), width))
            out = shp[0]
            if i == 0:
                parts = "%d id fields x %d dims%s + %d dense = %d" % (
                    si["F"], si["d"], " + %d augmented (DAT)" % si["d"] if dat else "",
                    si["dense"] - (si["d"] if dat and not const_aug else 0), width)
                why = "layer 0 of the %s: its input is %s" % (what, parts)
                if shp[1] == (width - si["d"] if dat else width + si["d"]):
                    why += " (the width fits a %s checkpoint: check --arch)" % ("dssm" if dat else "dat")
            else:
                why = "layer %d of the %s: its input is the %d outputs of layer %d" % (i, what, width, i - 1)
            w.get(wn, (out, width), why)
            w.get("%s.linears.%d.bias" % (prefix, i), (out,), "bias of layer %d of the %s" % (i, what))
            bn = None
            if has_bn:
                bn = []
                for part in ("weight", "bias", "running_mean", "running_var"):
                    nm = "%s.bn.%d.%s" % (prefix, i, part)
                    w.get(nm, (out,), "BatchNorm of layer %d of the %s" % (i, what))
                    bn.append(nm)
                if any(v < 0 for v in sd["%s.bn.%d.running_var" % (prefix, i)].tolist_flat()):
                    raise ExportError("tensor %s.bn.%d.running_var has negative entries" % (prefix, i))
            layers.append(dict(w=wn, b="%s.linears.%d.bias" % (prefix, i), bn=bn, inp=width, out=out))
            width = out
        si["layers"] = layers
        hu = (cfg.hidden_units or {}).get(side)
        if hu is not None and list(hu) != [l["out"] for l in layers]:
            raise ExportError("config hidden_units %s do not match the %s tower's tensors %s"
                              % (list(hu), side, [l["out"] for l in layers]))
    du, di = side_info["user"]["layers"][-1]["out"], side_info["item"]["layers"][-1]["out"]
    if du != di:
        raise ExportError("the user tower ends with %d values and the item tower with %d: the %s similarity needs "
                          "one width" % (du, di, opts.similarity))
    dim = du
    w.get("out.bias", (1,), "the PredictionLayer bias")

    unused = [k for k in sd if k not in w.used]
    carried = [k for k in unused if k.startswith(("User_SE.", "Item_SE.", "User_sim_non_local.", "Item_sim_non_local."))]
    nbt = [k for k in unused if k.endswith(".num_batches_tracked")]
    other = [k for k in unused if k not in carried and k not in nbt]
    if carried:
        log("note: ignoring %d tensors the reference forward pass never uses: %s" % (len(carried), ", ".join(carried)))
    if other:
        log("note: ignoring %d tensors that are not part of the %s graph: %s" % (len(other), opts.arch, ", ".join(other)))

    order = [k for k in sd if k in w.used]
    tensors = [tf.Tensor(k, tuple(sd[k].shape) if sd[k].shape != () else (1,), sd[k].to_f32_bytes()) for k in order]
    tix = {k: i for i, k in enumerate(order)}
    if const_aug:
        for side in SIDES:
            nm = "%s_aug_vector" % side
            if nm in tix:
                raise ExportError("the state_dict already has a tensor named %s" % nm)
            tix[nm] = len(tensors)
            tensors.append(tf.Tensor(nm, (side_info[side]["d"],), tf.f32_bytes([opts.aug_value] * side_info[side]["d"])))
    for f, tn in zip(fields_out, table_names):
        f.table = tix[tn] if tn else -1

    nodes = []
    nxt = [0]

    def val():
        v = nxt[0]
        nxt[0] += 1
        return v
    last = {}
    for side in SIDES:
        s = ex.SIDE_CODE[side]
        si = side_info[side]
        x = val()
        nodes.append(tf.Node(tf.OP_EMBED, s, x))
        if const_aug:
            a = val()
            nodes.append(tf.Node(OP_AUGMENT, s, a, inputs=[x], tensors=[tix["%s_aug_vector" % side]], attrs=[si["d"], 0]))
            x = a
        c = val()
        nodes.append(tf.Node(tf.OP_CONCAT_DENSE, s, c, inputs=[x], attrs=[si["width"], 0]))
        x = c
        for i, L in enumerate(si["layers"]):
            y = val()
            t = [tix[L["w"]], tix[L["b"]]] + ([tix[b] for b in L["bn"]] if L["bn"] else [-1] * 4)
            nodes.append(tf.Node(tf.OP_LINEAR, s, y, inputs=[x], tensors=t, layer=i,
                                 flags=tf.FLAG_RELU | (tf.FLAG_BN if L["bn"] else 0),
                                 eps=BN_EPS if L["bn"] else 0.0, attrs=[L["inp"], L["out"]]))
            x = y
        last[side] = x
    sim = val()
    nodes.append(tf.Node(OP_SIMILARITY, tf.SIDE_SCORE, sim, inputs=[last["user"], last["item"]], eps=opts.gamma,
                         attrs=[dim, SIMILARITIES[opts.similarity]]))
    nodes.append(tf.Node(tf.OP_PREDICT, tf.SIDE_SCORE, val(), inputs=[sim], tensors=[tix["out.bias"]]))

    meta = [
        ("general.architecture", tf.META_STRING, opts.arch),
        ("general.name", tf.META_STRING, cfg.name or opts.arch),
        ("general.source", tf.META_STRING, source or "unknown"),
        ("general.exporter", tf.META_STRING, EXPORTER_ID),
        ("two_tower.similarity", tf.META_STRING, opts.similarity),
        ("two_tower.gamma", tf.META_FLOAT, opts.gamma),
        ("two_tower.dim", tf.META_INT, dim),
        ("two_tower.output", tf.META_STRING, "sigmoid" if cfg.task == "binary" else "identity"),
    ]
    if dat:
        meta.append(("dat.augment", tf.META_STRING, opts.dat_augment))
        if const_aug:
            meta.append(("dat.augment_value", tf.META_FLOAT, opts.aug_value))
    meta.append(("quantization", tf.META_STRING, "none"))
    return tf.Model(meta + list(extra_meta), fields_out, tensors, nodes)


def _config(config, log):
    """-> (ExportConfig, family keys of a JSON config)."""
    if isinstance(config, ex.ExportConfig):
        return config, {}
    if isinstance(config, dict):
        return ex.config_from_json(config), family_keys(config)
    cfg = ex.load_config(config, log)
    keys = {}
    with open(config, "rb") as f:
        head = f.read(1)
    if head != b"\x80":
        with open(config, "r") as f:
            keys = family_keys(json.load(f))
    return cfg, keys


def resolve_options(arch, keys, similarity=None, gamma=None, dat_augment=None):
    if keys.get("architecture") not in (None, arch):
        raise ExportError("the config says architecture %r, the command %r" % (keys["architecture"], arch))
    return FamilyOptions(arch,
                         similarity=similarity if similarity is not None else keys.get("similarity", "cosine"),
                         gamma=gamma if gamma is not None else keys.get("gamma", 1.0),
                         dat_augment=dat_augment if dat_augment is not None else keys.get("dat_augment", "constant"))


def export_family(weights, out_path, arch, config=None, similarity=None, gamma=None, dat_augment=None, task=None,
                  name=None, log=None, provenance_record=True):
    """Export and write out_path; returns the tf.Model written."""
    if log is None:
        def log(m):
            sys.stderr.write("export_family: %s\n" % m)
    if config is None:
        raise ExportError("no feature configuration (config=)")
    cfg, keys = _config(config, log)
    ex._apply_overrides(cfg, task=task, name=name)
    opts = resolve_options(arch, keys, similarity, gamma, dat_augment)
    sd = ex.load_state_dict(weights, log)
    source, extra, default_name = ex.provenance(weights, config, provenance_record)
    if cfg.name is None:
        cfg.name = default_name
    model = build_family_model(sd, cfg, opts, source=source, log=log, extra_meta=extra)
    try:
        tf.write_twr(out_path, model)
    except tf.FormatError as e:
        raise ExportError(str(e))
    return model


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    ap = argparse.ArgumentParser(prog="export_family.py",
                                 description="Export a reference DSSM / DAT state_dict to a towerrt .twr model.")
    ap.add_argument("--arch", required=True, choices=ARCHS + ("inttower", "fit"))
    ap.add_argument("--weights", required=True, help="state_dict: .npz (stdlib) or .pt (needs torch)")
    ap.add_argument("--config", required=True, help="feature configuration (JSON or column pickle)")
    ap.add_argument("--out", "-o", required=True, help="output .twr")
    ap.add_argument("--similarity", choices=tuple(SIMILARITIES), help="cosine (the reference) or dot")
    ap.add_argument("--gamma", type=float, help="the reference Cosine_Similarity gamma (default 1)")
    ap.add_argument("--dat-augment", choices=AUGMENT_MODES,
                    help="DAT: constant (0.5 = E[U(0,1)], default) or input (dense fields *_aug_vector)")
    ap.add_argument("--task", choices=("binary", "regression"))
    ap.add_argument("--name")
    ap.add_argument("--no-provenance", action="store_true",
                    help="record no file names or checksums (general.source 'not recorded')")
    ap.add_argument("--quiet", "-q", action="store_true")
    a, rest = ap.parse_known_args(argv)
    if a.arch == "fit":
        import export_fit  # noqa: E402  (FIT has its own graph: tools/export_fit.py)
        return export_fit.main(argv)
    if a.arch == "inttower":
        drop, skip = [], False
        for x in argv:
            if skip:
                skip = False
            elif x == "--arch":
                skip = True
            elif not x.startswith("--arch="):
                drop.append(x)
        return ex.main(drop)
    if rest:
        ap.error("unrecognized arguments: %s" % " ".join(rest))

    def log(m):
        if not a.quiet:
            sys.stderr.write("export_family: %s\n" % m)
    try:
        model = export_family(a.weights, a.out, a.arch, config=a.config, similarity=a.similarity, gamma=a.gamma,
                              dat_augment=a.dat_augment, task=a.task, name=a.name, log=log,
                              provenance_record=not a.no_provenance)
    except (ExportError, tf.FormatError, OSError) as e:
        sys.stderr.write("export_family: error: %s\n" % e)
        return 1
    m = model.meta
    log("wrote %s: %s, %d fields, %d tensors, %d graph nodes; %s similarity, gamma %g, vectors of %d%s"
        % (a.out, m["general.architecture"], len(model.fields), len(model.tensors), len(model.graph),
           m["two_tower.similarity"], m["two_tower.gamma"], m["two_tower.dim"],
           ", augmented vectors: %s" % m["dat.augment"] if "dat.augment" in m else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
