/*
 * towerrt.h - the one public header of towerrt, a CPU runtime for two-tower
 * pre-ranking models (IntTower: Light-SE + FE-Block MaxSim scoring).
 *
 * Handles are opaque. Every function returns a towerrt_status; the message
 * that says what went wrong (names and numbers) is kept per session
 * (towerrt_session_error) and per calling thread (towerrt_last_error).
 *
 * Thread safety: a towerrt_model and a towerrt_items are immutable after
 * load and may be shared by any number of threads. A towerrt_session is
 * owned by one thread at a time; create one per caller thread (the one
 * exception: towerrt_session_set_items may be called from any thread).
 * Scoring allocates no memory: the session's arena is planned at creation.
 * Item stores are reference-counted: each session using one holds a
 * reference, so towerrt_items_free may come before the sessions' end.
 */
#ifndef TOWERRT_H
#define TOWERRT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TOWERRT_VERSION_MAJOR 0
#define TOWERRT_VERSION_MINOR 1
#define TOWERRT_VERSION_PATCH 0
#define TOWERRT_VERSION \
  ((TOWERRT_VERSION_MAJOR * 10000) + (TOWERRT_VERSION_MINOR * 100) + TOWERRT_VERSION_PATCH)

#if defined(_WIN32)
#define TOWERRT_API
#else
#define TOWERRT_API __attribute__((visibility("default")))
#endif

/* Returns TOWERRT_VERSION of the library actually linked. */
TOWERRT_API int towerrt_version(void);
TOWERRT_API const char *towerrt_version_string(void);

typedef enum towerrt_status {
  TOWERRT_OK = 0,
  TOWERRT_ERR_INVALID_ARGUMENT = 1, /* null pointer, bad option value */
  TOWERRT_ERR_IO = 2,               /* open/stat/mmap/write failed */
  TOWERRT_ERR_TRUNCATED = 3,        /* file shorter than what it declares */
  TOWERRT_ERR_BAD_MAGIC = 4,        /* not a towerrt file of that kind */
  TOWERRT_ERR_VERSION = 5,          /* format version not supported */
  TOWERRT_ERR_CHECKSUM = 6,         /* a CRC does not match: corrupt bytes */
  TOWERRT_ERR_FORMAT = 7,           /* malformed structure: offsets, counts, graph */
  TOWERRT_ERR_SHAPE = 8,            /* tensor or input shape mismatch */
  TOWERRT_ERR_NONFINITE = 9,        /* NaN or Inf in weights or inputs */
  TOWERRT_ERR_UNSUPPORTED = 10,     /* dtype, op or feature not supported */
  TOWERRT_ERR_ID_OUT_OF_RANGE = 11, /* feature id beyond its vocabulary */
  TOWERRT_ERR_UNKNOWN_ITEM = 12,    /* candidate id not in the item store */
  TOWERRT_ERR_EMPTY_REQUEST = 13,   /* k = 0 */
  TOWERRT_ERR_LIMIT = 14,           /* k or another size above the planned maximum */
  TOWERRT_ERR_MISMATCH = 15,        /* item store built for another model */
  TOWERRT_ERR_NO_MEMORY = 16,
  TOWERRT_ERR_NO_ITEMS = 17,        /* scoring by id on a session without an item store */
  TOWERRT_STATUS_COUNT_ = 18
} towerrt_status;

/* Short stable name of a status ("TOWERRT_ERR_SHAPE"). */
TOWERRT_API const char *towerrt_status_name(towerrt_status s);
/* Message of the last failing call on this thread ("" if none). */
TOWERRT_API const char *towerrt_last_error(void);

typedef struct towerrt_model towerrt_model;
typedef struct towerrt_items towerrt_items;
typedef struct towerrt_session towerrt_session;
typedef struct towerrt_pool towerrt_pool;

/* Where a model's weights and an item store's heads live on a machine with
 * several NUMA nodes (load-time option, with a pool). */
typedef enum towerrt_placement {
  TOWERRT_PLACE_SHARED = 0,     /* one copy, as mapped / allocated (default) */
  TOWERRT_PLACE_REPLICATE = 1,  /* one copy bound to each node of the pool */
  TOWERRT_PLACE_INTERLEAVE = 2  /* one copy, pages interleaved over the pool's nodes */
} towerrt_placement;

/* How much of an item store towerrt_items_load reads (load-time option
 * items_verify; docs/errors.md says what each level checks). */
