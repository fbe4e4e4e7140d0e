#define _GNU_SOURCE
#include "huge_pages.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

uint32_t trt_huge_pages_wanted(uint32_t option) {
  const char *e = getenv("TOWERRT_HUGE_PAGES");
  if (e && (!strcmp(e, "0") || !strcmp(e, "off"))) return 0;
  if (e && (!strcmp(e, "1") || !strcmp(e, "on"))) return 1;
  return option != 0;
}

void *trt_reserve_aligned(size_t len, int writable) {
  if (len > SIZE_MAX - TRT_HUGE_PAGE) return NULL;
  size_t span = len + TRT_HUGE_PAGE;
  unsigned char *r = writable ? mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                              : mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (r == MAP_FAILED) return NULL;
  uintptr_t a = ((uintptr_t)r + TRT_HUGE_PAGE - 1) & ~(uintptr_t)(TRT_HUGE_PAGE - 1);
  unsigned char *p = (unsigned char *)a;
  size_t head = (size_t)(p - r), keep = (len + 4095) & ~(size_t)4095;
  if (head) munmap(r, head);
  if (span - head > keep) munmap(p + keep, span - head - keep);
  return p;
}

int trt_advise_huge(const void *p, size_t len) {
#ifdef MADV_HUGEPAGE
  uintptr_t lo = ((uintptr_t)p + TRT_HUGE_PAGE - 1) & ~(uintptr_t)(TRT_HUGE_PAGE - 1);
  uintptr_t hi = ((uintptr_t)p + len) & ~(uintptr_t)(TRT_HUGE_PAGE - 1);
  if (hi <= lo) return 0;
  return madvise((void *)lo, hi - lo, MADV_HUGEPAGE) ? errno : 0;
#else
  (void)p, (void)len;
  return ENOSYS;
#endif
}

const char *trt_thp_mode(void) {
  FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
  char line[128] = "";
  if (!f) return "unknown";
  if (!fgets(line, sizeof line, f)) line[0] = '\0';
  fclose(f);
  static const char *const modes[] = {"always", "madvise", "never"};
  for (int i = 0; i < 3; i++) {
    char want[16];
    snprintf(want, sizeof want, "[%s]", modes[i]);
    if (strstr(line, want)) return modes[i];
  }
  return "unknown";
}

/* One smaps field "Name:   123 kB" counted as huge-page bytes. */
static int64_t huge_field(const char *line) {
  static const char *const names[] = {"AnonHugePages:", "FilePmdMapped:", "ShmemPmdMapped:", "Shared_Hugetlb:", "Private_Hugetlb:"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    size_t n = strlen(names[i]);
    if (!strncmp(line, names[i], n)) return strtoll(line + n, NULL, 10) * 1024;
  }
  return 0;
}

int64_t trt_huge_bytes(const void *p, size_t len) {
  FILE *f = fopen("/proc/self/smaps", "r");
  if (!f) return -1;
  uintptr_t lo = (uintptr_t)p, hi = lo + len;
  char line[512];
  int64_t sum = 0;
  int in = 0;
  while (fgets(line, sizeof line, f)) {
    /* a field is "Name:  value"; any other line heads a VMA: "start-end perms ..." */
    size_t tok = strcspn(line, " \t\n");
    unsigned long long a, b;
    if (tok && line[tok - 1] == ':') {
      if (in) sum += huge_field(line);
    } else if (sscanf(line, "%llx-%llx", &a, &b) == 2) {
      in = a < hi && b > lo;
    }
  }
  fclose(f);
  return sum;
}
