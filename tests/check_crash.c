/*
 * check_crash.c - processes killed with SIGKILL while they hold a stripe
 * lock.  A child sets a test hook (kvshm_test.h) that kills it at a chosen
 * point inside a set, delete, incr, eviction or repair; the parent then
 * reads: the key holds exactly its old or its new value (never torn, never
 * an error), every other key is untouched, the stripe was repaired exactly
 * once, and kvshm_verify() finds nothing.  A last test hammers one stripe
 * from several processes while another is killed from outside at random
 * instants.  Watchdogs turn a deadlock into a failure, not a hang.
 */
#include "testutil.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#define KILL_WAIT_MS 10000u
#define MAXVAL 1400

static const char *point_name(kvshm_test_point p) {
  switch (p) {
  case KVSHM_TP_SET_ALLOCATED:
    return "SET_ALLOCATED";
  case KVSHM_TP_SET_HALF_WRITTEN:
    return "SET_HALF_WRITTEN";
  case KVSHM_TP_SET_BEFORE_COMMIT:
    return "SET_BEFORE_COMMIT";
  case KVSHM_TP_SET_COMMITTED:
    return "SET_COMMITTED";
  case KVSHM_TP_SET_LINKED:
    return "SET_LINKED";
  case KVSHM_TP_FREE_HALF:
    return "FREE_HALF";
  case KVSHM_TP_REPAIR_HALF:
    return "REPAIR_HALF";
  case KVSHM_TP_EVICTING:
    return "EVICTING";
  case KVSHM_TP_CLEAR_STEPPED:
    return "CLEAR_STEPPED";
  case KVSHM_TP_PCLEAR_MARKING:
    return "PCLEAR_MARKING";
  case KVSHM_TP_SEQ_LOOKED:
    return "SEQ_LOOKED";
  }
  return "?";
}

/* One stripe of ~344 slots of 160 bytes. */
static kvshm *open_crash_cache(char name[TU_NAME_SIZE], uint64_t memory) {
  tu_name(name);
  kvshm_config c;
  tu_config(&c, memory, 160, 1);
  return tu_open(name, &c);
}

/* ---- the model: what each key must hold -------------------------------- */

struct entry {
  char key[320];
  size_t klen;
  unsigned char val[MAXVAL];
  size_t vlen;
  uint32_t flags;
  int present;
};

static void entry_make(struct entry *e, uint64_t seed, size_t vlen) {
  ck_assert_uint_le(vlen, MAXVAL);
  e->vlen = vlen;
  e->flags = (uint32_t)seed;
  tu_fill(e->val, vlen, seed);
}

static void entry_key(struct entry *e, const char *key, size_t pad_to) {
  size_t n = strlen(key);
  ck_assert_uint_lt(pad_to, sizeof e->key);
  memset(e->key, '#', sizeof e->key);
  memcpy(e->key, key, n);
  e->klen = n > pad_to ? n : pad_to;
}

static void entry_store(kvshm *kv, struct entry *e) {
  tu_assert_rc(kvshm_set(kv, e->key, e->klen, e->val, e->vlen, e->flags, 0, 0),
               KVSHM_OK);
  e->present = 1;
}

/* Read key and classify: 0 absent, 1 equals a, 2 equals b; fail otherwise. */
static int read_as(kvshm *kv, const struct entry *a, const struct entry *b,
                   const char *when) {
  static unsigned char buf[MAXVAL + 1];
  size_t n = 0;
  uint32_t fl = 0;
  int rc = kvshm_get(kv, a->key, a->klen, buf, sizeof buf, &n, &fl);
  if (rc == KVSHM_ENOTFOUND)
    return 0;
  ck_assert_msg(rc == KVSHM_OK, "%s: get = %d (%s): %s", when, rc,
                kvshm_err_name(rc), kvshm_errdetail());
  if (a->present && n == a->vlen && fl == a->flags &&
      memcmp(buf, a->val, n) == 0)
    return 1;
  if (b && b->present && n == b->vlen && fl == b->flags &&
      memcmp(buf, b->val, n) == 0)
    return 2;
  ck_assert_msg(0,
                "%s: key holds %zu bytes (flags %u) that are neither the "
                "old nor the new value",
                when, n, fl);
  return -1;
}

