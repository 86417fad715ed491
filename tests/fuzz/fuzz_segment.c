/*
 * fuzz_segment.c - random damage to a segment image (header, stripes,
 * buckets, slots), then open/get/set/iterate/verify from C: no signal, no
 * hang past the lock timeout, no wrong value, under ASan+UBSan.
 *
 * The driver makes one memory-only cache of a small geometry, fills it (some
 * values span slots, some keys span slots, some have a TTL, some expired,
 * some overwritten, some deleted, a few counters), closes it and keeps its
 * /dev/shm file as the pristine image.  Each trial then:
 *
 *   1. copies the image, damages it with ONE model chosen at random (see
 *      models[] below: random bytes, a stripe mutex's bytes or words, header
 *      fields, stripe fields, bucket words, slot states, lengths, chain
 *      refs, a zeroed magic, or a file shrunk after the child opened it),
 *      and writes it under a fresh name (fz-<pid>-<trial>);
 *   2. forks a child that opens it (KVSHM_NOREAPER, a short lock timeout)
 *      and runs get, set, del, incr, has, a walk, the stats, verify,
 *      kvshm_repair when the library has it, verify and get again, checking
 *      every value returned: values carry their key, a sequence number and
 *      bytes derived from both, so a torn, foreign or never-written value is
 *      a failure ("wrong"), while an older value of the same key (damage can
 *      revive a freed copy) is only counted ("stale");
 *   3. waits with a deadline; a child still running then gets SIGABRT (ASan
 *      prints where it is stuck), then SIGKILL: a hang.
 *
 * Each trial has its own seed, base + trial number, and the damage depends
 * on it alone: `--seed S --trials 1` replays trial S and prints the child's
 * whole report (ASan's backtrace).  The summary counts trials, clean ones,
 * error returns by code, signals by number, hangs and wrong values, and
 * groups the failures into classes (signal and where), with one seed each.
 * Exit status 1 if any trial crashed, hung or returned a wrong value.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Declared in kvshm.h; the branch may not implement it yet. */
#pragma weak kvshm_repair

/* ASan and UBSan options when the environment gives none: every report
 * ends in abort() (the child dies by a signal), stacks are printed. */
__attribute__((visibility("default"))) const char *__asan_default_options(void);
__attribute__((visibility("default"))) const char *
__asan_default_options(void) {
  return "abort_on_error=1:detect_leaks=0:handle_segv=1:handle_sigbus=1:"
         "handle_abort=1:handle_sigfpe=1:handle_sigill=1";
}
__attribute__((visibility("default"))) const char *
__ubsan_default_options(void);
__attribute__((visibility("default"))) const char *
__ubsan_default_options(void) {
  return "print_stacktrace=1:halt_on_error=1";
}

/* ---- options ------------------------------------------------------------ */

static struct {
  uint64_t seed;
  long trials;
  uint64_t memory;
  uint32_t slot;
  uint32_t stripes;
  uint32_t lock_ms;
  unsigned models;  /* bit m: model m may be chosen */
  unsigned damages; /* models applied per trial: 1 to this many */
  bool verbose;
} opt = {0, 200, 1u << 20, 96, 4, 200, ~0u, 1, false};

/* ---- random numbers ----------------------------------------------------- */

