/*
 * lock.c - stripe locks, and the repair of a stripe whose lock holder died.
 *
 * Lock order: there is none, because no code path ever holds two stripe
 * locks.  The segment's flock (segment.c) is taken only while opening, never
 * together with a stripe lock.
 *
 * Each stripe lock is a process-shared, robust pthread mutex.  When a process
 * dies holding one (kill -9 at any instant), the kernel hands the next locker
 * EOWNERDEAD.  That locker repairs the stripe, then marks the mutex consistent.
 * Repair trusts nothing but committed head slots that pass every check:
 *
 *   1. empty every bucket;
 *   2. for each slot whose kind is "head": check its lengths, walk its chain
 *      (in bounds, each link a continuation owned by this head, no slot
 *      claimed twice), verify its checksum; a failing entry is dropped and
 *      counted as corrupt;
 *   3. if the key is already indexed (a writer died between committing a new
 *      entry and freeing the old one), keep the higher version;
 *   4. every slot not claimed by a kept entry becomes free;
 *   5. recount entries, bytes, dirty and tombstones, and move gen_evict
 *      (dropped entries left memory: see layout.h).
 *
 * Because writes are copy-on-write (layout.h), a kept entry is always either
 * the old or the new value of the dead process's in-flight write: at most
 * that write is lost, and no reader ever sees it half done.  Repair is
 * idempotent: if the repairer dies too, the next locker repairs again.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

static int lock_failed(kvshm *kv, uint32_t s, int rc);

struct timespec kvshm__deadline(uint32_t ms) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)ms * 1000000u;
  ts.tv_sec += (time_t)(ns / 1000000000u);
  ts.tv_nsec = (long)(ns % 1000000000u);
  return ts;
}

int kvshm__busy_wait(kvshm *kv, int attempt, uint64_t since_ms,
                     const char *what) {
  if (kvshm__wall_ms() >= since_ms + kv->lock_timeout_ms)
    return kvshm__fail(KVSHM_ETIMEDOUT,
                       "cache '%s': SQLite stayed busy for %u ms while %s",
                       kv->name, kv->lock_timeout_ms, what);
  struct timespec ts = {0, 100000L * (attempt < 20 ? attempt : 20)};
  nanosleep(&ts, NULL);
  return KVSHM_OK;
}

/* A kvshm_clear moved the header's generation: empty the stripe now.  The
 * generation is stored last, so a locker killed half-way is followed by
 * one that repairs (EOWNERDEAD) and then empties again. */
static void catch_up_locked(kvshm *kv, uint32_t s, uint64_t gen) {
  struct kvshm_stripe *st = kvshm__stripe(kv, s);
  kvshm__stripe_clear_locked(kv, s);
  atomic_store_explicit((_Atomic uint64_t *)&st->clear_gen, gen,
                        memory_order_release);
}

void kvshm__clear_gen_raise(kvshm *kv, uint64_t g) {
  _Atomic uint64_t *p = (_Atomic uint64_t *)&kv->hdr->clear_gen;
  uint64_t cur = atomic_load(p);
  while (cur < g && !atomic_compare_exchange_weak(p, &cur, g))
    ;
}

static int lock_raw(kvshm *kv, uint32_t s) {
  pthread_mutex_t *m = &kvshm__stripe(kv, s)->lock;
  int rc = pthread_mutex_trylock(m);
  if (rc == EBUSY) {
    struct timespec ts = kvshm__deadline(kv->lock_timeout_ms);
    rc = pthread_mutex_timedlock(m, &ts);
  }
  if (rc == 0)
    return KVSHM_OK;
  return lock_failed(kv, s, rc);
}

int kvshm__lock(kvshm *kv, uint32_t s) {
  int rc = lock_raw(kv, s);
  if (rc)
    return rc;
  /* Generations only grow: a stripe ahead of the header proves the header
   * word was overwritten, and raises it back rather than emptying a stripe
   * no clear asked for. */
  uint64_t gen = kvshm__clear_gen(kv), mine = kvshm__stripe(kv, s)->clear_gen;
  if (mine > gen)
    kvshm__clear_gen_raise(kv, mine);
  else if (mine < gen) /* read-only handles too: the clear happened, */
    catch_up_locked(kv, s, gen); /* this only shows it */
  return KVSHM_OK;
}

void kvshm__unlock(kvshm *kv, uint32_t s) {
  pthread_mutex_unlock(&kvshm__stripe(kv, s)->lock);
}

/*
 * The lock could not be taken cleanly.  EOWNERDEAD: we hold it now, but the
 * stripe may be mid-update; repair it and mark the mutex consistent (like
 * LMDB's mdb_mutex_failed).  Anything else is an error for the caller.
 */
static int lock_failed(kvshm *kv, uint32_t s, int rc) {
  if (rc == EOWNERDEAD) {
    kvshm__repair_locked(kv, s);
    pthread_mutex_consistent(&kvshm__stripe(kv, s)->lock);
    return KVSHM_OK;
  }
  if (rc == ETIMEDOUT)
    return kvshm__fail(KVSHM_ETIMEDOUT,
                       "stripe %u of cache '%s' stayed "
                       "locked for %u ms",
                       s, kv->name, kv->lock_timeout_ms);
  if (rc == ENOTRECOVERABLE)
    return kvshm__fail(KVSHM_ENOTRECOVERABLE,
                       "stripe %u of cache '%s' has "
                       "an unrecoverable lock: destroy and recreate the "
                       "cache",
                       s, kv->name);
  return kvshm__fail(KVSHM_ECORRUPT,
                     "stripe %u lock of cache '%s' failed: "
                     "%s",
                     s, kv->name, strerror(rc));
}

