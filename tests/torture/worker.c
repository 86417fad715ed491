/*
 * worker.c - one incarnation of a torture writer, in C (worker.js is the
 * same in Node).  It runs until the driver kills it: a random mix of sets,
 * NX and XX sets, deletes of its own keys, overwrites of its stable keys,
 * incrs of the round's shared counters, NX claims of shared claim keys,
 * gets of any key, and walks.  Every operation is journaled (torture.h);
 * every value read is checked (torn, foreign), and so is every walk (a key
 * that exists throughout it must come back exactly once).  What it cannot
 * judge alone (lost writes, resurrected keys, counter totals) the driver
 * judges from the journals.
 *
 *   torture worker NAME WRITER INC ROUND NWRITERS NOWN NSTABLE NCTR JOURNAL
 *                  SEED WALK_MS
 */
#include "kvshm.h"
#include "torture.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct worker {
  kvshm *kv;
  struct jw j;
  uint32_t w, inc, round, nw, nown, nstable, nctr;
  uint32_t n; /* operations started in this incarnation */
  uint64_t rng;
  uint8_t *buf;      /* values written */
  uint8_t *rbuf;     /* values read */
  int64_t *ctr_seen; /* highest value of each counter this process saw */
  unsigned char *stable_seen; /* per walk: stable keys of every writer */
  unsigned char *own_seen;    /* per walk: own keys */
  int fails_printed;
  char pace_path[4096]; /* the driver's pace file: microseconds between ops */
  unsigned pace_us;
  uint64_t pace_read_us;
};

#define MAX_PRINTED 20

__attribute__((format(printf, 2, 3))) static void say(struct worker *wk,
                                                      const char *fmt, ...) {
  if (wk->fails_printed++ >= MAX_PRINTED)
    return;
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  fprintf(stderr, "torture: C writer %u inc %u: %s\n", wk->w, wk->inc, line);
}

static void fail(struct worker *wk, int what, int op, uint32_t idx,
                 uint32_t idx2, uint64_t seq) {
  struct trec r = {R_FAIL, (uint8_t)op, (uint8_t)what, 0,         idx,
                   idx2,   0,           seq,           t_now_us()};
  jw_push(&wk->j, &r);
}

/* Start a journaled operation: its INFLIGHT record goes out now (with the
 * previous operation's ACK and any failures queued since). */
static struct trec begin(struct worker *wk, int op, int kind, uint32_t idx,
                         uint32_t idx2, uint64_t seq) {
  struct trec r = {R_INFLIGHT, (uint8_t)op, (uint8_t)kind, 0,         idx,
                   idx2,       0,           seq,           t_now_us()};
  jw_push(&wk->j, &r);
  jw_flush(&wk->j);
  return r;
}

/* The operation returned: queue its ACK (written with the next INFLIGHT). */
static void ack(struct worker *wk, struct trec r, int rc, uint64_t seq) {
  r.type = R_ACK;
  r.rc = rc;
  r.seq = seq;
  r.t_us = t_now_us();
  jw_push(&wk->j, &r);
}

static void unexpected(struct worker *wk, const char *what, const char *key,
                       int rc, int op, uint32_t idx) {
  say(wk, "%s %s returned %d (%s): %s", what, key, rc, kvshm_err_name(rc),
      kvshm_errdetail());
  fail(wk, F_ERROR, op, idx, 0, (uint64_t)(int64_t)rc);
}

static uint64_t next_seq(struct worker *wk) {
  return ((uint64_t)wk->inc << 32) | ++wk->n;
}

static uint32_t pick_own(struct worker *wk) {
  uint64_t r = t_rand(&wk->rng);
  uint32_t hot = wk->nown / 8 ? wk->nown / 8 : 1;
  return (uint32_t)((r & 1) ? (r >> 1) % hot : (r >> 1) % wk->nown);
}

