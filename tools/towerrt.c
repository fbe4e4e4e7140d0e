/* towerrt: command-line front end of the library.
 *   towerrt info MODEL [--plan]
 *   towerrt build-items --model M --features F --out S.twi
 *   towerrt score --model M [--items S.twi] --requests R [--out O]
 * Every failure prints the library's message and exits non-zero. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/text_input.h"
#ifdef TOWERRT_HAVE_BENCH
#include "bench/bench_cli.h"
#endif
#include "towerrt.h"
#include "tools/cli.h"


int fail(towerrt_status st, const char *msg) {
  fprintf(stderr, "towerrt: error: %s (%s)\n", msg && *msg ? msg : towerrt_last_error(), towerrt_status_name(st));
  return EXIT_FAILED;
}

static const char *arg_value(int argc, char **argv, int *i) {
  if (*i + 1 >= argc) {
    fprintf(stderr, "towerrt: option %s needs a value\n", argv[*i]);
    exit(EXIT_USAGE);
  }
  return argv[++*i];
}


static uint32_t parse_fe_layers(const char *s) {
  uint32_t mask = 0;
  for (const char *p = s; *p;) {
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p || v < 0 || v > 15) {
      fprintf(stderr, "towerrt: --fe-layers wants layer indices like 0,1,2 (got '%s')\n", s);
      exit(EXIT_USAGE);
    }
    mask |= 1u << v;
    p = *end == ',' ? end + 1 : end;
    if (*end && *end != ',') {
      fprintf(stderr, "towerrt: --fe-layers wants layer indices like 0,1,2 (got '%s')\n", s);
      exit(EXIT_USAGE);
    }
  }
  return mask;
}

static int parse_args(int argc, char **argv, int first, cli_args *a) {
  memset(a, 0, sizeof *a);
  a->numa_node = -1;
  for (int i = first; i < argc; i++) {
    const char *s = argv[i];
    if (!strcmp(s, "--model")) a->model = arg_value(argc, argv, &i);
    else if (!strcmp(s, "--items")) a->items = arg_value(argc, argv, &i);
    else if (!strcmp(s, "--requests")) a->requests = arg_value(argc, argv, &i);
    else if (!strcmp(s, "--features")) a->features = arg_value(argc, argv, &i);
    else if (!strcmp(s, "--out")) a->out = arg_value(argc, argv, &i);
    else if (!strcmp(s, "--isa")) a->isa = arg_value(argc, argv, &i);
    else if (!strcmp(s, "--fe-layers")) a->fe_mask = parse_fe_layers(arg_value(argc, argv, &i));
    else if (!strcmp(s, "--max-k")) a->max_k = (uint32_t)strtoul(arg_value(argc, argv, &i), NULL, 10);
    else if (!strcmp(s, "--batch-users")) a->batch_users = (uint32_t)strtoul(arg_value(argc, argv, &i), NULL, 10);
    else if (!strcmp(s, "--plan")) a->plan = 1;
    else if (!strcmp(s, "--logits")) a->logits = 1;
    else if (!strcmp(s, "--help") || !strcmp(s, "-h")) a->help = 1;
    else if (!strcmp(s, "--threads")) a->threads = (uint32_t)strtoul(arg_value(argc, argv, &i), NULL, 10);
    else if (!strcmp(s, "--numa-node")) a->numa_node = (int32_t)strtol(arg_value(argc, argv, &i), NULL, 10);
    else if (!strcmp(s, "--topology")) {
      const char *v = argv[i + 1 < argc ? i + 1 : i];
      if (i + 1 < argc && (!strncmp(v, "synthetic:", 10) || !strncmp(v, "xml:", 4))) a->topology = arg_value(argc, argv, &i);
      a->show_topology = 1;
    } else if (!strcmp(s, "--placement")) {
      const char *v = arg_value(argc, argv, &i);
      if (!strcmp(v, "shared")) a->placement = TOWERRT_PLACE_SHARED;
      else if (!strcmp(v, "replicate")) a->placement = TOWERRT_PLACE_REPLICATE;
      else if (!strcmp(v, "interleave")) a->placement = TOWERRT_PLACE_INTERLEAVE;
      else {
        fprintf(stderr, "towerrt: --placement wants shared, replicate or interleave (got '%s')\n", v);
        return 0;
      }
    }
    else if (!strcmp(s, "--precision")) a->precision = arg_value(argc, argv, &i);
    else if (!strcmp(s, "--chunk")) a->chunk = arg_value(argc, argv, &i);
    else if (!strcmp(s, "--engine")) a->engine = arg_value(argc, argv, &i);
    else if (!strcmp(s, "--calibration")) a->requests = arg_value(argc, argv, &i);
    else if (!strcmp(s, "--static-input-scales")) a->static_inputs = 1;
    else if (!strcmp(s, "--shard")) a->shard = arg_value(argc, argv, &i);
    else if (s[0] != '-' && a->n_inputs < (int)(sizeof a->inputs / sizeof a->inputs[0])) a->inputs[a->n_inputs++] = s;
    else {
      fprintf(stderr, "towerrt: unknown argument '%s' (try --help)\n", s);
      return 0;
    }
  }
  if (!a->model && a->n_inputs > 0 && strcmp(argv[1], "merge-items") != 0) a->model = a->inputs[0];
  return 1;
}

void options_from(const cli_args *a, towerrt_options *o) {
  towerrt_options_init(o);
  o->isa = a->isa;
  o->fe_layer_mask = a->fe_mask;
  o->output_logits = (uint32_t)a->logits;
  if (a->max_k) o->max_k = a->max_k;
  if (a->threads) o->threads = a->threads;
  o->numa_node = a->numa_node;
  o->placement = a->placement;
  o->topology = a->topology;
}

towerrt_status pool_from(const cli_args *a, towerrt_options *o, towerrt_pool **pool) {
  *pool = NULL;
  if (o->threads <= 1 && o->placement == TOWERRT_PLACE_SHARED && !a->show_topology) return TOWERRT_OK;
  towerrt_status st = towerrt_pool_create(o, pool);
  o->pool = *pool;
  return st;
}

static void print_placement(const towerrt_pool *pool, const towerrt_model *m, const towerrt_items *items, uint32_t placement) {
  static const char *const names[] = {"shared (one copy, as mapped)", "replicated: one copy bound to each node's memory",
                                      "interleaved over the nodes of the pool"};
  size_t need = towerrt_pool_describe(pool, NULL, 0) + 1;
  char *text = malloc(need);
  if (!text) return;
  towerrt_pool_describe(pool, text, need);
  printf("%s", text);
  free(text);
  printf("placement: model weights %s%s\n", names[placement <= 2 ? placement : 0], m ? "" : " (no model)");
  if (items) printf("placement: item heads (%zu items) %s\n", towerrt_items_count(items), names[placement <= 2 ? placement : 0]);
  printf("requests: run on one node (--numa-node, default: the caller's), candidate blocks split over its workers (--threads)\n");
}

static int cmd_info(const cli_args *a) {
  if (a->help || !a->model) {
    puts("usage: towerrt info MODEL.twr [--plan] [--isa NAME] [--items S.twi]\n"
         "                    [--topology [synthetic:DESC | xml:PATH]] [--placement shared|replicate|interleave]\n"
         "  Prints the model's metadata, input fields, tensors and its compiled plan;\n"
         "  with --topology, the NUMA nodes, the worker pools and where the weights\n"
         "  and item heads are placed.");
    return a->help ? 0 : EXIT_USAGE;
  }
  towerrt_options o;
  options_from(a, &o);
  towerrt_pool *pool = NULL;
  towerrt_model *m = NULL;
  towerrt_items *items = NULL;
  towerrt_status st = pool_from(a, &o, &pool);
  if (!st) st = towerrt_model_load(a->model, &o, &m);
  if (!st && a->items) st = towerrt_items_load(a->items, &o, &items);
  if (st) {
    int rc = fail(st, NULL);
    towerrt_model_free(m);
    towerrt_pool_free(pool);
    return rc;
  }
  size_t need = towerrt_model_describe(m, NULL, 0) + 1;
  char *text = malloc(need);
  if (!text) return fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  towerrt_model_describe(m, text, need);
  printf("towerrt %s, model %s\n%s", towerrt_version_string(), a->model, text);
  printf("request layout: user %zu id slots + %zu dense; item %zu id slots + %zu dense\n", towerrt_model_id_slots(m, TOWERRT_USER),
         towerrt_model_dense_width(m, TOWERRT_USER), towerrt_model_id_slots(m, TOWERRT_ITEM), towerrt_model_dense_width(m, TOWERRT_ITEM));
  free(text);
  if (pool) print_placement(pool, m, items, a->placement);
  towerrt_items_free(items);
  towerrt_model_free(m);
  towerrt_pool_free(pool);
  return 0;
}

FILE *open_in(const char *path) {
  FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
  if (!f) fprintf(stderr, "towerrt: error: cannot open '%s'\n", path);
  return f;
}

static towerrt_status score_one(towerrt_session *s, const trt_request *q, float **scores, size_t *cap, size_t *k) {
  *k = q->by_id ? q->items.n_keys : q->items.n_rows;
  if (*k > *cap) {
    float *p = realloc(*scores, *k * sizeof(float));
    if (!p) return TOWERRT_ERR_NO_MEMORY;
    *scores = p;
    *cap = *k;
  }
  towerrt_features user = {q->user.ids, q->user.n_ids, q->user.dense, q->user.n_dense};
  if (q->by_id) return towerrt_score(s, &user, q->items.keys, *k, *scores);
  towerrt_features items = {q->items.ids, q->items.n_ids, q->items.dense, q->items.n_dense};
  return towerrt_score_features(s, &user, &items, *k, *scores);
}

static void write_scores(FILE *out, const float *scores, size_t k) {
  for (size_t i = 0; i < k; i++) fprintf(out, i ? " %.9g" : "%.9g", (double)scores[i]);
  fputc('\n', out);
}

/* Offline scoring (--batch-users N): the user towers of up to N requests
 * by id in one towerrt_user_heads call, then each request's candidates with
 * towerrt_score_heads. A request by features is scored on its own. */
