/*
 * torture.c - the bounded torture test of issue 8 (README: "Torture test").
 *
 * For each mode (memory-only, SQLite-backed, persistent) the driver creates
 * a cache of its own (tort-<pid>-<mode>), starts writers (C: this binary's
 * `worker` command, worker.c; Node: worker.js through the addon), and for a
 * number of rounds SIGKILLs writers and the reaper at random instants,
 * restarting killed writers at once, while a watchdog fails any writer that
 * makes no progress for TORTURE_HANG_MS.  Each round ends with every writer
 * killed; in persistent mode also the reaper, and the segment is unlinked
 * (a simulated reboot: no clean shutdown, no flush) and reopened from the
 * SQLite file.  Then the driver replays every writer's journal (torture.h)
 * and checks:
 *
 *   - no torn or foreign value, in any get or walk (values carry their key,
 *     writer, sequence number and a checksum);
 *   - every own and stable key holds a state its writer's journal allows:
 *     keys are partitioned by writer, so the writer's operations are
 *     totally ordered, and only an operation in flight at a kill (or one
 *     that failed) may or may not have happened.  Every acknowledged result
 *     (NX refused, XX found nothing, delete found nothing) and every read by
 *     the owner must be consistent with that history, and so must the
 *     driver's read after the round: otherwise an acknowledged write was
 *     lost, or a deleted key came back;
 *   - every counter lies in [acknowledged incrs, acknowledged + in flight],
 *     no two acknowledged incrs of one counter returned the same value, no
 *     process saw a counter go down;
 *   - at most one NX claim of a claim key succeeded, and the key holds it;
 *   - walks: a key that exists throughout a walk comes back exactly once
 *     (stable keys in every worker walk; every key in the driver's walk),
 *     with the value a get returns;
 *   - kvshm_verify is clean;
 *   - persistent mode, after the reboot: every write acknowledged more than
 *     flush_delay + TORTURE_MARGIN_MS before the kill is there (or was
 *     superseded by a later operation), and counters hold at least every
 *     value an incr acknowledged before that.
 *
 * Every count is printed per mode, then `torture: N passed, M failed`.
 * Configuration comes from TORTURE_* environment variables (see usage());
 * the first line printed is the command that reproduces the run.
 */
#include "kvshm.h"
#include "torture.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- configuration ------------------------------------------------------ */

enum { M_MEMORY, M_SQLITE, M_PERSISTENT, M_COUNT };
static const char *const MODE_NAME[M_COUNT] = {"memory", "sqlite",
                                               "persistent"};

static struct opts {
  unsigned modes; /* bit per mode */
  unsigned rounds, round_ms, min_kills;
  unsigned ncw, nnw, nown, nstable, nctr;
  unsigned kill_min_ms, kill_max_ms, hang_ms, flush_ms, margin_ms;
  unsigned mem_mb, sqlite_mem_mb;
  unsigned slow_us, walk_ms, reaper_pct;
  uint64_t seed;
  const char *node, *worker_js;
  bool keep;
} O;

static unsigned print_per_kind = 8; /* TORTURE_PRINT */

static void usage(void) {
  fprintf(stderr,
          "usage: torture   (configured by the environment)\n"
          "  TORTURE_MODES=memory,sqlite,persistent  modes to run\n"
          "  TORTURE_ROUNDS=2          rounds per mode (each ends in a check; "
          "in\n"
          "                            persistent mode in a reboot)\n"
          "  TORTURE_ROUND_MS=8000     length of a round\n"
          "  TORTURE_KILLS=0           run more rounds until this many kills\n"
          "  TORTURE_C_WORKERS=3 TORTURE_NODE_WORKERS=1\n"
          "  TORTURE_KEYS=1000 TORTURE_STABLE=16 TORTURE_COUNTERS=16  per "
          "writer / shared\n"
          "  TORTURE_KILL_MS=100,600   interval between kills (random in)\n"
          "  TORTURE_REAPER_KILLS=15   %% of kills aimed at the reaper (0: "
          "never,\n"
          "                            not even before a reboot)\n"
          "  TORTURE_WALK_MS=2000      a writer walks every ... on average "
          "(0: never)\n"
          "  TORTURE_HANG_MS=10000     a writer without progress this long "
          "hangs\n"
          "  TORTURE_FLUSH_MS=500      persistent mode's flush_delay_ms\n"
          "  TORTURE_MARGIN_MS=1000    the margin on top of it\n"
          "  TORTURE_MEMORY_MB=64 TORTURE_SQLITE_MEMORY_MB=4  segment sizes\n"
          "  TORTURE_SLOW_US=10000     pause between a writer's ops in slow "
          "phases\n"
          "  TORTURE_SEED=<n>          random seed (default: from the clock)\n"
          "  TORTURE_NODE=node TORTURE_WORKER_JS=tests/torture/worker.js\n"
          "  TORTURE_KEEP=1            keep the temporary directory\n"
          "  TORTURE_PRINT=8           failures printed per kind and mode\n");
}

static unsigned env_u(const char *name, unsigned def) {
  const char *v = getenv(name);
  if (!v || !*v)
    return def;
  char *end;
  unsigned long x = strtoul(v, &end, 10);
  if (*end || x > UINT_MAX) {
    fprintf(stderr, "torture: %s=%s is not a number\n", name, v);
    usage();
    exit(2);
  }
  return (unsigned)x;
}

static void parse_opts(void) {
  const char *modes = getenv("TORTURE_MODES");
  if (!modes || !*modes)
    modes = "memory,sqlite,persistent";
  char buf[128];
  snprintf(buf, sizeof buf, "%s", modes);
  for (char *save, *t = strtok_r(buf, ",", &save); t;
       t = strtok_r(NULL, ",", &save)) {
    int m = 0;
    while (m < M_COUNT && strcmp(t, MODE_NAME[m]))
      m++;
    if (m == M_COUNT) {
      fprintf(stderr, "torture: unknown mode '%s'\n", t);
      usage();
      exit(2);
    }
    O.modes |= 1u << m;
  }
  O.rounds = env_u("TORTURE_ROUNDS", 2);
  O.round_ms = env_u("TORTURE_ROUND_MS", 8000);
  O.min_kills = env_u("TORTURE_KILLS", 0);
  O.ncw = env_u("TORTURE_C_WORKERS", 3);
  O.nnw = env_u("TORTURE_NODE_WORKERS", 1);
  O.nown = env_u("TORTURE_KEYS", 1000);
  O.nstable = env_u("TORTURE_STABLE", 16);
  O.nctr = env_u("TORTURE_COUNTERS", 16);
  O.hang_ms = env_u("TORTURE_HANG_MS", 10000);
  O.flush_ms = env_u("TORTURE_FLUSH_MS", 500);
  O.margin_ms = env_u("TORTURE_MARGIN_MS", 1000);
  O.mem_mb = env_u("TORTURE_MEMORY_MB", 64);
  O.sqlite_mem_mb = env_u("TORTURE_SQLITE_MEMORY_MB", 4);
  O.slow_us = env_u("TORTURE_SLOW_US", 10000);
  O.walk_ms = env_u("TORTURE_WALK_MS", 2000);
  O.reaper_pct = env_u("TORTURE_REAPER_KILLS", 15);
  const char *km = getenv("TORTURE_KILL_MS");
  O.kill_min_ms = 100;
  O.kill_max_ms = 600;
  if (km && *km &&
      (sscanf(km, "%u,%u", &O.kill_min_ms, &O.kill_max_ms) != 2 ||
       O.kill_min_ms > O.kill_max_ms || !O.kill_min_ms)) {
    fprintf(stderr, "torture: TORTURE_KILL_MS=%s: want MIN,MAX\n", km);
    exit(2);
  }
  const char *seed = getenv("TORTURE_SEED");
  O.seed = seed && *seed ? strtoull(seed, NULL, 10)
                         : (t_now_us() ^ ((uint64_t)getpid() << 32));
  O.node = getenv("TORTURE_NODE");
  if (!O.node || !*O.node)
    O.node = "node";
  O.worker_js = getenv("TORTURE_WORKER_JS");
  if (!O.worker_js || !*O.worker_js)
    O.worker_js = "tests/torture/worker.js";
  O.keep = env_u("TORTURE_KEEP", 0) != 0;
  print_per_kind = env_u("TORTURE_PRINT", 8);
  if (!O.modes || !O.rounds || !O.nown || !O.nstable || !O.nctr ||
      O.ncw + O.nnw == 0 || O.nown > 100000 || O.nstable > 100000 ||
      O.nctr > 100000 || O.ncw + O.nnw > 64 || !O.flush_ms ||
      O.reaper_pct > 100) {
    fprintf(stderr, "torture: bad configuration\n");
    usage();
    exit(2);
  }
  if (O.round_ms < 4000) {
    fprintf(stderr, "torture: TORTURE_ROUND_MS must be at least 4000\n");
    exit(2);
  }
  if (O.modes & (1u << M_PERSISTENT) &&
      O.round_ms < O.flush_ms + O.margin_ms + 3000) {
    fprintf(stderr, "torture: TORTURE_ROUND_MS must be at least "
                    "TORTURE_FLUSH_MS + TORTURE_MARGIN_MS + 3000\n");
    exit(2);
  }
}

