/*
 * ops.c - the keyed operations (get, set, delete, has, incr) over both
 * tiers.
 *
 * Every operation decides inside ONE hold of its key's stripe lock, on the
 * key's true state in either tier (op_resolve):
 *
 *   - in memory: the entry (or its tombstone) is the truth, it is newer
 *     than any SQLite row;
 *   - absent from memory in a SQLite cache: SQLite's row is the truth,
 *     because a key leaves memory only once clean (its newest value is in
 *     SQLite: writeback.c) and nobody writes its row while it is out.  The
 *     row is read without the lock, between two lock holds; if the
 *     stripe's gen_evict and clear_gen are the same at both, nothing left
 *     memory or was cleared meanwhile, so the row read is still the key's
 *     value at the second hold, and the operation decides there.  After
 *     two tries that saw the stripe move, the row is read under the lock
 *     with SQLite told never to wait (a busy SQLite means: let go, back off,
 *     try again), so a stripe under eviction pressure cannot starve it.
 *
 * So incr, NX, XX and KEEPTTL are one atomic step in whichever tier holds
 * the key, and no SQLite I/O that waits for another process happens under
 * a stripe lock.  A write that needs room in a stripe holding only dirty
 * entries lets go of the lock, writes the stripe back (writeback.c), and
 * starts over: the decision is always made again in the final hold.
 *
 * Clears are in clear.c.
 */
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define RESOLVE_UNLOCKED_TRIES 2
#define WRITEBACK_TRIES 1000
#define MAKE_ROOM_BATCH 4096 /* entries a writer writes back to make room */

static inline struct kvshm_head *head_at(kvshm *kv, uint32_t s, uint32_t r) {
  return (struct kvshm_head *)kvshm__slot(kv, s, r);
}

static int check_key(const void *key, size_t klen) {
  if (!key && klen)
    return kvshm__fail(KVSHM_EINVAL, "key is NULL");
  if (klen > KVSHM_KEY_MAX)
    return kvshm__fail(KVSHM_ETOOBIG, "key is %zu bytes; the limit is %u", klen,
                       KVSHM_KEY_MAX);
  return KVSHM_OK;
}

/* One keyed operation: where its key is, and with what lock held. */
struct op {
  const void *key;
  size_t klen;
  uint64_t h;
  uint32_t s;
  uint32_t ref;         /* its entry in memory (live or tombstone), 0 if none */
  uint32_t *link;       /* the chain word pointing at ref, or where to append */
  uint64_t now;         /* wall clock, read once when needed */
  bool live;            /* ref is live (set by op_resolve) */
  bool in_store;        /* absent from memory, and SQLite has `row` */
  struct kvshm_row row; /* its value there (a private copy in rowbuf) */
  void *rowbuf;
  const uint32_t *draw; /* a get's LFU draw, made before it took the lock;
                           NULL: draw one */
};

static void op_drop_row(struct op *op) {
  free(op->rowbuf);
  op->rowbuf = NULL;
  op->in_store = false;
}

/* Is the cache's name gone (kvshm_unlink)?  A SQLite cache then refuses:
 * its reaper has flushed and left, and its file may belong to a new
 * segment of the same name. */
int kvshm__destroyed(kvshm *kv) {
  if (!kvshm__has_store(kv) ||
      !atomic_load_explicit((_Atomic uint32_t *)&kv->hdr->destroyed,
                            memory_order_acquire))
    return KVSHM_OK;
  return kvshm__fail(KVSHM_EDESTROYED,
                     "cache '%s' was destroyed while this handle "
                     "had it open: close it and open the cache again",
                     kv->name);
}

/* Hash, lock, find.  On success the stripe lock is held. */
static int op_begin(kvshm *kv, const void *key, size_t klen, struct op *op) {
  int rc = check_key(key, klen);
  if (rc)
    return rc;
  if (!key)
    key = ""; /* NULL with length 0: memcmp(p, NULL, 0) is undefined */
  op->key = key;
  op->klen = klen;
  op->h = kvshm__key_hash(key, klen);
  op->s = kvshm__stripe_of(kv, op->h);
  op->live = false;
  op->in_store = false;
  op->rowbuf = NULL;
  op->draw = NULL;
  /* Start the bucket's and the home slot's misses before the lock's
   * atomic op. */
  kvshm__prefetch_home(kv, op->s, kvshm__bucket_of(kv, op->h));
  rc = kvshm__lock(kv, op->s);
  if (rc)
    return rc;
  rc = kvshm__destroyed(kv);
  if (!rc)
    rc = kvshm__find_locked(kv, op->s, op->h, key, klen, &op->ref, &op->link);
  if (rc) {
    kvshm__unlock(kv, op->s);
    return rc;
  }
  op->now = 0;
  return KVSHM_OK;
}