/* A set of one of our keys: plain, NX or XX. */
static void do_set(struct worker *wk, int op, int kind, uint32_t j) {
  char key[TV_KEY_MAX];
  int klen = snprintf(key, sizeof key, "%c.%u.%u", kind == K_OWN ? 'k' : 's',
                      wk->w, j);
  uint64_t seq = next_seq(wk);
  size_t len = tv_make(wk->buf, tv_payload_size(&wk->rng), key, (size_t)klen,
                       wk->w, seq, &wk->rng);
  unsigned opts = op == OP_SETNX ? KVSHM_NX : op == OP_SETXX ? KVSHM_XX : 0;
  struct trec r = begin(wk, op, kind, j, 0, seq);
  int rc = kvshm_set(wk->kv, key, (size_t)klen, wk->buf, len, TV_FLAGS,
                     KVSHM_TTL_NEVER, opts);
  ack(wk, r, rc, seq);
  if (rc && !(rc == KVSHM_EEXIST && op == OP_SETNX) &&
      !(rc == KVSHM_ENOTFOUND && op == OP_SETXX))
    unexpected(wk, "set", key, rc, op, j);
}

static void do_del(struct worker *wk, uint32_t j) {
  char key[TV_KEY_MAX];
  int klen = snprintf(key, sizeof key, "k.%u.%u", wk->w, j);
  struct trec r = begin(wk, OP_DEL, K_OWN, j, 0, 0);
  int rc = kvshm_del(wk->kv, key, (size_t)klen);
  ack(wk, r, rc, 0);
  if (rc && rc != KVSHM_ENOTFOUND)
    unexpected(wk, "del", key, rc, OP_DEL, j);
}

static uint32_t pick_counter(struct worker *wk) {
  uint64_t r = t_rand(&wk->rng);
  if (r % 10 < 8) /* the hot pair of the moment: everyone at once */
    return (uint32_t)(((t_now_us() / 300000u) * 5u + ((r >> 8) & 1)) %
                      wk->nctr);
  return (uint32_t)((r >> 8) % wk->nctr);
}

static void do_incr(struct worker *wk) {
  uint32_t i = pick_counter(wk);
  char key[TV_KEY_MAX];
  int klen = snprintf(key, sizeof key, "c.%u.%u", wk->round, i);
  struct trec r = begin(wk, OP_INCR, K_CTR, i, 0, 0);
  int64_t v = 0;
  int rc = kvshm_incr(wk->kv, key, (size_t)klen, 1, TV_CTR_FLAGS, &v);
  ack(wk, r, rc, rc ? 0 : (uint64_t)v);
  if (rc) {
    unexpected(wk, "incr", key, rc, OP_INCR, i);
    return;
  }
  if (v <= wk->ctr_seen[i]) {
    say(wk,
        "incr %s returned %" PRId64 ", but this process saw %" PRId64 " before",
        key, v, wk->ctr_seen[i]);
    fail(wk, F_CTR_REGRESS, OP_INCR, i, 0, (uint64_t)v);
  }
  wk->ctr_seen[i] = v; /* after a fall, count the next fall only */
}

static void do_claim(struct worker *wk) {
  uint64_t r = t_rand(&wk->rng);
  uint32_t epoch = (uint32_t)(t_now_us() / 200000u);
  if (r % 10 >= 8) /* an old one: it lives in SQLite by now */
    epoch -= 1 + (uint32_t)((r >> 8) % 100);
  uint32_t x = (uint32_t)((r >> 16) % 4);
  char key[TV_KEY_MAX];
  int klen = snprintf(key, sizeof key, "n.%u.%u.%u", wk->round, epoch, x);
  uint64_t seq = next_seq(wk);
  size_t len = tv_make(wk->buf, TV_PAYLOAD_MIN + (r >> 24) % 100, key,
                       (size_t)klen, wk->w, seq, &wk->rng);
  struct trec t = begin(wk, OP_CLAIM, K_CLAIM, x, epoch, seq);
  int rc = kvshm_set(wk->kv, key, (size_t)klen, wk->buf, len, TV_FLAGS,
                     KVSHM_TTL_NEVER, KVSHM_NX);
  ack(wk, t, rc, seq);
  if (rc && rc != KVSHM_EEXIST)
    unexpected(wk, "claim", key, rc, OP_CLAIM, x);
}

