/*
 * clear.c - clearing the whole cache (kvshm_clear) or every key under a
 * prefix (kvshm_clear_prefix), each one atomic step seen by every process,
 * in both tiers.
 *
 * A whole clear increments the header's clear_gen: each stripe empties
 * itself at its next lock (lock.c), and SQLite rows of older generations
 * are not there (store.c); the reaper deletes them later.
 *
 * A prefix clear, under the segment's clear lock (one clear at a time,
 * dropped by the kernel if its holder dies):
 *
 *   1. within SQLite's write lock (a SQLite cache), fill a free record of
 *      the header's clears[] with the prefix and generation pclear_gen + 1,
 *      state PENDING (DONE for a memory-only cache);
 *   2. store that generation in the header's pclear_gen: this is the clear.
 *      From here on, a stripe whose pclear_gen is older removes the
 *      prefix's keys at its next lock, before anything else sees it
 *      (lock.c calls kvshm__pclear_catch_up_locked), and a SQLite row under
 *      a PENDING record's prefix is not there (kvshm__pclear_hides);
 *   3. delete SQLite's rows under the prefix in the same transaction, and
 *      record the generation in kvshm_meta ('pclear:<segment nonce>'), so
 *      that whoever sees the record PENDING later can tell it was done;
 *   4. after the commit, mark the record DONE and move pclear_done (a read
 *      of SQLite that began before the commit reads again: store.c);
 *   5. lock every stripe once, so that all have swept; then free the
 *      records every stripe has swept (retire).
 *
 * Rows under a PENDING prefix are all older than its clear: every SQLite
 * write transaction begins by deleting them (kvshm__store_begin), so the
 * only commit that can follow the clear's step is one that deletes them.
 * A clearer killed at any instant leaves a PENDING record (its transaction
 * rolled back) that the next write transaction completes, or a record not
 * yet published (ignored, and freed by the next clearer).
 */
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

static uint64_t load64(const uint64_t *p) {
  return atomic_load_explicit((_Atomic uint64_t *)p, memory_order_acquire);
}

static void store64(uint64_t *p, uint64_t v) {
  atomic_store_explicit((_Atomic uint64_t *)p, v, memory_order_release);
}

/* ---- the whole cache ---------------------------------------------------- */

/* Lock and unlock every stripe: each catches up with the clears. */
static int sweep_all(kvshm *kv) {
  int rc = KVSHM_OK;
  for (uint32_t s = 0; s < kv->nstripes; s++) {
    int lrc = kvshm__lock(kv, s);
    if (lrc) {
      rc = rc ? rc : lrc;
      continue;
    }
    kvshm__unlock(kv, s);
  }
  return rc;
}

int kvshm_clear(kvshm *kv) {
  kvshm__clear_detail();
  if (kv->flags & KVSHM_RDONLY)
    return KVSHM_ERDONLY;
  _Atomic uint64_t *gen = (_Atomic uint64_t *)&kv->hdr->clear_gen;
  int rc = KVSHM_OK;
  if (!kvshm__has_store(kv)) {
    atomic_fetch_add(gen, 1); /* the clear itself: one atomic step */
    kvshm__hook(kv, KVSHM_TP_CLEAR_STEPPED);
  } else {
    /* Under SQLite's write lock: check the file is still ours, take the
     * step, record it in the file (so a segment made again over it does
     * not bring the old rows back; the reaper deletes them), commit.  A
     * clear that cannot take the lock has no effect; one killed after its
     * step is whole (the reaper records the step before deleting). */
    rc = kvshm__store_begin(kv);
    if (rc)
      return rc;
    rc = kvshm__destroyed(kv);
    if (!rc)
      rc = kvshm__store_owned(kv);
    if (rc) {
      kvshm__store_end(kv, false);
      return rc;
    }
    uint64_t g = atomic_fetch_add(gen, 1) + 1;
    kvshm__hook(kv, KVSHM_TP_CLEAR_STEPPED);
    rc = kvshm__store_meta_raise(kv, "clear_gen", g);
    int end = kvshm__store_end(kv, !rc);
    rc = rc ? rc : end;
  }
  /* Empty memory now rather than at each stripe's next use. */
  int src = sweep_all(kv);
  return rc ? rc : src;
}

