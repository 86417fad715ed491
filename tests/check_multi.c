/*
 * check_multi.c - prefix clears, multi-key calls, peeks and compare-deletes
 * (issue 11), each in the three modes, with keys in both tiers:
 *
 *   prefix_clear_both_tiers   clear_prefix removes the prefix from memory,
 *                             SQLite and walks, and nothing else
 *   prefix_clear_races_writer another process writes the prefix without a
 *                             pause: no key written before a clear began
 *                             survives it, in gets and in walks
 *   prefix_clearer_killed     a clearer killed right after its step: the
 *                             clear is whole, later writes of the prefix
 *                             are kept, even on a segment made again
 *   pclear_stale_handle       a handle on a segment removed by hand, with
 *                             a PENDING clear, deletes nothing of the
 *                             file's new owner
 *   many                      get/set/del_many across stripes and tiers
 *                             agree with the one-key calls
 *   peek_expiry_del_if        get_ex's expiry and PEEK; del_if
 */
#include "testutil.h"

#include "layout.h" /* KVSHM_CLEAR_RECS */

#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>

static char dir[TU_DIR_SIZE];

static void setup(void) {
  tu_dir_make(dir, "multi");
}

static void teardown(void) {
  tu_dir_remove(dir);
}

enum { MEMORY_ONLY, SQLITE_BACKED, PERSISTENT };

/* 256 KiB over 4 stripes in the SQLite modes, so most keys live only in
 * SQLite; 8 MiB memory-only, so nothing is evicted. */
static void mode_config(kvshm_config *c, int mode, const char *file) {
  tu_config(c, mode == MEMORY_ONLY ? 8u << 20 : 256u << 10, 0, 4);
  c->sqlite_path = mode == MEMORY_ONLY ? NULL : tu_dir_file(dir, file);
  c->persistent = mode == PERSISTENT;
}

static kvshm *open_mode_flags(const char *name, int mode, const char *file,
                              unsigned flags) {
  kvshm_config c;
  mode_config(&c, mode, file);
  kvshm *kv = NULL;
  tu_assert_rc(kvshm_open(name, &c, flags, &kv), KVSHM_OK);
  return kv;
}

static kvshm *open_mode(const char *name, int mode, const char *file) {
  return open_mode_flags(name, mode, file, 0);
}

static int key_of(char *k, const char *prefix, int i) {
  return snprintf(k, 32, "%s%d", prefix, i);
}

static void fill(kvshm *kv, const char *prefix, int n, const char *val) {
  char k[32];
  for (int i = 0; i < n; i++) {
    int kl = key_of(k, prefix, i);
    tu_assert_rc(kvshm_set(kv, k, (size_t)kl, val, strlen(val), 0, 0, 0),
                 KVSHM_OK);
  }
}

static int count_walk(kvshm *kv, const char *prefix) {
  kvshm_iter *it;
  tu_assert_rc(
      kvshm_iter_open(kv, prefix, strlen(prefix), KVSHM_ITER_STORE, &it),
      KVSHM_OK);
  int n = 0, rc;
  while ((rc = kvshm_iter_next(it, NULL, NULL, NULL, NULL, NULL, NULL)) == 0)
    n++;
  tu_assert_rc(rc, KVSHM_ENOTFOUND);
  kvshm_iter_close(it);
  return n;
}

