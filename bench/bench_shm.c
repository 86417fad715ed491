/*
 * bench_shm.c - how fast and how compact libshm is.
 *
 * Throughput: 1M entries of 16-byte keys and 100-byte values, read and
 * overwritten in uniformly random order, first by one process, then by two
 * at once (forked, each with its own handle, started together through a pipe
 * barrier; the figure is the sum of their rates).  The random order and the
 * keys it names are generated before any clock starts, into one stream of
 * keys that every phase reads from, so the timed loops do nothing but call
 * libshm.  Each phase runs three times and the best run counts.  Each run
 * also records how much CPU its workers got: a run that shared its CPUs
 * with other programs does not count (up to three more runs are made to get
 * three clean ones), and a figure that has no clean run is flagged.
 *
 * Context for the get figure: a hit must read a random bucket and then the
 * random slot it names, two dependent cache misses.  The same two reads in
 * a bare shared mapping of the same size, without libshm, are timed too
 * ("memory latency"): no get on this machine can beat that floor unless
 * consecutive gets overlap.  A second get row reads only 10K hot keys,
 * whose slots stay in the CPU caches: the cost of libshm's own code.
 *
 * The ceiling for the get figure: the same keys and values in a plain
 * open-addressing table of 128-byte inline slots, without locks (one cache
 * miss per get), in a shared mapping of the cache's size, read from the
 * same key stream by the same loop and the same workers, right after the
 * kvshm get phase.  The target is a ratio of the two.
 *
 * Memory: bytes of segment per stored entry once the cache is full
 * (memory_size / entries after filling it well past capacity, so eviction
 * has made room many times), at the default slot size; then the same over
 * value sizes from 10 B to 10 KiB, at the default slot size and at the best
 * of a few candidate slot sizes, to show what tuning slot_size gives.
 *
 * It asserts nothing: it prints each figure next to its target with PASS or
 * MISS, and exits non-zero only if the benchmark itself could not run.
 * With --json, stdout carries only one JSON object (its "targets" array in
 * the format bench/README.md defines) and the text report goes to stderr.
 *
 *   bench_shm [--quick] [--json]
 */
#include "kvshm.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KEY_LEN 16
#define VALUE_LEN 100
#define HOT_KEYS 10000 /* the "hot" get row reads only this many keys */
#define LOW_CPU 0.9    /* a run whose workers got less CPU is flagged */
#define MIX_SET_PERCENT 10
#define SEED 0x6b7673686d62656eull
#define BARRIER_TIMEOUT_MS 60000

/* Targets the figures are compared with (issue 12, and the memory one). */
#define TARGET_CEILING 0.7     /* kvshm get / the one-miss table's get */
#define TARGET_SCALING 1.9     /* two processes / one: get, hot get, mix */
#define TARGET_SET_OPS 3e6     /* overwrites per second, one process */
#define TARGET_BYTES_RATIO 1.5 /* bytes per entry / (key + value bytes) */

static const uint32_t curve_values[] = {10, 32, 100, 316, 1024, 3277, 10240};
#define NCURVE (sizeof curve_values / sizeof curve_values[0])
/* Slot sizes tried for the curve's "best"; the exact fit is added to them. */
static const uint32_t slot_candidates[] = {64,  96,   128,  160,  256,
                                           512, 1024, 2048, 4096, 8192};
#define NCAND (sizeof slot_candidates / sizeof slot_candidates[0])

struct params {
  uint64_t entries;      /* keys in the throughput phases */
  uint64_t memory;       /* their segment's size */
  uint32_t stripes;      /* and its stripes */
  uint64_t stream_len;   /* ops in the pre-generated key stream */
  double run_s;          /* length of one timed run */
  double warmup_s;       /* untimed run before it, in each process */
  int runs;              /* runs per phase; the best counts */
  uint64_t curve_memory; /* segment of the curve; 0 = the default size */
  double floor_s;        /* length of one memory-latency run */
};

static const struct params full_params = {
    1000000, 256ull << 20, 64, 1u << 22, 0.5, 0.05, 3, 0, 0.3};
static const struct params quick_params = {
    100000, 32ull << 20, 64, 1u << 18, 0.1, 0.02, 3, 4ull << 20, 0.1};

/* The one-miss table (the ceiling), see "the ceiling" below. */
struct ceiling {
  unsigned char *base; /* nslots slots of CEIL_SLOT bytes, shared mapping */
  uint64_t nslots;     /* a power of two */
  uint64_t size;       /* of the mapping */
};

/* What every phase reads; built once, before fork, shared copy-on-write. */
struct bench {
  struct params p;
  char name[64];          /* the throughput segment */
  unsigned char *keys;    /* entries * KEY_LEN: key i at i * KEY_LEN */
  unsigned char *stream;  /* stream_len * KEY_LEN: the keys in random order */
  unsigned char *hot;     /* stream_len * KEY_LEN: HOT_KEYS keys, random */
  unsigned char *mix_set; /* stream_len flags: 1 = this op is a set (mix) */
  unsigned char value[VALUE_LEN];
  struct ceiling ceil; /* the same keys and values, in the one-miss table */
  bool quick;          /* --quick */
};

enum op_kind { OP_GET, OP_CEILING, OP_GET_HOT, OP_SET, OP_MIX, NKINDS };
static const char *const op_names[] = {"get", "ceiling_get", "get_hot", "set",
                                       "mix"};
static const char *const op_labels[] = {
    "get (hit)", "ceiling get (one miss)", "get (hit, 10K hot keys)",
    "set (overwrite)", "mix 90% get / 10% set"};

/* One timed run of one process. */
struct run_result {
  uint64_t ops;
  uint64_t ns;
  uint64_t cpu_ns; /* CPU time the worker got during those ns */
  uint64_t errors; /* calls that did not return KVSHM_OK */
  int32_t first_error;
  int32_t pad;
};

/* A phase: the best of p.runs runs, with 1 and with 2 processes. */
struct phase {
  double rate[3];     /* [nprocs]: aggregate ops/s of the best run */
  double cpu[3];      /* [nprocs]: least CPU share of its workers */
  uint64_t errors[3]; /* [nprocs]: errors summed over every run */
  int first_error[3];
};

/* One point of the bytes-per-entry measurements. */
struct fill {
  uint32_t slot_size;
  uint64_t memory_size;
  uint32_t stripes;
  uint64_t entries; /* stats.entries when full; 0 = could not fill */
  uint64_t slots_used;
  uint64_t sets; /* sets it took */
  int error;     /* a set's failure (KVSHM_ETOOBIG ...), 0 if none */
};

