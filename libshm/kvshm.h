/*
 * kvshm.h - the public API of libshm, a key-value cache in one POSIX
 * shared-memory segment shared by any number of processes on one host.
 *
 * Every function returns an int status: KVSHM_OK (0) on success, a negative
 * KVSHM_E* code for library errors, or a negative errno value (-ENOENT,
 * -EACCES, ...) passed through from the system.  kvshm_strerror() turns any of
 * them into a sentence, kvshm_err_name() into the code's name, and
 * kvshm_errdetail() gives the calling thread's last detailed message (which
 * value differed, how much memory was needed, ...).
 *
 * A handle (kvshm *) may be used by one thread at a time; open one handle per
 * thread, or lock around a shared one.  Handles are not inherited across
 * fork(): a child opens its own.  A child forked while its parent had a
 * SQLite-backed cache open cannot use SQLite at all (KVSHM_ESQLITE says so):
 * fork before opening one, or exec in the child.
 */
#ifndef KVSHM_H
#define KVSHM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KVSHM_VERSION_STRING "0.1.0"

/* Marks the exported symbols (the library builds with -fvisibility=hidden). */
#define KVSHM_API __attribute__((visibility("default")))

/* An open cache: one mapping of one segment. Opaque. */
typedef struct kvshm kvshm;
/* A position in a walk over every entry (see kvshm_iter_open). Opaque. */
typedef struct kvshm_iter kvshm_iter;

/*
 * Error codes.  One list, expanded into the enum, kvshm_strerror() and
 * kvshm_err_name() (libuv's UV_ERRNO_MAP pattern): add an error here only.
 */
#define KVSHM_ERRNO_MAP(X)                                                     \
  X(NOTFOUND, -30800, "key not found")                                         \
  X(EXIST, -30801, "key already exists (set with NX)")                         \
  X(TOOBIG, -30802, "key or value too large for this cache")                   \
  X(CONFIG, -30803, "segment exists with a different configuration")           \
  X(BADNAME, -30804, "invalid cache name")                                     \
  X(BADMAGIC, -30805, "not a kvshm segment")                                   \
  X(VERSION, -30806, "segment has another layout version")                     \
  X(CORRUPT, -30807, "corrupt data in the shared-memory segment")              \
  X(NOTINT, -30808, "value is not a 64-bit integer")                           \
  X(OVERFLOW, -30809, "increment would overflow a 64-bit integer")             \
  X(BUFSIZE, -30810, "buffer too small for the value")                         \
  X(TIMEDOUT, -30811, "timed out waiting for a stripe lock")                   \
  X(INVAL, -30812, "invalid argument")                                         \
  X(RDONLY, -30813, "cache was opened read-only")                              \
  X(NOSHM, -30814, "not enough free shared memory (/dev/shm)")                 \
  X(SQLITE, -30815, "SQLite error")                                            \
  X(BADDB, -30816, "SQLite file is not a kvshm store, or is corrupt")          \
  X(NOTRECOVERABLE, -30817, "stripe lock is not recoverable")                  \
  X(REAPER, -30818, "could not start the kvshm-reaper process")                \
  X(DESTROYED, -30819, "cache was destroyed while open; open it again")        \
  X(OWNER, -30820, "file belongs to another user (see kvshm_config.trust)")    \
  X(MISMATCH, -30821, "key holds another value than the one expected")         \
  X(STALE, -30822, "key was invalidated since its epoch was read")

typedef enum {
  KVSHM_OK = 0,
#define KVSHM_ERR_ENUM_(name, code, msg) KVSHM_E##name = (code),
  KVSHM_ERRNO_MAP(KVSHM_ERR_ENUM_)
#undef KVSHM_ERR_ENUM_
} kvshm_errno;

/* A sentence for any status: KVSHM_E* codes and negative errno values. */
KVSHM_API const char *kvshm_strerror(int err);
/* The code's name without the KVSHM_ prefix ("ENOTFOUND", "ENOENT", "OK"). */
KVSHM_API const char *kvshm_err_name(int err);
/*
 * The calling thread's last detailed error message, set by the call that
 * failed ("segment 'jobs' has slot_size 160, you asked for 256; ...").
 * Empty string when the last failure had no more to say.
 */
