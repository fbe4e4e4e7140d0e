/* `towerrt bench --plot` and `--roofline`: the gnuplot curves
 * (bench_cli_internal.h). */
#include "bench_cli_internal.h"

static void series_name(const bench_ctx *c, const tb_result *r, char *buf, size_t cap, int skip_precision) {
  size_t n = 0;
  buf[0] = '\0';
  for (size_t d = 0; d + 1 < N_DIMS && n < cap; d++) {
    int varies = 0;
    for (size_t i = 0; i < c->n_results && !varies; i++) varies = strcmp(c->results[i].pt.value[d], r->pt.value[d]) != 0;
    if (!varies || (skip_precision && d == 1)) continue;
    if (d == 0) n += (size_t)snprintf(buf + n, cap - n, "%s%s", n ? " " : "", r->pt.value[d]); /* an ISA name says what it is */
    else n += (size_t)snprintf(buf + n, cap - n, "%s%s=%s", n ? " " : "", TB_DIMS[d].column, r->pt.value[d]);
  }
  if (!n) snprintf(buf, cap, "towerrt");
  for (char *p = buf; *p; p++)
    if (*p == '"' || *p == '\'' || *p == '|') *p = '_';
}

static int run_gnuplot(const char *script) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    execlp("gnuplot", "gnuplot", script, (char *)NULL);
    _exit(127);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The compute roof of a precision on this machine (GMAC/s, one core): the
 * --roofline result if there is one, else a short measurement now. */
static double precision_roof(const bench_ctx *c, int prec, char *ins, size_t cap) {
  if (c->roof) {
    double v = prec == PREC_INT8 ? c->roof->best_i8 : prec == PREC_BF16 ? c->roof->best_bf16 : c->roof->best_f32;
    if (prec == PREC_BF16 && v <= 0) v = c->roof->best_f32;
    snprintf(ins, cap, "%s", prec == PREC_INT8 ? "int8 dot" : prec == PREC_BF16 && c->roof->best_bf16 > 0 ? "bf16 dot" : "fp32 FMA");
    return v;
  }
  double v = prec == PREC_INT8 ? tb_peak_i8(0.15, ins, cap) : prec == PREC_BF16 ? tb_peak_bf16(0.15, ins, cap) : 0.0;
  if (v <= 0) v = tb_peak_f32(0.15, ins, cap);
  return v;
}

/* One line for the plots' caption: model, catalog, threads, machine. */
static void plot_caption(const bench_ctx *c, char *buf, size_t cap) {
  tb_machine mc;
  tb_machine_describe(&mc);
  char model[320], threads[64] = "";
  const towerrt_model *m = c->first;
  if (c->synthetic) tb_synth_describe(&c->synth, model, sizeof model);
  else snprintf(model, sizeof model, "%s", c->model_path);
  size_t n = 0;
  for (size_t i = 0; i < c->n_results && n < sizeof threads; i++) {
    char t[16];
    snprintf(t, sizeof t, "%u", c->results[i].pt.threads);
    if (!strstr(threads, t)) n += (size_t)snprintf(threads + n, sizeof threads - n, "%s%s", n ? "," : "", t);
  }
  const char *forced = getenv("TOWERRT_ISA");
  snprintf(buf, cap, "model: %s, %u x %u heads of %u dims; catalog %zu items; threads per request %s; %s, %d logical CPUs, best ISA %s%s%s",
           model, tb_user_heads(m), tb_item_heads(m), tb_head_dim(m), towerrt_items_count(c->items), threads, mc.cpu, mc.logical_cpus,
           tb_default_isa(), forced && *forced ? ", TOWERRT_ISA=" : "", forced && *forced ? forced : "");
  for (char *q = buf; *q; q++)
    if (*q == '"' || *q == '\'') *q = ' ';
}