/* ---- failures ------------------------------------------------------------ */

enum {
  X_TORN,
  X_FOREIGN,
  X_LOST,
  X_RESURRECTED,
  X_REBOOT_LOST,
  X_CTR_LOW,
  X_CTR_HIGH,
  X_CTR_DUP,
  X_CTR_REGRESS,
  X_CLAIM_DOUBLE,
  X_WALK_DUP,
  X_WALK_MISSING,
  X_WALK_STALE,
  X_WALK_RESURRECTED,
  X_BADKEY,
  X_VERIFY,
  X_ERROR,
  X_CRASH,
  X_HANG,
  X_SIZING,
  X_N
};
static const char *const X_NAME[X_N] = {"torn",
                                        "foreign",
                                        "lost",
                                        "resurrected",
                                        "reboot-lost",
                                        "counter-low",
                                        "counter-high",
                                        "counter-dup",
                                        "counter-regress",
                                        "claim-double",
                                        "walk-dup",
                                        "walk-missing",
                                        "walk-stale",
                                        "walk-resurrected",
                                        "bad-key",
                                        "verify",
                                        "errors",
                                        "crashes",
                                        "hangs",
                                        "sizing"};
#define PRINT_PER_KIND print_per_kind

struct tally {
  uint64_t kills_w, kills_r, stops, reboots, hangs;
  uint64_t repairs, reaper_starts, spills, evictions, corrupt;
  uint64_t acked[2]; /* C, Node */
  uint64_t incarnations;
  unsigned rounds;
  uint64_t x[X_N];
  unsigned printed[X_N];
};
static struct tally T;

__attribute__((format(printf, 2, 3))) static void failf(int kind,
                                                        const char *fmt, ...) {
  T.x[kind]++;
  if (T.printed[kind]++ >= PRINT_PER_KIND) {
    if (T.printed[kind] == PRINT_PER_KIND + 1)
      fprintf(stderr, "torture: FAIL %s: (more not shown)\n", X_NAME[kind]);
    return;
  }
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  fprintf(stderr, "torture: FAIL %s: %s\n", X_NAME[kind], line);
}

/* ---- state sets -------------------------------------------------------- */

/* A key's state: ST_ABSENT, or the sequence number of the value it holds
 * (claims: writer << 56 | seq).  ST_ANY matches everything (after a
 * violation whose consequence is unknown). */
#define ST_ABSENT 0ull
#define ST_ANY UINT64_MAX

struct sset {
  uint64_t *v;
  uint32_t n, cap;
};

static void ss_add(struct sset *s, uint64_t x) {
  for (uint32_t i = 0; i < s->n; i++)
    if (s->v[i] == x)
      return;
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 4;
    s->v = realloc(s->v, s->cap * sizeof *s->v);
    if (!s->v)
      abort();
  }
  s->v[s->n++] = x;
}
static void ss_one(struct sset *s, uint64_t x) {
  s->n = 0;
  ss_add(s, x);
}
static void ss_copy(struct sset *d, const struct sset *s) {
  d->n = 0;
  for (uint32_t i = 0; i < s->n; i++)
    ss_add(d, s->v[i]);
}
static void ss_union(struct sset *d, const struct sset *s) {
  for (uint32_t i = 0; i < s->n; i++)
    ss_add(d, s->v[i]);
}
static bool ss_has(const struct sset *s, uint64_t x) {
  for (uint32_t i = 0; i < s->n; i++)
    if (s->v[i] == x || s->v[i] == ST_ANY)
      return true;
  return false;
}
static bool ss_has_present(const struct sset *s) {
  for (uint32_t i = 0; i < s->n; i++)
    if (s->v[i] != ST_ABSENT)
      return true;
  return false;
}
static void ss_free(struct sset *s) {
  free(s->v);
  memset(s, 0, sizeof *s);
}

static const char *st_str(uint64_t x, char *buf, size_t n) {
  if (x == ST_ABSENT)
    snprintf(buf, n, "absent");
  else if (x == ST_ANY)
    snprintf(buf, n, "any");
  else if (x >> 56)
    snprintf(buf, n, "w%u:%u/%u", (unsigned)(x >> 56),
             (unsigned)((x >> 32) & 0xffffff), (unsigned)x);
  else
    snprintf(buf, n, "%u/%u", (unsigned)(x >> 32), (unsigned)x);
  return buf;
}

static const char *ss_str(const struct sset *s, char *buf, size_t n) {
  size_t o = 0;
  buf[0] = '\0';
  for (uint32_t i = 0; i < s->n && o + 40 < n; i++) {
    char one[40];
    o += (size_t)snprintf(buf + o, n - o, "%s%s", i ? " " : "",
                          st_str(s->v[i], one, sizeof one));
  }
  if (s->n && o + 40 >= n)
    snprintf(buf + o, n - o, " ...");
  return buf;
}

/* ---- the model of one own or stable key --------------------------------- */

/*
 * S: the states the key may be in now, given everything acknowledged and
 * observed.  D: the states that may be what a reboot finds in SQLite,
 * given only what was written (observations never narrow it: an in-flight
 * write that was seen is still not acknowledged).  In a round that ends in
 * a reboot with cutoff C: base is D after the last operation acknowledged
 * before C, U the union of D after every later operation; the reboot may
 * show base or U, nothing else.
 */
struct kmodel {
  struct sset S, D, base, U;
  uint64_t base_us; /* when the operation that set base was acknowledged */
};

enum { SRC_JOURNAL, SRC_WALK, SRC_DRIVER, SRC_REBOOT };

/* ---- the run ------------------------------------------------------------- */

struct wproc {
  pid_t pid;
  uint32_t inc;
  uint64_t start_ms, grew_ms;
  off_t size;
  char path[PATH_MAX];
};

struct claim {
  uint32_t epoch, x, writer;
  uint8_t outcome; /* 0 won (acked), 1 refused (acked), 2 unknown */
  uint64_t seq, t_us;
};

struct oldkey {
  char key[48];
  int kind;
  uint64_t id; /* counter: value; claim: writer << 56 | seq; 0 = absent */
};

struct u64vec {
  uint64_t *v;
  size_t n, cap;
};
static void v_push(struct u64vec *v, uint64_t x) {
  if (v->n == v->cap) {
    v->cap = v->cap ? v->cap * 2 : 64;
    v->v = realloc(v->v, v->cap * sizeof *v->v);
    if (!v->v)
      abort();
  }
  v->v[v->n++] = x;
}

struct cmodel {
  uint64_t acked, unknown, max_before_cut;
  struct u64vec results;
};

struct mode {
  int m;
  char name[64];
  char dir[256];
  char db[300];
  kvshm_config cfg;
  unsigned nw;
  struct wproc *wp;
  uint32_t *inc_done; /* last incarnation replayed, per writer */
  struct kmodel *km;  /* nw * (nown + nstable) */
  struct cmodel *cm;  /* nctr, this round's */
  struct claim *cl;
  size_t ncl, capcl;
  struct oldkey *old;
  size_t nold, capold;
  unsigned round;
  bool reboot;        /* this round's check follows a reboot */
  uint64_t cutoff_us; /* its cutoff */
  kvshm_stats last;
  uint64_t rng;
};

static char self_exe[PATH_MAX];
static volatile sig_atomic_t stop_requested;
static char current_shm[KVSHM_NAME_MAX + 16];

static uint64_t now_ms(void) {
  return t_now_us() / 1000u;
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) && errno == EINTR && !stop_requested)
    ;
}

static uint64_t rnd(struct mode *md, uint64_t n) {
  return n ? t_rand(&md->rng) % n : 0;
}

static struct kmodel *km_of(struct mode *md, uint32_t w, int kind, uint32_t j) {
  if (w >= md->nw || (kind == K_OWN && j >= O.nown) ||
      (kind == K_STABLE && j >= O.nstable) ||
      (kind != K_OWN && kind != K_STABLE))
    return NULL;
  return &md->km[(size_t)w * (O.nown + O.nstable) +
                 (kind == K_OWN ? j : O.nown + j)];
}

static void key_name(char *buf, size_t n, int kind, uint32_t w, uint32_t j) {
  snprintf(buf, n, "%c.%u.%u", kind == K_OWN ? 'k' : 's', w, j);
}

/* The reboot bookkeeping after an operation (acked: with its ack time). */
static void km_after(struct mode *md, struct kmodel *k, bool acked,
                     uint64_t t_us) {
  if (!md->reboot)
    return;
  if (acked && t_us < md->cutoff_us) {
    ss_copy(&k->base, &k->D);
    k->base_us = t_us;
    k->U.n = 0;
  } else {
    ss_union(&k->U, &k->D);
  }
}

/*
 * An observation of the key (a get, a walk, the driver's read; after a
 * reboot the reboot's rules): x must be allowed, and then it is the state.
 */
