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
 */
#include "store.h"

#define SEQ_TRIES 4  /* reads of a moving stripe before taking the lock */
#define SEQ_HOPS 64u /* chain length beyond which the lock decides */

#define LOAD32(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define LOAD64(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

/* What one optimistic look found, to be taken only if the stripe's word
 * stayed put. */
struct look {
  int rc;          /* OK, ENOTFOUND, EBUFSIZE, or KVSHM__ELOCK */
  uint32_t vlen;   /* the value's length (OK, EBUFSIZE) */
  uint32_t flags;  /* its flags word */
  uint64_t expiry; /* its expiry, ms, 0 = never */
};

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
  struct look lk = {KVSHM__ELOCK, 0, 0, 0};
  struct kvshm_stripe *st = kvshm__stripe(kv, s);
  /* A clear the stripe has not caught up with is done by its next locker. */
  if (LOAD64(st->clear_gen) != kvshm__clear_gen(kv) ||
      LOAD64(st->pclear_gen) !=
          __atomic_load_n(&kv->hdr->pclear_gen, __ATOMIC_ACQUIRE))
    return lk;
  uint32_t r = LOAD32(kvshm__buckets(kv, s)[w.b]);
  const struct kvshm_head *hd = NULL;
  for (uint32_t hops = 0; r; hops++) {
    if (!kvshm__ref_ok(kv, r) || hops >= SEQ_HOPS)
      return lk;
    hd = (const struct kvshm_head *)kvshm__slot(kv, s, r);
    if ((kvshm__state_load(hd) & KVSHM_KIND_MASK) != KVSHM_KIND_HEAD)
      return lk;
    if (LOAD32(hd->klen) == g->klen &&
        memcmp((const unsigned char *)hd + sizeof *hd, g->key, g->klen) == 0)
      break;
    r = LOAD32(hd->hnext);
  }
  if (!r) { /* not in memory: only a memory-only cache knows that is all */
    if (!kvshm__has_store(kv))
      lk.rc = KVSHM_ENOTFOUND;
    return lk;
  }
  uint16_t state = kvshm__state_load(hd);
  if (state & KVSHM_ST_TOMB) { /* deleted: newer than any SQLite row */
    lk.rc = KVSHM_ENOTFOUND;
    return lk;
  }
  lk.expiry = LOAD64(hd->expires_ms);
  if (lk.expiry && lk.expiry <= kvshm__now_ms(kv))
    return lk; /* expired: the locked get removes it */
  if (g->draw) {
    uint32_t lfu = LOAD32(hd->lfu);
    if (kvshm__lfu_next(lfu, kvshm__lfu_now_ms(kv), *g->draw) != lfu)
      return lk; /* the counter moves: a write, under the lock */
  }
  lk.vlen = LOAD32(hd->vlen);
  lk.flags = LOAD32(hd->flags);
  uint32_t check = LOAD32(hd->check);
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

int kvshm__seq_get(kvshm *kv, const struct kvshm__seq_get *g) {
  struct where w = {kvshm__stripe_of(kv, g->h), kvshm__bucket_of(kv, g->h)};
  if (g->klen > KVSHM_HEAD_DATA(kv->slot_size))
    return KVSHM__ELOCK; /* a key that spans slots: rare, done locked */
  kvshm__prefetch_home(kv, w.s, w.b);
  _Atomic uint32_t *q = kvshm__seq(kv, w.s);
  for (int t = 0; t < SEQ_TRIES; t++) {
    uint32_t v = atomic_load_explicit(q, memory_order_acquire);
    if (v & 1) { /* a holder is changing the stripe: let it finish */
      cpu_relax();
      continue;
    }
    struct look lk = look_up(kv, g, w);
    kvshm__hook(kv, KVSHM_TP_SEQ_LOOKED);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(q, memory_order_relaxed) != v)
      continue; /* changed while we read: what we read means nothing */
    if (lk.rc == KVSHM__ELOCK)
      return lk.rc;
    if (g->vlen && lk.rc != KVSHM_ENOTFOUND)
      *g->vlen = lk.vlen;
    if (g->flags && lk.rc != KVSHM_ENOTFOUND)
      *g->flags = lk.flags;
    if (g->expires_ms && lk.rc == KVSHM_OK)
      *g->expires_ms = lk.expiry;
    if (g->draw) { /* count it where only this handle's shard is written */
      _Atomic uint64_t *c =
          (_Atomic uint64_t *)(lk.rc == KVSHM_ENOTFOUND ? &kv->shard->misses
                                                        : &kv->shard->hits);
      atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
    }
    return lk.rc;
  }
  return KVSHM__ELOCK;
}
