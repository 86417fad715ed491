/*
 * bench_store.c - the SQLite tier, measured (not a test: it reports).
 *
 *   1. write-behind throughput: entries per second reaching SQLite, beside
 *      a bare batched upsert into the same table with SQLite alone (the
 *      floor kvshm adds its work to); target: >= 0.5x of it;
 *   2. sets into a full SQLite-backed cache (every set must evict, so
 *      something must be written back first), sustained, with the reaper
 *      running; target: >= 300K sets/s;
 *   3. get latency, median and p99: a hit in memory against a miss served
 *      from SQLite (and promoted);
 *   4. a Zipf(0.99) workload over 10x more keys than memory holds,
 *      cache-aside (get, on a miss set): kvshm's hit ratio in memory and
 *      ops/s, against an exact LRU of the same capacity on the same trace;
 *   5. a 10M-key load over a 64 MiB memory tier, then every key read back
 *      and checked: the times, the SQLite file's size, and the reaper's
 *      longest tick against its budget (from the reaper's log).
 *
 *   build/bench/bench_store [--quick] [--json] [--only wb|full|lat|zipf|load]
 *
 * --quick scales every row down (a smoke run of a few seconds; row 5 loads
 * 500K keys over 4 MiB).  --json prints one JSON object instead of text.
 */
#include "kvshm.h"

#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* libshm's key hash (table.c): the bare upsert keys rows as kvshm does. */
uint64_t kvshm__key_hash(const void *key, size_t klen);

static bool json;
static bool first_field = true;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* Text for people (unless --json). */
__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...) {
  if (json)
    return;
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  fflush(stdout);
}

/* One JSON number (with --json). */
static void field(const char *name, double v) {
  if (!json)
    return;
  printf("%s\n  \"%s\": %.6g", first_field ? "{" : ",", name, v);
  first_field = false;
}

static void verdict(const char *name, bool pass) {
  if (!json)
    return;
  printf("%s\n  \"%s\": \"%s\"", first_field ? "{" : ",", name,
         pass ? "PASS" : "MISS");
  first_field = false;
}

/* The targets, for the "targets" array of --json (bench/README.md: the
 * format bench/run.js reads from every benchmark). */
static struct target {
  const char *id, *name, *cmp, *unit;
  double figure, goal;
  bool pass;
  char note[96];
} targets[8];
static int ntargets;

static void target(const char *id, const char *name, double figure,
                   const char *cmp, double goal, const char *unit, bool pass,
                   const char *note) {
  if (ntargets == (int)(sizeof targets / sizeof targets[0]))
    return;
  struct target *t = &targets[ntargets++];
  *t = (struct target){id, name, cmp, unit, figure, goal, pass, ""};
  snprintf(t->note, sizeof t->note, "%s", note ? note : "");
}

static void targets_json(void) {
  if (!json)
    return;
  printf("%s\n  \"targets\": [", first_field ? "{" : ",");
  first_field = false;
  for (int i = 0; i < ntargets; i++) {
    const struct target *t = &targets[i];
    printf("%s\n    {\"id\": \"%s\", \"name\": \"%s\", \"figure\": %.6g, "
           "\"target\": %.6g, \"cmp\": \"%s\", \"unit\": \"%s\", "
           "\"pass\": %s, \"note\": \"%s\"}",
           i ? "," : "", t->id, t->name, t->figure, t->goal, t->cmp, t->unit,
           t->pass ? "true" : "false", t->note);
  }
  printf("\n  ]");
}

static void die(const char *what, int rc) {
  fprintf(stderr, "bench_store: %s: %s (%s)\n", what, kvshm_err_name(rc),
          kvshm_errdetail());
  exit(1);
}

static int key_of(char *b, uint64_t i) {
  return snprintf(b, 17, "k%015llu", (unsigned long long)i); /* 16 bytes */
}

static char value[100];

/* Cache names: bs<pid>-ROW, so that two runs never share a cache. */
static const char *cname(const char *row) {
  static char n[64];
  snprintf(n, sizeof n, "bs%d-%s", (int)getpid(), row);
  return n;
}

static void remove_db(const char *db) {
  char p[300];
  unlink(db);
  snprintf(p, sizeof p, "%s-wal", db);
  unlink(p);
  snprintf(p, sizeof p, "%s-shm", db);
  unlink(p);
}

