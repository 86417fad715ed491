/*
 * lock.c - stripe locks, and the repair of a stripe whose lock holder died.
 *
 * Lock order: there is none, because no code path ever holds two stripe
 * locks.  The segment's flock (segment.c) is taken only while opening, never
 * together with a stripe lock.
 *
 * Each stripe lock is a process-shared, robust pthread mutex.  When a process
 * dies holding one (kill -9 at any instant), the kernel hands the next locker
 * EOWNERDEAD.  That locker repairs the stripe, then marks the mutex consistent.
 * Repair trusts nothing but committed head slots that pass every check:
 *
 *   1. empty every bucket;
 *   2. for each slot whose kind is "head": check its lengths, walk its chain
 *      (with the one walker, chain.c: in bounds, each link a continuation
 *      owned by this head; and no slot claimed twice), verify its checksum;
 *      a failing entry is dropped and counted as corrupt;
 *   3. if the key is already indexed (a writer died between committing a new
 *      entry and freeing the old one), keep the higher version;
 *   4. every slot not claimed by a kept entry becomes free;
 *   5. recount entries, bytes, dirty and tombstones, and move gen_evict
 *      (dropped entries left memory: see layout.h).
 *
 * Because writes are copy-on-write (layout.h), a kept entry is always either
 * the old or the new value of the dead process's in-flight write: at most
 * that write is lost, and no reader ever sees it half done.  Repair is
 * idempotent: if the repairer dies too, the next locker repairs again.
 */
#include "internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int lock_failed(kvshm *kv, uint32_t s, int rc);

struct timespec kvshm__deadline(uint32_t ms) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)ms * 1000000u;
  ts.tv_sec += (time_t)(ns / 1000000000u);
  ts.tv_nsec = (long)(ns % 1000000000u);
  return ts;
}

int kvshm__busy_wait(kvshm *kv, int attempt, uint64_t since_ms,
                     const char *what) {
  if (kvshm__wall_ms() >= since_ms + kv->lock_timeout_ms)
    return kvshm__fail(KVSHM_ETIMEDOUT,
                       "cache '%s': SQLite stayed busy for %u ms while %s",
                       kv->name, kv->lock_timeout_ms, what);
  struct timespec ts = {0, 100000L * (attempt < 20 ? attempt : 20)};
  nanosleep(&ts, NULL);
  return KVSHM_OK;
}

/* A kvshm_clear moved the header's generation: empty the stripe now.  The
 * generation is stored last, so a locker killed half-way is followed by
 * one that repairs (EOWNERDEAD) and then empties again. */
static void catch_up_locked(kvshm *kv, uint32_t s, uint64_t gen,
                            uint64_t pgen) {
  struct kvshm_stripe *st = kvshm__stripe(kv, s);
  kvshm__stripe_clear_locked(kv, s);
  /* Empty, it has nothing left for the prefix clears so far either (never
   * lower it: a prefix clear made meanwhile is swept by the caller). */
  if (st->pclear_gen < pgen)
    atomic_store_explicit((_Atomic uint64_t *)&st->pclear_gen, pgen,
                          memory_order_release);
  atomic_store_explicit((_Atomic uint64_t *)&st->clear_gen, gen,
                        memory_order_release);
}

void kvshm__clear_gen_raise(kvshm *kv, uint64_t g) {
  _Atomic uint64_t *p = (_Atomic uint64_t *)&kv->hdr->clear_gen;
  uint64_t cur = atomic_load(p);
  while (cur < g && !atomic_compare_exchange_weak(p, &cur, g))
    ;
}

/*
 * The mutex words, checked before glibc sees them.
 *
 * glibc trusts a mutex's words: a garbage kind word sends a lock down the
 * priority-protect or PI paths, which assert (SIGABRT) or wait forever, and
 * a garbage list pointer is written through on unlock.  Another process
 * with write access to the segment can put anything there, so each word
 * is held to what a robust, process-shared mutex can legitimately contain
 * (glibc's nptl layout; other C libraries get no check):
 *
 *   __kind   exactly what pthread_mutex_init gave ours (elision bits aside)
 *   __lock   a thread id (at most PID_MAX_LIMIT), optionally with the
 *            kernel's FUTEX_WAITERS and FUTEX_OWNER_DIED bits
 *   __owner  0, a thread id, or glibc's INCONSISTENT / NOTRECOVERABLE marks
 *   __list   (the holder's robust-list links) only matter while held: they
 *            are remembered at lock and put back before unlock
 *
 * While we hold the lock every word is ours, so before unlocking we write
 * back any word a scribbler changed meanwhile (mutex_restore_held); glibc
 * then unlocks a mutex it recognises.  What remains possible is written in
 * README.md ("What a process with write access can still do").
 */