struct curve_point {
  uint32_t value_len;
  struct fill dflt;
  struct fill cand[NCAND + 1];
  int ncand;
  int best; /* index into cand */
};

/* ---- small helpers ---------------------------------------------------- */

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU time this process has had. */
static uint64_t cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Key i: "key:" and 12 decimal digits, exactly KEY_LEN bytes. */
static void key_make(uint64_t i, unsigned char *out) {
  char tmp[KEY_LEN + 8];
  snprintf(tmp, sizeof tmp, "key:%012" PRIu64, (uint64_t)(i % 1000000000000u));
  memcpy(out, tmp, KEY_LEN);
}

static void die(const char *what, int rc) {
  fprintf(stderr, "bench_shm: %s: %s", what, kvshm_strerror(rc));
  if (*kvshm_errdetail())
    fprintf(stderr, " (%s)", kvshm_errdetail());
  fputc('\n', stderr);
  exit(1);
}

static void *xmalloc(size_t n) {
  void *p = malloc(n);
  if (!p) {
    fprintf(stderr, "bench_shm: out of memory (%zu bytes)\n", n);
    exit(1);
  }
  return p;
}

static void cpu_model(char *out, size_t outsz) {
  snprintf(out, outsz, "unknown");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f)
    return;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "model name", 10))
      continue;
    char *v = strchr(line, ':');
    if (!v)
      break;
    v++;
    while (*v == ' ' || *v == '\t')
      v++;
    v[strcspn(v, "\n")] = '\0';
    snprintf(out, outsz, "%s", v);
    break;
  }
  fclose(f);
}

/* A JSON string literal. */
static void json_str(FILE *o, const char *s) {
  fputc('"', o);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(o, "\\%c", c);
    else if (c < 0x20)
      fprintf(o, "\\u%04x", c);
    else
      fputc(c, o);
  }
  fputc('"', o);
}

/* ---- setup ------------------------------------------------------------ */

static void bench_build(struct bench *b, const struct params *p) {
  b->p = *p;
  snprintf(b->name, sizeof b->name, "bn%ld-bench", (long)getpid());
  b->keys = xmalloc(p->entries * KEY_LEN);
  for (uint64_t i = 0; i < p->entries; i++)
    key_make(i, b->keys + i * KEY_LEN);
  b->stream = xmalloc(p->stream_len * KEY_LEN);
  b->hot = xmalloc(p->stream_len * KEY_LEN);
  b->mix_set = xmalloc(p->stream_len);
  uint64_t rng = SEED, nhot = HOT_KEYS < p->entries ? HOT_KEYS : p->entries;
  for (uint64_t j = 0; j < p->stream_len; j++) {
    uint64_t i = splitmix(&rng) % p->entries;
    memcpy(b->stream + j * KEY_LEN, b->keys + i * KEY_LEN, KEY_LEN);
    i = splitmix(&rng) % nhot;
    memcpy(b->hot + j * KEY_LEN, b->keys + i * KEY_LEN, KEY_LEN);
    b->mix_set[j] = splitmix(&rng) % 100 < MIX_SET_PERCENT;
  }
  for (int i = 0; i < VALUE_LEN; i++)
    b->value[i] = (unsigned char)('a' + i % 26);
}

/* Insert every key once; returns inserts per second. */
static double bench_fill(const struct bench *b, kvshm *kv) {
  uint64_t t0 = now_ns();
  for (uint64_t i = 0; i < b->p.entries; i++) {
    int rc = kvshm_set(kv, b->keys + i * KEY_LEN, KEY_LEN, b->value, VALUE_LEN,
                       0, KVSHM_TTL_NEVER, 0);
    if (rc)
      die("filling the cache", rc);
  }
  return (double)b->p.entries * 1e9 / (double)(now_ns() - t0);
}

/* ---- the ceiling: a one-miss table ------------------------------------ */

/*
 * What a get could cost on this machine: a plain open-addressing table
 * (linear probing) whose 128-byte slots hold the full hash, the key and the
 * value inline, in a shared mapping as large as the cache's segment, with no
 * lock, no checksum, no LFU, no TTL and no statistics.  A hit reads one
 * random slot: one cache miss (its two lines are adjacent and aligned, and
 * the second is fetched with the first).  It hashes with the construction
 * libshm uses (8 bytes per multiply-xorshift step, splitmix64 finaliser)
 * and copies the value out as kvshm_get does, so the ratio of the two is
 * what libshm's layout, locking and bookkeeping cost.
 *
 *   slot:  0 hash (8, 0 = empty) | 8 key_len | 9 value_len | 10 key, value
 */
#define CEIL_SLOT 128
#define CEIL_HDR 10

static uint64_t ceil_hash(const unsigned char *p, size_t len) {
  const uint64_t k1 = 0x9e3779b97f4a7c15ull, k2 = 0xbf58476d1ce4e5b9ull,
                 k3 = 0x94d049bb133111ebull;
  uint64_t h = len * k3, v;
  for (; len >= 8; p += 8, len -= 8) {
    memcpy(&v, p, 8);
    h ^= v * k1;
    h = ((h << 31) | (h >> 33)) * k2;
  }
  if (len) {
    v = 0;
    memcpy(&v, p, len);
    h ^= (v ^ ((uint64_t)len << 56)) * k1;
    h = ((h << 31) | (h >> 33)) * k2;
  }
  h = (h ^ (h >> 30)) * k2;
  h = (h ^ (h >> 27)) * k3;
  h ^= h >> 31;
  return h ? h : 1;
}

/* A shared anonymous mapping of at most `size` bytes: the forked workers
 * read the parent's table, as processes attached to one segment do. */