START_TEST(test_prefix_clear_both_tiers) {
  char name[TU_NAME_SIZE], k[32], got[64];
  tu_name(name);
  kvshm *kv = open_mode(name, _i, "both.db");
  fill(kv, "a:", 2000, "old-a");
  fill(kv, "b:", 2000, "keep-b");
  tu_assert_rc(kvshm_flush(kv), KVSHM_OK);
  if (_i != MEMORY_ONLY) /* the test means both tiers */
    ck_assert_uint_gt(tu_stats(kv).entries, 0);
  tu_assert_rc(kvshm_clear_prefix(kv, "a:", 2), KVSHM_OK);
  for (int i = 0; i < 2000; i++) {
    int kl = key_of(k, "a:", i);
    tu_assert_rc(tu_get(kv, k, (size_t)kl, got, sizeof got, NULL),
                 KVSHM_ENOTFOUND);
    kl = key_of(k, "b:", i);
    tu_assert_value(kv, k, (size_t)kl, "keep-b", 6);
  }
  ck_assert_int_eq(count_walk(kv, "a:"), 0);
  ck_assert_int_eq(count_walk(kv, "b:"), 2000);
  if (_i != MEMORY_ONLY) {
    ck_assert_int_eq(tu_sql_count(tu_dir_file(dir, "both.db"), "a:"), 0);
    ck_assert_int_gt(tu_sql_count(tu_dir_file(dir, "both.db"), "b:"), 0);
  }
  /* Written after the clear: kept. */
  tu_assert_rc(kvshm_set(kv, "a:new", 5, "new", 3, 0, 0, 0), KVSHM_OK);
  tu_assert_value(kv, "a:new", 5, "new", 3);
  ck_assert_int_eq(count_walk(kv, "a:"), 1);
  /* Bad prefixes. */
  static char longp[KVSHM_PREFIX_MAX + 1];
  memset(longp, 'x', sizeof longp);
  tu_assert_rc(kvshm_clear_prefix(kv, longp, sizeof longp), KVSHM_ETOOBIG);
  ck_assert_ptr_nonnull(strstr(kvshm_errdetail(), "at most 256"));
  tu_assert_rc(kvshm_clear_prefix(kv, NULL, 3), KVSHM_EINVAL);
  /* Eight and more clears in a row: records are freed as they finish. */
  for (int r = 0; r < 3 * (int)KVSHM_CLEAR_RECS; r++) {
    int kl = key_of(k, "c", r);
    k[kl++] = ':';
    tu_assert_rc(kvshm_set(kv, k, (size_t)kl, "v", 1, 0, 0, 0), KVSHM_OK);
    tu_assert_rc(kvshm_clear_prefix(kv, k, (size_t)kl), KVSHM_OK);
    tu_assert_rc(tu_get(kv, k, (size_t)kl, got, sizeof got, NULL),
                 KVSHM_ENOTFOUND);
  }
  tu_assert_value(kv, "a:new", 5, "new", 3);
  ck_assert_int_eq(tu_verify(kv), 0);
  kvshm_close(kv);
}
END_TEST

/* Shared with the writer: sets it has finished (each key holds the number
 * of the set that wrote it, p:<n % KEYS> = n). */
struct shared {
  _Atomic uint64_t done;
  _Atomic int stop;
};
#define KEYS 400

static void writer(const char *name, int mode, struct shared *sh) {
  kvshm_config c;
  mode_config(&c, mode, "race.db");
  kvshm *kv = NULL;
  TU_CHILD_RC(kvshm_open(name, &c, 0, &kv), KVSHM_OK);
  char k[32], v[32];
  for (uint64_t n = 1; !atomic_load(&sh->stop); n++) {
    int kl = key_of(k, "p:", (int)(n % KEYS));
    int vl = snprintf(v, sizeof v, "%llu", (unsigned long long)n);
    TU_CHILD_RC(kvshm_set(kv, k, (size_t)kl, v, (size_t)vl, 0, 0, 0), KVSHM_OK);
    atomic_store(&sh->done, n);
  }
  kvshm_close(kv);
  _exit(0);
}

/* Every p: key in a get and in a walk was written by a set numbered above
 * floor. */
static void check_after(kvshm *kv, uint64_t floor) {
  char k[32], got[64];
  for (int i = 0; i < KEYS; i++) {
    int kl = key_of(k, "p:", i);
    size_t n = 0;
    int rc = tu_get(kv, k, (size_t)kl, got, sizeof got - 1, &n);
    if (rc == KVSHM_ENOTFOUND)
      continue;
    tu_assert_rc(rc, KVSHM_OK);
    got[n] = '\0';
    ck_assert_msg(strtoull(got, NULL, 10) > floor,
                  "%s = %s survived a clear that began after set %llu", k, got,
                  (unsigned long long)floor);
  }
  kvshm_iter *it;
  tu_assert_rc(kvshm_iter_open(kv, "p:", 2, KVSHM_ITER_STORE, &it), KVSHM_OK);
  const void *kp, *vp;
  size_t kl, vl;
  int rc;
  while ((rc = kvshm_iter_next(it, &kp, &kl, &vp, &vl, NULL, NULL)) == 0) {
    char num[32];
    snprintf(num, sizeof num, "%.*s", (int)vl, (const char *)vp);
    ck_assert_msg(strtoull(num, NULL, 10) > floor,
                  "a walk saw %.*s = %s after a clear that began after set "
                  "%llu",
                  (int)kl, (const char *)kp, num, (unsigned long long)floor);
  }
  tu_assert_rc(rc, KVSHM_ENOTFOUND);
  kvshm_iter_close(it);
}

