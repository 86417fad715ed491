/*
 * check_races.c - races between the two tiers, each stopped at its exact
 * instant: the binary is linked with -Wl,--wrap on the SQLite-tier calls
 * below, and a wrapper runs the other side of the race when it is armed.
 * Each test failed on the protocol before format 2 (issue 8).
 *
 *   promote_scratch  a value read from SQLite is promoted intact even when
 *                    long keys reuse the handle's scratch buffer meanwhile
 *   flush_vs_flush   two write-behinds of one stripe: the older batch never
 *                    overwrites a newer value, nor brings a deleted key back
 *   clear_vs_get     a get racing kvshm_clear never returns a cleared row
 *   pclear_vs_get    nor one racing kvshm_clear_prefix (nor incr counts on
 *                    from it)
 *   pclear_marking   nor one whose SQLite snapshot predates the clear's
 *                    commit, looking at the record as it is marked DONE
 *   expire_vs_get    a row read before a newer value expired is not promoted
 *   set_during_clear a value set just before the clear is gone, one set at
 *                    its step survives, also on a segment made again
 *   incr_vs_evict    incr of a key that moves between the tiers while it is
 *                    read from SQLite counts from its true value
 *   nx_xx_vs_evict   NX and XX decide on the key's true presence however it
 *                    moves between the tiers meanwhile
 *   walk_vs_move     a walk returns each key once while keys move between
 *                    the tiers under it
 *   walk_no_snapshot a paused walk pins no SQLite snapshot: a get sees the
 *                    newest value, flush works, the WAL can be checkpointed
 *   repair_no_memory repair after a lock holder died, with every allocation
 *                    failing, keeps every dirty entry (it once freed them)
 *   batch_moved_set  a write-back batch copied in two holds of the stripe
 *                    lock, whose key moved on between them (set again into
 *                    a slot the second hold copies): the later copy is what
 *                    SQLite gets (written in copy order it would not be)
 *   batch_moved_del  the same key deleted between the two holds instead
 *                    stays deleted
 */
#include "testutil.h"

#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
static int fail_alloc; /* nonzero: every allocation fails */
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n) {
  return fail_alloc ? NULL : __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t m) {
  return fail_alloc ? NULL : __real_calloc(n, m);
}
void *__wrap_realloc(void *p, size_t n) {
  return fail_alloc ? NULL : __real_realloc(p, n);
}

int __real_kvshm__store_begin(kvshm *kv);
int __real_kvshm__store_fetch(kvshm *kv, uint64_t h, const void *key,
                              size_t klen, uint64_t now, uint64_t gen,
                              bool nowait, void *row);
typedef int (*scan_fn)(void *, uint64_t, const void *, size_t, const void *);
int __real_kvshm__store_scan(kvshm *kv, int64_t lo, int64_t hi, uint64_t gen,
                             uint64_t now, bool nowait, scan_fn fn, void *ctx);

int __real_kvshm__lock(kvshm *kv, uint32_t s);
int __wrap_kvshm__lock(kvshm *kv, uint32_t s);

static char dir[64], db[128];
static kvshm *victim;      /* the handle whose call is wrapped */
static void (*race)(void); /* run once, inside that call */

static void (*lock_race)(void); /* run once, at the victim's lock call */
static int lock_countdown;      /* number lock_countdown from now on */

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
int __wrap_kvshm__store_fetch(kvshm *kv, uint64_t h, const void *key,
                              size_t klen, uint64_t now, uint64_t gen,
                              bool nowait, void *row);
int __wrap_kvshm__store_fetch(kvshm *kv, uint64_t h, const void *key,
                              size_t klen, uint64_t now, uint64_t gen,
                              bool nowait, void *row) {
  int rc = __real_kvshm__store_fetch(kv, h, key, klen, now, gen, nowait, row);
  if (!nowait)
    fire(kv); /* the row is read; the reader holds no lock */
  return rc;
}
int __wrap_kvshm__store_scan(kvshm *kv, int64_t lo, int64_t hi, uint64_t gen,
                             uint64_t now, bool nowait, scan_fn fn, void *ctx);
