/*
 * check_near.c - the segment's half of a near cache in front of Redis
 * (near.c, issue 13), each in the three modes:
 *
 *   epoch_fences_fill     a fill whose epoch was read before an
 *                         invalidation of its key stores nothing; one read
 *                         after stores; another key (its own epoch word)
 *                         keeps its epoch; clear and prefix clear move
 *                         every epoch
 *   invalidate_tiers      invalidate removes a key that only SQLite holds,
 *                         and succeeds for an absent key (moving its epoch)
 *   fill_race             a writer (Redis write + invalidate) against two
 *                         fillers (epoch, Redis read, set_if_epoch) in
 *                         three processes: right after each invalidate,
 *                         the cached copy is absent or at least as new as
 *                         that write; at the end it is the last write
 *   election              one listener at a time; the role passes on
 *                         release and when its holder is SIGKILLed
 *   synced_gates_gets     near gets are served only while the listener's
 *                         sync time is less than max_lag old, and only
 *                         to processes of the listener's configuration
 *   delay_quantiles       p50 / p99 of recorded delays
 *   damaged_lock          scribbled listener-lock words are reported by
 *                         verify and made again by the next claim
 */
#include "testutil.h"

#include "layout.h"

#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[TU_DIR_SIZE];

static void setup(void) {
  tu_dir_make(dir, "near");
}

static void teardown(void) {
  tu_dir_remove(dir);
}

enum { MEMORY_ONLY = TU_MEMORY_ONLY, PERSISTENT = TU_PERSISTENT };

static void mode_config(kvshm_config *c, int mode) {
  tu_mode_config(c, mode, dir, "n.db");
}

static kvshm *open_mode(const char *name, int mode) {
  return tu_open_mode(name, mode, dir, "n.db");
}

/* A test's end: the segment checks, and goes. */
static void finish(kvshm *kv, const char *name) {
  ck_assert_int_eq(tu_verify(kv), 0);
  kvshm_close(kv);
  kvshm_unlink(name);
}

/* Write other keys (written back as they go) until key has left memory:
 * it is then only in SQLite. */
static void push_out(kvshm *kv, const char *key, const char *tag) {
  char other[32];
  tu_assert_rc(kvshm_flush(kv), KVSHM_OK);
  for (int i = 0; kvshm_in_memory(kv, key, strlen(key)) == KVSHM_OK; i++) {
    ck_assert_int_lt(i, 200000);
    snprintf(other, sizeof other, "%s%d", tag, i);
    tu_set_str(kv, other, "0123456789012345678901234567890123456789");
    if (i % 256 == 255)
      tu_assert_rc(kvshm_flush(kv), KVSHM_OK);
  }
}

static uint64_t epoch_of(kvshm *kv, const char *key) {
  uint64_t e = 0;
  tu_assert_rc(kvshm_epoch(kv, key, strlen(key), &e), KVSHM_OK);
  return e;
}

static int fill(kvshm *kv, const char *key, const char *val, uint64_t e) {
  return kvshm_set_if_epoch(kv, key, strlen(key), val, strlen(val), 0, 0, e);
}

/* A key on another stripe than key's. */
static void other_stripe_key(kvshm *kv, const char *key, char out[32]) {
  uint32_t s = kvshm_test_stripe_of(kv, key, strlen(key));
  for (int i = 0;; i++) {
    snprintf(out, 32, "other%d", i);
    if (kvshm_test_stripe_of(kv, out, strlen(out)) != s)
      return;
  }
}

