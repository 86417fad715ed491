/*
 * store.h - the SQLite tier's internal interface (store.c), and the
 * write-behind and reaper internals built on it (writeback.c, reaper.c).
 */
#ifndef KVSHM_STORE_H
#define KVSHM_STORE_H

#include "internal.h"

#include <sqlite3.h>

/* A row read from SQLite; val points into the handle's scratch buffer. */
struct kvshm_row {
  const void *val;
  size_t vlen;
  uint32_t flags;
  uint64_t expires_ms;
};

static inline bool kvshm__has_store(kvshm *kv) {
  return kv->hdr->sqlite_path[0] != '\0';
}

int kvshm__store_open_path(kvshm *kv, const char *path,
                           struct kvshm_store **out);
/* Open (or reuse) this process's connection, validating the file. */
int kvshm__store_open_check(kvshm *kv);
void kvshm__store_close(kvshm *kv);
/* The hpos column of a key with hash h (store.c). */
int64_t kvshm__hpos(uint64_t h);
/* SQLite was busy and the caller asked not to wait (internal). */
#define KVSHM__EBUSY (-30898)
/*
 * Read key (hash h) as of clear generation gen.  KVSHM_OK with *row (its
 * value in kv->scratch), KVSHM_ENOTFOUND (absent or expired), KVSHM__EBUSY
 * (nowait, and SQLite would have had to wait for another process), or an
 * error.
 */
int kvshm__store_fetch(kvshm *kv, uint64_t h, const void *key, size_t klen,
                       uint64_t now, uint64_t gen, bool nowait,
                       struct kvshm_row *row);
int kvshm__store_put(kvshm *kv, uint64_t h, const void *key, size_t klen,
                     const void *val, size_t vlen, uint32_t flags,
                     uint64_t expires_ms, uint64_t gen);
/* One row to write (kvshm__store_put_rows). */
struct kvshm__put {
  uint64_t h;
  const void *key, *val;
  size_t klen, vlen;
  uint32_t flags;
  uint64_t expires_ms;
};
/* kvshm__store_put of each row, several rows per statement.  Rows must
 * have distinct keys; they are written fastest in (hpos, key) order. */
int kvshm__store_put_rows(kvshm *kv, const struct kvshm__put *rows, size_t n,
                          uint64_t gen);
int kvshm__store_del(kvshm *kv, uint64_t h, const void *key, size_t klen);
/* BEGIN IMMEDIATE, then delete the rows of every PENDING prefix clear
 * (clear.c): no commit may follow a prefix clear but one that does. */
int kvshm__store_begin(kvshm *kv);
/* COMMIT (then mark those clears DONE) or ROLLBACK. */
int kvshm__store_end(kvshm *kv, bool commit);
/* Within a write transaction: delete the PENDING prefix clears' rows. */
int kvshm__store_pending(kvshm *kv);
int kvshm__store_expire(kvshm *kv, uint64_t now, int limit, int *removed);
/* Delete the rows with hpos in [lo, hi] of a generation older than gen
 * (never a newer one: a stale gen then deletes too little, not too much). */
int kvshm__store_gc(kvshm *kv, int64_t lo, int64_t hi, uint64_t gen,
                    int *removed);
int kvshm__store_meta_get(kvshm *kv, const char *k, uint64_t *v);
/* kvshm_meta[k] = max(kvshm_meta[k], v). */
int kvshm__store_meta_raise(kvshm *kv, const char *k, uint64_t v);
/* Raise the header's clear_gen to the file's (a segment made again over an
 * old file must not see rows that a clear removed); with claim, make this
 * segment the file's owner unless it is destroyed, after a PRAGMA
 * quick_check of a file it does not own yet (KVSHM_EBADDB if damaged). */
int kvshm__store_sync(kvshm *kv, bool claim);
/* Inside a write transaction: KVSHM_OK if this segment owns the file, else
 * KVSHM_EDESTROYED (write nothing). */
int kvshm__store_owned(kvshm *kv);
/* This process's waits for SQLite's locks end at until_ms (wall clock;
 * 0: after the usual busy timeout); a statement that waited until then
 * fails with KVSHM__EBUSY.  The reaper bounds its ticks with it. */
int kvshm__store_deadline(kvshm *kv, uint64_t until_ms);
/* A TRUNCATE checkpoint if the WAL file is over max_bytes (the reaper):
 * the WAL cannot grow without bound under writers that never pause. */
int kvshm__store_wal_trim(kvshm *kv, uint64_t max_bytes);
/* No segment owns the file any more (kvshm_unlink, after its flush). */
int kvshm__store_disown(kvshm *kv);
/* Take and release SQLite's write lock once: every claim of the file that
 * began before has committed, every later one sees `destroyed`. */
int kvshm__store_fence(kvshm *kv);
/*
 * Call fn for each live row of generation gen with hpos in [lo, hi], in
 * (hpos, key) order, in one read transaction that ends before this
 * returns.  fn returns 0 to go on, or a status that stops the walk and is
 * returned.  KVSHM__EBUSY as for fetch.
 */
typedef int (*kvshm__scan_fn)(void *ctx, uint64_t h, const void *key,
                              size_t klen, const struct kvshm_row *row);
int kvshm__store_scan(kvshm *kv, int64_t lo, int64_t hi, uint64_t gen,
                      uint64_t now, bool nowait, kvshm__scan_fn fn, void *ctx);

/* PRAGMA quick_check of the file; calls problem() per issue, returns the
 * number found. */
int kvshm__store_verify(kvshm *kv, void (*problem)(void *, const char *),
                        void *ctx);

/* ---- writeback.c ---- */
/*
 * Write the dirty entries and tombstones of stripe s to SQLite in batched
 * transactions, then mark clean those that did not change meanwhile.
 * max: stop after this many entries (0 = all); deadline_ms: stop after
 * this wall-clock time (0 = none).  *written counts them.  Never holds
 * the stripe lock while SQLite may wait.
 */
int kvshm__writeback_stripe(kvshm *kv, uint32_t s, uint32_t max,
                            uint64_t deadline_ms, uint64_t *written);

#endif /* KVSHM_STORE_H */
