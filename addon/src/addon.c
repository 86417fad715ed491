/*
 * addon.c - the module: per-environment state, the constants exported to
 * JS, errors, and key conversion shared by every method.
 *
 * The JS layer (lib/) validates arguments before calling in, so the checks
 * here are the cheap ones that keep native code safe when the binding is
 * called directly.
 */
#include "addon.h"

#include "kvshm_test.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

napi_value kva_napi_failed(napi_env env, napi_status st) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) {
    const napi_extended_error_info *info = NULL;
    napi_get_last_error_info(env, &info);
    napi_throw_error(env, "ENAPI",
                     info && info->error_message ? info->error_message
                                                 : "N-API call failed");
  }
  (void)st;
  return NULL;
}

/* new KvshmError(message, code, errno); falls back to Error before init. */
static napi_value throw_kvshm_error(napi_env env, struct kvshm_addon *ad,
                                    const char *msg, const char *code,
                                    int status) {
  napi_value ctor = NULL, argv[3], err;
  if (ad->error_ctor)
    napi_get_reference_value(env, ad->error_ctor, &ctor);
  if (!ctor) {
    napi_throw_error(env, code, msg);
    return NULL;
  }
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &argv[0]);
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &argv[1]);
  napi_create_int32(env, status, &argv[2]);
  if (napi_new_instance(env, ctor, 3, argv, &err) == napi_ok)
    napi_throw(env, err);
  return NULL;
}

napi_value kva_throw(napi_env env, struct kvshm_addon *ad, int rc) {
  const char *detail = kvshm_errdetail();
  return throw_kvshm_error(env, ad, *detail ? detail : kvshm_strerror(rc),
                           kvshm_err_name(rc), rc);
}

napi_value kva_throw_closed(napi_env env, struct kvshm_addon *ad) {
  return throw_kvshm_error(env, ad, "the cache is closed", "ECLOSED", 0);
}

bool kva_valbuf(napi_env env, struct kvshm_addon *ad, size_t n) {
  if (n <= ad->valcap)
    return true;
  size_t cap = ad->valcap ? ad->valcap : KVA_VALBUF_INIT;
  while (cap < n)
    cap = cap > SIZE_MAX / 2 ? n : cap * 2;
  unsigned char *p = malloc(cap);
  if (!p) {
    napi_throw_error(env, "ENOMEM", "out of memory for a value buffer");
    return false;
  }
  free(ad->val);
  ad->val = p;
  ad->valcap = cap;
  return true;
}

napi_value kva_throw_too_big(napi_env env, size_t vlen, bool at_least,
                             size_t limit) {
  char msg[512];
  snprintf(msg, sizeof msg,
           "value of %s%zu bytes is over this cache's limit "
           "of %zu bytes (with this key; an entry fills at most half of one "
           "stripe, memory / stripes / 2): open the cache with more memory "
           "(option `memory`), fewer stripes (`stripes`) or a larger "
           "`slotSize`, or keep values this large elsewhere and cache their "
           "key or location",
           at_least ? "at least " : "", vlen, limit);
  napi_value code, text, err;
  if (napi_create_string_utf8(env, "ETOOBIG", NAPI_AUTO_LENGTH, &code) ==
          napi_ok &&
      napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text) == napi_ok &&
      napi_create_range_error(env, code, text, &err) == napi_ok)
    napi_throw(env, err);
  return NULL;
}

void kva_trim(struct kvshm_addon *ad) {
  if (ad->valcap > KVA_VALBUF_KEEP) {
    unsigned char *p = malloc(KVA_VALBUF_INIT);
    if (p) {
      free(ad->val);
      ad->val = p;
      ad->valcap = KVA_VALBUF_INIT;
    }
  }
  if (ad->u16cap > KVA_VALBUF_KEEP / 2) {
    uint16_t *p = malloc(2 * (KVSHM_KEY_MAX + 2u) * sizeof *p);
    if (p) {
      free(ad->u16);
      ad->u16 = p;
      ad->u16cap = 2 * (KVSHM_KEY_MAX + 2u);
    }
  }
}

/* ---- test hooks ------------------------------------------------------- */

/*
 * The hooks that move a handle's clock and signal the process inside a write
 * (lib/testing.js) would let any code in the process change what every
 * other process sees expire, or kill this one.  They exist only in a process
 * started with KVSHM_TESTING=1 (the test runner sets it), read once, at the
 * first load of the addon: a process-wide constant, the same for every
 * environment, that nothing running after that can turn on.
 */
static pthread_once_t testing_once = PTHREAD_ONCE_INIT;
static bool testing_on;

static void testing_read_env(void) {
  const char *v = getenv("KVSHM_TESTING");
  testing_on = v && strcmp(v, "1") == 0;
}

