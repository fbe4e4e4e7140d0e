/* The model repository: one folder per model, numbered version folders in
 * it, each holding model.twr and items.twi; an optional config.json per
 * model (max_k, max_topn, skip_unknown_items, items_verify). The highest version
 * present is served. A new one is loaded beside the one serving (model,
 * store, one session per worker) and switched in under the lock; requests
 * in flight hold a reference to the old one, which is freed when the last
 * of them returns. A load that fails leaves the old version serving, is
 * logged, counted, and shown by the repository index until its files
 * change. */
#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "serve.h"

enum { MAX_MODELS = 64 };

static const serve_config *g_cfg;
static unsigned g_workers;
static serve_model *g_models[MAX_MODELS];
static size_t g_n_models;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;      /* models, current pointers */
static pthread_mutex_t g_load_lock = PTHREAD_MUTEX_INITIALIZER; /* one load at a time */
static pthread_mutex_t g_poll_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_poll_cv = PTHREAD_COND_INITIALIZER;
static int g_poll_stop, g_poll_now, g_poll_started;
static pthread_t g_poller;

static int valid_name(const char *s) {
  if (!*s || *s == '.' || strlen(s) >= 128) return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
          *s == '-' || *s == '.'))
      return 0;
  return 1;
}

static long parse_version(const char *s) {
  if (!*s || strlen(s) > 9) return -1;
  long v = 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return -1;
    v = v * 10 + (*s - '0');
  }
  return v;
}

static int is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The highest numbered version folder of a model, or -1. */
static long latest_version(const char *name) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", g_cfg->repo_dir, name);
  DIR *d = opendir(path);
  if (!d) return -1;
  long best = -1;
  struct dirent *e;
  while ((e = readdir(d))) {
    long v = parse_version(e->d_name);
    if (v < 0 || v <= best) continue;
    char sub[4096 + 32];
    snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
    if (is_dir(sub)) best = v;
  }
  closedir(d);
  return best;
}

/* Sizes and modification times of a version's files: a failed version is
 * tried again only when this changes. */
static unsigned long long version_signature(const char *name, long version) {
  static const char *files[] = {"model.twr", "items.twi", "../config.json"};
  unsigned long long sig = 0; /* unsigned: wraps by definition */
  for (size_t i = 0; i < 3; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/%ld/%s", g_cfg->repo_dir, name, version, files[i]);
    struct stat st;
    if (stat(path, &st) == 0)
      sig = sig * 1000003u + (unsigned long long)st.st_size * 31u +
            (unsigned long long)st.st_mtim.tv_sec * 1000000000u + (unsigned long long)st.st_mtim.tv_nsec;
  }
  return sig;
}

/* config.json of a model, read at each load (a reload picks up changes). */
static int read_config(const char *name, towerrt_options *o, char *err, size_t cap) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s/config.json", g_cfg->repo_dir, name);
  FILE *f = fopen(path, "rb");
  if (!f) return errno == ENOENT ? 1 : (snprintf(err, cap, "TOWERRT_ERR_IO: cannot open %s: %s", path, strerror(errno)), 0);
  char buf[4096];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  json_object *j = json_tokener_parse(buf);
  if (!j || !json_object_is_type(j, json_type_object)) {
    snprintf(err, cap, "TOWERRT_ERR_FORMAT: %s is not a JSON object", path);
    json_object_put(j);
    return 0;
  }
  json_object *v;
  int ok = 1;
  json_object_object_foreach(j, key, val) {
    (void)val;
    if (strcmp(key, "max_k") && strcmp(key, "max_topn") && strcmp(key, "skip_unknown_items") && strcmp(key, "items_verify")) {
      snprintf(err, cap, "TOWERRT_ERR_FORMAT: %s: unknown key '%s' (max_k, max_topn, skip_unknown_items, items_verify)", path, key);
      ok = 0;
    }
  }
  if (ok && json_object_object_get_ex(j, "items_verify", &v)) { /* "all" (default) or "structure" (trusted files) */
    const char *lv = json_object_get_string(v);
    if (!strcmp(lv, "structure")) o->items_verify = TOWERRT_ITEMS_VERIFY_STRUCTURE;
    else if (strcmp(lv, "all")) ok = 0, snprintf(err, cap, "TOWERRT_ERR_FORMAT: %s: items_verify is \"all\" or \"structure\", not '%s'", path, lv);
  }
  if (ok && json_object_object_get_ex(j, "max_k", &v)) o->max_k = (uint32_t)json_object_get_int64(v);
  if (ok && json_object_object_get_ex(j, "max_topn", &v)) o->max_topn = (uint32_t)json_object_get_int64(v);
  if (ok && json_object_object_get_ex(j, "skip_unknown_items", &v)) o->skip_unknown_items = json_object_get_boolean(v);
  json_object_put(j);
  return ok;
}

