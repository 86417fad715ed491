/*
 * layout.h - every struct that lives in the shared-memory segment.
 *
 * The segment is one file in /dev/shm, mapped MAP_SHARED by every process.
 * It holds offsets, never pointers: each process maps it at its own address.
 *
 *   offset 0                 struct kvshm_hdr        (KVSHM_HDR_SIZE bytes)
 *   offset KVSHM_HDR_SIZE    struct kvshm_stripe[S]  (256 bytes each)
 *   region_off               stripe 0 region
 *                              buckets  uint32_t[B]  (slot refs, 0 = empty)
 *                              slots    S0 S1 ... S(N-1), slot_size bytes each
 *   region_off + 1*region    stripe 1 region
 *   ...
 *   region_off + S*region    end (<= memory_size)
 *
 * A key's 64-bit hash h picks its stripe (the top log2(S) bits of h) and its
 * bucket within the stripe (the next log2(B) bits), so walking stripes and
 * buckets in order walks keys in the order of h: the SQLite tier keeps rows
 * keyed by h as well (store.c), and a walk of both tiers goes through one
 * range of h at a time (iter.c).  A stripe owns its region outright: its
 * buckets, its N slots, its free list and its counters, all guarded by its one
 * mutex, so no operation ever holds two stripe locks.
 *
 * Slots are referred to by "ref": the slot's index within its stripe plus one,
 * so that zero-filled memory (a fresh ftruncate) reads as "no slot" and needs
 * no initialisation.
 *
 * An entry is a head slot followed by a chain of continuation slots; its data
 * (key bytes, then value bytes) runs across them:
 *
 *   head  [ kvshm_head 40 B | key+value bytes ... slot_size - 40 ]
 *   cont  [ kvshm_cont 12 B | more bytes ...      slot_size - 12 ] -> next
 *
 * Writes are copy-on-write so that a process killed at any instant leaves the
 * stripe repairable (see lock.c): a new entry is written into free slots, and
 * made visible by one release store of its head's state word; only then is
 * the old entry unlinked and freed.  Every entry carries a per-stripe version
 * number so that repair, finding both the old and the new entry committed,
 * keeps the newer one.
 */
#ifndef KVSHM_LAYOUT_H
#define KVSHM_LAYOUT_H

#include "kvshm.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define KVSHM_MAGIC 0x314d48535653564bull /* "KVSVSHM1" little-endian */
/*
 * The layout format word: bump it with ANY change to a struct in this file,
 * to the meaning of a field, or to the hash function (it places keys).
 * Attaching to a segment with another format is KVSHM_EVERSION.
 */
#define KVSHM_FORMAT 6u

/*
 * Which C library's pthread_mutex_t the segment's locks are.  glibc and musl
 * lay the words out differently (same size), so processes built against
 * different ones must never share a segment: containers sharing /dev/shm
 * (an Alpine image beside a Debian one) could; so could an emulated
 * process of another architecture (qemu-user).  Another ABI is
 * KVSHM_EVERSION.
 */
#if defined(__GLIBC__)
#define KVSHM_LIBC 1u /* glibc */
#else
#define KVSHM_LIBC 2u /* musl (or another C library) */
#endif
#if defined(__x86_64__)
#define KVSHM_ARCH 1u
#elif defined(__aarch64__)
#define KVSHM_ARCH 2u
#else
#define KVSHM_ARCH 0u /* another */
#endif
/* libc << 16 | arch << 8 | sizeof(pthread_mutex_t) */
#define KVSHM_ABI                                                              \
  (KVSHM_LIBC << 16 | KVSHM_ARCH << 8 | (uint32_t)sizeof(pthread_mutex_t))

#define KVSHM_HDR_SIZE 16384u
#define KVSHM_STRIPE_SIZE 256u
#define KVSHM_PATH_MAX 4096u
#define KVSHM_NIL 0u            /* "no slot" ref */
#define KVSHM_CLEAR_RECS 8u     /* prefix clears in flight at once */
#define KVSHM_SHARDS 16u        /* counter shards (struct kvshm_shard) */
#define KVSHM_NEAR_BUCKETS 128u /* delay histogram (struct kvshm_near) */
#define KVSHM_NEAR_EPOCHS 1024u /* invalidation epochs (struct kvshm_near) */

