/* _towerrt: the CPython extension under the `towerrt` package. A thin layer
 * over include/towerrt.h: handles are capsules, arrays arrive through the
 * buffer protocol (no copy; the Python layer, towerrt/__init__.py, checks
 * dtype / shape / contiguity first and gives the clear messages; this file
 * checks again so that no call can read or write past a buffer), options
 * arrive as a dict and are set here by field name, so Python never mirrors
 * the layout of towerrt_options. Every call into the library releases the
 * GIL. A failing status raises the exception class registered for it by
 * the Python layer (_set_errors), constructed as cls(status_name, message).
 * About 650 lines, earned: one short wrapper per entry point of towerrt.h
 * that Python reaches (about 25), sharing static helpers (capsules,
 * buffers, options, statuses, the scoring calls' checks in score_buffers);
 * split, those helpers would become a header between files that only
 * this module uses. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#include "towerrt.h"

static PyObject *g_errors; /* tuple: exception class per status code */

static PyObject *raise_status(towerrt_status st, const char *msg) {
  PyObject *cls = g_errors && (Py_ssize_t)st < PyTuple_GET_SIZE(g_errors) ? PyTuple_GET_ITEM(g_errors, st) : PyExc_RuntimeError;
  PyObject *exc = PyObject_CallFunction(cls, "ss", towerrt_status_name(st), msg);
  if (exc) {
    PyErr_SetObject(cls, exc);
    Py_DECREF(exc);
  }
  return NULL;
}

static PyObject *set_errors(PyObject *self, PyObject *arg) {
  if (!PyTuple_Check(arg) || PyTuple_GET_SIZE(arg) != TOWERRT_STATUS_COUNT_)
    return PyErr_Format(PyExc_TypeError, "_set_errors expects a tuple of %d exception classes", (int)TOWERRT_STATUS_COUNT_);
  Py_XDECREF(g_errors);
  Py_INCREF(arg);
  g_errors = arg;
  Py_RETURN_NONE;
}

/* ---- capsules ----------------------------------------------------------- */
#define CAP_MODEL "towerrt_model"
#define CAP_ITEMS "towerrt_items"
#define CAP_SESSION "towerrt_session"

static void free_model(PyObject *c) { towerrt_model_free(PyCapsule_GetPointer(c, CAP_MODEL)); }
static void free_items(PyObject *c) { towerrt_items_free(PyCapsule_GetPointer(c, CAP_ITEMS)); }
static void free_session(PyObject *c) { towerrt_session_free(PyCapsule_GetPointer(c, CAP_SESSION)); }

static void *unwrap(PyObject *c, const char *name) {
  void *p = PyCapsule_GetPointer(c, name);
  if (!p && !PyErr_Occurred()) PyErr_Format(PyExc_ValueError, "%s handle is closed", name);
  return p;
}

/* ---- buffers -------------------------------------------------------------- */
enum { B_I64, B_U64, B_F32 };

/* The struct format character of a buffer, '@' / '=' / '<' prefixes skipped. */
static char format_char(const Py_buffer *v) {
  const char *f = v->format ? v->format : "B";
  while (*f == '@' || *f == '=' || *f == '<') f++;
  return f[0] && !f[1] ? f[0] : '?';
}

/* A C-contiguous buffer of `kind` elements; NULL obj (None) allowed when
 * optional (then v->buf is NULL, v->len 0). Returns 0 on success. */
static int get_buffer(PyObject *obj, const char *what, int kind, int writable, int optional, Py_buffer *v) {
  memset(v, 0, sizeof *v);
  if (obj == Py_None && optional) return 0;
  int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
  if (PyObject_GetBuffer(obj, v, flags) != 0) {
    PyErr_Format(PyExc_ValueError, "%s: a C-contiguous%s array is required", what, writable ? ", writable" : "");
    return -1;
  }
  char c = format_char(v);
  int ok = v->itemsize == (kind == B_F32 ? 4 : 8) &&
           (kind == B_F32 ? c == 'f' : kind == B_I64 ? (c == 'q' || c == 'l') : (c == 'Q' || c == 'L'));
  if (!ok) {
    static const char *const names[] = {"int64", "uint64", "float32"};
    PyErr_Format(PyExc_TypeError, "%s: dtype %s is required (got format '%s')", what, names[kind], v->format ? v->format : "B");
    PyBuffer_Release(v);
    return -1;
  }
  return 0;
}

