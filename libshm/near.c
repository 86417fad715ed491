/*
 * near.c - the segment's half of a near cache in front of Redis
 * (addon/lib/redis.js holds the Redis half).
 *
 * Redis keeps every host's copy coherent itself: the host's listener, one
 * process elected through near.lock (as the reaper is through
 * reaper_lock), holds a connection with CLIENT TRACKING in broadcasting
 * mode, and Redis pushes it the name of every key of the tracked prefixes
 * that any client writes.  The listener applies each with
 * kvshm_invalidate.  Two races remain, and the segment closes both:
 *
 *   - A fill racing an invalidation (the race Redis's client-side caching
 *     page describes): a process reads v1 from Redis, another host writes
 *     v2, the listener applies v2's invalidation, and only then does the
 *     process store v1.  So a fill reads the key's epoch (kvshm_epoch)
 *     before it asks Redis, and stores with kvshm_set_if_epoch: the
 *     invalidation moved the epoch in the same hold of the stripe lock in
 *     which it removed the key, so a fill that read before it stores
 *     nothing after it.  A fill stored before the invalidation is
 *     applied is removed by it.
 *
 *   - Invalidations lost: the listener's connection drops, or the
 *     listener dies or stalls.  The listener proves it is in sync: it
 *     sends PING on the subscription connection, and when the reply comes
 *     back every invalidation Redis pushed before that PING has arrived
 *     before it (one connection, in order) and was applied; it then stores
 *     the time it sent the PING in synced_ms.  A get is served from memory
 *     only if synced_ms is less than max_lag_ms old (kvshm_near_get) and
 *     the listener's configuration (what it tracks: near.config) is the
 *     caller's, so no get returns a value overwritten by a write Redis
 *     finished max_lag_ms or more before the get began, whatever happens
 *     to the listener.  A new subscription (a new listener, a
 *     reconnection) flushes the cache first: clear_gen moves, which moves
 *     every key's epoch too.
 *
 * A key's epoch is its word of near.epochs + clear_gen + pclear_gen:
 * each only grows, so the sum is unchanged only if all three are.
 */
#include "internal.h"

#include <errno.h>
#include <time.h>
#include <unistd.h>

static uint64_t load64(const uint64_t *p) {
  return atomic_load_explicit((_Atomic uint64_t *)p, memory_order_acquire);
}

static void add64(uint64_t *p, uint64_t n) {
  atomic_fetch_add_explicit((_Atomic uint64_t *)p, n, memory_order_relaxed);
}

uint64_t kvshm_clock_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t *kvshm__near_epoch_word(kvshm *kv, uint64_t h) {
  return &kv->hdr->near.epochs[h % KVSHM_NEAR_EPOCHS];
}

uint64_t kvshm__near_epoch(kvshm *kv, uint64_t h) {
  return load64(kvshm__near_epoch_word(kv, h)) + kvshm__clear_gen(kv) +
         load64(&kv->hdr->pclear_gen);
}

int kvshm_epoch(kvshm *kv, const void *key, size_t klen, uint64_t *epoch) {
  kvshm__clear_detail();
  if (!epoch || (!key && klen))
    return kvshm__fail(KVSHM_EINVAL, "key or epoch is NULL");
  if (klen > KVSHM_KEY_MAX)
    return kvshm__fail(KVSHM_ETOOBIG, "key is %zu bytes; the limit is %u", klen,
                       KVSHM_KEY_MAX);
  *epoch = kvshm__near_epoch(kv, kvshm__key_hash(key ? key : "", klen));
  return KVSHM_OK;
}