static uint64_t mix64(uint64_t x) { /* splitmix64's finaliser */
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static uint64_t rnd(uint64_t *st) {
  *st += 0x9e3779b97f4a7c15ull;
  return mix64(*st);
}

static uint32_t below(uint64_t *st, uint64_t n) {
  return n ? (uint32_t)(rnd(st) % n) : 0;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt,
                                                                ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fuzz_segment: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(2);
}

/* ---- keys and self-checking values -------------------------------------- */

#define NSHORT 240
#define NLONG 16 /* keys longer than a head slot holds */
#define NCOUNT 8
#define NKEYS (NSHORT + NLONG + NCOUNT)
#define KEYBUF 512
#define VALMAX 1600
#define ABSENT (-1)
#define NONE (-2)
#define COUNTER_FLAGS 0xc0c0u
#define INCR_BY 1000

struct key {
  char k[KEYBUF];
  size_t klen;
  bool counter;
  int cur;      /* seq of the value it holds, or ABSENT */
  int alt;      /* another state a failed write may have left, or NONE */
  int maxseq;   /* highest seq ever written to it */
  int64_t cmax; /* counters: the highest value it may hold */
};

static struct key keys[NKEYS];

static void keys_make(void) {
  for (int i = 0; i < NKEYS; i++) {
    struct key *k = &keys[i];
    memset(k, 0, sizeof *k);
    if (i < NSHORT) {
      k->klen = (size_t)snprintf(k->k, sizeof k->k, "fz:%03d", i);
    } else if (i < NSHORT + NLONG) {
      int j = i - NSHORT;
      int n = snprintf(k->k, sizeof k->k, "fzlong:%02d:", j);
      k->klen = 60 + (size_t)(j * 37) % 340;
      for (size_t p = (size_t)n; p < k->klen; p++)
        k->k[p] = (char)('a' + mix64((uint64_t)j << 16 | p) % 26);
    } else {
      k->klen =
          (size_t)snprintf(k->k, sizeof k->k, "fzc:%d", i - NSHORT - NLONG);
      k->counter = true;
    }
    k->cur = ABSENT;
    k->alt = NONE;
    k->maxseq = -1;
  }
}

static int key_find(const void *key, size_t klen) {
  for (int i = 0; i < NKEYS; i++)
    if (keys[i].klen == klen && memcmp(keys[i].k, key, klen) == 0)
      return i;
  return -1;
}

#define VAL_MAGIC 0x31565a46u /* "FZV1" */
struct vhdr {
  uint32_t magic, id, seq, len;
};

/* Lengths from one slot to about twenty (slot 96: 56 bytes in a head). */
static size_t val_len(int id, int seq) {
  uint64_t r = mix64((uint64_t)id << 32 | (uint32_t)seq);
  switch (r % 4) {
  case 0:
  case 1:
    return 16 + r / 4 % 40;
  case 2:
    return 56 + r / 4 % 400;
  default:
    return 456 + r / 4 % (VALMAX - 456);
  }
}

static uint8_t val_byte(int id, int seq, size_t j) {
  uint64_t w = mix64(((uint64_t)id << 40) ^ ((uint64_t)seq << 20) ^ (j / 8));
  return (uint8_t)(w >> (j % 8 * 8));
}

static uint32_t val_flags(int id, int seq) {
  return (uint32_t)mix64(0xf1a95ull << 40 ^ (uint64_t)id << 20 ^ (uint64_t)seq);
}

static size_t val_make(uint8_t *buf, int id, int seq) {
  size_t len = val_len(id, seq);
  struct vhdr h = {VAL_MAGIC, (uint32_t)id, (uint32_t)seq, (uint32_t)len};
  memcpy(buf, &h, sizeof h);
  for (size_t j = sizeof h; j < len; j++)
    buf[j] = val_byte(id, seq, j);
  return len;
}

enum verdict { V_OK, V_STALE, V_WRONG };

/* Judge a value returned for key id: the write that made it, an older
 * write of the same key (stale), or something never written (wrong). */
static enum verdict judge(int id, const void *val, size_t vlen, uint32_t flags,
                          char *why, size_t n) {
  const struct key *k = &keys[id];
  const uint8_t *v = val;
  if (k->counter) {
    char text[32];
    int64_t x = 0;
    bool ok = vlen > 0 && vlen < sizeof text;
    if (ok) {
      memcpy(text, v, vlen);
      text[vlen] = '\0';
      char *end;
      errno = 0;
      x = strtoll(text, &end, 10);
      ok = !errno && *end == '\0' && text[0] != '+' && text[0] != ' ';
    }
    if (!ok) {
      snprintf(why, n, "counter %s holds %zu bytes that are not a number", k->k,
               vlen);
      return V_WRONG;
    }
    if (x < 0 || x > k->cmax || flags != COUNTER_FLAGS) {
      snprintf(why, n,
               "counter %s holds %" PRId64 " flags 0x%x; it never held more "
               "than %" PRId64 " (flags 0x%x)",
               k->k, x, flags, k->cmax, COUNTER_FLAGS);
      return V_WRONG;
    }
    return V_OK;
  }
  struct vhdr h;
  if (vlen < sizeof h) {
    snprintf(why, n, "key %d: value of %zu bytes, shorter than any written", id,
             vlen);
    return V_WRONG;
  }
  memcpy(&h, v, sizeof h);
  if (h.magic != VAL_MAGIC || h.id != (uint32_t)id || h.len != vlen ||
      (int)h.seq > k->maxseq || val_len(id, (int)h.seq) != vlen) {
    snprintf(why, n,
             "key %d: value of %zu bytes says magic 0x%x key %u seq %u len "
             "%u (max seq written %d): torn or foreign",
             id, vlen, h.magic, h.id, h.seq, h.len, k->maxseq);
    return V_WRONG;
  }
  for (size_t j = sizeof h; j < vlen; j++)
    if (v[j] != val_byte(id, (int)h.seq, j)) {
      snprintf(why, n, "key %d seq %u: byte %zu of %zu differs: torn value", id,
               h.seq, j, vlen);
      return V_WRONG;
    }
  if (flags != val_flags(id, (int)h.seq)) {
    snprintf(why, n, "key %d seq %u: flags 0x%x, written 0x%x", id, h.seq,
             flags, val_flags(id, (int)h.seq));
    return V_WRONG;
  }
  if ((int)h.seq == k->cur || (int)h.seq == k->alt)
    return V_OK;
  snprintf(why, n, "key %d: seq %u returned, holds %d (or %d)", id, h.seq,
           k->cur, k->alt);
  return V_STALE;
}

/* ---- geometry of the pristine image ------------------------------------- */

struct geo {
  size_t size;
  uint32_t slot, stripes, slots, buckets;
  uint64_t region_off, region_size;
  uint32_t fresh[KVSHM_MAX_STRIPES]; /* the used area of each stripe */
};

static struct geo G;
static uint8_t *pristine, *work;

static uint64_t stripe_off(uint32_t s) {
  return KVSHM_HDR_SIZE + (uint64_t)s * KVSHM_STRIPE_SIZE;
}
static uint64_t bucket_off(uint32_t s, uint32_t b) {
  return G.region_off + s * G.region_size + (uint64_t)b * 4;
}
static uint64_t slot_off(uint32_t s, uint32_t r) {
  return G.region_off + s * G.region_size + (uint64_t)G.buckets * 4 +
         (uint64_t)(r - 1) * G.slot;
}

/* Used slots and non-empty buckets of the image: where damage matters. */
struct place {
  uint32_t s, i;
  uint16_t kind;
};
static struct place *heads, *conts, *frees, *fulls;
static size_t nheads, nconts, nfrees, nfulls;

static void put32(uint8_t *img, uint64_t off, uint32_t v) {
  memcpy(img + off, &v, 4);
}
static uint32_t get32(const uint8_t *img, uint64_t off) {
  uint32_t v;
  memcpy(&v, img + off, 4);
  return v;
}
static void put16(uint8_t *img, uint64_t off, uint16_t v) {
  memcpy(img + off, &v, 2);
}
static uint16_t get16(const uint8_t *img, uint64_t off) {
  uint16_t v;
  memcpy(&v, img + off, 2);
  return v;
}
static void put64(uint8_t *img, uint64_t off, uint64_t v) {
  memcpy(img + off, &v, 8);
}

static void geo_read(void) {
  struct kvshm_hdr h;
  memcpy(&h, pristine, sizeof h);
  G.slot = h.slot_size;
  G.stripes = h.stripes;
  G.slots = h.slots;
  G.buckets = h.buckets;
  G.region_off = h.region_off;
  G.region_size = h.region_size;
  heads = calloc((size_t)G.stripes * G.slots, sizeof *heads);
  conts = calloc((size_t)G.stripes * G.slots, sizeof *conts);
  frees = calloc((size_t)G.stripes * G.slots, sizeof *frees);
  fulls = calloc((size_t)G.stripes * G.buckets, sizeof *fulls);
  if (!heads || !conts || !frees || !fulls)
    die("out of memory");
  for (uint32_t s = 0; s < G.stripes; s++) {
    struct kvshm_stripe st;
    memcpy(&st, pristine + stripe_off(s), sizeof st);
    G.fresh[s] = st.fresh;
    for (uint32_t r = 1; r <= G.slots; r++) {
      uint16_t k = get16(pristine, slot_off(s, r)) & KVSHM_KIND_MASK;
      if (k == KVSHM_KIND_HEAD)
        heads[nheads++] = (struct place){s, r, k};
      else if (k == KVSHM_KIND_CONT)
        conts[nconts++] = (struct place){s, r, k};
      else if (r <= st.fresh) /* on the free list (freed by an overwrite) */
        frees[nfrees++] = (struct place){s, r, k};
    }
    for (uint32_t b = 0; b < G.buckets; b++)
      if (get32(pristine, bucket_off(s, b)))
        fulls[nfulls++] = (struct place){s, b, 0};
  }
}

/* "stripe 2 slot 17 +8" for an offset of the image. */
static const char *where(uint64_t off, char *buf, size_t n) {
  if (off < KVSHM_HDR_SIZE) {
    snprintf(buf, n, "header +%" PRIu64, off);
  } else if (off < stripe_off(G.stripes)) {
    uint64_t s = (off - KVSHM_HDR_SIZE) / KVSHM_STRIPE_SIZE;
    snprintf(buf, n, "stripe %" PRIu64 " struct +%" PRIu64, s,
             off - stripe_off((uint32_t)s));
  } else if (off < G.region_off) {
    snprintf(buf, n, "padding +%" PRIu64, off);
  } else {
    uint64_t s = (off - G.region_off) / G.region_size;
    uint64_t in = (off - G.region_off) % G.region_size;
    if (s >= G.stripes)
      snprintf(buf, n, "tail +%" PRIu64, off);
    else if (in < (uint64_t)G.buckets * 4)
      snprintf(buf, n, "stripe %" PRIu64 " bucket %" PRIu64 " +%" PRIu64, s,
               in / 4, in % 4);
    else if (in - (uint64_t)G.buckets * 4 < (uint64_t)G.slots * G.slot)
      snprintf(buf, n, "stripe %" PRIu64 " slot %" PRIu64 " +%" PRIu64, s,
               (in - (uint64_t)G.buckets * 4) / G.slot + 1,
               (in - (uint64_t)G.buckets * 4) % G.slot);
    else
      snprintf(buf, n, "stripe %" PRIu64 " region tail", s);
  }
  return buf;
}

/* ---- the damage models --------------------------------------------------- */

struct trial {
  uint64_t seed;
  int model;
  char desc[256];
  bool shrink;        /* M_SHRINK: the driver shrinks the file to */
  uint64_t shrink_to; /* shrink_to bytes once the child opened it */
};

enum {
  M_BYTES,
  M_MUTEX_RUN,
  M_MUTEX_WORD,
  M_HEADER,
  M_STRIPE,
  M_BUCKET,
  M_STATE,
  M_LENGTH,
  M_CHAIN,
  M_MAGIC,
  M_SHRINK,
  M_COUNT
};
static const struct {
  const char *name;
  unsigned weight;
} models[M_COUNT] = {
    [M_BYTES] = {"bytes", 3},           [M_MUTEX_RUN] = {"mutex-run", 2},
    [M_MUTEX_WORD] = {"mutex-word", 4}, [M_HEADER] = {"header", 3},
    [M_STRIPE] = {"stripe", 2},         [M_BUCKET] = {"bucket", 2},
    [M_STATE] = {"state", 2},           [M_LENGTH] = {"length", 2},
    [M_CHAIN] = {"chain", 3},           [M_MAGIC] = {"magic", 1},
    [M_SHRINK] = {"shrink", 2},
};

__attribute__((format(printf, 2, 3))) static void
describe(struct trial *t, const char *fmt, ...) {
  size_t used = strlen(t->desc);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t->desc + used, sizeof t->desc - used, fmt, ap);
  va_end(ap);
}

/* A ref-like 32-bit value: in range, just out of it, or wild. */
static uint32_t odd_ref(uint64_t *r) {
  switch (below(r, 10)) {
  case 0:
    return 0;
  case 1:
    return G.slots;
  case 2:
    return G.slots + 1;
  case 3:
    return UINT32_MAX;
  case 4:
    return 0x80000000u;
  case 5:
    return (uint32_t)rnd(r);
  case 6:
    return nheads ? heads[below(r, nheads)].i : 1;
  case 7:
    return nconts ? conts[below(r, nconts)].i : 2;
  default:
    return 1 + below(r, G.slots);
  }
}

/* A count-like value: 0, 1, around the slot count, huge, random. */
static uint64_t odd_count(uint64_t *r, uint64_t orig) {
  switch (below(r, 9)) {
  case 0:
    return 0;
  case 1:
    return 1;
  case 2:
    return orig + 1;
  case 3:
    return orig - 1;
  case 4:
    return G.slots;
  case 5:
    return (uint64_t)G.slots + 1;
  case 6:
    return UINT32_MAX;
  case 7:
    return UINT64_MAX;
  default:
    return rnd(r);
  }
}

