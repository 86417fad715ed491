/*
 * check_tiers.c - the guarantees of a SQLite-backed cache with real
 * processes, real eviction and a real reaper (issue 8, one test per item):
 *
 *   incr_nx_xx_under_eviction  incr, NX and XX stay atomic while big values
 *                              push keys between the tiers and the reaper
 *                              is killed (in each of the three modes)
 *   walk_exactly_once          a walk returns each stable key once while
 *                              another process overwrites them all (in
 *                              each mode)
 *   persistent_bound           an acknowledged write reaches SQLite within
 *                              flush_delay + margin after the reaper is
 *                              killed, with slow writers and with none
 *   clear_interrupted          a clearer killed right after its step: the
 *                              clear is whole, write-behind goes on, no row
 *                              comes back, not even on a new segment
 *   heartbeat_in_long_tick     a bulk write-behind keeps the heartbeat fresh
 *                              and starts no second reaper
 *   no_sqlite_wait_under_lock  a writer that waits for SQLite blocks no
 *                              reader of its stripe
 *   destroy_while_attached     destroy flushes, refuses the orphan's
 *                              operations, starts no reaper storm
 */
#include "testutil.h"

#include "layout.h" /* to damage one header word on purpose */

#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/wait.h>

static char dir[TU_DIR_SIZE];

static void setup(void) {
  tu_dir_make(dir, "tiers");
}

static void teardown(void) {
  tu_dir_remove(dir);
}

static const char *db_path(const char *file) {
  return tu_dir_file(dir, file);
}

static kvshm *open_cache(const char *name, uint64_t mem, uint32_t stripes,
                         const char *db, unsigned flags) {
  kvshm_config c;
  tu_config(&c, mem, 0, stripes);
  c.sqlite_path = db;
  kvshm *kv = NULL;
  tu_assert_rc(kvshm_open(name, &c, flags, &kv), KVSHM_OK);
  return kv;
}

/* The three modes every guarantee holds in (loop tests run each). */
enum { MEMORY_ONLY, SQLITE_BACKED, PERSISTENT };
static const char *const mode_name[] = {"memory-only", "SQLite-backed",
                                        "persistent"};

/* A cache of `mode`: memory-only ones get mem_only bytes (sized so that
 * nothing is evicted: eviction drops data there by design). */
static kvshm *open_mode(const char *name, int mode, uint64_t mem,
                        uint64_t mem_only, uint32_t stripes, const char *file) {
  kvshm_config c;
  tu_config(&c, mode == MEMORY_ONLY ? mem_only : mem, 0, stripes);
  c.sqlite_path = mode == MEMORY_ONLY ? NULL : db_path(file);
  c.persistent = mode == PERSISTENT;
  kvshm *kv = NULL;
  tu_assert_rc(kvshm_open(name, &c, 0, &kv), KVSHM_OK);
  return kv;
}

/* Is pid running (not a zombie: an init slow to reap leaves killed
 * reapers answering kill(pid, 0))? */
static int running(pid_t pid) {
  char path[64], buf[256];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *paren = strrchr(buf, ')');
  return !(paren && (paren[2] == 'Z' || paren[2] == 'X'));
}

/* The running reaper's pid, once it is not `not`. */
static pid_t reaper_other(kvshm *kv, pid_t not, unsigned timeout_ms) {
  uint64_t end = tu_mono_ms() + timeout_ms;
  for (;;) {
    kvshm_stats st = tu_stats(kv);
    if (st.reaper_alive && st.reaper_pid &&
        (pid_t)st.reaper_pid != not &&running((pid_t)st.reaper_pid))
      return (pid_t)st.reaper_pid;
    ck_assert_msg(tu_mono_ms() < end, "no reaper within %u ms", timeout_ms);
    tu_sleep_ms(5);
  }
}

static pid_t reaper_of(kvshm *kv, unsigned timeout_ms) {
  return reaper_other(kv, 0, timeout_ms);
}

