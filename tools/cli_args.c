/* The CLI's argument parsing (cli.h): getopt_long over one table of
 * options, then per command the options it accepts, the ones it needs and
 * its positional arguments. Numbers are parsed whole and range-checked;
 * every usage error names the option on stderr and exits 2. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"

enum {
  OPT_MODEL = 256, OPT_ITEMS, OPT_REQUESTS, OPT_FEATURES, OPT_OUT, OPT_ISA, OPT_FE_LAYERS, OPT_MAX_K, OPT_BATCH_USERS,
  OPT_PLAN, OPT_LOGITS, OPT_THREADS, OPT_NUMA_NODE, OPT_TOPOLOGY, OPT_PLACEMENT, OPT_PRECISION, OPT_CHUNK, OPT_ENGINE,
  OPT_CALIBRATION, OPT_STATIC_INPUTS, OPT_NO_CENTRE, OPT_CENTRE, OPT_SHARD, OPT_PROGRESS, OPT_HELP, OPT_ON_ERROR, OPT_LOAD,
  OPT_HUGE_PAGES
};

static const struct option long_options[] = {
  {"model", required_argument, NULL, OPT_MODEL},
  {"items", required_argument, NULL, OPT_ITEMS},
  {"requests", required_argument, NULL, OPT_REQUESTS},
  {"features", required_argument, NULL, OPT_FEATURES},
  {"out", required_argument, NULL, OPT_OUT},
  {"isa", required_argument, NULL, OPT_ISA},
  {"fe-layers", required_argument, NULL, OPT_FE_LAYERS},
  {"max-k", required_argument, NULL, OPT_MAX_K},
  {"batch-users", required_argument, NULL, OPT_BATCH_USERS},
  {"plan", no_argument, NULL, OPT_PLAN},
  {"logits", no_argument, NULL, OPT_LOGITS},
  {"threads", required_argument, NULL, OPT_THREADS},
  {"numa-node", required_argument, NULL, OPT_NUMA_NODE},
  {"topology", optional_argument, NULL, OPT_TOPOLOGY},
  {"placement", required_argument, NULL, OPT_PLACEMENT},
  {"precision", required_argument, NULL, OPT_PRECISION},
  {"chunk", required_argument, NULL, OPT_CHUNK},
  {"engine", required_argument, NULL, OPT_ENGINE},
  {"calibration", required_argument, NULL, OPT_CALIBRATION},
  {"static-input-scales", no_argument, NULL, OPT_STATIC_INPUTS},
  {"no-centre", no_argument, NULL, OPT_NO_CENTRE},
  {"centre", required_argument, NULL, OPT_CENTRE},
  {"shard", required_argument, NULL, OPT_SHARD},
  {"progress", no_argument, NULL, OPT_PROGRESS},
  {"help", no_argument, NULL, OPT_HELP},
  {"on-error", required_argument, NULL, OPT_ON_ERROR}, /* issue 13 */
  {"load", required_argument, NULL, OPT_LOAD},         /* issue 13 */
  {"huge-pages", required_argument, NULL, OPT_HUGE_PAGES}, /* issue 16: on|off */
  {NULL, 0, NULL, 0},
};

/* What each command takes: accepted options (space-separated, each
 * followed by a space), required options, and its positional arguments. */
typedef struct command_spec {
  const char *name, *accepts, *requires;
  int min_positional, max_positional;
  const char *positional; /* its name in messages */
} command_spec;

#define COMMON "isa threads numa-node topology placement load huge-pages help "
static const command_spec commands[] = {
  {"info", "model plan items " COMMON, "", 0, 1, "MODEL.twr"},
  {"score", "model items requests out fe-layers max-k batch-users logits on-error " COMMON, "model requests ", 0, 0, NULL},
  {"build-items", "model features out shard chunk engine precision progress " COMMON, "model features out ", 0, 0, NULL},
  {"quantize", "model items out precision calibration static-input-scales no-centre centre max-k " COMMON, "out precision ", 0, 0, NULL},
  {"merge-items", "model out " COMMON, "model out ", 1, 64, "STORE.twi"},
};

static const command_spec *find_command(const char *name) {
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (!strcmp(commands[i].name, name)) return &commands[i];
  return NULL;
}