static void km_observe(struct mode *md, struct kmodel *k, uint64_t x, int src,
                       const char *key, const char *who) {
  struct sset allowed = {0};
  if (src == SRC_REBOOT) {
    ss_copy(&allowed, &k->base);
    ss_union(&allowed, &k->U);
  } else {
    ss_copy(&allowed, &k->S);
  }
  bool violated = !ss_has(&allowed, x);
  if (violated) {
    int kind;
    if (src == SRC_REBOOT)
      kind = X_REBOOT_LOST;
    else if (x == ST_ABSENT)
      kind = src == SRC_WALK ? X_WALK_MISSING : X_LOST;
    else if (!ss_has_present(&allowed))
      kind = src == SRC_WALK ? X_WALK_RESURRECTED : X_RESURRECTED;
    else
      kind = src == SRC_WALK ? X_WALK_STALE : X_LOST;
    char a[40], b[400], c[160] = "";
    if (src == SRC_REBOOT && k->base_us)
      snprintf(c, sizeof c,
               " (the last operation before the cutoff t=%.3f s was "
               "acknowledged at t=%.3f s)",
               (double)md->cutoff_us / 1e6, (double)k->base_us / 1e6);
    failf(kind, "%s: %s %s read %s; allowed: %s%s", md->name, who, key,
          st_str(x, a, sizeof a), ss_str(&allowed, b, sizeof b), c);
  }
  ss_free(&allowed);
  if (src == SRC_WALK)
    return; /* a walk is checked, not believed: if it returned a wrong
               state, that is the walk's failure, and the key's history
               goes on from what gets and writes say */
  if (src == SRC_REBOOT) {
    ss_one(&k->S, x);
    ss_one(&k->D, x);
    ss_one(&k->base, x);
    k->base_us = 0;
    k->U.n = 0;
  } else if (violated) {
    /* a read that contradicts the history is counted once; whether it or
     * the history is wrong is unknown, so both stay possible (no cascade
     * of failures from one) */
    ss_add(&k->S, x);
    ss_add(&k->D, x);
  } else {
    ss_one(&k->S, x);
  }
}

enum { WR_DONE, WR_REFUSED, WR_UNKNOWN };

/* A set, NX set, XX set or delete of the key, with its outcome. */
static void km_op(struct mode *md, struct kmodel *k, int op, int outcome,
                  uint64_t seq, bool acked, uint64_t t_us, const char *key,
                  const char *who) {
  uint64_t nv = op == OP_DEL ? ST_ABSENT : seq;
  char b[400];
  const char *opname = op == OP_SET     ? "set"
                       : op == OP_SETNX ? "NX set"
                       : op == OP_SETXX ? "XX set"
                                        : "delete";
  if (outcome == WR_DONE) {
    if (op == OP_SETNX && !ss_has(&k->S, ST_ABSENT))
      failf(X_LOST, "%s: %s: %s %s succeeded, but the key held %s", md->name,
            who, opname, key, ss_str(&k->S, b, sizeof b));
    if ((op == OP_SETXX || op == OP_DEL) && !ss_has_present(&k->S))
      failf(X_RESURRECTED, "%s: %s: %s %s found the key, which was %s",
            md->name, who, opname, key, ss_str(&k->S, b, sizeof b));
    ss_one(&k->S, nv);
    ss_one(&k->D, nv);
  } else if (outcome == WR_REFUSED) {
    if (op == OP_SETNX) { /* EEXIST: present */
      if (!ss_has_present(&k->S)) {
        failf(X_RESURRECTED,
              "%s: %s: %s %s refused (exists), but the key "
              "was %s",
              md->name, who, opname, key, ss_str(&k->S, b, sizeof b));
        ss_add(&k->S, ST_ANY); /* some value we cannot name */
        ss_add(&k->D, ST_ANY);
      } else {
        struct sset p = {0};
        for (uint32_t i = 0; i < k->S.n; i++)
          if (k->S.v[i] != ST_ABSENT)
            ss_add(&p, k->S.v[i]);
        ss_copy(&k->S, &p);
        ss_free(&p);
      }
    } else { /* XX set or delete found nothing: absent */
      if (!ss_has(&k->S, ST_ABSENT)) {
        failf(X_LOST, "%s: %s: %s %s found no key, but it held %s", md->name,
              who, opname, key, ss_str(&k->S, b, sizeof b));
        ss_add(&k->S, ST_ABSENT); /* as in km_observe: no cascade */
        ss_add(&k->D, ST_ABSENT);
      } else {
        ss_one(&k->S, ST_ABSENT);
      }
    }
  } else { /* may or may not have happened */
    struct sset *sets[2] = {&k->S, &k->D};
    for (int s = 0; s < 2; s++) {
      bool applies = false;
      for (uint32_t i = 0; i < sets[s]->n; i++) {
        uint64_t x = sets[s]->v[i];
        applies |= op == OP_SET || op == OP_DEL || x == ST_ANY ||
                   (op == OP_SETNX ? x == ST_ABSENT : x != ST_ABSENT);
      }
      if (applies)
        ss_add(sets[s], nv);
    }
  }
  km_after(md, k, acked && outcome != WR_UNKNOWN, t_us);
}

/* ---- journals ------------------------------------------------------------ */

static int f_to_x(int f) {
  switch (f) {
  case F_TORN:
    return X_TORN;
  case F_FOREIGN:
    return X_FOREIGN;
  case F_WALK_DUP:
    return X_WALK_DUP;
  case F_WALK_MISSING:
    return X_WALK_MISSING;
  case F_CTR_REGRESS:
    return X_CTR_REGRESS;
  case F_BADKEY:
    return X_BADKEY;
  default:
    return X_ERROR;
  }
}

static void claim_push(struct mode *md, const struct trec *r, uint32_t w,
                       int outcome, uint64_t t_us) {
  if (md->ncl == md->capcl) {
    md->capcl = md->capcl ? md->capcl * 2 : 1024;
    md->cl = realloc(md->cl, md->capcl * sizeof *md->cl);
    if (!md->cl)
      abort();
  }
  md->cl[md->ncl++] =
      (struct claim){r->idx2, r->idx, w, (uint8_t)outcome, r->seq, t_us};
}

/* One operation of writer w: in (INFLIGHT) and its ack, or NULL. */
static void replay_op(struct mode *md, uint32_t w, uint32_t inc,
                      const struct trec *in, const struct trec *ack) {
  char key[64], who[64];
  snprintf(who, sizeof who, "writer %u inc %u (%s)", w, inc,
           in->lang ? "Node" : "C");
  if (ack)
    T.acked[in->lang ? 1 : 0]++;
  switch (in->op) {
  case OP_SET:
  case OP_SETNX:
  case OP_SETXX:
  case OP_DEL: {
    struct kmodel *k = km_of(md, w, in->kind, in->idx);
    if (!k) {
      failf(X_ERROR, "%s: journal of writer %u names no key (kind %u, %u)",
            md->name, w, in->kind, in->idx);
      return;
    }
    key_name(key, sizeof key, in->kind, w, in->idx);
    int outcome = WR_UNKNOWN;
    if (ack && ack->rc == KVSHM_OK)
      outcome = WR_DONE;
    else if (ack && ((in->op == OP_SETNX && ack->rc == KVSHM_EEXIST) ||
                     ((in->op == OP_SETXX || in->op == OP_DEL) &&
                      ack->rc == KVSHM_ENOTFOUND)))
      outcome = WR_REFUSED;
    km_op(md, k, in->op, outcome, in->seq, ack != NULL, ack ? ack->t_us : 0,
          key, who);
    return;
  }
  case OP_INCR: {
    if (in->idx >= O.nctr)
      return;
    struct cmodel *c = &md->cm[in->idx];
    if (ack && ack->rc == KVSHM_OK) {
      c->acked++;
      v_push(&c->results, ack->seq);
      if (ack->t_us < md->cutoff_us && ack->seq > c->max_before_cut)
        c->max_before_cut = ack->seq;
    } else {
      c->unknown++;
    }
    return;
  }
  case OP_CLAIM:
    claim_push(md, in, w,
               !ack                      ? 2
               : ack->rc == KVSHM_OK     ? 0
               : ack->rc == KVSHM_EEXIST ? 1
                                         : 2,
               ack ? ack->t_us : UINT64_MAX);
    return;
  case OP_GET: {
    if (!ack || (in->kind != K_OWN && in->kind != K_STABLE))
      return;
    if (ack->rc != KVSHM_OK && ack->rc != KVSHM_ENOTFOUND)
      return; /* an error or a bad value: counted, not an observation */
    struct kmodel *k = km_of(md, w, in->kind, in->idx);
    if (!k)
      return;
    key_name(key, sizeof key, in->kind, w, in->idx);
    km_observe(md, k, ack->rc == KVSHM_OK ? ack->seq : ST_ABSENT, SRC_JOURNAL,
               key, who);
    km_after(md, k, true, ack->t_us);
    return;
  }
  default:
    return;
  }
}

