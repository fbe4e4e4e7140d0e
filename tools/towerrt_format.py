#!/usr/bin/env python3
"""towerrt file formats, standard library only (docs/format.md, version 1).

Writers and validating readers for:
  * .twr model files            write_twr() / read_twr()        towerrt_twr.py
  * .twi item stores            write_twi() / read_twi()        towerrt_twi.py
  * requests text files         write_requests() / read_requests()
  * item features text files    write_items() / read_items()
  * score output text files     read_scores() / write_scores()  towerrt_text.py
and a .npy / .npz reader and writer (read_npz(), write_npz()) that needs no
NumPy: arrays come back as NpyArray (shape, dtype descr, raw C-order bytes)
(towerrt_npz.py). The container every binary file shares (header, sections,
CRCs, META, atomic publish) is towerrt_container.py.

This module is the one to import: it re-exports every name of those
modules (the private ones callers use too), and prints a file:
python3 tools/towerrt_format.py FILE.twr|FILE.twi ...

Nothing here imports numpy or torch.
"""

import io
import sys

from towerrt_container import *  # noqa: F401,F403
from towerrt_container import (_HEADER, _SECTION, _cstr, _from_le, _le, _pack_name,  # noqa: F401
                               _read_container, _umask, _write_container)
from towerrt_npz import *  # noqa: F401,F403
from towerrt_npz import _NPY_TYPES, _fortran_to_c  # noqa: F401
from towerrt_text import *  # noqa: F401,F403
from towerrt_text import _fmt_float, _lines, _parse_row, _row_text  # noqa: F401
from towerrt_twi import *  # noqa: F401,F403
from towerrt_twr import *  # noqa: F401,F403
from towerrt_twr import _FIELD, _NODE, _TENSOR  # noqa: F401
from towerrt_container import FormatError, MAGIC_ITEMS, MAGIC_MODEL
from towerrt_twr import DTYPE_NAMES, model_fingerprint, read_twr
from towerrt_twi import read_twi


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
