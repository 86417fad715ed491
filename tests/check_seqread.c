/*
 * check_seqread.c - gets without the stripe lock (seqread.c, issue 12),
 * each in the three modes:
 *
 *   change_while_looking  a write to the stripe between a lock-free get's
 *                         look and its check makes it look again: it
 *                         returns what the stripe holds after the write
 *   dead_holder           a writer SIGKILLed mid-write leaves the stripe's
 *                         word odd: gets take the lock, which repairs the
 *                         stripe, and are lock-free again after
 *   counts_exact          hits and misses of lock-free gets, from two
 *                         processes at once, are counted exactly; peeks
 *                         count nothing
 *   expired_takes_lock    an expired entry is removed (by the lock's get),
 *                         not served
 *
 * The torn, damaged and racing reads of check_concurrency, check_crash,
 * check_damage and check_corrupt go through this path too.
 */
#include "testutil.h"

#include "layout.h" /* struct kvshm_stripe's seq */

#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/wait.h>

static char dir[TU_DIR_SIZE];

static void setup(void) {
  tu_dir_make(dir, "seqread");
}

static void teardown(void) {
  tu_dir_remove(dir);
}

enum { MEMORY_ONLY = TU_MEMORY_ONLY, PERSISTENT = TU_PERSISTENT };

static kvshm *open_mode(const char *name, int mode) {
  return tu_open_mode(name, mode, dir, "s.db");
}

static uint32_t stripe_seq(const char *name, kvshm *kv, const char *key) {
  uint32_t s = kvshm_test_stripe_of(kv, key, strlen(key));
  return tu_peek32(name, KVSHM_HDR_SIZE + (uint64_t)s * KVSHM_STRIPE_SIZE +
                             offsetof(struct kvshm_stripe, seq));
}

/* The race run at a get's first look, through another handle. */
static struct race {
  kvshm *other;
  int what;
  int looks;
  char key[32];
} race;
enum { R_SET, R_DEL, R_NEIGHBOUR, R_CLEAR, R_PREFIX };

static void on_look(kvshm *kv, kvshm_test_point p, void *ctx) {
  (void)kv;
  (void)ctx;
  if (p != KVSHM_TP_SEQ_LOOKED || race.looks++)
    return;
  kvshm *o = race.other;
  switch (race.what) {
  case R_SET:
    tu_assert_rc(kvshm_set(o, "k", 1, "v2", 2, 0, 0, 0), KVSHM_OK);
    break;
  case R_DEL:
    tu_assert_rc(kvshm_del(o, "k", 1), KVSHM_OK);
    break;
  case R_NEIGHBOUR:
    tu_assert_rc(kvshm_set(o, race.key, strlen(race.key), "x", 1, 0, 0, 0),
                 KVSHM_OK);
    break;
  case R_CLEAR:
    tu_assert_rc(kvshm_clear(o), KVSHM_OK);
    break;
  case R_PREFIX:
    tu_assert_rc(kvshm_clear_prefix(o, "k", 1), KVSHM_OK);
    break;
  }
}

