/*
 * check_corrupt.c - a live segment scribbled on through its /dev/shm file
 * (entry heads, continuation chains, bucket words, lengths, state bits,
 * stripe counters and free lists).  kvshm_verify must find the damage
 * before anything repairs it; afterwards every operation returns OK,
 * KVSHM_ENOTFOUND or KVSHM_ECORRUPT (OK only with the exact value that was
 * written), never crashes or hangs (each runs in a child with a deadline,
 * under ASan/UBSan in the sanitizer build), other keys survive, and the
 * cache stays usable.
 */
#include "testutil.h"

#include "layout.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define NKEYS 40
#define BIGBUF 8192
#define CHILD_MS 3000u /* operations take ms; more is a hang */

/* ---- a populated segment and where its entries are ---------------------- */

struct seg {
  char name[TU_NAME_SIZE];
  kvshm *kv;
  struct kvshm_hdr hdr; /* copy of the header: geometry */
  int target;           /* key the damage is done to */
  uint32_t ts, tref;    /* its stripe and head ref */
};

static size_t key_of(int i, char *buf) {
  return (size_t)snprintf(buf, 16, "key%02d", i);
}

/* Key i's value: 1, 3 or 5 slots of 160 bytes. */
static size_t val_of(int i, unsigned char *buf) {
  size_t n = i % 3 == 0 ? 50 : i % 3 == 1 ? 400 : 700;
  tu_fill(buf, n, 1000 + (uint64_t)i);
  return n;
}

static uint64_t slot_off(struct seg *g, uint32_t s, uint32_t ref) {
  return kvshm_test_slot_offset(g->kv, s, ref - 1);
}

static struct kvshm_head head_read(struct seg *g, uint32_t s, uint32_t ref) {
  struct kvshm_head h;
  tu_peek(g->name, slot_off(g, s, ref), &h, sizeof h);
  return h;
}

static struct kvshm_cont cont_read(struct seg *g, uint32_t s, uint32_t ref) {
  struct kvshm_cont c;
  tu_peek(g->name, slot_off(g, s, ref), &c, sizeof c);
  return c;
}

/* The head ref of key i (0 if none), by scanning its stripe's slots. */
static uint32_t find_head(struct seg *g, int i, uint32_t *stripe) {
  char key[16];
  size_t kl = key_of(i, key);
  uint32_t s = kvshm_test_stripe_of(g->kv, key, kl);
  *stripe = s;
  for (uint32_t r = 1; r <= g->hdr.slots; r++) {
    unsigned char slot[64];
    tu_peek(g->name, slot_off(g, s, r), slot, sizeof slot);
    struct kvshm_head h;
    memcpy(&h, slot, sizeof h);
    if ((h.state & KVSHM_KIND_MASK) == KVSHM_KIND_HEAD && h.klen == kl &&
        memcmp(slot + sizeof h, key, kl) == 0)
      return r;
  }
  return 0;
}

static uint64_t bucket_base(struct seg *g, uint32_t s) {
  return g->hdr.region_off + (uint64_t)s * g->hdr.region_size;
}

/* The bucket whose word is ref (its entry is first in its chain), or -1. */
static int64_t bucket_pointing_at(struct seg *g, uint32_t s, uint32_t ref) {
  uint32_t *words = malloc((size_t)g->hdr.buckets * 4);
  ck_assert_ptr_nonnull(words);
  tu_peek(g->name, bucket_base(g, s), words, (size_t)g->hdr.buckets * 4);
  int64_t b = -1;
  for (uint32_t i = 0; i < g->hdr.buckets && b < 0; i++)
    if (words[i] == ref)
      b = i;
  free(words);
  return b;
}

/* A segment of 2 stripes of ~370 slots, keys key00..key39, target chosen
 * among the five-slot entries that head their bucket chain. */
static void seg_create(struct seg *g, int64_t target_ttl) {
  tu_name(g->name);
  kvshm_config c;
  tu_config(&c, 128 * 1024, 160, 2);
  g->kv = tu_open(g->name, &c);
  tu_peek(g->name, 0, &g->hdr, sizeof g->hdr);
  static unsigned char val[1000];
  g->target = -1;
  for (int i = 0; i < NKEYS; i++) {
    char key[16];
    size_t kl = key_of(i, key);
    size_t n = val_of(i, val);
    tu_assert_rc(kvshm_set(g->kv, key, kl, val, n, (uint32_t)i, 0, 0),
                 KVSHM_OK);
  }
  for (int i = 2; i < NKEYS && g->target < 0; i += 3) {
    uint32_t s, r = find_head(g, i, &s);
    ck_assert_uint_ne(r, 0);
    if (bucket_pointing_at(g, s, r) >= 0) {
      g->target = i;
      g->ts = s;
      g->tref = r;
    }
  }
  ck_assert_int_ge(g->target, 0);
  if (target_ttl) { /* give the target an expiry (same value) */
    char key[16];
    size_t kl = key_of(g->target, key);
    size_t n = val_of(g->target, val);
    tu_assert_rc(
        kvshm_set(g->kv, key, kl, val, n, (uint32_t)g->target, target_ttl, 0),
        KVSHM_OK);
    g->tref = find_head(g, g->target, &g->ts);
    ck_assert_int_ge(bucket_pointing_at(g, g->ts, g->tref), 0);
  }
  ck_assert_int_eq(tu_verify(g->kv), 0);
}

