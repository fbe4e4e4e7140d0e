"""towerrt from Python: serve IntTower two-tower models on CPUs.

    import numpy as np, towerrt
    model = towerrt.Model("model.twr")
    items = towerrt.Items("items.twi")
    sess = towerrt.Session(model, items)
    scores = sess.score(user_ids, user_dense, item_ids)          # float32[k]
    scores, ids = sess.score_topn(user_ids, user_dense, item_ids, 10)

Arrays go to the C library without copies: they must be numpy arrays of
the exact dtype (int64 feature ids, uint64 item ids, float32 values) and
C-contiguous; anything else raises TypeError / ValueError naming the
argument. Every call releases the GIL. Every towerrt status is raised as a
TowerrtError subclass (e.g. UnknownItemError) carrying `status` (the C name,
"TOWERRT_ERR_UNKNOWN_ITEM") and `message` (what the library said).

A Session is used by one thread at a time (create one per thread, as in
C); calls on one Session from several threads are serialised by a lock.
"""

from __future__ import annotations

import os
import threading
from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from . import _towerrt as _c

__all__ = [
    "Model", "Items", "Session", "TowerrtError", "version", "Field", "ItemsBuilder", "merge_items", "item_shard",
    "InvalidArgumentError", "IOFailureError", "TruncatedError", "BadMagicError", "VersionError",
    "ChecksumError", "FormatError", "ShapeError", "NonFiniteError", "UnsupportedError",
    "IdOutOfRangeError", "UnknownItemError", "EmptyRequestError", "LimitError", "MismatchError",
    "NoMemoryError", "NoItemsError",
]

PathLike = Union[str, "os.PathLike[str]"]


