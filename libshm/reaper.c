/*
 * reaper.c - kvshm-reaper, the one background process per segment, and how
 * processes start it.
 *
 * Election and liveness: the header's reaper_lock, a robust process-shared
 * mutex.  A starting reaper waits a moment for it (CLAIM_WAIT_MS); if it
 * gets it (or EOWNERDEAD: the last reaper died) it reaps, holding it for
 * its whole life, else another reaper runs and it exits.  Whether a reaper
 * runs is a trylock that fails with EBUSY, so it never depends on pids,
 * which differ between PID namespaces sharing one /dev/shm (containers).
 * reaper_pid and reaper_heartbeat_ms are for display (stats, top).
 *
 * Starting: kvshm_open, every POLL_OPS operations, and, for a SQLite
 * cache, a watchdog thread in every process that has it open (watch.c),
 * which waits on reaper_lock and wakes the instant its holder dies: a dead
 * reaper is replaced within WATCH_RESPAWN_MS even when nobody writes.  The
 * first process to move reaper_spawn_ms forward (CAS) spawns `kvshm-reaper
 * NAME` as a detached grandchild (double fork, setsid, stdio on /dev/null,
 * no inherited descriptors), from the absolute path in KVSHM_REAPER_PATH
 * (environment), else from beside the file this code was mapped from (the
 * addon, libkvshm.so or the program: see reaper_path), else from the path
 * compiled in (the repo's Makefile build).  KVSHM_REAPER=off in the
 * environment disables starting it (tests that move the clock);
 * KVSHM_REAPER_PAUSE=FILE makes it idle, between ticks, while FILE exists
 * (tests that hold write-behind back; it writes FILE.ack while idle).
 * Every variable is read with secure_getenv: a setuid or setgid program
 * (AT_SECURE) ignores them, so whoever runs it cannot choose the program
 * it starts or the files the reaper writes.  The spawner's trust options
 * (kvshm_config.trust) go to the reaper as --trust-uid / --trust-gid, so
 * that it accepts the segment and files its spawner accepted.
 *
 * Each tick (TICK_MS; persistent mode: a quarter of flush_delay_ms) works
 * for at most its budget (TICK_BUDGET_MS; persistent mode: a quarter of
 * flush_delay_ms too).  First, if the WAL has grown past WAL_TRIM_BYTES,
 * it checkpoints it to nothing (store.c says why it grows); then it goes
 * round the stripes from where the last tick stopped, until three
 * quarters of the budget (write-behind batches are sized to end by then,
 * and no wait for SQLite's lock outlasts it):
 *   - write-behind of dirty entries and tombstones (writeback.c);
 *   - expiry: scans SWEEP_PER_TICK slots from a cursor and removes expired
 *     entries (a dirty one becomes a tombstone, see index.c);
 *   - eviction: evicts clean entries, coldest first, until the stripe has
 *     low_water free slots, so writers rarely have to make room;
 * then deletes up to SQLITE_EXPIRE rows whose TTL passed from SQLite, and
 * a window of rows left by a clear (older generations, store.c).  The
 * heartbeat moves after every stripe, so it shows liveness, not tick length.
 * The log gets the first tick of each minute that outlasted its budget
 * (with the time of each step), and at exit the count of ticks, the
 * longest, and how many outlasted the budget (bench_store reads it).
 * LFU decay needs no sweep: a counter's decay is computed from its
 * last-access minutes whenever it is read (lfu.c), as Redis does.
 *
 * Memory-only caches get a reaper too, for expiry (and nothing else): their
 * expired entries are reclaimed in the background, not only when touched.
 * If kvshm-reaper cannot be found, a memory-only cache still opens (it is
 * correct without one: expired entries go when touched, and first when
 * evicting); a SQLite cache does not (KVSHM_EREAPER).
 *
 * On SIGTERM or SIGINT it writes everything dirty and exits; when the
 * segment is destroyed (kvshm_unlink) it does the same.
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef KVSHM_REAPER_PATH
#define KVSHM_REAPER_PATH ""
#endif

#define TICK_MS 100u
#define TICK_BUDGET_MS 250u
#define CLAIM_WAIT_MS 500u
#define SPAWN_WINDOW_MS 100u /* a spawned reaper claims within ms */
#define POLL_OPS 4096u
#define SWEEP_PER_TICK 4096u
#define SQLITE_EXPIRE 1000
#define GC_WINDOWS 4096u /* a clear's old rows go in this many windows */
#define GC_BUDGET_MS 20u /* per tick */
#define WAL_TRIM_BYTES (64u << 20) /* a longer WAL is checkpointed to 0 */

