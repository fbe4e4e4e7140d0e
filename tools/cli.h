/* Shared pieces of the towerrt CLI: parsed arguments, option building,
 * error printing. Each command lives in its own file (tools/cmd_*.c). */
#ifndef TOWERRT_CLI_H
#define TOWERRT_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "towerrt.h"

enum { EXIT_USAGE = 2, EXIT_FAILED = 1 };

typedef struct cli_args {
  const char *command; /* "score", ... */
  const char *model, *items, *requests, *features, *out, *isa;
  const char *shard;    /* build-items --shard i/n */
  /* build-items: --chunk ROWS, --engine auto|internal|onednn, --precision
   * f32|int8; quantize: --precision int8|bf16 (NULL when not given).
   * --threads is the number `threads` below, for every command. */
  const char *chunk, *engine, *precision;
  int n_inputs;         /* positional arguments (info: MODEL; merge-items: stores) */
  const char *inputs[64];
  const char *topology;  /* --topology synthetic:... | xml:PATH */
  uint32_t fe_mask, max_k, threads, placement;
  int32_t numa_node;
  int plan, logits, help, show_topology;
  int progress;      /* build-items --progress: progress lines on stderr, terminal or not */
  int static_inputs; /* quantize --static-input-scales */
  int no_centre;     /* quantize --no-centre: item heads rounded as they are */
  const char *centre; /* quantize --centre none|mean|row-mean (default: the library's choice) */
  uint32_t batch_users; /* score --batch-users N: user towers of N requests in one call */
  int on_error_skip;    /* score --on-error skip: score the valid requests, report each bad one */
  int load_copy;        /* --load copy: options.load_mode = TOWERRT_LOAD_COPY */
  int no_huge_pages;    /* --huge-pages off: options.huge_pages = 0 */
} cli_args;

/* Parses a command's arguments (tools/cli_args.c; argv[0] is the command
 * name): getopt_long, `--opt value` and `--opt=value`; only the options the
 * command takes; its required options and positional arguments present;
 * numbers whole and in range. Returns 0 after printing the problem on
 * stderr, naming the option (exit with EXIT_USAGE). */
int cli_parse(const char *cmd, int argc, char **argv, cli_args *a);
/* A whole decimal number in [lo, hi] for option --opt, or 0 after a message. */
int cli_parse_u32(const char *cmd, const char *opt, const char *s, uint32_t lo, uint32_t hi, uint32_t *out);

/* Prints "towerrt: error: MSG (STATUS)" (MSG NULL: the thread's last error); returns EXIT_FAILED. */
int fail(towerrt_status st, const char *msg);
void options_from(const cli_args *a, towerrt_options *o);
/* Creates the worker pool the options ask for (threads > 1, a placement or
 * --topology), or leaves *pool NULL; sets o->pool. */
towerrt_status pool_from(const cli_args *a, towerrt_options *o, towerrt_pool **pool);
/* What info and score load, in this order: the worker pool (pool_from),
 * the model, and with --items the item store. */
typedef struct cli_loaded {
  towerrt_options opts; /* options_from(a), with the pool set */
  towerrt_pool *pool;
  towerrt_model *model;
  towerrt_items *items;
} cli_loaded;
/* 0 when all loaded; else prints the error, frees what was loaded and
 * returns EXIT_FAILED. */
int cli_load(const cli_args *a, cli_loaded *l);
void cli_unload(cli_loaded *l);

/* fopen for reading ("-" = stdin) or writing ("-" = stdout); on failure
 * prints "towerrt: error: cannot open|write 'PATH': REASON
 * (TOWERRT_ERR_IO)" and returns NULL. */
FILE *open_in(const char *path);
FILE *open_out(const char *path);

int cmd_info(const cli_args *a);
int cmd_score(const cli_args *a);
int cmd_build_items(const cli_args *a);
int cmd_quantize(const cli_args *a);
int cmd_merge_items(const cli_args *a);

#endif