static void dmg_bytes(struct trial *t, uint64_t *r) {
  int runs = 1 + (int)below(r, 4);
  describe(t, "bytes:");
  for (int k = 0; k < runs; k++) {
    uint64_t off;
    switch (below(r, 6)) {
    case 0: /* checked header fields */
      off = below(r, offsetof(struct kvshm_hdr, hdr_check) + 8);
      break;
    case 1: /* run-time header fields and the reaper lock */
      off = offsetof(struct kvshm_hdr, reaper_pid) +
            below(r, sizeof(struct kvshm_hdr) -
                         offsetof(struct kvshm_hdr, reaper_pid));
      break;
    case 2: /* stripe structs */
      off = KVSHM_HDR_SIZE + below(r, (uint64_t)G.stripes * KVSHM_STRIPE_SIZE);
      break;
    case 3: /* bucket words in use */
      if (nfulls) {
        struct place p = fulls[below(r, nfulls)];
        off = bucket_off(p.s, p.i) + below(r, 4);
        break;
      }
      /* fall through */
    case 4: /* used slots */
      if (nheads) {
        struct place p = below(r, 3) || !nconts ? heads[below(r, nheads)]
                                                : conts[below(r, nconts)];
        off = slot_off(p.s, p.i) + below(r, G.slot);
        break;
      }
      /* fall through */
    default:
      off = below(r, G.size);
    }
    size_t len = 1 + below(r, 64);
    if (off + len > G.size)
      len = G.size - off;
    for (size_t j = 0; j < len; j++)
      work[off + j] = (uint8_t)rnd(r);
    char w[80];
    describe(t, " %zu at %s;", len, where(off, w, sizeof w));
  }
}

/* The mutex to damage: a stripe's, or (one time in six) the reaper's. */
static uint64_t pick_mutex(struct trial *t, uint64_t *r) {
  if (below(r, 6) == 0) {
    describe(t, "reaper_lock");
    return offsetof(struct kvshm_hdr, reaper_lock);
  }
  uint32_t s = below(r, G.stripes);
  describe(t, "stripe %u lock", s);
  return stripe_off(s);
}

static void dmg_mutex_run(struct trial *t, uint64_t *r) {
  describe(t, "mutex-run: ");
  uint64_t m = pick_mutex(t, r);
  uint32_t off = below(r, 40), len = 1 + below(r, 40 - off);
  for (uint32_t j = 0; j < len; j++)
    work[m + off + j] = (uint8_t)rnd(r);
  describe(t, " bytes %u..%u random", off, off + len - 1);
}

/* glibc's x86-64 struct __pthread_mutex_s. */
#define MX_LOCK 0
#define MX_COUNT 4
#define MX_OWNER 8
#define MX_NUSERS 12
#define MX_KIND 16
#define MX_SPINS 20
#define MX_LIST 24
#define FUTEX_WAITERS_ 0x80000000u
#define FUTEX_OWNER_DIED_ 0x40000000u

static uint32_t some_tid(uint64_t *r) {
  switch (below(r, 4)) {
  case 0:
    return (uint32_t)getpid(); /* a live process (the driver) */
  case 1:
    return 1; /* init: alive, not ours */
  case 2:
    return 0x3fffffffu; /* FUTEX_TID_MASK: no such thread */
  default:
    return 2 + below(r, 4194302); /* any pid_max */
  }
}

static void dmg_mutex_word(struct trial *t, uint64_t *r) {
  describe(t, "mutex-word: ");
  uint64_t m = pick_mutex(t, r);
  static const uint32_t kinds[] = {0,   1,   2,   3,   16,         17,
                                   18,  19,  32,  48,  64,         128,
                                   144, 145, 160, 176, 0x7fffffff, 0xffffffff};
  uint32_t tid = some_tid(r), v;
  switch (below(r, 9)) {
  case 0:
    v = below(r, 4) ? kinds[below(r, sizeof kinds / sizeof *kinds)]
                    : (uint32_t)rnd(r);
    put32(work, m + MX_KIND, v);
    describe(t, " kind=0x%x", v);
    break;
  case 1: {
    static const uint32_t bits[] = {0, FUTEX_OWNER_DIED_, FUTEX_WAITERS_,
                                    FUTEX_OWNER_DIED_ | FUTEX_WAITERS_};
    uint32_t b = bits[below(r, 4)];
    v = below(r, 5) ? tid | b : b;
    put32(work, m + MX_LOCK, v);
    describe(t, " lock=0x%x", v);
    break;
  }
  case 2: {
    static const uint32_t owners[] = {0x7fffffff, 0x7ffffffe, 0, 1};
    v = below(r, 5) ? owners[below(r, 4)] : tid;
    put32(work, m + MX_OWNER, v);
    describe(t, " owner=0x%x", v);
    break;
  }
  case 3: /* a holder that looks real: lock and owner agree */
    v = tid | (below(r, 2) ? FUTEX_OWNER_DIED_ : 0) |
        (below(r, 2) ? FUTEX_WAITERS_ : 0);
    put32(work, m + MX_LOCK, v);
    put32(work, m + MX_OWNER, tid);
    put32(work, m + MX_NUSERS, 1);
    describe(t, " held: lock=0x%x owner=%u nusers=1", v, tid);
    break;
  case 4: /* a dead holder's lock under another kind */
    v = kinds[below(r, sizeof kinds / sizeof *kinds)];
    put32(work, m + MX_KIND, v);
    put32(work, m + MX_LOCK, tid | FUTEX_OWNER_DIED_);
    put32(work, m + MX_OWNER, tid);
    describe(t, " kind=0x%x lock=0x%x owner=%u", v, tid | FUTEX_OWNER_DIED_,
             tid);
    break;
  case 5:
    v = below(r, 2) ? UINT32_MAX : (uint32_t)rnd(r);
    put32(work, m + MX_COUNT, v);
    describe(t, " count=0x%x", v);
    break;
  case 6:
    v = below(r, 2) ? UINT32_MAX : (uint32_t)rnd(r);
    put32(work, m + MX_NUSERS, v);
    describe(t, " nusers=0x%x", v);
    break;
  case 7:
    v = (uint32_t)rnd(r);
    put32(work, m + MX_SPINS, v);
    describe(t, " spins/elision=0x%x", v);
    break;
  default: {
    uint64_t p = below(r, 2) ? rnd(r) : 0x7f0000001000ull + below(r, 4096);
    uint32_t which = below(r, 2);
    put64(work, m + MX_LIST + 8 * which, p);
    describe(t, " list.%s=0x%" PRIx64, which ? "next" : "prev", p);
  }
  }
}