/* Write big values to random keys until told to stop: eviction pressure. */
static void flood(const char *name, int id, unsigned ms) {
  kvshm *kv = NULL;
  TU_CHILD_RC(kvshm_open(name, NULL, 0, &kv), KVSHM_OK);
  static char big[100 << 10];
  uint64_t rng = (uint64_t)id * 7919 + 1, end = tu_mono_ms() + ms;
  char k[32];
  for (int i = 0; tu_mono_ms() < end; i++) {
    memset(big, 'a' + i % 26, sizeof big);
    int n = snprintf(k, sizeof k, "big-%d-%d", id, (int)(tu_rand(&rng) % 64));
    int rc = kvshm_set(kv, k, (size_t)n, big,
                       sizeof big / 4 + tu_rand(&rng) % (sizeof big * 3 / 4), 0,
                       0, 0);
    TU_CHILD_CHECK(rc == KVSHM_OK);
  }
  kvshm_close(kv);
  _exit(0);
}

#define COUNTERS 3000

/* Item 1: incr, NX and XX across the tiers, with eviction and reaper kills. */
START_TEST(test_incr_nx_xx_under_eviction) {
  int mode = _i;
  char name[TU_NAME_SIZE];
  tu_name(name);
  char moved_path[128];
  snprintf(moved_path, sizeof moved_path, "%s/moved", dir);
  kvshm *kv = open_mode(name, mode, 2u << 20, 64u << 20, 4, "incr.db");
  for (int i = 0; i < 50; i++) { /* present keys for NX/XX */
    char k[16];
    int n = snprintf(k, sizeof k, "px-%d", i);
    tu_assert_rc(kvshm_set(kv, k, (size_t)n, "x", 1, 0, 0, 0), KVSHM_OK);
  }
  unsigned run_ms = 4000;
  pid_t fl[2];
  kvshm_close(kv); /* no SQLite across fork (store.c): fork, then reopen */
  for (int f = 0; f < 2; f++)
    if ((fl[f] = tu_fork()) == 0)
      flood(name, f, run_ms);
  pid_t inc = tu_fork();
  if (inc == 0) {
    kvshm *h = NULL;
    TU_CHILD_RC(kvshm_open(name, NULL, 0, &h), KVSHM_OK);
    int64_t last[COUNTERS] = {0};
    long moved = 0; /* incrs of a counter that lived only in SQLite */
    uint64_t end = tu_mono_ms() + run_ms, rng = 99;
    char k[16];
    for (int i = 0; tu_mono_ms() < end; i++) {
      int c = (int)(tu_rand(&rng) % COUNTERS);
      int n = snprintf(k, sizeof k, "ctr-%d", c);
      int64_t v = 0;
      moved += last[c] && kvshm_in_memory(h, k, (size_t)n) != KVSHM_OK;
      TU_CHILD_RC(kvshm_incr(h, k, (size_t)n, 1, 0, &v), KVSHM_OK);
      if (v != last[c] + 1) {
        fprintf(stderr, "counter %d went from %lld to %lld\n", c,
                (long long)last[c], (long long)v);
        _exit(TU_CHILD_FAILED);
      }
      last[c] = v;
      n = snprintf(k, sizeof k, "px-%d", i % 50);
      TU_CHILD_RC(kvshm_set(h, k, (size_t)n, "y", 1, 0, 0, KVSHM_NX),
                  KVSHM_EEXIST);
      TU_CHILD_RC(kvshm_set(h, k, (size_t)n, "z", 1, 0, 0, KVSHM_XX), KVSHM_OK);
    }
    for (int c = 0; c < COUNTERS; c++) { /* the final values, exactly */
      int n = snprintf(k, sizeof k, "ctr-%d", c);
      int64_t v = -1;
      TU_CHILD_RC(kvshm_incr(h, k, (size_t)n, 0, 0, &v), KVSHM_OK);
      TU_CHILD_CHECK(v == last[c]);
    }
    FILE *f = fopen(moved_path, "w");
    TU_CHILD_CHECK(f && fprintf(f, "%ld\n", moved) > 0 && fclose(f) == 0);
    kvshm_close(h);
    _exit(0);
  }
  kv = open_mode(name, mode, 2u << 20, 64u << 20, 4, "incr.db");
  /* Kill the reaper a few times meanwhile. */
  int kills = 0;
  for (uint64_t end = tu_mono_ms() + run_ms - 500; tu_mono_ms() < end;) {
    tu_sleep_ms(600);
    pid_t r = reaper_of(kv, 3000);
    kill(r, SIGKILL);
    kills++;
  }
  tu_wait_ok(inc, 60000, "incr/NX/XX process");
  for (int f = 0; f < 2; f++)
    tu_wait_ok(fl[f], 60000, "flooder");
  long moved = 0;
  FILE *f = fopen(moved_path, "r");
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(fscanf(f, "%ld", &moved), 1);
  fclose(f);
  fprintf(stderr,
          "incr_nx_xx_under_eviction (%s): %ld incrs of counters that lived "
          "only in SQLite, %d reaper kills\n",
          mode_name[mode], moved, kills);
  if (mode == MEMORY_ONLY)
    ck_assert_uint_eq(tu_stats(kv).evictions, 0); /* sized not to drop */
  else
    ck_assert_int_gt(moved, 0); /* counters did live in SQLite meanwhile */
  ck_assert_int_ge(kills, 3);
  ck_assert_int_eq(tu_verify(kv), 0);
  kvshm_close(kv);
}
END_TEST