static size_t count_of(const Py_buffer *v) { return v->buf ? (size_t)(v->len / v->itemsize) : 0; }

static void release(Py_buffer *v, int n) {
  for (int i = 0; i < n; i++)
    if (v[i].obj) PyBuffer_Release(&v[i]);
}

/* ---- options ----------------------------------------------------------- */
/* Sets the fields named in `d` (a dict or None) on *o, by name. */
static int options_from(PyObject *d, towerrt_options *o, PyObject **keep) {
  towerrt_options_init(o);
  *keep = NULL;
  if (!d || d == Py_None) return 0;
  if (!PyDict_Check(d)) return PyErr_SetString(PyExc_TypeError, "options must be a dict"), -1;
  PyObject *key, *val;
  Py_ssize_t pos = 0;
  while (PyDict_Next(d, &pos, &key, &val)) {
    const char *k = PyUnicode_AsUTF8(key);
    if (!k) return -1;
    if (!strcmp(k, "isa")) {
      if (val == Py_None) continue;
      o->isa = PyUnicode_AsUTF8(val); /* valid while `val` lives: *keep holds the dict */
      if (!o->isa) return -1;
      continue;
    }
    unsigned long long u = PyLong_AsUnsignedLongLong(val);
    if (PyErr_Occurred()) return PyErr_Format(PyExc_TypeError, "option %s must be a non-negative int", k), -1;
    uint32_t v32 = (uint32_t)u;
    if (u > UINT32_MAX) return PyErr_Format(PyExc_ValueError, "option %s = %llu is out of range", k, u), -1;
    if (!strcmp(k, "verify_checksums")) o->verify_checksums = v32;
    else if (!strcmp(k, "max_k")) o->max_k = v32;
    else if (!strcmp(k, "fe_layer_mask")) o->fe_layer_mask = v32;
    else if (!strcmp(k, "output_logits")) o->output_logits = v32;
    else if (!strcmp(k, "allow_foreign_items")) o->allow_foreign_items = v32;
    else if (!strcmp(k, "max_topn")) o->max_topn = v32;
    else if (!strcmp(k, "skip_unknown_items")) o->skip_unknown_items = v32;
    else if (!strcmp(k, "items_verify")) o->items_verify = v32;
    else return PyErr_Format(PyExc_ValueError, "unknown option '%s'", k), -1;
  }
  *keep = d;
  return 0;
}

/* ---- model and items ----------------------------------------------------- */
static PyObject *model_load(PyObject *self, PyObject *args) {
  const char *path;
  PyObject *od = NULL, *keep;
  towerrt_options o;
  if (!PyArg_ParseTuple(args, "s|O", &path, &od) || options_from(od, &o, &keep)) return NULL;
  towerrt_model *m = NULL;
  towerrt_status st;
  Py_BEGIN_ALLOW_THREADS
  st = towerrt_model_load(path, &o, &m);
  Py_END_ALLOW_THREADS
  if (st) return raise_status(st, towerrt_last_error());
  return PyCapsule_New(m, CAP_MODEL, free_model);
}

static PyObject *model_info(PyObject *self, PyObject *cap) {
  towerrt_model *m = unwrap(cap, CAP_MODEL);
  if (!m) return NULL;
  return Py_BuildValue("{s:n,s:n,s:n,s:n,s:I,s:s}", "user_id_slots", (Py_ssize_t)towerrt_model_id_slots(m, TOWERRT_USER),
                       "user_dense_width", (Py_ssize_t)towerrt_model_dense_width(m, TOWERRT_USER), "item_id_slots",
                       (Py_ssize_t)towerrt_model_id_slots(m, TOWERRT_ITEM), "item_dense_width",
                       (Py_ssize_t)towerrt_model_dense_width(m, TOWERRT_ITEM), "fe_layer_mask", towerrt_model_fe_layer_mask(m), "isa",
                       towerrt_model_isa(m));
}

