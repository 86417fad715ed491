/*
 * batch.c - the multi-key calls (kvshm_get_many, kvshm_set_many,
 * kvshm_del_many).
 *
 * The keys are sorted by stripe (keeping their order within a stripe), and
 * each stripe's keys are served under one hold of its lock, as far as
 * memory alone decides them: a live entry read, a set that finds room, a
 * delete of an entry in memory.  The first key of a stripe that needs more
 * (SQLite, or a write-back to make room, or persistent mode's write-through)
 * and every later key of that stripe go through the one-key call, in order,
 * so a key set twice in one call ends with its last value.
 */
#include "store.h"

#include <errno.h>
#include <stdlib.h>

#define SLOW 1 /* item rc: still to do through the one-key call */

struct pos {
  uint64_t h;
  uint32_t s;
  uint32_t i;
};

/* Hash and sort the valid keys; bad ones get their rc now.  *out is NULL
 * when n is 0. */
static int plan(kvshm *kv, kvshm_item *items, size_t n, struct pos **out,
                size_t *m) {
  *out = NULL;
  *m = 0;
  if (n > UINT32_MAX)
    return kvshm__fail(KVSHM_EINVAL, "%zu keys in one call; at most %u", n,
                       UINT32_MAX);
  if (!n)
    return KVSHM_OK;
  if (!items)
    return kvshm__fail(KVSHM_EINVAL, "items is NULL");
  /* p[n, 2n) holds them in input order; a counting sort by stripe (stable:
   * keys of one stripe keep their order) puts them in p[0, k). */
  struct pos *p = malloc(2 * n * sizeof *p);
  uint32_t *count = calloc((size_t)kv->nstripes + 1, sizeof *count);
  if (!p || !count) {
    free(p);
    free(count);
    return -ENOMEM;
  }
  struct pos *in = p + n;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    kvshm_item *it = &items[i];
    if (!it->key && it->klen)
      it->rc = KVSHM_EINVAL;
    else if (it->klen > KVSHM_KEY_MAX)
      it->rc = KVSHM_ETOOBIG;
    else {
      if (!it->key)
        it->key = "";
      it->rc = SLOW;
      in[k].h = kvshm__key_hash(it->key, it->klen);
      in[k].s = kvshm__stripe_of(kv, in[k].h);
      in[k].i = (uint32_t)i;
      count[in[k].s + 1]++;
      k++;
    }
  }
  for (uint32_t s = 0; s < kv->nstripes; s++)
    count[s + 1] += count[s];
  for (size_t j = 0; j < k; j++)
    p[count[in[j].s]++] = in[j];
  free(count);
  *out = p;
  *m = k;
  return KVSHM_OK;
}

/* The end of stripe p[a].s's run in p[0..m). */
static size_t run_end(const struct pos *p, size_t a, size_t m) {
  size_t b = a;
  while (b < m && p[b].s == p[a].s)
    b++;
  return b;
}

/* Lock p[a]'s stripe; on failure the run's items get the error.  */
static bool lock_run(kvshm *kv, kvshm_item *items, const struct pos *p,
                     size_t a, size_t b) {
  if (kv->flags & KVSHM__READER)
    return false; /* it may not lock: each key alone, lock-free (SLOW) */
  int rc = kvshm__lock(kv, p[a].s);
  if (!rc && (rc = kvshm__destroyed(kv)))
    kvshm__unlock(kv, p[a].s);
  if (!rc)
    return true;
  for (size_t j = a; j < b; j++)
    items[p[j].i].rc = rc;
  return false;
}

/* The live entry of key (ref), 0 when absent or a tombstone; *undecided
 * when memory alone cannot say (an expired entry, or a SQLite cache's key
 * absent from memory).  *found: what find_locked found (a tombstone or an
 * expired entry too), *link the chain word at it.  Lock held. */