#define STABLE 5001

/* Item 2: walks while another process overwrites every key. */
START_TEST(test_walk_exactly_once) {
  int mode = _i;
  char name[TU_NAME_SIZE];
  tu_name(name);
  kvshm *kv = open_mode(name, mode, 1u << 20, 16u << 20, 4, "walk.db");
  char k[16], v[200];
  memset(v, 'v', sizeof v);
  for (int i = 0; i < STABLE; i++) {
    int n = snprintf(k, sizeof k, "s%05d", i);
    tu_assert_rc(kvshm_set(kv, k, (size_t)n, v, 150, 0, 0, 0), KVSHM_OK);
  }
  unsigned run_ms = 3000;
  kvshm_close(kv); /* no SQLite across fork (store.c): fork, then reopen */
  pid_t w = tu_fork();
  if (w == 0) {
    kvshm *h = NULL;
    TU_CHILD_RC(kvshm_open(name, NULL, 0, &h), KVSHM_OK);
    uint64_t rng = 5, end = tu_mono_ms() + run_ms;
    char buf[200];
    while (tu_mono_ms() < end) {
      int i = (int)(tu_rand(&rng) % STABLE);
      int n = snprintf(k, sizeof k, "s%05d", i);
      memset(buf, 'a' + (int)(tu_rand(&rng) % 26), sizeof buf);
      TU_CHILD_RC(
          kvshm_set(h, k, (size_t)n, buf, 100 + tu_rand(&rng) % 100, 0, 0, 0),
          KVSHM_OK);
      if (i % 7 == 0) /* and read some back: promotions */
        TU_CHILD_RC(kvshm_get(h, k, (size_t)n, buf, sizeof buf, NULL, NULL),
                    KVSHM_OK);
    }
    kvshm_close(h);
    _exit(0);
  }
  kv = open_mode(name, mode, 1u << 20, 16u << 20, 4, "walk.db");
  static unsigned char seen[STABLE];
  int walks = 0;
  uint64_t end = tu_mono_ms() + run_ms;
  while (tu_mono_ms() < end || walks < 2) {
    memset(seen, 0, sizeof seen);
    kvshm_iter *it;
    tu_assert_rc(kvshm_iter_open(kv, "s", 1, KVSHM_ITER_STORE, &it), KVSHM_OK);
    const void *key;
    size_t klen;
    int rc;
    while ((rc = kvshm_iter_next(it, &key, &klen, NULL, NULL, NULL, NULL)) ==
           KVSHM_OK) {
      ck_assert_uint_eq(klen, 6);
      int i = atoi((const char *)key + 1);
      ck_assert_msg(++seen[i] == 1, "walk %d: key %d twice", walks, i);
    }
    tu_assert_rc(rc, KVSHM_ENOTFOUND);
    kvshm_iter_close(it);
    for (int i = 0; i < STABLE; i++)
      ck_assert_msg(seen[i] == 1, "walk %d: key %d missing", walks, i);
    walks++;
  }
  tu_wait_ok(w, 60000, "overwriter");
  kvshm_stats st = tu_stats(kv);
  if (mode == MEMORY_ONLY)
    ck_assert_uint_eq(st.evictions, 0); /* sized not to drop any */
  else
    ck_assert_uint_gt(st.evictions, 0); /* most keys lived in SQLite */
  ck_assert_int_eq(tu_verify(kv), 0);
  kvshm_close(kv);
}
END_TEST