bool kva_testing(void) {
  pthread_once(&testing_once, testing_read_env);
  return testing_on;
}

/* ---- module functions ------------------------------------------------- */

/* binding.init(KvshmError): the class native errors are made of. */
static napi_value addon_init(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  struct kvshm_addon *ad;
  KVA_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, (void **)&ad));
  napi_valuetype t;
  KVA_CHECK(env, napi_typeof(env, argv[0], &t));
  if (argc < 1 || t != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                          "init needs the KvshmError class");
    return NULL;
  }
  if (ad->error_ctor)
    napi_delete_reference(env, ad->error_ctor);
  KVA_CHECK(env, napi_create_reference(env, argv[0], 1, &ad->error_ctor));
  return NULL;
}

/* binding.errName(status) / binding.strerror(status) */
static napi_value addon_err_text(napi_env env, napi_callback_info info,
                                 const char *(*fn)(int)) {
  size_t argc = 1;
  napi_value argv[1], out;
  int32_t rc = 0;
  KVA_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_int32(env, argv[0], &rc) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                          "status must be a number");
    return NULL;
  }
  KVA_CHECK(env, napi_create_string_utf8(env, fn(rc), NAPI_AUTO_LENGTH, &out));
  return out;
}
static napi_value addon_err_name(napi_env env, napi_callback_info info) {
  return addon_err_text(env, info, kvshm_err_name);
}
static napi_value addon_strerror(napi_env env, napi_callback_info info) {
  return addon_err_text(env, info, kvshm_strerror);
}

/* ---- constants -------------------------------------------------------- */

static napi_status set_num(napi_env env, napi_value obj, const char *name,
                           double v) {
  napi_value n;
  napi_status st = napi_create_double(env, v, &n);
  return st == napi_ok ? napi_set_named_property(env, obj, name, n) : st;
}

static napi_value make_constants(napi_env env) {
  napi_value c, errors, s;
  if (napi_create_object(env, &c) != napi_ok ||
      napi_create_object(env, &errors) != napi_ok)
    return NULL;
#define KVA_ERR_CONST_(name, code, msg) set_num(env, errors, "E" #name, code);
  KVSHM_ERRNO_MAP(KVA_ERR_CONST_)
#undef KVA_ERR_CONST_
  napi_set_named_property(env, c, "errors", errors);
  set_num(env, c, "DEFAULT_MEMORY", KVSHM_DEFAULT_MEMORY);
  set_num(env, c, "DEFAULT_SLOT", KVSHM_DEFAULT_SLOT);
  set_num(env, c, "MIN_SLOT", KVSHM_MIN_SLOT);
  set_num(env, c, "MAX_SLOT", KVSHM_MAX_SLOT);
  set_num(env, c, "MAX_STRIPES", KVSHM_MAX_STRIPES);
  set_num(env, c, "KEY_MAX", KVSHM_KEY_MAX);
  set_num(env, c, "PREFIX_MAX", KVSHM_PREFIX_MAX);
  set_num(env, c, "NAME_MAX", KVSHM_NAME_MAX);
  set_num(env, c, "DEFAULT_LOCK_TIMEOUT", KVSHM_DEFAULT_LOCK_TIMEOUT_MS);
  set_num(env, c, "DEFAULT_FLUSH_DELAY", KVSHM_DEFAULT_FLUSH_DELAY_MS);
  set_num(env, c, "MAX_FLUSH_DELAY", 3600.0 * 1000.0);
  set_num(env, c, "PATH_MAX", 4095);
  set_num(env, c, "TTL_DEFAULT", KVSHM_TTL_DEFAULT);
  set_num(env, c, "TTL_NEVER", KVSHM_TTL_NEVER);
  set_num(env, c, "NX", KVSHM_NX);
  set_num(env, c, "XX", KVSHM_XX);
  set_num(env, c, "KEEPTTL", KVSHM_KEEPTTL);
  set_num(env, c, "RDONLY", KVSHM_RDONLY);
  set_num(env, c, "NOCREATE", KVSHM_NOCREATE);
  set_num(env, c, "NOREAPER", KVSHM_NOREAPER);
  set_num(env, c, "T_STRING", KVA_T_STRING);
  set_num(env, c, "T_BUFFER", KVA_T_BUFFER);
  set_num(env, c, "T_UINT8", KVA_T_UINT8);
  set_num(env, c, "T_NUMBER", KVA_T_NUMBER);
  set_num(env, c, "T_BOOLEAN", KVA_T_BOOLEAN);
  set_num(env, c, "T_JSON", KVA_T_JSON);
  set_num(env, c, "T_BIGINT", KVA_T_BIGINT);
  set_num(env, c, "NEAR_READS", KVSHM_NEAR_READS);
  set_num(env, c, "NEAR_INVALID", KVSHM_NEAR_INVALID);
  set_num(env, c, "NEAR_FLUSHES", KVSHM_NEAR_FLUSHES);
  set_num(env, c, "NEAR_REFUSED", KVSHM_NEAR_REFUSED);
  napi_value tp;
  if (napi_create_object(env, &tp) == napi_ok) {
    set_num(env, tp, "SET_ALLOCATED", KVSHM_TP_SET_ALLOCATED);
    set_num(env, tp, "SET_HALF_WRITTEN", KVSHM_TP_SET_HALF_WRITTEN);
    set_num(env, tp, "SET_BEFORE_COMMIT", KVSHM_TP_SET_BEFORE_COMMIT);
    set_num(env, tp, "SET_COMMITTED", KVSHM_TP_SET_COMMITTED);
    set_num(env, tp, "SET_LINKED", KVSHM_TP_SET_LINKED);
    set_num(env, tp, "FREE_HALF", KVSHM_TP_FREE_HALF);
    napi_set_named_property(env, c, "testPoints", tp);
  }
  if (napi_create_string_utf8(env, KVSHM_VERSION_STRING, NAPI_AUTO_LENGTH,
                              &s) == napi_ok)
    napi_set_named_property(env, c, "VERSION", s);
  return c;
}

