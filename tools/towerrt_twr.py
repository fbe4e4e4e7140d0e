"""The .twr model file, standard library only (docs/format.md): FIELDS,
TENSORS and GRAPH records, the Model objects, write_twr / read_twr and the
item fingerprint. towerrt_format.py re-exports every name; import that.
"""

import math
import struct

from towerrt_container import (ALIGN, MAGIC_MODEL, MODEL_SECTIONS, SEC_DATA, SEC_FIELDS, SEC_GRAPH,
                               SEC_META, SEC_TENSORS, FormatError, _cstr, _pack_name, _read_container,
                               _write_container, align_up, crc32, decode_meta, encode_meta, f32_values)

# FIELDS
SIDE_USER, SIDE_ITEM, SIDE_SCORE = 0, 1, 2
KIND_SINGLE, KIND_MULTI, KIND_DENSE = 0, 1, 2
KIND_NAMES = {KIND_SINGLE: "single", KIND_MULTI: "multi", KIND_DENSE: "dense"}
COMBINER_MEAN, COMBINER_SUM, COMBINER_MAX = 0, 1, 2
COMBINER_NAMES = {COMBINER_MEAN: "mean", COMBINER_SUM: "sum", COMBINER_MAX: "max"}

# TENSORS dtypes
DT_F32, DT_BF16, DT_F16, DT_S8, DT_U8, DT_S32 = 1, 2, 3, 4, 5, 6
DTYPE_SIZE = {DT_F32: 4, DT_BF16: 2, DT_F16: 2, DT_S8: 1, DT_U8: 1, DT_S32: 4}
DTYPE_NAMES = {DT_F32: "f32", DT_BF16: "bf16", DT_F16: "f16", DT_S8: "s8",
               DT_U8: "u8", DT_S32: "s32"}

# GRAPH ops
OP_EMBED, OP_LIGHTSE, OP_CONCAT_DENSE, OP_LINEAR = 1, 2, 3, 4
OP_FE_PROJ, OP_MAXSIM, OP_SUM, OP_PREDICT = 5, 6, 7, 8
OP_NAMES = {1: "EMBED", 2: "LIGHTSE", 3: "CONCAT_DENSE", 4: "LINEAR",
            5: "FE_PROJ", 6: "MAXSIM", 7: "SUM", 8: "PREDICT"}
FLAG_RELU, FLAG_BN = 1, 2

FIELD_RECORD_SIZE = 96
TENSOR_RECORD_SIZE = 128
NODE_RECORD_SIZE = 64

_FIELD = struct.Struct("<64sIIIIIIiI")
_TENSOR = struct.Struct("<80sII4IQQiI")
_NODE = struct.Struct("<IIiI2ii6if2i")
assert _FIELD.size == 96 and _TENSOR.size == 128 and _NODE.size == 64


class Field(object):
    __slots__ = ("name", "side", "kind", "vocab", "dim", "slots", "combiner", "table")

    def __init__(self, name, side, kind, vocab, dim, slots, combiner=0, table=-1):
        self.name, self.side, self.kind = name, side, kind
        self.vocab, self.dim, self.slots = vocab, dim, slots
        self.combiner, self.table = combiner, table

    def __repr__(self):
        return ("Field(%r, side=%d, kind=%s, vocab=%d, dim=%d, slots=%d, combiner=%s, table=%d)"
                % (self.name, self.side, KIND_NAMES.get(self.kind, self.kind), self.vocab,
                   self.dim, self.slots, COMBINER_NAMES.get(self.combiner, self.combiner), self.table))


class Tensor(object):
    """data: raw little-endian bytes of the tensor (C order)."""
    __slots__ = ("name", "dtype", "shape", "data", "scale", "offset")

    def __init__(self, name, shape, data, dtype=DT_F32, scale=-1, offset=None):
        self.name, self.dtype, self.shape = name, dtype, tuple(shape)
        self.data, self.scale, self.offset = data, scale, offset

    @property
    def numel(self):
        n = 1
        for s in self.shape:
            n *= s
        return n

    def values(self):
        if self.dtype != DT_F32:
            raise FormatError("tensor %r: values() supports f32 only" % self.name)
        return f32_values(self.data)

    def __repr__(self):
        return "Tensor(%r, %s, %r)" % (self.name, DTYPE_NAMES.get(self.dtype), self.shape)


class Node(object):
    __slots__ = ("op", "side", "layer", "flags", "inputs", "output", "tensors", "eps", "attrs")

    def __init__(self, op, side, output, inputs=(-1, -1), tensors=(), layer=-1, flags=0,
                 eps=0.0, attrs=(0, 0)):
        self.op, self.side, self.layer, self.flags = op, side, layer, flags
        self.inputs = list(inputs) + [-1] * (2 - len(inputs))
        self.output = output
        self.tensors = list(tensors) + [-1] * (6 - len(tensors))
        self.eps = eps
        self.attrs = list(attrs) + [0] * (2 - len(attrs))

    def __repr__(self):
        return ("Node(%s side=%d layer=%d flags=%d in=%r out=%d tensors=%r eps=%g attrs=%r)"
                % (OP_NAMES.get(self.op, self.op), self.side, self.layer, self.flags,
                   self.inputs, self.output, self.tensors, self.eps, self.attrs))


