/* towerrt info: a model's metadata, fields, tensors and compiled plan; the
 * worker pools and placement (--topology); the item-store build engines
 * of this CPU. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "tools/cli.h"
#include "towerrt.h"

/* --items: what the scores read (docs/quantization.md "Centred stores"). */
static void print_items(const towerrt_items *items) {
  printf("item store: %zu items, %s heads", towerrt_items_count(items), towerrt_precision_name(towerrt_items_precision(items)));
  size_t dim = 0;
  const float *m = towerrt_items_centre(items, &dim);
  if (towerrt_items_centring(items) == TOWERRT_CENTRING_ROW_MEAN) {
    printf(", each item centred on its mean head (%zu f32 per item; + <sum_u u, m_item> per candidate)\n", dim);
    return;
  }
  if (!m) {
    puts(", not centred");
    return;
  }
  double norm = 0.0, max = 0.0;
  for (size_t d = 0; d < dim; d++) {
    norm += (double)m[d] * m[d];
    max = fabs(m[d]) > max ? fabs(m[d]) : max;
  }
  printf(", centred on the catalog mean head (|m| = %.4g, max |m_d| = %.4g; + sum_u <u, m> per request)\n", sqrt(norm), max);
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

static void print_items_memory(const towerrt_items *items) {
  size_t need = towerrt_items_describe(items, NULL, 0) + 1;
  char *text = malloc(need);
  if (!text) return;
  towerrt_items_describe(items, text, need);
  printf("%s", text);
  free(text);
}

int cmd_info(const cli_args *a) {
  if (a->help) {
    puts("usage: towerrt info MODEL.twr [--plan] [--isa NAME] [--items S.twi] [--load map|copy] [--huge-pages on|off]\n"
         "                    [--topology [synthetic:DESC | xml:PATH]] [--placement shared|replicate|interleave]\n"
         "  Prints the model's metadata, input fields, tensors and its compiled plan;\n"
         "  with --topology, the NUMA nodes, the worker pools and where the weights\n"
         "  and item heads are placed, and which engine builds item stores at each\n"
         "  precision on this CPU. With --items, how the store's heads are held:\n"
         "  mapped or copied, and the huge pages asked for and granted.");
    return 0;
  }
  cli_loaded l;
  if (cli_load(a, &l)) return EXIT_FAILED;
  size_t need = towerrt_model_describe(l.model, NULL, 0) + 1;
  char *text = malloc(need);
  if (!text) {
    cli_unload(&l);
    return fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  }
  const towerrt_model *m = l.model;
  towerrt_model_describe(m, text, need);
  printf("towerrt %s, model %s\n%s", towerrt_version_string(), a->model, text);
  printf("request layout: user %zu id slots + %zu dense; item %zu id slots + %zu dense\n", towerrt_model_id_slots(m, TOWERRT_USER),
         towerrt_model_dense_width(m, TOWERRT_USER), towerrt_model_id_slots(m, TOWERRT_ITEM), towerrt_model_dense_width(m, TOWERRT_ITEM));
  free(text);
  for (int p = 0; p < 3; p++) {
    char engine[512];
    towerrt_items_build_engine(m, (towerrt_precision)p, engine, sizeof engine);
    printf("item-store builds, %-4s: %s\n", towerrt_precision_name((towerrt_precision)p), engine);
  }
  if (l.items) print_items(l.items);
  if (l.items) print_items_memory(l.items);
  if (l.pool) print_placement(l.pool, m, l.items, a->placement);
  cli_unload(&l);
  return 0;
}