START_TEST(test_change_while_looking) {
  char name[TU_NAME_SIZE], buf[8];
  tu_name(name);
  kvshm *a = open_mode(name, _i), *b = open_mode(name, _i);
  for (int what = R_SET; what <= R_PREFIX; what++) {
    tu_assert_rc(kvshm_set(a, "k", 1, "v1", 2, 0, 0, 0), KVSHM_OK);
    tu_assert_value(a, "k", 1, "v1", 2); /* LFU settled: lock-free next */
    race = (struct race){b, what, 0, ""};
    tu_stripe_neighbour(a, "k", race.key);
    kvshm_test_set_hook(a, on_look, NULL);
    size_t len = 0;
    int rc = tu_get(a, "k", 1, buf, sizeof buf, &len);
    kvshm_test_set_hook(a, NULL, NULL);
    ck_assert_int_ge(race.looks, 1);
    switch (what) {
    case R_SET: /* the stripe moved: looked again, found the new value */
      ck_assert_int_eq(race.looks, 2);
      tu_assert_rc(rc, KVSHM_OK);
      ck_assert(len == 2 && memcmp(buf, "v2", 2) == 0);
      break;
    case R_DEL:
      ck_assert_int_eq(race.looks, 2);
      tu_assert_rc(rc, KVSHM_ENOTFOUND);
      break;
    case R_NEIGHBOUR: /* moved, though not this key: looked again */
      ck_assert_int_eq(race.looks, 2);
      tu_assert_rc(rc, KVSHM_OK);
      ck_assert(len == 2 && memcmp(buf, "v1", 2) == 0);
      break;
    default: /* a clear moves no stripe word (each stripe catches up at its
                next lock): the get overlapped it, and may return either;
                the next get must not find the key */
      ck_assert(rc == KVSHM_OK || rc == KVSHM_ENOTFOUND);
      tu_assert_rc(tu_get(a, "k", 1, buf, sizeof buf, NULL), KVSHM_ENOTFOUND);
      tu_assert_rc(tu_get(b, "k", 1, buf, sizeof buf, NULL), KVSHM_ENOTFOUND);
      break;
    }
  }
  kvshm_close(a);
  kvshm_close(b);
  kvshm_unlink(name);
}
END_TEST

static void count_looks(kvshm *kv, kvshm_test_point p, void *ctx) {
  (void)kv;
  if (p == KVSHM_TP_SEQ_LOOKED)
    (*(int *)ctx)++;
}

START_TEST(test_dead_holder) {
  char name[TU_NAME_SIZE], other[32], buf[8];
  tu_name(name);
  tu_gate gate; /* SQLite: fork before opening */
  tu_gate_init(&gate);
  pid_t pid = tu_fork();
  if (pid == 0) {
    tu_gate_wait(&gate);
    kvshm *c = open_mode(name, _i);
    tu_stripe_neighbour(c, "k", other);
    kvshm_test_set_hook(c, tu_die_half_written, NULL);
    kvshm_set(c, other, strlen(other), "dead", 4, 0, 0, 0);
    _exit(TU_CHILD_FAILED); /* the hook kills it first */
  }
  kvshm *kv = open_mode(name, _i);
  tu_assert_rc(kvshm_set(kv, "k", 1, "v1", 2, 0, 0, 0), KVSHM_OK);
  tu_stripe_neighbour(kv, "k", other);
  ck_assert_int_eq(stripe_seq(name, kv, "k") & 1, 0);
  uint64_t repairs = tu_stats(kv).repairs; /* (stats locks every stripe) */
  tu_gate_open(&gate, 1);
  int st;
  ck_assert_int_eq(tu_wait(pid, 20000, &st), 0);
  ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  /* The holder died mid-write: the word stays odd, no lock-free get
   * trusts the stripe, and the first locker repairs it. */
  ck_assert_int_eq(stripe_seq(name, kv, "k") & 1, 1);
  int looks = 0;
  kvshm_test_set_hook(kv, count_looks, &looks);
  tu_assert_value(kv, "k", 1, "v1", 2);
  ck_assert_int_eq(looks, 0); /* never looked: the word was odd each time */
  ck_assert_uint_eq(tu_stats(kv).repairs, repairs + 1);
  ck_assert_int_eq(stripe_seq(name, kv, "k") & 1, 0);
  tu_assert_rc(tu_get(kv, other, strlen(other), buf, sizeof buf, NULL),
               KVSHM_ENOTFOUND); /* the half-written entry is gone */
  tu_assert_value(kv, "k", 1, "v1", 2);
  ck_assert_int_ge(looks, 1); /* lock-free again */
  kvshm_test_set_hook(kv, NULL, NULL);
  ck_assert_int_eq(tu_verify(kv), KVSHM_OK);
  kvshm_close(kv);
  kvshm_unlink(name);
}
END_TEST