#ifdef __GLIBC__
#define TID_MASK 0x3fffffff
#define TID_MAX 4194304 /* PID_MAX_LIMIT on 64-bit Linux */
#define OWNER_DIED 0x40000000
#define WAITERS 0x80000000u
#define OWNER_INCONSISTENT 0x7fffffff
#define OWNER_NOTRECOVERABLE 0x7ffffffe
#define KIND_ELISION_BITS (256 | 512)

static int expected_kind;
static pthread_once_t expected_once = PTHREAD_ONCE_INIT;

static void expected_kind_init(void) {
  pthread_mutex_t m;
  if (kvshm__mutex_init_shared(&m) == 0) {
    expected_kind = m.__data.__kind & ~KIND_ELISION_BITS;
    pthread_mutex_destroy(&m);
  }
}

#define WORD(m, f) __atomic_load_n(&(m)->__data.f, __ATOMIC_RELAXED)

int kvshm__mutex_check(const pthread_mutex_t *m, char *why, size_t whysz) {
  pthread_once(&expected_once, expected_kind_init);
  int kind = WORD(m, __kind), owner = WORD(m, __owner);
  unsigned lock = (unsigned)WORD(m, __lock);
  if ((kind & ~KIND_ELISION_BITS) != expected_kind)
    snprintf(why, whysz, "kind word 0x%x (a robust shared mutex has 0x%x)",
             (unsigned)kind, (unsigned)expected_kind);
  else if ((lock & TID_MASK) > TID_MAX)
    snprintf(why, whysz, "lock word 0x%x holds no thread id", lock);
  else if (owner < 0 || (owner > TID_MAX && owner != OWNER_INCONSISTENT &&
                         owner != OWNER_NOTRECOVERABLE))
    snprintf(why, whysz, "owner word 0x%x is no thread id", (unsigned)owner);
  else
    return KVSHM_OK;
  return KVSHM_ECORRUPT;
}

uint32_t kvshm__mutex_holder(const pthread_mutex_t *m) {
  unsigned lock = (unsigned)WORD(m, __lock);
  return lock & OWNER_DIED ? 0 : lock & TID_MASK;
}

/* Just locked: remember the words that are ours while we hold it. */
static void mutex_note_held(kvshm *kv, pthread_mutex_t *m) {
  kv->held_owner = WORD(m, __owner);
  kv->held_prev = m->__data.__list.__prev;
  kv->held_next = m->__data.__list.__next;
}

/* About to unlock: put back any word changed behind our back. */
static void mutex_restore_held(kvshm *kv, pthread_mutex_t *m) {
  int owner = kv->held_owner;
  if (WORD(m, __kind) ==
          (expected_kind | (WORD(m, __kind) & KIND_ELISION_BITS)) &&
      WORD(m, __owner) == owner &&
      ((unsigned)WORD(m, __lock) & TID_MASK) == (unsigned)owner &&
      m->__data.__list.__prev == kv->held_prev &&
      m->__data.__list.__next == kv->held_next)
    return;
  m->__data.__kind = expected_kind;
  m->__data.__owner = owner;
  m->__data.__list.__prev = kv->held_prev;
  m->__data.__list.__next = kv->held_next;
  /* Waiters may have come and gone: wake whoever might wait. */
  __atomic_store_n(&m->__data.__lock, (int)((unsigned)owner | WAITERS),
                   __ATOMIC_RELEASE);
}
#else
int kvshm__mutex_check(const pthread_mutex_t *m, char *why, size_t whysz) {
  (void)m, (void)why, (void)whysz;
  return KVSHM_OK;
}
uint32_t kvshm__mutex_holder(const pthread_mutex_t *m) {
  (void)m;
  return 0;
}
static void mutex_note_held(kvshm *kv, pthread_mutex_t *m) {
  (void)kv, (void)m;
}
static void mutex_restore_held(kvshm *kv, pthread_mutex_t *m) {
  (void)kv, (void)m;
}
#endif