KVSHM_API const char *kvshm_errdetail(void);

/* ---- Configuration ---------------------------------------------------- */

#define KVSHM_DEFAULT_MEMORY (32u << 20) /* 32 MiB: fits Docker's /dev/shm */
#define KVSHM_DEFAULT_SLOT 160u /* 40-byte header + 16-byte key + 100 bytes */
#define KVSHM_MIN_SLOT 64u
#define KVSHM_MAX_SLOT 65536u
#define KVSHM_MAX_STRIPES 1024u
#define KVSHM_KEY_MAX 4096u   /* longest key, bytes */
#define KVSHM_NAME_MAX 200u   /* longest cache name, bytes */
#define KVSHM_PREFIX_MAX 256u /* longest prefix kvshm_clear_prefix takes */
#define KVSHM_DEFAULT_LOCK_TIMEOUT_MS 10000u
#define KVSHM_DEFAULT_FLUSH_DELAY_MS 1000u

/*
 * A cache's configuration.  Initialise with kvshm_config_init() and set what
 * you need; 0 means "the default" when creating and "whatever the segment
 * has" when attaching.  A non-zero value that differs from an existing
 * segment's is KVSHM_ECONFIG, with the differing value in kvshm_errdetail().
 */
typedef struct kvshm_config {
  uint64_t memory_size;     /* segment bytes; default KVSHM_DEFAULT_MEMORY */
  uint32_t slot_size;       /* bytes per slot, multiple of 8; default 160 */
  uint32_t stripes;         /* lock stripes, power of two; default from size */
  uint64_t default_ttl_ms;  /* TTL for sets with KVSHM_TTL_DEFAULT; 0 never */
  uint32_t mode;            /* segment file mode; default 0600 */
  uint32_t lock_timeout_ms; /* give up on a stripe lock after; default 10 s */
  const char *sqlite_path;  /* second tier; NULL = memory only */
  uint32_t persistent;      /* 1: every write reaches SQLite within delay */
  uint32_t flush_delay_ms;  /* persistent mode's bound; default 1000 */
  /* Whose files to accept.  The segment, the SQLite file and the reaper's
   * log must belong to this process's effective uid (as OpenSSH does with
   * its keys), or to a uid or group trusted here; anything else is
   * KVSHM_EOWNER, because another user who owns the file can read and
   * change everything in it. */
  uint32_t trust;     /* KVSHM_TRUST_UID | KVSHM_TRUST_GID, or 0 */
  uint32_t trust_uid; /* with KVSHM_TRUST_UID: files of this owner too */
  uint32_t trust_gid; /* with KVSHM_TRUST_GID: files of this group too */
} kvshm_config;

#define KVSHM_TRUST_UID 0x1u /* trust files owned by cfg.trust_uid */
#define KVSHM_TRUST_GID 0x2u /* trust files whose group is cfg.trust_gid */

/* Fill *cfg with zeros (all defaults). */
KVSHM_API void kvshm_config_init(kvshm_config *cfg);

/* Flags for kvshm_open. */
/* KVSHM_RDONLY: attach read-only, never create.  With read permission
 * only, the segment is mapped read-only and the handle never locks: gets,
 * has, get_many and stats work lock-free, what needs a lock (walks,
 * verify) is KVSHM_ERDONLY, and a stripe whose writer died mid-write is
 * KVSHM_ETIMEDOUT until a writable handle repairs it. */
#define KVSHM_RDONLY 0x1u   /* attach read-only; never create */
#define KVSHM_NOCREATE 0x2u /* attach only; -ENOENT if the cache is missing */
#define KVSHM_NOREAPER 0x4u /* do not start kvshm-reaper (tools, tests) */