extern char **environ;

static uint32_t load32(uint32_t *p) {
  return atomic_load_explicit((_Atomic uint32_t *)p, memory_order_acquire);
}
static uint64_t load64(uint64_t *p) {
  return atomic_load_explicit((_Atomic uint64_t *)p, memory_order_acquire);
}
static void store64(uint64_t *p, uint64_t v) {
  atomic_store_explicit((_Atomic uint64_t *)p, v, memory_order_release);
}

bool kvshm__reaper_alive(kvshm *kv) {
  pthread_mutex_t *m = &kv->hdr->reaper_lock;
  if (kv->flags & KVSHM__READER) /* may not try it: is it held at all? */
    return kvshm__mutex_holder(m) != 0;
  if (kvshm__cut_short(kv) ||
      kvshm__hdr_lock_sane(kv, &kv->hdr->reaper_lock, "reaper", NULL))
    return true; /* unusable: starting reapers would not help */
  int rc = pthread_mutex_trylock(m);
  if (rc == EBUSY)
    return true;
  if (rc == EOWNERDEAD) {
    pthread_mutex_consistent(m);
    rc = 0;
  }
  if (rc == 0)
    pthread_mutex_unlock(m);
  return false; /* free, dead, or unusable: no reaper holds it */
}

static bool destroyed(kvshm *kv) {
  return atomic_load((_Atomic uint32_t *)&kv->hdr->destroyed) != 0;
}

/* ---- starting it ---- */

static int spawn(kvshm *kv, const char *path) {
  /* Built before fork: the child may only make async-signal-safe calls. */
  char uid[16], gid[16];
  char *argv[8];
  int argc = 0;
  argv[argc++] = (char *)"kvshm-reaper";
  if (kv->trust.flags & KVSHM_TRUST_UID) {
    snprintf(uid, sizeof uid, "%u", (unsigned)kv->trust.uid);
    argv[argc++] = (char *)"--trust-uid";
    argv[argc++] = uid;
  }
  if (kv->trust.flags & KVSHM_TRUST_GID) {
    snprintf(gid, sizeof gid, "%u", (unsigned)kv->trust.gid);
    argv[argc++] = (char *)"--trust-gid";
    argv[argc++] = gid;
  }
  if (kv->name[0] == '-') /* a name may begin with '-': not an option */
    argv[argc++] = (char *)"--";
  argv[argc++] = kv->name; /* last, and second unless trusting: `pgrep -f` */
  argv[argc] = NULL;
  long open_max = sysconf(_SC_OPEN_MAX);
  int max_fd = open_max > 0 && open_max < 65536 ? (int)open_max : 65536;
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0)
    return kvshm__fail(KVSHM_EREAPER, "cannot open /dev/null: %s",
                       strerror(errno));
  pid_t child = fork();
  if (child < 0) {
    close(devnull);
    return kvshm__fail(KVSHM_EREAPER, "cannot fork the reaper: %s",
                       strerror(errno));
  }
  if (child == 0) {
    /* Only async-signal-safe calls from here to exec. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setsid();
    if (_Fork() != 0) /* no atfork handlers: async-signal-safe */
      _exit(0);       /* the grandchild is adopted by init: no zombie for us */
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(devnull, 2);
    /* close_range(2) by number: musl has no wrapper; the loop is for
     * kernels older than 5.9. */
    if (syscall(SYS_close_range, 3u, ~0u, 0u) != 0)
      for (int fd = 3; fd < max_fd; fd++)
        close(fd);
    execve(path, argv, environ);
    _exit(127);
  }
  close(devnull);
  while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
    ;
  atomic_fetch_add((_Atomic uint64_t *)&kv->hdr->reaper_starts, 1);
  return KVSHM_OK;
}