#define HITS 3000
#define MISSES 1000

START_TEST(test_counts_exact) {
  char name[TU_NAME_SIZE], key[32], buf[16];
  tu_name(name);
  tu_gate gate; /* SQLite: fork before opening */
  tu_gate_init(&gate);
  pid_t pids[2];
  for (int p = 0; p < 2; p++) {
    if ((pids[p] = tu_fork()) == 0) {
      tu_gate_wait(&gate);
      kvshm *c = open_mode(name, _i);
      for (int i = 0; i < HITS; i++) {
        snprintf(key, sizeof key, "hit%d", i % 100);
        TU_CHILD_RC(kvshm_get(c, key, strlen(key), buf, sizeof buf, NULL, NULL),
                    KVSHM_OK);
      }
      for (int i = 0; i < MISSES; i++) {
        snprintf(key, sizeof key, "miss%d", i % 10);
        TU_CHILD_RC(kvshm_get(c, key, strlen(key), buf, sizeof buf, NULL, NULL),
                    KVSHM_ENOTFOUND);
      }
      for (int i = 0; i < 100; i++) /* peeks count nothing */
        TU_CHILD_RC(kvshm_get_ex(c, "hit1", 4, buf, sizeof buf, NULL, NULL,
                                 NULL, KVSHM_PEEK),
                    KVSHM_OK);
      kvshm_close(c);
      _exit(0);
    }
  }
  kvshm *kv = open_mode(name, _i);
  for (int i = 0; i < 100; i++) {
    snprintf(key, sizeof key, "hit%d", i);
    tu_set_str(kv, key, "value");
  }
  kvshm_stats before = tu_stats(kv);
  tu_gate_open(&gate, 2);
  for (int p = 0; p < 2; p++)
    tu_wait_ok(pids[p], 60000, "getter");
  kvshm_stats after = tu_stats(kv);
  ck_assert_uint_eq(after.hits - before.hits, 2 * HITS);
  ck_assert_uint_eq(after.misses - before.misses, 2 * MISSES);
  kvshm_close(kv);
  kvshm_unlink(name);
}
END_TEST

START_TEST(test_expired_takes_lock) {
  char name[TU_NAME_SIZE], buf[8];
  tu_name(name);
  kvshm *kv = open_mode(name, _i);
  tu_clock clk;
  tu_clock_attach(kv, &clk, TU_T0);
  tu_assert_rc(kvshm_set(kv, "t", 1, "v", 1, 0, 1000, 0), KVSHM_OK);
  tu_assert_value(kv, "t", 1, "v", 1);
  uint64_t exp = tu_stats(kv).expirations;
  clk.now_ms += 1001;
  tu_assert_rc(tu_get(kv, "t", 1, buf, sizeof buf, NULL), KVSHM_ENOTFOUND);
  ck_assert_uint_eq(tu_stats(kv).expirations, exp + 1);
  tu_assert_rc(kvshm_in_memory(kv, "t", 1), KVSHM_ENOTFOUND);
  kvshm_close(kv);
  kvshm_unlink(name);
}
END_TEST

static Suite *seqread_suite(void) {
  Suite *s = suite_create("seqread");
  TCase *tc = tu_tcase("seqread", 120);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_loop_test(tc, test_change_while_looking, MEMORY_ONLY,
                      PERSISTENT + 1);
  tcase_add_loop_test(tc, test_dead_holder, MEMORY_ONLY, PERSISTENT + 1);
  tcase_add_loop_test(tc, test_counts_exact, MEMORY_ONLY, PERSISTENT + 1);
  tcase_add_loop_test(tc, test_expired_takes_lock, MEMORY_ONLY, PERSISTENT + 1);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  Suite *s = seqread_suite();
  return tu_run_suites(&s, 1);
}
