/* The public options (towerrt_options) in one home: their defaults
 * (towerrt_options_init) and the check every entry point that takes them
 * makes. Its own file so that the loaders (model_load.c, item_store.c),
 * pools (pool.c) and sessions (session.c) all depend on it and it on
 * nothing of theirs: model_load -> model_place -> pool no longer leads back
 * to model_load for the defaults. */
#ifndef TOWERRT_OPTIONS_H
#define TOWERRT_OPTIONS_H

#include "towerrt.h"

/* TOWERRT_ERR_INVALID_ARGUMENT when o is not NULL and its struct_size is not
 * this library's (a caller that skipped towerrt_options_init, or built
 * against another towerrt.h); TOWERRT_OK otherwise. */
towerrt_status trt_options_check(const towerrt_options *o);

/* trt_options_check, then *use = o, or the defaults (written to *defaults)
 * when o is NULL. */
towerrt_status trt_options_resolve(const towerrt_options *o, towerrt_options *defaults, const towerrt_options **use);

#endif
