/* Files under a running process and the load-time guards of issue 13
 * (docs/serving.md "Files under a running process", docs/errors.md):
 *  - the four ways a served file changes (a store truncated to 0 / a model
 *    to 4 KB; the id map rewritten in place through another descriptor;
 *    the heads rewritten in place; `cp new served`), each scored in a
 *    child process under both load modes, the outcome compared with the
 *    documented one: TOWERRT_LOAD_COPY always gives the scores of the file
 *    as loaded; TOWERRT_LOAD_MAP never reads out of bounds, and crashes
 *    (SIGBUS) only where the file was truncated under it;
 *  - padding between sections must be zero;
 *  - options.max_load_bytes bounds what a load allocates.
 * usage: test_file_safety FIXTURE_DIR */
#define _GNU_SOURCE
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/container.h"
#include "test_util.h"
#include "towerrt.h"

static const char *g_fixture;
static char g_dir[64];
static char g_model[128], g_store[128], g_other[128];

/* A served pair: model + store loaded with one load mode, one request. */
typedef struct served {
  towerrt_model *m;
  towerrt_items *it;
  towerrt_session *s;
  trt_request q;
  size_t k;
  float ref[256];
} served;

enum change { TRUNCATE_STORE, TRUNCATE_MODEL, REWRITE_ID_MAP, REWRITE_HEADS, CP_OVER, N_CHANGES };
static const char *const k_change_names[N_CHANGES] = {"store truncated to 0 bytes", "model truncated to 4 KB",
                                                      "id map rewritten in place", "heads rewritten in place", "cp new.twi over the store"};

/* What a child reports: a status (exit code), or death by a signal. */
typedef struct outcome {
  int signal; /* 0: exited */
  int status; /* towerrt_status, or 100 + n: scores differ from the reference */
} outcome;

static int copy_file(const char *from, const char *to) {
  size_t n;
  unsigned char *b = test_read_file(from, &n);
  int ok = b && test_write_file(to, b, n);
  free(b);
  return ok;
}

/* Writes `n` bytes at `off` of `path` through a new descriptor, as another
 * program editing the file in place would. */
static int write_in_place(const char *path, uint64_t off, const void *p, size_t n) {
  int fd = open(path, O_WRONLY);
  if (fd < 0) return 0;
  int ok = pwrite(fd, p, n, (off_t)off) == (ssize_t)n;
  return close(fd) == 0 && ok;
}

/* What `cp new served` does: the same inode, truncated, then written. */
static int cp_over(const char *from, const char *to) {
  size_t n;
  unsigned char *b = test_read_file(from, &n);
  int fd = open(to, O_WRONLY | O_TRUNC);
  int ok = b && fd >= 0 && write(fd, b, n) == (ssize_t)n;
  if (fd >= 0 && close(fd) != 0) ok = 0;
  free(b);
  return ok;
}

/* Offset and size of section `kind` of the file at path. */
static int find_section(const char *path, uint32_t kind, uint64_t *off, uint64_t *size) {
  size_t n;
  unsigned char *b = test_read_file(path, &n);
  trt_container c;
  int ok = b && trt_container_open(b, n, (const char *)b, 0, &c) == TOWERRT_OK && c.sections[kind].data;
  if (ok) *off = c.sections[kind].offset, *size = c.sections[kind].size;
  free(b);
  return ok;
}

/* The store of the fixture, and another one with every id moved (same
 * size: `cp` of it over the served store changes no offset). */
static void make_files(void) {
  towerrt_model *m = NULL;
  snprintf(g_model, sizeof g_model, "%s/model.twr", g_dir);
  snprintf(g_store, sizeof g_store, "%s/items.twi", g_dir);
  snprintf(g_other, sizeof g_other, "%s/new.twi", g_dir);
  char src[512];
  snprintf(src, sizeof src, "%s/model.twr", g_fixture);
  if (!copy_file(src, g_model) || towerrt_model_load(g_model, NULL, &m) || test_build_store(m, g_fixture, g_store)) {
    fprintf(stderr, "test_file_safety: cannot set up %s: %s\n", g_dir, towerrt_last_error());
    exit(1);
  }
  trt_rows rows = {0};
  CHECK(test_read_catalog(m, g_fixture, &rows) == TOWERRT_OK, "catalog");
  for (size_t i = 0; i < rows.n_keys; i++) rows.keys[i] += 1000003;
  towerrt_features f = {rows.ids, rows.n_ids, rows.dense, rows.n_dense};
  CHECK(towerrt_items_build(m, &f, rows.keys, rows.n_keys, g_other) == TOWERRT_OK, "new store: %s", towerrt_last_error());
  trt_rows_free(&rows);
  towerrt_model_free(m);
}