int kvshm_near_claim(kvshm *kv) {
  kvshm__clear_detail();
  if (kv->flags & KVSHM_RDONLY)
    return KVSHM_ERDONLY;
  if (kv->near_held)
    return 1;
  struct kvshm_near *n = &kv->hdr->near;
  int rc = kvshm__hdr_lock_sane(kv, &n->lock, "near-cache listener", NULL);
  if (rc)
    return rc;
  rc = pthread_mutex_trylock(&n->lock);
  if (rc == EBUSY)
    return 0;
  if (rc == EOWNERDEAD) /* the last listener died: nothing to repair */
    rc = pthread_mutex_consistent(&n->lock);
  if (rc)
    return kvshm__fail(KVSHM_ECORRUPT,
                       "the near-cache listener lock of cache '%s' cannot "
                       "be taken (%s): run kvshm-cli repair",
                       kv->name, strerror(rc));
  kv->near_held = true;
  atomic_store((_Atomic uint64_t *)&n->synced_ms, 0); /* before config */
  atomic_store((_Atomic uint32_t *)&n->listener_pid, (uint32_t)getpid());
  add64(&n->listener_starts, 1);
  return 1;
}

int kvshm_near_release(kvshm *kv) {
  if (!kv->near_held)
    return KVSHM_OK;
  struct kvshm_near *n = &kv->hdr->near;
  atomic_store((_Atomic uint64_t *)&n->synced_ms, 0); /* before config */
  atomic_store((_Atomic uint32_t *)&n->listener_pid, 0);
  kv->near_held = false;
  pthread_mutex_unlock(&n->lock);
  return KVSHM_OK;
}

/* Does this thread hold the role through kv?  (A forked child inherits
 * the handle's flag, not the lock.) */
static int holder_only(kvshm *kv, const char *what) {
  if (kv->near_held &&
      kvshm__mutex_holder(&kv->hdr->near.lock) == (uint32_t)gettid())
    return KVSHM_OK;
  return kvshm__fail(KVSHM_EINVAL,
                     "only the near-cache listener says %s "
                     "(kvshm_near_claim, in the thread that claimed)",
                     what);
}

int kvshm_near_synced(kvshm *kv, uint64_t at_ms) {
  kvshm__clear_detail();
  int rc = holder_only(kv, "when it was in sync");
  if (rc)
    return rc;
  atomic_store_explicit((_Atomic uint64_t *)&kv->hdr->near.synced_ms, at_ms,
                        memory_order_release);
  return KVSHM_OK;
}

int kvshm_near_configure(kvshm *kv, uint32_t config) {
  kvshm__clear_detail();
  int rc = holder_only(kv, "what it tracks");
  if (rc)
    return rc;
  if (!config)
    return kvshm__fail(KVSHM_EINVAL, "a near-cache configuration is not 0");
  atomic_store_explicit((_Atomic uint32_t *)&kv->hdr->near.config, config,
                        memory_order_release);
  return KVSHM_OK;
}

uint32_t kvshm_near_config(kvshm *kv) {
  return atomic_load_explicit((_Atomic uint32_t *)&kv->hdr->near.config,
                              memory_order_acquire);
}

/*
 * Was the listener of `config` in sync less than max_lag_ms ago?  Synced
 * first (acquire), then the configuration: a listener publishes its
 * configuration before it is ever in sync.  Times are whole ms, so "less
 * than" keeps the true lag under max_lag_ms.  A synced time in the future
 * is no proof of anything (a damaged or foreign clock): no.
 */
static bool in_sync(kvshm *kv, uint32_t max_lag_ms, uint32_t config) {
  uint64_t at = load64(&kv->hdr->near.synced_ms);
  if (!at || kvshm_near_config(kv) != config)
    return false;
  uint64_t now = kvshm_clock_ms();
  return at <= now && now - at < max_lag_ms;
}

int kvshm_near_get(kvshm *kv, const void *key, size_t klen, void *buf,
                   size_t bufsize, size_t *vlen, uint32_t *flags,
                   uint32_t max_lag_ms, uint32_t config) {
  if (!in_sync(kv, max_lag_ms, config))
    return KVSHM_ESTALE;
  int rc = kvshm_get(kv, key, klen, buf, bufsize, vlen, flags);
  if (rc == KVSHM_OK && kv->shard)
    add64(&kv->shard->near_hits, 1);
  return rc;
}

