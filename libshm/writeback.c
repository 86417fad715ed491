/*
 * writeback.c - carrying dirty entries and tombstones from shared memory to
 * SQLite.
 *
 * Write-behind (the reaper, kvshm_flush, and a writer whose stripe is full
 * of dirty entries) works one stripe at a time, one batch at a time:
 *
 *   1. BEGIN IMMEDIATE: take SQLite's write lock, holding no stripe lock
 *      (this is the only wait, and it happens unlocked);
 *   2. under the stripe lock, copy out up to a batch of dirty entries (key,
 *      value, flags, expiry, and the slot + version that identify them) and
 *      the stripe's clear generation;
 *   3. without the stripe lock, write them, raise kvshm_meta's clear_gen to
 *      that generation, and COMMIT;
 *   4. under the stripe lock again, mark clean each one whose slot still
 *      holds the same version (it did not change meanwhile); a tombstone
 *      whose delete reached SQLite is freed (and gen_evict moves).
 *
 * Because the copy is made while holding SQLite's write lock, no other
 * write-behind can commit between our copy and our commit: whatever commits
 * after us copied later, so SQLite never goes back to an older value.  An
 * entry becomes evictable only once clean, i.e. after the commit that
 * wrote it: so a key absent from memory has its newest value in SQLite,
 * and no batch in flight can still change its row (a batch that copied it
 * after that commit holds the same version).  A clear that happens while a
 * batch is in flight makes the batch's rows invisible (their gen is old),
 * and the stripe's next locker empties it, so nothing is marked clean.
 *
 * Lock order: SQLite's write lock, then a stripe lock; nothing holds a
 * stripe lock while it waits for SQLite.  A process killed at any step
 * leaves SQLite's transaction rolled back (or committed) and the entries
 * dirty, to be written again: nothing is lost.
 */
#include "store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_ENTRIES 8192     /* entries per transaction */
#define BATCH_BYTES (4u << 20) /* key + value bytes per transaction */
#define SCAN_PER_LOCK 8192u    /* slots looked at per hold of the lock */
#define MARK_PER_LOCK 2048u    /* entries marked clean per hold */

struct wb_item {
  uint64_t h;       /* the key's hash (computed without the lock) */
  uint32_t ref;     /* its head slot, and the version found there */
  uint32_t version; /* (mark_clean_locked compares both) */
  uint32_t flags;   /* the user's flags word */
  uint32_t seq;     /* copy order: of two copies of a key, the later wins */
  bool tomb;        /* a tombstone: delete the row */
  bool dropped;     /* a later copy of its key is in the batch: not written,
                       never marked clean */
  uint64_t expires_ms;
  size_t klen, vlen, off; /* key then value at buf + off */
};