static PyObject *model_describe(PyObject *self, PyObject *cap) {
  towerrt_model *m = unwrap(cap, CAP_MODEL);
  if (!m) return NULL;
  size_t n = towerrt_model_describe(m, NULL, 0);
  char *buf = PyMem_Malloc(n + 1);
  if (!buf) return PyErr_NoMemory();
  towerrt_model_describe(m, buf, n + 1);
  PyObject *s = PyUnicode_FromString(buf);
  PyMem_Free(buf);
  return s;
}

/* (ids, dense) buffers as a towerrt_features. */
static int features_from(PyObject *ids, PyObject *dense, const char *what, Py_buffer v[2], towerrt_features *f) {
  if (get_buffer(ids, what, B_I64, 0, 0, &v[0])) return -1;
  if (get_buffer(dense, what, B_F32, 0, 1, &v[1])) {
    release(v, 1);
    return -1;
  }
  *f = (towerrt_features){v[0].buf, count_of(&v[0]), v[1].buf, count_of(&v[1])};
  return 0;
}

static PyObject *items_build(PyObject *self, PyObject *args) {
  PyObject *cap, *ids, *dense, *keys;
  const char *path;
  if (!PyArg_ParseTuple(args, "OOOOs", &cap, &ids, &dense, &keys, &path)) return NULL;
  towerrt_model *m = unwrap(cap, CAP_MODEL);
  Py_buffer v[3];
  towerrt_features f;
  if (!m || features_from(ids, dense, "item features", v, &f)) return NULL;
  if (get_buffer(keys, "item_ids", B_U64, 0, 0, &v[2])) {
    release(v, 2);
    return NULL;
  }
  towerrt_status st;
  Py_BEGIN_ALLOW_THREADS
  st = towerrt_items_build(m, &f, v[2].buf, count_of(&v[2]), path);
  Py_END_ALLOW_THREADS
  release(v, 3);
  if (st) return raise_status(st, towerrt_last_error());
  Py_RETURN_NONE;
}

static PyObject *items_load(PyObject *self, PyObject *args) {
  const char *path;
  PyObject *od = NULL, *keep;
  towerrt_options o;
  if (!PyArg_ParseTuple(args, "s|O", &path, &od) || options_from(od, &o, &keep)) return NULL;
  towerrt_items *it = NULL;
  towerrt_status st;
  Py_BEGIN_ALLOW_THREADS
  st = towerrt_items_load(path, &o, &it);
  Py_END_ALLOW_THREADS
  if (st) return raise_status(st, towerrt_last_error());
  return PyCapsule_New(it, CAP_ITEMS, free_items);
}

static PyObject *items_info(PyObject *self, PyObject *cap) {
  towerrt_items *it = unwrap(cap, CAP_ITEMS);
  if (!it) return NULL;
  return Py_BuildValue("(nii)", (Py_ssize_t)towerrt_items_count(it), (int)towerrt_items_precision(it), (int)towerrt_items_centring(it));
}

static PyObject *items_quantize(PyObject *self, PyObject *args) {
  PyObject *cap;
  int precision, centring = TOWERRT_CENTRING_NONE;
  const char *path;
  if (!PyArg_ParseTuple(args, "Ois|i", &cap, &precision, &path, &centring)) return NULL;
  towerrt_items *it = unwrap(cap, CAP_ITEMS);
  if (!it) return NULL;
  /* -1: the runtime's default for this store and precision, as `towerrt quantize` */
  if (centring < 0) centring = (int)towerrt_items_default_centring(it, (towerrt_precision)precision, NULL);
  towerrt_status st;
  Py_BEGIN_ALLOW_THREADS
  st = towerrt_items_quantize_centred(it, (towerrt_precision)precision, (towerrt_centring)centring, path);
  Py_END_ALLOW_THREADS
  if (st) return raise_status(st, towerrt_last_error());
  Py_RETURN_NONE;
}