/* The file holding this code (the addon, libkvshm.so or the program), as
 * the kernel resolved it when mapping it: the /proc/self/maps line whose
 * range holds our_file's address.  Symlinks and the name it was started
 * or loaded by play no part, on any C library.  Empty if unknown. */
static void our_file(char *out, size_t n) {
  out[0] = '\0';
  FILE *maps = fopen("/proc/self/maps", "re");
  if (!maps)
    return;
  uintptr_t here = (uintptr_t)&our_file;
  char line[PATH_MAX + 128];
  while (fgets(line, sizeof line, maps)) {
    uintptr_t lo, hi;
    int path_at = 0;
    if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %*s %*s %*s %*s %n", &lo, &hi,
               &path_at) < 2 ||
        here < lo || here >= hi || !path_at)
      continue;
    char *path = line + path_at;
    path[strcspn(path, "\n")] = '\0';
    /* A file deleted or replaced since: its directory is no guide. */
    if (path[0] == '/' && !strstr(path, " (deleted)") && strlen(path) < n)
      strcpy(out, path);
    break;
  }
  fclose(maps);
}

/* The kvshm-reaper to start: $KVSHM_REAPER_PATH, else the one beside the
 * file holding this code (so a prebuilt addon, a moved node_modules or an
 * installed kvshm-cli finds the reaper that came with it), else the one
 * compiled in (the repo's build).  A setuid or setgid program (AT_SECURE)
 * takes only the compiled-in one: a hard link to it in another user's
 * directory must not choose what it runs.  NULL if none is executable;
 * `beside` then holds the directory looked in. */
static const char *reaper_path(char *beside, size_t n) {
  const char *env = secure_getenv("KVSHM_REAPER_PATH");
  beside[0] = '\0';
  if (env && *env)
    return env[0] == '/' && access(env, X_OK) == 0 ? env : NULL;
  if (!getauxval(AT_SECURE)) {
    our_file(beside, n);
    char *slash = strrchr(beside, '/');
    if (slash && (size_t)(slash - beside) + sizeof "/kvshm-reaper" <= n) {
      strcpy(slash, "/kvshm-reaper");
      if (access(beside, X_OK) == 0)
        return beside;
      *slash = '\0'; /* for the message: the directory */
    }
  }
  if (KVSHM_REAPER_PATH[0] == '/' && access(KVSHM_REAPER_PATH, X_OK) == 0)
    return KVSHM_REAPER_PATH;
  return NULL;
}

int kvshm__reaper_ensure(kvshm *kv) {
  const char *mode = secure_getenv("KVSHM_REAPER");
  if (mode && strcmp(mode, "off") == 0)
    return KVSHM_OK;
  struct kvshm_hdr *h = kv->hdr;
  if (destroyed(kv) || kvshm__reaper_alive(kv))
    return KVSHM_OK;
  uint64_t now = kvshm__wall_ms();
  uint64_t last = load64(&h->reaper_spawn_ms);
  if (last + SPAWN_WINDOW_MS > now && last <= now)
    return KVSHM_OK; /* someone started one moments ago */
  if (!atomic_compare_exchange_strong((_Atomic uint64_t *)&h->reaper_spawn_ms,
                                      &last, now))
    return KVSHM_OK; /* someone else is starting it right now */
  char beside[PATH_MAX];
  const char *path = reaper_path(beside, sizeof beside);
  if (!path) {
    /* A memory-only cache is correct without a reaper (expired entries are
     * reclaimed when touched, and evicted first); a SQLite cache is not. */
    if (!kvshm__has_store(kv))
      return KVSHM_OK;
    const char *env = secure_getenv("KVSHM_REAPER_PATH");
    if (env && *env)
      return kvshm__fail(KVSHM_EREAPER,
                         "KVSHM_REAPER_PATH is '%s', not the absolute path "
                         "of an executable kvshm-reaper: correct or unset it",
                         env);
    return kvshm__fail(KVSHM_EREAPER,
                       "kvshm-reaper not found (looked in %s%s%s): "
                       "reinstall or rebuild kvshm (make), set "
                       "KVSHM_REAPER_PATH to its absolute path, or set "
                       "KVSHM_REAPER=off to run without one",
                       *beside ? beside : "the directory of this program",
                       *KVSHM_REAPER_PATH ? " and " : "", KVSHM_REAPER_PATH);
  }
  return spawn(kv, path);
}

