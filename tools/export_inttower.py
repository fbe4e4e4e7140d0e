#!/usr/bin/env python3
"""Export an IntTower checkpoint made by the reference PyTorch code
(github archersama/IntTower) to a towerrt model file (.twr, docs/format.md).

Input:
  * weights: a state_dict saved with torch.save(model.state_dict()) (.pt/.pth/
    .ckpt, read with torch) or an .npz with the same names (read with the
    standard library only: no numpy, no torch);
  * the feature configuration: a JSON file (the layout of
    shared/fixtures/reference-inttower/config.json, or the general layout of
    docs/exporter.md), or a pickle of the reference's feature column lists
    (SparseFeat / VarLenSparseFeat / DenseFeat), or (from Python) the column
    objects themselves.

Command line:
  python3 tools/export_inttower.py --weights state_dict.npz --config config.json \\
      --out model.twr [--fe-layers 0,1,2] [--user-heads H --item-heads H --head-dim P]

From Python:
  import export_inttower
  export_inttower.export_inttower("state_dict.pt", "model.twr",
      user_columns=user_feature_columns, item_columns=item_feature_columns,
      user_heads=32, item_heads=32, head_dim=64)

Widths are read from the tensors; the configuration is cross-checked against
them and every mismatch is reported with the tensor name, the expected and the
found shape.
"""

import argparse
import collections
import hashlib
import json
import os
import pickle
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import towerrt_format as tf  # noqa: E402

EXPORTER_VERSION = "1.0"
EXPORTER_ID = "towerrt tools/export_inttower.py %s" % EXPORTER_VERSION
BN_EPS = 1e-5
DEFAULT_FE_LAYERS = (0, 1, 2)   # reference fe_score: [field_dim] * 3
SIDES = ("user", "item")
SIDE_CODE = {"user": tf.SIDE_USER, "item": tf.SIDE_ITEM}
KINDS = {"single": tf.KIND_SINGLE, "multi": tf.KIND_MULTI, "dense": tf.KIND_DENSE}
COMBINERS = {"mean": tf.COMBINER_MEAN, "sum": tf.COMBINER_SUM, "max": tf.COMBINER_MAX}


class ExportError(Exception):
    pass


# --------------------------------------------------------------------------
# feature configuration

class FieldSpec(object):
    """One input column. kind: 'single' | 'multi' | 'dense'. dim: embedding dim
    (id fields) or width (dense). vocab/dim may be None: then read from the
    embedding table."""

    def __init__(self, name, side, kind, vocab=None, dim=None, maxlen=None, combiner="mean",
                 embedding_name=None, order=0):
        self.name, self.side, self.kind = name, side, kind
        self.vocab, self.dim, self.maxlen = vocab, dim, maxlen
        self.combiner = combiner
        self.embedding_name = embedding_name or name
        self.order = order

    @property
    def slots(self):
        return {"single": 1, "multi": self.maxlen, "dense": 0}[self.kind]

    def __repr__(self):
        return "FieldSpec(%r, %s, %s, vocab=%r, dim=%r, maxlen=%r, combiner=%r, table=%r)" % (
            self.name, self.side, self.kind, self.vocab, self.dim, self.maxlen, self.combiner,
            self.embedding_name)


class ExportConfig(object):
    """columns[side]: FieldSpecs in the reference's column order (the order of
    the feature column list, which is also the flat input order)."""

    def __init__(self, user_columns, item_columns, head_dim=None, user_heads=None,
                 item_heads=None, fe_layers=None, task="binary", name=None,
                 hidden_units=None, field_sizes=None, activation="relu", embedding_dim=None):
        self.columns = {"user": list(user_columns), "item": list(item_columns)}
        self.head_dim, self.user_heads, self.item_heads = head_dim, user_heads, item_heads
        self.fe_layers = fe_layers
        self.fe_layers_from = "the configuration"   # or "--fe-layers" (_apply_overrides)
        self.task = task
        self.name = name
        self.hidden_units = hidden_units      # {'user': [...], 'item': [...]} or None
        self.field_sizes = field_sizes or {}  # {'user': F} cross-check (user_filed_size)
        self.activation = activation
        self.embedding_dim = embedding_dim

    def fields(self, side):
        """FIELDS order: single-id (column order), multi-id, dense."""
        cols = self.columns[side]
        return ([c for c in cols if c.kind == "single"] + [c for c in cols if c.kind == "multi"]
                + [c for c in cols if c.kind == "dense"])

    def flat_layout(self):
        """The reference's flat input layout (build_input_features over
        user columns + item columns): list of (FieldSpec, start, stop)."""
        out = []
        start = 0
        seen = set()
        for side in SIDES:
            for c in self.columns[side]:
                if c.name in seen:
                    continue
                seen.add(c.name)
                w = {"single": 1, "multi": c.maxlen, "dense": c.dim}[c.kind]
                out.append((c, start, start + w))
                start += w
        return out


def _check_name(name, what):
    if not isinstance(name, str) or not name:
        raise ExportError("%s: field name must be a non-empty string, got %r" % (what, name))
    return name


def _posint(v, what, allow_none=True):
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise ExportError("%s must be a positive integer, got %r" % (what, v))
    return v