int __wrap_kvshm__store_scan(kvshm *kv, int64_t lo, int64_t hi, uint64_t gen,
                             uint64_t now, bool nowait, scan_fn fn, void *ctx) {
  int rc = __real_kvshm__store_scan(kv, lo, hi, gen, now, nowait, fn, ctx);
  if (!nowait)
    fire(kv); /* the rows are read; the walker holds no lock */
  return rc;
}

int __wrap_kvshm__lock(kvshm *kv, uint32_t s) {
  if (kv == victim && lock_race && --lock_countdown == 0) {
    void (*fn)(void) = lock_race; /* before the lock is taken: none is */
    lock_race = NULL;             /* held */
    fn();
  }
  return __real_kvshm__lock(kv, s);
}

static char name[TU_NAME_SIZE];
static kvshm *a, *b; /* two handles on one cache, as two processes would */

/* Push key out of memory (it must be clean): fill its stripe with other
 * keys, read a few times (hotter than it), written behind, until it is
 * evicted. */
static void evict(kvshm *kv, const char *key, size_t klen) {
  char other[100], buf[8];
  static int serial;
  for (int i = 0; kvshm_in_memory(kv, key, klen) == KVSHM_OK; i++) {
    ck_assert_int_lt(i, 100000);
    snprintf(other, sizeof other, "filler-%08d", serial++);
    tu_assert_rc(kvshm_set(kv, other, strlen(other), "f", 1, 0, 0, 0),
                 KVSHM_OK);
    for (int r = 0; r < 4; r++)
      tu_get(kv, other, strlen(other), buf, sizeof buf, NULL);
    if (i % 16 == 0)
      tu_assert_rc(kvshm_flush(kv), KVSHM_OK);
  }
}

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
  lock_race = NULL;
}

static void teardown(void) {
  kvshm_close(a);
  kvshm_close(b);
  a = b = NULL;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  (void)!system(cmd);
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
  ck_assert_int_eq(tu_sql_value(db, "key", buf, sizeof buf), 2);
  ck_assert(memcmp(buf, "v2", 2) == 0);
  tu_assert_rc(kvshm_set(b, "key", 3, "v3", 2, 0, 0, 0), KVSHM_OK);
  arm(a, del_and_flush); /* a copied v3; b deletes it first */
  tu_assert_rc(kvshm_flush(a), KVSHM_OK);
  ck_assert_int_eq(tu_sql_value(db, "key", buf, sizeof buf), -1);
  tu_assert_rc(tu_get(b, "key", 3, buf, sizeof buf, NULL), KVSHM_ENOTFOUND);
}
END_TEST

static void clear_by_b(void) {
  tu_assert_rc(kvshm_clear(b), KVSHM_OK);
}

START_TEST(test_clear_vs_get) {
  char buf[16];
  a = open_store(1 << 20, 0);
  b = open_store(0, 0);
  tu_assert_rc(kvshm_set(a, "key", 3, "v1", 2, 0, 0, 0), KVSHM_OK);
  tu_assert_rc(kvshm_flush(a), KVSHM_OK);
  evict(a, "key", 3);
  arm(a, clear_by_b); /* a read v1 from SQLite; b clears before a decides */
  tu_assert_rc(tu_get(a, "key", 3, buf, sizeof buf, NULL), KVSHM_ENOTFOUND);
  tu_assert_rc(tu_get(b, "key", 3, buf, sizeof buf, NULL), KVSHM_ENOTFOUND);
  ck_assert_int_eq(tu_sql_value(db, "key", buf, sizeof buf), -1);
}
END_TEST

static void pclear_by_b(void) {
  tu_assert_rc(kvshm_clear_prefix(b, "p:", 2), KVSHM_OK);
}