/*
 * Open the cache called name, creating its segment if missing.
 *
 * name: 1..KVSHM_NAME_MAX bytes of [A-Za-z0-9._-]; the segment is
 *   /dev/shm/kvshm.<name>.
 * cfg: may be NULL (all defaults).
 * flags: KVSHM_RDONLY, KVSHM_NOCREATE, KVSHM_NOREAPER.
 *
 * Two processes opening a new name at once both succeed on one segment.  A
 * segment is made whole under no name and then linked, so a creator killed
 * half-way (or out of /dev/shm) leaves nothing.  A header whose magic alone
 * was zeroed is put back; a file under the name holding no complete segment
 * is replaced by a new one once no process uses it (never rewritten in
 * place).  The segment must belong to this process's euid or to an owner
 * or group trusted in cfg (KVSHM_EOWNER).
 * Errors: KVSHM_EBADNAME, KVSHM_EINVAL (bad cfg), KVSHM_ECONFIG,
 * KVSHM_EBADMAGIC, KVSHM_EVERSION, KVSHM_ECORRUPT (header fails its checks,
 * or the file is shorter than it says), KVSHM_EOWNER, KVSHM_ENOSHM
 * (/dev/shm too small), KVSHM_ETIMEDOUT (a destroyer or repairer holds the
 * segment's file lock too long), -ENOENT (KVSHM_NOCREATE, missing), -EACCES
 * (also a read-only attach without write permission: it takes the locks
 * inside the segment), other -errno.
 */
KVSHM_API int kvshm_open(const char *name, const kvshm_config *cfg,
                         unsigned flags, kvshm **out);

/* Unmap and free the handle.  The segment stays.  In persistent mode it
 * first writes what is dirty to SQLite (this process may be the last one
 * watching the reaper).  NULL is a no-op. */
KVSHM_API int kvshm_close(kvshm *kv);

/*
 * Destroy the cache: mark its segment destroyed, write everything dirty to
 * SQLite, and remove its name (shm_unlink); the reaper exits.  Processes
 * that still have it open: a memory-only cache keeps working for them
 * until they close (its memory is theirs alone now); a SQLite cache
 * refuses every operation with KVSHM_EDESTROYED (its file belongs to the
 * next segment of that name, which the next open creates).  No process
 * starts a reaper for a destroyed segment.
 * Errors: KVSHM_EBADNAME, -ENOENT, KVSHM_EOWNER (see kvshm_unlink_config).
 */
KVSHM_API int kvshm_unlink(const char *name);
/* kvshm_unlink of a cache whose files are trusted through cfg's trust
 * fields (the other fields are ignored).  A segment or SQLite file of an
 * untrusted owner is KVSHM_EOWNER, and nothing is removed: its dirty
 * entries could not be written first. */
KVSHM_API int kvshm_unlink_config(const char *name, const kvshm_config *cfg);

/* ---- Entries ---------------------------------------------------------- */

/* TTL values for kvshm_set. */
#define KVSHM_TTL_DEFAULT (-1) /* the cache's default_ttl_ms */
#define KVSHM_TTL_NEVER 0      /* never expires */

/* Options for kvshm_set. */
#define KVSHM_NX 0x1u      /* only if the key is absent, else KVSHM_EEXIST */
#define KVSHM_XX 0x2u      /* only if present, else KVSHM_ENOTFOUND */
#define KVSHM_KEEPTTL 0x4u /* keep an existing entry's expiry */

/*
 * Look key up and copy its value into buf.
 *
 * buf/bufsize: where to copy; buf NULL is a size query (bufsize ignored).
 * vlen: set to the value's length whenever the key is found (may be NULL).
 * flags: set to the entry's user flags word (may be NULL).
 * Errors: KVSHM_ENOTFOUND (absent or expired), KVSHM_EBUFSIZE (found, but
 * bufsize < *vlen), KVSHM_ETOOBIG (key too long), KVSHM_ECORRUPT (entry
 * failed its checks; it is dropped), KVSHM_ETIMEDOUT.
 * On any status but KVSHM_OK, what buf holds is unspecified: a lock-free
 * get copies before it knows whether what it copied counts (seqread.c).
 */
KVSHM_API int kvshm_get(kvshm *kv, const void *key, size_t klen, void *buf,
                        size_t bufsize, size_t *vlen, uint32_t *flags);