static kvshm *open_cache(const char *name, const char *db, uint64_t mem,
                         unsigned flags) {
  kvshm_unlink(name);
  remove_db(db);
  kvshm_config c;
  kvshm_config_init(&c);
  c.memory_size = mem;
  c.sqlite_path = db;
  kvshm *kv;
  int rc = kvshm_open(name, &c, flags, &kv);
  if (rc)
    die("open", rc);
  return kv;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* ---- 1. write-behind, beside a bare batched upsert ---- */

static void sql_or_die(sqlite3 *db, const char *q) {
  char *err = NULL;
  if (sqlite3_exec(db, q, NULL, NULL, &err) != SQLITE_OK) {
    fprintf(stderr, "bench_store: SQLite: %s: %s\n", q, err ? err : "?");
    exit(1);
  }
}

struct bare_row {
  int64_t hpos;
  char key[16];
};

static int cmp_row(const void *a, const void *b) {
  const struct bare_row *x = a, *y = b;
  return x->hpos < y->hpos ? -1 : x->hpos > y->hpos;
}

enum order {
  KEY_ORDER,   /* the keys' order: random in the table's */
  TABLE_ORDER, /* sorted by the table's key: every insert appends (SQLite's
                  best case) */
  BATCH_ORDER  /* each batch sorted, as write-behind writes them */
};

/* n rows into a new file with kvshm's schema and tuning (store.c), keyed
 * by the same hash, batches of `batch` rows per transaction, one prepared
 * INSERT ... ON CONFLICT DO UPDATE, after `pre` rows of other keys (not
 * timed).  Rows per second. */
static double bare_upsert(const char *path, int pre, int n, int batch,
                          enum order order) {
  remove_db(path);
  sqlite3 *db;
  if (sqlite3_open(path, &db) != SQLITE_OK)
    die("sqlite3_open", -1);
  sql_or_die(db, "PRAGMA cell_size_check=ON; PRAGMA journal_mode=WAL; "
                 "PRAGMA synchronous=NORMAL");
  sql_or_die(db,
             "CREATE TABLE kvshm_entries(hpos INTEGER NOT NULL, key BLOB NOT "
             "NULL, value BLOB NOT NULL, flags INTEGER NOT NULL, expires_ms "
             "INTEGER NOT NULL, gen INTEGER NOT NULL, PRIMARY KEY(hpos, key)) "
             "WITHOUT ROWID; CREATE INDEX kvshm_entries_expiry ON "
             "kvshm_entries(expires_ms) WHERE expires_ms > 0;");
  sqlite3_stmt *q;
  if (sqlite3_prepare_v2(
          db,
          "INSERT INTO kvshm_entries(hpos, key, value, flags, expires_ms, "
          "gen) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(hpos, key) DO "
          "UPDATE SET value=excluded.value, flags=excluded.flags, "
          "expires_ms=excluded.expires_ms, gen=excluded.gen",
          -1, &q, NULL) != SQLITE_OK)
    die("prepare", -1);
  struct bare_row *rows = malloc(sizeof *rows * (size_t)(pre + n));
  char k[17];
  for (int i = 0; i < pre + n; i++) {
    key_of(k, (uint64_t)i);
    memcpy(rows[i].key, k, 16);
    rows[i].hpos = (int64_t)(kvshm__key_hash(k, 16) ^ (1ull << 63));
  }
  qsort(rows, (size_t)pre, sizeof *rows, cmp_row);
  if (order == TABLE_ORDER)
    qsort(rows + pre, (size_t)n, sizeof *rows, cmp_row);
  for (int i = 0; order == BATCH_ORDER && i < n; i += batch)
    qsort(rows + pre + i, (size_t)(n - i < batch ? n - i : batch), sizeof *rows,
          cmp_row);
  double t0 = 0;
  for (int i = 0; i < pre + n;) {
    if (i == pre)
      t0 = now_s();
    sql_or_die(db, "BEGIN IMMEDIATE");
    for (int j = 0; j < batch && i < pre + n && (i != pre || !j); j++, i++) {
      sqlite3_bind_int64(q, 1, rows[i].hpos);
      sqlite3_bind_blob(q, 2, rows[i].key, 16, SQLITE_STATIC);
      sqlite3_bind_blob(q, 3, value, sizeof value, SQLITE_STATIC);
      sqlite3_bind_int64(q, 4, 0);
      sqlite3_bind_int64(q, 5, 0);
      sqlite3_bind_int64(q, 6, 0);
      if (sqlite3_step(q) != SQLITE_DONE)
        die("upsert", -1);
      sqlite3_reset(q);
    }
    sql_or_die(db, "COMMIT");
  }
  double dt = now_s() - t0;
  sqlite3_finalize(q);
  sqlite3_close(db);
  free(rows);
  remove_db(path);
  return n / dt;
}

static void write_behind(const char *db, const char *bare_db, int n) {
  double shuffled = bare_upsert(bare_db, 0, n, 512, KEY_ORDER);
  double bare = bare_upsert(bare_db, 0, n, 512, TABLE_ORDER);
  kvshm *kv = open_cache(cname("wb"), db, 256u << 20, KVSHM_NOREAPER);
  char k[17];
  for (int i = 0; i < n; i++) {
    int rc = kvshm_set(kv, k, (size_t)key_of(k, (uint64_t)i), value,
                       sizeof value, 0, 0, 0);
    if (rc)
      die("set", rc);
  }
  double t0 = now_s();
  int rc = kvshm_flush(kv);
  double dt = now_s() - t0;
  if (rc)
    die("flush", rc);
  double wb = n / dt, ratio = wb / bare;
  say("bare upsert       %9d rows: %10.0f rows/s (SQLite alone: prepared "
      "INSERT ... ON CONFLICT, 512 rows per transaction, same schema, rows "
      "in the table's order; in the keys' order: %.0f rows/s)\n",
      n, bare, shuffled);
  say("write-behind      %9d entries: %10.0f entries/s reaching SQLite = "
      "%.2fx the bare upsert (target >= 0.5x) %s\n",
      n, wb, ratio, ratio >= 0.5 ? "PASS" : "MISS");
  field("bare_upsert_rows_per_s", bare);
  field("bare_upsert_unsorted_rows_per_s", shuffled);
  field("write_behind_entries_per_s", wb);
  field("write_behind_ratio", ratio);
  verdict("write_behind_target", ratio >= 0.5);
  target("sqlite_write_behind", "SQLite write-behind / bare batched upsert",
         ratio, ">=", 0.5, "x", ratio >= 0.5, NULL);
  kvshm_close(kv);
  kvshm_unlink(cname("wb"));
}

/* ---- 2. sets into a full cache ---- */

static void full_sets(const char *db, const char *bare_db, double seconds) {
  kvshm *kv = open_cache(cname("full"), db, 16u << 20, 0);
  kvshm_stats st;
  kvshm_stats_get(kv, &st);
  uint64_t cap = (uint64_t)st.slots_per_stripe * st.stripes;
  char k[17];
  uint64_t i = 0;
  /* Fill until the cache is full and evicting. */
  for (; i < cap * 2; i++) {
    int rc =
        kvshm_set(kv, k, (size_t)key_of(k, i), value, sizeof value, 0, 0, 0);
    if (rc)
      die("set", rc);
  }
  kvshm_stats s0, s1;
  kvshm_stats_get(kv, &s0);
  double t0 = now_s(), dt;
  uint64_t n = 0;
  do {
    for (int j = 0; j < 4096; j++, i++, n++) {
      int rc =
          kvshm_set(kv, k, (size_t)key_of(k, i), value, sizeof value, 0, 0, 0);
      if (rc)
        die("set", rc);
    }
  } while ((dt = now_s() - t0) < seconds);
  kvshm_stats_get(kv, &s1);
  double rate = (double)n / dt;
  kvshm_close(kv);
  kvshm_unlink(cname("full"));
  /* Every one of those sets became a row: what SQLite alone takes to
   * write as many new random keys into a table as big. */
  double floor =
      bare_upsert(bare_db, (int)(cap * 2), (int)n, 8192, BATCH_ORDER);
  say("full-cache sets   %9llu new keys into a full %llu-entry cache in "
      "%.1f s: %10.0f sets/s (target >= 300K) %s\n"
      "                  evictions %llu, spills %llu, dirty at the end %llu; "
      "SQLite alone writes as many new keys (sorted batches of 8192) at "
      "%.0f rows/s: %.2fx\n",
      (unsigned long long)n, (unsigned long long)cap, dt, rate,
      rate >= 300000 ? "PASS" : "MISS",
      (unsigned long long)(s1.evictions - s0.evictions),
      (unsigned long long)(s1.spills - s0.spills), (unsigned long long)s1.dirty,
      floor, rate / floor);
  field("full_sets_per_s", rate);
  field("full_sets_sqlite_floor_rows_per_s", floor);
  field("full_sets_spills", (double)(s1.spills - s0.spills));
  verdict("full_sets_target", rate >= 300000);
  target("sqlite_full_sets", "sets into a full SQLite-backed cache", rate,
         ">=", 300000, "sets/s", rate >= 300000, NULL);
}

/* ---- 3. latency ---- */

static void latency(const char *db, int n) {
  kvshm *kv = open_cache(cname("lat"), db, 8u << 20, KVSHM_NOREAPER);
  kvshm_stats st;
  kvshm_stats_get(kv, &st);
  uint64_t cap = (uint64_t)st.slots_per_stripe * st.stripes;
  uint64_t total = cap * 4;
  char k[17], buf[256];
  for (uint64_t i = 0; i < total; i++)
    kvshm_set(kv, k, (size_t)key_of(k, i), value, sizeof value, 0, 0, 0);
  kvshm_flush(kv);
  double *hit = malloc(sizeof(double) * (size_t)n);
  double *miss = malloc(sizeof(double) * (size_t)n);
  int nh = 0, nm = 0;
  for (uint64_t i = total - 1; nh < n && i > 0; i--) {
    int kl = key_of(k, i);
    if (kvshm_in_memory(kv, k, (size_t)kl))
      continue;
    size_t vl;
    double t0 = now_s();
    kvshm_get(kv, k, (size_t)kl, buf, sizeof buf, &vl, NULL);
    hit[nh++] = now_s() - t0;
  }
  for (uint64_t i = 0; nm < n && i < total; i++) {
    int kl = key_of(k, i);
    if (kvshm_in_memory(kv, k, (size_t)kl) == KVSHM_OK)
      continue;
    size_t vl;
    double t0 = now_s();
    int rc = kvshm_get(kv, k, (size_t)kl, buf, sizeof buf, &vl, NULL);
    miss[nm++] = now_s() - t0;
    if (rc)
      die("get from SQLite", rc);
  }
  qsort(hit, (size_t)nh, sizeof *hit, cmp_double);
  qsort(miss, (size_t)nm, sizeof *miss, cmp_double);
  say("get hit (memory)  median %8.2f us   p99 %8.2f us   (%d gets)\n",
      hit[nh / 2] * 1e6, hit[nh * 99 / 100] * 1e6, nh);
  say("get miss (SQLite) median %8.2f us   p99 %8.2f us   (%d gets, "
      "each promoted)\n",
      miss[nm / 2] * 1e6, miss[nm * 99 / 100] * 1e6, nm);
  say("                  a miss costs %.0fx a hit at the median\n",
      miss[nm / 2] / hit[nh / 2]);
  field("get_hit_median_us", hit[nh / 2] * 1e6);
  field("get_hit_p99_us", hit[nh * 99 / 100] * 1e6);
  field("get_miss_median_us", miss[nm / 2] * 1e6);
  field("get_miss_p99_us", miss[nm * 99 / 100] * 1e6);
  free(hit);
  free(miss);
  kvshm_close(kv);
  kvshm_unlink(cname("lat"));
}

/* ---- 4. Zipf against LRU ---- */

/* Exact LRU over key ids 0..n-1: a doubly linked list in arrays. */
static double lru_hit_ratio(const uint32_t *trace, size_t len, uint32_t n,
                            uint64_t cap) {
  uint32_t *prev = malloc(sizeof(uint32_t) * n);
  uint32_t *next = malloc(sizeof(uint32_t) * n);
  unsigned char *in = calloc(n, 1);
  const uint32_t NIL = UINT32_MAX;
  uint32_t head = NIL, tail = NIL;
  uint64_t size = 0, hits = 0;
  for (size_t i = 0; i < len; i++) {
    uint32_t k = trace[i];
    if (in[k]) {
      hits++;
      if (head == k)
        continue;
      next[prev[k]] = next[k]; /* unlink */
      if (next[k] != NIL)
        prev[next[k]] = prev[k];
      else
        tail = prev[k];
    } else {
      if (size == cap) { /* evict the tail */
        uint32_t v = tail;
        tail = prev[v];
        if (tail != NIL)
          next[tail] = NIL;
        else
          head = NIL;
        in[v] = 0;
        size--;
      }
      in[k] = 1;
      size++;
    }
    prev[k] = NIL; /* push front */
    next[k] = head;
    if (head != NIL)
      prev[head] = k;
    head = k;
    if (tail == NIL)
      tail = k;
  }
  free(prev);
  free(next);
  free(in);
  return (double)hits / (double)len;
}

static void zipf(const char *db, size_t ops) {
  kvshm *kv = open_cache(cname("zipf"), db, 16u << 20, 0);
  kvshm_stats st;
  kvshm_stats_get(kv, &st);
  uint64_t slots = (uint64_t)st.slots_per_stripe * st.stripes;
  uint32_t n = (uint32_t)(slots * 10);
  /* Zipf(0.99) CDF over n keys, sampled by binary search. */
  double *cdf = malloc(sizeof(double) * n), sum = 0;
  for (uint32_t i = 0; i < n; i++)
    cdf[i] = (sum += 1.0 / pow(i + 1, 0.99));
  uint32_t *trace = malloc(sizeof(uint32_t) * ops);
  for (size_t i = 0; i < ops; i++) {
    double u = (double)(next_rand() >> 11) / 9007199254740992.0 * sum;
    uint32_t lo = 0, hi = n - 1;
    while (lo < hi) {
      uint32_t mid = (lo + hi) / 2;
      if (cdf[mid] < u)
        lo = mid + 1;
      else
        hi = mid;
    }
    /* Scatter ranks over the key space so popularity is not key order. */
    trace[i] = (uint32_t)(((uint64_t)lo * 2654435761u) % n);
  }
  free(cdf);
  char k[17], buf[256];
  /* Warm-up: the first half of the trace; measure on the second half. */
  size_t half = ops / 2;
  for (size_t i = 0; i < half; i++) {
    int kl = key_of(k, trace[i]);
    size_t vl;
    if (kvshm_get(kv, k, (size_t)kl, buf, sizeof buf, &vl, NULL) ==
        KVSHM_ENOTFOUND)
      kvshm_set(kv, k, (size_t)kl, value, sizeof value, 0, 0, 0);
  }
  kvshm_stats s0, s1;
  kvshm_stats_get(kv, &s0);
  double t0 = now_s();
  for (size_t i = half; i < ops; i++) {
    int kl = key_of(k, trace[i]);
    size_t vl;
    if (kvshm_get(kv, k, (size_t)kl, buf, sizeof buf, &vl, NULL) ==
        KVSHM_ENOTFOUND)
      kvshm_set(kv, k, (size_t)kl, value, sizeof value, 0, 0, 0);
  }
  double dt = now_s() - t0;
  kvshm_stats_get(kv, &s1);
  uint64_t hits = s1.hits - s0.hits;
  uint64_t gets = hits + (s1.misses - s0.misses);
  double kv_ratio = (double)hits / (double)gets;
  /* LRU with the capacity kvshm actually held, same trace, same halves. */
  uint64_t cap = s1.entries;
  double lru_all = lru_hit_ratio(trace, ops, n, cap);
  double lru_warm = lru_hit_ratio(trace, half, n, cap);
  double lru_ratio =
      (lru_all * (double)ops - lru_warm * (double)half) / (double)(ops - half);
  say("zipf 0.99         %u keys (10x the %llu that fit), %zu gets "
      "measured after %zu warm-up\n",
      n, (unsigned long long)cap, ops - half, half);
  say("                  kvshm memory hit ratio %.4f at %.0f ops/s "
      "(misses served by SQLite: %llu)\n",
      kv_ratio, (double)(ops - half) / dt,
      (unsigned long long)(s1.store_hits - s0.store_hits));
  say("                  exact LRU, same capacity and trace: %.4f  ->  "
      "%s (target: kvshm >= LRU)\n",
      lru_ratio, kv_ratio >= lru_ratio ? "PASS" : "MISS");
  field("zipf_hit_ratio", kv_ratio);
  field("zipf_lru_hit_ratio", lru_ratio);
  field("zipf_ops_per_s", (double)(ops - half) / dt);
  verdict("zipf_target", kv_ratio >= lru_ratio);
  target("sqlite_zipf_vs_lru", "Zipf 0.99: memory hit ratio / exact LRU's",
         kv_ratio / lru_ratio, ">=", 1.0, "x", kv_ratio >= lru_ratio, NULL);
  free(trace);
  kvshm_close(kv);
  kvshm_unlink(cname("zipf"));
}

/* ---- 5. a large load, read back ---- */

/* The value of key i: its number, then filler (checked on the way back). */
static void value_of(char *v, uint64_t i) {
  memset(v, 'v', sizeof value);
  snprintf(v, 24, "%020llu", (unsigned long long)i);
}

static uint64_t file_size(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

/* The reaper's last "ticks:" line in its log (written as it exits):
 * longest tick and budget, in ms.  False if none came. */
static bool reaper_ticks(const char *db, unsigned long long *ticks,
                         unsigned long long *longest, unsigned long long *over,
                         unsigned *budget) {
  char path[300], line[1100];
  const char *env = getenv("KVSHM_REAPER_LOG"); /* the reaper's, if set */
  snprintf(path, sizeof path, "%s", env && *env ? env : db);
  if (!env || !*env)
    snprintf(path, sizeof path, "%s.reaper.log", db);
  bool found = false;
  for (int tries = 0; tries < 300 && !found; tries++) { /* up to 30 s */
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f)) {
      const char *p = strstr(line, "ticks: ");
      if (p && sscanf(p,
                      "ticks: %llu, longest %llu ms, %llu longer than the "
                      "%u ms",
                      ticks, longest, over, budget) == 4)
        found = true;
    }
    if (f)
      fclose(f);
    if (!found) {
      struct timespec ts = {0, 100000000L};
      nanosleep(&ts, NULL);
    }
  }
  return found;
}