START_TEST(test_epoch_fences_fill) {
  char name[TU_NAME_SIZE], other[32];
  tu_name(name);
  kvshm *kv = open_mode(name, _i);
  other_stripe_key(kv, "k", other);

  uint64_t e = epoch_of(kv, "k"), eo = epoch_of(kv, other);
  tu_assert_rc(kvshm_invalidate(kv, "k", 1), KVSHM_OK);
  tu_assert_rc(fill(kv, "k", "old", e), KVSHM_ESTALE);
  tu_assert_rc(kvshm_has(kv, "k", 1), KVSHM_ENOTFOUND);
  ck_assert_uint_eq(epoch_of(kv, other), eo);
  tu_assert_rc(fill(kv, other, "o", eo), KVSHM_OK);

  e = epoch_of(kv, "k");
  tu_assert_rc(fill(kv, "k", "new", e), KVSHM_OK);
  tu_assert_value(kv, "k", 1, "new", 3);
  tu_assert_rc(fill(kv, "k", "again", e), KVSHM_OK); /* nothing moved it */

  e = epoch_of(kv, "k");
  eo = epoch_of(kv, other);
  tu_assert_rc(kvshm_clear_prefix(kv, "zz", 2), KVSHM_OK);
  ck_assert_uint_ne(epoch_of(kv, "k"), e);
  ck_assert_uint_ne(epoch_of(kv, other), eo);
  tu_assert_rc(fill(kv, "k", "x", e), KVSHM_ESTALE);
  e = epoch_of(kv, "k");
  tu_assert_rc(kvshm_clear(kv), KVSHM_OK);
  tu_assert_rc(fill(kv, "k", "x", e), KVSHM_ESTALE);
  tu_assert_rc(kvshm_has(kv, "k", 1), KVSHM_ENOTFOUND);
  finish(kv, name);
}
END_TEST

START_TEST(test_invalidate_tiers) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  kvshm *kv = open_mode(name, _i);
  uint64_t e = epoch_of(kv, "absent");
  tu_assert_rc(kvshm_invalidate(kv, "absent", 6), KVSHM_OK);
  ck_assert_uint_ne(epoch_of(kv, "absent"), e);

  tu_set_str(kv, "k", "v");
  if (_i != MEMORY_ONLY) {
    push_out(kv, "k", "fill");
    tu_assert_value(kv, "k", 1, "v", 1); /* from SQLite, back in memory */
    push_out(kv, "k", "more");
  }
  tu_assert_rc(kvshm_invalidate(kv, "k", 1), KVSHM_OK);
  tu_assert_rc(kvshm_has(kv, "k", 1), KVSHM_ENOTFOUND);
  tu_assert_rc(kvshm_flush(kv), KVSHM_OK);
  tu_assert_rc(kvshm_has(kv, "k", 1), KVSHM_ENOTFOUND);
  finish(kv, name);
}
END_TEST

/*
 * "Redis" is the key truth, a counter only the writer moves; the cached
 * copy is the key k.  A filler reads k's epoch, then truth, then stores
 * truth's value in k if the epoch has not moved.
 */
#define RACE_WRITES 3000

static void filler(const char *name, int mode, tu_gate *g) {
  kvshm *kv = NULL;
  kvshm_config c;
  mode_config(&c, mode);
  TU_CHILD_RC(kvshm_open(name, &c, KVSHM_NOREAPER, &kv), KVSHM_OK);
  tu_gate_wait(g);
  char buf[32];
  for (;;) {
    uint64_t e;
    size_t n = 0;
    TU_CHILD_RC(kvshm_epoch(kv, "k", 1, &e), KVSHM_OK);
    int rc = kvshm_get(kv, "truth", 5, buf, sizeof buf - 1, &n, NULL);
    TU_CHILD_CHECK(rc == KVSHM_OK || rc == KVSHM_ENOTFOUND);
    if (rc == KVSHM_OK && n == 4 && !memcmp(buf, "done", 4))
      break;
    if (rc == KVSHM_ENOTFOUND)
      continue;
    rc = kvshm_set_if_epoch(kv, "k", 1, buf, n, 0, 0, e);
    TU_CHILD_CHECK(rc == KVSHM_OK || rc == KVSHM_ESTALE);
  }
  kvshm_close(kv);
  _exit(0);
}

