/*
 * internal.h - the process-local handle and the functions libshm's files
 * share.  Nothing here is part of the public API.
 */
#ifndef KVSHM_INTERNAL_H
#define KVSHM_INTERNAL_H

#include "kvshm.h"
#include "kvshm_test.h"
#include "layout.h"

#include <assert.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

struct kvshm_store; /* the SQLite tier, store.c */
struct stat;

/* Whose files a handle accepts besides its euid's (trust.c). */
struct kvshm__trust {
  uint32_t flags; /* KVSHM_TRUST_UID | KVSHM_TRUST_GID */
  uint32_t uid;
  uint32_t gid;
};

/* A process-local handle: one mapping of one segment. */
struct kvshm {
  unsigned char *base;          /* the mapping */
  size_t size;                  /* its length */
  struct kvshm_hdr *hdr;        /* == base */
  struct kvshm_stripe *stripes; /* base + KVSHM_HDR_SIZE */
  uint32_t nstripes;            /* copies of header geometry, validated */
  uint32_t nslots;
  uint32_t nbuckets;
  uint32_t lg_stripes; /* log2(nstripes) */
  uint32_t lg_buckets; /* log2(nbuckets) */
  uint32_t slot_size;
  uint64_t region_off;
  uint64_t region_size;
  uint64_t default_ttl_ms;
  uint32_t lock_timeout_ms;
  unsigned flags; /* KVSHM_RDONLY, ... from open */
  uint64_t rng;   /* xorshift state for LFU and sampling */
  char name[KVSHM_NAME_MAX + 1];
  /* Test hooks (kvshm_test.h); NULL in production. */
  kvshm_test_hook_fn hook;
  void *hook_ctx;
  kvshm_test_clock_fn clock;
  void *clock_ctx;
  /* Scratch buffer for keys that span slots, and for incr; at least
   * KVSHM_KEY_MAX bytes from open on. */
  unsigned char *scratch;
  size_t scratch_size;
  uint32_t *repair_claimed;  /* nslots words for repair (lock.c) */
  unsigned char *repair_key; /* KVSHM_KEY_MAX bytes for repair */
  struct kvshm_store *store; /* this process's SQLite connection, lazily */
  uint32_t ops_since_poll;   /* operations since the reaper was checked */
  struct kvshm_watch *watch; /* the reaper watchdog thread, or NULL */
  int seg_fd;                /* the segment's descriptor, -1 if none */
  struct kvshm__trust trust; /* whose files it accepts (trust.c) */
  unsigned seg_locks;        /* nesting of this handle's hold on the flock */
  /* The stripe lock this handle holds: its words as they were when we
   * took it, put back before unlocking if someone overwrote them. */
  int held_owner;
  void *held_prev, *held_next;
  /* The header's counter shard this handle's lock-free gets count in
   * (seqread.c); NULL for a read-only handle, which counts nothing. */
  struct kvshm_shard *shard;
  /* This handle's thread holds the header's near.lock: it is a near
   * cache's listener (near.c). */
  bool near_held;
  /* Index of this mapping in the SIGBUS guard (guard.c), -1 if none. */
  int guard_slot;
};

/* kvshm_open flag of the reaper's own handle (reaper.c): it does not count
 * as a user of the segment (segment.c). */
#define KVSHM__AS_REAPER 0x80000000u
/* Set on a KVSHM_RDONLY handle by kvshm_open when the process may read the
 * segment but not write it: the mapping is read-only, so the handle takes
 * no lock and writes nothing; gets are lock-free only (seqread.c), and
 * what needs a lock is KVSHM_ERDONLY. */
#define KVSHM__READER 0x40000000u

