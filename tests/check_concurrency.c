/*
 * check_concurrency.c - several processes on one cache at once (each test
 * forks its workers, released together by a gate): increments are exact
 * across processes, every value read is one some process wrote (values
 * check themselves, so a torn read is caught), a writer's values are seen
 * in the order it wrote them, and the segment verifies clean afterwards,
 * with and without eviction and kvshm_clear running underneath.
 */
#include "testutil.h"

#include <inttypes.h>
#include <string.h>

#define NPROC 4
#define INCRS 5000
#define WAIT_MS 60000u

static void open_child(const char *name, kvshm **kv) {
  TU_CHILD_RC(kvshm_open(name, NULL, KVSHM_NOREAPER, kv), KVSHM_OK);
}

/* ---- exact counters ------------------------------------------------------ */

static void incr_worker(const char *name, int id, tu_gate *g) {
  kvshm *kv;
  open_child(name, &kv);
  char own[16];
  snprintf(own, sizeof own, "ctr.%d", id);
  tu_gate_wait(g);
  int64_t last = 0;
  for (int i = 0; i < INCRS; i++) {
    int64_t r = 0;
    TU_CHILD_RC(kvshm_incr(kv, "ctr", 3, 1, 0, &r), KVSHM_OK);
    TU_CHILD_CHECK(r > last && r <= NPROC * INCRS); /* only ever grows */
    last = r;
    TU_CHILD_RC(kvshm_incr(kv, own, strlen(own), 1, 0, &r), KVSHM_OK);
    TU_CHILD_CHECK(r == i + 1); /* nobody else touches it */
    TU_CHILD_RC(kvshm_incr(kv, "pm", 2, id % 2 ? -3 : 3, 0, NULL), KVSHM_OK);
  }
  kvshm_close(kv);
  _exit(0);
}

static int64_t read_int(kvshm *kv, const char *key) {
  char buf[32];
  size_t n = 0;
  tu_assert_rc(kvshm_get(kv, key, strlen(key), buf, sizeof buf - 1, &n, NULL),
               KVSHM_OK);
  buf[n] = '\0';
  return strtoll(buf, NULL, 10);
}

START_TEST(incr_totals_are_exact) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  kvshm_config c;
  tu_config(&c, 1024 * 1024, 0, 4);
  kvshm *kv = tu_open(name, &c);
  tu_gate g;
  tu_gate_init(&g);
  pid_t pids[NPROC];
  for (int i = 0; i < NPROC; i++) {
    pids[i] = tu_fork();
    if (pids[i] == 0)
      incr_worker(name, i, &g);
  }
  tu_gate_open(&g, NPROC);
  for (int i = 0; i < NPROC; i++)
    tu_wait_ok(pids[i], WAIT_MS, "incr worker");
  ck_assert_int_eq(read_int(kv, "ctr"), NPROC * INCRS);
  for (int i = 0; i < NPROC; i++) {
    char own[16];
    snprintf(own, sizeof own, "ctr.%d", i);
    ck_assert_int_eq(read_int(kv, own), INCRS);
  }
  ck_assert_int_eq(read_int(kv, "pm"), 0);
  kvshm_stats st = tu_stats(kv);
  ck_assert_uint_eq(st.sets, 3ull * NPROC * INCRS);
  ck_assert_uint_eq(st.entries, 2 + NPROC);
  ck_assert_uint_eq(st.evictions + st.repairs + st.corrupt, 0);
  ck_assert_int_eq(tu_verify(kv), 0);
  kvshm_close(kv);
  kvshm_unlink(name);
}
END_TEST

/* ---- mixed operations -----------------------------------------------------
 */

struct mix {
  const char *name;
  int nkeys;     /* keys "m<k>" */
  int ops;       /* operations per worker */
  size_t maxlen; /* longest value */
  int clearer;   /* worker 0 calls kvshm_clear now and then */
  int evicting;  /* the cache is too small: counters may be evicted */
};

static uint32_t last_seen[NPROC][256]; /* seq + 1 last read, per writer/key */

static void check_value(const char *what, int k, const void *v, size_t n,
                        uint32_t fl) {
  uint32_t w = 0, seq = 0;
  const char *why = "";
  if (tu_val_check(v, n, fl, (uint32_t)k, &w, &seq, &why) != 0) {
    fprintf(stderr, "%s of m%d: bad value (%zu bytes): %s\n", what, k, n, why);
    _exit(TU_CHILD_FAILED);
  }
  TU_CHILD_CHECK(w < NPROC);
  /* A writer's values for a key are seen in the order it wrote them. */
  if (seq + 1 < last_seen[w][k]) {
    fprintf(stderr, "%s of m%d: writer %u's seq %u read after seq %u\n", what,
            k, w, seq, last_seen[w][k] - 1);
    _exit(TU_CHILD_FAILED);
  }
  last_seen[w][k] = seq + 1;
}