static void ceil_create(struct ceiling *t, uint64_t size) {
  t->nslots = 1;
  while (t->nslots * 2 * CEIL_SLOT <= size)
    t->nslots *= 2;
  t->size = t->nslots * CEIL_SLOT;
  t->base = mmap(NULL, t->size, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (t->base == MAP_FAILED) {
    perror("bench_shm: mapping the ceiling table");
    exit(1);
  }
  memset(t->base, 0, t->size); /* fault every page in, as a filled cache is */
}

static void ceil_put(struct ceiling *t, const unsigned char *key, size_t klen,
                     const unsigned char *val, size_t vlen) {
  uint64_t h = ceil_hash(key, klen), mask = t->nslots - 1;
  for (uint64_t i = h & mask;; i = (i + 1) & mask) {
    unsigned char *s = t->base + i * CEIL_SLOT;
    uint64_t sh;
    memcpy(&sh, s, 8);
    if (sh && (sh != h || s[8] != klen || memcmp(s + CEIL_HDR, key, klen)))
      continue;
    memcpy(s, &h, 8);
    s[8] = (unsigned char)klen;
    s[9] = (unsigned char)vlen;
    memcpy(s + CEIL_HDR, key, klen);
    memcpy(s + CEIL_HDR + klen, val, vlen);
    return;
  }
}

/* A get: KVSHM_OK and the value copied out, or KVSHM_ENOTFOUND. */
static int ceil_get(const struct ceiling *t, const unsigned char *key,
                    size_t klen, unsigned char *buf, size_t bufsz,
                    size_t *vlen) {
  uint64_t h = ceil_hash(key, klen), mask = t->nslots - 1;
  for (uint64_t i = h & mask;; i = (i + 1) & mask) {
    const unsigned char *s = t->base + i * CEIL_SLOT;
    uint64_t sh;
    memcpy(&sh, s, 8);
    if (!sh)
      return KVSHM_ENOTFOUND;
    if (sh != h || s[8] != klen || memcmp(s + CEIL_HDR, key, klen))
      continue;
    *vlen = s[9];
    if (*vlen > bufsz)
      return KVSHM_EBUFSIZE;
    memcpy(buf, s + CEIL_HDR + klen, *vlen);
    return KVSHM_OK;
  }
}

static void ceil_fill(struct bench *b) {
  _Static_assert(CEIL_HDR + KEY_LEN + VALUE_LEN <= CEIL_SLOT,
                 "an entry must fit one ceiling slot");
  ceil_create(&b->ceil, b->p.memory);
  if (b->p.entries * 4 > b->ceil.nslots * 3) {
    fprintf(stderr, "bench_shm: the ceiling table would be over 75%% full\n");
    exit(1);
  }
  for (uint64_t i = 0; i < b->p.entries; i++)
    ceil_put(&b->ceil, b->keys + i * KEY_LEN, KEY_LEN, b->value, VALUE_LEN);
}

/* ---- the timed loop --------------------------------------------------- */

/*
 * Run `kind` ops from stream position `start` for `seconds`.  The clock is
 * read every 256 ops, so its cost is noise.
 */
static struct run_result run_ops(const struct bench *b, kvshm *kv,
                                 enum op_kind kind, uint64_t start,
                                 double seconds) {
  struct run_result r = {0, 0, 0, 0, 0, 0};
  unsigned char buf[VALUE_LEN + 64], val[VALUE_LEN];
  memcpy(val, b->value, VALUE_LEN);
  const unsigned char *stream = kind == OP_GET_HOT ? b->hot : b->stream;
  uint64_t len = b->p.stream_len, j = start % len;
  uint64_t cpu0 = cpu_ns(), t0 = now_ns();
  uint64_t deadline = t0 + (uint64_t)(seconds * 1e9), t = t0;
  while (t < deadline) {
    for (int k = 0; k < 256; k++) {
      const unsigned char *key = stream + j * KEY_LEN;
      int rc;
      if (kind == OP_CEILING) {
        size_t vlen;
        rc = ceil_get(&b->ceil, key, KEY_LEN, buf, sizeof buf, &vlen);
      } else if (kind != OP_SET && (kind != OP_MIX || !b->mix_set[j])) {
        size_t vlen;
        rc = kvshm_get(kv, key, KEY_LEN, buf, sizeof buf, &vlen, NULL);
      } else {
        val[0] = (unsigned char)j; /* a real overwrite, not the same bytes */
        rc = kvshm_set(kv, key, KEY_LEN, val, VALUE_LEN, 0, KVSHM_TTL_NEVER, 0);
      }
      if (rc) {
        if (!r.errors++)
          r.first_error = rc;
      }
      if (++j == len)
        j = 0;
    }
    r.ops += 256;
    t = now_ns();
  }
  r.ns = t - t0;
  r.cpu_ns = cpu_ns() - cpu0;
  return r;
}

static bool write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n) {
    ssize_t w = write(fd, c, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return false;
    c += w;
    n -= (size_t)w;
  }
  return true;
}

