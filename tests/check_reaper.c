/*
 * check_reaper.c - kvshm-reaper's life: exactly one per segment however
 * many processes start it, restarted after SIGKILL without losing an
 * acknowledged write in persistent mode, background expiry for memory-only
 * caches, a final flush on SIGTERM, exit when the segment is destroyed, and
 * liveness that holds across PID namespaces sharing one /dev/shm, and a
 * damaged reaper lock that nothing hands to pthread (glibc would abort).
 */
#include "testutil.h"

#include "layout.h"

#include <dirent.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>

static char dir[TU_DIR_SIZE];

static void setup(void) {
  tu_dir_make(dir, "reaper");
}

static void teardown(void) {
  tu_dir_remove(dir);
}

/* Processes whose command line is "kvshm-reaper <name>". */
static int count_reapers(const char *name, pid_t *one) {
  DIR *d = opendir("/proc");
  struct dirent *e;
  int n = 0;
  while ((e = readdir(d))) {
    char path[300], cmd[512];
    snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f)
      continue;
    size_t len = fread(cmd, 1, sizeof cmd - 1, f);
    fclose(f);
    cmd[len] = 0;
    const char *arg = cmd + strlen(cmd) + 1;
    if (strstr(cmd, "kvshm-reaper") && arg < cmd + len &&
        strcmp(arg, name) == 0) {
      n++;
      if (one)
        *one = (pid_t)atoi(e->d_name);
    }
  }
  closedir(d);
  return n;
}

/* Wait for a live reaper other than `not`.  Like any process that uses the
 * cache, the test reopens it now and then, which restarts a dead reaper. */
static pid_t wait_reaper(kvshm **kv, pid_t not, unsigned timeout_ms) {
  uint64_t end = tu_mono_ms() + timeout_ms;
  for (int i = 1;; i++) {
    kvshm_stats st = tu_stats(*kv);
    if (st.reaper_pid &&
        (pid_t)st.reaper_pid != not &&kill((pid_t)st.reaper_pid, 0) == 0)
      return (pid_t)st.reaper_pid;
    ck_assert_msg(tu_mono_ms() < end, "no reaper came up");
    tu_sleep_ms(20);
    if (i % 8 == 0) {
      char name[KVSHM_NAME_MAX + 1];
      snprintf(name, sizeof name, "%s", kvshm_name(*kv));
      kvshm_close(*kv);
      tu_assert_rc(kvshm_open(name, NULL, 0, kv), KVSHM_OK);
    }
  }
}

/* Eight processes open a new SQLite cache at the same instant, and three
 * more reapers are started by hand: one reaper runs. */
START_TEST(test_exactly_one) {
  char name[TU_NAME_SIZE], db[128];
  tu_name(name);
  snprintf(db, sizeof db, "%s/one.db", dir);
  kvshm_config c;
  tu_config(&c, 1u << 20, 0, 1);
  c.sqlite_path = db;
  tu_gate g;
  tu_gate_init(&g);
  pid_t kids[8];
  for (int i = 0; i < 8; i++) {
    if ((kids[i] = tu_fork()) == 0) {
      tu_gate_wait(&g);
      kvshm *kv = NULL;
      TU_CHILD_RC(kvshm_open(name, &c, 0, &kv), KVSHM_OK);
      kvshm_close(kv);
      _exit(0);
    }
  }
  tu_gate_open(&g, 8);
  for (int i = 0; i < 8; i++)
    tu_wait_ok(kids[i], 10000, "opener");
  kvshm *kv = NULL;
  tu_assert_rc(kvshm_open(name, NULL, KVSHM_NOREAPER, &kv), KVSHM_OK);
  pid_t r = wait_reaper(&kv, 0, 5000);
  char cmd[256];
  for (int i = 0; i < 3; i++) {
    snprintf(cmd, sizeof cmd, "KVSHM_REAPER_LOG=%s/log %s %s", dir,
             getenv("KVSHM_REAPER_PATH") ? getenv("KVSHM_REAPER_PATH")
                                         : KVSHM_TEST_REAPER,
             name);
    ck_assert_int_eq(system(cmd), 0); /* exits at once: one is running */
  }
  tu_sleep_ms(300);
  pid_t seen = 0;
  ck_assert_int_eq(count_reapers(name, &seen), 1);
  ck_assert_int_eq(seen, r);
  ck_assert_uint_eq(tu_stats(kv).reaper_pid, (uint32_t)r);
  kvshm_close(kv);
}
END_TEST

