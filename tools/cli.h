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
  int n_inputs;         /* merge-items: extra positional inputs */
  const char *inputs[64];
  uint32_t fe_mask, max_k;
  int plan, logits, help;
} cli_args;

/* Prints "towerrt: error: MSG (STATUS)" (MSG NULL: the thread's last error); returns EXIT_FAILED. */
int fail(towerrt_status st, const char *msg);
void options_from(const cli_args *a, towerrt_options *o);
/* fopen for reading, "-" = stdin; prints an error on failure. */
FILE *open_in(const char *path);

int cmd_build_items(const cli_args *a);

#endif