static uint32_t live_ref_locked(kvshm *kv, const struct pos *q,
                                const kvshm_item *it, uint64_t now,
                                uint32_t *found, uint32_t **link,
                                bool *undecided, int *rc) {
  uint32_t ref = 0;
  *undecided = false;
  *rc = kvshm__find_locked(kv, q->s, q->h, it->key, it->klen, &ref, link);
  *found = ref;
  if (*rc)
    return 0;
  if (!ref) {
    *undecided = kvshm__has_store(kv);
    return 0;
  }
  struct kvshm_head *hd = (void *)kvshm__slot(kv, q->s, ref);
  if (hd->state & KVSHM_ST_TOMB)
    return 0;
  if (hd->expires_ms && hd->expires_ms <= now) {
    *undecided = true;
    return 0;
  }
  return ref;
}

/* ---- get ---------------------------------------------------------------- */

int kvshm_get_many(kvshm *kv, kvshm_item *items, size_t n, void *buf,
                   size_t bufsize) {
  kvshm__clear_detail();
  kvshm__reaper_poll(kv);
  struct pos *p;
  size_t m, used = 0;
  int rc = plan(kv, items, n, &p, &m);
  if (rc)
    return rc;
  bool rdonly = kv->flags & KVSHM_RDONLY;
  unsigned char *out = buf;
  for (size_t a = 0, b; a < m; a = b) {
    b = run_end(p, a, m);
    uint32_t s = p[a].s;
    if (!lock_run(kv, items, p, a, b))
      continue;
    struct kvshm_stripe *st = kvshm__stripe(kv, s);
    uint64_t now = kvshm__now_ms(kv), lfu_now = kvshm__lfu_now_ms(kv);
    for (size_t j = a; j < b; j++) {
      kvshm_item *it = &items[p[j].i];
      uint32_t *link, found;
      bool undecided;
      int frc;
      uint32_t ref =
          live_ref_locked(kv, &p[j], it, now, &found, &link, &undecided, &frc);
      if (frc) {
        it->rc = frc;
        continue;
      }
      if (undecided)
        continue; /* SLOW */
      if (!ref) {
        it->rc = KVSHM_ENOTFOUND;
        st->misses += !rdonly;
        continue;
      }
      struct kvshm_head *hd = (void *)kvshm__slot(kv, s, ref);
      uint32_t klen = hd->klen, vlen = hd->vlen, flags = hd->flags;
      it->vlen = vlen;
      it->flags = flags;
      if (kvshm__entry_check_locked(kv, s, ref, false)) {
        it->rc = kvshm__corrupt_locked(kv, s, "entry chain is broken");
        continue;
      }
      if (vlen > bufsize - used || !out) {
        it->rc = KVSHM_EBUFSIZE;
        continue;
      }
      if (kvshm__entry_copy_locked(kv, s, ref, klen, vlen, flags, hd->check,
                                   klen, out + used)) {
        it->rc = kvshm__corrupt_locked(kv, s, "entry fails its checksum");
        continue;
      }
      it->val = out + used;
      used += vlen;
      it->rc = KVSHM_OK;
      if (!rdonly) {
        uint32_t lfu = kvshm__lfu_touch(kv, hd->lfu, lfu_now);
        if (lfu != hd->lfu)
          hd->lfu = lfu;
        st->hits++;
      }
    }
    kvshm__unlock(kv, s);
  }
  for (size_t j = 0; j < m; j++) { /* what memory could not decide */
    kvshm_item *it = &items[p[j].i];
    if (it->rc != SLOW)
      continue;
    size_t vlen = 0;
    it->rc = kvshm_get(kv, it->key, it->klen, out ? out + used : NULL,
                       bufsize - used, &vlen, &it->flags);
    it->vlen = vlen;
    if (it->rc == KVSHM_OK) {
      it->val = out + used;
      used += vlen;
    }
  }
  free(p);
  return kvshm__cut_short(kv) ? kvshm__cut_short_error(kv) : KVSHM_OK;
}

/* ---- set, delete -------------------------------------------------------- */

