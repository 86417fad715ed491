/*
 * check_table.c - tests for the table (ops.c, index.c, chain.c, slots.c,
 * write.c), iter.c and stats.c: get/set/del/has/incr/clear with their exact
 * status codes, size queries, flags, NX/XX/KEEPTTL, entry sizes around slot
 * and limit boundaries, binary data, TTL on a clock the test moves,
 * counters, iteration, and kvshm_verify afterwards.
 */
#include "testutil.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#define MIB (1024ull * 1024ull)
#define HEAD_HDR 40u /* bytes of an entry's head before its data */

static kvshm *open_small(char name[TU_NAME_SIZE]) {
  tu_name(name);
  kvshm_config c;
  tu_config(&c, 2 * MIB, 160, 4);
  return tu_open(name, &c);
}

static void finish(kvshm *kv, const char *name) {
  ck_assert_int_eq(tu_verify(kv), 0);
  kvshm_close(kv);
  tu_assert_rc(kvshm_unlink(name), KVSHM_OK);
}

START_TEST(get_set_del_has_codes) {
  char name[TU_NAME_SIZE];
  kvshm *kv = open_small(name);
  char buf[64];
  size_t n = 0;
  tu_assert_rc(kvshm_get(kv, "k", 1, buf, sizeof buf, &n, NULL),
               KVSHM_ENOTFOUND);
  tu_assert_rc(kvshm_has(kv, "k", 1), KVSHM_ENOTFOUND);
  tu_assert_rc(kvshm_in_memory(kv, "k", 1), KVSHM_ENOTFOUND);
  tu_assert_rc(kvshm_del(kv, "k", 1), KVSHM_ENOTFOUND);
  tu_assert_rc(kvshm_set(kv, "k", 1, "hello", 5, 7, KVSHM_TTL_NEVER, 0),
               KVSHM_OK);
  uint32_t fl = 0;
  memset(buf, 0, sizeof buf);
  tu_assert_rc(kvshm_get(kv, "k", 1, buf, sizeof buf, &n, &fl), KVSHM_OK);
  ck_assert_uint_eq(n, 5);
  ck_assert_uint_eq(fl, 7);
  ck_assert_str_eq(buf, "hello");
  tu_assert_rc(kvshm_has(kv, "k", 1), KVSHM_OK);
  tu_assert_rc(kvshm_in_memory(kv, "k", 1), KVSHM_OK);
  /* Overwrite: new value and flags. */
  tu_assert_rc(kvshm_set(kv, "k", 1, "bye", 3, 9, KVSHM_TTL_NEVER, 0),
               KVSHM_OK);
  tu_assert_rc(kvshm_get(kv, "k", 1, buf, sizeof buf, &n, &fl), KVSHM_OK);
  ck_assert_uint_eq(n, 3);
  ck_assert_uint_eq(fl, 9);
  ck_assert_mem_eq(buf, "bye", 3);
  ck_assert_uint_eq(tu_stats(kv).entries, 1);
  tu_assert_rc(kvshm_del(kv, "k", 1), KVSHM_OK);
  tu_assert_rc(kvshm_del(kv, "k", 1), KVSHM_ENOTFOUND);
  tu_assert_rc(kvshm_has(kv, "k", 1), KVSHM_ENOTFOUND);
  tu_assert_rc(kvshm_in_memory(kv, "k", 1), KVSHM_ENOTFOUND);
  tu_assert_rc(kvshm_get(kv, "k", 1, buf, sizeof buf, &n, NULL),
               KVSHM_ENOTFOUND);
  /* Prefixes and extensions of a key are other keys. */
  tu_set_str(kv, "abc", "1");
  tu_assert_rc(kvshm_has(kv, "ab", 2), KVSHM_ENOTFOUND);
  tu_assert_rc(kvshm_has(kv, "abcd", 4), KVSHM_ENOTFOUND);
  /* NULL pointers with a length. */
  tu_assert_rc(kvshm_set(kv, NULL, 3, "v", 1, 0, 0, 0), KVSHM_EINVAL);
  tu_assert_rc(kvshm_set(kv, "k", 1, NULL, 3, 0, 0, 0), KVSHM_EINVAL);
  tu_assert_rc(kvshm_get(kv, NULL, 3, buf, sizeof buf, &n, NULL), KVSHM_EINVAL);
  tu_assert_rc(kvshm_has(kv, "k", 1), KVSHM_ENOTFOUND);
  ck_assert_uint_eq(tu_stats(kv).entries, 1);
  finish(kv, name);
}
END_TEST

START_TEST(get_size_query_and_ebufsize) {
  char name[TU_NAME_SIZE];
  kvshm *kv = open_small(name);
  unsigned char val[300];
  tu_fill(val, sizeof val, 1);
  tu_assert_rc(kvshm_set(kv, "k", 1, val, sizeof val, 5, 0, 0), KVSHM_OK);
  size_t n = 0;
  uint32_t fl = 0;
  tu_assert_rc(kvshm_get(kv, "k", 1, NULL, 0, &n, &fl), KVSHM_OK);
  ck_assert_uint_eq(n, 300);
  ck_assert_uint_eq(fl, 5);
  tu_assert_rc(kvshm_get(kv, "k", 1, NULL, 0, NULL, NULL), KVSHM_OK);
  unsigned char buf[400];
  memset(buf, 0xee, sizeof buf);
  n = 0;
  tu_assert_rc(kvshm_get(kv, "k", 1, buf, 299, &n, NULL), KVSHM_EBUFSIZE);
  ck_assert_uint_eq(n, 300);
  for (size_t i = 0; i < sizeof buf; i++)
    ck_assert_msg(buf[i] == 0xee, "EBUFSIZE wrote byte %zu", i);
  tu_assert_rc(kvshm_get(kv, "k", 1, buf, 1, &n, NULL), KVSHM_EBUFSIZE);
  tu_assert_rc(kvshm_get(kv, "k", 1, buf, 300, &n, NULL), KVSHM_OK);
  ck_assert_mem_eq(buf, val, 300);
  ck_assert_uint_eq(buf[300], 0xee);
  /* A zero-length value fits a zero-length buffer. */
  tu_assert_rc(kvshm_set(kv, "e", 1, NULL, 0, 0, 0, 0), KVSHM_OK);
  n = 99;
  tu_assert_rc(kvshm_get(kv, "e", 1, buf, 0, &n, NULL), KVSHM_OK);
  ck_assert_uint_eq(n, 0);
  tu_assert_rc(kvshm_get(kv, "e", 1, NULL, 0, &n, NULL), KVSHM_OK);
  ck_assert_uint_eq(n, 0);
  finish(kv, name);
}
END_TEST

/* buf NULL with a size: a size query or KVSHM_EINVAL, never a copy to
 * NULL.  Run in a child so a crash is reported as such. */