class TowerrtError(Exception):
    """A towerrt call failed. `status`: the C status name; `message`: the library's message."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__("%s: %s" % (status, message))
        self.status = status
        self.message = message


class InvalidArgumentError(TowerrtError):
    """TOWERRT_ERR_INVALID_ARGUMENT: null pointer, bad option value."""


class IOFailureError(TowerrtError):
    """TOWERRT_ERR_IO: open/stat/mmap/write failed."""


class TruncatedError(TowerrtError):
    """TOWERRT_ERR_TRUNCATED: file shorter than what it declares."""


class BadMagicError(TowerrtError):
    """TOWERRT_ERR_BAD_MAGIC: not a towerrt file of that kind."""


class VersionError(TowerrtError):
    """TOWERRT_ERR_VERSION: format version not supported."""


class ChecksumError(TowerrtError):
    """TOWERRT_ERR_CHECKSUM: a CRC does not match."""


class FormatError(TowerrtError):
    """TOWERRT_ERR_FORMAT: malformed structure."""


class ShapeError(TowerrtError):
    """TOWERRT_ERR_SHAPE: tensor or input shape mismatch."""


class NonFiniteError(TowerrtError):
    """TOWERRT_ERR_NONFINITE: NaN or Inf in weights, inputs or scores."""


class UnsupportedError(TowerrtError):
    """TOWERRT_ERR_UNSUPPORTED: dtype, op or feature not supported."""


class IdOutOfRangeError(TowerrtError):
    """TOWERRT_ERR_ID_OUT_OF_RANGE: feature id beyond its vocabulary."""


class UnknownItemError(TowerrtError):
    """TOWERRT_ERR_UNKNOWN_ITEM: candidate id not in the item store."""


class EmptyRequestError(TowerrtError):
    """TOWERRT_ERR_EMPTY_REQUEST: k = 0."""


class LimitError(TowerrtError):
    """TOWERRT_ERR_LIMIT: k, n or another size above the planned maximum."""


class MismatchError(TowerrtError):
    """TOWERRT_ERR_MISMATCH: item store built for another model."""


class NoMemoryError(TowerrtError):
    """TOWERRT_ERR_NO_MEMORY."""


class NoItemsError(TowerrtError):
    """TOWERRT_ERR_NO_ITEMS: scoring by id on a session without an item store."""


# Indexed by status code; checked against the library's own names at import.
_ERROR_TABLE = (
    ("TOWERRT_OK", TowerrtError), ("TOWERRT_ERR_INVALID_ARGUMENT", InvalidArgumentError),
    ("TOWERRT_ERR_IO", IOFailureError), ("TOWERRT_ERR_TRUNCATED", TruncatedError),
    ("TOWERRT_ERR_BAD_MAGIC", BadMagicError), ("TOWERRT_ERR_VERSION", VersionError),
    ("TOWERRT_ERR_CHECKSUM", ChecksumError), ("TOWERRT_ERR_FORMAT", FormatError),
    ("TOWERRT_ERR_SHAPE", ShapeError), ("TOWERRT_ERR_NONFINITE", NonFiniteError),
    ("TOWERRT_ERR_UNSUPPORTED", UnsupportedError), ("TOWERRT_ERR_ID_OUT_OF_RANGE", IdOutOfRangeError),
    ("TOWERRT_ERR_UNKNOWN_ITEM", UnknownItemError), ("TOWERRT_ERR_EMPTY_REQUEST", EmptyRequestError),
    ("TOWERRT_ERR_LIMIT", LimitError), ("TOWERRT_ERR_MISMATCH", MismatchError),
    ("TOWERRT_ERR_NO_MEMORY", NoMemoryError), ("TOWERRT_ERR_NO_ITEMS", NoItemsError))
if tuple(n for n, _ in _ERROR_TABLE) != tuple(_c.status_names()):
    raise ImportError("towerrt: the exception table does not match the library's statuses %r" % (_c.status_names(),))
_ERRORS = tuple(e for _, e in _ERROR_TABLE)
_c._set_errors(_ERRORS)

_PRECISIONS = {"f32": 0, "bf16": 1, "int8": 2}
_PRECISION_NAMES = {v: k for k, v in _PRECISIONS.items()}
_VERIFY = {"all": 0, "structure": 1}


def version() -> str:
    """Version of the linked towerrt library ("0.1.0")."""
    return _c.version()


_I64, _U64, _F32 = np.dtype(np.int64), np.dtype(np.uint64), np.dtype(np.float32)


def _array(a: object, name: str, dtype: type, shape: Tuple[int, ...]) -> np.ndarray:
    """`a` itself if it is a C-contiguous numpy array of `dtype` holding
    prod(shape) elements in shape `shape` (or flat); else a clear error."""
    # the common case first: one attribute test each (this runs per request)
    if type(a) is np.ndarray and a.dtype is dtype and a.shape == shape and a.flags.c_contiguous:
        return a
    if not isinstance(a, np.ndarray):
        raise TypeError("%s: a numpy array of dtype %s is required, got %s" % (name, np.dtype(dtype).name, type(a).__name__))
    if a.dtype != dtype:
        raise TypeError("%s: dtype %s is required, got %s (convert with .astype(np.%s))"
                        % (name, np.dtype(dtype).name, a.dtype, np.dtype(dtype).name))
    if not a.flags.c_contiguous:
        raise ValueError("%s: a C-contiguous array is required (np.ascontiguousarray makes one)" % name)
    want = 1
    for d in shape:
        want *= d
    if a.size != want or (a.ndim > 1 and a.shape != shape):
        raise ValueError("%s: shape %s expected, got %s" % (name, shape, a.shape))
    return a


def _dense(a: Optional[np.ndarray], name: str, shape: Tuple[int, ...]) -> Optional[np.ndarray]:
    if shape[-1] == 0:
        if a is not None and a.size:
            raise ValueError("%s: the model has no dense values on this side; pass None" % name)
        return None
    if a is None:
        raise ValueError("%s: %s float32 values are required" % (name, shape))
    return _array(a, name, np.float32, shape)


def _ids(a: object, name: str) -> np.ndarray:
    if type(a) is np.ndarray and a.dtype is _U64 and a.ndim == 1 and a.flags.c_contiguous:
        return a
    if not isinstance(a, np.ndarray) or a.ndim != 1:
        raise TypeError("%s: a 1-D numpy array of dtype uint64 is required" % name)
    return _array(a, name, _U64, (a.shape[0],))


class Model:
    """A loaded .twr model (towerrt_model_load). Immutable, shared by any
    number of Sessions and threads.

    isa: None / "auto" (best for this CPU), "scalar", "avx2", ...;
    verify_checksums: check every section CRC at load."""

    def __init__(self, path: PathLike, *, isa: Optional[str] = None, verify_checksums: bool = True) -> None:
        self.path = os.fspath(path)
        self._h = _c.model_load(self.path, {"isa": isa, "verify_checksums": int(verify_checksums)})
        info = _c.model_info(self._h)
        self.user_id_slots: int = info["user_id_slots"]
        self.user_dense_width: int = info["user_dense_width"]
        self.item_id_slots: int = info["item_id_slots"]
        self.item_dense_width: int = info["item_dense_width"]
        self.fe_layer_mask: int = info["fe_layer_mask"]
        self.isa: str = info["isa"]

    def describe(self) -> str:
        """Metadata, fields, tensors and the compiled plan, as text."""
        return _c.model_describe(self._h)

    @property
    def fields(self) -> List["Field"]:
        """The input fields in FIELDS order (docs/format.md): a side's
        feature row is its id fields' slots, then its dense fields' values."""
        return [Field(n, "user" if side == 0 else "item", _KINDS[kind], width, vocab)
                for n, side, kind, width, vocab in _c.model_fields(self._h)]

    def item_fields(self) -> List["Field"]:
        """The item side's fields, in feature-row order."""
        return [f for f in self.fields if f.side == "item"]

    def build_items(self, path: PathLike, item_ids: np.ndarray, ids: np.ndarray,
                    dense: Optional[np.ndarray] = None) -> "Items":
        """Runs the item tower over n items and writes an item store (.twi)
        at `path`; returns it loaded. item_ids: uint64[n] (unique); ids:
        int64[n, item_id_slots]; dense: float32[n, item_dense_width] or None."""
        keys = _ids(item_ids, "item_ids")
        n = keys.shape[0]
        _c.items_build(self._h, _array(ids, "ids", _I64, (n, self.item_id_slots)),
                       _dense(dense, "dense", (n, self.item_dense_width)), keys, os.fspath(path))
        return Items(path)

    def quantize(self, path: PathLike, precision: str, calibration_ids: Optional[np.ndarray] = None,
                 calibration_dense: Optional[np.ndarray] = None) -> None:
        """Writes this model with its user tower in "bf16" or "int8" at
        `path` (docs/quantization.md). int8: optional calibration users,
        ids int64[n, user_id_slots] and dense float32[n, user_dense_width]."""
        p = _precision(precision)
        if calibration_ids is None:
            _c.model_quantize(self._h, p, None, None, 0, os.fspath(path))
            return
        n = calibration_ids.shape[0] if isinstance(calibration_ids, np.ndarray) and calibration_ids.ndim else 0
        _c.model_quantize(self._h, p, _array(calibration_ids, "calibration_ids", _I64, (n, self.user_id_slots)),
                          _dense(calibration_dense, "calibration_dense", (n, self.user_dense_width)), n, os.fspath(path))