/* SIGKILL the reaper again and again while it writes behind: a new one
 * starts each time, and every acknowledged write reaches SQLite within the
 * flush delay once one runs. */
START_TEST(test_kill_mid_batch) {
  char name[TU_NAME_SIZE], db[128], k[32], v[300], got[400];
  tu_name(name);
  snprintf(db, sizeof db, "%s/kill.db", dir);
  kvshm_config c;
  tu_config(&c, 8u << 20, 0, 4);
  c.sqlite_path = db;
  c.persistent = 1;
  c.flush_delay_ms = 100;
  kvshm *kv = NULL;
  tu_assert_rc(kvshm_open(name, &c, 0, &kv), KVSHM_OK);
  pid_t prev = 0;
  int written = 0;
  for (int round = 0; round < 12; round++) {
    for (int i = 0; i < 2000; i++, written++) {
      int kl = sprintf(k, "k%06d", written % 15000);
      int vl = sprintf(v, "round %d entry %d %0200d", round, written, round);
      tu_assert_rc(kvshm_set(kv, k, (size_t)kl, v, (size_t)vl, 0, 0, 0),
                   KVSHM_OK);
    }
    pid_t r = wait_reaper(&kv, prev, 8000);
    tu_sleep_ms(5 + (unsigned)(round * 7) % 40); /* mid-batch, somewhere */
    kill(r, SIGKILL);
    prev = r;
    kvshm_close(kv); /* reopening restarts a reaper */
    tu_assert_rc(kvshm_open(name, &c, 0, &kv), KVSHM_OK);
  }
  pid_t last = wait_reaper(&kv, prev, 8000);
  /* The first reaper and one after each of the 12 kills. */
  ck_assert_uint_ge(tu_stats(kv).reaper_starts, 13);
  tu_sleep_ms(c.flush_delay_ms * 5);
  /* Kill the last one too (no final flush) and drop the segment: what is
   * left is what write-behind put in SQLite within the delay. */
  kill(last, SIGKILL);
  kvshm_close(kv);
  tu_assert_rc(kvshm_unlink(name), KVSHM_OK);
  tu_assert_rc(kvshm_open(name, &c, KVSHM_NOREAPER, &kv), KVSHM_OK);
  for (int w = written - 15000; w < written; w++) {
    int kl = sprintf(k, "k%06d", w % 15000);
    size_t len;
    tu_assert_rc(tu_get(kv, k, (size_t)kl, got, sizeof got, &len), KVSHM_OK);
    int round = w / 2000;
    int vl = sprintf(v, "round %d entry %d %0200d", round, w, round);
    ck_assert_msg(len == (size_t)vl && memcmp(got, v, len) == 0,
                  "key %s: wanted '%.30s', got '%.30s'", k, v, got);
  }
  kvshm_close(kv);
}
END_TEST

/* Memory-only caches get a reaper for expiry: expired entries go without
 * anyone touching them. */
START_TEST(test_memory_only_expiry) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  kvshm_config c;
  tu_config(&c, 1u << 20, 0, 1);
  kvshm *kv = NULL;
  tu_assert_rc(kvshm_open(name, &c, 0, &kv), KVSHM_OK);
  wait_reaper(&kv, 0, 5000);
  char k[16];
  for (int i = 0; i < 100; i++)
    tu_assert_rc(
        kvshm_set(kv, k, (size_t)sprintf(k, "e%d", i), "v", 1, 0, 200, 0),
        KVSHM_OK);
  tu_assert_rc(kvshm_set(kv, "keep", 4, "v", 1, 0, 0, 0), KVSHM_OK);
  ck_assert_uint_eq(tu_stats(kv).entries, 101);
  uint64_t end = tu_mono_ms() + 5000;
  while (tu_stats(kv).entries != 1 && tu_mono_ms() < end)
    tu_sleep_ms(50);
  kvshm_stats st = tu_stats(kv);
  ck_assert_uint_eq(st.entries, 1);
  ck_assert_uint_eq(st.expirations, 100);
  ck_assert_uint_eq(st.hits + st.misses, 0); /* nobody read them */
  kvshm_close(kv);
}
END_TEST