/* Every bystander holds exactly its value (or, if may_vanish, nothing). */
static void check_bystanders(kvshm *kv, struct entry *by, int n, int may_vanish,
                             const char *when) {
  for (int i = 0; i < n; i++) {
    if (!by[i].present)
      continue;
    int r = read_as(kv, &by[i], NULL, when);
    ck_assert_msg(r == 1 || may_vanish, "%s: bystander %d is gone", when, i);
    by[i].present = r == 1;
  }
}

/* ---- killing a child at a test point ------------------------------------- */

enum op_kind { OP_SET, OP_DEL, OP_INCR, OP_GET };

struct kill_plan {
  kvshm_test_point point;
  int nth; /* die at the nth time the point is reached */
  int seen;
};

static void kill_hook(kvshm *kv, kvshm_test_point p, void *ctx) {
  (void)kv;
  struct kill_plan *k = ctx;
  if (p == k->point && ++k->seen == k->nth)
    raise(SIGKILL);
}

static int kills; /* children killed in this test process */

/*
 * Fork a child that opens the cache and runs one operation with a hook that
 * SIGKILLs it the nth time it reaches `point`; assert it died there.
 */
static void kill_during(const char *name, kvshm_test_point point, int nth,
                        enum op_kind op, const struct entry *e) {
  pid_t pid = tu_fork();
  if (pid == 0) {
    kvshm *kv;
    TU_CHILD_RC(kvshm_open(name, NULL, KVSHM_NOREAPER, &kv), KVSHM_OK);
    struct kill_plan k = {point, nth, 0};
    kvshm_test_set_hook(kv, kill_hook, &k);
    int rc = KVSHM_OK;
    if (op == OP_SET)
      rc = kvshm_set(kv, e->key, e->klen, e->val, e->vlen, e->flags, 0, 0);
    else if (op == OP_DEL)
      rc = kvshm_del(kv, e->key, e->klen);
    else if (op == OP_INCR)
      rc = kvshm_incr(kv, e->key, e->klen, 1, 0, NULL);
    else
      rc = kvshm_get(kv, e->key, e->klen, NULL, 0, NULL, NULL);
    fprintf(stderr,
            "child: operation %d returned %d (%s) without reaching "
            "%s #%d\n",
            (int)op, rc, kvshm_err_name(rc), point_name(point), nth);
    _exit(3);
  }
  int status = 0;
  char buf[128];
  ck_assert_msg(tu_wait(pid, KILL_WAIT_MS, &status) == 0,
                "child to be "
                "killed at %s hung (deadlock?)",
                point_name(point));
  ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                "child to be killed at %s #%d %s", point_name(point), nth,
                tu_status_str(status, buf, sizeof buf));
  kills++;
}

static uint64_t repairs(kvshm *kv) {
  return tu_stats(kv).repairs;
}

static void check_repaired(kvshm *kv, uint64_t before, const char *when) {
  ck_assert_msg(repairs(kv) == before + 1,
                "%s: repairs went from %llu to "
                "%llu, expected exactly one more",
                when, (unsigned long long)before,
                (unsigned long long)repairs(kv));
  ck_assert_msg(tu_verify(kv) == 0, "%s: verify found problems", when);
}

#define NBY 12

static void setup_bystanders(kvshm *kv, struct entry *by, int n,
                             uint64_t seed0) {
  for (int i = 0; i < n; i++) {
    char key[16];
    snprintf(key, sizeof key, "by%03d", i);
    entry_key(&by[i], key, 0);
    entry_make(&by[i], seed0 + (uint64_t)i, 100);
    entry_store(kv, &by[i]);
  }
}

/* ---- sets, overwrites, deletes, incrs -------------------------------------
 */