START_TEST(null_buffer_with_a_size) {
  char name[TU_NAME_SIZE];
  kvshm *kv = open_small(name);
  tu_set_str(kv, "k", "value");
  pid_t pid = tu_fork();
  if (pid == 0) {
    kvshm *c;
    TU_CHILD_RC(kvshm_open(name, NULL, KVSHM_NOREAPER, &c), KVSHM_OK);
    size_t n = 0;
    int rc = kvshm_get(c, "k", 1, NULL, 100, &n, NULL);
    TU_CHILD_CHECK(rc == KVSHM_OK || rc == KVSHM_EINVAL);
    TU_CHILD_CHECK(rc != KVSHM_OK || n == 5);
    kvshm_close(c);
    _exit(0);
  }
  tu_wait_ok(pid, 10000, "get(buf NULL, bufsize 100)");
  finish(kv, name);
}
END_TEST

START_TEST(flags_word_round_trips) {
  char name[TU_NAME_SIZE];
  kvshm *kv = open_small(name);
  const uint32_t words[] = {0, 1, 0x12345678, 0x80000000u, 0xffffffffu};
  for (size_t i = 0; i < 5; i++) {
    char key[16];
    snprintf(key, sizeof key, "f%zu", i);
    tu_assert_rc(kvshm_set(kv, key, strlen(key), "v", 1, words[i], 0, 0),
                 KVSHM_OK);
  }
  for (size_t i = 0; i < 5; i++) {
    char key[16];
    snprintf(key, sizeof key, "f%zu", i);
    uint32_t fl = ~words[i];
    tu_assert_rc(kvshm_get(kv, key, strlen(key), NULL, 0, NULL, &fl), KVSHM_OK);
    ck_assert_uint_eq(fl, words[i]);
  }
  finish(kv, name);
}
END_TEST

START_TEST(nx_xx_keepttl) {
  char name[TU_NAME_SIZE];
  kvshm *kv = open_small(name);
  tu_clock clk;
  tu_clock_attach(kv, &clk, TU_T0);
  /* NX */
  tu_assert_rc(kvshm_set(kv, "a", 1, "1", 1, 0, 0, KVSHM_NX), KVSHM_OK);
  tu_assert_rc(kvshm_set(kv, "a", 1, "2", 1, 0, 0, KVSHM_NX), KVSHM_EEXIST);
  tu_assert_value(kv, "a", 1, "1", 1);
  /* XX */
  tu_assert_rc(kvshm_set(kv, "b", 1, "1", 1, 0, 0, KVSHM_XX), KVSHM_ENOTFOUND);
  tu_assert_rc(kvshm_has(kv, "b", 1), KVSHM_ENOTFOUND);
  tu_assert_rc(kvshm_set(kv, "a", 1, "3", 1, 0, 0, KVSHM_XX), KVSHM_OK);
  tu_assert_value(kv, "a", 1, "3", 1);
  /* Both, or unknown options. */
  tu_assert_rc(kvshm_set(kv, "a", 1, "4", 1, 0, 0, KVSHM_NX | KVSHM_XX),
               KVSHM_EINVAL);
  tu_assert_rc(kvshm_set(kv, "c", 1, "4", 1, 0, 0, KVSHM_NX | KVSHM_XX),
               KVSHM_EINVAL);
  tu_assert_rc(kvshm_set(kv, "a", 1, "4", 1, 0, 0, 0x80), KVSHM_EINVAL);
  tu_assert_value(kv, "a", 1, "3", 1);
  tu_assert_rc(kvshm_has(kv, "c", 1), KVSHM_ENOTFOUND);
  /* An expired key is absent for NX and XX. */
  tu_assert_rc(kvshm_set(kv, "t", 1, "1", 1, 0, 100, 0), KVSHM_OK);
  clk.now_ms += 100;
  tu_assert_rc(kvshm_set(kv, "t", 1, "2", 1, 0, 0, KVSHM_XX), KVSHM_ENOTFOUND);
  tu_assert_rc(kvshm_set(kv, "t", 1, "3", 1, 0, 0, KVSHM_NX), KVSHM_OK);
  tu_assert_value(kv, "t", 1, "3", 1);

  /* KEEPTTL keeps the expiry of the entry it replaces. */
  clk.now_ms = TU_T0;
  tu_assert_rc(kvshm_set(kv, "k", 1, "1", 1, 0, 1000, 0), KVSHM_OK);
  clk.now_ms = TU_T0 + 500;
  tu_assert_rc(kvshm_set(kv, "k", 1, "2", 1, 0, KVSHM_TTL_NEVER, KVSHM_KEEPTTL),
               KVSHM_OK);
  clk.now_ms = TU_T0 + 999;
  tu_assert_value(kv, "k", 1, "2", 1);
  clk.now_ms = TU_T0 + 1000;
  tu_assert_rc(kvshm_has(kv, "k", 1), KVSHM_ENOTFOUND);
  /* ...and without KEEPTTL the new TTL wins. */
  clk.now_ms = TU_T0;
  tu_assert_rc(kvshm_set(kv, "k", 1, "1", 1, 0, 1000, 0), KVSHM_OK);
  tu_assert_rc(kvshm_set(kv, "k", 1, "2", 1, 0, KVSHM_TTL_NEVER, 0), KVSHM_OK);
  clk.now_ms = TU_T0 + 1000000;
  tu_assert_value(kv, "k", 1, "2", 1);
  /* KEEPTTL on an absent key uses the TTL given. */
  clk.now_ms = TU_T0;
  tu_assert_rc(kvshm_set(kv, "n", 1, "1", 1, 0, 50, KVSHM_KEEPTTL), KVSHM_OK);
  clk.now_ms = TU_T0 + 49;
  tu_assert_rc(kvshm_has(kv, "n", 1), KVSHM_OK);
  clk.now_ms = TU_T0 + 50;
  tu_assert_rc(kvshm_has(kv, "n", 1), KVSHM_ENOTFOUND);
  finish(kv, name);
}
END_TEST

static void assert_text(kvshm *kv, const char *key, const char *want) {
  tu_assert_value(kv, key, strlen(key), want, strlen(want));
}