def _field_from_dict(d, side, order, where):
    if not isinstance(d, dict):
        raise ExportError("%s: each field must be a JSON object, got %r" % (where, d))
    name = _check_name(d.get("name"), where)
    where = "%s field %r" % (where, name)
    kind = d.get("kind")
    if kind not in KINDS:
        raise ExportError("%s: kind must be one of single, multi, dense; got %r" % (where, kind))
    known = {"name", "kind", "vocab", "dim", "maxlen", "combiner", "embedding_name",
             "length_name", "comment"}
    extra = set(d) - known
    if extra:
        raise ExportError("%s: unknown keys %s" % (where, ", ".join(sorted(extra))))
    if d.get("length_name") is not None:
        raise ExportError("%s: length_name=%r is not supported: towerrt pools multi-id fields with "
                          "id-0 masking only (VarLenSparseFeat with length_name=None)"
                          % (where, d["length_name"]))
    if kind == "dense":
        dim = _posint(d.get("dim", 1), where + ": dim")
        for k in ("vocab", "maxlen", "embedding_name"):
            if d.get(k) is not None:
                raise ExportError("%s: a dense field has no %s" % (where, k))
        return FieldSpec(name, side, "dense", dim=dim, order=order)
    vocab = _posint(d.get("vocab"), where + ": vocab")
    dim = _posint(d.get("dim"), where + ": dim")
    maxlen = None
    comb = "mean"
    if kind == "multi":
        maxlen = _posint(d.get("maxlen"), where + ": maxlen", allow_none=False)
        comb = d.get("combiner", "mean")
        if comb not in COMBINERS:
            raise ExportError("%s: combiner must be mean, sum or max; got %r" % (where, comb))
    elif d.get("maxlen") not in (None, 1):
        raise ExportError("%s: a single-id field has no maxlen" % where)
    emb = d.get("embedding_name") or name
    return FieldSpec(name, side, kind, vocab=vocab, dim=dim, maxlen=maxlen, combiner=comb,
                     embedding_name=emb, order=order)


def _heads_from(obj, *keys):
    for k in keys:
        if obj.get(k) is not None:
            return obj[k]
    return None


def config_from_json(obj, where="config"):
    """Parse either JSON layout -> ExportConfig."""
    if not isinstance(obj, dict):
        raise ExportError("%s: top level must be a JSON object" % where)
    if isinstance(obj.get("user"), list) or isinstance(obj.get("item"), list):
        return _config_general(obj, where)
    if "user_sparse" in obj or "item_sparse" in obj:
        return _config_script(obj, where)
    raise ExportError("%s: unrecognised layout: expected either 'user'/'item' field lists "
                      "(general layout, docs/exporter.md) or 'user_sparse'/'item_sparse' "
                      "(reference script layout)" % where)


def _common(obj, where):
    fe = obj.get("fe_layers")
    if fe is not None and (not isinstance(fe, list) or not all(isinstance(x, int) for x in fe)):
        raise ExportError("%s: fe_layers must be a list of integers, got %r" % (where, fe))
    task = obj.get("task", "binary")
    if task not in ("binary", "regression"):
        raise ExportError("%s: task must be binary or regression, got %r" % (where, task))
    act = obj.get("activation", obj.get("dnn_activation", "relu"))
    if act != "relu":
        raise ExportError("%s: activation %r is not supported (towerrt runs ReLU towers)" % (where, act))
    hu = obj.get("hidden_units", obj.get("dnn_hidden_units"))
    hidden = None
    if hu is not None:
        if isinstance(hu, dict):
            hidden = {s: list(hu[s]) for s in SIDES if s in hu}
        elif isinstance(hu, list):
            hidden = {"user": list(hu), "item": list(hu)}
        else:
            raise ExportError("%s: hidden_units must be a list or {user:[..], item:[..]}" % where)
    return dict(
        head_dim=_posint(_heads_from(obj, "head_dim", "field_dim"), where + ": head_dim"),
        user_heads=_posint(_heads_from(obj, "user_heads", "user_head"), where + ": user_heads"),
        item_heads=_posint(_heads_from(obj, "item_heads", "item_head"), where + ": item_heads"),
        fe_layers=fe, task=task, name=obj.get("name"), hidden_units=hidden, activation=act,
        embedding_dim=_posint(obj.get("embedding_dim"), where + ": embedding_dim"))


def _config_general(obj, where):
    cols = {}
    for side in SIDES:
        lst = obj.get(side)
        if not isinstance(lst, list) or not lst:
            raise ExportError("%s: '%s' must be a non-empty list of fields" % (where, side))
        cols[side] = [_field_from_dict(d, side, i, "%s: %s" % (where, side)) for i, d in enumerate(lst)]
    c = _common(obj, where)
    return ExportConfig(cols["user"], cols["item"], **c)


# the reference MovieLens script's multi-id fields: name -> side
_SCRIPT_VARLEN_SIDE = {"genres": "item", "user_hist": "user"}