/* Get a key and check what comes back.  kind K_OWN/K_STABLE of writer w
 * (journaled as an observation when w is us), K_CTR, or K_CLAIM. */
static void do_get(struct worker *wk, int kind, uint32_t w, uint32_t j,
                   uint32_t epoch) {
  char key[TV_KEY_MAX];
  int klen;
  if (kind == K_CTR)
    klen = snprintf(key, sizeof key, "c.%u.%u", wk->round, j);
  else if (kind == K_CLAIM)
    klen = snprintf(key, sizeof key, "n.%u.%u.%u", wk->round, epoch, j);
  else
    klen =
        snprintf(key, sizeof key, "%c.%u.%u", kind == K_OWN ? 'k' : 's', w, j);
  bool mine = (kind == K_OWN || kind == K_STABLE) && w == wk->w;
  struct trec r = begin(wk, OP_GET, mine ? kind : K_OTHER, j, w, 0);
  size_t vlen = 0;
  uint32_t flags = 0;
  int rc =
      kvshm_get(wk->kv, key, (size_t)klen, wk->rbuf, TV_BUF_MAX, &vlen, &flags);
  uint64_t seq = 0;
  int bad = 0;
  const char *why = "";
  if (rc == KVSHM_OK && kind == K_CTR) {
    int64_t v = 0;
    bad = tv_check_counter(wk->rbuf, vlen, flags, &v);
    why = "not a counter";
    if (!bad && v < wk->ctr_seen[j]) {
      say(wk, "get %s = %" PRId64 ", but this process saw %" PRId64 " before",
          key, v, wk->ctr_seen[j]);
      fail(wk, F_CTR_REGRESS, OP_GET, j, 0, (uint64_t)v);
    }
    if (!bad)
      wk->ctr_seen[j] = v;
  } else if (rc == KVSHM_OK) {
    uint32_t vw;
    bad = tv_check(wk->rbuf, vlen, flags, key, (size_t)klen,
                   kind == K_CLAIM ? -1 : (int64_t)w, wk->nw, &vw, &seq, &why);
  } else if (rc == KVSHM_EBUFSIZE) {
    bad = F_TORN;
    why = "value larger than any written";
  } else if (rc != KVSHM_ENOTFOUND) {
    ack(wk, r, rc, 0);
    unexpected(wk, "get", key, rc, OP_GET, j);
    return;
  }
  if (bad) {
    say(wk, "get %s: %s (%zu bytes, flags %#x)", key, why, vlen, flags);
    ack(wk, r, RC_INVALID, 0);
    fail(wk, bad, OP_GET, j, w, seq);
    return;
  }
  ack(wk, r, rc, seq);
}

/*
 * Walk every entry (both tiers).  Every value is checked; every stable key
 * (they exist throughout) must come back exactly once, and so must each of
 * our own keys that exists (nothing changes them while we walk); our own
 * keys' sightings are journaled for the driver to judge.  Other keys may
 * legitimately be deleted and re-created during the walk, so a second
 * sighting of one is not a failure.
 */
