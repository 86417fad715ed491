/*
 * kvshm_test.h - test-only hooks into libshm.  Not a stable API: tests use
 * them to stop a writer at its worst moments (to SIGKILL it there) and to move
 * the clock instead of sleeping.
 */
#ifndef KVSHM_TEST_H
#define KVSHM_TEST_H

#include "kvshm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Points inside writes where a hook is called with the stripe lock held. */
typedef enum {
  KVSHM_TP_SET_ALLOCATED = 1, /* new slots taken from the free list */
  KVSHM_TP_SET_HALF_WRITTEN,  /* half the new entry's data written */
  KVSHM_TP_SET_BEFORE_COMMIT, /* new entry written, not yet visible */
  KVSHM_TP_SET_COMMITTED,     /* new and old entries both committed */
  KVSHM_TP_SET_LINKED,        /* new entry in the index, old not freed */
  KVSHM_TP_FREE_HALF,         /* an entry's head freed, its chain not yet */
  KVSHM_TP_REPAIR_HALF,       /* repair half done */
  KVSHM_TP_EVICTING,          /* between two evictions */
  KVSHM_TP_CLEAR_STEPPED,     /* kvshm_clear moved clear_gen (no lock held) */
  KVSHM_TP_PCLEAR_MARKING,    /* a prefix clear's delete committed, its
                                 record being marked DONE (no lock held) */
  KVSHM_TP_SEQ_LOOKED,        /* a lock-free get looked at its stripe, and
                                 has not yet checked that it stood still
                                 (no lock held; seqread.c) */
} kvshm_test_point;

typedef void (*kvshm_test_hook_fn)(kvshm *kv, kvshm_test_point p, void *ctx);
typedef uint64_t (*kvshm_test_clock_fn)(void *ctx);

/* Call fn at every test point (NULL to stop). */
KVSHM_API void kvshm_test_set_hook(kvshm *kv, kvshm_test_hook_fn fn, void *ctx);
/* Use fn as this handle's wall clock, in ms (NULL for the real one). */
KVSHM_API void kvshm_test_set_clock(kvshm *kv, kvshm_test_clock_fn fn,
                                    void *ctx);
/* Offset of the segment's first slot of stripe s, for corruption tests. */
KVSHM_API size_t kvshm_test_slot_offset(kvshm *kv, uint32_t stripe,
                                        uint32_t index);
/* Offset of the home slot of a key (the slot its entry takes when that
 * is free: write.c). */
KVSHM_API size_t kvshm_test_home_offset(kvshm *kv, const void *key,
                                        size_t klen);
/* The stripe a key hashes to. */
KVSHM_API uint32_t kvshm_test_stripe_of(kvshm *kv, const void *key,
                                        size_t klen);

#ifdef __cplusplus
}
#endif
#endif /* KVSHM_TEST_H */