/* Item 4: persistent mode's bound with the reaper killed. */
START_TEST(test_persistent_bound) {
  char name[TU_NAME_SIZE], got[64];
  tu_name(name);
  const char *db = db_path("pers.db");
  kvshm_config c;
  tu_config(&c, 1u << 20, 0, 4);
  c.sqlite_path = db;
  c.persistent = 1;
  c.flush_delay_ms = 500;
  kvshm *kv = NULL;
  tu_assert_rc(kvshm_open(name, &c, 0, &kv), KVSHM_OK);
  /* Slow writers (5 sets a second), the reaper killed twice meanwhile: each
   * write must be in the file within flush_delay + 500 ms. */
  uint64_t worst = 0;
  pid_t first = reaper_of(kv, 3000), last = 0; /* last: killed */
  for (int i = 0; i < 12; i++) {
    char k[16], v[16];
    int n = snprintf(k, sizeof k, "p%d", i);
    snprintf(v, sizeof v, "v%d", i);
    if (i == 2 || i == 7) {
      pid_t r = reaper_other(kv, last, 3000);
      kill(r, SIGKILL);
      last = r;
    }
    tu_assert_rc(kvshm_set(kv, k, (size_t)n, v, strlen(v), 0, 0, 0), KVSHM_OK);
    uint64_t t0 = tu_mono_ms();
    while (tu_sql_value(db, k, got, sizeof got) != (int)strlen(v)) {
      ck_assert_msg(tu_mono_ms() - t0 < 2000, "write %d not in SQLite", i);
      tu_sleep_ms(5);
    }
    if (tu_mono_ms() - t0 > worst)
      worst = tu_mono_ms() - t0;
    tu_sleep_ms(200);
  }
  fprintf(stderr,
          "persistent_bound: slowest write to reach SQLite took %llu ms "
          "(flush_delay %u ms, reaper killed twice)\n",
          (unsigned long long)worst, c.flush_delay_ms);
  ck_assert_uint_le(worst, c.flush_delay_ms + 500);
  /* Nobody writes: a killed reaper is replaced all the same, and what was
   * dirty gets written. */
  pid_t r = reaper_other(kv, last, 3000);
  ck_assert_int_ne(r, first);
  tu_reaper_pause(); /* hold a write dirty, then kill the reaper */
  tu_assert_rc(kvshm_set(kv, "idle", 4, "w", 1, 0, 0, 0), KVSHM_OK);
  kill(r, SIGKILL);
  tu_reaper_resume();
  uint64_t t0 = tu_mono_ms();
  reaper_other(kv, r, 2000); /* replaced, though nobody writes */
  while (tu_sql_value(db, "idle", got, sizeof got) != 1) {
    ck_assert_msg(tu_mono_ms() - t0 < c.flush_delay_ms + 1000,
                  "idle write not in SQLite");
    tu_sleep_ms(5);
  }
  /* The last handle closes, then the reaper dies: close wrote it. */
  r = reaper_of(kv, 3000);
  tu_reaper_pause();
  tu_assert_rc(kvshm_set(kv, "atclose", 7, "c", 1, 0, 0, 0), KVSHM_OK);
  kvshm_close(kv);
  kill(r, SIGKILL);
  tu_reaper_resume();
  ck_assert_int_eq(tu_sql_value(db, "atclose", got, sizeof got), 1);
}
END_TEST

static void die_at_clear(kvshm *kv, kvshm_test_point p, void *ctx) {
  (void)kv;
  (void)ctx;
  if (p == KVSHM_TP_CLEAR_STEPPED)
    raise(SIGKILL);
}

/* A 256 KiB SQLite cache holding n keys "old<i>" (most of them only in
 * SQLite), cleared by a process killed right after the clear's step;
 * returns a handle opened again after it died. */