/* ---- prefix records ----------------------------------------------------- */

/* Record i if it is published (made, and its step taken), else NULL. */
const struct kvshm_clear_rec *kvshm__pclear_rec(kvshm *kv, unsigned i,
                                                uint64_t *gen) {
  uint64_t top = load64(&kv->hdr->pclear_gen);
  const struct kvshm_clear_rec *r = &kv->hdr->clears[i];
  uint64_t g = load64(&r->gen);
  if (!g || g > top || r->plen == 0 || r->plen > KVSHM_PREFIX_MAX)
    return NULL;
  *gen = g;
  return r;
}

static bool under(const struct kvshm_clear_rec *r, const void *key,
                  size_t klen) {
  uint32_t n = r->plen;
  return n && n <= KVSHM_PREFIX_MAX && klen >= n &&
         memcmp(key, r->prefix, n) == 0;
}

/*
 * No lock held: a record read here may be freed (DONE and swept) and made
 * again for another clear meanwhile, its state PENDING again before its
 * prefix is written.  What was read counts only if its generation did not
 * move (a seqlock: generations are never reused); else the record we
 * began with was DONE, and hides nothing.  Without this, a torn read could
 * hide a live row - a get missing a key, a del_if or incr acting on that.
 */
bool kvshm__pclear_hides(kvshm *kv, const void *key, size_t klen) {
  for (unsigned i = 0; i < KVSHM_CLEAR_RECS; i++) {
    uint64_t g;
    const struct kvshm_clear_rec *r = kvshm__pclear_rec(kv, i, &g);
    if (r &&
        atomic_load_explicit((_Atomic uint32_t *)&r->state,
                             memory_order_acquire) == KVSHM_REC_PENDING &&
        under(r, key, klen)) {
      atomic_thread_fence(memory_order_acquire);
      if (atomic_load_explicit((_Atomic uint64_t *)&r->gen,
                               memory_order_relaxed) == g)
        return true;
    }
  }
  return false;
}

/* A reader's view of a stripe whose pclear_gen is `since`: is key under a
 * prefix clear made after it (one its next locker will sweep)?  Such a
 * record is not freed before that stripe has swept it; the gen is read
 * again all the same (a seqlock, as above). */
bool kvshm__pclear_unswept(kvshm *kv, uint64_t since, const void *key,
                           size_t klen) {
  for (unsigned i = 0; i < KVSHM_CLEAR_RECS; i++) {
    uint64_t g;
    const struct kvshm_clear_rec *r = kvshm__pclear_rec(kv, i, &g);
    if (r && g > since && under(r, key, klen)) {
      atomic_thread_fence(memory_order_acquire);
      if (atomic_load_explicit((_Atomic uint64_t *)&r->gen,
                               memory_order_relaxed) == g)
        return true;
    }
  }
  return false;
}

/*
 * pclear_done moves BEFORE the state does: a reader (store.c) that sees the
 * record DONE (or freed after it) must also see pclear_done moved, or it
 * takes a row from a snapshot older than the delete's commit for the key's
 * value (and a get promotes it).  Moved after, a reader could look in
 * between, or forever if the marker died there.  Moved first, a reader in
 * between still sees PENDING and hides the row.
 */
void kvshm__pclear_mark_done(kvshm *kv, unsigned i, uint64_t gen) {
  struct kvshm_clear_rec *r = &kv->hdr->clears[i];
  uint32_t want = KVSHM_REC_PENDING;
  atomic_fetch_add((_Atomic uint64_t *)&kv->hdr->pclear_done, 1);
  kvshm__hook(kv, KVSHM_TP_PCLEAR_MARKING);
  if (load64(&r->gen) == gen)
    atomic_compare_exchange_strong((_Atomic uint32_t *)&r->state, &want,
                                   KVSHM_REC_DONE);
}

