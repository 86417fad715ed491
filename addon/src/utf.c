/*
 * utf.c - JS strings to UTF-8, faster than V8's String::WriteUtf8 (which
 * Node 20's napi_get_value_string_utf8 uses, and which took a fifth of a
 * set's time in profiles): copy the UTF-16 code units out with
 * napi_get_value_string_utf16 (a plain copy), then encode here, sixteen
 * ASCII units at a time.  Lone surrogates become U+FFFD, as V8 does.  The
 * narrowing assumes a little-endian machine (x86-64, arm64).
 */
#include "addon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Encode n code units; out must hold 3 * n bytes.  Returns bytes written. */
static size_t utf16_to_utf8(const uint16_t *in, size_t n, unsigned char *out,
                            bool *ascii) {
  size_t i = 0, o = 0;
  bool all_ascii = true;
  while (i < n) {
#if defined(__SSE2__)
    /* Fast path: runs of ASCII, sixteen units per test, narrowed with
     * one pack instruction. */
    while (i + 16 <= n) {
      __m128i a = _mm_loadu_si128((const __m128i *)(in + i));
      __m128i b = _mm_loadu_si128((const __m128i *)(in + i + 8));
      __m128i hi = _mm_and_si128(_mm_or_si128(a, b), _mm_set1_epi16(-128));
      if (_mm_movemask_epi8(_mm_cmpeq_epi16(hi, _mm_setzero_si128())) != 0xffff)
        break;
      _mm_storeu_si128((__m128i *)(out + o), _mm_packus_epi16(a, b));
      i += 16;
      o += 16;
    }
#endif
    /* Runs of ASCII, eight units per test, narrowed four at a time inside
     * a 64-bit word (each unit's high byte is 0). */
    while (i + 8 <= n) {
      uint64_t a, b;
      memcpy(&a, in + i, 8);
      memcpy(&b, in + i + 4, 8);
      if ((a | b) & 0xff80ff80ff80ff80ull)
        break;
      a = (a | (a >> 8)) & 0x0000ffff0000ffffull;
      b = (b | (b >> 8)) & 0x0000ffff0000ffffull;
      uint32_t lo = (uint32_t)(a | (a >> 16)), hi = (uint32_t)(b | (b >> 16));
      memcpy(out + o, &lo, 4);
      memcpy(out + o + 4, &hi, 4);
      i += 8;
      o += 8;
    }
    if (i >= n)
      break;
    uint32_t c = in[i++];
    if (c < 0x80) {
      out[o++] = (unsigned char)c;
      continue;
    }
    all_ascii = false;
    if (c < 0x800) {
      out[o++] = (unsigned char)(0xc0 | (c >> 6));
      out[o++] = (unsigned char)(0x80 | (c & 0x3f));
      continue;
    }
    if (c >= 0xd800 && c <= 0xdbff && i < n && in[i] >= 0xdc00 &&
        in[i] <= 0xdfff) {
      c = 0x10000 + ((c - 0xd800) << 10) + (in[i++] - 0xdc00u);
      out[o++] = (unsigned char)(0xf0 | (c >> 18));
      out[o++] = (unsigned char)(0x80 | ((c >> 12) & 0x3f));
      out[o++] = (unsigned char)(0x80 | ((c >> 6) & 0x3f));
      out[o++] = (unsigned char)(0x80 | (c & 0x3f));
      continue;
    }
    if (c >= 0xd800 && c <= 0xdfff)
      c = 0xfffd; /* a lone surrogate */
    out[o++] = (unsigned char)(0xe0 | (c >> 12));
    out[o++] = (unsigned char)(0x80 | ((c >> 6) & 0x3f));
    out[o++] = (unsigned char)(0x80 | (c & 0x3f));
  }
  if (ascii)
    *ascii = all_ascii;
  return o;
}

bool kva_u16buf(napi_env env, struct kvshm_addon *ad, size_t n) {
  if (n <= ad->u16cap)
    return true;
  size_t cap = ad->u16cap ? ad->u16cap : KVA_VALBUF_INIT;
  while (cap < n)
    cap = cap > SIZE_MAX / 4 ? n : cap * 2;
  uint16_t *p = malloc(cap * sizeof *p);
  if (!p) {
    napi_throw_error(env, "ENOMEM", "out of memory for a string buffer");
    return false;
  }
  free(ad->u16);
  ad->u16 = p;
  ad->u16cap = cap;
  return true;
}

/*
 * The string's code units into ad->u16; *n their count.  More than `limit`
 * units is more than `limit` bytes of UTF-8: *too_big, nothing copied.
 */
static napi_status units(napi_env env, struct kvshm_addon *ad, napi_value v,
                         size_t limit, size_t *n, bool *too_big) {
  *too_big = false;
  napi_status st =
      napi_get_value_string_utf16(env, v, (char16_t *)ad->u16, ad->u16cap, n);
  if (st != napi_ok || *n + 1 < ad->u16cap)
    return st;
  /* It may have been cut: ask its length, grow, copy again. */
  st = napi_get_value_string_utf16(env, v, NULL, 0, n);
  if (st != napi_ok)
    return st;
  if (*n > limit) {
    *too_big = true;
    return napi_ok;
  }
  if (!kva_u16buf(env, ad, *n + 1))
    return napi_pending_exception;
  return napi_get_value_string_utf16(env, v, (char16_t *)ad->u16, ad->u16cap,
                                     n);
}

bool kva_key(napi_env env, struct kvshm_addon *ad, napi_value v, size_t *len) {
  size_t n;
  /* ad->u16 always holds KVSHM_KEY_MAX + 2 units, and a key of more than
   * KVSHM_KEY_MAX units has more than KVSHM_KEY_MAX bytes: no growing. */
  napi_status st = napi_get_value_string_utf16(env, v, (char16_t *)ad->u16,
                                               KVSHM_KEY_MAX + 2, &n);
  if (st == napi_string_expected) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "key must be a string");
    return false;
  }
  if (st != napi_ok) {
    kva_napi_failed(env, st);
    return false;
  }
  if (n <= KVSHM_KEY_MAX) {
    *len = utf16_to_utf8(ad->u16, n, (unsigned char *)ad->key, NULL);
    ad->key[*len] = '\0'; /* for names passed on as C strings */
  }
  if (n > KVSHM_KEY_MAX || *len > KVSHM_KEY_MAX) {
    char msg[128];
    snprintf(msg, sizeof msg,
             "key is longer than %u bytes of UTF-8, the "
             "limit",
             KVSHM_KEY_MAX);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return false;
  }
  return true;
}

bool kva_string(napi_env env, struct kvshm_addon *ad, napi_value v,
                size_t limit, size_t *len, bool *ascii) {
  size_t n;
  bool too_big;
  napi_status st = units(env, ad, v, limit, &n, &too_big);
  if (st == napi_string_expected) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                          "value must be a string for this type");
    return false;
  }
  if (st == napi_pending_exception)
    return false;
  if (st != napi_ok) {
    kva_napi_failed(env, st);
    return false;
  }
  if (too_big) {
    kva_throw_too_big(env, n, true, limit);
    return false;
  }
  if (n > SIZE_MAX / 3 || !kva_valbuf(env, ad, 3 * n))
    return false;
  *len = utf16_to_utf8(ad->u16, n, ad->val, ascii);
  return true;
}