static void seg_destroy(struct seg *g) {
  kvshm_close(g->kv);
  kvshm_unlink(g->name);
}

/* ---- the damage ------------------------------------------------------------
 */

enum kind {
  K_VALUE,       /* a byte of the value flipped */
  K_HEAD_RANDOM, /* 40 random bytes over the head */
  K_CNEXT_OOR,   /* head's chain link out of range */
  K_CONT_OOR,    /* a continuation's link out of range */
  K_CYCLE,       /* the last continuation links back to the first */
  K_CONT_OWNER,  /* a continuation claims another owner */
  K_CONT_FREED,  /* a continuation marked free */
  K_BUCKET_OOR,  /* the bucket word out of range */
  K_HNEXT_OOR,   /* the bucket chain link out of range */
  K_KLEN_HUGE,   /* klen 65535 */
  K_VLEN_HUGE,   /* vlen 2^31-1 */
  K_STATE_BITS,  /* an unknown state bit */
  NKINDS
};

static const char *kind_name[NKINDS] = {"value byte flipped",
                                        "random head",
                                        "head cnext out of range",
                                        "cont cnext out of range",
                                        "chain cycle",
                                        "cont owner changed",
                                        "cont marked free",
                                        "bucket ref out of range",
                                        "hnext out of range",
                                        "klen huge",
                                        "vlen huge",
                                        "unknown state bit"};

static void damage(struct seg *g, enum kind k, uint64_t seed) {
  uint32_t s = g->ts, r = g->tref;
  uint64_t off = slot_off(g, s, r);
  struct kvshm_head h = head_read(g, s, r);
  ck_assert_uint_ne(h.cnext, 0); /* the target spans slots */
  uint32_t c1 = h.cnext;
  struct kvshm_cont ct1 = cont_read(g, s, c1);
  uint32_t c2 = ct1.cnext;
  ck_assert_uint_ne(c2, 0);
  uint32_t last = c2;
  for (struct kvshm_cont ct = cont_read(g, s, last); ct.cnext;
       ct = cont_read(g, s, last))
    last = ct.cnext;
  switch (k) {
  case K_VALUE: {
    unsigned char b;
    uint64_t at = off + sizeof h + h.klen + 3;
    tu_peek(g->name, at, &b, 1);
    b ^= 0x5a;
    tu_poke(g->name, at, &b, 1);
    break;
  }
  case K_HEAD_RANDOM: {
    unsigned char junk[sizeof h];
    tu_fill(junk, sizeof junk, seed);
    tu_poke(g->name, off, junk, sizeof junk);
    break;
  }
  case K_CNEXT_OOR:
    tu_poke32(g->name, off + offsetof(struct kvshm_head, cnext),
              g->hdr.slots + 1000);
    break;
  case K_CONT_OOR:
    tu_poke32(g->name, slot_off(g, s, c1) + offsetof(struct kvshm_cont, cnext),
              0x00ffffffu);
    break;
  case K_CYCLE:
    tu_poke32(g->name,
              slot_off(g, s, last) + offsetof(struct kvshm_cont, cnext), c1);
    break;
  case K_CONT_OWNER:
    tu_poke32(g->name, slot_off(g, s, c2) + offsetof(struct kvshm_cont, owner),
              r == 1 ? 2 : r - 1);
    break;
  case K_CONT_FREED: {
    uint16_t st = KVSHM_KIND_FREE;
    tu_poke(g->name, slot_off(g, s, c2), &st, sizeof st);
    break;
  }
  case K_BUCKET_OOR: {
    int64_t b = bucket_pointing_at(g, s, r);
    ck_assert_int_ge(b, 0);
    tu_poke32(g->name, bucket_base(g, s) + (uint64_t)b * 4, g->hdr.slots + 5);
    break;
  }
  case K_HNEXT_OOR:
    tu_poke32(g->name, off + offsetof(struct kvshm_head, hnext),
              g->hdr.slots + 9);
    break;
  case K_KLEN_HUGE: {
    uint16_t v = 0xffff;
    tu_poke(g->name, off + offsetof(struct kvshm_head, klen), &v, sizeof v);
    break;
  }
  case K_VLEN_HUGE:
    tu_poke32(g->name, off + offsetof(struct kvshm_head, vlen), 0x7fffffffu);
    break;
  case K_STATE_BITS: {
    uint16_t st = h.state | 0x0100;
    tu_poke(g->name, off, &st, sizeof st);
    break;
  }
  case NKINDS:
    break;
  }
}

