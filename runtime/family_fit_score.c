/* FIT's request by features (docs/family.md "FIT", "Request path"), on
 * the scratch planned at session creation: nothing here allocates, and
 * this is the one FIT file that calls kernels (all through the model's
 * kernel table: dense_f32 and embed_pool_f32, each with its scalar oracle
 * and per-ISA versions tested in tests/test_kernels_simd.c).
 *
 *  1. items, in blocks of TRT_ITEM_BLOCK: the shared item tower gives Zv
 *     (Hv x p); e_c is read from the same block's tower input (the item's
 *     id-field embeddings), projected if the model says so, matched
 *     against the raw rows of Q (one dense product) and the argmax is the
 *     candidate's query index;
 *  2. candidates grouped by query index (a counting sort);
 *  3. the user tower once per distinct index, all of them as one batch of
 *     rows [user id embeddings, Q*[g], DIN(Q*[g], sequence), dense]: the
 *     embeddings (and the sequence's) are gathered once;
 *  4. per group, in chunks of TRT_FIT_GROUP_CHUNK candidates:
 *       S  = Zu Zv^T for the whole chunk: one product (Hu x p by p x (n Hv)),
 *            which is also n Hu rows of Hv values: (i, c) at (i n + c) Hv;
 *       S  = S * s_mul + s_add (scale and BatchNorm folded), if any;
 *       S1 = relu(row layer) over the n Hu rows (one product);
 *       S1 transposed per candidate to o rows of Hu values;
 *       S2 = relu(column layer) over the n o rows (one product) = vec(S2_c);
 *       logit = output layer over the n rows of o*o (one product). */
#include <math.h>
#include <string.h>

#include "arena_carve.h"
#include "family_fit.h"
#include "status.h"
#include "tower_exec.h"

/* The scratch of one request, carved from the session's block. */
typedef struct fit_scratch {
  float *zv;           /* by features: k x Hv x p */
  const float **rowp;  /* k: candidate c's item row (Zv, then the match logits by id) */
  uint32_t *qidx;      /* k */
  uint32_t *order;     /* k: candidates grouped by query index */
  uint32_t *start;     /* N + 2: group g is order[start[g] .. start[g + 1]); group N: skipped */
  float *ec, *ecp, *match; /* TRT_ITEM_BLOCK x ec_width / D / N */
  float *base;         /* the user's id embeddings (sequence excluded) */
  float *seq;          /* seq_len x D */
  float *din_x, *din_h, *din_a; /* N seq_len x 4D, x A, x 1 */
  float *ux, *ua, *ub, *zu; /* N x user_in, N x max width (two), N x Hu p */
  uint32_t *gq;        /* N: the query index of user row r */
  float *zvc, *s, *s1, *t, *s2, *logit; /* one chunk */
} fit_scratch;

static size_t layout(const towerrt_model *m, size_t k, void *arena, fit_scratch *x) {
  const trt_fit_model *f = m->family_data;
  const size_t F = sizeof(float), B = TRT_ITEM_BLOCK, C = TRT_FIT_GROUP_CHUNK, N = f->N, L = f->seq_len;
  const size_t hv = (size_t)f->Hv * f->p, uw = m->user.n_id_fields * (size_t)m->user.emb_dim;
  trt_carver c = {arena, 0};
  x->zv = trt_carve(&c, k * hv * F);
  x->rowp = trt_carve(&c, k * sizeof(float *));
  x->qidx = trt_carve(&c, k * sizeof(uint32_t));
  x->order = trt_carve(&c, k * sizeof(uint32_t));
  x->start = trt_carve(&c, (N + 2) * sizeof(uint32_t));
  x->ec = trt_carve(&c, B * f->ec_width * F);
  x->ecp = trt_carve(&c, B * f->D * F);
  x->match = trt_carve(&c, B * N * F);
  x->base = trt_carve(&c, (uw + m->user.emb_dim) * F);
  x->seq = trt_carve(&c, L * f->D * F);
  x->din_x = trt_carve(&c, N * L * 4 * f->D * F);
  x->din_h = trt_carve(&c, N * L * f->A * F);
  x->din_a = trt_carve(&c, N * L * F);
  x->ux = trt_carve(&c, N * f->user_in * F);
  x->ua = trt_carve(&c, N * f->max_user_width * F);
  x->ub = trt_carve(&c, N * f->max_user_width * F);
  x->zu = trt_carve(&c, N * f->Hu * f->p * F);
  x->gq = trt_carve(&c, N * sizeof(uint32_t));
  x->zvc = trt_carve(&c, C * hv * F);
  x->s = trt_carve(&c, C * f->Hu * f->Hv * F);
  x->s1 = trt_carve(&c, C * f->Hu * f->o * F);
  x->t = trt_carve(&c, C * f->Hu * f->o * F);
  x->s2 = trt_carve(&c, C * f->o * f->o * F);
  x->logit = trt_carve(&c, C * F);
  return c.used;
}