typedef struct user_batch {
  trt_request *q;
  size_t n, cap;
  trt_rows users; /* the n requests' users, as one block */
  float *heads, *scores;
  size_t scores_cap;
} user_batch;

static towerrt_status flush_batch(towerrt_session *s, user_batch *b, FILE *out, size_t *done_requests) {
  if (!b->n) return TOWERRT_OK;
  size_t per = towerrt_session_user_heads_size(s);
  float *heads = realloc(b->heads, b->n * per * sizeof *heads);
  if (!heads) return TOWERRT_ERR_NO_MEMORY;
  b->heads = heads;
  towerrt_features users = {b->users.ids, b->users.n_ids, b->users.dense, b->users.n_dense};
  towerrt_status st = towerrt_user_heads(s, &users, b->n, heads);
  for (size_t i = 0; i < b->n && !st; i++) {
    size_t k = b->q[i].items.n_keys;
    if (k > b->scores_cap) {
      float *p = realloc(b->scores, k * sizeof *p);
      if (!p) return TOWERRT_ERR_NO_MEMORY;
      b->scores = p, b->scores_cap = k;
    }
    if (!(st = towerrt_score_heads(s, heads + i * per, b->q[i].items.keys, k, b->scores))) {
      write_scores(out, b->scores, k);
      ++*done_requests;
    }
  }
  for (size_t i = 0; i < b->n; i++) trt_request_free(&b->q[i]);
  b->n = 0;
  trt_rows_clear(&b->users);
  return st;
}

