/* Shared pieces of the towerrt CLI: parsed arguments, option building,
 * error printing. Each command lives in its own file (tools/cmd_*.c). */
#ifndef TOWERRT_CLI_H
#define TOWERRT_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "towerrt.h"

enum { EXIT_USAGE = 2, EXIT_FAILED = 1 };

typedef struct cli_args {
  const char *model, *items, *requests, *features, *out, *isa;
  const char *shard;    /* build-items --shard i/n */
  /* build-items: --chunk ROWS, --engine auto|internal|onednn, --precision
   * f32|int8; quantize: --precision int8|bf16 (NULL when not given).
   * --threads is the number `threads` below, for every command. */
  const char *chunk, *engine, *precision;
  int n_inputs;         /* merge-items: extra positional inputs */
  const char *inputs[64];
  const char *topology;  /* --topology synthetic:... | xml:PATH */
  uint32_t fe_mask, max_k, threads, placement;
  int32_t numa_node;
  int plan, logits, help, show_topology;
  int static_inputs; /* quantize --static-input-scales */
  uint32_t batch_users; /* score --batch-users N: user towers of N requests in one call */
} cli_args;

/* Prints "towerrt: error: MSG (STATUS)" (MSG NULL: the thread's last error); returns EXIT_FAILED. */
int fail(towerrt_status st, const char *msg);
void options_from(const cli_args *a, towerrt_options *o);
/* Creates the worker pool the options ask for (threads > 1, a placement or
 * --topology), or leaves *pool NULL; sets o->pool. */
towerrt_status pool_from(const cli_args *a, towerrt_options *o, towerrt_pool **pool);
/* fopen for reading, "-" = stdin; prints an error on failure. */
FILE *open_in(const char *path);

int cmd_build_items(const cli_args *a);
int cmd_quantize(const cli_args *a);
int cmd_merge_items(const cli_args *a);

#endif