struct field {
  const char *name;
  size_t off, size;
};
/* A field of T: its name, offset and size. */
#define FIELD(T, f)                                                            \
  { #f, offsetof(T, f), sizeof(((T *)0)->f) }
typedef struct kvshm_hdr hdr_t;
typedef struct kvshm_stripe stripe_t;
static const struct field hdr_fields[] = {
    FIELD(hdr_t, format),
    FIELD(hdr_t, hdr_size),
    FIELD(hdr_t, memory_size),
    FIELD(hdr_t, slot_size),
    FIELD(hdr_t, stripes),
    FIELD(hdr_t, slots),
    FIELD(hdr_t, buckets),
    FIELD(hdr_t, region_off),
    FIELD(hdr_t, region_size),
    FIELD(hdr_t, default_ttl_ms),
    FIELD(hdr_t, created_ms),
    FIELD(hdr_t, lock_timeout_ms),
    FIELD(hdr_t, persistent),
    FIELD(hdr_t, flush_delay_ms),
    FIELD(hdr_t, creator_pid),
    FIELD(hdr_t, sqlite_path),
    FIELD(hdr_t, hdr_check),
    FIELD(hdr_t, abi),
    FIELD(hdr_t, reaper_pid),
    FIELD(hdr_t, destroyed),
    FIELD(hdr_t, reaper_heartbeat_ms),
    FIELD(hdr_t, reaper_starts),
    FIELD(hdr_t, reaper_spawn_ms),
    FIELD(hdr_t, clear_gen),
    FIELD(hdr_t, nonce),
    FIELD(hdr_t, pclear_gen),
    FIELD(hdr_t, shard_next),
    FIELD(hdr_t, shards),
};
static const struct field stripe_fields[] = {
    FIELD(stripe_t, seq),       FIELD(stripe_t, pclear_gen),
    FIELD(stripe_t, free_head), FIELD(stripe_t, fresh),
    FIELD(stripe_t, nfree),     FIELD(stripe_t, entries),
    FIELD(stripe_t, version),   FIELD(stripe_t, dirty),
    FIELD(stripe_t, bytes),     FIELD(stripe_t, hits),
    FIELD(stripe_t, sets),      FIELD(stripe_t, tombstones),
    FIELD(stripe_t, gen_evict), FIELD(stripe_t, dirty_since_ms),
    FIELD(stripe_t, pad),       FIELD(stripe_t, store_hits),
    FIELD(stripe_t, clear_gen), FIELD(stripe_t, pad2),
};

static void put_field(uint64_t off, size_t size, uint64_t v) {
  if (size == 2)
    put16(work, off, (uint16_t)v);
  else if (size == 4)
    put32(work, off, (uint32_t)v);
  else
    put64(work, off, v);
}

static uint64_t get_field(uint64_t off, size_t size) {
  uint64_t v = 0;
  memcpy(&v, work + off, size < 8 ? size : 8);
  return v;
}

static void dmg_header(struct trial *t, uint64_t *r) {
  const struct field *f =
      &hdr_fields[below(r, sizeof hdr_fields / sizeof *hdr_fields)];
  describe(t, "header: %s", f->name);
  if (strcmp(f->name, "sqlite_path") == 0) {
    char *p = (char *)work + f->off;
    switch (below(r, 3)) {
    case 0: /* unterminated */
      memset(p, 'A', f->size);
      describe(t, " unterminated");
      break;
    case 1: /* a file that cannot be made */
      snprintf(p, f->size, "/nonexistent-fz/%08x.db", (uint32_t)rnd(r));
      describe(t, "=\"%s\"", p);
      break;
    default:
      p[below(r, 64)] = (char)(1 + below(r, 255));
      describe(t, " one byte set");
    }
  } else {
    size_t sz = f->size > 8 ? 8 : f->size;
    uint64_t v = odd_count(r, get_field(f->off, sz));
    put_field(f->off, sz, v);
    describe(t, "=0x%" PRIx64, v);
  }
  /* Half the time the checksum is made to agree: a header that looks
   * written by a buggy creator, not scribbled on. */
  if (f->off < offsetof(struct kvshm_hdr, hdr_check) && below(r, 2)) {
    struct kvshm_hdr *h = (void *)work;
    h->hdr_check = kvshm__hdr_check(h);
    describe(t, ", checksum fixed");
  }
}

static void dmg_stripe(struct trial *t, uint64_t *r) {
  uint32_t s = below(r, G.stripes);
  const struct field *f =
      &stripe_fields[below(r, sizeof stripe_fields / sizeof *stripe_fields)];
  uint64_t off = stripe_off(s) + f->off;
  size_t sz = f->size > 8 ? 8 : f->size;
  uint64_t v = strcmp(f->name, "free_head") == 0
                   ? odd_ref(r)
                   : odd_count(r, get_field(off, sz));
  put_field(off, sz, v);
  describe(t, "stripe: %u %s=0x%" PRIx64, s, f->name, v);
}

static void dmg_bucket(struct trial *t, uint64_t *r) {
  struct place p;
  if (nfulls && below(r, 4))
    p = fulls[below(r, nfulls)];
  else
    p = (struct place){below(r, G.stripes), below(r, G.buckets), 0};
  uint32_t v = odd_ref(r);
  put32(work, bucket_off(p.s, p.i), v);
  describe(t, "bucket: stripe %u bucket %u=%u", p.s, p.i, v);
}

/* A slot of the image: mostly a used one. */
static struct place pick_slot(uint64_t *r, bool heads_only) {
  if (nheads && (heads_only || below(r, 2) || !nconts))
    return heads[below(r, nheads)];
  if (nconts && below(r, 3))
    return conts[below(r, nconts)];
  if (nfrees && below(r, 2))
    return frees[below(r, nfrees)];
  uint32_t s = below(r, G.stripes);
  uint32_t used = G.fresh[s] ? G.fresh[s] : G.slots;
  return (struct place){s, 1 + below(r, below(r, 3) ? used : G.slots), 0};
}

static void dmg_state(struct trial *t, uint64_t *r) {
  struct place p = pick_slot(r, false);
  uint64_t off = slot_off(p.s, p.i);
  uint16_t old = get16(work, off), v;
  static const uint16_t states[] = {
      KVSHM_KIND_FREE,
      KVSHM_KIND_HEAD,
      KVSHM_KIND_CONT,
      3,
      15,
      KVSHM_KIND_HEAD | KVSHM_ST_DIRTY,
      KVSHM_KIND_HEAD | KVSHM_ST_STORED,
      KVSHM_KIND_HEAD | KVSHM_ST_TOMB,
      KVSHM_KIND_HEAD | KVSHM_ST_TOMB | KVSHM_ST_DIRTY | KVSHM_ST_STORED,
      KVSHM_KIND_HEAD | 0x80,
      0x8001,
      KVSHM_KIND_CONT | KVSHM_ST_DIRTY,
  };
  switch (below(r, 3)) {
  case 0:
    v = (uint16_t)rnd(r);
    break;
  case 1:
    v = (uint16_t)(old ^ (1u << below(r, 16)));
    break;
  default:
    v = states[below(r, sizeof states / sizeof *states)];
  }
  put16(work, off, v);
  describe(t, "state: stripe %u slot %u 0x%x->0x%x", p.s, p.i, old, v);
}

static void dmg_length(struct trial *t, uint64_t *r) {
  struct place p = pick_slot(r, true);
  uint64_t off = slot_off(p.s, p.i);
  bool klen = below(r, 2);
  uint64_t o = off + (klen ? offsetof(struct kvshm_head, klen)
                           : offsetof(struct kvshm_head, vlen));
  uint32_t old = klen ? get16(work, o) : get32(work, o), v;
  uint32_t hd = (uint32_t)KVSHM_HEAD_DATA(G.slot);
  switch (below(r, 10)) {
  case 0:
    v = 0;
    break;
  case 1:
    v = old + 1;
    break;
  case 2:
    v = old - 1;
    break;
  case 3:
    v = KVSHM_KEY_MAX;
    break;
  case 4:
    v = KVSHM_KEY_MAX + 1;
    break;
  case 5:
    v = hd;
    break;
  case 6:
    v = hd + 1;
    break;
  case 7:
    v = klen ? 0xffff : 0xffffffff;
    break;
  case 8:
    v = old + (uint32_t)KVSHM_CONT_DATA(G.slot);
    break;
  default:
    v = (uint32_t)rnd(r);
  }
  if (klen)
    put16(work, o, (uint16_t)v);
  else
    put32(work, o, v);
  describe(t, "length: stripe %u slot %u %s %u->%u", p.s, p.i,
           klen ? "klen" : "vlen", old, klen ? v & 0xffff : v);
}

/* A link of a slot: a head's bucket chain (hnext) or continuation chain
 * (cnext), a continuation's owner or next, or a free slot's free-list link
 * (hnext, where a continuation keeps its owner). */
static void dmg_chain(struct trial *t, uint64_t *r) {
  struct place p = pick_slot(r, false);
  uint64_t off = slot_off(p.s, p.i);
  uint16_t kind = get16(work, off) & KVSHM_KIND_MASK;
  bool first = below(r, 2);
  const char *what, *name;
  size_t fo;
  if (kind == KVSHM_KIND_HEAD) {
    what = "head";
    name = first ? "hnext" : "cnext";
    fo = first ? offsetof(struct kvshm_head, hnext)
               : offsetof(struct kvshm_head, cnext);
  } else if (kind == KVSHM_KIND_FREE) {
    what = "free";
    name = "hnext";
    fo = offsetof(struct kvshm_head, hnext);
  } else {
    what = kind == KVSHM_KIND_CONT ? "cont" : "?";
    name = first ? "owner" : "cnext";
    fo = first ? offsetof(struct kvshm_cont, owner)
               : offsetof(struct kvshm_cont, cnext);
  }
  uint32_t old = get32(work, off + fo);
  uint32_t v = below(r, 5) ? odd_ref(r) : p.i; /* or itself: a cycle */
  put32(work, off + fo, v);
  describe(t, "chain: stripe %u slot %u (%s) %s %u->%u", p.s, p.i, what, name,
           old, v);
}

static int pick_model(uint64_t *r) {
  unsigned total = 0, w[M_COUNT];
  for (int m = 0; m < M_COUNT; m++)
    total += w[m] = opt.models >> m & 1 ? models[m].weight : 0;
  unsigned x = below(r, total);
  int m = 0;
  for (; x >= w[m]; m++)
    x -= w[m];
  return m;
}

static void damage_one(struct trial *t, int model, uint64_t *rs) {
  uint64_t r = *rs;
  switch (model) {
  case M_BYTES:
    dmg_bytes(t, &r);
    break;
  case M_MUTEX_RUN:
    dmg_mutex_run(t, &r);
    break;
  case M_MUTEX_WORD:
    dmg_mutex_word(t, &r);
    break;
  case M_HEADER:
    dmg_header(t, &r);
    break;
  case M_STRIPE:
    dmg_stripe(t, &r);
    break;
  case M_BUCKET:
    dmg_bucket(t, &r);
    break;
  case M_STATE:
    dmg_state(t, &r);
    break;
  case M_LENGTH:
    dmg_length(t, &r);
    break;
  case M_CHAIN:
    dmg_chain(t, &r);
    break;
  case M_MAGIC:
    memset(work, 0, 8);
    describe(t, "magic: zeroed");
    break;
  default: {
    static const uint64_t fixed[] = {0, 4096, KVSHM_HDR_SIZE};
    switch (below(&r, 3)) {
    case 0:
      t->shrink_to = fixed[below(&r, 3)];
      break;
    case 1: /* inside the stripes' regions, on a page */
      t->shrink_to =
          (G.region_off + below(&r, G.size - G.region_off)) & ~4095ull;
      break;
    default: /* anywhere */
      t->shrink_to = below(&r, G.size);
    }
    t->shrink = true;
    describe(t, "shrink: to %" PRIu64 " bytes after the open", t->shrink_to);
  }
  }
  *rs = r;
}

/* Damage the copy of the image: one model, or with --damages N up to N. */
static void damage(struct trial *t) {
  uint64_t r = mix64(t->seed ^ 0x64616d616765ull);
  t->desc[0] = '\0';
  t->shrink = false;
  t->shrink_to = 0;
  memcpy(work, pristine, G.size);
  int n = opt.damages > 1 ? 1 + (int)below(&r, opt.damages) : 1;
  for (int k = 0; k < n; k++) {
    int m = pick_model(&r);
    if (k == 0)
      t->model = m;
    else
      describe(t, " + ");
    damage_one(t, m, &r);
  }
}

/* ---- the report a child leaves in shared memory ------------------------- */

#define NCODES 320
static int code_index(int rc) {
  if (rc == 0)
    return 0;
  if (rc <= -30800 && rc > -30900)
    return 1 + (-30800 - rc);
  if (rc < 0 && rc > -200)
    return 101 + -rc;
  return NCODES - 1;
}
static int code_of(int i) {
  if (i == 0)
    return 0;
  if (i <= 100)
    return -30800 - (i - 1);
  if (i < NCODES - 1)
    return -(i - 101);
  return INT32_MIN;
}

struct report {
  char phase[96]; /* what the child was doing */
  uint32_t ops;   /* calls made */
  uint32_t codes[NCODES];
  uint32_t wrong, stale, lost, skipped;
  uint32_t verify_problems, verify_after, repaired, repair_rc_neg;
  int repair_ran;
  char wrong_why[256];
  uint32_t slowest_ms;
  char slowest[96];
};
static struct report *rep;

static uint64_t fill_t0; /* the clock during the fill */

static uint64_t still_clock(void *ctx) {
  return *(const uint64_t *)ctx;
}

/* ---- the child ----------------------------------------------------------- */

static kvshm *ckv;
static bool timed_out[KVSHM_MAX_STRIPES]; /* skip: it would wait again */
static uint64_t op_t0;

__attribute__((format(printf, 1, 2))) static void phase(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(rep->phase, sizeof rep->phase, fmt, ap);
  va_end(ap);
  op_t0 = now_ms();
}

static int done(int rc, int stripe) {
  uint32_t ms = (uint32_t)(now_ms() - op_t0);
  if (ms > rep->slowest_ms) {
    rep->slowest_ms = ms;
    snprintf(rep->slowest, sizeof rep->slowest, "%s", rep->phase);
  }
  rep->ops++;
  rep->codes[code_index(rc)]++;
  if (rc == KVSHM_ETIMEDOUT && stripe >= 0)
    timed_out[stripe] = true;
  return rc;
}

static void wrong(const char *what, const char *why) {
  if (!rep->wrong++)
    snprintf(rep->wrong_why, sizeof rep->wrong_why, "%s: %s", what, why);
}

static int stripe_of(int id) {
  return (int)kvshm_test_stripe_of(ckv, keys[id].k, keys[id].klen);
}

static bool skip(int id) {
  if (!timed_out[stripe_of(id)])
    return false;
  rep->skipped++;
  return true;
}

static void check_get(int id, const char *what) {
  struct key *k = &keys[id];
  if (skip(id))
    return;
  uint8_t buf[VALMAX + 64];
  size_t vlen = 0;
  uint32_t flags = 0;
  if (id % 5 == 0) { /* a size query first */
    phase("%s %s (size)", what, k->k);
    int rc = done(kvshm_get(ckv, k->k, k->klen, NULL, 0, &vlen, &flags),
                  stripe_of(id));
    if (rc == KVSHM_OK && vlen > VALMAX && !k->counter)
      wrong(what, "size query says a value longer than any written");
  }
  phase("%s %s", what, k->k);
  int rc = done(kvshm_get(ckv, k->k, k->klen, buf, sizeof buf, &vlen, &flags),
                stripe_of(id));
  if (rc == KVSHM_OK) {
    char why[256];
    enum verdict v = judge(id, buf, vlen, flags, why, sizeof why);
    if (v == V_WRONG)
      wrong(what, why);
    else if (v == V_STALE)
      rep->stale++;
  } else if (rc == KVSHM_ENOTFOUND && (k->cur >= 0 || k->counter)) {
    rep->lost++;
  }
}

static void do_sets(uint64_t *r) {
  for (int n = 0; n < 40; n++) {
    int id = (int)below(r, NSHORT + NLONG);
    struct key *k = &keys[id];
    if (skip(id))
      continue;
    int seq = k->maxseq + 1;
    uint8_t buf[VALMAX + 64];
    size_t len = val_make(buf, id, seq);
    unsigned opts = 0;
    switch (below(r, 8)) {
    case 0:
      opts = KVSHM_NX;
      break;
    case 1:
      opts = KVSHM_XX;
      break;
    case 2:
      opts = KVSHM_KEEPTTL;
      break;
    }
    int64_t ttl = below(r, 6) ? KVSHM_TTL_NEVER : 3600000;
    phase("set %s opts %u", k->k, opts);
    int rc = done(
        kvshm_set(ckv, k->k, k->klen, buf, len, val_flags(id, seq), ttl, opts),
        stripe_of(id));
    k->maxseq = seq;
    if (rc == KVSHM_OK) {
      k->cur = seq;
      k->alt = NONE;
    } else if (rc != KVSHM_EEXIST && rc != KVSHM_ENOTFOUND) {
      k->alt = seq; /* it may have happened */
    }
  }
}

static void do_dels(uint64_t *r) {
  for (int n = 0; n < 20; n++) {
    int id = (int)below(r, NSHORT + NLONG);
    struct key *k = &keys[id];
    if (skip(id))
      continue;
    phase("del %s", k->k);
    int rc = done(kvshm_del(ckv, k->k, k->klen), stripe_of(id));
    if (rc == KVSHM_OK || rc == KVSHM_ENOTFOUND) {
      k->alt = rc == KVSHM_OK ? NONE : k->cur;
      k->cur = ABSENT;
    } else {
      k->alt = ABSENT;
    }
  }
}

static void do_incrs(void) {
  for (int id = NSHORT + NLONG; id < NKEYS; id++) {
    struct key *k = &keys[id];
    if (skip(id))
      continue;
    int64_t res = 0;
    phase("incr %s", k->k);
    int rc = done(kvshm_incr(ckv, k->k, k->klen, INCR_BY, COUNTER_FLAGS, &res),
                  stripe_of(id));
    if (rc == KVSHM_OK && (res < INCR_BY || res > k->cmax + INCR_BY)) {
      char why[160];
      snprintf(why, sizeof why,
               "incr of %s returned %" PRId64 ", it never held more than "
               "%" PRId64,
               k->k, res, k->cmax);
      wrong("incr", why);
    }
    if (rc != KVSHM_ENOTINT)
      k->cmax += INCR_BY; /* done, or maybe done */
  }
}

static void do_has(void) {
  for (int id = 0; id < NKEYS; id += 3) {
    if (skip(id))
      continue;
    phase("has %s", keys[id].k);
    done(kvshm_has(ckv, keys[id].k, keys[id].klen), stripe_of(id));
    if (id % 2)
      continue;
    phase("in_memory %s", keys[id].k);
    done(kvshm_in_memory(ckv, keys[id].k, keys[id].klen), stripe_of(id));
  }
}

static void do_walk(void) {
  kvshm_iter *it = NULL;
  phase("iter_open");
  if (done(kvshm_iter_open(ckv, NULL, 0, 0, &it), -1))
    return;
  for (int n = 0; n < 100000; n++) {
    const void *k, *v;
    size_t kl, vl;
    uint32_t flags;
    uint64_t exp;
    phase("iter_next #%d", n);
    int rc = kvshm_iter_next(it, &k, &kl, &v, &vl, &flags, &exp);
    if (rc) {
      done(rc, -1);
      break;
    }
    int id = key_find(k, kl);
    char why[256];
    if (id < 0) {
      snprintf(why, sizeof why, "a key of %zu bytes never written", kl);
      wrong("walk", why);
      continue;
    }
    enum verdict vd = judge(id, v, vl, flags, why, sizeof why);
    if (vd == V_WRONG)
      wrong("walk", why);
    else if (vd == V_STALE)
      rep->stale++;
  }
  phase("iter_close");
  kvshm_iter_close(it);
}

static void line_sink(void *ctx, const char *msg) {
  (void)msg;
  (*(uint32_t *)ctx)++;
}

static void do_stats(void) {
  kvshm_stats st;
  phase("stats_get");
  done(kvshm_stats_get(ckv, &st), -1);
  for (uint32_t s = 0; s < G.stripes && s < KVSHM_MAX_STRIPES; s++) {
    if (timed_out[s])
      continue;
    kvshm_stripe_stats ss;
    phase("stripe_stats_get %u", s);
    done(kvshm_stripe_stats_get(ckv, s, &ss), (int)s);
  }
  uint32_t lines = 0;
  phase("header_dump");
  done(kvshm_header_dump(ckv, line_sink, &lines), -1);
  phase("flush");
  done(kvshm_flush(ckv), -1);
}

static int do_verify(void) {
  uint32_t lines = 0;
  phase("verify");
  int rc = kvshm_verify(ckv, line_sink, &lines);
  done(rc > 0 ? 0 : rc, -1);
  if (rc > 0 && !rep->repair_ran)
    rep->verify_problems += (uint32_t)rc;
  return rc;
}

static void child_run(const struct trial *t, const char *name, int opened_fd,
                      int go_fd) {
  uint64_t r = mix64(t->seed ^ 0x6368696c64ull);
  kvshm_config c;
  kvshm_config_init(&c);
  c.lock_timeout_ms = opt.lock_ms;
  phase("open");
  int rc =
      done(kvshm_open(name, &c, KVSHM_NOCREATE | KVSHM_NOREAPER, &ckv), -1);
  if (t->shrink) { /* the driver shrinks the file now */
    char b = 'o';
    if (write(opened_fd, &b, 1) != 1 || read(go_fd, &b, 1) != 1)
      _exit(4);
  }
  if (rc)
    _exit(0);
  /* The same seed, the same run: a clock that stands still a second after
   * the fill (the 1 ms TTLs have passed, the 1 h ones not), and an LFU and
   * eviction sampler drawn from the seed, not from the pid. */
  static uint64_t later;
  later = fill_t0 + 1000;
  kvshm_test_set_clock(ckv, still_clock, &later);
  ckv->rng = mix64(t->seed ^ 0x726e67ull) | 1;
  /* What meets the damage first: verify, a walk, or the keyed calls (which
   * repair what they trip over, so verify and walks seldom see it raw). */
  switch (below(&r, 3)) {
  case 0:
    do_verify();
    break;
  case 1:
    do_walk();
    break;
  }
  for (int id = 0; id < NKEYS; id++)
    check_get(id, "get");
  do_has();
  do_sets(&r);
  do_dels(&r);
  do_incrs();
  for (int id = 0; id < NKEYS; id += 7)
    check_get(id, "get after writes");
  do_walk();
  do_stats();
  do_verify();
  if (kvshm_repair) {
    uint32_t lines = 0;
    unsigned flags = below(&r, 2) ? KVSHM_REPAIR_FORCE : 0;
    phase("repair flags %u", flags);
    int n = kvshm_repair(ckv, flags, line_sink, &lines);
    done(n >= 0 ? 0 : n, -1);
    rep->repair_ran = 1;
    if (n >= 0) {
      rep->repaired = (uint32_t)n;
      memset(timed_out, 0, sizeof timed_out);
      int v = do_verify();
      if (v > 0)
        rep->verify_after = (uint32_t)v;
    }
  }
  for (int id = 0; id < NKEYS; id++)
    check_get(id, "get again");
  do_walk();
  if (below(&r, 8) == 0) {
    phase("clear");
    done(kvshm_clear(ckv), -1);
    do_verify();
  }
  phase("close");
  kvshm_close(ckv);
  _exit(rep->wrong ? 3 : 0);
}

/* ---- the pristine image -------------------------------------------------- */

static char base_name[64], trial_name[64];
static volatile sig_atomic_t stop;

static void on_stop(int sig) {
  (void)sig;
  stop = 1;
}

static void fill(kvshm *kv) {
  uint8_t buf[VALMAX + 64];
  for (int id = 0; id < NSHORT + NLONG; id++) {
    struct key *k = &keys[id];
    int64_t ttl = id % 10 == 3 ? 1 : id % 7 == 5 ? 3600000 : KVSHM_TTL_NEVER;
    size_t len = val_make(buf, id, 0);
    if (kvshm_set(kv, k->k, k->klen, buf, len, val_flags(id, 0), ttl, 0))
      die("fill: set %s: %s", k->k, kvshm_errdetail());
    k->maxseq = 0;
    k->cur = ttl == 1 ? ABSENT : 0; /* expired by the first trial */
    k->alt = ttl == 1 ? 0 : NONE;
  }
  for (int id = 0; id < NSHORT + NLONG; id += 4) { /* old copies stay */
    struct key *k = &keys[id + 1 < NSHORT + NLONG ? id + 1 : id];
    int kid = (int)(k - keys);
    size_t len = val_make(buf, kid, 1);
    if (kvshm_set(kv, k->k, k->klen, buf, len, val_flags(kid, 1), 0, 0))
      die("fill: set %s: %s", k->k, kvshm_errdetail());
    k->maxseq = 1;
    k->cur = 1;
    k->alt = NONE;
  }
  for (int id = 2; id < NSHORT + NLONG; id += 9) {
    struct key *k = &keys[id];
    int rc = kvshm_del(kv, k->k, k->klen);
    if (rc && rc != KVSHM_ENOTFOUND)
      die("fill: del %s: %s", k->k, kvshm_err_name(rc));
    k->cur = ABSENT;
    k->alt = NONE;
  }
  for (int id = NSHORT + NLONG; id < NKEYS; id++) {
    struct key *k = &keys[id];
    for (int n = 0; n <= id - NSHORT - NLONG; n++) {
      int64_t res;
      if (kvshm_incr(kv, k->k, k->klen, 1, COUNTER_FLAGS, &res))
        die("fill: incr %s: %s", k->k, kvshm_errdetail());
      k->cmax = res;
    }
  }
}

static void pristine_make(void) {
  snprintf(base_name, sizeof base_name, "fz-%d-base", (int)getpid());
  kvshm_config c;
  kvshm_config_init(&c);
  c.memory_size = opt.memory;
  c.slot_size = opt.slot;
  c.stripes = opt.stripes;
  kvshm *kv;
  kvshm_unlink(base_name);
  int rc = kvshm_open(base_name, &c, KVSHM_NOREAPER, &kv);
  if (rc)
    die("cannot create %s: %s", base_name, kvshm_errdetail());
  /* The clock stands still during the fill, so that no TTL passes half-way
   * (an expired entry freed before its overwrite changes where slots go):
   * every run makes the same image, and a seed the same damage.  It stands
   * 10 s into a minute, so that the LFU's minutes do not tick either. */
  fill_t0 = kvshm__wall_ms() / 60000 * 60000 + 10000;
  kvshm_test_set_clock(kv, still_clock, &fill_t0);
  fill(kv);
  int v = kvshm_verify(kv, NULL, NULL);
  if (v)
    die("the pristine cache fails verify (%d)", v);
  kvshm_close(kv);
  char path[128];
  snprintf(path, sizeof path, "/dev/shm/kvshm.%s", base_name);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat sb;
  if (fd < 0 || fstat(fd, &sb))
    die("cannot read %s: %s", path, strerror(errno));
  G.size = (size_t)sb.st_size;
  pristine = malloc(G.size);
  work = malloc(G.size);
  if (!pristine || !work)
    die("out of memory");
  if (pread(fd, pristine, G.size, 0) != (ssize_t)G.size)
    die("short read of %s", path);
  close(fd);
  kvshm_unlink(base_name);
  geo_read();
}

/* ---- running one trial --------------------------------------------------- */

enum outcome { O_CLEAN, O_ERRORS, O_SIGNAL, O_EXIT, O_HANG, O_WRONG };

struct result {
  enum outcome out;
  int sig;       /* the signal behind it (ASan's report names it) */
  char cls[256]; /* failure class: signal and where */
  char at[256];  /* first libshm frame, file:line */
  char phase[96];
};

/* The child's stderr, for the ASan report. */
static int errfd = -1;
static char errbuf[65536];

static const char *sig_name(int sig) {
  switch (sig) {
  case SIGSEGV:
    return "SIGSEGV";
  case SIGBUS:
    return "SIGBUS";
  case SIGABRT:
    return "SIGABRT";
  case SIGFPE:
    return "SIGFPE";
  case SIGILL:
    return "SIGILL";
  case SIGKILL:
    return "SIGKILL";
  case SIGTRAP:
    return "SIGTRAP";
  default:
    return "signal";
  }
}

/* The function and file:line of a "    #N 0x... in fn file:line" frame. */
static bool frame_parse(const char *line, char *fn, size_t fnn, char *loc,
                        size_t locn) {
  const char *in = strstr(line, " in ");
  if (!in || line[strspn(line, " ")] != '#')
    return false;
  in += 4;
  size_t n = strcspn(in, " \n");
  snprintf(fn, fnn, "%.*s", (int)n, in);
  const char *l = in + n;
  l += strspn(l, " ");
  size_t m = strcspn(l, "\n");
  const char *slash = memrchr(l, '/', m);
  if (slash) {
    /* keep "libshm/chain.c:123" */
    const char *dir = slash;
    while (dir > l && dir[-1] != '/')
      dir--;
    m -= (size_t)(dir - l);
    l = dir;
  }
  snprintf(loc, locn, "%.*s", (int)m, l);
  return true;
}

/* A frame of the machinery that reports and aborts, not of the failure. */
static bool abort_frame(const char *fn) {
  static const char *const skip[] = {
      "__sanitizer",  "__interceptor",     "raise",
      "abort",        "__pthread_kill",    "__GI_raise",
      "__GI_abort",   "__libc_message",    "__libc_assert",
      "__assert",     "__GI___assert",     "__GI___libc_message",
      "__libc_fatal", "__GI___libc_fatal", "__fortify_fail"};
  for (size_t i = 0; i < sizeof skip / sizeof *skip; i++)
    if (!strncmp(fn, skip[i], strlen(skip[i])))
      return true;
  return false;
}

/* Read the report: which signal, where (top frame, first libshm frame). */
static void classify(struct result *res, int status, bool hang) {
  ssize_t n = pread(errfd, errbuf, sizeof errbuf - 1, 0);
  errbuf[n > 0 ? n : 0] = '\0';
  int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  char kind[64] = "";
  const char *e = strstr(errbuf, "ERROR: AddressSanitizer: ");
  if (e) {
    e += strlen("ERROR: AddressSanitizer: ");
    snprintf(kind, sizeof kind, "%.*s", (int)strcspn(e, " \n"), e);
    if (!strcmp(kind, "SEGV"))
      sig = SIGSEGV;
    else if (!strcmp(kind, "BUS"))
      sig = SIGBUS;
    else if (!strcmp(kind, "ABRT"))
      sig = SIGABRT;
    else if (!strcmp(kind, "FPE"))
      sig = SIGFPE;
    else if (!strcmp(kind, "ILL"))
      sig = SIGILL;
  }
  const char *ub = strstr(errbuf, "runtime error: ");
  if (ub)
    snprintf(kind, sizeof kind, "UBSan");
  const char *glibc = strstr(errbuf, "Fatal glibc error");
  if (!glibc)
    glibc = strstr(errbuf, "Assertion `");
  if (!glibc)
    glibc = strstr(errbuf, "The futex facility returned");
  char top[64] = "?", lib[64] = "?", loc[160] = "", fn[64], l[160];
  bool have_top = false, have_lib = false;
  for (char *p = errbuf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
    if (!frame_parse(p, fn, sizeof fn, l, sizeof l))
      continue;
    if (!have_top && !abort_frame(fn)) {
      snprintf(top, sizeof top, "%s", fn);
      have_top = true;
    }
    if (!have_lib && strstr(l, "libshm/") && !strstr(l, ".h:")) {
      snprintf(lib, sizeof lib, "%s", fn);
      snprintf(loc, sizeof loc, "%s", l);
      have_lib = true;
    }
    if (have_lib)
      break;
  }
  res->sig = sig;
  snprintf(res->at, sizeof res->at, "%s", loc);
  char what[32];
  if (hang)
    snprintf(what, sizeof what, "hang");
  else if (sig)
    snprintf(what, sizeof what, "%s", sig_name(sig));
  else
    snprintf(what, sizeof what, "exit %d", WEXITSTATUS(status));
  char extra[80] = "";
  if (kind[0] && strcmp(kind, "SEGV") && strcmp(kind, "BUS") &&
      strcmp(kind, "ABRT"))
    snprintf(extra, sizeof extra, " (%s)", kind);
  else if (glibc && !hang)
    snprintf(extra, sizeof extra, " (glibc assertion)");
  if (!strcmp(top, lib))
    snprintf(res->cls, sizeof res->cls, "%s%s in %s", what, extra, top);
  else
    snprintf(res->cls, sizeof res->cls, "%s%s in %s <- %s", what, extra, top,
             lib);
}

static void trial_run(struct trial *t, long i, struct result *res) {
  memset(res, 0, sizeof *res);
  damage(t);
  snprintf(trial_name, sizeof trial_name, "fz-%d-%ld", (int)getpid(), i);
  char path[128];
  snprintf(path, sizeof path, "/dev/shm/kvshm.%s", trial_name);
  unlink(path);
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 || write(fd, work, G.size) != (ssize_t)G.size)
    die("cannot write %s: %s", path, strerror(errno));
  memset(rep, 0, sizeof *rep);
  if (ftruncate(errfd, 0) || lseek(errfd, 0, SEEK_SET))
    die("cannot reset the report file");
  int opened[2], go[2];
  if (pipe2(opened, O_CLOEXEC) || pipe2(go, O_CLOEXEC))
    die("pipe: %s", strerror(errno));
  pid_t parent = getpid();
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0)
    die("fork: %s", strerror(errno));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(5);
    close(fd);
    close(opened[0]);
    close(go[1]);
    dup2(errfd, 2);
    child_run(t, trial_name, opened[1], go[0]);
  }
  close(opened[1]);
  close(go[0]);
  /* Keys touched: each stripe may make a walk, the stats, verify, repair
   * and every keyed phase wait once; then a margin for ASan. */
  uint64_t deadline =
      now_ms() + (uint64_t)opt.lock_ms * (2 * G.stripes + 10) + 5000;
  if (t->shrink) {
    struct pollfd p = {opened[0], POLLIN, 0};
    char b;
    if (poll(&p, 1, (int)(deadline - now_ms())) == 1 &&
        read(opened[0], &b, 1) == 1) {
      if (ftruncate(fd, (off_t)t->shrink_to))
        die("ftruncate: %s", strerror(errno));
      if (write(go[1], &b, 1) != 1)
        die("cannot wake the child");
    }
  }
  close(fd);
  int status = 0;
  bool hang = false;
  for (unsigned nap = 1;;) {
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid)
      break;
    if (w < 0 && errno != EINTR)
      die("waitpid: %s", strerror(errno));
    if (stop) {
      kill(pid, SIGKILL); /* interrupted: not a finding */
    } else if (!hang && now_ms() > deadline) {
      hang = true;
      kill(pid, SIGABRT); /* ASan prints where it is stuck */
      deadline = now_ms() + 3000;
    } else if (hang && now_ms() > deadline) {
      kill(pid, SIGKILL);
    }
    sleep_ms(nap);
    nap = nap < 8 ? nap * 2 : 8;
  }
  close(opened[0]);
  close(go[1]);
  shm_unlink(path + strlen("/dev/shm"));
  snprintf(res->phase, sizeof res->phase, "%s", rep->phase);
  if (hang) {
    res->out = O_HANG;
    classify(res, status, true);
  } else if (WIFSIGNALED(status)) {
    res->out = O_SIGNAL;
    classify(res, status, false);
  } else if (WEXITSTATUS(status) == 3) {
    res->out = O_WRONG;
    res->phase[0] = '\0'; /* wrong_why names the call */
    snprintf(res->at, sizeof res->at, "%s", rep->wrong_why);
    snprintf(res->cls, sizeof res->cls, "wrong value (%.*s)",
             (int)strcspn(rep->wrong_why, ":"), rep->wrong_why);
  } else if (WEXITSTATUS(status) != 0) {
    res->out = O_EXIT;
    classify(res, status, false);
  } else {
    bool errs = false;
    for (int c = 1; c < NCODES; c++)
      if (rep->codes[c] && code_of(c) != KVSHM_ENOTFOUND &&
          code_of(c) != KVSHM_EEXIST)
        errs = true;
    res->out = errs ? O_ERRORS : O_CLEAN;
  }
}