/* ---- operations on a damaged segment, in a child ----------------------------
 */

enum first {
  F_GET,  /* get with a large buffer */
  F_SIZE, /* get as a size query */
  F_HAS,
  F_DEL,
  F_SET, /* overwrite */
  F_INCR,
  F_ITER,
  F_EXPIRE, /* has, after the target's TTL passed */
  F_EVICT,  /* many new keys: eviction meets the damage */
  NFIRST
};

static const char *first_name[NFIRST] = {
    "get",     "size query",       "has",          "del", "set", "incr",
    "iterate", "has after expiry", "evicting sets"};

static int allowed(int rc) {
  return rc == KVSHM_OK || rc == KVSHM_ENOTFOUND || rc == KVSHM_ECORRUPT;
}

#define CHILD_ALLOWED(expr)                                                    \
  do {                                                                         \
    int rc_ = (expr);                                                          \
    if (!allowed(rc_)) {                                                       \
      fprintf(stderr, "%s:%d: %s returned %d (%s): %s\n", __FILE__, __LINE__,  \
              #expr, rc_, kvshm_err_name(rc_), kvshm_errdetail());             \
      _exit(TU_CHILD_FAILED);                                                  \
    }                                                                          \
  } while (0)

/* get key i; OK only with its exact value. */
static void child_get(kvshm *kv, int i, unsigned char *buf) {
  char key[16];
  unsigned char want[1000];
  size_t kl = key_of(i, key), wl = val_of(i, want), n = 0;
  uint32_t fl = 0;
  int rc = kvshm_get(kv, key, kl, buf, BIGBUF, &n, &fl);
  CHILD_ALLOWED(rc);
  if (rc == KVSHM_OK &&
      (n != wl || fl != (uint32_t)i || memcmp(buf, want, wl) != 0)) {
    fprintf(stderr,
            "get key%02d: OK with a wrong value (%zu bytes, flags "
            "%u)\n",
            i, n, fl);
    _exit(TU_CHILD_FAILED);
  }
}

static uint64_t clock_later(void *ctx) {
  return *(uint64_t *)ctx;
}

/* What the child is doing, in a shared page: named in the failure if it
 * crashes or hangs there. */
static char *progress;
#define STEP(...) snprintf(progress, 128, __VA_ARGS__)

static void child_ops(const char *name, int target, enum first f) {
  kvshm *kv;
  TU_CHILD_RC(kvshm_open(name, NULL, KVSHM_NOREAPER, &kv), KVSHM_OK);
  static unsigned char buf[BIGBUF];
  char key[16];
  size_t kl = key_of(target, key);
  size_t n = 0;
  STEP("%s of the damaged key", first_name[f]);
  switch (f) {
  case F_GET:
    child_get(kv, target, buf);
    break;
  case F_SIZE:
    CHILD_ALLOWED(kvshm_get(kv, key, kl, NULL, 0, &n, NULL));
    break;
  case F_HAS:
    CHILD_ALLOWED(kvshm_has(kv, key, kl));
    CHILD_ALLOWED(kvshm_in_memory(kv, key, kl));
    break;
  case F_DEL:
    CHILD_ALLOWED(kvshm_del(kv, key, kl));
    break;
  case F_SET:
    CHILD_ALLOWED(kvshm_set(kv, key, kl, "new", 3, 0, 0, 0));
    break;
  case F_INCR: {
    int rc = kvshm_incr(kv, key, kl, 1, 0, NULL);
    if (rc != KVSHM_ENOTINT)
      CHILD_ALLOWED(rc);
    break;
  }
  case F_ITER:
    break; /* the sweep below iterates first */
  case F_EXPIRE: {
    static uint64_t later;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    later = (uint64_t)ts.tv_sec * 1000 + 3600 * 1000;
    kvshm_test_set_clock(kv, clock_later, &later);
    CHILD_ALLOWED(kvshm_has(kv, key, kl));
    break;
  }
  case F_EVICT:
    for (int i = 0; i < 3000; i++) {
      char k2[16];
      int l2 = snprintf(k2, sizeof k2, "ev%d", i);
      CHILD_ALLOWED(kvshm_set(kv, k2, (size_t)l2, buf, 100, 0, 0, 0));
    }
    break;
  case NFIRST:
    break;
  }
  /* Then everything else, once. */
  STEP("iteration");
  kvshm_iter *it;
  TU_CHILD_RC(kvshm_iter_open(kv, NULL, 0, 0, &it), KVSHM_OK);
  const void *ik, *iv;
  size_t ikl, ivl;
  uint32_t ifl;
  int rc, steps = 0;
  while ((rc = kvshm_iter_next(it, &ik, &ikl, &iv, &ivl, &ifl, NULL)) ==
         KVSHM_OK) {
    TU_CHILD_CHECK(++steps < 100000);
    if (ikl == 5 && memcmp(ik, "key", 3) == 0) {
      int i = (((const char *)ik)[3] - '0') * 10 + ((const char *)ik)[4] - '0';
      unsigned char want[1000];
      size_t wl = val_of(i, want);
      int replaced = i == target && (f == F_SET || f == F_INCR);
      if (!replaced && /* by "new" or an incr's result */
          (ivl != wl || memcmp(iv, want, wl) != 0 || ifl != (uint32_t)i)) {
        fprintf(stderr, "iteration: key%02d has a wrong value\n", i);
        _exit(TU_CHILD_FAILED);
      }
    }
  }
  CHILD_ALLOWED(rc);
  kvshm_iter_close(it);
  for (int i = 0; i < NKEYS; i++) {
    char k2[16];
    size_t l2 = key_of(i, k2);
    STEP("get/has of key%02d", i);
    if (!(i == target && (f == F_SET || f == F_INCR)))
      child_get(kv, i, buf);
    CHILD_ALLOWED(kvshm_has(kv, k2, l2));
  }
  for (int i = 0; i < 20; i++) {
    char k2[16];
    int l2 = snprintf(k2, sizeof k2, "new%d", i);
    STEP("set of new key %s", k2);
    CHILD_ALLOWED(
        kvshm_set(kv, k2, (size_t)l2, buf, 30 + 40 * (size_t)i, 0, 0, 0));
  }
  int64_t v = 0;
  STEP("incr of a new key");
  CHILD_ALLOWED(kvshm_incr(kv, "cnt", 3, 1, 0, &v));
  STEP("del of the damaged key, at the end");
  CHILD_ALLOWED(kvshm_del(kv, key, kl));
  kvshm_close(kv);
  _exit(0);
}

/* Run child_ops; "" if it went well, else what happened. */
static const char *run_child(struct seg *g, enum first f, char *why, size_t n) {
  if (!progress) {
    progress = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(progress, MAP_FAILED);
  }
  progress[0] = '\0';
  pid_t pid = tu_fork();
  if (pid == 0)
    child_ops(g->name, g->target, f);
  int status = 0;
  char st[96];
  if (tu_wait(pid, CHILD_MS, &status) != 0)
    snprintf(st, sizeof st, "hung (killed after %u ms)", CHILD_MS);
  else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return "";
  else
    tu_status_str(status, st, sizeof st);
  snprintf(why, n, "%s in: %.100s", st, progress);
  return why;
}

/* After the child: other keys intact, the target gone or intact, the cache
 * usable.  "" or a description of what is wrong. */
static const char *check_after(struct seg *g, enum first f, char *why,
                               size_t n) {
  static unsigned char buf[BIGBUF], want[1000];
  for (int i = 0; i < NKEYS; i++) {
    char key[16];
    size_t kl = key_of(i, key), wl = val_of(i, want), got = 0;
    uint32_t fl = 0;
    int rc = kvshm_get(g->kv, key, kl, buf, sizeof buf, &got, &fl);
    if (rc == KVSHM_ECORRUPT) /* found now, repaired: once more */
      rc = kvshm_get(g->kv, key, kl, buf, sizeof buf, &got, &fl);
    if (i == g->target || (f == F_EVICT && rc == KVSHM_ENOTFOUND))
      continue; /* deleted by the child, or evicted */
    if (rc != KVSHM_OK || got != wl || fl != (uint32_t)i ||
        memcmp(buf, want, wl) != 0) {
      snprintf(why, n, "afterwards key%02d is lost or wrong (%s)", i,
               kvshm_err_name(rc));
      return why;
    }
  }
  int rc = kvshm_set(g->kv, "after", 5, "usable", 6, 0, 0, 0);
  if (rc == KVSHM_ECORRUPT)
    rc = kvshm_set(g->kv, "after", 5, "usable", 6, 0, 0, 0);
  size_t got = 0;
  if (rc != KVSHM_OK ||
      kvshm_get(g->kv, "after", 5, buf, sizeof buf, &got, NULL) != KVSHM_OK ||
      got != 6 || memcmp(buf, "usable", 6) != 0) {
    snprintf(why, n, "afterwards a new set/get fails (%s)", kvshm_err_name(rc));
    return why;
  }
  return "";
}

/* Every kind of damage, met first by every kind of operation. */
START_TEST(damaged_entry_never_crashes) {
  enum kind k = (enum kind)_i;
  char failures[4096] = "";
  size_t used = 0;
  for (int f = 0; f < NFIRST; f++) {
    struct seg g;
    seg_create(&g, f == F_EXPIRE ? 60000 : 0);
    damage(&g, k, 100 + (uint64_t)f);
    /* verify sees it before anything repairs it */
    int problems = kvshm_verify(g.kv, NULL, NULL);
    ck_assert_msg(problems > 0, "%s: verify found nothing", kind_name[k]);
    uint64_t corrupt0 = tu_stats(g.kv).corrupt;
    char why[256];
    const char *bad = run_child(&g, (enum first)f, why, sizeof why);
    if (!*bad)
      bad = check_after(&g, (enum first)f, why, sizeof why);
    if (*bad)
      used += (size_t)snprintf(failures + used, sizeof failures - used,
                               "\n  %s first: %s", first_name[f], bad);
    else
      ck_assert_uint_ge(tu_stats(g.kv).corrupt, corrupt0);
    seg_destroy(&g);
    if (used >= sizeof failures - 1)
      break;
  }
  ck_assert_msg(used == 0, "damage '%s':%s", kind_name[k], failures);
}
END_TEST

/* The precise outcome where it is defined: a get of a broken entry is
 * KVSHM_ECORRUPT, the entry is dropped and counted, the stripe rebuilt. */
START_TEST(get_of_a_broken_entry_is_ecorrupt) {
  const enum kind kinds[] = {K_VALUE,      K_CNEXT_OOR,  K_CONT_OOR,
                             K_CYCLE,      K_CONT_OWNER, K_CONT_FREED,
                             K_STATE_BITS, K_VLEN_HUGE};
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    struct seg g;
    seg_create(&g, 0);
    damage(&g, kinds[i], 1);
    char report[1024];
    ck_assert_int_gt(tu_verify_capture(g.kv, report, sizeof report), 0);
    ck_assert_msg(strstr(report, "slot"), "%s: %s", kind_name[kinds[i]],
                  report);
    kvshm_stats st0 = tu_stats(g.kv);
    char key[16];
    size_t kl = key_of(g.target, key);
    static unsigned char buf[BIGBUF];
    size_t n = 0;
    int rc = kvshm_get(g.kv, key, kl, buf, sizeof buf, &n, NULL);
    ck_assert_msg(rc == KVSHM_ECORRUPT, "%s: get = %d (%s)",
                  kind_name[kinds[i]], rc, kvshm_err_name(rc));
    ck_assert_msg(kvshm_errdetail()[0] != '\0', "no detail");
    kvshm_stats st = tu_stats(g.kv);
    ck_assert_uint_eq(st.corrupt, st0.corrupt + 1);
    ck_assert_uint_eq(st.entries, st0.entries - 1);
    tu_assert_rc(kvshm_get(g.kv, key, kl, buf, sizeof buf, &n, NULL),
                 KVSHM_ENOTFOUND);
    ck_assert_int_eq(tu_verify(g.kv), 0);
    tu_assert_rc(kvshm_set(g.kv, key, kl, "x", 1, 0, 0, 0), KVSHM_OK);
    tu_assert_value(g.kv, key, kl, "x", 1);
    seg_destroy(&g);
  }
}
END_TEST

