#!/usr/bin/env python3
"""towerrt file formats, standard library only (docs/format.md, version 1).

Writers and validating readers for:
  * .twr model files            write_twr() / read_twr()
  * .twi item stores            write_twi() / read_twi()
  * requests text files         write_requests() / read_requests()
  * item features text files    write_items() / read_items()
  * score output text files     read_scores() / write_scores()
and a .npy / .npz reader and writer (read_npz(), write_npz()) that needs no
NumPy: arrays come back as NpyArray (shape, dtype descr, raw C-order bytes).

Nothing here imports numpy or torch.
"""

import ast
import io
import math
import os
import struct
import sys
import zipfile
import zlib
from array import array

FORMAT_VERSION = 1

MAGIC_MODEL = b"TWRMODEL"
MAGIC_ITEMS = b"TWRITEMS"

# section kinds
SEC_META, SEC_FIELDS, SEC_TENSORS, SEC_GRAPH, SEC_DATA = 1, 2, 3, 4, 5
SEC_ITEM_HEADS, SEC_ID_MAP = 8, 9
SECTION_NAMES = {1: "META", 2: "FIELDS", 3: "TENSORS", 4: "GRAPH", 5: "DATA",
                 8: "ITEM_HEADS", 9: "ID_MAP"}
MODEL_SECTIONS = (SEC_META, SEC_FIELDS, SEC_TENSORS, SEC_GRAPH, SEC_DATA)
ITEM_SECTIONS = (SEC_META, SEC_ITEM_HEADS, SEC_ID_MAP)

# META value types
META_INT, META_FLOAT, META_STRING, META_INT_ARRAY = 1, 2, 3, 4

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

HEADER_SIZE = 64
SECTION_ENTRY_SIZE = 32
FIELD_RECORD_SIZE = 96
TENSOR_RECORD_SIZE = 128
NODE_RECORD_SIZE = 64
ALIGN = 64
EMPTY_ROW = 0xFFFFFFFF
U64_MASK = (1 << 64) - 1

_HEADER = struct.Struct("<8sIIQQIII16sI")
_SECTION = struct.Struct("<IIQQQ")
_FIELD = struct.Struct("<64sIIIIIIiI")
_TENSOR = struct.Struct("<80sII4IQQiI")
_NODE = struct.Struct("<IIiI2ii6if2i")
assert _HEADER.size == 64 and _SECTION.size == 32 and _FIELD.size == 96
assert _TENSOR.size == 128 and _NODE.size == 64


class FormatError(ValueError):
    """A file (or an object about to be written) breaks docs/format.md."""


def crc32(data, value=0):
    return zlib.crc32(data, value) & 0xFFFFFFFF


def align_up(n, a=ALIGN):
    return (n + a - 1) // a * a


def splitmix64(x):
    z = (x + 0x9E3779B97F4A7C15) & U64_MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & U64_MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & U64_MASK
    return z ^ (z >> 31)


