/*
 * many.c - the multi-key methods (getMany, setMany, deleteMany), one
 * native call each over libshm's kvshm_*_many (grouped by stripe there),
 * and the single-key extras: getEx (with the entry's expiry, or a peek) and
 * deleteIf (a compare-and-delete, for getOrSet's leases).
 *
 * Keys and values of a call are encoded into one arena first, then handed
 * to libshm at once; JS values are built only after it returns.
 */
#include "addon.h"

#include <stdlib.h>
#include <string.h>

/* The environment's buffers, kept from call to call (a multi-key call
 * allocates nothing once they have grown); over KEEP bytes they are given
 * back after the call. */
enum { B_ITEMS, B_KEYS, B_VALS };
#define KEEP (4u << 20)

static void *buf_get(napi_env env, struct kvshm_addon *ad, int b, size_t n) {
  if (n > ad->many_cap[b]) {
    size_t cap = ad->many_cap[b] ? ad->many_cap[b] : 4096;
    while (cap < n)
      cap *= 2;
    void *p = realloc(ad->many[b], cap);
    if (!p) {
      napi_throw_error(env, "ENOMEM", "out of memory");
      return NULL;
    }
    ad->many[b] = p;
    ad->many_cap[b] = cap;
  }
  return ad->many[b];
}

static void bufs_trim(struct kvshm_addon *ad) {
  for (int b = 0; b < 3; b++)
    if (ad->many_cap[b] > KEEP) {
      free(ad->many[b]);
      ad->many[b] = NULL;
      ad->many_cap[b] = 0;
    }
  kva_trim(ad);
}

/* A growing buffer in one of them; offsets survive its moves. */
struct arena {
  struct kvshm_addon *ad;
  int b;
  unsigned char *p;
  size_t used;
};

static bool arena_put(napi_env env, struct arena *a, const void *src, size_t n,
                      size_t *off) {
  if (a->used + n > a->ad->many_cap[a->b] &&
      !buf_get(env, a->ad, a->b, a->used + n))
    return false;
  a->p = a->ad->many[a->b];
  if (n)
    memcpy(a->p + a->used, src, n);
  *off = a->used;
  a->used += n;
  return true;
}

/* The array argv[i] and its length; TypeError if it is not one. */
static bool array_arg(napi_env env, napi_value v, const char *what,
                      uint32_t *n) {
  bool is = false;
  if (napi_is_array(env, v, &is) != napi_ok || !is) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
    return false;
  }
  return napi_get_array_length(env, v, n) == napi_ok;
}

static napi_value num(napi_env env, uint32_t i) {
  napi_value v = NULL;
  napi_create_uint32(env, i, &v);
  return v;
}

/* The array of positions a, sorted (they were found in two passes). */
static napi_value sorted(napi_env env, napi_value a) {
  uint32_t n = 0;
  napi_get_array_length(env, a, &n);
  uint32_t *v = malloc((n ? n : 1) * sizeof *v);
  if (!v)
    return a;
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    v[i] = 0;
    if (napi_get_element(env, a, i, &e) == napi_ok)
      napi_get_value_uint32(env, e, &v[i]);
  }
  for (uint32_t i = 1; i < n; i++) /* few: insertion sort */
    for (uint32_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
      uint32_t x = v[j];
      v[j] = v[j - 1];
      v[j - 1] = x;
    }
  for (uint32_t i = 0; i < n; i++)
    napi_set_element(env, a, i, num(env, v[i]));
  free(v);
  return a;
}

/* keys[i] into the arena (offsets in items[i].key, fixed up later). */
static bool keys_in(napi_env env, struct kvshm_addon *ad, napi_value keys,
                    uint32_t n, kvshm_item *items, struct arena *a) {
  for (uint32_t i = 0; i < n; i++) {
    napi_value k;
    size_t klen, off;
    if (napi_get_element(env, keys, i, &k) != napi_ok ||
        !kva_key(env, ad, k, &klen) || !arena_put(env, a, ad->key, klen, &off))
      return false;
    memset(&items[i], 0, sizeof items[i]);
    items[i].key = (const void *)(uintptr_t)off;
    items[i].klen = klen;
  }
  return true;
}

