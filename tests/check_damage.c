/*
 * check_damage.c - a segment damaged by another process with write access:
 * garbage in a stripe's mutex words (which glibc would assert on, or wait on
 * forever), the words of a held lock overwritten before it is unlocked, a
 * lock held by a thread that does not exist, the file cut short under
 * attached processes, a zeroed magic word, a header wiped while attached,
 * slots leaked, a value changed while it is copied out, and /dev/shm too
 * small.  Never a signal, never a hang past the lock timeout: an error that
 * says what happened, and a way back (the automatic one, or kvshm_repair).
 *
 * The mutex words are glibc's (nptl's struct __pthread_mutex_s): __lock at
 * byte 0, __owner at 8, __kind at 16; the list links at 24 and 32.
 */
#include "testutil.h"

#include "layout.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define LOCK_MS 300u /* the tests' lock timeout */
#define NKEYS 200

static char dir[TU_DIR_SIZE];

static void setup(void) {
  tu_dir_make(dir, "damage");
}

static void teardown(void) {
  tu_dir_remove(dir);
}

enum { MEMORY_ONLY, SQLITE_BACKED, PERSISTENT };
static const char *const mode_name[] = {"memory-only", "SQLite-backed",
                                        "persistent"};

static kvshm *open_mode(const char *name, int mode) {
  kvshm_config c;
  tu_config(&c, 2u << 20, 0, 4);
  c.lock_timeout_ms = LOCK_MS;
  c.sqlite_path = mode == MEMORY_ONLY ? NULL : tu_dir_file(dir, "d.db");
  c.persistent = mode == PERSISTENT;
  kvshm *kv = NULL;
  /* No reaper for memory-only caches: it would meet the damage a test
   * made (and put it right) before the test looks. */
  tu_assert_rc(
      kvshm_open(name, &c, mode == MEMORY_ONLY ? KVSHM_NOREAPER : 0, &kv),
      KVSHM_OK);
  return kv;
}

static size_t key_of(int i, char *buf) {
  return (size_t)snprintf(buf, 16, "dmg%03d", i);
}

/* Key i's value: 1 to 4 slots of 160 bytes. */
static size_t val_of(int i, unsigned char *buf) {
  size_t n = 40 + (size_t)(i % 4) * 150;
  tu_fill(buf, n, 7000 + (uint64_t)i);
  return n;
}

static void fill(kvshm *kv) {
  for (int i = 0; i < NKEYS; i++) {
    char k[16];
    unsigned char v[700];
    size_t kl = key_of(i, k), vl = val_of(i, v);
    tu_assert_rc(kvshm_set(kv, k, kl, v, vl, 0, 0, 0), KVSHM_OK);
  }
}

/* Every key holds its value, or (lost) is absent; returns how many hold. */
static int check_all(kvshm *kv) {
  int held = 0;
  for (int i = 0; i < NKEYS; i++) {
    char k[16];
    unsigned char v[700], got[700];
    size_t kl = key_of(i, k), vl = val_of(i, v), gl = 0;
    int rc = tu_get(kv, k, kl, got, sizeof got, &gl);
    if (rc == KVSHM_OK) {
      ck_assert_uint_eq(gl, vl);
      ck_assert(memcmp(got, v, vl) == 0);
      held++;
    } else {
      tu_assert_rc(rc, KVSHM_ENOTFOUND);
    }
  }
  return held;
}

/* Root only: say why the test is skipped otherwise. */
static bool skipped_unless_root(const char *test, const char *needs) {
  if (geteuid() == 0)
    return false;
  printf("%s: skipped (needs root %s)\n", test, needs);
  return true;
}

static uint64_t mutex_off(uint32_t s) {
  return KVSHM_HDR_SIZE + (uint64_t)s * KVSHM_STRIPE_SIZE;
}

/* ---- garbage in a stripe's mutex words ----------------------------------- */

