/*
 * table.c - the fixed-slot table: finding, reading, writing and removing
 * entries inside one stripe.  Functions named *_locked expect the caller to
 * hold the stripe's lock (lock.c); the public operations (ops.c) take it.
 *
 * Every ref, length and link read from the segment is checked before use
 * (another process may have scribbled on it): a bad one makes the stripe be
 * repaired (lock.c), which drops the broken entry, and the operation returns
 * KVSHM_ECORRUPT.  Nothing read from shared memory is ever trusted to index
 * memory unchecked.
 */
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK_SEED 0x636865636b73756dull

int kvshm__scratch(kvshm *kv, size_t n) {
  if (n <= kv->scratch_size)
    return KVSHM_OK;
  size_t sz = kv->scratch_size ? kv->scratch_size : 256;
  while (sz < n)
    sz *= 2;
  unsigned char *p = realloc(kv->scratch, sz);
  if (!p)
    return -ENOMEM;
  kv->scratch = p;
  kv->scratch_size = sz;
  return KVSHM_OK;
}

static inline struct kvshm_head *head_at(kvshm *kv, uint32_t s, uint32_t r) {
  return (struct kvshm_head *)kvshm__slot(kv, s, r);
}

/* Walk entry data: call fn on each (pointer, length) piece from `off`. */
#define FOR_EACH_PIECE(kv, s, ref, off, len, P, N, BODY)                       \
  do {                                                                         \
    uint64_t off_ = (off), left_ = (len);                                      \
    uint32_t r_ = (ref);                                                       \
    unsigned char *slot_ = kvshm__slot(kv, s, r_);                             \
    size_t hdr_ = sizeof(struct kvshm_head);                                   \
    uint32_t next_ = ((struct kvshm_head *)slot_)->cnext;                      \
    while (left_) {                                                            \
      size_t cap_ = kv->slot_size - hdr_;                                      \
      if (off_ >= cap_) {                                                      \
        off_ -= cap_;                                                          \
      } else {                                                                 \
        size_t N = cap_ - off_ < left_ ? cap_ - off_ : left_;                  \
        unsigned char *P = slot_ + hdr_ + off_;                                \
        BODY;                                                                  \
        left_ -= N;                                                            \
        off_ = 0;                                                              \
        if (!left_)                                                            \
          break;                                                               \
      }                                                                        \
      if (!kvshm__ref_ok(kv, next_)) /* changed under us: stop short */        \
        break;                                                                 \
      slot_ = kvshm__slot(kv, s, next_);                                       \
      hdr_ = sizeof(struct kvshm_cont);                                        \
      next_ = ((struct kvshm_cont *)slot_)->cnext;                             \
    }                                                                          \
  } while (0)

void kvshm__entry_read_locked(kvshm *kv, uint32_t s, uint32_t ref, uint64_t off,
                              void *dst, uint64_t len) {
  unsigned char *d = dst;
  FOR_EACH_PIECE(kv, s, ref, off, len, p, n, {
    memcpy(d, p, n);
    d += n;
  });
}

/*
 * Copy entry ref's bytes from `from` on (0: key and value; klen: the value)
 * into dst and check the entry's checksum over the very bytes copied, so
 * that data another process changes while we copy it is never taken as
 * good.  klen, vlen, flags and check are the head's words, read once by the
 * caller.
 */
int kvshm__entry_copy_locked(kvshm *kv, uint32_t s, uint32_t ref, uint32_t klen,
                             uint32_t vlen, uint32_t flags, uint32_t check,
                             uint64_t from, void *dst) {
  uint64_t total = (uint64_t)klen + vlen, pos = 0;
  uint64_t h =
      CHECK_SEED ^ ((uint64_t)klen << 32 | vlen) ^ ((uint64_t)flags << 17);
  unsigned char *d = dst;
  if (from > total)
    return KVSHM_ECORRUPT;
  if (kvshm__scratch(kv, kv->slot_size))
    return -ENOMEM;
  FOR_EACH_PIECE(kv, s, ref, 0, total, p, n, {
    const unsigned char *src = p;
    if (pos >= from) { /* wanted whole: hash the copy */
      memcpy(d + (pos - from), p, n);
      src = d + (pos - from);
    } else if (pos + n > from) { /* not wanted, then wanted */
      memcpy(kv->scratch, p, n);
      memcpy(d, kv->scratch + (from - pos), pos + n - from);
      src = kv->scratch;
    }
    h = kvshm__sum(src, n, h);
    pos += n;
  });
  if (pos != total || (uint32_t)(h ^ (h >> 32)) != check)
    return KVSHM_ECORRUPT;
  return KVSHM_OK;
}