/*
 * Counters that lock-free gets (seqread.c) bump: one cache line per shard,
 * so that processes on different shards never write one line.  A handle
 * takes shard `shard_next++ % KVSHM_SHARDS` at open.  Lock rule: none;
 * atomic adds only.  They add to the stripes' hits and misses in stats.
 */
struct kvshm_shard {
  uint64_t hits;      /* lock-free gets that found a live entry */
  uint64_t misses;    /* lock-free gets that found the key absent */
  uint64_t near_hits; /* kvshm_near_get calls served from memory */
  uint64_t pad[5];    /* zero: the rest of the cache line */
};

/*
 * A prefix clear (clear.c), kept in the header until every stripe has
 * swept its keys and SQLite's rows of the prefix are deleted.  Lock rule:
 * written only by the holder of the segment's clear lock (an OFD lock on
 * the segment file, segment.c), and, for a SQLite cache, within SQLite's
 * write lock; `gen` is stored last (release) when it is made, and the
 * header's pclear_gen publishes it.  Readers take it only once its gen is
 * at most the header's pclear_gen.
 */
struct kvshm_clear_rec {
  uint64_t gen;   /* the prefix-clear generation it is; 0 = free */
  uint32_t state; /* KVSHM_REC_PENDING: SQLite's rows of the prefix may
                     still be there (their delete is not committed: every
                     SQLite write transaction deletes them first, so no
                     commit happens before theirs); KVSHM_REC_DONE */
  uint32_t plen;  /* prefix bytes, 1..KVSHM_PREFIX_MAX */
  unsigned char prefix[KVSHM_PREFIX_MAX]; /* the prefix's bytes */
};
#define KVSHM_REC_PENDING 1u
#define KVSHM_REC_DONE 2u

/*
 * A near cache in front of Redis (addon/lib/redis.js, near.c): the state
 * its listener shares with every process of the host.  Lock rule: `lock`
 * is a robust process-shared mutex held by the listener (the one process
 * holding the Redis invalidation subscription) for as long as it listens,
 * by nothing else: a trylock that succeeds or gets EOWNERDEAD elects a new
 * listener (kvshm_near_claim), as reaper_lock elects the reaper.  Every
 * other field: atomic access only.
 */
struct kvshm_near {
  pthread_mutex_t lock;     /* held by the listener, see above */
  uint32_t listener_pid;    /* its pid in its PID namespace; display only */
  uint32_t config;          /* the listener's configuration (a hash of
                               what it tracks, kvshm_near_configure): a
                               process of another one serves nothing */
  uint64_t synced_ms;       /* kvshm_clock_ms time: every invalidation Redis
                               sent for a write it finished before then has
                               been applied here; 0: not in sync (no
                               listener, or it is resubscribing).  Only
                               the listener stores it */
  uint64_t listener_starts; /* listeners elected so far */
  uint64_t redis_reads;     /* near gets that read Redis */
  uint64_t invalidations;   /* keys invalidated for Redis */
  uint64_t flushes;         /* whole-cache flushes: (re)subscriptions, and
                               Redis's FLUSHALL / FLUSHDB */
  uint64_t refused;         /* fills refused: invalidated during the read */
  uint64_t delays;          /* delay samples in delay_hist */
  uint32_t delay_hist[KVSHM_NEAR_BUCKETS]; /* write-to-invalidation delays
                                of other hosts' probe writes, by
                                bucket_of (near.c) of the microseconds */
  /* Invalidation epochs: a key's is epochs[hash % KVSHM_NEAR_EPOCHS].
   * kvshm_invalidate adds one (atomic add) while it holds the key's stripe
   * lock, in the hold that removes the key; kvshm_epoch reads it without
   * a lock; kvshm_set_if_epoch compares it under the key's stripe lock.
   * Keys of other stripes may share one: their fills are refused for
   * nothing now and then, never wrongly stored. */
  uint64_t epochs[KVSHM_NEAR_EPOCHS] __attribute__((aligned(64)));
};