struct words {
  const char *what;
  int32_t lock, owner, kind; /* -1: leave that word */
  int random_bytes;          /* or: this many seeded random bytes */
};

static const struct words damage[] = {
    {"kind 0 (a plain mutex)", -1, -1, 0, 0},
    {"kind 64 (priority protect: glibc's tpp.c asserts)", -1, -1, 64, 0},
    {"kind 32|16|128 (robust PI)", -1, -1, 176, 0},
    {"kind 0x7fffffff", -1, -1, 0x7fffffff, 0},
    {"lock word 0x3fffffff (no thread id)", 0x3fffffff, -1, -1, 0},
    {"owner word 0x12345678", -1, 0x12345678, -1, 0},
    {"owner NOTRECOVERABLE", -1, 0x7ffffffe, -1, 0},
    {"lock word: a dead owner, waiters", (int32_t)0xc0000000u, -1, -1, 0},
    {"40 random bytes", 0, 0, 0, 40},
    {"16 random bytes", 0, 0, 0, 16},
};
#define NDAMAGE (int)(sizeof damage / sizeof damage[0])

static void poke_words(const char *name, uint32_t s, const struct words *w,
                       uint64_t seed) {
  if (w->random_bytes) {
    unsigned char junk[40];
    tu_fill(junk, sizeof junk, seed);
    tu_poke(name, mutex_off(s), junk, (size_t)w->random_bytes);
    return;
  }
  if (w->lock != -1)
    tu_poke32(name, mutex_off(s) + 0, (uint32_t)w->lock);
  if (w->owner != -1)
    tu_poke32(name, mutex_off(s) + 8, (uint32_t)w->owner);
  if (w->kind != -1)
    tu_poke32(name, mutex_off(s) + 16, (uint32_t)w->kind);
}

/* Every kind of garbage, in every mode: the first operation on the stripe
 * is OK or ECORRUPT, or (random words that name a live thread while the
 * reaper is attached) ETIMEDOUT; kvshm_repair makes it whole where the
 * automatic path may not; no entry is lost. */
START_TEST(test_mutex_garbage_never_aborts) {
  int mode = _i;
  for (int d = 0; d < NDAMAGE; d++) {
    char name[TU_NAME_SIZE];
    tu_name(name);
    kvshm *kv = open_mode(name, mode);
    fill(kv);
    tu_assert_rc(kvshm_flush(kv), KVSHM_OK);
    char k[16];
    size_t kl = key_of(0, k);
    uint32_t s = kvshm_test_stripe_of(kv, k, kl);
    poke_words(name, s, &damage[d], 99 + (uint64_t)d);
    unsigned char got[700];
    size_t gl;
    int rc = tu_get(kv, k, kl, got, sizeof got, &gl);
    if (rc != KVSHM_OK && rc != KVSHM_ECORRUPT && rc != KVSHM_ETIMEDOUT)
      ck_abort_msg("%s, %s: first get returned %s (%s)", mode_name[mode],
                   damage[d].what, kvshm_err_name(rc), kvshm_errdetail());
    /* ECORRUPT says "retry" when the reaper met the same damage and one
     * of us made the lock again while the other looked: retry, as told. */
    for (int t = 0; t < 5 && rc != KVSHM_OK; t++) {
      if (t)
        tu_sleep_ms(20);
      rc = tu_get(kv, k, kl, got, sizeof got, &gl);
    }
    if (rc != KVSHM_OK) {
      /* Still held by what looks like a live thread: repair decides. */
      char why[256];
      snprintf(why, sizeof why, "%s", kvshm_errdetail());
      int n = kvshm_repair(kv, KVSHM_REPAIR_FORCE, NULL, NULL);
      ck_assert_msg(n > 0, "%s, %s: get said %s (%s); repair returned %d (%s)",
                    mode_name[mode], damage[d].what, kvshm_err_name(rc), why, n,
                    kvshm_errdetail());
    }
    ck_assert_int_eq(check_all(kv), NKEYS);
    ck_assert_int_eq(tu_verify(kv), 0);
    kvshm_close(kv);
    kvshm_unlink(name);
  }
}
END_TEST

