/* The Open Inference Protocol (KServe v2) for towerrt models: JSON parsed
 * with json-c (64-bit integers exact: item ids above 2^53 round-trip),
 * written by hand into a buffer (scores with 9 significant digits, which
 * read back as the same float32: serve_float.c). The binary tensor data extension (Triton's, used by default by
 * tritonclient) is read and written too: the body then starts with
 * Inference-Header-Content-Length bytes of JSON and the tensors follow as
 * raw little-endian bytes, in the order of the inputs / outputs that carry
 * a "binary_data_size" parameter.
 *
 * Inputs:  user_ids      INT64 [S] or [1,S]  (S = the model's user id slots)
 *          user_dense    FP32  [D] or [1,D]  (absent when D = 0)
 *          candidate_ids UINT64 or INT64 [k] or [1,k] (INT64: the same 64 bits)
 * Outputs: scores FP32 [k]; with parameters.top_n = n: top_ids UINT64 [m],
 *          top_scores FP32 [m] (m <= n: the ranked entries, best first). */
#include <json-c/json.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

void response_error(serve_response *r, int code, int failure, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  sbuf b = {0};
  sb_put(&b, "{\"error\":", 9);
  sb_json_string(&b, msg);
  sb_put(&b, "}", 1);
  free(r->body);
  r->code = code;
  r->body = b.p;
  r->len = b.oom ? 0 : b.len;
  r->header_len = 0;
  r->failure = failure;
}

void scratch_free(serve_scratch *s) {
  free(s->ids);
  free(s->scores);
  free(s->top_ids);
  free(s->top_scores);
  free(s->user_ids);
  free(s->user_dense);
  free(s->out);
  memset(s, 0, sizeof *s);
}

/* Buffers for a version's largest request, grown only when a model with
 * larger limits arrives (never on the scoring path). */
static int scratch_fit(serve_scratch *s, const serve_version *v) {
  size_t user = v->id_slots > v->dense_width ? v->id_slots : v->dense_width;
  if (s->cap_k < v->max_k || s->cap_n < v->max_topn || s->cap_user < user) {
    scratch_free(s);
    s->cap_k = v->max_k;
    s->cap_n = v->max_topn ? v->max_topn : 1;
    s->cap_user = user ? user : 1;
    s->ids = malloc(s->cap_k * sizeof *s->ids);
    s->scores = malloc(s->cap_k * sizeof *s->scores);
    s->top_ids = malloc(s->cap_n * sizeof *s->top_ids);
    s->top_scores = malloc(s->cap_n * sizeof *s->top_scores);
    s->user_ids = malloc(s->cap_user * sizeof *s->user_ids);
    s->user_dense = malloc(s->cap_user * sizeof *s->user_dense);
    if (!s->ids || !s->scores || !s->top_ids || !s->top_scores || !s->user_ids || !s->user_dense) {
      scratch_free(s);
      return 0;
    }
  }
  return 1;
}

enum { IN_USER_IDS, IN_USER_DENSE, IN_CANDIDATES, N_INPUTS };
static const char *k_input_names[N_INPUTS] = {"user_ids", "user_dense", "candidate_ids"};
enum { OUT_SCORES, OUT_TOP_IDS, OUT_TOP_SCORES, N_OUTPUTS };
static const char *k_output_names[N_OUTPUTS] = {"scores", "top_ids", "top_scores"};

typedef enum { DT_INT64, DT_UINT64, DT_FP32 } dtype;

/* One parsed request: where each input's values are (JSON array or binary
 * bytes), and what to answer. */
typedef struct infer_req {
  json_object *data[N_INPUTS];
  const char *bin[N_INPUTS];
  size_t count[N_INPUTS];
  dtype type[N_INPUTS];
  int present[N_INPUTS];
  int want[N_OUTPUTS], binary[N_OUTPUTS];
  long long top_n; /* 0: none */
  const char *id;
} infer_req;

typedef struct ctx {
  serve_response *r;
  char msg[512];
  int code, failure;
} ctx;

static int fail(ctx *c, int code, int failure, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(ctx *c, int code, int failure, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->msg, sizeof c->msg, fmt, ap);
  va_end(ap);
  c->code = code;
  c->failure = failure;
  return 0;
}

