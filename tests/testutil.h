/*
 * testutil.h - helpers shared by the Check suites in tests/: segment names
 * that are unique to one test process and removed however the test ends,
 * small cache configurations, a clock the test moves instead of sleeping,
 * deterministic test data, and fork/wait helpers with deadlines so that a
 * deadlock or a crash in a child fails a test instead of hanging the run.
 *
 * Children created with tu_fork() must not use ck_assert (its failure
 * message would come from the wrong process): they check with TU_CHILD_*,
 * which print the failure and _exit(TU_CHILD_FAILED), and the parent asserts
 * on the exit status with tu_wait_ok().
 */
#ifndef KVSHM_TESTUTIL_H
#define KVSHM_TESTUTIL_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#include "kvshm.h"
#include "kvshm_test.h"

#define TU_NAME_SIZE 64
#define TU_PATH_SIZE 300
#define TU_CHILD_FAILED 66 /* exit code of a child whose check failed */

/* ---- running suites ---------------------------------------------------- */

/*
 * Run the suites with one srunner (fork mode unless CK_FORK=no), print
 * Check's summary, remove any segment a crashed test left behind, and
 * return the process exit status (0 only if every test passed).
 */
int tu_run_suites(Suite **suites, int n);
/* A test case with a Check timeout of `seconds` (a safety net only). */
TCase *tu_tcase(const char *name, double seconds);

/* ---- names and segments ------------------------------------------------ */

/*
 * Put a new unique cache name in buf ("tc-<runner pid>-<pid>-<n>") and
 * remember it: the test process unlinks it at exit even if a check failed.
 */
const char *tu_name(char buf[TU_NAME_SIZE]);
/* "/dev/shm/kvshm.<name>" */
const char *tu_shm_path(const char *name, char buf[TU_PATH_SIZE]);
/* Does the segment file exist? */
int tu_shm_exists(const char *name);
/* Read/write bytes of a segment through its /dev/shm file (not a mapping). */
void tu_poke(const char *name, uint64_t off, const void *data, size_t len);
void tu_peek(const char *name, uint64_t off, void *data, size_t len);
uint32_t tu_peek32(const char *name, uint64_t off);
void tu_poke32(const char *name, uint64_t off, uint32_t v);

/* A small cache: memory bytes, slot size, stripes; everything else 0. */
void tu_config(kvshm_config *c, uint64_t memory, uint32_t slot,
               uint32_t stripes);
/* kvshm_open with KVSHM_NOREAPER, asserting success. */
kvshm *tu_open(const char *name, const kvshm_config *cfg);
/* kvshm_verify, printing every problem to stderr; returns the count. */
int tu_verify(kvshm *kv);
/* kvshm_verify collecting the problems into buf (for expected damage). */
int tu_verify_capture(kvshm *kv, char *buf, size_t n);
/* kvshm_stats_get, asserting success. */
kvshm_stats tu_stats(kvshm *kv);

/* ---- data --------------------------------------------------------------- */

/* xorshift64*: deterministic pseudo-random numbers for test data. */
uint64_t tu_rand(uint64_t *state);
/* Fill buf with len bytes derived from seed (same seed, same bytes). */
void tu_fill(void *buf, size_t len, uint64_t seed);
/* 64-bit FNV-1a. */
uint64_t tu_hash(const void *data, size_t len);
/* Set key (a C string) to val, asserting KVSHM_OK. */
void tu_set_str(kvshm *kv, const char *key, const char *val);
/*
 * Get key into buf (bufsize bytes), returning the status; *len gets the
 * value length.  For values the test wrote with known bytes.
 */
int tu_get(kvshm *kv, const void *key, size_t klen, void *buf, size_t bufsize,
           size_t *len);
/* Assert that key holds exactly val/vlen. */
void tu_assert_value(kvshm *kv, const void *key, size_t klen, const void *val,
                     size_t vlen);

/*
 * Self-checking values for multi-process tests: each carries the id of its
 * key, its writer and the writer's sequence number, and bytes derived from
 * them, so any reader detects a torn, mixed or misplaced value.  The flags
 * word stored with it is tu_val_flags() of it.  len >= TU_VAL_MIN.
 */
#define TU_VAL_MIN 32
void tu_val_make(void *buf, size_t len, uint32_t key_id, uint32_t writer,
                 uint32_t seq);
uint32_t tu_val_flags(const void *buf, size_t len);
/* 0 if buf/len/flags is a value made for key_id (writer, seq out), else
 * -1 with a reason in why. */
int tu_val_check(const void *buf, size_t len, uint32_t flags, uint32_t key_id,
                 uint32_t *writer, uint32_t *seq, const char **why);

/* ---- clock -------------------------------------------------------------- */

/* A wall clock the test sets: attach it to a handle, then move now_ms. */
typedef struct tu_clock {
  uint64_t now_ms;
} tu_clock;
#define TU_T0 1700000000000ull /* a plausible wall-clock time, ms */
void tu_clock_attach(kvshm *kv, tu_clock *c, uint64_t start_ms);

/* ---- processes ---------------------------------------------------------- */

/* fork(); the child dies with SIGKILL if the test process goes away. */
pid_t tu_fork(void);
/*
 * Wait for pid at most timeout_ms.  Returns 0 and *status when it ended;
 * -1 if it did not (it is then killed with SIGKILL and reaped).
 */