START_TEST(test_prefix_clear_races_writer) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
                           MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ck_assert_ptr_ne(sh, MAP_FAILED);
  kvshm *kv = open_mode(name, _i, "race.db");
  fill(kv, "q:", 1000, "keep-q");
  kvshm_close(kv); /* fork before SQLite is open in this process */
  pid_t w = tu_fork();
  if (w == 0)
    writer(name, _i, sh);
  kv = open_mode(name, _i, "race.db");
  for (int round = 0; round < 30; round++) {
    while (atomic_load(&sh->done) < (uint64_t)(round + 1) * 300)
      tu_sleep_ms(1);
    uint64_t floor = atomic_load(&sh->done); /* finished before we begin */
    tu_assert_rc(kvshm_clear_prefix(kv, "p:", 2), KVSHM_OK);
    check_after(kv, floor);
  }
  atomic_store(&sh->stop, 1);
  tu_wait_ok(w, 20000, "writer");
  char k[32];
  for (int i = 0; i < 1000; i += 13) {
    int kl = key_of(k, "q:", i);
    tu_assert_value(kv, k, (size_t)kl, "keep-q", 6);
  }
  ck_assert_int_eq(tu_verify(kv), 0);
  kvshm_close(kv);
  munmap(sh, sizeof *sh);
}
END_TEST

static void die_at_step(kvshm *kv, kvshm_test_point p, void *ctx) {
  (void)kv;
  (void)ctx;
  if (p == KVSHM_TP_CLEAR_STEPPED)
    raise(SIGKILL);
}

START_TEST(test_prefix_clearer_killed) {
  char name[TU_NAME_SIZE], k[32], got[64];
  tu_name(name);
  kvshm *kv = open_mode(name, _i, "killed.db");
  fill(kv, "a:", 1500, "old");
  fill(kv, "b:", 1500, "keep");
  tu_assert_rc(kvshm_flush(kv), KVSHM_OK);
  kvshm_close(kv);
  pid_t p = tu_fork();
  if (p == 0) {
    kvshm_config c;
    mode_config(&c, _i, "killed.db");
    kvshm *h = NULL;
    TU_CHILD_RC(kvshm_open(name, &c, 0, &h), KVSHM_OK);
    kvshm_test_set_hook(h, die_at_step, NULL);
    kvshm_clear_prefix(h, "a:", 2);
    _exit(0);
  }
  int status = 0;
  ck_assert_int_eq(tu_wait(p, 20000, &status), 0);
  ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  kv = open_mode(name, _i, "killed.db");
  for (int i = 0; i < 1500; i += 3) {
    int kl = key_of(k, "a:", i);
    tu_assert_rc(tu_get(kv, k, (size_t)kl, got, sizeof got, NULL),
                 KVSHM_ENOTFOUND);
  }
  ck_assert_int_eq(count_walk(kv, "a:"), 0);
  /* Written after: kept, and written behind. */
  tu_assert_rc(kvshm_set(kv, "a:new", 5, "new", 3, 0, 0, 0), KVSHM_OK);
  tu_assert_rc(kvshm_flush(kv), KVSHM_OK);
  if (_i != MEMORY_ONLY) {
    const char *db = tu_dir_file(dir, "killed.db");
    ck_assert_int_eq(tu_sql_count(db, "a:"), 1);
    ck_assert_int_eq(tu_sql_count(db, "b:"), 1500);
    /* A reboot: the segment gone, the file stays. */
    kvshm_close(kv);
    tu_assert_rc(kvshm_unlink(name), KVSHM_OK);
    kv = open_mode(name, _i, "killed.db");
    ck_assert_int_eq(count_walk(kv, "a:"), 1);
    tu_assert_value(kv, "a:new", 5, "new", 3);
    /* The new segment's clears are its own: one more works. */
    tu_assert_rc(kvshm_clear_prefix(kv, "a:", 2), KVSHM_OK);
    ck_assert_int_eq(count_walk(kv, "a:"), 0);
    ck_assert_int_eq(tu_sql_count(db, "a:"), 0);
  }
  for (int i = 0; i < 1500; i += 7) {
    int kl = key_of(k, "b:", i);
    tu_assert_value(kv, k, (size_t)kl, "keep", 4);
  }
  ck_assert_int_eq(tu_verify(kv), 0);
  kvshm_close(kv);
}
END_TEST