void kvshm__repair_locked(kvshm *kv, uint32_t s) {
  struct kvshm_stripe *st = kvshm__stripe(kv, s);
  uint32_t *buckets = kvshm__buckets(kv, s);
  uint32_t n = kv->nslots;
  /* claimed[i]: ref of the kept entry that owns slot i+1, 0 = unclaimed.
   * Allocated at open (segment.c), with the key buffers: repair never
   * allocates, so it never has to drop an entry for want of memory. */
  uint32_t *claimed = kv->repair_claimed;
  memset(claimed, 0, (size_t)n * sizeof *claimed);
  memset(buckets, 0, (size_t)kv->nbuckets * 4);
  uint64_t corrupt = 0;
  for (uint32_t r = 1; r <= n; r++) {
    unsigned char *slot = kvshm__slot(kv, s, r);
    if ((kvshm__state_load(slot) & KVSHM_KIND_MASK) != KVSHM_KIND_HEAD)
      continue;
    if (r == n / 2)
      kvshm__hook(kv, KVSHM_TP_REPAIR_HALF);
    struct kvshm_head *hd = (void *)slot;
    if (kvshm__entry_check_locked(kv, s, r, true)) {
      hd->state = KVSHM_KIND_FREE;
      corrupt++;
      continue;
    }
    /* Claim its chain; a slot claimed twice means a broken entry. */
    bool clash = claimed[r - 1] != 0;
    for (uint32_t c = hd->cnext; c && !clash;
         c = ((struct kvshm_cont *)kvshm__slot(kv, s, c))->cnext)
      clash = claimed[c - 1] != 0;
    if (clash) {
      hd->state = KVSHM_KIND_FREE;
      corrupt++;
      continue;
    }
    /* A second committed copy of the same key: keep the newer. */
    unsigned char *key = slot + sizeof *hd;
    bool spans = hd->klen > KVSHM_HEAD_DATA(kv->slot_size);
    if (spans) { /* scratch holds KVSHM_KEY_MAX bytes since open */
      kvshm__entry_read_locked(kv, s, r, 0, kv->scratch, hd->klen);
      key = kv->scratch;
    }
    uint64_t h = kvshm__hash(key, hd->klen, 0);
    uint32_t *link = &buckets[kvshm__bucket_of(kv, h)];
    bool keep = true;
    for (uint32_t o = *link; o; o = *link) {
      struct kvshm_head *oh = (void *)kvshm__slot(kv, s, o);
      if (oh->klen == hd->klen) {
        unsigned char *ok = (unsigned char *)oh + sizeof *oh;
        bool same;
        if (spans) {
          kvshm__entry_read_locked(kv, s, o, 0, kv->repair_key, hd->klen);
          same = memcmp(kv->repair_key, key, hd->klen) == 0;
        } else {
          same = memcmp(ok, key, hd->klen) == 0;
        }
        if (same) {
          if ((int32_t)(hd->version - oh->version) > 0) {
            *link = oh->hnext; /* drop the older, indexed one */
            for (uint32_t c = o; c;) {
              uint32_t next =
                  c == o ? oh->cnext
                         : ((struct kvshm_cont *)kvshm__slot(kv, s, c))->cnext;
              claimed[c - 1] = 0;
              c = next;
            }
            oh->state = KVSHM_KIND_FREE;
          } else {
            keep = false;
          }
          break;
        }
      }
      link = &oh->hnext;
    }
    if (!keep) {
      hd->state = KVSHM_KIND_FREE;
      continue;
    }
    claimed[r - 1] = r;
    for (uint32_t c = hd->cnext; c;
         c = ((struct kvshm_cont *)kvshm__slot(kv, s, c))->cnext)
      claimed[c - 1] = r;
    hd->hnext = buckets[kvshm__bucket_of(kv, h)];
    buckets[kvshm__bucket_of(kv, h)] = r;
  }
  /* Everything unclaimed is free; recount what is kept. */
  st->free_head = KVSHM_NIL;
  st->fresh = n;
  st->nfree = 0;
  st->entries = st->dirty = st->tombstones = 0;
  st->bytes = 0;
  for (uint32_t r = n; r >= 1; r--) {
    unsigned char *slot = kvshm__slot(kv, s, r);
    if (claimed[r - 1]) {
      struct kvshm_head *hd = (void *)slot;
      if (claimed[r - 1] == r) {
        st->entries++;
        st->bytes += (uint64_t)hd->klen + hd->vlen;
        st->dirty += (hd->state & KVSHM_ST_DIRTY) != 0;
        st->tombstones += (hd->state & KVSHM_ST_TOMB) != 0;
      }
      continue;
    }
    struct kvshm_head *fr = (void *)slot;
    fr->state = KVSHM_KIND_FREE;
    fr->hnext = st->free_head;
    st->free_head = r;
    st->nfree++;
  }
  if (!st->dirty)
    st->dirty_since_ms = 0;
  else if (!st->dirty_since_ms)
    st->dirty_since_ms = kvshm__now_ms(kv);
  st->corrupt += corrupt;
  st->repairs++;
  st->gen_evict++; /* broken entries left memory */
}
