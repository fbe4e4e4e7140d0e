/* Links the installed library through its public header only. */
#include <stdio.h>
#include <string.h>

#include <towerrt.h>

int main(int argc, char **argv) {
  if (towerrt_version() != TOWERRT_VERSION) return 1;
  towerrt_model *m = NULL;
  towerrt_status st = towerrt_model_load(argc > 1 ? argv[1] : "missing.twr", NULL, &m);
  if (argc > 1 && st != TOWERRT_OK) {
    fprintf(stderr, "%s\n", towerrt_last_error());
    return 1;
  }
  printf("towerrt %s: %s\n", towerrt_version_string(), st ? towerrt_status_name(st) : towerrt_model_isa(m));
  towerrt_model_free(m);
  return 0;
}
