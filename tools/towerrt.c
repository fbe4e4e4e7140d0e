/* towerrt: command-line front end of the library. One file per command
 * (tools/cmd_*.c), the argument parsing in tools/cli_args.c; this file
 * dispatches and holds what the commands share. Every failure prints the
 * library's message and its status name and exits 1; usage errors exit 2. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "towerrt.h"
#include "tools/cli.h"
#ifdef TOWERRT_HAVE_SERVE
int towerrt_serve_main(int argc, char **argv); /* tools/serve/ */
#endif


int fail(towerrt_status st, const char *msg) {
  fprintf(stderr, "towerrt: error: %s (%s)\n", msg && *msg ? msg : towerrt_last_error(), towerrt_status_name(st));
  return EXIT_FAILED;
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
  o->load_mode = a->load_copy ? TOWERRT_LOAD_COPY : TOWERRT_LOAD_MAP;
  o->huge_pages = a->no_huge_pages ? 0 : 1;
}

towerrt_status pool_from(const cli_args *a, towerrt_options *o, towerrt_pool **pool) {
  *pool = NULL;
  if (o->threads <= 1 && o->placement == TOWERRT_PLACE_SHARED && !a->show_topology) return TOWERRT_OK;
  towerrt_status st = towerrt_pool_create(o, pool);
  o->pool = *pool;
  return st;
}

int cli_load(const cli_args *a, cli_loaded *l) {
  memset(l, 0, sizeof *l);
  options_from(a, &l->opts);
  towerrt_status st = pool_from(a, &l->opts, &l->pool);
  if (!st) st = towerrt_model_load(a->model, &l->opts, &l->model);
  if (!st && a->items) st = towerrt_items_load(a->items, &l->opts, &l->items);
  if (!st) return 0;
  int rc = fail(st, NULL);
  cli_unload(l);
  return rc;
}

void cli_unload(cli_loaded *l) {
  towerrt_items_free(l->items);
  towerrt_model_free(l->model);
  towerrt_pool_free(l->pool);
  l->items = NULL, l->model = NULL, l->pool = NULL;
}

FILE *open_in(const char *path) {
  FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
  if (!f) fprintf(stderr, "towerrt: error: cannot open '%s': %s (%s)\n", path, strerror(errno), towerrt_status_name(TOWERRT_ERR_IO));
  return f;
}

FILE *open_out(const char *path) {
  FILE *f = strcmp(path, "-") ? fopen(path, "w") : stdout;
  if (!f) fprintf(stderr, "towerrt: error: cannot write '%s': %s (%s)\n", path, strerror(errno), towerrt_status_name(TOWERRT_ERR_IO));
  return f;
}

#ifdef TOWERRT_HAVE_BENCH
/* `towerrt bench ARGS` executes towerrt-bench ARGS, the benchmark binary
 * installed beside this one (bench/bench_main.c): the CLI does not link
 * the benchmarks. Returns only on failure. */
static int run_bench(char **argv) {
  char self[4096], path[4096 + 32];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    fprintf(stderr, "towerrt: error: cannot find this binary's folder (/proc/self/exe): %s (%s)\n", strerror(errno),
            towerrt_status_name(TOWERRT_ERR_IO));
    return EXIT_FAILED;
  }
  self[n] = '\0';
  char *slash = strrchr(self, '/');
  if (slash) *slash = '\0';
  snprintf(path, sizeof path, "%s/towerrt-bench", slash ? self : ".");
  argv[0] = path; /* argv[0] was "bench"; the rest are towerrt-bench's arguments */
  execv(path, argv);
  fprintf(stderr, "towerrt: error: `towerrt bench` runs %s, which cannot be run: %s (install or build towerrt-bench: "
                  "-DTOWERRT_BUILD_BENCH=ON) (%s)\n", path, strerror(errno), towerrt_status_name(TOWERRT_ERR_IO));
  return EXIT_FAILED;
}
#endif

static void usage(FILE *f) {
  fprintf(f, "towerrt %s - serve two-tower pre-ranking models (IntTower, DSSM, DAT) on CPUs\n\n"
             "usage: towerrt <command> [options]   (towerrt <command> --help; --opt value or --opt=value)\n"
             "  info         a model's metadata, fields, tensors and compiled plan; NUMA pools and\n"
             "               placement; the item-store build engines of this CPU\n"
             "  build-items  run the item tower over a catalog into an item store (.twi), or one shard\n"
             "  merge-items  merge shard stores (or stores of one model) into one item store\n"
             "  score        score a file of requests (candidates by id or by features)\n"
             "  quantize     rewrite an item store, or a model's user tower, in int8 or bf16\n"
#ifdef TOWERRT_HAVE_SERVE
             "  serve        KServe v2 / Open Inference Protocol HTTP server over a model repository\n"
#endif
#ifdef TOWERRT_HAVE_BENCH
             "  bench        latency curves, per-op profile, roofline (towerrt bench --help)\n"
#endif
             "  version      print the version (also --version)\n",
          towerrt_version_string());
}

typedef int (*command_fn)(const cli_args *a);
static const struct {
  const char *name;
  command_fn run;
} commands[] = {
  {"info", cmd_info}, {"build-items", cmd_build_items}, {"merge-items", cmd_merge_items},
  {"score", cmd_score}, {"quantize", cmd_quantize},
};

int main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? EXIT_USAGE : 0;
  }
  if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
    if (argc > 2) {
      fprintf(stderr, "towerrt version: unexpected argument '%s'\n", argv[2]);
      return EXIT_USAGE;
    }
    printf("towerrt %s\n", towerrt_version_string());
    return 0;
  }
#ifdef TOWERRT_HAVE_SERVE
  if (!strcmp(argv[1], "serve")) return towerrt_serve_main(argc - 1, argv + 1);
#endif
#ifdef TOWERRT_HAVE_BENCH
  if (!strcmp(argv[1], "bench")) return run_bench(argv + 1);
#endif
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
    if (strcmp(argv[1], commands[i].name)) continue;
    cli_args a;
    if (!cli_parse(argv[1], argc - 1, argv + 1, &a)) return EXIT_USAGE;
    return commands[i].run(&a);
  }
  fprintf(stderr, "towerrt: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return EXIT_USAGE;
}
