"""The feature configuration of an export (tools/export_inttower.py,
docs/exporter.md): the JSON layouts (the reference script's and the general
one), pickles of the reference's feature column lists (read with stand-in
classes, never the reference code), and the column objects themselves ->
ExportConfig (fields per side, heads, FE layers, task, name)."""

import collections
import json
import os
import pickle
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import towerrt_format as tf  # noqa: E402

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