static kvshm *old_keys_then_killed_clear(const char *name, const char *db,
                                         int n) {
  char k[16];
  kvshm *kv = open_cache(name, 256u << 10, 1, db, 0);
  for (int i = 0; i < n; i++) {
    int kl = snprintf(k, sizeof k, "old%d", i);
    tu_assert_rc(kvshm_set(kv, k, (size_t)kl, "before", 6, 0, 0, 0), KVSHM_OK);
  }
  tu_assert_rc(kvshm_flush(kv), KVSHM_OK);
  kvshm_close(kv); /* no SQLite across fork (store.c): fork, then reopen */
  pid_t p = tu_fork();
  if (p == 0) {
    kvshm *h = NULL;
    TU_CHILD_RC(kvshm_open(name, NULL, 0, &h), KVSHM_OK);
    kvshm_test_set_hook(h, die_at_clear, NULL);
    kvshm_clear(h);
    _exit(0);
  }
  kv = open_cache(name, 256u << 10, 1, db, 0);
  int status = 0;
  ck_assert_int_eq(tu_wait(p, 10000, &status), 0);
  ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  return kv;
}

/* Item 5: a clearer killed right after its step. */
START_TEST(test_clear_interrupted) {
  char name[TU_NAME_SIZE], got[64], k[16];
  tu_name(name);
  const char *db = db_path("clear.db");
  kvshm *kv = old_keys_then_killed_clear(name, db, 3000);
  for (int i = 0; i < 3000; i += 7) {
    int n = snprintf(k, sizeof k, "old%d", i);
    tu_assert_rc(tu_get(kv, k, (size_t)n, got, sizeof got, NULL),
                 KVSHM_ENOTFOUND);
  }
  /* Write-behind goes on at once. */
  tu_assert_rc(kvshm_set(kv, "new", 3, "after", 5, 0, 0, 0), KVSHM_OK);
  uint64_t t0 = tu_mono_ms();
  while (tu_sql_value(db, "new", got, sizeof got) != 5) {
    ck_assert_msg(tu_mono_ms() - t0 < 3000, "write-behind stopped");
    tu_sleep_ms(10);
  }
  ck_assert_int_eq(tu_verify(kv), 0);
  /* A reboot: every process gone, the segment too. */
  kvshm_close(kv);
  tu_assert_rc(kvshm_unlink(name), KVSHM_OK);
  kv = open_cache(name, 256u << 10, 1, db, 0);
  tu_assert_value(kv, "new", 3, "after", 5);
  for (int i = 0; i < 3000; i += 7) {
    int n = snprintf(k, sizeof k, "old%d", i);
    tu_assert_rc(tu_get(kv, k, (size_t)n, got, sizeof got, NULL),
                 KVSHM_ENOTFOUND);
  }
  /* A header whose clear_gen was overwritten lower: verify says so, the
   * next locker raises it back (a stripe's is a floor), nothing is wiped
   * and write-behind goes on. */
  kvshm_stats st = tu_stats(kv);
  ck_assert_uint_ge(st.clear_gen, 1);
  /* The reaper locks stripes too and may raise it back before verify
   * looks: poke again until verify has seen it once. */
  uint64_t zero = 0;
  char m[1024] = "";
  int seen = 0;
  for (int try = 0; try < 50 && !seen; try++) {
    tu_poke(name, offsetof(struct kvshm_hdr, clear_gen), &zero, sizeof zero);
    seen = tu_verify_capture(kv, m, sizeof m) >= 1;
  }
  ck_assert_msg(seen, "verify never saw the lowered clear_gen");
  ck_assert_msg(strstr(m, "clear_gen") != NULL, "verify said: %s", m);
  ck_assert_int_eq(tu_verify(kv), 0);
  ck_assert_uint_eq(tu_stats(kv).clear_gen, st.clear_gen);
  tu_assert_value(kv, "new", 3, "after", 5);
  tu_assert_rc(kvshm_set(kv, "new2", 4, "later", 5, 0, 0, 0), KVSHM_OK);
  t0 = tu_mono_ms();
  while (tu_sql_value(db, "new2", got, sizeof got) != 5) {
    ck_assert_msg(tu_mono_ms() - t0 < 3000, "write-behind stopped");
    tu_sleep_ms(10);
  }
  kvshm_close(kv);
}
END_TEST