/* Does a thread with this id exist in our PID namespace? */
static bool thread_exists(uint32_t tid) {
  return kill((pid_t)tid, 0) == 0 || errno == EPERM;
}

/*
 * Make stripe s's damaged lock a fresh, unlocked mutex, then lock it and
 * rebuild the stripe from its slots.  Under the segment's file lock, so two
 * processes that find the same damage do not both re-initialise it; the
 * second finds it sane (or held by the first) and reports that.  Returns
 * with the stripe locked, or an error with it not locked.
 */
enum damage { DAMAGED, STUCK, UNRECOVERABLE };

static bool still_damaged(pthread_mutex_t *m, enum damage d, uint32_t holder) {
  char why[120];
  if (kvshm__mutex_check(m, why, sizeof why))
    return true;
  if (d == STUCK)
    return kvshm__mutex_holder(m) == holder;
#ifdef __GLIBC__
  if (d == UNRECOVERABLE)
    return WORD(m, __owner) == OWNER_NOTRECOVERABLE;
#endif
  return false;
}

static int mutex_reinit(kvshm *kv, uint32_t s, enum damage d, uint32_t holder) {
  pthread_mutex_t *m = &kvshm__stripe(kv, s)->lock;
  int rc = kvshm__seg_lock(kv, true);
  if (rc)
    return rc;
  if (!still_damaged(m, d, holder)) { /* someone made it again meanwhile */
    kvshm__seg_lock(kv, false);
    return kvshm__fail(KVSHM_ECORRUPT,
                       "stripe %u lock of cache '%s' was damaged; another "
                       "process has made it again: retry",
                       s, kv->name);
  }
  memset(m, 0, sizeof *m);
  rc = kvshm__mutex_init_shared(m);
  if (!rc)
    rc = pthread_mutex_trylock(m) ? KVSHM_ECORRUPT : KVSHM_OK;
  kvshm__seg_lock(kv, false);
  if (rc)
    return kvshm__fail(rc,
                       "stripe %u lock of cache '%s' could not be made "
                       "again",
                       s, kv->name);
  mutex_note_held(kv, m);
  kvshm__repair_locked(kv, s);
  return KVSHM_OK;
}

/* Make stripe s's lock again (see mutex_reinit), and fail the operation
 * that found it: `what` says what was wrong with it. */
static int remake_and_fail(kvshm *kv, uint32_t s, enum damage d,
                           uint32_t holder, const char *what) {
  int rc = mutex_reinit(kv, s, d, holder);
  if (rc)
    return rc;
  kvshm__unlock(kv, s);
  return kvshm__fail(KVSHM_ECORRUPT,
                     "stripe %u lock of cache '%s' %s: it was made again "
                     "and the stripe rebuilt; retry",
                     s, kv->name, what);
}

/* A reader's mapping is read-only: taking a lock would fault. */
static int reader_refused(kvshm *kv) {
  return kvshm__fail(KVSHM_ERDONLY,
                     "cache '%s' is open read-only without write permission "
                     "on its segment: this handle reads without locks and "
                     "cannot do what needs a stripe lock (walks, verify, "
                     "and gets that have to wait for a repair); open it "
                     "with write permission for that",
                     kv->name);
}