/* ---- errors.c ---- */
/* Record a detail message for kvshm_errdetail(); returns err. */
int kvshm__fail(int err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void kvshm__clear_detail(void);

/* ---- trust.c ---- */
void kvshm__trust_from(struct kvshm__trust *t, const kvshm_config *c);
/* Is this file (fstat'ed) one we may use?  0, or KVSHM_EOWNER saying whose
 * it is and what to do; `what` names it ("SQLite file"). */
int kvshm__trusted(const struct kvshm__trust *t, const struct stat *sb,
                   const char *what, const char *path);
/*
 * open(2) a regular file never following a symlink, refusing one owned by an
 * untrusted user (KVSHM_EOWNER).  With O_CREAT, a new file gets exactly
 * `mode` (*created says it was made here; created may be NULL).
 */
int kvshm__open_file(const char *path, int flags, unsigned mode,
                     const struct kvshm__trust *t, const char *what,
                     bool *created);
/* A file that something else (SQLite) will open: 0 if it is missing, or a
 * trusted regular file; KVSHM_EOWNER if it is a symlink or not trusted. */
int kvshm__trusted_path(const char *path, const struct kvshm__trust *t,
                        const char *what);
/* The mode of every file made for the cache (SQLite and its -wal and -shm,
 * the reaper's log): the segment's permission bits, else 0600.  A reader
 * the segment admits may read the files, and nobody else. */
unsigned kvshm__file_mode(const kvshm *kv);

/* ---- hash.c ---- */
uint64_t kvshm__hash(const void *data, size_t len, uint64_t seed);
/* The entries' checksum (four lanes: several times faster over a value). */
uint64_t kvshm__sum(const void *data, size_t len, uint64_t seed);

/* ---- segment.c ---- */
uint64_t kvshm__wall_ms(void);
static inline uint64_t kvshm__now_ms(kvshm *kv) {
  return kv->clock ? kv->clock(kv->clock_ctx) : kvshm__wall_ms();
}
/* The wall clock to a few ms (CLOCK_REALTIME_COARSE): plenty for the LFU's
 * minutes, and several times cheaper than kvshm__wall_ms. */
uint64_t kvshm__coarse_ms(void);
static inline uint64_t kvshm__lfu_now_ms(kvshm *kv) {
  return kv->clock ? kv->clock(kv->clock_ctx) : kvshm__coarse_ms();
}
uint32_t kvshm__hdr_check(const struct kvshm_hdr *h);
/* Check a mapped header against itself and the file size; 0 or an error. */
int kvshm__hdr_validate(const struct kvshm_hdr *h, uint64_t fsize,
                        const char *name);
/* The hash that places a key (index.c). */
uint64_t kvshm__key_hash(const void *key, size_t klen);

/* ---- geometry ---- */
/* Where hash h lives: its stripe is the top lg_stripes bits of h and its
 * bucket the next lg_buckets bits, so (stripe, bucket) order is h order. */
static inline uint32_t kvshm__stripe_of(const kvshm *kv, uint64_t h) {
  return kv->lg_stripes ? (uint32_t)(h >> (64 - kv->lg_stripes)) : 0;
}
static inline uint32_t kvshm__bucket_of(const kvshm *kv, uint64_t h) {
  uint64_t rest = h << kv->lg_stripes;
  return kv->lg_buckets ? (uint32_t)(rest >> (64 - kv->lg_buckets)) : 0;
}
/* The home slot of bucket b: where a new entry of that bucket goes when it
 * is free (write.c).  A get asks for its bucket word and its home slot at
 * once, so for an entry at home the two cache misses overlap.  Buckets map
 * onto slots in order, one or two buckets per slot. */
static inline uint32_t kvshm__home_of(const kvshm *kv, uint32_t b) {
  return 1 + (uint32_t)(((uint64_t)b * kv->nslots) >> kv->lg_buckets);
}
/* The first hash of bucket b of stripe s (with n buckets after it, the
 * range ends at kvshm__hash_lo(kv, s, b + n), or wraps to 0 at the end). */
static inline uint64_t kvshm__hash_lo(const kvshm *kv, uint32_t s, uint64_t b) {
  uint32_t lg = kv->lg_stripes + kv->lg_buckets;
  uint64_t pos = ((uint64_t)s << kv->lg_buckets) + b;
  return lg ? pos << (64 - lg) : 0;
}
static inline struct kvshm_stripe *kvshm__stripe(kvshm *kv, uint32_t s) {
  return &kv->stripes[s];
}
/* The stripe's sequence word (layout.h): made odd by whoever takes its
 * lock, before any change, and even again just before it lets go. */
static inline _Atomic uint32_t *kvshm__seq(kvshm *kv, uint32_t s) {
  return (_Atomic uint32_t *)&kv->stripes[s].seq;
}
static inline void kvshm__seq_enter(kvshm *kv, uint32_t s) {
  _Atomic uint32_t *q = kvshm__seq(kv, s);
  uint32_t v = atomic_load_explicit(q, memory_order_relaxed);
  if (!(v & 1)) /* odd already: its last holder died holding the lock */
    atomic_store_explicit(q, v + 1, memory_order_relaxed);
  /* The odd word before any change we make (a reader that sees a change
   * sees the odd word after its acquire fence). */
  atomic_thread_fence(memory_order_release);
}
static inline void kvshm__seq_leave(kvshm *kv, uint32_t s) {
  _Atomic uint32_t *q = kvshm__seq(kv, s);
  uint32_t v = atomic_load_explicit(q, memory_order_relaxed);
  atomic_store_explicit(q, (v | 1u) + 1, memory_order_release);
}
static inline uint32_t *kvshm__buckets(kvshm *kv, uint32_t s) {
  return (uint32_t *)(kv->base + kv->region_off +
                      (uint64_t)s * kv->region_size);
}
/* The slot with ref r (1-based) of stripe s.  r must be in [1, nslots]. */
static inline unsigned char *kvshm__slot(kvshm *kv, uint32_t s, uint32_t r) {
  assert(r >= 1 && r <= kv->nslots);
  return (unsigned char *)kvshm__buckets(kv, s) + (size_t)kv->nbuckets * 4 +
         (size_t)(r - 1) * kv->slot_size;
}
/* Ask for bucket b's word and its home slot together: an entry at home
 * then costs one cache miss's wait, not two in a row.  Two lines of the
 * slot at most (its head and a short key: a 64 KiB slot is not fetched
 * whole for every get; find_locked asks for the rest of a slot it uses). */
static inline void kvshm__prefetch_home(kvshm *kv, uint32_t s, uint32_t b) {
  __builtin_prefetch(kvshm__buckets(kv, s) + b);
  const char *home = (const char *)kvshm__slot(kv, s, kvshm__home_of(kv, b));
  __builtin_prefetch(home);
  if (kv->slot_size > 64)
    __builtin_prefetch(home + 64);
}
static inline bool kvshm__ref_ok(kvshm *kv, uint32_t r) {
  return r >= 1 && r <= kv->nslots;
}
/* Slots needed for an entry of `total` key+value bytes. */
static inline uint64_t kvshm__slots_for(uint32_t slot_size, uint64_t total) {
  uint64_t hd = KVSHM_HEAD_DATA(slot_size), cd = KVSHM_CONT_DATA(slot_size);
  return total <= hd ? 1 : 1 + (total - hd + cd - 1) / cd;
}
/* The largest slot count one entry may take: half a stripe. */
static inline uint32_t kvshm__max_entry_slots(kvshm *kv) {
  return kv->nslots / 2;
}

static inline uint16_t kvshm__state_load(const void *slot) {
  return atomic_load_explicit((_Atomic uint16_t *)slot, memory_order_acquire);
}
static inline void kvshm__state_store(void *slot, uint16_t v) {
  atomic_store_explicit((_Atomic uint16_t *)slot, v, memory_order_release);
}

static inline void kvshm__hook(kvshm *kv, kvshm_test_point p) {
  if (kv->hook)
    kv->hook(kv, p, kv->hook_ctx);
}

/* ---- guard.c ---- */
/* Watch the mapping for SIGBUS (a file cut short by another process):
 * pages past the end read as zeros and the handle is marked. */
void kvshm__guard_add(kvshm *kv);
void kvshm__guard_remove(kvshm *kv);
/* Was this handle's file cut short?  (A cheap process-local load.) */
bool kvshm__cut_short(const kvshm *kv);
/* KVSHM_ECORRUPT, saying what happened and what to do. */
int kvshm__cut_short_error(kvshm *kv);

/* ---- segment.c: the segment file ---- */
int kvshm__mutex_init_shared(pthread_mutex_t *m);
/* Take (true) or drop (false) the segment's flock: held by openers,
 * destroyers and whoever makes a damaged lock again.  Waits at most the
 * lock timeout. */
int kvshm__seg_lock(kvshm *kv, bool take);
/* The segment's clear lock (clear.c): take (waiting up to the lock timeout
 * when wait, else KVSHM__EBUSY_CLEAR at once) or release it. */
#define KVSHM__EBUSY_CLEAR (-30897)
int kvshm__clear_lock(kvshm *kv, bool take, bool wait);
/* Is another open file description (another process's handle) attached
 * to this segment?  Every handle holds a read lock on byte 0 for life. */
bool kvshm__others_attached(kvshm *kv);
/* Is a process in another PID namespace attached (or can we not tell)?
 * If not, every possible lock holder's thread id is one of ours. */
bool kvshm__foreign_attached(kvshm *kv);

/* ---- lock.c ---- */
/* 0 if a stripe mutex's words are ones glibc may be given, else
 * KVSHM_ECORRUPT with why filled in. */
int kvshm__mutex_check(const pthread_mutex_t *m, char *why, size_t whysz);
/* The thread id in the lock word, 0 if free or its owner died. */
uint32_t kvshm__mutex_holder(const pthread_mutex_t *m);
/* Lock stripe s without the clear catch-up. */
int kvshm__lock_raw(kvshm *kv, uint32_t s);
/* Check the words of a header lock (reaper_lock, near.lock; `what` names
 * it) before glibc sees them; make the lock again (under the file lock) if
 * they are damaged.  0 when it may be used; *remade (may be NULL) says it
 * was made again. */
int kvshm__hdr_lock_sane(kvshm *kv, pthread_mutex_t *m, const char *what,
                         bool *remade);
/* kvshm_repair's lock: makes a damaged or stuck lock again (see kvshm.h
 * for when), saying what it did in `did` ("" if nothing). */
int kvshm__lock_for_repair(kvshm *kv, uint32_t s, bool force, char *did,
                           size_t didsz);
/* SQLite was busy for a read that may not wait under a stripe lock: back
 * off a little, or KVSHM_ETIMEDOUT once the lock timeout has passed since
 * since_ms. */
int kvshm__busy_wait(kvshm *kv, int attempt, uint64_t since_ms,
                     const char *what);
/* The CLOCK_REALTIME instant ms from now, for pthread's timed locks. */
struct timespec kvshm__deadline(uint32_t ms);
/* Lock stripe s, repairing it if the last holder died, and emptying it if
 * a kvshm_clear happened since it was last locked. */
int kvshm__lock(kvshm *kv, uint32_t s);
/* The header's clear generation, as every tier must honour it. */
static inline uint64_t kvshm__clear_gen(kvshm *kv) {
  return atomic_load_explicit((_Atomic uint64_t *)&kv->hdr->clear_gen,
                              memory_order_acquire);
}
/* Raise the header's clear generation to at least g. */
void kvshm__clear_gen_raise(kvshm *kv, uint64_t g);
/* Is key under a published prefix clear newer than `since` (clear.c)? */
bool kvshm__pclear_unswept(kvshm *kv, uint64_t since, const void *key,
                           size_t klen);
/* A SQLite cache whose segment was destroyed: KVSHM_EDESTROYED (ops.c). */
int kvshm__destroyed(kvshm *kv);
/* clear.c: prefix clears.  Record i if published (its gen in *gen). */
const struct kvshm_clear_rec *kvshm__pclear_rec(kvshm *kv, unsigned i,
                                                uint64_t *gen);
/* Is key under the prefix of a clear whose SQLite delete is not committed
 * (a row of it is not there)? */
bool kvshm__pclear_hides(kvshm *kv, const void *key, size_t klen);
/* After the commit that deleted record i's rows: PENDING -> DONE. */
void kvshm__pclear_mark_done(kvshm *kv, unsigned i, uint64_t gen);
/* Remove stripe s's keys under the prefixes cleared in (from, to]. */
void kvshm__pclear_catch_up_locked(kvshm *kv, uint32_t s, uint64_t from,
                                   uint64_t to);
/* Finish and free the records of finished or abandoned prefix clears, if
 * no clear runs (the reaper, each tick). */
int kvshm__pclear_settle(kvshm *kv);
void kvshm__unlock(kvshm *kv, uint32_t s);
/* Rebuild stripe s's index, free list and derived counts from its slots. */
void kvshm__repair_locked(kvshm *kv, uint32_t s);

/* ---- chain.c: the chain walker and entry I/O ----
 * Every walk of an entry's slots (the head, then its continuation chain)
 * goes through this one walker, so one bounds policy holds everywhere:
 *   - the walk is bounded by the slots the entry's lengths need
 *     (kvshm__slots_for of the lengths its caller read), and never by any
 *     other count or link read from the segment; lengths that need more
 *     than one entry may have (kvshm__max_entry_slots) are a bad link at
 *     the first step;
 *   - every link is range-checked (kvshm__ref_ok) before it is followed;
 *   - a continuation must be KVSHM_KIND_CONT and owned by the head (and
 *     is never the head itself);
 *   - the chain ends, with a KVSHM_NIL link, exactly where the lengths say.
 * The walker only reads, and only slots in range, so the lock-free gets
 * (seqread.c) may walk a stripe that changes under them.  What a caller
 * does on a bad link (stop, report, repair) is its own choice, made on
 * kvshm__walk_next's result:
 *
 *   struct kvshm__walk w;
 *   kvshm__walk_start(&w, kv, s, ref, (uint64_t)hd->klen + hd->vlen);
 *   do
 *     use(w.ref, w.data, w.cap);
 *   while (kvshm__walk_next(&w) == KVSHM__WALK_NEXT);
 *
 * It is inline: the gets' checks and copies (seqread.c, ops.c) walk with it
 * as cheaply as an open-coded loop.
 */
struct kvshm__walk {
  kvshm *kv;
  uint32_t s;
  uint32_t head;       /* the entry's head ref */
  uint32_t ref;        /* the slot the walk is at: the head first */
  uint32_t next;       /* the link read from it (the slot is not reread) */
  uint32_t left;       /* continuation slots still due after it */
  unsigned char *data; /* its data bytes */
  size_t cap;          /* how many: KVSHM_HEAD_DATA or KVSHM_CONT_DATA */
};
enum {
  KVSHM__WALK_NEXT, /* stepped: w->ref is the next continuation slot */
  KVSHM__WALK_END,  /* the chain ended where the lengths say it does */
  KVSHM__WALK_BAD   /* a bad link: the walk stays where it was */
};
/* Start at head `ref` of stripe s, whose key and value are `total` bytes
 * (the lengths the caller read and goes by). */
static inline void kvshm__walk_start(struct kvshm__walk *w, kvshm *kv,
                                     uint32_t s, uint32_t ref, uint64_t total) {
  uint64_t need = kvshm__slots_for(kv->slot_size, total);
  unsigned char *slot = kvshm__slot(kv, s, ref);
  w->kv = kv;
  w->s = s;
  w->head = w->ref = ref;
  w->next = ((struct kvshm_head *)slot)->cnext;
  w->left = (uint32_t)(need - 1);
  if (need > 1 && need > kvshm__max_entry_slots(kv)) {
    w->left = 0;          /* lengths no entry may have: */
    w->next = UINT32_MAX; /* the first step is a bad link */
  }
  w->data = slot + sizeof(struct kvshm_head);
  w->cap = KVSHM_HEAD_DATA(kv->slot_size);
}
/* Step to the next continuation slot (see the KVSHM__WALK_* results). */
static inline int kvshm__walk_next(struct kvshm__walk *w) {
  uint32_t c = w->next;
  if (!w->left)
    return c == KVSHM_NIL ? KVSHM__WALK_END : KVSHM__WALK_BAD;
  if (!kvshm__ref_ok(w->kv, c) || c == w->head)
    return KVSHM__WALK_BAD;
  struct kvshm_cont *ct = (struct kvshm_cont *)kvshm__slot(w->kv, w->s, c);
  if ((ct->state & KVSHM_KIND_MASK) != KVSHM_KIND_CONT || ct->owner != w->head)
    return KVSHM__WALK_BAD;
  w->left--;
  w->ref = c;
  w->next = ct->cnext;
  w->data = (unsigned char *)ct + sizeof *ct;
  w->cap = KVSHM_CONT_DATA(w->kv->slot_size);
  return KVSHM__WALK_NEXT;
}

/* Grow the handle's scratch buffer to at least n bytes. */
int kvshm__scratch(kvshm *kv, size_t n);
/* Check entry `ref` of stripe s: chain, lengths, checksum.  0 or ECORRUPT. */
int kvshm__entry_check_locked(kvshm *kv, uint32_t s, uint32_t ref,
                              bool checksum);
/* Copy `len` bytes of entry data starting at `off` into dst. */
void kvshm__entry_read_locked(kvshm *kv, uint32_t s, uint32_t ref, uint64_t off,
                              void *dst, uint64_t len);
/* Copy entry ref's bytes from `from` on (0: key and value, klen: value)
 * into dst, checking the checksum over the copy (KVSHM_ECORRUPT if it
 * fails): what is used is what was verified. */
int kvshm__entry_copy_locked(kvshm *kv, uint32_t s, uint32_t ref, uint32_t klen,
                             uint32_t vlen, uint32_t flags, uint32_t check,
                             uint64_t from, void *dst);
/* The checksum of entry ref's lengths, flags and bytes, as its head's
 * `check` holds it. */
uint32_t kvshm__entry_checksum_locked(kvshm *kv, uint32_t s, uint32_t ref);

/* ---- slots.c, slots.h: the allocator ---- */
/* Put slot r on stripe s's free list (a doubly linked list, slots.c). */
void kvshm__free_push_locked(kvshm *kv, uint32_t s, uint32_t r);
/* Taking slots (kvshm__free_list_sane, kvshm__take_home_locked,
 * kvshm__alloc_slot_locked) is inline, in slots.h. */
/* Free every slot of entry `ref` (already unlinked from its bucket). */
void kvshm__entry_free_locked(kvshm *kv, uint32_t s, uint32_t ref);
/* Reset stripe s to empty. */
void kvshm__stripe_clear_locked(kvshm *kv, uint32_t s);

/* ---- index.c: the buckets' chains ---- */
/* The bucket word of hash h in stripe s. */
uint32_t *kvshm__bucket_word(kvshm *kv, uint32_t s, uint64_t h);
/* Find key (hash h) in stripe s: *ref its head or 0, *link the chain word
 * that points at it (or where to append).  ECORRUPT after repairing. */
int kvshm__find_locked(kvshm *kv, uint32_t s, uint64_t h, const void *key,
                       size_t klen, uint32_t *ref, uint32_t **link);
/* Unlink entry `ref` from its bucket chain and free it. */
void kvshm__entry_remove_locked(kvshm *kv, uint32_t s, uint32_t ref);
/* Remove an expired entry (a tombstone if SQLite may hold an older copy).
 * link: the bucket word pointing at it, or NULL to look it up.  Returns
 * true if the entry was freed, false if it became a tombstone. */
bool kvshm__expire_locked(kvshm *kv, uint32_t s, uint32_t ref, uint32_t *link);
/* Turn entry ref into a tombstone in place (one atomic store). */
void kvshm__tombstone_locked(kvshm *kv, uint32_t s, uint32_t ref, uint64_t now);
/* Rebuild the stripe and return KVSHM_ECORRUPT with `what` as detail. */
int kvshm__corrupt_locked(kvshm *kv, uint32_t s, const char *what);

/* ---- write.c ---- */
/* A new entry to write. */
struct kvshm__write_req {
  const void *key;
  size_t klen;
  const void *val;
  size_t vlen;
  uint32_t flags;
  uint64_t expires_ms;
  uint16_t state_bits; /* ST_* bits of the new entry */
  uint32_t lfu;
};
/*
 * Write a new entry for req into fresh slots and make it replace `old` (0 if
 * none; *link is the chain word that points at it or where to append),
 * copy-on-write.  Evicts clean entries for room; KVSHM__EDIRTY when only a
 * write-back would make room.
 */
int kvshm__write_locked(kvshm *kv, uint32_t s, uint64_t h, uint32_t old,
                        uint32_t *link, const struct kvshm__write_req *req,
                        uint64_t now);

/* ---- near.c ---- */
/* The near-cache epoch of keys of hash h (kvshm_epoch), and the word of
 * near.epochs it moves with. */
uint64_t kvshm__near_epoch(kvshm *kv, uint64_t h);
uint64_t *kvshm__near_epoch_word(kvshm *kv, uint64_t h);

/* ---- reaper.c ---- */
/* Every so many operations, check that a reaper runs; start one if not.
 * Call without a stripe lock held (it may fork). */
void kvshm__reaper_poll(kvshm *kv);
int kvshm__reaper_ensure(kvshm *kv);
/* Does a reaper hold reaper_lock right now? */
bool kvshm__reaper_alive(kvshm *kv);
/* The watchdog thread of a SQLite cache's handle: it waits on reaper_lock
 * and starts a new reaper as soon as the holder dies (watch.c). */
int kvshm__watch_start(kvshm *kv);
void kvshm__watch_stop(kvshm *kv);

/* ---- seqread.c ---- */
#define KVSHM__ELOCK (-30896) /* internal: decide it under the lock */
/* A get to try without the lock. */
struct kvshm__seq_get {
  const void *key; /* not NULL */
  size_t klen;
  uint64_t h; /* kvshm__key_hash of the key */
  void *buf;  /* as kvshm_get_ex's */
  size_t bufsize;
  size_t *vlen;
  uint32_t *flags;
  uint64_t *expires_ms;
  const uint32_t *draw; /* the LFU's random draw for this get; NULL: count
                           nothing and touch nothing (a peek, a read-only
                           handle) */
};
/* KVSHM_OK, KVSHM_ENOTFOUND or KVSHM_EBUFSIZE, decided without the stripe
 * lock and counted in the handle's shard; KVSHM__ELOCK when the lock must
 * decide (nothing counted; *draw is what that get should use). */
int kvshm__seq_get(kvshm *kv, const struct kvshm__seq_get *g);

/* ---- lfu.c ---- */
#define KVSHM_LFU_INIT 5u       /* counter of a new entry */
#define KVSHM_LFU_LOG_FACTOR 10 /* higher: slower growth */
#define KVSHM_LFU_DECAY_MIN 1u  /* minutes per point of decay */
uint32_t kvshm__lfu_new(kvshm *kv, uint64_t now_ms);
uint32_t kvshm__lfu_touch(kvshm *kv, uint32_t lfu, uint64_t now_ms);
/* The LFU word after one access at now_ms, given a random 32-bit draw
 * (kvshm__lfu_touch draws one itself). */
uint32_t kvshm__lfu_next(uint32_t lfu, uint64_t now_ms, uint32_t draw);
uint32_t kvshm__lfu_counter(uint32_t lfu, uint64_t now_ms);
uint64_t kvshm__rand(kvshm *kv);
/*
 * Evict clean entries of stripe s, coldest first, until it has `need` free
 * slots, never evicting `keep`.  Dirty entries and tombstones are never
 * evicted: SQLite does not have them yet, and no SQLite I/O happens under
 * a stripe lock.  Returns 0, KVSHM__EDIRTY if only dirty entries are left
 * (the caller unlocks, writes the stripe back, and tries again), or
 * KVSHM_ETOOBIG if nothing more can be evicted.
 */
#define KVSHM__EDIRTY (-30899) /* internal: write the stripe back first */
int kvshm__evict_locked(kvshm *kv, uint32_t s, uint32_t need, uint32_t keep,
                        uint64_t now_ms);

#endif /* KVSHM_INTERNAL_H */