typedef enum towerrt_items_verify {
  /* Default. Header and section table CRCs, every section's CRC (unless
   * verify_checksums = 0), META, sizes, and every row: finite heads, int8
   * scales and column sums, every id-map slot. Reads the whole file. */
  TOWERRT_ITEMS_VERIFY_ALL = 0,
  /* Trusted files: the header, section table, META and every size/offset
   * are still checked (a truncated or foreign file is still refused), but
   * no data section is read: no CRCs of them, no row checks. Load time no
   * longer grows with the catalog; pages are read on first use. Corrupt rows
   * then give wrong scores (never reads outside the file). */
  TOWERRT_ITEMS_VERIFY_STRUCTURE = 1
} towerrt_items_verify;

/* ---- files under a running process, load-time memory ------------------
 * How towerrt_model_load / towerrt_items_load hold a file (docs/serving.md,
 * "Files under a running process"; docs/errors.md). */
typedef enum towerrt_load_mode {
  /* Map the file read-only and read weights, embeddings, the id map and
   * the heads in place (default: no copy, pages shared between processes).
   * The file must not be changed in place while loaded: replace it by
   * rename. Truncating it kills the process with SIGBUS on the next read. */
  TOWERRT_LOAD_MAP = 0,
  /* Read the whole file into memory the process owns at load: later
   * changes to the file (in place, truncation, cp over it) have no effect.
   * Costs the file's size in private memory and one read at load. */
  TOWERRT_LOAD_COPY = 1
} towerrt_load_mode;
/* Default options.max_load_bytes: 8 GiB. */
#define TOWERRT_DEFAULT_MAX_LOAD_BYTES (UINT64_C(8) << 30)

/* Options. Always initialise with towerrt_options_init, then change fields:
 * struct_size lets later versions add fields without breaking callers. */
typedef struct towerrt_options {
  uint32_t struct_size;
  /* Load time. */
  uint32_t verify_checksums; /* 1 (default): check every section CRC */
  const char *isa;           /* NULL or "auto": best for this CPU; or "scalar".
                                The environment variable TOWERRT_ISA overrides. */
  /* Session time. */
  uint32_t max_k;          /* planned maximum candidates per request (default 100000) */
  uint32_t fe_layer_mask;  /* 0: the user FE layers the model was trained with;
                              else bit i = score with user FE layer i (an
                              approximation, see docs/fe-modes.md) */
  uint32_t output_logits;  /* 1: return the raw score before the prediction layer */
  uint32_t allow_foreign_items; /* 1: accept an item store whose fingerprint differs */
  /* Threads and NUMA. */
  const char *topology;      /* pool: NULL = this machine (or env TOWERRT_TOPOLOGY);
                                "synthetic:<hwloc synthetic>" or "xml:PATH" to plan
                                for another machine (threads are then not pinned) */
  uint32_t threads_per_node; /* pool: workers per NUMA node (0 = one per core) */
  uint64_t node_mask;        /* pool: bit i = start a pool on NUMA node i (0 = all) */
  uint32_t pin_threads;      /* pool: 1 (default) pins each worker to one core */
  towerrt_pool *pool;        /* load + session: the worker pools to use (NULL: none) */
  uint32_t threads;          /* session: threads per request, caller included (default 1) */
  int32_t numa_node;         /* session: node index to run on (-1 = the caller's, default) */
  uint32_t placement;        /* load: a towerrt_placement (needs pool) */
  /* Serving (docs/serving.md). */
  uint32_t max_topn;           /* session: largest n of the top-n calls (default 1024;
                                  clamped to max_k); sizes the selection heaps */
  uint32_t skip_unknown_items; /* session: 0 (default, strict): an unknown candidate id
                                  fails the request (TOWERRT_ERR_UNKNOWN_ITEM);
                                  1: it is skipped (NaN score, left out of top-n) and
                                  counted (towerrt_session_last_skipped) */
  uint32_t items_verify;       /* load: a towerrt_items_verify (default ALL) */

  /* ---- files under a running process, load-time memory ---- */
  uint32_t load_mode;        /* load: a towerrt_load_mode (default TOWERRT_LOAD_MAP) */
  uint64_t max_load_bytes;   /* load: most heap bytes one load may allocate for
                                folded weights, placement and (LOAD_COPY) the
                                file copy; beyond it TOWERRT_ERR_LIMIT.
                                Default TOWERRT_DEFAULT_MAX_LOAD_BYTES; 0 = no bound.
                                A sparse file's apparent size costs no disk, so
                                only this bounds what its declared sizes ask for. */
  uint32_t huge_pages;       /* load: 1 (default): ask the kernel for 2 MiB pages for an
                                item store's file or copy (madvise MADV_HUGEPAGE) and for
                                its placement copies; gathered rows then miss the TLB far
                                less. Granted for copies (LOAD_COPY, placement) where
                                transparent huge pages are "madvise" or "always"; for a
                                mapped file only where the kernel maps file THP.
                                0: never ask. The environment variable TOWERRT_HUGE_PAGES
                                (0/off, 1/on) overrides. Scores do not depend on it.
                                towerrt_items_describe says what was granted. */
} towerrt_options;