/* Item 6: a long write-behind keeps the heartbeat fresh. */
START_TEST(test_heartbeat_in_long_tick) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  kvshm *kv = open_cache(name, 64u << 20, 64, db_path("hb.db"), 0);
  pid_t r = reaper_of(kv, 3000);
  tu_reaper_pause();
  char k[24], v[100];
  memset(v, 'x', sizeof v);
  for (int i = 0; i < 150000; i++) {
    int n = snprintf(k, sizeof k, "bulk-%d", i);
    tu_assert_rc(kvshm_set(kv, k, (size_t)n, v, sizeof v, 0, 0, 0), KVSHM_OK);
  }
  uint64_t starts = tu_stats(kv).reaper_starts;
  tu_reaper_resume();
  uint64_t worst = 0, end = tu_mono_ms() + 60000;
  kvshm_stats st;
  while ((st = tu_stats(kv)).dirty && tu_mono_ms() < end) {
    uint64_t now = (uint64_t)time(NULL) * 1000;
    if (st.reaper_heartbeat_ms && now > st.reaper_heartbeat_ms &&
        now - st.reaper_heartbeat_ms > worst)
      worst = now - st.reaper_heartbeat_ms;
    tu_sleep_ms(20);
  }
  ck_assert_uint_eq(st.dirty, 0);
  ck_assert_uint_le(worst, 1500); /* seconds-granular clock: 1 s slack */
  ck_assert_uint_eq(tu_stats(kv).reaper_starts, starts);
  ck_assert_int_eq((int)tu_stats(kv).reaper_pid, r);
  kvshm_close(kv);
}
END_TEST

/* Item 7: SQLite held by someone else; a writer must wait for it, readers
 * of its stripe must not. */
