/*
 * writeback.c - carrying dirty entries and tombstones from shared memory to
 * SQLite.
 *
 * Write-behind (the reaper, and kvshm_flush) works one stripe at a time:
 *
 *   1. under the stripe lock, copy out up to a batch of dirty entries (key,
 *      value, flags, expiry, and the slot + version that identify them);
 *   2. without the lock, write them in one SQLite transaction;
 *   3. under the lock again, mark clean each one whose slot still holds the
 *      same version (it did not change meanwhile); a tombstone whose delete
 *      reached SQLite is freed.
 *
 * Races with other SQLite writers are settled by generation counters read
 * inside the write transaction (BEGIN IMMEDIATE serialises SQLite writers):
 * a writer that spills an entry inline bumps the stripe's gen_spill before
 * writing, and kvshm_clear bumps the header's clear_gen before emptying the
 * table.  A batch copied before either bump may be older than what SQLite
 * now holds, so it is rolled back and copied again.
 *
 * A stripe that keeps spilling (a writer flooding it) would starve that
 * optimistic loop, so after LOCKED_AFTER stale attempts a small batch is
 * written while holding the stripe lock, as a spill does (lock order:
 * stripe lock, then SQLite's write lock; nothing takes them the other way
 * round), which always makes progress.
 *
 * A spill is the inline form: a writer whose stripe is full of dirty entries
 * (the reaper is behind or dead) writes its victim to SQLite itself, under
 * the stripe lock, before reusing its slots.  Nothing is lost.
 */
#include "store.h"

#include <errno.h>
#include <stdlib.h>

#define BATCH_ENTRIES 512
#define BATCH_BYTES (4u << 20)
#define SCAN_PER_LOCK 8192u
#define LOCKED_AFTER 2
#define LOCKED_BATCH 64

struct wb_item {
  uint32_t ref, version;
  uint32_t flags;
  bool tomb;
  uint64_t expires_ms;
  size_t klen, vlen, off; /* key then value at buf + off */
};

struct wb_batch {
  struct wb_item item[BATCH_ENTRIES];
  uint32_t n;
  unsigned char *buf;
  size_t used, size;
};

static int batch_reserve(struct wb_batch *b, size_t n) {
  if (b->used + n <= b->size)
    return KVSHM_OK;
  size_t sz = b->size ? b->size : 64u << 10;
  while (sz < b->used + n)
    sz *= 2;
  unsigned char *p = realloc(b->buf, sz);
  if (!p)
    return -ENOMEM;
  b->buf = p;
  b->size = sz;
  return KVSHM_OK;
}

/* Copy dirty entries from *cursor on; advance it.  Lock held. */
static int collect_locked(kvshm *kv, uint32_t s, uint32_t *cursor,
                          struct wb_batch *b, uint32_t max) {
  uint32_t scanned = 0;
  for (; *cursor <= kv->nslots && b->n < max && b->used < BATCH_BYTES &&
         scanned < SCAN_PER_LOCK;
       (*cursor)++, scanned++) {
    struct kvshm_head *hd = (void *)kvshm__slot(kv, s, *cursor);
    uint16_t state = hd->state;
    if ((state & KVSHM_KIND_MASK) != KVSHM_KIND_HEAD ||
        !(state & KVSHM_ST_DIRTY))
      continue;
    if (kvshm__entry_check_locked(kv, s, *cursor, true))
      continue; /* broken: the next writer to meet it repairs the stripe */
    bool tomb = state & KVSHM_ST_TOMB;
    size_t n = hd->klen + (tomb ? 0 : (size_t)hd->vlen);
    int rc = batch_reserve(b, n);
    if (rc)
      return rc;
    struct wb_item *it = &b->item[b->n++];
    it->ref = *cursor;
    it->version = hd->version;
    it->flags = hd->flags;
    it->tomb = tomb;
    it->expires_ms = hd->expires_ms;
    it->klen = hd->klen;
    it->vlen = tomb ? 0 : hd->vlen;
    it->off = b->used;
    kvshm__entry_read_locked(kv, s, *cursor, 0, b->buf + b->used, n);
    b->used += n;
  }
  return KVSHM_OK;
}

static uint32_t gen_load(uint32_t *p) {
  return atomic_load_explicit((_Atomic uint32_t *)p, memory_order_acquire);
}

static uint64_t gen_load64(uint64_t *p) {
  return atomic_load_explicit((_Atomic uint64_t *)p, memory_order_acquire);
}

/* Write the batch in one transaction unless a generation moved. */
static int write_batch(kvshm *kv, uint32_t s, struct wb_batch *b,
                       uint32_t spill0, uint64_t clear0, bool *stale) {
  int rc = kvshm__store_begin(kv);
  if (rc)
    return rc;
  struct kvshm_stripe *st = kvshm__stripe(kv, s);
  *stale = gen_load(&st->gen_spill) != spill0 ||
           gen_load64(&kv->hdr->clear_gen) != clear0;
  /* Another write-behind of this stripe (kvshm_flush elsewhere, a second
   * reaper) may hold a batch copied before ours: make it stale, or it would
   * commit its older values (or resurrect a key we delete) after us. */
  if (!*stale && b->n)
    atomic_fetch_add_explicit((_Atomic uint32_t *)&st->gen_spill, 1,
                              memory_order_acq_rel);
  for (uint32_t i = 0; !rc && !*stale && i < b->n; i++) {
    struct wb_item *it = &b->item[i];
    const unsigned char *k = b->buf + it->off;
    rc = it->tomb ? kvshm__store_del(kv, k, it->klen)
                  : kvshm__store_put(kv, k, it->klen, k + it->klen, it->vlen,
                                     it->flags, it->expires_ms);
  }
  return kvshm__store_end(kv, !rc && !*stale) ? KVSHM_ESQLITE : rc;
}