static void big_load(const char *db, uint64_t n, uint64_t mem) {
  kvshm *kv = open_cache(cname("load"), db, mem, 0);
  char k[17], v[sizeof value], buf[256];
  double t0 = now_s();
  for (uint64_t i = 0; i < n; i++) {
    value_of(v, i);
    int rc = kvshm_set(kv, k, (size_t)key_of(k, i), v, sizeof v, 0, 0, 0);
    if (rc)
      die("set", rc);
  }
  double load = now_s() - t0;
  kvshm_stats s;
  kvshm_stats_get(kv, &s);
  uint64_t spills = s.spills;
  t0 = now_s();
  uint64_t bad = 0;
  for (uint64_t i = 0; i < n; i++) {
    size_t vl = 0;
    int rc = kvshm_get(kv, k, (size_t)key_of(k, i), buf, sizeof buf, &vl, NULL);
    value_of(v, i);
    if (rc == KVSHM_ENOTFOUND ||
        (!rc && (vl != sizeof v || memcmp(buf, v, sizeof v) != 0)))
      bad++;
    else if (rc)
      die("get", rc);
  }
  double read = now_s() - t0;
  int rc = kvshm_flush(kv);
  if (rc)
    die("flush", rc);
  char wal[300];
  snprintf(wal, sizeof wal, "%s-wal", db);
  uint64_t fbytes = file_size(db), wbytes = file_size(wal);
  kvshm_close(kv);
  kvshm_unlink(cname("load")); /* the reaper logs its ticks and exits */
  unsigned long long ticks = 0, longest = 0, over = 0;
  unsigned budget = 0;
  bool got = reaper_ticks(db, &ticks, &longest, &over, &budget);
  say("load %5.1fM keys   over a %llu MiB memory tier: set %.1f s (%.0f/s, "
      "%llu spills), read back %.1f s (%.0f/s), %llu missing or wrong\n",
      (double)n / 1e6, (unsigned long long)(mem >> 20), load, (double)n / load,
      (unsigned long long)spills, read, (double)n / read,
      (unsigned long long)bad);
  say("                  SQLite file %.1f MiB (+ WAL %.1f MiB) = %.0f bytes "
      "per key\n",
      (double)fbytes / 1048576.0, (double)wbytes / 1048576.0,
      (double)fbytes / (double)n);
  if (got)
    say("                  reaper: %llu ticks, longest %llu ms, bound %u ms "
        "(its work budget), %llu over %s\n",
        ticks, longest, budget, over, !over ? "PASS" : "MISS");
  else
    say("                  reaper: no tick report in %s.reaper.log\n", db);
  field("load_keys", (double)n);
  field("load_set_s", load);
  field("load_read_s", read);
  field("load_bad", (double)bad);
  field("load_sqlite_bytes", (double)fbytes);
  field("load_wal_bytes", (double)wbytes);
  field("load_reaper_ticks", (double)ticks);
  field("load_reaper_longest_tick_ms", (double)longest);
  field("load_reaper_tick_bound_ms", (double)budget);
  verdict("load_tick_target", got && !over);
  verdict("load_readback", bad == 0);
  char note[96];
  snprintf(note, sizeof note,
           "%.1fM keys over %llu MiB: set %.0f s, read %.0f s, %.0f MiB file",
           (double)n / 1e6, (unsigned long long)(mem >> 20), load, read,
           (double)fbytes / 1048576.0);
  target("sqlite_load_readback", "big load: keys missing or wrong on read-back",
         (double)bad, "<=", 0, "keys", bad == 0, note);
  target("sqlite_tick_bound", "reaper: longest tick during the load",
         (double)longest, "<=", budget, "ms", got && !over,
         got ? NULL : "no tick report in the reaper's log");
}