#define BAD(c, st, ...) fail(c, 400, st, __VA_ARGS__)

static int get_bool(json_object *params, const char *key) {
  json_object *v;
  return params && json_object_object_get_ex(params, key, &v) && json_object_get_boolean(v);
}

/* Elements of a (possibly nested, row-major) JSON array. */
static size_t json_count(json_object *a) {
  if (!json_object_is_type(a, json_type_array)) return 1;
  size_t n = 0, len = json_object_array_length(a);
  for (size_t i = 0; i < len; i++) n += json_count(json_object_array_get_idx(a, i));
  return n;
}

static int parse_dtype(ctx *c, int in, const char *dt, dtype *out) {
  if (!strcmp(dt, "INT64")) *out = DT_INT64;
  else if (!strcmp(dt, "UINT64") && in == IN_CANDIDATES) *out = DT_UINT64;
  else if (!strcmp(dt, "FP32") && in == IN_USER_DENSE) *out = DT_FP32;
  else return BAD(c, TOWERRT_ERR_SHAPE, "TOWERRT_ERR_SHAPE: input '%s' has datatype %s; it takes %s", k_input_names[in], dt,
                  in == IN_USER_DENSE ? "FP32" : in == IN_CANDIDATES ? "UINT64 or INT64" : "INT64");
  if (in == IN_USER_DENSE && *out != DT_FP32)
    return BAD(c, TOWERRT_ERR_SHAPE, "TOWERRT_ERR_SHAPE: input 'user_dense' has datatype %s; it takes FP32", dt);
  return 1;
}

/* shape must be [n] or [1, n]; returns n through *count. */
static int parse_shape(ctx *c, int in, json_object *shape, size_t *count) {
  size_t dims = json_object_is_type(shape, json_type_array) ? json_object_array_length(shape) : 0;
  long long d[2] = {0, 0};
  for (size_t i = 0; i < dims && i < 2; i++) {
    json_object *e = json_object_array_get_idx(shape, i);
    if (!json_object_is_type(e, json_type_int)) dims = 0;
    else d[i] = json_object_get_int64(e);
  }
  if (dims == 2 && d[0] == 1) d[0] = d[1], dims = 1;
  if (dims != 1 || d[0] < 0 || d[0] > (1LL << 40))
    return BAD(c, TOWERRT_ERR_SHAPE, "TOWERRT_ERR_SHAPE: input '%s' needs shape [n] or [1, n]", k_input_names[in]);
  *count = (size_t)d[0];
  return 1;
}

/* One entry of "inputs": name, datatype, shape, and data or binary bytes. */
static int parse_input(ctx *c, infer_req *q, json_object *o, const char *bin, size_t bin_len, size_t *bin_off) {
  json_object *name, *dt, *shape, *data, *params = NULL, *bsz;
  if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "name", &name) ||
      !json_object_object_get_ex(o, "datatype", &dt) || !json_object_object_get_ex(o, "shape", &shape))
    return BAD(c, SF_BAD_REQUEST, "TOWERRT_ERR_INVALID_ARGUMENT: each input needs name, datatype and shape");
  const char *n = json_object_get_string(name);
  int in = 0;
  while (in < N_INPUTS && strcmp(n, k_input_names[in])) in++;
  if (in == N_INPUTS)
    return BAD(c, SF_BAD_REQUEST, "TOWERRT_ERR_INVALID_ARGUMENT: unknown input '%s' (user_ids, user_dense, candidate_ids)", n);
  if (q->present[in]) return BAD(c, SF_BAD_REQUEST, "TOWERRT_ERR_INVALID_ARGUMENT: input '%s' given twice", n);
  q->present[in] = 1;
  if (!parse_dtype(c, in, json_object_get_string(dt), &q->type[in]) || !parse_shape(c, in, shape, &q->count[in])) return 0;
  json_object_object_get_ex(o, "parameters", &params);
  if (params && json_object_object_get_ex(params, "binary_data_size", &bsz)) {
    long long size = json_object_get_int64(bsz);
    size_t want = q->count[in] * (q->type[in] == DT_FP32 ? 4 : 8);
    if (size < 0 || (size_t)size != want || (size_t)size > bin_len - *bin_off)
      return BAD(c, TOWERRT_ERR_SHAPE, "TOWERRT_ERR_SHAPE: input '%s': binary_data_size %lld, the shape needs %zu bytes (%zu left in the body)",
                 n, size, want, bin_len - *bin_off);
    q->bin[in] = bin + *bin_off;
    *bin_off += want;
    return 1;
  }
  if (!json_object_object_get_ex(o, "data", &data) || !json_object_is_type(data, json_type_array))
    return BAD(c, SF_BAD_REQUEST, "TOWERRT_ERR_INVALID_ARGUMENT: input '%s' has no data array", n);
  size_t got = json_count(data);
  if (got != q->count[in])
    return BAD(c, TOWERRT_ERR_SHAPE, "TOWERRT_ERR_SHAPE: input '%s' has %zu values; its shape says %zu", n, got, q->count[in]);
  q->data[in] = data;
  return 1;
}

