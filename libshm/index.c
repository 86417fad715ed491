/*
 * index.c - a stripe's index: its buckets' chains of entry heads.  Finding
 * a key, unlinking and removing an entry, expiring one and turning one
 * into a tombstone; and rebuilding a stripe found broken.
 *
 * Lock rule: every function here expects the stripe's lock held (lock.c);
 * the public operations (ops.c) take it.  Every ref and link read from the
 * segment is checked before use: a bad one makes the stripe be repaired
 * (lock.c), which drops the broken entry, and the operation returns
 * KVSHM_ECORRUPT.
 */
#include "store.h"

#include <errno.h>
#include <stdio.h>

static inline struct kvshm_head *head_at(kvshm *kv, uint32_t s, uint32_t r) {
  return (struct kvshm_head *)kvshm__slot(kv, s, r);
}

/* Found something broken while holding the lock: rebuild the stripe. */
int kvshm__corrupt_locked(kvshm *kv, uint32_t s, const char *what) {
  kvshm__repair_locked(kv, s);
  return kvshm__fail(KVSHM_ECORRUPT,
                     "cache '%s' stripe %u: %s; the stripe "
                     "was rebuilt without the broken entries",
                     kv->name, s, what);
}

uint64_t kvshm__key_hash(const void *key, size_t klen) {
  return kvshm__hash(key, klen, 0);
}

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
  uint32_t *l = bucket_of(kv, s, kvshm__key_hash(key, hd->klen));
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
  /* It leaves memory: a get reading SQLite unlocked must not promote an
   * older row over it (gen_evict, see op_resolve in ops.c). */
  kvshm__stripe(kv, s)->gen_evict++;
  if (link) {
    *link = hd->hnext;
    kvshm__entry_free_locked(kv, s, ref);
  } else {
    kvshm__entry_remove_locked(kv, s, ref);
  }
  return true;
}