START_TEST(incr_codes_and_text) {
  char name[TU_NAME_SIZE];
  kvshm *kv = open_small(name);
  int64_t r = 0;
  /* A missing key counts as 0 and is created with new_flags. */
  tu_assert_rc(kvshm_incr(kv, "n", 1, 5, 0x42, &r), KVSHM_OK);
  ck_assert_int_eq(r, 5);
  assert_text(kv, "n", "5");
  uint32_t fl = 0;
  tu_assert_rc(kvshm_get(kv, "n", 1, NULL, 0, NULL, &fl), KVSHM_OK);
  ck_assert_uint_eq(fl, 0x42);
  tu_assert_rc(kvshm_incr(kv, "n", 1, -7, 0x99, &r), KVSHM_OK);
  ck_assert_int_eq(r, -2);
  assert_text(kv, "n", "-2");
  tu_assert_rc(kvshm_get(kv, "n", 1, NULL, 0, NULL, &fl), KVSHM_OK);
  ck_assert_uint_eq(fl, 0x42); /* an existing entry keeps its flags */
  tu_assert_rc(kvshm_incr(kv, "n", 1, 0, 0, NULL), KVSHM_OK);
  assert_text(kv, "n", "-2");
  tu_assert_rc(kvshm_incr(kv, "z", 1, 0, 0, &r), KVSHM_OK);
  ck_assert_int_eq(r, 0);
  assert_text(kv, "z", "0");

  /* Values that are not decimal 64-bit integers. */
  const char *bad[] = {"abc",
                       "",
                       "12a",
                       " 1",
                       "1 ",
                       "-",
                       "1.5",
                       "0x10",
                       "99999999999999999999",
                       "-9223372036854775809",
                       "9223372036854775808",
                       "123456789012345678901"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    tu_set_str(kv, "s", bad[i]);
    r = 777;
    tu_assert_rc(kvshm_incr(kv, "s", 1, 1, 0, &r), KVSHM_ENOTINT);
    ck_assert_int_eq(r, 777);
    assert_text(kv, "s", bad[i]);
  }
  tu_assert_rc(kvshm_set(kv, "bin", 3, "1\0", 2, 0, 0, 0), KVSHM_OK);
  tu_assert_rc(kvshm_incr(kv, "bin", 3, 1, 0, NULL), KVSHM_ENOTINT);

  /* The extremes, and one past them. */
  tu_set_str(kv, "max", "9223372036854775807");
  tu_assert_rc(kvshm_incr(kv, "max", 3, 1, 0, &r), KVSHM_EOVERFLOW);
  assert_text(kv, "max", "9223372036854775807");
  tu_assert_rc(kvshm_incr(kv, "max", 3, 0, 0, &r), KVSHM_OK);
  ck_assert(r == INT64_MAX);
  tu_assert_rc(kvshm_incr(kv, "max", 3, -1, 0, &r), KVSHM_OK);
  assert_text(kv, "max", "9223372036854775806");
  tu_set_str(kv, "min", "-9223372036854775808");
  tu_assert_rc(kvshm_incr(kv, "min", 3, -1, 0, &r), KVSHM_EOVERFLOW);
  assert_text(kv, "min", "-9223372036854775808");
  tu_assert_rc(kvshm_incr(kv, "min", 3, INT64_MAX, 0, &r), KVSHM_OK);
  ck_assert_int_eq(r, -1);
  tu_assert_rc(kvshm_incr(kv, "big", 3, INT64_MIN, 0, &r), KVSHM_OK);
  assert_text(kv, "big", "-9223372036854775808");
  tu_assert_rc(kvshm_incr(kv, "big", 3, INT64_MIN, 0, &r), KVSHM_EOVERFLOW);

  /* Too long a key. */
  static char longkey[KVSHM_KEY_MAX + 1];
  memset(longkey, 'k', sizeof longkey);
  tu_assert_rc(kvshm_incr(kv, longkey, sizeof longkey, 1, 0, NULL),
               KVSHM_ETOOBIG);
  tu_assert_rc(kvshm_incr(kv, longkey, KVSHM_KEY_MAX, 3, 0, &r), KVSHM_OK);
  ck_assert_int_eq(r, 3);
  finish(kv, name);
}
END_TEST

START_TEST(incr_keeps_expiry_and_uses_default_ttl) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  kvshm_config c;
  tu_config(&c, 2 * MIB, 160, 4);
  c.default_ttl_ms = 5000;
  kvshm *kv = tu_open(name, &c);
  tu_clock clk;
  tu_clock_attach(kv, &clk, TU_T0);
  tu_assert_rc(kvshm_incr(kv, "d", 1, 1, 0, NULL), KVSHM_OK);
  tu_assert_rc(kvshm_set(kv, "e", 1, "10", 2, 0, 1000, 0), KVSHM_OK);
  clk.now_ms = TU_T0 + 900;
  tu_assert_rc(kvshm_incr(kv, "e", 1, 1, 0, NULL), KVSHM_OK);
  clk.now_ms = TU_T0 + 999;
  assert_text(kv, "e", "11");
  clk.now_ms = TU_T0 + 1000;
  tu_assert_rc(kvshm_has(kv, "e", 1), KVSHM_ENOTFOUND);
  clk.now_ms = TU_T0 + 4999;
  assert_text(kv, "d", "1");
  clk.now_ms = TU_T0 + 5000;
  tu_assert_rc(kvshm_has(kv, "d", 1), KVSHM_ENOTFOUND);
  /* An expired counter starts again from 0. */
  tu_assert_rc(kvshm_set(kv, "x", 1, "40", 2, 0, 10, 0), KVSHM_OK);
  clk.now_ms += 10;
  int64_t r = 0;
  tu_assert_rc(kvshm_incr(kv, "x", 1, 2, 0, &r), KVSHM_OK);
  ck_assert_int_eq(r, 2);
  finish(kv, name);
}
END_TEST

/* Bytes of slots in use, from the stats. */
static uint64_t slots_used(kvshm *kv) {
  return tu_stats(kv).slots_used;
}