START_TEST(test_fill_race) {
  char name[TU_NAME_SIZE], buf[32];
  tu_name(name);
  tu_gate g;
  tu_gate_init(&g);
  pid_t kids[2];
  for (int i = 0; i < 2; i++)
    if ((kids[i] = tu_fork()) == 0)
      filler(name, _i, &g);
  kvshm *kv = open_mode(name, _i);
  tu_gate_open(&g, 2);
  int64_t truth = 0;
  uint64_t checked = 0;
  for (int w = 1; w <= RACE_WRITES; w++) {
    tu_assert_rc(kvshm_incr(kv, "truth", 5, 1, 0, &truth), KVSHM_OK);
    tu_assert_rc(kvshm_invalidate(kv, "k", 1), KVSHM_OK);
    size_t n = 0;
    int rc = tu_get(kv, "k", 1, buf, sizeof buf - 1, &n);
    if (rc == KVSHM_ENOTFOUND)
      continue;
    tu_assert_rc(rc, KVSHM_OK);
    buf[n] = '\0';
    ck_assert_msg(atoll(buf) >= truth,
                  "write %" PRId64 " was invalidated, yet the copy is %s",
                  truth, buf);
    checked++;
  }
  tu_set_str(kv, "truth", "done");
  for (int i = 0; i < 2; i++)
    tu_wait_ok(kids[i], 60000, "filler");
  size_t n = 0;
  int rc = tu_get(kv, "k", 1, buf, sizeof buf - 1, &n);
  if (rc == KVSHM_OK) {
    buf[n] = '\0';
    ck_assert_int_eq(atoll(buf), truth);
  } else {
    tu_assert_rc(rc, KVSHM_ENOTFOUND);
  }
  ck_assert_uint_gt(checked, 0); /* fills did land between writes */
  finish(kv, name);
}
END_TEST

/* A child that claims the role, says so on `ready`, then waits for a
 * byte on `go` and either releases (byte 'r') or dies holding it. */
static void claimer(const char *name, int mode, int ready, int go) {
  kvshm *kv = NULL;
  kvshm_config c;
  mode_config(&c, mode);
  TU_CHILD_RC(kvshm_open(name, &c, KVSHM_NOREAPER, &kv), KVSHM_OK);
  int got = kvshm_near_claim(kv);
  TU_CHILD_CHECK(write(ready, &got, sizeof got) == sizeof got);
  char what = 0;
  TU_CHILD_CHECK(read(go, &what, 1) == 1);
  if (what == 'k')
    raise(SIGKILL);
  kvshm_near_release(kv);
  kvshm_close(kv);
  _exit(0);
}

static pid_t start_claimer(const char *name, int mode, int *got, int *go_fd) {
  int ready[2], go[2];
  ck_assert_int_eq(pipe(ready), 0);
  ck_assert_int_eq(pipe(go), 0);
  pid_t pid = tu_fork();
  if (pid == 0) {
    close(ready[0]);
    close(go[1]);
    claimer(name, mode, ready[1], go[0]);
  }
  close(ready[1]);
  close(go[0]);
  ck_assert_int_eq(read(ready[0], got, sizeof *got), (int)sizeof *got);
  close(ready[0]);
  *go_fd = go[1];
  return pid;
}

START_TEST(test_election) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  /* No SQLite file is open here while children are forked. */
  int got, go;
  pid_t a = start_claimer(name, _i, &got, &go);
  ck_assert_int_eq(got, 1);
  int go_b;
  pid_t b = start_claimer(name, _i, &got, &go_b);
  ck_assert_int_eq(got, 0); /* a holds it */
  ck_assert_int_eq(write(go_b, "r", 1), 1);
  tu_wait_ok(b, 10000, "second claimer");
  close(go_b);

  kvshm *kv = open_mode(name, _i);
  kvshm_near_stats st;
  tu_assert_rc(kvshm_near_stats_get(kv, &st), KVSHM_OK);
  ck_assert_uint_eq(st.listener_alive, 1);
  ck_assert_uint_eq(st.listener_pid, (uint32_t)a);
  ck_assert_int_eq(kvshm_near_claim(kv), 0);

  ck_assert_int_eq(write(go, "k", 1), 1); /* a dies holding the role */
  int status;
  ck_assert_int_eq(tu_wait(a, 10000, &status), 0);
  ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  close(go);
  tu_assert_rc(kvshm_near_stats_get(kv, &st), KVSHM_OK);
  ck_assert_uint_eq(st.listener_alive, 0);
  ck_assert_uint_eq(st.listener_pid, 0);

  ck_assert_int_eq(kvshm_near_claim(kv), 1);
  ck_assert_int_eq(kvshm_near_claim(kv), 1); /* already ours */
  tu_assert_rc(kvshm_near_stats_get(kv, &st), KVSHM_OK);
  ck_assert_uint_eq(st.listener_starts, 2);
  ck_assert_uint_eq(st.listener_pid, (uint32_t)getpid());
  tu_assert_rc(kvshm_near_release(kv), KVSHM_OK);
  kvshm_close(kv);

  b = start_claimer(name, _i, &got, &go_b);
  ck_assert_int_eq(got, 1); /* released: free again */
  ck_assert_int_eq(write(go_b, "r", 1), 1);
  tu_wait_ok(b, 10000, "third claimer");
  close(go_b);
  kv = open_mode(name, _i);
  finish(kv, name);
}
END_TEST