TOWERRT_API void towerrt_options_init(towerrt_options *opts);

/* One side's features for n rows, in the model's field order (docs/format.md):
 * ids: n x towerrt_model_id_slots(side) int64 (multi-id fields padded with 0);
 * dense: n x towerrt_model_dense_width(side) floats (NULL if width is 0). */
typedef struct towerrt_features {
  const int64_t *ids;
  size_t n_ids;   /* total ids given: n x id slots */
  const float *dense;
  size_t n_dense; /* total floats given: n x dense width */
} towerrt_features;

typedef enum towerrt_side { TOWERRT_USER = 0, TOWERRT_ITEM = 1 } towerrt_side;

/* ---- worker pools -------------------------------------------------------- */
/* Discovers the topology (hwloc) and starts one pool of pinned workers per
 * NUMA node. Share one pool among all models and sessions of a process. */
TOWERRT_API towerrt_status towerrt_pool_create(const towerrt_options *opts, towerrt_pool **out);
/* Stops the workers; every session using the pool must be freed first. */
TOWERRT_API void towerrt_pool_free(towerrt_pool *pool);
TOWERRT_API uint32_t towerrt_pool_node_count(const towerrt_pool *pool);
/* Topology, pools, pinning, as text (towerrt info --topology). */
TOWERRT_API size_t towerrt_pool_describe(const towerrt_pool *pool, char *buf, size_t cap);

/* ---- model ------------------------------------------------------------- */
TOWERRT_API towerrt_status towerrt_model_load(const char *path, const towerrt_options *opts,
                                              towerrt_model **out);
TOWERRT_API void towerrt_model_free(towerrt_model *model);
TOWERRT_API size_t towerrt_model_id_slots(const towerrt_model *model, towerrt_side side);
TOWERRT_API size_t towerrt_model_dense_width(const towerrt_model *model, towerrt_side side);
/* Bit mask of the user FE layers the model was trained with. */
TOWERRT_API uint32_t towerrt_model_fe_layer_mask(const towerrt_model *model);
/* Bit mask of the user FE layers the model has projections for: the
 * layers options.fe_layer_mask may choose from. */
TOWERRT_API uint32_t towerrt_model_fe_layers_available(const towerrt_model *model);
/* Name of the kernel set chosen at load ("scalar", "avx2", ...). */
TOWERRT_API const char *towerrt_model_isa(const towerrt_model *model);
/* The kernel sets (options.isa / TOWERRT_ISA names) this build and this
 * CPU can run, best first, "scalar" last: writes up to cap names (static
 * strings) and returns how many there are (may exceed cap). */
TOWERRT_API size_t towerrt_isas(const char **names, size_t cap);
/* The shape of the MaxSim: user heads per scored FE layer, item heads per
 * item, and the length of every head. Any out pointer may be NULL. */
TOWERRT_API void towerrt_model_heads(const towerrt_model *model, uint32_t *user_heads_per_layer, uint32_t *item_heads,
                                     uint32_t *head_dim);
/* Human-readable description: metadata, fields, tensors, compiled plan.
 * Writes at most cap bytes (NUL-terminated); returns the full length. */
TOWERRT_API size_t towerrt_model_describe(const towerrt_model *model, char *buf, size_t cap);

/* ---- item store -------------------------------------------------------- */
/* Runs the item tower over n items (features in model order) and writes a
 * .twi file with their FE heads, keyed by item_ids (unique). */
TOWERRT_API towerrt_status towerrt_items_build(const towerrt_model *model,
                                               const towerrt_features *items,
                                               const uint64_t *item_ids, size_t n,
                                               const char *path);
TOWERRT_API towerrt_status towerrt_items_load(const char *path, const towerrt_options *opts,
                                              towerrt_items **out);
/* Drops the caller's reference to the store. Sessions (and requests in
 * flight) hold their own: the store is unmapped when the last one goes. */
TOWERRT_API void towerrt_items_free(towerrt_items *items);
TOWERRT_API size_t towerrt_items_count(const towerrt_items *items);
/* The item ids of a store (or of a delta store's rows): writes up to cap
 * of them to out and returns how many the store holds. The order is that
 * of the file's id map: fixed for a given file, otherwise unspecified. An
 * overlay (towerrt_items_overlay) returns 0: its ids are those of its
 * layers, resolved per request. */
