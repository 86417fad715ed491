/*
 * testutil.c - helpers shared by the Check suites (see testutil.h): unique
 * segment names cleaned up at exit, small configurations, a test clock,
 * test data, and fork/wait/gate helpers that turn hangs into failures.
 */
#include "testutil.h"

#include <dirent.h>
#include <sqlite3.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

/* ---- running suites ---------------------------------------------------- */

static pid_t runner_pid; /* the process that runs srunner */

static void sweep_leftovers(void) {
  char prefix[TU_NAME_SIZE];
  snprintf(prefix, sizeof prefix, "kvshm.tc-%d-", (int)runner_pid);
  DIR *d = opendir("/dev/shm");
  if (!d)
    return;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
      char path[TU_PATH_SIZE];
      snprintf(path, sizeof path, "/%s", e->d_name);
      if (shm_unlink(path) == 0)
        n++;
    }
  }
  closedir(d);
  if (n)
    fprintf(stderr, "testutil: removed %d segment(s) left by killed tests\n",
            n);
}

int tu_run_suites(Suite **suites, int n) {
  runner_pid = getpid();
  setvbuf(stdout, NULL, _IOLBF, 0);
  /* These tests move clocks and count evictions: a background reaper would
   * race them.  (check_reaper-style tests start one explicitly.) */
  setenv("KVSHM_REAPER", "off", 1);
  SRunner *sr = srunner_create(suites[0]);
  for (int i = 1; i < n; i++)
    srunner_add_suite(sr, suites[i]);
  srunner_run_all(sr, CK_ENV);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  sweep_leftovers();
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

TCase *tu_tcase(const char *name, double seconds) {
  TCase *tc = tcase_create(name);
  tcase_set_timeout(tc, seconds);
  return tc;
}

/* ---- names and segments ------------------------------------------------ */

static char (*names)[TU_NAME_SIZE]; /* names this process must unlink */
static size_t nnames, names_cap;
static pid_t names_owner;
static unsigned name_seq;

static void unlink_names(void) {
  if (getpid() != names_owner)
    return; /* a forked child exiting: the names are its parent's */
  for (size_t i = 0; i < nnames; i++)
    kvshm_unlink(names[i]); /* -ENOENT when the test already did */
  free(names);
  names = NULL;
  nnames = names_cap = 0;
}

const char *tu_name(char buf[TU_NAME_SIZE]) {
  if (!runner_pid)
    runner_pid = getpid();
  if (names_owner != getpid()) { /* first name in this (forked) process */
    names_owner = getpid();
    names = NULL;
    nnames = names_cap = 0;
    atexit(unlink_names);
  }
  snprintf(buf, TU_NAME_SIZE, "tc-%d-%d-%u", (int)runner_pid, (int)getpid(),
           name_seq++);
  if (nnames == names_cap) {
    names_cap = names_cap ? names_cap * 2 : 16;
    names = realloc(names, names_cap * sizeof *names);
    ck_assert_ptr_nonnull(names);
  }
  memcpy(names[nnames++], buf, TU_NAME_SIZE);
  kvshm_unlink(buf); /* a stale one from a crashed run with the same pids */
  return buf;
}

const char *tu_shm_path(const char *name, char buf[TU_PATH_SIZE]) {
  snprintf(buf, TU_PATH_SIZE, "/dev/shm/kvshm.%s", name);
  return buf;
}

int tu_shm_exists(const char *name) {
  char path[TU_PATH_SIZE];
  struct stat sb;
  return stat(tu_shm_path(name, path), &sb) == 0;
}

static int open_file(const char *name) {
  char path[TU_PATH_SIZE];
  int fd = open(tu_shm_path(name, path), O_RDWR | O_CLOEXEC);
  ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
  return fd;
}

void tu_poke(const char *name, uint64_t off, const void *data, size_t len) {
  int fd = open_file(name);
  ssize_t n = pwrite(fd, data, len, (off_t)off);
  close(fd);
  ck_assert_msg(n == (ssize_t)len, "pwrite %zu bytes at %llu: %zd", len,
                (unsigned long long)off, n);
}

void tu_peek(const char *name, uint64_t off, void *data, size_t len) {
  int fd = open_file(name);
  ssize_t n = pread(fd, data, len, (off_t)off);
  close(fd);
  ck_assert_msg(n == (ssize_t)len, "pread %zu bytes at %llu: %zd", len,
                (unsigned long long)off, n);
}

uint32_t tu_peek32(const char *name, uint64_t off) {
  uint32_t v;
  tu_peek(name, off, &v, sizeof v);
  return v;
}

void tu_poke32(const char *name, uint64_t off, uint32_t v) {
  tu_poke(name, off, &v, sizeof v);
}

void tu_config(kvshm_config *c, uint64_t memory, uint32_t slot,
               uint32_t stripes) {
  kvshm_config_init(c);
  c->memory_size = memory;
  c->slot_size = slot;
  c->stripes = stripes;
}

kvshm *tu_open(const char *name, const kvshm_config *cfg) {
  kvshm *kv = NULL;
  int rc = kvshm_open(name, cfg, KVSHM_NOREAPER, &kv);
  ck_assert_msg(rc == KVSHM_OK, "kvshm_open(%s) = %d (%s): %s", name, rc,
                kvshm_err_name(rc), kvshm_errdetail());
  ck_assert_ptr_nonnull(kv);
  return kv;
}

static void print_problem(void *ctx, const char *msg) {
  fprintf(stderr, "verify(%s): %s\n", (const char *)ctx, msg);
}

int tu_verify(kvshm *kv) {
  return kvshm_verify(kv, print_problem, (void *)kvshm_name(kv));
}

struct capture {
  char *buf;
  size_t n, used;
};

static void capture_problem(void *ctx, const char *msg) {
  struct capture *c = ctx;
  if (c->used + 1 < c->n) {
    int w = snprintf(c->buf + c->used, c->n - c->used, "%s\n", msg);
    if (w > 0)
      c->used += (size_t)w < c->n - c->used ? (size_t)w : c->n - c->used - 1;
  }
}

int tu_verify_capture(kvshm *kv, char *buf, size_t n) {
  struct capture c = {buf, n, 0};
  if (n)
    buf[0] = '\0';
  return kvshm_verify(kv, capture_problem, &c);
}

kvshm_stats tu_stats(kvshm *kv) {
  kvshm_stats st;
  memset(&st, 0xa5, sizeof st);
  tu_assert_rc(kvshm_stats_get(kv, &st), KVSHM_OK);
  return st;
}

/* ---- data --------------------------------------------------------------- */

uint64_t tu_rand(uint64_t *state) {
  uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ull;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * 0x2545f4914f6cdd1dull;
}

void tu_fill(void *buf, size_t len, uint64_t seed) {
  unsigned char *p = buf;
  uint64_t st = seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;
  for (size_t i = 0; i < len; i++) {
    if (i % 8 == 0)
      tu_rand(&st);
    p[i] = (unsigned char)(st >> (8 * (i % 8)));
  }
}

uint64_t tu_hash(const void *data, size_t len) {
  const unsigned char *p = data;
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < len; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

void tu_set_str(kvshm *kv, const char *key, const char *val) {
  tu_assert_rc(
      kvshm_set(kv, key, strlen(key), val, strlen(val), 0, KVSHM_TTL_NEVER, 0),
      KVSHM_OK);
}

int tu_get(kvshm *kv, const void *key, size_t klen, void *buf, size_t bufsize,
           size_t *len) {
  size_t n = (size_t)-1;
  int rc = kvshm_get(kv, key, klen, buf, bufsize, &n, NULL);
  if (len)
    *len = n;
  return rc;
}

void tu_assert_value(kvshm *kv, const void *key, size_t klen, const void *val,
                     size_t vlen) {
  unsigned char *buf = malloc(vlen + 1);
  ck_assert_ptr_nonnull(buf);
  size_t n = 0;
  int rc = kvshm_get(kv, key, klen, buf, vlen + 1, &n, NULL);
  ck_assert_msg(rc == KVSHM_OK, "get of a %zu-byte key = %d (%s): %s", klen, rc,
                kvshm_err_name(rc), kvshm_errdetail());
  ck_assert_msg(n == vlen, "value length %zu, wanted %zu", n, vlen);
  ck_assert_msg(memcmp(buf, val, vlen) == 0, "value bytes differ");
  free(buf);
}

#define VAL_MAGIC 0x4c415654u /* "TVAL" */

struct val_hdr {
  uint32_t magic, key_id, writer, seq, len, pad;
  uint64_t sum;
};

static uint64_t val_seed(uint32_t key_id, uint32_t writer, uint32_t seq) {
  return ((uint64_t)writer << 40) ^ ((uint64_t)seq << 8) ^
         ((uint64_t)key_id * 0x9e3779b97f4a7c15ull);
}

void tu_val_make(void *buf, size_t len, uint32_t key_id, uint32_t writer,
                 uint32_t seq) {
  ck_assert_uint_ge(len, TU_VAL_MIN);
  struct val_hdr h = {VAL_MAGIC, key_id, writer, seq, (uint32_t)len, 0, 0};
  unsigned char *p = buf;
  tu_fill(p + sizeof h, len - sizeof h, val_seed(key_id, writer, seq));
  h.sum = tu_hash(&h, sizeof h) ^ tu_hash(p + sizeof h, len - sizeof h);
  memcpy(p, &h, sizeof h);
}

uint32_t tu_val_flags(const void *buf, size_t len) {
  return (uint32_t)(tu_hash(buf, len) >> 13);
}

int tu_val_check(const void *buf, size_t len, uint32_t flags, uint32_t key_id,
                 uint32_t *writer, uint32_t *seq, const char **why) {
  struct val_hdr h;
  const unsigned char *p = buf;
  const char *dummy;
  if (!why)
    why = &dummy;
  if (len < TU_VAL_MIN)
    return *why = "too short", -1;
  memcpy(&h, p, sizeof h);
  if (h.magic != VAL_MAGIC)
    return *why = "bad magic", -1;
  if (h.len != len)
    return *why = "length differs from the one written", -1;
  if (h.key_id != key_id)
    return *why = "value of another key", -1;
  uint64_t sum = h.sum;
  h.sum = 0;
  if ((tu_hash(&h, sizeof h) ^ tu_hash(p + sizeof h, len - sizeof h)) != sum)
    return *why = "checksum mismatch (torn value)", -1;
  unsigned char *want = malloc(len - sizeof h);
  if (!want)
    return *why = "out of memory", -1;
  tu_fill(want, len - sizeof h, val_seed(key_id, h.writer, h.seq));
  int same = memcmp(want, p + sizeof h, len - sizeof h) == 0;
  free(want);
  if (!same)
    return *why = "bytes differ from the writer's", -1;
  if (flags != tu_val_flags(buf, len))
    return *why = "flags word does not belong to this value", -1;
  if (writer)
    *writer = h.writer;
  if (seq)
    *seq = h.seq;
  return 0;
}

/* ---- clock -------------------------------------------------------------- */

static uint64_t clock_read(void *ctx) {
  return ((tu_clock *)ctx)->now_ms;
}

void tu_clock_attach(kvshm *kv, tu_clock *c, uint64_t start_ms) {
  c->now_ms = start_ms;
  kvshm_test_set_clock(kv, clock_read, c);
}

/* ---- processes ---------------------------------------------------------- */

pid_t tu_fork(void) {
  fflush(stdout);
  fflush(stderr);
  pid_t parent = getpid();
  pid_t pid = fork();
  ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) /* the parent died before prctl */
      _exit(TU_CHILD_FAILED);
  }
  return pid;
}

