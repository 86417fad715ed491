/*
 * cache.c - the handle behind a JS cache object, and its methods.
 *
 * open() returns a plain object whose methods are functions created for
 * this one handle, each carrying the struct kva_cache pointer as its N-API
 * callback data: a call finds its handle without an unwrap.  The object is
 * napi_wrap'ed and every method has a finalizer; the struct is freed when
 * the last of them is collected (a reference count), so no method can
 * outlive it.
 *
 * The hot path (get, set, has, delete, incr) converts the key into the
 * environment's key buffer, calls libshm, and builds only the result: no
 * allocation per call beyond the returned value.
 */
#include "addon.h"

#include "kvshm_test.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- lifetime --------------------------------------------------------- */

static void cache_close(struct kva_cache *c) {
  while (c->iters) {
    c->iters->cache_closed = true;
    kva_iter_end(c->iters);
  }
  if (c->kv) {
    kvshm_close(c->kv);
    c->kv = NULL;
  }
}

static void cache_unlink(struct kva_cache *c) {
  if (c->pprev) {
    *c->pprev = c->next;
    if (c->next)
      c->next->pprev = c->pprev;
    c->pprev = NULL;
    c->next = NULL;
  }
}

/* Finalizer of the handle object and of each method: drop one reference. */
void kva_cache_unref(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  struct kva_cache *c = data;
  if (--c->refs)
    return;
  cache_close(c);
  cache_unlink(c);
  free(c->name);
  free(c);
}

void kva_cache_close_all(struct kvshm_addon *ad) {
  while (ad->caches) {
    struct kva_cache *c = ad->caches;
    cache_close(c);
    cache_unlink(c);
  }
}

napi_value kva_boolean(napi_env env, bool b) {
  napi_value v;
  KVA_CHECK(env, napi_get_boolean(env, b, &v));
  return v;
}

napi_value kva_undefined(napi_env env) {
  napi_value v;
  KVA_CHECK(env, napi_get_undefined(env, &v));
  return v;
}
#define boolean kva_boolean
#define undefined kva_undefined
#define put kva_put

/* ---- entries ---------------------------------------------------------- */

/* get(key): the value, or undefined when absent or expired. */
static napi_value cache_get(napi_env env, napi_callback_info info) {
  CACHE_ARGS(1);
  size_t klen, vlen;
  uint32_t flags;
  if (!kva_key(env, ad, argv[0], &klen))
    return NULL;
  int rc;
  for (;;) {
    rc = kvshm_get(c->kv, ad->key, klen, ad->val, ad->valcap, &vlen, &flags);
    if (rc != KVSHM_EBUFSIZE)
      break;
    if (!kva_valbuf(env, ad, vlen)) /* it may grow again before the retry */
      return NULL;
  }
  if (rc == KVSHM_ENOTFOUND)
    return undefined(env);
  if (rc)
    return kva_throw(env, ad, rc);
  napi_value v = kva_value_decode(env, ad, ad->val, vlen, flags);
  kva_trim(ad);
  return v;
}

/* The largest value with a key of klen bytes. */
size_t kva_value_limit(struct kva_cache *c, size_t klen) {
  uint64_t room = c->max_value + 16;
  return room > klen ? (size_t)(room - klen) : 0;
}

/*
 * set(key, value, type, ttlMs = KVSHM_TTL_DEFAULT, opts = 0): true when
 * stored, false when NX/XX said no.
 */
static napi_value cache_set(napi_env env, napi_callback_info info) {
  CACHE_ARGS(5);
  size_t klen, vlen;
  const void *val;
  uint32_t type = KVA_T_STRING, opts = 0, flags;
  int64_t ttl = KVSHM_TTL_DEFAULT;
  if (!kva_key(env, ad, argv[0], &klen))
    return NULL;
  if (argc > 2)
    KVA_CHECK(env, napi_get_value_uint32(env, argv[2], &type));
  if (argc > 3)
    KVA_CHECK(env, napi_get_value_int64(env, argv[3], &ttl));
  if (argc > 4)
    KVA_CHECK(env, napi_get_value_uint32(env, argv[4], &opts));
  size_t limit = kva_value_limit(c, klen);
  bool ok =
      kva_value_encode(env, ad, argv[1], type, limit, &val, &vlen, &flags);
  int rc =
      ok ? kvshm_set(c->kv, ad->key, klen, val, vlen, flags, ttl, opts) : 0;
  kva_trim(ad);
  if (!ok)
    return NULL;
  if (rc == KVSHM_EEXIST || (rc == KVSHM_ENOTFOUND && (opts & KVSHM_XX)))
    return boolean(env, false);
  if (rc == KVSHM_ETOOBIG && vlen > limit)
    return kva_throw_too_big(env, vlen, false, limit);
  if (rc)
    return kva_throw(env, ad, rc);
  return boolean(env, true);
}