int kvshm_near_count(kvshm *kv, unsigned counter, uint64_t n) {
  struct kvshm_near *nr = &kv->hdr->near;
  uint64_t *c = counter == KVSHM_NEAR_READS     ? &nr->redis_reads
                : counter == KVSHM_NEAR_INVALID ? &nr->invalidations
                : counter == KVSHM_NEAR_FLUSHES ? &nr->flushes
                : counter == KVSHM_NEAR_REFUSED ? &nr->refused
                                                : NULL;
  if (!c)
    return kvshm__fail(KVSHM_EINVAL, "no near-cache counter %u", counter);
  if (kv->flags & KVSHM_RDONLY)
    return KVSHM_ERDONLY;
  add64(c, n);
  return KVSHM_OK;
}

/*
 * Histogram bucket of v microseconds: 0..3 hold 0..3, then four buckets
 * per power of two (a bucket spans under a fifth of its values), up to
 * 2^33 us (about 2.4 hours) in the last.
 */
static uint32_t bucket_of(uint64_t v) {
  if (v < 4)
    return (uint32_t)v;
  uint32_t msb = 63u - (uint32_t)__builtin_clzll(v);
  uint32_t b = 4 * (msb - 1) + (uint32_t)((v >> (msb - 2)) & 3);
  return b < KVSHM_NEAR_BUCKETS ? b : KVSHM_NEAR_BUCKETS - 1;
}

/* The highest value bucket b holds. */
static uint64_t bucket_top(uint32_t b) {
  if (b < 4)
    return b;
  uint32_t msb = b / 4 + 1, sub = b % 4;
  return ((uint64_t)(5 + sub) << (msb - 2)) - 1;
}

int kvshm_near_delay(kvshm *kv, uint64_t us) {
  if (kv->flags & KVSHM_RDONLY)
    return KVSHM_ERDONLY;
  struct kvshm_near *n = &kv->hdr->near;
  atomic_fetch_add_explicit((_Atomic uint32_t *)&n->delay_hist[bucket_of(us)],
                            1, memory_order_relaxed);
  add64(&n->delays, 1);
  return KVSHM_OK;
}

/* The top of the bucket holding the q-th quantile (per mille) of hist. */
static uint64_t quantile(const uint32_t *hist, uint64_t total, unsigned pm) {
  uint64_t want = (total * pm + 999) / 1000, seen = 0;
  for (uint32_t b = 0; b < KVSHM_NEAR_BUCKETS; b++) {
    seen += hist[b];
    if (seen >= want && seen)
      return bucket_top(b);
  }
  return 0;
}

int kvshm_near_stats_get(kvshm *kv, kvshm_near_stats *st) {
  struct kvshm_near *n = &kv->hdr->near;
  memset(st, 0, sizeof *st);
  for (uint32_t i = 0; i < KVSHM_SHARDS; i++)
    st->near_hits += load64(&kv->hdr->shards[i].near_hits);
  st->redis_reads = load64(&n->redis_reads);
  st->invalidations = load64(&n->invalidations);
  st->flushes = load64(&n->flushes);
  st->refused = load64(&n->refused);
  st->listener_starts = load64(&n->listener_starts);
  st->listener_alive = kvshm__mutex_holder(&n->lock) != 0;
  st->listener_pid = st->listener_alive
                         ? atomic_load((_Atomic uint32_t *)&n->listener_pid)
                         : 0;
  uint64_t at = load64(&n->synced_ms), now = kvshm_clock_ms();
  st->lag_ms = at && at <= now ? (int64_t)(now - at) : -1;
  /* A snapshot of counters moving under us: the total is what it sums. */
  uint32_t hist[KVSHM_NEAR_BUCKETS];
  uint64_t total = 0;
  for (uint32_t b = 0; b < KVSHM_NEAR_BUCKETS; b++) {
    hist[b] = atomic_load_explicit((_Atomic uint32_t *)&n->delay_hist[b],
                                   memory_order_relaxed);
    total += hist[b];
    if (hist[b])
      st->delay_max_us = bucket_top(b);
  }
  st->delays = total;
  st->delay_p50_us = quantile(hist, total, 500);
  st->delay_p99_us = quantile(hist, total, 990);
  return KVSHM_OK;
}