TOWERRT_API size_t towerrt_items_ids(const towerrt_items *items, uint64_t *out, size_t cap);
/* How the store's item heads are held, as text: mapped or copied, huge
 * pages asked for or not, the kernel's transparent huge page mode, and how
 * many bytes of the memory holding the heads are in huge pages now (from
 * /proc/self/smaps; "unknown" where it cannot be read). Writes at most cap
 * bytes (NUL-terminated); returns the full length. Reads a /proc file:
 * not for the scoring path. */
TOWERRT_API size_t towerrt_items_describe(const towerrt_items *items, char *buf, size_t cap);

/* Precision of an item store's heads (the MaxSim hot loop reads them). */
typedef enum towerrt_precision {
  TOWERRT_PRECISION_F32 = 0,
  TOWERRT_PRECISION_BF16 = 1, /* bf16 heads, fp32 accumulation */
  TOWERRT_PRECISION_INT8 = 2  /* s8 heads, one scale per item; user heads u8 per request */
} towerrt_precision;
TOWERRT_API towerrt_precision towerrt_items_precision(const towerrt_items *items);
/* "f32", "bf16", "int8" (NULL for another value), and back: the one
 * spelling of the precisions in the CLI, the server and the Python
 * package. parse fails with TOWERRT_ERR_INVALID_ARGUMENT naming the text. */
TOWERRT_API const char *towerrt_precision_name(towerrt_precision precision);
TOWERRT_API towerrt_status towerrt_precision_parse(const char *name, towerrt_precision *out);
/* Writes a copy of an f32 store at another precision (docs/quantization.md). */
TOWERRT_API towerrt_status towerrt_items_quantize(const towerrt_items *items, towerrt_precision precision,
                                                  const char *path);
/* Centring of the item heads before they are rounded (docs/quantization.md
 * "Centred stores"). The store keeps a centre in f32 and each head minus
 * it at the store's precision; scoring adds the centre's part back exactly,
 * outside the max over item heads (max_h <u, c + r_h> = <u, c> +
 * max_h <u, r_h>, c shared by the heads it is subtracted from):
 *   MEAN      one catalog-mean head m (head_dim f32, ITEM_CENTRE); the
 *             score adds sum_u <u, m> once per request;
 *   ROW_MEAN  per item, the mean m_i of its own heads (count x head_dim
 *             f32, ROW_CENTRES: 4 x head_dim bytes per item); the score
 *             adds <sum_u u, m_i>, head_dim multiply-adds per candidate. */
typedef enum towerrt_centring {
  TOWERRT_CENTRING_NONE = 0,    /* the heads as they are (towerrt_items_quantize) */
  TOWERRT_CENTRING_MEAN = 1,    /* minus the catalog-mean head */
  TOWERRT_CENTRING_ROW_MEAN = 2 /* minus each item's mean head */
} towerrt_centring;
/* towerrt_items_quantize with a centring; precision may also be f32 with
 * a centring (a centred f32 store: the same scores up to float rounding).
 * A centred store is not a shard: it does not merge (quantize the merged
 * f32 store instead), and deltas and compaction refuse it. */
TOWERRT_API towerrt_status towerrt_items_quantize_centred(const towerrt_items *items, towerrt_precision precision,
                                                          towerrt_centring centring, const char *path);
/* The store's centring (NONE for a plain store); for MEAN its centre m:
 * *dim (the head dim; dim may be NULL) floats, valid while the store is,
 * else NULL. */
TOWERRT_API towerrt_centring towerrt_items_centring(const towerrt_items *items);
TOWERRT_API const float *towerrt_items_centre(const towerrt_items *items, size_t *dim);
/* The centring towerrt quantize applies by default to an f32 store
 * quantized to `precision`: ROW_MEAN for int8 (docs/accuracy.md: the one
 * that keeps the ranking), NONE for bf16 (its error is relative to each
 * value: centring gains nothing), for a shard (its rows must merge with
 * the other shards') and for a store of one head per item (the two-tower
 * family's vectors: a cosine is not a sum of maxima, and that family
 * refuses centred stores). *why_not (may be NULL) says why NONE, else NULL. */
TOWERRT_API towerrt_centring towerrt_items_default_centring(const towerrt_items *items, towerrt_precision precision,
                                                            const char **why_not);