/* A completed walk: what it saw of writer w's keys. */
static void replay_walk(struct mode *md, uint32_t w, uint32_t inc,
                        const struct trec *see, size_t nsee) {
  char key[64], who[80];
  snprintf(who, sizeof who, "walk of writer %u inc %u", w, inc);
  unsigned char *seen = calloc(O.nown, 1);
  if (!seen)
    abort();
  for (size_t i = 0; i < nsee; i++) {
    struct kmodel *k = km_of(md, w, see[i].kind, see[i].idx);
    if (!k)
      continue;
    if (see[i].kind == K_OWN)
      seen[see[i].idx] = 1;
    key_name(key, sizeof key, see[i].kind, w, see[i].idx);
    km_observe(md, k, see[i].seq, SRC_WALK, key, who);
  }
  for (uint32_t j = 0; j < O.nown; j++) {
    if (seen[j])
      continue;
    struct kmodel *k = km_of(md, w, K_OWN, j);
    key_name(key, sizeof key, K_OWN, w, j);
    km_observe(md, k, ST_ABSENT, SRC_WALK, key, who);
  }
  free(seen);
}

static void replay_file(struct mode *md, uint32_t w, uint32_t inc,
                        const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return; /* killed before it wrote anything */
  struct stat sb;
  if (fstat(fd, &sb)) {
    close(fd);
    return;
  }
  size_t n = (size_t)sb.st_size / sizeof(struct trec);
  struct trec *r = malloc(n * sizeof *r + 1);
  if (!r)
    abort();
  size_t got = 0, want = n * sizeof *r;
  while (got < want) {
    ssize_t x = read(fd, (char *)r + got, want - got);
    if (x <= 0)
      break;
    got += (size_t)x;
  }
  close(fd);
  n = got / sizeof *r;
  T.incarnations++;
  for (size_t i = 0; i < n;) {
    const struct trec *in = &r[i];
    if (in->type == R_FAIL) {
      T.x[f_to_x(in->kind)]++;
      i++;
      continue;
    }
    if (in->type != R_INFLIGHT) {
      failf(X_ERROR, "%s: %s: record %zu has type %u", md->name, path, i,
            in->type);
      i++;
      continue;
    }
    if (in->op == OP_WALK) {
      size_t j = i + 1;
      struct trec *see = malloc((n - i) * sizeof *see + 1);
      size_t nsee = 0;
      if (!see)
        abort();
      while (j < n && r[j].type != R_ACK && r[j].type != R_INFLIGHT) {
        if (r[j].type == R_FAIL)
          T.x[f_to_x(r[j].kind)]++;
        else if (r[j].type == R_SEE)
          see[nsee++] = r[j];
        j++;
      }
      if (j < n && r[j].type == R_ACK && r[j].op == OP_WALK) {
        T.acked[in->lang ? 1 : 0]++;
        if (r[j].rc == 0)
          replay_walk(md, w, inc, see, nsee);
        j++;
      }
      free(see);
      i = j;
      continue;
    }
    size_t j = i + 1;
    for (; j < n && r[j].type == R_FAIL; j++)
      T.x[f_to_x(r[j].kind)]++;
    if (j < n && r[j].type == R_ACK && r[j].op == in->op) {
      replay_op(md, w, inc, in, &r[j]);
      i = j + 1;
    } else {
      replay_op(md, w, inc, in, NULL);
      i = j;
    }
  }
  free(r);
}

static void journal_path(struct mode *md, uint32_t w, uint32_t inc, char *buf,
                         size_t n) {
  snprintf(buf, n, "%s/j.%u.%u", md->dir, w, inc);
}

static void replay_round(struct mode *md) {
  for (uint32_t w = 0; w < md->nw; w++) {
    for (uint32_t inc = md->inc_done[w] + 1; inc <= md->wp[w].inc; inc++) {
      char path[PATH_MAX];
      journal_path(md, w, inc, path, sizeof path);
      replay_file(md, w, inc, path);
      if (!O.keep)
        unlink(path);
    }
    md->inc_done[w] = md->wp[w].inc;
  }
}

/* ---- processes ------------------------------------------------------------
 */

static void spawn(struct mode *md, uint32_t w) {
  struct wproc *p = &md->wp[w];
  p->inc++;
  journal_path(md, w, p->inc, p->path, sizeof p->path);
  char sw[16], sinc[16], sround[16], snw[16], sown[16], sst[16], sctr[16],
      sseed[32], swalk[16];
  snprintf(sw, sizeof sw, "%u", w);
  snprintf(sinc, sizeof sinc, "%u", p->inc);
  snprintf(sround, sizeof sround, "%u", md->round);
  snprintf(snw, sizeof snw, "%u", md->nw);
  snprintf(sown, sizeof sown, "%u", O.nown);
  snprintf(sst, sizeof sst, "%u", O.nstable);
  snprintf(sctr, sizeof sctr, "%u", O.nctr);
  snprintf(swalk, sizeof swalk, "%u", O.walk_ms);
  snprintf(sseed, sizeof sseed, "%" PRIu64,
           O.seed + (uint64_t)w * 1000003u + p->inc);
  bool node = w >= O.ncw;
  pid_t parent = getpid();
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    perror("torture: fork");
    exit(3);
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(1);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (node) {
      char *argv[] = {(char *)O.node,
                      (char *)O.worker_js,
                      md->name,
                      sw,
                      sinc,
                      sround,
                      snw,
                      sown,
                      sst,
                      sctr,
                      p->path,
                      sseed,
                      swalk,
                      NULL};
      execvp(O.node, argv);
    } else {
      char *argv[] = {"torture", "worker", md->name, sw,  sinc,
                      sround,    snw,      sown,     sst, sctr,
                      p->path,   sseed,    swalk,    NULL};
      execv(self_exe, argv);
    }
    fprintf(stderr, "torture: cannot run writer %u: %s\n", w, strerror(errno));
    _exit(127);
  }
  p->pid = pid;
  p->start_ms = p->grew_ms = now_ms();
  p->size = 0;
}

static void kill_wait(pid_t pid) {
  kill(pid, SIGKILL);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
    ;
}

static void kill_worker(struct mode *md, uint32_t w) {
  if (md->wp[w].pid > 0)
    kill_wait(md->wp[w].pid);
  md->wp[w].pid = 0;
}

static bool is_worker(struct mode *md, pid_t pid) {
  for (uint32_t w = 0; w < md->nw; w++)
    if (md->wp[w].pid == pid)
      return true;
  return false;
}

/*
 * Our children that are not writers: kvshm-reaper processes that writers
 * started (a reaper is a detached grandchild of the process that starts it;
 * this driver is a child subreaper, so they become its children), or one
 * being started.  Returns how many were SIGKILLed and reaped; *reapers
 * counts those that were running kvshm-reaper for this cache.
 */
static unsigned kill_strays(struct mode *md, unsigned *reapers) {
  unsigned n = 0;
  if (reapers)
    *reapers = 0;
  DIR *d = opendir("/proc");
  if (!d)
    return 0;
  pid_t me = getpid();
  struct dirent *e;
  pid_t found[256];
  unsigned nf = 0;
  while ((e = readdir(d)) && nf < 256) {
    char *end;
    long pid = strtol(e->d_name, &end, 10);
    if (*end || pid <= 0)
      continue;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      continue;
    ssize_t r = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (r <= 0)
      continue;
    buf[r] = '\0';
    char *paren = strrchr(buf, ')');
    char state;
    long ppid;
    if (!paren || sscanf(paren + 1, " %c %ld", &state, &ppid) != 2 ||
        ppid != me || is_worker(md, (pid_t)pid))
      continue;
    found[nf++] = (pid_t)pid;
  }
  closedir(d);
  for (unsigned i = 0; i < nf; i++) {
    char path[64], cmd[256];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)found[i]);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t r = fd >= 0 ? read(fd, cmd, sizeof cmd - 1) : -1;
    if (fd >= 0)
      close(fd);
    bool reaper = r > 0 && strcmp(cmd, "kvshm-reaper") == 0 &&
                  (size_t)r > strlen(cmd) + 1 &&
                  strcmp(cmd + strlen(cmd) + 1, md->name) == 0;
    kill_wait(found[i]);
    n++;
    if (reaper && reapers)
      (*reapers)++;
  }
  return n;
}

/* Kill every stray until none appears for a while (a writer killed in the
 * middle of starting a reaper leaves one that shows up a moment later). */
static void kill_all_strays(struct mode *md) {
  for (int quiet = 0, i = 0; quiet < 3 && i < 200; i++) {
    quiet = kill_strays(md, NULL) ? 0 : quiet + 1;
    sleep_ms(20);
  }
}

/* Reap writers that ended by themselves: a crash.  Restart them. */
static void reap_children(struct mode *md) {
  int st;
  pid_t pid;
  while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
    for (uint32_t w = 0; w < md->nw; w++) {
      if (md->wp[w].pid != pid)
        continue;
      md->wp[w].pid = 0;
      if (WIFEXITED(st))
        failf(X_CRASH, "%s: writer %u inc %u exited with status %d", md->name,
              w, md->wp[w].inc, WEXITSTATUS(st));
      else
        failf(X_CRASH, "%s: writer %u inc %u died of signal %d", md->name, w,
              md->wp[w].inc, WTERMSIG(st));
      spawn(md, w);
    }
  }
}

