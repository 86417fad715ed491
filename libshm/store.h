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
/* KVSHM_OK with *row, KVSHM_ENOTFOUND (absent or expired), or an error. */
int kvshm__store_fetch(kvshm *kv, const void *key, size_t klen, uint64_t now,
                       struct kvshm_row *row);
int kvshm__store_put(kvshm *kv, const void *key, size_t klen, const void *val,
                     size_t vlen, uint32_t flags, uint64_t expires_ms);
int kvshm__store_del(kvshm *kv, const void *key, size_t klen);
int kvshm__store_begin(kvshm *kv);
int kvshm__store_end(kvshm *kv, bool commit);
int kvshm__store_expire(kvshm *kv, uint64_t now, int limit, int *removed);
int kvshm__store_clear(kvshm *kv);
int kvshm__store_scan_open(kvshm *kv, const void *from, size_t flen,
                           sqlite3_stmt **out);

/* PRAGMA quick_check of the file; calls problem() per issue, returns the
 * number found. */
int kvshm__store_verify(kvshm *kv, void (*problem)(void *, const char *),
                        void *ctx);

/* ---- writeback.c ---- */
/*
 * Write the dirty entries and tombstones of stripe s to SQLite in batched
 * transactions, then mark clean those that did not change meanwhile.
 * max: stop after this many entries (0 = all).  *written counts them.
 */
int kvshm__writeback_stripe(kvshm *kv, uint32_t s, uint32_t max,
                            uint64_t *written);
/*
 * Under the stripe lock: write victim `ref` (dirty or a tombstone) to SQLite
 * before it is evicted (a "spill").
 */
int kvshm__spill_locked(kvshm *kv, uint32_t s, uint32_t ref);

#endif /* KVSHM_STORE_H */