/* ---- streaming item-store builds (docs/item-stores.md) -------------------
 * open -> append(rows) ... -> finish: rows go through the item tower in
 * fixed batches on `threads` worker threads and are streamed to PATH.tmp,
 * renamed to PATH by finish; memory does not grow with the catalog except
 * for the id map (32 to 64 bytes per item, + 8 per item in a shard). The
 * bytes do not depend on threads, on how rows are split into appends, or
 * on a row's position (f32 and bf16 tower arithmetic), so the n shards of
 * one input merged by towerrt_items_merge are the single build, byte for
 * byte. int8 tower arithmetic quantizes each batch with its own scales:
 * its shards merged are not the single build. */
typedef struct towerrt_items_builder towerrt_items_builder;
/* What runs the item tower in a build (docs/item-stores.md "Engines"); the
 * environment variable TOWERRT_BUILD_ENGINE=internal|onednn overrides AUTO. */
typedef enum towerrt_build_engine {
  TOWERRT_BUILD_AUTO = 0,
  TOWERRT_BUILD_INTERNAL = 1, /* towerrt's kernels */
  TOWERRT_BUILD_ONEDNN = 2    /* oneDNN matmul (UNSUPPORTED where it cannot) */
} towerrt_build_engine;
typedef struct towerrt_build_options {
  uint32_t struct_size;         /* sizeof(towerrt_build_options): towerrt_build_options_init */
  towerrt_precision precision;  /* the item tower's arithmetic (the store is f32; towerrt_items_quantize) */
  uint32_t threads;             /* worker threads; 0: every online core */
  uint32_t shard_index, shard_count; /* shard_count > 0: keep only the rows of shard shard_index (towerrt_item_shard) */
  uint64_t expected_rows;       /* 0: unknown (sizes the id map once when known) */
  uint64_t input_rows;          /* a shard fed only its own rows (append_ordered): the whole input's row count */
  towerrt_build_engine engine;  /* AUTO: oneDNN where it makes the precision's matmul here, else the internal kernels */
} towerrt_build_options;
TOWERRT_API void towerrt_build_options_init(towerrt_build_options *opts);
TOWERRT_API towerrt_status towerrt_items_builder_open(const towerrt_model *model, const char *path,
                                                      const towerrt_build_options *opts, towerrt_items_builder **out);
/* n rows: features in model order (as towerrt_items_build) and their ids.
 * In a sharded build the rows of other shards are checked and skipped. */
TOWERRT_API towerrt_status towerrt_items_builder_append(towerrt_items_builder *builder, const towerrt_features *items,
                                                        const uint64_t *item_ids, size_t n);
/* A shard job that reads only its own rows (Spark: one partition per
 * shard): n rows of this shard (every id in shard shard_index) with their
 * ordinals in the whole input, ascending; needs opts.input_rows. The
 * merged shards are the single build of the input in ordinal order. */
TOWERRT_API towerrt_status towerrt_items_builder_append_ordered(towerrt_items_builder *builder,
                                                                const towerrt_features *items,
                                                                const uint64_t *item_ids, const uint64_t *ordinals,
                                                                size_t n);
/* Rows kept so far (this shard's), and rows given (every shard's). */
TOWERRT_API size_t towerrt_items_builder_rows(const towerrt_items_builder *builder);
TOWERRT_API size_t towerrt_items_builder_seen(const towerrt_items_builder *builder);
/* What computes the heads: "onednn f32, batch 256, 2 thread(s), oneDNN
 * 2.6.3, isa avx512_core_bf16", or "internal avx2 bf16, ... (why not
 * oneDNN)". Valid until finish or abort. */
TOWERRT_API const char *towerrt_items_builder_engine(const towerrt_items_builder *builder);
/* Writes the store and renames it into place; frees the builder in every
 * case. A shard may be empty; any other build needs a row. */
TOWERRT_API towerrt_status towerrt_items_builder_finish(towerrt_items_builder *builder);
/* Removes PATH.tmp and frees the builder. */
TOWERRT_API void towerrt_items_builder_abort(towerrt_items_builder *builder);
/* The shard of an item id among n: (splitmix64(id) >> 32) % n. */
TOWERRT_API uint32_t towerrt_item_shard(uint64_t item_id, uint32_t n);

/* The model's input fields in FIELDS order (docs/format.md): a side's
 * feature row is its id fields' slots, then its dense fields' values. */
typedef struct towerrt_field_info {
  const char *name;  /* valid while the model is */
  towerrt_side side;
  uint32_t kind;     /* 0 single-id, 1 multi-id (0 pads), 2 dense */
  uint32_t width;    /* id slots, or dense values */
  uint32_t vocab;    /* id fields: ids are 0..vocab-1 (0 for dense) */
} towerrt_field_info;
TOWERRT_API size_t towerrt_model_field_count(const towerrt_model *model);
TOWERRT_API towerrt_status towerrt_model_field(const towerrt_model *model, size_t i, towerrt_field_info *out);

