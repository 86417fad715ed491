/*
 * demo_shm.c - several processes sharing one kvshm cache.
 *
 * The parent creates the cache "demo-<pid>-<random>" (a name no earlier run
 * left behind) and forks four workers.  Each worker opens the cache by name
 * (a handle is not inherited across fork), writes 1000 keys of its own, and
 * waits at a pipe barrier until every worker has written.  Then it reads
 * every other worker's keys, checking each value byte for byte, and
 * increments one shared counter once per key read, so four processes
 * increment the same key at the same time.  The workers send what they saw
 * to the parent, which prints it, the cache's statistics, and the counter's
 * total next to the exact value it must have.
 *
 * Once every worker has opened the cache, the parent removes its name: the
 * memory stays until the last process unmaps it, so the demo goes on, and
 * from then on nothing (not even kill -9) can leave the segment behind.
 * Before that, Ctrl-C, SIGTERM or SIGHUP make the parent stop its workers
 * and remove the segment, then die of that signal.
 *
 * Exit status: 0 if every read returned the right value and the counter is
 * exact, 1 otherwise.
 */
#include "kvshm.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WORKERS 4
#define KEYS_PER_WORKER 1000
#define COUNTER_KEY "demo:counter"
#define BARRIER_TIMEOUT_MS 10000

/* What one worker saw; sent whole through a pipe to the parent. */
struct report {
  int32_t id;
  int32_t pid;
  int32_t open_error;        /* kvshm_open's status, 0 if it opened */
  uint32_t written;          /* own keys stored */
  uint32_t read_ok[WORKERS]; /* keys of worker w read back intact */
  uint32_t wrong;            /* found, but not the value written */
  uint32_t missing;          /* KVSHM_ENOTFOUND */
  uint32_t increments;       /* successful kvshm_incr calls */
  uint32_t errors;           /* any other failed call */
  int32_t first_error;       /* the first of those */
};

/* The signal that stops the demo (SIGINT, SIGTERM, SIGHUP), 0 if none. */
static volatile sig_atomic_t stop_sig;

static void on_stop(int sig) {
  if (!stop_sig)
    stop_sig = sig;
}

static void key_of(int worker, int i, char *buf, size_t size) {
  snprintf(buf, size, "w%d:key:%04d", worker, i);
}

static size_t value_of(int worker, int i, char *buf, size_t size) {
  return (size_t)snprintf(buf, size, "value %d written by worker %d", i,
                          worker);
}

