/*
 * testhooks.c - the test-only entry points of kvshm_test.h: a hook called
 * at chosen points of a write, a repair or a get, a clock the test moves,
 * and where a key's slots are (for tests that damage them).  Never used in
 * production; no lock rules (they change only this process's handle, or
 * compute offsets).
 */
#include "internal.h"

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
  uint64_t h = kvshm__key_hash(key, klen);
  uint32_t s = kvshm__stripe_of(kv, h);
  return (
      size_t)(kvshm__slot(kv, s, kvshm__home_of(kv, kvshm__bucket_of(kv, h))) -
              kv->base);
}

uint32_t kvshm_test_stripe_of(kvshm *kv, const void *key, size_t klen) {
  return kvshm__stripe_of(kv, kvshm__key_hash(key, klen));
}
