/*
 * segment.c - creating, attaching to and removing a cache's segment.
 *
 * A file under the name /dev/shm/kvshm.NAME is always a complete segment:
 * it is made under no name (O_TMPFILE), sized, reserved (posix_fallocate:
 * a full /dev/shm is an error here, never a SIGBUS later), initialised,
 * and only then linked under the name.  A creator killed half-way, or one
 * that runs out of memory, leaves nothing behind.  Creators take turns on
 * the flock of /dev/shm itself, so that many processes starting at once
 * reserve the memory once; a loser finds the name there and attaches.
 *
 * Attaching: open the name, flock(LOCK_SH) it (waiting out a destroyer or
 * a repairer, which hold LOCK_EX), check that it still has its name, that
 * its owner is trusted (trust.c: another user's segment could be read and
 * changed by them), and that its header is whole: format, checksum, the
 * geometry against the file size, then the caller's configuration.
 *
 * A damaged header is never repaired or re-initialised in place (other
 * processes may map the file, and shrinking or rewriting it under them
 * would fault or wipe their cache):
 *   - a magic word that alone was overwritten is put back;
 *   - otherwise, if the caller may create and no process is attached, the
 *     name is removed and a new segment made (the old file vanishes with
 *     its last mapping); if processes are attached it is KVSHM_ECORRUPT.
 *
 * Every handle holds an open-file-description read lock on byte 0 of the
 * file for its life (fcntl F_OFD_SETLK): "is anyone else attached?" is one
 * F_OFD_GETLK, in any PID namespace, and the kernel drops a dead process's
 * lock.  The flock is separate: held shared by openers while they check,
 * and exclusively, briefly, by a destroyer, a replacer, and whoever makes a
 * damaged stripe lock again (lock.c).
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define OPEN_LOCK_WAIT_MS 5000
#define CREATE_LOCK_WAIT_MS 60000 /* reserving GBs takes a while */
#define SHM_DIR "/dev/shm"
#define MIN_SLOTS_PER_STRIPE 8u

uint64_t kvshm__coarse_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t kvshm__wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void kvshm_config_init(kvshm_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
}

static int check_name(const char *name, char *path, size_t pathsz) {
  if (!name || !*name)
    return kvshm__fail(KVSHM_EBADNAME,
                       "cache name is empty; use 1 to %u "
                       "characters of A-Z a-z 0-9 . _ -",
                       KVSHM_NAME_MAX);
  size_t n = strlen(name);
  if (n > KVSHM_NAME_MAX)
    return kvshm__fail(KVSHM_EBADNAME,
                       "cache name is %zu bytes long; the "
                       "limit is %u",
                       n, KVSHM_NAME_MAX);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
      return kvshm__fail(KVSHM_EBADNAME,
                         "cache name '%s' has %s at byte "
                         "%zu; use only A-Z a-z 0-9 . _ -",
                         name, c == '/' ? "a slash" : "a character not allowed",
                         i);
  }
  if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
    return kvshm__fail(KVSHM_EBADNAME, "cache name '%s' is reserved", name);
  snprintf(path, pathsz, "/kvshm.%s", name);
  return KVSHM_OK;
}

uint32_t kvshm__hdr_check(const struct kvshm_hdr *h) {
  /* Everything between the magic (stored after this is computed) and the
   * check itself, and the ABI word after it. */
  const unsigned char *p = (const unsigned char *)h + sizeof h->magic;
  uint64_t fields =
      kvshm__hash(p, offsetof(struct kvshm_hdr, hdr_check) - sizeof h->magic,
                  0x6b7673686d686472ull);
  return (uint32_t)kvshm__hash(&h->abi, sizeof h->abi, fields);
}

/* Geometry derived from (memory, slot size, stripes).  Deterministic, so an
 * attacher recomputes it and compares with what the header claims. */
struct geom {
  uint32_t slots, buckets;
  uint64_t region_off, region_size;
};

static uint32_t pow2_ceil(uint32_t v) {
  uint32_t p = 1;
  while (p < v)
    p <<= 1;
  return p;
}

static int geom_compute(uint64_t mem, uint32_t slot, uint32_t stripes,
                        struct geom *g) {
  uint64_t fixed = KVSHM_HDR_SIZE + (uint64_t)stripes * KVSHM_STRIPE_SIZE;
  g->region_off = (fixed + 63) & ~63ull;
  if (mem <= g->region_off)
    return KVSHM_EINVAL;
  uint64_t region = (mem - g->region_off) / stripes & ~63ull;
  uint64_t n = region / (slot + 4u);
  if (n > UINT32_MAX / 2)
    n = UINT32_MAX / 2;
  /* Largest slot count whose slots plus power-of-two buckets fit. */
  while (n > 0 && n * slot + (uint64_t)pow2_ceil((uint32_t)n) * 4u > region)
    n--;
  if (n < MIN_SLOTS_PER_STRIPE)
    return KVSHM_EINVAL;
  g->slots = (uint32_t)n;
  g->buckets = pow2_ceil((uint32_t)n);
  g->region_size = region;
  return KVSHM_OK;
}

static uint32_t default_stripes(uint64_t mem) {
  uint64_t want = mem / (4u << 20); /* a stripe of at least 4 MiB */
  uint32_t s = 1;
  while (s * 2 <= want && s < 64)
    s *= 2;
  return s;
}