/* SIGTERM: everything dirty is written, then the reaper exits; destroying
 * the segment makes it exit by itself. */
START_TEST(test_sigterm_and_destroy) {
  char name[TU_NAME_SIZE], db[128], k[16];
  tu_name(name);
  snprintf(db, sizeof db, "%s/term.db", dir);
  kvshm_config c;
  tu_config(&c, 4u << 20, 0, 2);
  c.sqlite_path = db;
  kvshm *kv = NULL;
  tu_assert_rc(kvshm_open(name, &c, 0, &kv), KVSHM_OK);
  pid_t r = wait_reaper(&kv, 0, 5000);
  tu_reaper_pause(); /* hold write-behind back */
  for (int i = 0; i < 500; i++)
    tu_assert_rc(
        kvshm_set(kv, k, (size_t)sprintf(k, "t%d", i), "v", 1, 0, 0, 0),
        KVSHM_OK);
  ck_assert_uint_eq(tu_stats(kv).dirty, 500);
  kill(r, SIGTERM); /* it leaves its pause for the final flush */
  uint64_t end = tu_mono_ms() + 5000;
  while (kill(r, 0) == 0 && tu_mono_ms() < end)
    tu_sleep_ms(20);
  ck_assert_int_ne(kill(r, 0), 0);
  ck_assert_uint_eq(tu_stats(kv).dirty, 0);
  /* This process's watchdog starts the next one at once. */
  ck_assert_uint_ne(tu_stats(kv).reaper_pid, (uint32_t)r);
  /* A new one, then destroy: it notices and exits. */
  kvshm_close(kv);
  tu_assert_rc(kvshm_open(name, &c, 0, &kv), KVSHM_OK);
  r = wait_reaper(&kv, 0, 5000);
  kvshm_close(kv);
  tu_assert_rc(kvshm_unlink(name), KVSHM_OK);
  end = tu_mono_ms() + 5000;
  while (kill(r, 0) == 0 && tu_mono_ms() < end)
    tu_sleep_ms(20);
  ck_assert_int_ne(kill(r, 0), 0);
}
END_TEST

/* The reaper's binary missing: a SQLite cache refuses to open and says why;
 * a memory-only one still opens. */
START_TEST(test_missing_binary) {
  char name[TU_NAME_SIZE], db[128];
  snprintf(db, sizeof db, "%s/nobin.db", dir);
  setenv("KVSHM_REAPER_PATH", "/nonexistent/kvshm-reaper", 1);
  kvshm_config c;
  tu_config(&c, 1u << 20, 0, 1);
  kvshm *kv = NULL;
  tu_assert_rc(kvshm_open(tu_name(name), &c, 0, &kv), KVSHM_OK);
  kvshm_close(kv);
  c.sqlite_path = db;
  tu_assert_rc(kvshm_open(tu_name(name), &c, 0, &kv), KVSHM_EREAPER);
  ck_assert(strstr(kvshm_errdetail(), "/nonexistent/kvshm-reaper") != NULL);
  unsetenv("KVSHM_REAPER_PATH");
}
END_TEST

static const char *reaper_path(void) {
  return getenv("KVSHM_REAPER_PATH") ? getenv("KVSHM_REAPER_PATH")
                                     : KVSHM_TEST_REAPER;
}

/* The only child of pid (the process `unshare -f` forked), or 0. */
static pid_t child_of(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
  FILE *f = fopen(path, "r");
  int c = 0;
  if (f) {
    if (fscanf(f, "%d", &c) != 1)
      c = 0;
    fclose(f);
  }
  return (pid_t)c;
}

