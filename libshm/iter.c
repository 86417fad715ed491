/*
 * iter.c - walking every live entry of both tiers for tools (keys, dump,
 * the addon's iterators).
 *
 * A walk goes through the key space in the order of the keys' hashes: one
 * chunk of CHUNK_BUCKETS buckets of one stripe at a time.  A key's bucket
 * never changes (an overwrite replaces the entry in its chain, copy-on-
 * write), and SQLite keeps rows keyed by the same hash (store.c), so a
 * chunk is a closed range of hashes in both tiers.  Each chunk is settled
 * in one hold of its stripe lock, as a keyed operation settles its key
 * (ops.c): the SQLite rows of the range are read between two lock holds
 * that saw the same gen_evict and clear_gen (or, after two tries, under
 * the lock with SQLite told never to wait), and under the second hold a
 * row counts only if its key is not in memory (memory is newer; a
 * tombstone hides its row).  So every key is judged once, at one instant,
 * in whichever tier holds it then: a key that exists for the whole walk is
 * returned exactly once, however it moves between the tiers; a key added
 * or removed during the walk may or may not be.
 *
 * The chunk's entries are copied out, the lock is let go, and they are
 * handed out one by one; no SQLite statement stays open between calls, so
 * a walk never pins a snapshot of the file (it holds no read transaction
 * between chunks, and other calls on the same handle see the newest data).
 */
#include "store.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#define CHUNK_BUCKETS 64u
#define UNLOCKED_TRIES 2

struct item {
  size_t off; /* key then value at buf + off */
  size_t klen, vlen;
  uint32_t flags;
  uint64_t expires_ms;
  uint64_t h; /* SQLite rows: the key's hash */
};

/* A list of copied entries with their bytes. */
struct items {
  struct item *v;
  size_t n, cap;
  unsigned char *buf;
  size_t used, size;
};

struct kvshm_iter {
  kvshm *kv;
  uint32_t stripe; /* chunk being walked: stripe */
  uint64_t bucket; /* and its first bucket */
  unsigned char *prefix;
  size_t plen;
  unsigned walk;     /* KVSHM_ITER_STORE */
  struct items out;  /* the current chunk's entries, handed out in order */
  size_t pos;        /* next of them to hand out */
  struct items rows; /* the current chunk's SQLite rows */
};

static void items_reset(struct items *l) {
  l->n = 0;
  l->used = 0;
}

static void items_free(struct items *l) {
  free(l->v);
  free(l->buf);
}

/* Append an entry of klen + vlen bytes; returns where to copy them. */
static unsigned char *items_add(struct items *l, size_t klen, size_t vlen,
                                uint32_t flags, uint64_t exp, uint64_t h) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 64;
    struct item *v = realloc(l->v, cap * sizeof *v);
    if (!v)
      return NULL;
    l->v = v;
    l->cap = cap;
  }
  size_t need = l->used + klen + vlen;
  if (need > l->size || !l->buf) { /* an empty key and value need a buffer
                                      too: NULL + 0 is not a pointer */
    size_t sz = l->size ? l->size : 4096;
    while (sz < need || !sz)
      sz *= 2;
    unsigned char *b = realloc(l->buf, sz);
    if (!b)
      return NULL;
    l->buf = b;
    l->size = sz;
  }
  l->v[l->n++] = (struct item){l->used, klen, vlen, flags, exp, h};
  unsigned char *p = l->buf + l->used;
  l->used = need;
  return p;
}

int kvshm_iter_open(kvshm *kv, const void *prefix, size_t plen, unsigned flags,
                    kvshm_iter **out) {
  kvshm__clear_detail();
  if (!out || (plen && !prefix))
    return kvshm__fail(KVSHM_EINVAL, "iter_open: NULL argument");
  if (flags & ~KVSHM_ITER_STORE)
    return kvshm__fail(KVSHM_EINVAL, "iter_open: unknown flags 0x%x", flags);
  kvshm_iter *it = calloc(1, sizeof *it);
  if (!it)
    return -ENOMEM;
  it->kv = kv;
  it->walk = kvshm__has_store(kv) ? flags : 0;
  if (plen) {
    it->prefix = malloc(plen);
    if (!it->prefix) {
      free(it);
      return -ENOMEM;
    }
    memcpy(it->prefix, prefix, plen);
    it->plen = plen;
  }
  *out = it;
  return KVSHM_OK;
}