static void read_text(const char *path, char *buf, size_t n) {
  buf[0] = '\0';
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return;
  ssize_t r = read(fd, buf, n - 1);
  close(fd);
  buf[r > 0 ? r : 0] = '\0';
  for (char *p = buf; *p; p++)
    if (*p == '\n')
      *p = ' ';
}

/* A writer whose journal has not grown for hang_ms is hung. */
static void watchdog(struct mode *md) {
  uint64_t now = now_ms();
  for (uint32_t w = 0; w < md->nw; w++) {
    struct wproc *p = &md->wp[w];
    if (p->pid <= 0)
      continue;
    struct stat sb;
    if (stat(p->path, &sb) == 0 && sb.st_size != p->size) {
      p->size = sb.st_size;
      p->grew_ms = now;
      continue;
    }
    if (now - p->grew_ms < O.hang_ms)
      continue;
    char path[64], wchan[128], stack[1024] = "", last[128] = "none";
    snprintf(path, sizeof path, "/proc/%d/wchan", (int)p->pid);
    read_text(path, wchan, sizeof wchan);
    snprintf(path, sizeof path, "/proc/%d/stack", (int)p->pid);
    read_text(path, stack, sizeof stack);
    int fd = open(p->path, O_RDONLY | O_CLOEXEC);
    struct trec r;
    if (fd >= 0 && p->size >= (off_t)sizeof r &&
        pread(fd, &r, sizeof r, p->size - (off_t)sizeof r) == sizeof r)
      snprintf(last, sizeof last, "type %u op %u kind %u idx %u/%u", r.type,
               r.op, r.kind, r.idx, r.idx2);
    if (fd >= 0)
      close(fd);
    failf(X_HANG,
          "%s: writer %u inc %u (pid %d) made no progress for %u ms; last "
          "journal record: %s; wchan %s; stack %s",
          md->name, w, p->inc, (int)p->pid, O.hang_ms, last, wchan, stack);
    T.hangs++;
    kill_worker(md, w);
    spawn(md, w);
  }
}

/* ---- the driver's reads and checks ----------------------------------------
 */

static uint8_t *G_buf;

/* Get key: 1 present (G_buf, *len, *flags), 0 absent, -1 error. */
static int dget(struct mode *md, kvshm *kv, const char *key, size_t *len,
                uint32_t *flags) {
  int rc = kvshm_get(kv, key, strlen(key), G_buf, TV_BUF_MAX, len, flags);
  if (rc == KVSHM_OK)
    return 1;
  if (rc == KVSHM_ENOTFOUND)
    return 0;
  failf(rc == KVSHM_EBUFSIZE ? X_TORN : X_ERROR, "%s: driver get %s: %s: %s",
        md->name, key, kvshm_err_name(rc), kvshm_errdetail());
  return -1;
}

/* A hash map from key to what the driver's walk must find. */
struct hent {
  char *key;
  uint64_t id; /* ST_ABSENT: must not be there */
  uint32_t seen;
};
struct hmap {
  struct hent *t;
  size_t cap, n;
};

static uint64_t hkey(const void *k, size_t n) {
  return t_fnv1a(k, n) * 0x9e3779b97f4a7c15ull;
}

static struct hent *h_find(struct hmap *h, const void *k, size_t n, bool add) {
  if (add && (h->n + 1) * 2 > h->cap) {
    struct hmap g = {calloc(h->cap ? h->cap * 2 : 1024, sizeof *h->t),
                     h->cap ? h->cap * 2 : 1024, 0};
    if (!g.t)
      abort();
    for (size_t i = 0; i < h->cap; i++) {
      if (!h->t[i].key)
        continue;
      size_t j = hkey(h->t[i].key, strlen(h->t[i].key)) & (g.cap - 1);
      while (g.t[j].key)
        j = (j + 1) & (g.cap - 1);
      g.t[j] = h->t[i];
      g.n++;
    }
    free(h->t);
    *h = g;
  }
  if (!h->cap)
    return NULL;
  size_t j = hkey(k, n) & (h->cap - 1);
  while (h->t[j].key) {
    if (strlen(h->t[j].key) == n && memcmp(h->t[j].key, k, n) == 0)
      return &h->t[j];
    j = (j + 1) & (h->cap - 1);
  }
  if (!add)
    return NULL;
  h->t[j].key = strndup(k, n);
  h->t[j].id = ST_ABSENT;
  h->t[j].seen = 0;
  h->n++;
  return &h->t[j];
}

static void h_set(struct hmap *h, const char *key, uint64_t id) {
  h_find(h, key, strlen(key), true)->id = id;
}

static void h_free(struct hmap *h) {
  for (size_t i = 0; i < h->cap; i++)
    free(h->t[i].key);
  free(h->t);
}

static void old_push(struct mode *md, const char *key, int kind, uint64_t id) {
  if (md->nold == md->capold) {
    md->capold = md->capold ? md->capold * 2 : 256;
    md->old = realloc(md->old, md->capold * sizeof *md->old);
    if (!md->old)
      abort();
  }
  struct oldkey *o = &md->old[md->nold++];
  snprintf(o->key, sizeof o->key, "%s", key);
  o->kind = kind;
  o->id = id;
}

/* Read a value key of writer want (or any, -1): its state id, or -1 if it
 * is absent-or-broken (counted). */
static int read_value(struct mode *md, kvshm *kv, const char *key, int64_t want,
                      bool claim, uint64_t *id) {
  size_t len = 0;
  uint32_t flags = 0;
  int got = dget(md, kv, key, &len, &flags);
  if (got <= 0) {
    *id = ST_ABSENT;
    return got;
  }
  uint32_t writer;
  uint64_t seq;
  const char *why;
  int bad = tv_check(G_buf, len, flags, key, strlen(key), want, md->nw, &writer,
                     &seq, &why);
  if (bad) {
    failf(bad == F_TORN ? X_TORN : X_FOREIGN, "%s: driver get %s: %s", md->name,
          key, why);
    return -1;
  }
  *id = claim ? ((uint64_t)writer << 56) | seq : seq;
  return 1;
}