/* The same garbage, met by kvshm_verify and kvshm_stats_get first. */
START_TEST(verify_and_stats_report_a_damaged_lock) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  kvshm *kv = open_mode(name, MEMORY_ONLY);
  fill(kv);
  poke_words(name, 1, &damage[1], 0);
  kvshm_stats st;
  int rc = kvshm_stats_get(kv, &st);
  ck_assert_msg(rc == KVSHM_OK || rc == KVSHM_ECORRUPT, "stats: %s",
                kvshm_err_name(rc));
  poke_words(name, 2, &damage[0], 0);
  char buf[4096];
  ck_assert_int_ge(tu_verify_capture(kv, buf, sizeof buf), 1);
  ck_assert_msg(strstr(buf, "stripe 2") && strstr(buf, "kind word"),
                "verify said: %s", buf);
  ck_assert_int_eq(tu_verify(kv), 0); /* the lock was made again */
  ck_assert_int_eq(check_all(kv), NKEYS);
  kvshm_close(kv);
}
END_TEST

/* The header's reaper lock (SQLite modes: a watchdog thread waits on it in
 * every process, and every reaper claims it): garbage there aborts no one,
 * verify reports it, and the next open or repair makes it again. */
START_TEST(reaper_lock_garbage_never_aborts) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  kvshm *kv = open_mode(name, SQLITE_BACKED);
  fill(kv);
  uint64_t off = offsetof(struct kvshm_hdr, reaper_lock);
  tu_poke32(name, off + 16, 64);        /* kind: priority protect */
  tu_poke32(name, off + 8, 0x12345678); /* owner: no thread */
  tu_sleep_ms(1200);                    /* the watchdog meets it */
  kvshm_stats st;
  tu_assert_rc(kvshm_stats_get(kv, &st), KVSHM_OK);
  ck_assert_int_eq(check_all(kv), NKEYS);
  tu_poke32(name, off + 16, 64);
  char buf[4096];
  ck_assert_int_ge(tu_verify_capture(kv, buf, sizeof buf), 1);
  ck_assert_msg(strstr(buf, "reaper lock"), "%s", buf);
  ck_assert_int_ge(kvshm_repair(kv, 0, NULL, NULL), 1);
  ck_assert_int_eq(tu_verify(kv), 0);
  kvshm_close(kv);
  /* A reaper starts again and claims the lock made anew. */
  kv = open_mode(name, SQLITE_BACKED);
  uint64_t t0 = tu_mono_ms();
  do {
    tu_assert_rc(kvshm_stats_get(kv, &st), KVSHM_OK);
    if (st.reaper_alive)
      break;
    tu_sleep_ms(50);
  } while (tu_mono_ms() - t0 < 5000);
  ck_assert_uint_eq(st.reaper_alive, 1);
  kvshm_close(kv);
}
END_TEST

/* ---- a lock held by a thread that does not exist ------------------------ */

#define GHOST_TID 4190000 /* at most PID_MAX_LIMIT, almost surely unused */

static void make_ghost_holder(const char *name, uint32_t s) {
  tu_poke32(name, mutex_off(s) + 0, GHOST_TID);
  tu_poke32(name, mutex_off(s) + 8, GHOST_TID);
}