static napi_value cache_has(napi_env env, napi_callback_info info) {
  CACHE_ARGS(1);
  size_t klen;
  if (!kva_key(env, ad, argv[0], &klen))
    return NULL;
  int rc = kvshm_has(c->kv, ad->key, klen);
  if (rc && rc != KVSHM_ENOTFOUND)
    return kva_throw(env, ad, rc);
  return boolean(env, rc == KVSHM_OK);
}

static napi_value cache_delete(napi_env env, napi_callback_info info) {
  CACHE_ARGS(1);
  size_t klen;
  if (!kva_key(env, ad, argv[0], &klen))
    return NULL;
  int rc = kvshm_del(c->kv, ad->key, klen);
  if (rc && rc != KVSHM_ENOTFOUND)
    return kva_throw(env, ad, rc);
  return boolean(env, rc == KVSHM_OK);
}

/* incr(key, delta): the new value; a missing key starts at 0 as a number. */
static napi_value cache_incr(napi_env env, napi_callback_info info) {
  CACHE_ARGS(2);
  size_t klen;
  int64_t delta = 1, result = 0;
  if (!kva_key(env, ad, argv[0], &klen))
    return NULL;
  if (argc > 1)
    KVA_CHECK(env, napi_get_value_int64(env, argv[1], &delta));
  int rc = kvshm_incr(c->kv, ad->key, klen, delta, KVA_T_NUMBER | KVA_F_ASCII,
                      &result);
  if (rc)
    return kva_throw(env, ad, rc);
  napi_value v;
  KVA_CHECK(env, napi_create_int64(env, result, &v));
  return v;
}

/* clear(prefix): every key, or every key starting with the string prefix. */
static napi_value cache_clear(napi_env env, napi_callback_info info) {
  CACHE_ARGS(1);
  size_t plen = 0;
  napi_valuetype t = napi_undefined;
  if (argc > 0)
    KVA_CHECK(env, napi_typeof(env, argv[0], &t));
  if (t != napi_undefined && !kva_key(env, ad, argv[0], &plen))
    return NULL;
  int rc = plen ? kvshm_clear_prefix(c->kv, ad->key, plen) : kvshm_clear(c->kv);
  if (rc)
    return kva_throw(env, ad, rc);
  return undefined(env);
}

/* ---- introspection ---------------------------------------------------- */

static napi_value cache_size(napi_env env, napi_callback_info info) {
  CACHE_ARGS(0);
  kvshm_stats st;
  int rc = kvshm_stats_get(c->kv, &st);
  if (rc)
    return kva_throw(env, ad, rc);
  napi_value v;
  KVA_CHECK(env, napi_create_double(env, (double)st.entries, &v));
  return v;
}

void kva_put(napi_env env, napi_value o, const char *name, double v) {
  napi_value n;
  if (napi_create_double(env, v, &n) == napi_ok)
    napi_set_named_property(env, o, name, n);
}