static PyObject *model_quantize(PyObject *self, PyObject *args) {
  PyObject *cap, *ids, *dense;
  int precision;
  Py_ssize_t n_users;
  const char *path;
  if (!PyArg_ParseTuple(args, "OiOOns", &cap, &precision, &ids, &dense, &n_users, &path)) return NULL;
  towerrt_model *m = unwrap(cap, CAP_MODEL);
  if (!m) return NULL;
  Py_buffer v[2] = {{0}};
  towerrt_features f, *fp = NULL;
  if (ids != Py_None) {
    if (features_from(ids, dense, "calibration users", v, &f)) return NULL;
    fp = &f;
  }
  towerrt_status st;
  Py_BEGIN_ALLOW_THREADS
  st = towerrt_model_quantize(m, (towerrt_precision)precision, fp, fp ? (size_t)n_users : 0, path);
  Py_END_ALLOW_THREADS
  release(v, 2);
  if (st) return raise_status(st, towerrt_last_error());
  Py_RETURN_NONE;
}

/* ---- streaming builds, merges, delta stores -------------------------------- */
#define CAP_BUILDER "towerrt_items_builder"

/* The capsule owns a slot so that finish / abort can empty it (a capsule's
 * pointer cannot be NULL): a builder dropped unfinished is aborted. */
typedef struct builder_slot {
  towerrt_items_builder *b;
} builder_slot;

static void free_builder(PyObject *c) {
  builder_slot *slot = PyCapsule_GetPointer(c, CAP_BUILDER);
  if (!slot) return;
  towerrt_items_builder_abort(slot->b);
  PyMem_Free(slot);
}

static builder_slot *open_slot(PyObject *c) {
  builder_slot *slot = PyCapsule_GetPointer(c, CAP_BUILDER);
  if (slot && !slot->b) {
    PyErr_SetString(PyExc_ValueError, "the builder is finished or aborted");
    return NULL;
  }
  return slot;
}

static PyObject *builder_open(PyObject *self, PyObject *args) {
  PyObject *cap;
  const char *path;
  int precision;
  unsigned int threads, shard_index, shard_count;
  unsigned long long expected, input_rows;
  if (!PyArg_ParseTuple(args, "OsiIKIIK", &cap, &path, &precision, &threads, &expected, &shard_index, &shard_count, &input_rows))
    return NULL;
  towerrt_model *m = unwrap(cap, CAP_MODEL);
  if (!m) return NULL;
  towerrt_build_options o;
  towerrt_build_options_init(&o);
  o.precision = (towerrt_precision)precision;
  o.threads = threads;
  o.expected_rows = expected;
  o.shard_index = shard_index;
  o.shard_count = shard_count;
  o.input_rows = input_rows;
  builder_slot *slot = PyMem_Calloc(1, sizeof *slot);
  if (!slot) return PyErr_NoMemory();
  towerrt_status st;
  Py_BEGIN_ALLOW_THREADS
  st = towerrt_items_builder_open(m, path, &o, &slot->b);
  Py_END_ALLOW_THREADS
  if (st) {
    PyMem_Free(slot);
    return raise_status(st, towerrt_last_error());
  }
  PyObject *c = PyCapsule_New(slot, CAP_BUILDER, free_builder);
  if (!c) {
    towerrt_items_builder_abort(slot->b);
    PyMem_Free(slot);
  }
  return c;
}

/* (builder, ids, dense, item_ids[, ordinals]): ordinals None or absent: a plain append. */
static PyObject *builder_append(PyObject *self, PyObject *args) {
  PyObject *cap, *ids, *dense, *keys, *ords = Py_None;
  if (!PyArg_ParseTuple(args, "OOOO|O", &cap, &ids, &dense, &keys, &ords)) return NULL;
  builder_slot *slot = open_slot(cap);
  Py_buffer v[4];
  towerrt_features f;
  if (!slot || features_from(ids, dense, "item features", v, &f)) return NULL;
  if (get_buffer(keys, "item_ids", B_U64, 0, 0, &v[2])) {
    release(v, 2);
    return NULL;
  }
  if (get_buffer(ords, "ordinals", B_U64, 0, 1, &v[3]) || (v[3].buf && count_of(&v[3]) != count_of(&v[2]))) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "ordinals: one per item id");
    release(v, 4);
    return NULL;
  }
  towerrt_status st;
  Py_BEGIN_ALLOW_THREADS
  st = v[3].buf ? towerrt_items_builder_append_ordered(slot->b, &f, v[2].buf, v[3].buf, count_of(&v[2]))
                : towerrt_items_builder_append(slot->b, &f, v[2].buf, count_of(&v[2]));
  Py_END_ALLOW_THREADS
  release(v, 4);
  if (st) return raise_status(st, towerrt_last_error());
  return PyLong_FromSize_t(towerrt_items_builder_rows(slot->b));
}