static uint64_t op_now(kvshm *kv, struct op *op) {
  if (!op->now)
    op->now = kvshm__now_ms(kv);
  return op->now;
}

/*
 * Is the found entry live?  Removes it (counting an expiration) if its TTL
 * passed, unless the handle is read-only.  Tombstones are never live.
 */
static bool live_locked(kvshm *kv, struct op *op) {
  if (!op->ref)
    return false;
  struct kvshm_head *hd = head_at(kv, op->s, op->ref);
  if (hd->state & KVSHM_ST_TOMB)
    return false;
  if (!hd->expires_ms || hd->expires_ms > op_now(kv, op))
    return true;
  /* Freed: the link now leads past it.  Tombstoned: it stays, and a set
   * replaces it like any entry. */
  if (!(kv->flags & KVSHM_RDONLY) &&
      kvshm__expire_locked(kv, op->s, op->ref, op->link))
    op->ref = KVSHM_NIL;
  return false;
}

/* Keep a private copy of a fetched row (it points into kv->scratch, which
 * the lookups reuse). */
static int keep_row(struct op *op, const struct kvshm_row *row) {
  op->rowbuf = malloc(row->vlen ? row->vlen : 1);
  if (!op->rowbuf)
    return -ENOMEM;
  memcpy(op->rowbuf, row->val, row->vlen);
  op->row = *row;
  op->row.val = op->rowbuf;
  op->in_store = true;
  return KVSHM_OK;
}

/*
 * op_begin, then settle the key's tier (see the top of this file).  On
 * success the lock is held and exactly one holds: op->ref is the key's
 * live entry or tombstone; op->in_store with op->row; or the key is in
 * neither tier.  The caller releases op's row with op_drop_row.
 */
static int op_resolve(kvshm *kv, const void *key, size_t klen, struct op *op) {
  uint64_t since = 0;
  for (int attempt = 0;; attempt++) {
    int rc = op_begin(kv, key, klen, op);
    if (rc)
      return rc;
    /* op->ref left after live_locked: a tombstone, or an expired entry a
     * read-only handle may not remove; either way the key is not there. */
    op->live = live_locked(kv, op);
    if (op->live || op->ref || !kvshm__has_store(kv))
      return KVSHM_OK;
    struct kvshm_stripe *st = kvshm__stripe(kv, op->s);
    uint64_t gen = st->clear_gen;
    uint32_t moved = st->gen_evict;
    uint64_t now = op_now(kv, op);
    struct kvshm_row row;
    if (attempt >= RESOLVE_UNLOCKED_TRIES) {
      rc = kvshm__store_fetch(kv, op->h, op->key, klen, now, gen, true, &row);
      if (rc == KVSHM_OK)
        rc = keep_row(op, &row);
      if (rc == KVSHM_OK || rc == KVSHM_ENOTFOUND)
        return KVSHM_OK;
      kvshm__unlock(kv, op->s);
      if (rc != KVSHM__EBUSY)
        return rc;
      since = since ? since : kvshm__wall_ms();
      if ((rc = kvshm__busy_wait(kv, attempt, since, "reading a key")))
        return rc;
      continue;
    }
    kvshm__unlock(kv, op->s);
    rc = kvshm__store_fetch(kv, op->h, op->key, klen, now, gen, false, &row);
    bool found = rc == KVSHM_OK;
    if (found)
      rc = keep_row(op, &row);
    if (rc && rc != KVSHM_ENOTFOUND)
      return rc;
    void *buf = op->rowbuf;
    struct kvshm_row kept = op->row;
    rc = op_begin(kv, key, klen, op); /* forgets the row: */
    op->rowbuf = buf;                 /* take it back */
    op->row = kept;
    if (rc) {
      free(buf);
      return rc;
    }
    op->live = live_locked(kv, op);
    if (op->live || op->ref) {
      op_drop_row(op); /* back in memory meanwhile: memory is newer */
      return KVSHM_OK;
    }
    if (st->clear_gen == gen && st->gen_evict == moved) {
      op->in_store = found;
      if (!found)
        op_drop_row(op);
      return KVSHM_OK;
    }
    kvshm__unlock(kv, op->s); /* something left memory: read again */
    op_drop_row(op);
  }
}