START_TEST(ghost_holder_alone_is_taken_back) {
  ck_assert_int_ne(kill(GHOST_TID, 0), 0);
  char name[TU_NAME_SIZE];
  tu_name(name);
  kvshm *kv = open_mode(name, MEMORY_ONLY);
  fill(kv);
  /* Another process attached, from this PID namespace: a holder would be
   * a thread here, so it changes nothing. */
  int attached[2], done[2];
  ck_assert_int_eq(pipe(attached), 0);
  ck_assert_int_eq(pipe(done), 0);
  pid_t other = tu_fork();
  if (other == 0) {
    kvshm *mine = NULL;
    TU_CHILD_RC(kvshm_open(name, NULL, KVSHM_NOREAPER, &mine), KVSHM_OK);
    char c = 1;
    TU_CHILD_CHECK(write(attached[1], &c, 1) == 1);
    close(done[1]);
    TU_CHILD_CHECK(read(done[0], &c, 1) == 0);
    kvshm_close(mine);
    _exit(0);
  }
  char ch;
  close(done[0]);
  ck_assert_int_eq(read(attached[0], &ch, 1), 1);
  char k[16];
  size_t kl = key_of(3, k);
  make_ghost_holder(name, kvshm_test_stripe_of(kv, k, kl));
  uint64_t t0 = tu_mono_ms();
  tu_assert_rc(kvshm_has(kv, k, kl), KVSHM_ECORRUPT);
  ck_assert_uint_lt(tu_mono_ms() - t0, LOCK_MS + 2000);
  tu_assert_rc(kvshm_has(kv, k, kl), KVSHM_OK);
  ck_assert_int_eq(check_all(kv), NKEYS);
  close(done[1]);
  tu_wait_ok(other, 5000, "attached process");
  kvshm_close(kv);
}
END_TEST

/* Another process attached from our PID namespace changes nothing (a
 * holder would be a thread here); one attached from another PID namespace
 * might be the holder: the operation times out, plain repair refuses,
 * forced repair (no such thread here) takes it back. */
START_TEST(ghost_holder_with_a_foreign_attacher_needs_repair) {
  if (skipped_unless_root(__func__, "for a PID namespace"))
    return;
  ck_assert_int_ne(kill(GHOST_TID, 0), 0);
  char name[TU_NAME_SIZE];
  tu_name(name);
  kvshm *kv = open_mode(name, MEMORY_ONLY);
  fill(kv);
  int attached[2], done[2];
  ck_assert_int_eq(pipe(attached), 0);
  ck_assert_int_eq(pipe(done), 0);
  pid_t other = tu_fork();
  if (other == 0) {
    /* The grandchild is pid 1 of a new PID namespace. */
    TU_CHILD_CHECK(unshare(CLONE_NEWPID) == 0);
    pid_t inner = fork();
    TU_CHILD_CHECK(inner >= 0);
    if (inner > 0) {
      close(done[1]);
      int st;
      waitpid(inner, &st, 0);
      _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
    }
    kvshm *mine = NULL;
    TU_CHILD_RC(kvshm_open(name, NULL, KVSHM_NOREAPER, &mine), KVSHM_OK);
    char c = 1;
    TU_CHILD_CHECK(write(attached[1], &c, 1) == 1);
    close(done[1]);
    TU_CHILD_CHECK(read(done[0], &c, 1) == 0); /* until the parent closes */
    kvshm_close(mine);
    _exit(0);
  }
  char ch;
  close(done[0]);
  ck_assert_int_eq(read(attached[0], &ch, 1), 1);
  char k[16];
  size_t kl = key_of(3, k);
  uint32_t s = kvshm_test_stripe_of(kv, k, kl);
  make_ghost_holder(name, s);
  tu_assert_rc(kvshm_has(kv, k, kl), KVSHM_ETIMEDOUT);
  ck_assert_msg(strstr(kvshm_errdetail(), "kvshm-cli repair"), "%s",
                kvshm_errdetail());
  tu_assert_rc(kvshm_repair(kv, 0, NULL, NULL), KVSHM_ETIMEDOUT);
  ck_assert_int_ge(kvshm_repair(kv, KVSHM_REPAIR_FORCE, NULL, NULL), 1);
  tu_assert_rc(kvshm_has(kv, k, kl), KVSHM_OK);
  ck_assert_int_eq(check_all(kv), NKEYS);
  close(done[1]);
  tu_wait_ok(other, 5000, "attached process");
  kvshm_close(kv);
}
END_TEST

