/*
 * check_seqread_hostile.c - lock-free gets (seqread.c) and home slots
 * (table.c take_home_locked) under attack, from a hostile review:
 *
 *   seq_scribbled       a stripe's sequence word forced odd, or to its
 *                       largest value, with no holder: gets still work and
 *                       the next holder heals it
 *
 *   random_ops_verify   random sets (1..3 slots), deletes, prefix clears,
 *                       clears and expiries on a small memory-only cache,
 *                       verify after every few operations; a get returns
 *                       the last value set or nothing, never another
 *   no_stale_after_op   one process sets/deletes/clears a key in rounds and
 *                       publishes each round once its call returned; gets
 *                       in another process that start after the publish
 *                       never see an older round
 *   kill_then_verify    a writer SIGKILLed at random instants: the next
 *                       opener's verify finds nothing (repair rebuilt what
 *                       the dead holder left, back links included)
 */
#include "testutil.h"

#include "layout.h"

#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>

/* ---- seq_scribbled -------------------------------------------------------
 * Another process leaves a stripe's sequence word odd (or at its largest
 * value) with nobody holding the lock: gets still answer (through the
 * lock), and the next holder makes the word even again. */

START_TEST(test_seq_scribbled) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  kvshm_config c;
  tu_config(&c, 1u << 20, 0, 4);
  kvshm *kv = tu_open(name, &c);
  tu_set_str(kv, "k", "value");
  uint32_t s = kvshm_test_stripe_of(kv, "k", 1);
  uint64_t off = KVSHM_HDR_SIZE + (uint64_t)s * KVSHM_STRIPE_SIZE +
                 offsetof(struct kvshm_stripe, seq);
  uint32_t odd[] = {1, 0xffffffffu, 0x80000001u};
  for (unsigned i = 0; i < 3; i++) {
    tu_poke32(name, off, odd[i]);
    for (int j = 0; j < 3; j++)
      tu_assert_value(kv, "k", 1, "value", 5);
    ck_assert_int_eq(tu_peek32(name, off) & 1, 0);
  }
  ck_assert_int_eq(tu_verify(kv), 0);
  kvshm_close(kv);
  kvshm_unlink(name);
}
END_TEST

/* ---- random_ops_verify -------------------------------------------------- */

#define NKEYS 64

START_TEST(test_random_ops_verify) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  kvshm_config c;
  /* _i: 0 roomy (no eviction), 1 tight (evictions all the time) */
  tu_config(&c, _i ? 64u << 10 : 1u << 20, 64, 2);
  kvshm *kv = tu_open(name, &c);
  kvshm *other = tu_open(name, &c);
  tu_clock clk;
  tu_clock_attach(kv, &clk, TU_T0);
  tu_clock_attach(other, &clk, TU_T0);
  static uint32_t last[NKEYS]; /* seq of the last set, 0 = none */
  memset(last, 0, sizeof last);
  uint64_t r = 12345 + (uint64_t)_i;
  unsigned char val[300], buf[300];
  uint32_t seqno = 0;
  for (int op = 0; op < 20000; op++) {
    uint32_t k = (uint32_t)(tu_rand(&r) % NKEYS);
    char key[16];
    snprintf(key, sizeof key, "%c%u", 'a' + (int)(k % 4), k);
    kvshm *h = tu_rand(&r) & 1 ? kv : other;
    unsigned what = (unsigned)(tu_rand(&r) % 100);
    if (what < 50) {
      size_t len = TU_VAL_MIN + (size_t)(tu_rand(&r) % 200);
      tu_val_make(val, len, k, 1, ++seqno);
      int64_t ttl = tu_rand(&r) % 4 == 0 ? 50 : 0;
      int rc = kvshm_set(h, key, strlen(key), val, len, tu_val_flags(val, len),
                         ttl, 0);
      ck_assert_msg(rc == KVSHM_OK, "set: %s", kvshm_errdetail());
      last[k] = seqno;
    } else if (what < 60) {
      int rc = kvshm_del(h, key, strlen(key));
      ck_assert(rc == KVSHM_OK || rc == KVSHM_ENOTFOUND);
      last[k] = 0;
    } else if (what < 62) {
      char p[2] = {(char)('a' + tu_rand(&r) % 4), 0};
      tu_assert_rc(kvshm_clear_prefix(h, p, 1), KVSHM_OK);
      for (uint32_t j = 0; j < NKEYS; j++)
        if ((char)('a' + (int)(j % 4)) == p[0])
          last[j] = 0;
    } else if (what < 63) {
      tu_assert_rc(kvshm_clear(h), KVSHM_OK);
      memset(last, 0, sizeof last);
    } else if (what < 66) {
      clk.now_ms += 30; /* some TTLs pass */
    } else {
      size_t len = 0;
      uint32_t fl = 0;
      int rc = kvshm_get(h, key, strlen(key), buf, sizeof buf, &len, &fl);
      ck_assert_msg(rc == KVSHM_OK || rc == KVSHM_ENOTFOUND, "get rc %d: %s",
                    rc, kvshm_errdetail());
      if (rc == KVSHM_OK) {
        uint32_t w, sq;
        const char *why;
        ck_assert_msg(tu_val_check(buf, len, fl, k, &w, &sq, &why) == 0,
                      "op %d key %s: bad value: %s", op, key, why);
        /* only the last value set (it may have expired or been evicted) */
        ck_assert_msg(sq == last[k], "op %d key %s: got seq %u, last set %u",
                      op, key, sq, last[k]);
      }
    }
    if (op % 97 == 0) {
      int pr = tu_verify(kv);
      ck_assert_msg(pr == 0, "op %d: verify found %d problem(s)", op, pr);
    }
  }
  ck_assert_int_eq(tu_verify(kv), 0);
  kvshm_close(kv);
  kvshm_close(other);
  kvshm_unlink(name);
}
END_TEST