struct wb_batch {
  struct wb_item item[BATCH_ENTRIES];
  struct wb_item *order[BATCH_ENTRIES]; /* the items in the table's order */
  struct kvshm__put put[BATCH_ENTRIES]; /* a run of rows to write */
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

/* Copy dirty entries from *cursor on, looking at up to SCAN_PER_LOCK
 * slots; advance it.  Slots past the stripe's `fresh` were never used: past
 * it, the cursor goes to the end (a sparse stripe costs what it holds, not
 * its size).  Lock held. */
static int collect_locked(kvshm *kv, uint32_t s, uint32_t *cursor,
                          struct wb_batch *b, uint32_t max) {
  uint32_t fresh = kvshm__stripe(kv, s)->fresh;
  uint32_t used = fresh <= kv->nslots ? fresh : kv->nslots;
  if (*cursor > used)
    *cursor = kv->nslots + 1;
  uint32_t scanned = 0;
  for (; *cursor <= used && b->n < max && b->used < BATCH_BYTES &&
         scanned < SCAN_PER_LOCK;
       (*cursor)++, scanned++) {
    struct kvshm_head *hd = (void *)kvshm__slot(kv, s, *cursor);
    uint16_t state = hd->state;
    if ((state & KVSHM_KIND_MASK) != KVSHM_KIND_HEAD ||
        !(state & KVSHM_ST_DIRTY))
      continue;
    uint32_t klen = hd->klen, vlen = hd->vlen, flags = hd->flags;
    if (kvshm__entry_check_locked(kv, s, *cursor, false))
      continue; /* broken: the next writer to meet it repairs the stripe */
    size_t n = (size_t)klen + vlen; /* a tombstone's value is copied to be
                                       checked, and not written */
    bool tomb = state & KVSHM_ST_TOMB;
    int rc = batch_reserve(b, n);
    if (rc)
      return rc;
    if (kvshm__entry_copy_locked(kv, s, *cursor, klen, vlen, flags, hd->check,
                                 0, b->buf + b->used))
      continue; /* changed as we copied: never written to SQLite */
    struct wb_item *it = &b->item[b->n];
    it->ref = *cursor;
    it->version = hd->version;
    it->flags = flags;
    it->seq = b->n++;
    it->tomb = tomb;
    it->dropped = false;
    it->expires_ms = hd->expires_ms;
    it->klen = klen;
    it->vlen = tomb ? 0 : vlen;
    it->off = b->used;
    b->used += n;
  }
  if (*cursor > used)
    *cursor = kv->nslots + 1;
  return KVSHM_OK;
}

static const unsigned char *item_key(const struct wb_batch *b,
                                     const struct wb_item *it) {
  return it->klen ? b->buf + it->off : (const unsigned char *)"";
}

/* The table's order: hpos (signed), then the key as SQLite compares blobs;
 * two copies of one key in copy order. */
static int item_cmp(const void *a, const void *b, void *arg) {
  const struct wb_item *x = *(struct wb_item *const *)a;
  const struct wb_item *y = *(struct wb_item *const *)b;
  int64_t hx = kvshm__hpos(x->h), hy = kvshm__hpos(y->h);
  if (hx != hy)
    return hx < hy ? -1 : 1;
  size_t n = x->klen < y->klen ? x->klen : y->klen;
  int c = n ? memcmp(item_key(arg, x), item_key(arg, y), n) : 0;
  if (c || x->klen != y->klen)
    return c ? c : x->klen < y->klen ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Write the batch and commit the transaction begun by the caller.  The
 * rows go in the table's order, several per statement: a batch's keys
 * all hash into one stripe's range, so in order they share b-tree pages.
 * A batch copied in several holds of the lock can hold two copies of a
 * key (it moved to a slot further on meanwhile): only the later, newer
 * one is written. */
static int write_batch(kvshm *kv, struct wb_batch *b, uint64_t gen) {
  int rc = KVSHM_OK;
  for (uint32_t i = 0; i < b->n; i++) {
    struct wb_item *it = &b->item[i];
    it->h = kvshm__key_hash(item_key(b, it), it->klen);
    b->order[i] = it;
  }
  qsort_r(b->order, b->n, sizeof *b->order, item_cmp, b);
  uint32_t np = 0;
  for (uint32_t i = 0; !rc && i < b->n; i++) {
    struct wb_item *it = b->order[i];
    if (i + 1 < b->n) {
      struct wb_item *nx = b->order[i + 1];
      if (nx->h == it->h && nx->klen == it->klen &&
          (!it->klen || !memcmp(item_key(b, it), item_key(b, nx), it->klen))) {
        it->dropped = true;
        continue;
      }
    }
    const unsigned char *k = b->buf + it->off;
    if (!it->tomb) {
      b->put[np++] =
          (struct kvshm__put){it->h,    k,         k + it->klen,  it->klen,
                              it->vlen, it->flags, it->expires_ms};
      continue;
    }
    /* A delete: the rows before it go first (they sort before it). */
    rc = kvshm__store_put_rows(kv, b->put, np, gen);
    np = 0;
    if (!rc)
      rc = kvshm__store_del(kv, it->h, k, it->klen);
  }
  if (!rc)
    rc = kvshm__store_put_rows(kv, b->put, np, gen);
  if (!rc && b->n)
    rc = kvshm__store_meta_raise(kv, "clear_gen", gen);
  int end = kvshm__store_end(kv, !rc);
  return rc ? rc : end;
}

/* Mark clean what did not change since it was copied, items [from, to).
 * Lock held. */
static void mark_clean_locked(kvshm *kv, uint32_t s, struct wb_batch *b,
                              uint32_t from, uint32_t to, uint64_t gen) {
  struct kvshm_stripe *st = kvshm__stripe(kv, s);
  if (st->clear_gen != gen)
    return; /* cleared since: what we wrote is not there */
  for (uint32_t i = from; i < to; i++) {
    struct wb_item *it = &b->item[i];
    if (it->dropped)
      continue;
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

/* Entries per ms this thread's batches took, copy and commit (a moving
 * average), so that a batch with a deadline (the reaper's tick budget)
 * is sized to end by it.  Starts low: the first batches are small. */
static _Thread_local double wb_rate = 20.0;

static void rate_learn(uint32_t n, uint64_t ms) {
  if (n >= 256)
    wb_rate = 0.7 * wb_rate + 0.3 * ((double)n / (double)(ms ? ms : 1));
}

static uint32_t deadline_limit(uint32_t limit, uint64_t deadline_ms) {
  uint64_t now = kvshm__wall_ms();
  /* Half the rate: a batch may wait for the lock, or the CPU. */
  double fit =
      deadline_ms > now ? (double)(deadline_ms - now) * wb_rate / 2 : 0;
  return fit >= limit ? limit : fit < 256 ? 256 : (uint32_t)fit;
}

int kvshm__writeback_stripe(kvshm *kv, uint32_t s, uint32_t max,
                            uint64_t deadline_ms, uint64_t *written) {
  struct wb_batch *b = NULL; /* made when first needed: a clean stripe
                                costs no allocation */
  struct kvshm_stripe *st = kvshm__stripe(kv, s);
  uint32_t cursor = 1, done = 0;
  uint64_t start_ms = kvshm__now_ms(kv);
  int rc = KVSHM_OK;
  while (cursor <= kv->nslots && (!max || done < max)) {
    if (deadline_ms && kvshm__wall_ms() >= deadline_ms)
      break;
    rc = kvshm__lock(kv, s); /* a clean stripe costs no SQLite lock */
    if (rc)
      break;
    bool dirty = st->dirty != 0;
    kvshm__unlock(kv, s);
    if (!dirty)
      break;
    if (!b) {
      if (!(b = malloc(sizeof *b))) {
        rc = -ENOMEM;
        break;
      }
      b->buf = NULL; /* the arrays are written before they are read */
      b->size = 0;
    }
    rc = kvshm__store_begin(kv);
    if (rc == KVSHM__EBUSY && deadline_ms) {
      rc = KVSHM_OK; /* SQLite stayed busy until our deadline: later */
      break;
    }
    if (rc)
      break;
    rc = kvshm__store_owned(kv); /* a destroyed segment writes nothing */
    if (rc) {
      kvshm__store_end(kv, false);
      break;
    }
    /* Copy in holds of SCAN_PER_LOCK slots each, all within SQLite's
     * write lock, until the batch is full or the stripe seen.  A clear
     * between two holds ends the batch: what was copied is written in
     * its old generation, and never marked clean. */
    uint32_t limit =
        max && max - done < BATCH_ENTRIES ? max - done : BATCH_ENTRIES;
    if (deadline_ms) /* what this thread wrote per ms so far: end in time */
      limit = deadline_limit(limit, deadline_ms);
    uint64_t t0 = kvshm__wall_ms();
    uint64_t gen = 0;
    b->n = 0;
    b->used = 0;
    for (bool first = true;
         cursor <= kv->nslots && b->n < limit && b->used < BATCH_BYTES;
         first = false) {
      if ((rc = kvshm__lock(kv, s)) != KVSHM_OK)
        break;
      if (first)
        gen = st->clear_gen;
      bool cleared = st->clear_gen != gen;
      if (!cleared)
        rc = collect_locked(kv, s, &cursor, b, limit);
      kvshm__unlock(kv, s);
      if (rc || cleared)
        break;
    }
    if (rc) {
      kvshm__store_end(kv, false);
      break;
    }
    rc = write_batch(kv, b, gen);
    if (rc)
      break;
    rate_learn(b->n, kvshm__wall_ms() - t0);
    if (!b->n)
      continue;
    for (uint32_t i = 0; !rc && i < b->n; i += MARK_PER_LOCK) {
      if ((rc = kvshm__lock(kv, s)) != KVSHM_OK)
        break;
      mark_clean_locked(kv, s, b, i,
                        b->n - i < MARK_PER_LOCK ? b->n : i + MARK_PER_LOCK,
                        gen);
      kvshm__unlock(kv, s);
    }
    if (rc)
      break;
    done += b->n;
  }
  /* A whole pass wrote every entry that was dirty when it began (one that
   * was rewritten since is dirty from a later time): what is still dirty
   * is younger than start_ms.  Without this, a stripe never quite clean
   * would look ever older to persistent mode's writers. */
  if (!rc && cursor > kv->nslots && kvshm__lock(kv, s) == KVSHM_OK) {
    if (st->dirty && st->dirty_since_ms < start_ms)
      st->dirty_since_ms = start_ms;
    kvshm__unlock(kv, s);
  }
  if (written)
    *written += done;
  if (b)
    free(b->buf);
  free(b);
  return rc;
}

int kvshm_flush(kvshm *kv) {
  kvshm__clear_detail();
  if (!kvshm__has_store(kv))
    return KVSHM_OK;
  if (kv->flags & KVSHM_RDONLY)
    return KVSHM_ERDONLY;
  int first = KVSHM_OK; /* every stripe is tried; the first error wins */
  for (uint32_t s = 0; s < kv->nstripes; s++) {
    int rc = kvshm__writeback_stripe(kv, s, 0, 0, NULL);
    if (rc && !first)
      first = rc;
    if (rc == KVSHM_EDESTROYED)
      break;
  }
  return first;
}