/* ---- catalogs beyond one build: quantized merges, delta stores ---------- */
/* Merges item stores into one at `path` (docs/item-stores.md, "Shards and
 * merges"): the n shards of one sharded build (any order; rows go back into
 * input order, so the result is the single build byte for byte), or plain
 * stores concatenated in the order given. Inputs of one dtype: f32, or bf16
 * / int8 shards quantized from f32 shards (towerrt_items_quantize keeps a
 * shard's shard records), merged without an f32 store in between and equal
 * to quantizing the merged f32 store. */
TOWERRT_API towerrt_status towerrt_items_merge(const towerrt_model *model, const char *const *inputs,
                                               size_t n_inputs, const char *path);
/* The same, calling progress(ctx, rows_done, rows_total) as rows are
 * written (progress may be NULL). */
typedef void (*towerrt_progress_fn)(void *ctx, uint64_t done, uint64_t total);
TOWERRT_API towerrt_status towerrt_items_merge_progress(const towerrt_model *model, const char *const *inputs,
                                                        size_t n_inputs, const char *path, towerrt_progress_fn progress,
                                                        void *ctx);

/* Delta stores (docs/format.md "Delta stores", docs/item-stores.md
 * "Catalog updates"). A delta holds new and changed items (the rows of
 * `changes`, a plain store of the base's model and precision built from
 * those items alone; NULL: none) and tombstones for removed ids, and names
 * its base (row count, CRCs of its heads and id map) so that it applies to
 * that base only. An id both changed and removed is an error. */
TOWERRT_API towerrt_status towerrt_items_make_delta(const towerrt_items *base, const towerrt_items *changes,
                                                    const uint64_t *removed, size_t n_removed, const char *path);
/* The catalog `base` + deltas[0..n) (oldest first; the newest naming an id
 * wins, a tombstone makes the id unknown), as a store that sessions score
 * from like any other (towerrt_session_create, towerrt_session_set_items).
 * Every delta must name `base` (TOWERRT_ERR_MISMATCH otherwise). The
 * overlay holds references to base and deltas (free yours when you like).
 * A lookup costs one probe sequence in a map of the deltas' ids plus, on a
 * miss, one in the base's id map; scoring allocates nothing. At most
 * TOWERRT_MAX_DELTAS deltas. */
#define TOWERRT_MAX_DELTAS 255
TOWERRT_API towerrt_status towerrt_items_overlay(const towerrt_items *base, const towerrt_items *const *deltas,
                                                 size_t n_deltas, towerrt_items **out);
/* Writes the catalog of `items` (an overlay or a plain store) as one plain
 * store. Row order: the base's rows still present, in base order (a
 * changed item in its base row), then the items new to the base in the
 * order they first appear in the deltas (oldest delta first, row order).
 * The result is byte for byte the store towerrt_items_build writes from
 * that catalog in that order (f32), or towerrt_items_quantize of it. */
TOWERRT_API towerrt_status towerrt_items_compact(const towerrt_items *items, const char *path);

/* Which engine builds an item store of this precision for `model` on this
 * CPU (build-items --precision; docs/item-stores.md, "Engines"): "onednn
 * bf16, ...", or "internal avx2 bf16, ... (why oneDNN was not used)".
 * Writes at most cap bytes (NUL-terminated); returns the full length. */
TOWERRT_API size_t towerrt_items_build_engine(const towerrt_model *model, towerrt_precision precision, char *buf,
                                              size_t cap);

/* Writes `model` with its user tower's dense layers and FE projections in
 * bf16, or in s8 with one scale per output channel (docs/quantization.md).
 * int8: with calibration users (n_users rows of user features, as in
 * towerrt_score), each layer's input gets a fixed u8 scale and zero point
 * from the rows' range; with none, inputs are quantized per request from
 * their own range. The item tower, embeddings and Light-SE stay f32, so the
 * item stores of the f32 model stay valid for the quantized one. */
TOWERRT_API towerrt_status towerrt_model_quantize(const towerrt_model *model, towerrt_precision precision,
                                                  const towerrt_features *calibration_users, size_t n_users,
                                                  const char *path);

/* ---- sessions and scoring ----------------------------------------------- */
/* items may be NULL (then only towerrt_score_features works). With
 * opts->pool and opts->threads > 1, a request's candidate blocks are split
 * over the workers of one node; the scores do not depend on the number of
 * threads (bitwise). */
TOWERRT_API towerrt_status towerrt_session_create(const towerrt_model *model,
                                                  const towerrt_items *items,
                                                  const towerrt_options *opts,
                                                  towerrt_session **out);
