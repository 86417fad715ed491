/*
 * writer.c - a helper for tests/cli/test_cli.sh: drives a cache through the
 * library so the CLI can be checked against it.
 *
 *   cli-writer NAME churn MS    random sets (1..600-byte values), deletes,
 *                               incrs and gets for MS ms
 *   cli-writer NAME churn-ttl MS  the same, with a 50 ms TTL on 1 set in 6
 *   cli-writer NAME get KEY N   N gets of KEY (read-write handle, so they
 *                               count as hits or misses); prints the hits
 *   cli-writer NAME reaper -    open it letting the library start its
 *                               reaper; print the reaper's executable
 */
#include "kvshm.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int die(const char *what, int rc) {
  fprintf(stderr, "cli-writer: %s: %s (%s)\n", what, kvshm_strerror(rc),
          kvshm_errdetail());
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: cli-writer NAME churn|churn-ttl MS | "
                    "NAME get KEY N\n");
    return 2;
  }
  kvshm *kv;
  bool reaper = strcmp(argv[2], "reaper") == 0;
  int rc = kvshm_open(argv[1], NULL,
                      KVSHM_NOCREATE | (reaper ? 0 : KVSHM_NOREAPER), &kv);
  if (rc)
    return die("open", rc);
  if (strcmp(argv[2], "get") == 0 && argc == 5) {
    long n = atol(argv[4]), hits = 0;
    for (long i = 0; i < n; i++) {
      rc = kvshm_get(kv, argv[3], strlen(argv[3]), NULL, 0, NULL, NULL);
      if (rc == KVSHM_OK || rc == KVSHM_EBUFSIZE)
        hits++;
      else if (rc != KVSHM_ENOTFOUND)
        return die("get", rc);
    }
    printf("%ld\n", hits);
  } else if (strncmp(argv[2], "churn", 5) == 0) {
    bool ttl = strcmp(argv[2], "churn-ttl") == 0;
    uint64_t end = now_ms() + (uint64_t)atol(argv[3]);
    unsigned seed = 12345u ^ (unsigned)now_ms();
    char key[32], val[600];
    memset(val, 'v', sizeof val);
    while (now_ms() < end) {
      for (int i = 0; i < 200; i++) {
        int k = rand_r(&seed) % 2000, op = rand_r(&seed) % 10;
        int klen = snprintf(key, sizeof key, "churn:%d", k);
        if (op < 6) {
          size_t vlen = 1 + (size_t)(rand_r(&seed) % (int)sizeof val);
          rc = kvshm_set(kv, key, (size_t)klen, val, vlen, (uint32_t)op,
                         ttl && op == 5 ? 50 : KVSHM_TTL_NEVER, 0);
        } else if (op < 8) {
          rc = kvshm_del(kv, key, (size_t)klen);
        } else if (op < 9) {
          key[0] = 'C'; /* counters live apart from the values */
          rc = kvshm_incr(kv, key, (size_t)klen, 1, 0, NULL);
        } else {
          rc = kvshm_get(kv, key, (size_t)klen, NULL, 0, NULL, NULL);
          if (rc == KVSHM_EBUFSIZE)
            rc = KVSHM_OK;
        }
        if (rc && rc != KVSHM_ENOTFOUND)
          return die("churn", rc);
      }
    }
  } else if (reaper) {
    kvshm_stats st = {0};
    for (int i = 0; i < 250 && !st.reaper_alive; i++) {
      if ((rc = kvshm_stats_get(kv, &st)))
        return die("stats", rc);
      if (!st.reaper_alive)
        usleep(20000);
    }
    char exe[64], path[4096];
    snprintf(exe, sizeof exe, "/proc/%u/exe", (unsigned)st.reaper_pid);
    ssize_t n = st.reaper_alive ? readlink(exe, path, sizeof path - 1) : -1;
    if (n < 0)
      return die("no reaper within 5 s", KVSHM_EREAPER);
    printf("%.*s\n", (int)n, path);
  } else {
    fprintf(stderr, "cli-writer: unknown mode '%s'\n", argv[2]);
    return 2;
  }
  kvshm_close(kv);
  return 0;
}