START_TEST(entry_sizes_around_slot_boundaries) {
  char name[TU_NAME_SIZE];
  kvshm *kv = open_small(name);
  static unsigned char val[4096];
  tu_fill(val, sizeof val, 3);
  /* Zero-length key and value. */
  tu_assert_rc(kvshm_set(kv, "", 0, "", 0, 1, 0, 0), KVSHM_OK);
  size_t n = 9;
  uint32_t fl = 0;
  tu_assert_rc(kvshm_get(kv, "", 0, val, 0, &n, &fl), KVSHM_OK);
  ck_assert_uint_eq(n, 0);
  ck_assert_uint_eq(fl, 1);
  tu_assert_rc(kvshm_has(kv, "", 0), KVSHM_OK);
  tu_assert_rc(kvshm_set(kv, "", 0, val, 10, 2, 0, 0), KVSHM_OK);
  tu_assert_value(kv, "", 0, val, 10);
  tu_assert_rc(kvshm_del(kv, "", 0), KVSHM_OK);
  tu_assert_rc(kvshm_has(kv, "", 0), KVSHM_ENOTFOUND);
  /* One byte each. */
  tu_assert_rc(kvshm_set(kv, "x", 1, "y", 1, 0, 0, 0), KVSHM_OK);
  tu_assert_value(kv, "x", 1, "y", 1);
  tu_assert_rc(kvshm_del(kv, "x", 1), KVSHM_OK);
  ck_assert_uint_eq(slots_used(kv), 0);

  /* Exactly one head slot of data, then one byte more (a chain). */
  const uint32_t slot = 160;
  const char *keys[] = {"k", "key-of-16-bytes!",
                        "a-key-of-about-forty-bytes-long-ok"};
  for (size_t i = 0; i < 3; i++) {
    size_t klen = strlen(keys[i]);
    size_t fit = slot - HEAD_HDR - klen;
    tu_assert_rc(kvshm_set(kv, keys[i], klen, val, fit, 0, 0, 0), KVSHM_OK);
    ck_assert_uint_eq(slots_used(kv), 1);
    tu_assert_value(kv, keys[i], klen, val, fit);
    tu_assert_rc(kvshm_set(kv, keys[i], klen, val, fit + 1, 0, 0, 0), KVSHM_OK);
    ck_assert_uint_eq(slots_used(kv), 2);
    tu_assert_value(kv, keys[i], klen, val, fit + 1);
    tu_assert_rc(kvshm_set(kv, keys[i], klen, val, fit, 0, 0, 0), KVSHM_OK);
    ck_assert_uint_eq(slots_used(kv), 1);
    tu_assert_rc(kvshm_del(kv, keys[i], klen), KVSHM_OK);
    ck_assert_uint_eq(slots_used(kv), 0);
  }
  ck_assert_int_eq(tu_verify(kv), 0);

  /* Keys of KVSHM_KEY_MAX bytes (they span slots), and one byte more. */
  static unsigned char key[KVSHM_KEY_MAX + 1];
  tu_fill(key, sizeof key, 4);
  tu_assert_rc(kvshm_set(kv, key, KVSHM_KEY_MAX, val, 1000, 3, 0, 0), KVSHM_OK);
  tu_assert_value(kv, key, KVSHM_KEY_MAX, val, 1000);
  tu_assert_rc(kvshm_has(kv, key, KVSHM_KEY_MAX), KVSHM_OK);
  tu_assert_rc(kvshm_has(kv, key, KVSHM_KEY_MAX - 1), KVSHM_ENOTFOUND);
  tu_assert_rc(kvshm_set(kv, key, KVSHM_KEY_MAX + 1, val, 1, 0, 0, 0),
               KVSHM_ETOOBIG);
  tu_assert_rc(kvshm_get(kv, key, KVSHM_KEY_MAX + 1, val, 1, &n, NULL),
               KVSHM_ETOOBIG);
  tu_assert_rc(kvshm_has(kv, key, KVSHM_KEY_MAX + 1), KVSHM_ETOOBIG);
  tu_assert_rc(kvshm_del(kv, key, KVSHM_KEY_MAX + 1), KVSHM_ETOOBIG);
  tu_assert_rc(kvshm_in_memory(kv, key, KVSHM_KEY_MAX + 1), KVSHM_ETOOBIG);
  /* Two long keys differing in their last byte only. */
  unsigned char key2[KVSHM_KEY_MAX];
  memcpy(key2, key, KVSHM_KEY_MAX);
  key2[KVSHM_KEY_MAX - 1] ^= 1;
  tu_assert_rc(kvshm_has(kv, key2, KVSHM_KEY_MAX), KVSHM_ENOTFOUND);
  tu_assert_rc(kvshm_set(kv, key2, KVSHM_KEY_MAX, val, 7, 0, 0, 0), KVSHM_OK);
  tu_assert_value(kv, key, KVSHM_KEY_MAX, val, 1000);
  tu_assert_value(kv, key2, KVSHM_KEY_MAX, val, 7);
  tu_assert_rc(kvshm_del(kv, key, KVSHM_KEY_MAX), KVSHM_OK);
  tu_assert_rc(kvshm_has(kv, key, KVSHM_KEY_MAX), KVSHM_ENOTFOUND);
  tu_assert_value(kv, key2, KVSHM_KEY_MAX, val, 7);
  finish(kv, name);
}
END_TEST

/* NULL with length 0 is accepted for keys and values (only NULL with a
 * length is EINVAL), and is the empty key/value. */
START_TEST(null_pointers_of_zero_length) {
  char name[TU_NAME_SIZE];
  kvshm *kv = open_small(name);
  tu_assert_rc(kvshm_set(kv, NULL, 0, NULL, 0, 1, 0, 0), KVSHM_OK);
  size_t n = 9;
  uint32_t fl = 0;
  tu_assert_rc(kvshm_get(kv, NULL, 0, NULL, 0, &n, &fl), KVSHM_OK);
  ck_assert_uint_eq(n, 0);
  ck_assert_uint_eq(fl, 1);
  tu_assert_rc(kvshm_has(kv, NULL, 0), KVSHM_OK);
  tu_assert_rc(kvshm_has(kv, "", 0), KVSHM_OK);
  tu_assert_rc(kvshm_set(kv, "k", 1, NULL, 0, 2, 0, 0), KVSHM_OK);
  tu_assert_value(kv, "k", 1, "", 0);
  tu_assert_rc(kvshm_del(kv, NULL, 0), KVSHM_OK);
  tu_assert_rc(kvshm_has(kv, "", 0), KVSHM_ENOTFOUND);
  finish(kv, name);
}
END_TEST

START_TEST(largest_value_and_one_byte_more) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  kvshm_config c;
  tu_config(&c, 1 * MIB, 160, 2);
  kvshm *kv = tu_open(name, &c);
  kvshm_stats st = tu_stats(kv);
  ck_assert_uint_gt(st.max_value, 0);
  size_t max = (size_t)st.max_value;
  unsigned char *val = malloc(max + 1);
  ck_assert_ptr_nonnull(val);
  tu_fill(val, max + 1, 5);
  const char *key = "0123456789abcdef"; /* 16 bytes, as max_value assumes */
  tu_assert_rc(kvshm_set(kv, key, 16, val, max, 0, 0, 0), KVSHM_OK);
  tu_assert_value(kv, key, 16, val, max);
  tu_assert_rc(kvshm_set(kv, key, 16, val, max + 1, 0, 0, 0), KVSHM_ETOOBIG);
  ck_assert_msg(kvshm_errdetail()[0] != '\0', "ETOOBIG without detail");
  tu_assert_value(kv, key, 16, val, max); /* the old value stays */
  /* A longer key leaves less room for the value. */
  tu_assert_rc(kvshm_set(kv, "0123456789abcdefg", 17, val, max, 0, 0, 0),
               KVSHM_ETOOBIG);
  ck_assert_int_eq(tu_verify(kv), 0);
  free(val);
  finish(kv, name);
}
END_TEST