/* A write found only dirty entries to evict: write the stripe back with
 * no lock held, so that the next attempt can evict clean ones. */
static int make_room(kvshm *kv, uint32_t s, int attempt) {
  if (attempt >= WRITEBACK_TRIES)
    return kvshm__fail(KVSHM_ETIMEDOUT,
                       "cache '%s' stripe %u stayed full of entries not yet "
                       "in SQLite while this write waited for room",
                       kv->name, s);
  uint64_t n = 0;
  int rc = kvshm__writeback_stripe(kv, s, MAKE_ROOM_BATCH, 0, &n);
  if (rc)
    return rc;
  if (kvshm__lock(kv, s) == KVSHM_OK) {
    kvshm__stripe(kv, s)->spills++;
    kvshm__unlock(kv, s);
  }
  return KVSHM_OK;
}

/*
 * Persistent mode: if this stripe's oldest dirty entry is half-way to the
 * bound, the reaper is behind or gone; the writer writes the stripe back
 * itself before it returns (back-pressure, outside the lock), so the bound
 * holds whoever died.
 */
static bool bound_near_locked(kvshm *kv, uint32_t s, uint64_t now) {
  struct kvshm_hdr *h = kv->hdr;
  struct kvshm_stripe *st = kvshm__stripe(kv, s);
  return h->persistent && st->dirty && st->dirty_since_ms &&
         now >= st->dirty_since_ms + h->flush_delay_ms / 2;
}

static int write_through(kvshm *kv, uint32_t s) {
  uint64_t n = 0;
  int rc = kvshm__writeback_stripe(kv, s, 0, 0, &n);
  if (!rc && n && kvshm__lock(kv, s) == KVSHM_OK) {
    kvshm__stripe(kv, s)->spills++;
    kvshm__unlock(kv, s);
  }
  return rc;
}

/* Copy out a live entry found by op (lock held). */
static int read_out_locked(kvshm *kv, struct op *op, void *buf, size_t bufsize,
                           size_t *vlen, uint32_t *flags, bool touch) {
  struct kvshm_head *hd = head_at(kv, op->s, op->ref);
  /* Lengths the chain cannot hold are corruption (not EBUFSIZE).  The
   * value is copied, then checked against the entry's checksum as copied:
   * bytes changed meanwhile by another process are never returned.  A
   * NULL buf is a size query, whatever bufsize says. */
  if (kvshm__entry_check_locked(kv, op->s, op->ref, false))
    return kvshm__corrupt_locked(kv, op->s, "entry chain is broken");
  uint32_t klen = hd->klen, vl = hd->vlen, fl = hd->flags, check = hd->check;
  if (vlen)
    *vlen = vl;
  if (flags)
    *flags = fl;
  if (buf) {
    if (bufsize < vl)
      return KVSHM_EBUFSIZE;
    int rc = kvshm__entry_copy_locked(kv, op->s, op->ref, klen, vl, fl, check,
                                      klen, buf);
    if (rc)
      return rc == KVSHM_ECORRUPT
                 ? kvshm__corrupt_locked(kv, op->s, "entry fails its checksum")
                 : rc;
  }
  if (touch && !(kv->flags & KVSHM_RDONLY)) {
    uint64_t now = op->now ? op->now : kvshm__lfu_now_ms(kv);
    uint32_t lfu = op->draw ? kvshm__lfu_next(hd->lfu, now, *op->draw)
                            : kvshm__lfu_touch(kv, hd->lfu, now);
    if (lfu != hd->lfu) /* mostly equal: leave the slot's line clean */
      hd->lfu = lfu;
  }
  return KVSHM_OK;
}