static uint32_t entry_checksum_locked(kvshm *kv, uint32_t s, uint32_t ref) {
  struct kvshm_head *hd = head_at(kv, s, ref);
  uint64_t total = (uint64_t)hd->klen + hd->vlen;
  uint64_t h = CHECK_SEED ^ ((uint64_t)hd->klen << 32 | hd->vlen) ^
               ((uint64_t)hd->flags << 17);
  FOR_EACH_PIECE(kv, s, ref, 0, total, p, n, { h = kvshm__sum(p, n, h); });
  return (uint32_t)(h ^ (h >> 32));
}

int kvshm__entry_check_locked(kvshm *kv, uint32_t s, uint32_t ref,
                              bool checksum) {
  struct kvshm_head *hd = head_at(kv, s, ref);
  if (hd->state & ~KVSHM_ST_KNOWN || hd->klen > KVSHM_KEY_MAX)
    return KVSHM_ECORRUPT;
  uint64_t need =
      kvshm__slots_for(kv->slot_size, (uint64_t)hd->klen + hd->vlen);
  if (need > kvshm__max_entry_slots(kv) && need > 1)
    return KVSHM_ECORRUPT;
  uint32_t c = hd->cnext;
  for (uint64_t i = 1; i < need; i++) {
    if (!kvshm__ref_ok(kv, c) || c == ref)
      return KVSHM_ECORRUPT;
    struct kvshm_cont *ct = (void *)kvshm__slot(kv, s, c);
    if ((ct->state & KVSHM_KIND_MASK) != KVSHM_KIND_CONT || ct->owner != ref)
      return KVSHM_ECORRUPT;
    c = ct->cnext;
  }
  if (c != KVSHM_NIL)
    return KVSHM_ECORRUPT;
  if (checksum && entry_checksum_locked(kv, s, ref) != hd->check)
    return KVSHM_ECORRUPT;
  return KVSHM_OK;
}

/* Found something broken while holding the lock: rebuild the stripe. */
int kvshm__corrupt_locked(kvshm *kv, uint32_t s, const char *what) {
  kvshm__repair_locked(kv, s);
  return kvshm__fail(KVSHM_ECORRUPT,
                     "cache '%s' stripe %u: %s; the stripe "
                     "was rebuilt without the broken entries",
                     kv->name, s, what);
}

/*
 * The free list is doubly linked through the free slots' head words:
 * hnext is the next free slot, cnext the previous one (0 at the head), so
 * that a write can take its home slot (kvshm__home_of) out of the middle.
 * All of it is derived: repair rebuilds it (lock.c).
 */
void kvshm__free_push_locked(kvshm *kv, uint32_t s, uint32_t r) {
  struct kvshm_stripe *st = kvshm__stripe(kv, s);
  struct kvshm_head *fr = head_at(kv, s, r);
  kvshm__state_store(fr, KVSHM_KIND_FREE);
  fr->hnext = st->free_head;
  fr->cnext = KVSHM_NIL;
  if (kvshm__ref_ok(kv, st->free_head))
    head_at(kv, s, st->free_head)->cnext = r;
  st->free_head = r;
  st->nfree++;
}
#define free_push_locked kvshm__free_push_locked

void kvshm__entry_free_locked(kvshm *kv, uint32_t s, uint32_t ref) {
  struct kvshm_stripe *st = kvshm__stripe(kv, s);
  struct kvshm_head *hd = head_at(kv, s, ref);
  uint32_t c = hd->cnext;
  st->entries--;
  st->bytes -= (uint64_t)hd->klen + hd->vlen;
  if (hd->state & KVSHM_ST_DIRTY && --st->dirty == 0)
    st->dirty_since_ms = 0;
  st->tombstones -= (hd->state & KVSHM_ST_TOMB) != 0;
  free_push_locked(kv, s, ref); /* the head first: then the entry is gone */
  kvshm__hook(kv, KVSHM_TP_FREE_HALF);
  /* Free only what is provably this entry's: a link out of range, a slot
   * that is not a continuation owned by it (or one freed already: a cycle)
   * ends the walk.  Slots left behind are leaked until the next repair,
   * which verify reports; nothing is touched out of bounds. */
  for (uint32_t steps = 0; c && steps < kv->nslots; steps++) {
    if (!kvshm__ref_ok(kv, c))
      break;
    struct kvshm_cont *ct = (void *)kvshm__slot(kv, s, c);
    if ((ct->state & KVSHM_KIND_MASK) != KVSHM_KIND_CONT || ct->owner != ref)
      break;
    uint32_t next = ct->cnext;
    free_push_locked(kv, s, c);
    c = next;
  }
}