/* Two PID namespaces share one segment, as containers sharing /dev/shm
 * do: a reaper in the other namespace (pid 1 there, some other process's
 * pid here) counts as alive here, a second one is not started, and when it
 * dies one is started here at once (no pid is ever compared). */
START_TEST(test_pid_namespaces) {
  if (system("unshare -p -f true >/dev/null 2>&1") != 0) {
    fprintf(stderr, "pid_namespaces: unshare -p not permitted; skipped\n");
    return;
  }
  char name[TU_NAME_SIZE], db[128];
  tu_name(name);
  snprintf(db, sizeof db, "%s/ns.db", dir);
  kvshm_config c;
  tu_config(&c, 1u << 20, 0, 1);
  c.sqlite_path = db;
  kvshm *kv = NULL;
  tu_assert_rc(kvshm_open(name, &c, KVSHM_NOREAPER, &kv), KVSHM_OK);
  pid_t ns = tu_fork();
  if (ns == 0) {
    execlp("unshare", "unshare", "-p", "-f", reaper_path(), name, (char *)NULL);
    _exit(127);
  }
  uint64_t end = tu_mono_ms() + 5000;
  kvshm_stats st;
  while (!((st = tu_stats(kv)).reaper_alive && st.reaper_pid == 1)) {
    ck_assert_msg(tu_mono_ms() < end, "the namespaced reaper did not start");
    tu_sleep_ms(10);
  }
  pid_t inner = child_of(ns); /* its pid here */
  ck_assert_int_gt(inner, 1);
  /* An opener here sees it alive: no second reaper. */
  uint64_t starts = st.reaper_starts;
  kvshm *user = NULL;
  tu_assert_rc(kvshm_open(name, NULL, 0, &user), KVSHM_OK);
  tu_sleep_ms(300);
  ck_assert_uint_eq(tu_stats(kv).reaper_starts, starts);
  ck_assert_int_eq(count_reapers(name, NULL), 1);
  /* It dies: this namespace's watchdog starts one here at once. */
  kill(inner, SIGKILL);
  int status;
  tu_wait(ns, 5000, &status);
  end = tu_mono_ms() + 3000;
  while (!((st = tu_stats(kv)).reaper_alive && st.reaper_pid != 1)) {
    ck_assert_msg(tu_mono_ms() < end, "no reaper replaced the dead one");
    tu_sleep_ms(10);
  }
  pid_t here = (pid_t)st.reaper_pid;
  /* And the other way round: a reaper started in another namespace finds
   * this one alive and leaves at once. */
  char cmd[512];
  snprintf(cmd, sizeof cmd, "timeout 10 unshare -p -f %s %s", reaper_path(),
           name);
  ck_assert_int_eq(system(cmd), 0);
  ck_assert_uint_eq(tu_stats(kv).reaper_pid, (uint32_t)here);
  ck_assert_int_eq(kill(here, 0), 0);
  kvshm_close(user);
  kvshm_close(kv);
}
END_TEST

#ifdef __GLIBC__
/* glibc's kind word of the header's reaper lock, and one it asserts on (a
 * priority-protected mutex without a ceiling: found by the segment fuzzer,
 * tests/fuzz). */
#define KIND_OFF                                                               \
  (offsetof(struct kvshm_hdr, reaper_lock) +                                   \
   offsetof(pthread_mutex_t, __data.__kind))
#define KIND_PP 0x40u

/* A reaper lock whose kind word was overwritten: verify says the lock is
 * damaged, repair makes it again, a reaper started then claims it, and
 * nothing aborts the process on the way. */