/* Copy out the SQLite row found by op. */
static int read_out_row(const struct op *op, void *buf, size_t bufsize,
                        size_t *vlen, uint32_t *flags) {
  if (vlen)
    *vlen = op->row.vlen;
  if (flags)
    *flags = op->row.flags;
  if (!buf)
    return KVSHM_OK;
  if (bufsize < op->row.vlen)
    return KVSHM_EBUFSIZE;
  if (op->row.vlen)
    memcpy(buf, op->row.val, op->row.vlen);
  return KVSHM_OK;
}

/*
 * Promotion from SQLite: a get found the key only in SQLite (op->row, lock
 * held); write the row back into memory as a clean entry, marked stored:
 * SQLite holds exactly this.  If room would need a write-back, the get is
 * served without promoting.  KVSHM_ECORRUPT if the stripe was found
 * broken (and rebuilt), else KVSHM_OK whether or not it was promoted.
 */
static int promote_locked(kvshm *kv, struct op *op) {
  struct kvshm__write_req req = {
      op->key,         op->klen,
      op->row.val,     op->row.vlen,
      op->row.flags,   op->row.expires_ms,
      KVSHM_ST_STORED, kvshm__lfu_new(kv, op_now(kv, op))};
  int rc = kvshm__write_locked(kv, op->s, op->h, KVSHM_NIL, op->link, &req,
                               op_now(kv, op));
  return rc == KVSHM_ECORRUPT ? rc : KVSHM_OK;
}

int kvshm_get(kvshm *kv, const void *key, size_t klen, void *buf,
              size_t bufsize, size_t *vlen, uint32_t *flags) {
  return kvshm_get_ex(kv, key, klen, buf, bufsize, vlen, flags, NULL, 0);
}

int kvshm_get_ex(kvshm *kv, const void *key, size_t klen, void *buf,
                 size_t bufsize, size_t *vlen, uint32_t *flags,
                 uint64_t *expires_ms, unsigned opts) {
  if (opts & ~KVSHM_PEEK)
    return kvshm__fail(KVSHM_EINVAL, "bad get options 0x%x", opts);
  bool peek = opts & KVSHM_PEEK;
  bool rdonly = (kv->flags & KVSHM_RDONLY) || peek; /* counts nothing */
  kvshm__reaper_poll(kv);
  int rc = check_key(key, klen);
  if (rc)
    return rc;
  if ((rc = kvshm__destroyed(kv)))
    return rc;
  /* First without the lock (seqread.c); the lock decides what that could
   * not, with the same LFU draw. */
  uint32_t draw = (uint32_t)(kvshm__rand(kv) >> 32);
  struct kvshm__seq_get g = {key ? key : "",
                             klen,
                             kvshm__key_hash(key, klen),
                             buf,
                             bufsize,
                             vlen,
                             flags,
                             expires_ms,
                             rdonly ? NULL : &draw};
  rc = kvshm__seq_get(kv, &g);
  if (rc != KVSHM__ELOCK)
    return kvshm__cut_short(kv) ? kvshm__cut_short_error(kv) : rc;
  struct op op;
  rc = op_resolve(kv, key, klen, &op);
  if (rc)
    return rc;
  op.draw = rdonly ? NULL : &draw;
  struct kvshm_stripe *st = kvshm__stripe(kv, op.s);
  if (op.live) {
    if (expires_ms)
      *expires_ms = head_at(kv, op.s, op.ref)->expires_ms;
    rc = read_out_locked(kv, &op, buf, bufsize, vlen, flags, !peek);
    st->hits += !rdonly && rc != KVSHM_ECORRUPT;
  } else if (op.in_store) {
    if (expires_ms)
      *expires_ms = op.row.expires_ms;
    rc = read_out_row(&op, buf, bufsize, vlen, flags);
    if (!rdonly) {
      st->misses++;
      st->store_hits++;
      if (promote_locked(kv, &op) == KVSHM_ECORRUPT)
        rc = KVSHM_ECORRUPT;
    }
  } else {
    st->misses += !rdonly;
    rc = KVSHM_ENOTFOUND;
  }
  kvshm__unlock(kv, op.s);
  op_drop_row(&op);
  return kvshm__cut_short(kv) ? kvshm__cut_short_error(kv) : rc;
}