int kvshm__lock_raw(kvshm *kv, uint32_t s) {
  if (kv->flags & KVSHM__READER)
    return reader_refused(kv);
  pthread_mutex_t *m = &kvshm__stripe(kv, s)->lock;
  char why[120];
  if (kvshm__mutex_check(m, why, sizeof why)) {
    /* Not a mutex glibc may be given.  A live holder (its thread exists,
     * and it is not us) will put the words back when it unlocks; nobody
     * else can hold it, so make it again. */
    uint32_t holder = kvshm__mutex_holder(m);
    if (holder && kvshm__others_attached(kv) &&
        (thread_exists(holder) || kvshm__foreign_attached(kv)))
      return kvshm__fail(KVSHM_ECORRUPT,
                         "stripe %u lock of cache '%s' is damaged (%s) "
                         "while thread %u holds it: retry; if it stays, "
                         "run kvshm-cli repair %s",
                         s, kv->name, why, holder, kv->name);
    char what[160];
    snprintf(what, sizeof what, "was damaged (%s)", why);
    return remake_and_fail(kv, s, DAMAGED, 0, what);
  }
  int rc = pthread_mutex_trylock(m);
  if (rc == EBUSY) {
    struct timespec ts = kvshm__deadline(kv->lock_timeout_ms);
    rc = pthread_mutex_timedlock(m, &ts);
  }
  if (rc == 0) {
    kvshm__seq_enter(kv, s);
    mutex_note_held(kv, m);
    return KVSHM_OK;
  }
  return lock_failed(kv, s, rc);
}
int kvshm__hdr_lock_sane(kvshm *kv, pthread_mutex_t *m, const char *what,
                         bool *remade) {
  char why[120];
  if (remade)
    *remade = false;
  if (kvshm__mutex_check(m, why, sizeof why) == KVSHM_OK)
    return KVSHM_OK;
  /* Its holder, if any, is a reaper whose words were overwritten: a
   * second reaper may run beside it until it exits, which costs work,
   * not correctness (all reaper work is under stripe locks and SQLite
   * transactions).  For a near cache's listener, the same: two listeners
   * both apply every invalidation. */
  int rc = kvshm__seg_lock(kv, true);
  if (rc)
    return kvshm__fail(KVSHM_ECORRUPT,
                       "the %s lock of cache '%s' is damaged (%s)", what,
                       kv->name, why);
  if (kvshm__mutex_check(m, why, sizeof why)) {
    memset(m, 0, sizeof *m);
    rc = kvshm__mutex_init_shared(m);
    if (remade)
      *remade = rc == 0;
  }
  kvshm__seg_lock(kv, false);
  return rc ? kvshm__fail(KVSHM_ECORRUPT,
                          "the %s lock of cache '%s' could not be made "
                          "again",
                          what, kv->name)
            : KVSHM_OK;
}

int kvshm__lock_for_repair(kvshm *kv, uint32_t s, bool force, char *did,
                           size_t didsz) {
  if (kv->flags & KVSHM__READER)
    return reader_refused(kv);
  pthread_mutex_t *m = &kvshm__stripe(kv, s)->lock;
  char why[120];
  did[0] = '\0';
  if (kvshm__mutex_check(m, why, sizeof why)) {
    int rc = mutex_reinit(kv, s, DAMAGED, 0);
    if (!rc)
      snprintf(did, didsz, "lock damaged (%s): made again", why);
    return rc;
  }
  struct timespec ts = kvshm__deadline(kv->lock_timeout_ms);
  int rc = pthread_mutex_timedlock(m, &ts);
  if (rc == 0) {
    kvshm__seq_enter(kv, s);
    mutex_note_held(kv, m);
    return KVSHM_OK;
  }
  if (rc == EOWNERDEAD) {
    lock_failed(kv, s, rc);
    snprintf(did, didsz, "its last lock holder had died: rebuilt");
    return KVSHM_OK;
  }
  uint32_t holder = kvshm__mutex_holder(m);
  enum damage d = rc == ENOTRECOVERABLE ? UNRECOVERABLE : STUCK;
  bool gone = holder && !thread_exists(holder);
  if (rc == ETIMEDOUT && kvshm__others_attached(kv) &&
      !(gone && (force || !kvshm__foreign_attached(kv))))
    return kvshm__fail(KVSHM_ETIMEDOUT,
                       "stripe %u lock is held by thread %u%s and other "
                       "processes are attached%s: stop them and run repair "
                       "again%s",
                       s, holder,
                       gone ? " (no such thread in this PID namespace)" : "",
                       gone ? ", some in other PID namespaces" : "",
                       gone ? ", or use --force if none of them holds it" : "");
  if (rc != ETIMEDOUT && rc != ENOTRECOVERABLE)
    return lock_failed(kv, s, rc);
  rc = mutex_reinit(kv, s, d, holder);
  if (!rc)
    snprintf(did, didsz, "lock %s: made again",
             d == STUCK ? "held by a thread that cannot release it"
                        : "marked unrecoverable");
  return rc;
}

