/*
 * slots.c - the slot allocator of a stripe: its doubly linked free list
 * and never-used tail.  Here the side that gives slots back (pushing a
 * slot on the free list, freeing an entry's slots, emptying a whole
 * stripe); slots.h holds the side that takes them, inline for the write
 * path (checking the list, taking a new entry's home slot, popping one).
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