START_TEST(test_no_sqlite_wait_under_lock) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  const char *db = db_path("wait.db");
  kvshm *kv = open_cache(name, 256u << 10, 1, db, KVSHM_NOREAPER);
  tu_assert_rc(kvshm_set(kv, "probe", 5, "p", 1, 0, 0, 0), KVSHM_OK);
  tu_assert_rc(kvshm_flush(kv), KVSHM_OK);
  /* Fork with no SQLite open: a process must not inherit SQLite's lock
   * state (store.c). */
  kvshm_close(kv);
  tu_gate gate;
  tu_gate_init(&gate);
  pid_t w = tu_fork();
  if (w == 0) { /* fills its only stripe with dirty entries, then waits */
    kvshm *x = NULL;
    TU_CHILD_RC(kvshm_open(name, NULL, KVSHM_NOREAPER, &x), KVSHM_OK);
    tu_gate_wait(&gate);
    char k[16], v[100];
    memset(v, 'w', sizeof v);
    for (int i = 0; i < 4000; i++) {
      int n = snprintf(k, sizeof k, "w%d", i);
      TU_CHILD_RC(kvshm_set(x, k, (size_t)n, v, sizeof v, 0, 0, 0), KVSHM_OK);
    }
    kvshm_close(x);
    _exit(0);
  }
  kv = open_cache(name, 256u << 10, 1, db, KVSHM_NOREAPER);
  sqlite3 *h;
  ck_assert_int_eq(sqlite3_open(db, &h), SQLITE_OK);
  ck_assert_int_eq(sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL),
                   SQLITE_OK);
  tu_gate_open(&gate, 1);
  /* While the writer waits for SQLite, gets of the same stripe answer. */
  uint64_t worst = 0, end = tu_mono_ms() + 2500;
  char got[8];
  while (tu_mono_ms() < end) {
    uint64_t t0 = tu_mono_ms();
    tu_assert_rc(tu_get(kv, "probe", 5, got, sizeof got, NULL), KVSHM_OK);
    if (tu_mono_ms() - t0 > worst)
      worst = tu_mono_ms() - t0;
    tu_sleep_ms(5);
  }
  ck_assert_uint_lt(worst, 200);
  ck_assert_int_eq(sqlite3_exec(h, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(h);
  tu_wait_ok(w, 30000, "writer that needed room");
  ck_assert_int_eq(tu_verify(kv), 0);
  kvshm_close(kv);
}
END_TEST

/* Item 8: destroy while another process has the cache open. */
START_TEST(test_destroy_while_attached) {
  char name[TU_NAME_SIZE], got[16], k[16];
  tu_name(name);
  const char *db = db_path("destroy.db");
  kvshm *kv = open_cache(name, 1u << 20, 2, db, 0);
  pid_t r = reaper_of(kv, 3000);
  tu_reaper_pause(); /* keep them dirty */
  for (int i = 0; i < 100; i++) {
    int n = snprintf(k, sizeof k, "d%d", i);
    tu_assert_rc(kvshm_set(kv, k, (size_t)n, "kept", 4, 0, 0, 0), KVSHM_OK);
  }
  ck_assert_uint_eq(tu_stats(kv).dirty, 100);
  tu_assert_rc(kvshm_unlink(name), KVSHM_OK); /* as another process would */
  tu_reaper_resume();
  tu_assert_rc(tu_get(kv, "d1", 2, got, sizeof got, NULL), KVSHM_EDESTROYED);
  tu_assert_rc(kvshm_set(kv, "x", 1, "y", 1, 0, 0, 0), KVSHM_EDESTROYED);
  ck_assert(strstr(kvshm_errdetail(), "open the cache again") != NULL);
  uint64_t starts = tu_stats(kv).reaper_starts;
  tu_sleep_ms(1000);
  ck_assert(!running(r));                                /* its reaper left */
  ck_assert_uint_eq(tu_stats(kv).reaper_starts, starts); /* no storm */
  kvshm_close(kv);
  kv = open_cache(name, 1u << 20, 2, db, 0); /* a new segment, same file */
  for (int i = 0; i < 100; i++) {
    int n = snprintf(k, sizeof k, "d%d", i);
    tu_assert_value(kv, k, (size_t)n, "kept", 4);
  }
  /* A destroyer that died right after marking the segment: the next
   * opener writes what is dirty and finishes the removal. */
  r = reaper_of(kv, 3000);
  tu_reaper_pause();
  for (int i = 0; i < 100; i++) {
    int n = snprintf(k, sizeof k, "e%d", i);
    tu_assert_rc(kvshm_set(kv, k, (size_t)n, "late", 4, 0, 0, 0), KVSHM_OK);
  }
  uint32_t one = 1;
  tu_poke(name, offsetof(struct kvshm_hdr, destroyed), &one, sizeof one);
  kill(r, SIGKILL); /* its final flush must not be what saves them */
  kvshm_close(kv);
  tu_reaper_resume();
  kv = open_cache(name, 1u << 20, 2, db, 0);
  ck_assert_uint_eq(tu_stats(kv).destroyed, 0); /* a new segment */
  for (int i = 0; i < 100; i++) {
    int n = snprintf(k, sizeof k, "e%d", i);
    tu_assert_value(kv, k, (size_t)n, "late", 4);
  }
  kvshm_close(kv);
}
END_TEST

/* The reaper's clean-up after a clear never deletes rows of a newer
 * generation (it read its generation before the next clear). */
START_TEST(test_gc_spares_newer_rows) {
  char name[TU_NAME_SIZE], k[32], pfx[16];
  tu_name(name);
  const char *db = db_path("gc.db");
  kvshm *kv = open_cache(name, 1u << 20, 2, db, 0);
  reaper_of(kv, 3000);
  for (int round = 0; round < 40; round++) {
    tu_assert_rc(kvshm_clear(kv), KVSHM_OK);
    snprintf(pfx, sizeof pfx, "g%d-", round);
    for (int i = 0; i < 100; i++) {
      int n = snprintf(k, sizeof k, "%s%d", pfx, i);
      tu_assert_rc(kvshm_set(kv, k, (size_t)n, "v", 1, 0, 0, 0), KVSHM_OK);
    }
    tu_assert_rc(kvshm_flush(kv), KVSHM_OK);
    tu_sleep_ms(20); /* the reaper's clean-up runs meanwhile */
    ck_assert_int_eq(tu_sql_count(db, pfx), 100);
  }
  kvshm_close(kv);
}
END_TEST

/* A clearer killed at its step, the reaper cleaning up, then the segment
 * lost before anything else is written: the clear is whole there too. */
START_TEST(test_clear_killed_then_reboot) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  const char *db = db_path("clear2.db");
  kvshm *kv = old_keys_then_killed_clear(name, db, 20000);
  tu_sleep_ms(150); /* the reaper starts deleting the old rows */
  kvshm_close(kv);
  tu_assert_rc(kvshm_unlink(name), KVSHM_OK);
  kv = open_cache(name, 256u << 10, 1, db, 0);
  ck_assert_int_eq(tu_sql_count(db, "old"), 0);
  char got[16];
  tu_assert_rc(tu_get(kv, "old7", 4, got, sizeof got, NULL), KVSHM_ENOTFOUND);
  kvshm_close(kv);
}
END_TEST