START_TEST(overwrite_killed_at_every_point) {
  char name[TU_NAME_SIZE];
  kvshm *kv = open_crash_cache(name, 64 * 1024);
  static struct entry by[NBY], cur, next;
  setup_bystanders(kv, by, NBY, 1000);
  const kvshm_test_point pts[] = {
      KVSHM_TP_SET_ALLOCATED,     KVSHM_TP_SET_HALF_WRITTEN,
      KVSHM_TP_SET_BEFORE_COMMIT, KVSHM_TP_SET_COMMITTED,
      KVSHM_TP_SET_LINKED,        KVSHM_TP_FREE_HALF};
  uint64_t rng = 7;
  int seen_old = 0, seen_new = 0;
  tu_watchdog(60, "overwrite_killed_at_every_point (parent)");
  for (int round = 0; round < 15; round++) {
    /* Short keys, and keys that span two or three slots. */
    entry_key(&cur, round % 3 == 2 ? "long-target" : "target",
              round % 3 == 2 ? 300 : 0);
    entry_make(&cur, 50000 + (uint64_t)round, 200 + tu_rand(&rng) % 900);
    entry_store(kv, &cur);
    next = cur;
    for (size_t p = 0; p < sizeof pts / sizeof pts[0]; p++) {
      char when[96];
      snprintf(when, sizeof when, "round %d, killed at %s", round,
               point_name(pts[p]));
      entry_make(&next, (uint64_t)round * 100 + p + 1,
                 1 + tu_rand(&rng) % MAXVAL);
      next.present = 1;
      uint64_t before = repairs(kv);
      kill_during(name, pts[p], 1, OP_SET, &next);
      int r = read_as(kv, &cur, &next, when);
      ck_assert_msg(r != 0, "%s: the key vanished", when);
      if (r == 1) {
        seen_old++;
      } else {
        seen_new++;
        cur = next;
      }
      check_bystanders(kv, by, NBY, 0, when);
      check_repaired(kv, before, when);
    }
  }
  tu_watchdog(0, NULL);
  /* Both outcomes happen: before the commit the old value must stay. */
  ck_assert_int_gt(seen_old, 0);
  ck_assert_int_gt(seen_new, 0);
  ck_assert_int_eq(kills, 15 * 6);
  kvshm_close(kv);
  kvshm_unlink(name);
}
END_TEST

START_TEST(new_key_killed_at_every_point) {
  char name[TU_NAME_SIZE];
  kvshm *kv = open_crash_cache(name, 64 * 1024);
  static struct entry by[NBY], fresh;
  setup_bystanders(kv, by, NBY, 2000);
  const kvshm_test_point pts[] = {
      KVSHM_TP_SET_ALLOCATED, KVSHM_TP_SET_HALF_WRITTEN,
      KVSHM_TP_SET_BEFORE_COMMIT, KVSHM_TP_SET_COMMITTED};
  tu_watchdog(60, "new_key_killed_at_every_point (parent)");
  for (int round = 0; round < 8; round++) {
    for (size_t p = 0; p < sizeof pts / sizeof pts[0]; p++) {
      char when[96], key[32];
      snprintf(when, sizeof when, "round %d, new key killed at %s", round,
               point_name(pts[p]));
      snprintf(key, sizeof key, "new-%d-%zu", round, p);
      entry_key(&fresh, key, round % 2 ? 250 : 0);
      entry_make(&fresh, 3000 + (uint64_t)round * 10 + p, 150 + 97 * p);
      fresh.present = 1;
      uint64_t before = repairs(kv);
      kill_during(name, pts[p], 1, OP_SET, &fresh);
      int r = read_as(kv, &fresh, NULL, when); /* absent, or all of it */
      if (r == 1)
        tu_assert_rc(kvshm_del(kv, fresh.key, fresh.klen), KVSHM_OK);
      check_bystanders(kv, by, NBY, 0, when);
      check_repaired(kv, before, when);
    }
  }
  tu_watchdog(0, NULL);
  ck_assert_int_eq(kills, 8 * 4);
  kvshm_close(kv);
  kvshm_unlink(name);
}
END_TEST

