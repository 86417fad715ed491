/*
 * check_store.c - the SQLite tier: fall-through reads, write-behind,
 * tombstones, inline spills, TTL in both tiers, clear, persistence across a
 * lost segment, and files that are not ours.  Real processes, a real SQLite
 * file, a real kvshm-reaper (turned on for these tests).
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static char dir[TU_DIR_SIZE];

static void setup(void) {
  tu_dir_make(dir, "store");
}

static void teardown(void) {
  tu_dir_remove(dir);
}

static const char *db_path(const char *file) {
  return tu_dir_file(dir, file);
}

static void store_config(kvshm_config *c, uint64_t memory, const char *db) {
  tu_config(c, memory, 0, 1);
  c->sqlite_path = db;
}

static kvshm *open_reaped(const char *name, const kvshm_config *c) {
  kvshm *kv = NULL;
  tu_assert_rc(kvshm_open(name, c, 0, &kv), KVSHM_OK);
  return kv;
}

static int key_of(char *buf, int i) {
  return sprintf(buf, "key-%07d", i);
}
static int val_of(char *buf, int i) {
  return sprintf(buf, "value-%d-%0*d", i, 40 + i % 50, i);
}

/* Rows of the SQLite file, read with SQLite itself. */
static int64_t db_rows(const char *path, const char *where) {
  sqlite3 *db;
  ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
                   SQLITE_OK);
  char q[256];
  snprintf(q, sizeof q, "SELECT count(*) FROM kvshm_entries %s", where);
  sqlite3_stmt *st;
  ck_assert_int_eq(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
  ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
  int64_t n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

static void wait_clean(kvshm *kv, unsigned timeout_ms) {
  uint64_t end = tu_mono_ms() + timeout_ms;
  while (tu_stats(kv).dirty && tu_mono_ms() < end)
    tu_sleep_ms(20);
  ck_assert_uint_eq(tu_stats(kv).dirty, 0);
}

/* 10x more data than memory holds, every key read back by another process;
 * the keys read most stay in memory. */
START_TEST(test_ten_times_memory) {
  char name[TU_NAME_SIZE], k[32], v[160], got[256];
  tu_name(name);
  kvshm_config c;
  store_config(&c, 1u << 20, db_path("ten.db"));
  kvshm *kv = open_reaped(name, &c);
  kvshm_stats st = tu_stats(kv);
  int cap = (int)(st.slots_per_stripe * st.stripes), n = cap * 10;
  for (int i = 0; i < n; i++) {
    tu_assert_rc(kvshm_set(kv, k, (size_t)key_of(k, i), v, (size_t)val_of(v, i),
                           (uint32_t)i, 0, 0),
                 KVSHM_OK);
    if (i % 16 == 0) /* keys 0..19 are the hot ones */
      for (int h = 0; h < 20; h++)
        tu_get(kv, k, (size_t)key_of(k, h), got, sizeof got, NULL);
  }
  kvshm_close(kv); /* no SQLite across fork (store.c): fork, then reopen */
  pid_t pid = tu_fork();
  if (pid == 0) {
    kvshm *ro = NULL;
    TU_CHILD_RC(kvshm_open(name, NULL, 0, &ro), KVSHM_OK);
    for (int i = 0; i < n; i++) {
      size_t len = 0;
      uint32_t flags = 0;
      int vl = val_of(v, i);
      TU_CHILD_RC(
          kvshm_get(ro, k, (size_t)key_of(k, i), got, sizeof got, &len, &flags),
          KVSHM_OK);
      TU_CHILD_CHECK(len == (size_t)vl && memcmp(got, v, len) == 0);
      TU_CHILD_CHECK(flags == (uint32_t)i);
    }
    kvshm_close(ro);
    _exit(0);
  }
  kv = open_reaped(name, NULL);
  tu_wait_ok(pid, 60000, "reader of every key");
  int hot = 0;
  for (int h = 0; h < 20; h++)
    hot += kvshm_in_memory(kv, k, (size_t)key_of(k, h)) == KVSHM_OK;
  /* Most, not all: only clean entries may be evicted, and when the reaper
   * lags (a loaded machine, ASan) the clean ones of a stripe full of new
   * dirty writes are mostly the old hot keys.  A broken LFU keeps about 2
   * (memory holds a tenth of the keys). */
  ck_assert_int_ge(hot, 16);
  st = tu_stats(kv);
  ck_assert_uint_gt(st.evictions, 0);
  ck_assert_int_eq(tu_verify(kv), 0);
  kvshm_close(kv);
}
END_TEST

/* Deleted after eviction: tombstones reach SQLite, even across a reaper
 * killed meanwhile and a lost segment; no key comes back. */
START_TEST(test_delete_evicted) {
  char name[TU_NAME_SIZE], k[32], v[160], got[256];
  tu_name(name);
  const char *db = db_path("del.db");
  kvshm_config c;
  store_config(&c, 1u << 20, db);
  kvshm *kv = open_reaped(name, &c);
  int n = (int)(tu_stats(kv).slots_per_stripe * 4);
  for (int i = 0; i < n; i++)
    tu_assert_rc(kvshm_set(kv, k, (size_t)key_of(k, i), v, (size_t)val_of(v, i),
                           0, 0, 0),
                 KVSHM_OK);
  tu_assert_rc(kvshm_flush(kv), KVSHM_OK);
  kill((pid_t)tu_stats(kv).reaper_pid, SIGKILL); /* no one carries them */
  int evicted = 0; /* deleted keys that lived only in SQLite */
  for (int i = 0; i < n; i += 3) {
    evicted += kvshm_in_memory(kv, k, (size_t)key_of(k, i)) != KVSHM_OK;
    tu_assert_rc(kvshm_del(kv, k, (size_t)key_of(k, i)), KVSHM_OK);
  }
  ck_assert_int_gt(evicted, n / 3 / 2);
  tu_assert_rc(kvshm_del(kv, "never", 5), KVSHM_ENOTFOUND);
  for (int i = 0; i < n; i += 3)
    tu_assert_rc(tu_get(kv, k, (size_t)key_of(k, i), got, sizeof got, NULL),
                 KVSHM_ENOTFOUND);
  kvshm_close(kv);
  tu_sleep_ms(600); /* past the window in which one spawn stands for all */
  /* A reopen restarts the reaper, which carries the tombstones. */
  kv = open_reaped(name, NULL);
  wait_clean(kv, 10000);
  ck_assert_int_eq(db_rows(db, ""), n - (n + 2) / 3);
  kvshm_close(kv);
  tu_assert_rc(kvshm_unlink(name), KVSHM_OK);
  kv = open_reaped(name, &c);
  for (int i = 0; i < n; i++) {
    int rc = tu_get(kv, k, (size_t)key_of(k, i), got, sizeof got, NULL);
    tu_assert_rc(rc, i % 3 ? KVSHM_OK : KVSHM_ENOTFOUND);
  }
  kvshm_close(kv);
}
END_TEST

/* TTL: gone from memory at expiry, and from SQLite (the reaper deletes the
 * rows); a row read from SQLite is checked against the clock too. */
START_TEST(test_ttl_both_tiers) {
  char name[TU_NAME_SIZE], got[64];
  tu_name(name);
  const char *db = db_path("ttl.db");
  kvshm_config c;
  store_config(&c, 1u << 20, db);
  kvshm *kv = open_reaped(name, &c);
  tu_assert_rc(kvshm_set(kv, "short", 5, "v", 1, 0, 300, 0), KVSHM_OK);
  tu_assert_rc(kvshm_set(kv, "long", 4, "v", 1, 0, 600000, 0), KVSHM_OK);
  tu_assert_rc(kvshm_flush(kv), KVSHM_OK);
  ck_assert_int_eq(db_rows(db, "WHERE expires_ms > 0"), 2);
  /* clear empties both tiers: at once in effect, and the reaper deletes
   * the old rows soon after. */
  tu_assert_rc(kvshm_clear(kv), KVSHM_OK);
  ck_assert_int_eq(db_rows(db, "WHERE gen = (SELECT v FROM kvshm_meta WHERE "
                               "k = 'clear_gen')"),
                   0);
  uint64_t gc_end = tu_mono_ms() + 5000;
  while (db_rows(db, "") != 0 && tu_mono_ms() < gc_end)
    tu_sleep_ms(50);
  ck_assert_int_eq(db_rows(db, ""), 0);
  tu_assert_rc(tu_get(kv, "long", 4, got, sizeof got, NULL), KVSHM_ENOTFOUND);
  tu_assert_rc(kvshm_set(kv, "short", 5, "v", 1, 0, 300, 0), KVSHM_OK);
  tu_assert_rc(kvshm_set(kv, "long", 4, "v", 1, 0, 600000, 0), KVSHM_OK);
  tu_assert_rc(kvshm_flush(kv), KVSHM_OK);
  /* A handle whose clock is an hour ahead sees "long" expired. */
  kvshm *other = open_reaped(name, NULL);
  tu_clock clk;
  tu_clock_attach(other, &clk, (uint64_t)time(NULL) * 1000 + 3600000);
  tu_assert_rc(tu_get(other, "long", 4, got, sizeof got, NULL),
               KVSHM_ENOTFOUND);
  kvshm_close(other);
  /* In real time: the reaper removes the expired entry from both tiers. */
  uint64_t end = tu_mono_ms() + 5000;
  while (db_rows(db, "") != 1 && tu_mono_ms() < end)
    tu_sleep_ms(50);
  ck_assert_int_eq(db_rows(db, ""), 1);
  tu_assert_rc(tu_get(kv, "short", 5, got, sizeof got, NULL), KVSHM_ENOTFOUND);
  tu_assert_rc(tu_get(kv, "long", 4, got, sizeof got, NULL), KVSHM_OK);
  ck_assert_uint_ge(tu_stats(kv).expirations, 1);
  kvshm_close(kv);
}
END_TEST

/* No reaper at all and a full cache: writers write their stripe back to
 * SQLite themselves (outside the lock) to make room; nothing is lost. */
START_TEST(test_spill_without_reaper) {
  char name[TU_NAME_SIZE], k[32], v[160], got[256];
  tu_name(name);
  kvshm_config c;
  store_config(&c, 1u << 20, db_path("spill.db"));
  kvshm *kv = NULL;
  tu_assert_rc(kvshm_open(name, &c, KVSHM_NOREAPER, &kv), KVSHM_OK);
  int n = (int)(tu_stats(kv).slots_per_stripe * 5);
  for (int i = 0; i < n; i++)
    tu_assert_rc(kvshm_set(kv, k, (size_t)key_of(k, i), v, (size_t)val_of(v, i),
                           0, 0, 0),
                 KVSHM_OK);
  kvshm_stats st = tu_stats(kv);
  ck_assert_uint_eq(st.reaper_pid, 0);
  ck_assert_uint_gt(st.spills, 0); /* writers wrote back themselves */
  for (int i = 0; i < n; i++) {
    size_t len;
    tu_assert_rc(tu_get(kv, k, (size_t)key_of(k, i), got, sizeof got, &len),
                 KVSHM_OK);
    ck_assert(len == (size_t)val_of(v, i) && memcmp(got, v, len) == 0);
  }
  /* Incr and NX see keys that live only in SQLite. */
  tu_assert_rc(kvshm_set(kv, "ctr", 3, "41", 2, 0, 0, 0), KVSHM_OK);
  /* Push ctr out of memory: eviction samples, so write (and read, so that
   * they are hotter than ctr) other keys until it has gone. */
  for (int i = 0; kvshm_in_memory(kv, "ctr", 3) == KVSHM_OK; i++) {
    ck_assert_int_lt(i, 20 * n);
    int kl = key_of(k, n + i);
    tu_assert_rc(kvshm_set(kv, k, (size_t)kl, v, (size_t)val_of(v, i), 0, 0, 0),
                 KVSHM_OK);
    tu_get(kv, k, (size_t)kl, got, sizeof got, NULL);
  }
  int64_t r = 0;
  tu_assert_rc(kvshm_incr(kv, "ctr", 3, 1, 0, &r), KVSHM_OK);
  ck_assert_int_eq(r, 42);
  tu_assert_rc(kvshm_set(kv, k, (size_t)key_of(k, 1), "x", 1, 0, 0, KVSHM_NX),
               KVSHM_EEXIST);
  ck_assert_int_eq(tu_verify(kv), 0);
  kvshm_close(kv);
}
END_TEST

/* Persistent mode: after the flush delay, every process gone and the
 * segment lost (a reboot), the cache comes back from SQLite. */
START_TEST(test_persistent_survives_loss) {
  char name[TU_NAME_SIZE], k[32], v[160], got[256];
  tu_name(name);
  kvshm_config c;
  store_config(&c, 4u << 20, db_path("persist.db"));
  c.persistent = 1;
  c.flush_delay_ms = 200;
  pid_t pid = tu_fork();
  if (pid == 0) {
    kvshm *w = NULL;
    TU_CHILD_RC(kvshm_open(name, &c, 0, &w), KVSHM_OK);
    for (int i = 0; i < 3000; i++)
      TU_CHILD_RC(kvshm_set(w, k, (size_t)key_of(k, i), v, (size_t)val_of(v, i),
                            0, 0, 0),
                  KVSHM_OK);
    TU_CHILD_RC(kvshm_del(w, k, (size_t)key_of(k, 7)), KVSHM_OK);
    tu_sleep_ms(3 * 200 + 300); /* past the flush delay, with margin */
    raise(SIGKILL);             /* dies without closing anything */
  }
  int status;
  ck_assert_int_eq(tu_wait(pid, 20000, &status), 0);
  kvshm *kv = NULL;
  tu_assert_rc(kvshm_open(name, NULL, KVSHM_NOREAPER, &kv), KVSHM_OK);
  pid_t reaper = (pid_t)tu_stats(kv).reaper_pid;
  kvshm_close(kv);
  ck_assert_int_gt(reaper, 0);
  kill(reaper, SIGKILL); /* no final flush: only the bounded delay counts */
  tu_assert_rc(kvshm_unlink(name), KVSHM_OK);
  kv = open_reaped(name, &c);
  for (int i = 0; i < 3000; i++) {
    size_t len;
    int rc = tu_get(kv, k, (size_t)key_of(k, i), got, sizeof got, &len);
    tu_assert_rc(rc, i == 7 ? KVSHM_ENOTFOUND : KVSHM_OK);
    if (!rc)
      ck_assert(len == (size_t)val_of(v, i) && memcmp(got, v, len) == 0);
  }
  kvshm_close(kv);
}
END_TEST

static void write_file(const char *path, const void *data, size_t n) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, data, n), (ssize_t)n);
  close(fd);
}

