/*
 * check_pclear_torture.c - kvshm_clear_prefix under fire, in each of the
 * three modes (memory only, SQLite-backed, persistent).
 *
 * Processes, all forked before any of them opens SQLite:
 *
 *   writers   WRITERS of them write keys under pa:, pb: and pc: (pc: is
 *             never cleared) with one increasing sequence number each
 *             (key pX:w<w>:<i> holds the number of the set that wrote it,
 *             so a key's values only grow), now and then through
 *             set_many (with one key twice: the last must win) and
 *             del_many; after a set they read it back: with no clear of
 *             its prefix begun since before the set, it must be there;
 *   clearers  CLEARERS of them clear pa: or pb: again and again; before
 *             each they note, per writer, the last set of the prefix that
 *             had finished (the floor), and after it they check by get and
 *             by walk (KVSHM_ITER_STORE) that no key of the prefix holds a
 *             value at or below its writer's floor.  Some kill themselves
 *             at KVSHM_TP_CLEAR_STEPPED or KVSHM_TP_PCLEAR_MARKING;
 *   reader    gets, get_many, peeks and walks all the while, against the
 *             floors of every clear known to be whole (returned, or whose
 *             clearer died after its step);
 *   the test  SIGKILLs clearers, writers and the cache's reaper at random
 *             moments, starting them again;
 *   reboot    between rounds and at the end: everyone stops, a process
 *             removes the segment (kvshm_unlink) and makes a new one over
 *             the same SQLite file, and checks the same floors there, and
 *             (with SQLite) that each writer's last set of a prefix no
 *             clear began after is still there.
 *
 * $KVSHM_PCLEAR_TORTURE_MS: milliseconds of fire per mode (default 4000,
 * in two rounds; longer runs reboot every 2 s).  Every figure is printed
 * to stderr.
 */
#include "testutil.h"

#include "layout.h" /* struct kvshm_hdr: the reaper's pid */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>

enum { MEMORY_ONLY, SQLITE_BACKED, PERSISTENT };
static const char *const mode_name[] = {"memory-only", "sqlite", "persistent"};

#define WRITERS 3
#define CLEARERS 2
#define NPFX 3    /* pa: pb: pc: */
#define CLEARED 2 /* pa: and pb: are cleared; pc: never */
#define KEYS 300  /* keys per writer and prefix */
#define ROUNDS 2
#define MSG 512

static const char *const pfx[NPFX] = {"pa:", "pb:", "pc:"};

/* A clearer's clear in flight; written by it, or by the test once it is
 * dead. */
struct clear_now {
  _Atomic int phase; /* IDLE, BEGUN, STEPPED */
  int p;
  uint64_t floor[WRITERS];
};
enum { IDLE, BEGUN, STEPPED };

/* The anonymous MAP_SHARED page every process sees. */
struct shared {
  _Atomic int stop;
  int mode;
  char name[TU_NAME_SIZE];
  char db[TU_PATH_SIZE];
  /* Writers: the number of their last set begun, and of the last set of
   * each prefix finished, packed with the clears of it that had ended
   * before that set began (ended << 40 | n). */
  _Atomic uint64_t attempted[WRITERS];
  _Atomic uint64_t last[WRITERS][NPFX];
  /* Clears of each prefix begun and ended, one counter per clearer (its
   * own, or the test's once it died: so each is written by one process). */
  _Atomic uint64_t begun[CLEARERS][NPFX];
  _Atomic uint64_t ended[CLEARERS][NPFX];
  /* Per clearer, prefix and writer: the highest floor of a clear known to
   * be whole. */
  _Atomic uint64_t floor_done[CLEARERS][NPFX][WRITERS];
  struct clear_now now[CLEARERS];
  /* Figures. */
  _Atomic uint64_t sets, batch_sets, dels, readbacks, clears, clears_failed,
      gets_checked, walked, walks, hook_kills, kill_clearer, kill_writer,
      kill_reaper, reboots;
  /* Failures: count and the first message. */
  _Atomic int fails;
  char msg[MSG];
};