START_TEST(delete_and_incr_killed) {
  char name[TU_NAME_SIZE];
  kvshm *kv = open_crash_cache(name, 64 * 1024);
  static struct entry by[NBY], cur;
  setup_bystanders(kv, by, NBY, 4000);
  tu_watchdog(60, "delete_and_incr_killed (parent)");
  /* Deletes of multi-slot entries, killed with the head freed and the
   * chain not yet. */
  for (int round = 0; round < 15; round++) {
    char when[64];
    snprintf(when, sizeof when, "delete round %d", round);
    entry_key(&cur, "victim", round % 2 ? 200 : 0);
    entry_make(&cur, 5000 + (uint64_t)round, 300 + 60 * (size_t)round);
    entry_store(kv, &cur);
    uint64_t before = repairs(kv);
    kill_during(name, KVSHM_TP_FREE_HALF, 1, OP_DEL, &cur);
    read_as(kv, &cur, NULL, when); /* absent or intact */
    check_bystanders(kv, by, NBY, 0, when);
    check_repaired(kv, before, when);
  }
  /* Increments at every point of their write: the counter is n or n+1. */
  const kvshm_test_point pts[] = {
      KVSHM_TP_SET_ALLOCATED,     KVSHM_TP_SET_HALF_WRITTEN,
      KVSHM_TP_SET_BEFORE_COMMIT, KVSHM_TP_SET_COMMITTED,
      KVSHM_TP_SET_LINKED,        KVSHM_TP_FREE_HALF};
  struct entry ctr;
  entry_key(&ctr, "counter", 0);
  int64_t n = 0;
  tu_assert_rc(kvshm_incr(kv, ctr.key, ctr.klen, 0, 0, &n), KVSHM_OK);
  for (int round = 0; round < 5; round++) {
    for (size_t p = 0; p < sizeof pts / sizeof pts[0]; p++) {
      char when[64];
      snprintf(when, sizeof when, "incr round %d at %s", round,
               point_name(pts[p]));
      uint64_t before = repairs(kv);
      kill_during(name, pts[p], 1, OP_INCR, &ctr);
      int64_t now = -1;
      tu_assert_rc(kvshm_incr(kv, ctr.key, ctr.klen, 0, 0, &now), KVSHM_OK);
      ck_assert_msg(now == n || now == n + 1,
                    "%s: counter %lld, expected "
                    "%lld or %lld",
                    when, (long long)now, (long long)n, (long long)n + 1);
      n = now;
      check_bystanders(kv, by, NBY, 0, when);
      check_repaired(kv, before, when);
    }
  }
  tu_watchdog(0, NULL);
  ck_assert_int_gt(n, 0);
  ck_assert_int_eq(kills, 15 + 5 * 6);
  kvshm_close(kv);
  kvshm_unlink(name);
}
END_TEST

/* ---- eviction -------------------------------------------------------------
 */

#define NFILL 400