static towerrt_status add_to_batch(user_batch *b, trt_request *q) {
  if (b->n == b->cap) {
    size_t cap = b->cap ? 2 * b->cap : 64;
    trt_request *p = realloc(b->q, cap * sizeof *p);
    if (!p) return TOWERRT_ERR_NO_MEMORY;
    b->q = p, b->cap = cap;
  }
  towerrt_status st = trt_rows_append(&b->users, &q->user);
  if (st) return st;
  b->q[b->n++] = *q; /* takes the request's rows */
  memset(q, 0, sizeof *q);
  return TOWERRT_OK;
}

static int run_batched(towerrt_session *s, trt_text_reader *r, FILE *out, size_t batch) {
  user_batch b = {0};
  trt_request q = {0};
  float *scores = NULL;
  size_t cap = 0, k = 0, n = 0;
  int done = 0, rc = 0;
  towerrt_status st = TOWERRT_OK;
  while (!st) {
    if ((st = trt_text_next_request(r, &q, &done)) || done) break;
    if (q.by_id) {
      if (!(st = add_to_batch(&b, &q)) && b.n == batch) st = flush_batch(s, &b, out, &n);
    } else if (!(st = flush_batch(s, &b, out, &n)) && !(st = score_one(s, &q, &scores, &cap, &k))) {
      write_scores(out, scores, k);
      n++;
    }
  }
  if (!st) st = flush_batch(s, &b, out, &n);
  if (st) {
    fprintf(stderr, "towerrt: error: %s: request %zu: %s (%s)\n", r->name, n + 1,
            st == TOWERRT_ERR_NO_MEMORY ? "out of memory" : *towerrt_session_error(s) ? towerrt_session_error(s) : towerrt_last_error(),
            towerrt_status_name(st));
    rc = EXIT_FAILED;
  }
  for (size_t i = 0; i < b.n; i++) trt_request_free(&b.q[i]);
  free(b.q), free(b.heads), free(b.scores), free(scores);
  trt_rows_free(&b.users);
  trt_request_free(&q);
  return rc;
}