def _config_script(obj, where):
    """The layout of shared/fixtures/reference-inttower/config.json: the
    reference training script's variables."""
    vocab = obj.get("vocab", {})
    if not isinstance(vocab, dict):
        raise ExportError("%s: 'vocab' must map field name -> vocabulary size" % where)
    dim = obj.get("embedding_dim")
    dense_dims = obj.get("dense_dims", {})
    varlen_side = {}
    for side in SIDES:
        for n in obj.get("%s_varlen" % side, []) or []:
            varlen_side[n] = side
    for k in obj:
        if k.endswith("_maxlen"):
            n = k[:-len("_maxlen")]
            if n not in varlen_side:
                if n not in _SCRIPT_VARLEN_SIDE:
                    raise ExportError("%s: cannot tell which side the multi-id field %r belongs to; "
                                      "list it in 'user_varlen' or 'item_varlen'" % (where, n))
                varlen_side[n] = _SCRIPT_VARLEN_SIDE[n]
    cols = {"user": [], "item": []}
    for side in SIDES:
        order = 0
        for n in obj.get("%s_sparse" % side, []) or []:
            _check_name(n, where)
            if n not in vocab:
                raise ExportError("%s: sparse field %r has no entry in 'vocab'" % (where, n))
            cols[side].append(FieldSpec(n, side, "single", vocab=_posint(vocab[n], "%s: vocab[%r]" % (where, n)),
                                        dim=dim, order=order))
            order += 1
        for n in obj.get("%s_dense" % side, []) or []:
            _check_name(n, where)
            cols[side].append(FieldSpec(n, side, "dense", dim=_posint(dense_dims.get(n, 1), "%s: dense_dims[%r]"
                                                                       % (where, n)), order=order))
            order += 1
        for n, s in varlen_side.items():
            if s != side:
                continue
            v = obj.get("%s_vocab" % n, vocab.get(n))
            ml = obj.get("%s_maxlen" % n)
            if v is None or ml is None:
                raise ExportError("%s: multi-id field %r needs %s_vocab and %s_maxlen" % (where, n, n, n))
            comb = obj.get("%s_combiner" % n, "mean")
            if comb not in COMBINERS:
                raise ExportError("%s: %s_combiner must be mean, sum or max" % (where, n))
            cols[side].append(FieldSpec(n, side, "multi", vocab=_posint(v, "%s: %s_vocab" % (where, n)),
                                        dim=dim, maxlen=_posint(ml, "%s: %s_maxlen" % (where, n)),
                                        combiner=comb, order=order))
            order += 1
        if not cols[side]:
            raise ExportError("%s: no %s fields (%s_sparse is empty)" % (where, side, side))
    c = _common(obj, where)
    fs = {}
    for side, key in (("user", "user_filed_size"), ("item", "item_filed_size")):
        for k in (key, side + "_field_size"):
            if obj.get(k) is not None:
                fs[side] = obj[k]
    return ExportConfig(cols["user"], cols["item"], field_sizes=fs, **c)


def _column_kind(c):
    cls = type(c).__name__
    if hasattr(c, "sparsefeat") or hasattr(c, "maxlen") or cls == "VarLenSparseFeat":
        return "multi"
    if hasattr(c, "vocabulary_size"):
        return "single"
    if hasattr(c, "dimension") or cls == "DenseFeat":
        return "dense"
    raise ExportError("feature column %r is neither SparseFeat, VarLenSparseFeat nor DenseFeat" % (c,))


def fields_from_columns(columns, side, log=None):
    """Duck-typed reference feature columns -> FieldSpecs."""
    out = []
    for i, c in enumerate(columns):
        kind = _column_kind(c)
        name = _check_name(getattr(c, "name", None), "%s column %d" % (side, i))
        if kind == "dense":
            out.append(FieldSpec(name, side, "dense", dim=int(getattr(c, "dimension", 1)), order=i))
            continue
        if getattr(c, "use_hash", False) and log:
            log("note: field %r has use_hash=True; the reference torch code does not hash "
                "(ids are used as given), nor does towerrt" % name)
        vocab = int(c.vocabulary_size)
        dim = c.embedding_dim
        if dim == "auto":
            dim = 6 * int(pow(vocab, 0.25))
        emb = getattr(c, "embedding_name", None) or name
        if kind == "single":
            out.append(FieldSpec(name, side, "single", vocab=vocab, dim=int(dim), embedding_name=emb, order=i))
        else:
            ln = getattr(c, "length_name", None)
            if ln is not None:
                raise ExportError("%s field %r: VarLenSparseFeat with length_name=%r is not supported: "
                                  "towerrt pools multi-id fields with id-0 masking only "
                                  "(length_name=None)" % (side, name, ln))
            comb = getattr(c, "combiner", "mean")
            if comb not in COMBINERS:
                raise ExportError("%s field %r: combiner %r is not one of mean, sum, max" % (side, name, comb))
            out.append(FieldSpec(name, side, "multi", vocab=vocab, dim=int(dim), maxlen=int(c.maxlen),
                                 combiner=comb, embedding_name=emb, order=i))
    return out


# Stand-ins for the reference's feature column namedtuples, used to unpickle
# column lists without the reference code on the path.
_DEFAULT_GROUP = "default_group"