/*
 * Store value under key.
 *
 * flags: a 32-bit word kept with the entry and returned by get.
 * ttl_ms: milliseconds to live, KVSHM_TTL_NEVER, or KVSHM_TTL_DEFAULT.
 * opts: KVSHM_NX, KVSHM_XX, KVSHM_KEEPTTL.
 * When the key's stripe has no room, the least frequently used entries of
 * that stripe are evicted.
 * Errors: KVSHM_EEXIST (NX), KVSHM_ENOTFOUND (XX), KVSHM_ETOOBIG (entry
 * larger than half a stripe, or key over KVSHM_KEY_MAX), KVSHM_EINVAL,
 * KVSHM_ERDONLY, KVSHM_ETIMEDOUT.
 */
KVSHM_API int kvshm_set(kvshm *kv, const void *key, size_t klen,
                        const void *val, size_t vlen, uint32_t flags,
                        int64_t ttl_ms, unsigned opts);

/* Remove key.  Errors: KVSHM_ENOTFOUND, KVSHM_ERDONLY, KVSHM_ETIMEDOUT. */
KVSHM_API int kvshm_del(kvshm *kv, const void *key, size_t klen);

/*
 * Remove key only if its value is exactly val/vlen, in one atomic step in
 * whichever tier holds it (a lease's owner letting it go).
 * Errors: KVSHM_ENOTFOUND, KVSHM_EMISMATCH (another value), KVSHM_ERDONLY,
 * KVSHM_ETIMEDOUT.
 */
KVSHM_API int kvshm_del_if(kvshm *kv, const void *key, size_t klen,
                           const void *val, size_t vlen);

/* Options for kvshm_get_ex. */
#define KVSHM_PEEK                                                             \
  0x1u /* a look, not a use: no LFU touch, no hit counted,                     \
          nothing promoted from SQLite */

/*
 * kvshm_get, and the entry's absolute expiry in *expires_ms (wall clock
 * ms, 0 = never; may be NULL).  opts: 0 or KVSHM_PEEK.
 */
KVSHM_API int kvshm_get_ex(kvshm *kv, const void *key, size_t klen, void *buf,
                           size_t bufsize, size_t *vlen, uint32_t *flags,
                           uint64_t *expires_ms, unsigned opts);

/*
 * One key of a multi-key call.  The caller fills key/klen (and val, vlen,
 * flags, ttl_ms for kvshm_set_many); the call sets rc, and for
 * kvshm_get_many val, vlen and flags.
 */
typedef struct kvshm_item {
  const void *key;
  size_t klen;
  const void *val; /* set: the value; get: where it was copied (in buf) */
  size_t vlen;     /* its length; get: also when rc is KVSHM_EBUFSIZE */
  uint32_t flags;  /* the user's flags word */
  int64_t ttl_ms;  /* set: as kvshm_set's */
  int rc;          /* this key's status, as the one-key call's */
} kvshm_item;

/*
 * Get, set or delete n keys in one call: keys are grouped by stripe, and
 * each stripe's keys in memory are served under one hold of its lock (the
 * others, and writes that need SQLite, as the one-key calls).  Each item's
 * rc is its own result; keys of one stripe are handled in their order, so
 * the last of several sets of one key wins.
 * kvshm_get_many copies the values one after the other into buf; a value
 * that no longer fits gets KVSHM_EBUFSIZE (and its length in vlen).
 * Returns KVSHM_OK, or an error that concerns the whole call (KVSHM_EINVAL,
 * KVSHM_ERDONLY, -ENOMEM).
 */
KVSHM_API int kvshm_get_many(kvshm *kv, kvshm_item *items, size_t n, void *buf,
                             size_t bufsize);
KVSHM_API int kvshm_set_many(kvshm *kv, kvshm_item *items, size_t n);
KVSHM_API int kvshm_del_many(kvshm *kv, kvshm_item *items, size_t n);

/* KVSHM_OK if key is present and live, else KVSHM_ENOTFOUND. */
KVSHM_API int kvshm_has(kvshm *kv, const void *key, size_t klen);

