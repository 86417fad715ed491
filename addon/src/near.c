/*
 * near.c - the native calls of a near cache in front of Redis
 * (lib/redis.js), over libshm's near-cache half (libshm/near.c says the
 * protocol).  Methods of a cache handle, like the others; the JS Cache
 * class does not expose them.
 */
#include "addon.h"

#include <stdlib.h>

/*
 * nearGet(key, maxLagMs, config): the value; undefined when absent; null
 * when the listener of config was not in sync within maxLagMs (ask Redis).
 */
napi_value kva_near_get(napi_env env, napi_callback_info info) {
  CACHE_ARGS(3);
  size_t klen, vlen;
  uint32_t flags, lag, config;
  if (!kva_key(env, ad, argv[0], &klen))
    return NULL;
  KVA_CHECK(env, napi_get_value_uint32(env, argv[1], &lag));
  KVA_CHECK(env, napi_get_value_uint32(env, argv[2], &config));
  int rc;
  for (;;) {
    rc = kvshm_near_get(c->kv, ad->key, klen, ad->val, ad->valcap, &vlen,
                        &flags, lag, config);
    if (rc != KVSHM_EBUFSIZE)
      break;
    if (!kva_valbuf(env, ad, vlen))
      return NULL;
  }
  napi_value v;
  if (rc == KVSHM_ESTALE) {
    KVA_CHECK(env, napi_get_null(env, &v));
    return v;
  }
  if (rc == KVSHM_ENOTFOUND)
    return kva_undefined(env);
  if (rc)
    return kva_throw(env, ad, rc);
  v = kva_value_decode(env, ad, ad->val, vlen, flags);
  kva_trim(ad);
  return v;
}

/* epoch(key): the key's invalidation epoch, a bigint. */
napi_value kva_epoch(napi_env env, napi_callback_info info) {
  CACHE_ARGS(1);
  size_t klen;
  uint64_t e;
  if (!kva_key(env, ad, argv[0], &klen))
    return NULL;
  int rc = kvshm_epoch(c->kv, ad->key, klen, &e);
  if (rc)
    return kva_throw(env, ad, rc);
  napi_value v;
  KVA_CHECK(env, napi_create_bigint_uint64(env, e, &v));
  return v;
}

/*
 * setIfEpoch(key, value, type, ttlMs, epoch): true when stored, false when
 * the key was invalidated since epoch was read.
 */
napi_value kva_set_if_epoch(napi_env env, napi_callback_info info) {
  CACHE_ARGS(5);
  size_t klen, vlen;
  const void *val;
  uint32_t type, flags;
  int64_t ttl;
  uint64_t epoch;
  bool lossless;
  if (!kva_key(env, ad, argv[0], &klen))
    return NULL;
  KVA_CHECK(env, napi_get_value_uint32(env, argv[2], &type));
  KVA_CHECK(env, napi_get_value_int64(env, argv[3], &ttl));
  KVA_CHECK(env, napi_get_value_bigint_uint64(env, argv[4], &epoch, &lossless));
  size_t limit = kva_value_limit(c, klen);
  if (!kva_value_encode(env, ad, argv[1], type, limit, &val, &vlen, &flags))
    return NULL;
  int rc =
      kvshm_set_if_epoch(c->kv, ad->key, klen, val, vlen, flags, ttl, epoch);
  kva_trim(ad);
  if (rc == KVSHM_ESTALE)
    return kva_boolean(env, false);
  if (rc == KVSHM_ETOOBIG && vlen > limit)
    return kva_throw_too_big(env, vlen, false, limit);
  if (rc)
    return kva_throw(env, ad, rc);
  return kva_boolean(env, true);
}

/* invalidate(key): remove it and move its epoch on. */
napi_value kva_invalidate(napi_env env, napi_callback_info info) {
  CACHE_ARGS(1);
  size_t klen;
  if (!kva_key(env, ad, argv[0], &klen))
    return NULL;
  int rc = kvshm_invalidate(c->kv, ad->key, klen);
  return rc ? kva_throw(env, ad, rc) : kva_undefined(env);
}

/* nearClaim(): true if this thread is now (or already was) the listener. */
napi_value kva_near_claim(napi_env env, napi_callback_info info) {
  CACHE_ARGS(0);
  int rc = kvshm_near_claim(c->kv);
  return rc < 0 ? kva_throw(env, ad, rc) : kva_boolean(env, rc == 1);
}