static int serve(served *v, uint32_t mode) {
  memset(v, 0, sizeof *v);
  towerrt_options o;
  towerrt_options_init(&o);
  o.load_mode = mode;
  if (towerrt_model_load(g_model, &o, &v->m) || towerrt_items_load(g_store, &o, &v->it) ||
      towerrt_session_create(v->m, v->it, &o, &v->s) || !test_first_request(v->m, g_fixture, "requests_ids.txt", &v->q))
    return 0;
  v->k = v->q.items.n_keys < 256 ? v->q.items.n_keys : 256;
  towerrt_features u = {v->q.user.ids, v->q.user.n_ids, v->q.user.dense, v->q.user.n_dense};
  return towerrt_score(v->s, &u, v->q.items.keys, v->k, v->ref) == TOWERRT_OK;
}

static void unserve(served *v) {
  towerrt_session_free(v->s);
  towerrt_items_free(v->it);
  towerrt_model_free(v->m);
  trt_request_free(&v->q);
}

/* Changes the served files as `c` says. */
static int apply(enum change c) {
  uint64_t off, size;
  switch (c) {
    case TRUNCATE_STORE: return truncate(g_store, 0) == 0;
    case TRUNCATE_MODEL: return truncate(g_model, 4096) == 0;
    case REWRITE_ID_MAP: {
      /* every row of the map set past the item count: the SIGSEGV of the
       * issue, when a lookup trusted the row it read */
      if (!find_section(g_store, TRT_SEC_ID_MAP, &off, &size)) return 0;
      size_t n;
      unsigned char *b = test_read_file(g_store, &n);
      for (uint64_t s = off + 16; b && s + 16 <= off + size; s += 16)
        if (trt_rd32(b + s + 8) != 0xFFFFFFFFu) memset(b + s + 8, 0x7F, 4);
      int ok = b && write_in_place(g_store, off, b + off, (size_t)size);
      free(b);
      return ok;
    }
    case REWRITE_HEADS: {
      if (!find_section(g_store, TRT_SEC_ITEM_HEADS, &off, &size)) return 0;
      unsigned char *z = calloc(1, (size_t)size);
      int ok = z && write_in_place(g_store, off, z, (size_t)size);
      free(z);
      return ok;
    }
    default: return cp_over(g_other, g_store);
  }
}

/* Scores the request again in a child process after the change. */
static outcome score_in_child(served *v) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    /* the default disposition, as in a serving process: sanitizers install
     * their own SIGBUS handler, which would report and abort instead */
    signal(SIGBUS, SIG_DFL);
    float got[256];
    towerrt_features u = {v->q.user.ids, v->q.user.n_ids, v->q.user.dense, v->q.user.n_dense};
    towerrt_status st = towerrt_score(v->s, &u, v->q.items.keys, v->k, got);
    int differ = 0;
    for (size_t i = 0; !st && i < v->k; i++) differ += memcmp(&got[i], &v->ref[i], sizeof(float)) != 0;
    _exit(st ? (int)st : differ ? 100 + (differ > 99 ? 99 : differ) : 0);
  }
  int ws = 0;
  outcome r = {-1, -1};
  if (pid > 0 && waitpid(pid, &ws, 0) == pid) {
    if (WIFSIGNALED(ws)) r.signal = WTERMSIG(ws), r.status = -1;
    else r.signal = 0, r.status = WEXITSTATUS(ws);
  }
  return r;
}