static int config_resolve(const kvshm_config *in, kvshm_config *c) {
  *c = *in;
  if (!c->memory_size)
    c->memory_size = KVSHM_DEFAULT_MEMORY;
  if (!c->slot_size)
    c->slot_size = KVSHM_DEFAULT_SLOT;
  if (!c->stripes)
    c->stripes = default_stripes(c->memory_size);
  if (!c->mode)
    c->mode = 0600;
  if (!c->lock_timeout_ms)
    c->lock_timeout_ms = KVSHM_DEFAULT_LOCK_TIMEOUT_MS;
  if (!c->flush_delay_ms)
    c->flush_delay_ms = KVSHM_DEFAULT_FLUSH_DELAY_MS;
  if (c->slot_size < KVSHM_MIN_SLOT || c->slot_size > KVSHM_MAX_SLOT ||
      c->slot_size % 8)
    return kvshm__fail(KVSHM_EINVAL,
                       "slot_size %u is invalid: use a multiple "
                       "of 8 from %u to %u",
                       c->slot_size, KVSHM_MIN_SLOT, KVSHM_MAX_SLOT);
  if (c->stripes > KVSHM_MAX_STRIPES || (c->stripes & (c->stripes - 1)))
    return kvshm__fail(KVSHM_EINVAL,
                       "stripes %u is invalid: use a power of "
                       "two from 1 to %u",
                       c->stripes, KVSHM_MAX_STRIPES);
  if (c->mode & ~0777u)
    return kvshm__fail(KVSHM_EINVAL,
                       "mode %o is invalid: use permission "
                       "bits only (e.g. 0600)",
                       c->mode);
  if (c->flush_delay_ms > 3600u * 1000u)
    return kvshm__fail(KVSHM_EINVAL, "flush_delay_ms %u is over an hour",
                       c->flush_delay_ms);
  if (c->sqlite_path && strlen(c->sqlite_path) >= KVSHM_PATH_MAX)
    return kvshm__fail(KVSHM_EINVAL, "sqlite_path is longer than %u bytes",
                       KVSHM_PATH_MAX - 1);
  if (c->persistent > 1)
    return kvshm__fail(KVSHM_EINVAL, "persistent must be 0 or 1");
  if (c->persistent && (!c->sqlite_path || !*c->sqlite_path))
    return kvshm__fail(KVSHM_EINVAL, "persistent mode needs a sqlite_path");
  struct geom g;
  if (geom_compute(c->memory_size, c->slot_size, c->stripes, &g)) {
    uint64_t need =
        KVSHM_HDR_SIZE +
        (uint64_t)c->stripes * (KVSHM_STRIPE_SIZE + 64 +
                                MIN_SLOTS_PER_STRIPE * (c->slot_size + 8u));
    return kvshm__fail(KVSHM_EINVAL,
                       "memory_size %llu is too small for %u "
                       "stripes of %u-byte slots: use at least %llu bytes",
                       (unsigned long long)c->memory_size, c->stripes,
                       c->slot_size, (unsigned long long)need);
  }
  return KVSHM_OK;
}

/* "glibc on x86-64": what a KVSHM_ABI word says, into buf. */
static const char *abi_name(uint32_t abi, char *buf, size_t n) {
  static const char *const libc[] = {"an unknown C library", "glibc", "musl"};
  static const char *const arch[] = {"another architecture", "x86-64", "arm64"};
  uint32_t l = abi >> 16, a = abi >> 8 & 0xff;
  snprintf(buf, n, "%s on %s (%u-byte mutexes)", libc[l < 3 ? l : 0],
           arch[a < 3 ? a : 0], abi & 0xff);
  return buf;
}

/* Is the mapped header a complete, self-consistent segment of `fsize`? */
int kvshm__hdr_validate(const struct kvshm_hdr *h, uint64_t fsize,
                        const char *name) {
  if (h->format != KVSHM_FORMAT)
    return kvshm__fail(KVSHM_EVERSION,
                       "segment '%s' has layout format %u; "
                       "this library reads format %u: use the same kvshm "
                       "version everywhere, or destroy the cache",
                       name, h->format, KVSHM_FORMAT);
  if (h->hdr_size != KVSHM_HDR_SIZE || kvshm__hdr_check(h) != h->hdr_check)
    return kvshm__fail(KVSHM_ECORRUPT,
                       "segment '%s' header fails its "
                       "checksum: it was overwritten; destroy the cache "
                       "(kvshm-cli destroy %s)",
                       name, name);
  if (h->abi != KVSHM_ABI) {
    char theirs[96], ours[96];
    return kvshm__fail(KVSHM_EVERSION,
                       "segment '%s' was made by kvshm built for %s; this "
                       "process's kvshm is built for %s: every process "
                       "sharing a cache must use the same C library and "
                       "architecture (an Alpine container and a Debian one "
                       "cannot share one)",
                       name, abi_name(h->abi, theirs, sizeof theirs),
                       abi_name(KVSHM_ABI, ours, sizeof ours));
  }
  if (h->memory_size != fsize)
    return kvshm__fail(KVSHM_ECORRUPT,
                       "segment '%s' header says %llu bytes "
                       "but the file has %llu",
                       name, (unsigned long long)h->memory_size,
                       (unsigned long long)fsize);
  struct geom g;
  if (h->stripes == 0 || h->stripes > KVSHM_MAX_STRIPES ||
      (h->stripes & (h->stripes - 1)) || h->slot_size < KVSHM_MIN_SLOT ||
      h->slot_size > KVSHM_MAX_SLOT ||
      geom_compute(h->memory_size, h->slot_size, h->stripes, &g) ||
      g.slots != h->slots || g.buckets != h->buckets ||
      g.region_off != h->region_off || g.region_size != h->region_size)
    return kvshm__fail(KVSHM_ECORRUPT,
                       "segment '%s' header geometry is "
                       "inconsistent",
                       name);
  if (memchr(h->sqlite_path, 0, sizeof h->sqlite_path) == NULL)
    return kvshm__fail(KVSHM_ECORRUPT,
                       "segment '%s' sqlite_path is not "
                       "terminated",
                       name);
  return KVSHM_OK;
}