size_t trt_fit_request_bytes(const towerrt_model *m, size_t max_k) {
  fit_scratch dry;
  return layout(m, max_k, NULL, &dry);
}

uint64_t trt_fit_lss_macs(const trt_fit_model *f) {
  return (uint64_t)f->Hu * f->Hv * f->p + (uint64_t)f->Hu * f->Hv * f->o + (uint64_t)f->o * f->Hu * f->o + (uint64_t)f->o * f->o;
}

uint64_t trt_fit_user_macs(const trt_fit_model *f) {
  uint64_t macs = (uint64_t)f->user_proj.in * f->user_proj.out;
  for (uint32_t L = 0; L < f->n_user; L++) macs += (uint64_t)f->user[L].in * f->user[L].out;
  if (f->seq_field >= 0) macs += (uint64_t)f->seq_len * (4ull * f->D * f->A + f->A + f->D);
  return macs;
}

static void dense(const towerrt_model *m, const trt_dense_layer *d, const float *x, size_t n, float *y) {
  m->kernels.dense_f32(x, n, d->in, d->w, d->b, d->out, d->relu, y);
}

/* The first of equal maxima (torch.argmax); NaN never wins. */
static uint32_t argmax(const float *s, uint32_t n) {
  uint32_t best = 0;
  for (uint32_t i = 1; i < n; i++)
    if (s[i] > s[best]) best = i;
  return best;
}

/* Step 1: Zv and the query index of candidates c0 .. c0 + n. */
static void items_block(const towerrt_model *m, const trt_family_request *r, fit_scratch *x, size_t c0, size_t n) {
  const trt_fit_model *f = m->family_data;
  const trt_tower *t = &f->item_plain; /* as trained: the match logits are computed here */
  const towerrt_features *it = r->items;
  trt_item_forward(m, t, r->ws, it->ids + c0 * t->id_slots, it->dense ? it->dense + c0 * t->dense_width : NULL, n);
  memcpy(x->zv + c0 * f->Hv * f->p, r->ws->item_heads, n * f->Hv * f->p * sizeof(float));
  for (size_t c = 0; c < n; c++) x->rowp[c0 + c] = x->zv + (c0 + c) * f->Hv * f->p;
  for (size_t c = 0; c < n; c++) { /* e_c: the ec fields' embeddings, from the tower input */
    const float *x0 = r->ws->item_x0 + c * t->input_width;
    float *e = x->ec + c * f->ec_width;
    for (uint32_t fi = 0; fi < t->n_id_fields; fi++)
      if (f->ec_mask >> fi & 1u) {
        memcpy(e, x0 + (size_t)fi * t->emb_dim, t->emb_dim * sizeof(float));
        e += t->emb_dim;
      }
  }
  const float *ec = x->ec;
  if (f->proj) {
    dense(m, &f->ec_proj, x->ec, n, x->ecp);
    ec = x->ecp;
  }
  dense(m, &f->match, ec, n, x->match);
  for (size_t c = 0; c < n; c++) x->qidx[c0 + c] = argmax(x->match + c * f->N, f->N);
}

/* Step 2: counting sort of the candidates by query index (index N: skipped). */
static void group(const trt_fit_model *f, fit_scratch *x, size_t k) {
  const uint32_t G = f->N + 1;
  memset(x->start, 0, (G + 1) * sizeof(uint32_t));
  for (size_t c = 0; c < k; c++) x->start[x->qidx[c] + 1]++;
  for (uint32_t g = 0; g < G; g++) x->start[g + 1] += x->start[g];
  for (size_t c = 0; c < k; c++) x->order[x->start[x->qidx[c]]++] = (uint32_t)c;
  for (uint32_t g = G; g > 0; g--) x->start[g] = x->start[g - 1]; /* back to group starts */
  x->start[0] = 0;
}

/* The user's id embeddings (sequence excluded) into base, the sequence's
 * into seq; returns the sequence's valid positions (id != 0). */