/*
 * Stripe s last swept for generation `from`; the header is at `to`: remove
 * every key under the prefixes cleared in between.  Lock held.  A record
 * missing (only damage can retire one before every stripe swept it) empties
 * the stripe: a cache may forget, never bring back what was cleared.  The
 * generation is stored last: a locker killed half-way is followed by one
 * that repairs, then sweeps again.
 */
void kvshm__pclear_catch_up_locked(kvshm *kv, uint32_t s, uint64_t from,
                                   uint64_t to) {
  struct kvshm_stripe *st = kvshm__stripe(kv, s);
  const struct kvshm_clear_rec *want[KVSHM_CLEAR_RECS];
  unsigned n = 0;
  bool lost = to - from > KVSHM_CLEAR_RECS;
  for (uint64_t g = from + 1; !lost && g <= to; g++) {
    bool found = false;
    for (unsigned i = 0; i < KVSHM_CLEAR_RECS && !found; i++) {
      uint64_t rg;
      const struct kvshm_clear_rec *r = kvshm__pclear_rec(kv, i, &rg);
      if (r && rg == g) {
        want[n++] = r;
        found = true;
      }
    }
    lost = !found;
  }
  if (lost) {
    kvshm__stripe_clear_locked(kv, s);
  } else {
    unsigned char key[KVSHM_PREFIX_MAX];
    uint32_t limit = st->fresh <= kv->nslots ? st->fresh : kv->nslots;
    for (uint32_t ref = 1; ref <= limit; ref++) {
      struct kvshm_head *hd = (void *)kvshm__slot(kv, s, ref);
      if ((kvshm__state_load(hd) & KVSHM_KIND_MASK) != KVSHM_KIND_HEAD ||
          kvshm__entry_check_locked(kv, s, ref, false))
        continue; /* not an entry, or a broken one repair will drop */
      uint32_t klen = hd->klen;
      size_t take = klen < KVSHM_PREFIX_MAX ? klen : KVSHM_PREFIX_MAX;
      kvshm__entry_read_locked(kv, s, ref, 0, key, take);
      for (unsigned i = 0; i < n; i++) {
        if (under(want[i], key, take)) {
          kvshm__entry_remove_locked(kv, s, ref);
          break;
        }
      }
    }
  }
  /* A SQLite read made between two holds of this lock must read again
   * (ops.c, iter.c), even if no key of the prefixes was in memory here:
   * their rows in SQLite are gone (hidden now, deleted at the commit), and
   * a row read before the step would otherwise be taken as the key's
   * value at the second hold, and promoted into a stripe that has already
   * swept - the key back for good after its clear returned. */
  st->gen_evict++;
  store64(&st->pclear_gen, to);
}

/* The highest published prefix generation some stripe has not swept. */
static bool all_swept(kvshm *kv, uint64_t g) {
  for (uint32_t s = 0; s < kv->nstripes; s++)
    if (load64(&kvshm__stripe(kv, s)->pclear_gen) < g)
      return false;
  return true;
}

/*
 * Clear lock held: let every stripe sweep, complete what a dead clearer
 * left PENDING (a SQLite write transaction does it), and free the records
 * no one needs: DONE and swept everywhere, or never published.
 */
static int settle(kvshm *kv) {
  bool any = false, pending = false;
  uint64_t top = load64(&kv->hdr->pclear_gen);
  for (unsigned i = 0; i < KVSHM_CLEAR_RECS; i++) {
    struct kvshm_clear_rec *r = &kv->hdr->clears[i];
    uint64_t g = load64(&r->gen);
    if (g && g > top)
      store64(&r->gen, 0); /* its clearer died before the step */
    else if (g) {
      any = true;
      pending |= r->state == KVSHM_REC_PENDING;
    }
  }
  if (!any)
    return KVSHM_OK;
  int rc = KVSHM_OK;
  if (pending && kvshm__has_store(kv)) {
    rc = kvshm__store_begin(kv); /* completes them */
    if (!rc)
      rc = kvshm__store_end(kv, true);
  }
  if (!all_swept(kv, top)) {
    int src = sweep_all(kv);
    rc = rc ? rc : src;
  }
  for (unsigned i = 0; i < KVSHM_CLEAR_RECS; i++) {
    struct kvshm_clear_rec *r = &kv->hdr->clears[i];
    uint64_t g = load64(&r->gen);
    if (g && atomic_load((_Atomic uint32_t *)&r->state) == KVSHM_REC_DONE &&
        all_swept(kv, g))
      store64(&r->gen, 0);
  }
  return rc;
}