/* ---- the run ---------------------------------------------------------------
 */

struct cls {
  char name[256];
  long count;
  uint64_t seed;
  char desc[256], at[256], phase[96];
};
#define MAXCLS 64
static struct cls classes[MAXCLS];
static int nclasses;

static void class_add(const struct result *res, const struct trial *t) {
  int c;
  for (c = 0; c < nclasses; c++)
    if (!strcmp(classes[c].name, res->cls))
      break;
  if (c == nclasses) {
    if (nclasses == MAXCLS)
      c = MAXCLS - 1; /* lumped into the last one */
    else {
      nclasses++;
      snprintf(classes[c].name, sizeof classes[c].name, "%s", res->cls);
      classes[c].seed = t->seed;
      snprintf(classes[c].desc, sizeof classes[c].desc, "%s", t->desc);
      snprintf(classes[c].at, sizeof classes[c].at, "%s", res->at);
      snprintf(classes[c].phase, sizeof classes[c].phase, "%s", res->phase);
    }
  }
  classes[c].count++;
}

static int cls_cmp(const void *a, const void *b) {
  long d = ((const struct cls *)b)->count - ((const struct cls *)a)->count;
  return d > 0 ? 1 : d < 0 ? -1 : 0;
}

static char command[512];

static void command_make(const char *argv0, uint64_t seed, long trials) {
  int n = snprintf(command, sizeof command,
                   "%s --seed %" PRIu64 " --trials %ld", argv0, seed, trials);
  if (opt.memory != 1u << 20)
    n += snprintf(command + n, sizeof command - (size_t)n, " --memory %" PRIu64,
                  opt.memory);
  if (opt.slot != 96)
    n += snprintf(command + n, sizeof command - (size_t)n, " --slot %u",
                  opt.slot);
  if (opt.stripes != 4)
    n += snprintf(command + n, sizeof command - (size_t)n, " --stripes %u",
                  opt.stripes);
  if (opt.lock_ms != 200)
    n += snprintf(command + n, sizeof command - (size_t)n, " --lock-timeout %u",
                  opt.lock_ms);
  if (opt.damages != 1)
    n += snprintf(command + n, sizeof command - (size_t)n, " --damages %u",
                  opt.damages);
  if (opt.models != ~0u) {
    n += snprintf(command + n, sizeof command - (size_t)n, " --models ");
    for (int m = 0; m < M_COUNT; m++)
      if (opt.models >> m & 1)
        n += snprintf(command + n, sizeof command - (size_t)n, "%s,",
                      models[m].name);
    command[n - 1] = '\0';
  }
}