START_TEST(one_mib_values_with_default_config) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  kvshm *kv = tu_open(name, NULL);
  size_t len = 1 * MIB;
  unsigned char *val = malloc(len);
  ck_assert_ptr_nonnull(val);
  for (int i = 0; i < 4; i++) {
    char key[16];
    snprintf(key, sizeof key, "big%d", i);
    tu_fill(val, len, 100 + (uint64_t)i);
    tu_assert_rc(kvshm_set(kv, key, strlen(key), val, len, 0, 0, 0), KVSHM_OK);
  }
  for (int i = 0; i < 4; i++) {
    char key[16];
    snprintf(key, sizeof key, "big%d", i);
    tu_fill(val, len, 100 + (uint64_t)i);
    tu_assert_value(kv, key, strlen(key), val, len);
  }
  kvshm_stats st = tu_stats(kv);
  ck_assert_uint_eq(st.entries, 4);
  ck_assert_uint_eq(st.bytes, 4 * (len + 4));
  free(val);
  finish(kv, name);
}
END_TEST

START_TEST(binary_keys_and_values) {
  char name[TU_NAME_SIZE];
  kvshm *kv = open_small(name);
  unsigned char all[256];
  for (int i = 0; i < 256; i++)
    all[i] = (unsigned char)i;
  const struct {
    const char *k;
    size_t n;
  } keys[] = {{"a", 1},  {"a\0", 2},  {"a\0b", 3}, {"a\0c", 3},
              {"\0", 1}, {"\0\0", 2}, {"\xff", 1}, {"\0a", 2}};
  const size_t nk = sizeof keys / sizeof keys[0];
  for (size_t i = 0; i < nk; i++)
    tu_assert_rc(kvshm_set(kv, keys[i].k, keys[i].n, all + i, 256 - i,
                           (uint32_t)i, 0, 0),
                 KVSHM_OK);
  ck_assert_uint_eq(tu_stats(kv).entries, nk);
  for (size_t i = 0; i < nk; i++)
    tu_assert_value(kv, keys[i].k, keys[i].n, all + i, 256 - i);
  /* A value of NULs. */
  unsigned char zeros[500] = {0};
  tu_assert_rc(kvshm_set(kv, "z", 1, zeros, sizeof zeros, 0, 0, 0), KVSHM_OK);
  tu_assert_value(kv, "z", 1, zeros, sizeof zeros);
  tu_assert_rc(kvshm_del(kv, "a\0b", 3), KVSHM_OK);
  tu_assert_rc(kvshm_has(kv, "a\0c", 3), KVSHM_OK);
  tu_assert_rc(kvshm_has(kv, "a\0b", 3), KVSHM_ENOTFOUND);
  finish(kv, name);
}
END_TEST

START_TEST(ttl_on_a_test_clock) {
  char name[TU_NAME_SIZE];
  kvshm *kv = open_small(name);
  tu_clock clk;
  tu_clock_attach(kv, &clk, TU_T0);
  tu_assert_rc(kvshm_set(kv, "t", 1, "v", 1, 0, 1000, 0), KVSHM_OK);
  tu_assert_rc(kvshm_set(kv, "forever", 7, "v", 1, 0, KVSHM_TTL_NEVER, 0),
               KVSHM_OK);
  tu_assert_rc(kvshm_set(kv, "dflt", 4, "v", 1, 0, KVSHM_TTL_DEFAULT, 0),
               KVSHM_OK); /* default_ttl_ms is 0: never */
  clk.now_ms = TU_T0 + 999;
  tu_assert_value(kv, "t", 1, "v", 1);
  tu_assert_rc(kvshm_in_memory(kv, "t", 1), KVSHM_OK);
  uint64_t exp0 = tu_stats(kv).expirations;
  clk.now_ms = TU_T0 + 1000; /* expired at exactly its expiry */
  tu_assert_rc(kvshm_get(kv, "t", 1, NULL, 0, NULL, NULL), KVSHM_ENOTFOUND);
  ck_assert_uint_eq(tu_stats(kv).expirations, exp0 + 1);
  tu_assert_rc(kvshm_has(kv, "t", 1), KVSHM_ENOTFOUND);
  tu_assert_rc(kvshm_in_memory(kv, "t", 1), KVSHM_ENOTFOUND);
  tu_assert_rc(kvshm_del(kv, "t", 1), KVSHM_ENOTFOUND);
  ck_assert_uint_eq(tu_stats(kv).expirations, exp0 + 1);
  ck_assert_uint_eq(tu_stats(kv).entries, 2);
  /* Each of has/del/set notices expiry too. */
  const char *how[] = {"has", "del", "set", "in_memory"};
  for (int i = 0; i < 4; i++) {
    clk.now_ms = TU_T0;
    tu_assert_rc(kvshm_set(kv, "u", 1, "v", 1, 0, 10, 0), KVSHM_OK);
    clk.now_ms = TU_T0 + 20;
    uint64_t before = tu_stats(kv).expirations;
    if (i == 0)
      tu_assert_rc(kvshm_has(kv, "u", 1), KVSHM_ENOTFOUND);
    else if (i == 1)
      tu_assert_rc(kvshm_del(kv, "u", 1), KVSHM_ENOTFOUND);
    else if (i == 2)
      tu_assert_rc(kvshm_set(kv, "u", 1, "w", 1, 0, 0, KVSHM_NX), KVSHM_OK);
    else
      tu_assert_rc(kvshm_in_memory(kv, "u", 1), KVSHM_ENOTFOUND);
    ck_assert_msg(tu_stats(kv).expirations == before + 1,
                  "%s of an expired key did not count an expiration", how[i]);
    kvshm_del(kv, "u", 1);
  }
  clk.now_ms = TU_T0 + 100ull * 365 * 24 * 3600 * 1000;
  tu_assert_value(kv, "forever", 7, "v", 1);
  tu_assert_value(kv, "dflt", 4, "v", 1);
  /* Negative TTLs other than KVSHM_TTL_DEFAULT. */
  tu_assert_rc(kvshm_set(kv, "n", 1, "v", 1, 0, -2, 0), KVSHM_EINVAL);
  tu_assert_rc(kvshm_set(kv, "n", 1, "v", 1, 0, INT64_MIN, 0), KVSHM_EINVAL);
  tu_assert_rc(kvshm_has(kv, "n", 1), KVSHM_ENOTFOUND);
  finish(kv, name);
}
END_TEST

