/*
 * table.c - the fixed-slot table: finding, reading, writing and removing
 * entries inside one stripe.  Functions named *_locked expect the caller to
 * hold the stripe's lock (lock.c); the public operations at the bottom take
 * it.
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

static uint32_t entry_checksum_locked(kvshm *kv, uint32_t s, uint32_t ref) {
  struct kvshm_head *hd = head_at(kv, s, ref);
  uint64_t total = (uint64_t)hd->klen + hd->vlen;
  uint64_t h = CHECK_SEED ^ ((uint64_t)hd->klen << 32 | hd->vlen) ^
               ((uint64_t)hd->flags << 17);
  FOR_EACH_PIECE(kv, s, ref, 0, total, p, n, { h = kvshm__hash(p, n, h); });
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
static int corrupt_locked(kvshm *kv, uint32_t s, const char *what) {
  kvshm__repair_locked(kv, s);
  return kvshm__fail(KVSHM_ECORRUPT,
                     "cache '%s' stripe %u: %s; the stripe "
                     "was rebuilt without the broken entries",
                     kv->name, s, what);
}

static void free_push_locked(kvshm *kv, uint32_t s, uint32_t r) {
  struct kvshm_stripe *st = kvshm__stripe(kv, s);
  struct kvshm_head *fr = head_at(kv, s, r);
  kvshm__state_store(fr, KVSHM_KIND_FREE);
  fr->hnext = st->free_head;
  st->free_head = r;
  st->nfree++;
}

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

static uint32_t stripe_of(kvshm *kv, uint64_t h) {
  return (uint32_t)h & (kv->nstripes - 1);
}

static uint32_t *bucket_of(kvshm *kv, uint32_t s, uint64_t h) {
  return &kvshm__buckets(kv, s)[(uint32_t)(h >> 32) & (kv->nbuckets - 1)];
}

/*
 * Find key in stripe s.  On success *ref is its head (0 if absent) and
 * *link the bucket-chain word that points to it (or where to append).
 * Returns KVSHM_ECORRUPT (after repairing) if the chain is broken.
 */