/*
 * Add delta to the 64-bit integer stored at key, atomically across
 * processes, and put the new value in *result (may be NULL).  The value is
 * kept as decimal ASCII ("42"), so get returns it as text.  A missing key
 * counts as 0 and is created with new_flags and the default TTL; an existing
 * entry keeps its flags and expiry.
 * Errors: KVSHM_ENOTINT, KVSHM_EOVERFLOW, KVSHM_ERDONLY, KVSHM_ETIMEDOUT.
 */
KVSHM_API int kvshm_incr(kvshm *kv, const void *key, size_t klen, int64_t delta,
                         uint32_t new_flags, int64_t *result);

/*
 * Remove every entry of both tiers, as one atomic step seen by every
 * process: a clear interrupted at any instant has happened whole or not at
 * all (memory is emptied stripe by stripe as each is next locked, SQLite's
 * old rows are ignored at once and deleted by the reaper soon after).
 * Errors: KVSHM_ERDONLY, KVSHM_EDESTROYED, KVSHM_ESQLITE (the clear
 * happened, but recording it in the file failed: a segment made again over
 * that file before any later write is written behind would not see it).
 */
KVSHM_API int kvshm_clear(kvshm *kv);

/*
 * Remove every key that starts with prefix/plen (1..KVSHM_PREFIX_MAX bytes)
 * from both tiers, as one atomic step seen by every process: no key of the
 * prefix written before the call survives it, and keys written after it
 * stay.  A clear interrupted at any instant has happened whole or not at
 * all (memory is swept stripe by stripe as each is next locked; SQLite's
 * rows are hidden at once and deleted in the clear's own transaction, or
 * by the next one if the clearer dies).  plen 0 is kvshm_clear.
 * Errors: KVSHM_ETOOBIG (prefix too long), KVSHM_ERDONLY,
 * KVSHM_EDESTROYED, KVSHM_ETIMEDOUT (another clear held the cache's clear
 * lock too long), KVSHM_ESQLITE (the clear happened; its rows are deleted
 * by the next SQLite write).
 */
KVSHM_API int kvshm_clear_prefix(kvshm *kv, const void *prefix, size_t plen);

/* ---- Near cache in front of Redis ------------------------------------- */
/*
 * The segment's half of a near cache (addon/lib/redis.js): one process per
 * host, the listener, holds Redis's invalidation subscription and applies
 * it here; every process serves gets from memory only while the listener
 * is in sync, and fills memory from Redis only if no invalidation of the
 * key came meanwhile.  See near.c for the protocol and why it is safe.
 */

/* CLOCK_MONOTONIC in ms: the clock of synced times, one for every process
 * of the host (not across time namespaces). */
KVSHM_API uint64_t kvshm_clock_ms(void);

/*
 * The key's invalidation epoch, read without a lock: a value read from
 * Redis after this call may be stored with kvshm_set_if_epoch.  It moves
 * on with every kvshm_invalidate of a key of the key's stripe and every
 * clear or prefix clear.
 */
KVSHM_API int kvshm_epoch(kvshm *kv, const void *key, size_t klen,
                          uint64_t *epoch);

/*
 * kvshm_set (no options), only if the key's epoch is still `epoch`, in one
 * hold of its stripe lock.  Errors: KVSHM_ESTALE (it moved: the value may
 * be older than an invalidation already applied; nothing is stored), and
 * kvshm_set's.
 */
KVSHM_API int kvshm_set_if_epoch(kvshm *kv, const void *key, size_t klen,
                                 const void *val, size_t vlen, uint32_t flags,
                                 int64_t ttl_ms, uint64_t epoch);

/*
 * Remove key from both tiers and move its epoch on, in one hold of its
 * stripe lock: a fill that read the key before this call stores nothing
 * after it.  KVSHM_OK whether or not the key was there.
 */
KVSHM_API int kvshm_invalidate(kvshm *kv, const void *key, size_t klen);

/*
 * Become the listener: 1 if this thread now holds the role (it was free,
 * or its holder died), 0 if a live process holds it.  The new listener
 * starts out of sync (kvshm_near_synced 0).  Errors: KVSHM_ERDONLY,
 * KVSHM_ECORRUPT (the role's lock is damaged and could not be made again).
 */