static PyObject *builder_finish(PyObject *self, PyObject *args) {
  PyObject *cap;
  int abort_it = 0;
  if (!PyArg_ParseTuple(args, "O|p", &cap, &abort_it)) return NULL;
  builder_slot *slot = open_slot(cap);
  if (!slot) return NULL;
  towerrt_items_builder *b = slot->b;
  slot->b = NULL;
  if (abort_it) {
    towerrt_items_builder_abort(b);
    Py_RETURN_NONE;
  }
  towerrt_status st;
  Py_BEGIN_ALLOW_THREADS
  st = towerrt_items_builder_finish(b);
  Py_END_ALLOW_THREADS
  if (st) return raise_status(st, towerrt_last_error());
  Py_RETURN_NONE;
}

/* A sequence of str paths -> a PyMem array of UTF-8 pointers (valid while seq lives). */
static const char **path_list(PyObject *seq, Py_ssize_t *n) {
  *n = PySequence_Fast_GET_SIZE(seq);
  const char **p = PyMem_Calloc((size_t)(*n ? *n : 1), sizeof *p);
  if (!p) return (const char **)PyErr_NoMemory();
  for (Py_ssize_t i = 0; i < *n; i++)
    if (!(p[i] = PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(seq, i)))) {
      PyMem_Free(p);
      return NULL;
    }
  return p;
}

static PyObject *items_merge(PyObject *self, PyObject *args) {
  PyObject *cap, *inputs;
  const char *path;
  if (!PyArg_ParseTuple(args, "OOs", &cap, &inputs, &path)) return NULL;
  towerrt_model *m = unwrap(cap, CAP_MODEL);
  PyObject *seq = m ? PySequence_Fast(inputs, "inputs must be a sequence of paths") : NULL;
  if (!seq) return NULL;
  Py_ssize_t n;
  const char **p = path_list(seq, &n);
  towerrt_status st = TOWERRT_OK;
  if (p) {
    Py_BEGIN_ALLOW_THREADS
    st = towerrt_items_merge(m, p, (size_t)n, path);
    Py_END_ALLOW_THREADS
  }
  PyMem_Free(p);
  Py_DECREF(seq);
  if (!p) return NULL;
  if (st) return raise_status(st, towerrt_last_error());
  Py_RETURN_NONE;
}

static PyObject *item_shards(PyObject *self, PyObject *args) {
  PyObject *keys, *out;
  unsigned int n;
  if (!PyArg_ParseTuple(args, "OIO", &keys, &n, &out)) return NULL;
  Py_buffer v[2];
  if (get_buffer(keys, "item_ids", B_U64, 0, 0, &v[0])) return NULL;
  if (get_buffer(out, "out", B_U64, 1, 0, &v[1]) || count_of(&v[1]) != count_of(&v[0])) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "out: one uint64 per item id");
    release(v, v[1].obj ? 2 : 1);
    return NULL;
  }
  const uint64_t *k = v[0].buf;
  uint64_t *o = v[1].buf;
  for (size_t i = 0, c = count_of(&v[0]); i < c; i++) o[i] = towerrt_item_shard(k[i], n);
  release(v, 2);
  Py_RETURN_NONE;
}

static PyObject *model_fields(PyObject *self, PyObject *cap) {
  towerrt_model *m = unwrap(cap, CAP_MODEL);
  if (!m) return NULL;
  size_t n = towerrt_model_field_count(m);
  PyObject *list = PyList_New((Py_ssize_t)n);
  for (size_t i = 0; list && i < n; i++) {
    towerrt_field_info fi;
    towerrt_model_field(m, i, &fi);
    PyObject *t = Py_BuildValue("(siIII)", fi.name, (int)fi.side, fi.kind, fi.width, fi.vocab);
    if (!t) {
      Py_DECREF(list);
      return NULL;
    }
    PyList_SET_ITEM(list, (Py_ssize_t)i, t);
  }
  return list;
}