/* stats(): every figure of kvshm_stats, named like the JS options. */
static napi_value cache_stats(napi_env env, napi_callback_info info) {
  CACHE_ARGS(0);
  kvshm_stats st;
  int rc = kvshm_stats_get(c->kv, &st);
  if (rc)
    return kva_throw(env, ad, rc);
  napi_value o;
  KVA_CHECK(env, napi_create_object(env, &o));
  put(env, o, "entries", (double)st.entries);
  put(env, o, "bytes", (double)st.bytes);
  put(env, o, "hits", (double)st.hits);
  put(env, o, "misses", (double)st.misses);
  put(env, o, "storeHits", (double)st.store_hits);
  put(env, o, "sets", (double)st.sets);
  put(env, o, "deletes", (double)st.deletes);
  put(env, o, "evictions", (double)st.evictions);
  put(env, o, "expirations", (double)st.expirations);
  put(env, o, "corrupt", (double)st.corrupt);
  put(env, o, "repairs", (double)st.repairs);
  put(env, o, "slotsUsed", (double)st.slots_used);
  put(env, o, "slotsFree", (double)st.slots_free);
  put(env, o, "dirty", (double)st.dirty);
  put(env, o, "dirtyAge", (double)st.dirty_age_ms);
  put(env, o, "spills", (double)st.spills);
  put(env, o, "tombstones", (double)st.tombstones);
  put(env, o, "memory", (double)st.memory_size);
  put(env, o, "slotSize", st.slot_size);
  put(env, o, "stripes", st.stripes);
  put(env, o, "slotsPerStripe", st.slots_per_stripe);
  put(env, o, "defaultTtl", (double)st.default_ttl_ms);
  put(env, o, "persistent", st.persistent);
  put(env, o, "flushDelay", st.flush_delay_ms);
  put(env, o, "maxKey", st.max_key);
  put(env, o, "maxValue", (double)st.max_value);
  put(env, o, "layoutVersion", st.layout_version);
  put(env, o, "createdAt", (double)st.created_ms);
  put(env, o, "reaperPid", st.reaper_pid);
  put(env, o, "reaperHeartbeat", (double)st.reaper_heartbeat_ms);
  put(env, o, "reaperStarts", (double)st.reaper_starts);
  napi_value alive;
  napi_get_boolean(env, st.reaper_alive != 0, &alive);
  napi_set_named_property(env, o, "reaperAlive", alive);
  put(env, o, "clears", (double)st.clear_gen);
  return o;
}

/* storeStats(): the SQLite tier's figures (all 0 when memory-only). */
static napi_value cache_store_stats(napi_env env, napi_callback_info info) {
  CACHE_ARGS(0);
  kvshm_store_stats st;
  int rc = kvshm_store_stats_get(c->kv, &st);
  if (rc)
    return kva_throw(env, ad, rc);
  napi_value o;
  KVA_CHECK(env, napi_create_object(env, &o));
  put(env, o, "rows", (double)st.rows);
  put(env, o, "bytes", (double)st.bytes);
  put(env, o, "fileBytes", (double)st.file_bytes);
  put(env, o, "expired", (double)st.expired);
  return o;
}

static napi_value cache_flush(napi_env env, napi_callback_info info) {
  CACHE_ARGS(0);
  int rc = kvshm_flush(c->kv);
  if (rc)
    return kva_throw(env, ad, rc);
  return undefined(env);
}

/* sqlitePath(): the absolute path of the SQLite file, "" if memory-only. */
static napi_value cache_sqlite_path(napi_env env, napi_callback_info info) {
  CACHE_ARGS(0);
  (void)ad;
  napi_value v;
  KVA_CHECK(env, napi_create_string_utf8(env, kvshm_sqlite_path(c->kv),
                                         NAPI_AUTO_LENGTH, &v));
  return v;
}

/* iter(prefix, values): an iterator handle (iter.c). */
static napi_value cache_iter(napi_env env, napi_callback_info info) {
  CACHE_ARGS(2);
  (void)ad;
  bool values = false;
  if (argc > 1)
    napi_get_value_bool(env, argv[1], &values);
  return kva_iter_new(env, c, argv[0], values);
}

/* ---- close, destroy --------------------------------------------------- */

/* close(): unmap.  Idempotent: closing a closed cache does nothing. */
static napi_value cache_close_js(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  struct kva_cache *c;
  KVA_CHECK(env, napi_get_cb_info(env, info, &argc, NULL, NULL, (void **)&c));
  cache_close(c);
  return undefined(env);
}