static int accepts(const char *list, const char *opt) {
  size_t n = strlen(opt);
  for (const char *p = list; (p = strstr(p, opt)) != NULL; p += n)
    if ((p == list || p[-1] == ' ') && p[n] == ' ') return 1;
  return 0;
}

static int usage_error(const char *cmd, const char *fmt, const char *what, const char *value) {
  fprintf(stderr, "towerrt %s: ", cmd);
  fprintf(stderr, fmt, what, value);
  fprintf(stderr, " (towerrt %s --help)\n", cmd);
  return 0;
}

int cli_parse_u32(const char *cmd, const char *opt, const char *s, uint32_t lo, uint32_t hi, uint32_t *out) {
  char *end = NULL;
  errno = 0;
  unsigned long long v = (s && *s >= '0' && *s <= '9') ? strtoull(s, &end, 10) : 0;
  if (!end || *end || errno || v < lo || v > hi) {
    fprintf(stderr, "towerrt %s: --%s wants a whole number in %u..%u (got '%s') (towerrt %s --help)\n", cmd, opt, lo, hi, s ? s : "",
            cmd);
    return 0;
  }
  *out = (uint32_t)v;
  return 1;
}

/* "0,1,2": FE layer indices, each once. */
static int parse_fe_layers(const char *cmd, const char *s, uint32_t *mask) {
  *mask = 0;
  for (const char *p = s;;) {
    char *end;
    errno = 0;
    long v = (*p >= '0' && *p <= '9') ? strtol(p, &end, 10) : -1;
    if (v < 0 || v >= 16 || errno || (*end && *end != ',') || (*mask & (1u << v)))
      return usage_error(cmd, "--%s wants distinct layer indices like 0,1,2 (got '%s')", "fe-layers", s);
    *mask |= 1u << v;
    if (!*end) return 1;
    p = end + 1;
  }
}

static int parse_placement(const char *cmd, const char *v, uint32_t *out) {
  if (!strcmp(v, "shared")) *out = TOWERRT_PLACE_SHARED;
  else if (!strcmp(v, "replicate")) *out = TOWERRT_PLACE_REPLICATE;
  else if (!strcmp(v, "interleave")) *out = TOWERRT_PLACE_INTERLEAVE;
  else return usage_error(cmd, "--%s wants shared, replicate or interleave (got '%s')", "placement", v);
  return 1;
}

/* --NAME a|b: *out = 1 for b, 0 for a (issue 13: --on-error stop|skip, --load map|copy). */
static int parse_pair(const char *cmd, const char *name, const char *v, const char *a0, const char *a1, int *out) {
  char fmt[96];
  snprintf(fmt, sizeof fmt, "--%%s wants %s or %s (got '%%s')", a0, a1);
  if (strcmp(v, a0) && strcmp(v, a1)) return usage_error(cmd, fmt, name, v);
  *out = !strcmp(v, a1);
  return 1;
}