#define DIFF_U(field, what)                                                    \
  if (want->field && want->field != h->field)                                  \
    return kvshm__fail(KVSHM_ECONFIG,                                          \
                       "cache '%s' exists with %s %llu, you "                  \
                       "asked for %llu: pass 0 (or omit it) to use the "       \
                       "existing value, or destroy the cache first",           \
                       name, what, (unsigned long long)h->field,               \
                       (unsigned long long)want->field);

static int config_compare(const struct kvshm_hdr *h, const kvshm_config *want,
                          const char *name) {
  DIFF_U(memory_size, "memory_size")
  DIFF_U(slot_size, "slot_size")
  DIFF_U(stripes, "stripes")
  DIFF_U(default_ttl_ms, "default_ttl_ms")
  DIFF_U(persistent, "persistent")
  DIFF_U(flush_delay_ms, "flush_delay_ms")
  return KVSHM_OK;
}

int kvshm__mutex_init_shared(pthread_mutex_t *m) {
  pthread_mutexattr_t a;
  int rc = pthread_mutexattr_init(&a);
  if (!rc)
    rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  if (!rc)
    rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  if (!rc)
    rc = pthread_mutex_init(m, &a);
  pthread_mutexattr_destroy(&a);
  return -rc;
}

/* Size, reserve and initialise the segment behind fd (flock held). */
static int segment_init(int fd, const kvshm_config *c, const char *name,
                        const char *sqlite_abs, unsigned char **basep) {
  struct geom g;
  /* config_resolve already checked this geometry; check again rather than
   * use g uninitialised (gcc -O3 warns that it could be). */
  if (geom_compute(c->memory_size, c->slot_size, c->stripes, &g))
    return kvshm__fail(KVSHM_EINVAL, "cache '%s': geometry does not fit", name);
  if (ftruncate(fd, 0) || ftruncate(fd, (off_t)c->memory_size))
    return kvshm__fail(-errno, "cannot size segment '%s': %s", name,
                       strerror(errno));
  int rc = posix_fallocate(fd, 0, (off_t)c->memory_size);
  if (rc) {
    struct statvfs vfs;
    unsigned long long avail = 0;
    if (statvfs("/dev/shm", &vfs) == 0)
      avail = (unsigned long long)vfs.f_bavail * vfs.f_frsize;
    (void)ftruncate(fd, 0);
    if (rc == ENOSPC)
      return kvshm__fail(KVSHM_ENOSHM,
                         "cache '%s' needs %llu bytes of shared "
                         "memory but /dev/shm has %llu free: lower "
                         "memory_size or enlarge /dev/shm (docker run "
                         "--shm-size)",
                         name, (unsigned long long)c->memory_size, avail);
    return kvshm__fail(-rc, "cannot reserve %llu bytes for '%s': %s",
                       (unsigned long long)c->memory_size, name, strerror(rc));
  }
  void *base =
      mmap(NULL, c->memory_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED)
    return kvshm__fail(-errno, "cannot map '%s': %s", name, strerror(errno));
  struct kvshm_hdr *h = base;
  h->format = KVSHM_FORMAT;
  h->abi = KVSHM_ABI;
  h->hdr_size = KVSHM_HDR_SIZE;
  h->memory_size = c->memory_size;
  h->slot_size = c->slot_size;
  h->stripes = c->stripes;
  h->slots = g.slots;
  h->buckets = g.buckets;
  h->region_off = g.region_off;
  h->region_size = g.region_size;
  h->default_ttl_ms = c->default_ttl_ms;
  h->created_ms = kvshm__wall_ms();
  h->lock_timeout_ms = c->lock_timeout_ms;
  h->persistent = c->persistent;
  h->flush_delay_ms = c->flush_delay_ms;
  h->creator_pid = (uint32_t)getpid();
  uint64_t nonce = 0;
  if (getrandom(&nonce, sizeof nonce, GRND_NONBLOCK) != (ssize_t)sizeof nonce)
    nonce = kvshm__hash(&h->created_ms, sizeof h->created_ms,
                        (uint64_t)getpid() << 32 ^ (uintptr_t)base);
  h->nonce = nonce ? nonce : 1;
  snprintf(h->sqlite_path, sizeof h->sqlite_path, "%s", sqlite_abs);
  h->hdr_check = kvshm__hdr_check(h);
  struct kvshm_stripe *st = (void *)((unsigned char *)base + KVSHM_HDR_SIZE);
  for (uint32_t s = 0; s < c->stripes; s++) {
    rc = kvshm__mutex_init_shared(&st[s].lock);
    if (rc) {
      munmap(base, c->memory_size);
      return kvshm__fail(rc, "cannot initialise stripe lock: %s",
                         strerror(-rc));
    }
    st[s].nfree = g.slots; /* every slot is fresh: fresh = 0 */
  }
  rc = kvshm__mutex_init_shared(&h->reaper_lock);
  if (rc) {
    munmap(base, c->memory_size);
    return kvshm__fail(rc, "cannot initialise the reaper lock: %s",
                       strerror(-rc));
  }
  rc = kvshm__mutex_init_shared(&h->near.lock);
  if (rc) {
    munmap(base, c->memory_size);
    return kvshm__fail(rc, "cannot initialise the near-cache lock: %s",
                       strerror(-rc));
  }
  /* Buckets and slots are zero from ftruncate: empty, free. */
  atomic_store_explicit((_Atomic uint64_t *)&h->magic, KVSHM_MAGIC,
                        memory_order_release);
  *basep = base;
  return KVSHM_OK;
}