int kvshm_in_memory(kvshm *kv, const void *key, size_t klen) {
  struct op op;
  int rc = op_begin(kv, key, klen, &op);
  if (rc)
    return rc;
  rc = live_locked(kv, &op) ? KVSHM_OK : KVSHM_ENOTFOUND;
  kvshm__unlock(kv, op.s);
  return rc;
}

int kvshm_has(kvshm *kv, const void *key, size_t klen) {
  if (kv->flags & KVSHM__READER) /* lock-free, like its gets */
    return kvshm_get_ex(kv, key, klen, NULL, 0, NULL, NULL, NULL, KVSHM_PEEK);
  struct op op;
  int rc = op_resolve(kv, key, klen, &op);
  if (rc)
    return rc;
  rc = op.live || op.in_store ? KVSHM_OK : KVSHM_ENOTFOUND;
  kvshm__unlock(kv, op.s);
  op_drop_row(&op);
  return rc;
}

static uint64_t expiry_for(kvshm *kv, int64_t ttl_ms, uint64_t now) {
  if (ttl_ms == KVSHM_TTL_DEFAULT)
    return kv->default_ttl_ms ? now + kv->default_ttl_ms : 0;
  return ttl_ms == 0 ? 0 : now + (uint64_t)ttl_ms;
}

/* A new entry of a SQLite cache is dirty, and SQLite may hold an older
 * copy of its key (we never know it does not without asking), so it is
 * marked stored: deleting it must leave a tombstone. */
static uint16_t new_state_bits(kvshm *kv) {
  return kvshm__has_store(kv) ? KVSHM_ST_DIRTY | KVSHM_ST_STORED : 0;
}

/* The end of a write: unlock, and in persistent mode write the stripe
 * through if the reaper is not keeping up.  A failed write-through does
 * not fail the write: it is in memory, and the reaper or the next writer
 * carries it. */
static void op_end_write(kvshm *kv, struct op *op, bool wrote) {
  bool through = wrote && bound_near_locked(kv, op->s, op_now(kv, op));
  uint32_t s = op->s;
  kvshm__unlock(kv, s);
  op_drop_row(op);
  if (through)
    (void)write_through(kv, s);
}

/* A write's arguments: set, delete or incr. */
struct write {
  enum { W_SET, W_DEL, W_INCR } kind;
  const void *key;
  size_t klen;
  const void *val;
  size_t vlen;
  uint32_t flags; /* set: the flags word; incr: a new key's */
  int64_t ttl_ms;
  unsigned opts;
  int64_t delta;
  int64_t *result;
  const void *expect;    /* delete: only if the value is this (del_if) */
  const uint64_t *epoch; /* set: only if the key's epoch is this
                            (kvshm_set_if_epoch) */
  bool invalidate;       /* delete: move the key's epoch on, and succeed
                            whether or not it is there (kvshm_invalidate) */
};

static int set_once(kvshm *kv, const void *key, size_t klen, const void *val,
                    size_t vlen, uint32_t flags, int64_t ttl_ms, unsigned opts,
                    const uint64_t *epoch, uint32_t *stripe);
static int del_once(kvshm *kv, const void *key, size_t klen,
                    const struct write *w, uint32_t *stripe);
static int incr_once(kvshm *kv, const void *key, size_t klen, int64_t delta,
                     uint32_t new_flags, int64_t *result, uint32_t *stripe);

/* Run a write, and run it again each time it found only dirty entries to
 * evict, after writing its stripe back (make_room). */
static int write_op(kvshm *kv, const struct write *w) {
  kvshm__reaper_poll(kv);
  for (int attempt = 0;; attempt++) {
    uint32_t s = 0;
    int rc =
        w->kind == W_SET ? set_once(kv, w->key, w->klen, w->val, w->vlen,
                                    w->flags, w->ttl_ms, w->opts, w->epoch, &s)
        : w->kind == W_DEL
            ? del_once(kv, w->key, w->klen, w, &s)
            : incr_once(kv, w->key, w->klen, w->delta, w->flags, w->result, &s);
    if (rc != KVSHM__EDIRTY)
      return kvshm__cut_short(kv) ? kvshm__cut_short_error(kv) : rc;
    if ((rc = make_room(kv, s, attempt)) != KVSHM_OK)
      return rc;
  }
}