static int take_option(const char *cmd, int id, const char *v, cli_args *a) {
  uint32_t n;
  switch (id) {
  case OPT_MODEL: a->model = v; return 1;
  case OPT_ITEMS: a->items = v; return 1;
  case OPT_REQUESTS: case OPT_CALIBRATION: a->requests = v; return 1;
  case OPT_FEATURES: a->features = v; return 1;
  case OPT_OUT: a->out = v; return 1;
  case OPT_ISA: a->isa = v; return 1;
  case OPT_PRECISION: a->precision = v; return 1;
  case OPT_CHUNK: a->chunk = v; return 1;
  case OPT_ENGINE: a->engine = v; return 1;
  case OPT_SHARD: a->shard = v; return 1;
  case OPT_PLAN: a->plan = 1; return 1;
  case OPT_LOGITS: a->logits = 1; return 1;
  case OPT_STATIC_INPUTS: a->static_inputs = 1; return 1;
  case OPT_NO_CENTRE: a->no_centre = 1; return 1;
  case OPT_CENTRE: a->centre = optarg; return 1;
  case OPT_PROGRESS: a->progress = 1; return 1;
  case OPT_HELP: a->help = 1; return 1;
  case OPT_FE_LAYERS: return parse_fe_layers(cmd, v, &a->fe_mask);
  case OPT_MAX_K: return cli_parse_u32(cmd, "max-k", v, 1, UINT32_MAX, &a->max_k);
  case OPT_BATCH_USERS: return cli_parse_u32(cmd, "batch-users", v, 1, 1u << 20, &a->batch_users);
  case OPT_THREADS: return cli_parse_u32(cmd, "threads", v, 1, 1024, &a->threads);
  case OPT_NUMA_NODE:
    if (!cli_parse_u32(cmd, "numa-node", v, 0, 4095, &n)) return 0;
    a->numa_node = (int32_t)n;
    return 1;
  case OPT_PLACEMENT: return parse_placement(cmd, v, &a->placement);
  case OPT_ON_ERROR: return parse_pair(cmd, "on-error", v, "stop", "skip", &a->on_error_skip);
  case OPT_LOAD: return parse_pair(cmd, "load", v, "map", "copy", &a->load_copy);
  case OPT_HUGE_PAGES: return parse_pair(cmd, "huge-pages", v, "on", "off", &a->no_huge_pages);
  case OPT_TOPOLOGY:
    if (v && strncmp(v, "synthetic:", 10) != 0 && strncmp(v, "xml:", 4) != 0)
      return usage_error(cmd, "--%s wants synthetic:DESCRIPTION or xml:PATH (got '%s')", "topology", v);
    a->topology = v;
    a->show_topology = 1;
    return 1;
  default: return 0;
  }
}

/* The value of a required option, NULL when not given. */
static const char *required_value(const cli_args *a, const char *opt) {
  if (!strcmp(opt, "model")) return a->model;
  if (!strcmp(opt, "requests")) return a->requests;
  if (!strcmp(opt, "features")) return a->features;
  if (!strcmp(opt, "out")) return a->out;
  if (!strcmp(opt, "precision")) return a->precision;
  return NULL;
}

int cli_parse(const char *cmd, int argc, char **argv, cli_args *a) {
  memset(a, 0, sizeof *a);
  a->numa_node = -1;
  a->command = cmd;
  const command_spec *spec = find_command(cmd);
  if (!spec) return 0;
  opterr = 0; /* our own messages, naming the command */
  optind = 1;
  int id, idx;
  while ((id = getopt_long(argc, argv, "h", long_options, &idx)) != -1) {
    if (id == 'h') id = OPT_HELP;
    if (id == '?') {
      const char *bad = argv[optind - 1];
      if (optopt) usage_error(cmd, "option %s%s needs a value", bad, "");
      else usage_error(cmd, "unknown option '%s'%s", bad, "");
      return 0;
    }
    if (id == ':' || id < OPT_MODEL) return usage_error(cmd, "bad option '%s'%s", argv[optind - 1], "");
    const char *name = long_options[id - OPT_MODEL].name;
    if (!accepts(spec->accepts, name)) return usage_error(cmd, "--%s is not an option of this command%s", name, "");
    if (!take_option(cmd, id, optarg, a)) return 0;
  }
  int n_pos = argc - optind;
  if (n_pos > spec->max_positional)
    return usage_error(cmd, spec->max_positional ? "too many arguments: '%s'%s" : "unexpected argument '%s'%s",
                       argv[optind + spec->max_positional], "");
  for (int i = 0; i < n_pos; i++) a->inputs[a->n_inputs++] = argv[optind + i];
  if (a->help) return 1;
  /* info takes its model as an argument or as --model */
  if (!strcmp(cmd, "info") && !a->model && a->n_inputs) a->model = a->inputs[0];
  if (!strcmp(cmd, "info") && !a->model) return usage_error(cmd, "missing the model: towerrt info %s%s", "MODEL.twr", "");
  for (const char *p = spec->requires; *p;) {
    const char *sp = strchr(p, ' ');
    char opt[32];
    snprintf(opt, sizeof opt, "%.*s", (int)(sp - p), p);
    if (!required_value(a, opt)) return usage_error(cmd, "missing --%s%s", opt, "");
    p = sp + 1;
  }
  if (n_pos < spec->min_positional) return usage_error(cmd, "missing %s%s", spec->positional, "...");
  return 1;
}