static void mix_worker(const struct mix *m, int id, tu_gate *g) {
  kvshm *kv;
  open_child(m->name, &kv);
  unsigned char *buf = malloc(m->maxlen), *val = malloc(m->maxlen);
  TU_CHILD_CHECK(buf && val);
  uint64_t rng = 0x1234567ull + (uint64_t)id * 7919;
  char own[16];
  snprintf(own, sizeof own, "ops.%d", id);
  int64_t mine = 0;
  tu_gate_wait(g);
  for (int i = 0; i < m->ops; i++) {
    int k = (int)(tu_rand(&rng) % (uint64_t)m->nkeys);
    char key[16];
    int kl = snprintf(key, sizeof key, "m%d", k);
    unsigned r = (unsigned)(tu_rand(&rng) % 100);
    if (r < 45) {
      size_t n = 0;
      uint32_t fl = 0;
      int rc = kvshm_get(kv, key, (size_t)kl, buf, m->maxlen, &n, &fl);
      if (rc == KVSHM_OK)
        check_value("get", k, buf, n, fl);
      else
        TU_CHILD_RC(rc, KVSHM_ENOTFOUND);
    } else if (r < 80) {
      size_t n =
          TU_VAL_MIN + (size_t)(tu_rand(&rng) % (m->maxlen - TU_VAL_MIN + 1));
      tu_val_make(val, n, (uint32_t)k, (uint32_t)id, (uint32_t)i);
      TU_CHILD_RC(
          kvshm_set(kv, key, (size_t)kl, val, n, tu_val_flags(val, n), 0, 0),
          KVSHM_OK);
      last_seen[id][k] = (uint32_t)i + 1;
    } else if (r < 88) {
      int rc = kvshm_del(kv, key, (size_t)kl);
      if (rc != KVSHM_OK)
        TU_CHILD_RC(rc, KVSHM_ENOTFOUND);
    } else if (r < 96) {
      int64_t res = 0;
      TU_CHILD_RC(kvshm_incr(kv, own, strlen(own), 1, 0, &res), KVSHM_OK);
      mine++;
      if (!m->evicting && !m->clearer)
        TU_CHILD_CHECK(res == mine);
    } else if (r < 99 || !m->clearer || id != 0) {
      int rc = kvshm_has(kv, key, (size_t)kl);
      if (rc != KVSHM_OK)
        TU_CHILD_RC(rc, KVSHM_ENOTFOUND);
    } else {
      TU_CHILD_RC(kvshm_clear(kv), KVSHM_OK);
    }
    if (i % 2500 == 1249) { /* walk everything now and then */
      kvshm_iter *it;
      TU_CHILD_RC(kvshm_iter_open(kv, "m", 1, 0, &it), KVSHM_OK);
      const void *ik, *iv;
      size_t ikl, ivl;
      uint32_t ifl;
      int rc;
      while ((rc = kvshm_iter_next(it, &ik, &ikl, &iv, &ivl, &ifl, NULL)) ==
             KVSHM_OK) {
        char tmp[16];
        TU_CHILD_CHECK(ikl > 1 && ikl < sizeof tmp);
        memcpy(tmp, ik, ikl);
        tmp[ikl] = '\0';
        int ik_id = atoi(tmp + 1);
        TU_CHILD_CHECK(ik_id >= 0 && ik_id < m->nkeys);
        check_value("iteration", ik_id, iv, ivl, ifl);
      }
      TU_CHILD_RC(rc, KVSHM_ENOTFOUND);
      kvshm_iter_close(it);
    }
  }
  if (!m->evicting && !m->clearer) {
    int64_t res = -1;
    TU_CHILD_RC(kvshm_incr(kv, own, strlen(own), 0, 0, &res), KVSHM_OK);
    TU_CHILD_CHECK(res == mine);
  }
  free(buf);
  free(val);
  kvshm_close(kv);
  _exit(0);
}