static struct shared *sh;

static void bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void bad(const char *fmt, ...) {
  char buf[MSG];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  fprintf(stderr, "pclear torture [%s] pid %d: %s\n", mode_name[sh->mode],
          (int)getpid(), buf);
  if (atomic_fetch_add(&sh->fails, 1) == 0)
    snprintf(sh->msg, sizeof sh->msg, "%s", buf);
}

/* ---- keys and values ---------------------------------------------------- */

/* Set n writes prefix n % 3, key (n / 3) % KEYS. */
static int pfx_of(uint64_t n) {
  return (int)(n % NPFX);
}
static int idx_of(uint64_t n) {
  return (int)((n / NPFX) % KEYS);
}

static int key_make(char *k, int p, int w, int i) {
  return snprintf(k, 32, "%sw%d:%04d", pfx[p], w, i);
}

static size_t val_len(uint64_t n) {
  return 40 + (size_t)((n * 7) % 160);
}

static size_t val_make(char *v, int w, uint64_t n) {
  size_t len = val_len(n);
  int h = snprintf(v, 40, "w%d:%" PRIu64 ":", w, n);
  memset(v + h, 'a' + (int)(n % 26), len - (size_t)h);
  return len;
}

/* Parse and check a value found under key (klen bytes); its set number in
 * *n.  0 if it is a value that key can hold. */
static int val_check(const char *key, size_t klen, const char *v, size_t vlen,
                     uint64_t *n) {
  char k[64];
  snprintf(k, sizeof k, "%.*s", (int)klen, key);
  int p = -1, w = -1, i = -1;
  for (int q = 0; q < NPFX; q++)
    if (strncmp(k, pfx[q], 3) == 0)
      p = q;
  if (p < 0 || sscanf(k + 3, "w%d:%d", &w, &i) != 2 || w < 0 || w >= WRITERS ||
      vlen < 8)
    return -1;
  char head[48];
  snprintf(head, sizeof head, "%.*s", (int)(vlen < 40 ? vlen : 40), v);
  int vw = -1;
  unsigned long long vn = 0;
  if (sscanf(head, "w%d:%llu:", &vw, &vn) != 2 || vw != w || pfx_of(vn) != p ||
      idx_of(vn) != i || val_len(vn) != vlen ||
      v[vlen - 1] != 'a' + (int)(vn % 26))
    return -1;
  *n = vn;
  return 0;
}

static uint64_t sum_ended(int p) {
  uint64_t s = 0;
  for (int c = 0; c < CLEARERS; c++)
    s += atomic_load(&sh->ended[c][p]);
  return s;
}
static uint64_t sum_begun(int p) {
  uint64_t s = 0;
  for (int c = 0; c < CLEARERS; c++)
    s += atomic_load(&sh->begun[c][p]);
  return s;
}

/* The floors of every clear known to be whole, read before a check. */
static void floors_now(uint64_t f[NPFX][WRITERS]) {
  memset(f, 0, sizeof(uint64_t) * NPFX * WRITERS);
  for (int c = 0; c < CLEARERS; c++)
    for (int p = 0; p < CLEARED; p++)
      for (int w = 0; w < WRITERS; w++) {
        uint64_t x = atomic_load(&sh->floor_done[c][p][w]);
        if (x > f[p][w])
          f[p][w] = x;
      }
}

static void max_into(_Atomic uint64_t *a, uint64_t v) {
  uint64_t cur = atomic_load(a);
  while (cur < v && !atomic_compare_exchange_weak(a, &cur, v))
    ;
}