static void usage(void) {
  fprintf(stderr,
          "usage: fuzz_segment [--seed S] [--trials N] [--models [-]A,B,..] "
          "[--damages N]\n"
          "                    [--memory BYTES] [--slot BYTES] [--stripes N] "
          "[--lock-timeout MS]\n"
          "                    [--verbose]\n"
          "Trial k uses seed S+k: --seed S+k --trials 1 replays it and "
          "prints the child's\nreport.  --models picks the damage models "
          "(-A,B: all but those);\n--damages N applies 1 to N of them per "
          "trial (default 1).  Models:");
  for (int m = 0; m < M_COUNT; m++)
    fprintf(stderr, " %s", models[m].name);
  fprintf(stderr, "\n");
  exit(2);
}

/* "a,b" selects models a and b; "-a,b" all but a and b. */
static unsigned models_arg(const char *arg) {
  bool but = *arg == '-';
  unsigned set = 0;
  for (const char *p = arg + but; *p;) {
    size_t n = strcspn(p, ",");
    int m = 0;
    while (m < M_COUNT &&
           (strlen(models[m].name) != n || strncmp(models[m].name, p, n)))
      m++;
    if (m == M_COUNT)
      usage();
    set |= 1u << m;
    p += n + (p[n] == ',');
  }
  set = but ? ~set & ((1u << M_COUNT) - 1) : set;
  if (!set)
    usage();
  return set;
}