/* Copies JSON values (nested arrays flattened) into out[]; *i counts. */
static int json_values(ctx *c, int in, dtype t, json_object *a, void *out, size_t *i) {
  size_t len = json_object_array_length(a);
  for (size_t j = 0; j < len; j++) {
    json_object *e = json_object_array_get_idx(a, j);
    if (json_object_is_type(e, json_type_array)) {
      if (!json_values(c, in, t, e, out, i)) return 0;
      continue;
    }
    int is_int = json_object_is_type(e, json_type_int);
    if (t == DT_FP32 && (is_int || json_object_is_type(e, json_type_double))) {
      ((float *)out)[(*i)++] = (float)json_object_get_double(e);
    } else if (t == DT_INT64 && is_int) {
      ((int64_t *)out)[(*i)++] = json_object_get_int64(e);
    } else if (t == DT_UINT64 && is_int && json_object_get_int64(e) >= 0) {
      ((uint64_t *)out)[(*i)++] = json_object_get_uint64(e);
    } else {
      return BAD(c, TOWERRT_ERR_SHAPE, "TOWERRT_ERR_SHAPE: input '%s' value %zu is %s, not %s", k_input_names[in], *i,
                 json_object_to_json_string(e), t == DT_FP32 ? "a number" : t == DT_INT64 ? "an integer" : "an unsigned integer");
    }
  }
  return 1;
}

static int input_values(ctx *c, infer_req *q, int in, void *out) {
  if (q->bin[in]) {
    memcpy(out, q->bin[in], q->count[in] * (q->type[in] == DT_FP32 ? 4 : 8));
    return 1;
  }
  size_t i = 0;
  return json_values(c, in, q->type[in], q->data[in], out, &i);
}

/* "outputs" (optional): which outputs, binary or JSON. */
static int parse_outputs(ctx *c, infer_req *q, json_object *outputs, int binary_all) {
  if (!outputs) {
    int topn = q->top_n > 0;
    q->want[OUT_SCORES] = !topn;
    q->want[OUT_TOP_IDS] = q->want[OUT_TOP_SCORES] = topn;
    for (int o = 0; o < N_OUTPUTS; o++) q->binary[o] = binary_all;
    return 1;
  }
  if (!json_object_is_type(outputs, json_type_array))
    return BAD(c, SF_BAD_REQUEST, "TOWERRT_ERR_INVALID_ARGUMENT: 'outputs' must be an array");
  for (size_t i = 0; i < json_object_array_length(outputs); i++) {
    json_object *o = json_object_array_get_idx(outputs, i), *name, *params = NULL;
    if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "name", &name))
      return BAD(c, SF_BAD_REQUEST, "TOWERRT_ERR_INVALID_ARGUMENT: each output needs a name");
    const char *n = json_object_get_string(name);
    int k = 0;
    while (k < N_OUTPUTS && strcmp(n, k_output_names[k])) k++;
    if (k == N_OUTPUTS)
      return BAD(c, SF_BAD_REQUEST, "TOWERRT_ERR_INVALID_ARGUMENT: unknown output '%s' (scores, top_ids, top_scores)", n);
    if (k != OUT_SCORES && q->top_n <= 0)
      return BAD(c, SF_BAD_REQUEST, "TOWERRT_ERR_INVALID_ARGUMENT: output '%s' needs the parameter top_n", n);
    json_object_object_get_ex(o, "parameters", &params);
    q->want[k] = 1;
    q->binary[k] = binary_all || get_bool(params, "binary_data");
  }
  return 1;
}