static int run_requests(towerrt_session *s, trt_text_reader *r, FILE *out) {
  trt_request q = {0};
  float *scores = NULL;
  size_t cap = 0, k = 0, n = 0;
  int done = 0, rc = 0;
  for (;;) {
    towerrt_status st = trt_text_next_request(r, &q, &done);
    if (st) {
      rc = fail(st, NULL);
      break;
    }
    if (done) break;
    st = score_one(s, &q, &scores, &cap, &k);
    if (st) {
      fprintf(stderr, "towerrt: error: %s:%zu: request %zu: %s (%s)\n", r->name, q.line, n + 1,
              st == TOWERRT_ERR_NO_MEMORY ? "out of memory" : towerrt_session_error(s), towerrt_status_name(st));
      rc = EXIT_FAILED;
      break;
    }
    write_scores(out, scores, k);
    n++;
  }
  free(scores);
  trt_request_free(&q);
  return rc;
}

static int cmd_score(const cli_args *a) {
  if (a->help || !a->model || !a->requests) {
    puts("usage: towerrt score --model M.twr [--items S.twi] --requests R.txt [--out O.txt]\n"
         "                     [--fe-layers 0,1,2] [--logits] [--max-k N] [--isa NAME]\n"
         "                     [--threads N] [--numa-node I] [--placement shared|replicate|interleave]\n"
         "                     [--batch-users N]\n"
         "  Scores every request of R (docs/format.md) and writes one line of k scores\n"
         "  per request. --fe-layers forces a subset of user FE layers (an approximation\n"
         "  unless the model was trained that way: docs/fe-modes.md). --batch-users N\n"
         "  (offline scoring) runs the user towers of N requests by id at once, as\n"
         "  batched matrix products (towerrt_user_heads).");
    return a->help ? 0 : EXIT_USAGE;
  }
  towerrt_options o;
  options_from(a, &o);
  towerrt_pool *pool = NULL;
  towerrt_model *m = NULL;
  towerrt_items *items = NULL;
  towerrt_session *s = NULL;
  towerrt_status st = pool_from(a, &o, &pool);
  if (!st) st = towerrt_model_load(a->model, &o, &m);
  if (!st && a->items) st = towerrt_items_load(a->items, &o, &items);
  if (!st) st = towerrt_session_create(m, items, &o, &s);
  if (st) {
    int rc = fail(st, NULL);
    towerrt_items_free(items);
    towerrt_model_free(m);
    towerrt_pool_free(pool);
    return rc;
  }
  FILE *in = open_in(a->requests);
  FILE *out = a->out ? fopen(a->out, "w") : stdout;
  int rc = EXIT_FAILED;
  if (in && out) {
    trt_text_reader r;
    st = trt_text_open(&r, in, a->requests, "towerrt-requests", m);
    if (st) rc = fail(st, NULL);
    else {
      r.max_candidates = o.max_k;
      rc = a->batch_users > 1 ? run_batched(s, &r, out, a->batch_users) : run_requests(s, &r, out);
    }
    trt_text_close(&r);
  } else if (!out) {
    fprintf(stderr, "towerrt: error: cannot write '%s'\n", a->out);
  }
  if (in && in != stdin) fclose(in);
  if (out && out != stdout && fclose(out) != 0) rc = EXIT_FAILED;
  towerrt_session_free(s);
  towerrt_items_free(items);
  towerrt_model_free(m);
  towerrt_pool_free(pool);
  return rc;
}

static void usage(FILE *f) {
  fprintf(f, "towerrt %s - serve two-tower pre-ranking models (IntTower) on CPUs\n\n"
             "usage: towerrt <command> [options]   (towerrt <command> --help)\n"
             "  info         print a model's metadata, fields, tensors and compiled plan\n"
             "  build-items  run the item tower over a catalog into an item store (.twi)\n"
             "  score        score a file of requests\n"
             "  quantize     rewrite an item store as int8 or bf16\n"
             "  merge-items  merge shard stores into one item store\n"
#ifdef TOWERRT_HAVE_BENCH
             "  bench        latency curves, per-op profile, roofline (towerrt bench --help)\n"
#endif
             "  version      print the version\n",
          towerrt_version_string());
}

int main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? EXIT_USAGE : 0;
  }
  if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
    printf("towerrt %s\n", towerrt_version_string());
    return 0;
  }
#ifdef TOWERRT_HAVE_BENCH
  if (!strcmp(argv[1], "bench")) return towerrt_bench_main(argc - 1, argv + 1);
#endif
  cli_args a;
  if (!parse_args(argc, argv, 2, &a)) return EXIT_USAGE;
  if (!strcmp(argv[1], "info")) return cmd_info(&a);
  if (!strcmp(argv[1], "build-items")) return cmd_build_items(&a);
  if (!strcmp(argv[1], "score")) return cmd_score(&a);
  if (!strcmp(argv[1], "quantize")) return cmd_quantize(&a);
  if (!strcmp(argv[1], "merge-items")) return cmd_merge_items(&a);
  fprintf(stderr, "towerrt: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return EXIT_USAGE;
}