/* ---- words of a held lock overwritten before unlock --------------------- */

struct scribble {
  const char *name;
  uint32_t stripe;
  int fired;
};

static void scribble_hook(kvshm *kv, kvshm_test_point p, void *ctx) {
  (void)kv;
  struct scribble *sc = ctx;
  if (p != KVSHM_TP_SET_BEFORE_COMMIT || sc->fired++)
    return;
  unsigned char junk[16];
  tu_fill(junk, sizeof junk, 5);
  tu_poke32(sc->name, mutex_off(sc->stripe) + 16, 64); /* kind: PP */
  tu_poke32(sc->name, mutex_off(sc->stripe) + 8, 0x7fffffff);
  tu_poke(sc->name, mutex_off(sc->stripe) + 24, junk, sizeof junk); /* list */
}

START_TEST(held_lock_words_are_put_back_before_unlock) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  kvshm *kv = open_mode(name, MEMORY_ONLY);
  fill(kv);
  char k[16];
  size_t kl = key_of(5, k);
  struct scribble sc = {name, kvshm_test_stripe_of(kv, k, kl), 0};
  kvshm_test_set_hook(kv, scribble_hook, &sc);
  tu_assert_rc(kvshm_set(kv, k, kl, "new", 3, 0, 0, 0), KVSHM_OK);
  kvshm_test_set_hook(kv, NULL, NULL);
  ck_assert_int_eq(sc.fired, 1);
  tu_assert_value(kv, k, kl, "new", 3);
  ck_assert_uint_eq(tu_peek32(name, mutex_off(sc.stripe) + 16) & 0xff, 144);
  ck_assert_int_eq(tu_verify(kv), 0);
  kvshm_close(kv);
}
END_TEST

/* ---- the file cut short ------------------------------------------------- */

/* Cut to `keep` bytes under an attached handle: operations return
 * ECORRUPT (or a correct value from a page still there), never SIGBUS;
 * a new opener is refused; the reaper (other modes) does not crash. */
static void cut_short(int mode, uint64_t keep) {
  char name[TU_NAME_SIZE], path[TU_PATH_SIZE];
  tu_name(name);
  kvshm *kv = open_mode(name, mode);
  fill(kv);
  tu_shm_path(name, path);
  ck_assert_int_eq(truncate(path, (off_t)keep), 0);
  int corrupt = 0;
  for (int i = 0; i < NKEYS; i++) {
    char k[16];
    unsigned char v[700], got[700];
    size_t kl = key_of(i, k), vl = val_of(i, v), gl = 0;
    int rc = tu_get(kv, k, kl, got, sizeof got, &gl);
    if (rc == KVSHM_OK)
      ck_assert(gl == vl && memcmp(got, v, vl) == 0);
    else if (rc == KVSHM_ECORRUPT)
      corrupt++;
    else
      ck_abort_msg("get after the cut: %s (%s)", kvshm_err_name(rc),
                   kvshm_errdetail());
  }
  ck_assert_int_gt(corrupt, 0);
  tu_assert_rc(kvshm_set(kv, "k", 1, "v", 1, 0, 0, 0), KVSHM_ECORRUPT);
  ck_assert_msg(strstr(kvshm_errdetail(), "cut short"), "%s",
                kvshm_errdetail());
  ck_assert_int_ge(tu_verify(kv), 1);
  kvshm *again = NULL;
  tu_assert_rc(kvshm_open(name, NULL, KVSHM_NOREAPER, &again), KVSHM_ECORRUPT);
  kvshm_close(kv);
  tu_assert_rc(kvshm_unlink(name), KVSHM_OK);
}