static bool prefixed(const kvshm_iter *it, const void *key, size_t klen) {
  return klen >= it->plen &&
         (!it->plen || memcmp(key, it->prefix, it->plen) == 0);
}

/* Collect a SQLite row of the chunk (store scan callback). */
static int take_row(void *ctx, uint64_t h, const void *key, size_t klen,
                    const struct kvshm_row *row) {
  kvshm_iter *it = ctx;
  if (!prefixed(it, key, klen))
    return KVSHM_OK;
  unsigned char *p =
      items_add(&it->rows, klen, row->vlen, row->flags, row->expires_ms, h);
  if (!p)
    return -ENOMEM;
  if (klen) /* SQLite hands an empty blob as NULL */
    memcpy(p, key, klen);
  if (row->vlen)
    memcpy(p + klen, row->val, row->vlen);
  return KVSHM_OK;
}

/* Copy the live entries of one bucket chain.  Lock held. */
static int take_chain_locked(kvshm_iter *it, uint32_t s, uint64_t b,
                             uint64_t now) {
  kvshm *kv = it->kv;
  uint32_t *bw = kvshm__buckets(kv, s) + b;
  uint32_t steps = 0;
  for (uint32_t r = *bw; r;) {
    if (!kvshm__ref_ok(kv, r) || ++steps > kv->nslots)
      return kvshm__corrupt_locked(kv, s, "bucket chain leaves the stripe");
    struct kvshm_head *hd = (void *)kvshm__slot(kv, s, r);
    if ((hd->state & KVSHM_KIND_MASK) != KVSHM_KIND_HEAD)
      return kvshm__corrupt_locked(kv, s, "bucket chain points at a non-entry");
    uint32_t next = hd->hnext;
    if (!(hd->state & KVSHM_ST_TOMB) &&
        !(hd->expires_ms && hd->expires_ms <= now) && hd->klen >= it->plen) {
      uint32_t klen = hd->klen, vlen = hd->vlen, flags = hd->flags;
      if (kvshm__entry_check_locked(kv, s, r, false))
        return kvshm__corrupt_locked(kv, s, "entry chain is broken");
      size_t total = (size_t)klen + vlen;
      unsigned char *p =
          items_add(&it->out, klen, vlen, flags, hd->expires_ms, 0);
      if (!p)
        return -ENOMEM;
      if (kvshm__entry_copy_locked(kv, s, r, klen, vlen, flags, hd->check, 0,
                                   p)) {
        it->out.n--;
        it->out.used -= total;
        return kvshm__corrupt_locked(kv, s, "entry fails its checksum");
      }
      if (!prefixed(it, p, klen)) { /* take it back */
        it->out.n--;
        it->out.used -= total;
      }
    }
    r = next;
  }
  return KVSHM_OK;
}

/* Settle the chunk [b, b + n) of stripe s into it->out.  Lock held. */
static int settle_locked(kvshm_iter *it, uint32_t s, uint64_t b, uint64_t n,
                         uint64_t now) {
  kvshm *kv = it->kv;
  items_reset(&it->out);
  for (uint64_t i = 0; i < n; i++) {
    int rc = take_chain_locked(it, s, b + i, now);
    if (rc)
      return rc;
  }
  for (size_t i = 0; i < it->rows.n; i++) {
    struct item *row = &it->rows.v[i];
    const unsigned char *k = it->rows.buf + row->off;
    uint32_t ref, *link;
    int rc = kvshm__find_locked(kv, s, row->h, k, row->klen, &ref, &link);
    if (rc)
      return rc;
    if (ref)
      continue; /* memory has it (or its tombstone): memory decides */
    unsigned char *p = items_add(&it->out, row->klen, row->vlen, row->flags,
                                 row->expires_ms, row->h);
    if (!p)
      return -ENOMEM;
    memcpy(p, it->rows.buf + row->off, row->klen + row->vlen);
  }
  return KVSHM_OK;
}