napi_value kva_near_release(napi_env env, napi_callback_info info) {
  CACHE_ARGS(0);
  (void)ad;
  kvshm_near_release(c->kv);
  return kva_undefined(env);
}

/* nearSynced(atMs): in sync up to atMs (clockMs()); 0: not in sync. */
napi_value kva_near_synced(napi_env env, napi_callback_info info) {
  CACHE_ARGS(1);
  double at;
  KVA_CHECK(env, napi_get_value_double(env, argv[0], &at));
  int rc = kvshm_near_synced(c->kv, at > 0 ? (uint64_t)at : 0);
  return rc ? kva_throw(env, ad, rc) : kva_undefined(env);
}

/* nearConfigure(config): the listener publishes its configuration. */
napi_value kva_near_configure(napi_env env, napi_callback_info info) {
  CACHE_ARGS(1);
  uint32_t config;
  KVA_CHECK(env, napi_get_value_uint32(env, argv[0], &config));
  int rc = kvshm_near_configure(c->kv, config);
  return rc ? kva_throw(env, ad, rc) : kva_undefined(env);
}

/* nearConfig(): the listener's configuration, 0 if none yet. */
napi_value kva_near_config(napi_env env, napi_callback_info info) {
  CACHE_ARGS(0);
  (void)ad;
  napi_value v;
  KVA_CHECK(env, napi_create_uint32(env, kvshm_near_config(c->kv), &v));
  return v;
}

/* nearCount(counter, n): add n to a near-cache counter (KVSHM_NEAR_*). */
napi_value kva_near_count(napi_env env, napi_callback_info info) {
  CACHE_ARGS(2);
  uint32_t which, n;
  KVA_CHECK(env, napi_get_value_uint32(env, argv[0], &which));
  KVA_CHECK(env, napi_get_value_uint32(env, argv[1], &n));
  int rc = kvshm_near_count(c->kv, which, n);
  return rc ? kva_throw(env, ad, rc) : kva_undefined(env);
}

/* nearDelay(us): record one write-to-invalidation delay. */
napi_value kva_near_delay(napi_env env, napi_callback_info info) {
  CACHE_ARGS(1);
  double us;
  KVA_CHECK(env, napi_get_value_double(env, argv[0], &us));
  int rc = kvshm_near_delay(c->kv, us > 0 ? (uint64_t)us : 0);
  return rc ? kva_throw(env, ad, rc) : kva_undefined(env);
}

/* nearStats(): kvshm_near_stats, named as in JS. */
napi_value kva_near_stats(napi_env env, napi_callback_info info) {
  CACHE_ARGS(0);
  kvshm_near_stats st;
  int rc = kvshm_near_stats_get(c->kv, &st);
  if (rc)
    return kva_throw(env, ad, rc);
  napi_value o;
  KVA_CHECK(env, napi_create_object(env, &o));
  kva_put(env, o, "nearHits", (double)st.near_hits);
  kva_put(env, o, "redisReads", (double)st.redis_reads);
  kva_put(env, o, "invalidations", (double)st.invalidations);
  kva_put(env, o, "flushes", (double)st.flushes);
  kva_put(env, o, "fillsRefused", (double)st.refused);
  kva_put(env, o, "listenerStarts", (double)st.listener_starts);
  kva_put(env, o, "listenerPid", st.listener_pid);
  napi_value alive;
  KVA_CHECK(env, napi_get_boolean(env, st.listener_alive != 0, &alive));
  KVA_CHECK(env, napi_set_named_property(env, o, "listenerAlive", alive));
  kva_put(env, o, "lag", (double)st.lag_ms);
  kva_put(env, o, "delaySamples", (double)st.delays);
  kva_put(env, o, "delayP50", (double)st.delay_p50_us / 1000.0);
  kva_put(env, o, "delayP99", (double)st.delay_p99_us / 1000.0);
  kva_put(env, o, "delayMax", (double)st.delay_max_us / 1000.0);
  return o;
}

napi_value kva_clock_ms(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value v;
  KVA_CHECK(env, napi_create_double(env, (double)kvshm_clock_ms(), &v));
  return v;
}