static void do_walk(struct worker *wk) {
  struct trec r = begin(wk, OP_WALK, 0, 0, 0, 0);
  size_t nstable_all = (size_t)wk->nw * wk->nstable;
  memset(wk->stable_seen, 0, nstable_all);
  memset(wk->own_seen, 0, wk->nown);
  kvshm_iter *it;
  int rc = kvshm_iter_open(wk->kv, NULL, 0, KVSHM_ITER_STORE, &it);
  if (rc) {
    ack(wk, r, rc, 0);
    unexpected(wk, "iter_open", "", rc, OP_WALK, 0);
    return;
  }
  uint64_t entries = 0;
  const void *k, *v;
  size_t klen, vlen;
  uint32_t flags;
  while ((rc = kvshm_iter_next(it, &k, &klen, &v, &vlen, &flags, NULL)) ==
         KVSHM_OK) {
    entries++;
    uint32_t a, b, c;
    int kind = t_parse_key(k, klen, &a, &b, &c);
    char key[TV_KEY_MAX + 1];
    size_t kl = klen < TV_KEY_MAX ? klen : TV_KEY_MAX;
    memcpy(key, k, kl);
    key[kl] = '\0';
    if (kind < 0 || ((kind == K_OWN || kind == K_STABLE) && a >= wk->nw) ||
        (kind == K_OWN && b >= wk->nown) ||
        (kind == K_STABLE && b >= wk->nstable)) {
      say(wk, "walk returned key '%s' that nobody writes", key);
      fail(wk, F_BADKEY, OP_WALK, 0, 0, 0);
      continue;
    }
    int bad = 0;
    const char *why = "";
    uint64_t seq = 0;
    if (kind == K_CTR) {
      int64_t x;
      bad = tv_check_counter(v, vlen, flags, &x);
      why = "not a counter";
    } else {
      uint32_t vw;
      bad = tv_check(v, vlen, flags, k, klen, kind == K_CLAIM ? -1 : (int64_t)a,
                     wk->nw, &vw, &seq, &why);
    }
    if (bad) {
      say(wk, "walk: %s: %s (%zu bytes)", key, why, vlen);
      fail(wk, bad, OP_WALK, 0, 0, seq);
      continue;
    }
    if (kind == K_STABLE) {
      unsigned char *n = &wk->stable_seen[(size_t)a * wk->nstable + b];
      if (*n == 1) {
        say(wk, "walk returned stable key %s twice", key);
        fail(wk, F_WALK_DUP, OP_WALK, b, a, seq);
      }
      *n += *n < 255;
    } else if (kind == K_OWN && a == wk->w) {
      if (wk->own_seen[b] == 1) {
        say(wk, "walk returned own key %s twice", key);
        fail(wk, F_WALK_DUP, OP_WALK, b, a, seq);
      }
      wk->own_seen[b] += wk->own_seen[b] < 255;
    }
    if ((kind == K_OWN || kind == K_STABLE) && a == wk->w) {
      struct trec s = {R_SEE, OP_WALK, (uint8_t)kind, 0,         b,
                       a,     0,       seq,           t_now_us()};
      jw_push(&wk->j, &s);
    }
  }
  kvshm_iter_close(it);
  if (rc != KVSHM_ENOTFOUND) {
    ack(wk, r, rc, entries);
    unexpected(wk, "iter_next", "", rc, OP_WALK, 0);
    return;
  }
  for (size_t i = 0; i < nstable_all; i++) {
    if (wk->stable_seen[i])
      continue;
    say(wk, "walk did not return stable key s.%zu.%zu", i / wk->nstable,
        i % wk->nstable);
    fail(wk, F_WALK_MISSING, OP_WALK, (uint32_t)(i % wk->nstable),
         (uint32_t)(i / wk->nstable), 0);
  }
  ack(wk, r, 0, entries);
}

/* Every 100 ms: how fast the driver wants us to go (0: flat out). */
static void pace(struct worker *wk) {
  uint64_t now = t_now_us();
  if (now - wk->pace_read_us >= 100000u) {
    wk->pace_read_us = now;
    char buf[32] = "";
    FILE *f = fopen(wk->pace_path, "re");
    if (f) {
      if (!fgets(buf, sizeof buf, f))
        buf[0] = '\0';
      fclose(f);
    }
    wk->pace_us = (unsigned)strtoul(buf, NULL, 10);
  }
  if (wk->pace_us) {
    struct timespec ts = {(time_t)(wk->pace_us / 1000000u),
                          (long)(wk->pace_us % 1000000u) * 1000L};
    nanosleep(&ts, NULL);
  }
}

static unsigned arg(char **argv, int i) {
  return (unsigned)strtoul(argv[i], NULL, 10);
}