/* Fill it->out with the next chunk that has entries, or run to the end. */
static int next_chunk(kvshm_iter *it) {
  kvshm *kv = it->kv;
  bool store = it->walk & KVSHM_ITER_STORE;
  while (it->stripe < kv->nstripes) {
    uint32_t s = it->stripe;
    uint64_t b = it->bucket;
    uint64_t n =
        kv->nbuckets - b < CHUNK_BUCKETS ? kv->nbuckets - b : CHUNK_BUCKETS;
    /* The chunk's hashes: [lo, hi] as hpos values. */
    uint64_t lo = kvshm__hash_lo(kv, s, b);
    uint64_t hi = b + n == kv->nbuckets && s + 1 == kv->nstripes
                      ? UINT64_MAX
                      : kvshm__hash_lo(kv, s + (b + n == kv->nbuckets),
                                       (b + n) % kv->nbuckets) -
                            1;
    int rc = KVSHM_OK;
    uint64_t since = 0;
    for (int attempt = 0;; attempt++) {
      rc = kvshm__lock(kv, s);
      if (rc)
        return rc;
      uint64_t now = kvshm__now_ms(kv);
      struct kvshm_stripe *st = kvshm__stripe(kv, s);
      items_reset(&it->rows);
      if (store) {
        uint64_t gen = st->clear_gen;
        uint32_t moved = st->gen_evict;
        bool locked = attempt >= UNLOCKED_TRIES;
        if (!locked)
          kvshm__unlock(kv, s);
        rc = kvshm__store_scan(kv, kvshm__hpos(lo), kvshm__hpos(hi), gen, now,
                               locked, take_row, it);
        if (!locked) {
          int lrc = kvshm__lock(kv, s);
          if (lrc)
            return lrc;
          if (!rc && (st->clear_gen != gen || st->gen_evict != moved))
            rc = KVSHM__EBUSY; /* something left memory: read again */
        }
        if (rc) {
          kvshm__unlock(kv, s);
          if (rc != KVSHM__EBUSY)
            return rc;
          since = since ? since : kvshm__wall_ms();
          if ((rc = kvshm__busy_wait(kv, attempt, since, "walking")))
            return rc;
          continue;
        }
      }
      rc = settle_locked(it, s, b, n, now);
      kvshm__unlock(kv, s);
      if (rc == KVSHM_ECORRUPT && attempt < 4)
        continue; /* the stripe was rebuilt: settle the chunk again */
      break;
    }
    if (rc)
      return rc;
    it->pos = 0;
    it->bucket = b + n;
    if (it->bucket == kv->nbuckets) {
      it->stripe++;
      it->bucket = 0;
    }
    if (it->out.n)
      return KVSHM_OK;
  }
  return KVSHM_ENOTFOUND;
}

int kvshm_iter_next(kvshm_iter *it, const void **key, size_t *klen,
                    const void **val, size_t *vlen, uint32_t *flags,
                    uint64_t *expires_ms) {
  if (it->pos >= it->out.n) {
    items_reset(&it->out);
    it->pos = 0;
    int rc = next_chunk(it);
    if (rc)
      return rc;
  }
  struct item *e = &it->out.v[it->pos++];
  const unsigned char *p = it->out.buf + e->off;
  if (key)
    *key = p;
  if (klen)
    *klen = e->klen;
  if (val)
    *val = p + e->klen;
  if (vlen)
    *vlen = e->vlen;
  if (flags)
    *flags = e->flags;
  if (expires_ms)
    *expires_ms = e->expires_ms;
  return KVSHM_OK;
}

void kvshm_iter_close(kvshm_iter *it) {
  if (!it)
    return;
  items_free(&it->out);
  items_free(&it->rows);
  free(it->prefix);
  free(it);
}