/* A key of prefix p found holding value v: below the floor? */
static void judge(const char *what, const void *k, size_t kl, const void *v,
                  size_t vl, uint64_t f[NPFX][WRITERS]) {
  uint64_t n = 0;
  if (val_check(k, kl, v, vl, &n)) {
    bad("%s: %.*s holds a value it cannot hold: %.*s", what, (int)kl,
        (const char *)k, (int)(vl < 60 ? vl : 60), (const char *)v);
    return;
  }
  int p = pfx_of(n), w = 0;
  sscanf((const char *)k + 4, "%d", &w);
  if (p < CLEARED && n <= f[p][w])
    bad("%s: %.*s = set %" PRIu64 " of writer %d survived a clear that "
        "began after its set %" PRIu64 " had finished",
        what, (int)kl, (const char *)k, n, w, f[p][w]);
}

static kvshm *open_cache(void) {
  kvshm_config c;
  int mode = sh->mode;
  tu_config(&c, mode == MEMORY_ONLY ? 8u << 20 : 256u << 10, 0, 4);
  c.sqlite_path = mode == MEMORY_ONLY ? NULL : sh->db;
  c.persistent = mode == PERSISTENT;
  if (mode == PERSISTENT)
    c.flush_delay_ms = 200;
  kvshm *kv = NULL;
  int rc = kvshm_open(sh->name, &c, 0, &kv);
  if (rc) {
    bad("open: %s: %s", kvshm_err_name(rc), kvshm_errdetail());
    _exit(TU_CHILD_FAILED);
  }
  return kv;
}

/* Walk prefix p (both tiers), judging every key. */
static void walk_check(kvshm *kv, int p, uint64_t f[NPFX][WRITERS],
                       const char *what) {
  kvshm_iter *it;
  int rc = kvshm_iter_open(kv, pfx[p], 3, KVSHM_ITER_STORE, &it);
  if (rc) {
    bad("%s: iter_open: %s: %s", what, kvshm_err_name(rc), kvshm_errdetail());
    return;
  }
  const void *k, *v;
  size_t kl, vl;
  uint64_t n = 0;
  while ((rc = kvshm_iter_next(it, &k, &kl, &v, &vl, NULL, NULL)) == 0) {
    judge(what, k, kl, v, vl, f);
    n++;
  }
  if (rc != KVSHM_ENOTFOUND)
    bad("%s: iter_next: %s: %s", what, kvshm_err_name(rc), kvshm_errdetail());
  kvshm_iter_close(it);
  atomic_fetch_add(&sh->walked, n);
  atomic_fetch_add(&sh->walks, 1);
}

/* Get key (p, w, i), judging what it holds. */
static int get_check(kvshm *kv, int p, int w, int i, uint64_t f[NPFX][WRITERS],
                     const char *what, unsigned opts, uint64_t *found) {
  char k[32], v[256];
  int kl = key_make(k, p, w, i);
  size_t vl = 0;
  int rc = kvshm_get_ex(kv, k, (size_t)kl, v, sizeof v, &vl, NULL, NULL, opts);
  if (rc == KVSHM_OK) {
    judge(what, k, (size_t)kl, v, vl, f);
    if (found && val_check(k, (size_t)kl, v, vl, found))
      *found = 0;
  } else if (rc != KVSHM_ENOTFOUND) {
    bad("%s: get %s: %s: %s", what, k, kvshm_err_name(rc), kvshm_errdetail());
  }
  atomic_fetch_add(&sh->gets_checked, 1);
  return rc;
}

/* ---- writers ------------------------------------------------------------ */