/* flock with a deadline, so a stuck opener is an error, not a hang. */
static int flock_wait(int fd, int op, const char *name, int wait_ms) {
  for (int waited = 0;; waited++) {
    if (flock(fd, op | LOCK_NB) == 0)
      return KVSHM_OK;
    if (errno != EWOULDBLOCK && errno != EINTR)
      return kvshm__fail(-errno, "cannot lock segment '%s': %s", name,
                         strerror(errno));
    if (waited >= wait_ms)
      return kvshm__fail(KVSHM_ETIMEDOUT,
                         "another process has held the file lock of "
                         "segment '%s' for %d ms",
                         name, wait_ms);
    usleep(1000);
  }
}

static int resolve_sqlite(const kvshm_config *c, char *out, size_t outsz) {
  out[0] = '\0';
  if (!c->sqlite_path || !*c->sqlite_path)
    return KVSHM_OK;
  if (c->sqlite_path[0] == '/') {
    snprintf(out, outsz, "%s", c->sqlite_path);
    return KVSHM_OK;
  }
  char cwd[KVSHM_PATH_MAX];
  if (!getcwd(cwd, sizeof cwd))
    return kvshm__fail(-errno, "cannot resolve sqlite_path: %s",
                       strerror(errno));
  if ((size_t)snprintf(out, outsz, "%s/%s", cwd, c->sqlite_path) >= outsz)
    return kvshm__fail(KVSHM_EINVAL, "sqlite_path is too long once made "
                                     "absolute");
  return KVSHM_OK;
}

static int handle_fill(kvshm *kv, unsigned char *base, size_t size,
                       const char *name, unsigned flags,
                       const kvshm_config *want) {
  struct kvshm_hdr *h = (void *)base;
  kv->base = base;
  kv->size = size;
  kv->hdr = h;
  kv->stripes = (void *)(base + KVSHM_HDR_SIZE);
  kv->nstripes = h->stripes;
  kv->nslots = h->slots;
  kv->nbuckets = h->buckets;
  kv->lg_stripes = (uint32_t)__builtin_ctz(h->stripes);
  kv->lg_buckets = (uint32_t)__builtin_ctz(h->buckets);
  kv->slot_size = h->slot_size;
  kv->region_off = h->region_off;
  kv->region_size = h->region_size;
  kv->default_ttl_ms = h->default_ttl_ms;
  kv->lock_timeout_ms =
      h->lock_timeout_ms ? h->lock_timeout_ms : KVSHM_DEFAULT_LOCK_TIMEOUT_MS;
  if (want->lock_timeout_ms) /* a process may choose its own patience */
    kv->lock_timeout_ms = want->lock_timeout_ms;
  kv->flags = flags;
  kvshm__trust_from(&kv->trust, want);
  kv->rng = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull ^ kvshm__wall_ms() ^
            (uintptr_t)kv;
  if (!kv->rng)
    kv->rng = 1;
  if (!(flags & KVSHM_RDONLY)) /* a reader counts nothing: it writes none */
    kv->shard =
        &h->shards[atomic_fetch_add_explicit((_Atomic uint32_t *)&h->shard_next,
                                             1, memory_order_relaxed) %
                   KVSHM_SHARDS];
  snprintf(kv->name, sizeof kv->name, "%s", name);
  /* Repair must never allocate (lock.c): its buffers are taken now. */
  kv->repair_claimed = malloc((size_t)kv->nslots * sizeof(uint32_t));
  kv->repair_key = malloc(KVSHM_KEY_MAX);
  if (!kv->repair_claimed || !kv->repair_key ||
      kvshm__scratch(kv, KVSHM_KEY_MAX))
    return kvshm__fail(-ENOMEM, "no memory for cache '%s''s buffers", name);
  return KVSHM_OK;
}

/* Remove the name if it still is the file behind fd. */
static void unlink_if_same(int fd, const char *path) {
  struct stat mine, there;
  char full[KVSHM_NAME_MAX + 32];
  snprintf(full, sizeof full, "/dev/shm%s", path);
  if (fstat(fd, &mine) == 0 && mine.st_nlink > 0 && stat(full, &there) == 0 &&
      there.st_ino == mine.st_ino && there.st_dev == mine.st_dev)
    shm_unlink(path);
}

static int handle_fill(kvshm *kv, unsigned char *base, size_t size,
                       const char *name, unsigned flags,
                       const kvshm_config *want);

/*
 * The part of a destroy done under the segment's flock, after `destroyed`
 * is set: write everything dirty, then give the SQLite file up.  If either
 * fails the destroy has no effect: `destroyed` goes back to 0 (a reaper is
 * started again) and the name stays.
 */
static int destroy_locked(kvshm *kv) {
  atomic_store((_Atomic uint32_t *)&kv->hdr->destroyed, 1);
  int rc = kvshm_flush(kv);
  if (!rc && kvshm__has_store(kv))
    rc = kvshm__store_disown(kv);
  if (rc)
    atomic_store((_Atomic uint32_t *)&kv->hdr->destroyed, 0);
  return rc;
}

