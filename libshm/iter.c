/*
 * iter.c - walking every live entry for tools (keys, dump, the addon's
 * iterators).  The walk holds one stripe lock at a time, and only while it
 * scans to the next entry and copies it out, so writers are never blocked
 * for more than one entry's copy.
 */
#include "store.h"

#include <errno.h>
#include <stdlib.h>

struct kvshm_iter {
  kvshm *kv;
  uint32_t stripe; /* stripe being walked */
  uint32_t next;   /* next slot ref to look at in it */
  unsigned char *prefix;
  size_t plen;
  unsigned char *buf; /* key then value of the current entry */
  size_t bufsize;
  unsigned walk;      /* KVSHM_ITER_STORE */
  sqlite3_stmt *scan; /* the SQLite walk, once memory is done */
  bool scan_done;
  size_t klen, vlen;   /* the current entry, at buf */
  uint32_t flags;      /* its flags word */
  uint64_t expires_ms; /* its expiry */
};

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
  it->next = 1;
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

/* Copy out the first live entry at or after it->next in the locked stripe.
 * Returns 1 if one was copied, 0 if the stripe is done, <0 on error. */
static int scan_stripe_locked(kvshm_iter *it, uint64_t now) {
  kvshm *kv = it->kv;
  uint32_t s = it->stripe;
  for (; it->next <= kv->nslots; it->next++) {
    uint32_t r = it->next;
    struct kvshm_head *hd = (void *)kvshm__slot(kv, s, r);
    if ((hd->state & KVSHM_KIND_MASK) != KVSHM_KIND_HEAD ||
        (hd->state & KVSHM_ST_TOMB) ||
        (hd->expires_ms && hd->expires_ms <= now))
      continue;
    if (kvshm__entry_check_locked(kv, s, r, true))
      continue; /* broken: verify reports it, the next writer repairs it */
    if (hd->klen < it->plen)
      continue;
    size_t total = (size_t)hd->klen + hd->vlen;
    if (total > it->bufsize) {
      unsigned char *b = realloc(it->buf, total ? total : 1);
      if (!b)
        return -ENOMEM;
      it->buf = b;
      it->bufsize = total;
    }
    kvshm__entry_read_locked(kv, s, r, 0, it->buf, total);
    if (it->plen && memcmp(it->buf, it->prefix, it->plen) != 0)
      continue;
    it->next++;
    return 1;
  }
  return 0;
}

/* The next SQLite row whose key memory does not know (live or deleted):
 * memory's entries were yielded already, its tombstones hide their rows. */
static int store_next(kvshm_iter *it) {
  kvshm *kv = it->kv;
  if (!it->scan) {
    int rc = kvshm__store_scan_open(kv, it->prefix, it->plen, &it->scan);
    if (rc)
      return rc;
  }
  for (;;) {
    int rc = sqlite3_step(it->scan);
    if (rc == SQLITE_DONE) {
      it->scan_done = true;
      return KVSHM_ENOTFOUND;
    }
    if (rc != SQLITE_ROW)
      return kvshm__fail(KVSHM_ESQLITE, "walking SQLite rows failed");
    size_t kl = (size_t)sqlite3_column_bytes(it->scan, 0);
    const void *k = sqlite3_column_blob(it->scan, 0);
    if (kl < it->plen || (it->plen && memcmp(k, it->prefix, it->plen))) {
      it->scan_done = true; /* ordered by key: past the prefix */
      return KVSHM_ENOTFOUND;
    }
    if (kl > KVSHM_KEY_MAX || kvshm__memory_state(kv, k, kl) != 0)
      continue;
    size_t vl = (size_t)sqlite3_column_bytes(it->scan, 1);
    const void *v = sqlite3_column_blob(it->scan, 1);
    if (kl + vl > it->bufsize) {
      unsigned char *b = realloc(it->buf, kl + vl);
      if (!b)
        return -ENOMEM;
      it->buf = b;
      it->bufsize = kl + vl;
    }
    if (kl)
      memcpy(it->buf, k, kl);
    if (vl)
      memcpy(it->buf + kl, v, vl);
    it->klen = kl;
    it->vlen = vl;
    it->flags = (uint32_t)sqlite3_column_int64(it->scan, 2);
    it->expires_ms = (uint64_t)sqlite3_column_int64(it->scan, 3);
    return KVSHM_OK;
  }
}

int kvshm_iter_next(kvshm_iter *it, const void **key, size_t *klen,
                    const void **val, size_t *vlen, uint32_t *flags,
                    uint64_t *expires_ms) {
  kvshm *kv = it->kv;
  uint64_t now = kvshm__now_ms(kv);
  while (it->stripe < kv->nstripes) {
    int rc = kvshm__lock(kv, it->stripe);
    if (rc)
      return rc;
    rc = scan_stripe_locked(it, now);
    if (rc == 1) {
      struct kvshm_head *hd = (void *)kvshm__slot(kv, it->stripe, it->next - 1);
      it->klen = hd->klen;
      it->vlen = hd->vlen;
      it->flags = hd->flags;
      it->expires_ms = hd->expires_ms;
    }
    kvshm__unlock(kv, it->stripe);
    if (rc == 1)
      goto found;
    if (rc < 0)
      return rc;
    it->stripe++;
    it->next = 1;
  }
  if (!(it->walk & KVSHM_ITER_STORE) || it->scan_done)
    return KVSHM_ENOTFOUND;
  int rc = store_next(it);
  if (rc)
    return rc;
found:
  if (key)
    *key = it->buf;
  if (klen)
    *klen = it->klen;
  if (val)
    *val = it->buf + it->klen;
  if (vlen)
    *vlen = it->vlen;
  if (flags)
    *flags = it->flags;
  if (expires_ms)
    *expires_ms = it->expires_ms;
  return KVSHM_OK;
}

void kvshm_iter_close(kvshm_iter *it) {
  if (!it)
    return;
  sqlite3_finalize(it->scan);
  free(it->prefix);
  free(it->buf);
  free(it);
}