static void writer(int w) {
  kvshm *kv = open_cache();
  uint64_t seed = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull | 1;
  uint64_t n = atomic_load(&sh->attempted[w]) + 1;
  char k[8][32], v[8][256];
  uint64_t f[NPFX][WRITERS];
  memset(f, 0, sizeof f);
  while (!atomic_load(&sh->stop)) {
    uint64_t r = tu_rand(&seed);
    if (r % 16 == 0) { /* four sets in one call, the first key twice */
      kvshm_item it[5];
      uint64_t e0[4];
      for (int j = 0; j < 4; j++) {
        uint64_t m = n + (uint64_t)j;
        int kl = key_make(k[j], pfx_of(m), w, idx_of(m));
        size_t vl = val_make(v[j], w, m);
        it[j] = (kvshm_item){k[j], (size_t)kl, v[j], vl, 0, 0, 99};
        e0[j] = sum_ended(pfx_of(m));
      }
      uint64_t later = n + (uint64_t)NPFX * KEYS; /* key(n)'s next value */
      size_t vl = val_make(v[4], w, later);
      it[4] = (kvshm_item){k[0], strlen(k[0]), v[4], vl, 0, 0, 99};
      atomic_store(&sh->attempted[w], n + 3);
      int rc = kvshm_set_many(kv, it, 5);
      if (rc)
        bad("set_many: %s: %s", kvshm_err_name(rc), kvshm_errdetail());
      for (int j = 0; j < 5; j++)
        if (it[j].rc)
          bad("set_many item %d (%s): %s", j, k[j < 4 ? j : 0],
              kvshm_err_name(it[j].rc));
      for (int j = 0; j < 4; j++) {
        uint64_t m = n + (uint64_t)j;
        atomic_store(&sh->last[w][pfx_of(m)], e0[j] << 40 | m);
      }
      /* Read back: no clear began since before the call, so the last of
       * the two sets of key(n) is there, and the others' values. */
      for (int j = 0; j < 4; j++) {
        uint64_t m = n + (uint64_t)j, got = 0;
        int p = pfx_of(m);
        int grc = get_check(kv, p, w, idx_of(m), f, "writer readback", 0, &got);
        uint64_t want = j == 0 ? later : m;
        if (e0[j] == sum_begun(p) && (grc != KVSHM_OK || got != want))
          bad("after set_many, %s holds %s %" PRIu64 ", wanted %" PRIu64
              " (no clear of %s began meanwhile)",
              k[j], grc ? "nothing:" : "set", got, want, pfx[p]);
      }
      atomic_fetch_add(&sh->batch_sets, 5);
      n += 4;
      continue;
    }
    int p = pfx_of(n), i = idx_of(n);
    int kl = key_make(k[0], p, w, i);
    size_t vl = val_make(v[0], w, n);
    uint64_t e0 = sum_ended(p);
    atomic_store(&sh->attempted[w], n);
    int rc = kvshm_set(kv, k[0], (size_t)kl, v[0], vl, 0, 0, 0);
    if (rc) {
      bad("set %s: %s: %s", k[0], kvshm_err_name(rc), kvshm_errdetail());
      n++;
      continue;
    }
    atomic_store(&sh->last[w][p], e0 << 40 | n);
    atomic_fetch_add(&sh->sets, 1);
    if (r % 4 == 1) {
      uint64_t got = 0;
      int grc = get_check(kv, p, w, i, f, "writer readback", 0, &got);
      if (e0 == sum_begun(p) && (grc != KVSHM_OK || got != n))
        bad("%s holds %s %" PRIu64 " just after set %" PRIu64
            " (no clear of %s began meanwhile)",
            k[0], grc ? "nothing:" : "set", got, n, pfx[p]);
      atomic_fetch_add(&sh->readbacks, 1);
    } else if (r % 32 == 2) { /* delete it again, twice in one call */
      kvshm_item it[2] = {{k[0], (size_t)kl, NULL, 0, 0, 0, 99},
                          {k[0], (size_t)kl, NULL, 0, 0, 0, 99}};
      rc = kvshm_del_many(kv, it, 2);
      bool quiet = e0 == sum_begun(p);
      if (rc || (it[0].rc && it[0].rc != KVSHM_ENOTFOUND) ||
          it[1].rc != KVSHM_ENOTFOUND || (quiet && it[0].rc))
        bad("del_many of %s twice: %d %d %d (%s)", k[0], rc, it[0].rc, it[1].rc,
            kvshm_errdetail());
      char g[256];
      if (tu_get(kv, k[0], (size_t)kl, g, sizeof g, NULL) != KVSHM_ENOTFOUND)
        bad("%s is there after its delete", k[0]);
      /* Gone on purpose: no reboot may expect it. */
      atomic_store(&sh->last[w][p], 0xffffffull << 40 | n);
      atomic_fetch_add(&sh->dels, 1);
    }
    n++;
  }
  kvshm_close(kv);
  _exit(0);
}