static void note_error(struct report *r, int rc) {
  if (!r->errors++)
    r->first_error = rc;
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

/*
 * Read exactly n bytes within timeout_ms; false on EOF, error, timeout or a
 * stop signal.
 */
static bool read_all(int fd, void *p, size_t n, int timeout_ms) {
  char *c = p;
  while (n && !stop_sig) {
    struct pollfd pf = {fd, POLLIN, 0};
    int pr = poll(&pf, 1, timeout_ms);
    if (pr < 0 && errno == EINTR)
      continue;
    if (pr <= 0)
      return false;
    ssize_t got = read(fd, c, n);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      return false;
    c += got;
    n -= (size_t)got;
  }
  return n == 0;
}

/*
 * One worker.  written_fd: one byte once its keys are in (or it failed);
 * go_fd: reaches EOF when the parent closes it, i.e. when all have written;
 * report_fd: its struct report.
 */
static int worker(const char *name, int id, int written_fd, int go_fd,
                  int report_fd) {
  struct report r;
  memset(&r, 0, sizeof r);
  r.id = id;
  r.pid = (int32_t)getpid();
  kvshm *kv;
  /* This cache lives for a second, memory only and without TTLs: there is
   * nothing for a kvshm-reaper to do, so none is started. */
  r.open_error = kvshm_open(name, NULL, KVSHM_NOCREATE | KVSHM_NOREAPER, &kv);
  if (!r.open_error) {
    for (int i = 0; i < KEYS_PER_WORKER; i++) {
      char key[32], val[64];
      key_of(id, i, key, sizeof key);
      size_t vlen = value_of(id, i, val, sizeof val);
      int rc =
          kvshm_set(kv, key, strlen(key), val, vlen, 0, KVSHM_TTL_NEVER, 0);
      if (rc)
        note_error(&r, rc);
      else
        r.written++;
    }
  }
  bool ok = write_all(written_fd, "w", 1);
  close(written_fd);
  char c;
  while (ok && read(go_fd, &c, 1) < 0 && errno == EINTR)
    ;
  /* Read the others' keys, starting with the next worker's, so the four
   * processes do not all read the same worker's keys at once. */
  for (int k = 1; ok && !r.open_error && k < WORKERS; k++) {
    int w = (id + k) % WORKERS;
    for (int i = 0; i < KEYS_PER_WORKER; i++) {
      char key[32], want[64], got[64];
      key_of(w, i, key, sizeof key);
      size_t wlen = value_of(w, i, want, sizeof want), glen = 0;
      int rc = kvshm_get(kv, key, strlen(key), got, sizeof got, &glen, NULL);
      if (rc == KVSHM_ENOTFOUND)
        r.missing++;
      else if (rc)
        note_error(&r, rc);
      else if (glen != wlen || memcmp(got, want, wlen) != 0)
        r.wrong++;
      else
        r.read_ok[w]++;
      rc = kvshm_incr(kv, COUNTER_KEY, strlen(COUNTER_KEY), 1, 0, NULL);
      if (rc)
        note_error(&r, rc);
      else
        r.increments++;
    }
  }
  if (!r.open_error)
    kvshm_close(kv);
  return write_all(report_fd, &r, sizeof r) && ok ? 0 : 1;
}

static void print_report(const struct report *r) {
  if (r->open_error) {
    printf("worker %d (pid %d) could not open the cache: %s\n", r->id, r->pid,
           kvshm_strerror(r->open_error));
    return;
  }
  /* "worker 2 read 1000 keys written by workers 0,1,3" when all agree. */
  uint32_t n = r->read_ok[(r->id + 1) % WORKERS];
  bool same = true;
  for (int w = 0; w < WORKERS; w++)
    same &= w == r->id || r->read_ok[w] == n;
  printf("worker %d (pid %d) wrote %u keys; ", r->id, r->pid, r->written);
  if (same) {
    printf("read %u keys written by each of workers ", n);
    const char *sep = "";
    for (int w = 0; w < WORKERS; w++)
      if (w != r->id) {
        printf("%s%d", sep, w);
        sep = ",";
      }
  } else {
    const char *sep = "read ";
    for (int w = 0; w < WORKERS; w++)
      if (w != r->id) {
        printf("%s%u keys written by worker %d", sep, r->read_ok[w], w);
        sep = ", ";
      }
  }
  printf("; %u increments\n", r->increments);
  if (r->wrong || r->missing || r->errors)
    printf("  !! %u wrong values, %u missing keys, %u failed calls%s%s\n",
           r->wrong, r->missing, r->errors, r->errors ? ", first: " : "",
           r->errors ? kvshm_strerror(r->first_error) : "");
}

static bool report_good(const struct report *r) {
  if (r->open_error || r->wrong || r->missing || r->errors ||
      r->written != KEYS_PER_WORKER ||
      r->increments != (WORKERS - 1) * KEYS_PER_WORKER)
    return false;
  for (int w = 0; w < WORKERS; w++)
    if (w != r->id && r->read_ok[w] != KEYS_PER_WORKER)
      return false;
  return true;
}

static void print_stats(const kvshm_stats *st) {
  printf("cache stats\n");
  printf("  %-16s %12" PRIu64 " MiB\n", "memory_size", st->memory_size >> 20);
  printf("  %-16s %12u\n", "slot_size", st->slot_size);
  printf("  %-16s %12u\n", "stripes", st->stripes);
  printf("  %-16s %12" PRIu64 "\n", "entries", st->entries);
  printf("  %-16s %12" PRIu64 "\n", "key+value bytes", st->bytes);
  printf("  %-16s %12" PRIu64 "\n", "slots used", st->slots_used);
  printf("  %-16s %12" PRIu64 "\n", "slots free", st->slots_free);
  printf("  %-16s %12" PRIu64 "\n", "hits", st->hits);
  printf("  %-16s %12" PRIu64 "\n", "misses", st->misses);
  printf("  %-16s %12" PRIu64 "\n", "sets", st->sets);
  printf("  %-16s %12" PRIu64 "\n", "deletes", st->deletes);
  printf("  %-16s %12" PRIu64 "\n", "evictions", st->evictions);
}

static int fail(const char *what, int rc) {
  fprintf(stderr, "demo: %s: %s", what, kvshm_strerror(rc));
  if (*kvshm_errdetail())
    fprintf(stderr, " (%s)", kvshm_errdetail());
  fputc('\n', stderr);
  return 1;
}

/*
 * A name for this run's cache that no cache has: "demo-<pid>-<random>".  A
 * name made of the pid alone can be a dead run's (pids are reused, and a new
 * container starts them from 1 again), and opening that would attach to
 * what it left.  kvshm_open has no "create only", so check it is missing.
 */
static int pick_name(char *name, size_t size) {
  for (int tries = 0; tries < 16; tries++) {
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
      r = (uint32_t)clock() ^ (uint32_t)tries * 2654435761u;
    snprintf(name, size, "demo-%ld-%08" PRIx32, (long)getpid(), r);
    kvshm *kv;
    int rc = kvshm_open(name, NULL, KVSHM_RDONLY | KVSHM_NOREAPER, &kv);
    if (rc == -ENOENT)
      return 0;
    if (!rc)
      kvshm_close(kv);
  }
  return -EEXIST;
}

/* Remove the cache's name once; the status of the first removal. */
static int remove_name(const char *name, bool *removed) {
  if (*removed)
    return 0;
  *removed = true;
  return kvshm_unlink(name);
}

int main(void) {
  /* A stop signal (Ctrl-C, SIGTERM, SIGHUP) is only noted: the parent then
   * stops its workers, removes the cache and dies of it (see the top). */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop; /* no SA_RESTART: waits return EINTR */
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);

  char name[64];
  int rc = pick_name(name, sizeof name);
  if (rc)
    return fail("choosing a cache name", rc);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  kvshm *kv;
  rc = kvshm_open(name, NULL, KVSHM_NOREAPER, &kv);
  if (rc)
    return fail("creating the cache", rc);
  bool removed = false;
  kvshm_stats st;
  if ((rc = kvshm_stats_get(kv, &st))) {
    kvshm_close(kv);
    kvshm_unlink(name);
    return fail("stats", rc);
  }
  printf("demo: created cache \"%s\" (%" PRIu64 " MiB, %u-byte slots, %u "
         "stripes)\n",
         name, st.memory_size >> 20, st.slot_size, st.stripes);
  printf("demo: %d workers each write %d keys, then read the others' keys "
         "and increment \"%s\" once per key read\n",
         WORKERS, KEYS_PER_WORKER, COUNTER_KEY);
  fflush(stdout);

  int written[2], go[2], reports[2];
  if (pipe(written) || pipe(go) || pipe(reports)) {
    perror("demo: pipe");
    kvshm_close(kv);
    kvshm_unlink(name);
    return 1;
  }
  pid_t pids[WORKERS];
  int started = 0;
  for (; started < WORKERS && !stop_sig; started++) {
    pid_t pid = fork();
    if (pid < 0) {
      perror("demo: fork");
      break;
    }
    if (pid == 0) {
      signal(SIGINT, SIG_DFL); /* the parent stops its workers */
      signal(SIGTERM, SIG_DFL);
      signal(SIGHUP, SIG_DFL);
      close(written[0]);
      close(go[1]);
      close(reports[0]);
      _exit(worker(name, started, written[1], go[0], reports[1]));
    }
    pids[started] = pid;
  }
  close(written[1]);
  close(go[0]);
  close(reports[1]);

  /* Barrier: every worker has written its keys; then let them all read. */
  bool ok = started == WORKERS;
  for (int i = 0; i < started && ok; i++) {
    char c;
    ok = read_all(written[0], &c, 1, BARRIER_TIMEOUT_MS);
  }
  /* Every worker has opened the cache (or failed to): its name is no longer
   * needed, and without it nothing can be left behind. */
  int unlink_rc = ok ? remove_name(name, &removed) : 0;
  close(go[1]);
  struct report reps[WORKERS];
  bool have[WORKERS] = {false};
  for (int i = 0; i < started && ok; i++) {
    struct report r;
    ok = read_all(reports[0], &r, sizeof r, BARRIER_TIMEOUT_MS);
    if (ok && r.id >= 0 && r.id < WORKERS) {
      reps[r.id] = r;
      have[r.id] = true;
    }
  }
  if (!ok || stop_sig) {
    if (stop_sig)
      fprintf(stderr, "demo: %s: stopping the workers\n", strsignal(stop_sig));
    else
      fprintf(stderr, "demo: a worker did not report in time; stopping them\n");
    for (int i = 0; i < started; i++)
      kill(pids[i], SIGKILL); /* only our own workers */
  }
  for (int i = 0; i < started; i++) {
    int status;
    while (waitpid(pids[i], &status, 0) < 0 && errno == EINTR)
      ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "demo: worker %d (pid %ld) %s %d\n", i, (long)pids[i],
              WIFSIGNALED(status) ? "was killed by signal" : "exited with",
              WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
      ok = false;
    }
  }
  close(written[0]);
  close(reports[0]);
  if (stop_sig) {
    kvshm_close(kv);
    remove_name(name, &removed);
    fprintf(stderr, "demo: removed the cache \"%s\"\n", name);
    signal(stop_sig, SIG_DFL);
    raise(stop_sig);
    return 1;
  }

  for (int w = 0; w < WORKERS; w++) {
    if (!have[w]) {
      printf("worker %d sent no report\n", w);
      ok = false;
      continue;
    }
    print_report(&reps[w]);
    ok = ok && report_good(&reps[w]);
  }
  printf("\n");

  if ((rc = kvshm_stats_get(kv, &st)) == 0)
    print_stats(&st);
  else
    ok = fail("stats", rc) == 0;

  /* The counter: kept as decimal text, so get returns "12000". */
  int64_t expected = (int64_t)WORKERS * (WORKERS - 1) * KEYS_PER_WORKER;
  char text[32];
  size_t tlen = 0;
  rc = kvshm_get(kv, COUNTER_KEY, strlen(COUNTER_KEY), text, sizeof text - 1,
                 &tlen, NULL);
  if (rc) {
    ok = fail("reading the counter", rc) == 0;
  } else {
    text[tlen] = '\0';
    char *end;
    long long total = strtoll(text, &end, 10);
    bool exact = *end == '\0' && total == expected;
    printf("\nshared counter \"%s\": %lld (expected %" PRId64 ") %s\n",
           COUNTER_KEY, total, expected, exact ? "exact" : "WRONG");
    ok = ok && exact;
  }
  int problems = kvshm_verify(kv, NULL, NULL);
  printf("verify: %d problem%s\n", problems, problems == 1 ? "" : "s");
  ok = ok && problems == 0;

  kvshm_close(kv);
  rc = removed ? unlink_rc : remove_name(name, &removed);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
              (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
  printf("demo: removed the segment%s; %.0f ms; %s\n", rc ? " (FAILED)" : "",
         ms, ok && !rc ? "OK" : "FAILED");
  if (stop_sig) { /* came after the workers were done: die of it all the same */
    fflush(stdout);
    signal(stop_sig, SIG_DFL);
    raise(stop_sig);
  }
  return ok && !rc ? 0 : 1;
}