/* Read exactly n bytes within timeout_ms; false on EOF, error or timeout. */
static bool read_all(int fd, void *p, size_t n, int timeout_ms) {
  char *c = p;
  while (n) {
    struct pollfd pf = {fd, POLLIN, 0};
    int pr = poll(&pf, 1, timeout_ms);
    if (pr < 0 && errno == EINTR)
      continue;
    if (pr <= 0)
      return false;
    ssize_t r = read(fd, c, n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return false;
    c += r;
    n -= (size_t)r;
  }
  return true;
}

/*
 * A worker process: open its own handle, warm up, report ready, wait for
 * the go (the parent closes the go pipe: every worker's read sees EOF at
 * once), run, send the result.
 */
static void worker(const struct bench *b, enum op_kind kind, int id, int nprocs,
                   int ready_fd, int go_fd, int res_fd) {
  kvshm *kv;
  int rc = kvshm_open(b->name, NULL, KVSHM_NOCREATE | KVSHM_NOREAPER, &kv);
  char c = rc ? 'E' : 'R';
  if (rc)
    fprintf(stderr, "bench_shm: worker %d: open: %s (%s)\n", id,
            kvshm_strerror(rc), kvshm_errdetail());
  uint64_t start = b->p.stream_len / (uint64_t)nprocs * (uint64_t)id;
  if (!rc)
    run_ops(b, kv, kind, start, b->p.warmup_s);
  if (!write_all(ready_fd, &c, 1) || rc)
    _exit(1);
  char go;
  while (read(go_fd, &go, 1) < 0 && errno == EINTR)
    ;
  struct run_result r = run_ops(b, kv, kind, start, b->p.run_s);
  kvshm_close(kv);
  _exit(write_all(res_fd, &r, sizeof r) ? 0 : 1);
}

/* One run of `nprocs` workers at once; returns their aggregate ops/s. */
static double run_once(const struct bench *b, enum op_kind kind, int nprocs,
                       double *cpu, uint64_t *errors, int *first_error) {
  int ready[2], go[2], res[2];
  if (pipe(ready) || pipe(go) || pipe(res)) {
    perror("bench_shm: pipe");
    exit(1);
  }
  fflush(NULL);
  pid_t pids[2];
  for (int i = 0; i < nprocs; i++) {
    pids[i] = fork();
    if (pids[i] < 0) {
      perror("bench_shm: fork");
      exit(1);
    }
    if (pids[i] == 0) {
      close(ready[0]);
      close(go[1]);
      close(res[0]);
      worker(b, kind, i, nprocs, ready[1], go[0], res[1]);
    }
  }
  close(ready[1]);
  close(go[0]);
  close(res[1]);
  bool ok = true;
  for (int i = 0; i < nprocs && ok; i++) {
    char c;
    ok = read_all(ready[0], &c, 1, BARRIER_TIMEOUT_MS) && c == 'R';
  }
  close(go[1]); /* go */
  double rate = 0;
  *cpu = 1;
  int timeout = (int)(b->p.run_s * 1000) + BARRIER_TIMEOUT_MS;
  for (int i = 0; i < nprocs && ok; i++) {
    struct run_result r;
    ok = read_all(res[0], &r, sizeof r, timeout);
    if (ok) {
      rate += (double)r.ops * 1e9 / (double)r.ns;
      double share = (double)r.cpu_ns / (double)r.ns;
      if (share < *cpu)
        *cpu = share;
      if (r.errors && !*errors)
        *first_error = r.first_error;
      *errors += r.errors;
    }
  }
  if (!ok)
    for (int i = 0; i < nprocs; i++)
      kill(pids[i], SIGKILL); /* only our own workers */
  for (int i = 0; i < nprocs; i++) {
    int st;
    while (waitpid(pids[i], &st, 0) < 0 && errno == EINTR)
      ;
    ok = ok && WIFEXITED(st) && WEXITSTATUS(st) == 0;
  }
  close(ready[0]);
  close(res[0]);
  if (!ok) {
    fprintf(stderr, "bench_shm: a %s worker failed (see above)\n",
            op_names[kind]);
    exit(1);
  }
  return rate;
}

/*
 * The best of p.runs runs in which every worker had its CPU (LOW_CPU or
 * more).  While other programs keep taking the CPUs, up to twice as many
 * runs are made; if none was clean, the best of all counts (and the report
 * flags it).
 */
static void run_phase(const struct bench *b, enum op_kind kind,
                      struct phase *ph) {
  memset(ph, 0, sizeof *ph);
  for (int n = 1; n <= 2; n++) {
    int clean = 0;
    double best_any = 0, cpu_any = 0;
    for (int run = 0; run < 2 * b->p.runs && clean < b->p.runs; run++) {
      double cpu;
      double r =
          run_once(b, kind, n, &cpu, &ph->errors[n], &ph->first_error[n]);
      if (cpu >= LOW_CPU) {
        clean++;
        if (r > ph->rate[n]) {
          ph->rate[n] = r;
          ph->cpu[n] = cpu;
        }
      }
      if (r > best_any) {
        best_any = r;
        cpu_any = cpu;
      }
    }
    if (!clean) {
      ph->rate[n] = best_any;
      ph->cpu[n] = cpu_any;
    }
  }
}

/* ---- memory ----------------------------------------------------------- */

/*
 * Keep inserting new keys (from index `next`) with vlen-byte values until
 * the cache has evicted half as many entries as it holds: it has then been
 * full, and made room, for a third of all the sets.  Fills f from stats.
 */
static void fill_past_capacity(kvshm *kv, uint64_t next, uint32_t vlen,
                               struct fill *f) {
  unsigned char key[KEY_LEN];
  unsigned char *val = xmalloc(vlen ? vlen : 1);
  memset(val, 'v', vlen);
  kvshm_stats st;
  int rc = kvshm_stats_get(kv, &st);
  if (rc)
    die("stats", rc);
  uint64_t evict0 = st.evictions, sets = 0;
  f->error = 0;
  for (;;) {
    uint64_t batch = st.entries / 8 > 1024 ? st.entries / 8 : 1024;
    for (uint64_t i = 0; i < batch; i++, sets++) {
      key_make(next++, key);
      rc = kvshm_set(kv, key, KEY_LEN, val, vlen, 0, KVSHM_TTL_NEVER, 0);
      if (rc) {
        f->error = rc;
        break;
      }
    }
    if ((rc = kvshm_stats_get(kv, &st)))
      die("stats", rc);
    if (f->error || st.evictions - evict0 >= st.entries / 2 + 1)
      break;
  }
  free(val);
  f->slot_size = st.slot_size;
  f->memory_size = st.memory_size;
  f->stripes = st.stripes;
  f->entries = f->error ? 0 : st.entries;
  f->slots_used = st.slots_used;
  f->sets = sets;
}

/* A fresh segment of `memory` bytes and `slot` slots, filled past capacity. */
static char curve_name[64]; /* the curve's segment, "bn<pid>-curve" */

static void fill_fresh(uint64_t memory, uint32_t slot, uint32_t vlen,
                       struct fill *f) {
  const char *name = curve_name;
  kvshm_unlink(name); /* a leftover of a killed run with our pid */
  kvshm_config cfg;
  kvshm_config_init(&cfg);
  cfg.memory_size = memory;
  cfg.slot_size = slot;
  kvshm *kv;
  int rc = kvshm_open(name, &cfg, KVSHM_NOREAPER, &kv);
  if (rc)
    die("creating the curve's cache", rc);
  fill_past_capacity(kv, 0, vlen, f);
  kvshm_close(kv);
  kvshm_unlink(name);
}

static double per_entry(const struct fill *f) {
  return f->entries ? (double)f->memory_size / (double)f->entries : 0;
}

/* Does one entry of KEY_LEN + vlen bytes fit one slot of `slot` bytes? */
static bool fits_one_slot(uint32_t slot, uint32_t vlen) {
  kvshm_config cfg;
  kvshm_config_init(&cfg);
  cfg.slot_size = slot;
  cfg.stripes = 1;
  cfg.memory_size = (64u << 10) + 16ull * (slot + 8u);
  kvshm *kv;
  kvshm_unlink(curve_name);
  int rc = kvshm_open(curve_name, &cfg, KVSHM_NOREAPER, &kv);
  if (rc)
    die("creating a probe cache", rc);
  unsigned char key[KEY_LEN], *val = xmalloc(vlen ? vlen : 1);
  memset(val, 'v', vlen);
  key_make(0, key);
  kvshm_stats st;
  rc = kvshm_set(kv, key, KEY_LEN, val, vlen, 0, KVSHM_TTL_NEVER, 0);
  if (!rc)
    rc = kvshm_stats_get(kv, &st);
  free(val);
  kvshm_close(kv);
  kvshm_unlink(curve_name);
  return rc == KVSHM_OK && st.slots_used == 1;
}

/*
 * The smallest slot size (a multiple of 8) that holds a KEY_LEN + vlen
 * entry in one slot, found by asking the library (binary search), so the
 * benchmark needs no knowledge of the slot header; 0 if none does.
 */
static uint32_t exact_fit_slot(uint32_t vlen) {
  uint32_t lo = KVSHM_MIN_SLOT / 8, hi = KVSHM_MAX_SLOT / 8;
  if (!fits_one_slot(hi * 8, vlen))
    return 0;
  while (lo < hi) { /* invariant: hi * 8 fits */
    uint32_t mid = lo + (hi - lo) / 2;
    if (fits_one_slot(mid * 8, vlen))
      hi = mid;
    else
      lo = mid + 1;
  }
  return hi * 8;
}

static void curve_measure(const struct params *p, struct curve_point *cp,
                          uint32_t vlen) {
  memset(cp, 0, sizeof *cp);
  cp->value_len = vlen;
  fill_fresh(p->curve_memory, 0, vlen, &cp->dflt);
  uint32_t exact = exact_fit_slot(vlen);
  bool have_exact = false;
  for (size_t i = 0; i < NCAND; i++)
    have_exact |= slot_candidates[i] == exact;
  cp->ncand = 0;
  for (size_t i = 0; i <= NCAND; i++) {
    uint32_t slot = i < NCAND ? slot_candidates[i] : exact;
    if (i == NCAND && (have_exact || !exact))
      break;
    if (slot == KVSHM_DEFAULT_SLOT) {
      cp->cand[cp->ncand++] = cp->dflt;
      continue;
    }
    fill_fresh(p->curve_memory, slot, vlen, &cp->cand[cp->ncand++]);
  }
  cp->best = -1;
  for (int i = 0; i < cp->ncand; i++) {
    if (!cp->cand[i].entries)
      continue;
    if (cp->best < 0 ||
        per_entry(&cp->cand[i]) < per_entry(&cp->cand[cp->best]))
      cp->best = i;
  }
}

/* ---- memory latency (context) ----------------------------------------- */

static volatile uint64_t floor_sink; /* keeps the reads from being elided */

/*
 * Time dependent random reads in a bare shared mapping of `size` bytes laid
 * out like a cache (a 4-byte bucket array, then 160-byte slots), without
 * libshm: one_ns is one random slot read per op, two_ns a random bucket read
 * and then the slot it names, as a get does.  Each op waits for the last
 * one's read, so this is latency: the floor of a get that cannot overlap.
 * Best of `runs` runs of each.
 */
static void floor_measure(uint64_t size, double seconds, int runs,
                          double *one_ns, double *two_ns) {
  char name[64];
  snprintf(name, sizeof name, "/bn%ld-floor", (long)getpid());
  int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    perror("bench_shm: shm_open");
    exit(1);
  }
  shm_unlink(name);
  unsigned char *base = MAP_FAILED;
  if (ftruncate(fd, (off_t)size) == 0)
    base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (base == MAP_FAILED) {
    perror("bench_shm: mapping the latency test's memory");
    exit(1);
  }
  memset(base, 0, size); /* fault every page in, as a filled cache is */
  uint32_t slot = KVSHM_DEFAULT_SLOT;
  uint64_t nslots = size / (slot + 4);
  uint64_t nb = 1;
  while (nb * 2 <= nslots)
    nb *= 2;
  uint32_t *bk = (uint32_t *)base;
  const unsigned char *slots = base + nb * 4;
  nslots = (size - nb * 4) / slot;
  uint64_t rng = SEED ^ 0x666c6f6f72ull;
  for (uint64_t i = 0; i < nb; i++)
    bk[i] = (uint32_t)(splitmix(&rng) % nslots);
  enum { NRND = 1 << 20 };
  uint32_t *rnd = xmalloc(NRND * sizeof *rnd);
  for (int i = 0; i < NRND; i++)
    rnd[i] = (uint32_t)splitmix(&rng);
  *one_ns = *two_ns = 1e9;
  for (int run = 0; run < 2 * runs; run++) {
    int reads = 1 + run % 2;
    uint64_t n = 0, x = 0, t0 = now_ns(), t = t0;
    uint64_t deadline = t0 + (uint64_t)(seconds * 1e9);
    while (t < deadline) {
      for (int k = 0; k < 1024; k++, n++) {
        uint32_t i = rnd[n & (NRND - 1)] ^ (uint32_t)(x & 1);
        uint64_t r =
            reads == 2 ? bk[i & (nb - 1)] : ((uint64_t)i * nslots) >> 32;
        x += slots[r * slot];
      }
      t = now_ns();
    }
    floor_sink += x;
    double ns = (double)(t - t0) / (double)n,
           *best = reads == 1 ? one_ns : two_ns;
    if (ns < *best)
      *best = ns;
  }
  free(rnd);
  munmap(base, size);
}