/* destroy(): close, then remove the segment's name.  True if removed. */
static napi_value cache_destroy(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  struct kva_cache *c;
  KVA_CHECK(env, napi_get_cb_info(env, info, &argc, NULL, NULL, (void **)&c));
  cache_close(c);
  int rc = kvshm_unlink_config(c->name, &c->trust);
  if (rc && rc != -ENOENT)
    return kva_throw(env, c->ad, rc);
  return boolean(env, rc == KVSHM_OK);
}

/* unlink(name): remove a cache's segment by name.  True if removed. */
napi_value kva_unlink(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  struct kvshm_addon *ad;
  KVA_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, (void **)&ad));
  size_t len;
  if (!kva_key(env, ad, argv[0], &len)) /* names are shorter than keys */
    return NULL;
  int rc = kvshm_unlink(ad->key);
  if (rc && rc != -ENOENT)
    return kva_throw(env, ad, rc);
  return boolean(env, rc == KVSHM_OK);
}

/*
 * ---- test hooks (lib/testing.js) --------------------------------------
 * _inMemory and _verify only read.  _setClock and _signalAt are put on a
 * handle only in a process started with KVSHM_TESTING=1 (see kva_testing).
 */

static uint64_t test_clock(void *ctx) {
  return ((struct kva_cache *)ctx)->test_now;
}

/* _setClock(ms): this handle's wall clock reads ms; -1: the real clock. */
static napi_value cache_set_clock(napi_env env, napi_callback_info info) {
  CACHE_ARGS(1);
  (void)ad;
  int64_t ms = -1;
  KVA_CHECK(env, napi_get_value_int64(env, argv[0], &ms));
  if (ms < 0) {
    kvshm_test_set_clock(c->kv, NULL, NULL);
  } else {
    c->test_now = (uint64_t)ms;
    kvshm_test_set_clock(c->kv, test_clock, c);
  }
  return undefined(env);
}

/* At the chosen test point (with the stripe lock held), signal ourselves. */
static void test_signal_hook(kvshm *kv, kvshm_test_point p, void *ctx) {
  (void)kv;
  struct kva_cache *c = ctx;
  if ((int)p == c->test_point)
    kill(getpid(), c->test_signal);
}

/*
 * _signalAt(point, signal): when a write of this handle reaches the test
 * point, send this process the signal (SIGKILL: die holding the lock;
 * SIGSTOP: hold it until continued).  point 0 removes the hook.
 */
static napi_value cache_signal_at(napi_env env, napi_callback_info info) {
  CACHE_ARGS(2);
  (void)ad;
  int32_t point = 0, sig = SIGKILL;
  KVA_CHECK(env, napi_get_value_int32(env, argv[0], &point));
  if (argc > 1)
    KVA_CHECK(env, napi_get_value_int32(env, argv[1], &sig));
  c->test_point = point;
  c->test_signal = sig;
  kvshm_test_set_hook(c->kv, point ? test_signal_hook : NULL, c);
  return undefined(env);
}

/* _inMemory(key): is the key in the shared-memory tier (no SQLite look)? */
static napi_value cache_in_memory(napi_env env, napi_callback_info info) {
  CACHE_ARGS(1);
  size_t klen;
  if (!kva_key(env, ad, argv[0], &klen))
    return NULL;
  int rc = kvshm_in_memory(c->kv, ad->key, klen);
  if (rc && rc != KVSHM_ENOTFOUND)
    return kva_throw(env, ad, rc);
  return boolean(env, rc == KVSHM_OK);
}

struct verify_ctx {
  napi_env env;
  napi_value list;
  uint32_t n;
};

static void verify_report(void *ctx, const char *msg) {
  struct verify_ctx *v = ctx;
  napi_value s;
  if (napi_create_string_utf8(v->env, msg, NAPI_AUTO_LENGTH, &s) == napi_ok)
    napi_set_element(v->env, v->list, v->n++, s);
}

/* _verify(): kvshm_verify's problems, one string each ([] when healthy). */
static napi_value cache_verify(napi_env env, napi_callback_info info) {
  CACHE_ARGS(0);
  struct verify_ctx v = {env, NULL, 0};
  KVA_CHECK(env, napi_create_array(env, &v.list));
  int rc = kvshm_verify(c->kv, verify_report, &v);
  if (rc < 0)
    return kva_throw(env, ad, rc);
  return v.list;
}

/* ---- open ------------------------------------------------------------- */

