/* towerrt score: a file of requests (docs/format.md) -> one line of k
 * scores per request; --batch-users runs the user towers of many requests
 * as batched matrix products. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "text_input.h"
#include "tools/cli.h"
#include "towerrt.h"

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

/* A file with a header and no request is valid but almost surely not what
 * was meant. */
static void warn_empty(const trt_text_reader *r) {
  fprintf(stderr, "towerrt: warning: %s holds no requests (only its header): nothing scored\n", r->name);
}

static void write_scores(FILE *out, const float *scores, size_t k) {
  for (size_t i = 0; i < k; i++) fprintf(out, i ? " %.9g" : "%.9g", (double)scores[i]);
  fputc('\n', out);
}

/* What a bad request does (--on-error): stop the file (default), or skip
 * it: its output line is "error <STATUS>" (docs/format.md) and the next
 * request is read. Either way stderr names the request (its ordinal in the
 * file, counting bad ones) and its line. */
typedef struct score_run {
  towerrt_session *s;
  trt_text_reader *r;
  FILE *out;
  int skip;
  size_t n;   /* requests read so far, bad ones included */
  size_t bad; /* requests refused */
} score_run;

/* Errors that no later request can avoid: stop even with --on-error skip. */
static int fatal(towerrt_status st) { return st == TOWERRT_ERR_NO_MEMORY || st == TOWERRT_ERR_IO; }

/* Reports request `number` (line `line`, 0 if unknown) as bad; 1 = go on. */
static int report(score_run *sr, size_t number, size_t line, towerrt_status st, const char *msg) {
  if (line) fprintf(stderr, "towerrt: error: %s:%zu: request %zu: %s (%s)\n", sr->r->name, line, number, msg, towerrt_status_name(st));
  else fprintf(stderr, "towerrt: error: request %zu: %s (%s)\n", number, msg, towerrt_status_name(st));
  sr->bad++;
  if (!sr->skip || fatal(st)) return 0;
  fprintf(sr->out, "error %s\n", towerrt_status_name(st));
  return 1;
}

static const char *score_message(const score_run *sr, towerrt_status st) {
  return st == TOWERRT_ERR_NO_MEMORY ? "out of memory" : *towerrt_session_error(sr->s) ? towerrt_session_error(sr->s) : towerrt_last_error();
}

/* The next request into q: 1 read, 0 at the end, -1 refused by the reader
 * (its status in *st, its message in msg). */
static int next_request(score_run *sr, trt_request *q, towerrt_status *st, char *msg, size_t cap) {
  int done = 0;
  *st = trt_text_next_request(sr->r, q, &done);
  if (!*st && done) return 0;
  sr->n++;
  if (!*st) return 1;
  snprintf(msg, cap, "%s", trt_text_error());
  return -1;
}

/* A request the reader refused: reported; with skip, passed over. 0 = stop. */
static int refused(score_run *sr, towerrt_status st, const char *msg) {
  if (!report(sr, sr->n, 0, st, msg)) return 0;
  trt_text_skip_request(sr->r);
  return 1;
}

/* Offline scoring (--batch-users N): the user towers of up to N requests
 * by id in one towerrt_user_heads call, then each request's candidates with
 * towerrt_score_heads. A request by features is scored on its own. */
typedef struct user_batch {
  trt_request *q;
  size_t *number; /* each request's ordinal in the file */
  size_t n, cap;
  trt_rows users; /* the n requests' users, as one block */
  float *heads, *scores;
  size_t scores_cap;
} user_batch;

/* Scores the batch in file order; 0 = stop. */
static int flush_batch(score_run *sr, user_batch *b) {
  if (!b->n) return 1;
  size_t per = towerrt_session_user_heads_size(sr->s);
  float *heads = realloc(b->heads, b->n * per * sizeof *heads);
  if (!heads) return report(sr, b->number[0], b->q[0].line, TOWERRT_ERR_NO_MEMORY, "out of memory");
  b->heads = heads;
  towerrt_features users = {b->users.ids, b->users.n_ids, b->users.dense, b->users.n_dense};
  /* If the batch fails (a bad user in it), every request is scored on its
   * own: the error then names the request at fault, not the batch. */
  towerrt_status st = towerrt_user_heads(sr->s, &users, b->n, heads);
  int go = 1;
  for (size_t i = 0; i < b->n && go; i++) {
    size_t k = b->q[i].items.n_keys;
    if (k > b->scores_cap) {
      float *p = realloc(b->scores, k * sizeof *p);
      if (!p) {
        go = report(sr, b->number[i], b->q[i].line, TOWERRT_ERR_NO_MEMORY, "out of memory");
        break;
      }
      b->scores = p, b->scores_cap = k;
    }
    towerrt_status si;
    if (!st) {
      si = towerrt_score_heads(sr->s, heads + i * per, b->q[i].items.keys, k, b->scores);
    } else {
      towerrt_features u = {b->q[i].user.ids, b->q[i].user.n_ids, b->q[i].user.dense, b->q[i].user.n_dense};
      si = towerrt_score(sr->s, &u, b->q[i].items.keys, k, b->scores);
    }
    if (si) go = report(sr, b->number[i], b->q[i].line, si, score_message(sr, si));
    else write_scores(sr->out, b->scores, k);
  }
  for (size_t i = 0; i < b->n; i++) trt_request_free(&b->q[i]);
  b->n = 0;
  trt_rows_clear(&b->users);
  return go;
}