static int find_locked(kvshm *kv, uint32_t s, uint64_t h, const void *key,
                       size_t klen, uint32_t *ref, uint32_t **link) {
  uint32_t *l = bucket_of(kv, s, h);
  uint32_t steps = 0;
  for (uint32_t r = *l; r; r = *l) {
    if (!kvshm__ref_ok(kv, r) || ++steps > kv->nslots)
      return corrupt_locked(kv, s, "bucket chain leaves the stripe");
    struct kvshm_head *hd = head_at(kv, s, r);
    /* Ask for the slot's other cache lines now (key and value run into
     * them): their misses overlap the head's instead of following it. */
    for (uint32_t o = 64; o < kv->slot_size; o += 64)
      __builtin_prefetch((const char *)hd + o);
    if ((hd->state & KVSHM_KIND_MASK) != KVSHM_KIND_HEAD)
      return corrupt_locked(kv, s, "bucket chain points at a non-entry");
    if (hd->klen == klen) {
      size_t hd_cap = KVSHM_HEAD_DATA(kv->slot_size);
      const unsigned char *k = (unsigned char *)hd + sizeof *hd;
      if (klen <= hd_cap) {
        if (memcmp(k, key, klen) == 0)
          goto found;
      } else {
        if (kvshm__entry_check_locked(kv, s, r, false))
          return corrupt_locked(kv, s, "entry chain is broken");
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

static bool expired(const struct kvshm_head *hd, uint64_t now) {
  return hd->expires_ms && hd->expires_ms <= now;
}

/* Turn entry `ref` into a tombstone in place: one atomic store of its state,
 * so no slot is needed and a crash leaves either the entry or the
 * tombstone.  The reaper (or a spill) carries the delete to SQLite. */
static void tombstone_locked(kvshm *kv, uint32_t s, uint32_t ref,
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
    tombstone_locked(kv, s, ref, kvshm__now_ms(kv));
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
  } else {
    r = ++st->fresh;
  }
  st->nfree--;
  return r;
}

/* Check the stripe's free-list bookkeeping before relying on it. */
static bool free_list_sane(kvshm *kv, uint32_t s, uint32_t need) {
  struct kvshm_stripe *st = kvshm__stripe(kv, s);
  if (st->fresh > kv->nslots || st->nfree > kv->nslots)
    return false;
  uint32_t r = st->free_head, i = 0;
  for (; i < need && r; i++) {
    if (!kvshm__ref_ok(kv, r))
      return false;
    struct kvshm_head *fr = head_at(kv, s, r);
    if ((fr->state & KVSHM_KIND_MASK) != KVSHM_KIND_FREE)
      return false;
    r = fr->hnext;
  }
  /* The listed slots plus the never-used tail must really hold `need`
   * (nfree may lie): else alloc_slot_locked would run past the stripe. */
  return i + (kv->nslots - st->fresh) >= need;
}

struct write_req {
  const void *key;
  size_t klen;
  const void *val;
  size_t vlen;
  uint32_t flags;
  uint64_t expires_ms;
  uint16_t state_bits; /* ST_* bits of the new entry */
  uint32_t lfu;
};

/*
 * Write a new entry for req into fresh slots and make it replace `old` (0 if
 * none), copy-on-write: the new entry becomes visible with one release store
 * of its state word; only then is the old one unlinked and freed.
 */
static int write_locked(kvshm *kv, uint32_t s, uint64_t h, uint32_t old,
                        uint32_t *link, const struct write_req *req,
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
    int rc = kvshm__evict_locked(kv, s, (uint32_t)need, old, false, now);
    if (rc)
      return rc;
    /* Eviction may have reshaped the chain: find the link again. */
    uint32_t again;
    rc = find_locked(kv, s, h, req->key, req->klen, &again, &link);
    if (rc)
      return rc;
    old = again;
  }
  if (!free_list_sane(kv, s, (uint32_t)need))
    return corrupt_locked(kv, s, "free list is broken");
  uint32_t refs_small[8] = {0};
  uint32_t *refs = need <= 8 ? refs_small : malloc(need * sizeof *refs);
  if (!refs)
    return -ENOMEM;
  for (uint64_t i = 0; i < need; i++)
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

static int check_key(const void *key, size_t klen) {
  if (!key && klen)
    return kvshm__fail(KVSHM_EINVAL, "key is NULL");
  if (klen > KVSHM_KEY_MAX)
    return kvshm__fail(KVSHM_ETOOBIG, "key is %zu bytes; the limit is %u", klen,
                       KVSHM_KEY_MAX);
  return KVSHM_OK;
}

/* Common start of every keyed operation: hash, lock, find. */
struct op;
static bool tomb_locked(kvshm *kv, const struct op *op);
struct op {
  uint64_t h;
  uint32_t s;
  uint32_t ref;
  uint32_t *link;
  uint64_t now;
};

static int op_begin(kvshm *kv, const void *key, size_t klen, struct op *op) {
  int rc = check_key(key, klen);
  if (rc)
    return rc;
  if (!key)
    key = ""; /* NULL with length 0: memcmp(p, NULL, 0) is undefined */
  op->h = hash_key(key, klen);
  op->s = stripe_of(kv, op->h);
  /* Start the bucket's cache miss before the lock's atomic op. */
  __builtin_prefetch(bucket_of(kv, op->s, op->h));
  rc = kvshm__lock(kv, op->s);
  if (rc)
    return rc;
  rc = find_locked(kv, op->s, op->h, key, klen, &op->ref, &op->link);
  if (rc) {
    kvshm__unlock(kv, op->s);
    return rc;
  }
  op->now = 0;
  return KVSHM_OK;
}

/*
 * Is the found entry live?  Removes it (counting an expiration) if its TTL
 * passed, unless the handle is read-only.  Tombstones are never live.
 */
static bool live_locked(kvshm *kv, struct op *op) {
  if (!op->ref)
    return false;
  struct kvshm_head *hd = head_at(kv, op->s, op->ref);
  if (hd->state & KVSHM_ST_TOMB)
    return false;
  if (!hd->expires_ms)
    return true;
  if (!op->now)
    op->now = kvshm__now_ms(kv);
  if (!expired(hd, op->now))
    return true;
  /* Freed: the link now leads past it.  Tombstoned: it stays, and a set
   * replaces it like any entry. */
  if (!(kv->flags & KVSHM_RDONLY) &&
      kvshm__expire_locked(kv, op->s, op->ref, op->link))
    op->ref = KVSHM_NIL;
  return false;
}

bool kvshm__clearing(kvshm *kv, uint64_t now, uint64_t gen) {
  uint64_t t = atomic_load((_Atomic uint64_t *)&kv->hdr->clear_started_ms);
  return (gen & 1) && now < t + KVSHM_CLEAR_MAX_MS;
}

/* Is the found entry a tombstone (the key was deleted)? */
static bool tomb_locked(kvshm *kv, const struct op *op) {
  return op->ref && (head_at(kv, op->s, op->ref)->state & KVSHM_ST_TOMB);
}

/*
 * The key missed in memory: look in SQLite and, if it is there, promote it
 * into memory as a clean entry.  Called without the lock.  The SQLite read
 * happens unlocked, so the promotion is skipped and the read repeated if
 * anything left the stripe meanwhile (gen_evict): the value read might have
 * been superseded by one that was written back and evicted since.
 * Returns KVSHM_OK (the key is in memory now, or appeared there meanwhile),
 * KVSHM_ENOTFOUND, or an error.
 */
static int fault_in(kvshm *kv, const void *key, size_t klen) {
  struct kvshm_row row;
  for (int attempt = 0; attempt < 64; attempt++) {
    struct op op;
    int rc = op_begin(kv, key, klen, &op);
    if (rc)
      return rc;
    if (live_locked(kv, &op) || tomb_locked(kv, &op)) {
      rc = tomb_locked(kv, &op) ? KVSHM_ENOTFOUND : KVSHM_OK;
      kvshm__unlock(kv, op.s);
      return rc;
    }
    struct kvshm_stripe *st = kvshm__stripe(kv, op.s);
    uint32_t gen = st->gen_evict;
    kvshm__unlock(kv, op.s);
    uint64_t now = kvshm__now_ms(kv);
    uint64_t clear0 = atomic_load_explicit(
        (_Atomic uint64_t *)&kv->hdr->clear_gen, memory_order_acquire);
    if (kvshm__clearing(kv, now, clear0))
      return KVSHM_ENOTFOUND; /* a clear is emptying SQLite: its rows are
                                 as good as gone, never promote them */
    rc = kvshm__store_fetch(kv, key, klen, now, &row);
    if (rc)
      return rc;
    /* row.val points into kv->scratch, which find_locked and eviction
     * reuse for long keys: promote from a private copy. */
    void *val = malloc(row.vlen ? row.vlen : 1);
    if (!val)
      return -ENOMEM;
    memcpy(val, row.val, row.vlen);
    row.val = val;
    rc = op_begin(kv, key, klen, &op);
    if (rc) {
      free(val);
      return rc;
    }
    if (live_locked(kv, &op) || tomb_locked(kv, &op)) {
      rc = tomb_locked(kv, &op) ? KVSHM_ENOTFOUND : KVSHM_OK;
    } else if (st->gen_evict != gen ||
               atomic_load_explicit((_Atomic uint64_t *)&kv->hdr->clear_gen,
                                    memory_order_acquire) != clear0) {
      rc = 1; /* something left memory: the row may be stale, read again */
    } else {
      struct write_req req = {
          key,       klen,           row.val,         row.vlen,
          row.flags, row.expires_ms, KVSHM_ST_STORED, kvshm__lfu_new(kv, now)};
      rc = write_locked(kv, op.s, op.h, op.ref, op.link, &req, now);
    }
    kvshm__unlock(kv, op.s);
    free(val);
    if (rc != 1)
      return rc;
  }
  return kvshm__fail(KVSHM_ETIMEDOUT, "key kept leaving memory while it was "
                                      "read from SQLite; try again");
}

/* Copy out a live entry found by op (lock held). */
static int read_out_locked(kvshm *kv, struct op *op, size_t klen, void *buf,
                           size_t bufsize, size_t *vlen, uint32_t *flags) {
  struct kvshm_head *hd = head_at(kv, op->s, op->ref);
  /* One pass: lengths the chain cannot hold are corruption (not EBUFSIZE),
   * and a value about to be copied must match its checksum.  A NULL buf is
   * a size query, whatever bufsize says. */
  bool copy = buf && bufsize >= hd->vlen;
  if (kvshm__entry_check_locked(kv, op->s, op->ref, copy))
    return corrupt_locked(
        kv, op->s, copy ? "entry fails its checksum" : "entry chain is broken");
  if (vlen)
    *vlen = hd->vlen;
  if (flags)
    *flags = hd->flags;
  if (buf) {
    if (!copy)
      return KVSHM_EBUFSIZE;
    kvshm__entry_read_locked(kv, op->s, op->ref, klen, buf, hd->vlen);
  }
  if (!(kv->flags & KVSHM_RDONLY)) {
    uint64_t now = op->now ? op->now : kvshm__lfu_now_ms(kv);
    uint32_t lfu = kvshm__lfu_touch(kv, hd->lfu, now);
    if (lfu != hd->lfu) /* mostly equal: leave the slot's line clean */
      hd->lfu = lfu;
  }
  return KVSHM_OK;
}

int kvshm_get(kvshm *kv, const void *key, size_t klen, void *buf,
              size_t bufsize, size_t *vlen, uint32_t *flags) {
  bool rdonly = kv->flags & KVSHM_RDONLY, faulted = false;
  kvshm__reaper_poll(kv);
  for (int pass = 0;; pass++) {
    struct op op;
    int rc = op_begin(kv, key, klen, &op);
    if (rc)
      return rc;
    struct kvshm_stripe *st = kvshm__stripe(kv, op.s);
    if (live_locked(kv, &op)) {
      rc = read_out_locked(kv, &op, klen, buf, bufsize, vlen, flags);
      if (!rdonly && rc != KVSHM_ECORRUPT) {
        st->hits += !faulted;
        st->store_hits += faulted;
      }
      kvshm__unlock(kv, op.s);
      return rc;
    }
    st->misses += !rdonly && !faulted;
    bool fall = kvshm__has_store(kv) && !tomb_locked(kv, &op) && pass < 4;
    kvshm__unlock(kv, op.s);
    if (!fall)
      return KVSHM_ENOTFOUND;
    if (rdonly) { /* a read-only handle reads SQLite but never promotes */
      struct kvshm_row row;
      rc = kvshm__store_fetch(kv, key, klen, kvshm__now_ms(kv), &row);
      if (rc)
        return rc;
      if (vlen)
        *vlen = row.vlen;
      if (flags)
        *flags = row.flags;
      if ((buf || bufsize) && bufsize < row.vlen)
        return KVSHM_EBUFSIZE;
      if (buf && row.vlen)
        memcpy(buf, row.val, row.vlen);
      return KVSHM_OK;
    }
    faulted = true; /* this get's miss is counted */
    rc = fault_in(kv, key, klen);
    if (rc)
      return rc;
  }
}

int kvshm_in_memory(kvshm *kv, const void *key, size_t klen) {
  struct op op;
  int rc = op_begin(kv, key, klen, &op);
  if (rc)
    return rc;
  rc = live_locked(kv, &op) ? KVSHM_OK : KVSHM_ENOTFOUND;
  kvshm__unlock(kv, op.s);
  return rc;
}

int kvshm__memory_state(kvshm *kv, const void *key, size_t klen) {
  struct op op;
  int rc = op_begin(kv, key, klen, &op);
  if (rc)
    return rc;
  rc = live_locked(kv, &op) ? 1 : tomb_locked(kv, &op) ? 2 : 0;
  kvshm__unlock(kv, op.s);
  return rc;
}

int kvshm_has(kvshm *kv, const void *key, size_t klen) {
  struct op op;
  int rc = op_begin(kv, key, klen, &op);
  if (rc)
    return rc;
  bool live = live_locked(kv, &op), tomb = tomb_locked(kv, &op);
  kvshm__unlock(kv, op.s);
  if (live)
    return KVSHM_OK;
  if (tomb || !kvshm__has_store(kv))
    return KVSHM_ENOTFOUND;
  struct kvshm_row row;
  return kvshm__store_fetch(kv, key, klen, kvshm__now_ms(kv), &row);
}

static uint64_t expiry_for(kvshm *kv, int64_t ttl_ms, uint64_t now) {
  if (ttl_ms == KVSHM_TTL_DEFAULT)
    return kv->default_ttl_ms ? now + kv->default_ttl_ms : 0;
  return ttl_ms == 0 ? 0 : now + (uint64_t)ttl_ms;
}

/* A new entry of a SQLite cache is dirty, and SQLite may hold an older
 * copy of its key (we never know it does not without asking), so it is
 * marked stored: deleting it must leave a tombstone. */
static uint16_t new_state_bits(kvshm *kv) {
  return kvshm__has_store(kv) ? KVSHM_ST_DIRTY | KVSHM_ST_STORED : 0;
}

/* Operations that need the current value or its existence first bring a
 * key that lives only in SQLite back into memory. */
static int fault_in_for_write(kvshm *kv, const void *key, size_t klen) {
  if (!kvshm__has_store(kv))
    return KVSHM_OK;
  int rc = fault_in(kv, key, klen);
  return rc == KVSHM_ENOTFOUND ? KVSHM_OK : rc;
}

int kvshm_set(kvshm *kv, const void *key, size_t klen, const void *val,
              size_t vlen, uint32_t flags, int64_t ttl_ms, unsigned opts) {
  kvshm__clear_detail();
  if (kv->flags & KVSHM_RDONLY)
    return KVSHM_ERDONLY;
  if (!val && vlen)
    return kvshm__fail(KVSHM_EINVAL, "value is NULL");
  if (ttl_ms < KVSHM_TTL_DEFAULT)
    return kvshm__fail(KVSHM_EINVAL, "ttl_ms %" PRId64 " is negative", ttl_ms);
  if (opts & ~(KVSHM_NX | KVSHM_XX | KVSHM_KEEPTTL) ||
      (opts & (KVSHM_NX | KVSHM_XX)) == (KVSHM_NX | KVSHM_XX))
    return kvshm__fail(KVSHM_EINVAL,
                       "bad set options 0x%x (NX and XX "
                       "exclude each other)",
                       opts);
  if (vlen > UINT32_MAX)
    return kvshm__fail(KVSHM_ETOOBIG, "value of %zu bytes is over 4 GiB", vlen);
  int rc = check_key(key, klen);
  if (!rc && opts)
    rc = fault_in_for_write(kv, key, klen);
  kvshm__reaper_poll(kv);
  struct op op;
  if (!rc)
    rc = op_begin(kv, key, klen, &op);
  if (rc)
    return rc;
  bool present = live_locked(kv, &op);
  if ((opts & KVSHM_NX) && present)
    rc = KVSHM_EEXIST;
  else if ((opts & KVSHM_XX) && !present)
    rc = KVSHM_ENOTFOUND;
  if (!rc) {
    if (!op.now)
      op.now = kvshm__now_ms(kv);
    struct write_req req = {key,
                            klen,
                            val,
                            vlen,
                            flags,
                            0,
                            new_state_bits(kv),
                            kvshm__lfu_new(kv, op.now)};
    if ((opts & KVSHM_KEEPTTL) && present)
      req.expires_ms = head_at(kv, op.s, op.ref)->expires_ms;
    else
      req.expires_ms = expiry_for(kv, ttl_ms, op.now);
    if (present)
      req.lfu = head_at(kv, op.s, op.ref)->lfu; /* popularity is the key's */
    rc = write_locked(kv, op.s, op.h, op.ref, op.link, &req, op.now);
    if (!rc)
      kvshm__stripe(kv, op.s)->sets++;
  }
  kvshm__unlock(kv, op.s);
  return rc;
}

int kvshm_del(kvshm *kv, const void *key, size_t klen) {
  kvshm__clear_detail();
  if (kv->flags & KVSHM_RDONLY)
    return KVSHM_ERDONLY;
  kvshm__reaper_poll(kv);
  /* Pass 0 looks in memory; only a miss in a SQLite cache asks SQLite, and
   * pass 1 then writes a tombstone for a key that lives only there. */
  for (int pass = 0;; pass++) {
    struct op op;
    int rc = op_begin(kv, key, klen, &op);
    if (rc)
      return rc;
    struct kvshm_stripe *st = kvshm__stripe(kv, op.s);
    if (live_locked(kv, &op)) {
      if (kvshm__has_store(kv)) {
        tombstone_locked(kv, op.s, op.ref, kvshm__now_ms(kv));
      } else {
        *op.link = head_at(kv, op.s, op.ref)->hnext;
        kvshm__entry_free_locked(kv, op.s, op.ref);
      }
      st->deletes++;
    } else if (tomb_locked(kv, &op) || !kvshm__has_store(kv)) {
      rc = KVSHM_ENOTFOUND;
    } else if (pass == 1) {
      op.now = kvshm__now_ms(kv);
      struct write_req req = {key,
                              klen,
                              "",
                              0,
                              0,
                              0,
                              KVSHM_ST_TOMB | KVSHM_ST_DIRTY | KVSHM_ST_STORED,
                              kvshm__lfu_new(kv, op.now)};
      rc = write_locked(kv, op.s, op.h, op.ref, op.link, &req, op.now);
      st->deletes += rc == KVSHM_OK;
    } else {
      kvshm__unlock(kv, op.s);
      struct kvshm_row row;
      rc = kvshm__store_fetch(kv, key, klen, kvshm__now_ms(kv), &row);
      if (rc)
        return rc; /* KVSHM_ENOTFOUND: in neither tier */
      continue;
    }
    kvshm__unlock(kv, op.s);
    return rc;
  }
}

/* Parse a decimal int64 value ("-12"), strictly. */
static int parse_i64(const unsigned char *p, size_t n, int64_t *out) {
  if (n == 0 || n > 20)
    return KVSHM_ENOTINT;
  size_t i = 0;
  bool neg = p[0] == '-';
  if (neg && n == 1)
    return KVSHM_ENOTINT;
  i = neg;
  uint64_t v = 0;
  for (; i < n; i++) {
    if (p[i] < '0' || p[i] > '9')
      return KVSHM_ENOTINT;
    uint64_t d = p[i] - '0';
    if (v > (UINT64_MAX - d) / 10)
      return KVSHM_ENOTINT;
    v = v * 10 + d;
  }
  if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX)
    return KVSHM_ENOTINT;
  *out = neg ? (int64_t)(0 - v) : (int64_t)v;
  return KVSHM_OK;
}

int kvshm_incr(kvshm *kv, const void *key, size_t klen, int64_t delta,
               uint32_t new_flags, int64_t *result) {
  kvshm__clear_detail();
  if (kv->flags & KVSHM_RDONLY)
    return KVSHM_ERDONLY;
  int rc = check_key(key, klen);
  if (!rc)
    rc = fault_in_for_write(kv, key, klen);
  kvshm__reaper_poll(kv);
  struct op op;
  if (!rc)
    rc = op_begin(kv, key, klen, &op);
  if (rc)
    return rc;
  int64_t cur = 0;
  op.now = kvshm__now_ms(kv);
  bool present = live_locked(kv, &op);
  struct write_req req = {key,
                          klen,
                          NULL,
                          0,
                          new_flags,
                          0,
                          new_state_bits(kv),
                          kvshm__lfu_new(kv, op.now)};
  req.expires_ms = expiry_for(kv, KVSHM_TTL_DEFAULT, op.now);
  if (present) {
    struct kvshm_head *hd = head_at(kv, op.s, op.ref);
    unsigned char num[24];
    if (hd->vlen > 20) {
      rc = KVSHM_ENOTINT;
    } else if (kvshm__entry_check_locked(kv, op.s, op.ref, true)) {
      rc = corrupt_locked(kv, op.s, "entry fails its checksum");
      present = false; /* repair may have moved everything */
    } else {
      kvshm__entry_read_locked(kv, op.s, op.ref, klen, num, hd->vlen);
      rc = parse_i64(num, hd->vlen, &cur);
      req.flags = hd->flags;
      req.expires_ms = hd->expires_ms;
      req.lfu = kvshm__lfu_touch(kv, hd->lfu, op.now);
    }
    if (rc == KVSHM_ENOTINT)
      kvshm__fail(rc, "value of key is not a decimal 64-bit integer");
  }
  if (!rc && ((delta > 0 && cur > INT64_MAX - delta) ||
              (delta < 0 && cur < INT64_MIN - delta)))
    rc = kvshm__fail(KVSHM_EOVERFLOW,
                     "%" PRId64 " + %" PRId64 " overflows a 64-bit integer",
                     cur, delta);
  if (!rc) {
    char text[24];
    cur += delta;
    req.vlen = (size_t)snprintf(text, sizeof text, "%" PRId64, cur);
    req.val = text;
    rc = write_locked(kv, op.s, op.h, op.ref, op.link, &req, op.now);
    if (!rc) {
      kvshm__stripe(kv, op.s)->sets++;
      if (result)
        *result = cur;
    }
  }
  kvshm__unlock(kv, op.s);
  return rc;
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
  atomic_fetch_add((_Atomic uint32_t *)&st->gen_spill, 1);
}

int kvshm_clear(kvshm *kv) {
  kvshm__clear_detail();
  if (kv->flags & KVSHM_RDONLY)
    return KVSHM_ERDONLY;
  /* Announce the clear first: a write-behind batch copied before it must
   * not land in SQLite after it (writeback.c), and while clear_gen is odd
   * fault_in promotes nothing. */
  _Atomic uint64_t *gen = (_Atomic uint64_t *)&kv->hdr->clear_gen;
  atomic_store((_Atomic uint64_t *)&kv->hdr->clear_started_ms,
               kvshm__now_ms(kv));
  uint64_t g = atomic_load(gen);
  while (!atomic_compare_exchange_weak(gen, &g, (g + 1) | 1))
    ; /* odd, and moved even if a dead clearer left it odd */
  int rc = KVSHM_OK;
  for (uint32_t s = 0; s < kv->nstripes && !rc; s++) {
    rc = kvshm__lock(kv, s);
    if (rc)
      break;
    kvshm__stripe_clear_locked(kv, s);
    kvshm__unlock(kv, s);
  }
  if (!rc && kvshm__has_store(kv))
    rc = kvshm__store_clear(kv);
  g = atomic_load(gen);
  while (!atomic_compare_exchange_weak(gen, &g, (g + 1) & ~1ull))
    ; /* even: done */
  return rc;
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

uint32_t kvshm_test_stripe_of(kvshm *kv, const void *key, size_t klen) {
  return stripe_of(kv, hash_key(key, klen));
}