KVSHM_API int kvshm_near_claim(kvshm *kv);
/* Give the role up (out of sync first).  No-op if this handle lacks it;
 * kvshm_close does it too.  Both from the thread that claimed: the lock
 * is that thread's (a robust mutex). */
KVSHM_API int kvshm_near_release(kvshm *kv);
/*
 * The listener says: every invalidation for a write Redis finished before
 * at_ms (kvshm_clock_ms) has been applied; 0: not in sync.  Refused
 * (KVSHM_EINVAL) unless this thread holds the role through this handle.
 */
KVSHM_API int kvshm_near_synced(kvshm *kv, uint64_t at_ms);
/*
 * The listener says which configuration it applies invalidations for
 * (a hash of its tracked prefixes and database, never 0).  Processes of
 * another configuration must neither serve nor fill: the listener does
 * not track what they would cache.  Refused (KVSHM_EINVAL) unless this
 * thread holds the role.
 */
KVSHM_API int kvshm_near_configure(kvshm *kv, uint32_t config);
/* The configuration of the listener (0: none published yet). */
KVSHM_API uint32_t kvshm_near_config(kvshm *kv);
/*
 * kvshm_get, if the listener applies invalidations for `config` and was
 * in sync less than max_lag_ms ago; else KVSHM_ESTALE (read Redis
 * instead).  A hit counts as a near hit.
 */
KVSHM_API int kvshm_near_get(kvshm *kv, const void *key, size_t klen, void *buf,
                             size_t bufsize, size_t *vlen, uint32_t *flags,
                             uint32_t max_lag_ms, uint32_t config);

/* Counters for kvshm_near_count. */
#define KVSHM_NEAR_READS 0u   /* gets that read Redis */
#define KVSHM_NEAR_INVALID 1u /* keys invalidated */
#define KVSHM_NEAR_FLUSHES 2u /* whole-cache flushes */
#define KVSHM_NEAR_REFUSED 3u /* fills refused (KVSHM_ESTALE) */
KVSHM_API int kvshm_near_count(kvshm *kv, unsigned counter, uint64_t n);
/* Record one write-to-invalidation delay, in microseconds. */
KVSHM_API int kvshm_near_delay(kvshm *kv, uint64_t us);

typedef struct kvshm_near_stats {
  uint64_t near_hits;       /* kvshm_near_get calls served from memory */
  uint64_t redis_reads;     /* gets that read Redis */
  uint64_t invalidations;   /* keys invalidated */
  uint64_t flushes;         /* whole-cache flushes */
  uint64_t refused;         /* fills refused: invalidated meanwhile */
  uint64_t listener_starts; /* listeners elected so far (0: never a near
                               cache) */
  uint32_t listener_pid;    /* its pid (in its namespace), 0 if none */
  uint32_t listener_alive;  /* 1 if a live thread holds the role */
  int64_t lag_ms;           /* now - synced time; -1 if not in sync */
  uint64_t delays;          /* delay samples */
  uint64_t delay_p50_us;    /* their median, microseconds (bucket's top) */
  uint64_t delay_p99_us;    /* their 99th percentile */
  uint64_t delay_max_us;    /* the highest bucket's top */
} kvshm_near_stats;
KVSHM_API int kvshm_near_stats_get(kvshm *kv, kvshm_near_stats *st);

/* ---- The reaper ------------------------------------------------------- */

/*
 * Run the reaper of cache `name` in this process until SIGTERM/SIGINT or
 * until the cache is destroyed, then write everything dirty to SQLite.
 * Returns at once (KVSHM_OK) if a healthy reaper already runs for it.
 * log_fd: where to log (timestamped lines), or -1 for the default
 * ($KVSHM_REAPER_LOG, else <sqlite file>.reaper.log, else nowhere), opened
 * without following a symlink, refused if another (untrusted) user owns it
 * (the reaper then runs without a log), created with the cache's mode.
 * This is kvshm-reaper's main loop; kvshm_open starts that process itself.
 */
