/*
 * seqread.c - gets that take no lock.
 *
 * A get that finds its key in memory and has nothing to write (no LFU
 * change, nothing expired, nothing to promote) reads the stripe without its
 * lock, as a seqlock reader: it reads the stripe's sequence word (layout.h),
 * walks the bucket chain and copies the value, then reads the word again
 * after an acquire fence.  Whoever takes the lock makes the word odd before
 * changing anything and even again, one higher, just before letting go; so
 * an even word that did not move means nothing changed while we read, and
 * what we read is one state of the stripe that a locked get could have
 * seen.  A get that reads nothing shared-writable writes nothing shared
 * either (its hit counts in this handle's counter shard), so gets on two
 * CPUs never move one cache line between them.
 *
 * Reading without the lock must still never trust the segment:
 *  - every ref is range-checked before it is followed, chains are bounded,
 *    and lengths are checked against what the chain can hold before a byte
 *    is copied (kvshm__entry_check_locked, kvshm__entry_copy_locked are
 *    read-only and take nothing on trust), so a torn or damaged stripe can
 *    send the reader nowhere outside the mapping;
 *  - the value is copied, then checked against the entry's checksum as
 *    copied, exactly as under the lock: the sequence word proves that no
 *    lock holder changed it, the checksum that nothing else did (a process
 *    scribbling on the segment takes no lock, and could even write the
 *    word itself).  A holder killed mid-write leaves the word odd, so every
 *    get of that stripe takes the lock, whose next holder repairs it.
 * Anything doubtful (an odd or moving word, a check that fails, an entry to
 * expire, an LFU counter to bump, a key only SQLite may hold) is decided
 * under the lock instead, where repair and the tiers live (ops.c).
 *
 * A reader (a handle without write permission, KVSHM__READER) has no lock
 * to fall back on, so it decides everything here: an expired entry and a
 * stripe that has not yet caught up with a clear are absent (as they are
 * to a read-only get under the lock), a broken entry is KVSHM_ECORRUPT, a
 * busy stripe is waited for up to the lock timeout, and a key absent from
 * memory of a SQLite cache is read from SQLite between two looks that
 * must both find it absent with the same gen_evict and clear_gen: then
 * nothing left memory meanwhile, and the row read is the key's value (the
 * argument ops.c makes between two lock holds).
 */
#include "store.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>

#define SEQ_TRIES 4  /* reads of a moving stripe before taking the lock */
#define SEQ_HOPS 64u /* chain length beyond which the lock decides */

#define LOAD32(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define LOAD64(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

/* What one optimistic look found, to be taken only if the stripe's word
 * stayed put. */
struct look {
  int rc;          /* OK, ENOTFOUND, EBUFSIZE, KVSHM__ELOCK; for a reader
                      also ECORRUPT and STORE */
  uint32_t vlen;   /* the value's length (OK, EBUFSIZE) */
  uint32_t flags;  /* its flags word */
  uint64_t expiry; /* its expiry, ms, 0 = never */
  uint64_t gen;    /* STORE: the stripe's clear_gen ... */
  uint32_t moved;  /* ... and gen_evict, at this look */
};
#define STORE 1 /* a reader's look: absent from memory, ask SQLite */

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/* What a get knows of where its key lives. */
struct where {
  uint32_t s; /* its stripe */
  uint32_t b; /* its bucket */
};