def _precision(name: str) -> int:
    if name not in _PRECISIONS:
        raise ValueError("precision must be one of %s, got %r" % (sorted(_PRECISIONS), name))
    return _PRECISIONS[name]


_KINDS = ("single", "multi", "dense")


class Field(NamedTuple):
    """One input field: kind "single" / "multi" (ids, 0 pads) / "dense";
    width: id slots, or dense values; vocab: ids are 0..vocab-1 (0: dense)."""
    name: str
    side: str
    kind: str
    width: int
    vocab: int


def item_shard(item_ids: np.ndarray, n: int) -> np.ndarray:
    """The shard of each item id among n (towerrt's rule:
    (splitmix64(id) >> 32) % n), as uint64[len(item_ids)]."""
    keys = _ids(item_ids, "item_ids")
    out = np.empty(keys.shape[0], np.uint64)
    _c.item_shards(keys, int(n), out)
    return out


class ItemsBuilder:
    """A streaming item-store build (towerrt_items_builder_*): append
    batches of rows, then finish() writes `path` (PATH.tmp until then).

    tower_precision: the item tower's arithmetic ("f32"; "bf16"; "int8"
    breaks shard merges, see towerrt.h); threads: 0 = every core; shard:
    (i, n) keeps the rows of shard i of n; input_rows: with a shard, the
    whole input's row count, and rows then come with their input ordinals
    (a shard job that reads only its own rows). As a context manager, an
    exception aborts the build (no file is left)."""

    def __init__(self, model: Model, path: PathLike, *, tower_precision: str = "f32", threads: int = 0,
                 expected_rows: int = 0, shard: Optional[Tuple[int, int]] = None, input_rows: int = 0) -> None:
        self.model = model
        self.path = os.fspath(path)
        si, sn = shard if shard is not None else (0, 0)
        self._h = _c.builder_open(model._h, self.path, _precision(tower_precision), threads, expected_rows, si, sn,
                                  input_rows)
        self.rows = 0

    def append(self, item_ids: np.ndarray, ids: np.ndarray, dense: Optional[np.ndarray] = None,
               ordinals: Optional[np.ndarray] = None) -> int:
        """Adds n rows: item_ids uint64[n], ids int64[n, item_id_slots],
        dense float32[n, item_dense_width] (None if 0), ordinals uint64[n]
        (with input_rows). Returns the rows kept so far."""
        keys = _ids(item_ids, "item_ids")
        n = keys.shape[0]
        m = self.model
        ords = None if ordinals is None else _array(ordinals, "ordinals", _U64, (n,))
        self.rows = _c.builder_append(self._h, _array(ids, "ids", _I64, (n, m.item_id_slots)),
                                      _dense(dense, "dense", (n, m.item_dense_width)), keys, ords)
        return self.rows

    def finish(self) -> None:
        """Writes the store and renames it into place."""
        _c.builder_finish(self._h)

    def abort(self) -> None:
        """Drops the build (removes PATH.tmp)."""
        _c.builder_finish(self._h, True)

    def __enter__(self) -> "ItemsBuilder":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.finish()