class SparseFeat(collections.namedtuple("SparseFeat", ["name", "vocabulary_size", "embedding_dim", "use_hash",
                                                       "dtype", "embedding_name", "group_name"])):
    def __new__(cls, name, vocabulary_size, embedding_dim=4, use_hash=False, dtype="int32",
                embedding_name=None, group_name=_DEFAULT_GROUP):
        if embedding_name is None:
            embedding_name = name
        if embedding_dim == "auto":
            embedding_dim = 6 * int(pow(vocabulary_size, 0.25))
        return super(SparseFeat, cls).__new__(cls, name, vocabulary_size, embedding_dim, use_hash, dtype,
                                              embedding_name, group_name)


class VarLenSparseFeat(collections.namedtuple("VarLenSparseFeat", ["sparsefeat", "maxlen", "combiner",
                                                                   "length_name"])):
    def __new__(cls, sparsefeat, maxlen, combiner="mean", length_name=None):
        return super(VarLenSparseFeat, cls).__new__(cls, sparsefeat, maxlen, combiner, length_name)

    name = property(lambda self: self.sparsefeat.name)
    vocabulary_size = property(lambda self: self.sparsefeat.vocabulary_size)
    embedding_dim = property(lambda self: self.sparsefeat.embedding_dim)
    embedding_name = property(lambda self: self.sparsefeat.embedding_name)
    use_hash = property(lambda self: self.sparsefeat.use_hash)
    dtype = property(lambda self: self.sparsefeat.dtype)
    group_name = property(lambda self: self.sparsefeat.group_name)


class DenseFeat(collections.namedtuple("DenseFeat", ["name", "dimension", "dtype"])):
    def __new__(cls, name, dimension=1, dtype="float32"):
        return super(DenseFeat, cls).__new__(cls, name, dimension, dtype)


_STANDINS = {"SparseFeat": SparseFeat, "VarLenSparseFeat": VarLenSparseFeat, "DenseFeat": DenseFeat}
_SAFE_MODULES = {"builtins", "__builtin__", "collections", "copyreg", "copy_reg"}


class _ColumnUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if name in _STANDINS:
            return _STANDINS[name]
        if module in _SAFE_MODULES and name in ("list", "tuple", "dict", "OrderedDict", "set",
                                                "_reconstructor", "__newobj__", "object", "int",
                                                "str", "float", "bool"):
            return super(_ColumnUnpickler, self).find_class(module, name)
        raise ExportError("the pickle refers to %s.%s; only lists of SparseFeat / VarLenSparseFeat / "
                          "DenseFeat (and dicts/lists/tuples of them) are accepted" % (module, name))


def load_pickled_columns(path):
    """-> (user_columns, item_columns). The pickle holds {'user': [...],
    'item': [...]} (also 'user_feature_columns'/'item_feature_columns', and
    optional heads keys) or a 2-element list/tuple [user_columns, item_columns]."""
    with open(path, "rb") as f:
        try:
            obj = _ColumnUnpickler(f).load()
        except ExportError:
            raise
        except Exception as e:  # noqa: BLE001
            raise ExportError("%s: cannot unpickle feature columns (%s)" % (path, e))
    extra = {}
    if isinstance(obj, dict):
        u = obj.get("user", obj.get("user_feature_columns"))
        it = obj.get("item", obj.get("item_feature_columns"))
        extra = {k: obj[k] for k in ("user_heads", "user_head", "item_heads", "item_head", "head_dim",
                                     "field_dim", "fe_layers", "task", "name") if k in obj}
    elif isinstance(obj, (list, tuple)) and len(obj) == 2 and all(isinstance(x, (list, tuple)) for x in obj):
        u, it = obj
    else:
        raise ExportError("%s: expected {'user': [...], 'item': [...]} or [user_columns, item_columns]" % path)
    if u is None or it is None:
        raise ExportError("%s: needs both user and item feature columns" % path)
    return list(u), list(it), extra


def load_config(path, log=None):
    """A JSON file (either layout) or a pickle of feature columns -> ExportConfig."""
    with open(path, "rb") as f:
        head = f.read(1)
    if head == b"\x80":
        u, it, extra = load_pickled_columns(path)
        cfg = ExportConfig(fields_from_columns(u, "user", log), fields_from_columns(it, "item", log))
        _apply_overrides(cfg, head_dim=_heads_from(extra, "head_dim", "field_dim"),
                         user_heads=_heads_from(extra, "user_heads", "user_head"),
                         item_heads=_heads_from(extra, "item_heads", "item_head"),
                         fe_layers=extra.get("fe_layers"), task=extra.get("task"), name=extra.get("name"),
                         fe_layers_from="the configuration")
        return cfg
    try:
        with open(path, "r") as f:
            obj = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise ExportError("%s: not valid JSON (%s) and not a pickle" % (path, e))
    return config_from_json(obj, path)


def _apply_overrides(cfg, head_dim=None, user_heads=None, item_heads=None, fe_layers=None, task=None,
                     name=None, fe_layers_from="--fe-layers"):
    if head_dim is not None:
        cfg.head_dim = _posint(head_dim, "head_dim")
    if user_heads is not None:
        cfg.user_heads = _posint(user_heads, "user_heads")
    if item_heads is not None:
        cfg.item_heads = _posint(item_heads, "item_heads")
    if fe_layers is not None:
        cfg.fe_layers = list(fe_layers)
        cfg.fe_layers_from = fe_layers_from
    if task is not None:
        if task not in ("binary", "regression"):
            raise ExportError("task must be binary or regression, got %r" % task)
        cfg.task = task
    if name is not None:
        cfg.name = name