START_TEST(broken_bucket_is_rebuilt_without_loss) {
  const enum kind kinds[] = {K_BUCKET_OOR, K_HNEXT_OOR};
  for (size_t i = 0; i < 2; i++) {
    struct seg g;
    seg_create(&g, 0);
    damage(&g, kinds[i], 1);
    ck_assert_int_gt(kvshm_verify(g.kv, NULL, NULL), 0);
    /* Walk every key: the broken link is met, the stripe is rebuilt from
     * its slots, and no entry is lost (none was damaged). */
    int ecorrupt = 0;
    static unsigned char buf[BIGBUF], want[1000];
    for (int pass = 0; pass < 2; pass++)
      for (int k = 0; k < NKEYS; k++) {
        char key[16];
        size_t kl = key_of(k, key), wl = val_of(k, want), n = 0;
        int rc = kvshm_get(g.kv, key, kl, buf, sizeof buf, &n, NULL);
        if (pass == 0 && rc == KVSHM_ECORRUPT) {
          ecorrupt++;
          continue;
        }
        tu_assert_rc(rc, KVSHM_OK);
        ck_assert_uint_eq(n, wl);
        ck_assert(memcmp(buf, want, wl) == 0);
      }
    if (kinds[i] == K_HNEXT_OOR) {
      /* The link after the target is followed only by lookups of keys
       * that hash to its bucket and are not before it: probe for one. */
      for (int p = 0; p < 200000 && !ecorrupt; p++) {
        char probe[24];
        int pl = snprintf(probe, sizeof probe, "probe%d", p);
        int rc = kvshm_has(g.kv, probe, (size_t)pl);
        if (rc == KVSHM_ECORRUPT)
          ecorrupt++;
        else
          tu_assert_rc(rc, KVSHM_ENOTFOUND);
      }
    }
    ck_assert_msg(ecorrupt >= 1, "%s: never reported", kind_name[kinds[i]]);
    for (int k = 0; k < NKEYS; k++) {
      char key[16];
      size_t kl = key_of(k, key), wl = val_of(k, want), n = 0;
      tu_assert_rc(kvshm_get(g.kv, key, kl, buf, sizeof buf, &n, NULL),
                   KVSHM_OK);
      ck_assert(n == wl && memcmp(buf, want, wl) == 0);
    }
    ck_assert_uint_eq(tu_stats(g.kv).entries, NKEYS);
    ck_assert_int_eq(tu_verify(g.kv), 0);
    seg_destroy(&g);
  }
}
END_TEST