/* The request's JSON part into q (values stay in the JSON tree). */
static int parse_request(ctx *c, infer_req *q, json_object *j, const char *bin, size_t bin_len) {
  json_object *inputs, *params = NULL, *outputs = NULL, *v;
  if (!json_object_is_type(j, json_type_object))
    return BAD(c, SF_BAD_REQUEST, "TOWERRT_ERR_FORMAT: the request body is not a JSON object");
  if (json_object_object_get_ex(j, "id", &v)) q->id = json_object_get_string(v);
  json_object_object_get_ex(j, "parameters", &params);
  json_object_object_get_ex(j, "outputs", &outputs);
  if (params && json_object_object_get_ex(params, "top_n", &v)) {
    if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1)
      return BAD(c, TOWERRT_ERR_INVALID_ARGUMENT, "TOWERRT_ERR_INVALID_ARGUMENT: parameter top_n must be an integer >= 1");
    q->top_n = json_object_get_int64(v);
  }
  if (!json_object_object_get_ex(j, "inputs", &inputs) || !json_object_is_type(inputs, json_type_array))
    return BAD(c, SF_BAD_REQUEST, "TOWERRT_ERR_INVALID_ARGUMENT: the request has no 'inputs' array");
  size_t off = 0;
  for (size_t i = 0; i < json_object_array_length(inputs); i++)
    if (!parse_input(c, q, json_object_array_get_idx(inputs, i), bin, bin_len, &off)) return 0;
  if (off != bin_len)
    return BAD(c, TOWERRT_ERR_SHAPE, "TOWERRT_ERR_SHAPE: %zu bytes of binary data follow the JSON; the inputs use %zu", bin_len, off);
  return parse_outputs(c, q, outputs, get_bool(params, "binary_data_output"));
}

static int check_sizes(ctx *c, infer_req *q, const serve_version *v) {
  if (!q->present[IN_USER_IDS] || !q->present[IN_CANDIDATES])
    return BAD(c, SF_BAD_REQUEST, "TOWERRT_ERR_INVALID_ARGUMENT: inputs user_ids and candidate_ids are required");
  if (q->count[IN_USER_IDS] != v->id_slots)
    return BAD(c, TOWERRT_ERR_SHAPE, "TOWERRT_ERR_SHAPE: user_ids has %zu values; model '%s' takes %zu (its user id slots)",
               q->count[IN_USER_IDS], v->name, v->id_slots);
  size_t dense = q->present[IN_USER_DENSE] ? q->count[IN_USER_DENSE] : 0;
  if (dense != v->dense_width)
    return BAD(c, TOWERRT_ERR_SHAPE, "TOWERRT_ERR_SHAPE: user_dense has %zu values; model '%s' takes %zu", dense, v->name,
               v->dense_width);
  if (q->count[IN_CANDIDATES] == 0)
    return BAD(c, TOWERRT_ERR_EMPTY_REQUEST, "TOWERRT_ERR_EMPTY_REQUEST: candidate_ids is empty");
  if (q->count[IN_CANDIDATES] > v->max_k)
    return BAD(c, TOWERRT_ERR_LIMIT, "TOWERRT_ERR_LIMIT: %zu candidates; model '%s' takes at most %u (max_k)",
               q->count[IN_CANDIDATES], v->name, v->max_k);
  if (q->top_n > (long long)v->max_topn)
    return BAD(c, TOWERRT_ERR_LIMIT, "TOWERRT_ERR_LIMIT: top_n %lld is above model '%s''s max_topn %u", q->top_n, v->name,
               v->max_topn);
  return 1;
}

static int status_code(towerrt_status st) {
  switch (st) {
    case TOWERRT_ERR_NO_MEMORY: case TOWERRT_ERR_IO: case TOWERRT_ERR_NO_ITEMS: return 500;
    default: return 400;
  }
}