/* A handle left on a destroyed cache cannot touch the file the next cache
 * of that name uses. */
START_TEST(test_destroyed_handle_is_fenced) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  const char *db = db_path("fence.db");
  kvshm *old = open_cache(name, 1u << 20, 2, db, 0);
  tu_assert_rc(kvshm_set(old, "k-old", 5, "o", 1, 0, 0, 0), KVSHM_OK);
  tu_assert_rc(kvshm_unlink(name), KVSHM_OK);
  kvshm *fresh = open_cache(name, 1u << 20, 2, db, 0);
  tu_assert_value(fresh, "k-old", 5, "o", 1); /* flushed by the destroy */
  tu_assert_rc(kvshm_set(fresh, "k-new", 5, "n", 1, 0, 0, 0), KVSHM_OK);
  tu_assert_rc(kvshm_flush(fresh), KVSHM_OK);
  tu_assert_rc(kvshm_clear(old), KVSHM_EDESTROYED);
  tu_assert_value(fresh, "k-new", 5, "n", 1);
  tu_assert_value(fresh, "k-old", 5, "o", 1);
  kvshm_close(old);
  kvshm_close(fresh);
  tu_assert_rc(kvshm_unlink(name), KVSHM_OK);
  fresh = open_cache(name, 1u << 20, 2, db, 0);
  tu_assert_value(fresh, "k-new", 5, "n", 1);
  kvshm_close(fresh);
}
END_TEST

/* SQLite cannot be used across fork(): a child forked while its parent had
 * a SQLite cache open gets a clear error, never silent loss; one forked
 * after the parent closed it works. */
START_TEST(test_fork_refused) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  const char *db = db_path("fork.db");
  kvshm *kv = open_cache(name, 1u << 20, 2, db, KVSHM_NOREAPER);
  tu_assert_rc(kvshm_set(kv, "k", 1, "v", 1, 0, 0, 0), KVSHM_OK);
  pid_t p = tu_fork();
  if (p == 0) {
    kvshm *h = NULL;
    TU_CHILD_RC(kvshm_open(name, NULL, KVSHM_NOREAPER, &h), KVSHM_ESQLITE);
    TU_CHILD_CHECK(strstr(kvshm_errdetail(), "fork") != NULL);
    TU_CHILD_RC(kvshm_flush(kv), KVSHM_ESQLITE); /* the parent's handle */
    _exit(0);
  }
  tu_wait_ok(p, 10000, "child forked with SQLite open");
  kvshm_close(kv);
  p = tu_fork();
  if (p == 0) {
    kvshm *h = NULL;
    TU_CHILD_RC(kvshm_open(name, NULL, KVSHM_NOREAPER, &h), KVSHM_OK);
    TU_CHILD_RC(kvshm_flush(h), KVSHM_OK);
    kvshm_close(h);
    _exit(0);
  }
  tu_wait_ok(p, 10000, "child forked with nothing open");
  char got[4];
  ck_assert_int_eq(tu_sql_value(db, "k", got, sizeof got), 1);
}
END_TEST

static Suite *tiers_suite(void) {
  Suite *s = suite_create("tiers");
  TCase *tc = tu_tcase("sqlite-backed", 120);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_loop_test(tc, test_incr_nx_xx_under_eviction, MEMORY_ONLY,
                      PERSISTENT + 1);
  tcase_add_loop_test(tc, test_walk_exactly_once, MEMORY_ONLY, PERSISTENT + 1);
  tcase_add_test(tc, test_persistent_bound);
  tcase_add_test(tc, test_clear_interrupted);
  tcase_add_test(tc, test_heartbeat_in_long_tick);
  tcase_add_test(tc, test_no_sqlite_wait_under_lock);
  tcase_add_test(tc, test_destroy_while_attached);
  tcase_add_test(tc, test_gc_spares_newer_rows);
  tcase_add_test(tc, test_clear_killed_then_reboot);
  tcase_add_test(tc, test_destroyed_handle_is_fenced);
  tcase_add_test(tc, test_fork_refused);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  Suite *s[] = {tiers_suite()};
  return tu_run_suites(s, 1);
}