uint64_t kvshm__key_hash(const void *key, size_t klen) {
  return kvshm__hash(key, klen, 0);
}
#define hash_key kvshm__key_hash

static uint32_t *bucket_of(kvshm *kv, uint32_t s, uint64_t h) {
  return &kvshm__buckets(kv, s)[kvshm__bucket_of(kv, h)];
}

uint32_t *kvshm__bucket_word(kvshm *kv, uint32_t s, uint64_t h) {
  return bucket_of(kv, s, h);
}

/*
 * Find key in stripe s.  On success *ref is its head (0 if absent) and
 * *link the bucket-chain word that points to it (or where to append).
 * Returns KVSHM_ECORRUPT (after repairing) if the chain is broken.
 */
int kvshm__find_locked(kvshm *kv, uint32_t s, uint64_t h, const void *key,
                       size_t klen, uint32_t *ref, uint32_t **link) {
  uint32_t *l = bucket_of(kv, s, h);
  uint32_t steps = 0;
  for (uint32_t r = *l; r; r = *l) {
    if (!kvshm__ref_ok(kv, r) || ++steps > kv->nslots)
      return kvshm__corrupt_locked(kv, s, "bucket chain leaves the stripe");
    struct kvshm_head *hd = head_at(kv, s, r);
    /* Ask for the slot's other cache lines now (key and value run into
     * them): their misses overlap the head's instead of following it. */
    for (uint32_t o = 64; o < kv->slot_size; o += 64)
      __builtin_prefetch((const char *)hd + o);
    if ((hd->state & KVSHM_KIND_MASK) != KVSHM_KIND_HEAD)
      return kvshm__corrupt_locked(kv, s, "bucket chain points at a non-entry");
    if (hd->klen == klen) {
      size_t hd_cap = KVSHM_HEAD_DATA(kv->slot_size);
      const unsigned char *k = (unsigned char *)hd + sizeof *hd;
      if (klen <= hd_cap) {
        if (memcmp(k, key, klen) == 0)
          goto found;
      } else {
        if (kvshm__entry_check_locked(kv, s, r, false))
          return kvshm__corrupt_locked(kv, s, "entry chain is broken");
        if (kvshm__scratch(kv, klen))
          return -ENOMEM;
        kvshm__entry_read_locked(kv, s, r, 0, kv->scratch, klen);
        if (memcmp(kv->scratch, key, klen) == 0)
          goto found;
      }
    }
    l = &hd->hnext;
    continue;
  found:
    *ref = r;
    *link = l;
    return KVSHM_OK;
  }
  *ref = KVSHM_NIL;
  *link = l;
  return KVSHM_OK;
}

void kvshm__entry_remove_locked(kvshm *kv, uint32_t s, uint32_t ref) {
  struct kvshm_head *hd = head_at(kv, s, ref);
  unsigned char *key = (unsigned char *)hd + sizeof *hd;
  if (hd->klen > KVSHM_HEAD_DATA(kv->slot_size) &&
      kvshm__scratch(kv, hd->klen) == 0) {
    kvshm__entry_read_locked(kv, s, ref, 0, kv->scratch, hd->klen);
    key = kv->scratch;
  }
  uint32_t *l = bucket_of(kv, s, hash_key(key, hd->klen));
  for (uint32_t steps = 0; *l && *l != ref && steps <= kv->nslots; steps++) {
    if (!kvshm__ref_ok(kv, *l))
      break; /* a broken chain: the next lookup through it repairs it */
    l = &head_at(kv, s, *l)->hnext;
  }
  if (*l == ref)
    *l = hd->hnext;
  kvshm__entry_free_locked(kv, s, ref);
}