/* Mark clean what did not change since it was copied.  Lock held. */
static void mark_clean_locked(kvshm *kv, uint32_t s, struct wb_batch *b) {
  struct kvshm_stripe *st = kvshm__stripe(kv, s);
  for (uint32_t i = 0; i < b->n; i++) {
    struct wb_item *it = &b->item[i];
    struct kvshm_head *hd = (void *)kvshm__slot(kv, s, it->ref);
    uint16_t state = hd->state;
    if ((state & KVSHM_KIND_MASK) != KVSHM_KIND_HEAD ||
        hd->version != it->version || !(state & KVSHM_ST_DIRTY) ||
        !(state & KVSHM_ST_TOMB) != !it->tomb)
      continue;
    if (state & KVSHM_ST_TOMB) {
      if (kvshm__entry_check_locked(kv, s, it->ref, false))
        continue; /* broken since: the next writer to meet it repairs */
      kvshm__entry_remove_locked(kv, s, it->ref);
      st->gen_evict++;
      continue;
    }
    kvshm__state_store(hd,
                       (uint16_t)((state & ~KVSHM_ST_DIRTY) | KVSHM_ST_STORED));
    if (--st->dirty == 0)
      st->dirty_since_ms = 0;
  }
}

int kvshm__writeback_stripe(kvshm *kv, uint32_t s, uint32_t max,
                            uint64_t *written) {
  struct wb_batch *b = calloc(1, sizeof *b);
  if (!b)
    return -ENOMEM;
  struct kvshm_stripe *st = kvshm__stripe(kv, s);
  uint32_t cursor = 1, stale_runs = 0, done = 0;
  int rc = KVSHM_OK;
  while (cursor <= kv->nslots && (!max || done < max)) {
    rc = kvshm__lock(kv, s);
    if (rc)
      break;
    if (!st->dirty) {
      kvshm__unlock(kv, s);
      break;
    }
    uint32_t start = cursor;
    uint32_t spill0 = st->gen_spill;
    uint64_t clear0 = gen_load64(&kv->hdr->clear_gen);
    if (kvshm__clearing(kv, kvshm__now_ms(kv), clear0)) {
      /* A clear is emptying SQLite: what we wrote now could be deleted by
       * it after we marked it clean.  Write it once the clear is done. */
      kvshm__unlock(kv, s);
      break;
    }
    b->n = 0;
    b->used = 0;
    if (stale_runs >= LOCKED_AFTER) { /* no spill can interleave now */
      bool stale = false;
      rc = collect_locked(kv, s, &cursor, b, LOCKED_BATCH);
      if (!rc && b->n)
        rc = write_batch(kv, s, b, spill0, clear0, &stale);
      if (!rc && !stale)
        mark_clean_locked(kv, s, b);
      kvshm__unlock(kv, s);
      if (rc)
        break;
      done += stale ? 0 : b->n;
      stale_runs = 0;
      continue;
    }
    rc = collect_locked(kv, s, &cursor, b, BATCH_ENTRIES);
    kvshm__unlock(kv, s);
    if (rc)
      break;
    if (!b->n)
      continue;
    bool stale = false;
    rc = write_batch(kv, s, b, spill0, clear0, &stale);
    if (rc)
      break;
    if (stale) {
      stale_runs++;
      cursor = start; /* copy again: SQLite may now hold newer data */
      continue;
    }
    stale_runs = 0;
    rc = kvshm__lock(kv, s);
    if (rc)
      break;
    mark_clean_locked(kv, s, b);
    kvshm__unlock(kv, s);
    done += b->n;
  }
  if (written)
    *written += done;
  free(b->buf);
  free(b);
  return rc;
}

int kvshm__spill_locked(kvshm *kv, uint32_t s, uint32_t ref) {
  struct kvshm_stripe *st = kvshm__stripe(kv, s);
  struct kvshm_head *hd = (void *)kvshm__slot(kv, s, ref);
  size_t n = hd->klen + (size_t)hd->vlen;
  unsigned char *copy = malloc(n ? n : 1);
  if (!copy)
    return -ENOMEM;
  kvshm__entry_read_locked(kv, s, ref, 0, copy, n);
  atomic_fetch_add_explicit((_Atomic uint32_t *)&st->gen_spill, 1,
                            memory_order_acq_rel);
  int rc = hd->state & KVSHM_ST_TOMB
               ? kvshm__store_del(kv, copy, hd->klen)
               : kvshm__store_put(kv, copy, hd->klen, copy + hd->klen, hd->vlen,
                                  hd->flags, hd->expires_ms);
  free(copy);
  if (!rc)
    st->spills++;
  return rc;
}

int kvshm_flush(kvshm *kv) {
  kvshm__clear_detail();
  if (!kvshm__has_store(kv))
    return KVSHM_OK;
  if (kv->flags & KVSHM_RDONLY)
    return KVSHM_ERDONLY;
  for (uint32_t s = 0; s < kv->nstripes; s++) {
    int rc = kvshm__writeback_stripe(kv, s, 0, NULL);
    if (rc)
      return rc;
  }
  return KVSHM_OK;
}