int kvshm__pclear_settle(kvshm *kv) {
  for (unsigned i = 0; i < KVSHM_CLEAR_RECS; i++)
    if (load64(&kv->hdr->clears[i].gen))
      goto work;
  return KVSHM_OK; /* the usual case: nothing in flight, no lock taken */
work:;
  int rc = kvshm__clear_lock(kv, true, false);
  if (rc)
    return rc == KVSHM__EBUSY_CLEAR ? KVSHM_OK : rc; /* a clearer settles */
  rc = settle(kv);
  kvshm__clear_lock(kv, false, false);
  return rc;
}

/* ---- kvshm_clear_prefix ------------------------------------------------- */

/* Clear lock held (and SQLite's write lock, for a SQLite cache): make the
 * record and take the step. */
static int step(kvshm *kv, const void *prefix, size_t plen) {
  struct kvshm_hdr *h = kv->hdr;
  uint64_t top = load64(&h->pclear_gen);
  struct kvshm_clear_rec *r = NULL;
  for (unsigned i = 0; i < KVSHM_CLEAR_RECS && !r; i++)
    if (!load64(&h->clears[i].gen))
      r = &h->clears[i];
  if (!r)
    return kvshm__fail(KVSHM_ETIMEDOUT,
                       "cache '%s': %u prefix clears are still being "
                       "applied (a stripe lock or SQLite stayed busy); try "
                       "again",
                       kv->name, KVSHM_CLEAR_RECS);
  r->state = kvshm__has_store(kv) ? KVSHM_REC_PENDING : KVSHM_REC_DONE;
  r->plen = (uint32_t)plen;
  memcpy(r->prefix, prefix, plen);
  store64(&r->gen, top + 1);
  store64(&h->pclear_gen, top + 1); /* the clear itself */
  kvshm__hook(kv, KVSHM_TP_CLEAR_STEPPED);
  return KVSHM_OK;
}

int kvshm_clear_prefix(kvshm *kv, const void *prefix, size_t plen) {
  kvshm__clear_detail();
  if (kv->flags & KVSHM_RDONLY)
    return KVSHM_ERDONLY;
  if (!prefix && plen)
    return kvshm__fail(KVSHM_EINVAL, "prefix is NULL");
  if (plen == 0)
    return kvshm_clear(kv);
  if (plen > KVSHM_PREFIX_MAX)
    return kvshm__fail(KVSHM_ETOOBIG,
                       "prefix is %zu bytes; a prefix clear takes at most %u",
                       plen, KVSHM_PREFIX_MAX);
  int rc = kvshm__clear_lock(kv, true, true);
  if (rc)
    return rc;
  rc = settle(kv); /* room for our record */
  bool store = kvshm__has_store(kv);
  if (!rc && store) {
    rc = kvshm__store_begin(kv);
    if (!rc) {
      rc = kvshm__destroyed(kv);
      if (!rc)
        rc = kvshm__store_owned(kv);
      if (!rc)
        rc = step(kv, prefix, plen);
      if (!rc) /* delete our rows in this transaction */
        rc = kvshm__store_pending(kv);
      int end = kvshm__store_end(kv, !rc);
      rc = rc ? rc : end;
    }
  } else if (!rc) {
    rc = step(kv, prefix, plen);
  }
  int src = settle(kv); /* sweep memory now, free what is done */
  rc = rc ? rc : src;
  kvshm__clear_lock(kv, false, false);
  return rc;
}