static struct look look_up(kvshm *kv, const struct kvshm__seq_get *g,
                           struct where w) {
  uint32_t s = w.s;
  bool reader = kv->flags & KVSHM__READER;
  /* What a reader cannot leave to the lock is an error or a decision. */
  int doubt = reader ? KVSHM_ECORRUPT : KVSHM__ELOCK;
  struct look lk = {KVSHM__ELOCK, 0, 0, 0, 0, 0};
  struct kvshm_stripe *st = kvshm__stripe(kv, s);
  /* A clear the stripe has not caught up with is done by its next locker;
   * to a reader, what it clears is gone already. */
  uint64_t gen = LOAD64(st->clear_gen), pgen = LOAD64(st->pclear_gen);
  if (gen != kvshm__clear_gen(kv)) {
    if (reader)
      lk.rc = KVSHM_ENOTFOUND;
    return lk;
  }
  if (pgen != __atomic_load_n(&kv->hdr->pclear_gen, __ATOMIC_ACQUIRE)) {
    if (!reader)
      return lk;
    if (kvshm__pclear_unswept(kv, pgen, g->key, g->klen)) {
      lk.rc = KVSHM_ENOTFOUND;
      return lk;
    }
  }
  uint32_t r = LOAD32(kvshm__buckets(kv, s)[w.b]);
  const struct kvshm_head *hd = NULL;
  size_t cap = KVSHM_HEAD_DATA(kv->slot_size);
  for (uint32_t hops = 0; r; hops++) {
    lk.rc = doubt;
    if (!kvshm__ref_ok(kv, r) || hops >= SEQ_HOPS)
      return lk;
    hd = (const struct kvshm_head *)kvshm__slot(kv, s, r);
    if ((kvshm__state_load(hd) & KVSHM_KIND_MASK) != KVSHM_KIND_HEAD)
      return lk;
    if (LOAD32(hd->klen) == g->klen) {
      const unsigned char *k = (const unsigned char *)hd + sizeof *hd;
      if (g->klen > cap) { /* a key that spans slots: read it whole */
        if (kvshm__entry_check_locked(kv, s, r, false) ||
            kvshm__scratch(kv, g->klen))
          return lk;
        kvshm__entry_read_locked(kv, s, r, 0, kv->scratch, g->klen);
        k = kv->scratch;
      }
      if (memcmp(k, g->key, g->klen) == 0)
        break;
    }
    r = LOAD32(hd->hnext);
  }
  lk.rc = KVSHM__ELOCK;
  if (!r) { /* not in memory: only a memory-only cache knows that is all */
    if (!kvshm__has_store(kv)) {
      lk.rc = KVSHM_ENOTFOUND;
    } else if (reader) {
      lk.rc = STORE;
      lk.gen = gen;
      lk.moved = LOAD32(st->gen_evict);
    }
    return lk;
  }
  uint16_t state = kvshm__state_load(hd);
  if (state & KVSHM_ST_TOMB) { /* deleted: newer than any SQLite row */
    lk.rc = KVSHM_ENOTFOUND;
    return lk;
  }
  lk.expiry = LOAD64(hd->expires_ms);
  if (lk.expiry && lk.expiry <= kvshm__now_ms(kv)) {
    if (reader) /* to a reader, as to a read-only get under the lock */
      lk.rc = KVSHM_ENOTFOUND;
    return lk; /* expired: the locked get removes it */
  }
  if (g->draw) {
    uint32_t lfu = LOAD32(hd->lfu);
    if (kvshm__lfu_next(lfu, kvshm__lfu_now_ms(kv), *g->draw) != lfu)
      return lk; /* the counter moves: a write, under the lock */
  }
  lk.vlen = LOAD32(hd->vlen);
  lk.flags = LOAD32(hd->flags);
  uint32_t check = LOAD32(hd->check);
  lk.rc = doubt;
  if (kvshm__entry_check_locked(kv, s, r, false))
    return lk;
  if (g->buf) {
    if (g->bufsize < lk.vlen) {
      lk.rc = KVSHM_EBUFSIZE;
      return lk;
    }
    if (kvshm__entry_copy_locked(kv, s, r, g->klen, lk.vlen, lk.flags, check,
                                 g->klen, g->buf))
      return lk;
  }
  lk.rc = KVSHM_OK;
  return lk;
}

#define BUSY 2 /* every try met an odd or moving word */

/* A look taken only if the stripe's word stood still around it (BUSY if
 * none did in `tries`). */
static struct look settled_look(kvshm *kv, const struct kvshm__seq_get *g,
                                struct where w, int tries) {
  _Atomic uint32_t *q = kvshm__seq(kv, w.s);
  for (int t = 0; t < tries; t++) {
    uint32_t v = atomic_load_explicit(q, memory_order_acquire);
    if (v & 1) { /* a holder is changing the stripe: let it finish */
      cpu_relax();
      continue;
    }
    struct look lk = look_up(kv, g, w);
    kvshm__hook(kv, KVSHM_TP_SEQ_LOOKED);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(q, memory_order_relaxed) == v)
      return lk;
    /* changed while we read: what we read means nothing */
  }
  return (struct look){.rc = BUSY};
}

static int answer(const struct kvshm__seq_get *g, const struct look *lk) {
  if (g->vlen && lk->rc != KVSHM_ENOTFOUND)
    *g->vlen = lk->vlen;
  if (g->flags && lk->rc != KVSHM_ENOTFOUND)
    *g->flags = lk->flags;
  if (g->expires_ms && (lk->rc == KVSHM_OK || lk->rc == KVSHM_EBUFSIZE))
    *g->expires_ms = lk->expiry; /* found: as the locked get says */
  return lk->rc;
}