TOWERRT_API void towerrt_session_free(towerrt_session *session);
/* Message of the last failing call on this session ("" if none). */
TOWERRT_API const char *towerrt_session_error(const towerrt_session *session);
/* Replaces the session's item store (a catalog update): the next request
 * scores against `items` (NULL: none, by features only). May be called from
 * any thread, also while the session's owner is scoring: a request in
 * flight keeps the store it started with (it holds a reference) until it
 * returns. The session takes a reference to `items` and drops the one it
 * held on the old store, so the caller may towerrt_items_free its own
 * references right after. Checked as at creation: TOWERRT_ERR_MISMATCH for
 * a store of other head shapes or, unless the session was created with
 * allow_foreign_items, another model's fingerprint (the session then keeps
 * its store); TOWERRT_ERR_INVALID_ARGUMENT for a NULL session. The message
 * is the calling thread's (towerrt_last_error), not the session's. */
TOWERRT_API towerrt_status towerrt_session_set_items(towerrt_session *session, const towerrt_items *items);

/* Scores k candidates given by item-store id for one user; scores[k]. */
TOWERRT_API towerrt_status towerrt_score(towerrt_session *session, const towerrt_features *user,
                                         const uint64_t *item_ids, size_t k, float *scores);
/* Scores k candidates given by their features (item tower run online). */
TOWERRT_API towerrt_status towerrt_score_features(towerrt_session *session,
                                                  const towerrt_features *user,
                                                  const towerrt_features *items, size_t k,
                                                  float *scores);

/* ---- offline scoring: many users at once ---------------------------------- */
/* Floats of one user's heads in this session (its FE layers x heads x dim). */
TOWERRT_API size_t towerrt_session_user_heads_size(const towerrt_session *session);
/* The heads of n_users users (users: n_users rows, as towerrt_score takes
 * one), n_users x towerrt_session_user_heads_size floats, the user tower
 * run as batched matrix products (oneDNN matmul where built in: each weight
 * matrix is read once per batch of users). For offline scoring: it
 * allocates its batch buffers, unlike towerrt_score. The heads equal
 * towerrt_score's within fp32 rounding (exactly, for a quantized user
 * tower, which runs user by user). */
TOWERRT_API towerrt_status towerrt_user_heads(towerrt_session *session, const towerrt_features *users,
                                              size_t n_users, float *heads);
/* towerrt_score with one user's heads (a row of towerrt_user_heads, same
 * session settings) instead of the user's features. No allocation. */
TOWERRT_API towerrt_status towerrt_score_heads(towerrt_session *session, const float *heads,
                                               const uint64_t *item_ids, size_t k, float *scores);

/* ---- serving: ranked top-n, candidate policy ------------------------------ */
/* The n best of k candidates, ranked, selected inside the scoring pass (each
 * thread keeps a partial heap of its blocks in the session arena; the heaps
 * are merged at the end): no k-sized buffer, no sort of k scores, no
 * allocation. out_ids[n] and out_scores[n] receive, best first, exactly the
 * first n entries of the k candidates sorted by
 *     score descending, then item id ascending, then position ascending
 * (a stable sort of towerrt_score's output by (score desc, id asc)); scores
 * compare as floats (-0 equals +0). Only finite scores are ranked: in strict
 * mode a non-finite score fails the call (TOWERRT_ERR_NONFINITE) as in
 * towerrt_score; skipped unknown candidates (options.skip_unknown_items) are
 * left out. When fewer than n candidates remain (n > k, or skipped ones),
 * the slots past them hold TOWERRT_NO_ID and NaN: test the score (a ranked
 * entry's is always finite), since UINT64_MAX may also be a real item id.
 * Errors: those of towerrt_score, plus TOWERRT_ERR_INVALID_ARGUMENT (n = 0,
 * NULL outputs) and TOWERRT_ERR_LIMIT (n above the session's max_topn).
 * On failure every out_scores[i] is NaN and every out_ids[i] TOWERRT_NO_ID. */
#define TOWERRT_NO_ID UINT64_MAX
TOWERRT_API towerrt_status towerrt_score_topn(towerrt_session *session, const towerrt_features *user,
                                              const uint64_t *item_ids, size_t k, size_t n, uint64_t *out_ids,
                                              float *out_scores);
/* As towerrt_score_topn with one user's heads (see towerrt_score_heads). */
TOWERRT_API towerrt_status towerrt_score_heads_topn(towerrt_session *session, const float *heads,
                                                    const uint64_t *item_ids, size_t k, size_t n,
                                                    uint64_t *out_ids, float *out_scores);