/* Eviction unlinks its victim by walking the victim's bucket chain: a broken
 * bucket word there must not crash it.  A stripe with only the damaged
 * entry and one big key, rewritten: the damaged entry is the only victim. */
static void evict_child(const char *name, size_t len) {
  kvshm *kv;
  TU_CHILD_RC(kvshm_open(name, NULL, KVSHM_NOREAPER, &kv), KVSHM_OK);
  unsigned char *v = calloc(1, len);
  TU_CHILD_CHECK(v != NULL);
  CHILD_ALLOWED(kvshm_set(kv, "K", 1, v, len, 2, 0, 0));
  CHILD_ALLOWED(kvshm_set(kv, "K", 1, v, len, 3, 0, 0));
  free(v);
  kvshm_close(kv);
  _exit(0);
}

START_TEST(eviction_meets_broken_bucket) {
  const enum kind kinds[] = {K_BUCKET_OOR, K_CNEXT_OOR, K_CYCLE};
  char failures[1024] = "";
  size_t used = 0;
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    struct seg g;
    tu_name(g.name);
    kvshm_config c;
    tu_config(&c, 64 * 1024, 160, 1);
    g.kv = tu_open(g.name, &c);
    tu_peek(g.name, 0, &g.hdr, sizeof g.hdr);
    size_t big = (size_t)tu_stats(g.kv).max_value; /* half the stripe */
    unsigned char *v = calloc(1, big);
    ck_assert_ptr_nonnull(v);
    tu_assert_rc(kvshm_set(g.kv, "K", 1, v, big, 1, 0, 0), KVSHM_OK);
    free(v);
    static unsigned char val[1000];
    g.target = 2; /* key02, five slots */
    char key[16];
    size_t kl = key_of(2, key), n = val_of(2, val);
    tu_assert_rc(kvshm_set(g.kv, key, kl, val, n, 2, 0, 0), KVSHM_OK);
    g.tref = find_head(&g, 2, &g.ts);
    ck_assert_int_ge(bucket_pointing_at(&g, g.ts, g.tref), 0);
    ck_assert_uint_lt(tu_stats(g.kv).slots_free, (big + 200) / 120);
    damage(&g, kinds[i], 1);
    ck_assert_int_gt(kvshm_verify(g.kv, NULL, NULL), 0);
    if (!progress) {
      progress = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
      ck_assert_ptr_ne(progress, MAP_FAILED);
    }
    pid_t pid = tu_fork();
    if (pid == 0)
      evict_child(g.name, big);
    int status = 0;
    char why[128] = "";
    if (tu_wait(pid, CHILD_MS, &status) != 0)
      snprintf(why, sizeof why, "hung");
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      tu_status_str(status, why, sizeof why);
    if (*why) {
      used += (size_t)snprintf(failures + used, sizeof failures - used,
                               "\n  %s: the evicting writer %s",
                               kind_name[kinds[i]], why);
    } else {
      /* The damaged entry is gone (evicted or dropped), K is whole; a
       * broken link still there is found (and repaired) on the way. */
      int rc = kvshm_has(g.kv, key, kl);
      if (rc == KVSHM_ECORRUPT)
        rc = kvshm_has(g.kv, key, kl);
      tu_assert_rc(rc, KVSHM_ENOTFOUND);
      uint32_t fl = 0;
      tu_assert_rc(kvshm_get(g.kv, "K", 1, NULL, 0, NULL, &fl), KVSHM_OK);
      ck_assert_uint_eq(fl, 3);
      ck_assert_int_eq(tu_verify(g.kv), 0);
    }
    seg_destroy(&g);
  }
  ck_assert_msg(used == 0, "eviction:%s", failures);
}
END_TEST