/* A prefix clear between a get's SQLite read and its decision: the row
 * read is gone, though nothing of the prefix was in that stripe's memory
 * (so the sweep moved no gen_evict).  The get once returned it and
 * promoted it into a stripe that had already swept: the key came back
 * for good after its clear had returned.  The same for incr, which once
 * counted on from the cleared value. */
START_TEST(test_pclear_vs_get) {
  char buf[16];
  a = open_store(1 << 20, 0);
  b = open_store(0, 0);
  tu_assert_rc(kvshm_set(a, "p:key", 5, "v1", 2, 0, 0, 0), KVSHM_OK);
  tu_assert_rc(kvshm_set(a, "p:num", 5, "40", 2, 0, 0, 0), KVSHM_OK);
  tu_assert_rc(kvshm_flush(a), KVSHM_OK);
  evict(a, "p:key", 5);
  evict(a, "p:num", 5);
  arm(a, pclear_by_b); /* a read v1 from SQLite; b clears before a decides */
  tu_assert_rc(tu_get(a, "p:key", 5, buf, sizeof buf, NULL), KVSHM_ENOTFOUND);
  tu_assert_rc(tu_get(b, "p:key", 5, buf, sizeof buf, NULL), KVSHM_ENOTFOUND);
  tu_assert_rc(tu_get(a, "p:key", 5, buf, sizeof buf, NULL), KVSHM_ENOTFOUND);
  ck_assert_int_eq(tu_sql_value(db, "p:key", buf, sizeof buf), -1);
  tu_assert_rc(kvshm_set(a, "p:num", 5, "40", 2, 0, 0, 0), KVSHM_OK);
  tu_assert_rc(kvshm_flush(a), KVSHM_OK);
  evict(a, "p:num", 5);
  int64_t n = 0;
  arm(a, pclear_by_b);
  tu_assert_rc(kvshm_incr(a, "p:num", 5, 2, 0, &n), KVSHM_OK);
  ck_assert_int_eq(n, 2); /* counted from nothing: 40 was cleared */
}
END_TEST

/* ---- a get whose SQLite snapshot predates a prefix clear's commit ---- */

int __real_sqlite3_step(sqlite3_stmt *q);
int __wrap_sqlite3_step(sqlite3_stmt *q);

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
enum { S_IDLE, S_STEPPED, S_HAS_ROW, S_MARKING, S_READER_DONE };
static int stage;
static bool step_armed;
static pthread_t reader_thread;

static void stage_set(int v) {
  pthread_mutex_lock(&mu);
  stage = v;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
}

/* Wait until stage >= v, 5 s at most (a hang is a failure, not a stall). */
static bool stage_wait(int v) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += 5;
  pthread_mutex_lock(&mu);
  int rc = 0;
  while (stage < v && rc == 0)
    rc = pthread_cond_timedwait(&cv, &mu, &ts);
  bool ok = stage >= v;
  pthread_mutex_unlock(&mu);
  return ok;
}

/* The reader's lookup has its row, in a read transaction begun before the
 * clear's commit: hold it there until the clearer is marking its record. */
int __wrap_sqlite3_step(sqlite3_stmt *q) {
  int rc = __real_sqlite3_step(q);
  const char *text = sqlite3_sql(q);
  if (step_armed && pthread_equal(pthread_self(), reader_thread) && text &&
      strncmp(text, "SELECT value", 12) == 0 && rc == SQLITE_ROW) {
    step_armed = false;
    stage_set(S_HAS_ROW);
    if (!stage_wait(S_MARKING))
      fprintf(stderr, "pclear_marking: the clearer never marked\n");
  }
  return rc;
}

static void clearer_hook(kvshm *kv, kvshm_test_point p, void *ctx) {
  (void)kv;
  (void)ctx;
  if (p == KVSHM_TP_CLEAR_STEPPED) { /* stepped, delete not committed */
    stage_set(S_STEPPED);
    stage_wait(S_HAS_ROW);
  } else if (p == KVSHM_TP_PCLEAR_MARKING) { /* committed, half marked */
    stage_set(S_MARKING);
    stage_wait(S_READER_DONE);
  }
}