static PyObject *items_make_delta(PyObject *self, PyObject *args) {
  PyObject *bc, *cc, *removed;
  const char *path;
  if (!PyArg_ParseTuple(args, "OOOs", &bc, &cc, &removed, &path)) return NULL;
  towerrt_items *base = unwrap(bc, CAP_ITEMS), *changes = cc == Py_None ? NULL : unwrap(cc, CAP_ITEMS);
  if (!base || (cc != Py_None && !changes)) return NULL;
  Py_buffer v;
  if (get_buffer(removed, "removed", B_U64, 0, 1, &v)) return NULL;
  towerrt_status st;
  Py_BEGIN_ALLOW_THREADS
  st = towerrt_items_make_delta(base, changes, v.buf, count_of(&v), path);
  Py_END_ALLOW_THREADS
  release(&v, 1);
  if (st) return raise_status(st, towerrt_last_error());
  Py_RETURN_NONE;
}

static PyObject *items_overlay(PyObject *self, PyObject *args) {
  PyObject *bc, *list;
  if (!PyArg_ParseTuple(args, "OO", &bc, &list)) return NULL;
  towerrt_items *base = unwrap(bc, CAP_ITEMS);
  PyObject *seq = base ? PySequence_Fast(list, "deltas must be a sequence") : NULL;
  if (!seq) return NULL;
  Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
  const towerrt_items **d = PyMem_Calloc((size_t)(n ? n : 1), sizeof *d);
  int bad = !d;
  for (Py_ssize_t i = 0; !bad && i < n; i++) bad = !(d[i] = unwrap(PySequence_Fast_GET_ITEM(seq, i), CAP_ITEMS));
  towerrt_items *out = NULL;
  towerrt_status st = TOWERRT_OK;
  if (!bad) {
    Py_BEGIN_ALLOW_THREADS
    st = towerrt_items_overlay(base, d, (size_t)n, &out);
    Py_END_ALLOW_THREADS
  }
  PyMem_Free(d);
  Py_DECREF(seq);
  if (bad) return d ? NULL : PyErr_NoMemory();
  if (st) return raise_status(st, towerrt_last_error());
  return PyCapsule_New(out, CAP_ITEMS, free_items);
}

static PyObject *items_compact(PyObject *self, PyObject *args) {
  PyObject *cap;
  const char *path;
  if (!PyArg_ParseTuple(args, "Os", &cap, &path)) return NULL;
  towerrt_items *it = unwrap(cap, CAP_ITEMS);
  if (!it) return NULL;
  towerrt_status st;
  Py_BEGIN_ALLOW_THREADS
  st = towerrt_items_compact(it, path);
  Py_END_ALLOW_THREADS
  if (st) return raise_status(st, towerrt_last_error());
  Py_RETURN_NONE;
}

/* ---- sessions ------------------------------------------------------------ */
static PyObject *session_create(PyObject *self, PyObject *args) {
  PyObject *mc, *ic, *od = NULL, *keep;
  towerrt_options o;
  if (!PyArg_ParseTuple(args, "OO|O", &mc, &ic, &od) || options_from(od, &o, &keep)) return NULL;
  towerrt_model *m = unwrap(mc, CAP_MODEL);
  towerrt_items *it = ic == Py_None ? NULL : unwrap(ic, CAP_ITEMS);
  if (!m || (ic != Py_None && !it)) return NULL;
  towerrt_session *s = NULL;
  towerrt_status st;
  Py_BEGIN_ALLOW_THREADS
  st = towerrt_session_create(m, it, &o, &s);
  Py_END_ALLOW_THREADS
  if (st) return raise_status(st, towerrt_last_error());
  return PyCapsule_New(s, CAP_SESSION, free_session);
}

static PyObject *session_info(PyObject *self, PyObject *cap) {
  towerrt_session *s = unwrap(cap, CAP_SESSION);
  if (!s) return NULL;
  return Py_BuildValue("(nnn)", (Py_ssize_t)towerrt_session_user_heads_size(s), (Py_ssize_t)towerrt_session_max_topn(s),
                       (Py_ssize_t)towerrt_session_last_skipped(s));
}