/* ---- stripe headers -------------------------------------------------------
 */

static uint64_t stripe_field(uint32_t s, size_t field_off) {
  return KVSHM_HDR_SIZE + (uint64_t)s * KVSHM_STRIPE_SIZE + field_off;
}

START_TEST(verify_catches_wrong_counts) {
  const struct {
    size_t off;
    int32_t delta;
  } f[] = {{offsetof(struct kvshm_stripe, entries), 3},
           {offsetof(struct kvshm_stripe, entries), -1},
           {offsetof(struct kvshm_stripe, bytes), 100},
           {offsetof(struct kvshm_stripe, nfree), 2}};
  ck_assert_uint_eq(offsetof(struct kvshm_stripe, entries), 76);
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
    struct seg g;
    seg_create(&g, 0);
    uint64_t at = stripe_field(g.ts, f[i].off);
    tu_poke32(g.name, at, tu_peek32(g.name, at) + (uint32_t)f[i].delta);
    char report[1024];
    ck_assert_int_gt(tu_verify_capture(g.kv, report, sizeof report), 0);
    ck_assert_msg(strstr(report, "stripe"), "%s", report);
    /* Reading still works. */
    static unsigned char buf[BIGBUF], want[1000];
    for (int k = 0; k < NKEYS; k++) {
      char key[16];
      size_t kl = key_of(k, key), wl = val_of(k, want), n = 0;
      tu_assert_rc(kvshm_get(g.kv, key, kl, buf, sizeof buf, &n, NULL),
                   KVSHM_OK);
      ck_assert(n == wl && memcmp(buf, want, wl) == 0);
    }
    seg_destroy(&g);
  }
}
END_TEST