KVSHM_API int kvshm_reaper_run(const char *name, int log_fd);
/*
 * kvshm_reaper_run, attaching to the cache with cfg (as kvshm_open's, with
 * KVSHM_NOCREATE; NULL = all defaults).  Its trust fields let the reaper
 * accept a segment and files that a trusted user owns, as the process that
 * started it did: kvshm-reaper gets them as --trust-uid / --trust-gid.
 */
KVSHM_API int kvshm_reaper_run_config(const char *name, const kvshm_config *cfg,
                                      int log_fd);

/* ---- Introspection ---------------------------------------------------- */

/* A callback that receives one line of text (verify problems, header). */
typedef void (*kvshm_report_fn)(void *ctx, const char *msg);

typedef struct kvshm_stats {
  /* configuration, as stored in the segment */
  uint64_t memory_size;
  uint32_t slot_size;
  uint32_t stripes;
  uint32_t slots_per_stripe;
  uint32_t layout_version;
  uint64_t default_ttl_ms;
  uint64_t created_ms;          /* wall clock, ms since the epoch */
  uint64_t max_value;           /* largest value with a 16-byte key */
  uint32_t max_key;             /* KVSHM_KEY_MAX */
  uint32_t reaper_pid;          /* 0 if none registered */
  uint64_t reaper_heartbeat_ms; /* last heartbeat, wall clock; 0 never */
  /* contents */
  uint64_t entries; /* live entries in memory */
  uint64_t bytes;   /* key + value bytes of those entries */
  uint64_t slots_used;
  uint64_t slots_free;
  uint64_t dirty; /* entries not yet written to SQLite */
  /* counters since creation */
  uint64_t hits;       /* gets served from memory */
  uint64_t misses;     /* gets not in memory (SQLite asked, if any) */
  uint64_t store_hits; /* of those misses, found in SQLite and promoted */
  uint64_t sets, deletes;
  uint64_t evictions;      /* entries removed to make room */
  uint64_t expirations;    /* entries removed because their TTL passed */
  uint64_t corrupt;        /* entries dropped because they failed checks */
  uint64_t repairs;        /* stripes repaired after a process died */
  uint64_t spills;         /* write-backs a writer ran itself, outside its
                              stripe lock: its stripe was full of entries
                              not yet in SQLite, or persistent mode's bound
                              was near (the reaper is behind or dead) */
  uint64_t tombstones;     /* deleted keys waiting to be removed from SQLite */
  uint64_t dirty_age_ms;   /* the oldest dirty entry is at most this old */
  uint32_t persistent;     /* configuration: persistent mode */
  uint32_t flush_delay_ms; /* configuration: its bound */
  uint64_t reaper_starts;  /* times a reaper was started for this segment */
  uint32_t reaper_alive;   /* 1 if a reaper holds the reaper lock now (in
                              any PID namespace; reaper_pid is its pid as
                              seen in its own namespace) */
  uint32_t destroyed;      /* 1 once kvshm_unlink marked it destroyed */
  uint64_t clear_gen;      /* clears so far (the clear generation) */
} kvshm_stats;

/* Sum every stripe's counters into *st. */
KVSHM_API int kvshm_stats_get(kvshm *kv, kvshm_stats *st);

/* The cache's SQLite file (absolute path), or "" for a memory-only cache. */
KVSHM_API const char *kvshm_sqlite_path(kvshm *kv);
/* The cache's name as given to kvshm_open. */
KVSHM_API const char *kvshm_name(kvshm *kv);

/*
 * KVSHM_OK if key is in the shared-memory tier right now (live, not a
 * tombstone), else KVSHM_ENOTFOUND.  Never looks in SQLite, never promotes.
 */
KVSHM_API int kvshm_in_memory(kvshm *kv, const void *key, size_t klen);

/*
 * Call line(ctx, text) once per header field, as "offset name value"
 * (like SQLite's showwal), for `kvshm-cli header`.
 */
KVSHM_API int kvshm_header_dump(kvshm *kv, kvshm_report_fn line, void *ctx);

