/*
 * chain.c - entry I/O: reading an entry's bytes across its head slot and
 * continuation chain, copying them out while checking their checksum, and
 * checking an entry's chain, lengths and checksum.  All of them walk the
 * chain with the one walker (kvshm__walk_start/next, internal.h), which
 * holds the one bounds policy; slots.c frees chains, and lock.c's repair
 * and verify.c claim their slots, with the same walker.  write.c builds
 * chains (from the slots it took, not by following links).
 *
 * Lock rules: the *_locked functions expect the stripe's lock held, except
 * that kvshm__entry_check_locked and kvshm__entry_copy_locked are read-only
 * and take nothing on trust, so the lock-free gets (seqread.c) call them
 * too, and throw away what they return if the stripe changed meanwhile.
 * Every ref and length read from the segment is checked before use
 * (another process may have scribbled on it); a broken entry is reported
 * as KVSHM_ECORRUPT, and what to do about it is the caller's.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>

#define CHECK_SEED 0x636865636b73756dull

int kvshm__scratch(kvshm *kv, size_t n) {
  if (n <= kv->scratch_size)
    return KVSHM_OK;
  size_t sz = kv->scratch_size ? kv->scratch_size : 256;
  while (sz < n)
    sz *= 2;
  unsigned char *p = realloc(kv->scratch, sz);
  if (!p)
    return -ENOMEM;
  kv->scratch = p;
  kv->scratch_size = sz;
  return KVSHM_OK;
}

static inline struct kvshm_head *head_at(kvshm *kv, uint32_t s, uint32_t r) {
  return (struct kvshm_head *)kvshm__slot(kv, s, r);
}

/* Copy `len` bytes of entry data from `off` on into dst; a bad link (the
 * entry changed, or is broken) stops the copy short. */
void kvshm__entry_read_locked(kvshm *kv, uint32_t s, uint32_t ref, uint64_t off,
                              void *dst, uint64_t len) {
  struct kvshm_head *hd = head_at(kv, s, ref);
  unsigned char *d = dst;
  struct kvshm__walk w;
  kvshm__walk_start(&w, kv, s, ref, (uint64_t)hd->klen + hd->vlen);
  while (len) {
    if (off >= w.cap) {
      off -= w.cap;
    } else {
      size_t n = w.cap - off < len ? w.cap - off : len;
      memcpy(d, w.data + off, n);
      d += n;
      len -= n;
      off = 0;
      if (!len)
        break;
    }
    if (kvshm__walk_next(&w) != KVSHM__WALK_NEXT)
      break;
  }
}

/*
 * Copy entry ref's bytes from `from` on (0: key and value; klen: the value)
 * into dst and check the entry's checksum over the very bytes copied, so
 * that data another process changes while we copy it is never taken as
 * good.  klen, vlen, flags and check are the head's words, read once by the
 * caller; the walk goes by those lengths.
 */
int kvshm__entry_copy_locked(kvshm *kv, uint32_t s, uint32_t ref, uint32_t klen,
                             uint32_t vlen, uint32_t flags, uint32_t check,
                             uint64_t from, void *dst) {
  uint64_t total = (uint64_t)klen + vlen, pos = 0;
  uint64_t h =
      CHECK_SEED ^ ((uint64_t)klen << 32 | vlen) ^ ((uint64_t)flags << 17);
  unsigned char *d = dst;
  if (from > total)
    return KVSHM_ECORRUPT;
  if (kvshm__scratch(kv, kv->slot_size))
    return -ENOMEM;
  struct kvshm__walk w;
  kvshm__walk_start(&w, kv, s, ref, total);
  while (pos < total) {
    size_t n = w.cap < total - pos ? w.cap : total - pos;
    const unsigned char *p = w.data, *src = p;
    if (pos >= from) { /* wanted whole: hash the copy */
      memcpy(d + (pos - from), p, n);
      src = d + (pos - from);
    } else if (pos + n > from) { /* not wanted, then wanted */
      memcpy(kv->scratch, p, n);
      memcpy(d, kv->scratch + (from - pos), pos + n - from);
      src = kv->scratch;
    }
    h = kvshm__sum(src, n, h);
    pos += n;
    if (pos < total && kvshm__walk_next(&w) != KVSHM__WALK_NEXT)
      break; /* pos falls short of total: corrupt */
  }
  if (pos != total || (uint32_t)(h ^ (h >> 32)) != check)
    return KVSHM_ECORRUPT;
  return KVSHM_OK;
}

uint32_t kvshm__entry_checksum_locked(kvshm *kv, uint32_t s, uint32_t ref) {
  struct kvshm_head *hd = head_at(kv, s, ref);
  uint64_t total = (uint64_t)hd->klen + hd->vlen;
  uint64_t h = CHECK_SEED ^ ((uint64_t)hd->klen << 32 | hd->vlen) ^
               ((uint64_t)hd->flags << 17);
  struct kvshm__walk w;
  kvshm__walk_start(&w, kv, s, ref, total);
  while (total) {
    size_t n = w.cap < total ? w.cap : total;
    h = kvshm__sum(w.data, n, h);
    total -= n;
    if (total && kvshm__walk_next(&w) != KVSHM__WALK_NEXT)
      break;
  }
  return (uint32_t)(h ^ (h >> 32));
}

int kvshm__entry_check_locked(kvshm *kv, uint32_t s, uint32_t ref,
                              bool checksum) {
  struct kvshm_head *hd = head_at(kv, s, ref);
  if (hd->state & ~KVSHM_ST_KNOWN || hd->klen > KVSHM_KEY_MAX)
    return KVSHM_ECORRUPT;
  /* The walker checks every link, ownership and the chain's length. */
  struct kvshm__walk w;
  kvshm__walk_start(&w, kv, s, ref, (uint64_t)hd->klen + hd->vlen);
  int step;
  while ((step = kvshm__walk_next(&w)) == KVSHM__WALK_NEXT)
    ;
  if (step != KVSHM__WALK_END)
    return KVSHM_ECORRUPT;
  if (checksum && kvshm__entry_checksum_locked(kv, s, ref) != hd->check)
    return KVSHM_ECORRUPT;
  return KVSHM_OK;
}
