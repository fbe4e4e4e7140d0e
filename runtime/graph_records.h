/* The GRAPH section's records (docs/format.md, "GRAPH"): the one place
 * that knows their layout and the op codes, for the family compilers, the
 * item fingerprints, the model quantizer and the writers.
 *
 *   u32 count, u32 reserved, then count records of 64 bytes:
 *   u32 op, side; i32 layer; u32 flags; i32 in[2], out; i32 t[6] (tensor
 *   indices, -1: none); f32 eps; i32 attr[2] */
#ifndef TOWERRT_GRAPH_RECORDS_H
#define TOWERRT_GRAPH_RECORDS_H

#include <stdint.h>

#include "container.h"
#include "towerrt.h"

#define TRT_GRAPH_RECORD 64u
#define TRT_GRAPH_MAX_NODES 512u

enum {
  TRT_OP_EMBED = 1,
  TRT_OP_LIGHTSE = 2,
  TRT_OP_CONCAT_DENSE = 3,
  TRT_OP_LINEAR = 4,
  TRT_OP_FE_PROJ = 5,
  TRT_OP_MAXSIM = 6,
  TRT_OP_SUM = 7,
  TRT_OP_PREDICT = 8,
  TRT_OP_SIMILARITY = 9, /* two-tower family */
  TRT_OP_AUGMENT = 10,   /* DAT */
  TRT_OP_MQM = 11,       /* FIT (runtime/family_fit_graph.c) */
  TRT_OP_DIN = 12,
  TRT_OP_LSS_PROJ = 13,
  TRT_OP_LSS_NORM = 14,
  TRT_OP_LSS = 15
};

typedef struct trt_graph_node {
  uint32_t op, side, flags;
  int32_t layer, in[2], out, t[6];
  float eps;
  int32_t attr[2];
} trt_graph_node;

/* The section's node count, checked against its size and the limit. */
towerrt_status trt_graph_count(const trt_section *g, uint32_t *n_nodes);
/* Node i of a section whose count was checked. */
void trt_graph_node_read(const trt_section *g, uint32_t i, trt_graph_node *n);
/* One record's 64 bytes. */
void trt_graph_node_encode(const trt_graph_node *n, unsigned char *record);

#endif
