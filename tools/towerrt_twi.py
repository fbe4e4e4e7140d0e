"""The .twi item store, standard library only (docs/format.md): the ID_MAP
(open addressing on splitmix64), ItemStore, write_twi / read_twi.
towerrt_format.py re-exports every name; import that.
"""

import struct

from towerrt_container import (ALIGN, ITEM_SECTIONS, MAGIC_ITEMS, META_INT, META_STRING, SEC_ID_MAP,
                               SEC_ITEM_HEADS, SEC_META, U64_MASK, FormatError, _read_container,
                               _write_container, align_up, decode_meta, encode_meta, f32_bytes,
                               f32_values, splitmix64)

EMPTY_ROW = 0xFFFFFFFF


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