# --------------------------------------------------------------------------
# state dict

def _to_array(name, v):
    """A tensor-like value -> tf.NpyArray."""
    if isinstance(v, tf.NpyArray):
        return v
    if hasattr(v, "detach") and hasattr(v, "dtype"):      # torch.Tensor
        t = v.detach().cpu().contiguous()
        shape = tuple(t.shape)
        if t.is_floating_point():
            t = t.float()
            try:
                data = t.numpy().tobytes()
                if sys.byteorder != "little":
                    data = tf.f32_bytes(t.reshape(-1).tolist())
            except Exception:  # noqa: BLE001 - torch without numpy
                data = tf.f32_bytes(t.reshape(-1).tolist())
            return tf.NpyArray(shape, "<f4", data)
        return tf.make_array([int(x) for x in t.reshape(-1).tolist()], shape, "<i8")
    if hasattr(v, "dtype") and hasattr(v, "tobytes") and hasattr(v, "shape"):   # numpy
        import numpy as np  # only reached when given numpy arrays
        a = np.ascontiguousarray(v)
        if a.dtype.kind == "f":
            a = a.astype("<f4")
        return tf.NpyArray(a.shape, a.dtype.str, a.tobytes())
    raise ExportError("state_dict entry %r: unsupported value type %s" % (name, type(v).__name__))


def load_state_dict(src, log=None):
    """Path (.npz: standard library; anything else: torch.load) or mapping ->
    ordered dict name -> tf.NpyArray."""
    if isinstance(src, (str, os.PathLike)):
        path = os.fspath(src)
        if not os.path.exists(path):
            raise ExportError("weights file %s does not exist" % path)
        with open(path, "rb") as f:
            magic = f.read(4)
        if magic == b"PK\x03\x04" and (path.endswith(".npz") or _is_npz(path)):
            try:
                raw = tf.read_npz(path)
            except tf.FormatError as e:
                raise ExportError(str(e))
        else:
            try:
                import torch
            except ImportError:
                raise ExportError("%s is not an .npz file, and reading it needs PyTorch, which is not "
                                  "installed here; convert it to .npz (numpy.savez(path, **{k: v.numpy() "
                                  "for k, v in state_dict.items()}))" % path)
            try:
                raw = torch.load(path, map_location="cpu")
            except Exception as e:  # noqa: BLE001
                raise ExportError("%s: torch.load failed: %s" % (path, e))
            if hasattr(raw, "state_dict") and callable(raw.state_dict):
                raw = raw.state_dict()
            if isinstance(raw, dict):
                for k in ("state_dict", "model_state_dict", "model"):
                    if k in raw and isinstance(raw[k], dict):
                        raw = raw[k]
                        break
    else:
        raw = src
    if not hasattr(raw, "items"):
        raise ExportError("the weights are not a state_dict (a mapping name -> tensor)")
    keys = list(raw.keys())
    if keys and all(k.startswith("module.") for k in keys):
        if log:
            log("note: stripping the 'module.' prefix (DataParallel) from all tensor names")
        raw = collections.OrderedDict((k[len("module."):], v) for k, v in raw.items())
    return collections.OrderedDict((k, _to_array(k, v)) for k, v in raw.items())


def _is_npz(path):
    import zipfile
    try:
        with zipfile.ZipFile(path) as z:
            return all(n.endswith(".npy") for n in z.namelist())
    except zipfile.BadZipFile:
        return False


def provenance(weights, config, record=True):
    """-> (general.source, extra META entries, default model name). Only file
    names and sha256 are recorded, never a directory: a shipped model must not
    carry the exporting machine's layout. record=False: nothing about the files."""
    is_path = lambda x: isinstance(x, (str, os.PathLike))  # noqa: E731
    name = os.path.splitext(os.path.basename(os.fspath(weights)))[0] if is_path(weights) else None
    if not record:
        return "not recorded", [], name
    if not is_path(weights):
        return "in-memory state_dict", [], name
    digest = sha256_file(os.fspath(weights))
    extra = [("export.weights_sha256", tf.META_STRING, digest)]
    if is_path(config):
        extra.append(("export.config", tf.META_STRING, os.path.basename(os.fspath(config))))
        extra.append(("export.config_sha256", tf.META_STRING, sha256_file(os.fspath(config))))
    return "%s sha256:%s" % (os.path.basename(os.fspath(weights)), digest), extra, name


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------
# export