/* Turn entry `ref` into a tombstone in place: one atomic store of its state,
 * so no slot is needed and a crash leaves either the entry or the
 * tombstone.  The reaper (or a spill) carries the delete to SQLite. */
void kvshm__tombstone_locked(kvshm *kv, uint32_t s, uint32_t ref,
                             uint64_t now) {
  struct kvshm_stripe *st = kvshm__stripe(kv, s);
  struct kvshm_head *hd = head_at(kv, s, ref);
  uint16_t state = hd->state;
  if (!(state & KVSHM_ST_DIRTY) && st->dirty++ == 0)
    st->dirty_since_ms = now;
  if (!(state & KVSHM_ST_TOMB))
    st->tombstones++;
  /* A new version: a write-behind batch holding the live value must not
   * take this for what it wrote (writeback.c compares versions). */
  hd->version = ++st->version;
  kvshm__state_store(hd, (uint16_t)(state | KVSHM_ST_TOMB | KVSHM_ST_DIRTY));
}

bool kvshm__expire_locked(kvshm *kv, uint32_t s, uint32_t ref, uint32_t *link) {
  struct kvshm_head *hd = head_at(kv, s, ref);
  kvshm__stripe(kv, s)->expirations++;
  /* A dirty entry of a SQLite cache may hide an older copy in SQLite: that
   * copy must go too, or it would come back.  A clean one's copy is this
   * very version, expired there as well. */
  if (kvshm__has_store(kv) && (hd->state & KVSHM_ST_DIRTY)) {
    kvshm__tombstone_locked(kv, s, ref, kvshm__now_ms(kv));
    return false;
  }
  /* It leaves memory: a fault_in reading SQLite unlocked must not promote
   * an older row over it (gen_evict, see fault_in). */
  kvshm__stripe(kv, s)->gen_evict++;
  if (link) {
    *link = hd->hnext;
    kvshm__entry_free_locked(kv, s, ref);
  } else {
    kvshm__entry_remove_locked(kv, s, ref);
  }
  return true;
}

/* Take one slot off the free list (or the never-used tail). */
static uint32_t alloc_slot_locked(kvshm *kv, uint32_t s) {
  struct kvshm_stripe *st = kvshm__stripe(kv, s);
  uint32_t r = st->free_head;
  if (r) {
    st->free_head = head_at(kv, s, r)->hnext;
    if (kvshm__ref_ok(kv, st->free_head))
      head_at(kv, s, st->free_head)->cnext = KVSHM_NIL;
  } else {
    r = ++st->fresh;
  }
  st->nfree--;
  return r;
}

/*
 * Take slot r, the new entry's home, if it is free: out of the free list
 * when its links agree with their neighbours' (else it is left alone: a
 * damaged list is for repair), or out of the never-used tail, whose slots
 * before it join the free list.  False if it is not to be had.
 */
static bool take_home_locked(kvshm *kv, uint32_t s, uint32_t r) {
  struct kvshm_stripe *st = kvshm__stripe(kv, s);
  struct kvshm_head *fr = head_at(kv, s, r);
  if ((fr->state & KVSHM_KIND_MASK) != KVSHM_KIND_FREE)
    return false;
  if (r > st->fresh) { /* never used: hand out the tail up to it */
    while (st->fresh + 1 < r) {
      free_push_locked(kv, s, ++st->fresh);
      st->nfree--; /* it was counted free already, in the tail */
    }
    st->fresh = r;
    st->nfree--;
    return true;
  }
  uint32_t prev = fr->cnext, next = fr->hnext;
  if (prev ? !kvshm__ref_ok(kv, prev) || head_at(kv, s, prev)->hnext != r ||
                 (head_at(kv, s, prev)->state & KVSHM_KIND_MASK) !=
                     KVSHM_KIND_FREE
           : st->free_head != r)
    return false;
  if (next &&
      (!kvshm__ref_ok(kv, next) || head_at(kv, s, next)->cnext != r ||
       (head_at(kv, s, next)->state & KVSHM_KIND_MASK) != KVSHM_KIND_FREE))
    return false;
  if (prev)
    head_at(kv, s, prev)->hnext = next;
  else
    st->free_head = next;
  if (next)
    head_at(kv, s, next)->cnext = prev;
  st->nfree--;
  return true;
}