class Model(object):
    """meta: list of (key, type, value); fields: [Field]; tensors: [Tensor];
    graph: [Node]."""

    def __init__(self, meta, fields, tensors, graph):
        self.meta_entries = list(meta)
        self.fields = list(fields)
        self.tensors = list(tensors)
        self.graph = list(graph)

    @property
    def meta(self):
        return {k: v for k, _, v in self.meta_entries}

    def tensor(self, name):
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(name)

    def tensor_index(self, name):
        for i, t in enumerate(self.tensors):
            if t.name == name:
                return i
        raise KeyError(name)

    def side_fields(self, side):
        return [f for f in self.fields if f.side == side]

    def item_fingerprint(self):
        return model_fingerprint(self)


def model_fingerprint(model):
    """CRC-32, chained in tensor-table order, of the data bytes of every tensor
    referenced by an item-side node (docs/format.md, .twi META). The item
    EMBED node reads the embedding tables of the item fields (FIELDS `table`),
    so those count too (as the C runtime does)."""
    used = set(f.table for f in model.fields if f.side == SIDE_ITEM and f.table >= 0)
    for node in model.graph:
        if node.side == SIDE_ITEM:
            used.update(t for t in node.tensors if t >= 0)
    c = 0
    for i, t in enumerate(model.tensors):
        if i in used:
            c = crc32(t.data, c)
    return c


def encode_fields(fields):
    out = [struct.pack("<II", len(fields), 0)]
    for f in fields:
        out.append(_FIELD.pack(_pack_name(f.name, 64, "field name"), f.side, f.kind, f.vocab,
                               f.dim, f.slots, f.combiner, f.table, 0))
    return b"".join(out)


def encode_graph(nodes):
    out = [struct.pack("<II", len(nodes), 0)]
    for n in nodes:
        out.append(_NODE.pack(n.op, n.side, n.layer, n.flags, n.inputs[0], n.inputs[1], n.output,
                              *(list(n.tensors) + [n.eps] + list(n.attrs))))
    return b"".join(out)


def write_twr(path, model):
    """Write a Model. Tensor offsets are assigned here (64-aligned, in table
    order). Returns the file bytes."""
    recs = [struct.pack("<II", len(model.tensors), 0)]
    data = bytearray()
    names = set()
    for i, t in enumerate(model.tensors):
        if t.name in names:
            raise FormatError("tensor name %r appears twice" % t.name)
        names.add(t.name)
        if t.dtype not in DTYPE_SIZE:
            raise FormatError("tensor %r: unknown dtype %r" % (t.name, t.dtype))
        if len(t.shape) > 4:
            raise FormatError("tensor %r: %d dims; at most 4" % (t.name, len(t.shape)))
        if any(s <= 0 for s in t.shape):
            raise FormatError("tensor %r: shape %r has a zero dimension" % (t.name, t.shape))
        nbytes = t.numel * DTYPE_SIZE[t.dtype]
        if len(t.data) != nbytes:
            raise FormatError("tensor %r: %d data bytes, shape %r needs %d"
                              % (t.name, len(t.data), t.shape, nbytes))
        if t.dtype == DT_F32:
            vals = f32_values(t.data)
            if not math.isfinite(sum(vals)):
                bad = next(j for j, v in enumerate(vals) if not math.isfinite(v))
                raise FormatError("tensor %r: element %d is %r (NaN/Inf not allowed)"
                                  % (t.name, bad, vals[bad]))
        if not -1 <= t.scale < len(model.tensors):
            raise FormatError("tensor %r: scale index %d out of range" % (t.name, t.scale))
        off = align_up(len(data))
        data.extend(b"\0" * (off - len(data)))
        data.extend(t.data)
        dims = list(t.shape) + [0] * (4 - len(t.shape))
        recs.append(_TENSOR.pack(_pack_name(t.name, 80, "tensor name"), t.dtype, len(t.shape),
                                 dims[0], dims[1], dims[2], dims[3], off, nbytes, t.scale, 0))
        t.offset = off
    sections = [
        (SEC_META, encode_meta(model.meta_entries)),
        (SEC_FIELDS, encode_fields(model.fields)),
        (SEC_TENSORS, b"".join(recs)),
        (SEC_GRAPH, encode_graph(model.graph)),
        (SEC_DATA, bytes(data)),
    ]
    return _write_container(path, MAGIC_MODEL, sections)


