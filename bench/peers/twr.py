"""Reads a towerrt model (.twr) and item store (.twi) with numpy only, as
docs/format.md specifies, for the peer benchmarks: the peers run on the very
weights and item heads towerrt serves.

    model = read_twr("model.twr")   # fields, tensors (numpy views), graph plan
    store = read_twi("items.twi")   # heads (count, H, p) float32, ids by row
"""

import struct

import numpy as np

MAGIC_MODEL = b"TWRMODEL"
MAGIC_ITEMS = b"TWRITEMS"
SEC_META, SEC_FIELDS, SEC_TENSORS, SEC_GRAPH, SEC_DATA = 1, 2, 3, 4, 5
SEC_ITEM_HEADS, SEC_ID_MAP = 8, 9
OP_EMBED, OP_LIGHTSE, OP_CONCAT, OP_LINEAR, OP_FE, OP_MAXSIM, OP_SUM, OP_PREDICT = range(1, 9)
DTYPES = {1: np.float32, 4: np.int8, 5: np.uint8, 6: np.int32}


class FormatError(ValueError):
    pass


def _sections(buf, magic):
    if len(buf) < 64 or bytes(buf[:8]) != magic:
        raise FormatError("not a %s file" % magic.decode())
    version, header_size, file_size, table_off, n_sections = struct.unpack_from("<IIQQI", buf, 8)
    if version != 1 or file_size != len(buf):
        raise FormatError("unsupported version %d or truncated file" % version)
    secs = {}
    for i in range(n_sections):
        kind, _crc, off, size, _ = struct.unpack_from("<IIQQQ", buf, table_off + 32 * i)
        if off + size > len(buf):
            raise FormatError("section %d runs past the end of the file" % kind)
        secs[kind] = (off, size)
    return secs


def _meta(buf, off):
    (count,) = struct.unpack_from("<I", buf, off)
    p = off + 4
    out = {}
    for _ in range(count):
        (klen,) = struct.unpack_from("<H", buf, p)
        key = bytes(buf[p + 2:p + 2 + klen]).decode()
        p += 2 + klen
        typ = buf[p]
        p += 1
        if typ == 1:
            (v,) = struct.unpack_from("<q", buf, p)
            p += 8
        elif typ == 2:
            (v,) = struct.unpack_from("<d", buf, p)
            p += 8
        elif typ == 3:
            (n,) = struct.unpack_from("<I", buf, p)
            v = bytes(buf[p + 4:p + 4 + n]).decode()
            p += 4 + n
        elif typ == 4:
            (n,) = struct.unpack_from("<I", buf, p)
            v = list(struct.unpack_from("<%dq" % n, buf, p + 4))
            p += 4 + 8 * n
        else:
            raise FormatError("META key %r has unknown type %d" % (key, typ))
        out[key] = v
    return out


def _cstr(b):
    return bytes(b).split(b"\0", 1)[0].decode()


class Model(object):
    """fields: list of dicts (name, side, kind, vocab, dim, slots, combiner,
    table); tensors: list of (name, array); plan: per side the Light-SE,
    tower layers and FE projections as the GRAPH wires them."""

    def __init__(self, meta, fields, tensors, nodes):
        self.meta, self.fields, self.tensors, self.nodes = meta, fields, tensors, nodes
        self.user_heads = int(meta.get("inttower.user_heads", 0))
        self.item_heads = int(meta.get("inttower.item_heads", 0))
        self.head_dim = int(meta.get("inttower.head_dim", 0))
        self.sigmoid = meta.get("inttower.output", "sigmoid") == "sigmoid"
        self.plan = {0: {"layers": [], "fe": {}}, 1: {"layers": [], "fe": {}}}
        self.out_bias = 0.0
        fe_value_layer = {}
        self.trained_fe = []
        for n in nodes:
            op, side, layer, flags, ins, out, t, eps, attrs = n
            if op == OP_LIGHTSE:
                self.plan[side]["lightse"] = (self.t(t[0]), self.t(t[1]) if t[1] >= 0 else None)
            elif op == OP_LINEAR:
                bn = [self.t(i) for i in t[2:6]] if flags & 2 else None
                self.plan[side]["layers"].append(dict(w=self.t(t[0]), b=self.t(t[1]) if t[1] >= 0 else None,
                                                      bn=bn, eps=eps, relu=bool(flags & 1)))
            elif op == OP_FE:
                self.plan[side]["fe"][layer] = (self.t(t[0]), self.t(t[1]) if t[1] >= 0 else None)
                if side == 0:
                    fe_value_layer[out] = layer
            elif op == OP_MAXSIM:
                self.trained_fe.append(fe_value_layer[ins[0]])
            elif op == OP_PREDICT and t[0] >= 0:
                self.out_bias = float(self.t(t[0]).reshape(-1)[0])
        self.trained_fe.sort()

    def t(self, i):
        return self.tensors[i][1]

    def side_fields(self, side):
        return [f for f in self.fields if f["side"] == side]