START_TEST(eviction_killed) {
  char name[TU_NAME_SIZE];
  kvshm *kv = open_crash_cache(name, 64 * 1024);
  static struct entry fill[NFILL], cur, next;
  const int cap = (int)tu_stats(kv).slots_per_stripe;
  entry_key(&cur, "evicting-writer", 0);
  entry_make(&cur, 1, 600);
  entry_store(kv, &cur);
  int nfill = 0;
  const struct {
    kvshm_test_point p;
    int nth;
  } plan[] = {{KVSHM_TP_EVICTING, 1},
              {KVSHM_TP_EVICTING, 2},
              {KVSHM_TP_EVICTING, 4},
              {KVSHM_TP_FREE_HALF, 1}, /* inside the first eviction */
              {KVSHM_TP_FREE_HALF, 3}};
  tu_watchdog(60, "eviction_killed (parent)");
  for (int round = 0; round < 7; round++) {
    for (size_t p = 0; p < sizeof plan / sizeof plan[0]; p++) {
      /* Fill the stripe up (one-slot entries) so the next set evicts:
       * put back what was evicted (which may evict others, even the
       * writer's key: put that back too), then add new entries while
       * there is room, which evicts nothing. */
      for (int i = 0; i < nfill; i++)
        if (!fill[i].present)
          entry_store(kv, &fill[i]);
      if (kvshm_has(kv, cur.key, cur.klen) == KVSHM_ENOTFOUND)
        entry_store(kv, &cur);
      while (tu_stats(kv).slots_free > 2) {
        ck_assert_int_lt(nfill, NFILL);
        char key[16];
        snprintf(key, sizeof key, "fill%03d", nfill);
        entry_key(&fill[nfill], key, 0);
        entry_make(&fill[nfill], 10000 + (uint64_t)nfill, 80);
        entry_store(kv, &fill[nfill]);
        nfill++;
      }
      check_bystanders(kv, fill, nfill, 1, "refill");
      char when[96];
      snprintf(when, sizeof when, "round %d, killed at %s #%d", round,
               point_name(plan[p].p), plan[p].nth);
      next = cur;
      entry_make(&next, 20000 + (uint64_t)round * 10 + p, 1000 + 20 * p);
      uint64_t before = repairs(kv);
      uint64_t ev = tu_stats(kv).evictions;
      kill_during(name, plan[p].p, plan[p].nth, OP_SET, &next);
      int r = read_as(kv, &cur, &next, when);
      ck_assert_msg(r != 0, "%s: the writer's own key was evicted", when);
      if (r == 2)
        cur = next;
      check_bystanders(kv, fill, nfill, 1, when);
      check_repaired(kv, before, when);
      ck_assert_uint_ge(tu_stats(kv).evictions, ev);
    }
  }
  tu_watchdog(0, NULL);
  ck_assert_int_lt(nfill, cap + 1);
  ck_assert_int_eq(kills, 7 * 5);
  kvshm_close(kv);
  kvshm_unlink(name);
}
END_TEST

/* ---- a repairer killed mid-repair ------------------------------------------
 */

START_TEST(repair_killed_mid_repair) {
  char name[TU_NAME_SIZE];
  kvshm *kv = open_crash_cache(name, 64 * 1024);
  const uint32_t slots = tu_stats(kv).slots_per_stripe;
  const int nby = (int)slots / 2 + 10;
  struct entry *by = calloc((size_t)nby, sizeof *by);
  ck_assert_ptr_nonnull(by);
  static struct entry cur, next;
  const kvshm_test_point first[] = {
      KVSHM_TP_SET_HALF_WRITTEN, KVSHM_TP_SET_COMMITTED, KVSHM_TP_SET_LINKED};
  tu_watchdog(90, "repair_killed_mid_repair (parent)");
  for (int round = 0; round < 12; round++) {
    /* Slots are handed out in order after a clear: the target takes the
     * first few, one-slot bystanders the rest, so slot slots/2 (where
     * repair calls its hook) holds an entry head. */
    tu_assert_rc(kvshm_clear(kv), KVSHM_OK);
    entry_key(&cur, "target", 0);
    entry_make(&cur, 600 + (uint64_t)round, 600);
    entry_store(kv, &cur);
    for (int i = 0; i < nby; i++) {
      char key[16];
      snprintf(key, sizeof key, "r%03d", i);
      entry_key(&by[i], key, 0);
      entry_make(&by[i], 700 + (uint64_t)i * 31 + (uint64_t)round, 60);
      entry_store(kv, &by[i]);
    }
    ck_assert_int_eq(tu_verify(kv), 0);
    char when[96];
    kvshm_test_point p = first[round % 3];
    snprintf(when, sizeof when,
             "round %d: writer killed at %s, then its "
             "repairer",
             round, point_name(p));
    next = cur;
    entry_make(&next, 800 + (uint64_t)round, 900);
    uint64_t before = repairs(kv);
    kill_during(name, p, 1, OP_SET, &next);
    /* The next locker repairs, and is killed half-way through. */
    kill_during(name, KVSHM_TP_REPAIR_HALF, 1, OP_GET, &by[0]);
    /* And the one after that repairs it all. */
    int r = read_as(kv, &cur, &next, when);
    ck_assert_msg(r != 0, "%s: the key vanished", when);
    check_bystanders(kv, by, nby, 0, when);
    check_repaired(kv, before, when);
    ck_assert_uint_eq(tu_stats(kv).entries, (uint64_t)nby + 1);
  }
  tu_watchdog(0, NULL);
  ck_assert_int_eq(kills, 12 * 2);
  free(by);
  kvshm_close(kv);
  kvshm_unlink(name);
}
END_TEST

