/* Transparent huge pages for item heads (docs/performance.md, "Huge pages
 * for item stores"). Gathered candidate rows touch a new 4 KiB page almost
 * every row: a store of a few hundred MiB needs ~10^5 page translations,
 * far more than the second-level TLB holds, so most gathered rows also pay
 * a page walk. With 2 MiB pages the same store needs a few hundred.
 *
 * What the OS grants: anonymous memory (TOWERRT_LOAD_COPY, placement
 * copies) gets huge pages when /sys/kernel/mm/transparent_hugepage/enabled
 * is "madvise" or "always"; a file mapping (TOWERRT_LOAD_MAP) only on
 * kernels built with CONFIG_READ_ONLY_THP_FOR_FS (khugepaged collapses it
 * later) or whose filesystem maps large folios by PMD. Asking is always
 * harmless: a refusal leaves 4 KiB pages and the same bytes. */
#ifndef TOWERRT_HUGE_PAGES_H
#define TOWERRT_HUGE_PAGES_H
#include <stddef.h>
#include <stdint.h>

#define TRT_HUGE_PAGE ((size_t)2 << 20)

/* options.huge_pages, unless the environment variable TOWERRT_HUGE_PAGES
 * is "0" or "off" (then 0) or "1" or "on" (then 1). */
uint32_t trt_huge_pages_wanted(uint32_t option);
/* len bytes (+ slack, unmapped again) of fresh address space at a 2 MiB
 * boundary; NULL on failure. writable: private read-write anonymous memory
 * (committed as any such mapping, for a copy); else no access and no
 * commit (a place to map a file over with MAP_FIXED). */
void *trt_reserve_aligned(size_t len, int writable);
/* madvise(MADV_HUGEPAGE) on the 2 MiB-aligned pages inside [p, p + len);
 * 0 if asked (or nothing to ask: under 2 MiB), else the errno. */
int trt_advise_huge(const void *p, size_t len);
/* "always", "madvise", "never" (the bracketed word of
 * /sys/kernel/mm/transparent_hugepage/enabled), or "unknown". */
const char *trt_thp_mode(void);
/* Bytes in huge pages (smaps AnonHugePages + FilePmdMapped + the hugetlb
 * fields) of this process's mappings that overlap [p, p + len); -1 when
 * /proc/self/smaps cannot be read. */
int64_t trt_huge_bytes(const void *p, size_t len);
#endif