class _Weights(object):
    """Tracks which state_dict entries are used and checks shapes."""

    def __init__(self, sd):
        self.sd = sd
        self.used = []

    def has(self, name):
        return name in self.sd

    def get(self, name, shape, why):
        if name not in self.sd:
            near = [k for k in self.sd if k.split(".")[0] == name.split(".")[0]]
            hint = ""
            if near:
                hint = " (state_dict has %s)" % ", ".join(near[:6] + (["..."] if len(near) > 6 else []))
            raise ExportError("missing tensor %s: %s, expected shape %s%s" % (name, why, _shp(shape), hint))
        a = self.sd[name]
        if shape is not None and tuple(a.shape) != tuple(shape):
            if not (tuple(shape) == (1,) and tuple(a.shape) == ()):
                raise ExportError("tensor %s has shape %s, expected %s (%s)" % (name, _shp(a.shape), _shp(shape), why))
        if a.descr[1:] not in ("f4", "f8", "f2"):
            raise ExportError("tensor %s has dtype %s; expected floating point" % (name, a.descr))
        if name not in self.used:
            self.used.append(name)
        return a

    def shape(self, name):
        return tuple(self.sd[name].shape)


def _shp(s):
    return "(" + ", ".join(str(x) for x in s) + ("," if len(s) == 1 else "") + ")"


def _layer_count(w, prefix, what):
    n = 0
    while w.has("%s.linears.%d.weight" % (prefix, n)):
        n += 1
    stray = [k for k in w.sd if k.startswith(prefix + ".linears.")
             and k.split(".")[2].isdigit() and int(k.split(".")[2]) >= n]
    if stray:
        raise ExportError("%s: %s.linears.%d.weight is missing but %s exists (layers must be numbered 0..n-1)"
                          % (what, prefix, n, stray[0]))
    if n == 0:
        raise ExportError("missing tensor %s.linears.0.weight: the %s has no layers" % (prefix, what))
    return n


def _fe_indices(w, prefix):
    idx = set()
    for k in w.sd:
        parts = k.split(".")
        if len(parts) == 4 and parts[0] == prefix and parts[1] == "Fe_linears" and parts[2].isdigit():
            idx.add(int(parts[2]))
    return sorted(idx)


# --------------------------------------------------------------------------
# which user FE layers the checkpoint was trained with (docs/exporter.md,
# "Which FE layers a checkpoint was trained with")
#
# In the reference User_Fe_DNN, Fe_linears[i] projects the INPUT of user layer
# i, so user layer j (Linear + BatchNorm) receives a gradient only if some FE
# layer i > j scores, and Fe_linears[i] only if layer i scores. Parameters that
# never receive a gradient keep their initial values under Adam/SGD: BatchNorm
# weight 1 and bias 0 exactly, Fe_linears inside PyTorch's nn.Linear init range
# |x| <= 1/sqrt(fan_in). Running statistics are no evidence: every training
# forward pass updates them, scored or not.

FE_INIT_SLACK = 1e-6   # relative slack on the init bound (float32 rounding of the bound)


class FeEvidence(object):
    """trained / untrained: user FE layers proven by the checkpoint; looks_untrained:
    layers whose projection is still inside its init range (suggestive only);
    contradiction: a reason the evidence cannot be used (or None); reasons: log lines."""

    def __init__(self):
        self.trained, self.untrained, self.looks_untrained = set(), set(), set()
        self.contradiction = None
        self.reasons = []

    def complete(self, user_fe):
        return not self.looks_untrained and set(user_fe) <= (self.trained | self.untrained)


def _bn_at_init(sd, j):
    w = sd.get("user_fe_dnn.bn.%d.weight" % j)
    b = sd.get("user_fe_dnn.bn.%d.bias" % j)
    if w is None or b is None:
        return False
    return all(v == 1.0 for v in w.tolist_flat()) and all(v == 0.0 for v in b.tolist_flat())


def _fe_inside_init(sd, i):
    w = sd["user_fe_dnn.Fe_linears.%d.weight" % i]
    bound = (1.0 + FE_INIT_SLACK) / (w.shape[1] ** 0.5)
    vals = w.tolist_flat() + sd["user_fe_dnn.Fe_linears.%d.bias" % i].tolist_flat()
    return max(abs(v) for v in vals) <= bound


def _layers_text(ls):
    ls = sorted(ls)
    return "%d" % ls[0] if len(ls) == 1 else "%s and %d" % (", ".join(str(x) for x in ls[:-1]), ls[-1])


def _bn_evidence(sd, n_layers, user_fe, ev):
    """BatchNorm at init on user layers t.. only proves: FE layer t scored, none deeper."""
    at_init = [j for j in range(n_layers) if _bn_at_init(sd, j)]
    if not at_init:
        ev.reasons.append("every user BatchNorm has moved from its initial weight 1 / bias 0, so it says "
                          "nothing (with the reference fe_score the last user layer gets no gradient)")
        return
    t = at_init[0]
    if at_init != list(range(t, n_layers)):
        ev.contradiction = ("user BatchNorm %s at their initial weight 1 / bias 0 but %s trained: not a suffix "
                            "of the tower, which no choice of FE layers gives"
                            % (_layers_text(at_init), _layers_text(set(range(at_init[-1])) - set(at_init))))
        return
    if t not in user_fe:
        ev.contradiction = ("user BatchNorm says FE layer %d scored but the checkpoint has no "
                            "user_fe_dnn.Fe_linears.%d" % (t, t))
        return
    ev.trained.add(t)
    ev.untrained |= set(i for i in user_fe if i > t)
    ev.reasons.append("user BatchNorm %s at exactly weight 1 / bias 0 in every channel (never received a "
                      "gradient)%s: FE layer %d scored and none deeper"
                      % (_layers_text(at_init), "" if t == 0 else ", BatchNorm %s trained" % _layers_text(range(t)),
                         t))