static int set_once(kvshm *kv, const void *key, size_t klen, const void *val,
                    size_t vlen, uint32_t flags, int64_t ttl_ms, unsigned opts,
                    const uint64_t *epoch, uint32_t *stripe) {
  struct op op;
  int rc = opts ? op_resolve(kv, key, klen, &op) : op_begin(kv, key, klen, &op);
  if (rc)
    return rc;
  *stripe = op.s;
  bool in_mem = opts ? op.live : live_locked(kv, &op);
  bool present = in_mem || op.in_store;
  if (epoch && kvshm__near_epoch(kv, op.h) != *epoch)
    rc = KVSHM_ESTALE;
  else if ((opts & KVSHM_NX) && present)
    rc = KVSHM_EEXIST;
  else if ((opts & KVSHM_XX) && !present)
    rc = KVSHM_ENOTFOUND;
  if (!rc) {
    uint64_t now = op_now(kv, &op);
    struct kvshm__write_req req = {key ? key : "",
                                   klen,
                                   val,
                                   vlen,
                                   flags,
                                   expiry_for(kv, ttl_ms, now),
                                   new_state_bits(kv),
                                   kvshm__lfu_new(kv, now)};
    if (in_mem) {
      struct kvshm_head *hd = head_at(kv, op.s, op.ref);
      if (opts & KVSHM_KEEPTTL)
        req.expires_ms = hd->expires_ms;
      req.lfu = hd->lfu; /* popularity is the key's */
    } else if (op.in_store && (opts & KVSHM_KEEPTTL)) {
      req.expires_ms = op.row.expires_ms;
    }
    rc = kvshm__write_locked(kv, op.s, op.h, op.ref, op.link, &req, now);
    if (!rc)
      kvshm__stripe(kv, op.s)->sets++;
  }
  op_end_write(kv, &op, rc == KVSHM_OK);
  return rc;
}

static int set_checked(kvshm *kv, const void *key, size_t klen, const void *val,
                       size_t vlen, uint32_t flags, int64_t ttl_ms,
                       unsigned opts, const uint64_t *epoch) {
  kvshm__clear_detail();
  if (kv->flags & KVSHM_RDONLY)
    return KVSHM_ERDONLY;
  if (!val && vlen)
    return kvshm__fail(KVSHM_EINVAL, "value is NULL");
  if (ttl_ms < KVSHM_TTL_DEFAULT)
    return kvshm__fail(KVSHM_EINVAL, "ttl_ms %" PRId64 " is negative", ttl_ms);
  if (opts & ~(KVSHM_NX | KVSHM_XX | KVSHM_KEEPTTL) ||
      (opts & (KVSHM_NX | KVSHM_XX)) == (KVSHM_NX | KVSHM_XX))
    return kvshm__fail(KVSHM_EINVAL,
                       "bad set options 0x%x (NX and XX "
                       "exclude each other)",
                       opts);
  if (vlen > UINT32_MAX)
    return kvshm__fail(KVSHM_ETOOBIG, "value of %zu bytes is over 4 GiB", vlen);
  int rc = check_key(key, klen);
  if (rc)
    return rc;
  struct write w = {.kind = W_SET,
                    .key = key,
                    .klen = klen,
                    .val = val ? val : "",
                    .vlen = vlen,
                    .flags = flags,
                    .ttl_ms = ttl_ms,
                    .opts = opts,
                    .epoch = epoch};
  return write_op(kv, &w);
}

int kvshm_set(kvshm *kv, const void *key, size_t klen, const void *val,
              size_t vlen, uint32_t flags, int64_t ttl_ms, unsigned opts) {
  return set_checked(kv, key, klen, val, vlen, flags, ttl_ms, opts, NULL);
}

int kvshm_set_if_epoch(kvshm *kv, const void *key, size_t klen, const void *val,
                       size_t vlen, uint32_t flags, int64_t ttl_ms,
                       uint64_t epoch) {
  return set_checked(kv, key, klen, val, vlen, flags, ttl_ms, 0, &epoch);
}