/* ---- Header ------------------------------------------------------------
 * Written once by the creator while it holds the segment's flock (see
 * segment.c); read-only after `magic` is stored.  Fields after `hdr_check`
 * are updated at run time by the reaper with atomic stores.
 */
struct kvshm_hdr {
  uint64_t magic;           /* KVSHM_MAGIC, stored last at creation */
  uint32_t format;          /* KVSHM_FORMAT of the creator */
  uint32_t hdr_size;        /* KVSHM_HDR_SIZE */
  uint64_t memory_size;     /* total bytes, equals the file size */
  uint32_t slot_size;       /* bytes per slot */
  uint32_t stripes;         /* number of stripes, a power of two */
  uint32_t slots;           /* slots per stripe */
  uint32_t buckets;         /* buckets per stripe, a power of two */
  uint64_t region_off;      /* offset of stripe 0's region */
  uint64_t region_size;     /* bytes per stripe region */
  uint64_t default_ttl_ms;  /* TTL of sets with KVSHM_TTL_DEFAULT */
  uint64_t created_ms;      /* wall clock at creation, ms since the epoch */
  uint32_t lock_timeout_ms; /* how long a locker waits for a stripe */
  uint32_t persistent;      /* 1: dirty entries reach SQLite within delay */
  uint32_t flush_delay_ms;  /* persistent mode's bound on that delay */
  uint32_t creator_pid;     /* process that initialised the segment */
  char sqlite_path[KVSHM_PATH_MAX]; /* absolute path, "" = memory only */
  uint32_t hdr_check; /* hash of every field above; a mismatch is corrupt */
  uint32_t abi;       /* KVSHM_ABI of the creator (hdr_check covers it) */
  /* Run-time fields, atomic access only: */
  uint32_t reaper_pid;          /* pid of the running kvshm-reaper (in its
                                   own PID namespace), 0 none; for display
                                   only: liveness is reaper_lock */
  uint32_t destroyed;           /* 1 once kvshm_unlink began removing the
                                   name: no new reaper, and a SQLite cache
                                   refuses operations (KVSHM_EDESTROYED) */
  uint64_t reaper_heartbeat_ms; /* reaper's last sign of work, wall clock */
  uint64_t reaper_starts;       /* times a reaper has been started */
  uint64_t reaper_spawn_ms;     /* last time a process spawned a reaper */
  uint64_t clear_gen;           /* clear generation: kvshm_clear increments
                                   it, and that one atomic step is the
                                   clear.  A stripe whose clear_gen is
                                   older is emptied by its next locker
                                   (lock.c); a SQLite row whose gen differs
                                   is not there (store.c). */
  uint64_t nonce;               /* random, never 0, set at creation: this
                                   segment's claim on its SQLite file.  The
                                   file's kvshm_meta 'owner' names the
                                   segment that may write it; a destroyed
                                   segment's late writers find another
                                   owner there and write nothing */
  /* Lock rule: held by the running reaper for its whole life, by nothing
   * else except for an instant (a check that finds it free releases it at
   * once).  A trylock that succeeds or gets EOWNERDEAD means no reaper
   * runs, in whatever PID namespace: liveness never depends on pids. */
  pthread_mutex_t reaper_lock;
  uint64_t pclear_gen;  /* prefix clears so far: kvshm_clear_prefix fills a
                           record of clears[] with gen pclear_gen + 1, then
                           stores that here (release): that store is the
                           clear.  A stripe whose pclear_gen is older
                           removes the prefixes' keys at its next lock */
  uint64_t pclear_done; /* records that went from PENDING to DONE so far,
                           moved just before each one's state (clear.c):
                           a SQLite read re-reads when it moved meanwhile
                           (its snapshot may predate the delete) */
  struct kvshm_clear_rec clears[KVSHM_CLEAR_RECS]; /* prefix clears not yet
                           swept by every stripe, or not yet deleted from
                           SQLite (see struct kvshm_clear_rec) */
  uint32_t shard_next; /* shards handed out so far (atomic add), mod
                          KVSHM_SHARDS is the next handle's shard */
  uint32_t pad_shards; /* zero */
  /* Counters of lock-free gets, one cache line each (see above). */
  struct kvshm_shard shards[KVSHM_SHARDS] __attribute__((aligned(64)));
  /* A near cache's listener state (see above). */
  struct kvshm_near near __attribute__((aligned(64)));
};