/* Scores into s->scores and/or s->top_*. */
static int score(ctx *c, infer_req *q, serve_version *v, towerrt_session *ses, serve_scratch *s, size_t *ranked) {
  towerrt_features user = {s->user_ids, v->id_slots, v->dense_width ? s->user_dense : NULL, v->dense_width};
  size_t k = q->count[IN_CANDIDATES];
  towerrt_status st = TOWERRT_OK;
  double t0 = now_seconds();
  if (q->want[OUT_SCORES]) st = towerrt_score(ses, &user, s->ids, k, s->scores);
  if (st == TOWERRT_OK && q->top_n > 0) {
    st = towerrt_score_topn(ses, &user, s->ids, k, (size_t)q->top_n, s->top_ids, s->top_scores);
    *ranked = 0;
    while (*ranked < (size_t)q->top_n && isfinite(s->top_scores[*ranked])) (*ranked)++;
  }
  c->r->score_seconds = now_seconds() - t0;
  if (st != TOWERRT_OK)
    return fail(c, status_code(st), st, "%s: %s", towerrt_status_name(st), towerrt_session_error(ses));
  return 1;
}

static void put_floats(sbuf *b, const float *x, size_t n) {
  if (!sb_reserve(b, n * 17)) return;
  char *p = b->p + b->len;
  for (size_t i = 0; i < n; i++) {
    if (i) *p++ = ',';
    if (isfinite(x[i])) p += format_float9(x[i], p);
    else memcpy(p, "null", 4), p += 4; /* skipped candidates (NaN): JSON has no NaN */
  }
  b->len = (size_t)(p - b->p);
  *p = 0;
}

static void put_ids(sbuf *b, const uint64_t *x, size_t n) {
  if (!sb_reserve(b, n * 21)) return;
  char *p = b->p + b->len;
  for (size_t i = 0; i < n; i++) p += snprintf(p, 22, i ? ",%llu" : "%llu", (unsigned long long)x[i]);
  b->len = (size_t)(p - b->p);
  *p = 0;
}

static void write_response(infer_req *q, serve_version *v, serve_scratch *s, size_t ranked, serve_response *r) {
  sbuf b = {0};
  size_t k = q->count[IN_CANDIDATES];
  sb_reserve(&b, 256 + (q->want[OUT_SCORES] ? k * 17 : 0) + (q->top_n > 0 ? ranked * 38 : 0));
  sb_put(&b, "{\"model_name\":", 14);
  sb_json_string(&b, v->name);
  sb_printf(&b, ",\"model_version\":\"%ld\"", v->version);
  if (q->id) sb_put(&b, ",\"id\":", 6), sb_json_string(&b, q->id);
  sb_put(&b, ",\"outputs\":[", 12);
  const void *data[N_OUTPUTS] = {s->scores, s->top_ids, s->top_scores};
  size_t n[N_OUTPUTS] = {k, ranked, ranked}, bytes = 0;
  int first = 1;
  for (int o = 0; o < N_OUTPUTS; o++) {
    if (!q->want[o]) continue;
    const char *dt = o == OUT_TOP_IDS ? "UINT64" : "FP32";
    sb_printf(&b, "%s{\"name\":\"%s\",\"datatype\":\"%s\",\"shape\":[%zu],", first ? "" : ",", k_output_names[o], dt, n[o]);
    first = 0;
    size_t size = n[o] * (o == OUT_TOP_IDS ? 8 : 4);
    if (q->binary[o]) {
      sb_printf(&b, "\"parameters\":{\"binary_data_size\":%zu}}", size);
      bytes += size;
      continue;
    }
    sb_put(&b, "\"data\":[", 8);
    if (o == OUT_TOP_IDS) put_ids(&b, data[o], n[o]);
    else put_floats(&b, data[o], n[o]);
    sb_put(&b, "]}", 2);
  }
  sb_put(&b, "]}", 2);
  r->header_len = bytes ? b.len : 0;
  for (int o = 0; o < N_OUTPUTS; o++)
    if (q->want[o] && q->binary[o]) sb_put(&b, data[o], n[o] * (o == OUT_TOP_IDS ? 8 : 4));
  if (b.oom) {
    free(b.p);
    response_error(r, 500, TOWERRT_ERR_NO_MEMORY, "TOWERRT_ERR_NO_MEMORY: response of %zu candidates", k);
    return;
  }
  free(r->body);
  r->code = 200;
  r->body = b.p;
  r->len = b.len;
  r->failure = -1;
  r->candidates = k;
}