/* The documented outcome (docs/serving.md, table "what a loaded process sees"). */
static outcome expected(enum change c, uint32_t mode) {
  if (mode == TOWERRT_LOAD_COPY) return (outcome){0, 0}; /* the scores of the file as loaded */
  switch (c) {
    case TRUNCATE_STORE:
    case TRUNCATE_MODEL: return (outcome){SIGBUS, -1};
    case REWRITE_ID_MAP: return (outcome){0, TOWERRT_ERR_UNKNOWN_ITEM}; /* rows out of range: never read */
    case REWRITE_HEADS: return (outcome){0, 100};                       /* OK, other scores: "wrong scores" */
    default: return (outcome){0, TOWERRT_ERR_UNKNOWN_ITEM};             /* the new file's ids */
  }
}

static void one_case(enum change c, uint32_t mode) {
  make_files();
  served v;
  const char *mname = mode == TOWERRT_LOAD_COPY ? "LOAD_COPY" : "LOAD_MAP";
  if (!serve(&v, mode)) {
    CHECK(0, "%s: cannot serve the fixture: %s", mname, towerrt_last_error());
    unserve(&v);
    return;
  }
  CHECK(apply(c), "%s: cannot apply the change", k_change_names[c]);
  outcome got = score_in_child(&v), want = expected(c, mode);
  /* "OK with other scores" is 100 + the number of scores that differ */
  int same = got.signal == want.signal && (want.status == 100 ? got.status >= 100 : got.status == want.status);
  CHECK(same, "%s, %s: child %s %d, documented %s %d", k_change_names[c], mname, got.signal ? "died of signal" : "exited with",
        got.signal ? got.signal : got.status, want.signal ? "signal" : "status", want.signal ? want.signal : want.status);
  printf("  %-28s %-10s %s %d\n", k_change_names[c], mname, got.signal ? "signal" : "status", got.signal ? got.signal : got.status);
  unserve(&v);
}

/* ---- padding between sections ------------------------------------------ */
static void padding_checked(void) {
  make_files();
  size_t n;
  unsigned char *b = test_read_file(g_store, &n);
  trt_container c;
  if (!b || trt_container_open(b, n, "TWRITEMS", 1, &c) != TOWERRT_OK) {
    CHECK(0, "cannot parse the store");
    free(b);
    return;
  }
  /* every padding byte: after the table and after each section, up to the
   * next 64-byte boundary, where no section starts */
  uint64_t starts[TRT_SEC_KIND_MAX + 2], n_spots = 0, spots[TRT_SEC_KIND_MAX + 2];
  size_t ns = 0;
  for (uint32_t k = 1; k <= TRT_SEC_KIND_MAX; k++)
    if (c.sections[k].data) starts[ns++] = c.sections[k].offset;
  uint64_t table_end = 64 + (uint64_t)trt_rd32(b + 32) * 32;
  for (uint32_t k = 0; k <= TRT_SEC_KIND_MAX; k++) {
    uint64_t end = k ? c.sections[k].offset + c.sections[k].size : table_end;
    if (k && !c.sections[k].data) continue;
    int taken = 0;
    for (size_t i = 0; i < ns; i++) taken |= starts[i] == end;
    if (!taken && end < n) spots[n_spots++] = end;
  }
  CHECK(n_spots > 0, "the store has no padding byte to flip");
  for (uint64_t i = 0; i < n_spots; i++) {
    uint64_t at = spots[i];
    CHECK(b[at] == 0, "padding byte %llu is not zero in a fresh store", (unsigned long long)at);
    b[at] = 0x5A;
    test_write_file(g_store, b, n);
    towerrt_items *it = NULL;
    towerrt_status st = towerrt_items_load(g_store, NULL, &it);
    CHECK(st == TOWERRT_ERR_FORMAT && strstr(towerrt_last_error(), "padding"), "flipped padding byte at %llu: %s (%s)",
          (unsigned long long)at, towerrt_status_name(st), towerrt_last_error());
    towerrt_items_free(it);
    b[at] = 0;
  }
  free(b);
}