/* ---- clearers ----------------------------------------------------------- */

static int me_clearer;
static uint64_t hook_seed;

static void clearer_hook(kvshm *kv, kvshm_test_point tp, void *ctx) {
  (void)kv;
  (void)ctx;
  if (tp == KVSHM_TP_CLEAR_STEPPED) {
    atomic_store(&sh->now[me_clearer].phase, STEPPED);
    if (tu_rand(&hook_seed) % 8 == 0) {
      atomic_fetch_add(&sh->hook_kills, 1);
      raise(SIGKILL);
    }
  } else if (tp == KVSHM_TP_PCLEAR_MARKING && tu_rand(&hook_seed) % 8 == 0) {
    atomic_fetch_add(&sh->hook_kills, 1);
    raise(SIGKILL);
  }
}

static void clearer(int c) {
  me_clearer = c;
  hook_seed = (uint64_t)getpid() * 0x2545f4914f6cdd1dull | 1;
  kvshm *kv = open_cache();
  kvshm_test_set_hook(kv, clearer_hook, NULL);
  uint64_t seed = hook_seed ^ 0x1234;
  struct clear_now *cn = &sh->now[c];
  while (!atomic_load(&sh->stop)) {
    int p = (int)(tu_rand(&seed) % CLEARED);
    cn->p = p;
    for (int w = 0; w < WRITERS; w++) /* finished before we begin */
      cn->floor[w] = atomic_load(&sh->last[w][p]) & ((1ull << 40) - 1);
    atomic_fetch_add(&sh->begun[c][p], 1);
    atomic_store(&cn->phase, BEGUN);
    int rc = kvshm_clear_prefix(kv, pfx[p], 3);
    if (rc) {
      /* Refused before its step, or failed after it: either way not
       * known whole, and over. */
      bad("clear_prefix %s: %s: %s", pfx[p], kvshm_err_name(rc),
          kvshm_errdetail());
      atomic_fetch_add(&sh->clears_failed, 1);
      atomic_store(&sh->ended[c][p], atomic_load(&sh->begun[c][p]));
      atomic_store(&cn->phase, IDLE);
      continue;
    }
    uint64_t f[NPFX][WRITERS];
    memset(f, 0, sizeof f);
    for (int w = 0; w < WRITERS; w++) {
      max_into(&sh->floor_done[c][p][w], cn->floor[w]);
      f[p][w] = cn->floor[w];
    }
    atomic_store(&sh->ended[c][p], atomic_load(&sh->begun[c][p]));
    atomic_store(&cn->phase, IDLE);
    atomic_fetch_add(&sh->clears, 1);
    /* Nothing of ours below the floor, by get (the last few keys each
     * writer had finished) and by walk. */
    for (int w = 0; w < WRITERS; w++)
      for (uint64_t m = cn->floor[w], j = 0; m >= (uint64_t)NPFX && j < 8;
           m -= NPFX, j++)
        get_check(kv, p, w, idx_of(m), f, "clearer get", 0, NULL);
    walk_check(kv, p, f, "clearer walk");
  }
  kvshm_close(kv);
  _exit(0);
}

/* ---- reader ------------------------------------------------------------- */