int bc_write_plot(const bench_ctx *c) {
  char dat[4096], gp[4096], titles[4096] = "", caption[1024], bounds[512] = "";
  snprintf(dat, sizeof dat, "%s.dat", c->plot);
  snprintf(gp, sizeof gp, "%s.gp", c->plot);
  FILE *f = fopen(dat, "w");
  if (!f) {
    fprintf(stderr, "towerrt bench: cannot write '%s': %s\n", dat, strerror(errno));
    return EXIT_FAIL;
  }
  /* the compute bound of each precision: roof / MaxSim MACs per candidate */
  double roof[N_PREC] = {0};
  size_t bl = 0;
  for (size_t i = 0; i < c->n_results; i++) {
    int pr = c->results[i].pt.precision;
    if (roof[pr] > 0) continue;
    char ins[48];
    roof[pr] = precision_roof(c, pr, ins, sizeof ins);
    bl += (size_t)snprintf(bounds + bl, bl < sizeof bounds ? sizeof bounds - bl : 0, "%s%s %.0f GMAC/s (%s)", bl ? ", " : "",
                           k_prec_names[pr], roof[pr], ins);
  }
  /* one panel per precision (the legend stays short): the series of a
   * precision are consecutive data blocks, first_series[p] .. end_series[p] */
  size_t n_series = 0, tl = 0, skipped = 0, first_series[N_PREC] = {0}, end_series[N_PREC] = {0};
  for (int pr = 0; pr < N_PREC; pr++) {
  first_series[pr] = n_series;
  char prev[256] = "";
  for (size_t i = 0; i < c->n_results; i++) {
    const tb_result *r = &c->results[i];
    if (r->pt.precision != pr) continue;
    if (!c->include_scalar && !strcmp(r->pt.isa, "scalar")) { /* 10-100x slower: it flattens every other curve */
      skipped++;
      continue;
    }
    char name[256];
    series_name(c, r, name, sizeof name, 1);
    if (n_series == first_series[pr] || strcmp(name, prev)) {
      if (n_series) fputs("\n\n", f);
      fprintf(f, "# %s\n# k p50_us p90_us p99_us p999_us cands_per_s roof_cands_per_s\n", name);
      tl += (size_t)snprintf(titles + tl, tl < sizeof titles ? sizeof titles - tl : 0, "%s%s", n_series ? "|" : "", name);
      n_series++;
      snprintf(prev, sizeof prev, "%s", name);
    }
    double macs = (double)r->user_heads * tb_item_heads(c->first) * tb_head_dim(c->first);
    fprintf(f, "%zu %.3f %.3f %.3f %.3f %.1f %.1f\n", r->pt.k, r->st.p50 * 1e-3, r->st.p90 * 1e-3, r->st.p99 * 1e-3, r->st.p999 * 1e-3,
            r->cands_per_s, macs > 0 ? roof[r->pt.precision] * 1e9 / macs : 0.0);
  }
  end_series[pr] = n_series;
  }
  fclose(f);
  if (!n_series) {
    fprintf(stderr, "towerrt bench: --plot: only scalar points were measured; add --include-scalar to plot them\n");
    return EXIT_OK;
  }
  if (skipped && !c->quiet) fprintf(stderr, "towerrt bench: note: scalar points left out of the plots (--include-scalar draws them)\n");
  plot_caption(c, caption, sizeof caption);
  f = fopen(gp, "w");
  if (!f) {
    fprintf(stderr, "towerrt bench: cannot write '%s': %s\n", gp, strerror(errno));
    return EXIT_FAIL;
  }
  const char *base = strrchr(c->plot, '/');
  base = base ? base + 1 : c->plot;
  int panels = 0;
  size_t most = 0;
  for (int pr = 0; pr < N_PREC; pr++)
    if (end_series[pr] > first_series[pr]) {
      panels++;
      if (end_series[pr] - first_series[pr] > most) most = end_series[pr] - first_series[pr];
    }
  int width = panels > 1 ? 620 * panels : 1100, height = 560 + 18 * (int)((most + 1) / 2);
  char machine[1100], model[1100];
  snprintf(model, sizeof model, "%s", caption);
  char *semi = strstr(model, "; threads");
  snprintf(machine, sizeof machine, "%s", semi ? semi + 2 : "");
  if (semi) *semi = '\0';
  /* a long model line wraps once, at the space nearest its middle */
  size_t ml = strlen(model);
  if (ml > 110 && ml + 3 < sizeof model) {
    size_t cut = ml / 2;
    while (cut < ml && model[cut] != ' ') cut++;
    if (cut < ml) {
      memmove(model + cut + 2, model + cut + 1, ml - cut);
      model[cut] = '\\', model[cut + 1] = 'n';
    }
  }
  fprintf(f,
          "# Latency and throughput versus candidates per request, one panel per item-store precision;\n"
          "# written by towerrt bench --plot. Run from this folder: gnuplot %s.gp\n"
          "datafile = '%s.dat'\n"
          "# series (data blocks in order): %s\n"
          "set logscale x\n"
          "set grid\n"
          "set key below maxcolumns 2 noenhanced\n"
          "set xlabel 'candidates per request (k)'\n"
          "set format x '10^{%%L}'\n"
          "set logscale y\n"
          "png = (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) ? 'pngcairo' : 'png'\n"
          "do for [fmt in 'png svg'] {\n"
          "  if (fmt eq 'png') { set terminal png size %d,%d } else { set terminal svg size %d,%d dynamic background rgb 'white' }\n"
          "  if (fmt eq 'png' && png eq 'pngcairo') { set terminal pngcairo size %d,%d font ',10' }\n",
          base, base, titles, width, height, width, height, width, height);
  for (int chart = 0; chart < 2; chart++) {
    fprintf(f, "  set output '%s-%s.'.fmt\n", base, chart ? "throughput" : "latency");
    fprintf(f, "  set multiplot layout 1,%d title \"%s\\n%s\\n%s\" noenhanced\n", panels,
            chart ? "towerrt throughput, one request at a time; dotted: the compute bound (roof of the precision / MaxSim MACs per candidate)"
                  : "towerrt request latency: p50 solid with filled points, p99 dashed with open points",
            model, machine);
    fprintf(f, "  set ylabel '%s'\n", chart ? "candidates per second" : "latency (ms)");
    for (int pr = 0; pr < N_PREC; pr++) {
      if (end_series[pr] == first_series[pr]) continue;
      fprintf(f, "  set title '%s item store' noenhanced\n", k_prec_names[pr]);
      fprintf(f, "  plot \\\n");
      const char *t = titles;
      for (size_t i = 0; i < end_series[pr]; i++) {
        const char *bar = strchr(t, '|');
        int len = bar ? (int)(bar - t) : (int)strlen(t);
        if (i >= first_series[pr]) {
          size_t col = i - first_series[pr] + 1;
          if (chart)
            fprintf(f,
                    "    datafile index %zu using 1:6 with linespoints lw 2 pt 7 ps 0.8 lc %zu title '%.*s', \\\n"
                    "    datafile index %zu using 1:7 with lines lw 1.5 lc %zu dt (2,3) notitle%s\n",
                    i, col, len, t, i, col, i + 1 < end_series[pr] ? ", \\" : "");
          else
            fprintf(f,
                    "    datafile index %zu using 1:($2/1000) with linespoints lw 2 pt 7 ps 0.8 lc %zu title '%.*s', \\\n"
                    "    datafile index %zu using 1:($4/1000) with linespoints lw 1.5 pt 6 ps 0.8 lc %zu dt (8,4) notitle%s\n",
                    i, col, len, t, i, col, i + 1 < end_series[pr] ? ", \\" : "");
        }
        t = bar ? bar + 1 : t + len;
      }
    }
    fprintf(f, "  unset multiplot\n");
  }
  fprintf(f, "}\n# compute roofs used (one core): %s\n", bounds);
  fclose(f);
  char prog[4096];
  if (!tb_find_program("gnuplot", prog, sizeof prog)) {
    fprintf(stderr,
            "towerrt bench: gnuplot is NOT installed (not found on PATH): no PNG/SVG curves were drawn.\n"
            "  Wrote %s and %s; install gnuplot (Debian: apt-get install gnuplot-nox) and run\n"
            "  (cd %.*s && gnuplot %s.gp)\n",
            dat, gp, (int)(base - c->plot > 1 ? base - c->plot - 1 : 1), base - c->plot > 1 ? c->plot : ".", base);
    return EXIT_OK;
  }
  /* gnuplot runs in the plot's folder so that the script's relative names work */
  char cwd[4096];
  int have_cwd = getcwd(cwd, sizeof cwd) != NULL, rc;
  if (base != c->plot) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%.*s", (int)(base - c->plot), c->plot);
    if (chdir(dir) != 0) {
      fprintf(stderr, "towerrt bench: cannot enter '%s': %s\n", dir, strerror(errno));
      return EXIT_FAIL;
    }
  }
  char script[4200];
  snprintf(script, sizeof script, "%s.gp", base);
  rc = run_gnuplot(script);
  if (have_cwd && base != c->plot && chdir(cwd) != 0) fprintf(stderr, "towerrt bench: cannot return to '%s'\n", cwd);
  if (rc != 0) {
    fprintf(stderr, "towerrt bench: gnuplot %s failed (exit %d)\n", gp, rc);
    return EXIT_FAIL;
  }
  fprintf(stderr, "towerrt bench: wrote %s-latency.png/.svg and %s-throughput.png/.svg\n", c->plot, c->plot);
  return EXIT_OK;
}