void version_release(serve_version *v) {
  if (!v || atomic_fetch_sub(&v->refs, 1) != 1) return;
  for (unsigned i = 0; i < v->n_sessions; i++) towerrt_session_free(v->sessions[i]);
  free(v->sessions);
  towerrt_items_free(v->items);
  towerrt_model_free(v->model);
  free(v);
}

static serve_version *load_version(const char *name, long version, char *err, size_t cap) {
  towerrt_options o;
  towerrt_options_init(&o);
  o.isa = g_cfg->isa;
  if (g_cfg->max_k) o.max_k = g_cfg->max_k;
  if (g_cfg->max_topn) o.max_topn = g_cfg->max_topn;
  if (!read_config(name, &o, err, cap)) return NULL;
  serve_version *v = calloc(1, sizeof *v);
  if (!v || !(v->sessions = calloc(g_workers, sizeof *v->sessions))) {
    free(v);
    snprintf(err, cap, "TOWERRT_ERR_NO_MEMORY: version %ld", version);
    return NULL;
  }
  atomic_init(&v->refs, 1);
  snprintf(v->name, sizeof v->name, "%s", name);
  v->version = version;
  char path[4096];
  snprintf(path, sizeof path, "%s/%s/%ld/model.twr", g_cfg->repo_dir, name, version);
  towerrt_status st = towerrt_model_load(path, &o, &v->model);
  if (st == TOWERRT_OK) {
    snprintf(path, sizeof path, "%s/%s/%ld/items.twi", g_cfg->repo_dir, name, version);
    st = towerrt_items_load(path, &o, &v->items);
  }
  for (unsigned i = 0; st == TOWERRT_OK && i < g_workers; i++, v->n_sessions++)
    st = towerrt_session_create(v->model, v->items, &o, &v->sessions[i]);
  if (st != TOWERRT_OK) {
    snprintf(err, cap, "%s: %s", towerrt_status_name(st), towerrt_last_error());
    version_release(v);
    return NULL;
  }
  v->max_k = o.max_k;
  v->max_topn = (uint32_t)towerrt_session_max_topn(v->sessions[0]);
  v->id_slots = towerrt_model_id_slots(v->model, TOWERRT_USER);
  v->dense_width = towerrt_model_dense_width(v->model, TOWERRT_USER);
  return v;
}

static const char *state_name(model_state s) {
  static const char *names[] = {"LOADING", "READY", "UNAVAILABLE", "UNLOADED"};
  return names[s];
}

/* The entry for a name, created if absent (under g_lock). */
static serve_model *entry(const char *name, int create) {
  for (size_t i = 0; i < g_n_models; i++)
    if (!strcmp(g_models[i]->name, name)) return g_models[i];
  if (!create || g_n_models == MAX_MODELS) return NULL;
  serve_model *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  snprintf(m->name, sizeof m->name, "%s", name);
  m->state = MS_LOADING;
  m->failed_version = -1;
  stats_init(&m->stats);
  g_models[g_n_models++] = m;
  return m;
}

serve_model *repo_find(const char *name) {
  pthread_mutex_lock(&g_lock);
  serve_model *m = entry(name, 0);
  pthread_mutex_unlock(&g_lock);
  return m;
}