def fe_evidence(sd, n_layers, user_fe):
    """-> FeEvidence for the user FE layers user_fe of a tower of n_layers."""
    ev = FeEvidence()
    if any(k.startswith("user_fe_dnn.bn.") for k in sd):
        _bn_evidence(sd, n_layers, user_fe, ev)
    else:
        ev.reasons.append("no user BatchNorm in the checkpoint: only the FE projections are evidence")
    inside = [i for i in user_fe if _fe_inside_init(sd, i)]
    outside = [i for i in user_fe if i not in inside]
    bad = [i for i in outside if i in ev.untrained]
    if bad and ev.contradiction is None:
        ev.contradiction = ("user Fe_linears.%d has left its initial range but the BatchNorm says FE layer %d "
                            "never scored" % (bad[0], bad[0]))
    if ev.contradiction:
        ev.trained, ev.untrained = set(), set()
        return ev
    if outside:
        ev.trained |= set(outside)
        ev.reasons.append("user Fe_linears.%s %s values beyond PyTorch's initial range 1/sqrt(fan_in): trained"
                          % (_layers_text(outside), "has" if len(outside) == 1 else "have"))
    ev.looks_untrained = set(i for i in inside if i not in ev.trained and i not in ev.untrained)
    if ev.looks_untrained:
        ev.reasons.append("user Fe_linears.%s still inside PyTorch's initial range 1/sqrt(fan_in): "
                          "probably never trained" % _layers_text(ev.looks_untrained))
    return ev


def choose_fe_layers(sd, n_layers, user_fe, given, given_from, log):
    """The FE layers to record: given (an option or the configuration) always wins;
    else the checkpoint's evidence where it settles every layer; else the
    reference default [0, 1, 2] less the layers proven untrained, plus those
    proven trained. Logs which, and warns where the evidence disagrees or is
    only suggestive. -> (fe_layers, origin)"""
    ev = fe_evidence(sd, n_layers, user_fe)
    why = "; ".join(ev.reasons)
    if given is not None:
        fe = sorted(set(given))
        wrong = (set(fe) & ev.untrained) | (ev.trained - set(fe))
        if ev.contradiction:
            log("note: fe_layers %s from %s; the checkpoint's own evidence is contradictory (%s)"
                % (fe, given_from, ev.contradiction))
        elif wrong:
            log("warning: fe_layers %s from %s contradict the checkpoint, which shows FE layers %s trained%s (%s); "
                "using %s as given" % (fe, given_from, sorted(ev.trained),
                                       " and %s never scored" % sorted(ev.untrained) if ev.untrained else "", why, fe))
        elif set(fe) & ev.looks_untrained:
            log("warning: fe_layers %s from %s include %s, which look untrained (%s); using %s as given"
                % (fe, given_from, sorted(set(fe) & ev.looks_untrained), why, fe))
        else:
            log("note: fe_layers %s from %s, consistent with the checkpoint (%s)" % (fe, given_from, why))
        return fe, given_from
    default = [i for i in DEFAULT_FE_LAYERS if i < n_layers]
    if ev.contradiction:
        log("warning: the checkpoint's evidence on its FE layers is contradictory (%s); using the reference "
            "default %s: give --fe-layers if the model was trained otherwise" % (ev.contradiction, default))
        return default, "default (evidence contradictory)"
    if ev.complete(user_fe) and ev.trained:
        fe = sorted(ev.trained)
        log("fe_layers %s inferred from the checkpoint (unambiguous): %s" % (fe, why))
        return fe, "checkpoint (unambiguous)"
    fe = sorted((set(default) - ev.untrained) | ev.trained)
    guess = sorted(set(fe) - ev.looks_untrained) or fe
    if set(fe) & ev.looks_untrained:
        log("warning: fe_layers %s (the reference default%s), but the checkpoint suggests %s: %s. If the model "
            "was trained with FE layers %s, export with --fe-layers %s"
            % (fe, "" if fe == default else " less what the checkpoint rules out", guess, why, guess,
               ",".join(str(x) for x in guess)))
        return fe, "default (checkpoint suggests %s)" % guess
    log("fe_layers %s: the reference default%s (%s)" % (fe, "" if fe == default else ", corrected by the checkpoint",
                                                        why))
    return fe, "default"


