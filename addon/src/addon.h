/*
 * addon.h - what the addon's C files share: the per-environment state, the
 * cache handle behind every JS cache object, and the value type tags kept in
 * libshm's per-entry flags word.
 *
 * Nothing here is a C global: each Node environment (the main thread and
 * every worker_thread) gets its own struct kvshm_addon through
 * napi_set_instance_data, so handles, scratch buffers and references never
 * cross threads.
 */
#ifndef KVSHM_ADDON_H
#define KVSHM_ADDON_H

#define NAPI_VERSION 8
#include <node_api.h>

#include "kvshm.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Value types, in the low byte of an entry's flags word.  Other programs
 * (kvshm-cli, C users) that write flags 0 produce strings.  An unknown type
 * comes back as a Buffer of the raw bytes.
 *
 * Bit 8 (KVA_F_ASCII) says the bytes are all ASCII, so get makes the JS
 * string with a plain copy; incr keeps it true (it writes digits).  Bits
 * 9..31 are reserved (0).
 *
 *   type        stored bytes                       comes back as
 *   STRING  0   UTF-8 text                          string
 *   BUFFER  1   the bytes                           Buffer
 *   UINT8   2   the bytes                           Uint8Array
 *   NUMBER  3   decimal text ("42", "-0.5", "NaN")  number (incr keeps it)
 *   BOOLEAN 4   "true" or "false"                   boolean
 *   JSON    5   JSON.stringify(value)               JSON.parse(text)
 *   BIGINT  6   decimal text                        bigint (incr keeps it)
 */
enum {
  KVA_T_STRING = 0,
  KVA_T_BUFFER = 1,
  KVA_T_UINT8 = 2,
  KVA_T_NUMBER = 3,
  KVA_T_BOOLEAN = 4,
  KVA_T_JSON = 5,
  KVA_T_BIGINT = 6,
  KVA_T_MAX = 6
};
#define KVA_TYPE_MASK 0xffu
#define KVA_F_ASCII 0x100u

/* Key buffer: up to KVSHM_KEY_MAX UTF-16 units, 3 bytes each (utf.c). */
#define KVA_KEYBUF (3u * KVSHM_KEY_MAX + 8u)
/* The value scratch buffer starts at this size and grows on demand; past
 * KVA_VALBUF_KEEP bytes it is given back after the call that grew it. */
#define KVA_VALBUF_INIT 4096u
#define KVA_VALBUF_KEEP (4u << 20)
/* Entries handed to JS per iterator call. */
#define KVA_ITER_BATCH 256u

struct kva_cache;

/* Per-environment state (napi_set_instance_data). */
struct kvshm_addon {
  napi_env env;
  napi_ref error_ctor;  /* KvshmError, registered by lib/binding.js */
  napi_ref json_parse;  /* JSON.parse, for JSON values */
  napi_ref bigint_fn;   /* BigInt, for bigint values */
  char key[KVA_KEYBUF]; /* the key of the current call, UTF-8 */
  unsigned char *val;   /* value scratch: set's encoding, get's copy */
  size_t valcap;
  uint16_t *u16;            /* a string's UTF-16 code units (utf.c) */
  size_t u16cap;            /* in units; at least KVSHM_KEY_MAX + 2 */
  struct kva_cache *caches; /* every handle of this environment */
  void *many[3];            /* many.c's buffers: items, keys, values */
  size_t many_cap[3];       /* their sizes, bytes */
  bool closing;             /* the environment is being torn down */
};

struct kva_iter;

/*
 * One open cache.  Owned jointly by the JS handle object (napi_wrap) and by
 * each method function created for it (napi_add_finalizer): freed when the
 * last of them is collected, so no function can outlive it.  close() only
 * drops kv; every method checks it.
 */
struct kva_cache {
  struct kvshm_addon *ad;
  kvshm *kv;                       /* NULL once closed */
  unsigned refs;                   /* JS objects that point here */
  struct kva_cache *next, **pprev; /* in ad->caches */
  struct kva_iter *iters;          /* open iterators over this cache */
  char *name;                      /* for destroy() after close */
  kvshm_config trust;              /* its trust fields, for destroy() */
  uint64_t max_value; /* kvshm_stats' max_value (for a 16-byte key) */
  uint64_t test_now;  /* test clock (lib/testing.js), ms */
  int test_point;     /* test hook: signal at this point ... */
  int test_signal;    /* ... this signal */
  uint64_t last_expiry; /* getEx's entry's expiry (0 never), for lastExpiry */
};

/*
 * An iteration in progress (keys() / entries()).  Owned by its JS object
 * and its two methods, like a cache; holds one reference on its cache so
 * the cache struct outlives it.
 */
struct kva_iter {
  struct kva_cache *cache; /* the cache walked (a counted reference) */
  kvshm_iter *it;          /* NULL when done, closed, or the cache closed */
  bool values;             /* entries(): decode values too */
  bool cache_closed;       /* ended because its cache was closed */
  unsigned refs;
  struct kva_iter *next, **pprev; /* in cache->iters while it is set */
};

/* ---- addon.c ---- */
/*
 * Throw for status rc: a KvshmError whose message is libshm's detail for the
 * failed call (or the status's sentence), code the status's name.
 * Returns NULL so callers can `return kva_throw(...)`.
 */
napi_value kva_throw(napi_env env, struct kvshm_addon *ad, int rc);
/* Throw a KvshmError with code ECLOSED (the cache was closed). */
napi_value kva_throw_closed(napi_env env, struct kvshm_addon *ad);
/* Make sure ad->val holds n bytes; false (and a JS error thrown) if not. */
bool kva_valbuf(napi_env env, struct kvshm_addon *ad, size_t n);
/*
 * Throw RangeError (code ETOOBIG) for a value of vlen bytes (at least, if
 * at_least) over `limit`, the cache's limit with this key.
 */