START_TEST(default_ttl_applies_unless_never) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  kvshm_config c;
  tu_config(&c, 2 * MIB, 160, 4);
  c.default_ttl_ms = 3000;
  kvshm *kv = tu_open(name, &c);
  tu_clock clk;
  tu_clock_attach(kv, &clk, TU_T0);
  tu_assert_rc(kvshm_set(kv, "d", 1, "v", 1, 0, KVSHM_TTL_DEFAULT, 0),
               KVSHM_OK);
  tu_assert_rc(kvshm_set(kv, "never", 5, "v", 1, 0, KVSHM_TTL_NEVER, 0),
               KVSHM_OK);
  tu_assert_rc(kvshm_set(kv, "own", 3, "v", 1, 0, 10000, 0), KVSHM_OK);
  clk.now_ms = TU_T0 + 2999;
  tu_assert_rc(kvshm_has(kv, "d", 1), KVSHM_OK);
  clk.now_ms = TU_T0 + 3000;
  tu_assert_rc(kvshm_has(kv, "d", 1), KVSHM_ENOTFOUND);
  tu_assert_rc(kvshm_has(kv, "own", 3), KVSHM_OK);
  clk.now_ms = TU_T0 + 10000;
  tu_assert_rc(kvshm_has(kv, "own", 3), KVSHM_ENOTFOUND);
  clk.now_ms = TU_T0 + 1000000000ull;
  tu_assert_rc(kvshm_has(kv, "never", 5), KVSHM_OK);
  ck_assert_uint_eq(tu_stats(kv).expirations, 2);
  finish(kv, name);
}
END_TEST

START_TEST(stats_counters_are_exact) {
  char name[TU_NAME_SIZE];
  kvshm *kv = open_small(name);
  char buf[32];
  tu_set_str(kv, "a", "1");   /* sets 1 */
  tu_set_str(kv, "b", "22");  /* sets 2 */
  tu_set_str(kv, "a", "333"); /* sets 3 (overwrite) */
  tu_assert_rc(kvshm_set(kv, "a", 1, "x", 1, 0, 0, KVSHM_NX), KVSHM_EEXIST);
  tu_assert_rc(kvshm_set(kv, "q", 1, "x", 1, 0, 0, KVSHM_XX), KVSHM_ENOTFOUND);
  tu_assert_rc(kvshm_incr(kv, "c", 1, 5, 0, NULL), KVSHM_OK); /* sets 4 */
  tu_assert_rc(kvshm_get(kv, "a", 1, buf, sizeof buf, NULL, NULL), KVSHM_OK);
  tu_assert_rc(kvshm_get(kv, "b", 1, NULL, 0, NULL, NULL), KVSHM_OK);
  tu_assert_rc(kvshm_get(kv, "x", 1, buf, sizeof buf, NULL, NULL),
               KVSHM_ENOTFOUND);
  tu_assert_rc(kvshm_get(kv, "y", 1, buf, sizeof buf, NULL, NULL),
               KVSHM_ENOTFOUND);
  tu_assert_rc(kvshm_del(kv, "b", 1), KVSHM_OK);
  tu_assert_rc(kvshm_del(kv, "b", 1), KVSHM_ENOTFOUND);
  tu_assert_rc(kvshm_get(kv, "b", 1, buf, sizeof buf, NULL, NULL),
               KVSHM_ENOTFOUND);
  kvshm_stats st = tu_stats(kv);
  ck_assert_uint_eq(st.sets, 4);
  ck_assert_uint_eq(st.hits, 2);
  ck_assert_uint_eq(st.misses, 3);
  ck_assert_uint_eq(st.deletes, 1);
  ck_assert_uint_eq(st.entries, 2);               /* a, c */
  ck_assert_uint_eq(st.bytes, (1 + 3) + (1 + 1)); /* "a"+"333", "c"+"5" */
  ck_assert_uint_eq(st.slots_used, 2);
  ck_assert_uint_eq(st.slots_used + st.slots_free,
                    (uint64_t)st.stripes * st.slots_per_stripe);
  ck_assert_uint_eq(st.evictions + st.expirations + st.corrupt + st.repairs, 0);
  /* Per-stripe figures add up to the totals. */
  uint64_t e = 0, used = 0, fr = 0;
  for (uint32_t s = 0; s < st.stripes; s++) {
    kvshm_stripe_stats ss;
    tu_assert_rc(kvshm_stripe_stats_get(kv, s, &ss), KVSHM_OK);
    e += ss.entries;
    used += ss.slots_used;
    fr += ss.slots_free;
    ck_assert_uint_eq(ss.slots_used + ss.slots_free, st.slots_per_stripe);
  }
  ck_assert_uint_eq(e, st.entries);
  ck_assert_uint_eq(used, st.slots_used);
  ck_assert_uint_eq(fr, st.slots_free);
  kvshm_stripe_stats ss;
  tu_assert_rc(kvshm_stripe_stats_get(kv, st.stripes, &ss), KVSHM_EINVAL);
  finish(kv, name);
}
END_TEST

START_TEST(clear_empties_everything) {
  char name[TU_NAME_SIZE];
  kvshm *kv = open_small(name);
  unsigned char val[700];
  tu_fill(val, sizeof val, 9);
  for (int i = 0; i < 200; i++) {
    char key[16];
    snprintf(key, sizeof key, "c%d", i);
    tu_assert_rc(kvshm_set(kv, key, strlen(key), val, (size_t)i * 3, 0, 0, 0),
                 KVSHM_OK);
  }
  kvshm_stats before = tu_stats(kv);
  tu_assert_rc(kvshm_clear(kv), KVSHM_OK);
  kvshm_stats st = tu_stats(kv);
  ck_assert_uint_eq(st.entries, 0);
  ck_assert_uint_eq(st.bytes, 0);
  ck_assert_uint_eq(st.slots_used, 0);
  ck_assert_uint_eq(st.sets, before.sets); /* counters are kept */
  for (int i = 0; i < 200; i++) {
    char key[16];
    snprintf(key, sizeof key, "c%d", i);
    tu_assert_rc(kvshm_has(kv, key, strlen(key)), KVSHM_ENOTFOUND);
  }
  ck_assert_int_eq(tu_verify(kv), 0);
  tu_assert_rc(kvshm_clear(kv), KVSHM_OK); /* twice is fine */
  tu_assert_rc(kvshm_set(kv, "after", 5, val, 500, 0, 0, 0), KVSHM_OK);
  tu_assert_value(kv, "after", 5, val, 500);
  finish(kv, name);
}
END_TEST

/* ---- iteration ---------------------------------------------------------- */

#define ITER_A 150
#define ITER_B 60

static size_t iter_vlen(int i) {
  return (size_t)(i * 7) % 400;
}