static int read_counter(struct mode *md, kvshm *kv, const char *key,
                        uint64_t *v) {
  size_t len = 0;
  uint32_t flags = 0;
  int got = dget(md, kv, key, &len, &flags);
  *v = 0;
  if (got <= 0)
    return got;
  int64_t x;
  if (tv_check_counter(G_buf, len, flags, &x)) {
    failf(X_TORN, "%s: driver get %s: not a counter (%zu bytes)", md->name, key,
          len);
    return -1;
  }
  *v = (uint64_t)x;
  return 1;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static int cmp_claim(const void *a, const void *b) {
  const struct claim *x = a, *y = b;
  if (x->epoch != y->epoch)
    return x->epoch < y->epoch ? -1 : 1;
  return x->x < y->x ? -1 : x->x > y->x;
}

static void check_counters(struct mode *md, kvshm *kv, struct hmap *h) {
  for (uint32_t i = 0; i < O.nctr; i++) {
    struct cmodel *c = &md->cm[i];
    char key[64];
    snprintf(key, sizeof key, "c.%u.%u", md->round, i);
    uint64_t v = 0;
    int got = read_counter(md, kv, key, &v);
    if (got < 0) {
      h_set(h, key, ST_ANY);
      continue;
    }
    qsort(c->results.v, c->results.n, sizeof *c->results.v, cmp_u64);
    uint64_t dups = 0, maxr = c->results.n ? c->results.v[c->results.n - 1] : 0;
    for (size_t j = 1; j < c->results.n; j++)
      if (c->results.v[j] == c->results.v[j - 1])
        dups++;
    if (dups)
      failf(X_CTR_DUP,
            "%s: %s: %" PRIu64 " acknowledged incrs returned a value "
            "another acknowledged incr returned too (incr not atomic)",
            md->name, key, dups);
    uint64_t lo = md->reboot ? c->max_before_cut : c->acked;
    uint64_t hi = c->acked + c->unknown;
    if (!md->reboot && maxr > lo)
      lo = maxr;
    if (v < lo)
      failf(X_CTR_LOW,
            "%s: %s = %" PRIu64 ", below %" PRIu64 " (%s; %" PRIu64
            " acknowledged incrs, %" PRIu64 " in flight, highest result "
            "%" PRIu64 ")",
            md->name, key, v, lo,
            md->reboot ? "the highest value acknowledged before the cutoff"
                       : "acknowledged incrs, or the highest result",
            c->acked, c->unknown, maxr);
    if (v > hi || maxr > hi)
      failf(X_CTR_HIGH,
            "%s: %s = %" PRIu64 " (highest result %" PRIu64 "), above "
            "%" PRIu64 " acknowledged + %" PRIu64 " in-flight incrs",
            md->name, key, v, maxr, c->acked, c->unknown);
    h_set(h, key, got ? v : ST_ABSENT);
    old_push(md, key, K_CTR, got ? v : ST_ABSENT);
  }
}

static void check_claims(struct mode *md, kvshm *kv, struct hmap *h) {
  qsort(md->cl, md->ncl, sizeof *md->cl, cmp_claim);
  for (size_t i = 0; i < md->ncl;) {
    size_t j = i;
    unsigned won = 0, refused = 0;
    uint64_t winner = 0, win_t = 0;
    while (j < md->ncl && md->cl[j].epoch == md->cl[i].epoch &&
           md->cl[j].x == md->cl[i].x) {
      if (md->cl[j].outcome == 0) {
        won++;
        winner = ((uint64_t)md->cl[j].writer << 56) | md->cl[j].seq;
        win_t = md->cl[j].t_us;
      }
      refused += md->cl[j].outcome == 1;
      j++;
    }
    char key[64];
    snprintf(key, sizeof key, "n.%u.%u.%u", md->round, md->cl[i].epoch,
             md->cl[i].x);
    if (won > 1)
      failf(X_CLAIM_DOUBLE, "%s: %s: %u NX sets succeeded (NX not atomic)",
            md->name, key, won);
    uint64_t id;
    int got = read_value(md, kv, key, -1, true, &id);
    if (got < 0) {
      h_set(h, key, ST_ANY);
      i = j;
      continue;
    }
    bool ok = false;
    if (won == 1 && (!md->reboot || win_t < md->cutoff_us)) {
      ok = id == winner;
    } else {
      /* no (durable) winner: absent, or one of the attempts that may have
       * won; absent is wrong if an acknowledged NX saw the key (no
       * reboot since) */
      ok = id == ST_ABSENT ? md->reboot || (won == 0 && refused == 0) : false;
      for (size_t k = i; k < j && !ok; k++)
        ok = md->cl[k].outcome != 1 &&
             id == (((uint64_t)md->cl[k].writer << 56) | md->cl[k].seq);
    }
    if (!ok) {
      char a[40], b[40];
      failf(md->reboot ? X_REBOOT_LOST : X_LOST,
            "%s: %s holds %s; %u acknowledged NX won (%s), %u refused",
            md->name, key, st_str(id, a, sizeof a), won,
            won ? st_str(winner, b, sizeof b) : "-", refused);
    }
    h_set(h, key, id);
    old_push(md, key, K_CLAIM, id);
    i = j;
  }
}

static void verify_line(void *ctx, const char *msg) {
  struct mode *md = ctx;
  failf(X_VERIFY, "%s: kvshm_verify: %s", md->name, msg);
}

/* The driver's walk: with no writer running, every key exists throughout
 * it, so each must come back exactly once with what a get returned. */
static void check_walk(struct mode *md, kvshm *kv, struct hmap *h) {
  kvshm_iter *it;
  int rc = kvshm_iter_open(kv, NULL, 0, KVSHM_ITER_STORE, &it);
  if (rc) {
    failf(X_ERROR, "%s: iter_open: %s", md->name, kvshm_err_name(rc));
    return;
  }
  const void *k, *v;
  size_t klen, vlen;
  uint32_t flags;
  while ((rc = kvshm_iter_next(it, &k, &klen, &v, &vlen, &flags, NULL)) ==
         KVSHM_OK) {
    char key[TV_KEY_MAX + 1];
    size_t kl = klen < TV_KEY_MAX ? klen : TV_KEY_MAX;
    memcpy(key, k, kl);
    key[kl] = '\0';
    struct hent *e = h_find(h, k, klen, false);
    uint32_t a, b, c;
    int kind = t_parse_key(k, klen, &a, &b, &c);
    if (!e || kind < 0) {
      failf(X_BADKEY, "%s: driver walk returned key '%s' nobody wrote",
            md->name, key);
      continue;
    }
    e->seen++;
    uint64_t id = 0;
    if (kind == K_CTR) {
      int64_t x;
      if (tv_check_counter(v, vlen, flags, &x)) {
        failf(X_TORN, "%s: driver walk: %s is not a counter", md->name, key);
        continue;
      }
      id = (uint64_t)x;
    } else {
      uint32_t writer;
      uint64_t seq;
      const char *why;
      int bad =
          tv_check(v, vlen, flags, k, klen, kind == K_CLAIM ? -1 : (int64_t)a,
                   md->nw, &writer, &seq, &why);
      if (bad) {
        failf(bad == F_TORN ? X_TORN : X_FOREIGN, "%s: driver walk: %s: %s",
              md->name, key, why);
        continue;
      }
      id = kind == K_CLAIM ? ((uint64_t)writer << 56) | seq : seq;
    }
    char x1[40], x2[40];
    if (e->id == ST_ABSENT)
      failf(X_WALK_RESURRECTED,
            "%s: driver walk returned %s = %s, which a "
            "get did not find",
            md->name, key, st_str(id, x1, sizeof x1));
    else if (e->id != ST_ANY && e->id != id)
      failf(X_WALK_STALE, "%s: driver walk returned %s = %s, a get %s",
            md->name, key, st_str(id, x1, sizeof x1),
            st_str(e->id, x2, sizeof x2));
  }
  kvshm_iter_close(it);
  if (rc != KVSHM_ENOTFOUND)
    failf(X_ERROR, "%s: iter_next: %s: %s", md->name, kvshm_err_name(rc),
          kvshm_errdetail());
  for (size_t i = 0; i < h->cap; i++) {
    struct hent *e = &h->t[i];
    if (!e->key || e->id == ST_ANY)
      continue;
    if (e->id != ST_ABSENT && e->seen == 0)
      failf(X_WALK_MISSING, "%s: driver walk did not return %s", md->name,
            e->key);
    if (e->seen > 1)
      failf(X_WALK_DUP, "%s: driver walk returned %s %u times", md->name,
            e->key, e->seen);
  }
}

/*
 * After a round: replay the journals, then read every key and compare it
 * with what the journals allow, walk, verify.  md->reboot says whether the
 * segment was lost in between (persistent mode).
 */
static void check_round(struct mode *md) {
  replay_round(md);
  kvshm *kv;
  int rc = kvshm_open(md->name, &md->cfg, KVSHM_NOREAPER, &kv);
  if (rc) {
    failf(X_ERROR, "%s: driver open: %s: %s", md->name, kvshm_err_name(rc),
          kvshm_errdetail());
    return;
  }
  struct hmap h = {0};
  /* own and stable keys */
  for (uint32_t w = 0; w < md->nw; w++) {
    for (int kind = K_OWN; kind <= K_STABLE; kind++) {
      uint32_t n = kind == K_OWN ? O.nown : O.nstable;
      for (uint32_t j = 0; j < n; j++) {
        char key[64];
        key_name(key, sizeof key, kind, w, j);
        uint64_t id;
        if (read_value(md, kv, key, w, false, &id) < 0) {
          h_set(&h, key, ST_ANY);
          continue;
        }
        km_observe(md, km_of(md, w, kind, j), id,
                   md->reboot ? SRC_REBOOT : SRC_DRIVER, key,
                   md->reboot ? "after the reboot, driver" : "driver");
        h_set(&h, key, id);
      }
    }
  }
  check_counters(md, kv, &h);
  check_claims(md, kv, &h);
  /* keys of earlier rounds: nobody writes them any more */
  for (size_t i = 0; i < md->nold; i++) {
    struct oldkey *o = &md->old[i];
    if (h_find(&h, o->key, strlen(o->key), false))
      continue; /* this round's */
    uint64_t id;
    int got = o->kind == K_CTR ? read_counter(md, kv, o->key, &id)
                               : read_value(md, kv, o->key, -1, true, &id);
    if (got < 0) {
      h_set(&h, o->key, ST_ANY);
      continue;
    }
    if (got == 0)
      id = ST_ABSENT;
    if (id != o->id) {
      char a[40], b[40];
      failf(md->reboot ? X_REBOOT_LOST : X_LOST,
            "%s: %s of an earlier round holds %s, it held %s", md->name, o->key,
            st_str(id, a, sizeof a), st_str(o->id, b, sizeof b));
    }
    h_set(&h, o->key, id);
  }
  check_walk(md, kv, &h);
  int problems = kvshm_verify(kv, verify_line, md);
  if (problems < 0)
    failf(X_ERROR, "%s: kvshm_verify: %s", md->name, kvshm_err_name(problems));
  if (kvshm_stats_get(kv, &md->last) == 0 && md->m == M_MEMORY &&
      md->last.evictions) {
    failf(X_SIZING,
          "%s: %" PRIu64 " evictions in a memory-only cache: it is too "
          "small for the lost-write checks (TORTURE_MEMORY_MB)",
          md->name, md->last.evictions);
  }
  if (md->m != M_MEMORY) {
    kvshm_store_stats ss;
    if (kvshm_store_stats_get(kv, &ss) == 0)
      printf("torture: %s round %u: memory holds %" PRIu64 " entries (%" PRIu64
             " KB), SQLite %" PRIu64 " rows (%" PRIu64 " KB)\n",
             md->name, md->round, md->last.entries, md->last.bytes >> 10,
             ss.rows, ss.bytes >> 10);
  }
  h_free(&h);
  kvshm_close(kv);
  /* the next round starts from what was just read */
  for (uint32_t i = 0; i < O.nctr; i++) {
    md->cm[i].acked = md->cm[i].unknown = md->cm[i].max_before_cut = 0;
    md->cm[i].results.n = 0;
  }
  md->ncl = 0;
  md->reboot = false;
  md->cutoff_us = 0;
}

/* ---- a mode ---------------------------------------------------------------
 */

static uint64_t failures(void) {
  uint64_t f = 0;
  for (int i = 0; i < X_N; i++)
    f += T.x[i];
  return f;
}

static void accumulate(const kvshm_stats *st) {
  T.repairs += st->repairs;
  T.reaper_starts += st->reaper_starts;
  T.spills += st->spills;
  T.evictions += st->evictions;
  T.corrupt += st->corrupt;
}

/* Persistent mode's round end: everything dies at once, the segment goes. */
static void reboot(struct mode *md, uint64_t kill_us) {
  kill_all_strays(md); /* the reaper; writers are dead already */
  kvshm *kv;
  if (kvshm_open(md->name, NULL, KVSHM_RDONLY | KVSHM_NOREAPER, &kv) == 0) {
    kvshm_stats st;
    if (kvshm_stats_get(kv, &st) == 0)
      accumulate(&st);
    kvshm_close(kv);
  }
  int rc = kvshm_unlink(md->name);
  if (rc)
    failf(X_ERROR, "%s: unlink: %s", md->name, kvshm_err_name(rc));
  T.reboots++;
  md->reboot = true;
  uint64_t bound = (uint64_t)(O.flush_ms + O.margin_ms) * 1000u;
  md->cutoff_us = kill_us > bound ? kill_us - bound : 0;
}

static void stop_workers(struct mode *md) {
  for (uint32_t w = 0; w < md->nw; w++) {
    if (md->wp[w].pid > 0) {
      kill(md->wp[w].pid, SIGKILL);
      T.stops++;
    }
  }
  for (uint32_t w = 0; w < md->nw; w++)
    kill_worker(md, w);
}

/* Tell every writer to pause `us` microseconds between operations. */
static void set_pace(struct mode *md, unsigned us) {
  char path[PATH_MAX], tmp[PATH_MAX];
  snprintf(path, sizeof path, "%s/pace", md->dir);
  snprintf(tmp, sizeof tmp, "%s/pace.tmp", md->dir);
  FILE *f = fopen(tmp, "we");
  if (!f || fprintf(f, "%u\n", us) < 0 || fclose(f) || rename(tmp, path)) {
    perror("torture: pace file");
    exit(3);
  }
}

static void kill_random(struct mode *md) {
  if (rnd(md, 100) < O.reaper_pct) {
    unsigned reapers = 0;
    kill_strays(md, &reapers);
    if (reapers) {
      T.kills_r += reapers;
      return;
    }
  }
  uint32_t w = (uint32_t)rnd(md, md->nw);
  kill_worker(md, w);
  T.kills_w++;
  spawn(md, w);
}

static void run_round(struct mode *md) {
  md->round++;
  T.rounds++;
  bool persistent = md->m == M_PERSISTENT;
  for (uint32_t w = 0; w < md->nw; w++)
    spawn(md, w);
  uint64_t start = now_ms(), end = start + O.round_ms;
  uint64_t next_kill =
      start + O.kill_min_ms + rnd(md, O.kill_max_ms - O.kill_min_ms + 1);
  /* Odd rounds end in a slow phase (writers pause TORTURE_SLOW_US between
   * operations, as a lightly loaded application does).  In persistent mode
   * the reaper dies during it, 1.8-2.5 s before the reboot: the writes
   * acknowledged between its death and flush_delay + margin before the
   * reboot must reach SQLite all the same (through a reaper restarted in
   * time, or without one). */
  bool slow_end = md->round % 2 && O.slow_us;
  uint64_t slow_at = slow_end ? end - 3000 : 0;
  uint64_t reaper_kill = persistent && md->round % 2 && O.reaper_pct
                             ? end - 1800 - rnd(md, 700)
                             : 0;
  set_pace(md, 0);
  uint64_t next_watch = start + 250;
  while (!stop_requested) {
    alarm(60 + O.hang_ms / 1000);
    uint64_t now = now_ms();
    if (now >= end)
      break;
    reap_children(md);
    if (slow_at && now >= slow_at) {
      set_pace(md, O.slow_us);
      slow_at = 0;
    }
    if (reaper_kill && now >= reaper_kill) {
      unsigned reapers = 0;
      kill_strays(md, &reapers);
      T.kills_r += reapers;
      reaper_kill = 0;
      /* no writer restarts from here to the reboot: opening the cache
       * starts a reaper at once */
      next_kill = UINT64_MAX;
    }
    if (now >= next_kill) {
      kill_random(md);
      next_kill =
          now_ms() + O.kill_min_ms + rnd(md, O.kill_max_ms - O.kill_min_ms + 1);
    }
    if (now >= next_watch) {
      watchdog(md);
      next_watch = now + 250;
    }
    uint64_t wake = end;
    if (next_kill < wake)
      wake = next_kill;
    if (next_watch < wake)
      wake = next_watch;
    if (reaper_kill && reaper_kill < wake)
      wake = reaper_kill;
    if (slow_at && slow_at < wake)
      wake = slow_at;
    now = now_ms();
    sleep_ms(wake > now ? (unsigned)(wake - now < 50 ? wake - now : 50) : 0);
  }
  uint64_t kill_us = t_now_us();
  stop_workers(md);
  if (persistent)
    printf("torture: %s round %u: reboot: everything killed at t=%.3f s, "
           "writes acknowledged before t=%.3f s must survive%s\n",
           md->name, md->round, (double)kill_us / 1e6,
           (double)(kill_us - (uint64_t)(O.flush_ms + O.margin_ms) * 1000u) /
               1e6,
           md->round % 2 && O.reaper_pct ? "; the reaper died 1.8-2.5 s before"
                                         : "");
  reap_children(md);
  alarm(300 + O.round_ms / 100);
  if (persistent)
    reboot(md, kill_us); /* sets the cutoff the replay needs */
  check_round(md);
  alarm(0);
}

static void rm_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d)
    return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
      continue;
    char p[PATH_MAX + 256];
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    unlink(p);
  }
  closedir(d);
  rmdir(dir);
}

