/*
 * value.c - typed values to bytes and back.  The JS layer picks the type
 * (it can tell a Buffer from a Uint8Array, and stringifies JSON and bigint
 * values); here a value becomes the bytes libshm stores, with its type in
 * the low byte of the entry's flags word (addon.h), and comes back as the
 * same type.  Numbers are stored as decimal text so that kvshm_incr, which
 * keeps integers as text, works on them and keeps their type.
 */
#include "addon.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The shortest decimal text that reads back as exactly d: integers as
 * integers ("42", so incr works), others with %.15g..%.17g.
 */
static size_t number_text(double d, char *out, size_t outsz) {
  if (isnan(d))
    return (size_t)snprintf(out, outsz, "NaN");
  if (isinf(d))
    return (size_t)snprintf(out, outsz, d > 0 ? "Infinity" : "-Infinity");
  if (d == 0)
    return (size_t)snprintf(out, outsz, signbit(d) ? "-0" : "0");
  if (d == trunc(d) && fabs(d) < 9223372036854775808.0)
    return (size_t)snprintf(out, outsz, "%lld", (long long)d);
  for (int prec = 15; prec < 17; prec++) {
    size_t n = (size_t)snprintf(out, outsz, "%.*g", prec, d);
    if (strtod(out, NULL) == d)
      return n;
  }
  return (size_t)snprintf(out, outsz, "%.17g", d);
}

bool kva_value_encode(napi_env env, struct kvshm_addon *ad, napi_value v,
                      uint32_t type, size_t limit, const void **data,
                      size_t *len, uint32_t *flags) {
  *flags = type;
  switch (type) {
  case KVA_T_STRING:
  case KVA_T_JSON: /* JS passes JSON.stringify(value) */
  case KVA_T_BIGINT: /* JS passes value.toString() */ {
    bool ascii;
    if (!kva_string(env, ad, v, limit, len, &ascii))
      return false;
    if (ascii)
      *flags |= KVA_F_ASCII;
    *data = ad->val;
    return true;
  }
  case KVA_T_NUMBER: {
    double d;
    if (napi_get_value_double(env, v, &d) != napi_ok) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                            "value must be a number for this type");
      return false;
    }
    *len = number_text(d, (char *)ad->val, ad->valcap);
    *data = ad->val;
    *flags |= KVA_F_ASCII;
    return true;
  }
  case KVA_T_BOOLEAN: {
    bool b;
    if (napi_get_value_bool(env, v, &b) != napi_ok) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                            "value must be a boolean for this type");
      return false;
    }
    *data = b ? "true" : "false";
    *len = b ? 4 : 5;
    *flags |= KVA_F_ASCII;
    return true;
  }
  case KVA_T_BUFFER:
  case KVA_T_UINT8: {
    bool is_ta = false;
    napi_is_typedarray(env, v, &is_ta);
    napi_typedarray_type tt;
    void *p = NULL;
    if (is_ta &&
        napi_get_typedarray_info(env, v, &tt, len, &p, NULL, NULL) == napi_ok &&
        tt == napi_uint8_array) {
      if (*len > limit) {
        kva_throw_too_big(env, *len, false, limit);
        return false;
      }
      *data = p ? p : (const void *)"";
      return true;
    }
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                          "value must be a Buffer or Uint8Array for this type");
    return false;
  }
  default:
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "unknown value type");
    return false;
  }
}

static napi_value call_global(napi_env env, napi_ref fn_ref, napi_value arg) {
  napi_value fn, undef, out;
  KVA_CHECK(env, napi_get_reference_value(env, fn_ref, &fn));
  KVA_CHECK(env, napi_get_undefined(env, &undef));
  if (napi_call_function(env, undef, fn, 1, &arg, &out) != napi_ok)
    return NULL; /* the exception (e.g. SyntaxError) propagates */
  return out;
}

/* Decimal text to double; the text came from number_text or kvshm_incr. */
static double number_parse(const char *p, size_t len) {
  char tmp[64];
  if (len >= sizeof tmp)
    return NAN;
  memcpy(tmp, p, len);
  tmp[len] = '\0';
  char *end;
  double d = strtod(tmp, &end); /* reads NaN, Infinity and -0 too */
  return end == tmp + len && len ? d : NAN;
}

/* Text as a JS string: ASCII (flagged at set) is a plain copy for V8. */
static napi_status text(napi_env env, const void *data, size_t len,
                        uint32_t flags, napi_value *out) {
  if (flags & KVA_F_ASCII)
    return napi_create_string_latin1(env, data, len, out);
  return napi_create_string_utf8(env, data, len, out);
}

napi_value kva_value_decode(napi_env env, struct kvshm_addon *ad,
                            const void *data, size_t len, uint32_t flags) {
  napi_value out;
  switch (flags & KVA_TYPE_MASK) {
  case KVA_T_STRING:
    KVA_CHECK(env, text(env, data, len, flags, &out));
    return out;
  case KVA_T_NUMBER:
    KVA_CHECK(env, napi_create_double(env, number_parse(data, len), &out));
    return out;
  case KVA_T_BOOLEAN:
    KVA_CHECK(
        env, napi_get_boolean(env, len == 4 && !memcmp(data, "true", 4), &out));
    return out;
  case KVA_T_JSON: {
    napi_value s;
    KVA_CHECK(env, text(env, data, len, flags, &s));
    return call_global(env, ad->json_parse, s);
  }
  case KVA_T_BIGINT: {
    napi_value s;
    KVA_CHECK(env, text(env, data, len, flags, &s));
    return call_global(env, ad->bigint_fn, s);
  }
  case KVA_T_UINT8: {
    napi_value ab;
    void *p;
    KVA_CHECK(env, napi_create_arraybuffer(env, len, &p, &ab));
    if (len)
      memcpy(p, data, len);
    KVA_CHECK(env,
              napi_create_typedarray(env, napi_uint8_array, len, ab, 0, &out));
    return out;
  }
  case KVA_T_BUFFER:
  default: /* written by another program with its own flags: raw bytes */
    KVA_CHECK(env, napi_create_buffer_copy(env, len, data, NULL, &out));
    return out;
  }
}