/* --roofline with --plot: PREFIX-roofline.{png,svg}, the roofline model of
 * this core: x = multiply-adds per byte of item rows (or weights) read,
 * y = GMAC/s; the compute roofs as horizontal lines, the read bandwidth as
 * the slope; each kernel measurement a labelled point. */
int bc_write_roofline_plot(const bench_ctx *c) {
  const tb_roofline *r = c->roof;
  char dat[4096], gp[4096];
  snprintf(dat, sizeof dat, "%s-roofline.dat", c->plot);
  snprintf(gp, sizeof gp, "%s-roofline.gp", c->plot);
  FILE *f = fopen(dat, "w");
  if (!f) {
    fprintf(stderr, "towerrt bench: cannot write '%s': %s\n", dat, strerror(errno));
    return EXIT_FAIL;
  }
  fprintf(f, "# intensity_mac_per_byte gmac_per_s label label_dx label_dy\n");
  for (size_t i = 0, shown = 0; i < r->n_kernels; i++) {
    const tb_kernel_roof *k = &r->kernels[i];
    if (!(k->gbps > 0) || !(k->gmacs > 0) || (!c->include_scalar && !strcmp(k->isa, "scalar"))) continue;
    /* labels fan out around their point: kernels of one intensity share an x */
    int side = shown % 2 ? -1 : 1, lift = (int)(shown++ % 4) / 2;
    fprintf(f, "%.6g %.6g \"%s %s%s\" %d %d\n", k->gmacs / k->gbps, k->gmacs, k->kernel, k->isa,
            strstr(k->shape, "store") ? " (store)" : strstr(k->shape, "L2") ? " (L2)" : strstr(k->shape, "n=1,") ? " (n=1)" : " (n=32)",
            side, side * (1 + lift));
  }
  fclose(f);
  const char *base = strrchr(c->plot, '/');
  base = base ? base + 1 : c->plot;
  tb_machine mc;
  tb_machine_describe(&mc);
  f = fopen(gp, "w");
  if (!f) {
    fprintf(stderr, "towerrt bench: cannot write '%s': %s\n", gp, strerror(errno));
    return EXIT_FAIL;
  }
  fprintf(f,
          "# The roofline of one core with each kernel as a point; written by towerrt bench --roofline --plot.\n"
          "set logscale xy\nset grid\nset key below maxcolumns 3 noenhanced\n"
          "set xlabel 'multiply-adds per byte of item rows / weights read (scalar kernels left out unless --include-scalar)'\nset ylabel 'GMAC/s'\n"
          "set xrange [0.1:1e3]\nset yrange [1:%.0f]\n"
          "bw = %.3f\n"
          "do for [fmt in 'png svg'] {\n"
          "  if (fmt eq 'png') { set terminal png size 1200,800 } else { set terminal svg size 1200,800 dynamic background rgb 'white' }\n"
          "  if (fmt eq 'png' && strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) { set terminal pngcairo size 1200,800 font ',10' }\n"
          "  set output '%s-roofline.'.fmt\n"
          "  set title \"towerrt kernels against the roofs of one core: %s%s%s\\n(read bandwidth %.1f GB/s from a %zu MiB buffer; L2-resident points sit left of the slope's reach)\" noenhanced\n"
          "  plot bw * x with lines lw 2 lc rgb 'black' dt 2 title sprintf('DRAM read %%.1f GB/s', bw)",
          4.0 * (r->best_i8 > r->best_f32 ? r->best_i8 : r->best_f32), r->bandwidth, base, mc.cpu,
          getenv("TOWERRT_ISA") ? ", TOWERRT_ISA=" : "", getenv("TOWERRT_ISA") ? getenv("TOWERRT_ISA") : "", r->bandwidth,
          r->buffer_bytes >> 20);
  int lc = 1;
  for (size_t i = 0; i < r->n_peaks; i++) {
    if (strcmp(r->peaks[i].unit, "GMAC/s")) continue;
    fprintf(f, ", \\\n       %.3f with lines lw 2 lc %d title '%s %.0f GMAC/s'", r->peaks[i].value, lc++, r->peaks[i].instruction,
            r->peaks[i].value);
  }
  fprintf(f,
          ", \\\n       '%s-roofline.dat' using 1:2 with points pt 7 ps 1.3 lc rgb '#c00000' title 'kernels (measured)', \\\n"
          "       '' using 1:2:($4 > 0 ? stringcolumn(3) : '') with labels left offset 1,0.4 font ',8' noenhanced notitle, \\\n"
          "       '' using 1:2:($4 < 0 ? stringcolumn(3) : '') with labels right offset -1,-0.4 font ',8' noenhanced notitle\n}\n",
          base);
  fclose(f);
  char prog[4096], cwd[4096], dir[4096], script[4200];
  if (!tb_find_program("gnuplot", prog, sizeof prog)) {
    fprintf(stderr, "towerrt bench: gnuplot is NOT installed: wrote %s and %s only\n", dat, gp);
    return EXIT_OK;
  }
  int have_cwd = getcwd(cwd, sizeof cwd) != NULL;
  snprintf(dir, sizeof dir, "%.*s", (int)(base - c->plot), c->plot);
  if (base != c->plot && chdir(dir) != 0) {
    fprintf(stderr, "towerrt bench: cannot enter '%s': %s\n", dir, strerror(errno));
    return EXIT_FAIL;
  }
  snprintf(script, sizeof script, "%s-roofline.gp", base);
  int rc = run_gnuplot(script);
  if (have_cwd && base != c->plot && chdir(cwd) != 0) fprintf(stderr, "towerrt bench: cannot return to '%s'\n", cwd);
  if (rc != 0) {
    fprintf(stderr, "towerrt bench: gnuplot %s failed (exit %d)\n", gp, rc);
    return EXIT_FAIL;
  }
  if (!c->quiet) fprintf(stderr, "towerrt bench: wrote %s-roofline.png/.svg\n", c->plot);
  return EXIT_OK;
}
