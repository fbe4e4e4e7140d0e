/* towerrt_items_describe: how a store's item heads are held in memory
 * (mapped or copied, placement copies, huge pages asked for and granted). */

#include "huge_pages.h"
#include "item_store.h"
#include "text_buf.h"

/* What was asked for the memory at p (wanted: options.huge_pages and the
 * environment; asked: the madvise was made), and what smaps shows granted. */
static void put_huge(trt_text_buf *t, const void *p, size_t bytes, uint32_t wanted, int asked) {
  int64_t huge = trt_huge_bytes(p, bytes);
  trt_text_put(t, "huge pages %s", !wanted ? "off (options.huge_pages = 0 or TOWERRT_HUGE_PAGES=off)"
                          : asked ? "asked (madvise)" : "not asked (under 2 MiB, or madvise refused)");
  if (huge < 0) trt_text_put(t, ", granted: unknown (no /proc/self/smaps)\n");
  else trt_text_put(t, ", granted: %.1f MiB in huge pages (of the memory holding the %.1f MiB of heads, and what shares its mappings)\n",
           (double)huge / 1048576.0, (double)bytes / 1048576.0);
}

size_t towerrt_items_describe(const towerrt_items *s, char *buf, size_t cap) {
  trt_text_buf t = {buf, cap, 0};
  if (cap) buf[0] = '\0';
  if (!s) return 0;
  if (s->overlay) s = s->overlay->layer[0];
  size_t bytes = (size_t)(s->count * s->row_stride);
  trt_text_put(&t, "item heads: %llu rows x %llu bytes, %s; transparent huge pages: %s\n", (unsigned long long)s->count,
      (unsigned long long)s->row_stride, s->file.copied ? "copied (TOWERRT_LOAD_COPY)" : "mapped from the file (TOWERRT_LOAD_MAP)",
      trt_thp_mode());
  trt_text_put(&t, "  %s: ", s->file.copied ? "copy" : "mapping");
  put_huge(&t, s->heads_data, bytes, s->huge_wanted, s->file.huge);
  for (uint32_t i = 0; i < 64; i++) {
    if (!s->node_heads[i] || s->node_bound[i] == -2) continue;
    trt_text_put(&t, "  placement copy, node %u: ", i);
    put_huge(&t, s->node_heads[i], bytes, s->huge_wanted, s->node_huge[i]);
  }
  return trt_text_end(&t);
}