def build_model(sd, cfg, source="", log=None, extra_meta=(), record_fe_origin=False):
    """state_dict (name -> NpyArray) + ExportConfig -> tf.Model. record_fe_origin: add
    export.fe_layers_from (where inttower.fe_layers came from) to META."""
    log = log or (lambda m: None)
    w = _Weights(sd)
    fields_out = []
    table_names = []       # in field order; tensor index resolved later
    side_info = {}
    for side in SIDES:
        flds = cfg.fields(side)
        names = [f.name for f in cfg.columns[side]]
        dup = set(n for n in names if names.count(n) > 1)
        if dup:
            raise ExportError("%s side: field %s appears twice" % (side, sorted(dup)[0]))
        idf = [f for f in flds if f.kind != "dense"]
        if not idf:
            raise ExportError("%s side has no id fields; Light-SE needs at least one" % side)
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
            if cfg.embedding_dim is not None and d != cfg.embedding_dim:
                raise ExportError("tensor %s has embedding dim %d but the config says embedding_dim %d"
                                  % (tname, d, cfg.embedding_dim))
            dims.add(d)
            f._rows, f._d, f._table = rows, d, tname
        if len(dims) > 1:
            raise ExportError("%s side: id fields have different embedding dims %s; Light-SE needs one dim (%s)"
                              % (side, sorted(dims), ", ".join("%s:%d" % (f.name, f._d) for f in idf)))
        d = dims.pop()
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


def export_inttower(weights, out_path, config=None, user_columns=None, item_columns=None,
                    head_dim=None, user_heads=None, item_heads=None, fe_layers=None, task=None,
                    name=None, log=None, provenance_record=True):
    """Export and write out_path. weights: path or mapping; config: path,
    parsed JSON dict or ExportConfig; or user_columns + item_columns (the
    reference's feature column objects). provenance_record=False: no file
    names or checksums in META. Returns the tf.Model written."""
    if log is None:
        def log(m):
            sys.stderr.write("export_inttower: %s\n" % m)
    if isinstance(config, ExportConfig):
        cfg = config
    elif isinstance(config, dict):
        cfg = config_from_json(config)
    elif config is not None:
        cfg = load_config(config, log)
    elif user_columns is not None and item_columns is not None:
        cfg = ExportConfig(fields_from_columns(user_columns, "user", log),
                           fields_from_columns(item_columns, "item", log))
    else:
        raise ExportError("no feature configuration: give config= or user_columns= and item_columns=")
    _apply_overrides(cfg, head_dim, user_heads, item_heads, fe_layers, task, name)
    sd = load_state_dict(weights, log)
    source, extra, default_name = provenance(weights, config, provenance_record)
    if cfg.name is None:
        cfg.name = default_name
    model = build_model(sd, cfg, source=source, log=log, extra_meta=extra, record_fe_origin=True)
    try:
        tf.write_twr(out_path, model)
    except tf.FormatError as e:
        raise ExportError(str(e))
    return model


def _parse_layers(s):
    try:
        return [int(x) for x in s.replace(" ", "").split(",") if x != ""]
    except ValueError:
        raise argparse.ArgumentTypeError("expected a comma-separated list of layer indices, e.g. 0,1,2")


def main(argv=None):
    # Two-tower family hook: --arch dssm|dat (and --arch inttower) is handled
    # by tools/export_family.py (docs/family.md).
    args = sys.argv[1:] if argv is None else list(argv)
    if any(x == "--arch" or x.startswith("--arch=") for x in args):
        import export_family
        return export_family.main(args)
    ap = argparse.ArgumentParser(prog="export_inttower.py",
                                 description="Export a reference IntTower state_dict to a towerrt .twr model.")
    ap.add_argument("--weights", required=True, help="state_dict: .npz (stdlib) or .pt (needs torch)")
    ap.add_argument("--config", required=True,
                    help="feature configuration: JSON (script layout or general layout) or a pickle of "
                         "feature column lists")
    ap.add_argument("--out", "-o", required=True, help="output .twr")
    ap.add_argument("--fe-layers", type=_parse_layers, default=None,
                    help="user FE layers the model was trained with (default: the config's, else what "
                         "the checkpoint proves (docs/exporter.md), else the reference fe_score's 0,1,2 "
                         "clipped to the tower depth; 0 for the README's 'Accelerate' variant)")
    ap.add_argument("--user-heads", type=int)
    ap.add_argument("--item-heads", type=int)
    ap.add_argument("--head-dim", type=int, help="dims per head (the reference's field_dim)")
    ap.add_argument("--task", choices=("binary", "regression"))
    ap.add_argument("--name")
    ap.add_argument("--no-provenance", action="store_true",
                    help="record no file names or checksums (general.source 'not recorded')")
    ap.add_argument("--quiet", "-q", action="store_true", help="no notes on stderr (warnings still)")
    a = ap.parse_args(argv)

    def log(m):
        if not a.quiet or m.startswith("warning"):
            sys.stderr.write("export_inttower: %s\n" % m)
    try:
        model = export_inttower(a.weights, a.out, config=a.config, head_dim=a.head_dim, user_heads=a.user_heads,
                                item_heads=a.item_heads, fe_layers=a.fe_layers, task=a.task, name=a.name, log=log,
                                provenance_record=not a.no_provenance)
    except (ExportError, tf.FormatError, OSError) as e:
        sys.stderr.write("export_inttower: error: %s\n" % e)
        return 1
    m = model.meta
    log("wrote %s: %d fields, %d tensors, %d graph nodes; %d user heads, %d item heads x %d dims; fe_layers %s"
        % (a.out, len(model.fields), len(model.tensors), len(model.graph), m["inttower.user_heads"],
           m["inttower.item_heads"], m["inttower.head_dim"], m["inttower.fe_layers"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