static int clearer_rc;
static void *clearer_main(void *arg) {
  (void)arg;
  clearer_rc = kvshm_clear_prefix(b, "p:", 2);
  return NULL;
}

/* A get that began after a prefix clear's step reads SQLite from a
 * snapshot taken before the clear's delete committed, and looks at the
 * record after it was marked DONE.  pclear_done must have moved by then
 * (it is the reader's sign to read again): it was once moved after the
 * mark, and the get returned the cleared row and promoted it. */
START_TEST(test_pclear_marking) {
  char buf[16];
  a = open_store(1 << 20, 0);
  b = open_store(0, 0);
  tu_assert_rc(kvshm_set(a, "p:key", 5, "v1", 2, 0, 0, 0), KVSHM_OK);
  tu_assert_rc(kvshm_flush(a), KVSHM_OK);
  evict(a, "p:key", 5);
  stage = S_IDLE;
  reader_thread = pthread_self();
  kvshm_test_set_hook(b, clearer_hook, NULL);
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, clearer_main, NULL), 0);
  ck_assert(stage_wait(S_STEPPED));
  step_armed = true;
  int rc = tu_get(a, "p:key", 5, buf, sizeof buf, NULL);
  bool held = !step_armed;
  step_armed = false;
  stage_set(S_READER_DONE);
  pthread_join(t, NULL);
  kvshm_test_set_hook(b, NULL, NULL);
  ck_assert_msg(held, "the get never read the row from SQLite");
  tu_assert_rc(clearer_rc, KVSHM_OK);
  tu_assert_rc(rc, KVSHM_ENOTFOUND);
  tu_assert_rc(tu_get(b, "p:key", 5, buf, sizeof buf, NULL), KVSHM_ENOTFOUND);
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

static void set_and_flush_before_clear(void) {
  tu_assert_rc(kvshm_set(b, "early", 5, "gone", 4, 0, 0, 0), KVSHM_OK);
  tu_assert_rc(kvshm_flush(b), KVSHM_OK); /* before the clear's step */
}

/* At the clear's step (a holds SQLite's write lock: b may only set). */
static void set_at_step(kvshm *kv, kvshm_test_point p, void *ctx) {
  (void)kv;
  (void)ctx;
  if (p == KVSHM_TP_CLEAR_STEPPED)
    tu_assert_rc(kvshm_set(b, "new", 3, "after", 5, 0, 0, 0), KVSHM_OK);
}

START_TEST(test_set_during_clear) {
  char buf[16];
  a = open_store(1 << 20, 0);
  b = open_store(0, 0);
  tu_assert_rc(kvshm_set(a, "old", 3, "before", 6, 0, 0, 0), KVSHM_OK);
  tu_assert_rc(kvshm_flush(a), KVSHM_OK);
  arm(a, set_and_flush_before_clear);
  kvshm_test_set_hook(a, set_at_step, NULL);
  tu_assert_rc(kvshm_clear(a), KVSHM_OK);
  kvshm_test_set_hook(a, NULL, NULL);
  tu_assert_rc(kvshm_flush(b), KVSHM_OK); /* after the step: kept */
  ck_assert_int_eq(tu_sql_value(db, "early", buf, sizeof buf), -1);
  ck_assert_int_eq(tu_sql_value(db, "old", buf, sizeof buf), -1);
  ck_assert_int_eq(tu_sql_value(db, "new", buf, sizeof buf), 5);
  ck_assert(memcmp(buf, "after", 5) == 0);
  /* And on a segment made again over the file (a reboot): the same. */
  kvshm_close(a);
  kvshm_close(b);
  b = NULL;
  tu_assert_rc(kvshm_unlink(name), KVSHM_OK);
  a = open_store(1 << 20, 0);
  tu_assert_rc(tu_get(a, "old", 3, buf, sizeof buf, NULL), KVSHM_ENOTFOUND);
  tu_assert_value(a, "new", 3, "after", 5);
}
END_TEST