uint64_t tu_mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void tu_sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) && errno == EINTR)
    ;
}

int tu_wait(pid_t pid, unsigned timeout_ms, int *status) {
  uint64_t deadline = tu_mono_ms() + timeout_ms;
  for (;;) {
    pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid)
      return 0;
    ck_assert_msg(r == 0 || errno == EINTR, "waitpid(%d): %s", (int)pid,
                  strerror(errno));
    if (tu_mono_ms() >= deadline) {
      kill(pid, SIGKILL);
      while (waitpid(pid, status, 0) < 0 && errno == EINTR)
        ;
      return -1;
    }
    tu_sleep_ms(1);
  }
}

const char *tu_status_str(int status, char *buf, size_t n) {
  if (WIFEXITED(status))
    snprintf(buf, n, "exited with code %d%s", WEXITSTATUS(status),
             WEXITSTATUS(status) == TU_CHILD_FAILED ? " (a check failed, "
                                                      "see stderr)"
                                                    : "");
  else if (WIFSIGNALED(status))
    snprintf(buf, n, "was killed by signal %d (%s)", WTERMSIG(status),
             strsignal(WTERMSIG(status)));
  else
    snprintf(buf, n, "ended with status 0x%x", status);
  return buf;
}

void tu_wait_ok(pid_t pid, unsigned timeout_ms, const char *what) {
  int status = 0;
  char buf[128];
  int rc = tu_wait(pid, timeout_ms, &status);
  ck_assert_msg(rc == 0,
                "%s (pid %d) did not finish within %u ms: killed "
                "(deadlock?)",
                what, (int)pid, timeout_ms);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "%s (pid %d) "
                "%s",
                what, (int)pid, tu_status_str(status, buf, sizeof buf));
}