/* Read a whole non-negative number property of cfg (absent: 0). */
static bool cfg_u64(napi_env env, napi_value cfg, const char *name,
                    uint64_t *out) {
  napi_value v;
  napi_valuetype t;
  double d = 0;
  *out = 0;
  if (napi_get_named_property(env, cfg, name, &v) != napi_ok ||
      napi_typeof(env, v, &t) != napi_ok)
    return false;
  if (t == napi_undefined)
    return true;
  if (t == napi_boolean) {
    bool b;
    napi_get_value_bool(env, v, &b);
    *out = b;
    return true;
  }
  if (t != napi_number || napi_get_value_double(env, v, &d) != napi_ok ||
      !(d >= 0) || d > 18446744073709549568.0) {
    char msg[96];
    snprintf(msg, sizeof msg, "option %s must be a non-negative number", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return false;
  }
  *out = (uint64_t)d;
  return true;
}

static bool cfg_u32(napi_env env, napi_value cfg, const char *name,
                    uint32_t *out) {
  uint64_t v;
  if (!cfg_u64(env, cfg, name, &v))
    return false;
  if (v > UINT32_MAX) {
    char msg[96];
    snprintf(msg, sizeof msg, "option %s must be at most %u", name, UINT32_MAX);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return false;
  }
  *out = (uint32_t)v;
  return true;
}

/* Read a string (absent: NULL) into a malloc'ed buffer. */
static bool cfg_str(napi_env env, napi_value cfg, const char *name,
                    char **out) {
  napi_value v;
  napi_valuetype t;
  size_t len;
  *out = NULL;
  if (napi_get_named_property(env, cfg, name, &v) != napi_ok ||
      napi_typeof(env, v, &t) != napi_ok)
    return false;
  if (t == napi_undefined || t == napi_null)
    return true;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) {
    char msg[96];
    snprintf(msg, sizeof msg, "option %s must be a string", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return false;
  }
  *out = malloc(len + 1);
  if (!*out) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return false;
  }
  napi_get_value_string_utf8(env, v, *out, len + 1, &len);
  return true;
}

typedef napi_value (*method_fn)(napi_env, napi_callback_info);

/* obj[name] = a function bound to c, holding a reference on it. */
static napi_status method(napi_env env, napi_value obj, const char *name,
                          method_fn fn, struct kva_cache *c) {
  napi_value f;
  napi_status st = napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, c, &f);
  if (st != napi_ok)
    return st;
  st = napi_add_finalizer(env, f, c, kva_cache_unref, NULL, NULL);
  if (st != napi_ok)
    return st;
  c->refs++;
  return napi_set_named_property(env, obj, name, f);
}

/*
 * open(name, cfg, flags): cfg is an object with memory, slotSize, stripes,
 * defaultTtl, mode, lockTimeout, sqlite, persistent, flushDelay, trust,
 * trustUid, trustGid (validated
 * by lib/options.js; absent means default).
 */