static int write_many(kvshm *kv, kvshm_item *items, size_t n, bool del) {
  kvshm__clear_detail();
  if (kv->flags & KVSHM_RDONLY)
    return KVSHM_ERDONLY;
  kvshm__reaper_poll(kv);
  struct pos *p;
  size_t m;
  int rc = plan(kv, items, n, &p, &m);
  if (rc)
    return rc;
  bool store = kvshm__has_store(kv);
  /* Persistent mode bounds how long a write stays only in memory; its
   * one-key calls carry that (write-through), so they do it all. */
  bool fast = !kv->hdr->persistent;
  for (size_t a = 0, b; fast && a < m; a = b) {
    b = run_end(p, a, m);
    uint32_t s = p[a].s;
    if (!lock_run(kv, items, p, a, b))
      continue;
    struct kvshm_stripe *st = kvshm__stripe(kv, s);
    uint64_t now = kvshm__now_ms(kv);
    for (size_t j = a; j < b; j++) {
      kvshm_item *it = &items[p[j].i];
      if (it->rc != SLOW)
        continue;
      uint32_t *link, found;
      bool undecided;
      int frc;
      uint32_t ref =
          live_ref_locked(kv, &p[j], it, now, &found, &link, &undecided, &frc);
      if (frc) {
        it->rc = frc;
        continue;
      }
      if (del && undecided)
        break; /* it and the rest of the stripe: one at a time */
      if (del) {
        if (!ref) {
          it->rc = KVSHM_ENOTFOUND;
        } else {
          if (store) {
            kvshm__tombstone_locked(kv, s, ref, now);
          } else {
            *link = ((struct kvshm_head *)kvshm__slot(kv, s, ref))->hnext;
            kvshm__entry_free_locked(kv, s, ref);
          }
          st->deletes++;
          it->rc = KVSHM_OK;
        }
        continue;
      }
      if (!it->val && it->vlen) {
        it->rc = KVSHM_EINVAL;
        continue;
      }
      if (it->ttl_ms < KVSHM_TTL_DEFAULT || it->vlen > UINT32_MAX) {
        it->rc = it->vlen > UINT32_MAX ? KVSHM_ETOOBIG : KVSHM_EINVAL;
        continue;
      }
      uint64_t ttl = it->ttl_ms == KVSHM_TTL_DEFAULT ? kv->default_ttl_ms
                                                     : (uint64_t)it->ttl_ms;
      struct kvshm__write_req req = {
          it->key,
          it->klen,
          it->val ? it->val : "",
          it->vlen,
          it->flags,
          ttl ? now + ttl : 0,
          store ? KVSHM_ST_DIRTY | KVSHM_ST_STORED : 0,
          ref ? ((struct kvshm_head *)kvshm__slot(kv, s, ref))->lfu
              : kvshm__lfu_new(kv, now)};
      /* A set needs no SQLite: a tombstone or an expired entry found is
       * replaced like a live one (set_once in ops.c does the same). */
      frc = kvshm__write_locked(kv, s, p[j].h, found, link, &req, now);
      if (frc == KVSHM__EDIRTY)
        break; /* no room without a write-back: one at a time from here */
      it->rc = frc;
      st->sets += frc == KVSHM_OK;
    }
    kvshm__unlock(kv, s);
  }
  for (size_t j = 0; j < m; j++) {
    kvshm_item *it = &items[p[j].i];
    if (it->rc != SLOW)
      continue;
    it->rc = del ? kvshm_del(kv, it->key, it->klen)
                 : kvshm_set(kv, it->key, it->klen, it->val, it->vlen,
                             it->flags, it->ttl_ms, 0);
  }
  free(p);
  return kvshm__cut_short(kv) ? kvshm__cut_short_error(kv) : KVSHM_OK;
}

int kvshm_set_many(kvshm *kv, kvshm_item *items, size_t n) {
  return write_many(kv, items, n, false);
}

int kvshm_del_many(kvshm *kv, kvshm_item *items, size_t n) {
  return write_many(kv, items, n, true);
}
