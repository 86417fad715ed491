/*
 * check_lfu.c - tests for lfu.c: when a stripe is full, eviction removes the
 * least frequently used entries (sampled, as Redis does), takes expired
 * entries first, never the entry being replaced, and keeps every count
 * exact.  The clock is the test's, so LFU decay never happens by accident.
 */
#include "testutil.h"

#include <string.h>

#define HOT 50
#define HOT_READS 100
#define VLEN 32 /* key + value fit one 128-byte slot */

/* One stripe of ~1150 single-slot entries. */
static kvshm *open_full_candidate(char name[TU_NAME_SIZE], tu_clock *clk) {
  tu_name(name);
  kvshm_config c;
  tu_config(&c, 160 * 1024, 128, 1);
  kvshm *kv = tu_open(name, &c);
  tu_clock_attach(kv, clk, TU_T0);
  return kv;
}

static void put(kvshm *kv, const char *prefix, int i, int64_t ttl) {
  char key[24];
  unsigned char val[VLEN];
  int n = snprintf(key, sizeof key, "%s%06d", prefix, i);
  tu_fill(val, sizeof val, (uint64_t)i);
  tu_assert_rc(kvshm_set(kv, key, (size_t)n, val, sizeof val, 0, ttl, 0),
               KVSHM_OK);
}

static int present(kvshm *kv, const char *prefix, int i) {
  char key[24];
  int n = snprintf(key, sizeof key, "%s%06d", prefix, i);
  unsigned char val[VLEN], want[VLEN];
  size_t len = 0;
  int rc = kvshm_get(kv, key, (size_t)n, val, sizeof val, &len, NULL);
  if (rc == KVSHM_ENOTFOUND)
    return 0;
  tu_assert_rc(rc, KVSHM_OK);
  tu_fill(want, sizeof want, (uint64_t)i);
  ck_assert_uint_eq(len, VLEN);
  ck_assert_msg(memcmp(val, want, VLEN) == 0, "%s: wrong value", key);
  return 1;
}

START_TEST(hot_keys_survive_a_flood) {
  char name[TU_NAME_SIZE];
  tu_clock clk;
  kvshm *kv = open_full_candidate(name, &clk);
  kvshm_stats st = tu_stats(kv);
  const int cap = (int)st.slots_per_stripe;
  const int cold = cap - HOT;
  ck_assert_int_gt(cold, 10 * HOT);
  /* Fill the stripe exactly: no eviction yet. */
  for (int i = 0; i < HOT; i++)
    put(kv, "hot", i, 0);
  for (int i = 0; i < cold; i++)
    put(kv, "cold", i, 0);
  st = tu_stats(kv);
  ck_assert_uint_eq(st.entries, (uint64_t)cap);
  ck_assert_uint_eq(st.slots_free, 0);
  ck_assert_uint_eq(st.evictions, 0);
  /* Read the hot keys often. */
  for (int r = 0; r < HOT_READS; r++)
    for (int i = 0; i < HOT; i++)
      ck_assert_int_eq(present(kv, "hot", i), 1);
  /* A flood of ten times the capacity in new keys. */
  const int flood = 10 * cap;
  for (int i = 0; i < flood; i++)
    put(kv, "new", i, 0);
  st = tu_stats(kv);
  ck_assert_uint_eq(st.evictions, (uint64_t)flood); /* one per new key */
  ck_assert_uint_eq(st.expirations, 0);
  ck_assert_uint_eq(st.entries, (uint64_t)cap);
  ck_assert_uint_eq(st.sets, (uint64_t)(cap + flood));
  int hot_left = 0, cold_left = 0, new_left = 0;
  for (int i = 0; i < HOT; i++)
    hot_left += present(kv, "hot", i);
  for (int i = 0; i < cold; i++)
    cold_left += present(kv, "cold", i);
  for (int i = 0; i < flood; i++)
    new_left += present(kv, "new", i);
  ck_assert_int_eq(hot_left + cold_left + new_left, cap);
  ck_assert_msg(hot_left >= HOT * 9 / 10, "only %d of %d hot keys survived",
                hot_left, HOT);
  ck_assert_msg(cold_left <= cold / 10,
                "%d of %d cold keys survived a flood "
                "of %d",
                cold_left, cold, flood);
  ck_assert_int_eq(tu_verify(kv), 0);
  kvshm_close(kv);
  kvshm_unlink(name);
}
END_TEST