/* ---- items 1-3 of issue 8 ---- */

static void move_key_around(void) {
  /* b brings "ctr" into memory with its own incr, writes it behind and
   * lets it be evicted again: SQLite now holds 6, memory nothing. */
  int64_t v = 0;
  tu_assert_rc(kvshm_incr(b, "ctr", 3, 1, 0, &v), KVSHM_OK);
  ck_assert_int_eq(v, 6);
  tu_assert_rc(kvshm_flush(b), KVSHM_OK);
  evict(b, "ctr", 3);
}

START_TEST(test_incr_vs_evict) {
  a = open_store(256 << 10, 64);
  b = open_store(0, 0);
  int64_t v = 0;
  tu_assert_rc(kvshm_incr(a, "ctr", 3, 5, 0, &v), KVSHM_OK);
  tu_assert_rc(kvshm_flush(a), KVSHM_OK);
  evict(a, "ctr", 3);
  arm(a, move_key_around); /* a read 5 from SQLite, holding no lock */
  tu_assert_rc(kvshm_incr(a, "ctr", 3, 1, 0, &v), KVSHM_OK);
  ck_assert_int_eq(v, 7); /* not 6: b's increment counts */
  tu_assert_value(b, "ctr", 3, "7", 1);
}
END_TEST

static void promote_and_evict(void) {
  char buf[16];
  tu_assert_rc(tu_get(b, "k", 1, buf, sizeof buf, NULL), KVSHM_OK);
  evict(b, "k", 1);
}
static void delete_it(void) {
  tu_assert_rc(kvshm_del(b, "k", 1), KVSHM_OK);
}

START_TEST(test_nx_xx_vs_evict) {
  a = open_store(256 << 10, 64);
  b = open_store(0, 0);
  tu_assert_rc(kvshm_set(a, "k", 1, "v1", 2, 0, 0, 0), KVSHM_OK);
  tu_assert_rc(kvshm_flush(a), KVSHM_OK);
  evict(a, "k", 1);
  arm(a, promote_and_evict);
  tu_assert_rc(kvshm_set(a, "k", 1, "nx", 2, 0, 0, KVSHM_NX), KVSHM_EEXIST);
  evict(a, "k", 1);
  arm(a, promote_and_evict);
  tu_assert_rc(kvshm_set(a, "k", 1, "xx", 2, 0, 0, KVSHM_XX), KVSHM_OK);
  tu_assert_value(b, "k", 1, "xx", 2);
  tu_assert_rc(kvshm_flush(a), KVSHM_OK);
  evict(a, "k", 1);
  arm(a, delete_it); /* a read "xx"; b deletes it before a decides */
  tu_assert_rc(kvshm_set(a, "k", 1, "nx2", 3, 0, 0, KVSHM_NX), KVSHM_OK);
  tu_assert_value(b, "k", 1, "nx2", 3);
}
END_TEST

#define WALK_KEYS 400

static void walk_key(int i, char *k) {
  snprintf(k, 16, "w%05d", i);
}

/* Move keys the other way round: promote the ones in SQLite, evict the
 * ones in memory, through b. */
static int moves;
static void move_all(void) {
  char k[16], buf[16];
  for (int i = 0; i < WALK_KEYS; i++) {
    walk_key(i, k);
    if (kvshm_in_memory(b, k, strlen(k)) == KVSHM_OK)
      continue;
    tu_assert_rc(tu_get(b, k, strlen(k), buf, sizeof buf, NULL), KVSHM_OK);
  }
  tu_assert_rc(kvshm_flush(b), KVSHM_OK);
  for (int i = 0; i < WALK_KEYS; i += 10) {
    walk_key(i, k);
    evict(b, k, strlen(k));
  }
  if (++moves < 4)
    arm(a, move_all); /* again, at the next chunk */
}