static void reader(void) {
  kvshm *kv = open_cache();
  uint64_t seed = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull | 1;
  static char buf[32 * 256];
  while (!atomic_load(&sh->stop)) {
    uint64_t f[NPFX][WRITERS];
    floors_now(f);
    uint64_t r = tu_rand(&seed);
    if (r % 8 == 0) {
      walk_check(kv, (int)(r / 8 % NPFX), f, "reader walk");
    } else if (r % 8 == 1) {
      kvshm_item it[32];
      char k[32][32];
      for (int j = 0; j < 32; j++) {
        uint64_t x = tu_rand(&seed);
        int kl = key_make(k[j], (int)(x % NPFX), (int)(x / 3 % WRITERS),
                          (int)(x / 9 % KEYS));
        it[j] = (kvshm_item){k[j], (size_t)kl, NULL, 0, 0, 0, 99};
      }
      int rc = kvshm_get_many(kv, it, 32, buf, sizeof buf);
      if (rc)
        bad("get_many: %s: %s", kvshm_err_name(rc), kvshm_errdetail());
      for (int j = 0; j < 32; j++) {
        if (it[j].rc == KVSHM_OK)
          judge("reader get_many", it[j].key, it[j].klen, it[j].val, it[j].vlen,
                f);
        else if (it[j].rc != KVSHM_ENOTFOUND)
          bad("get_many item %s: %s", k[j], kvshm_err_name(it[j].rc));
      }
      atomic_fetch_add(&sh->gets_checked, 32);
    } else {
      uint64_t x = tu_rand(&seed);
      get_check(kv, (int)(x % NPFX), (int)(x / 3 % WRITERS),
                (int)(x / 9 % KEYS), f, "reader get",
                r % 8 == 2 ? KVSHM_PEEK : 0, NULL);
    }
  }
  kvshm_close(kv);
  _exit(0);
}

/* ---- reboot ------------------------------------------------------------- */

/* Everyone stopped: the segment goes, a new one is made over the file. */
static void reboot(void) {
  int rc = kvshm_unlink(sh->name);
  if (rc && rc != -ENOENT)
    bad("unlink: %s: %s", kvshm_err_name(rc), kvshm_errdetail());
  kvshm *kv = open_cache();
  uint64_t f[NPFX][WRITERS];
  floors_now(f);
  for (int p = 0; p < NPFX; p++)
    walk_check(kv, p, f, "after reboot, walk");
  for (int w = 0; w < WRITERS; w++)
    for (int p = 0; p < NPFX; p++) {
      uint64_t last = atomic_load(&sh->last[w][p]);
      uint64_t n = last & ((1ull << 40) - 1), e0 = last >> 40, got = 0;
      if (!n)
        continue;
      int grc = get_check(kv, p, w, idx_of(n), f, "after reboot, get", 0, &got);
      if (sh->mode != MEMORY_ONLY && e0 == sum_begun(p) &&
          (grc != KVSHM_OK || got < n))
        bad("after reboot, writer %d's last set %" PRIu64 " of %s is "
            "gone (%s %" PRIu64 "), and no clear of it began after it",
            w, n, pfx[p], grc ? "nothing" : "set", got);
    }
  if (tu_verify(kv))
    bad("after reboot: kvshm_verify found problems");
  kvshm_close(kv);
  _exit(0);
}

/* ---- the test ----------------------------------------------------------- */

static pid_t spawn(void (*fn)(int), int arg) {
  pid_t p = tu_fork();
  if (p == 0)
    fn(arg);
  ck_assert_int_gt(p, 0);
  return p;
}
static void reader_fn(int arg) {
  (void)arg;
  reader();
}
static void reboot_fn(int arg) {
  (void)arg;
  reboot();
}

/* The cache's reaper, if its pid still names a kvshm-reaper of our cache
 * (never a stranger that reused the pid). */