/* ---- options.max_load_bytes ---------------------------------------------- */
static void load_bound(void) {
  make_files();
  towerrt_options o;
  towerrt_options_init(&o);
  CHECK(o.max_load_bytes == TOWERRT_DEFAULT_MAX_LOAD_BYTES && o.load_mode == TOWERRT_LOAD_MAP, "defaults");
  towerrt_model *m = NULL;
  towerrt_items *it = NULL;
  o.max_load_bytes = 1024; /* less than the folded weights */
  towerrt_status st = towerrt_model_load(g_model, &o, &m);
  CHECK(st == TOWERRT_ERR_LIMIT && m == NULL && strstr(towerrt_last_error(), "max_load_bytes"), "model over the bound: %s: %s",
        towerrt_status_name(st), towerrt_last_error());
  o.load_mode = TOWERRT_LOAD_COPY; /* the copy of a store counts too */
  st = towerrt_items_load(g_store, &o, &it);
  CHECK(st == TOWERRT_ERR_LIMIT && it == NULL, "store copy over the bound: %s: %s", towerrt_status_name(st), towerrt_last_error());
  o.max_load_bytes = 0; /* no bound */
  CHECK(towerrt_model_load(g_model, &o, &m) == TOWERRT_OK, "no bound: %s", towerrt_last_error());
  towerrt_model_free(m);
  o.load_mode = 7;
  m = NULL;
  CHECK(towerrt_model_load(g_model, &o, &m) == TOWERRT_ERR_INVALID_ARGUMENT && !m, "load_mode 7");
}

/* ---- two writers to one output ------------------------------------------ */
typedef struct writer_job {
  const towerrt_model *m;
  const trt_rows *rows;
  towerrt_status st;
} writer_job;

static void *write_store(void *arg) {
  writer_job *j = arg;
  towerrt_features f = {j->rows->ids, j->rows->n_ids, j->rows->dense, j->rows->n_dense};
  j->st = towerrt_items_build(j->m, &f, j->rows->keys, j->rows->n_keys, g_store);
  return NULL;
}

static void two_writers(void) {
  make_files();
  towerrt_model *m = NULL;
  trt_rows a = {0}, b = {0};
  if (towerrt_model_load(g_model, NULL, &m) || test_read_catalog(m, g_fixture, &a) || test_read_catalog(m, g_fixture, &b)) {
    CHECK(0, "two writers: setup: %s", towerrt_last_error());
    return;
  }
  for (size_t i = 0; i < b.n_keys; i++) b.keys[i] += 77;
  /* A file planted at the old fixed temporary name (PATH.tmp, a symlink
   * risk in a shared directory) is never opened, truncated or renamed. */
  char planted[160];
  snprintf(planted, sizeof planted, "%s.tmp", g_store);
  CHECK(test_write_file(planted, "precious", 8), "plant");
  for (int round = 0; round < 6; round++) {
    writer_job ja = {m, &a, TOWERRT_ERR_IO}, jb = {m, &b, TOWERRT_ERR_IO};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, write_store, &ja);
    pthread_create(&tb, NULL, write_store, &jb);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK(ja.st == TOWERRT_OK && jb.st == TOWERRT_OK, "round %d: builds gave %s / %s", round, towerrt_status_name(ja.st),
          towerrt_status_name(jb.st));
    /* whichever rename came last, the published store is one of the two, whole */
    towerrt_items *it = NULL;
    towerrt_status st = towerrt_items_load(g_store, NULL, &it);
    CHECK(st == TOWERRT_OK, "round %d: the published store does not load: %s", round, towerrt_last_error());
    if (it) CHECK(towerrt_items_count(it) == a.n_keys, "round %d: %zu items", round, towerrt_items_count(it));
    towerrt_items_free(it);
  }
  size_t n = 0;
  unsigned char *p = test_read_file(planted, &n);
  CHECK(p && n == 8 && memcmp(p, "precious", 8) == 0, "the file at %s was overwritten", planted);
  free(p);
  remove(planted);
  trt_rows_free(&a), trt_rows_free(&b);
  towerrt_model_free(m);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_file_safety FIXTURE_DIR\n");
    return 2;
  }
  g_fixture = argv[1];
  snprintf(g_dir, sizeof g_dir, "/tmp/towerrt_fsafe_%d", (int)getpid());
  mkdir(g_dir, 0700);
  printf("what a loaded process sees after its files change:\n");
  for (uint32_t mode = 0; mode <= TOWERRT_LOAD_COPY; mode++)
    for (int c = 0; c < N_CHANGES; c++) one_case((enum change)c, mode);
  padding_checked();
  load_bound();
  two_writers();
  remove(g_model), remove(g_store), remove(g_other);
  rmdir(g_dir);
  return test_finish("test_file_safety");
}