START_TEST(test_walk_vs_move) {
  a = open_store(256 << 10, 64);
  b = open_store(0, 0);
  char k[16];
  for (int i = 0; i < WALK_KEYS; i++) {
    walk_key(i, k);
    tu_assert_rc(kvshm_set(a, k, strlen(k), "v", 1, 0, 0, 0), KVSHM_OK);
  }
  tu_assert_rc(kvshm_flush(a), KVSHM_OK);
  for (int i = 0; i < WALK_KEYS; i += 2) {
    walk_key(i, k);
    evict(a, k, strlen(k));
  }
  int seen[WALK_KEYS] = {0};
  kvshm_iter *it;
  tu_assert_rc(kvshm_iter_open(a, "w", 1, KVSHM_ITER_STORE, &it), KVSHM_OK);
  moves = 0;
  arm(a, move_all);
  const void *key;
  size_t klen;
  int n = 0;
  while (kvshm_iter_next(it, &key, &klen, NULL, NULL, NULL, NULL) == KVSHM_OK) {
    ck_assert_uint_eq(klen, 6);
    int i = atoi((const char *)key + 1);
    ck_assert_int_lt(i, WALK_KEYS);
    seen[i]++;
    n++;
  }
  kvshm_iter_close(it);
  race = NULL;
  for (int i = 0; i < WALK_KEYS; i++)
    ck_assert_msg(seen[i] == 1, "key %d seen %d times", i, seen[i]);
  ck_assert_int_eq(n, WALK_KEYS);
}
END_TEST

START_TEST(test_walk_no_snapshot) {
  a = open_store(256 << 10, 64);
  b = open_store(0, 0);
  char k[16], buf[16];
  for (int i = 0; i < WALK_KEYS; i++) {
    walk_key(i, k);
    tu_assert_rc(kvshm_set(a, k, strlen(k), "old", 3, 0, 0, 0), KVSHM_OK);
  }
  tu_assert_rc(kvshm_flush(a), KVSHM_OK);
  for (int i = 0; i < WALK_KEYS; i++) {
    walk_key(i, k);
    evict(a, k, strlen(k));
  }
  kvshm_iter *it;
  tu_assert_rc(kvshm_iter_open(a, NULL, 0, KVSHM_ITER_STORE, &it), KVSHM_OK);
  tu_assert_rc(kvshm_iter_next(it, NULL, NULL, NULL, NULL, NULL, NULL),
               KVSHM_OK);
  /* Paused mid-walk: another process writes every key anew. */
  for (int i = 0; i < WALK_KEYS; i++) {
    walk_key(i, k);
    tu_assert_rc(kvshm_set(b, k, strlen(k), "new", 3, 0, 0, 0), KVSHM_OK);
  }
  tu_assert_rc(kvshm_flush(b), KVSHM_OK);
  for (int i = 0; i < WALK_KEYS; i += 7) {
    walk_key(i, k);
    evict(b, k, strlen(k));
    tu_assert_value(a, k, strlen(k), "new", 3); /* not the snapshot's */
  }
  tu_assert_rc(kvshm_flush(a), KVSHM_OK); /* no "database is locked" */
  sqlite3 *h;
  sqlite3_stmt *q;
  ck_assert_int_eq(sqlite3_open(db, &h), SQLITE_OK);
  ck_assert_int_eq(
      sqlite3_prepare_v2(h, "PRAGMA wal_checkpoint(TRUNCATE)", -1, &q, NULL),
      SQLITE_OK);
  ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
  ck_assert_int_eq(sqlite3_column_int(q, 0), 0); /* not busy: the walk */
  ck_assert_int_eq(sqlite3_column_int(q, 1), 0); /* holds no reader back */
  sqlite3_finalize(q);
  sqlite3_close(h);
  (void)buf;
  kvshm_iter_close(it);
}
END_TEST