_Static_assert(offsetof(struct kvshm_hdr, magic) == 0, "magic first");
_Static_assert(offsetof(struct kvshm_hdr, format) == 8, "format at 8");
_Static_assert(offsetof(struct kvshm_hdr, sqlite_path) == 88, "path at 88");
_Static_assert(offsetof(struct kvshm_hdr, hdr_check) == 4184,
               "check after path");
_Static_assert(sizeof(struct kvshm_hdr) <= KVSHM_HDR_SIZE, "header fits");
_Static_assert(sizeof(struct kvshm_shard) == 64, "a shard is a cache line");

/* ---- Stripe ------------------------------------------------------------
 * Lock rules:
 *  - `seq` is the stripe's sequence word, for lock-free reads (seqread.c):
 *    odd from the moment a process takes `lock` (before it changes
 *    anything) until just before it lets go, when it becomes even and one
 *    higher.  A holder that dies leaves it odd; the next locker repairs the
 *    stripe and makes it even when it unlocks.  A lock-free reader reads
 *    it (acquire), reads what it needs, and takes what it read only if the
 *    word was even and is unchanged (read again after an acquire fence):
 *    then no holder changed anything meanwhile.
 *  - `lock` is a process-shared, robust mutex.  Every field below it, and
 *    every bucket and slot of the stripe's region, is read and written only
 *    while holding it.  Nothing ever holds two stripe locks.
 *  - A locker that gets EOWNERDEAD repairs the stripe (lock.c) before
 *    marking the mutex consistent; repair derives every field marked
 *    "derived" from the slots, so a holder killed mid-update leaves nothing
 *    that repair cannot rebuild.
 *  - Counters ("kept") survive repair.
 */
struct kvshm_stripe {
  pthread_mutex_t lock; /* guards everything below and the region */
  uint32_t seq;         /* odd while `lock` is held, see above */
  char pad_lock[60 - sizeof(pthread_mutex_t)]; /* the rest of the line */
  /* Protected by lock: */
  uint32_t free_head;   /* derived: first free slot ref, chained by hnext */
  uint32_t fresh;       /* derived: slots [fresh, slots) never used yet */
  uint32_t nfree;       /* derived: free-list length + (slots - fresh) */
  uint32_t entries;     /* derived: committed entries (incl. tombstones) */
  uint32_t version;     /* kept: version stamped on the last commit */
  uint32_t dirty;       /* derived: entries with KVSHM_ST_DIRTY */
  uint64_t bytes;       /* derived: key + value bytes of the entries */
  uint64_t hits;        /* kept: gets that found a live entry */
  uint64_t misses;      /* kept: gets that did not */
  uint64_t sets;        /* kept: successful sets and incrs */
  uint64_t deletes;     /* kept: successful deletes */
  uint64_t evictions;   /* kept: entries evicted for room */
  uint64_t expirations; /* kept: entries removed after their TTL */
  uint64_t corrupt;     /* kept: entries dropped for failing checks */
  uint64_t repairs;     /* kept: repairs after a holder died */
  uint64_t spills;      /* kept: write-backs a writer ran itself, outside
                           the lock (its stripe was full of dirty
                           entries, or persistent mode's bound neared) */
  uint32_t tombstones;  /* derived: entries with KVSHM_ST_TOMB */
  uint32_t
      gen_evict;           /* kept: bumped whenever an entry leaves memory
                              (eviction, expiry, a written-back tombstone,
                              clear, repair), and at every prefix clear's
                              sweep (its SQLite rows went).  A key absent from memory has
                              its newest value in SQLite, and nobody writes
                              its row until it is back in memory, so a
                              SQLite read done between two lock holds that
                              saw the same gen_evict and clear_gen is still
                              the key's truth at the second (ops.c) */
  uint64_t dirty_since_ms; /* wall clock when `dirty` last went 0 -> 1: the
                              oldest dirty entry is at most this old; 0 if
                              none (repair sets it to the repair time) */
  uint32_t pad[2];         /* zero (format 1's gen_spill and padding) */
  uint64_t store_hits;     /* kept: gets that missed memory, found SQLite */
  uint64_t clear_gen;      /* kept: the header's clear_gen this stripe was
                              last emptied for; kvshm__lock empties it
                              when the header's has moved on */
  uint64_t pclear_gen;     /* kept: the header's pclear_gen this stripe
                              last removed prefix-cleared keys for */
  uint64_t pad2[5];        /* zero; room for more counters */
};

