/*
 * bench_store.c - the SQLite tier, measured (not a test: it reports).
 *
 *   1. write-behind throughput: entries per second reaching SQLite;
 *   2. get latency, median and p99: a hit in memory against a miss served
 *      from SQLite (and promoted);
 *   3. a Zipf(0.99) workload over 10x more keys than memory holds,
 *      cache-aside (get, on a miss set): kvshm's hit ratio in memory and
 *      ops/s, against an exact LRU of the same capacity on the same trace.
 *
 *   build/bench/bench_store [--quick]
 */
#include "kvshm.h"

#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

static void die(const char *what, int rc) {
  fprintf(stderr, "bench_store: %s: %s (%s)\n", what, kvshm_err_name(rc),
          kvshm_errdetail());
  exit(1);
}

static int key_of(char *b, uint64_t i) {
  return snprintf(b, 17, "k%015llu", (unsigned long long)i); /* 16 bytes */
}

static char value[100];

static kvshm *open_cache(const char *name, const char *db, uint64_t mem,
                         unsigned flags) {
  kvshm_unlink(name);
  unlink(db);
  char wal[300];
  snprintf(wal, sizeof wal, "%s-wal", db);
  unlink(wal);
  snprintf(wal, sizeof wal, "%s-shm", db);
  unlink(wal);
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

static void write_behind(const char *db, int n) {
  kvshm *kv = open_cache("bench-store-wb", db, 256u << 20, KVSHM_NOREAPER);
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
  printf("write-behind      %9d entries in %.2f s = %10.0f entries/s "
         "reaching SQLite (batched transactions, WAL, synchronous=NORMAL)\n",
         n, dt, n / dt);
  kvshm_close(kv);
  kvshm_unlink("bench-store-wb");
}

static void latency(const char *db, int n) {
  kvshm *kv = open_cache("bench-store-lat", db, 8u << 20, KVSHM_NOREAPER);
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
  printf("get hit (memory)  median %8.2f us   p99 %8.2f us   (%d gets)\n",
         hit[nh / 2] * 1e6, hit[nh * 99 / 100] * 1e6, nh);
  printf("get miss (SQLite) median %8.2f us   p99 %8.2f us   (%d gets, "
         "each promoted)\n",
         miss[nm / 2] * 1e6, miss[nm * 99 / 100] * 1e6, nm);
  printf("                  a miss costs %.0fx a hit at the median\n",
         miss[nm / 2] / hit[nh / 2]);
  free(hit);
  free(miss);
  kvshm_close(kv);
  kvshm_unlink("bench-store-lat");
}

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
  kvshm *kv = open_cache("bench-store-zipf", db, 16u << 20, 0);
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
  printf("zipf 0.99         %u keys (10x the %llu that fit), %zu gets "
         "measured after %zu warm-up\n",
         n, (unsigned long long)cap, ops - half, half);
  printf("                  kvshm memory hit ratio %.4f at %.0f ops/s "
         "(misses served by SQLite: %llu)\n",
         kv_ratio, (double)(ops - half) / dt,
         (unsigned long long)(s1.store_hits - s0.store_hits));
  printf("                  exact LRU, same capacity and trace: %.4f  ->  "
         "%s (target: kvshm >= LRU)\n",
         lru_ratio, kv_ratio >= lru_ratio ? "PASS" : "MISS");
  free(trace);
  kvshm_close(kv);
  kvshm_unlink("bench-store-zipf");
}

int main(int argc, char **argv) {
  bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
  memset(value, 'v', sizeof value);
  char dir[] = "/tmp/kvshm-bench-XXXXXX", db[64];
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
  printf("kvshm %s bench_store: %ld cores, %s; SQLite files in %s\n",
         KVSHM_VERSION_STRING, sysconf(_SC_NPROCESSORS_ONLN), cpu, dir);
  snprintf(db, sizeof db, "%s/wb.db", dir);
  write_behind(db, quick ? 20000 : 200000);
  snprintf(db, sizeof db, "%s/lat.db", dir);
  latency(db, quick ? 2000 : 20000);
  snprintf(db, sizeof db, "%s/zipf.db", dir);
  zipf(db, quick ? 400000 : 4000000);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) == 0 ? 0 : 1;
}