def merge_items(model: Model, inputs: Sequence[PathLike], path: PathLike) -> None:
    """Merges item stores into `path`: the n shards of one sharded build
    (any order: the result is the single build byte for byte), or plain
    stores concatenated in order. f32, or bf16 / int8 shards quantized from
    f32 shards (no f32 store in between)."""
    _c.items_merge(model._h, [os.fspath(p) for p in inputs], os.fspath(path))


_CENTRINGS = ("none", "mean", "row-mean")  # towerrt_centring, in enum order


class Items:
    """A loaded item store (.twi): each item's FE heads, by item id.

    verify: "all" (default: every row and checksum) or "structure" (a
    trusted file: sizes and header only, no row read; docs/errors.md)."""

    def __init__(self, path: PathLike, *, verify: str = "all", verify_checksums: bool = True) -> None:
        if verify not in _VERIFY:
            raise ValueError("verify must be 'all' or 'structure', got %r" % (verify,))
        self.path = os.fspath(path)
        self._h = _c.items_load(self.path, {"items_verify": _VERIFY[verify], "verify_checksums": int(verify_checksums)})
        count, prec, centring = _c.items_info(self._h)
        self.count: int = count
        self.precision: str = _PRECISION_NAMES[prec]
        #: "none", "mean" or "row-mean" (docs/quantization.md "Centred stores")
        self.centring: str = _CENTRINGS[centring]

    def __len__(self) -> int:
        return self.count

    def quantize(self, path: PathLike, precision: str, centre: str = "default") -> "Items":
        """Writes a copy at "bf16" or "int8" precision to `path`; returns it
        loaded. centre: "default" (what `towerrt quantize` does: row-mean
        for int8 where the store allows it, none for bf16, shards and one-head
        stores; towerrt_items_default_centring), "none", "mean" or
        "row-mean" (docs/quantization.md "Centred stores")."""
        if centre != "default" and centre not in _CENTRINGS:
            raise ValueError("centre must be one of default, %s, got %r" % (", ".join(_CENTRINGS), centre))
        code = -1 if centre == "default" else _CENTRINGS.index(centre)
        _c.items_quantize(self._h, _precision(precision), os.fspath(path), code)
        return Items(path)

    @classmethod
    def _wrap(cls, handle, path: str, parts: tuple) -> "Items":
        self = cls.__new__(cls)
        self.path = path
        self._h = handle
        self._parts = parts  # keeps the Python objects alive with the overlay
        count, prec, centring = _c.items_info(handle)
        self.count = count
        self.precision = _PRECISION_NAMES[prec]
        self.centring = _CENTRINGS[centring]
        return self

    def make_delta(self, path: PathLike, changes: Optional["Items"] = None,
                   removed: Optional[np.ndarray] = None) -> "Items":
        """Writes a delta store over this base at `path`: the rows of
        `changes` (a store of the new / changed items, this model and
        precision) and tombstones for `removed` (uint64 ids). Returns it loaded."""
        rm = None if removed is None else _ids(removed, "removed")
        _c.items_make_delta(self._h, changes._h if changes is not None else None, rm, os.fspath(path))
        return Items(path)

    def overlay(self, deltas: Sequence["Items"]) -> "Items":
        """This base with the deltas applied (oldest first, newest wins; a
        tombstone makes an id unknown): a store that sessions score from."""
        h = _c.items_overlay(self._h, [d._h for d in deltas])
        return Items._wrap(h, self.path, (self,) + tuple(deltas))

    def compact(self, path: PathLike) -> "Items":
        """Writes this catalog (an overlay, or a plain store) as one plain
        store at `path` (== a full build of it: docs/item-stores.md); returns it loaded."""
        _c.items_compact(self._h, os.fspath(path))
        return Items(path)