/* ---- environment lifetime --------------------------------------------- */

/* Before the environment's objects are finalized: unmap every segment. */
static void addon_cleanup_hook(void *arg) {
  struct kvshm_addon *ad = arg;
  ad->closing = true;
  kva_cache_close_all(ad);
}

static void addon_free(napi_env env, void *data, void *hint) {
  (void)hint;
  struct kvshm_addon *ad = data;
  ad->closing = true;
  kva_cache_close_all(ad);
  napi_remove_env_cleanup_hook(env, addon_cleanup_hook, ad);
  if (ad->error_ctor)
    napi_delete_reference(env, ad->error_ctor);
  if (ad->json_parse)
    napi_delete_reference(env, ad->json_parse);
  if (ad->bigint_fn)
    napi_delete_reference(env, ad->bigint_fn);
  free(ad->val);
  free(ad->u16);
  for (int i = 0; i < 3; i++)
    free(ad->many[i]);
  free(ad);
}

static napi_status global_ref(napi_env env, const char *obj, const char *fn,
                              napi_ref *out) {
  napi_value g, o, f;
  napi_status st = napi_get_global(env, &g);
  if (st == napi_ok && obj) {
    st = napi_get_named_property(env, g, obj, &o);
    g = o;
  }
  if (st == napi_ok)
    st = napi_get_named_property(env, g, fn, &f);
  if (st == napi_ok)
    st = napi_create_reference(env, f, 1, out);
  return st;
}

NAPI_MODULE_INIT() {
  struct kvshm_addon *ad = calloc(1, sizeof *ad);
  if (!ad) {
    napi_throw_error(env, "ENOMEM", "out of memory loading kvshm");
    return NULL;
  }
  ad->env = env;
  (void)kva_testing(); /* the opt-in as it is now; later changes do not count */
  if (napi_set_instance_data(env, ad, addon_free, NULL) != napi_ok) {
    free(ad);
    return kva_napi_failed(env, napi_generic_failure);
  }
  KVA_CHECK(env, napi_add_env_cleanup_hook(env, addon_cleanup_hook, ad));
  KVA_CHECK(env, global_ref(env, "JSON", "parse", &ad->json_parse));
  KVA_CHECK(env, global_ref(env, NULL, "BigInt", &ad->bigint_fn));
  if (!kva_valbuf(env, ad, KVA_VALBUF_INIT) ||
      !kva_u16buf(env, ad, KVSHM_KEY_MAX + 2))
    return NULL;

  napi_property_descriptor props[] = {
      {"init", NULL, addon_init, NULL, NULL, NULL, napi_default, ad},
      {"open", NULL, kva_open, NULL, NULL, NULL, napi_default, ad},
      {"unlink", NULL, kva_unlink, NULL, NULL, NULL, napi_default, ad},
      {"errName", NULL, addon_err_name, NULL, NULL, NULL, napi_default, ad},
      {"strerror", NULL, addon_strerror, NULL, NULL, NULL, napi_default, ad},
      {"clockMs", NULL, kva_clock_ms, NULL, NULL, NULL, napi_default, ad},
  };
  KVA_CHECK(env, napi_define_properties(env, exports,
                                        sizeof props / sizeof props[0], props));
  napi_value c = make_constants(env);
  if (!c)
    return kva_napi_failed(env, napi_generic_failure);
  KVA_CHECK(env, napi_set_named_property(env, exports, "constants", c));
  return exports;
}
