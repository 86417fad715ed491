/*
 * slots.c - the slot allocator of a stripe: its doubly linked free list
 * and never-used tail, taking a new entry's home slot, freeing an entry's
 * slots, and emptying a whole stripe.
 *
 * Lock rule: every function here expects the stripe's lock held (lock.c).
 * The free list and the counts are derived: a holder killed mid-update
 * leaves nothing that repair (lock.c) cannot rebuild from the slots.
 */
#include "internal.h"

static inline struct kvshm_head *head_at(kvshm *kv, uint32_t s, uint32_t r) {
  return (struct kvshm_head *)kvshm__slot(kv, s, r);
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

void kvshm__entry_free_locked(kvshm *kv, uint32_t s, uint32_t ref) {
  struct kvshm_stripe *st = kvshm__stripe(kv, s);
  struct kvshm_head *hd = head_at(kv, s, ref);
  /* The walk reads each link before its slot is freed. */
  struct kvshm__walk w;
  kvshm__walk_start(&w, kv, s, ref, (uint64_t)hd->klen + hd->vlen);
  st->entries--;
  st->bytes -= (uint64_t)hd->klen + hd->vlen;
  if (hd->state & KVSHM_ST_DIRTY && --st->dirty == 0)
    st->dirty_since_ms = 0;
  st->tombstones -= (hd->state & KVSHM_ST_TOMB) != 0;
  /* The head first: then the entry is gone. */
  kvshm__free_push_locked(kv, s, ref);
  kvshm__hook(kv, KVSHM_TP_FREE_HALF);
  /* Free only what is provably this entry's: a bad link (out of range, a
   * slot that is not a continuation owned by it, or one freed already: a
   * cycle) ends the walk.  Slots left behind are leaked until the next
   * repair, which verify reports; nothing is touched out of bounds. */
  while (kvshm__walk_next(&w) == KVSHM__WALK_NEXT)
    kvshm__free_push_locked(kv, s, w.ref);
}

/* Take one slot off the free list (or the never-used tail). */
uint32_t kvshm__alloc_slot_locked(kvshm *kv, uint32_t s) {
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
bool kvshm__take_home_locked(kvshm *kv, uint32_t s, uint32_t r) {
  struct kvshm_stripe *st = kvshm__stripe(kv, s);
  struct kvshm_head *fr = head_at(kv, s, r);
  if ((fr->state & KVSHM_KIND_MASK) != KVSHM_KIND_FREE)
    return false;
  if (r > st->fresh) { /* never used: hand out the tail up to it */
    while (st->fresh + 1 < r) {
      kvshm__free_push_locked(kv, s, ++st->fresh);
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
bool kvshm__free_list_sane(kvshm *kv, uint32_t s, uint32_t need) {
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
   * (nfree may lie): else kvshm__alloc_slot_locked would run past the
   * stripe. */
  return i + (kv->nslots - st->fresh) >= need;
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