static uint32_t user_embeddings(const towerrt_model *m, const trt_fit_model *f, const int64_t *ids, fit_scratch *x) {
  const trt_tower *u = &m->user;
  size_t slot = 0;
  float *e = x->base;
  uint32_t valid = 0;
  for (uint32_t fi = 0; fi < u->n_id_fields; fi++) {
    const trt_field *fd = &m->fields[u->first_field + fi];
    if ((int32_t)fi == f->seq_field) {
      for (uint32_t j = 0; j < fd->slots; j++) {
        memcpy(x->seq + (size_t)j * f->D, fd->table + (size_t)ids[slot + j] * f->D, f->D * sizeof(float));
        valid += ids[slot + j] != 0;
      }
    } else if (fd->kind == TRT_FIELD_SINGLE) {
      memcpy(e, fd->table + (size_t)ids[slot] * u->emb_dim, u->emb_dim * sizeof(float));
      e += u->emb_dim;
    } else {
      m->kernels.embed_pool_f32(fd->table, u->emb_dim, ids + slot, fd->slots, (int)fd->combiner, e);
      e += u->emb_dim;
    }
    slot += fd->slots;
  }
  return valid;
}

/* DIN for the G queries of the user rows: a masked softmax over the
 * sequence's positions of MLP([q, s, q - s, q * s]), then sum a_j s_j. */
static void din(const towerrt_model *m, const trt_fit_model *f, const int64_t *seq_ids, uint32_t valid, fit_scratch *x, size_t G) {
  const size_t L = f->seq_len, D = f->D;
  for (size_t r = 0; r < G; r++) {
    const float *q = f->qstar + (size_t)x->gq[r] * D;
    for (size_t j = 0; j < L; j++) {
      float *in = x->din_x + (r * L + j) * 4 * D;
      const float *s = x->seq + j * D;
      for (size_t d = 0; d < D; d++) {
        in[d] = q[d];
        in[D + d] = s[d];
        in[2 * D + d] = q[d] - s[d];
        in[3 * D + d] = q[d] * s[d];
      }
    }
  }
  dense(m, &f->din[0], x->din_x, G * L, x->din_h);
  dense(m, &f->din[1], x->din_h, G * L, x->din_a);
  for (size_t r = 0; r < G; r++) {
    float *out = x->ux + r * f->user_in + (m->user.n_id_fields - 1) * (size_t)m->user.emb_dim + D;
    memset(out, 0, D * sizeof(float));
    if (!valid) continue; /* an empty sequence attends to nothing */
    const float *a = x->din_a + r * L;
    float mx = -INFINITY, sum = 0.0f;
    for (size_t j = 0; j < L; j++)
      if (seq_ids[j] != 0 && a[j] > mx) mx = a[j];
    for (size_t j = 0; j < L; j++) sum += seq_ids[j] != 0 ? expf(a[j] - mx) : 0.0f;
    for (size_t j = 0; j < L; j++) {
      if (seq_ids[j] == 0) continue;
      float w = expf(a[j] - mx) / sum;
      for (size_t d = 0; d < D; d++) out[d] += w * x->seq[j * D + d];
    }
  }
}

/* Step 3: Zu of every distinct query index (G rows, x->gq). */
static size_t user_rows(const towerrt_model *m, const trt_family_request *r, fit_scratch *x) {
  const trt_fit_model *f = m->family_data;
  const trt_tower *u = &m->user;
  size_t G = 0;
  for (uint32_t g = 0; g < f->N; g++)
    if (x->start[g + 1] > x->start[g]) x->gq[G++] = g;
  uint32_t valid = user_embeddings(m, f, r->user->ids, x);
  int seq = f->seq_field >= 0;
  size_t ew = (size_t)(u->n_id_fields - seq) * u->emb_dim, D = f->D;
  for (size_t i = 0; i < G; i++) {
    float *row = x->ux + i * f->user_in;
    memcpy(row, x->base, ew * sizeof(float));
    memcpy(row + ew, f->qstar + (size_t)x->gq[i] * D, D * sizeof(float));
    if (u->dense_width) memcpy(row + ew + D * (1 + seq), r->user->dense, u->dense_width * sizeof(float));
  }
  if (seq) {
    size_t slot = 0;
    for (int32_t fi = 0; fi < f->seq_field; fi++) slot += m->fields[u->first_field + (uint32_t)fi].slots;
    din(m, f, r->user->ids + slot, valid, x, G);
  }
  const float *in = x->ux;
  float *next = x->ua;
  for (uint32_t L = 0; L < f->n_user; L++) {
    dense(m, &f->user[L], in, G, next);
    in = next;
    next = next == x->ua ? x->ub : x->ua;
  }
  dense(m, &f->user_proj, in, G, x->zu);
  return G;
}