def read_twr(path):
    buf = np.fromfile(path, dtype=np.uint8)
    mv = memoryview(buf)
    secs = _sections(mv, MAGIC_MODEL)
    meta = _meta(mv, secs[SEC_META][0])
    off = secs[SEC_FIELDS][0]
    (n,) = struct.unpack_from("<I", mv, off)
    fields = []
    for i in range(n):
        r = off + 8 + 96 * i
        side, kind, vocab, dim, slots, comb, table = struct.unpack_from("<IIIIIIi", mv, r + 64)
        fields.append(dict(name=_cstr(mv[r:r + 64]), side=side, kind=kind, vocab=vocab, dim=dim, slots=slots,
                           combiner=comb, table=table))
    off = secs[SEC_TENSORS][0]
    data_off = secs[SEC_DATA][0]
    (n,) = struct.unpack_from("<I", mv, off)
    tensors = []
    for i in range(n):
        r = off + 8 + 128 * i
        name = _cstr(mv[r:r + 80])
        dtype, ndim = struct.unpack_from("<II", mv, r + 80)
        dims = struct.unpack_from("<4I", mv, r + 88)[:ndim]
        t_off, nbytes = struct.unpack_from("<QQ", mv, r + 104)
        if dtype not in DTYPES:
            raise FormatError("tensor %s: dtype %d not supported by this reader" % (name, dtype))
        a = np.frombuffer(buf, dtype=np.dtype(DTYPES[dtype]).newbyteorder("<"), count=int(np.prod(dims)) if dims else 1,
                          offset=data_off + t_off).reshape(dims if dims else (1,))
        tensors.append((name, a))
    off = secs[SEC_GRAPH][0]
    (n,) = struct.unpack_from("<I", mv, off)
    nodes = []
    for i in range(n):
        r = off + 8 + 64 * i
        op, side, layer, flags, in0, in1, out = struct.unpack_from("<IIiIiii", mv, r)
        t = list(struct.unpack_from("<6i", mv, r + 28))
        (eps,) = struct.unpack_from("<f", mv, r + 52)
        attrs = struct.unpack_from("<2i", mv, r + 56)
        nodes.append((op, side, layer, flags, (in0, in1), out, t, eps, attrs))
    return Model(meta, fields, tensors, nodes)


class Store(object):
    """heads: (count, H, p) float32, a read-only view of the mapped file like
    towerrt's (copy=True: a copy in RAM); ids: external id of each row."""

    def __init__(self, heads, ids, meta):
        self.heads, self.ids, self.meta = heads, ids, meta


def read_twi(path, copy=False):
    mm = np.memmap(path, dtype=np.uint8, mode="r")
    mv = memoryview(mm)
    secs = _sections(mv, MAGIC_ITEMS)
    meta = _meta(mv, secs[SEC_META][0])
    if meta.get("items.dtype") != "f32":
        raise FormatError("items.dtype %r: the peers read f32 stores" % meta.get("items.dtype"))
    count, H, p, stride = (int(meta[k]) for k in ("items.count", "items.heads", "items.head_dim", "items.row_stride"))
    off, _ = secs[SEC_ITEM_HEADS]
    rows = np.ndarray((count, stride // 4), dtype="<f4", buffer=mm, offset=off)
    heads = rows[:, :H * p].reshape(count, H, p)
    if copy or not heads.flags.c_contiguous:
        heads = np.array(heads, order="C")
    off, size = secs[SEC_ID_MAP]
    (n_slots,) = struct.unpack_from("<Q", mv, off)
    slots = np.ndarray((n_slots,), dtype=np.dtype([("id", "<u8"), ("row", "<u4"), ("pad", "<u4")]), buffer=mm,
                       offset=off + 16)
    used = slots[slots["row"] != 0xFFFFFFFF]
    ids = np.zeros(count, dtype=np.uint64)
    ids[used["row"]] = used["id"]
    return Store(heads, ids, meta)
