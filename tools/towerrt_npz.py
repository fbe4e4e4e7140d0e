"""A .npy / .npz reader and writer that needs no NumPy (arrays come back as
NpyArray: shape, dtype descr, raw C-order bytes). towerrt_format.py
re-exports every name; import that.
"""

import ast
import struct
import sys
import zipfile
from array import array

from towerrt_container import FormatError, _le, align_up, f32_bytes

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