int tu_wait(pid_t pid, unsigned timeout_ms, int *status);
/* Describe a wait status ("exited 0", "killed by SIGABRT", ...). */
const char *tu_status_str(int status, char *buf, size_t n);
/* Assert that pid exits with code 0 within timeout_ms. */
void tu_wait_ok(pid_t pid, unsigned timeout_ms, const char *what);
/*
 * A fresh directory /tmp/kvshm-<tag>-XXXXXX for one test's SQLite files (dir
 * holds TU_DIR_SIZE bytes), with reapers on and their pause file in it (see
 * tu_reaper_pause); tu_dir_remove deletes it.
 */
#define TU_DIR_SIZE 64
void tu_dir_make(char *dir, const char *tag);
void tu_dir_remove(const char *dir);
/*
 * Read a kvshm SQLite file directly, as another program would, seeing only
 * rows of the file's current clear generation: the value of key (its length,
 * up to cap bytes copied to out; -1 if absent), and the number of rows whose
 * key starts with prefix.
 */
int tu_sql_value(const char *db, const char *key, char *out, size_t cap);
int tu_sql_count(const char *db, const char *prefix);
/* "<dir>/<file>", in a static buffer (valid until the next call). */
const char *tu_dir_file(const char *dir, const char *file);

/* The three modes every guarantee is tested in (tcase_add_loop_test's
 * range: TU_MEMORY_ONLY to TU_MODES). */
enum { TU_MEMORY_ONLY, TU_SQLITE_BACKED, TU_PERSISTENT, TU_MODES };
/* A 1 MiB cache of 4 stripes in `mode`; SQLite modes use `file` in dir. */
void tu_mode_config(kvshm_config *c, int mode, const char *dir,
                    const char *file);
/* Open (or create) name as tu_mode_config says, without a reaper. */
kvshm *tu_open_mode(const char *name, int mode, const char *dir,
                    const char *file);
/*
 * Hold the reaper idle between two ticks, where it holds no lock (SIGSTOP
 * could freeze it holding one), and wait until it is; resume lets it go.
 * Reapers read the file's path from $KVSHM_REAPER_PAUSE, which the test
 * sets before it starts them.
 */
void tu_reaper_pause(void);
void tu_reaper_resume(void);
/*
 * The ids of the system user TU_OTHER_USER, created if missing (root only);
 * false, with a line saying why `prog`'s `test` is skipped, when that
 * cannot be done here.
 */
#define TU_OTHER_USER "kvshm-test-other"
bool tu_other_user(uid_t *uid, gid_t *gid, const char *prog, const char *test);
/* A test hook that SIGKILLs its process half-way through a set's write
 * (KVSHM_TP_SET_HALF_WRITTEN): the stripe's lock holder dies mid-write. */
void tu_die_half_written(kvshm *kv, kvshm_test_point p, void *ctx);
/* A key "n<i>" of the same stripe as key, into out (32 bytes). */
void tu_stripe_neighbour(kvshm *kv, const char *key, char out[32]);
/* Sleep ms milliseconds. */
void tu_sleep_ms(unsigned ms);
/* Monotonic milliseconds. */
uint64_t tu_mono_ms(void);

/*
 * Abort the calling process with a message if it is still running after
 * `seconds` (SIGALRM): a deadlock then fails the test with `what` named,
 * instead of waiting for Check's timeout.  tu_watchdog(0, NULL) disarms.
 */
void tu_watchdog(unsigned seconds, const char *what);

/*
 * A start gate for n children: each calls tu_gate_wait() (which reports it
 * is ready and blocks); the parent calls tu_gate_open(), which waits until
 * all n are ready and releases them at the same instant.
 */
typedef struct tu_gate {
  int ready[2];
  int go[2];
} tu_gate;
void tu_gate_init(tu_gate *g);
void tu_gate_wait(tu_gate *g);        /* child */
void tu_gate_open(tu_gate *g, int n); /* parent */

/* Checks inside a forked child: print and _exit(TU_CHILD_FAILED). */
#define TU_CHILD_CHECK(cond)                                                   \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: child %d: check failed: %s\n", __FILE__,         \
              __LINE__, (int)getpid(), #cond);                                 \
      _exit(TU_CHILD_FAILED);                                                  \
    }                                                                          \
  } while (0)
#define TU_CHILD_RC(rc, want)                                                  \
  do {                                                                         \
    int rc_ = (rc), want_ = (want);                                            \
    if (rc_ != want_) {                                                        \
      fprintf(stderr,                                                          \
              "%s:%d: child %d: %s returned %d (%s), wanted %d "               \
              "(%s): %s\n",                                                    \
              __FILE__, __LINE__, (int)getpid(), #rc, rc_,                     \
              kvshm_err_name(rc_), want_, kvshm_err_name(want_),               \
              kvshm_errdetail());                                              \
      _exit(TU_CHILD_FAILED);                                                  \
    }                                                                          \
  } while (0)

/* Assert an exact status code, naming both codes on failure. */
#define tu_assert_rc(rc, want)                                                 \
  do {                                                                         \
    int rc_ = (rc), want_ = (want);                                            \
    ck_assert_msg(rc_ == want_,                                                \
                  "%s returned %d (%s), wanted %d (%s); "                      \
                  "detail: %s",                                                \
                  #rc, rc_, kvshm_err_name(rc_), want_, kvshm_err_name(want_), \
                  kvshm_errdetail());                                          \
  } while (0)

#endif /* KVSHM_TESTUTIL_H */