/*
 * A segment marked destroyed whose name is still there, found while we hold
 * its flock: kvshm_unlink holds that flock from marking to removing, so its
 * caller died half-way.  Carry out the rest: write what is dirty (nothing
 * may be lost), then remove the name.
 */
static void finish_unlink(int fd, const char *path, unsigned char *base,
                          size_t size, const char *name) {
  kvshm_config zero;
  kvshm_config_init(&zero);
  kvshm *tmp = calloc(1, sizeof *tmp);
  int rc = -ENOMEM;
  if (tmp) {
    tmp->seg_fd = -1;
    rc = handle_fill(tmp, base, size, name, KVSHM_NOREAPER, &zero);
    if (!rc)
      rc = destroy_locked(tmp);
    tmp->base = NULL; /* the caller's mapping */
    kvshm_close(tmp);
  }
  if (!rc)
    unlink_if_same(fd, path);
}

/* This process's PID namespace (its inode number), 0 if unknown. */
static uint64_t pidns_id(void) {
  struct stat sb;
  return stat("/proc/self/ns/pid", &sb) == 0 ? (uint64_t)sb.st_ino : 0;
}

/* Byte locked by every handle but a reaper's: a segment only reapers
 * use is one nobody uses (they leave once its name is gone). */
#define USERS_BYTE (1ull << 62)

/* Every handle's read locks, held for life (see the top): byte 0 says
 * "attached", byte 1 + its PID namespace's inode says from where, and
 * USERS_BYTE says "not a reaper". */
static int attach_lock(int fd, const char *name, bool user) {
  struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_len = 1};
  uint64_t ns = pidns_id();
  int rc = fcntl(fd, F_OFD_SETLK, &fl);
  if (!rc && ns) {
    fl.l_start = (off_t)(1 + ns);
    rc = fcntl(fd, F_OFD_SETLK, &fl);
  }
  if (!rc && user) {
    fl.l_start = (off_t)USERS_BYTE;
    rc = fcntl(fd, F_OFD_SETLK, &fl);
  }
  if (rc)
    return kvshm__fail(-errno, "cannot lock segment '%s': %s", name,
                       strerror(errno));
  return KVSHM_OK;
}

/* Does another open file description hold a lock in [start, start+len)
 * (len 0: to the end)?  Unknown counts as yes: the answer only ever
 * allows something. */
static bool fd_locked(int fd, uint64_t start, uint64_t len) {
  struct flock fl = {.l_type = F_WRLCK,
                     .l_whence = SEEK_SET,
                     .l_start = (off_t)start,
                     .l_len = (off_t)len};
  if (fcntl(fd, F_OFD_GETLK, &fl))
    return true;
  return fl.l_type != F_UNLCK;
}

static bool fd_others_attached(int fd) {
  return fd_locked(fd, 0, 1);
}

bool kvshm__others_attached(kvshm *kv) {
  return kv->seg_fd < 0 || fd_others_attached(kv->seg_fd);
}

bool kvshm__foreign_attached(kvshm *kv) {
  uint64_t ns = pidns_id();
  if (kv->seg_fd < 0 || !ns)
    return true;
  return fd_locked(kv->seg_fd, 1, ns) ||
         fd_locked(kv->seg_fd, 2 + ns, USERS_BYTE - 2 - ns);
}

/* Byte write-locked by a prefix clear for its whole run (clear.c): the
 * kernel drops it when its holder dies, so a clear killed half-way is
 * finished by the next holder. */
#define CLEAR_BYTE (USERS_BYTE + 1)

int kvshm__clear_lock(kvshm *kv, bool take, bool wait) {
  if (kv->seg_fd < 0)
    return kvshm__fail(KVSHM_ECORRUPT,
                       "cache '%s' has no segment descriptor to lock",
                       kv->name);
  struct flock fl = {.l_type = take ? F_WRLCK : F_UNLCK,
                     .l_whence = SEEK_SET,
                     .l_start = (off_t)CLEAR_BYTE,
                     .l_len = 1};
  uint64_t until = kvshm__wall_ms() + kv->lock_timeout_ms;
  for (unsigned n = 0;; n++) {
    if (fcntl(kv->seg_fd, F_OFD_SETLK, &fl) == 0)
      return KVSHM_OK;
    if (errno != EAGAIN && errno != EACCES && errno != EINTR)
      return kvshm__fail(-errno, "cannot lock segment '%s' for a clear: %s",
                         kv->name, strerror(errno));
    if (!wait)
      return KVSHM__EBUSY_CLEAR;
    if (kvshm__wall_ms() >= until)
      return kvshm__fail(KVSHM_ETIMEDOUT,
                         "cache '%s': another clear ran for over %u ms",
                         kv->name, kv->lock_timeout_ms);
    struct timespec ts = {0, 200000L * (n < 25 ? n + 1 : 25)};
    nanosleep(&ts, NULL);
  }
}

int kvshm__seg_lock(kvshm *kv, bool take) {
  if (kv->seg_fd < 0)
    return take ? kvshm__fail(KVSHM_ECORRUPT,
                              "cache '%s' has no segment descriptor to lock",
                              kv->name)
                : KVSHM_OK;
  if (!take) {
    if (kv->seg_locks && --kv->seg_locks == 0)
      flock(kv->seg_fd, LOCK_UN);
    return KVSHM_OK;
  }
  if (kv->seg_locks++)
    return KVSHM_OK; /* already ours (kvshm_unlink holds it) */
  int rc = flock_wait(kv->seg_fd, LOCK_EX, kv->name, (int)kv->lock_timeout_ms);
  if (rc)
    kv->seg_locks = 0;
  return rc;
}