/* ---- report ----------------------------------------------------------- */

struct report {
  char cpu[256];
  struct utsname uts;
  long nproc;
  double load[2]; /* 1-minute load average before, after */
  char command[1024];
  double insert_rate;
  struct phase ph[NKINDS];
  double floor_one_ns, floor_two_ns;
  struct fill mem; /* the throughput segment, filled */
  struct curve_point curve[NCURVE];
  uint64_t curve_memory; /* what the curve's segments got */
  uint32_t curve_stripes;
  double seconds; /* whole run */
};

static double loadavg(void) {
  double l = -1;
  FILE *f = fopen("/proc/loadavg", "r");
  if (f) {
    if (fscanf(f, "%lf", &l) != 1)
      l = -1;
    fclose(f);
  }
  return l;
}

static const char *verdict(bool pass) {
  return pass ? "PASS" : "MISS";
}

static double ratio(const struct phase *ph) {
  return ph->rate[1] > 0 ? ph->rate[2] / ph->rate[1] : 0;
}

static double mem_ratio(const struct fill *f, uint32_t vlen) {
  return per_entry(f) / (double)(KEY_LEN + vlen);
}

static bool low_cpu(const struct report *r) {
  for (int k = 0; k < NKINDS; k++)
    if (r->ph[k].cpu[1] < LOW_CPU || r->ph[k].cpu[2] < LOW_CPU)
      return true;
  return false;
}