void protocol_infer(serve_version *v, unsigned worker, serve_scratch *s, const char *body, size_t len,
                    size_t json_len, serve_response *r) {
  ctx c = {.r = r, .code = 400, .failure = SF_BAD_REQUEST};
  infer_req q = {0};
  json_tokener *tok = json_tokener_new();
  json_object *j = tok ? json_tokener_parse_ex(tok, body, (int)json_len) : NULL;
  enum json_tokener_error jerr = tok ? json_tokener_get_error(tok) : json_tokener_error_size;
  size_t end = tok ? json_tokener_get_parse_end(tok) : 0;
  while (j && end < json_len && strchr(" \t\r\n", body[end])) end++;
  int ok = 1;
  if (!j || jerr != json_tokener_success)
    ok = BAD(&c, SF_BAD_REQUEST, "TOWERRT_ERR_FORMAT: malformed JSON near byte %zu: %s", end,
             jerr == json_tokener_continue ? "unexpected end of the JSON" : json_tokener_error_desc(jerr));
  else if (end != json_len)
    ok = BAD(&c, SF_BAD_REQUEST, "TOWERRT_ERR_FORMAT: malformed JSON: extra bytes after the object at byte %zu", end);
  size_t ranked = 0;
  ok = ok && parse_request(&c, &q, j, body + json_len, len - json_len) && check_sizes(&c, &q, v);
  if (ok && !scratch_fit(s, v)) ok = fail(&c, 500, TOWERRT_ERR_NO_MEMORY, "TOWERRT_ERR_NO_MEMORY: request buffers");
  ok = ok && input_values(&c, &q, IN_USER_IDS, s->user_ids) && input_values(&c, &q, IN_CANDIDATES, s->ids) &&
       (!v->dense_width || input_values(&c, &q, IN_USER_DENSE, s->user_dense));
  ok = ok && score(&c, &q, v, v->sessions[worker], s, &ranked);
  if (ok) write_response(&q, v, s, ranked, r);
  else response_error(r, c.code, c.failure, "%s", c.msg);
  json_object_put(j);
  if (tok) json_tokener_free(tok);
}

char *protocol_model_metadata(serve_version *v, size_t *len) {
  sbuf b = {0};
  sb_put(&b, "{\"name\":", 8);
  sb_json_string(&b, v->name);
  sb_printf(&b, ",\"versions\":[\"%ld\"],\"platform\":\"towerrt\",\"inputs\":["
                "{\"name\":\"user_ids\",\"datatype\":\"INT64\",\"shape\":[%zu]}",
            v->version, v->id_slots);
  if (v->dense_width) sb_printf(&b, ",{\"name\":\"user_dense\",\"datatype\":\"FP32\",\"shape\":[%zu]}", v->dense_width);
  sb_printf(&b, ",{\"name\":\"candidate_ids\",\"datatype\":\"UINT64\",\"shape\":[-1]}],\"outputs\":["
                "{\"name\":\"scores\",\"datatype\":\"FP32\",\"shape\":[-1]},"
                "{\"name\":\"top_ids\",\"datatype\":\"UINT64\",\"shape\":[-1]},"
                "{\"name\":\"top_scores\",\"datatype\":\"FP32\",\"shape\":[-1]}],"
                "\"parameters\":{\"max_k\":%u,\"max_topn\":%u,\"isa\":\"%s\"}}",
            v->max_k, v->max_topn, towerrt_model_isa(v->model));
  if (b.oom) return free(b.p), NULL;
  *len = b.len;
  return b.p;
}

char *protocol_server_metadata(int admin, size_t *len) {
  sbuf b = {0};
  sb_printf(&b, "{\"name\":\"towerrt\",\"version\":\"%s\",\"extensions\":[\"binary_tensor_data\"%s]}",
            towerrt_version_string(), admin ? ",\"model_repository\"" : "");
  if (b.oom) return free(b.p), NULL;
  *len = b.len;
  return b.p;
}