/*
 * Write every dirty entry and tombstone to SQLite now, synchronously.  A
 * memory-only cache has nothing to write: KVSHM_OK.
 * Errors: KVSHM_ESQLITE, KVSHM_ETIMEDOUT.
 */
KVSHM_API int kvshm_flush(kvshm *kv);

/* Figures of the SQLite tier (all 0 for a memory-only cache). */
typedef struct kvshm_store_stats {
  uint64_t rows;       /* entries stored in SQLite */
  uint64_t bytes;      /* key + value bytes of those */
  uint64_t file_bytes; /* size of the database file (without WAL) */
  uint64_t expired;    /* rows whose TTL passed, not yet removed */
} kvshm_store_stats;
KVSHM_API int kvshm_store_stats_get(kvshm *kv, kvshm_store_stats *st);

/* Per-stripe figures, for tools (fill per stripe). */
typedef struct kvshm_stripe_stats {
  uint32_t entries;
  uint32_t slots_used;
  uint32_t slots_free;
} kvshm_stripe_stats;
KVSHM_API int kvshm_stripe_stats_get(kvshm *kv, uint32_t stripe,
                                     kvshm_stripe_stats *st);

/*
 * Walk every live entry, in the order of the keys' hashes, a range of
 * buckets at a time, holding a stripe lock only while that range is
 * settled and copied out.  A key that exists for the whole walk is seen
 * exactly once, however it is rewritten or moves between the tiers; a key
 * added or removed during the walk may or may not be seen.  No SQLite
 * statement stays open between two calls.
 * prefix/plen: only keys starting with these bytes (NULL/0 = all).
 * flags: KVSHM_ITER_STORE walks the SQLite tier too (each range of both
 *   tiers together); without it, only what is in memory.
 */
#define KVSHM_ITER_STORE 0x1u
KVSHM_API int kvshm_iter_open(kvshm *kv, const void *prefix, size_t plen,
                              unsigned flags, kvshm_iter **out);
/*
 * Advance to the next entry.  The pointers stay valid until the next call
 * or kvshm_iter_close.  expires_ms is the absolute expiry (0 = never).
 * Returns KVSHM_OK, KVSHM_ENOTFOUND at the end, or an error.
 */
KVSHM_API int kvshm_iter_next(kvshm_iter *it, const void **key, size_t *klen,
                              const void **val, size_t *vlen, uint32_t *flags,
                              uint64_t *expires_ms);
KVSHM_API void kvshm_iter_close(kvshm_iter *it);

/*
 * Check every invariant of the segment: header, and for each stripe its
 * index (every chain in bounds, acyclic, pointing at entries that hash to
 * it), every entry's chain and checksum, the free list, and the counts.
 * Each stripe is locked while it is checked; nothing is changed, except
 * that a stripe lock whose words are damaged is made again (nothing could
 * lock it otherwise) and reported.  A SQLite-backed cache also gets a
 * PRAGMA quick_check of its file.
 * report(ctx, msg) is called once per problem found (may be NULL).
 * Returns the number of problems (0 = healthy), or a negative error.
 */
KVSHM_API int kvshm_verify(kvshm *kv, kvshm_report_fn report, void *ctx);

/*
 * Put right what kvshm_verify finds in the segment: a header whose magic
 * was overwritten (when everything else checks), a damaged stripe lock
 * (re-initialised under the segment's file lock), and every stripe rebuilt
 * from its slots (leaked slots freed, broken entries dropped and counted).
 * A stripe lock held past the lock timeout is re-initialised only when no
 * other process is attached to the segment, or with KVSHM_REPAIR_FORCE
 * when no thread with the holder's id exists in this PID namespace (do not
 * force when processes in other PID namespaces share the cache).
 * report(ctx, msg) is called once per thing repaired (may be NULL).
 * Returns the number of things repaired, or a negative error.
 */
#define KVSHM_REPAIR_FORCE 0x1u
KVSHM_API int kvshm_repair(kvshm *kv, unsigned flags, kvshm_report_fn report,
                           void *ctx);

#ifdef __cplusplus
}
#endif
#endif /* KVSHM_H */