def f32_round(x):
    """The float32 value nearest to x, as a Python float."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def _le(a):
    """array -> little-endian bytes."""
    if sys.byteorder != "little":
        a = array(a.typecode, a)
        a.byteswap()
    return a.tobytes()


def _from_le(typecode, data):
    a = array(typecode)
    a.frombytes(data)
    if sys.byteorder != "little":
        a.byteswap()
    return a


def f32_bytes(values):
    """Iterable of numbers -> little-endian f32 bytes."""
    return _le(array("f", values))


def f32_values(data):
    """Little-endian f32 bytes -> array('f')."""
    return _from_le("f", data)


def _cstr(b, what):
    end = b.find(b"\0")
    if end < 0:
        raise FormatError("%s is not NUL-terminated" % what)
    if any(b[end:]):
        raise FormatError("%s has bytes after its NUL terminator" % what)
    try:
        return b[:end].decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError("%s is not valid UTF-8" % what)


def _pack_name(name, size, what):
    raw = name.encode("utf-8")
    if len(raw) == 0:
        raise FormatError("%s is empty" % what)
    if len(raw) > size - 1:
        raise FormatError("%s %r is %d bytes long; at most %d fit"
                          % (what, name, len(raw), size - 1))
    if b"\0" in raw:
        raise FormatError("%s %r contains a NUL byte" % (what, name))
    return raw


# --------------------------------------------------------------------------
# .npy / .npz without numpy

_NPY_TYPES = {
    # kind+size -> (array typecode, itemsize, python kind)
    "f4": ("f", 4, "f"), "f8": ("d", 8, "f"),
    "i1": ("b", 1, "i"), "u1": ("B", 1, "i"), "b1": ("B", 1, "b"),
    "i2": ("h", 2, "i"), "u2": ("H", 2, "i"),
    "i4": ("i", 4, "i"), "u4": ("I", 4, "i"),
    "i8": ("q", 8, "i"), "u8": ("Q", 8, "i"),
    "f2": (None, 2, "f"),
}


class NpyArray(object):
    """An array read from .npy: shape (tuple), descr (e.g. '<f4'), data
    (bytes, C order, in the file's byte order)."""

    __slots__ = ("shape", "descr", "data")

    def __init__(self, shape, descr, data):
        self.shape = tuple(int(s) for s in shape)
        self.descr = descr
        self.data = data

    @property
    def size(self):
        n = 1
        for s in self.shape:
            n *= s
        return n

    @property
    def ndim(self):
        return len(self.shape)

    def _kind(self):
        d = self.descr
        order, code = (d[0], d[1:]) if d[0] in "<>|=" else ("=", d)
        if code not in _NPY_TYPES:
            raise FormatError("unsupported .npy dtype %r" % d)
        return order, code

    def tolist_flat(self):
        """All elements in C order as Python ints / floats / bools."""
        order, code = self._kind()
        tc, size, kind = _NPY_TYPES[code]
        big = order == ">" or (order == "=" and sys.byteorder == "big")
        if tc is None:  # float16
            fmt = (">" if big else "<") + "%de" % self.size
            return list(struct.unpack(fmt, self.data))
        a = array(tc)
        if a.itemsize != size:
            fmt = (">" if big else "<") + "%d%s" % (self.size, tc)
            vals = list(struct.unpack(fmt, self.data))
        else:
            a.frombytes(self.data)
            if big != (sys.byteorder == "big") and size > 1:
                a.byteswap()
            vals = a.tolist()
        if kind == "b":
            return [bool(v) for v in vals]
        return vals

    def to_f32_bytes(self):
        """The values as little-endian float32 bytes (C order)."""
        order, code = self._kind()
        if code == "f4" and (order == "<" or (order == "=" and sys.byteorder == "little")):
            return bytes(self.data)
        return f32_bytes(float(v) for v in self.tolist_flat())

    def __repr__(self):
        return "NpyArray(shape=%r, descr=%r)" % (self.shape, self.descr)


def read_npy(data, name="<npy>"):
    """Parse the bytes of one .npy file into an NpyArray."""
    if len(data) < 10 or data[:6] != b"\x93NUMPY":
        raise FormatError("%s: not a .npy file (bad magic)" % name)
    major = data[6]
    if major == 1:
        (hlen,) = struct.unpack_from("<H", data, 8)
        start = 10
    elif major in (2, 3):
        (hlen,) = struct.unpack_from("<I", data, 8)
        start = 12
    else:
        raise FormatError("%s: unsupported .npy version %d" % (name, major))
    if start + hlen > len(data):
        raise FormatError("%s: truncated .npy header" % name)
    try:
        header = ast.literal_eval(data[start:start + hlen].decode("latin1"))
        descr = header["descr"]
        fortran = bool(header["fortran_order"])
        shape = tuple(header["shape"])
    except Exception as e:  # noqa: BLE001 - report any malformed header
        raise FormatError("%s: malformed .npy header (%s)" % (name, e))
    if not isinstance(descr, str):
        raise FormatError("%s: structured .npy dtypes are not supported" % name)
    arr = NpyArray(shape, descr, b"")
    _, code = arr._kind()
    nbytes = arr.size * _NPY_TYPES[code][1]
    body = data[start + hlen:]
    if len(body) < nbytes:
        raise FormatError("%s: .npy data truncated: %d bytes, expected %d"
                          % (name, len(body), nbytes))
    body = bytes(body[:nbytes])
    if fortran and len(shape) > 1:
        body = _fortran_to_c(body, shape, _NPY_TYPES[code][1])
    arr.data = body
    return arr


def _fortran_to_c(body, shape, itemsize):
    n = 1
    for s in shape:
        n *= s
    out = bytearray(len(body))
    # Fortran strides (in elements)
    fstr = []
    acc = 1
    for s in shape:
        fstr.append(acc)
        acc *= s
    idx = [0] * len(shape)
    for c in range(n):
        f = 0
        for k, i in enumerate(idx):
            f += i * fstr[k]
        out[c * itemsize:(c + 1) * itemsize] = body[f * itemsize:(f + 1) * itemsize]
        for k in range(len(shape) - 1, -1, -1):
            idx[k] += 1
            if idx[k] < shape[k]:
                break
            idx[k] = 0
    return bytes(out)


def read_npz(path):
    """Read an .npz (zip of .npy) -> dict name -> NpyArray, in archive order."""
    out = {}
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise FormatError("%s: not an .npz archive (%s)" % (path, e))
    with zf:
        for info in zf.infolist():
            name = info.filename
            key = name[:-4] if name.endswith(".npy") else name
            out[key] = read_npy(zf.read(info), "%s:%s" % (path, name))
    return out


def load_npy(path):
    with open(path, "rb") as f:
        return read_npy(f.read(), path)


def npy_bytes(arr):
    """NpyArray -> bytes of a version 1.0 .npy file."""
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (
        arr.descr, repr(tuple(arr.shape)))
    total = 10 + len(header) + 1
    header += " " * (align_up(total, 64) - total) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1") + arr.data


def make_array(values, shape, descr="<f4"):
    """Flat values + shape -> NpyArray (descr '<f4', '<f8', '<i8', '<i4', '|b1')."""
    code = descr[1:]
    tc, size, kind = _NPY_TYPES[code]
    n = 1
    for s in shape:
        n *= s
    values = list(values)
    if len(values) != n:
        raise ValueError("make_array: %d values for shape %r" % (len(values), shape))
    if kind == "b":
        data = bytes(1 if v else 0 for v in values)
    elif tc is None:
        data = struct.pack("<%de" % n, *values)
    else:
        data = _le(array(tc, values))
    return NpyArray(tuple(shape), descr, data)


def write_npy(path, arr):
    with open(path, "wb") as f:
        f.write(npy_bytes(arr))


def write_npz(path, arrays, compress=False):
    """arrays: dict name -> NpyArray (or (values, shape[, descr]))."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as zf:
        for name, arr in arrays.items():
            if not isinstance(arr, NpyArray):
                arr = make_array(*arr)
            zf.writestr(name + ".npy", npy_bytes(arr))


# --------------------------------------------------------------------------
# META

def encode_meta(entries):
    """entries: list of (key, type, value)."""
    out = [struct.pack("<I", len(entries))]
    seen = set()
    for key, typ, value in entries:
        kb = key.encode("utf-8")
        if not 1 <= len(kb) <= 255:
            raise FormatError("META key %r must be 1..255 bytes" % key)
        if key in seen:
            raise FormatError("duplicate META key %r" % key)
        seen.add(key)
        out.append(struct.pack("<H", len(kb)) + kb + struct.pack("<B", typ))
        if typ == META_INT:
            out.append(struct.pack("<q", int(value)))
        elif typ == META_FLOAT:
            out.append(struct.pack("<d", float(value)))
        elif typ == META_STRING:
            vb = value.encode("utf-8")
            if b"\0" in vb:
                raise FormatError("META string %r contains NUL" % key)
            out.append(struct.pack("<I", len(vb)) + vb)
        elif typ == META_INT_ARRAY:
            vals = [int(v) for v in value]
            out.append(struct.pack("<I%dq" % len(vals), len(vals), *vals))
        else:
            raise FormatError("META key %r: unknown type %r" % (key, typ))
    return b"".join(out)


def decode_meta(data):
    """-> (dict key -> value, list of (key, type, value))."""
    n = len(data)
    if n < 4:
        raise FormatError("META section is %d bytes; needs at least 4" % n)
    (count,) = struct.unpack_from("<I", data, 0)
    pos = 4
    entries = []
    d = {}
    for i in range(count):
        if pos + 2 > n:
            raise FormatError("META entry %d: truncated key length at offset %d" % (i, pos))
        (klen,) = struct.unpack_from("<H", data, pos)
        pos += 2
        if not 1 <= klen <= 255:
            raise FormatError("META entry %d: key length %d not in 1..255" % (i, klen))
        if pos + klen + 1 > n:
            raise FormatError("META entry %d: truncated key" % i)
        try:
            key = bytes(data[pos:pos + klen]).decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError("META entry %d: key is not UTF-8" % i)
        pos += klen
        typ = data[pos]
        pos += 1
        if typ == META_INT:
            if pos + 8 > n:
                raise FormatError("META %r: truncated int" % key)
            (value,) = struct.unpack_from("<q", data, pos)
            pos += 8
        elif typ == META_FLOAT:
            if pos + 8 > n:
                raise FormatError("META %r: truncated float" % key)
            (value,) = struct.unpack_from("<d", data, pos)
            pos += 8
        elif typ == META_STRING:
            if pos + 4 > n:
                raise FormatError("META %r: truncated string length" % key)
            (slen,) = struct.unpack_from("<I", data, pos)
            pos += 4
            if pos + slen > n:
                raise FormatError("META %r: string of %d bytes overruns the section" % (key, slen))
            raw = bytes(data[pos:pos + slen])
            if b"\0" in raw:
                raise FormatError("META %r: string contains NUL" % key)
            value = raw.decode("utf-8")
            pos += slen
        elif typ == META_INT_ARRAY:
            if pos + 4 > n:
                raise FormatError("META %r: truncated array length" % key)
            (alen,) = struct.unpack_from("<I", data, pos)
            pos += 4
            if pos + 8 * alen > n:
                raise FormatError("META %r: array of %d overruns the section" % (key, alen))
            value = list(struct.unpack_from("<%dq" % alen, data, pos))
            pos += 8 * alen
        else:
            raise FormatError("META %r: unknown value type %d" % (key, typ))
        if key in d:
            raise FormatError("META key %r appears twice" % key)
        d[key] = value
        entries.append((key, typ, value))
    return d, entries


# --------------------------------------------------------------------------
# container

def _write_container(path, magic, sections):
    """sections: list of (kind, bytes). Returns the file bytes (and writes
    them to path unless path is None)."""
    n = len(sections)
    if not 1 <= n <= 16:
        raise FormatError("%d sections; must be 1..16" % n)
    pos = align_up(HEADER_SIZE + n * SECTION_ENTRY_SIZE)
    table = []
    layout = []
    for kind, data in sections:
        table.append(_SECTION.pack(kind, crc32(data), pos, len(data), 0))
        layout.append((pos, data))
        pos = align_up(pos + len(data))
    file_size = layout[-1][0] + len(layout[-1][1])
    table_bytes = b"".join(table)
    head = _HEADER.pack(magic, FORMAT_VERSION, HEADER_SIZE, file_size, HEADER_SIZE, n, 0,
                        crc32(table_bytes), b"\0" * 16, 0)
    head = head[:60] + struct.pack("<I", crc32(head[:60]))
    buf = bytearray(file_size)
    buf[0:64] = head
    buf[64:64 + len(table_bytes)] = table_bytes
    for off, data in layout:
        buf[off:off + len(data)] = data
    buf = bytes(buf)
    if path is not None:
        write_file_atomic(path, buf)
    return buf


def write_file_atomic(path, data):
    """Publishes data at path as the C writers do (runtime/atomic_file.h):
    a unique exclusive temporary next to path, fsync, rename, fsync of the
    directory. Two writers never share a temporary; readers see the old
    file or the new one, whole."""
    import tempfile
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".tmp.", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dfd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _read_container(buf, magic, required, what):
    size = len(buf)
    if size < HEADER_SIZE:
        raise FormatError("%s: file is %d bytes; the header alone is 64" % (what, size))
    (mg, version, hsize, fsize, toff, nsec, flags, tcrc, reserved, hcrc) = _HEADER.unpack_from(buf, 0)
    if mg != magic:
        raise FormatError("%s: bad magic %r (expected %r)" % (what, mg, magic))
    if version != FORMAT_VERSION:
        raise FormatError("%s: version %d (this reader knows %d)" % (what, version, FORMAT_VERSION))
    if hsize != HEADER_SIZE:
        raise FormatError("%s: header_size %d (expected 64)" % (what, hsize))
    if crc32(buf[:60]) != hcrc:
        raise FormatError("%s: header CRC mismatch (stored %08x, computed %08x)"
                          % (what, hcrc, crc32(buf[:60])))
    if fsize != size:
        raise FormatError("%s: header file_size %d but the file is %d bytes" % (what, fsize, size))
    if toff != HEADER_SIZE:
        raise FormatError("%s: section_table_offset %d (expected 64)" % (what, toff))
    if not 1 <= nsec <= 16:
        raise FormatError("%s: n_sections %d not in 1..16" % (what, nsec))
    if flags != 0:
        raise FormatError("%s: flags %#x (expected 0)" % (what, flags))
    if any(reserved):
        raise FormatError("%s: reserved header bytes are not zero" % what)
    tend = HEADER_SIZE + nsec * SECTION_ENTRY_SIZE
    if tend > size:
        raise FormatError("%s: section table (%d entries) runs past the end of the file" % (what, nsec))
    tbytes = buf[HEADER_SIZE:tend]
    if crc32(tbytes) != tcrc:
        raise FormatError("%s: section table CRC mismatch" % what)
    secs = {}
    spans = []
    for i in range(nsec):
        kind, scrc, off, ssize, res = _SECTION.unpack_from(buf, HEADER_SIZE + i * SECTION_ENTRY_SIZE)
        name = SECTION_NAMES.get(kind, str(kind))
        if kind not in required:
            raise FormatError("%s: section %d has kind %d, not allowed here" % (what, i, kind))
        if kind in secs:
            raise FormatError("%s: section kind %s appears twice" % (what, name))
        if res != 0:
            raise FormatError("%s: section %s reserved field is not zero" % (what, name))
        if off % ALIGN:
            raise FormatError("%s: section %s offset %d is not a multiple of 64" % (what, name, off))
        if off < tend:
            raise FormatError("%s: section %s offset %d overlaps the section table (ends %d)"
                              % (what, name, off, tend))
        if off + ssize > size:
            raise FormatError("%s: section %s [%d, +%d) runs past the end of the file (%d bytes)"
                              % (what, name, off, ssize, size))
        data = buf[off:off + ssize]
        if crc32(data) != scrc:
            raise FormatError("%s: section %s CRC mismatch" % (what, name))
        secs[kind] = data
        spans.append((off, off + ssize, name))
    spans.sort()
    for a, b in zip(spans, spans[1:]):
        if b[0] < a[1]:
            raise FormatError("%s: sections %s and %s overlap" % (what, a[2], b[2]))
    for kind in required:
        if kind not in secs:
            raise FormatError("%s: missing section %s" % (what, SECTION_NAMES[kind]))
    return secs


# --------------------------------------------------------------------------
# model (.twr)

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


# --------------------------------------------------------------------------
# item store (.twi)

def id_map_slots(count):
    n = 2
    while n < 2 * count:
        n *= 2
    return n


def build_id_map(ids):
    """ids: list of u64 item ids, row r = ids[r] -> ID_MAP section bytes."""
    n = id_map_slots(len(ids))
    mask = n - 1
    slot_id = [0] * n
    slot_row = [EMPTY_ROW] * n
    seen = set()
    for row, iid in enumerate(ids):
        if not 0 <= iid <= U64_MASK:
            raise FormatError("item id %r is not an unsigned 64-bit integer" % (iid,))
        if iid in seen:
            raise FormatError("item id %d appears twice" % iid)
        seen.add(iid)
        s = splitmix64(iid) & mask
        while slot_row[s] != EMPTY_ROW:
            s = (s + 1) & mask
        slot_id[s] = iid
        slot_row[s] = row
    out = bytearray(struct.pack("<QQ", n, 0))
    for s in range(n):
        out += struct.pack("<QII", slot_id[s], slot_row[s], 0)
    return bytes(out)


class ItemStore(object):
    def __init__(self, meta, heads, ids, id_slots=None):
        self.meta_entries = list(meta)
        self.heads = heads        # list of rows, each a list of H*p floats
        self.ids = ids            # ids[row]
        self.id_slots = id_slots  # raw (id, row) slots as read

    @property
    def meta(self):
        return {k: v for k, _, v in self.meta_entries}

    def lookup(self, item_id):
        """Probe the id map exactly as docs/format.md says -> row or None."""
        n = len(self.id_slots)
        s = splitmix64(item_id) & (n - 1)
        for _ in range(n):
            sid, row = self.id_slots[s]
            if row == EMPTY_ROW:
                return None
            if sid == item_id:
                return row
            s = (s + 1) & (n - 1)
        return None


def write_twi(path, ids, heads, n_heads, head_dim, fingerprint, source="", extra_meta=()):
    """ids: u64 per row; heads: per row, n_heads*head_dim floats (head-major)."""
    width = n_heads * head_dim
    stride = align_up(width * 4)
    rows = bytearray()
    for r, h in enumerate(heads):
        h = list(h)
        if len(h) != width:
            raise FormatError("item row %d has %d values; expected %d" % (r, len(h), width))
        rows += f32_bytes(h)
        rows += b"\0" * (stride - width * 4)
    if len(ids) != len(heads):
        raise FormatError("%d ids for %d rows" % (len(ids), len(heads)))
    meta = [("items.count", META_INT, len(ids)),
            ("items.heads", META_INT, n_heads),
            ("items.head_dim", META_INT, head_dim),
            ("items.dtype", META_STRING, "f32"),
            ("items.row_stride", META_INT, stride),
            ("model.fingerprint", META_INT, fingerprint),
            ("general.source", META_STRING, source)] + list(extra_meta)
    sections = [(SEC_META, encode_meta(meta)),
                (SEC_ITEM_HEADS, bytes(rows)),
                (SEC_ID_MAP, build_id_map(list(ids)))]
    return _write_container(path, MAGIC_ITEMS, sections)


def read_twi(path_or_bytes):
    if isinstance(path_or_bytes, (bytes, bytearray)):
        buf, what = bytes(path_or_bytes), "<twi bytes>"
    else:
        with open(path_or_bytes, "rb") as f:
            buf = f.read()
        what = str(path_or_bytes)
    secs = _read_container(buf, MAGIC_ITEMS, ITEM_SECTIONS, what)
    meta, entries = decode_meta(secs[SEC_META])
    for k in ("items.count", "items.heads", "items.head_dim", "items.dtype", "items.row_stride",
              "model.fingerprint"):
        if k not in meta:
            raise FormatError("%s: META lacks %s" % (what, k))
    count, H, p = meta["items.count"], meta["items.heads"], meta["items.head_dim"]
    stride = meta["items.row_stride"]
    if meta["items.dtype"] != "f32":
        raise FormatError("%s: items.dtype %r (this reader supports f32)" % (what, meta["items.dtype"]))
    if count < 0 or H <= 0 or p <= 0:
        raise FormatError("%s: bad count/heads/head_dim %d/%d/%d" % (what, count, H, p))
    if stride % ALIGN or stride < H * p * 4:
        raise FormatError("%s: row_stride %d (must be a multiple of 64 >= %d)" % (what, stride, H * p * 4))
    hb = secs[SEC_ITEM_HEADS]
    if len(hb) < count * stride:
        raise FormatError("%s: ITEM_HEADS is %d bytes; %d rows x %d need %d"
                          % (what, len(hb), count, stride, count * stride))
    heads = [list(f32_values(hb[r * stride:r * stride + H * p * 4])) for r in range(count)]
    mb = secs[SEC_ID_MAP]
    if len(mb) < 16:
        raise FormatError("%s: ID_MAP too short" % what)
    n_slots, res = struct.unpack_from("<QQ", mb, 0)
    if n_slots == 0 or n_slots & (n_slots - 1) or n_slots < 2 * count:
        raise FormatError("%s: n_slots %d is not a power of two >= 2 x count (%d)" % (what, n_slots, count))
    if len(mb) != 16 + 16 * n_slots:
        raise FormatError("%s: ID_MAP is %d bytes; %d slots need %d" % (what, len(mb), n_slots, 16 + 16 * n_slots))
    slots = []
    ids = [None] * count
    for s in range(n_slots):
        iid, row, r = struct.unpack_from("<QII", mb, 16 + 16 * s)
        slots.append((iid, row))
        if row != EMPTY_ROW:
            if row >= count:
                raise FormatError("%s: ID_MAP slot %d points at row %d >= count %d" % (what, s, row, count))
            if ids[row] is not None:
                raise FormatError("%s: row %d appears twice in ID_MAP" % (what, row))
            ids[row] = iid
    if any(i is None for i in ids):
        raise FormatError("%s: some rows are missing from ID_MAP" % what)
    store = ItemStore(entries, heads, ids, slots)
    for row, iid in enumerate(ids):
        if store.lookup(iid) != row:
            raise FormatError("%s: item id %d (row %d) is not reachable by probing" % (what, iid, row))
    return store


# --------------------------------------------------------------------------
# text files

def _fmt_float(x):
    """Exact text for a float32/float64 value (round-trips through strtod)."""
    x = float(x)
    if not math.isfinite(x):
        raise FormatError("dense value %r is not finite" % x)
    return repr(x)


def _row_text(ids, dense):
    s = " ".join(str(int(i)) for i in ids)
    if dense is not None and len(dense):
        s += " ; " + " ".join(_fmt_float(v) for v in dense)
    return s


class Request(object):
    """user_ids / user_dense: the user row; either item_ids (candidates by id)
    or items: list of (ids, dense) (candidates by features)."""
    __slots__ = ("user_ids", "user_dense", "item_ids", "items")

    def __init__(self, user_ids, user_dense=(), item_ids=None, items=None):
        self.user_ids = list(user_ids)
        self.user_dense = list(user_dense)
        self.item_ids = None if item_ids is None else list(item_ids)
        self.items = None if items is None else [(list(a), list(b)) for a, b in items]

    def k(self):
        return len(self.item_ids) if self.item_ids is not None else len(self.items)


def requests_text(requests, comments=(), ids_per_line=16):
    out = ["towerrt-requests 1"]
    out += ["# " + c for c in comments]
    for r in requests:
        out.append("user " + _row_text(r.user_ids, r.user_dense))
        if r.item_ids is not None:
            if not r.item_ids:
                raise FormatError("request without candidates")
            for i in range(0, len(r.item_ids), ids_per_line):
                out.append("items " + " ".join(str(int(x)) for x in r.item_ids[i:i + ids_per_line]))
        else:
            if not r.items:
                raise FormatError("request without candidates")
            for ids, dense in r.items:
                out.append("item " + _row_text(ids, dense))
        out.append("end")
    return "\n".join(out) + "\n"


def write_requests(path, requests, comments=(), ids_per_line=16):
    with open(path, "w") as f:
        f.write(requests_text(requests, comments, ids_per_line))


def _parse_row(tokens, where):
    if ";" in tokens:
        k = tokens.index(";")
        ids, dense = tokens[:k], tokens[k + 1:]
        if ";" in dense:
            raise FormatError("%s: more than one ';'" % where)
    else:
        ids, dense = tokens, []
    try:
        return [int(t) for t in ids], [float(t) for t in dense]
    except ValueError as e:
        raise FormatError("%s: %s" % (where, e))


def _lines(path):
    with open(path, "r") as f:
        for n, line in enumerate(f, 1):
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            yield n, s


def read_requests(path):
    reqs = []
    cur = None
    header = False
    for n, s in _lines(path):
        where = "%s:%d" % (path, n)
        # allow ';' glued to numbers
        tokens = s.replace(";", " ; ").split()
        if not header:
            if tokens != ["towerrt-requests", "1"]:
                raise FormatError("%s: expected 'towerrt-requests 1'" % where)
            header = True
            continue
        d = tokens[0]
        if d == "user":
            if cur is not None:
                raise FormatError("%s: 'user' before 'end'" % where)
            ids, dense = _parse_row(tokens[1:], where)
            cur = Request(ids, dense)
        elif d == "items":
            if cur is None or cur.items is not None:
                raise FormatError("%s: 'items' outside a request or mixed with 'item'" % where)
            if cur.item_ids is None:
                cur.item_ids = []
            cur.item_ids += [int(t) for t in tokens[1:]]
        elif d == "item":
            if cur is None or cur.item_ids is not None:
                raise FormatError("%s: 'item' outside a request or mixed with 'items'" % where)
            if cur.items is None:
                cur.items = []
            cur.items.append(_parse_row(tokens[1:], where))
        elif d == "end":
            if cur is None or (cur.item_ids is None and cur.items is None):
                raise FormatError("%s: 'end' without a request with candidates" % where)
            reqs.append(cur)
            cur = None
        else:
            raise FormatError("%s: unknown directive %r" % (where, d))
    if not header:
        raise FormatError("%s: empty file" % path)
    if cur is not None:
        raise FormatError("%s: last request has no 'end'" % path)
    return reqs


def items_text(rows, comments=()):
    """rows: list of (item_id, ids, dense)."""
    out = ["towerrt-items 1"] + ["# " + c for c in comments]
    seen = set()
    for iid, ids, dense in rows:
        if not 0 <= int(iid) <= U64_MASK:
            raise FormatError("item id %r is not u64" % (iid,))
        if iid in seen:
            raise FormatError("item id %d appears twice" % iid)
        seen.add(iid)
        out.append("%d %s" % (iid, _row_text(ids, dense)))
    return "\n".join(out) + "\n"


def write_items(path, rows, comments=()):
    with open(path, "w") as f:
        f.write(items_text(rows, comments))


def read_items(path):
    rows = []
    header = False
    for n, s in _lines(path):
        where = "%s:%d" % (path, n)
        tokens = s.replace(";", " ; ").split()
        if not header:
            if tokens != ["towerrt-items", "1"]:
                raise FormatError("%s: expected 'towerrt-items 1'" % where)
            header = True
            continue
        iid = int(tokens[0])
        ids, dense = _parse_row(tokens[1:], where)
        rows.append((iid, ids, dense))
    return rows


def write_scores(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(" ".join("%.9g" % v for v in r) + "\n")


def read_scores(path):
    """One list of floats per request; None for a request that
    `towerrt score --on-error skip` refused (its line: "error STATUS")."""
    with open(path) as f:
        return [None if line.startswith("error ") else [float(t) for t in line.split()] for line in f if line.strip()]


# --------------------------------------------------------------------------
# pretty printer:  python3 tools/towerrt_format.py FILE

def describe(path):
    with open(path, "rb") as f:
        magic = f.read(8)
    out = io.StringIO()
    if magic == MAGIC_MODEL:
        m = read_twr(path)
        out.write("model %s\n" % path)
        for k, t, v in m.meta_entries:
            out.write("  meta %-24s %r\n" % (k, v))
        for i, fl in enumerate(m.fields):
            out.write("  field %d %r\n" % (i, fl))
        for i, t in enumerate(m.tensors):
            out.write("  tensor %d %-48s %s %r @%d\n" % (i, t.name, DTYPE_NAMES[t.dtype], t.shape, t.offset))
        for i, n in enumerate(m.graph):
            out.write("  node %d %r\n" % (i, n))
        out.write("  item fingerprint %d\n" % model_fingerprint(m))
    elif magic == MAGIC_ITEMS:
        s = read_twi(path)
        out.write("item store %s\n" % path)
        for k, t, v in s.meta_entries:
            out.write("  meta %-24s %r\n" % (k, v))
        out.write("  ids %r%s\n" % (s.ids[:10], " ..." if len(s.ids) > 10 else ""))
    else:
        raise FormatError("%s: not a towerrt binary file" % path)
    return out.getvalue()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.stderr.write("usage: towerrt_format.py FILE.twr|FILE.twi ...\n")
        sys.exit(2)
    rc = 0
    for p in sys.argv[1:]:
        try:
            sys.stdout.write(describe(p))
        except (FormatError, OSError) as e:
            sys.stderr.write("error: %s\n" % e)
            rc = 1
    sys.exit(rc)