static const char *watchdog_what;
static unsigned watchdog_secs;

static void watchdog_fired(int sig) {
  (void)sig;
  char msg[256];
  int n = snprintf(msg, sizeof msg,
                   "watchdog: %s still running after %u s "
                   "(deadlock?)\n",
                   watchdog_what ? watchdog_what : "test", watchdog_secs);
  if (write(STDERR_FILENO, msg, (size_t)n) < 0)
    _exit(98);
  _exit(99);
}

void tu_watchdog(unsigned seconds, const char *what) {
  watchdog_what = what;
  watchdog_secs = seconds;
  signal(SIGALRM, seconds ? watchdog_fired : SIG_DFL);
  alarm(seconds);
}

void tu_gate_init(tu_gate *g) {
  ck_assert_int_eq(pipe(g->ready), 0);
  ck_assert_int_eq(pipe(g->go), 0);
}

void tu_gate_wait(tu_gate *g) {
  close(g->go[1]);
  close(g->ready[0]);
  char c = 1;
  if (write(g->ready[1], &c, 1) != 1)
    _exit(TU_CHILD_FAILED);
  close(g->ready[1]);
  ssize_t n;
  while ((n = read(g->go[0], &c, 1)) < 0 && errno == EINTR)
    ;
  close(g->go[0]); /* n == 0: the parent closed the gate's write end */
}