/* The open failed with EACCES: say whose file it is and what is needed. */
static int access_error(const char *name, const char *full, unsigned flags) {
  struct stat sb;
  if (stat(full, &sb))
    return kvshm__fail(-EACCES, "cannot open cache '%s': %s", name,
                       strerror(EACCES));
  return kvshm__fail(
      -EACCES,
      "cannot open cache '%s': %s has mode %04o and owner "
      "uid %u, group %u, and this process (uid %u) may not "
      "read and write it.%s",
      name, full, (unsigned)(sb.st_mode & 07777), (unsigned)sb.st_uid,
      (unsigned)sb.st_gid, (unsigned)geteuid(),
      flags & KVSHM_RDONLY ? "  A read-only handle needs read permission "
                             "(mode 0644, or 0640 with a group, and "
                             "trust_uid or trust_gid on the reader's side)"
                           : "  Open it read-only (KVSHM_RDONLY) with read "
                             "permission, or share it for writing through a "
                             "group (mode 0660, and trust_gid on the other "
                             "side)");
}

/*
 * Make a new segment under no name, then link it under the name.  Creators
 * take turns on /dev/shm's flock; one that finds the name made meanwhile
 * asks the caller to attach instead (*retry).
 */
static int create_segment(const char *name, const char *full,
                          const kvshm_config *want, const kvshm_config *c,
                          const char *sqlite_abs, unsigned flags, kvshm *kv,
                          bool *retry) {
  int dir = open(SHM_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0)
    return kvshm__fail(-errno, "cannot open %s: %s", SHM_DIR, strerror(errno));
  int rc = flock_wait(dir, LOCK_EX, name, CREATE_LOCK_WAIT_MS);
  if (rc == KVSHM_ETIMEDOUT)
    rc = kvshm__fail(rc,
                     "cannot create cache '%s': creators take turns on the "
                     "lock of %s, and another process has held it for %d "
                     "ms (see: fuser -v %s)",
                     name, SHM_DIR, CREATE_LOCK_WAIT_MS, SHM_DIR);
  int fd = -1;
  unsigned char *base = NULL;
  struct stat sb;
  if (rc)
    goto out;
  if (lstat(full, &sb) == 0) { /* made while we waited */
    *retry = true;
    goto out;
  }
  fd = openat(dir, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, c->mode);
  if (fd < 0) {
    rc = kvshm__fail(-errno, "cannot create a segment in %s: %s", SHM_DIR,
                     strerror(errno));
    goto out;
  }
  if (fchmod(fd, c->mode)) { /* exactly the mode asked for, not the umask's */
    rc = kvshm__fail(-errno, "cannot set mode %o on segment '%s': %s", c->mode,
                     name, strerror(errno));
    goto out;
  }
  rc = segment_init(fd, c, name, sqlite_abs, &base);
  if (!rc)
    rc = attach_lock(fd, name, !(flags & KVSHM__AS_REAPER));
  if (rc)
    goto out;
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  if (linkat(AT_FDCWD, proc, AT_FDCWD, full, AT_SYMLINK_FOLLOW) &&
      (errno != ENOENT || linkat(fd, "", AT_FDCWD, full, AT_EMPTY_PATH))) {
    if (errno == EEXIST) /* a creator that does not take turns */
      *retry = true;
    else
      rc = kvshm__fail(-errno, "cannot name segment %s: %s", full,
                       strerror(errno));
    goto out;
  }
  kv->seg_fd = fd;
  fd = -1;
  rc = handle_fill(kv, base, c->memory_size, name, flags, want);
  base = NULL;
out:
  if (base)
    munmap(base, c->memory_size);
  if (fd >= 0)
    close(fd);
  flock(dir, LOCK_UN);
  close(dir);
  return rc;
}

/*
 * The segment behind fd (flock shared) has a damaged header.  If nobody is
 * attached, remove the name (the caller then makes a new segment);
 * otherwise refuse.  Never touches the file's contents.
 */
static int replace_damaged(int fd, const char *name, const char *path,
                           const char *what, bool *retry) {
  int rc = flock_wait(fd, LOCK_EX, name, OPEN_LOCK_WAIT_MS);
  struct stat sb;
  if (rc)
    return rc;
  if (fstat(fd, &sb) == 0 && sb.st_nlink == 0) { /* replaced meanwhile */
    *retry = true;
    return KVSHM_OK;
  }
  if (fd_locked(fd, USERS_BYTE, 1))
    return kvshm__fail(KVSHM_ECORRUPT,
                       "segment '%s' %s, and processes still use it: stop "
                       "them and open it again (it is then made anew), or "
                       "destroy it (kvshm-cli destroy %s)",
                       name, what, name);
  unlink_if_same(fd, path);
  *retry = true;
  return KVSHM_OK;
}

