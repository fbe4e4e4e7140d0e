"""The towerrt container, standard library only (docs/format.md, version
1): the header and section table every .twr and .twi starts with, their
CRCs, META, the atomic publish of a file, and the little-endian / name
helpers the model and item-store modules share. towerrt_format.py
re-exports every name; import that.
"""

import os
import struct
import sys
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

HEADER_SIZE = 64
SECTION_ENTRY_SIZE = 32
ALIGN = 64
U64_MASK = (1 << 64) - 1

_HEADER = struct.Struct("<8sIIQQIII16sI")
_SECTION = struct.Struct("<IIQQQ")
assert _HEADER.size == 64 and _SECTION.size == 32


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