static void assert_refused_untouched(const char *path) {
  char name[TU_NAME_SIZE], before[8192], after[8192];
  int fd = open(path, O_RDONLY);
  ssize_t nb = read(fd, before, sizeof before);
  close(fd);
  struct stat sb0, sb1;
  stat(path, &sb0);
  kvshm_config c;
  store_config(&c, 1u << 20, path);
  kvshm *kv = NULL;
  tu_assert_rc(kvshm_open(tu_name(name), &c, KVSHM_NOREAPER, &kv),
               KVSHM_EBADDB);
  ck_assert_ptr_null(kv);
  ck_assert_msg(strstr(kvshm_errdetail(), path) != NULL, "%s",
                kvshm_errdetail());
  fd = open(path, O_RDONLY);
  ssize_t na = read(fd, after, sizeof after);
  close(fd);
  stat(path, &sb1);
  ck_assert_int_eq(na, nb);
  ck_assert(memcmp(before, after, (size_t)na) == 0);
  ck_assert_int_eq(sb0.st_size, sb1.st_size);
  char wal[160];
  snprintf(wal, sizeof wal, "%s-wal", path);
  ck_assert_int_ne(access(wal, F_OK), 0);
}

/* Files that are not a kvshm store are refused and left as they were. */
START_TEST(test_foreign_files) {
  char junk[4096];
  tu_fill(junk, sizeof junk, 7);
  const char *p = db_path("junk.db");
  write_file(p, junk, sizeof junk);
  assert_refused_untouched(p);

  p = db_path("foreign.db");
  sqlite3 *db;
  ck_assert_int_eq(sqlite3_open(p, &db), SQLITE_OK);
  ck_assert_int_eq(sqlite3_exec(db,
                                "CREATE TABLE t(x); INSERT INTO t "
                                "VALUES(1)",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(db);
  assert_refused_untouched(p);

  p = db_path("newer.db");
  ck_assert_int_eq(sqlite3_open(p, &db), SQLITE_OK);
  ck_assert_int_eq(sqlite3_exec(db,
                                "PRAGMA application_id=1263948621; "
                                "PRAGMA user_version=99; CREATE TABLE "
                                "kvshm_entries(key BLOB PRIMARY KEY)",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(db);
  assert_refused_untouched(p);
  ck_assert(strstr(kvshm_errdetail(), "newer") != NULL);

  /* A real store whose first page was damaged. */
  char name[TU_NAME_SIZE];
  p = db_path("damaged.db");
  kvshm_config c;
  store_config(&c, 1u << 20, p);
  kvshm *kv = NULL;
  tu_assert_rc(kvshm_open(tu_name(name), &c, KVSHM_NOREAPER, &kv), KVSHM_OK);
  tu_assert_rc(kvshm_set(kv, "a", 1, "b", 1, 0, 0, 0), KVSHM_OK);
  tu_assert_rc(kvshm_flush(kv), KVSHM_OK);
  kvshm_close(kv);
  kvshm_unlink(name);
  int fd = open(p, O_WRONLY);
  ck_assert_int_eq(pwrite(fd, junk, 100, 0), 100); /* the header page */
  close(fd);
  assert_refused_untouched(p);
}
END_TEST

static Suite *store_suite(void) {
  Suite *s = suite_create("store");
  TCase *tc = tu_tcase("sqlite tier", 120);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_ten_times_memory);
  tcase_add_test(tc, test_delete_evicted);
  tcase_add_test(tc, test_ttl_both_tiers);
  tcase_add_test(tc, test_spill_without_reaper);
  tcase_add_test(tc, test_persistent_survives_loss);
  tcase_add_test(tc, test_foreign_files);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  Suite *s[] = {store_suite()};
  return tu_run_suites(s, 1);
}