void tu_gate_open(tu_gate *g, int n) {
  close(g->ready[1]);
  close(g->go[0]);
  for (int got = 0; got < n;) {
    char c;
    ssize_t r = read(g->ready[0], &c, 1);
    if (r < 0 && errno == EINTR)
      continue;
    ck_assert_msg(r == 1, "gate: only %d of %d children got ready", got, n);
    got++;
  }
  close(g->ready[0]);
  close(g->go[1]); /* every blocked read returns 0 now */
}

void tu_reaper_pause(void) {
  const char *f = getenv("KVSHM_REAPER_PAUSE");
  ck_assert_msg(f && *f, "set KVSHM_REAPER_PAUSE before starting the reaper");
  char ack[512];
  snprintf(ack, sizeof ack, "%s.ack", f);
  unlink(ack);
  FILE *p = fopen(f, "w");
  ck_assert_ptr_nonnull(p);
  fclose(p);
  uint64_t end = tu_mono_ms() + 5000;
  while (access(ack, F_OK) != 0) {
    ck_assert_msg(tu_mono_ms() < end, "the reaper did not pause");
    tu_sleep_ms(5);
  }
}

void tu_reaper_resume(void) {
  const char *f = getenv("KVSHM_REAPER_PAUSE");
  if (f && *f)
    unlink(f);
}

void tu_dir_make(char *dir, const char *tag) {
  setenv("KVSHM_REAPER", "on", 1);
  snprintf(dir, TU_DIR_SIZE, "/tmp/kvshm-%s-XXXXXX", tag);
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char pause[TU_DIR_SIZE + 8];
  snprintf(pause, sizeof pause, "%s/pause", dir);
  setenv("KVSHM_REAPER_PAUSE", pause, 1);
}

void tu_dir_remove(const char *dir) {
  char cmd[TU_DIR_SIZE + 16];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  (void)!system(cmd);
}

const char *tu_dir_file(const char *dir, const char *file) {
  static char p[TU_DIR_SIZE + 64];
  snprintf(p, sizeof p, "%s/%s", dir, file);
  return p;
}