static void print_tally(const struct mode *md, double secs, bool pass) {
  uint64_t lost = T.x[X_LOST] + T.x[X_REBOOT_LOST];
  uint64_t ctr =
      T.x[X_CTR_LOW] + T.x[X_CTR_HIGH] + T.x[X_CTR_DUP] + T.x[X_CTR_REGRESS];
  uint64_t walk = T.x[X_WALK_DUP] + T.x[X_WALK_MISSING] + T.x[X_WALK_STALE] +
                  T.x[X_WALK_RESURRECTED];
  printf("torture: %s: %u rounds, %.1f s, %u writers (%u C, %u Node): "
         "kills %" PRIu64 " (writers %" PRIu64 ", reaper %" PRIu64
         "), round-end kills %" PRIu64 ", reboots %" PRIu64 ", repairs %" PRIu64
         ", reaper starts %" PRIu64 ", spills %" PRIu64 ", evictions %" PRIu64
         ", acknowledged ops %" PRIu64 " (C %" PRIu64 ", Node %" PRIu64
         "), incarnations %" PRIu64 "\n",
         MODE_NAME[md->m], T.rounds, secs, md->nw, O.ncw, O.nnw,
         T.kills_w + T.kills_r, T.kills_w, T.kills_r, T.stops, T.reboots,
         T.repairs, T.reaper_starts, T.spills, T.evictions,
         T.acked[0] + T.acked[1], T.acked[0], T.acked[1], T.incarnations);
  printf("torture: %s: lost %" PRIu64 " (during the run %" PRIu64
         ", across reboots %" PRIu64 "), torn %" PRIu64 ", foreign %" PRIu64
         ", resurrected %" PRIu64 ", counters %" PRIu64 " (low %" PRIu64
         ", high %" PRIu64 ", duplicate results %" PRIu64 ", went down %" PRIu64
         "), double claims %" PRIu64 ", walks %" PRIu64 " (dup %" PRIu64
         ", missing %" PRIu64 ", stale %" PRIu64 ", resurrected %" PRIu64
         "), bad keys %" PRIu64 ", verify %" PRIu64 ", errors %" PRIu64
         ", crashes %" PRIu64 ", hangs %" PRIu64 ", sizing %" PRIu64 ": %s\n",
         MODE_NAME[md->m], lost, T.x[X_LOST], T.x[X_REBOOT_LOST], T.x[X_TORN],
         T.x[X_FOREIGN], T.x[X_RESURRECTED], ctr, T.x[X_CTR_LOW],
         T.x[X_CTR_HIGH], T.x[X_CTR_DUP], T.x[X_CTR_REGRESS],
         T.x[X_CLAIM_DOUBLE], walk, T.x[X_WALK_DUP], T.x[X_WALK_MISSING],
         T.x[X_WALK_STALE], T.x[X_WALK_RESURRECTED], T.x[X_BADKEY],
         T.x[X_VERIFY], T.x[X_ERROR], T.x[X_CRASH], T.x[X_HANG], T.x[X_SIZING],
         pass ? "PASS" : "FAIL");
  fflush(stdout);
}

