/*
 * slots.h - the taking side of the slot allocator (slots.c gives slots
 * back): check the free list before a write relies on it, take a new
 * entry's home slot, take one slot off the free list.  Inline, because the
 * write path (write.c, their one caller) runs them for every set.
 *
 * Lock rule: every function here expects the stripe's lock held (lock.c).
 */
#ifndef KVSHM_SLOTS_H
#define KVSHM_SLOTS_H

#include "internal.h"

/* A free slot's words: hnext is the next free slot, cnext the previous
 * one (slots.c). */
static inline struct kvshm_head *kvshm__free_slot(kvshm *kv, uint32_t s,
                                                  uint32_t r) {
  return (struct kvshm_head *)kvshm__slot(kv, s, r);
}

/* Take one slot off the free list (or the never-used tail). */
static inline uint32_t kvshm__alloc_slot_locked(kvshm *kv, uint32_t s) {
  struct kvshm_stripe *st = kvshm__stripe(kv, s);
  uint32_t r = st->free_head;
  if (r) {
    st->free_head = kvshm__free_slot(kv, s, r)->hnext;
    if (kvshm__ref_ok(kv, st->free_head))
      kvshm__free_slot(kv, s, st->free_head)->cnext = KVSHM_NIL;
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
static inline bool kvshm__take_home_locked(kvshm *kv, uint32_t s, uint32_t r) {
  struct kvshm_stripe *st = kvshm__stripe(kv, s);
  struct kvshm_head *fr = kvshm__free_slot(kv, s, r);
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
  if (prev ? !kvshm__ref_ok(kv, prev) ||
                 kvshm__free_slot(kv, s, prev)->hnext != r ||
                 (kvshm__free_slot(kv, s, prev)->state & KVSHM_KIND_MASK) !=
                     KVSHM_KIND_FREE
           : st->free_head != r)
    return false;
  if (next &&
      (!kvshm__ref_ok(kv, next) || kvshm__free_slot(kv, s, next)->cnext != r ||
       (kvshm__free_slot(kv, s, next)->state & KVSHM_KIND_MASK) !=
           KVSHM_KIND_FREE))
    return false;
  if (prev)
    kvshm__free_slot(kv, s, prev)->hnext = next;
  else
    st->free_head = next;
  if (next)
    kvshm__free_slot(kv, s, next)->cnext = prev;
  st->nfree--;
  return true;
}

/* Check the stripe's free-list bookkeeping before relying on it. */
static inline bool kvshm__free_list_sane(kvshm *kv, uint32_t s, uint32_t need) {
  struct kvshm_stripe *st = kvshm__stripe(kv, s);
  if (st->fresh > kv->nslots || st->nfree > kv->nslots)
    return false;
  /* r walks the slots this write will take; fast walks twice as fast, and
   * meets r if they loop (a slot listed twice would be handed out twice). */
  uint32_t r = st->free_head, fast = r, i = 0;
  for (; i < need && r; i++) {
    if (!kvshm__ref_ok(kv, r))
      return false;
    struct kvshm_head *fr = kvshm__free_slot(kv, s, r);
    if ((fr->state & KVSHM_KIND_MASK) != KVSHM_KIND_FREE)
      return false;
    r = fr->hnext;
    for (int step = 0; step < 2 && fast; step++)
      fast = kvshm__ref_ok(kv, fast) ? kvshm__free_slot(kv, s, fast)->hnext : 0;
    if (r && r == fast)
      return false;
  }
  /* The listed slots plus the never-used tail must really hold `need`
   * (nfree may lie): else kvshm__alloc_slot_locked would run past the
   * stripe. */
  return i + (kv->nslots - st->fresh) >= need;
}

#endif /* KVSHM_SLOTS_H */