/* Check the stripe's free-list bookkeeping before relying on it. */
static bool free_list_sane(kvshm *kv, uint32_t s, uint32_t need) {
  struct kvshm_stripe *st = kvshm__stripe(kv, s);
  if (st->fresh > kv->nslots || st->nfree > kv->nslots)
    return false;
  /* r walks the slots this write will take; fast walks twice as fast, and
   * meets r if they loop (a slot listed twice would be handed out twice). */
  uint32_t r = st->free_head, fast = r, i = 0;
  for (; i < need && r; i++) {
    if (!kvshm__ref_ok(kv, r))
      return false;
    struct kvshm_head *fr = head_at(kv, s, r);
    if ((fr->state & KVSHM_KIND_MASK) != KVSHM_KIND_FREE)
      return false;
    r = fr->hnext;
    for (int step = 0; step < 2 && fast; step++)
      fast = kvshm__ref_ok(kv, fast) ? head_at(kv, s, fast)->hnext : 0;
    if (r && r == fast)
      return false;
  }
  /* The listed slots plus the never-used tail must really hold `need`
   * (nfree may lie): else alloc_slot_locked would run past the stripe. */
  return i + (kv->nslots - st->fresh) >= need;
}

/*
 * Write a new entry for req into fresh slots and make it replace `old` (0 if
 * none), copy-on-write: the new entry becomes visible with one release store
 * of its state word; only then is the old one unlinked and freed.
 */
int kvshm__write_locked(kvshm *kv, uint32_t s, uint64_t h, uint32_t old,
                        uint32_t *link, const struct kvshm__write_req *req,
                        uint64_t now) {
  struct kvshm_stripe *st = kvshm__stripe(kv, s);
  uint64_t total = (uint64_t)req->klen + req->vlen;
  uint64_t need = kvshm__slots_for(kv->slot_size, total);
  if (need > kvshm__max_entry_slots(kv))
    return kvshm__fail(KVSHM_ETOOBIG,
                       "entry of %llu bytes needs %llu slots; "
                       "one entry may use at most %u (half a stripe): raise "
                       "memory_size or slot_size, or lower stripes",
                       (unsigned long long)total, (unsigned long long)need,
                       kvshm__max_entry_slots(kv));
  if (st->nfree < need) {
    int rc = kvshm__evict_locked(kv, s, (uint32_t)need, old, now);
    if (rc)
      return rc;
    /* Eviction may have reshaped the chain: find the link again. */
    uint32_t again;
    rc = kvshm__find_locked(kv, s, h, req->key, req->klen, &again, &link);
    if (rc)
      return rc;
    old = again;
  }
  if (!free_list_sane(kv, s, (uint32_t)need))
    return kvshm__corrupt_locked(kv, s, "free list is broken");
  uint32_t refs_small[8] = {0};
  uint32_t *refs = need <= 8 ? refs_small : malloc(need * sizeof *refs);
  if (!refs)
    return -ENOMEM;
  uint32_t home = kvshm__home_of(kv, kvshm__bucket_of(kv, h));
  refs[0] = take_home_locked(kv, s, home) ? home : alloc_slot_locked(kv, s);
  for (uint64_t i = 1; i < need; i++)
    refs[i] = alloc_slot_locked(kv, s);
  kvshm__hook(kv, KVSHM_TP_SET_ALLOCATED);
  uint32_t head = refs[0];
  /* Continuation slots, from the last one back. */
  size_t hcap = KVSHM_HEAD_DATA(kv->slot_size);
  size_t ccap = KVSHM_CONT_DATA(kv->slot_size);
  const unsigned char *kp = req->key, *vp = req->val;
  for (uint64_t i = 0; i < need; i++) {
    unsigned char *slot = kvshm__slot(kv, s, refs[i]);
    size_t hdr = i == 0 ? sizeof(struct kvshm_head) : sizeof(struct kvshm_cont);
    size_t cap = i == 0 ? hcap : ccap;
    uint64_t start = i == 0 ? 0 : hcap + (i - 1) * ccap;
    /* Copy [start, start+cap) of key||value. */
    size_t done = 0;
    while (done < cap && start + done < total) {
      uint64_t pos = start + done;
      size_t n;
      if (pos < req->klen) {
        n = req->klen - pos < cap - done ? req->klen - pos : cap - done;
        memcpy(slot + hdr + done, kp + pos, n);
      } else {
        uint64_t vpos = pos - req->klen;
        n = req->vlen - vpos < cap - done ? req->vlen - vpos : cap - done;
        memcpy(slot + hdr + done, vp + vpos, n);
      }
      done += n;
    }
    if (i > 0) {
      struct kvshm_cont *ct = (void *)slot;
      ct->pad = 0;
      ct->owner = head;
      ct->cnext = i + 1 < need ? refs[i + 1] : KVSHM_NIL;
      kvshm__state_store(ct, KVSHM_KIND_CONT);
    }
    if (i == need / 2)
      kvshm__hook(kv, KVSHM_TP_SET_HALF_WRITTEN);
  }
  struct kvshm_head *hd = head_at(kv, s, head);
  hd->klen = (uint16_t)req->klen;
  hd->cnext = need > 1 ? refs[1] : KVSHM_NIL;
  hd->vlen = (uint32_t)req->vlen;
  hd->flags = req->flags;
  hd->lfu = req->lfu;
  hd->expires_ms = req->expires_ms;
  hd->hnext = KVSHM_NIL;
  hd->check = entry_checksum_locked(kv, s, head);
  hd->version = ++st->version;
  if (refs != refs_small)
    free(refs);
  kvshm__hook(kv, KVSHM_TP_SET_BEFORE_COMMIT);
  kvshm__state_store(hd, (uint16_t)(KVSHM_KIND_HEAD | req->state_bits));
  kvshm__hook(kv, KVSHM_TP_SET_COMMITTED);
  /* Link the new entry where the old one was (or at the chain's end). */
  st->entries++;
  st->bytes += total;
  if (req->state_bits & KVSHM_ST_DIRTY && st->dirty++ == 0)
    st->dirty_since_ms = now;
  st->tombstones += (req->state_bits & KVSHM_ST_TOMB) != 0;
  if (old) {
    hd->hnext = head_at(kv, s, old)->hnext;
    *link = head;
    kvshm__hook(kv, KVSHM_TP_SET_LINKED);
    kvshm__entry_free_locked(kv, s, old);
  } else {
    /* *link is the chain's end, or, when an expired entry was just freed in
     * place (live_locked), the rest of the chain: keep that behind us. */
    hd->hnext = *link;
    *link = head;
  }
  return KVSHM_OK;
}