void kvshm__reaper_poll(kvshm *kv) {
  if (kv->flags & (KVSHM_NOREAPER | KVSHM_RDONLY) ||
      ++kv->ops_since_poll < POLL_OPS)
    return;
  kv->ops_since_poll = 0;
  (void)kvshm__reaper_ensure(kv); /* an operation never fails for this */
}

/* ---- running it ---- */

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) {
  stop_signal = sig;
}

__attribute__((format(printf, 2, 3))) static void logf_(int fd, const char *fmt,
                                                        ...) {
  if (fd < 0)
    return;
  char line[1024];
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
  n += (size_t)snprintf(line + n, sizeof line - n, ".%03ldZ kvshm-reaper[%d] ",
                        ts.tv_nsec / 1000000, (int)getpid());
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
  va_end(ap);
  n += m > 0
           ? ((size_t)m < sizeof line - n - 1 ? (size_t)m : sizeof line - n - 2)
           : 0;
  line[n++] = '\n';
  (void)!write(fd, line, n);
}

/* Take reaper_lock: KVSHM_OK, KVSHM_EEXIST if another reaper holds it,
 * KVSHM_ECORRUPT if it is damaged and could not be made again. */
static int claim(kvshm *kv) {
  int bad = kvshm__hdr_lock_sane(kv, &kv->hdr->reaper_lock, "reaper", NULL);
  if (bad)
    return bad;
  struct timespec ts = kvshm__deadline(CLAIM_WAIT_MS);
  pthread_mutex_t *m = &kv->hdr->reaper_lock;
  int rc = pthread_mutex_timedlock(m, &ts);
  if (rc == EOWNERDEAD) {
    pthread_mutex_consistent(m);
    rc = 0;
  }
  if (rc)
    return KVSHM_EEXIST;
  store64(&kv->hdr->reaper_heartbeat_ms, kvshm__wall_ms());
  atomic_store((_Atomic uint32_t *)&kv->hdr->reaper_pid, (uint32_t)getpid());
  return KVSHM_OK;
}

/* Remove expired entries from up to SWEEP_PER_TICK slots of stripe s. */
static int sweep_stripe(kvshm *kv, uint32_t s, uint32_t *cursor, uint64_t now) {
  int rc = kvshm__lock(kv, s);
  if (rc)
    return rc;
  for (uint32_t i = 0; i < SWEEP_PER_TICK; i++) {
    if (*cursor < 1 || *cursor > kv->nslots)
      *cursor = 1;
    uint32_t r = (*cursor)++;
    struct kvshm_head *hd = (void *)kvshm__slot(kv, s, r);
    if ((hd->state & KVSHM_KIND_MASK) == KVSHM_KIND_HEAD &&
        !(hd->state & KVSHM_ST_TOMB) && hd->expires_ms &&
        hd->expires_ms <= now &&
        kvshm__entry_check_locked(kv, s, r, false) == KVSHM_OK)
      kvshm__expire_locked(kv, s, r, NULL);
  }
  kvshm__unlock(kv, s);
  return KVSHM_OK;
}

/* Keep low_water free slots in stripe s by evicting clean entries. */
static int keep_free(kvshm *kv, uint32_t s, uint32_t low_water, uint64_t now) {
  int rc = kvshm__lock(kv, s);
  if (rc)
    return rc;
  if (kvshm__stripe(kv, s)->nfree < low_water)
    (void)kvshm__evict_locked(kv, s, low_water, KVSHM_NIL, now);
  kvshm__unlock(kv, s);
  return KVSHM_OK;
}

/* The log, with the cache's mode.  A symlink or another user's file there
 * is refused, and the reaper runs without a log: following it would let
 * whoever planted it make us append to any file we may write. */