/* A handle on a segment whose name was removed by hand (README: when its
 * data does not matter) while a prefix clear of it was PENDING, its
 * clearer dead: a new segment over the same file owns it and writes rows
 * of that prefix.  The old handle's next clear_prefix settles its old
 * record first: it once deleted the new owner's rows there (and then
 * refused, the file not being its own). */
START_TEST(test_pclear_stale_handle) {
  char name[TU_NAME_SIZE], path[TU_PATH_SIZE], db[TU_PATH_SIZE];
  tu_name(name);
  snprintf(db, sizeof db, "%s", tu_dir_file(dir, "stale.db"));
  kvshm_config c;
  mode_config(&c, _i, "stale.db");
  kvshm *a = NULL, *b = NULL;
  tu_assert_rc(kvshm_open(name, &c, KVSHM_NOREAPER, &a), KVSHM_OK);
  fill(a, "a:", 100, "old");
  tu_assert_rc(kvshm_flush(a), KVSHM_OK);
  kvshm_close(a); /* fork before SQLite is open in this process */
  pid_t p = tu_fork();
  if (p == 0) {
    kvshm *h = NULL;
    TU_CHILD_RC(kvshm_open(name, &c, KVSHM_NOREAPER, &h), KVSHM_OK);
    kvshm_test_set_hook(h, die_at_step, NULL);
    kvshm_clear_prefix(h, "a:", 2);
    _exit(0);
  }
  int status = 0;
  ck_assert_int_eq(tu_wait(p, 20000, &status), 0);
  ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  tu_assert_rc(kvshm_open(name, &c, KVSHM_NOREAPER, &a), KVSHM_OK);
  ck_assert_int_eq(unlink(tu_shm_path(name, path)), 0); /* by hand */
  tu_assert_rc(kvshm_open(name, &c, KVSHM_NOREAPER, &b), KVSHM_OK);
  tu_assert_rc(kvshm_set(b, "a:new", 5, "new", 3, 0, 0, 0), KVSHM_OK);
  tu_assert_rc(kvshm_flush(b), KVSHM_OK);
  /* (The old rows are back in b: a clear stepped and never committed is
   * lost with its segment, when no write transaction ran in between.) */
  int rows = tu_sql_count(db, "a:");
  char got[8];
  tu_assert_rc(kvshm_clear_prefix(a, "zz:", 3), KVSHM_EDESTROYED);
  ck_assert_int_eq(tu_sql_value(db, "a:new", got, sizeof got), 3);
  ck_assert_int_eq(tu_sql_count(db, "a:"), rows);
  kvshm_close(a);
  tu_assert_value(b, "a:new", 5, "new", 3);
  kvshm_close(b);
}
END_TEST

#define N 3000

