/* GRAPH records (graph_records.h). */
#include "graph_records.h"

#include <string.h>

#include "status.h"

towerrt_status trt_graph_count(const trt_section *g, uint32_t *n_nodes) {
  *n_nodes = 0;
  if (g->size < 8) return trt_fail(TOWERRT_ERR_FORMAT, "GRAPH section has no count");
  uint32_t n = trt_rd32(g->data);
  if (n > TRT_GRAPH_MAX_NODES || (uint64_t)n * TRT_GRAPH_RECORD > g->size - 8)
    return trt_fail(TOWERRT_ERR_FORMAT, "GRAPH count %u does not fit the section (%llu bytes, limit %u nodes)", n,
                    (unsigned long long)g->size, TRT_GRAPH_MAX_NODES);
  *n_nodes = n;
  return TOWERRT_OK;
}

void trt_graph_node_read(const trt_section *g, uint32_t i, trt_graph_node *n) {
  const unsigned char *r = g->data + 8 + (size_t)i * TRT_GRAPH_RECORD;
  n->op = trt_rd32(r);
  n->side = trt_rd32(r + 4);
  n->layer = (int32_t)trt_rd32(r + 8);
  n->flags = trt_rd32(r + 12);
  n->in[0] = (int32_t)trt_rd32(r + 16);
  n->in[1] = (int32_t)trt_rd32(r + 20);
  n->out = (int32_t)trt_rd32(r + 24);
  for (int j = 0; j < 6; j++) n->t[j] = (int32_t)trt_rd32(r + 28 + 4 * j);
  uint32_t eps_bits = trt_rd32(r + 52);
  memcpy(&n->eps, &eps_bits, 4);
  n->attr[0] = (int32_t)trt_rd32(r + 56);
  n->attr[1] = (int32_t)trt_rd32(r + 60);
}

void trt_graph_node_encode(const trt_graph_node *n, unsigned char *r) {
  uint32_t eps_bits;
  memcpy(&eps_bits, &n->eps, 4);
  const uint32_t words[16] = {n->op, n->side, (uint32_t)n->layer, n->flags, (uint32_t)n->in[0], (uint32_t)n->in[1], (uint32_t)n->out,
                              (uint32_t)n->t[0], (uint32_t)n->t[1], (uint32_t)n->t[2], (uint32_t)n->t[3], (uint32_t)n->t[4],
                              (uint32_t)n->t[5], eps_bits, (uint32_t)n->attr[0], (uint32_t)n->attr[1]};
  for (int j = 0; j < 16; j++) trt_wr32(r + 4 * j, words[j]);
}