class Session:
    """Scores requests for one model (and optionally an item store), like
    an ONNX Runtime InferenceSession: create one per thread.

    max_k: most candidates per request; max_topn: largest n of score_topn;
    skip_unknown_items: unknown candidate ids get NaN (score) or are left
    out (score_topn) instead of raising UnknownItemError, counted in
    `last_skipped`; output_logits: scores before the sigmoid;
    fe_layer_mask: score with these user FE layers (0: as trained)."""

    def __init__(self, model: Model, items: Optional[Items] = None, *, max_k: int = 100000, max_topn: int = 1024,
                 skip_unknown_items: bool = False, output_logits: bool = False, fe_layer_mask: int = 0,
                 allow_foreign_items: bool = False) -> None:
        self.model = model
        self.items = items  # the Python objects stay alive as long as the session
        opts = {"max_k": max_k, "max_topn": max_topn, "skip_unknown_items": int(skip_unknown_items),
                "output_logits": int(output_logits), "fe_layer_mask": fe_layer_mask,
                "allow_foreign_items": int(allow_foreign_items)}
        self._h = _c.session_create(model._h, items._h if items is not None else None, opts)
        self._lock = threading.Lock()
        self.user_heads_size: int = _c.session_info(self._h)[0]
        self.max_topn: int = _c.session_info(self._h)[1]

    @property
    def last_skipped(self) -> int:
        """Unknown candidates skipped by the last successful call (skip_unknown_items)."""
        return _c.session_info(self._h)[2]

    def set_items(self, items: Optional[Items]) -> None:
        """Swaps the item store (a catalog update); may be called from any
        thread, also while another thread scores on this session: a request
        in flight keeps the store it started with. Raises MismatchError for
        a store of another model."""
        _c.session_set_items(self._h, items._h if items is not None else None)
        self.items = items

    def _user(self, user_ids: np.ndarray, user_dense: Optional[np.ndarray], n: int = 1):
        m = self.model
        shape = (m.user_id_slots,) if n == 1 and getattr(user_ids, "ndim", 1) == 1 else (n, m.user_id_slots)
        ids = _array(user_ids, "user_ids", _I64, shape)
        dshape = (m.user_dense_width,) if len(shape) == 1 else (n, m.user_dense_width)
        return ids, _dense(user_dense, "user_dense", dshape)

    def _run(self, which: int, a, b, c, d, k: int, n: int, out_ids, out) -> None:
        with self._lock:
            _c.score(self._h, which, a, b, c, d, k, n, out_ids, out)

    def _out(self, out: Optional[np.ndarray], k: int) -> np.ndarray:
        return np.empty(k, np.float32) if out is None else _array(out, "out", _F32, (k,))

    def score(self, user_ids: np.ndarray, user_dense: Optional[np.ndarray], item_ids: np.ndarray,
              out: Optional[np.ndarray] = None) -> np.ndarray:
        """Scores of k candidates by item-store id: float32[k], in candidate
        order. user_ids: int64[user_id_slots]; user_dense:
        float32[user_dense_width] (None if 0); item_ids: uint64[k]; out: an
        optional float32[k] to write into (no allocation)."""
        uid, ud = self._user(user_ids, user_dense)
        keys = _ids(item_ids, "item_ids")
        res = self._out(out, keys.shape[0])
        self._run(_c.S_IDS, uid, ud, keys, None, keys.shape[0], 0, None, res)
        return res

    def score_topn(self, user_ids: np.ndarray, user_dense: Optional[np.ndarray], item_ids: np.ndarray,
                   n: int) -> Tuple[np.ndarray, np.ndarray]:
        """The n best candidates, ranked (score desc, then id asc): returns
        (scores float32[n], ids uint64[n]) like FAISS's search. Slots past
        the candidates hold NaN and 2**64-1 (n > k, or skipped ids)."""
        uid, ud = self._user(user_ids, user_dense)
        keys = _ids(item_ids, "item_ids")
        scores, ids = np.empty(n, np.float32), np.empty(n, np.uint64)
        self._run(_c.S_TOPN, uid, ud, keys, None, keys.shape[0], n, ids, scores)
        return scores, ids

    def _items(self, item_ids: np.ndarray, item_dense: Optional[np.ndarray]):
        m = self.model
        if not isinstance(item_ids, np.ndarray) or item_ids.ndim != 2:
            raise TypeError("item_ids: an int64 array of shape (k, %d) is required" % m.item_id_slots)
        k = item_ids.shape[0]
        return _array(item_ids, "item_ids", _I64, (k, m.item_id_slots)), \
            _dense(item_dense, "item_dense", (k, m.item_dense_width)), k

    def score_features(self, user_ids: np.ndarray, user_dense: Optional[np.ndarray], item_ids: np.ndarray,
                       item_dense: Optional[np.ndarray], out: Optional[np.ndarray] = None) -> np.ndarray:
        """Scores of k candidates given by features (the item tower runs
        online): item_ids int64[k, item_id_slots], item_dense
        float32[k, item_dense_width] (None if 0). Returns float32[k]."""
        uid, ud = self._user(user_ids, user_dense)
        iid, idn, k = self._items(item_ids, item_dense)
        res = self._out(out, k)
        self._run(_c.S_FEATURES, uid, ud, iid, idn, k, 0, None, res)
        return res

    def score_features_topn(self, user_ids: np.ndarray, user_dense: Optional[np.ndarray], item_ids: np.ndarray,
                            item_dense: Optional[np.ndarray], n: int) -> Tuple[np.ndarray, np.ndarray]:
        """score_topn for candidates given by features: the ids returned are
        candidate positions (0..k-1), ties going to the lower position."""
        uid, ud = self._user(user_ids, user_dense)
        iid, idn, k = self._items(item_ids, item_dense)
        scores, ids = np.empty(n, np.float32), np.empty(n, np.uint64)
        self._run(_c.S_FEATURES_TOPN, uid, ud, iid, idn, k, n, ids, scores)
        return scores, ids

    def user_heads(self, user_ids: np.ndarray, user_dense: Optional[np.ndarray]) -> np.ndarray:
        """The FE heads of n users (offline scoring): user_ids
        int64[n, user_id_slots], user_dense float32[n, user_dense_width];
        returns float32[n, user_heads_size]."""
        if not isinstance(user_ids, np.ndarray) or user_ids.ndim != 2:
            raise TypeError("user_ids: an int64 array of shape (n, %d) is required" % self.model.user_id_slots)
        n = user_ids.shape[0]
        uid, ud = self._user(user_ids, user_dense, n)
        res = np.empty((n, self.user_heads_size), np.float32)
        self._run(_c.S_USER_HEADS, uid, ud, None, None, n, 0, None, res)
        return res

    def score_heads(self, heads: np.ndarray, item_ids: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
        """score() with one user's heads (a row of user_heads) instead of features."""
        h = _array(heads, "heads", _F32, (self.user_heads_size,))
        keys = _ids(item_ids, "item_ids")
        res = self._out(out, keys.shape[0])
        self._run(_c.S_HEADS, h, None, keys, None, keys.shape[0], 0, None, res)
        return res

    def score_heads_topn(self, heads: np.ndarray, item_ids: np.ndarray, n: int) -> Tuple[np.ndarray, np.ndarray]:
        """score_topn() with one user's heads."""
        h = _array(heads, "heads", _F32, (self.user_heads_size,))
        keys = _ids(item_ids, "item_ids")
        scores, ids = np.empty(n, np.float32), np.empty(n, np.uint64)
        self._run(_c.S_HEADS_TOPN, h, None, keys, None, keys.shape[0], n, ids, scores)
        return scores, ids