static PyObject *session_set_items(PyObject *self, PyObject *args) {
  PyObject *sc, *ic;
  if (!PyArg_ParseTuple(args, "OO", &sc, &ic)) return NULL;
  towerrt_session *s = unwrap(sc, CAP_SESSION);
  towerrt_items *it = ic == Py_None ? NULL : unwrap(ic, CAP_ITEMS);
  if (!s || (ic != Py_None && !it)) return NULL;
  towerrt_status st;
  Py_BEGIN_ALLOW_THREADS
  st = towerrt_session_set_items(s, it);
  Py_END_ALLOW_THREADS
  if (st) return raise_status(st, towerrt_last_error());
  Py_RETURN_NONE;
}

/* The scoring calls share one shape: session, user (ids, dense) or heads,
 * candidates, outputs; `which` picks the C function. */
enum { S_IDS, S_TOPN, S_FEATURES, S_FEATURES_TOPN, S_HEADS, S_HEADS_TOPN, S_USER_HEADS };

static towerrt_status call(int which, towerrt_session *s, const towerrt_features *u, const float *heads, const void *cand,
                           const towerrt_features *items, size_t k, size_t n, void *out_ids, float *out) {
  switch (which) {
    case S_IDS: return towerrt_score(s, u, cand, k, out);
    case S_TOPN: return towerrt_score_topn(s, u, cand, k, n, out_ids, out);
    case S_FEATURES: return towerrt_score_features(s, u, items, k, out);
    case S_FEATURES_TOPN: return towerrt_score_features_topn(s, u, items, k, n, out_ids, out);
    case S_HEADS: return towerrt_score_heads(s, heads, cand, k, out);
    case S_HEADS_TOPN: return towerrt_score_heads_topn(s, heads, cand, k, n, out_ids, out);
    default: return towerrt_user_heads(s, u, k, out);
  }
}

/* args: (session, which, user_ids|heads, user_dense, cand_ids, item_dense, k, n, out_ids, out_scores)
 *   S_IDS/S_TOPN: cand_ids uint64 item ids; S_FEATURES*: cand_ids int64
 *   item feature ids + item_dense; S_HEADS*: user_ids is the float32 heads;
 *   S_USER_HEADS: k = users, out_scores the heads. */
typedef struct score_args {
  int which;
  PyObject *user, *user_dense, *cand, *item_dense, *out_ids, *out;
  Py_ssize_t k, n;
} score_args;

/* The argument checks of every scoring call, in one place: gets the
 * buffers (v[0..1] user ids + dense or v[0] the heads, v[2..3] candidate
 * ids or features, v[4] out ids, v[5] out) and checks their sizes against
 * k / n, so that no call reads or writes past a buffer (the Python layer
 * made the outputs and gives the clear messages). 0, or -1 with v released. */
static int score_buffers(towerrt_session *s, const score_args *a, Py_buffer v[6], towerrt_features *u, towerrt_features *items) {
  memset(v, 0, 6 * sizeof *v);
  int w = a->which;
  if (w < S_IDS || w > S_USER_HEADS) return PyErr_Format(PyExc_ValueError, "unknown scoring call %d", w), -1;
  int heads = w == S_HEADS || w == S_HEADS_TOPN, feats = w == S_FEATURES || w == S_FEATURES_TOPN;
  int topn = w == S_TOPN || w == S_FEATURES_TOPN || w == S_HEADS_TOPN, by_ids = !feats && w != S_USER_HEADS;
  int bad = heads ? get_buffer(a->user, "heads", B_F32, 0, 0, &v[0]) : features_from(a->user, a->user_dense, "user", v, u);
  if (!bad && w != S_USER_HEADS)
    bad = feats ? features_from(a->cand, a->item_dense, "items", v + 2, items) : get_buffer(a->cand, "item_ids", B_U64, 0, 0, &v[2]);
  if (!bad && topn) bad = get_buffer(a->out_ids, "out ids", B_U64, 1, 0, &v[4]);
  if (!bad) bad = get_buffer(a->out, "out", B_F32, 1, 0, &v[5]);
  size_t k = (size_t)a->k, n = (size_t)a->n, heads_size = towerrt_session_user_heads_size(s);
  size_t want_out = topn ? n : w == S_USER_HEADS ? k * heads_size : k;
  if (!bad && (a->k < 0 || a->n < 0 || count_of(&v[5]) < want_out || (topn && count_of(&v[4]) < n) ||
               (by_ids && count_of(&v[2]) < k) || (heads && count_of(&v[0]) < heads_size))) {
    PyErr_SetString(PyExc_ValueError, "buffer sizes do not match k / n");
    bad = 1;
  }
  if (bad) release(v, 6);
  return bad ? -1 : 0;
}