static void print_text_header(const struct bench *b, const struct report *r) {
  printf("kvshm bench_shm (libshm %s)\n", KVSHM_VERSION_STRING);
  printf("machine: nproc %ld, cpu \"%s\", kernel %s %s %s, load %.2f\n",
         r->nproc, r->cpu, r->uts.sysname, r->uts.release, r->uts.machine,
         r->load[0]);
  printf("command: %s\n", r->command);
  printf("setup:   %" PRIu64
         " entries, %d B keys, %d B values, segment %" PRIu64
         " MiB, %u stripes, default slot size %u\n",
         b->p.entries, KEY_LEN, VALUE_LEN, b->p.memory >> 20, b->p.stripes,
         KVSHM_DEFAULT_SLOT);
  printf("         uniformly random order, pre-generated; %d runs x %.2f s "
         "per phase, best clean run;\n         2 processes = sum of both "
         "rates; cpu = least CPU share a worker got (clean: >= %.0f%%)\n",
         b->p.runs, b->p.run_s, LOW_CPU * 100);
  if (r->nproc < 2)
    printf("note:    only %ld CPU online: two processes share it\n", r->nproc);
  printf("\n");
  fflush(stdout);
}

static void print_text_throughput(const struct report *r) {
  printf("throughput (ops/s)           1 process  cpu   2 processes  cpu"
         "     2/1\n");
  printf("  insert (new keys)          %8.2fM\n", r->insert_rate / 1e6);
  for (int k = 0; k < NKINDS; k++) {
    const struct phase *ph = &r->ph[k];
    printf("  %-25s  %8.2fM %4.0f%%  %10.2fM %4.0f%%  %6.2fx\n", op_labels[k],
           ph->rate[1] / 1e6, ph->cpu[1] * 100, ph->rate[2] / 1e6,
           ph->cpu[2] * 100, ratio(ph));
    for (int n = 1; n <= 2; n++)
      if (ph->errors[n])
        printf("    !! %" PRIu64 " %s calls failed with %d processes, first: "
               "%s\n",
               ph->errors[n], op_names[k], n,
               kvshm_strerror(ph->first_error[n]));
  }
  const struct phase *g = &r->ph[OP_GET], *c = &r->ph[OP_CEILING];
  printf("  get / ceiling              %8.2fx       %10.2fx\n",
         c->rate[1] > 0 ? g->rate[1] / c->rate[1] : 0,
         c->rate[2] > 0 ? g->rate[2] / c->rate[2] : 0);
  if (low_cpu(r))
    printf("  !! a worker got less than %.0f%% of a CPU: other programs were "
           "running, the figures are low\n",
           LOW_CPU * 100);
  printf("\nmemory latency, bare mapping of the same size, no libshm "
         "(context for get)\n");
  printf("  1 random read              %8.1f ns  = %.2fM serial ops/s\n",
         r->floor_one_ns, 1e3 / r->floor_one_ns);
  printf("  bucket read, then its slot %8.1f ns  = %.2fM serial ops/s\n",
         r->floor_two_ns, 1e3 / r->floor_two_ns);
  printf("\n");
  fflush(stdout);
}

static void print_text_memory(const struct report *r) {
  const struct fill *m = &r->mem;
  printf("memory at the default slot size (segment %" PRIu64
         " MiB, %u stripes, slot_size %u,\n"
         "filled with %d B keys + %d B values until it had evicted half as "
         "many as it holds)\n",
         m->memory_size >> 20, m->stripes, m->slot_size, KEY_LEN, VALUE_LEN);
  printf("  entries when full          %10" PRIu64 "\n", m->entries);
  printf("  slots per entry            %10.2f\n",
         m->entries ? (double)m->slots_used / (double)m->entries : 0);
  printf("  bytes per entry            %10.1f   memory_size / entries\n",
         per_entry(m));
  printf("  / key+value bytes (%3d)    %10.2fx\n", KEY_LEN + VALUE_LEN,
         mem_ratio(m, VALUE_LEN));
  printf("\n");
  printf("bytes per entry by value size (%d B keys; segment %" PRIu64
         " MiB, %u stripes;\nbest of slot sizes",
         KEY_LEN, r->curve_memory >> 20, r->curve_stripes);
  for (size_t i = 0; i < NCAND; i++)
    printf(" %u", slot_candidates[i]);
  printf(" and the exact fit)\n");
  printf("   value |   slot %3u: entries  B/entry  x(k+v) |  best slot  "
         "entries  B/entry  x(k+v)\n",
         KVSHM_DEFAULT_SLOT);
  for (size_t i = 0; i < NCURVE; i++) {
    const struct curve_point *cp = &r->curve[i];
    printf("  %6u |          %8" PRIu64 " %8.1f %6.2fx |", cp->value_len,
           cp->dflt.entries, per_entry(&cp->dflt),
           mem_ratio(&cp->dflt, cp->value_len));
    if (cp->best >= 0) {
      const struct fill *bf = &cp->cand[cp->best];
      printf(" %10u %8" PRIu64 " %8.1f %6.2fx\n", bf->slot_size, bf->entries,
             per_entry(bf), mem_ratio(bf, cp->value_len));
    } else {
      printf("  (no slot size could hold it)\n");
    }
  }
  printf("\n");
}

/*
 * The targets, each as one row of the format bench/README.md defines (the
 * same rows feed the text and the JSON).  A figure that rests on a phase
 * with no clean run (cpu < LOW_CPU) carries a note.
 */
struct target {
  const char *id;
  const char *name;
  double figure, target;
  const char *unit; /* "x" or "ops/s" */
  bool at_most;     /* passes when figure <= target (else >=) */
  char note[96];    /* "" or why the figure is doubtful */
};
#define NTARGETS 6

static void target_note(const struct report *r, struct target *t,
                        enum op_kind k1, enum op_kind k2, bool two) {
  double cpu = 1;
  const enum op_kind ks[2] = {k1, k2};
  for (int i = 0; i < 2; i++)
    for (int n = 1; n <= (two ? 2 : 1); n++)
      if (r->ph[ks[i]].cpu[n] < cpu)
        cpu = r->ph[ks[i]].cpu[n];
  if (cpu < LOW_CPU)
    snprintf(t->note, sizeof t->note,
             "no clean run: a worker got %.0f%% of a CPU", cpu * 100);
}