/* A reader's row from SQLite, as a look (its value copied to `copy`). */
static int store_look(kvshm *kv, const struct kvshm__seq_get *g,
                      const struct look *at, struct look *out, void **copy) {
  struct kvshm_row row;
  int rc = kvshm__store_fetch(kv, g->h, g->key, g->klen, kvshm__now_ms(kv),
                              at->gen, false, &row);
  *out = (struct look){KVSHM_ENOTFOUND, 0, 0, 0, 0, 0};
  if (rc == KVSHM_ENOTFOUND)
    return KVSHM_OK;
  if (rc)
    return rc;
  *copy = malloc(row.vlen ? row.vlen : 1); /* row.val is kv->scratch */
  if (!*copy)
    return -ENOMEM;
  memcpy(*copy, row.val, row.vlen);
  *out = (struct look){
      KVSHM_OK, (uint32_t)row.vlen, row.flags, row.expires_ms, 0, 0};
  return KVSHM_OK;
}

/* A reader's get: it has no lock to fall back on (see the top). */
static int reader_get(kvshm *kv, const struct kvshm__seq_get *g,
                      struct where w) {
  uint64_t since = 0;
  for (unsigned spins = 0;; spins++) {
    struct look lk = settled_look(kv, g, w, SEQ_TRIES);
    if (lk.rc == KVSHM_ECORRUPT)
      return kvshm__fail(KVSHM_ECORRUPT,
                         "cache '%s' stripe %u holds a broken entry; this "
                         "handle may not repair it: a handle with write "
                         "permission repairs it at its next lock of the "
                         "stripe (or kvshm-cli repair %s)",
                         kv->name, w.s, kv->name);
    if (lk.rc == STORE) {
      struct look row, again;
      void *copy = NULL;
      int rc = store_look(kv, g, &lk, &row, &copy);
      if (rc)
        return rc;
      again = settled_look(kv, g, w, SEQ_TRIES);
      if (again.rc == STORE && again.gen == lk.gen &&
          again.moved == lk.moved) { /* nothing left memory meanwhile */
        if (row.rc == KVSHM_OK && g->buf && g->bufsize < row.vlen)
          row.rc = KVSHM_EBUFSIZE;
        else if (row.rc == KVSHM_OK && g->buf)
          memcpy(g->buf, copy, row.vlen);
        free(copy);
        return answer(g, &row);
      }
      free(copy);
      lk = again; /* memory decides now, or look again */
    }
    if (lk.rc != BUSY && lk.rc != STORE)
      return answer(g, &lk);
    /* Busy (a writer is changing the stripe), or keys moved while SQLite
     * was read: wait, as a locker would, up to the lock timeout.  A word
     * left odd by a writer that died stays odd until a handle that may
     * write locks the stripe and repairs it. */
    uint64_t now = kvshm__wall_ms();
    since = since ? since : now;
    if (now - since > kv->lock_timeout_ms)
      return kvshm__fail(KVSHM_ETIMEDOUT,
                         "cache '%s' stripe %u stayed busy for %u ms: a "
                         "writer holds it, or died holding it (then the "
                         "next handle with write permission to use the "
                         "stripe repairs it, or kvshm-cli repair %s)",
                         kv->name, w.s, kv->lock_timeout_ms, kv->name);
    if (spins > 16)
      sched_yield();
  }
}

int kvshm__seq_get(kvshm *kv, const struct kvshm__seq_get *g) {
  struct where w = {kvshm__stripe_of(kv, g->h), kvshm__bucket_of(kv, g->h)};
  kvshm__prefetch_home(kv, w.s, w.b);
  if (kv->flags & KVSHM__READER)
    return reader_get(kv, g, w);
  if (g->klen > KVSHM_HEAD_DATA(kv->slot_size))
    return KVSHM__ELOCK; /* a key that spans slots: rare, done locked */
  struct look lk = settled_look(kv, g, w, SEQ_TRIES);
  if (lk.rc == BUSY || lk.rc == KVSHM__ELOCK)
    return KVSHM__ELOCK;
  if (g->draw) { /* count it where only this handle's shard is written */
    _Atomic uint64_t *c =
        (_Atomic uint64_t *)(lk.rc == KVSHM_ENOTFOUND ? &kv->shard->misses
                                                      : &kv->shard->hits);
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
  }
  return answer(g, &lk);
}