/* ---- random kills from outside, under load ----------------------------------
 */

#define HAMMERS 3
#define HKEYS 16
#define VICTIM_ROUNDS 100

static void hammer(const char *name, int id, volatile int *stop, int victim,
                   int ready_fd) {
  kvshm *kv;
  TU_CHILD_RC(kvshm_open(name, NULL, KVSHM_NOREAPER, &kv), KVSHM_OK);
  static unsigned char buf[1200], val[1200];
  uint64_t rng = (uint64_t)getpid() * 2654435761u + (uint64_t)id;
  char own[16];
  snprintf(own, sizeof own, "w%d", id);
  int64_t mine = 0;
  /* A victim writes prepared values, so that most of its time is spent
   * inside the library, holding the lock, where a kill hurts most. */
  static unsigned char prepared[HKEYS][2][1200];
  static size_t plen[HKEYS][2];
  if (victim)
    for (int k = 0; k < HKEYS; k++)
      for (int j = 0; j < 2; j++) {
        plen[k][j] = 600 + (size_t)(tu_rand(&rng) % 600);
        tu_val_make(prepared[k][j], plen[k][j], (uint32_t)k, (uint32_t)id,
                    (uint32_t)j);
      }
  if (ready_fd >= 0) {
    char c = 1;
    TU_CHILD_CHECK(write(ready_fd, &c, 1) == 1);
    close(ready_fd);
  }
  for (uint32_t i = 0; victim || !*stop; i++) {
    int k = (int)(tu_rand(&rng) % HKEYS);
    char key[16];
    int kl = snprintf(key, sizeof key, "h%d", k);
    unsigned r = (unsigned)(tu_rand(&rng) % 100);
    if (victim) {
      const unsigned char *pv = prepared[k][i % 2];
      size_t n = plen[k][i % 2];
      int rc = r < 85 ? kvshm_set(kv, key, (size_t)kl, pv, n,
                                  tu_val_flags(pv, n), 0, 0)
                      : kvshm_del(kv, key, (size_t)kl);
      if (rc != KVSHM_OK)
        TU_CHILD_RC(rc, KVSHM_ENOTFOUND);
    } else if (r < 40) {
      size_t n =
          TU_VAL_MIN + (size_t)(tu_rand(&rng) % (sizeof val - TU_VAL_MIN));
      tu_val_make(val, n, (uint32_t)k, (uint32_t)id, i);
      TU_CHILD_RC(
          kvshm_set(kv, key, (size_t)kl, val, n, tu_val_flags(val, n), 0, 0),
          KVSHM_OK);
    } else if (r < 80) {
      size_t n = 0;
      uint32_t fl = 0;
      int rc = kvshm_get(kv, key, (size_t)kl, buf, sizeof buf, &n, &fl);
      if (rc == KVSHM_OK) {
        const char *why = "";
        if (tu_val_check(buf, n, fl, (uint32_t)k, NULL, NULL, &why)) {
          fprintf(stderr, "hammer %d: %s: %s\n", id, key, why);
          _exit(TU_CHILD_FAILED);
        }
      } else {
        TU_CHILD_RC(rc, KVSHM_ENOTFOUND);
      }
    } else if (r < 88) {
      int rc = kvshm_del(kv, key, (size_t)kl);
      if (rc != KVSHM_OK)
        TU_CHILD_RC(rc, KVSHM_ENOTFOUND);
    } else if (!victim) {
      int64_t res = 0;
      TU_CHILD_RC(kvshm_incr(kv, own, strlen(own), 1, 0, &res), KVSHM_OK);
      TU_CHILD_CHECK(res == ++mine); /* repairs never lose others' writes */
    }
  }
  int64_t res = -1;
  TU_CHILD_RC(kvshm_incr(kv, own, strlen(own), 0, 0, &res), KVSHM_OK);
  TU_CHILD_CHECK(res == mine);
  kvshm_close(kv);
  _exit(0);
}