int worker_main(int argc, char **argv) {
  if (argc != 13) {
    fprintf(stderr, "usage: torture worker NAME WRITER INC ROUND NWRITERS "
                    "NOWN NSTABLE NCTR JOURNAL SEED WALK_MS\n");
    return 2;
  }
  struct worker wk;
  memset(&wk, 0, sizeof wk);
  const char *name = argv[2];
  wk.w = arg(argv, 3);
  wk.inc = arg(argv, 4);
  wk.round = arg(argv, 5);
  wk.nw = arg(argv, 6);
  wk.nown = arg(argv, 7);
  wk.nstable = arg(argv, 8);
  wk.nctr = arg(argv, 9);
  wk.rng = strtoull(argv[11], NULL, 10) ^ ((uint64_t)wk.w << 48) ^
           ((uint64_t)wk.inc << 20) ^ (uint64_t)getpid();
  snprintf(wk.pace_path, sizeof wk.pace_path, "%s", argv[10]);
  char *slash = strrchr(wk.pace_path, '/');
  snprintf(slash ? slash + 1 : wk.pace_path,
           sizeof wk.pace_path - (size_t)(slash ? slash + 1 - wk.pace_path : 0),
           "pace");
  if (jw_open(&wk.j, argv[10])) {
    perror(argv[10]);
    return 2;
  }
  wk.buf = malloc(TV_BUF_MAX);
  wk.rbuf = malloc(TV_BUF_MAX);
  wk.ctr_seen = calloc(wk.nctr, sizeof *wk.ctr_seen);
  wk.stable_seen = calloc((size_t)wk.nw * wk.nstable + 1, 1);
  wk.own_seen = calloc(wk.nown + 1, 1);
  if (!wk.buf || !wk.rbuf || !wk.ctr_seen || !wk.stable_seen || !wk.own_seen)
    return 2;
  int rc = kvshm_open(name, NULL, KVSHM_NOCREATE, &wk.kv);
  if (rc) {
    fprintf(stderr, "torture: C writer %u: open %s: %s: %s\n", wk.w, name,
            kvshm_err_name(rc), kvshm_errdetail());
    return 2;
  }
  /* a walk every WALK_MS on average (0: never) */
  uint64_t walk_us = (uint64_t)arg(argv, 12) * 1000u;
  uint64_t next_walk =
      walk_us ? t_now_us() + walk_us / 2 + t_rand(&wk.rng) % (walk_us + 1)
              : UINT64_MAX;
  for (;;) {
    pace(&wk);
    if (t_now_us() >= next_walk) {
      do_walk(&wk);
      next_walk = t_now_us() + walk_us / 2 + t_rand(&wk.rng) % (walk_us + 1);
    }
    uint64_t r = t_rand(&wk.rng);
    unsigned p = (unsigned)(r % 100);
    r >>= 8;
    if (p < 24)
      do_set(&wk, OP_SET, K_OWN, pick_own(&wk));
    else if (p < 31)
      do_set(&wk, OP_SETNX, K_OWN, pick_own(&wk));
    else if (p < 38)
      do_set(&wk, OP_SETXX, K_OWN, pick_own(&wk));
    else if (p < 46)
      do_del(&wk, pick_own(&wk));
    else if (p < 51)
      do_set(&wk, (r & 1) ? OP_SETXX : OP_SET, K_STABLE,
             (uint32_t)((r >> 1) % wk.nstable));
    else if (p < 65)
      do_incr(&wk);
    else if (p < 70)
      do_claim(&wk);
    else if (p < 78)
      do_get(&wk, K_OWN, wk.w, pick_own(&wk), 0);
    else if (p < 82)
      do_get(&wk, K_STABLE, wk.w, (uint32_t)(r % wk.nstable), 0);
    else if (p < 85)
      do_get(&wk, K_CTR, 0, pick_counter(&wk), 0);
    else if (p < 88)
      do_get(&wk, K_CLAIM, 0, (uint32_t)(r % 4),
             (uint32_t)(t_now_us() / 200000u) - (uint32_t)((r >> 4) % 20));
    else /* another writer's key */
      do_get(&wk, (r & 1) ? K_OWN : K_STABLE, (uint32_t)((r >> 1) % wk.nw),
             (uint32_t)((r >> 8) % ((r & 1) ? wk.nown : wk.nstable)), 0);
  }
}
