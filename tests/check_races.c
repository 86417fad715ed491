/*
 * check_races.c - races between the two tiers, each stopped at its exact
 * instant: the binary is linked with -Wl,--wrap on the SQLite-tier calls
 * below, and a wrapper runs the other side of the race when it is armed.
 *
 *   promote_scratch  a value read from SQLite is promoted intact even when
 *                    long keys reuse the handle's scratch buffer meanwhile
 *   flush_vs_flush   two write-behinds of one stripe: the older batch never
 *                    overwrites a newer value, nor brings a deleted key back
 *   clear_vs_get     a get during kvshm_clear never promotes a cleared row
 *   expire_vs_get    a row read before a newer value expired is not promoted
 *   set_during_clear a value set and written behind while kvshm_clear runs
 *                    is not deleted from SQLite by that clear
 */
#include "testutil.h"

#include <sqlite3.h>
#include <string.h>

int __real_kvshm__store_begin(kvshm *kv);
int __real_kvshm__store_clear(kvshm *kv);
int __real_kvshm__store_fetch(kvshm *kv, const void *key, size_t klen,
                              uint64_t now, void *row);

static char dir[64], db[128];
static kvshm *victim;      /* the handle whose call is wrapped */
static void (*race)(void); /* run once, inside that call */

static void arm(kvshm *kv, void (*fn)(void)) {
  victim = kv;
  race = fn;
}

static void fire(kvshm *kv) {
  if (kv == victim && race) {
    void (*fn)(void) = race;
    race = NULL;
    fn();
  }
}

int __wrap_kvshm__store_begin(kvshm *kv);
int __wrap_kvshm__store_begin(kvshm *kv) {
  fire(kv);
  return __real_kvshm__store_begin(kv);
}
int __wrap_kvshm__store_clear(kvshm *kv);
int __wrap_kvshm__store_clear(kvshm *kv) {
  fire(kv);
  return __real_kvshm__store_clear(kv);
}
int __wrap_kvshm__store_fetch(kvshm *kv, const void *key, size_t klen,
                              uint64_t now, void *row);
int __wrap_kvshm__store_fetch(kvshm *kv, const void *key, size_t klen,
                              uint64_t now, void *row) {
  int rc = __real_kvshm__store_fetch(kv, key, klen, now, row);
  fire(kv); /* the row is read; the reader holds no lock */
  return rc;
}

static char name[TU_NAME_SIZE];
static kvshm *a, *b; /* two handles on one cache, as two processes would */

static kvshm *open_store(uint64_t mem, uint32_t slot) {
  kvshm_config c;
  tu_config(&c, mem, slot, 1);
  c.sqlite_path = db;
  kvshm *kv = NULL;
  tu_assert_rc(kvshm_open(name, &c, KVSHM_NOREAPER, &kv), KVSHM_OK);
  return kv;
}

static void setup(void) {
  snprintf(dir, sizeof dir, "/tmp/kvshm-races-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(db, sizeof db, "%s/r.db", dir);
  tu_name(name);
  victim = NULL;
  race = NULL;
}

static void teardown(void) {
  kvshm_close(a);
  kvshm_close(b);
  a = b = NULL;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  (void)!system(cmd);
}

static int sql_value(const char *key, char *out, size_t cap) {
  sqlite3 *h;
  sqlite3_stmt *q;
  int n = -1;
  ck_assert_int_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), 0);
  sqlite3_prepare_v2(h, "SELECT value FROM kvshm_entries WHERE key=?", -1, &q,
                     NULL);
  sqlite3_bind_blob(q, 1, key, (int)strlen(key), SQLITE_STATIC);
  if (sqlite3_step(q) == SQLITE_ROW) {
    n = sqlite3_column_bytes(q, 0);
    memcpy(out, sqlite3_column_blob(q, 0), (size_t)n < cap ? (size_t)n : cap);
  }
  sqlite3_finalize(q);
  sqlite3_close(h);
  return n;
}

START_TEST(test_promote_scratch) {
  a = open_store(256 << 10, 64);
  char key[100], other[100], buf[64];
  memset(key, 'K', sizeof key); /* spans slots: find_locked uses scratch */
  tu_assert_rc(kvshm_set(a, key, sizeof key, "GOODVALUE1", 10, 0, 0, 0),
               KVSHM_OK);
  tu_assert_rc(kvshm_flush(a), KVSHM_OK);
  for (int i = 0; kvshm_in_memory(a, key, sizeof key) == KVSHM_OK; i++) {
    memset(other, 'a' + i % 26, sizeof other);
    snprintf(other, sizeof other, "%08d", i);
    other[8] = 'x';
    tu_assert_rc(kvshm_set(a, other, sizeof other, "v", 1, 0, 0, 0), KVSHM_OK);
    tu_assert_rc(kvshm_flush(a), KVSHM_OK);
  }
  size_t vlen = 0;
  tu_assert_rc(kvshm_get(a, key, sizeof key, buf, sizeof buf, &vlen, NULL),
               KVSHM_OK);
  ck_assert_uint_eq(vlen, 10);
  ck_assert(memcmp(buf, "GOODVALUE1", 10) == 0);
}
END_TEST