/* Remove the cache from a child (this process must not open a SQLite
 * cache: it forks). */
static void unlink_in_child(const char *name, const kvshm_config *c) {
  pid_t u = tu_fork();
  if (u == 0) {
    kvshm *kv = NULL;
    TU_CHILD_RC(kvshm_open(name, c, KVSHM_NOREAPER, &kv), KVSHM_OK);
    kvshm_close(kv);
    kvshm_unlink(name);
    _exit(0);
  }
  tu_wait_ok(u, 30000, "unlinker");
}

/* ---- no_stale_after_op -------------------------------------------------- */

#define ROUNDS 3000

enum { OP_DEL, OP_PREFIX, OP_CLEAR, OP_SET };

static char dir[TU_DIR_SIZE];

/* _i: 0 memory-only, 1 SQLite-backed, 2 persistent (fork before opening:
 * both sides are children). */
START_TEST(test_no_stale_after_op) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  tu_dir_make(dir, "hostile");
  kvshm_config c;
  tu_config(&c, 1u << 20, 0, 4);
  c.sqlite_path = _i ? tu_dir_file(dir, "s.db") : NULL;
  c.persistent = _i == 2;
  volatile uint32_t *pub = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ck_assert(pub != MAP_FAILED);
  pub[0] = 0;
  int rounds = _i ? ROUNDS / 10 : ROUNDS;
  static unsigned char vals[ROUNDS + 1][64];
  for (int n = 1; n <= rounds; n++)
    tu_val_make(vals[n], sizeof vals[n], 7, 1, (uint32_t)n);
  tu_gate gate;
  tu_gate_init(&gate);
  pid_t pid = tu_fork();
  if (pid == 0) { /* reader */
    tu_gate_wait(&gate);
    kvshm *rd = NULL;
    TU_CHILD_RC(kvshm_open(name, &c, KVSHM_NOREAPER, &rd), KVSHM_OK);
    unsigned char buf[128];
    uint64_t hits = 0;
    while (__atomic_load_n(&pub[0], __ATOMIC_ACQUIRE) < (uint32_t)rounds) {
      uint32_t done = __atomic_load_n(&pub[0], __ATOMIC_ACQUIRE);
      size_t len = 0;
      uint32_t fl = 0;
      int rc = kvshm_get(rd, "pk", 2, buf, sizeof buf, &len, &fl);
      if (rc != KVSHM_OK && rc != KVSHM_ENOTFOUND) {
        fprintf(stderr, "get: %d %s\n", rc, kvshm_errdetail());
        _exit(TU_CHILD_FAILED);
      }
      if (rc == KVSHM_OK) {
        uint32_t w, sq;
        const char *why;
        TU_CHILD_CHECK(tu_val_check(buf, len, fl, 7, &w, &sq, &why) == 0);
        hits++;
        /* round `done` finished (its value removed) before this get
         * began: only a later round's value may be seen */
        if (sq <= done) {
          fprintf(stderr, "stale: saw round %u after round %u ended\n", sq,
                  done);
          _exit(TU_CHILD_FAILED);
        }
      }
    }
    kvshm_close(rd);
    _exit(hits ? 0 : 3);
  }
  pid_t wp = tu_fork();
  if (wp == 0) { /* writer */
    tu_gate_wait(&gate);
    kvshm *kv = NULL;
    TU_CHILD_RC(kvshm_open(name, &c, KVSHM_NOREAPER, &kv), KVSHM_OK);
    for (uint32_t n = 1; n <= (uint32_t)rounds; n++) {
      TU_CHILD_RC(kvshm_set(kv, "pk", 2, vals[n], sizeof vals[n],
                            tu_val_flags(vals[n], sizeof vals[n]), 0, 0),
                  KVSHM_OK);
      for (int i = 0; i < 3; i++) /* let the reader find it */
        sched_yield();
      if (_i)
        usleep(300);
      switch (n % 3) {
      case OP_DEL:
        TU_CHILD_RC(kvshm_del(kv, "pk", 2), KVSHM_OK);
        break;
      case OP_PREFIX:
        TU_CHILD_RC(kvshm_clear_prefix(kv, "p", 1), KVSHM_OK);
        break;
      case OP_CLEAR:
        TU_CHILD_RC(kvshm_clear(kv), KVSHM_OK);
        break;
      }
      __atomic_store_n(&pub[0], n, __ATOMIC_RELEASE);
    }
    kvshm_close(kv);
    _exit(0);
  }
  tu_gate_open(&gate, 2);
  tu_wait_ok(wp, 90000, "writer");
  tu_wait_ok(pid, 90000, "reader");
  unlink_in_child(name, &c);
  munmap((void *)pub, 4096);
  tu_dir_remove(dir);
}
END_TEST