static void die_half_written(kvshm *kv, kvshm_test_point p, void *ctx) {
  (void)kv;
  (void)ctx;
  if (p == KVSHM_TP_SET_HALF_WRITTEN)
    raise(SIGKILL);
}

START_TEST(test_repair_no_memory) {
  a = open_store(1 << 20, 0);
  char k[16];
  for (int i = 0; i < 200; i++) {
    int n = snprintf(k, sizeof k, "dirty%d", i);
    tu_assert_rc(kvshm_set(a, k, (size_t)n, "d", 1, 0, 0, 0), KVSHM_OK);
  }
  ck_assert_uint_eq(tu_stats(a).dirty, 200);
  kvshm_close(a); /* no SQLite across fork (store.c): fork, then reopen */
  pid_t p = tu_fork();
  if (p == 0) { /* dies holding the stripe lock, mid-write */
    kvshm *h = NULL;
    TU_CHILD_RC(kvshm_open(name, NULL, KVSHM_NOREAPER, &h), KVSHM_OK);
    kvshm_test_set_hook(h, die_half_written, NULL);
    kvshm_set(h, "dirty0", 6, "new", 3, 0, 0, 0);
    _exit(0);
  }
  int status;
  ck_assert_int_eq(tu_wait(p, 10000, &status), 0);
  a = open_store(0, 0);
  fail_alloc = 1; /* the repair that follows may not allocate */
  int rc = kvshm_in_memory(a, "dirty1", 6);
  fail_alloc = 0;
  tu_assert_rc(rc, KVSHM_OK);
  kvshm_stats st = tu_stats(a);
  ck_assert_uint_eq(st.repairs, 1);
  ck_assert_uint_eq(st.dirty, 200);
  for (int i = 1; i < 200; i++) {
    int n = snprintf(k, sizeof k, "dirty%d", i);
    tu_assert_value(a, k, (size_t)n, "d", 1);
  }
  ck_assert_int_eq(tu_verify(a), 0);
}
END_TEST

/* How often a walk of both tiers returns the empty key (checking it has
 * an empty value), and how many entries it returns in all. */
static int walk_empty(kvshm *kv, int *total) {
  kvshm_iter *it;
  tu_assert_rc(kvshm_iter_open(kv, NULL, 0, KVSHM_ITER_STORE, &it), KVSHM_OK);
  size_t klen, vlen;
  int empty = 0, rc;
  *total = 0;
  while ((rc = kvshm_iter_next(it, NULL, &klen, NULL, &vlen, NULL, NULL)) ==
         KVSHM_OK) {
    (*total)++;
    if (klen == 0) {
      ck_assert_uint_eq(vlen, 0);
      empty++;
    }
  }
  tu_assert_rc(rc, KVSHM_ENOTFOUND);
  kvshm_iter_close(it);
  return empty;
}

/* The empty key with an empty value, alone in memory (first and only item
 * of its chunk), then only in SQLite: a walk returns it once each time. */
START_TEST(test_walk_empty_key) {
  a = open_store(256 << 10, 64);
  tu_assert_rc(kvshm_set(a, "", 0, "", 0, 0, 0, 0), KVSHM_OK);
  int total = 0;
  ck_assert_int_eq(walk_empty(a, &total), 1);
  ck_assert_int_eq(total, 1);
  tu_assert_rc(kvshm_flush(a), KVSHM_OK);
  evict(a, "", 0);
  ck_assert_int_eq(walk_empty(a, &total), 1);
  ck_assert_int_gt(total, 1); /* and the fillers */
}
END_TEST

/*
 * One stripe of 25K slots (a batch is copied in holds of 8192 slots).
 * "key" is set first (slot 1), then 9000 fillers after it, all written
 * behind; "key" set twice more ends dirty in slot 1 again, with slot 9002
 * the next free one.  The flush's first hold of the lock after its check
 * copies "key"; before its second, the race sets "key" again, into slot
 * 9002, which that hold copies too (a delete marks "key" in place).
 */