START_TEST(test_many) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  kvshm *kv = open_mode(name, _i, "many.db");
  static char keys[N][32], vals[N][48];
  static kvshm_item it[N + 1];
  memset(it, 0, sizeof it);
  for (int i = 0; i < N; i++) {
    int kl = key_of(keys[i], "m:", i);
    int vl = snprintf(vals[i], sizeof vals[i], "value-%d-%d", i, i * 7);
    it[i] = (kvshm_item){keys[i],     (size_t)kl,      vals[i], (size_t)vl,
                         (uint32_t)i, KVSHM_TTL_NEVER, 99};
  }
  /* The last of two sets of one key wins. */
  it[N] = (kvshm_item){keys[5], strlen(keys[5]), "last", 4, 5, 0, 99};
  tu_assert_rc(kvshm_set_many(kv, it, N + 1), KVSHM_OK);
  for (int i = 0; i <= N; i++)
    tu_assert_rc(it[i].rc, KVSHM_OK);
  tu_assert_value(kv, keys[5], strlen(keys[5]), "last", 4);
  tu_assert_value(kv, keys[6], strlen(keys[6]), vals[6], strlen(vals[6]));
  /* Reads: every key, from either tier, plus a missing one. */
  static char buf[N * 48];
  for (int i = 0; i < N; i++)
    it[i] = (kvshm_item){keys[i], strlen(keys[i]), NULL, 0, 0, 0, 99};
  it[N] = (kvshm_item){"m:none", 6, NULL, 0, 0, 0, 99};
  tu_assert_rc(kvshm_get_many(kv, it, N + 1, buf, sizeof buf), KVSHM_OK);
  for (int i = 0; i < N; i++) {
    tu_assert_rc(it[i].rc, KVSHM_OK);
    const char *want = i == 5 ? "last" : vals[i];
    ck_assert_uint_eq(it[i].vlen, strlen(want));
    ck_assert_msg(memcmp(it[i].val, want, it[i].vlen) == 0, "key %s", keys[i]);
    ck_assert_uint_eq(it[i].flags, (uint32_t)i);
  }
  tu_assert_rc(it[N].rc, KVSHM_ENOTFOUND);
  /* A buffer too small: what does not fit says so, with its length. */
  for (int i = 0; i < 10; i++)
    it[i] = (kvshm_item){keys[i], strlen(keys[i]), NULL, 0, 0, 0, 99};
  tu_assert_rc(kvshm_get_many(kv, it, 10, buf, 40), KVSHM_OK);
  int fit = 0, over = 0;
  for (int i = 0; i < 10; i++) {
    if (it[i].rc == KVSHM_OK)
      fit++;
    else {
      tu_assert_rc(it[i].rc, KVSHM_EBUFSIZE);
      ck_assert_uint_gt(it[i].vlen, 0);
      over++;
    }
  }
  ck_assert_int_ge(fit, 1);
  ck_assert_int_ge(over, 1);
  /* Deletes: every other key, twice over (the second time: not found). */
  for (int i = 0; i < N / 2; i++)
    it[i] = (kvshm_item){keys[2 * i], strlen(keys[2 * i]), NULL, 0, 0, 0, 99};
  it[N / 2] = (kvshm_item){keys[0], strlen(keys[0]), NULL, 0, 0, 0, 99};
  tu_assert_rc(kvshm_del_many(kv, it, N / 2 + 1), KVSHM_OK);
  for (int i = 0; i < N / 2; i++)
    tu_assert_rc(it[i].rc, KVSHM_OK);
  tu_assert_rc(it[N / 2].rc, KVSHM_ENOTFOUND);
  char got[64];
  for (int i = 0; i < N; i++)
    tu_assert_rc(tu_get(kv, keys[i], strlen(keys[i]), got, sizeof got, NULL),
                 i % 2 ? KVSHM_OK : KVSHM_ENOTFOUND);
  /* Bad items fail alone. */
  static char longk[KVSHM_KEY_MAX + 1];
  it[0] = (kvshm_item){longk, sizeof longk, "v", 1, 0, 0, 99};
  it[1] = (kvshm_item){"ok", 2, "v", 1, 0, 0, 99};
  it[2] = (kvshm_item){"neg", 3, "v", 1, 0, -5, 99};
  tu_assert_rc(kvshm_set_many(kv, it, 3), KVSHM_OK);
  tu_assert_rc(it[0].rc, KVSHM_ETOOBIG);
  tu_assert_rc(it[1].rc, KVSHM_OK);
  ck_assert_int_ne(it[2].rc, KVSHM_OK);
  tu_assert_rc(kvshm_get_many(kv, NULL, 0, NULL, 0), KVSHM_OK);
  ck_assert_int_eq(tu_verify(kv), 0);
  kvshm_close(kv);
}
END_TEST