static void set_v2_and_flush(void) {
  tu_assert_rc(kvshm_set(b, "key", 3, "v2", 2, 0, 0, 0), KVSHM_OK);
  tu_assert_rc(kvshm_flush(b), KVSHM_OK);
}
static void del_and_flush(void) {
  tu_assert_rc(kvshm_del(b, "key", 3), KVSHM_OK);
  tu_assert_rc(kvshm_flush(b), KVSHM_OK);
}

START_TEST(test_flush_vs_flush) {
  char buf[16];
  b = open_store(1 << 20, 0);
  a = open_store(0, 0);
  tu_assert_rc(kvshm_set(b, "key", 3, "v1", 2, 0, 0, 0), KVSHM_OK);
  arm(a, set_v2_and_flush); /* a copied v1; b writes v2 first */
  tu_assert_rc(kvshm_flush(a), KVSHM_OK);
  ck_assert_int_eq(sql_value("key", buf, sizeof buf), 2);
  ck_assert(memcmp(buf, "v2", 2) == 0);
  tu_assert_rc(kvshm_set(b, "key", 3, "v3", 2, 0, 0, 0), KVSHM_OK);
  arm(a, del_and_flush); /* a copied v3; b deletes it first */
  tu_assert_rc(kvshm_flush(a), KVSHM_OK);
  ck_assert_int_eq(sql_value("key", buf, sizeof buf), -1);
  tu_assert_rc(tu_get(b, "key", 3, buf, sizeof buf, NULL), KVSHM_ENOTFOUND);
}
END_TEST

static void get_during_clear(void) {
  char buf[16];
  tu_get(b, "key", 3, buf, sizeof buf, NULL); /* memory cleared, SQLite not */
}

START_TEST(test_clear_vs_get) {
  char buf[16];
  a = open_store(1 << 20, 0);
  b = open_store(0, 0);
  tu_assert_rc(kvshm_set(a, "key", 3, "v1", 2, 0, 0, 0), KVSHM_OK);
  tu_assert_rc(kvshm_flush(a), KVSHM_OK);
  arm(a, get_during_clear);
  tu_assert_rc(kvshm_clear(a), KVSHM_OK);
  tu_assert_rc(tu_get(a, "key", 3, buf, sizeof buf, NULL), KVSHM_ENOTFOUND);
}
END_TEST

static tu_clock clk;

static void newer_value_expires(void) {
  char buf[8];
  tu_assert_rc(kvshm_set(b, "key", 3, "v2", 2, 0, 1000, 0), KVSHM_OK);
  tu_assert_rc(kvshm_flush(b), KVSHM_OK);
  clk.now_ms += 2000; /* v2's TTL passes; the get frees it (clean) */
  tu_assert_rc(tu_get(b, "key", 3, buf, sizeof buf, NULL), KVSHM_ENOTFOUND);
}

START_TEST(test_expire_vs_get) {
  char buf[16];
  b = open_store(1 << 20, 0);
  tu_assert_rc(kvshm_set(b, "key", 3, "v1", 2, 0, 0, 0), KVSHM_OK);
  tu_assert_rc(kvshm_flush(b), KVSHM_OK);
  kvshm_close(b); /* v1 only in SQLite: a fresh segment on the same file */
  tu_assert_rc(kvshm_unlink(name), KVSHM_OK);
  b = open_store(1 << 20, 0);
  a = open_store(0, 0);
  tu_clock_attach(a, &clk, TU_T0);
  kvshm_test_set_clock(b, NULL, NULL);
  tu_clock_attach(b, &clk, TU_T0);
  arm(a, newer_value_expires); /* a read v1 and holds no lock */
  tu_get(a, "key", 3, buf, sizeof buf, NULL);
  tu_assert_rc(tu_get(b, "key", 3, buf, sizeof buf, NULL), KVSHM_ENOTFOUND);
}
END_TEST

static void set_and_flush_during_clear(void) {
  tu_assert_rc(kvshm_set(b, "new", 3, "after", 5, 0, 0, 0), KVSHM_OK);
  tu_assert_rc(kvshm_flush(b), KVSHM_OK); /* must not write before SQLite
                                             is emptied */
}

START_TEST(test_set_during_clear) {
  char buf[16];
  a = open_store(1 << 20, 0);
  b = open_store(0, 0);
  tu_assert_rc(kvshm_set(a, "old", 3, "before", 6, 0, 0, 0), KVSHM_OK);
  tu_assert_rc(kvshm_flush(a), KVSHM_OK);
  arm(a, set_and_flush_during_clear);
  tu_assert_rc(kvshm_clear(a), KVSHM_OK);
  tu_assert_rc(kvshm_flush(a), KVSHM_OK);
  ck_assert_int_eq(sql_value("old", buf, sizeof buf), -1);
  ck_assert_int_eq(sql_value("new", buf, sizeof buf), 5);
  ck_assert(memcmp(buf, "after", 5) == 0);
}
END_TEST

static Suite *races_suite(void) {
  Suite *s = suite_create("races");
  TCase *tc = tu_tcase("two tiers", 30);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_promote_scratch);
  tcase_add_test(tc, test_flush_vs_flush);
  tcase_add_test(tc, test_clear_vs_get);
  tcase_add_test(tc, test_expire_vs_get);
  tcase_add_test(tc, test_set_during_clear);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  Suite *s[] = {races_suite()};
  return tu_run_suites(s, 1);
}