int main(int argc, char **argv) {
  bool quick = false;
  const char *only = ""; /* one row (wb full lat zipf load), for profiling */
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quick") == 0)
      quick = true;
    else if (strcmp(argv[i], "--json") == 0)
      json = true;
    else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
      only = argv[++i];
    else {
      fprintf(stderr, "usage: bench_store [--quick] [--json] [--only ROW]\n");
      return 2;
    }
  }
  memset(value, 'v', sizeof value);
  char dir[] = "/tmp/kvshm-bench-XXXXXX", db[64], db2[64];
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  char cpu[128] = "?";
  FILE *f = fopen("/proc/cpuinfo", "r");
  char line[256];
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, "model name", 10)) {
      snprintf(cpu, sizeof cpu, "%s", strchr(line, ':') + 2);
      cpu[strcspn(cpu, "\n")] = 0;
      break;
    }
  if (f)
    fclose(f);
  say("kvshm %s bench_store: %ld cores, %s; SQLite files in %s\n",
      KVSHM_VERSION_STRING, sysconf(_SC_NPROCESSORS_ONLN), cpu, dir);
  field("cores", (double)sysconf(_SC_NPROCESSORS_ONLN));
  field("quick", quick);
  snprintf(db, sizeof db, "%s/wb.db", dir);
  snprintf(db2, sizeof db2, "%s/bare.db", dir);
  if (!*only || !strcmp(only, "wb"))
    write_behind(db, db2, quick ? 20000 : 200000);
  snprintf(db, sizeof db, "%s/full.db", dir);
  if (!*only || !strcmp(only, "full"))
    full_sets(db, db2, quick ? 1.0 : 5.0);
  snprintf(db, sizeof db, "%s/lat.db", dir);
  if (!*only || !strcmp(only, "lat"))
    latency(db, quick ? 2000 : 20000);
  snprintf(db, sizeof db, "%s/zipf.db", dir);
  if (!*only || !strcmp(only, "zipf"))
    zipf(db, quick ? 400000 : 4000000);
  snprintf(db, sizeof db, "%s/load.db", dir);
  if (!*only || !strcmp(only, "load"))
    big_load(db, quick ? 500000 : 10000000, quick ? 4u << 20 : 64u << 20);
  targets_json();
  if (json)
    printf("\n}\n");
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) == 0 ? 0 : 1;
}