static int targets_make(const struct report *r, struct target *t) {
  memset(t, 0, NTARGETS * sizeof *t);
  const struct phase *g = &r->ph[OP_GET], *c = &r->ph[OP_CEILING];
  t[0] = (struct target){"c_get_over_ceiling",
                         "C get / one-miss table, 1 process",
                         c->rate[1] > 0 ? g->rate[1] / c->rate[1] : 0,
                         TARGET_CEILING,
                         "x",
                         false,
                         ""};
  target_note(r, &t[0], OP_GET, OP_CEILING, false);
  static const enum op_kind scaled[3] = {OP_GET, OP_GET_HOT, OP_MIX};
  static const char *const scaled_names[3] = {"C get, 2 processes / 1",
                                              "C hot get, 2 processes / 1",
                                              "C mix 90/10, 2 processes / 1"};
  static const char *const scaled_ids[3] = {
      "c_get_two_over_one", "c_get_hot_two_over_one", "c_mix_two_over_one"};
  for (int i = 0; i < 3; i++) {
    t[1 + i] = (struct target){scaled_ids[i],
                               scaled_names[i],
                               ratio(&r->ph[scaled[i]]),
                               TARGET_SCALING,
                               "x",
                               false,
                               ""};
    target_note(r, &t[1 + i], scaled[i], scaled[i], true);
  }
  t[4] = (struct target){"c_set_ops",
                         "C set (overwrite), 1 process",
                         r->ph[OP_SET].rate[1],
                         TARGET_SET_OPS,
                         "ops/s",
                         false,
                         ""};
  target_note(r, &t[4], OP_SET, OP_SET, false);
  t[5] = (struct target){"c_bytes_per_entry_ratio",
                         "C bytes per entry / (key+value)",
                         mem_ratio(&r->mem, VALUE_LEN),
                         TARGET_BYTES_RATIO,
                         "x",
                         true,
                         ""};
  return NTARGETS;
}

static bool target_pass(const struct target *t) {
  return t->at_most ? t->figure <= t->target : t->figure >= t->target;
}

static void fmt_figure(char *out, size_t n, double v, const char *unit) {
  if (!strcmp(unit, "ops/s"))
    snprintf(out, n, "%.2fM ops/s", v / 1e6);
  else
    snprintf(out, n, "%.2f%s", v, unit);
}

static void print_text_targets(const struct report *r) {
  struct target t[NTARGETS];
  int nt = targets_make(r, t);
  printf("targets                                 figure         target\n");
  for (int i = 0; i < nt; i++) {
    char fig[32], tgt[32];
    fmt_figure(fig, sizeof fig, t[i].figure, t[i].unit);
    fmt_figure(tgt, sizeof tgt, t[i].target, t[i].unit);
    printf("  %-36s %12s  %s %-12s %s%s%s\n", t[i].name, fig,
           t[i].at_most ? "<=" : ">=", tgt, verdict(target_pass(&t[i])),
           *t[i].note ? "  !! " : "", t[i].note);
  }
  printf("\ntotal run time %.1f s, load average %.2f at the end\n", r->seconds,
         r->load[1]);
}

static void json_fill(FILE *o, const struct fill *f, uint32_t vlen) {
  fprintf(o,
          "{\"slot_size\": %u, \"memory_size\": %" PRIu64
          ", \"stripes\": %u, \"entries\": %" PRIu64
          ", \"slots_used\": %" PRIu64 ", \"sets\": %" PRIu64
          ", \"bytes_per_entry\": %.2f, \"ratio\": %.4f",
          f->slot_size, f->memory_size, f->stripes, f->entries, f->slots_used,
          f->sets, per_entry(f), mem_ratio(f, vlen));
  if (f->error) {
    fprintf(o, ", \"error\": ");
    json_str(o, kvshm_err_name(f->error));
  }
  fprintf(o, "}");
}

static void json_target(FILE *o, const struct target *t, bool last) {
  fprintf(o, "    {\"id\": \"%s\", \"name\": ", t->id);
  json_str(o, t->name);
  fprintf(o,
          ", \"figure\": %.6g, \"target\": %.6g, \"cmp\": \"%s\", "
          "\"unit\": \"%s\", \"pass\": %s",
          t->figure, t->target, t->at_most ? "<=" : ">=", t->unit,
          target_pass(t) ? "true" : "false");
  if (*t->note) {
    fprintf(o, ", \"note\": ");
    json_str(o, t->note);
  }
  fprintf(o, "}%s\n", last ? "" : ",");
}

static void print_json(FILE *o, const struct bench *b, const struct report *r) {
  fprintf(o, "{\n  \"program\": \"bench_shm\",\n  \"quick\": %s,\n",
          b->quick ? "true" : "false");
  fprintf(o, "  \"machine\": {\"nproc\": %ld, \"cpu\": ", r->nproc);
  json_str(o, r->cpu);
  fprintf(o, ", \"kernel\": ");
  char kernel[600];
  snprintf(kernel, sizeof kernel, "%s %s %s", r->uts.sysname, r->uts.release,
           r->uts.machine);
  json_str(o, kernel);
  fprintf(o, ", \"load_before\": %.2f, \"load_after\": %.2f},\n", r->load[0],
          r->load[1]);
  fprintf(o, "  \"command\": ");
  json_str(o, r->command);
  fprintf(o,
          ",\n  \"setup\": {\"entries\": %" PRIu64 ", \"key_len\": %d, "
          "\"value_len\": %d, \"memory_size\": %" PRIu64
          ", \"stripes\": %u, \"slot_size\": %u, \"runs\": %d, "
          "\"run_seconds\": %.3f, \"hot_keys\": %d},\n",
          b->p.entries, KEY_LEN, VALUE_LEN, b->p.memory, b->p.stripes,
          KVSHM_DEFAULT_SLOT, b->p.runs, b->p.run_s, HOT_KEYS);
  fprintf(o, "  \"insert_ops\": %.0f,\n  \"throughput\": {", r->insert_rate);
  for (int k = 0; k < NKINDS; k++) {
    const struct phase *ph = &r->ph[k];
    fprintf(o,
            "%s\n    \"%s\": {\"one\": %.0f, \"two\": %.0f, "
            "\"ratio\": %.4f, \"cpu_one\": %.3f, \"cpu_two\": %.3f, "
            "\"errors\": %" PRIu64 "}",
            k ? "," : "", op_names[k], ph->rate[1], ph->rate[2], ratio(ph),
            ph->cpu[1], ph->cpu[2], ph->errors[1] + ph->errors[2]);
  }
  fprintf(o,
          "\n  },\n  \"memory_latency_ns\": {\"one_read\": %.1f, "
          "\"bucket_then_slot\": %.1f},\n",
          r->floor_one_ns, r->floor_two_ns);
  fprintf(o, "  \"memory\": ");
  json_fill(o, &r->mem, VALUE_LEN);
  fprintf(o, ",\n  \"curve\": [");
  for (size_t i = 0; i < NCURVE; i++) {
    const struct curve_point *cp = &r->curve[i];
    fprintf(o, "%s\n    {\"value_len\": %u, \"default\": ", i ? "," : "",
            cp->value_len);
    json_fill(o, &cp->dflt, cp->value_len);
    fprintf(o, ", \"best_slot_size\": %u, \"candidates\": [",
            cp->best >= 0 ? cp->cand[cp->best].slot_size : 0);
    for (int c = 0; c < cp->ncand; c++) {
      fprintf(o, "%s\n      ", c ? "," : "");
      json_fill(o, &cp->cand[c], cp->value_len);
    }
    fprintf(o, "]}");
  }
  fprintf(o, "\n  ],\n  \"targets\": [\n");
  struct target t[NTARGETS];
  int nt = targets_make(r, t);
  for (int i = 0; i < nt; i++)
    json_target(o, &t[i], i + 1 == nt);
  fprintf(o, "  ],\n  \"low_cpu\": %s,\n  \"seconds\": %.2f\n}\n",
          low_cpu(r) ? "true" : "false", r->seconds);
}