/* del_if: does op's key hold exactly w's expected value?  Lock held. */
static int holds_locked(kvshm *kv, struct op *op, const struct write *w) {
  if (op->in_store)
    return op->row.vlen == w->vlen &&
                   (!w->vlen || !memcmp(op->row.val, w->expect, w->vlen))
               ? KVSHM_OK
               : KVSHM_EMISMATCH;
  struct kvshm_head *hd = head_at(kv, op->s, op->ref);
  if (hd->vlen != w->vlen)
    return KVSHM_EMISMATCH;
  unsigned char *v = malloc(w->vlen ? w->vlen : 1); /* kv->scratch is the
                                                       copy's own */
  if (!v)
    return -ENOMEM;
  int rc = kvshm__entry_copy_locked(kv, op->s, op->ref, hd->klen, hd->vlen,
                                    hd->flags, hd->check, hd->klen, v);
  if (!rc && w->vlen && memcmp(v, w->expect, w->vlen))
    rc = KVSHM_EMISMATCH;
  free(v);
  return rc == KVSHM_ECORRUPT
             ? kvshm__corrupt_locked(kv, op->s, "entry fails its checksum")
             : rc;
}

static int del_once(kvshm *kv, const void *key, size_t klen,
                    const struct write *w, uint32_t *stripe) {
  struct op op;
  int rc = op_resolve(kv, key, klen, &op);
  if (rc)
    return rc;
  *stripe = op.s;
  struct kvshm_stripe *st = kvshm__stripe(kv, op.s);
  if (w->invalidate) /* in this hold: a fill checks it in a later one */
    atomic_fetch_add_explicit(
        (_Atomic uint64_t *)kvshm__near_epoch_word(kv, op.h), 1,
        memory_order_acq_rel);
  if (w->expect && (op.live || op.in_store) &&
      (rc = holds_locked(kv, &op, w)) != KVSHM_OK) {
    op_end_write(kv, &op, false);
    return rc;
  }
  if (op.live) {
    if (kvshm__has_store(kv)) {
      kvshm__tombstone_locked(kv, op.s, op.ref, op_now(kv, &op));
    } else {
      *op.link = head_at(kv, op.s, op.ref)->hnext;
      kvshm__entry_free_locked(kv, op.s, op.ref);
    }
    st->deletes++;
  } else if (op.in_store) {
    /* Only SQLite has it: a tombstone carries the delete there. */
    uint64_t now = op_now(kv, &op);
    struct kvshm__write_req req = {key ? key : "",
                                   klen,
                                   "",
                                   0,
                                   0,
                                   0,
                                   KVSHM_ST_TOMB | KVSHM_ST_DIRTY |
                                       KVSHM_ST_STORED,
                                   kvshm__lfu_new(kv, now)};
    rc = kvshm__write_locked(kv, op.s, op.h, KVSHM_NIL, op.link, &req, now);
    st->deletes += rc == KVSHM_OK;
  } else {
    rc = w->invalidate ? KVSHM_OK : KVSHM_ENOTFOUND;
  }
  op_end_write(kv, &op, rc == KVSHM_OK);
  return rc;
}

int kvshm_del(kvshm *kv, const void *key, size_t klen) {
  kvshm__clear_detail();
  if (kv->flags & KVSHM_RDONLY)
    return KVSHM_ERDONLY;
  struct write w = {.kind = W_DEL, .key = key, .klen = klen};
  return write_op(kv, &w);
}

int kvshm_del_if(kvshm *kv, const void *key, size_t klen, const void *val,
                 size_t vlen) {
  kvshm__clear_detail();
  if (kv->flags & KVSHM_RDONLY)
    return KVSHM_ERDONLY;
  if (!val && vlen)
    return kvshm__fail(KVSHM_EINVAL, "value is NULL");
  struct write w = {.kind = W_DEL,
                    .key = key,
                    .klen = klen,
                    .vlen = vlen,
                    .expect = val ? val : ""};
  return write_op(kv, &w);
}

int kvshm_invalidate(kvshm *kv, const void *key, size_t klen) {
  kvshm__clear_detail();
  if (kv->flags & KVSHM_RDONLY)
    return KVSHM_ERDONLY;
  struct write w = {
      .kind = W_DEL, .key = key, .klen = klen, .invalidate = true};
  return write_op(kv, &w);
}