static bool run_mode(int m) {
  memset(&T, 0, sizeof T);
  struct mode *md = calloc(1, sizeof *md);
  if (!md)
    abort();
  md->m = m;
  md->nw = O.ncw + O.nnw;
  md->rng = O.seed ^ ((uint64_t)m << 40);
  snprintf(md->name, sizeof md->name, "tort-%d-%s", (int)getpid(),
           MODE_NAME[m]);
  snprintf(current_shm, sizeof current_shm, "/kvshm.%s", md->name);
  const char *tmp = getenv("TMPDIR");
  if (!tmp || !*tmp || strlen(tmp) > 200)
    tmp = "/tmp";
  snprintf(md->dir, sizeof md->dir, "%s/tort-%d-%s-XXXXXX", tmp, (int)getpid(),
           MODE_NAME[m]);
  if (!mkdtemp(md->dir)) {
    perror("torture: mkdtemp");
    exit(3);
  }
  snprintf(md->db, sizeof md->db, "%s/cache.db", md->dir);
  kvshm_config_init(&md->cfg);
  if (m == M_MEMORY) {
    md->cfg.memory_size = (uint64_t)O.mem_mb << 20;
    md->cfg.stripes = 8;
  } else {
    md->cfg.memory_size = (uint64_t)O.sqlite_mem_mb << 20;
    md->cfg.stripes = 4;
    md->cfg.sqlite_path = md->db;
    if (m == M_PERSISTENT) {
      md->cfg.persistent = 1;
      md->cfg.flush_delay_ms = O.flush_ms;
    }
  }
  md->wp = calloc(md->nw, sizeof *md->wp);
  md->inc_done = calloc(md->nw, sizeof *md->inc_done);
  md->km = calloc((size_t)md->nw * (O.nown + O.nstable), sizeof *md->km);
  md->cm = calloc(O.nctr, sizeof *md->cm);
  if (!md->wp || !md->inc_done || !md->km || !md->cm)
    abort();
  printf("torture: %s: cache %s, %u MB in %u stripes%s%s, %u writers, "
         "%u keys + %u stable keys each, %u counters\n",
         MODE_NAME[m], md->name, (unsigned)(md->cfg.memory_size >> 20),
         md->cfg.stripes, m == M_MEMORY ? "" : ", SQLite ",
         m == M_MEMORY ? "" : md->db, md->nw, O.nown, O.nstable, O.nctr);
  fflush(stdout);
  uint64_t t0 = now_ms();
  /* incarnation 0: the driver writes every stable key once */
  kvshm *kv;
  int rc = kvshm_open(md->name, &md->cfg, KVSHM_NOREAPER, &kv);
  if (rc) {
    fprintf(stderr, "torture: %s: open: %s: %s\n", md->name, kvshm_err_name(rc),
            kvshm_errdetail());
    exit(3);
  }
  uint64_t rng = O.seed;
  for (uint32_t w = 0; w < md->nw; w++) {
    for (uint32_t j = 0; j < O.nstable; j++) {
      char key[64];
      key_name(key, sizeof key, K_STABLE, w, j);
      uint64_t seq = j + 1;
      size_t len =
          tv_make(G_buf, tv_payload_size(&rng), key, strlen(key), w, seq, &rng);
      rc = kvshm_set(kv, key, strlen(key), G_buf, len, TV_FLAGS,
                     KVSHM_TTL_NEVER, 0);
      if (rc) {
        fprintf(stderr, "torture: %s: prefill %s: %s: %s\n", md->name, key,
                kvshm_err_name(rc), kvshm_errdetail());
        exit(3);
      }
      struct kmodel *k = km_of(md, w, K_STABLE, j);
      ss_one(&k->S, seq);
      ss_one(&k->D, seq);
      ss_one(&k->base, seq);
    }
    for (uint32_t j = 0; j < O.nown; j++) {
      struct kmodel *k = km_of(md, w, K_OWN, j);
      ss_one(&k->S, ST_ABSENT);
      ss_one(&k->D, ST_ABSENT);
      ss_one(&k->base, ST_ABSENT);
    }
  }
  kvshm_close(kv);
  while (!stop_requested &&
         (md->round < O.rounds ||
          (O.min_kills && T.kills_w + T.kills_r < O.min_kills))) {
    run_round(md);
    printf("torture: %s round %u done: %.1f s, kills %" PRIu64
           " (writers %" PRIu64 ", reaper %" PRIu64 "), acknowledged ops "
           "%" PRIu64 ", failures so far %" PRIu64 "\n",
           md->name, md->round, (double)(now_ms() - t0) / 1000.0,
           T.kills_w + T.kills_r, T.kills_w, T.kills_r, T.acked[0] + T.acked[1],
           failures());
    fflush(stdout);
  }
  /* the end: nothing of ours may outlive the mode */
  stop_workers(md);
  kill_all_strays(md);
  accumulate(&md->last);
  kvshm_unlink(md->name);
  current_shm[0] = '\0';
  if (O.keep)
    printf("torture: %s: kept %s\n", md->name, md->dir);
  else
    rm_dir(md->dir);
  if (stop_requested)
    failf(X_ERROR, "%s: interrupted", md->name);
  bool pass = failures() == 0;
  print_tally(md, (double)(now_ms() - t0) / 1000.0, pass);
  for (size_t i = 0; i < (size_t)md->nw * (O.nown + O.nstable); i++) {
    ss_free(&md->km[i].S);
    ss_free(&md->km[i].D);
    ss_free(&md->km[i].base);
    ss_free(&md->km[i].U);
  }
  for (uint32_t i = 0; i < O.nctr; i++)
    free(md->cm[i].results.v);
  free(md->cm);
  free(md->km);
  free(md->wp);
  free(md->inc_done);
  free(md->cl);
  free(md->old);
  free(md);
  return pass;
}

/* ---- main -----------------------------------------------------------------
 */

static void on_stop(int sig) {
  (void)sig;
  stop_requested = 1;
}

/* The driver itself stopped making progress: say so and leave no segment
 * behind (writers die with us: PR_SET_PDEATHSIG; reapers exit when their
 * segment is gone). */
static void on_alarm(int sig) {
  (void)sig;
  static const char msg[] = "torture: FAIL hangs: the driver made no "
                            "progress (a check or a kill is stuck)\n";
  (void)!write(2, msg, sizeof msg - 1);
  if (current_shm[0])
    shm_unlink(current_shm);
  _exit(4);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "worker") == 0)
    return worker_main(argc, argv);
  if (argc > 1) {
    usage();
    return strcmp(argv[1], "--help") && strcmp(argv[1], "-h") ? 2 : 0;
  }
  parse_opts();
  ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
  if (n <= 0) {
    perror("torture: /proc/self/exe");
    return 3;
  }
  self_exe[n] = '\0';
  if (getenv("KVSHM_REAPER")) {
    /* the reaper is part of what is tortured */
    unsetenv("KVSHM_REAPER");
  }
  G_buf = malloc(TV_BUF_MAX);
  if (!G_buf)
    return 3;
  char modes[64] = "";
  for (int m = 0; m < M_COUNT; m++)
    if (O.modes & (1u << m))
      snprintf(modes + strlen(modes), sizeof modes - strlen(modes), "%s%s",
               modes[0] ? "," : "", MODE_NAME[m]);
  static char command[1024];
  snprintf(command, sizeof command,
           "TORTURE_MODES=%s TORTURE_ROUNDS=%u TORTURE_ROUND_MS=%u "
           "TORTURE_KILLS=%u TORTURE_C_WORKERS=%u TORTURE_NODE_WORKERS=%u "
           "TORTURE_KEYS=%u TORTURE_STABLE=%u TORTURE_COUNTERS=%u "
           "TORTURE_KILL_MS=%u,%u TORTURE_HANG_MS=%u TORTURE_FLUSH_MS=%u "
           "TORTURE_MARGIN_MS=%u TORTURE_MEMORY_MB=%u "
           "TORTURE_SQLITE_MEMORY_MB=%u TORTURE_SLOW_US=%u TORTURE_WALK_MS=%u "
           "TORTURE_REAPER_KILLS=%u TORTURE_SEED=%" PRIu64 " %s",
           modes, O.rounds, O.round_ms, O.min_kills, O.ncw, O.nnw, O.nown,
           O.nstable, O.nctr, O.kill_min_ms, O.kill_max_ms, O.hang_ms,
           O.flush_ms, O.margin_ms, O.mem_mb, O.sqlite_mem_mb, O.slow_us,
           O.walk_ms, O.reaper_pct, O.seed, argv[0]);
  printf("torture: command: %s\n", command);
  fflush(stdout);
  if (prctl(PR_SET_CHILD_SUBREAPER, 1)) {
    perror("torture: PR_SET_CHILD_SUBREAPER");
    return 3;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sa.sa_handler = on_alarm;
  sigaction(SIGALRM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  unsigned passed = 0, failed = 0;
  for (int m = 0; m < M_COUNT && !stop_requested; m++) {
    if (!(O.modes & (1u << m)))
      continue;
    if (run_mode(m))
      passed++;
    else
      failed++;
  }
  printf("torture: counts above from: %s\n", command);
  printf("torture: %u passed, %u failed\n", passed, failed);
  return failed || stop_requested ? 1 : 0;
}