napi_value kva_open(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  struct kvshm_addon *ad;
  KVA_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, (void **)&ad));
  napi_valuetype t;
  if (argc < 3 || napi_typeof(env, argv[1], &t) != napi_ok ||
      t != napi_object) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                          "open(name, cfg, flags) needs a cfg object");
    return NULL;
  }
  size_t nlen;
  if (!kva_key(env, ad, argv[0], &nlen))
    return NULL;
  char *name = strndup(ad->key, nlen);
  uint32_t flags = 0;
  kvshm_config cfg;
  kvshm_config_init(&cfg);
  char *sqlite = NULL;
  napi_value obj = NULL;
  bool ok = name && napi_get_value_uint32(env, argv[2], &flags) == napi_ok &&
            cfg_u64(env, argv[1], "memory", &cfg.memory_size) &&
            cfg_u32(env, argv[1], "slotSize", &cfg.slot_size) &&
            cfg_u32(env, argv[1], "stripes", &cfg.stripes) &&
            cfg_u64(env, argv[1], "defaultTtl", &cfg.default_ttl_ms) &&
            cfg_u32(env, argv[1], "mode", &cfg.mode) &&
            cfg_u32(env, argv[1], "lockTimeout", &cfg.lock_timeout_ms) &&
            cfg_u32(env, argv[1], "persistent", &cfg.persistent) &&
            cfg_u32(env, argv[1], "flushDelay", &cfg.flush_delay_ms) &&
            cfg_u32(env, argv[1], "trust", &cfg.trust) &&
            cfg_u32(env, argv[1], "trustUid", &cfg.trust_uid) &&
            cfg_u32(env, argv[1], "trustGid", &cfg.trust_gid) &&
            cfg_str(env, argv[1], "sqlite", &sqlite);
  if (!ok) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending)
      napi_throw_error(env, "ENOMEM", "out of memory");
    free(name);
    free(sqlite);
    return NULL;
  }
  cfg.sqlite_path = sqlite;
  kvshm *kv;
  int rc = kvshm_open(name, &cfg, flags, &kv);
  free(sqlite);
  if (rc) {
    free(name);
    return kva_throw(env, ad, rc);
  }
  kvshm_stats kst;
  struct kva_cache *c = NULL;
  rc = kvshm_stats_get(kv, &kst);
  if (rc) {
    kvshm_close(kv);
    free(name);
    return kva_throw(env, ad, rc);
  }
  c = calloc(1, sizeof *c);
  if (!c) {
    kvshm_close(kv);
    free(name);
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  c->ad = ad;
  c->kv = kv;
  c->name = name;
  kvshm_config_init(&c->trust);
  c->trust.trust = cfg.trust;
  c->trust.trust_uid = cfg.trust_uid;
  c->trust.trust_gid = cfg.trust_gid;
  c->max_value = kst.max_value;
  c->next = ad->caches;
  if (c->next)
    c->next->pprev = &c->next;
  c->pprev = &ad->caches;
  ad->caches = c;

  /* From here c is freed by the finalizers once refs drops to 0. */
  napi_status st = napi_create_object(env, &obj);
  if (st == napi_ok)
    st = napi_wrap(env, obj, c, kva_cache_unref, NULL, NULL);
  if (st != napi_ok) {
    cache_close(c);
    cache_unlink(c);
    free(c->name);
    free(c);
    return kva_napi_failed(env, st);
  }
  c->refs = 1;
  static const struct {
    const char *name;
    method_fn fn;
    bool test_only; /* only with KVSHM_TESTING=1 (kva_testing) */
  } methods[] = {
      {"get", cache_get, false},
      {"set", cache_set, false},
      {"has", cache_has, false},
      {"delete", cache_delete, false},
      {"incr", cache_incr, false},
      {"clear", cache_clear, false},
      {"getMany", kva_get_many, false},
      {"setMany", kva_set_many, false},
      {"deleteMany", kva_delete_many, false},
      {"deleteIf", kva_delete_if, false},
      {"getEx", kva_get_ex, false},
      {"lastExpiry", kva_last_expiry, false},
      {"size", cache_size, false},
      {"stats", cache_stats, false},
      {"storeStats", cache_store_stats, false},
      {"flush", cache_flush, false},
      {"sqlitePath", cache_sqlite_path, false},
      {"iter", cache_iter, false},
      {"close", cache_close_js, false},
      {"destroy", cache_destroy, false},
      {"nearGet", kva_near_get, false},
      {"epoch", kva_epoch, false},
      {"setIfEpoch", kva_set_if_epoch, false},
      {"invalidate", kva_invalidate, false},
      {"nearClaim", kva_near_claim, false},
      {"nearRelease", kva_near_release, false},
      {"nearSynced", kva_near_synced, false},
      {"nearConfigure", kva_near_configure, false},
      {"nearConfig", kva_near_config, false},
      {"nearCount", kva_near_count, false},
      {"nearDelay", kva_near_delay, false},
      {"nearStats", kva_near_stats, false},
      {"_inMemory", cache_in_memory, false},
      {"_verify", cache_verify, false},
      {"_setClock", cache_set_clock, true},
      {"_signalAt", cache_signal_at, true},
  };
  bool testing = kva_testing();
  for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
    if (testing || !methods[i].test_only)
      KVA_CHECK(env, method(env, obj, methods[i].name, methods[i].fn, c));
  return obj;
}