START_TEST(test_cut_short_while_attached) {
  cut_short(_i, 1u << 20); /* the upper stripes' pages are gone */
  cut_short(_i, KVSHM_HDR_SIZE + 4 * KVSHM_STRIPE_SIZE); /* all regions */
  cut_short(_i, 4096); /* half the header: the watchdog's mapping too */
}
END_TEST

/* ---- the header ---------------------------------------------------------- */

START_TEST(zeroed_magic_is_put_back_by_the_next_opener) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  kvshm *kv = open_mode(name, MEMORY_ONLY);
  fill(kv);
  uint64_t zero = 0, magic = 0;
  tu_poke(name, 0, &zero, sizeof zero);
  kvshm *second = NULL;
  tu_assert_rc(kvshm_open(name, NULL, KVSHM_NOCREATE | KVSHM_NOREAPER, &second),
               KVSHM_OK);
  tu_peek(name, 0, &magic, sizeof magic);
  ck_assert(magic == KVSHM_MAGIC);
  ck_assert_int_eq(check_all(second), NKEYS); /* the same cache, whole */
  ck_assert_int_eq(check_all(kv), NKEYS);
  kvshm_close(second);
  kvshm_close(kv);
}
END_TEST

/* A wiped header is never re-initialised in place: with a process still
 * attached the opener is refused and the attached one keeps working (no
 * SIGBUS); once nobody is attached, the opener makes a new segment. */
START_TEST(wiped_header_is_replaced_only_when_unused) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  kvshm *kv = open_mode(name, MEMORY_ONLY);
  fill(kv);
  static unsigned char zeros[KVSHM_HDR_SIZE];
  tu_poke(name, 0, zeros, 4096); /* magic, geometry, checksum */
  kvshm_config c;
  tu_config(&c, 2u << 20, 0, 4);
  kvshm *second = NULL;
  tu_assert_rc(kvshm_open(name, &c, KVSHM_NOREAPER, &second), KVSHM_ECORRUPT);
  ck_assert_msg(strstr(kvshm_errdetail(), "still use it"), "%s",
                kvshm_errdetail());
  tu_assert_rc(kvshm_open(name, &c, KVSHM_NOCREATE | KVSHM_NOREAPER, &second),
               -ENOENT);
  ck_assert_int_eq(check_all(kv), NKEYS);
  tu_set_str(kv, "still", "works");
  kvshm_close(kv);
  second = tu_open(name, &c);
  ck_assert_uint_eq(tu_stats(second).entries, 0);
  tu_set_str(second, "fresh", "1");
  ck_assert_int_eq(tu_verify(second), 0);
  kvshm_close(second);
}
END_TEST

/* ---- leaked slots -------------------------------------------------------- */

START_TEST(leaked_slots_are_repaired) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  kvshm *kv = open_mode(name, MEMORY_ONLY);
  fill(kv);
  /* Empty every bucket of stripe 0: its entries are leaked slots. */
  struct kvshm_hdr h;
  tu_peek(name, 0, &h, sizeof h);
  size_t n = (size_t)h.buckets * 4;
  unsigned char *zero = calloc(1, n);
  tu_poke(name, h.region_off, zero, n);
  free(zero);
  char buf[8192];
  ck_assert_int_ge(tu_verify_capture(kv, buf, sizeof buf), 1);
  ck_assert_msg(strstr(buf, "leaked"), "%s", buf);
  int fixed = kvshm_repair(kv, 0, NULL, NULL);
  ck_assert_int_ge(fixed, 1);
  ck_assert_int_eq(tu_verify(kv), 0);
  ck_assert_int_eq(check_all(kv), NKEYS); /* rebuilt from the slots */
  ck_assert_int_eq(kvshm_repair(kv, 0, NULL, NULL), 0);
  kvshm_close(kv);
}
END_TEST

/* ---- a value changed while it is copied --------------------------------- */

struct flipper {
  const char *name;
  uint64_t off; /* a byte inside the value */
  volatile int stop;
};