static int open_log(kvshm *kv) {
  const char *env = secure_getenv("KVSHM_REAPER_LOG");
  char path[KVSHM_PATH_MAX + 16];
  if (env && *env)
    snprintf(path, sizeof path, "%s", env);
  else if (kvshm__has_store(kv))
    snprintf(path, sizeof path, "%s.reaper.log", kv->hdr->sqlite_path);
  else
    return -1;
  int fd =
      kvshm__open_file(path, O_WRONLY | O_APPEND | O_CREAT,
                       kvshm__file_mode(kv), &kv->trust, "reaper log", NULL);
  if (fd < 0) {
    fprintf(stderr, "kvshm-reaper: running without a log: %s\n",
            kvshm_errdetail());
    return -1;
  }
  return fd;
}

/* Destroyed, unlinked, or cut short (checked with fstat each tick: this
 * is where a shrunk file is found even when no process touches it). */
static bool segment_gone(kvshm *kv) {
  struct stat sb;
  return destroyed(kv) || kvshm__cut_short(kv) || kv->seg_fd < 0 ||
         fstat(kv->seg_fd, &sb) != 0 || sb.st_nlink == 0 ||
         (uint64_t)sb.st_size < kv->size;
}

/* Is the test pause file there?  Says so in <file>.ack (never through a
 * symlink, nor in another user's file). */
static bool paused(kvshm *kv, const char *file) {
  char ack[KVSHM_PATH_MAX + 8];
  snprintf(ack, sizeof ack, "%s.ack", file);
  if (access(file, F_OK) != 0) {
    unlink(ack);
    return false;
  }
  int fd = kvshm__open_file(ack, O_WRONLY | O_CREAT, 0600, &kv->trust,
                            "reaper pause ack file", NULL);
  if (fd >= 0)
    close(fd);
  return true;
}

/* Rows left by clears: delete one window of hashes at a time.  gc_gen in
 * kvshm_meta is the clear generation whose old rows are all gone. */
struct gc {
  uint64_t target; /* the generation being cleaned for; 0 = idle */
  uint32_t window; /* next window */
};

/* One tick of clean-up, in the transaction gc_step opened. */
static int gc_step_txn(kvshm *kv, struct gc *g) {
  int rc = kvshm__store_owned(kv); /* a destroyed segment deletes nothing */
  if (rc)
    return rc;
  /* Never clean for a generation behind the file's: a header word lowered
   * by damage would make the newest rows look old.  Raise it instead. */
  uint64_t file = 0;
  if ((rc = kvshm__store_meta_get(kv, "clear_gen", &file)))
    return rc;
  if (file > kvshm__clear_gen(kv)) {
    kvshm__clear_gen_raise(kv, file);
    return KVSHM_OK;
  }
  uint64_t gen = kvshm__clear_gen(kv);
  /* The file must know of a clear before its rows go: a clearer killed
   * before it recorded it would otherwise leave half of them, to come back
   * on a segment made again over the file. */
  if (file < gen && (rc = kvshm__store_meta_raise(kv, "clear_gen", gen)))
    return rc;
  if (g->target != gen) {
    uint64_t done = 0;
    if ((rc = kvshm__store_meta_get(kv, "gc_gen", &done)))
      return rc;
    g->target = gen;
    g->window = done == gen ? GC_WINDOWS : 0; /* else: to do */
  }
  uint64_t until = kvshm__wall_ms() + GC_BUDGET_MS;
  while (g->window < GC_WINDOWS && kvshm__wall_ms() < until) {
    uint64_t span = UINT64_MAX / GC_WINDOWS + 1;
    uint64_t lo = (uint64_t)g->window * span;
    uint64_t hi = g->window + 1 == GC_WINDOWS ? UINT64_MAX : lo + span - 1;
    int removed = 0;
    if ((rc = kvshm__store_gc(kv, kvshm__hpos(lo), kvshm__hpos(hi), gen,
                              &removed)))
      return rc;
    if (++g->window == GC_WINDOWS)
      return kvshm__store_meta_raise(kv, "gc_gen", gen);
  }
  return KVSHM_OK;
}

/* rc, unless it only says that SQLite stayed busy until the tick's end
 * (it is done again next tick): not worth a line in the log. */
static int busy_ok(int rc) {
  return rc == KVSHM__EBUSY ? KVSHM_OK : rc;
}