/* A stripe whose allocator fields lie, met by a writer in a child. */
static void alloc_child(const char *name, int nsets) {
  kvshm *kv;
  TU_CHILD_RC(kvshm_open(name, NULL, KVSHM_NOREAPER, &kv), KVSHM_OK);
  static unsigned char buf[600];
  for (int i = 0; i < nsets; i++) {
    char k[16];
    int l = snprintf(k, sizeof k, "w%d", i);
    CHILD_ALLOWED(
        kvshm_set(kv, k, (size_t)l, buf, (size_t)(i * 37) % 600, 0, 0, 0));
  }
  kvshm_close(kv);
  _exit(0);
}

START_TEST(lying_allocator_fields) {
  const struct {
    const char *what;
    size_t off;
    int full;       /* fill the stripe first */
    uint32_t value; /* 0: slots + 10 */
  } cases[] = {
      {"nfree above the free slots of a full stripe",
       offsetof(struct kvshm_stripe, nfree), 1, 5},
      {"free_head out of range", offsetof(struct kvshm_stripe, free_head), 0,
       0},
      {"fresh out of range", offsetof(struct kvshm_stripe, fresh), 0, 0},
      {"nfree out of range", offsetof(struct kvshm_stripe, nfree), 0, 0},
  };
  char failures[2048] = "";
  size_t used = 0;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char name[TU_NAME_SIZE];
    tu_name(name);
    kvshm_config c;
    tu_config(&c, 64 * 1024, 160, 1);
    kvshm *kv = tu_open(name, &c);
    uint32_t slots = tu_stats(kv).slots_per_stripe;
    if (cases[i].full) {
      /* Exactly one slot per key until no slot is left: fresh == slots
       * and the free list is empty. */
      for (uint32_t k = 0; k < slots; k++) {
        char key[16];
        int l = snprintf(key, sizeof key, "f%u", k);
        tu_assert_rc(kvshm_set(kv, key, (size_t)l, "v", 1, 0, 0, 0), KVSHM_OK);
      }
      ck_assert_uint_eq(tu_stats(kv).slots_free, 0);
    } else {
      for (int k = 0; k < 30; k++) {
        char key[16];
        int l = snprintf(key, sizeof key, "f%d", k);
        tu_assert_rc(kvshm_set(kv, key, (size_t)l, "vvvv", 4, 0, 0, 0),
                     KVSHM_OK);
      }
      for (int k = 0; k < 30; k += 3) { /* a free list */
        char key[16];
        int l = snprintf(key, sizeof key, "f%d", k);
        tu_assert_rc(kvshm_del(kv, key, (size_t)l), KVSHM_OK);
      }
    }
    uint32_t v = cases[i].value ? cases[i].value : slots + 10;
    tu_poke32(name, stripe_field(0, cases[i].off), v);
    ck_assert_msg(kvshm_verify(kv, NULL, NULL) > 0,
                  "%s: verify found "
                  "nothing",
                  cases[i].what);
    pid_t pid = tu_fork();
    if (pid == 0)
      alloc_child(name, 20);
    int status = 0;
    char why[128] = "";
    if (tu_wait(pid, CHILD_MS, &status) != 0)
      snprintf(why, sizeof why, "hung");
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      tu_status_str(status, why, sizeof why);
    if (*why)
      used += (size_t)snprintf(failures + used, sizeof failures - used,
                               "\n  %s: a writer %s", cases[i].what, why);
    kvshm_close(kv);
    kvshm_unlink(name);
  }
  ck_assert_msg(used == 0, "allocator damage:%s", failures);
}
END_TEST

/* A one-stripe cache with keys f0..f29, the even ones deleted, and the
 * first free slot linking to itself. */