static towerrt_status add_to_batch(user_batch *b, trt_request *q, size_t number) {
  if (b->n == b->cap) {
    size_t cap = b->cap ? 2 * b->cap : 64;
    trt_request *p = realloc(b->q, cap * sizeof *p);
    if (!p) return TOWERRT_ERR_NO_MEMORY;
    b->q = p;
    size_t *num = realloc(b->number, cap * sizeof *num);
    if (!num) return TOWERRT_ERR_NO_MEMORY;
    b->number = num, b->cap = cap;
  }
  towerrt_status st = trt_rows_append(&b->users, &q->user);
  if (st) return st;
  b->number[b->n] = number;
  b->q[b->n++] = *q; /* takes the request's rows */
  memset(q, 0, sizeof *q);
  return TOWERRT_OK;
}

/* One request by itself (not batched); 0 = stop. */
static int score_alone(score_run *sr, const trt_request *q, float **scores, size_t *cap) {
  size_t k = 0;
  towerrt_status st = score_one(sr->s, q, scores, cap, &k);
  if (st) return report(sr, sr->n, q->line, st, score_message(sr, st));
  write_scores(sr->out, *scores, k);
  return 1;
}

static int run_batched(score_run *sr, size_t batch) {
  user_batch b = {0};
  trt_request q = {0};
  float *scores = NULL;
  size_t cap = 0;
  int go = 1, got;
  towerrt_status st;
  char msg[512];
  while (go && (got = next_request(sr, &q, &st, msg, sizeof msg))) {
    if (got < 0) { /* the requests before it are written first, in order */
      go = flush_batch(sr, &b) && refused(sr, st, msg);
      continue;
    }
    if (!q.by_id) {
      go = flush_batch(sr, &b) && score_alone(sr, &q, &scores, &cap);
      continue;
    }
    st = add_to_batch(&b, &q, sr->n);
    if (st) go = report(sr, sr->n, q.line, st, "out of memory");
    else if (b.n == batch) go = flush_batch(sr, &b);
  }
  /* the requests read before a stop are scored and written, as unbatched */
  if (go) flush_batch(sr, &b);
  for (size_t i = 0; i < b.n; i++) trt_request_free(&b.q[i]);
  free(b.q), free(b.number), free(b.heads), free(b.scores), free(scores);
  trt_rows_free(&b.users);
  trt_request_free(&q);
  if (!sr->bad && sr->n == 0) warn_empty(sr->r);
  return sr->bad ? EXIT_FAILED : 0;
}

static int run_requests(score_run *sr) {
  trt_request q = {0};
  float *scores = NULL;
  size_t cap = 0;
  int go = 1, got;
  towerrt_status st;
  char msg[512];
  while (go && (got = next_request(sr, &q, &st, msg, sizeof msg))) go = got < 0 ? refused(sr, st, msg) : score_alone(sr, &q, &scores, &cap);
  free(scores);
  trt_request_free(&q);
  if (!sr->bad && sr->n == 0) warn_empty(sr->r);
  return sr->bad ? EXIT_FAILED : 0;
}

/* 1 if the output path names the input file (or a link to it): opening it
 * for writing would empty the requests before they are read. */
static int same_file(FILE *in, const char *out_path) {
  struct stat si, so;
  return in && in != stdin && fstat(fileno(in), &si) == 0 && stat(out_path, &so) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino;
}

int cmd_score(const cli_args *a) {
  if (a->help) {
    puts("usage: towerrt score --model M.twr [--items S.twi] --requests R.txt [--out O.txt]\n"
         "                     [--fe-layers 0,1,2] [--logits] [--max-k N] [--isa NAME]\n"
         "                     [--threads N] [--numa-node I] [--placement shared|replicate|interleave]\n"
         "                     [--batch-users N] [--on-error stop|skip] [--load map|copy]\n"
         "  Scores every request of R (docs/format.md) and writes one line of k scores\n"
         "  per request. --fe-layers forces a subset of user FE layers (an approximation\n"
         "  unless the model was trained that way: docs/fe-modes.md). --batch-users N\n"
         "  (offline scoring) runs the user towers of N requests by id at once, as\n"
         "  batched matrix products (towerrt_user_heads). --on-error skip scores\n"
         "  every valid request and reports each bad one (stderr: its number and\n"
         "  status; its output line: 'error STATUS'); the exit code is 1 if any was\n"
         "  bad. --load copy reads the model and store into memory (docs/serving.md).");
    return 0;
  }
  cli_loaded l;
  if (cli_load(a, &l)) return EXIT_FAILED;
  towerrt_session *s = NULL;
  towerrt_status st = towerrt_session_create(l.model, l.items, &l.opts, &s);
  if (st) {
    int rc = fail(st, NULL);
    cli_unload(&l);
    return rc;
  }
  FILE *in = open_in(a->requests);
  if (in && a->out && same_file(in, a->out)) {
    fprintf(stderr, "towerrt: error: --out '%s' is the requests file '%s': it would be emptied before it is read\n", a->out, a->requests);
    fclose(in);
    in = NULL;
  }
  FILE *out = in ? (a->out ? open_out(a->out) : stdout) : NULL;
  int rc = EXIT_FAILED;
  if (in && out) {
    trt_text_reader r;
    st = trt_text_open(&r, in, a->requests, "towerrt-requests", l.model);
    if (st) rc = fail(st, trt_text_error());
    else {
      r.max_candidates = l.opts.max_k;
      score_run sr = {.s = s, .r = &r, .out = out, .skip = a->on_error_skip};
      rc = a->batch_users > 1 ? run_batched(&sr, a->batch_users) : run_requests(&sr);
    }
    trt_text_close(&r);
  }
  if (in && in != stdin) fclose(in);
  if (out && out != stdout && fclose(out) != 0) rc = EXIT_FAILED;
  towerrt_session_free(s);
  cli_unload(&l);
  return rc;
}