static void run_mix(struct mix *m, uint64_t memory, uint32_t stripes) {
  char name[TU_NAME_SIZE];
  m->name = tu_name(name);
  kvshm_config c;
  tu_config(&c, memory, 160, stripes);
  kvshm *kv = tu_open(name, &c);
  tu_gate g;
  tu_gate_init(&g);
  pid_t pids[NPROC];
  for (int i = 0; i < NPROC; i++) {
    pids[i] = tu_fork();
    if (pids[i] == 0)
      mix_worker(m, i, &g);
  }
  tu_gate_open(&g, NPROC);
  for (int i = 0; i < NPROC; i++)
    tu_wait_ok(pids[i], WAIT_MS, "mixed-operations worker");
  /* Afterwards, from here: every value is valid, the segment verifies. */
  unsigned char *buf = malloc(m->maxlen);
  ck_assert_ptr_nonnull(buf);
  for (int k = 0; k < m->nkeys; k++) {
    char key[16];
    int kl = snprintf(key, sizeof key, "m%d", k);
    size_t n = 0;
    uint32_t fl = 0;
    int rc = kvshm_get(kv, key, (size_t)kl, buf, m->maxlen, &n, &fl);
    if (rc == KVSHM_ENOTFOUND)
      continue;
    tu_assert_rc(rc, KVSHM_OK);
    const char *why = "";
    ck_assert_msg(tu_val_check(buf, n, fl, (uint32_t)k, NULL, NULL, &why) == 0,
                  "m%d: %s", k, why);
  }
  free(buf);
  kvshm_stats st = tu_stats(kv);
  ck_assert_uint_eq(st.repairs + st.corrupt, 0);
  if (m->evicting)
    ck_assert_uint_gt(st.evictions, 0);
  else
    ck_assert_uint_eq(st.evictions, 0);
  ck_assert_int_eq(tu_verify(kv), 0);
  kvshm_close(kv);
  kvshm_unlink(name);
}

START_TEST(mixed_ops_roomy_cache) {
  struct mix m = {NULL, 64, 20000, 700, 0, 0};
  run_mix(&m, 4 * 1024 * 1024, 4);
}
END_TEST

START_TEST(mixed_ops_one_stripe) {
  struct mix m = {NULL, 32, 20000, 1500, 0, 0};
  run_mix(&m, 1024 * 1024, 1);
}
END_TEST

START_TEST(mixed_ops_while_evicting) {
  struct mix m = {NULL, 200, 20000, 1500, 0, 1};
  run_mix(&m, 96 * 1024, 2);
}
END_TEST

START_TEST(mixed_ops_while_clearing) {
  struct mix m = {NULL, 64, 20000, 700, 1, 0};
  run_mix(&m, 4 * 1024 * 1024, 4);
}
END_TEST

/* The checker the workers rely on must itself catch damage. */
START_TEST(value_checker_catches_damage) {
  unsigned char v[200];
  uint32_t w = 9, seq = 9;
  tu_val_make(v, sizeof v, 7, 2, 41);
  uint32_t fl = tu_val_flags(v, sizeof v);
  ck_assert_int_eq(tu_val_check(v, sizeof v, fl, 7, &w, &seq, NULL), 0);
  ck_assert_uint_eq(w, 2);
  ck_assert_uint_eq(seq, 41);
  ck_assert_int_eq(tu_val_check(v, sizeof v, fl, 8, NULL, NULL, NULL), -1);
  ck_assert_int_eq(tu_val_check(v, sizeof v, fl ^ 1, 7, NULL, NULL, NULL), -1);
  ck_assert_int_eq(tu_val_check(v, sizeof v - 1, fl, 7, NULL, NULL, NULL), -1);
  for (size_t i = 0; i < sizeof v; i += 13) {
    v[i] ^= 0x20;
    ck_assert_int_eq(tu_val_check(v, sizeof v, fl, 7, NULL, NULL, NULL), -1);
    v[i] ^= 0x20;
  }
  /* Half of one value and half of another (a torn read). */
  unsigned char a[200];
  tu_val_make(a, sizeof a, 7, 2, 42);
  memcpy(v + 100, a + 100, 100);
  ck_assert_int_eq(tu_val_check(v, sizeof v, fl, 7, NULL, NULL, NULL), -1);
}
END_TEST

static Suite *concurrency_suite(void) {
  Suite *s = suite_create("concurrency");
  TCase *tc = tu_tcase("processes", 120);
  tcase_add_test(tc, value_checker_catches_damage);
  tcase_add_test(tc, incr_totals_are_exact);
  tcase_add_test(tc, mixed_ops_roomy_cache);
  tcase_add_test(tc, mixed_ops_one_stripe);
  tcase_add_test(tc, mixed_ops_while_evicting);
  tcase_add_test(tc, mixed_ops_while_clearing);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  Suite *suites[] = {concurrency_suite()};
  return tu_run_suites(suites, 1);
}