static void *flip(void *arg) {
  struct flipper *f = arg;
  unsigned char orig, x;
  tu_peek(f->name, f->off, &orig, 1);
  for (unsigned i = 0; !f->stop; i++) {
    x = (unsigned char)(orig ^ (1u + (i & 0x7f)));
    tu_poke(f->name, f->off, &x, 1);
    tu_poke(f->name, f->off, &orig, 1);
  }
  return NULL;
}

START_TEST(value_changed_during_the_copy_is_never_returned) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  kvshm *kv = open_mode(name, MEMORY_ONLY);
  unsigned char v[3000], got[3000];
  tu_fill(v, sizeof v, 42);
  tu_assert_rc(kvshm_set(kv, "torn", 4, v, sizeof v, 0, 0, 0), KVSHM_OK);
  uint32_t s = kvshm_test_stripe_of(kv, "torn", 4);
  /* The entry is the stripe's first: its last slot is well inside it. */
  struct flipper f = {name, kvshm_test_slot_offset(kv, s, 10) + 50, 0};
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, flip, &f), 0);
  int ok = 0, corrupt = 0;
  for (int i = 0; i < 20000; i++) {
    size_t gl = 0;
    int rc = tu_get(kv, "torn", 4, got, sizeof got, &gl);
    if (rc == KVSHM_OK) {
      ck_assert_msg(gl == sizeof v && memcmp(got, v, sizeof v) == 0,
                    "a torn value was returned at get %d", i);
      ok++;
    } else if (rc == KVSHM_ECORRUPT || rc == KVSHM_ENOTFOUND) {
      corrupt += rc == KVSHM_ECORRUPT;
      f.stop = 1; /* the entry was dropped: write it again, calmly */
      pthread_join(t, NULL);
      tu_assert_rc(kvshm_set(kv, "torn", 4, v, sizeof v, 0, 0, 0), KVSHM_OK);
      f.stop = 0;
      f.off = kvshm_test_slot_offset(kv, s, 10) + 50;
      ck_assert_int_eq(pthread_create(&t, NULL, flip, &f), 0);
    } else {
      ck_abort_msg("get: %s", kvshm_err_name(rc));
    }
  }
  f.stop = 1;
  pthread_join(t, NULL);
  printf("torn-value check: %d good gets, %d caught as corrupt\n", ok, corrupt);
  kvshm_close(kv);
}
END_TEST

/* The same flipping while walks copy the entry out and write-behind copies
 * it to SQLite: neither ever takes a torn copy. */
START_TEST(torn_copies_never_reach_a_walk_or_sqlite) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  kvshm *kv = open_mode(name, SQLITE_BACKED);
  unsigned char v[3000];
  tu_fill(v, sizeof v, 43);
  uint32_t s = kvshm_test_stripe_of(kv, "torn", 4);
  struct flipper f = {name, 0, 0};
  int walks = 0, rows = 0;
  for (int round = 0; round < 200; round++) {
    int rc = kvshm_set(kv, "torn", 4, v, sizeof v, 0, 0, 0);
    ck_assert_msg(rc == KVSHM_OK || rc == KVSHM_ECORRUPT, "set: %s",
                  kvshm_err_name(rc));
    f.stop = 0;
    f.off = kvshm_test_slot_offset(kv, s, 10) + 50;
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, flip, &f), 0);
    kvshm_iter *it = NULL;
    if (kvshm_iter_open(kv, NULL, 0, 0, &it) == KVSHM_OK) {
      const void *k, *val;
      size_t kl, vl;
      while (kvshm_iter_next(it, &k, &kl, &val, &vl, NULL, NULL) == KVSHM_OK)
        if (kl == 4 && memcmp(k, "torn", 4) == 0) {
          ck_assert_msg(vl == sizeof v && memcmp(val, v, vl) == 0,
                        "a walk returned a torn value in round %d", round);
          walks++;
        }
      kvshm_iter_close(it);
    }
    rc = kvshm_flush(kv);
    f.stop = 1;
    pthread_join(t, NULL);
    ck_assert_msg(rc == KVSHM_OK || rc == KVSHM_ECORRUPT, "flush: %s",
                  kvshm_err_name(rc));
    static char row[4000];
    int n = tu_sql_value(tu_dir_file(dir, "d.db"), "torn", row, sizeof row);
    if (n >= 0) {
      ck_assert_msg(n == (int)sizeof v && memcmp(row, v, sizeof v) == 0,
                    "write-behind stored a torn value in round %d", round);
      rows++;
    }
  }
  printf("torn copies: %d walk copies and %d SQLite rows, all whole\n", walks,
         rows);
  ck_assert_int_gt(walks + rows, 0);
  kvshm_close(kv);
}
END_TEST