int kvshm__lock(kvshm *kv, uint32_t s) {
  if (kvshm__cut_short(kv))
    return kvshm__cut_short_error(kv);
  int rc = kvshm__lock_raw(kv, s);
  if (rc)
    return rc;
  /* Generations only grow: a stripe ahead of the header proves the header
   * word was overwritten, and raises it back rather than emptying a stripe
   * no clear asked for. */
  struct kvshm_stripe *st = kvshm__stripe(kv, s);
  _Atomic uint64_t *hp = (_Atomic uint64_t *)&kv->hdr->pclear_gen;
  uint64_t pgen = atomic_load_explicit(hp, memory_order_acquire);
  uint64_t gen = kvshm__clear_gen(kv), mine = st->clear_gen;
  if (mine > gen)
    kvshm__clear_gen_raise(kv, mine);
  else if (mine < gen) /* read-only handles too: the clear happened, */
    catch_up_locked(kv, s, gen, pgen); /* this only shows it */
  /* The same for prefix clears (clear.c). */
  uint64_t pmine = st->pclear_gen;
  if (pmine > pgen) {
    uint64_t cur = pgen;
    while (cur < pmine && !atomic_compare_exchange_weak(hp, &cur, pmine))
      ;
  } else if (pmine < pgen) {
    kvshm__pclear_catch_up_locked(kv, s, pmine, pgen);
  }
  return KVSHM_OK;
}

void kvshm__unlock(kvshm *kv, uint32_t s) {
  pthread_mutex_t *m = &kvshm__stripe(kv, s)->lock;
  kvshm__seq_leave(kv, s);
  mutex_restore_held(kv, m);
  pthread_mutex_unlock(m);
}

/*
 * The lock could not be taken cleanly.  EOWNERDEAD: we hold it now, but the
 * stripe may be mid-update; repair it and mark the mutex consistent (like
 * LMDB's mdb_mutex_failed).  Anything else is an error for the caller.
 */
static int lock_failed(kvshm *kv, uint32_t s, int rc) {
  pthread_mutex_t *m = &kvshm__stripe(kv, s)->lock;
  if (rc == EOWNERDEAD) {
    kvshm__repair_locked(kv, s);
    pthread_mutex_consistent(m);
    mutex_note_held(kv, m);
    return KVSHM_OK;
  }
  if (rc == ETIMEDOUT) {
    /* Held all this time by a thread that does not exist, while every
     * attached process is in our PID namespace: nobody can unlock it (its
     * words were overwritten with a stranger's id).  With processes in
     * other namespaces attached the holder may live there: only kvshm-cli
     * repair --force decides. */
    uint32_t holder = kvshm__mutex_holder(m);
    if (holder && !thread_exists(holder) && !kvshm__foreign_attached(kv)) {
      char what[80];
      snprintf(what, sizeof what, "was held by thread %u, which does not exist",
               holder);
      return remake_and_fail(kv, s, STUCK, holder, what);
    }
    return kvshm__fail(KVSHM_ETIMEDOUT,
                       "stripe %u of cache '%s' stayed locked for %u ms "
                       "(by thread %u); if no process holds it, run "
                       "kvshm-cli repair %s",
                       s, kv->name, kv->lock_timeout_ms, holder, kv->name);
  }
  if (rc == ENOTRECOVERABLE) {
    /* A holder unlocked without marking it consistent: only a damaged
     * owner word gets here (lock.c always marks it).  Make it again. */
    return remake_and_fail(kv, s, UNRECOVERABLE, 0, "was marked unrecoverable");
  }
  return kvshm__fail(KVSHM_ECORRUPT,
                     "stripe %u lock of cache '%s' failed: %s; run "
                     "kvshm-cli repair %s",
                     s, kv->name, strerror(rc), kv->name);
}