START_TEST(test_damaged_lock) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  kvshm_config c;
  tu_config(&c, 1u << 20, 0, 2);
  kvshm_close(tu_open(name, &c));
  tu_poke32(name, KIND_OFF, KIND_PP);
  pid_t pid = tu_fork();
  if (pid == 0) {
    kvshm *kv = NULL;
    TU_CHILD_RC(kvshm_open(name, NULL, KVSHM_NOREAPER, &kv), KVSHM_OK);
    char buf[512] = "";
    TU_CHILD_CHECK(tu_verify_capture(kv, buf, sizeof buf) == 1);
    TU_CHILD_CHECK(strstr(buf, "reaper lock") != NULL);
    TU_CHILD_CHECK(kvshm_repair(kv, 0, NULL, NULL) >= 1);
    TU_CHILD_CHECK(tu_verify_capture(kv, buf, sizeof buf) == 0);
    kvshm_close(kv);
    /* Damaged again, then met by an open that starts a reaper. */
    tu_poke32(name, KIND_OFF, KIND_PP);
    TU_CHILD_RC(kvshm_open(name, NULL, 0, &kv), KVSHM_OK);
    uint64_t end = tu_mono_ms() + 5000;
    kvshm_stats st;
    do {
      TU_CHILD_RC(kvshm_stats_get(kv, &st), KVSHM_OK);
      if (!st.reaper_alive)
        tu_sleep_ms(20);
    } while (!st.reaper_alive && tu_mono_ms() < end);
    TU_CHILD_CHECK(st.reaper_alive == 1);
    kvshm_close(kv);
    _exit(0);
  }
  tu_wait_ok(pid, 10000, "a damaged reaper lock");
  tu_assert_rc(kvshm_unlink(name), KVSHM_OK);
}
END_TEST

/* The same damage under a running reaper of a SQLite cache: the watchdog
 * thread of every process that has it open stops waiting on the lock (it
 * would abort its process), the next look at it makes it again, and a
 * reaper holds it again soon after. */
START_TEST(test_damaged_lock_watchdog) {
  char name[TU_NAME_SIZE], db[128];
  tu_name(name);
  snprintf(db, sizeof db, "%s/damaged.db", dir);
  pid_t pid = tu_fork();
  if (pid == 0) {
    kvshm_config c;
    tu_config(&c, 1u << 20, 0, 2);
    c.sqlite_path = db;
    kvshm *kv = NULL;
    TU_CHILD_RC(kvshm_open(name, &c, 0, &kv), KVSHM_OK);
    uint64_t end = tu_mono_ms() + 5000;
    kvshm_stats st;
    for (;;) {
      TU_CHILD_RC(kvshm_stats_get(kv, &st), KVSHM_OK);
      if (st.reaper_alive)
        break;
      TU_CHILD_CHECK(tu_mono_ms() < end);
      tu_sleep_ms(20);
    }
    tu_poke32(name, KIND_OFF, KIND_PP);
    tu_sleep_ms(300); /* the watchdog looks every 50 ms */
    end = tu_mono_ms() + 5000;
    for (;;) { /* stats makes it again; the watchdog starts a reaper */
      TU_CHILD_RC(kvshm_stats_get(kv, &st), KVSHM_OK);
      if (st.reaper_alive)
        break;
      TU_CHILD_CHECK(tu_mono_ms() < end);
      tu_sleep_ms(20);
    }
    TU_CHILD_CHECK(tu_peek32(name, KIND_OFF) != KIND_PP);
    kvshm_close(kv);
    _exit(0);
  }
  tu_wait_ok(pid, 15000, "a damaged reaper lock under a watchdog");
  tu_assert_rc(kvshm_unlink(name), KVSHM_OK);
}
END_TEST
#endif

static Suite *reaper_suite(void) {
  Suite *s = suite_create("reaper");
  TCase *tc = tu_tcase("lifecycle", 120);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_exactly_one);
  tcase_add_test(tc, test_pid_namespaces);
  tcase_add_test(tc, test_kill_mid_batch);
  tcase_add_test(tc, test_memory_only_expiry);
  tcase_add_test(tc, test_sigterm_and_destroy);
  tcase_add_test(tc, test_missing_binary);
#ifdef __GLIBC__
  tcase_add_test(tc, test_damaged_lock);
  tcase_add_test(tc, test_damaged_lock_watchdog);
#endif
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  Suite *s[] = {reaper_suite()};
  return tu_run_suites(s, 1);
}