static int open_once(const char *name, const char *path,
                     const kvshm_config *want, const kvshm_config *c,
                     const char *sqlite_abs, unsigned flags, kvshm *kv,
                     bool *retry) {
  bool may_create = !(flags & (KVSHM_RDONLY | KVSHM_NOCREATE));
  char full[KVSHM_NAME_MAX + 32];
  snprintf(full, sizeof full, SHM_DIR "%s", path);
  int fd = shm_open(path, O_RDWR | O_CLOEXEC, 0);
  if (fd < 0 && errno == EACCES && (flags & KVSHM_RDONLY)) {
    /* Read permission only: a reader, which maps the segment read-only
     * and reads it without its locks (seqread.c). */
    fd = shm_open(path, O_RDONLY | O_CLOEXEC, 0);
    if (fd >= 0)
      flags |= KVSHM__READER;
  }
  if (fd < 0) {
    if (errno == ENOENT && may_create)
      return create_segment(name, full, want, c, sqlite_abs, flags, kv, retry);
    if (errno == ENOENT)
      return kvshm__fail(-ENOENT, "cache '%s' does not exist (no %s)", name,
                         full);
    if (errno == EACCES)
      return access_error(name, full, flags);
    return kvshm__fail(-errno, "cannot open cache '%s': %s", name,
                       strerror(errno));
  }
  struct kvshm__trust trust;
  kvshm__trust_from(&trust, want);
  unsigned char *base = NULL;
  struct stat sb;
  int rc = flock_wait(fd, LOCK_SH, name, OPEN_LOCK_WAIT_MS);
  if (!rc && fstat(fd, &sb))
    rc = kvshm__fail(-errno, "cannot stat '%s': %s", name, strerror(errno));
  if (rc)
    goto out;
  if (sb.st_nlink == 0) { /* unlinked while we waited: not the cache */
    *retry = true;
    goto out;
  }
  if ((rc = kvshm__trusted(&trust, &sb, "segment", full)))
    goto out;
  size_t size = (size_t)sb.st_size;
  uint64_t magic = 0;
  if (size >= KVSHM_HDR_SIZE &&
      pread(fd, &magic, sizeof magic, 0) != (ssize_t)sizeof magic)
    magic = 0;
  if (size >= KVSHM_HDR_SIZE && magic != KVSHM_MAGIC && magic != 0) {
    rc = kvshm__fail(KVSHM_EBADMAGIC,
                     "%s is not a kvshm segment (bad magic): destroy it "
                     "(kvshm-cli destroy %s) or pick another name",
                     full, name);
    goto out;
  }
  const char *damage = "is shorter than a segment header";
  if (size >= KVSHM_HDR_SIZE) {
    base = mmap(NULL, size,
                flags & KVSHM__READER ? PROT_READ : PROT_READ | PROT_WRITE,
                MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
      base = NULL;
      rc = kvshm__fail(-errno, "cannot map '%s': %s", name, strerror(errno));
      goto out;
    }
    struct kvshm_hdr *h = (void *)base;
    rc = kvshm__hdr_validate(h, size, name);
    if (rc && magic == KVSHM_MAGIC) /* a segment with data: never replaced */
      goto out;
    if (rc) { /* no magic, no valid header: no cache was ever here */
      damage = "holds no complete segment";
      munmap(base, size);
      base = NULL;
    } else if (magic == 0 && !(flags & KVSHM_RDONLY)) {
      /* Everything checks but the magic: only it was overwritten.  (A
       * read-only opener leaves it for verify to report.) */
      uint64_t expect = 0;
      atomic_compare_exchange_strong((_Atomic uint64_t *)&h->magic, &expect,
                                     KVSHM_MAGIC);
    }
  }
  if (!base) {
    if (may_create)
      rc = replace_damaged(fd, name, path, damage, retry);
    else /* not a cache, as far as an attacher is concerned */
      rc = kvshm__fail(-ENOENT,
                       "segment '%s' %s: open it without KVSHM_RDONLY / "
                       "KVSHM_NOCREATE to make it anew (when no process "
                       "uses it), or destroy it (kvshm-cli destroy %s)",
                       name, damage, name);
    goto out;
  }
  rc = config_compare((void *)base, want, name);
  if (!rc && sqlite_abs[0] &&
      strcmp(sqlite_abs, ((struct kvshm_hdr *)base)->sqlite_path))
    rc = kvshm__fail(KVSHM_ECONFIG,
                     "cache '%s' exists with sqlite_path "
                     "'%s', you asked for '%s': open it without a path to "
                     "use the existing one, or destroy the cache first",
                     name, ((struct kvshm_hdr *)base)->sqlite_path, sqlite_abs);
  if (!rc &&
      atomic_load((_Atomic uint32_t *)&((struct kvshm_hdr *)base)->destroyed)) {
    /* kvshm_unlink is removing this name: wait for it to go (its remover
     * holds the flock exclusively till then), or finish the removal if
     * its remover died, and open what comes next. */
    if ((rc = flock_wait(fd, LOCK_EX, name, OPEN_LOCK_WAIT_MS)) == 0 &&
        fstat(fd, &sb) == 0 && sb.st_nlink && !(flags & KVSHM__READER))
      finish_unlink(fd, path, base, size, name);
    *retry = true;
  }
  if (!rc && !*retry)
    rc = attach_lock(fd, name, !(flags & KVSHM__AS_REAPER));
  if (rc || *retry)
    goto out;
  kv->seg_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  rc = handle_fill(kv, base, size, name, flags, want);
  base = NULL; /* the handle's now */
out:
  if (base)
    munmap(base, size);
  flock(fd, LOCK_UN);
  close(fd);
  return rc;
}