static uint64_t num_arg(int argc, char **argv, int *i) {
  if (*i + 1 >= argc)
    usage();
  char *end;
  errno = 0;
  uint64_t v = strtoull(argv[++*i], &end, 0);
  if (errno || *end)
    usage();
  return v;
}

int main(int argc, char **argv) {
  opt.seed =
      mix64((uint64_t)time(NULL) ^ (uint64_t)getpid() << 32) % 1000000000u;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--seed"))
      opt.seed = num_arg(argc, argv, &i);
    else if (!strcmp(argv[i], "--trials"))
      opt.trials = (long)num_arg(argc, argv, &i);
    else if (!strcmp(argv[i], "--memory"))
      opt.memory = num_arg(argc, argv, &i);
    else if (!strcmp(argv[i], "--slot"))
      opt.slot = (uint32_t)num_arg(argc, argv, &i);
    else if (!strcmp(argv[i], "--stripes"))
      opt.stripes = (uint32_t)num_arg(argc, argv, &i);
    else if (!strcmp(argv[i], "--lock-timeout"))
      opt.lock_ms = (uint32_t)num_arg(argc, argv, &i);
    else if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v"))
      opt.verbose = true;
    else if (!strcmp(argv[i], "--damages"))
      opt.damages = (uint32_t)num_arg(argc, argv, &i);
    else if (!strcmp(argv[i], "--models") && i + 1 < argc)
      opt.models = models_arg(argv[++i]);
    else
      usage();
  }
  if (opt.trials < 1 || opt.lock_ms == 0 || opt.damages < 1)
    usage();
  if (opt.trials == 1)
    opt.verbose = true;
  setvbuf(stdout, NULL, _IOLBF, 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  rep = mmap(NULL, sizeof *rep, PROT_READ | PROT_WRITE,
             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  errfd = memfd_create("fz-child-stderr", MFD_CLOEXEC);
  if (rep == MAP_FAILED || errfd < 0)
    die("cannot set up: %s", strerror(errno));
  keys_make();
  pristine_make();
  command_make(argv[0], opt.seed, opt.trials);
  printf("fuzz_segment: %s\n", command);
  printf("fuzz_segment: image %zu bytes, %u stripes of %u slots of %u bytes, "
         "%zu heads, %zu continuations, %zu freed; lock timeout %u ms; "
         "kvshm_repair %s\n",
         G.size, G.stripes, G.slots, G.slot, nheads, nconts, nfrees,
         opt.lock_ms, kvshm_repair ? "linked" : "absent (skipped)");

  long count[O_WRONG + 1] = {0}, trials = 0, per_model[M_COUNT][2] = {{0}};
  long sigs[65] = {0}, stale = 0, lost = 0, vprob = 0, vafter = 0;
  long code_ops[NCODES] = {0}, code_trials[NCODES] = {0}, slow = 0;
  uint32_t slowest = 0;
  char slowest_op[96] = "";
  uint64_t t0 = now_ms();
  for (long i = 0; i < opt.trials && !stop; i++) {
    struct trial t = {.seed = opt.seed + (uint64_t)i};
    struct result res;
    trial_run(&t, i, &res);
    if (stop && res.out != O_CLEAN && res.out != O_ERRORS)
      break; /* interrupted: not a finding */
    trials++;
    count[res.out]++;
    per_model[t.model][0]++;
    for (int c = 0; c < NCODES; c++) {
      code_ops[c] += rep->codes[c];
      code_trials[c] += rep->codes[c] != 0;
    }
    stale += rep->stale;
    lost += rep->lost;
    vprob += rep->verify_problems != 0;
    vafter += rep->verify_after != 0;
    if (rep->slowest_ms > opt.lock_ms + 1000)
      slow++;
    if (rep->slowest_ms > slowest) {
      slowest = rep->slowest_ms;
      snprintf(slowest_op, sizeof slowest_op, "%s", rep->slowest);
    }
    bool fail = res.out >= O_SIGNAL;
    if (!fail) {
      if (opt.verbose)
        printf("trial seed %" PRIu64 ": %s: %s; %u ops\n", t.seed,
               res.out == O_CLEAN ? "clean" : "errors", t.desc, rep->ops);
      continue;
    }
    per_model[t.model][1]++;
    if (res.out == O_SIGNAL || res.out == O_EXIT)
      sigs[res.sig > 0 && res.sig < 65 ? res.sig : 0]++;
    class_add(&res, &t);
    printf("FAIL seed %" PRIu64 ": %s: %s", t.seed, res.cls, t.desc);
    if (res.out == O_WRONG)
      printf(" [%s]\n", rep->wrong_why);
    else
      printf(" [in %s%s%s]\n", res.phase, res.at[0] ? ", " : "", res.at);
    if (opt.verbose)
      printf("---- child stderr ----\n%s---- end ----\n", errbuf);
  }
  uint64_t secs = (now_ms() - t0 + 500) / 1000;

  command_make(argv[0], opt.seed, opt.trials);
  printf("\nfuzz_segment: %ld trials in %" PRIu64 " s: %ld clean, %ld with "
         "error returns, %ld signals, %ld other exits, %ld hangs, %ld wrong "
         "values\n",
         trials, secs, count[O_CLEAN], count[O_ERRORS], count[O_SIGNAL],
         count[O_EXIT], count[O_HANG], count[O_WRONG]);
  printf("  error returns (code: trials/calls):");
  for (int c = 1; c < NCODES; c++)
    if (code_ops[c])
      printf(" %s %ld/%ld", kvshm_err_name(code_of(c)), code_trials[c],
             code_ops[c]);
  printf("\n  signals:");
  for (int s = 0; s < 65; s++)
    if (sigs[s])
      printf(" %s (%d) %ld", s ? sig_name(s) : "unknown", s, sigs[s]);
  printf("\n  by model (trials/failures):");
  for (int m = 0; m < M_COUNT; m++)
    if (per_model[m][0])
      printf(" %s %ld/%ld", models[m].name, per_model[m][0], per_model[m][1]);
  printf("\n  stale values %ld, lost keys %ld, trials verify flagged %ld, "
         "still flagged after repair %ld\n",
         stale, lost, vprob, vafter);
  printf("  slowest call %u ms (%s); trials with a call over %u ms: %ld\n",
         slowest, slowest_op, opt.lock_ms + 1000, slow);
  if (nclasses) {
    qsort(classes, (size_t)nclasses, sizeof *classes, cls_cmp);
    printf("  failure classes (count, one seed, its damage, where):\n");
    for (int c = 0; c < nclasses; c++) {
      struct cls *k = &classes[c];
      printf("    %5ld  %s\n           seed %" PRIu64 ": %s [%s%s%s%s]\n",
             k->count, k->name, k->seed, k->desc, k->phase[0] ? "in " : "",
             k->phase, k->phase[0] && k->at[0] ? ", " : "", k->at);
    }
    command_make(argv[0], 0, 1);
    char *sp = strstr(command, " --seed 0");
    printf("  replay one (its ASan report): %.*s --seed SEED%s\n",
           (int)(sp - command), command, sp + strlen(" --seed 0"));
  }
  command_make(argv[0], opt.seed, opt.trials);
  printf("fuzz_segment: %s: %s\n",
         count[O_SIGNAL] + count[O_EXIT] + count[O_HANG] + count[O_WRONG]
             ? "FAILED"
             : "passed",
         command);
  return count[O_SIGNAL] + count[O_EXIT] + count[O_HANG] + count[O_WRONG] ? 1
                                                                          : 0;
}