START_TEST(test_peek_expiry_del_if) {
  char name[TU_NAME_SIZE], got[64];
  tu_name(name);
  /* No reaper: it would expire by the real clock what this test's clock
   * keeps alive (the test clock reads 2023). */
  kvshm *kv = open_mode_flags(name, _i, "peek.db", KVSHM_NOREAPER);
  tu_clock clk;
  tu_clock_attach(kv, &clk, TU_T0);
  tu_assert_rc(kvshm_set(kv, "t", 1, "v", 1, 0, 5000, 0), KVSHM_OK);
  tu_assert_rc(kvshm_set(kv, "n", 1, "v", 1, 0, KVSHM_TTL_NEVER, 0), KVSHM_OK);
  uint64_t exp = 1;
  size_t vlen = 0;
  tu_assert_rc(kvshm_get_ex(kv, "t", 1, got, sizeof got, &vlen, NULL, &exp, 0),
               KVSHM_OK);
  ck_assert_uint_eq(exp, TU_T0 + 5000);
  tu_assert_rc(kvshm_get_ex(kv, "n", 1, NULL, 0, &vlen, NULL, &exp, 0),
               KVSHM_OK);
  ck_assert_uint_eq(exp, 0);
  uint64_t hits = tu_stats(kv).hits;
  tu_assert_rc(
      kvshm_get_ex(kv, "t", 1, got, sizeof got, &vlen, NULL, &exp, KVSHM_PEEK),
      KVSHM_OK);
  ck_assert_uint_eq(tu_stats(kv).hits, hits);
  tu_assert_rc(kvshm_get_ex(kv, "zz", 2, NULL, 0, NULL, NULL, &exp, KVSHM_PEEK),
               KVSHM_ENOTFOUND);
  tu_assert_rc(kvshm_get_ex(kv, "t", 1, NULL, 0, NULL, NULL, NULL, 8),
               KVSHM_EINVAL);
  /* del_if, in memory. */
  tu_assert_rc(kvshm_del_if(kv, "t", 1, "w", 1), KVSHM_EMISMATCH);
  tu_assert_rc(kvshm_del_if(kv, "t", 1, "vv", 2), KVSHM_EMISMATCH);
  tu_assert_value(kv, "t", 1, "v", 1);
  tu_assert_rc(kvshm_del_if(kv, "t", 1, "v", 1), KVSHM_OK);
  tu_assert_rc(kvshm_del_if(kv, "t", 1, "v", 1), KVSHM_ENOTFOUND);
  if (_i != MEMORY_ONLY) {
    /* Keys only in SQLite: peek leaves them there; del_if reaches them. */
    fill(kv, "s:", 3000, "sq");
    tu_assert_rc(kvshm_flush(kv), KVSHM_OK);
    char k[32];
    int found = -1;
    for (int i = 0; i < 3000 && found < 0; i++) {
      int kl = key_of(k, "s:", i);
      if (kvshm_in_memory(kv, k, (size_t)kl) == KVSHM_ENOTFOUND)
        found = i;
    }
    ck_assert_int_ge(found, 0);
    int kl = key_of(k, "s:", found);
    tu_assert_rc(kvshm_get_ex(kv, k, (size_t)kl, got, sizeof got, &vlen, NULL,
                              &exp, KVSHM_PEEK),
                 KVSHM_OK);
    ck_assert_uint_eq(vlen, 2);
    tu_assert_rc(kvshm_in_memory(kv, k, (size_t)kl), KVSHM_ENOTFOUND);
    tu_assert_rc(kvshm_del_if(kv, k, (size_t)kl, "no", 2), KVSHM_EMISMATCH);
    tu_assert_rc(kvshm_del_if(kv, k, (size_t)kl, "sq", 2), KVSHM_OK);
    tu_assert_rc(tu_get(kv, k, (size_t)kl, got, sizeof got, NULL),
                 KVSHM_ENOTFOUND);
  }
  ck_assert_int_eq(tu_verify(kv), 0);
  kvshm_close(kv);
}
END_TEST

static Suite *multi_suite(void) {
  Suite *s = suite_create("multi");
  TCase *tc = tu_tcase("multi", 120);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_loop_test(tc, test_prefix_clear_both_tiers, MEMORY_ONLY,
                      PERSISTENT + 1);
  tcase_add_loop_test(tc, test_prefix_clear_races_writer, MEMORY_ONLY,
                      PERSISTENT + 1);
  tcase_add_loop_test(tc, test_prefix_clearer_killed, MEMORY_ONLY,
                      PERSISTENT + 1);
  tcase_add_loop_test(tc, test_pclear_stale_handle, SQLITE_BACKED,
                      PERSISTENT + 1);
  tcase_add_loop_test(tc, test_many, MEMORY_ONLY, PERSISTENT + 1);
  tcase_add_loop_test(tc, test_peek_expiry_del_if, MEMORY_ONLY, PERSISTENT + 1);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  Suite *s[] = {multi_suite()};
  return tu_run_suites(s, 1);
}