/* Brings one model to its latest version (g_load_lock held). */
static int scan_model(const char *name, int force, char *err, size_t cap) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/%s", g_cfg->repo_dir, name);
  if (!valid_name(name) || !is_dir(dir)) /* no entry for a name without a folder */
    return snprintf(err, cap, "no model folder '%s' in the repository %s", name, g_cfg->repo_dir), 0;
  pthread_mutex_lock(&g_lock);
  serve_model *m = entry(name, 1);
  long cur = m && m->current ? m->current->version : -1;
  int unloaded = m && m->state == MS_UNLOADED;
  pthread_mutex_unlock(&g_lock);
  if (!m) return snprintf(err, cap, "TOWERRT_ERR_LIMIT: more than %d models", MAX_MODELS), 0;
  if (unloaded && !force) return 1;
  long v = latest_version(name);
  char ver[32];
  snprintf(ver, sizeof ver, "%ld", v);
  if (v < 0) {
    snprintf(err, cap, "no numbered version folder in %s/%s", g_cfg->repo_dir, name);
    pthread_mutex_lock(&g_lock);
    if (!m->current) m->state = MS_UNAVAILABLE, snprintf(m->reason, sizeof m->reason, "%s", err);
    pthread_mutex_unlock(&g_lock);
    return !force;
  }
  unsigned long long sig = version_signature(name, v);
  if (!force && v == cur) return 1;
  if (!force && v == m->failed_version && sig == m->failed_sig) return 1;
  char why[512] = "";
  double t0 = now_seconds();
  serve_version *nv = load_version(name, v, why, sizeof why);
  pthread_mutex_lock(&g_lock);
  serve_version *old = NULL;
  if (nv) {
    old = m->current;
    m->current = nv;
    m->state = MS_READY;
    m->failed_version = -1;
    m->reason[0] = 0;
  } else {
    m->failed_version = v;
    m->failed_sig = sig;
    snprintf(m->reason, sizeof m->reason, "%s", why);
    if (!m->current) m->state = MS_UNAVAILABLE;
  }
  pthread_mutex_unlock(&g_lock);
  pthread_mutex_lock(&m->stats.mu);
  if (nv) m->stats.loads++, m->stats.loaded_version = v;
  else m->stats.load_failures++;
  pthread_mutex_unlock(&m->stats.mu);
  char oldv[32], ms[32];
  snprintf(oldv, sizeof oldv, "%ld", cur);
  snprintf(ms, sizeof ms, "%.1f", (now_seconds() - t0) * 1e3);
  if (nv) {
    slog("info", "model_loaded", "model", name, "version", ver, "previous", oldv, "load_ms", ms, NULL);
  } else {
    slog("error", "model_load_failed", "model", name, "version", ver, "serving", oldv, "error", why, NULL);
    snprintf(err, cap, "%s", why);
  }
  version_release(old); /* in-flight requests keep it alive until they return */
  return nv != NULL;
}

int repo_scan(const char *only, int force, char *err, size_t cap) {
  int ok = 1;
  err[0] = 0;
  pthread_mutex_lock(&g_load_lock);
  if (only) {
    ok = scan_model(only, force, err, cap);
  } else {
    DIR *d = opendir(g_cfg->repo_dir);
    if (!d) {
      snprintf(err, cap, "TOWERRT_ERR_IO: cannot open the model repository %s: %s", g_cfg->repo_dir, strerror(errno));
      pthread_mutex_unlock(&g_load_lock);
      return 0;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
      char path[4096];
      snprintf(path, sizeof path, "%s/%s", g_cfg->repo_dir, e->d_name);
      if (!valid_name(e->d_name) || !is_dir(path)) continue;
      char one[512];
      if (!scan_model(e->d_name, force, one, sizeof one) && ok) {
        ok = 0;
        snprintf(err, cap, "%s: %s", e->d_name, one);
      }
    }
    closedir(d);
  }
  pthread_mutex_unlock(&g_load_lock);
  return ok;
}

int repo_unload(const char *name) {
  pthread_mutex_lock(&g_load_lock);
  pthread_mutex_lock(&g_lock);
  serve_model *m = entry(name, 0);
  serve_version *old = NULL;
  if (m) {
    old = m->current;
    m->current = NULL;
    m->state = MS_UNLOADED;
  }
  pthread_mutex_unlock(&g_lock);
  if (m) {
    pthread_mutex_lock(&m->stats.mu);
    m->stats.loaded_version = -1;
    pthread_mutex_unlock(&m->stats.mu);
    slog("info", "model_unloaded", "model", name, NULL);
  }
  version_release(old);
  pthread_mutex_unlock(&g_load_lock);
  return m != NULL;
}

serve_version *repo_acquire(const char *name, long version, serve_model **model) {
  pthread_mutex_lock(&g_lock);
  serve_model *m = entry(name, 0);
  serve_version *v = m ? m->current : NULL;
  if (v && version >= 0 && v->version != version) v = NULL;
  if (v) atomic_fetch_add(&v->refs, 1);
  pthread_mutex_unlock(&g_lock);
  *model = m;
  return v;
}