def read_twr(path_or_bytes, check_finite=True):
    """Read and validate a .twr file -> Model."""
    if isinstance(path_or_bytes, (bytes, bytearray)):
        buf, what = bytes(path_or_bytes), "<twr bytes>"
    else:
        with open(path_or_bytes, "rb") as f:
            buf = f.read()
        what = str(path_or_bytes)
    secs = _read_container(buf, MAGIC_MODEL, MODEL_SECTIONS, what)
    _, meta = decode_meta(secs[SEC_META])

    fb = secs[SEC_FIELDS]
    if len(fb) < 8:
        raise FormatError("%s: FIELDS section too short" % what)
    nf, res = struct.unpack_from("<II", fb, 0)
    if len(fb) != 8 + nf * FIELD_RECORD_SIZE:
        raise FormatError("%s: FIELDS holds %d bytes; %d records need %d"
                          % (what, len(fb), nf, 8 + nf * FIELD_RECORD_SIZE))
    fields = []
    for i in range(nf):
        (name, side, kind, vocab, dim, slots, comb, table, r) = _FIELD.unpack_from(fb, 8 + i * 96)
        fields.append(Field(_cstr(name, "%s: field %d name" % (what, i)), side, kind, vocab, dim,
                            slots, comb, table))

    tb = secs[SEC_TENSORS]
    if len(tb) < 8:
        raise FormatError("%s: TENSORS section too short" % what)
    nt, res = struct.unpack_from("<II", tb, 0)
    if len(tb) != 8 + nt * TENSOR_RECORD_SIZE:
        raise FormatError("%s: TENSORS holds %d bytes; %d records need %d"
                          % (what, len(tb), nt, 8 + nt * TENSOR_RECORD_SIZE))
    data = secs[SEC_DATA]
    tensors = []
    spans = []
    for i in range(nt):
        (name, dtype, ndim, d0, d1, d2, d3, off, nbytes, scale, r) = _TENSOR.unpack_from(tb, 8 + i * 128)
        tname = _cstr(name, "%s: tensor %d name" % (what, i))
        if dtype not in DTYPE_SIZE:
            raise FormatError("%s: tensor %r: unknown dtype %d" % (what, tname, dtype))
        if ndim > 4:
            raise FormatError("%s: tensor %r: ndim %d > 4" % (what, tname, ndim))
        dims = [d0, d1, d2, d3]
        if any(dims[ndim:]):
            raise FormatError("%s: tensor %r: unused dims are not zero" % (what, tname))
        shape = tuple(dims[:ndim])
        n = 1
        for s in shape:
            n *= s
        if n == 0:
            raise FormatError("%s: tensor %r: empty shape %r" % (what, tname, shape))
        if nbytes != n * DTYPE_SIZE[dtype]:
            raise FormatError("%s: tensor %r: nbytes %d, shape %r x %d bytes = %d"
                              % (what, tname, nbytes, shape, DTYPE_SIZE[dtype], n * DTYPE_SIZE[dtype]))
        if off % ALIGN:
            raise FormatError("%s: tensor %r: offset %d not a multiple of 64" % (what, tname, off))
        if off + nbytes > len(data):
            raise FormatError("%s: tensor %r: [%d, +%d) runs past DATA (%d bytes)"
                              % (what, tname, off, nbytes, len(data)))
        if not -1 <= scale < nt:
            raise FormatError("%s: tensor %r: scale index %d out of range" % (what, tname, scale))
        t = Tensor(tname, shape, bytes(data[off:off + nbytes]), dtype, scale, off)
        if check_finite and dtype == DT_F32:
            vals = f32_values(t.data)
            if not math.isfinite(sum(vals)):
                raise FormatError("%s: tensor %r holds NaN or Inf" % (what, tname))
        tensors.append(t)
        spans.append((off, off + nbytes, tname))
    spans.sort()
    for a, b in zip(spans, spans[1:]):
        if b[0] < a[1]:
            raise FormatError("%s: tensors %r and %r overlap in DATA" % (what, a[2], b[2]))

    gb = secs[SEC_GRAPH]
    if len(gb) < 8:
        raise FormatError("%s: GRAPH section too short" % what)
    nn_, res = struct.unpack_from("<II", gb, 0)
    if len(gb) != 8 + nn_ * NODE_RECORD_SIZE:
        raise FormatError("%s: GRAPH holds %d bytes; %d nodes need %d"
                          % (what, len(gb), nn_, 8 + nn_ * NODE_RECORD_SIZE))
    graph = []
    defined = set()
    for i in range(nn_):
        v = _NODE.unpack_from(gb, 8 + i * 64)
        node = Node(v[0], v[1], v[6], inputs=v[4:6], tensors=v[7:13], layer=v[2], flags=v[3],
                    eps=v[13], attrs=v[14:16])
        if node.op not in OP_NAMES:
            raise FormatError("%s: node %d: unknown op %d" % (what, i, node.op))
        for t in node.tensors:
            if not -1 <= t < nt:
                raise FormatError("%s: node %d (%s): tensor index %d out of range"
                                  % (what, i, OP_NAMES[node.op], t))
        for vin in node.inputs:
            if vin != -1 and vin not in defined:
                raise FormatError("%s: node %d (%s): input value %d is not defined before use"
                                  % (what, i, OP_NAMES[node.op], vin))
        if node.output < 0 or node.output in defined:
            raise FormatError("%s: node %d (%s): output value %d is negative or defined twice"
                              % (what, i, OP_NAMES[node.op], node.output))
        defined.add(node.output)
        graph.append(node)
    for f in fields:
        if f.table != -1 and not 0 <= f.table < nt:
            raise FormatError("%s: field %r: table index %d out of range" % (what, f.name, f.table))
    return Model(meta, fields, tensors, graph)