static int gc_step(kvshm *kv, struct gc *g) {
  if (g->target == kvshm__clear_gen(kv) && g->window == GC_WINDOWS)
    return KVSHM_OK; /* nothing since the last clean-up: no lock taken */
  int rc = kvshm__store_begin(kv);
  if (rc)
    return rc;
  rc = gc_step_txn(kv, g);
  int end = kvshm__store_end(kv, !rc);
  if (rc || end)
    g->target = 0; /* look again next tick */
  return rc ? rc : end;
}

int kvshm_reaper_run(const char *name, int log_fd) {
  return kvshm_reaper_run_config(name, NULL, log_fd);
}

int kvshm_reaper_run_config(const char *name, const kvshm_config *cfg,
                            int log_fd) {
  kvshm *kv;
  int rc = kvshm_open(name, cfg,
                      KVSHM_NOCREATE | KVSHM_NOREAPER | KVSHM__AS_REAPER, &kv);
  if (rc) {
    logf_(log_fd, "cannot open cache '%s': %s", name, kvshm_errdetail());
    return rc;
  }
  int own_log = -1;
  if (log_fd < 0)
    log_fd = own_log = open_log(kv);
  if ((rc = claim(kv)) != KVSHM_OK) {
    if (rc == KVSHM_EEXIST) {
      logf_(log_fd, "cache '%s' already has reaper %u; exiting", name,
            load32(&kv->hdr->reaper_pid));
      rc = KVSHM_OK;
    } else {
      logf_(log_fd, "%s; exiting", kvshm_errdetail());
    }
    kvshm_close(kv);
    if (own_log >= 0)
      close(own_log);
    return rc;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGHUP, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  bool store = kvshm__has_store(kv);
  if (store && (rc = kvshm__store_open_check(kv)) != KVSHM_OK)
    logf_(log_fd, "SQLite: %s (will retry)", kvshm_errdetail());
  struct kvshm_hdr *h = kv->hdr;
  uint32_t tick = h->persistent ? h->flush_delay_ms / 4 : TICK_MS;
  tick = tick < 10 ? 10 : tick > TICK_MS ? TICK_MS : tick;
  uint32_t budget = h->persistent && h->flush_delay_ms / 4 < TICK_BUDGET_MS
                        ? h->flush_delay_ms / 4
                        : TICK_BUDGET_MS;
  budget = budget < 10 ? 10 : budget;
  uint32_t low_water = kv->nslots / 32 > 8 ? kv->nslots / 32 : 8;
  uint32_t *cursor = calloc(kv->nstripes, sizeof *cursor);
  struct gc gc = {0, 0}; /* the first tick reads where the file stands */
  uint32_t next_stripe = 0;
  logf_(log_fd, "reaping cache '%s'%s%s (tick %u ms)", name,
        store ? " into " : " (memory only)", store ? h->sqlite_path : "", tick);
  const char *why = "stopped by signal";
  uint64_t written = 0, last_report = kvshm__wall_ms();
  /* Tick lengths (from its start to its sleep; the final flush is not a
   * tick), logged at exit for bench_store: each should stay within budget
   * plus the SQLite expiry and clean-up steps that follow the stripes. */
  uint64_t ticks = 0, longest = 0, over = 0, last_over = 0;
  /* Tests hold write-behind back at a safe point (no lock held) with a
   * pause file, where SIGSTOP could freeze the reaper holding a lock. */
  const char *pause = secure_getenv("KVSHM_REAPER_PAUSE");
  while (!stop_signal) {
    /* The WAL's trim, if due, gets the first quarter of the budget, the
     * stripes up to three quarters, SQLite's expiry and the clean-up of a
     * clear the rest.  No wait for SQLite's locks outlasts its part
     * (KVSHM__EBUSY: another time). */
    uint64_t now = kvshm__wall_ms(), deadline = now + budget - budget / 4;
    store64(&h->reaper_heartbeat_ms, now);
    if (segment_gone(kv)) {
      why = destroyed(kv) ? "segment destroyed"
                          : "segment file removed or cut short";
      break;
    }
    if (pause && *pause && paused(kv, pause)) {
      struct timespec ts = {0, (long)tick * 1000000L};
      nanosleep(&ts, NULL);
      continue;
    }
    uint64_t part[5]; /* when each step ended, for the log */
    if (store) {
      (void)kvshm__store_deadline(kv, now + budget / 4);
      if (busy_ok(kvshm__store_wal_trim(kv, WAL_TRIM_BYTES)))
        logf_(log_fd, "WAL checkpoint: %s", kvshm_errdetail());
      (void)kvshm__store_deadline(kv, deadline);
    }
    part[0] = kvshm__wall_ms();
    /* Round the stripes from where the last tick stopped, within budget. */
    for (uint32_t i = 0; i < kv->nstripes && !stop_signal; i++) {
      uint32_t s = next_stripe;
      next_stripe = (next_stripe + 1) % kv->nstripes;
      if (store) {
        rc = kvshm__writeback_stripe(kv, s, 0, deadline, &written);
        if (rc && rc != KVSHM__EBUSY)
          logf_(log_fd, "write-behind of stripe %u: %s", s, kvshm_errdetail());
      }
      if (cursor)
        sweep_stripe(kv, s, &cursor[s], now);
      if (store)
        keep_free(kv, s, low_water, now);
      store64(&h->reaper_heartbeat_ms, kvshm__wall_ms());
      if (kvshm__wall_ms() >= deadline)
        break;
    }
    int removed = 0;
    part[1] = kvshm__wall_ms();
    if (store)
      (void)kvshm__store_deadline(kv, now + budget);
    if (store && busy_ok(kvshm__store_expire(kv, now, SQLITE_EXPIRE, &removed)))
      logf_(log_fd, "SQLite expiry: %s", kvshm_errdetail());
    part[2] = kvshm__wall_ms();
    if (store && busy_ok(gc_step(kv, &gc)))
      logf_(log_fd, "removing cleared rows: %s", kvshm_errdetail());
    part[3] = kvshm__wall_ms();
    if (busy_ok(kvshm__pclear_settle(kv))) /* its clearer died */
      logf_(log_fd, "finishing a prefix clear: %s", kvshm_errdetail());
    part[4] = kvshm__wall_ms();
    if (now - last_report >= 60000) {
      logf_(log_fd, "%llu entries written behind in the last minute",
            (unsigned long long)written);
      written = 0;
      last_report = now;
    }
    uint64_t spent = kvshm__wall_ms() - now;
    ticks++;
    longest = spent > longest ? spent : longest;
    over += spent > budget;
    if (spent > budget && now - last_over >= 60000) { /* once a minute */
      last_over = now;
      logf_(log_fd,
            "a tick took %llu ms (budget %u): WAL %llu, stripes %llu, "
            "SQLite expiry %llu, clean-up %llu, prefix clears %llu",
            (unsigned long long)spent, budget,
            (unsigned long long)(part[0] - now),
            (unsigned long long)(part[1] - part[0]),
            (unsigned long long)(part[2] - part[1]),
            (unsigned long long)(part[3] - part[2]),
            (unsigned long long)(part[4] - part[3]));
    }
    if (spent < tick) {
      struct timespec ts = {0, (long)(tick - spent) * 1000000L};
      nanosleep(&ts, NULL);
    }
  }
  logf_(log_fd,
        "ticks: %llu, longest %llu ms, %llu longer than the %u ms "
        "budget",
        (unsigned long long)ticks, (unsigned long long)longest,
        (unsigned long long)over, budget);
  if (store)
    (void)kvshm__store_deadline(kv, 0); /* the final flush waits */
  rc = kvshm_flush(kv);
  logf_(log_fd, "%s; final flush: %s", why, rc ? kvshm_errdetail() : "done");
  atomic_store((_Atomic uint32_t *)&h->reaper_pid, 0);
  if (kvshm__mutex_check(&h->reaper_lock, (char[120]){0}, 120) == KVSHM_OK)
    pthread_mutex_unlock(&h->reaper_lock); /* (else it was made again) */
  free(cursor);
  kvshm__store_close(kv);
  kvshm_close(kv);
  if (own_log >= 0)
    close(own_log);
  return rc;
}