void kvshm__stripe_clear_locked(kvshm *kv, uint32_t s) {
  struct kvshm_stripe *st = kvshm__stripe(kv, s);
  /* Free every head first (each release store removes one entry), then
   * reset the allocator: a crash in between is repaired like any other. */
  uint32_t limit = st->fresh <= kv->nslots ? st->fresh : kv->nslots;
  for (uint32_t r = 1; r <= limit; r++)
    kvshm__state_store(kvshm__slot(kv, s, r), KVSHM_KIND_FREE);
  memset(kvshm__buckets(kv, s), 0, (size_t)kv->nbuckets * 4);
  for (uint32_t r = 1; r <= limit; r++)
    head_at(kv, s, r)->hnext = KVSHM_NIL;
  st->free_head = KVSHM_NIL;
  st->fresh = 0;
  st->nfree = kv->nslots;
  st->entries = st->dirty = st->tombstones = 0;
  st->dirty_since_ms = 0;
  st->bytes = 0;
  st->gen_evict++;
}

/* ---- test hooks ---- */

void kvshm_test_set_hook(kvshm *kv, kvshm_test_hook_fn fn, void *ctx) {
  kv->hook = fn;
  kv->hook_ctx = ctx;
}

void kvshm_test_set_clock(kvshm *kv, kvshm_test_clock_fn fn, void *ctx) {
  kv->clock = fn;
  kv->clock_ctx = ctx;
}

size_t kvshm_test_slot_offset(kvshm *kv, uint32_t stripe, uint32_t index) {
  return (size_t)(kvshm__slot(kv, stripe, index + 1) - kv->base);
}

size_t kvshm_test_home_offset(kvshm *kv, const void *key, size_t klen) {
  uint64_t h = hash_key(key, klen);
  uint32_t s = kvshm__stripe_of(kv, h);
  return (
      size_t)(kvshm__slot(kv, s, kvshm__home_of(kv, kvshm__bucket_of(kv, h))) -
              kv->base);
}

uint32_t kvshm_test_stripe_of(kvshm *kv, const void *key, size_t klen) {
  return kvshm__stripe_of(kv, hash_key(key, klen));
}