/* As towerrt_score_topn for candidates given by features: the candidates
 * have no id, so out_ids receives their positions in 0..k-1 and ties go to
 * the lower position. */
TOWERRT_API towerrt_status towerrt_score_features_topn(towerrt_session *session, const towerrt_features *user,
                                                       const towerrt_features *items, size_t k, size_t n,
                                                       uint64_t *out_ids, float *out_scores);
/* Candidates skipped as unknown by the last successful scoring call on this
 * session (always 0 in strict mode and for candidates given by features). */
TOWERRT_API size_t towerrt_session_last_skipped(const towerrt_session *session);
/* The largest n this session's top-n calls accept (options.max_topn, clamped to max_k). */
TOWERRT_API size_t towerrt_session_max_topn(const towerrt_session *session);

/* ---- synthetic models -------------------------------------------------- */
/* An IntTower with random weights (docs/format.md layout, the reference
 * state_dict names): for benchmarks, tests and trying the runtime without
 * a trained model. The weights are a function of the configuration alone
 * (seed included): the same configuration writes the same model. Fields:
 * user_single single-id user fields (MovieLens names and vocabularies for
 * the first five: user_id, gender, age, occupation, zip), user_dense
 * dense user values; item_single single-id item fields (movie_id first),
 * item_multi_len id slots of the multi-id field "genres" (0: none),
 * item_dense dense item values. Towers: n_layers Linear layers of widths[]
 * (both sides, ReLU, BatchNorm when batchnorm), emb_dim per embedding,
 * user_heads / item_heads FE heads of head_dim, fe_mask the user FE layers
 * scored (bit i: layer i). */
#define TOWERRT_SYNTHETIC_MAX_LAYERS 8
typedef struct towerrt_synthetic_config {
  uint32_t user_single, user_dense, item_single, item_multi_len, item_dense;
  uint32_t emb_dim, n_layers, widths[TOWERRT_SYNTHETIC_MAX_LAYERS];
  uint32_t user_heads, item_heads, head_dim, fe_mask, batchnorm;
  uint64_t seed;
  const char *source; /* META general.source (NULL: a default line) */
} towerrt_synthetic_config;
/* The reference configuration (the official MovieLens-1M script's,
 * docs/performance.md): 4 single-id user fields + 1 dense, movie_id +
 * genres (6 slots) + 1 dense, emb 32, towers 300-300-128, 32 user and 32
 * item heads of 64, FE layers 0,1,2, BatchNorm, seed 1. */
TOWERRT_API void towerrt_synthetic_config_init(towerrt_synthetic_config *config);
/* Writes the model to path (atomically: a temporary renamed into place).
 * TOWERRT_ERR_INVALID_ARGUMENT names what is wrong with the configuration. */
TOWERRT_API towerrt_status towerrt_synthetic_model_write(const towerrt_synthetic_config *config, const char *path);

/* ---- tracing --------------------------------------------------------------- */
/* An observer of the steps of this session's requests, timed on the real
 * request path (towerrt bench --trace writes them as a Chrome/Perfetto
 * trace, --profile sums them per step). fn is called right after each
 * step, on the thread that ran it, with CLOCK_MONOTONIC nanoseconds and
 * the participant slot that ran it (0: the calling thread; 1..threads-1:
 * pool workers, concurrently: fn must be thread-safe then). Steps of
 * towerrt_score, towerrt_score_heads and their _topn forms, in order:
 *   "check"        the request's arguments, ids and values (towerrt_score
 *                  and towerrt_score_topn; not for heads)
 *   "user_tower"   the user tower up to the last FE layer scored
 *   "heads_check"  the user heads are finite
 *   "user_heads"   their conversion to the store's precision
 *   per block of candidates (on the slot that ran it):
 *     "resolve"    item ids -> store rows
 *     "maxsim"     MaxSim over the rows and the prediction layer
 *     "output"     the scores into place (or into the top-n heap)
 *     "score_block" the whole block (resolve + maxsim + output)
 *   "request"      the whole call after "check" (user_tower .. the last block)
 * Steps that overlap ("score_block", "request") are spans around the
 * others; a step that failed is not reported. NULL (the default) turns it
 * off: a branch per step is all it costs. Not for the scoring of other
 * threads' sessions: set it before scoring, from the thread that owns the
 * session. */
typedef void (*towerrt_trace_fn)(void *ctx, const char *step, uint64_t begin_ns, uint64_t end_ns, uint32_t slot);
TOWERRT_API void towerrt_session_set_trace(towerrt_session *session, towerrt_trace_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif
#endif /* TOWERRT_H */