/* ---- kill_then_verify --------------------------------------------------- */

/* _i: 0 memory-only, 1 SQLite-backed, 2 persistent.  Every handle is
 * opened in a child of its own (SQLite: fork before opening). */
static void verify_child(const char *name, const kvshm_config *c, int round) {
  kvshm *kv = NULL;
  TU_CHILD_RC(kvshm_open(name, c, KVSHM_NOREAPER, &kv), KVSHM_OK);
  char report[4000] = "";
  int pr = tu_verify_capture(kv, report, sizeof report);
  if (pr) {
    fprintf(stderr, "round %d: verify after a kill: %s\n", round, report);
    _exit(TU_CHILD_FAILED);
  }
  unsigned char buf[400];
  for (uint32_t k = 0; k < 200; k++) {
    char key[64];
    snprintf(key, sizeof key,
             k % 5 ? "k%u" : "k%u-a-key-too-long-for-a-head-slot", k);
    size_t len = 0;
    uint32_t fl = 0, wr, sq;
    const char *why;
    int rc = kvshm_get(kv, key, strlen(key), buf, sizeof buf, &len, &fl);
    if (rc != KVSHM_OK && rc != KVSHM_ENOTFOUND) {
      fprintf(stderr, "round %d: get %s: %d %s\n", round, key, rc,
              kvshm_errdetail());
      _exit(TU_CHILD_FAILED);
    }
    if (rc == KVSHM_OK && tu_val_check(buf, len, fl, k, &wr, &sq, &why)) {
      fprintf(stderr, "round %d: %s: %s\n", round, key, why);
      _exit(TU_CHILD_FAILED);
    }
  }
  kvshm_close(kv);
  _exit(0);
}

START_TEST(test_kill_then_verify) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  tu_dir_make(dir, "hostile");
  kvshm_config c;
  tu_config(&c, 128u << 10, 64, _i ? 2 : 1); /* few stripes: kills hit */
  c.sqlite_path = _i ? tu_dir_file(dir, "s.db") : NULL;
  c.persistent = _i == 2;
  /* Values made here: a passing ck_assert in a child (tu_val_make's)
   * writes to Check's stream, and a SIGKILL mid-write garbles it. */
  static unsigned char vals[200][400];
  static size_t vlens[200];
  for (uint32_t k = 0; k < 200; k++) {
    vlens[k] = TU_VAL_MIN + (k * 37) % 300;
    tu_val_make(vals[k], vlens[k], k, 2, k);
  }
  uint64_t r = 99;
  for (int round = 0; round < 40; round++) {
    pid_t pid = tu_fork();
    if (pid == 0) {
      kvshm *w = NULL;
      TU_CHILD_RC(kvshm_open(name, &c, KVSHM_NOREAPER, &w), KVSHM_OK);
      uint64_t rr = (uint64_t)getpid();
      for (;;) {
        uint32_t k = (uint32_t)(tu_rand(&rr) % 200);
        char key[64];
        snprintf(key, sizeof key,
                 k % 5 ? "k%u" : "k%u-a-key-too-long-for-a-head-slot", k);
        unsigned what = (unsigned)(tu_rand(&rr) % 10);
        if (what < 6) {
          kvshm_set(w, key, strlen(key), vals[k], vlens[k],
                    tu_val_flags(vals[k], vlens[k]), 0, 0);
        } else if (what < 9) {
          kvshm_del(w, key, strlen(key));
        } else {
          kvshm_clear_prefix(w, "k1", 2);
        }
      }
    }
    tu_sleep_ms(5 + (unsigned)(tu_rand(&r) % 30));
    kill(pid, SIGKILL);
    int st;
    ck_assert_int_eq(tu_wait(pid, 10000, &st), 0);
    pid_t v = tu_fork();
    if (v == 0)
      verify_child(name, &c, round);
    tu_wait_ok(v, 30000, "verifier");
  }
  unlink_in_child(name, &c);
  tu_dir_remove(dir);
}
END_TEST

static Suite *hostile_suite(void) {
  Suite *s = suite_create("seqread_hostile");
  TCase *tc = tu_tcase("hostile", 240);
  tcase_add_test(tc, test_seq_scribbled);
  tcase_add_loop_test(tc, test_random_ops_verify, 0, 2);
  tcase_add_loop_test(tc, test_no_stale_after_op, 0, 3);
  tcase_add_loop_test(tc, test_kill_then_verify, 0, 3);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  Suite *s = hostile_suite();
  return tu_run_suites(&s, 1);
}