static void keys_fix(kvshm_item *items, uint32_t n, const struct arena *a) {
  for (uint32_t i = 0; i < n; i++)
    items[i].key = a->p + (uintptr_t)items[i].key;
}

/* The array of keys v as items (their bytes in the keys buffer), or NULL
 * with an error thrown. */
static kvshm_item *keys_items(napi_env env, struct kvshm_addon *ad,
                              napi_value v, uint32_t *n) {
  if (!array_arg(env, v, "keys must be an array of strings", n))
    return NULL;
  kvshm_item *items = buf_get(env, ad, B_ITEMS, (*n ? *n : 1) * sizeof *items);
  struct arena keys = {ad, B_KEYS, NULL, 0};
  if (!items || !keys_in(env, ad, v, *n, items, &keys))
    return NULL;
  keys_fix(items, *n, &keys);
  return items;
}

/* getMany(keys): an array of values, undefined where absent. */
napi_value kva_get_many(napi_env env, napi_callback_info info) {
  CACHE_ARGS(1);
  uint32_t n = 0;
  napi_value out = NULL;
  kvshm_item *items = keys_items(env, ad, argv[0], &n);
  if (!items)
    goto done;
  /* Room for the values: most fit one slot; larger ones are fetched one by
   * one below (EBUFSIZE). */
  size_t room = (size_t)n * 256 + 16384;
  unsigned char *vals = buf_get(env, ad, B_VALS, room);
  if (!vals)
    goto done;
  int rc = kvshm_get_many(c->kv, items, n, vals, ad->many_cap[B_VALS]);
  if (rc) {
    kva_throw(env, ad, rc);
    goto done;
  }
  if (napi_create_array_with_length(env, n, &out) != napi_ok)
    goto done;
  for (uint32_t i = 0; i < n; i++) {
    kvshm_item *it = &items[i];
    napi_value v;
    rc = it->rc;
    while (rc == KVSHM_EBUFSIZE) { /* it may grow again before the retry */
      if (!kva_valbuf(env, ad, it->vlen)) {
        out = NULL;
        goto done;
      }
      rc = kvshm_get(c->kv, it->key, it->klen, ad->val, ad->valcap, &it->vlen,
                     &it->flags);
      it->val = ad->val;
    }
    if (rc == KVSHM_ENOTFOUND) {
      v = kva_undefined(env);
    } else if (rc) {
      kva_throw(env, ad, rc);
      out = NULL;
      goto done;
    } else {
      v = kva_value_decode(env, ad, it->val, it->vlen, it->flags);
    }
    if (!v || napi_set_element(env, out, i, v) != napi_ok) {
      out = NULL;
      goto done;
    }
  }
done:
  bufs_trim(ad);
  return out;
}

/* The typed array v of `want` type and n elements, or NULL (TypeError). */
static void *typed_arg(napi_env env, napi_value v, napi_typedarray_type want,
                       uint32_t n, const char *what) {
  bool is = false;
  napi_typedarray_type t;
  size_t len = 0;
  void *data = NULL;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, v, &t, &len, &data, NULL, NULL) !=
          napi_ok ||
      t != want || len != n) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
    return NULL;
  }
  return data ? data : (void *)"";
}

/*
 * setMany(keys, values, types, ttls): store each; types is a Uint8Array of
 * value types, ttls a Float64Array of set's ttl (-1: the default).  Every entry
 * that can be stored is; then the first failure (a value over the limit, a lock
 * timeout) is thrown, with `failed`: the positions of every entry that was not
 * stored.
 */