/* Parse a decimal int64 value ("-12"), strictly. */
static int parse_i64(const unsigned char *p, size_t n, int64_t *out) {
  if (n == 0 || n > 20)
    return KVSHM_ENOTINT;
  size_t i = 0;
  bool neg = p[0] == '-';
  if (neg && n == 1)
    return KVSHM_ENOTINT;
  i = neg;
  uint64_t v = 0;
  for (; i < n; i++) {
    if (p[i] < '0' || p[i] > '9')
      return KVSHM_ENOTINT;
    uint64_t d = p[i] - '0';
    if (v > (UINT64_MAX - d) / 10)
      return KVSHM_ENOTINT;
    v = v * 10 + d;
  }
  if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX)
    return KVSHM_ENOTINT;
  *out = neg ? (int64_t)(0 - v) : (int64_t)v;
  return KVSHM_OK;
}

/* The current integer of op's key, from whichever tier holds it; fills the
 * flags, expiry and LFU the new entry keeps. */
static int incr_current(kvshm *kv, struct op *op, int64_t *cur,
                        struct kvshm__write_req *req) {
  if (op->live) {
    struct kvshm_head *hd = head_at(kv, op->s, op->ref);
    unsigned char num[24];
    uint32_t klen = hd->klen, vlen = hd->vlen, flags = hd->flags;
    if (vlen > 20)
      return KVSHM_ENOTINT;
    if (kvshm__entry_check_locked(kv, op->s, op->ref, false) ||
        kvshm__entry_copy_locked(kv, op->s, op->ref, klen, vlen, flags,
                                 hd->check, klen, num))
      return kvshm__corrupt_locked(kv, op->s, "entry fails its checksum");
    req->flags = flags;
    req->expires_ms = hd->expires_ms;
    req->lfu = kvshm__lfu_touch(kv, hd->lfu, op->now);
    return parse_i64(num, vlen, cur);
  }
  if (op->in_store) {
    req->flags = op->row.flags;
    req->expires_ms = op->row.expires_ms;
    return op->row.vlen > 20 ? KVSHM_ENOTINT
                             : parse_i64(op->row.val, op->row.vlen, cur);
  }
  *cur = 0;
  return KVSHM_OK;
}

static int incr_once(kvshm *kv, const void *key, size_t klen, int64_t delta,
                     uint32_t new_flags, int64_t *result, uint32_t *stripe) {
  struct op op;
  int rc = op_resolve(kv, key, klen, &op);
  if (rc)
    return rc;
  *stripe = op.s;
  uint64_t now = op_now(kv, &op);
  struct kvshm__write_req req = {key ? key : "",
                                 klen,
                                 NULL,
                                 0,
                                 new_flags,
                                 expiry_for(kv, KVSHM_TTL_DEFAULT, now),
                                 new_state_bits(kv),
                                 kvshm__lfu_new(kv, now)};
  int64_t cur = 0;
  rc = incr_current(kv, &op, &cur, &req);
  if (rc == KVSHM_ENOTINT)
    kvshm__fail(rc, "value of key is not a decimal 64-bit integer");
  if (!rc && ((delta > 0 && cur > INT64_MAX - delta) ||
              (delta < 0 && cur < INT64_MIN - delta)))
    rc = kvshm__fail(KVSHM_EOVERFLOW,
                     "%" PRId64 " + %" PRId64 " overflows a 64-bit integer",
                     cur, delta);
  if (!rc) {
    char text[24];
    cur += delta;
    req.vlen = (size_t)snprintf(text, sizeof text, "%" PRId64, cur);
    req.val = text;
    rc = kvshm__write_locked(kv, op.s, op.h, op.ref, op.link, &req, now);
    if (!rc) {
      kvshm__stripe(kv, op.s)->sets++;
      if (result)
        *result = cur;
    }
  }
  op_end_write(kv, &op, rc == KVSHM_OK);
  return rc;
}

int kvshm_incr(kvshm *kv, const void *key, size_t klen, int64_t delta,
               uint32_t new_flags, int64_t *result) {
  kvshm__clear_detail();
  if (kv->flags & KVSHM_RDONLY)
    return KVSHM_ERDONLY;
  struct write w = {.kind = W_INCR,
                    .key = key,
                    .klen = klen,
                    .flags = new_flags,
                    .delta = delta,
                    .result = result};
  return write_op(kv, &w);
}