static PyObject *score(PyObject *self, PyObject *args) {
  PyObject *sc;
  score_args a;
  if (!PyArg_ParseTuple(args, "OiOOOOnnOO", &sc, &a.which, &a.user, &a.user_dense, &a.cand, &a.item_dense, &a.k, &a.n, &a.out_ids,
                        &a.out))
    return NULL;
  towerrt_session *s = unwrap(sc, CAP_SESSION);
  Py_buffer v[6];
  towerrt_features u = {0}, items = {0};
  if (!s || score_buffers(s, &a, v, &u, &items)) return NULL;
  towerrt_status st;
  Py_BEGIN_ALLOW_THREADS
  st = call(a.which, s, &u, v[0].buf, v[2].buf, &items, (size_t)a.k, (size_t)a.n, v[4].buf, v[5].buf);
  Py_END_ALLOW_THREADS
  release(v, 6);
  if (st) return raise_status(st, towerrt_session_error(s));
  Py_RETURN_NONE;
}

static PyObject *status_names(PyObject *self, PyObject *unused) {
  PyObject *t = PyTuple_New(TOWERRT_STATUS_COUNT_);
  for (int i = 0; t && i < TOWERRT_STATUS_COUNT_; i++) PyTuple_SET_ITEM(t, i, PyUnicode_FromString(towerrt_status_name((towerrt_status)i)));
  return t;
}

static PyObject *version(PyObject *self, PyObject *unused) { return PyUnicode_FromString(towerrt_version_string()); }

static PyMethodDef k_methods[] = {
    {"_set_errors", set_errors, METH_O, NULL},
    {"status_names", status_names, METH_NOARGS, NULL},
    {"version", version, METH_NOARGS, NULL},
    {"model_load", model_load, METH_VARARGS, NULL},
    {"model_info", model_info, METH_O, NULL},
    {"model_describe", model_describe, METH_O, NULL},
    {"model_quantize", model_quantize, METH_VARARGS, NULL},
    {"items_build", items_build, METH_VARARGS, NULL},
    {"items_load", items_load, METH_VARARGS, NULL},
    {"items_info", items_info, METH_O, NULL},
    {"items_quantize", items_quantize, METH_VARARGS, NULL},
    {"builder_open", builder_open, METH_VARARGS, NULL},
    {"builder_append", builder_append, METH_VARARGS, NULL},
    {"builder_finish", builder_finish, METH_VARARGS, NULL},
    {"items_merge", items_merge, METH_VARARGS, NULL},
    {"item_shards", item_shards, METH_VARARGS, NULL},
    {"model_fields", model_fields, METH_O, NULL},
    {"items_make_delta", items_make_delta, METH_VARARGS, NULL},
    {"items_overlay", items_overlay, METH_VARARGS, NULL},
    {"items_compact", items_compact, METH_VARARGS, NULL},
    {"session_create", session_create, METH_VARARGS, NULL},
    {"session_info", session_info, METH_O, NULL},
    {"session_set_items", session_set_items, METH_VARARGS, NULL},
    {"score", score, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef k_module = {PyModuleDef_HEAD_INIT, "_towerrt", "towerrt C API (use the towerrt package)", -1, k_methods,
                                      NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__towerrt(void) {
  PyObject *m = PyModule_Create(&k_module);
  if (!m) return NULL;
  PyModule_AddIntConstant(m, "S_IDS", S_IDS);
  PyModule_AddIntConstant(m, "S_TOPN", S_TOPN);
  PyModule_AddIntConstant(m, "S_FEATURES", S_FEATURES);
  PyModule_AddIntConstant(m, "S_FEATURES_TOPN", S_FEATURES_TOPN);
  PyModule_AddIntConstant(m, "S_HEADS", S_HEADS);
  PyModule_AddIntConstant(m, "S_HEADS_TOPN", S_HEADS_TOPN);
  PyModule_AddIntConstant(m, "S_USER_HEADS", S_USER_HEADS);
  return m;
}