int kvshm_open(const char *name, const kvshm_config *cfg, unsigned flags,
               kvshm **out) {
  kvshm__clear_detail();
  if (!out)
    return kvshm__fail(KVSHM_EINVAL, "out is NULL");
  *out = NULL;
  char path[KVSHM_NAME_MAX + 16];
  int rc = check_name(name, path, sizeof path);
  if (rc)
    return rc;
  if (flags &
      ~(KVSHM_RDONLY | KVSHM_NOCREATE | KVSHM_NOREAPER | KVSHM__AS_REAPER))
    return kvshm__fail(KVSHM_EINVAL, "unknown open flags 0x%x", flags);
  kvshm_config zero, c;
  kvshm_config_init(&zero);
  const kvshm_config *want = cfg ? cfg : &zero;
  rc = config_resolve(want, &c);
  if (rc)
    return rc;
  char sqlite_abs[KVSHM_PATH_MAX];
  rc = resolve_sqlite(want, sqlite_abs, sizeof sqlite_abs);
  if (rc)
    return rc;
  kvshm *kv = calloc(1, sizeof *kv);
  if (!kv)
    return -ENOMEM;
  kv->seg_fd = -1;
  for (int attempt = 0; attempt < 100; attempt++) {
    bool retry = false;
    rc = open_once(name, path, want, &c, sqlite_abs, flags, kv, &retry);
    if (rc || !retry)
      break;
  }
  if (!rc && !kv->base)
    rc = kvshm__fail(KVSHM_ETIMEDOUT,
                     "cache '%s' kept being removed while "
                     "opening it",
                     name);
  /* A SQLite file that is not ours (or is corrupt) is refused now, not at
   * the first miss; and the reaper is started if none is healthy. */
  /* The file's clear generation first (a segment made again over an old
   * file must not see rows a clear removed); then the reaper, and for a
   * SQLite cache the watchdog that replaces it whenever it dies. */
  if (!rc && kvshm__has_store(kv) && !(kv->flags & KVSHM__READER))
    rc = kvshm__store_sync(kv, !(flags & KVSHM_RDONLY));
  if (!rc && !(flags & (KVSHM_NOREAPER | KVSHM_RDONLY)))
    rc = kvshm__reaper_ensure(kv);
  if (!rc && kvshm__has_store(kv) && !(flags & (KVSHM_NOREAPER | KVSHM_RDONLY)))
    rc = kvshm__watch_start(kv);
  if (rc) {
    kvshm_close(kv);
    return rc;
  }
  kvshm__guard_add(kv);
  *out = kv;
  return KVSHM_OK;
}

int kvshm_close(kvshm *kv) {
  if (!kv)
    return KVSHM_OK;
  kvshm__watch_stop(kv);
  if (kv->near_held)
    (void)kvshm_near_release(kv);
  /* Persistent mode: this process may be the last one with a watchdog, and
   * the reaper may die before it writes what this handle acknowledged. */
  if (kv->base && kv->hdr->persistent && kvshm__has_store(kv) &&
      !(kv->flags & KVSHM_RDONLY) &&
      !atomic_load((_Atomic uint32_t *)&kv->hdr->destroyed))
    (void)kvshm_flush(kv);
  kvshm__store_close(kv);
  kvshm__guard_remove(kv);
  if (kv->base)
    munmap(kv->base, kv->size);
  if (kv->seg_fd >= 0)
    close(kv->seg_fd);
  free(kv->scratch);
  free(kv->repair_claimed);
  free(kv->repair_key);
  free(kv);
  return KVSHM_OK;
}

int kvshm_unlink(const char *name) {
  return kvshm_unlink_config(name, NULL);
}

int kvshm_unlink_config(const char *name, const kvshm_config *cfg) {
  kvshm__clear_detail();
  char path[KVSHM_NAME_MAX + 16];
  int rc = check_name(name, path, sizeof path);
  if (rc)
    return rc;
  kvshm_config trust;
  kvshm_config_init(&trust); /* only the trust fields: attach as it is */
  if (cfg) {
    trust.trust = cfg->trust;
    trust.trust_uid = cfg->trust_uid;
    trust.trust_gid = cfg->trust_gid;
  }
  /* Mark it destroyed first: from then on no reaper is started for it and
   * a SQLite cache's operations are refused under their stripe lock, so
   * the flush that follows carries every write it acknowledged.  Then the
   * name goes; the next open makes a new segment over the same file. */
  kvshm *kv = NULL;
  rc = kvshm_open(name, &trust, KVSHM_NOCREATE | KVSHM_NOREAPER, &kv);
  if (rc == KVSHM_EOWNER) { /* what is dirty would be lost unwritten */
    char why[400];
    snprintf(why, sizeof why, "%s", kvshm_errdetail());
    return kvshm__fail(rc,
                       "%s; or remove /dev/shm%s by hand if its data "
                       "does not matter",
                       why, path);
  }
  if (rc == KVSHM_OK) {
    /* Openers wait on the flock meanwhile, and then make a new segment:
     * none attaches to this one after the flush. */
    bool locked = kvshm__seg_lock(kv, true) == 0;
    atomic_store((_Atomic uint32_t *)&kv->hdr->destroyed, 1);
    if (kvshm__has_store(kv)) /* no late claim of the file after this */
      (void)kvshm__store_fence(kv);
    (void)kvshm_flush(kv); /* best effort: a broken file must not keep the
                              name alive */
    struct stat sb;
    bool ours = kv->seg_fd >= 0 && fstat(kv->seg_fd, &sb) == 0 && sb.st_nlink;
    if (ours)
      unlink_if_same(kv->seg_fd, path);
    if (locked)
      kvshm__seg_lock(kv, false);
    kvshm_close(kv);
    kvshm__clear_detail();
    return ours
               ? KVSHM_OK
               : kvshm__fail(-ENOENT, "cache '%s' was removed meanwhile", name);
  }
  kvshm__clear_detail();
  if (shm_unlink(path))
    return kvshm__fail(-errno, "cannot remove cache '%s': %s", name,
                       strerror(errno));
  return KVSHM_OK;
}
