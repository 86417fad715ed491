/*
 * iter.c - keys() and entries(): a walk over the live entries with libshm's
 * kvshm_iter, handed to JS in batches of up to KVA_ITER_BATCH entries so
 * that a long walk costs one N-API round trip per batch, not per entry.
 * libshm holds no lock between calls, so the caller may write to the cache
 * while it iterates.  A SQLite-backed cache's walk goes on into the file
 * (KVSHM_ITER_STORE) for the keys that are only there.
 */
#include "addon.h"

#include <stdlib.h>

void kva_iter_end(struct kva_iter *it) {
  if (it->it) {
    kvshm_iter_close(it->it);
    it->it = NULL;
  }
  if (it->pprev) {
    *it->pprev = it->next;
    if (it->next)
      it->next->pprev = it->pprev;
    it->pprev = NULL;
    it->next = NULL;
  }
}

static void iter_unref(napi_env env, void *data, void *hint) {
  struct kva_iter *it = data;
  if (--it->refs)
    return;
  kva_iter_end(it);
  kva_cache_unref(env, it->cache, hint);
  free(it);
}

/*
 * next(): an array of up to KVA_ITER_BATCH keys (or key, value, key,
 * value, ... for entries()), or undefined at the end.
 */
static napi_value iter_next(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  struct kva_iter *it;
  napi_value out;
  KVA_CHECK(env, napi_get_cb_info(env, info, &argc, NULL, NULL, (void **)&it));
  if (!it->it) {
    if (it->cache_closed)
      return kva_throw_closed(env, it->cache->ad);
    KVA_CHECK(env, napi_get_undefined(env, &out));
    return out;
  }
  struct kvshm_addon *ad = it->cache->ad;
  KVA_CHECK(env, napi_create_array(env, &out));
  uint32_t n = 0;
  while (n < KVA_ITER_BATCH * (it->values ? 2u : 1u)) {
    const void *key, *val;
    size_t klen, vlen;
    uint32_t flags;
    int rc = kvshm_iter_next(it->it, &key, &klen, &val, &vlen, &flags, NULL);
    if (rc == KVSHM_ENOTFOUND) {
      kva_iter_end(it);
      break;
    }
    if (rc) {
      napi_value r = kva_throw(env, ad, rc);
      kva_iter_end(it);
      return r;
    }
    napi_value k, v;
    KVA_CHECK(env, napi_create_string_utf8(env, key, klen, &k));
    KVA_CHECK(env, napi_set_element(env, out, n++, k));
    if (it->values) {
      v = kva_value_decode(env, ad, val, vlen, flags);
      if (!v)
        return NULL;
      KVA_CHECK(env, napi_set_element(env, out, n++, v));
    }
  }
  if (n == 0)
    KVA_CHECK(env, napi_get_undefined(env, &out));
  return out;
}

/* close(): stop early (a for-of loop's break).  Idempotent. */
static napi_value iter_close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  struct kva_iter *it;
  napi_value out;
  KVA_CHECK(env, napi_get_cb_info(env, info, &argc, NULL, NULL, (void **)&it));
  kva_iter_end(it);
  KVA_CHECK(env, napi_get_undefined(env, &out));
  return out;
}

napi_value kva_iter_new(napi_env env, struct kva_cache *c, napi_value prefix,
                        bool values) {
  struct kvshm_addon *ad = c->ad;
  size_t plen = 0;
  napi_valuetype t;
  KVA_CHECK(env, napi_typeof(env, prefix, &t));
  if (t != napi_undefined && !kva_key(env, ad, prefix, &plen))
    return NULL;
  struct kva_iter *it = calloc(1, sizeof *it);
  if (!it) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  int rc = kvshm_iter_open(c->kv, plen ? ad->key : NULL, plen, KVSHM_ITER_STORE,
                           &it->it);
  if (rc) {
    free(it);
    return kva_throw(env, ad, rc);
  }
  it->cache = c;
  it->values = values;
  c->refs++;
  it->refs = 1;
  it->next = c->iters;
  if (it->next)
    it->next->pprev = &it->next;
  it->pprev = &c->iters;
  c->iters = it;

  napi_value obj, f;
  napi_status st = napi_create_object(env, &obj);
  if (st == napi_ok)
    st = napi_wrap(env, obj, it, iter_unref, NULL, NULL);
  if (st != napi_ok) {
    it->refs = 1;
    iter_unref(env, it, NULL);
    return kva_napi_failed(env, st);
  }
  static const struct {
    const char *name;
    napi_value (*fn)(napi_env, napi_callback_info);
  } methods[] = {{"next", iter_next}, {"close", iter_close}};
  for (size_t i = 0; i < 2; i++) {
    KVA_CHECK(env, napi_create_function(env, methods[i].name, NAPI_AUTO_LENGTH,
                                        methods[i].fn, it, &f));
    KVA_CHECK(env, napi_add_finalizer(env, f, it, iter_unref, NULL, NULL));
    it->refs++;
    KVA_CHECK(env, napi_set_named_property(env, obj, methods[i].name, f));
  }
  return obj;
}