START_TEST(iteration_sees_each_live_key_once) {
  char name[TU_NAME_SIZE];
  kvshm *kv = open_small(name);
  tu_clock clk;
  tu_clock_attach(kv, &clk, TU_T0);
  unsigned char val[400];
  /* a:<i> live, b:<i> live with a long key, e:<i> expiring */
  for (int i = 0; i < ITER_A; i++) {
    char key[16];
    snprintf(key, sizeof key, "a:%d", i);
    tu_fill(val, iter_vlen(i), (uint64_t)i);
    tu_assert_rc(kvshm_set(kv, key, strlen(key), val, iter_vlen(i), (uint32_t)i,
                           i % 2 ? 100000 : 0, 0),
                 KVSHM_OK);
  }
  static char longkey[300];
  for (int i = 0; i < ITER_B; i++) {
    memset(longkey, 'L', sizeof longkey);
    int n = snprintf(longkey, sizeof longkey, "b:%d:", i);
    longkey[n] = 'L';
    tu_assert_rc(kvshm_set(kv, longkey, sizeof longkey, "bv", 2,
                           (uint32_t)(1000 + i), 0, 0),
                 KVSHM_OK);
  }
  for (int i = 0; i < 40; i++) {
    char key[16];
    snprintf(key, sizeof key, "e:%d", i);
    tu_assert_rc(kvshm_set(kv, key, strlen(key), "x", 1, 0, 50, 0), KVSHM_OK);
  }
  clk.now_ms = TU_T0 + 50; /* every e: key is now expired */

  unsigned char seen_a[ITER_A] = {0}, seen_b[ITER_B] = {0};
  kvshm_iter *it = NULL;
  tu_assert_rc(kvshm_iter_open(kv, NULL, 0, 0, &it), KVSHM_OK);
  const void *k, *v;
  size_t kl, vl;
  uint32_t fl;
  uint64_t exp;
  int rc, total = 0;
  while ((rc = kvshm_iter_next(it, &k, &kl, &v, &vl, &fl, &exp)) == KVSHM_OK) {
    total++;
    const char *ks = k;
    ck_assert_msg(kl >= 2 && ks[0] != 'e', "expired or odd key seen");
    int i;
    if (ks[0] == 'a') {
      char tmp[16];
      ck_assert_uint_lt(kl, sizeof tmp);
      memcpy(tmp, ks, kl);
      tmp[kl] = '\0';
      ck_assert_int_eq(sscanf(tmp, "a:%d", &i), 1);
      ck_assert(i >= 0 && i < ITER_A);
      ck_assert_msg(!seen_a[i], "a:%d seen twice", i);
      seen_a[i] = 1;
      ck_assert_uint_eq(vl, iter_vlen(i));
      tu_fill(val, vl, (uint64_t)i);
      ck_assert(memcmp(v, val, vl) == 0);
      ck_assert_uint_eq(fl, (uint32_t)i);
      ck_assert_uint_eq(exp, i % 2 ? TU_T0 + 100000 : 0);
    } else {
      ck_assert_uint_eq(kl, sizeof longkey);
      char tmp[16];
      memcpy(tmp, ks, sizeof tmp - 1);
      tmp[sizeof tmp - 1] = '\0';
      ck_assert_int_eq(sscanf(tmp, "b:%d:", &i), 1);
      ck_assert(i >= 0 && i < ITER_B);
      ck_assert_msg(!seen_b[i], "b:%d seen twice", i);
      seen_b[i] = 1;
      ck_assert_uint_eq(vl, 2);
      ck_assert(memcmp(v, "bv", 2) == 0);
      ck_assert_uint_eq(fl, (uint32_t)(1000 + i));
    }
  }
  tu_assert_rc(rc, KVSHM_ENOTFOUND);
  tu_assert_rc(kvshm_iter_next(it, &k, &kl, &v, &vl, &fl, &exp),
               KVSHM_ENOTFOUND);
  kvshm_iter_close(it);
  ck_assert_int_eq(total, ITER_A + ITER_B);

  /* With a prefix: only a: keys, each once. */
  tu_assert_rc(kvshm_iter_open(kv, "a:", 2, 0, &it), KVSHM_OK);
  memset(seen_a, 0, sizeof seen_a);
  total = 0;
  while (kvshm_iter_next(it, &k, &kl, NULL, NULL, NULL, NULL) == KVSHM_OK) {
    ck_assert(kl >= 2 && memcmp(k, "a:", 2) == 0);
    total++;
  }
  kvshm_iter_close(it);
  ck_assert_int_eq(total, ITER_A);
  /* "a:1" matches a:1, a:10..a:19, a:100..a:149 */
  tu_assert_rc(kvshm_iter_open(kv, "a:1", 3, 0, &it), KVSHM_OK);
  total = 0;
  while (kvshm_iter_next(it, NULL, NULL, NULL, NULL, NULL, NULL) == KVSHM_OK)
    total++;
  kvshm_iter_close(it);
  ck_assert_int_eq(total, 1 + 10 + 50);
  /* A prefix longer than some keys, and one that matches nothing. */
  tu_assert_rc(kvshm_iter_open(kv, "b:1:LLLL", 8, 0, &it), KVSHM_OK);
  total = 0;
  while (kvshm_iter_next(it, NULL, NULL, NULL, NULL, NULL, NULL) == KVSHM_OK)
    total++;
  kvshm_iter_close(it);
  ck_assert_int_eq(total, 1);
  tu_assert_rc(kvshm_iter_open(kv, "zz", 2, 0, &it), KVSHM_OK);
  tu_assert_rc(kvshm_iter_next(it, &k, &kl, &v, &vl, &fl, &exp),
               KVSHM_ENOTFOUND);
  kvshm_iter_close(it);
  /* Bad arguments. */
  tu_assert_rc(kvshm_iter_open(kv, NULL, 0, 0x80, &it), KVSHM_EINVAL);
  tu_assert_rc(kvshm_iter_open(kv, NULL, 3, 0, &it), KVSHM_EINVAL);
  tu_assert_rc(kvshm_iter_open(kv, NULL, 0, 0, NULL), KVSHM_EINVAL);
  kvshm_iter_close(NULL);
  finish(kv, name);
}
END_TEST

START_TEST(iteration_of_an_empty_cache) {
  char name[TU_NAME_SIZE];
  kvshm *kv = open_small(name);
  kvshm_iter *it = NULL;
  tu_assert_rc(kvshm_iter_open(kv, NULL, 0, 0, &it), KVSHM_OK);
  tu_assert_rc(kvshm_iter_next(it, NULL, NULL, NULL, NULL, NULL, NULL),
               KVSHM_ENOTFOUND);
  kvshm_iter_close(it);
  finish(kv, name);
}
END_TEST

static void count_line(void *ctx, const char *msg) {
  (void)msg;
  ++*(int *)ctx;
}

START_TEST(header_dump_lists_fields) {
  char name[TU_NAME_SIZE];
  kvshm *kv = open_small(name);
  int lines = 0;
  tu_assert_rc(kvshm_header_dump(kv, count_line, &lines), KVSHM_OK);
  ck_assert_int_ge(lines, 16);
  finish(kv, name);
}
END_TEST