_Static_assert(sizeof(pthread_mutex_t) <= 64, "mutex fits a cache line");
_Static_assert(offsetof(struct kvshm_stripe, free_head) == 64, "line 2");
_Static_assert(offsetof(struct kvshm_stripe, dirty_since_ms) == 176, "ds");
_Static_assert(sizeof(struct kvshm_stripe) == KVSHM_STRIPE_SIZE, "size");

/* ---- Slots -------------------------------------------------------------
 * Slot state word (`state`, first 16 bits of every slot):
 *
 *   bit 15 ......... 8 7 6 5 4 3 ... 0
 *       reserved (0)   T S D   kind
 *
 *   kind: 0 free, 1 head of a committed entry, 2 continuation
 *   D  KVSHM_ST_DIRTY  written since SQLite last saw it
 *   S  KVSHM_ST_STORED SQLite may hold a copy of this key
 *   T  KVSHM_ST_TOMB   tombstone: the key was deleted; SQLite must forget it
 */
#define KVSHM_KIND_MASK 0x000fu
#define KVSHM_KIND_FREE 0u
#define KVSHM_KIND_HEAD 1u
#define KVSHM_KIND_CONT 2u
#define KVSHM_ST_DIRTY 0x0010u
#define KVSHM_ST_STORED 0x0020u
#define KVSHM_ST_TOMB 0x0040u
#define KVSHM_ST_KNOWN 0x007fu /* any other bit set is corruption */

/*
 * LFU word (`lfu`), in the spirit of Redis's evict.c:
 *
 *   bit 31 ................... 8 7 ...... 0
 *       last decrement time        counter
 *       (minutes, mod 2^24)        (log.)
 *
 * The counter grows logarithmically (see lfu.c for the constants) and loses
 * one point per KVSHM_LFU_DECAY_MIN minutes without access.
 */

/* Head of an entry: the first slot.  40 bytes, then data. */
struct kvshm_head {
  uint16_t state;      /* kind KVSHM_KIND_HEAD | ST_* bits; stored last */
  uint16_t klen;       /* key bytes, <= KVSHM_KEY_MAX */
  uint32_t hnext;      /* next entry ref in this bucket's chain */
  uint32_t cnext;      /* first continuation slot ref, KVSHM_NIL if none */
  uint32_t vlen;       /* value bytes */
  uint32_t flags;      /* the user's flags word */
  uint32_t lfu;        /* LFU word, see above */
  uint64_t expires_ms; /* absolute expiry, wall clock ms; 0 = never */
  uint32_t version;    /* stripe version at commit; newer wins in repair */
  uint32_t check;      /* hash of klen, vlen, flags, key and value */
};

/* A continuation slot.  12 bytes, then data. */
struct kvshm_cont {
  uint16_t state; /* KVSHM_KIND_CONT */
  uint16_t pad;   /* zero */
  uint32_t owner; /* ref of the head slot this belongs to */
  uint32_t cnext; /* next continuation slot ref, KVSHM_NIL at the end */
};

/* A free slot: only its state (free) and hnext (free-list link) matter. */

_Static_assert(sizeof(struct kvshm_head) == 40, "head is 40 bytes");
_Static_assert(sizeof(struct kvshm_cont) == 12, "cont is 12 bytes");
_Static_assert(offsetof(struct kvshm_head, hnext) == 4, "hnext at 4");
_Static_assert(offsetof(struct kvshm_head, expires_ms) == 24, "expiry");

#define KVSHM_HEAD_DATA(slot_size) ((slot_size) - sizeof(struct kvshm_head))
#define KVSHM_CONT_DATA(slot_size) ((slot_size) - sizeof(struct kvshm_cont))

#endif /* KVSHM_LAYOUT_H */