napi_value kva_throw_too_big(napi_env env, size_t vlen, bool at_least,
                             size_t limit);
/* Give back scratch buffers that a huge value grew past a few MiB. */
void kva_trim(struct kvshm_addon *ad);
/*
 * Were the test hooks asked for (KVSHM_TESTING=1 when the addon was first
 * loaded)?  Only then do handles get _setClock and _signalAt.
 */
bool kva_testing(void);
/* Return undefined; throw a generic error if a N-API call failed. */
napi_value kva_napi_failed(napi_env env, napi_status st);
#define KVA_CHECK(env, call)                                                   \
  do {                                                                         \
    napi_status kva_st_ = (call);                                              \
    if (kva_st_ != napi_ok)                                                    \
      return kva_napi_failed((env), kva_st_);                                  \
  } while (0)

/* ---- utf.c ---- */
/*
 * Convert the JS string v to UTF-8 in ad->key.  Throws TypeError (not a
 * string) or RangeError (over KVSHM_KEY_MAX bytes) and returns false.
 */
bool kva_key(napi_env env, struct kvshm_addon *ad, napi_value v, size_t *len);
/*
 * The JS string v as UTF-8 in ad->val; *ascii: it was all ASCII.  A string
 * certainly over `limit` bytes throws RangeError (see kva_throw_too_big)
 * before anything large is allocated.
 */
bool kva_string(napi_env env, struct kvshm_addon *ad, napi_value v,
                size_t limit, size_t *len, bool *ascii);
/* Make sure ad->u16 holds n code units. */
bool kva_u16buf(napi_env env, struct kvshm_addon *ad, size_t n);

/* ---- value.c ---- */
/*
 * Encode value v of type `type` for storage: sets *data and *len to the
 * bytes (in ad->val, or inside v for Buffers) and *flags to the entry's
 * flags word.  Throws and returns false on a wrong type, or a value over
 * `limit` bytes.
 */
bool kva_value_encode(napi_env env, struct kvshm_addon *ad, napi_value v,
                      uint32_t type, size_t limit, const void **data,
                      size_t *len, uint32_t *flags);
/* Make a JS value of the type in flags from len bytes at data. */
napi_value kva_value_decode(napi_env env, struct kvshm_addon *ad,
                            const void *data, size_t len, uint32_t flags);

/* ---- cache.c ---- */
/* Fetch a method's handle from its callback data; throw if it was closed. */
#define CACHE_ARGS(n)                                                          \
  size_t argc = (n);                                                           \
  napi_value argv[(n) > 0 ? (n) : 1];                                          \
  struct kva_cache *c;                                                         \
  KVA_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, (void **)&c)); \
  if (!c->kv)                                                                  \
    return kva_throw_closed(env, c->ad);                                       \
  struct kvshm_addon *ad = c->ad
napi_value kva_boolean(napi_env env, bool b);
/* o[name] = v, a number. */
void kva_put(napi_env env, napi_value o, const char *name, double v);
napi_value kva_undefined(napi_env env);
/* The largest value with a key of klen bytes in c's cache. */
size_t kva_value_limit(struct kva_cache *c, size_t klen);
napi_value kva_open(napi_env env, napi_callback_info info);
napi_value kva_unlink(napi_env env, napi_callback_info info);
/* Drop one reference on c (a finalizer; iterators hold one each). */
void kva_cache_unref(napi_env env, void *data, void *hint);
/* Close every handle of the environment (teardown). */
void kva_cache_close_all(struct kvshm_addon *ad);

/* ---- many.c: multi-key calls, peeks and compare-deletes ---- */
napi_value kva_get_many(napi_env env, napi_callback_info info);
napi_value kva_set_many(napi_env env, napi_callback_info info);
napi_value kva_delete_many(napi_env env, napi_callback_info info);
napi_value kva_delete_if(napi_env env, napi_callback_info info);
napi_value kva_get_ex(napi_env env, napi_callback_info info);
napi_value kva_last_expiry(napi_env env, napi_callback_info info);

/* ---- near.c: a near cache's calls (lib/redis.js) ---- */
napi_value kva_near_get(napi_env env, napi_callback_info info);
napi_value kva_epoch(napi_env env, napi_callback_info info);
napi_value kva_set_if_epoch(napi_env env, napi_callback_info info);
napi_value kva_invalidate(napi_env env, napi_callback_info info);
napi_value kva_near_claim(napi_env env, napi_callback_info info);
napi_value kva_near_release(napi_env env, napi_callback_info info);
napi_value kva_near_synced(napi_env env, napi_callback_info info);
napi_value kva_near_configure(napi_env env, napi_callback_info info);
napi_value kva_near_config(napi_env env, napi_callback_info info);
napi_value kva_near_count(napi_env env, napi_callback_info info);
napi_value kva_near_delay(napi_env env, napi_callback_info info);
napi_value kva_near_stats(napi_env env, napi_callback_info info);
/* clockMs(): kvshm_clock_ms, on the binding itself (addon.c). */
napi_value kva_clock_ms(napi_env env, napi_callback_info info);

/* ---- iter.c ---- */
/* cache.iter(prefix, values): a new iterator handle. */
napi_value kva_iter_new(napi_env env, struct kva_cache *c, napi_value prefix,
                        bool values);
/* End an iteration and unlink it from its cache (cache close, finalizer). */
void kva_iter_end(struct kva_iter *it);

#endif /* KVSHM_ADDON_H */