void kvshm__repair_locked(kvshm *kv, uint32_t s) {
  struct kvshm_stripe *st = kvshm__stripe(kv, s);
  kvshm__seq_enter(kv, s); /* odd already, unless the holder died before */
  uint32_t *buckets = kvshm__buckets(kv, s);
  uint32_t n = kv->nslots;
  /* claimed[i]: ref of the kept entry that owns slot i+1, 0 = unclaimed.
   * Allocated at open (segment.c), with the key buffers: repair never
   * allocates, so it never has to drop an entry for want of memory. */
  uint32_t *claimed = kv->repair_claimed;
  memset(claimed, 0, (size_t)n * sizeof *claimed);
  memset(buckets, 0, (size_t)kv->nbuckets * 4);
  uint64_t corrupt = 0;
  for (uint32_t r = 1; r <= n; r++) {
    unsigned char *slot = kvshm__slot(kv, s, r);
    if ((kvshm__state_load(slot) & KVSHM_KIND_MASK) != KVSHM_KIND_HEAD)
      continue;
    if (r == n / 2)
      kvshm__hook(kv, KVSHM_TP_REPAIR_HALF);
    struct kvshm_head *hd = (void *)slot;
    if (kvshm__entry_check_locked(kv, s, r, true)) {
      hd->state = KVSHM_KIND_FREE;
      corrupt++;
      continue;
    }
    /* Claim its chain; a slot claimed twice means a broken entry.  (It
     * passed its check: every walk of it below runs to its end.) */
    uint64_t total = (uint64_t)hd->klen + hd->vlen;
    struct kvshm__walk w;
    kvshm__walk_start(&w, kv, s, r, total);
    bool clash = claimed[r - 1] != 0;
    while (!clash && kvshm__walk_next(&w) == KVSHM__WALK_NEXT)
      clash = claimed[w.ref - 1] != 0;
    if (clash) {
      hd->state = KVSHM_KIND_FREE;
      corrupt++;
      continue;
    }
    /* A second committed copy of the same key: keep the newer. */
    unsigned char *key = slot + sizeof *hd;
    bool spans = hd->klen > KVSHM_HEAD_DATA(kv->slot_size);
    if (spans) { /* scratch holds KVSHM_KEY_MAX bytes since open */
      kvshm__entry_read_locked(kv, s, r, 0, kv->scratch, hd->klen);
      key = kv->scratch;
    }
    uint64_t h = kvshm__hash(key, hd->klen, 0);
    uint32_t *link = &buckets[kvshm__bucket_of(kv, h)];
    bool keep = true;
    for (uint32_t o = *link; o; o = *link) {
      struct kvshm_head *oh = (void *)kvshm__slot(kv, s, o);
      if (oh->klen == hd->klen) {
        unsigned char *ok = (unsigned char *)oh + sizeof *oh;
        bool same;
        if (spans) {
          kvshm__entry_read_locked(kv, s, o, 0, kv->repair_key, hd->klen);
          same = memcmp(kv->repair_key, key, hd->klen) == 0;
        } else {
          same = memcmp(ok, key, hd->klen) == 0;
        }
        if (same) {
          if ((int32_t)(hd->version - oh->version) > 0) {
            *link = oh->hnext; /* drop the older, indexed one */
            kvshm__walk_start(&w, kv, s, o, (uint64_t)oh->klen + oh->vlen);
            do
              claimed[w.ref - 1] = 0;
            while (kvshm__walk_next(&w) == KVSHM__WALK_NEXT);
            oh->state = KVSHM_KIND_FREE;
          } else {
            keep = false;
          }
          break;
        }
      }
      link = &oh->hnext;
    }
    if (!keep) {
      hd->state = KVSHM_KIND_FREE;
      continue;
    }
    kvshm__walk_start(&w, kv, s, r, total);
    do
      claimed[w.ref - 1] = r;
    while (kvshm__walk_next(&w) == KVSHM__WALK_NEXT);
    hd->hnext = buckets[kvshm__bucket_of(kv, h)];
    buckets[kvshm__bucket_of(kv, h)] = r;
  }
  /* Everything unclaimed is free; recount what is kept. */
  st->free_head = KVSHM_NIL;
  st->fresh = n;
  st->nfree = 0;
  st->entries = st->dirty = st->tombstones = 0;
  st->bytes = 0;
  for (uint32_t r = n; r >= 1; r--) {
    unsigned char *slot = kvshm__slot(kv, s, r);
    if (claimed[r - 1]) {
      struct kvshm_head *hd = (void *)slot;
      if (claimed[r - 1] == r) {
        st->entries++;
        st->bytes += (uint64_t)hd->klen + hd->vlen;
        st->dirty += (hd->state & KVSHM_ST_DIRTY) != 0;
        st->tombstones += (hd->state & KVSHM_ST_TOMB) != 0;
      }
      continue;
    }
    kvshm__free_push_locked(kv, s, r);
  }
  if (!st->dirty)
    st->dirty_since_ms = 0;
  else if (!st->dirty_since_ms)
    st->dirty_since_ms = kvshm__now_ms(kv);
  st->corrupt += corrupt;
  st->repairs++;
  st->gen_evict++; /* broken entries left memory */
}