#define TU_VISIBLE                                                             \
  " AND gen = (SELECT coalesce(max(v), 0) FROM kvshm_meta WHERE "              \
  "k = 'clear_gen')"

/* Prepare sql on a read-only connection to db; the caller finalizes both. */
static sqlite3_stmt *sql_prepare(const char *db, const char *sql, sqlite3 **h) {
  sqlite3_stmt *q = NULL;
  ck_assert_int_eq(sqlite3_open_v2(db, h, SQLITE_OPEN_READONLY, NULL),
                   SQLITE_OK);
  sqlite3_busy_timeout(*h, 2000);
  ck_assert_int_eq(sqlite3_prepare_v2(*h, sql, -1, &q, NULL), SQLITE_OK);
  return q;
}

int tu_sql_value(const char *db, const char *key, char *out, size_t cap) {
  sqlite3 *h;
  sqlite3_stmt *q = sql_prepare(
      db, "SELECT value FROM kvshm_entries WHERE key = ?1" TU_VISIBLE, &h);
  sqlite3_bind_blob(q, 1, key, (int)strlen(key), SQLITE_STATIC);
  int n = -1;
  if (sqlite3_step(q) == SQLITE_ROW) {
    n = sqlite3_column_bytes(q, 0);
    if (n)
      memcpy(out, sqlite3_column_blob(q, 0), (size_t)n < cap ? (size_t)n : cap);
  }
  sqlite3_finalize(q);
  sqlite3_close(h);
  return n;
}

int tu_sql_count(const char *db, const char *prefix) {
  sqlite3 *h;
  sqlite3_stmt *q = sql_prepare(db,
                                "SELECT count(*) FROM kvshm_entries WHERE "
                                "substr(key, 1, ?2) = ?1" TU_VISIBLE,
                                &h);
  sqlite3_bind_blob(q, 1, prefix, (int)strlen(prefix), SQLITE_STATIC);
  sqlite3_bind_int(q, 2, (int)strlen(prefix));
  int n = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int(q, 0) : -1;
  sqlite3_finalize(q);
  sqlite3_close(h);
  return n;
}

bool tu_other_user(uid_t *uid, gid_t *gid, const char *prog, const char *test) {
  if (geteuid() != 0) {
    printf("%s: %s skipped: needs root (to create user %s and "
           "give files to it)\n",
           prog, test, TU_OTHER_USER);
    return false;
  }
  struct passwd *pw = getpwnam(TU_OTHER_USER);
  if (!pw) {
    (void)!system("useradd --system --no-create-home --shell "
                  "/usr/sbin/nologin " TU_OTHER_USER " 2>/dev/null");
    pw = getpwnam(TU_OTHER_USER);
  }
  if (!pw) {
    printf("%s: %s skipped: cannot create user %s (useradd)\n", prog, test,
           TU_OTHER_USER);
    return false;
  }
  ck_assert_uint_ne(pw->pw_uid, 0);
  *uid = pw->pw_uid;
  *gid = pw->pw_gid;
  return true;
}

void tu_die_half_written(kvshm *kv, kvshm_test_point p, void *ctx) {
  (void)kv;
  (void)ctx;
  if (p == KVSHM_TP_SET_HALF_WRITTEN)
    raise(SIGKILL);
}

void tu_stripe_neighbour(kvshm *kv, const char *key, char out[32]) {
  uint32_t s = kvshm_test_stripe_of(kv, key, strlen(key));
  for (int i = 0;; i++) {
    snprintf(out, 32, "n%d", i);
    if (strcmp(out, key) && kvshm_test_stripe_of(kv, out, strlen(out)) == s)
      return;
  }
}

void tu_mode_config(kvshm_config *c, int mode, const char *dir,
                    const char *file) {
  tu_config(c, 1u << 20, 0, 4);
  c->sqlite_path = mode == TU_MEMORY_ONLY ? NULL : tu_dir_file(dir, file);
  c->persistent = mode == TU_PERSISTENT;
}

kvshm *tu_open_mode(const char *name, int mode, const char *dir,
                    const char *file) {
  kvshm_config c;
  tu_mode_config(&c, mode, dir, file);
  kvshm *kv = NULL;
  tu_assert_rc(kvshm_open(name, &c, KVSHM_NOREAPER, &kv), KVSHM_OK);
  return kv;
}