static kvshm *looping_free_list(const char *name) {
  kvshm_config c;
  tu_config(&c, 64 * 1024, 160, 1);
  kvshm *kv = tu_open(name, &c);
  for (int k = 0; k < 30; k++) {
    char key[16];
    int l = snprintf(key, sizeof key, "f%d", k);
    tu_assert_rc(kvshm_set(kv, key, (size_t)l, "vvvv", 4, 0, 0, 0), KVSHM_OK);
  }
  for (int k = 0; k < 30; k += 2) {
    char key[16];
    int l = snprintf(key, sizeof key, "f%d", k);
    tu_assert_rc(kvshm_del(kv, key, (size_t)l), KVSHM_OK);
  }
  uint32_t head = tu_peek32(
      name, stripe_field(0, offsetof(struct kvshm_stripe, free_head)));
  ck_assert_uint_ne(head, 0);
  tu_poke32(name,
            kvshm_test_slot_offset(kv, 0, head - 1) +
                offsetof(struct kvshm_head, hnext),
            head);
  return kv;
}

START_TEST(free_list_loop) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  kvshm *kv = looping_free_list(name);
  char report[1024];
  ck_assert_int_gt(tu_verify_capture(kv, report, sizeof report), 0);
  ck_assert_msg(strstr(report, "free list"), "%s", report);
  pid_t pid = tu_fork();
  if (pid == 0)
    alloc_child(name, 20);
  tu_wait_ok(pid, CHILD_MS, "writer on a looping free list");
  /* Odd keys were never touched. */
  for (int k = 1; k < 30; k += 2) {
    char key[16];
    int l = snprintf(key, sizeof key, "f%d", k);
    int rc = kvshm_get(kv, key, (size_t)l, NULL, 0, NULL, NULL);
    ck_assert_msg(rc == KVSHM_OK || rc == KVSHM_ECORRUPT, "f%d: %s", k,
                  kvshm_err_name(rc));
  }
  kvshm_close(kv);
  kvshm_unlink(name);
}
END_TEST

/* The same loop met by a write of several slots: the slot that lists itself
 * would be handed out for each of them.  The write is refused before it
 * writes anything (found by the segment fuzzer, tests/fuzz). */
START_TEST(free_list_loop_multi_slot_write) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  kvshm *kv = looping_free_list(name);
  unsigned char big[400]; /* three slots */
  tu_fill(big, sizeof big, 77);
  tu_assert_rc(kvshm_set(kv, "big", 3, big, sizeof big, 0, 0, 0),
               KVSHM_ECORRUPT);
  ck_assert_msg(strstr(kvshm_errdetail(), "free list"), "%s",
                kvshm_errdetail());
  tu_assert_rc(kvshm_set(kv, "big", 3, big, sizeof big, 0, 0, 0), KVSHM_OK);
  tu_assert_value(kv, "big", 3, big, sizeof big);
  ck_assert_int_eq(tu_verify(kv), 0);
  kvshm_close(kv);
  kvshm_unlink(name);
}
END_TEST

/* The segment file truncated under an open handle (whoever may write it
 * may ftruncate it): verify says so, instead of dying of SIGBUS at the
 * first page past the new end.  Found by the segment fuzzer (tests/fuzz):
 * below the header, and in the middle of the slots. */
START_TEST(verify_of_a_truncated_file) {
  const off_t sizes[] = {4096, 512 * 1024};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    char name[TU_NAME_SIZE];
    tu_name(name);
    kvshm_config c;
    tu_config(&c, 1024 * 1024, 160, 2);
    kvshm *kv = tu_open(name, &c);
    tu_set_str(kv, "k", "v");
    kvshm_close(kv);
    pid_t pid = tu_fork();
    if (pid == 0) {
      TU_CHILD_RC(kvshm_open(name, NULL, KVSHM_NOREAPER, &kv), KVSHM_OK);
      char path[TU_PATH_SIZE], report[512];
      TU_CHILD_CHECK(truncate(tu_shm_path(name, path), sizes[i]) == 0);
      TU_CHILD_CHECK(tu_verify_capture(kv, report, sizeof report) == 1);
      TU_CHILD_CHECK(strstr(report, "truncated") != NULL);
      kvshm_close(kv);
      _exit(0);
    }
    tu_wait_ok(pid, CHILD_MS, "verify of a truncated segment");
    kvshm_unlink(name);
  }
}
END_TEST

static Suite *corrupt_suite(void) {
  Suite *s = suite_create("corrupt");
  TCase *tc = tu_tcase("entries", 120);
  tcase_add_loop_test(tc, damaged_entry_never_crashes, 0, NKINDS);
  tcase_add_test(tc, get_of_a_broken_entry_is_ecorrupt);
  tcase_add_test(tc, broken_bucket_is_rebuilt_without_loss);
  tcase_add_test(tc, eviction_meets_broken_bucket);
  suite_add_tcase(s, tc);
  tc = tu_tcase("stripes", 60);
  tcase_add_test(tc, verify_catches_wrong_counts);
  tcase_add_test(tc, lying_allocator_fields);
  tcase_add_test(tc, free_list_loop);
  tcase_add_test(tc, free_list_loop_multi_slot_write);
  tcase_add_test(tc, verify_of_a_truncated_file);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  Suite *suites[] = {corrupt_suite()};
  return tu_run_suites(suites, 1);
}