napi_value kva_set_many(napi_env env, napi_callback_info info) {
  CACHE_ARGS(4);
  uint32_t n = 0, nv = 0;
  if (argc < 4 || !array_arg(env, argv[0], "keys must be an array", &n) ||
      !array_arg(env, argv[1], "values must be an array", &nv))
    return NULL;
  if (nv != n) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                          "setMany: keys and values differ in length");
    return NULL;
  }
  const uint8_t *types = typed_arg(env, argv[2], napi_uint8_array, n,
                                   "setMany: types must be a Uint8Array of "
                                   "one type per key");
  const double *ttls = types ? typed_arg(env, argv[3], napi_float64_array, n,
                                         "setMany: ttls must be a "
                                         "Float64Array of one ttl per key")
                             : NULL;
  if (!ttls)
    return NULL;
  kvshm_item *items = buf_get(env, ad, B_ITEMS, (n ? n : 1) * sizeof *items);
  size_t *voff = calloc(n ? n : 1, sizeof *voff);
  uint32_t *pos = calloc(n ? n : 1, sizeof *pos); /* item -> input position */
  struct arena keys = {ad, B_KEYS, NULL, 0}, vals = {ad, B_VALS, NULL, 0};
  napi_value first_err = NULL, ret = NULL, failed = NULL;
  uint32_t nfailed = 0;
  if (!items || !voff || !pos) {
    if (items)
      napi_throw_error(env, "ENOMEM", "out of memory");
    goto done;
  }
  if (!keys_in(env, ad, argv[0], n, items, &keys) ||
      napi_create_array(env, &failed) != napi_ok)
    goto done;
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    uint32_t type = types[i];
    /* lib/cache.js checked it: -1 or a whole number of ms, 0..2^53-1 */
    int64_t ttl = ttls[i] >= -1 && ttls[i] <= 9007199254740991.0
                      ? (int64_t)ttls[i]
                      : KVSHM_TTL_DEFAULT;
    if (napi_get_element(env, argv[1], i, &v) != napi_ok)
      goto done;
    const void *data;
    size_t vlen;
    uint32_t flags;
    size_t limit = kva_value_limit(c, items[i].klen);
    if (!kva_value_encode(env, ad, v, type, limit, &data, &vlen, &flags)) {
      /* Keep the first error for the end; this entry is skipped. */
      napi_value e;
      if (napi_get_and_clear_last_exception(env, &e) != napi_ok)
        goto done;
      if (!first_err)
        first_err = e;
      items[i].rc = KVSHM_EINVAL;
      items[i].klen = 0;
      voff[i] = SIZE_MAX;
      napi_set_element(env, failed, nfailed++, num(env, i));
      continue;
    }
    if (vlen > limit) {
      if (!first_err) {
        kva_throw_too_big(env, vlen, false, limit);
        napi_get_and_clear_last_exception(env, &first_err);
      }
      voff[i] = SIZE_MAX;
      napi_set_element(env, failed, nfailed++, num(env, i));
      continue;
    }
    if (!arena_put(env, &vals, data, vlen, &voff[i]))
      goto done;
    items[i].vlen = vlen;
    items[i].flags = flags;
    items[i].ttl_ms = ttl;
  }
  keys_fix(items, n, &keys);
  /* Only the encoded ones go to libshm, packed to the front. */
  uint32_t m = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (voff[i] == SIZE_MAX)
      continue;
    items[i].val = vals.p ? vals.p + voff[i] : (const void *)"";
    pos[m] = i;
    items[m++] = items[i];
  }
  int rc = kvshm_set_many(c->kv, items, m);
  if (rc) {
    kva_throw(env, ad, rc);
    goto done;
  }
  for (uint32_t i = 0; i < m; i++) {
    if (!items[i].rc)
      continue;
    napi_set_element(env, failed, nfailed++, num(env, pos[i]));
    if (first_err)
      continue;
    if (items[i].rc == KVSHM_ETOOBIG)
      kva_throw_too_big(env, items[i].vlen, false,
                        kva_value_limit(c, items[i].klen));
    else
      kva_throw(env, ad, items[i].rc);
    napi_get_and_clear_last_exception(env, &first_err);
  }
  if (first_err) {
    napi_valuetype t = napi_undefined;
    napi_typeof(env, first_err, &t);
    if (t == napi_object) /* the positions, in order */
      napi_set_named_property(env, first_err, "failed", sorted(env, failed));
    napi_throw(env, first_err);
  } else {
    ret = kva_undefined(env);
  }