/* ---- main ------------------------------------------------------------- */

static void usage(const char *argv0) {
  fprintf(stderr,
          "usage: %s [--quick] [--json]\n"
          "  --quick  a smaller, shorter run (smoke test)\n"
          "  --json   print the figures as one JSON object\n",
          argv0);
  exit(2);
}

/* Segments to unlink if we are interrupted; set only in the parent. */
static const char *volatile cleanup_names[2];

static void on_signal(int sig) {
  for (int i = 0; i < 2; i++)
    if (cleanup_names[i])
      kvshm_unlink(cleanup_names[i]);
  signal(sig, SIG_DFL);
  raise(sig);
}

int main(int argc, char **argv) {
  static const struct option longopts[] = {{"quick", no_argument, NULL, 'q'},
                                           {"json", no_argument, NULL, 'j'},
                                           {"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
  bool quick = false, json = false;
  int c;
  while ((c = getopt_long(argc, argv, "qjh", longopts, NULL)) != -1) {
    if (c == 'q')
      quick = true;
    else if (c == 'j')
      json = true;
    else
      usage(argv[0]);
  }
  if (optind < argc) {
    fprintf(stderr, "bench_shm: unexpected argument '%s'\n", argv[optind]);
    usage(argv[0]);
  }
  uint64_t t_start = now_ns();
  static struct report r; /* large: keep it off the stack */
  static struct bench b;
  cpu_model(r.cpu, sizeof r.cpu);
  uname(&r.uts);
  r.nproc = sysconf(_SC_NPROCESSORS_ONLN);
  r.load[0] = loadavg();
  size_t used = 0;
  for (int i = 0; i < argc && used + 2 < sizeof r.command; i++)
    used += (size_t)snprintf(r.command + used, sizeof r.command - used, "%s%s",
                             i ? " " : "", argv[i]);

  bench_build(&b, quick ? &quick_params : &full_params);
  snprintf(curve_name, sizeof curve_name, "bn%ld-curve", (long)getpid());
  cleanup_names[0] = b.name;
  cleanup_names[1] = curve_name;
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  /* --json: the JSON object alone on stdout, the text report on stderr. */
  FILE *json_out = NULL;
  if (json) {
    fflush(stdout);
    int fd = dup(STDOUT_FILENO);
    if (fd < 0 || !(json_out = fdopen(fd, "w")) ||
        dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
      perror("bench_shm: --json");
      return 1;
    }
  }
  b.quick = quick;
  print_text_header(&b, &r);

  kvshm_config cfg;
  kvshm_config_init(&cfg);
  cfg.memory_size = b.p.memory;
  cfg.stripes = b.p.stripes;
  kvshm_unlink(b.name); /* a leftover of a killed run with our pid */
  kvshm *kv;
  int rc = kvshm_open(b.name, &cfg, KVSHM_NOREAPER, &kv);
  if (rc)
    die("creating the cache", rc);
  r.insert_rate = bench_fill(&b, kv);
  kvshm_stats st;
  if ((rc = kvshm_stats_get(kv, &st)))
    die("stats", rc);
  if (st.entries != b.p.entries) {
    fprintf(stderr,
            "bench_shm: only %" PRIu64 " of %" PRIu64 " entries "
            "fit in %" PRIu64 " MiB: the get phase would not be all hits\n",
            st.entries, b.p.entries, b.p.memory >> 20);
    kvshm_unlink(b.name);
    return 1;
  }
  ceil_fill(&b);
  for (int k = 0; k < NKINDS; k++)
    run_phase(&b, (enum op_kind)k, &r.ph[k]);
  munmap(b.ceil.base, b.ceil.size);
  floor_measure(b.p.memory, b.p.floor_s, b.p.runs, &r.floor_one_ns,
                &r.floor_two_ns);
  print_text_throughput(&r);

  fill_past_capacity(kv, b.p.entries, VALUE_LEN, &r.mem);
  kvshm_close(kv);
  kvshm_unlink(b.name);
  if (r.mem.error)
    die("filling the cache past capacity", r.mem.error);

  for (size_t i = 0; i < NCURVE; i++)
    curve_measure(&b.p, &r.curve[i], curve_values[i]);
  r.curve_memory = r.curve[0].dflt.memory_size;
  r.curve_stripes = r.curve[0].dflt.stripes;
  r.seconds = (double)(now_ns() - t_start) / 1e9;
  r.load[1] = loadavg();

  print_text_memory(&r);
  print_text_targets(&r);
  if (json_out) {
    print_json(json_out, &b, &r);
    if (fclose(json_out)) {
      perror("bench_shm: writing the JSON");
      return 1;
    }
  }
  free(b.keys);
  free(b.stream);
  free(b.hot);
  free(b.mix_set);
  return 0;
}