START_TEST(expired_entries_go_first) {
  char name[TU_NAME_SIZE];
  tu_clock clk;
  kvshm *kv = open_full_candidate(name, &clk);
  const int cap = (int)tu_stats(kv).slots_per_stripe;
  /* Half of the stripe expires at T0+1000, the other half never. */
  const int exp = (cap + 1) / 2, live = cap / 2;
  for (int i = 0; i < cap; i++)
    put(kv, i % 2 ? "live" : "exp", i / 2, i % 2 ? 0 : 1000);
  ck_assert_uint_eq(tu_stats(kv).slots_free, 0);
  clk.now_ms = TU_T0 + 2000;
  /* Make room for an eighth of the stripe: the expired entries should pay.
   * Sampling 16 entries per victim, with at least 3/8 of them expired, a
   * sample without an expired entry has odds < 6e-4 each time, so over the
   * ~140 victims more than 2 live ones go with odds ~1e-6. */
  const int add = cap / 8;
  for (int i = 0; i < add; i++)
    put(kv, "add", i, 0);
  kvshm_stats st = tu_stats(kv);
  ck_assert_uint_eq(st.evictions + st.expirations, (uint64_t)add);
  ck_assert_msg(st.evictions <= 2,
                "%llu live entries evicted while %d "
                "expired ones were there",
                (unsigned long long)st.evictions, exp);
  int live_left = 0;
  for (int i = 0; i < live; i++)
    live_left += present(kv, "live", i);
  ck_assert_int_ge(live_left, live - 2);
  for (int i = 0; i < add; i++)
    ck_assert_int_eq(present(kv, "add", i), 1);
  ck_assert_int_eq(tu_verify(kv), 0);
  kvshm_close(kv);
  kvshm_unlink(name);
}
END_TEST

START_TEST(replaced_entry_is_never_its_own_victim) {
  char name[TU_NAME_SIZE];
  tu_clock clk;
  kvshm *kv = open_full_candidate(name, &clk);
  const int cap = (int)tu_stats(kv).slots_per_stripe;
  for (int i = 0; i < cap; i++)
    put(kv, "f", i, 0);
  /* Grow one entry, again and again, in the full stripe: it must be
   * replaced (the others make room), never evicted for its own growth. */
  static unsigned char big[120 * 40];
  for (int round = 1; round <= 40; round++) {
    size_t len = (size_t)round * 120;
    tu_fill(big, len, (uint64_t)round);
    tu_assert_rc(kvshm_set(kv, "grow", 4, big, len, 0, 0, 0), KVSHM_OK);
    tu_assert_value(kv, "grow", 4, big, len);
    tu_assert_rc(kvshm_set(kv, "grow", 4, big, len, 0, 0, KVSHM_XX), KVSHM_OK);
  }
  kvshm_stats st = tu_stats(kv);
  ck_assert_uint_gt(st.evictions, 0);
  ck_assert_uint_eq(st.slots_free + st.slots_used, (uint64_t)cap);
  ck_assert_int_eq(tu_verify(kv), 0);
  kvshm_close(kv);
  kvshm_unlink(name);
}
END_TEST

START_TEST(chained_entries_under_pressure) {
  char name[TU_NAME_SIZE];
  tu_clock clk;
  kvshm *kv = open_full_candidate(name, &clk);
  uint64_t rng = 42;
  static unsigned char val[4000];
  /* Values of 1 to ~45 slots, over and over: eviction must free whole
   * chains and leave a consistent stripe. */
  for (int i = 0; i < 3000; i++) {
    char key[16];
    int n = snprintf(key, sizeof key, "c%d", (int)(tu_rand(&rng) % 400));
    size_t len = (size_t)(tu_rand(&rng) % sizeof val);
    tu_fill(val, len, (uint64_t)i);
    tu_assert_rc(kvshm_set(kv, key, (size_t)n, val, len, (uint32_t)i, 0, 0),
                 KVSHM_OK);
    if (i % 500 == 0)
      ck_assert_int_eq(tu_verify(kv), 0);
  }
  kvshm_stats st = tu_stats(kv);
  ck_assert_uint_gt(st.evictions, 0);
  ck_assert_uint_eq(st.sets, 3000);
  /* Every surviving entry is one of the values written under its key. */
  kvshm_iter *it;
  tu_assert_rc(kvshm_iter_open(kv, NULL, 0, 0, &it), KVSHM_OK);
  const void *v;
  size_t vl;
  uint32_t fl;
  uint64_t count = 0;
  while (kvshm_iter_next(it, NULL, NULL, &v, &vl, &fl, NULL) == KVSHM_OK) {
    tu_fill(val, vl, fl);
    ck_assert_msg(memcmp(v, val, vl) == 0, "entry %u has wrong bytes", fl);
    count++;
  }
  kvshm_iter_close(it);
  ck_assert_uint_eq(count, st.entries);
  ck_assert_int_eq(tu_verify(kv), 0);
  kvshm_close(kv);
  kvshm_unlink(name);
}
END_TEST

static Suite *lfu_suite(void) {
  Suite *s = suite_create("lfu");
  TCase *tc = tu_tcase("evict", 60);
  tcase_add_test(tc, hot_keys_survive_a_flood);
  tcase_add_test(tc, expired_entries_go_first);
  tcase_add_test(tc, replaced_entry_is_never_its_own_victim);
  tcase_add_test(tc, chained_entries_under_pressure);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  Suite *suites[] = {lfu_suite()};
  return tu_run_suites(suites, 1);
}