static void batch_prepare(void) {
  a = open_store(4 << 20, 0);
  b = open_store(0, 0);
  char k[32];
  tu_assert_rc(kvshm_set(a, "key", 3, "v1", 2, 0, 0, 0), KVSHM_OK);
  for (int i = 0; i < 9000; i++) {
    snprintf(k, sizeof k, "filler-%05d", i);
    tu_assert_rc(kvshm_set(a, k, strlen(k), "f", 1, 0, 0, 0), KVSHM_OK);
  }
  tu_assert_rc(kvshm_flush(a), KVSHM_OK);
  tu_assert_rc(kvshm_set(a, "key", 3, "v2", 2, 0, 0, 0), KVSHM_OK);
  tu_assert_rc(kvshm_set(a, "key", 3, "v3", 2, 0, 0, 0), KVSHM_OK);
}

/* Run fn just before the flush's second hold of the lock by a. */
static void arm_second_hold(void (*fn)(void)) {
  victim = a;
  lock_race = fn;
  lock_countdown = 3; /* the dirty check, the first hold, the second */
}

static void del_by_b(void) {
  tu_assert_rc(kvshm_del(b, "key", 3), KVSHM_OK);
}
static void set_v4_by_b(void) {
  tu_assert_rc(kvshm_set(b, "key", 3, "v4", 2, 0, 0, 0), KVSHM_OK);
}

START_TEST(test_batch_moved_del) {
  char buf[16];
  batch_prepare();
  arm_second_hold(del_by_b);
  tu_assert_rc(kvshm_flush(a), KVSHM_OK);
  ck_assert_ptr_null(lock_race); /* it ran */
  tu_assert_rc(tu_get(a, "key", 3, buf, sizeof buf, NULL), KVSHM_ENOTFOUND);
  tu_assert_rc(kvshm_flush(a), KVSHM_OK); /* the tombstone, if left */
  ck_assert_int_eq(tu_sql_value(db, "key", buf, sizeof buf), -1);
  tu_assert_rc(tu_get(a, "key", 3, buf, sizeof buf, NULL), KVSHM_ENOTFOUND);
}
END_TEST

START_TEST(test_batch_moved_set) {
  char buf[16];
  batch_prepare();
  arm_second_hold(set_v4_by_b);
  tu_assert_rc(kvshm_flush(a), KVSHM_OK);
  ck_assert_ptr_null(lock_race);
  ck_assert_int_eq(tu_sql_value(db, "key", buf, sizeof buf), 2);
  ck_assert(memcmp(buf, "v4", 2) == 0);
  evict(a, "key", 3); /* clean: SQLite's copy is the value */
  tu_assert_rc(tu_get(a, "key", 3, buf, sizeof buf, NULL), KVSHM_OK);
  ck_assert(memcmp(buf, "v4", 2) == 0);
}
END_TEST

static Suite *races_suite(void) {
  Suite *s = suite_create("races");
  TCase *tc = tu_tcase("two tiers", 30);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_promote_scratch);
  tcase_add_test(tc, test_flush_vs_flush);
  tcase_add_test(tc, test_clear_vs_get);
  tcase_add_test(tc, test_pclear_vs_get);
  tcase_add_test(tc, test_pclear_marking);
  tcase_add_test(tc, test_expire_vs_get);
  tcase_add_test(tc, test_set_during_clear);
  tcase_add_test(tc, test_incr_vs_evict);
  tcase_add_test(tc, test_nx_xx_vs_evict);
  tcase_add_test(tc, test_walk_vs_move);
  tcase_add_test(tc, test_walk_no_snapshot);
  tcase_add_test(tc, test_repair_no_memory);
  tcase_add_test(tc, test_walk_empty_key);
  tcase_add_test(tc, test_batch_moved_del);
  tcase_add_test(tc, test_batch_moved_set);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  Suite *s[] = {races_suite()};
  return tu_run_suites(s, 1);
}