START_TEST(test_synced_gates_gets) {
  char name[TU_NAME_SIZE], buf[8];
  tu_name(name);
  kvshm *kv = open_mode(name, _i);
  size_t n;
  tu_set_str(kv, "k", "v");
  tu_assert_rc(kvshm_near_get(kv, "k", 1, buf, sizeof buf, &n, NULL, 500, 7),
               KVSHM_ESTALE); /* no listener ever */
  tu_assert_rc(kvshm_near_synced(kv, kvshm_clock_ms()), KVSHM_EINVAL);
  tu_assert_rc(kvshm_near_configure(kv, 7), KVSHM_EINVAL); /* no role */
  ck_assert_int_eq(kvshm_near_claim(kv), 1);
  tu_assert_rc(kvshm_near_get(kv, "k", 1, buf, sizeof buf, &n, NULL, 500, 7),
               KVSHM_ESTALE); /* claimed, not yet in sync */
  tu_assert_rc(kvshm_near_configure(kv, 0), KVSHM_EINVAL);
  tu_assert_rc(kvshm_near_configure(kv, 7), KVSHM_OK);
  ck_assert_uint_eq(kvshm_near_config(kv), 7);
  tu_assert_rc(kvshm_near_synced(kv, kvshm_clock_ms()), KVSHM_OK);
  tu_assert_rc(kvshm_near_get(kv, "k", 1, buf, sizeof buf, &n, NULL, 500, 8),
               KVSHM_ESTALE); /* another configuration: not ours to serve */
  tu_assert_rc(kvshm_near_get(kv, "k", 1, buf, sizeof buf, &n, NULL, 500, 7),
               KVSHM_OK);
  ck_assert(n == 1 && buf[0] == 'v');
  tu_assert_rc(kvshm_near_get(kv, "x", 1, buf, sizeof buf, &n, NULL, 500, 7),
               KVSHM_ENOTFOUND);
  uint64_t now = kvshm_clock_ms();
  tu_assert_rc(kvshm_near_synced(kv, now - 1000), KVSHM_OK);
  tu_assert_rc(kvshm_near_get(kv, "k", 1, buf, sizeof buf, &n, NULL, 500, 7),
               KVSHM_ESTALE); /* too old */
  tu_assert_rc(kvshm_near_get(kv, "k", 1, buf, sizeof buf, &n, NULL, 5000, 7),
               KVSHM_OK);
  tu_assert_rc(kvshm_near_synced(kv, now + 60000), KVSHM_OK);
  tu_assert_rc(kvshm_near_get(kv, "k", 1, buf, sizeof buf, &n, NULL, 500, 7),
               KVSHM_ESTALE); /* in the future: proves nothing */
  tu_assert_rc(kvshm_near_synced(kv, kvshm_clock_ms()), KVSHM_OK);
  kvshm_near_stats st;
  tu_assert_rc(kvshm_near_stats_get(kv, &st), KVSHM_OK);
  ck_assert_uint_eq(st.near_hits, 2);
  ck_assert_int_ge(st.lag_ms, 0);
  ck_assert_int_lt(st.lag_ms, 1000);
  tu_assert_rc(kvshm_near_release(kv), KVSHM_OK);
  tu_assert_rc(kvshm_near_get(kv, "k", 1, buf, sizeof buf, &n, NULL, 500, 7),
               KVSHM_ESTALE); /* released: out of sync */
  tu_assert_rc(kvshm_near_stats_get(kv, &st), KVSHM_OK);
  ck_assert_int_eq(st.lag_ms, -1);
  tu_assert_rc(kvshm_near_count(kv, KVSHM_NEAR_READS, 3), KVSHM_OK);
  tu_assert_rc(kvshm_near_count(kv, KVSHM_NEAR_REFUSED, 1), KVSHM_OK);
  tu_assert_rc(kvshm_near_count(kv, 99, 1), KVSHM_EINVAL);
  tu_assert_rc(kvshm_near_stats_get(kv, &st), KVSHM_OK);
  ck_assert_uint_eq(st.redis_reads, 3);
  ck_assert_uint_eq(st.refused, 1);
  finish(kv, name);
}
END_TEST