int repo_ready(void) {
  pthread_mutex_lock(&g_lock);
  int ready = g_n_models > 0;
  for (size_t i = 0; i < g_n_models; i++)
    if (!g_models[i]->current && g_models[i]->state != MS_UNLOADED) ready = 0;
  pthread_mutex_unlock(&g_lock);
  return ready;
}

void repo_each(void (*fn)(serve_model *m, void *arg), void *arg) {
  pthread_mutex_lock(&g_lock);
  for (size_t i = 0; i < g_n_models; i++) fn(g_models[i], arg);
  pthread_mutex_unlock(&g_lock);
}

static void index_entry(sbuf *b, const char *name, long version, const char *state, const char *reason) {
  sb_printf(b, "%s{\"name\":", b->len > 1 ? "," : "");
  sb_json_string(b, name);
  if (version >= 0) sb_printf(b, ",\"version\":\"%ld\"", version);
  sb_printf(b, ",\"state\":\"%s\",\"reason\":", state);
  sb_json_string(b, reason);
  sb_put(b, "}", 1);
}

static void index_model(serve_model *m, void *arg) {
  sbuf *b = arg;
  if (m->current) index_entry(b, m->name, m->current->version, "READY", "");
  else index_entry(b, m->name, -1, state_name(m->state), m->reason);
  if (m->current && m->failed_version >= 0) index_entry(b, m->name, m->failed_version, "UNAVAILABLE", m->reason);
}

char *repo_index_json(size_t *len) {
  sbuf b = {0};
  sb_put(&b, "[", 1);
  repo_each(index_model, &b);
  sb_put(&b, "]", 1);
  if (b.oom) return free(b.p), NULL;
  *len = b.len;
  return b.p;
}

int repo_open(const serve_config *cfg, unsigned n_workers) {
  g_cfg = cfg;
  g_workers = n_workers;
  char err[1024];
  if (!repo_scan(NULL, 0, err, sizeof err) && !g_n_models) {
    slog("error", "repository_failed", "error", err, NULL);
    return 0;
  }
  if (!g_n_models) slog("warning", "repository_empty", "path", cfg->repo_dir, NULL);
  return 1;
}

void repo_close(void) {
  pthread_mutex_lock(&g_lock);
  for (size_t i = 0; i < g_n_models; i++) {
    version_release(g_models[i]->current);
    pthread_mutex_destroy(&g_models[i]->stats.mu);
    free(g_models[i]);
  }
  g_n_models = 0;
  pthread_mutex_unlock(&g_lock);
}

static void *poller(void *arg) {
  (void)arg;
  pthread_mutex_lock(&g_poll_mu);
  while (!g_poll_stop) {
    if (!g_poll_now) {
      if (g_cfg->poll_ms) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long long ns = ts.tv_nsec + (long long)g_cfg->poll_ms * 1000000LL;
        ts.tv_sec += (time_t)(ns / 1000000000LL);
        ts.tv_nsec = (long)(ns % 1000000000LL);
        pthread_cond_timedwait(&g_poll_cv, &g_poll_mu, &ts);
      } else {
        pthread_cond_wait(&g_poll_cv, &g_poll_mu);
      }
    }
    if (g_poll_stop) break;
    g_poll_now = 0;
    pthread_mutex_unlock(&g_poll_mu);
    char err[1024];
    repo_scan(NULL, 0, err, sizeof err);
    pthread_mutex_lock(&g_poll_mu);
  }
  pthread_mutex_unlock(&g_poll_mu);
  return NULL;
}

void repo_request_rescan(void) {
  pthread_mutex_lock(&g_poll_mu);
  g_poll_now = 1;
  pthread_cond_signal(&g_poll_cv);
  pthread_mutex_unlock(&g_poll_mu);
}

int repo_start_poller(void) {
  g_poll_started = pthread_create(&g_poller, NULL, poller, NULL) == 0;
  return g_poll_started;
}

void repo_stop_poller(void) {
  if (!g_poll_started) return;
  pthread_mutex_lock(&g_poll_mu);
  g_poll_stop = 1;
  pthread_cond_signal(&g_poll_cv);
  pthread_mutex_unlock(&g_poll_mu);
  pthread_join(g_poller, NULL);
  g_poll_started = 0;
}