static pid_t reaper_pid(void) {
  char path[TU_PATH_SIZE], cmd[512];
  int fd = open(tu_shm_path(sh->name, path), O_RDONLY | O_CLOEXEC);
  uint32_t v = 0;
  if (fd < 0)
    return 0;
  ssize_t got = pread(fd, &v, sizeof v, offsetof(struct kvshm_hdr, reaper_pid));
  close(fd);
  pid_t r = (pid_t)v;
  if (got != (ssize_t)sizeof v || r <= 0)
    return 0;
  snprintf(path, sizeof path, "/proc/%d/cmdline", (int)r);
  FILE *f = fopen(path, "r");
  if (!f)
    return 0;
  size_t n = fread(cmd, 1, sizeof cmd - 1, f);
  fclose(f);
  cmd[n] = '\0';
  for (size_t i = 0; i + 1 < n; i++)
    if (!cmd[i])
      cmd[i] = ' ';
  return strstr(cmd, "kvshm-reaper") && strstr(cmd, sh->name) ? r : 0;
}

/* Clearer c died: its clear, if it stepped, is whole now (nothing of it
 * can happen later), and over either way. */
static void clearer_died(int c) {
  struct clear_now *cn = &sh->now[c];
  if (atomic_load(&cn->phase) == STEPPED)
    for (int w = 0; w < WRITERS; w++)
      max_into(&sh->floor_done[c][cn->p][w], cn->floor[w]);
  for (int p = 0; p < NPFX; p++)
    atomic_store(&sh->ended[c][p], atomic_load(&sh->begun[c][p]));
  atomic_store(&cn->phase, IDLE);
}

static unsigned fire_ms(void) {
  const char *e = getenv("KVSHM_PCLEAR_TORTURE_MS");
  unsigned ms = e ? (unsigned)strtoul(e, NULL, 10) : 0;
  return ms ? ms : 4000;
}