done:
  free(voff);
  free(pos);
  bufs_trim(ad);
  return ret;
}

/* deleteMany(keys): an array of booleans, true where a key was deleted. */
napi_value kva_delete_many(napi_env env, napi_callback_info info) {
  CACHE_ARGS(1);
  uint32_t n = 0;
  napi_value out = NULL;
  kvshm_item *items = keys_items(env, ad, argv[0], &n);
  if (!items)
    goto done;
  int rc = kvshm_del_many(c->kv, items, n);
  if (rc) {
    kva_throw(env, ad, rc);
    goto done;
  }
  for (uint32_t i = 0; i < n; i++)
    if (items[i].rc && items[i].rc != KVSHM_ENOTFOUND) {
      kva_throw(env, ad, items[i].rc);
      goto done;
    }
  if (napi_create_array_with_length(env, n, &out) != napi_ok)
    goto done;
  for (uint32_t i = 0; i < n; i++)
    if (napi_set_element(env, out, i,
                         kva_boolean(env, items[i].rc == KVSHM_OK)) !=
        napi_ok) {
      out = NULL;
      goto done;
    }
done:
  bufs_trim(ad);
  return out;
}

/* deleteIf(key, value, type): delete key only if it holds exactly value
 * (encoded as set would); true if deleted. */
napi_value kva_delete_if(napi_env env, napi_callback_info info) {
  CACHE_ARGS(3);
  size_t klen, vlen;
  uint32_t type = KVA_T_STRING, flags;
  const void *val;
  if (!kva_key(env, ad, argv[0], &klen))
    return NULL;
  if (argc > 2)
    KVA_CHECK(env, napi_get_value_uint32(env, argv[2], &type));
  if (!kva_value_encode(env, ad, argv[1], type, kva_value_limit(c, klen), &val,
                        &vlen, &flags))
    return NULL;
  int rc = kvshm_del_if(c->kv, ad->key, klen, val, vlen);
  kva_trim(ad);
  if (rc && rc != KVSHM_ENOTFOUND && rc != KVSHM_EMISMATCH)
    return kva_throw(env, ad, rc);
  return kva_boolean(env, rc == KVSHM_OK);
}

/*
 * getEx(key, peek, withValue): the value (undefined when absent; true for
 * a present key when !withValue), remembering the entry's expiry for
 * lastExpiry().  peek: no LFU touch, no hit, no promotion from SQLite.
 */
napi_value kva_get_ex(napi_env env, napi_callback_info info) {
  CACHE_ARGS(3);
  bool peek = false, with_value = true;
  size_t klen, vlen;
  uint32_t flags;
  uint64_t exp = 0;
  if (!kva_key(env, ad, argv[0], &klen))
    return NULL;
  if (argc > 1)
    KVA_CHECK(env, napi_get_value_bool(env, argv[1], &peek));
  if (argc > 2)
    KVA_CHECK(env, napi_get_value_bool(env, argv[2], &with_value));
  unsigned opts = peek ? KVSHM_PEEK : 0;
  int rc;
  for (;;) {
    rc = kvshm_get_ex(c->kv, ad->key, klen, with_value ? ad->val : NULL,
                      ad->valcap, &vlen, &flags, &exp, opts);
    if (rc != KVSHM_EBUFSIZE)
      break;
    if (!kva_valbuf(env, ad, vlen))
      return NULL;
  }
  if (rc == KVSHM_ENOTFOUND)
    return kva_undefined(env);
  if (rc)
    return kva_throw(env, ad, rc);
  c->last_expiry = exp;
  napi_value v = with_value ? kva_value_decode(env, ad, ad->val, vlen, flags)
                            : kva_boolean(env, true);
  kva_trim(ad);
  return v;
}

/* lastExpiry(): the expiry getEx last found (ms since the epoch, 0 never). */
napi_value kva_last_expiry(napi_env env, napi_callback_info info) {
  CACHE_ARGS(0);
  (void)ad;
  napi_value v;
  KVA_CHECK(env, napi_create_double(env, (double)c->last_expiry, &v));
  return v;
}