START_TEST(random_external_kills_under_load) {
  char name[TU_NAME_SIZE];
  kvshm *kv = open_crash_cache(name, 128 * 1024);
  volatile int *stop = mmap(NULL, sizeof(int), PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ck_assert_ptr_ne((void *)stop, MAP_FAILED);
  *stop = 0;
  tu_watchdog(120, "random_external_kills_under_load (parent)");
  pid_t workers[HAMMERS];
  for (int i = 0; i < HAMMERS; i++) {
    workers[i] = tu_fork();
    if (workers[i] == 0)
      hammer(name, i, stop, 0, -1);
  }
  uint64_t rng = 99;
  int killed = 0;
  for (int round = 0; round < VICTIM_ROUNDS; round++) {
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t v = tu_fork();
    if (v == 0) {
      close(fds[0]);
      hammer(name, 100 + round, stop, 1, fds[1]);
    }
    close(fds[1]);
    char c;
    ssize_t got = read(fds[0], &c, 1); /* it has opened the cache */
    close(fds[0]);
    ck_assert_msg(got == 1, "victim %d died before it was ready", round);
    struct timespec ts = {0, (long)(tu_rand(&rng) % 3000) * 1000L};
    nanosleep(&ts, NULL);
    ck_assert_int_eq(kill(v, SIGKILL), 0);
    int status;
    ck_assert_int_eq(tu_wait(v, KILL_WAIT_MS, &status), 0);
    killed += WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  }
  *stop = 1;
  for (int i = 0; i < HAMMERS; i++)
    tu_wait_ok(workers[i], 30000, "hammering worker");
  tu_watchdog(0, NULL);
  ck_assert_int_eq(killed, VICTIM_ROUNDS);
  /* Some of those kills landed while the victim held the lock. */
  kvshm_stats st = tu_stats(kv);
  ck_assert_uint_gt(st.repairs, 0);
  ck_assert_uint_eq(st.corrupt, 0);
  for (int k = 0; k < HKEYS; k++) {
    char key[16];
    int kl = snprintf(key, sizeof key, "h%d", k);
    static unsigned char buf[1200];
    size_t n = 0;
    uint32_t fl = 0;
    int rc = kvshm_get(kv, key, (size_t)kl, buf, sizeof buf, &n, &fl);
    if (rc == KVSHM_ENOTFOUND)
      continue;
    tu_assert_rc(rc, KVSHM_OK);
    const char *why = "";
    ck_assert_msg(tu_val_check(buf, n, fl, (uint32_t)k, NULL, NULL, &why) == 0,
                  "%s: %s", key, why);
  }
  ck_assert_int_eq(tu_verify(kv), 0);
  fprintf(stderr,
          "random_external_kills_under_load: %d kills, %llu "
          "repairs\n",
          killed, (unsigned long long)st.repairs);
  munmap((void *)stop, sizeof(int));
  kvshm_close(kv);
  kvshm_unlink(name);
}
END_TEST

static Suite *crash_suite(void) {
  Suite *s = suite_create("crash");
  TCase *tc = tu_tcase("hooks", 180);
  tcase_add_test(tc, overwrite_killed_at_every_point);
  tcase_add_test(tc, new_key_killed_at_every_point);
  tcase_add_test(tc, delete_and_incr_killed);
  tcase_add_test(tc, eviction_killed);
  tcase_add_test(tc, repair_killed_mid_repair);
  suite_add_tcase(s, tc);
  tc = tu_tcase("external", 180);
  tcase_add_test(tc, random_external_kills_under_load);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  Suite *suites[] = {crash_suite()};
  return tu_run_suites(suites, 1);
}