/* Step 4 for n candidates cand[0..n) of the query whose Zu is `zu`. */
static void lss_chunk(const towerrt_model *m, const float *zu, const uint32_t *cand, size_t n, fit_scratch *x, float *scores) {
  const trt_fit_model *f = m->family_data;
  const size_t Hu = f->Hu, Hv = f->Hv, o = f->o, hv = Hv * f->p;
  for (size_t c = 0; c < n; c++) memcpy(x->zvc + c * hv, x->rowp[cand[c]], hv * sizeof(float));
  /* S[i][c Hv + j] = <Zu_i, Zv_cj>: Zu as Hu rows, the chunk's heads as the weight */
  m->kernels.dense_f32(zu, Hu, f->p, x->zvc, NULL, n * Hv, 0, x->s);
  if (f->s_mul)
    for (size_t i = 0; i < Hu; i++)
      for (size_t c = 0; c < n; c++) {
        float *s = x->s + (i * n + c) * Hv;
        for (size_t j = 0; j < Hv; j++) s[j] = s[j] * f->s_mul[i * Hv + j] + f->s_add[i * Hv + j];
      }
  dense(m, &f->row, x->s, Hu * n, x->s1); /* row (i, c): S1_c[i][:] */
  for (size_t c = 0; c < n; c++)
    for (size_t a = 0; a < o; a++)
      for (size_t i = 0; i < Hu; i++) x->t[(c * o + a) * Hu + i] = x->s1[(i * n + c) * o + a];
  dense(m, &f->col, x->t, n * o, x->s2); /* row (c, a): S2_c[a][:] */
  dense(m, &f->out, x->s2, n, x->logit);
  for (size_t c = 0; c < n; c++) scores[cand[c]] = x->logit[c];
}

/* Steps 2-4 once every candidate has its row and query index. */
static towerrt_status score_grouped(const towerrt_model *m, const trt_family_request *r, fit_scratch *xs) {
  const trt_fit_model *f = m->family_data;
  fit_scratch x = *xs;
  group(f, &x, r->k);
  size_t G = user_rows(m, r, &x);
  for (size_t i = 0; i < G; i++) {
    uint32_t g = x.gq[i];
    for (uint32_t c0 = x.start[g]; c0 < x.start[g + 1]; c0 += TRT_FIT_GROUP_CHUNK) {
      uint32_t n = x.start[g + 1] - c0 < TRT_FIT_GROUP_CHUNK ? x.start[g + 1] - c0 : TRT_FIT_GROUP_CHUNK;
      lss_chunk(m, x.zu + i * f->Hu * f->p, x.order + c0, n, &x, r->scores);
    }
  }
  /* an overflow in an item's heads must not give a finite score; skipped candidates are NaN */
  const size_t hv = (size_t)f->Hv * f->p;
  for (size_t c = 0; c < r->k; c++) {
    if (!x.rowp[c]) {
      r->scores[c] = NAN;
      continue;
    }
    for (size_t j = 0; j < hv; j++)
      if (!isfinite(x.rowp[c][j])) {
        r->scores[c] = NAN;
        break;
      }
  }
  for (size_t i = 0; i < G * f->Hu * f->p; i++)
    if (!isfinite(x.zu[i])) return trt_fail(TOWERRT_ERR_NONFINITE, "the FIT user tower overflowed (weights or dense values too large)");
  return TOWERRT_OK;
}

towerrt_status trt_fit_score_features(const towerrt_model *m, const trt_family_request *r) {
  fit_scratch x;
  layout(m, r->k, r->scratch, &x);
  for (size_t c0 = 0; c0 < r->k; c0 += TRT_ITEM_BLOCK)
    items_block(m, r, &x, c0, r->k - c0 < TRT_ITEM_BLOCK ? r->k - c0 : TRT_ITEM_BLOCK);
  return score_grouped(m, r, &x);
}

/* By id: an item-store row is Zv, then the N match logits (family_fit.h). */
towerrt_status trt_fit_score_rows(const towerrt_model *m, const trt_family_request *r) {
  const trt_fit_model *f = m->family_data;
  fit_scratch x;
  layout(m, r->k, r->scratch, &x);
  const size_t hv = (size_t)f->Hv * f->p;
  for (size_t c = 0; c < r->k; c++) {
    x.rowp[c] = r->rows[c];
    x.qidx[c] = r->rows[c] ? argmax(r->rows[c] + hv, f->N) : f->N;
  }
  return score_grouped(m, r, &x);
}