static void run_round(unsigned ms, uint64_t *seed) {
  pid_t wp[WRITERS], cp[CLEARERS], rp;
  atomic_store(&sh->stop, 0);
  for (int w = 0; w < WRITERS; w++)
    wp[w] = spawn(writer, w);
  for (int c = 0; c < CLEARERS; c++)
    cp[c] = spawn(clearer, c);
  rp = spawn(reader_fn, 0);
  uint64_t end = tu_mono_ms() + ms;
  while (tu_mono_ms() < end) {
    tu_sleep_ms(10 + (unsigned)(tu_rand(seed) % 60));
    uint64_t r = tu_rand(seed) % 10;
    if (r < 4) {
      int c = (int)(tu_rand(seed) % CLEARERS);
      if (kill(cp[c], SIGKILL) == 0)
        atomic_fetch_add(&sh->kill_clearer, 1);
    } else if (r < 6) {
      pid_t rr = reaper_pid();
      if (rr && kill(rr, SIGKILL) == 0)
        atomic_fetch_add(&sh->kill_reaper, 1);
    } else if (r == 6) {
      int w = (int)(tu_rand(seed) % WRITERS);
      if (kill(wp[w], SIGKILL) == 0)
        atomic_fetch_add(&sh->kill_writer, 1);
    }
    /* Whoever died (killed here or by its own hook) starts again. */
    int status;
    pid_t d;
    while ((d = waitpid(-1, &status, WNOHANG)) > 0) {
      char why[64];
      bool ours = d == rp;
      for (int j = 0; j < WRITERS; j++)
        ours |= d == wp[j];
      for (int j = 0; j < CLEARERS; j++)
        ours |= d == cp[j];
      if (ours && !(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
        bad("process %d ended early: %s", (int)d,
            tu_status_str(status, why, sizeof why));
      for (int c = 0; c < CLEARERS; c++)
        if (d == cp[c]) {
          clearer_died(c);
          cp[c] = spawn(clearer, c);
        }
      for (int w = 0; w < WRITERS; w++)
        if (d == wp[w])
          wp[w] = spawn(writer, w);
      if (d == rp)
        rp = spawn(reader_fn, 0);
    }
  }
  atomic_store(&sh->stop, 1);
  pid_t all[WRITERS + CLEARERS + 1];
  int na = 0;
  for (int w = 0; w < WRITERS; w++)
    all[na++] = wp[w];
  for (int c = 0; c < CLEARERS; c++)
    all[na++] = cp[c];
  all[na++] = rp;
  for (int j = 0; j < na; j++) {
    int status = 0;
    if (tu_wait(all[j], 30000, &status)) {
      bad("process %d did not stop within 30 s", (int)all[j]);
      continue;
    }
    for (int c = 0; c < CLEARERS; c++)
      if (all[j] == cp[c])
        clearer_died(c); /* a no-op for one that ended its clear */
    char why[64];
    if (!WIFEXITED(status) || WEXITSTATUS(status)) {
      if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        continue; /* its own hook, as the round ended */
      bad("process %d: %s", (int)all[j],
          tu_status_str(status, why, sizeof why));
    }
  }
  tu_wait_ok(spawn(reboot_fn, 0), 60000, "reboot");
  atomic_fetch_add(&sh->reboots, 1);
}

static char dir[TU_DIR_SIZE];

START_TEST(test_pclear_torture) {
  tu_dir_make(dir, "rvpclear");
  sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ck_assert_ptr_ne(sh, MAP_FAILED);
  memset(sh, 0, sizeof *sh);
  sh->mode = _i;
  tu_name(sh->name);
  snprintf(sh->db, sizeof sh->db, "%s", tu_dir_file(dir, "torture.db"));
  uint64_t seed = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull | 1;
  unsigned ms = fire_ms();
  uint64_t t0 = tu_mono_ms();
  unsigned rounds = ms / 2000 > ROUNDS ? ms / 2000 : ROUNDS; /* a reboot
                                                 each 2 s in longer runs */
  for (unsigned round = 0; round < rounds; round++)
    run_round(ms / rounds, &seed);
  fprintf(stderr,
          "pclear torture [%s]: %.1f s, %" PRIu64 " sets + %" PRIu64
          " in set_many, %" PRIu64 " read back, %" PRIu64 " del_many; %" PRIu64
          " clears returned (%" PRIu64 " failed); %" PRIu64
          " keys got and %" PRIu64 " walked in %" PRIu64
          " walks, checked against the floors; "
          "killed: %" PRIu64 " clearers at random, %" PRIu64
          " at their step or mark, %" PRIu64 " writers, %" PRIu64
          " reapers; %" PRIu64 " reboots; %d failures\n",
          mode_name[_i], (double)(tu_mono_ms() - t0) / 1000.0,
          atomic_load(&sh->sets), atomic_load(&sh->batch_sets),
          atomic_load(&sh->readbacks), atomic_load(&sh->dels),
          atomic_load(&sh->clears), atomic_load(&sh->clears_failed),
          atomic_load(&sh->gets_checked), atomic_load(&sh->walked),
          atomic_load(&sh->walks), atomic_load(&sh->kill_clearer),
          atomic_load(&sh->hook_kills), atomic_load(&sh->kill_writer),
          atomic_load(&sh->kill_reaper), atomic_load(&sh->reboots),
          atomic_load(&sh->fails));
  int fails = atomic_load(&sh->fails);
  uint64_t clears = atomic_load(&sh->clears);
  char msg[MSG];
  snprintf(msg, sizeof msg, "%s", sh->msg);
  (void)kvshm_unlink(sh->name); /* forks are over: SQLite may open here */
  tu_dir_remove(dir);
  munmap(sh, sizeof *sh);
  ck_assert_msg(fails == 0, "%d failures; the first: %s", fails, msg);
  ck_assert_uint_gt(clears, 0);
}
END_TEST

static Suite *torture_suite(void) {
  Suite *s = suite_create("pclear torture");
  /* Check's timeout is a safety net: fire, reboots, stragglers. */
  TCase *tc = tu_tcase("pclear torture", 120 + 3 * fire_ms() / 1000.0);
  tcase_add_loop_test(tc, test_pclear_torture, MEMORY_ONLY, PERSISTENT + 1);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  Suite *s[] = {torture_suite()};
  return tu_run_suites(s, 1);
}