/* Is key's entry in its home slot (its head there, holding the key)? */
static bool at_home(kvshm *kv, const char *name, const char *key) {
  size_t off = kvshm_test_home_offset(kv, key, strlen(key));
  unsigned char slot[HEAD_HDR + 64];
  tu_peek(name, off, slot, sizeof slot);
  uint16_t state, klen;
  memcpy(&state, slot, 2);
  memcpy(&klen, slot + 2, 2);
  return (state & 0xf) == 1 && klen == strlen(key) &&
         memcmp(slot + HEAD_HDR, key, klen) == 0;
}

/* Two keys with one home slot: out[0] and out[1]. */
static void same_home(kvshm *kv, const char *prefix, char out[2][32]) {
  for (int i = 0;; i++) {
    snprintf(out[0], 32, "%s%d", prefix, i);
    size_t home = kvshm_test_home_offset(kv, out[0], strlen(out[0]));
    for (int j = i + 1; j < i + 20000; j++) {
      snprintf(out[1], 32, "%s%d", prefix, j);
      if (kvshm_test_home_offset(kv, out[1], strlen(out[1])) == home)
        return;
    }
  }
}

/* A new entry goes to its home slot when that is free: from the never-used
 * tail, from the middle of the free list, or elsewhere when it is taken. */
START_TEST(entries_live_at_home) {
  char name[TU_NAME_SIZE], key[32], pair[2][32], third[32] = "r";
  kvshm *kv = open_small(name);
  int home = 0, n = 1000;
  for (int i = 0; i < n; i++) {
    snprintf(key, sizeof key, "h%d", i);
    tu_set_str(kv, key, "value");
    ck_assert_msg(i || at_home(kv, name, key), "the first entry is at home");
    home += at_home(kv, name, key);
  }
  /* ~1000 entries in ~12,000 slots: a home is taken by another key about
   * one time in twenty-four. */
  ck_assert_msg(home > n * 9 / 10, "%d of %d entries at home", home, n);
  ck_assert_int_eq(tu_verify(kv), 0);
  same_home(kv, "p", pair);
  tu_set_str(kv, pair[0], "a");
  tu_set_str(kv, pair[1], "b");
  ck_assert(at_home(kv, name, pair[0]) && !at_home(kv, name, pair[1]));
  /* Freed, the home joins the free list (not at its head once another
   * slot is freed after it); a new key of that home takes it back. */
  tu_assert_rc(kvshm_del(kv, pair[0], strlen(pair[0])), KVSHM_OK);
  tu_assert_rc(kvshm_del(kv, "h1", 2), KVSHM_OK);
  size_t want = kvshm_test_home_offset(kv, pair[0], strlen(pair[0]));
  for (int i = 0; kvshm_test_home_offset(kv, third, strlen(third)) != want; i++)
    snprintf(third, sizeof third, "r%d", i);
  tu_set_str(kv, third, "c");
  ck_assert(at_home(kv, name, third));
  tu_assert_value(kv, pair[1], strlen(pair[1]), "b", 1);
  tu_assert_value(kv, third, strlen(third), "c", 1);
  finish(kv, name);
}
END_TEST

/* A damaged back link of the free list: the home is not taken through it
 * (the entry goes elsewhere), verify reports it, repair rebuilds it. */
START_TEST(damaged_back_link_is_not_followed) {
  char name[TU_NAME_SIZE], pair[2][32], buf[256], other[2][32];
  kvshm *kv = open_small(name);
  same_home(kv, "d", pair);
  uint32_t s = kvshm_test_stripe_of(kv, pair[0], strlen(pair[0]));
  for (int i = 0, n = 0; n < 2; i++) { /* free lists are per stripe */
    snprintf(other[n], 32, "o%d", i);
    n += kvshm_test_stripe_of(kv, other[n], strlen(other[n])) == s;
  }
  tu_set_str(kv, pair[0], "a");
  tu_set_str(kv, other[0], "o");
  tu_set_str(kv, other[1], "o");
  /* Free list: other[1], other[0], pair[0]'s home, ...: damage the home's
   * back link (it should name other[0]'s slot). */
  tu_assert_rc(kvshm_del(kv, pair[0], strlen(pair[0])), KVSHM_OK);
  tu_assert_rc(kvshm_del(kv, other[0], strlen(other[0])), KVSHM_OK);
  tu_assert_rc(kvshm_del(kv, other[1], strlen(other[1])), KVSHM_OK);
  size_t off = kvshm_test_home_offset(kv, pair[0], strlen(pair[0]));
  tu_poke32(name, off + 8, 77777);
  tu_set_str(kv, pair[1], "b");
  ck_assert(!at_home(kv, name, pair[1]));
  tu_assert_value(kv, pair[1], strlen(pair[1]), "b", 1);
  ck_assert_int_ne(tu_verify_capture(kv, buf, sizeof buf), 0);
  ck_assert_msg(strstr(buf, "back link"), "verify said: %s", buf);
  ck_assert_int_ge(kvshm_repair(kv, 0, NULL, NULL), 1);
  tu_assert_value(kv, pair[1], strlen(pair[1]), "b", 1);
  finish(kv, name);
}
END_TEST

static Suite *table_suite(void) {
  Suite *s = suite_create("table");
  TCase *tc = tu_tcase("ops", 30);
  tcase_add_test(tc, get_set_del_has_codes);
  tcase_add_test(tc, get_size_query_and_ebufsize);
  tcase_add_test(tc, null_buffer_with_a_size);
  tcase_add_test(tc, flags_word_round_trips);
  tcase_add_test(tc, nx_xx_keepttl);
  tcase_add_test(tc, incr_codes_and_text);
  tcase_add_test(tc, incr_keeps_expiry_and_uses_default_ttl);
  tcase_add_test(tc, stats_counters_are_exact);
  tcase_add_test(tc, clear_empties_everything);
  tcase_add_test(tc, header_dump_lists_fields);
  suite_add_tcase(s, tc);
  tc = tu_tcase("sizes", 60);
  tcase_add_test(tc, entry_sizes_around_slot_boundaries);
  tcase_add_test(tc, null_pointers_of_zero_length);
  tcase_add_test(tc, largest_value_and_one_byte_more);
  tcase_add_test(tc, one_mib_values_with_default_config);
  tcase_add_test(tc, binary_keys_and_values);
  suite_add_tcase(s, tc);
  tc = tu_tcase("home", 30);
  tcase_add_test(tc, entries_live_at_home);
  tcase_add_test(tc, damaged_back_link_is_not_followed);
  suite_add_tcase(s, tc);
  tc = tu_tcase("ttl", 30);
  tcase_add_test(tc, ttl_on_a_test_clock);
  tcase_add_test(tc, default_ttl_applies_unless_never);
  suite_add_tcase(s, tc);
  tc = tu_tcase("iter", 30);
  tcase_add_test(tc, iteration_sees_each_live_key_once);
  tcase_add_test(tc, iteration_of_an_empty_cache);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  Suite *suites[] = {table_suite()};
  return tu_run_suites(suites, 1);
}