START_TEST(test_delay_quantiles) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  kvshm *kv = open_mode(name, _i);
  kvshm_near_stats st;
  tu_assert_rc(kvshm_near_stats_get(kv, &st), KVSHM_OK);
  ck_assert_uint_eq(st.delays, 0);
  ck_assert_uint_eq(st.delay_p50_us, 0);
  for (int i = 0; i < 98; i++)
    tu_assert_rc(kvshm_near_delay(kv, 1000), KVSHM_OK);
  tu_assert_rc(kvshm_near_delay(kv, 100000), KVSHM_OK);
  tu_assert_rc(kvshm_near_delay(kv, 100000), KVSHM_OK);
  tu_assert_rc(kvshm_near_stats_get(kv, &st), KVSHM_OK);
  ck_assert_uint_eq(st.delays, 100);
  ck_assert_uint_ge(st.delay_p50_us, 1000);
  ck_assert_uint_le(st.delay_p50_us, 1250);
  ck_assert_uint_ge(st.delay_p99_us, 100000);
  ck_assert_uint_le(st.delay_p99_us, 125000);
  ck_assert_uint_eq(st.delay_max_us, st.delay_p99_us);
  tu_assert_rc(kvshm_near_delay(kv, UINT64_MAX), KVSHM_OK); /* clamped */
  tu_assert_rc(kvshm_near_delay(kv, 0), KVSHM_OK);
  tu_assert_rc(kvshm_near_stats_get(kv, &st), KVSHM_OK);
  ck_assert_uint_eq(st.delays, 102);
  ck_assert_uint_eq(st.delay_max_us, (1ull << 33) - 1);
  finish(kv, name);
}
END_TEST

START_TEST(test_damaged_lock) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  kvshm *kv = open_mode(name, _i);
  uint32_t junk[4] = {0xdeadbeef, 0xdeadbeef, 0xdeadbeef, 0xdeadbeef};
  tu_poke(name, offsetof(struct kvshm_hdr, near.lock), junk, sizeof junk);
  char report[2048];
  ck_assert_int_gt(tu_verify_capture(kv, report, sizeof report), 0);
  ck_assert_msg(strstr(report, "near-cache listener lock"), "%s", report);
  ck_assert_int_eq(kvshm_near_claim(kv), 1);
  tu_assert_rc(kvshm_near_release(kv), KVSHM_OK);
  finish(kv, name);
}
END_TEST

static Suite *near_suite(void) {
  Suite *s = suite_create("near");
  TCase *tc = tu_tcase("near", 240);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_loop_test(tc, test_epoch_fences_fill, MEMORY_ONLY, PERSISTENT + 1);
  tcase_add_loop_test(tc, test_invalidate_tiers, MEMORY_ONLY, PERSISTENT + 1);
  tcase_add_loop_test(tc, test_fill_race, MEMORY_ONLY, PERSISTENT + 1);
  tcase_add_loop_test(tc, test_election, MEMORY_ONLY, PERSISTENT + 1);
  tcase_add_loop_test(tc, test_synced_gates_gets, MEMORY_ONLY, PERSISTENT + 1);
  tcase_add_loop_test(tc, test_delay_quantiles, MEMORY_ONLY, PERSISTENT + 1);
  tcase_add_loop_test(tc, test_damaged_lock, MEMORY_ONLY, PERSISTENT + 1);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  Suite *s = near_suite();
  return tu_run_suites(&s, 1);
}