/* ---- /dev/shm too small -------------------------------------------------- */

/* In a private mount namespace with a 4 MiB /dev/shm (root only): ENOSHM,
 * and no file is left under the name. */
START_TEST(enoshm_leaves_no_file) {
  if (skipped_unless_root(__func__, "to mount a small /dev/shm"))
    return;
  pid_t pid = tu_fork();
  if (pid == 0) {
    if (unshare(CLONE_NEWNS) ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
        mount("tmpfs", "/dev/shm", "tmpfs", 0, "size=4m")) {
      printf("enoshm_leaves_no_file: skipped (%s)\n", strerror(errno));
      _exit(0);
    }
    kvshm_config c;
    tu_config(&c, 64u << 20, 0, 0);
    kvshm *kv = NULL;
    TU_CHILD_RC(kvshm_open("enoshm-test", &c, KVSHM_NOREAPER, &kv),
                KVSHM_ENOSHM);
    struct stat sb;
    TU_CHILD_CHECK(stat("/dev/shm/kvshm.enoshm-test", &sb) != 0);
    tu_config(&c, 1u << 20, 0, 0); /* and a cache that fits is fine */
    TU_CHILD_RC(kvshm_open("enoshm-test", &c, KVSHM_NOREAPER, &kv), KVSHM_OK);
    kvshm_close(kv);
    TU_CHILD_RC(kvshm_unlink("enoshm-test"), KVSHM_OK);
    _exit(0);
  }
  tu_wait_ok(pid, 20000, "open in a small /dev/shm");
}
END_TEST

static Suite *damage_suite(void) {
  Suite *s = suite_create("damage");
  TCase *tc = tu_tcase("mutex words", 120);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_loop_test(tc, test_mutex_garbage_never_aborts, MEMORY_ONLY,
                      PERSISTENT + 1);
  tcase_add_test(tc, verify_and_stats_report_a_damaged_lock);
  tcase_add_test(tc, reaper_lock_garbage_never_aborts);
  tcase_add_test(tc, ghost_holder_alone_is_taken_back);
  tcase_add_test(tc, ghost_holder_with_a_foreign_attacher_needs_repair);
  tcase_add_test(tc, held_lock_words_are_put_back_before_unlock);
  suite_add_tcase(s, tc);
  tc = tu_tcase("file", 120);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_loop_test(tc, test_cut_short_while_attached, MEMORY_ONLY,
                      PERSISTENT + 1);
  tcase_add_test(tc, zeroed_magic_is_put_back_by_the_next_opener);
  tcase_add_test(tc, wiped_header_is_replaced_only_when_unused);
  tcase_add_test(tc, enoshm_leaves_no_file);
  suite_add_tcase(s, tc);
  tc = tu_tcase("slots", 120);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, leaked_slots_are_repaired);
  tcase_add_test(tc, value_changed_during_the_copy_is_never_returned);
  tcase_add_test(tc, torn_copies_never_reach_a_walk_or_sqlite);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  Suite *s = damage_suite();
  return tu_run_suites(&s, 1);
}
