/*
 * chain.c - entry I/O: reading an entry's bytes across its head slot and
 * continuation chain, copying them out while checking their checksum, and
 * checking an entry's chain, lengths and checksum.
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

/* Walk entry data: call fn on each (pointer, length) piece from `off`. */
#define FOR_EACH_PIECE(kv, s, ref, off, len, P, N, BODY)                       \
  do {                                                                         \
    uint64_t off_ = (off), left_ = (len);                                      \
    uint32_t r_ = (ref);                                                       \
    unsigned char *slot_ = kvshm__slot(kv, s, r_);                             \
    size_t hdr_ = sizeof(struct kvshm_head);                                   \
    uint32_t next_ = ((struct kvshm_head *)slot_)->cnext;                      \
    while (left_) {                                                            \
      size_t cap_ = kv->slot_size - hdr_;                                      \
      if (off_ >= cap_) {                                                      \
        off_ -= cap_;                                                          \
      } else {                                                                 \
        size_t N = cap_ - off_ < left_ ? cap_ - off_ : left_;                  \
        unsigned char *P = slot_ + hdr_ + off_;                                \
        BODY;                                                                  \
        left_ -= N;                                                            \
        off_ = 0;                                                              \
        if (!left_)                                                            \
          break;                                                               \
      }                                                                        \
      if (!kvshm__ref_ok(kv, next_)) /* changed under us: stop short */        \
        break;                                                                 \
      slot_ = kvshm__slot(kv, s, next_);                                       \
      hdr_ = sizeof(struct kvshm_cont);                                        \
      next_ = ((struct kvshm_cont *)slot_)->cnext;                             \
    }                                                                          \
  } while (0)

void kvshm__entry_read_locked(kvshm *kv, uint32_t s, uint32_t ref, uint64_t off,
                              void *dst, uint64_t len) {
  unsigned char *d = dst;
  FOR_EACH_PIECE(kv, s, ref, off, len, p, n, {
    memcpy(d, p, n);
    d += n;
  });
}

/*
 * Copy entry ref's bytes from `from` on (0: key and value; klen: the value)
 * into dst and check the entry's checksum over the very bytes copied, so
 * that data another process changes while we copy it is never taken as
 * good.  klen, vlen, flags and check are the head's words, read once by the
 * caller.
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
  FOR_EACH_PIECE(kv, s, ref, 0, total, p, n, {
    const unsigned char *src = p;
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
  });
  if (pos != total || (uint32_t)(h ^ (h >> 32)) != check)
    return KVSHM_ECORRUPT;
  return KVSHM_OK;
}

uint32_t kvshm__entry_checksum_locked(kvshm *kv, uint32_t s, uint32_t ref) {
  struct kvshm_head *hd = head_at(kv, s, ref);
  uint64_t total = (uint64_t)hd->klen + hd->vlen;
  uint64_t h = CHECK_SEED ^ ((uint64_t)hd->klen << 32 | hd->vlen) ^
               ((uint64_t)hd->flags << 17);
  FOR_EACH_PIECE(kv, s, ref, 0, total, p, n, { h = kvshm__sum(p, n, h); });
  return (uint32_t)(h ^ (h >> 32));
}

int kvshm__entry_check_locked(kvshm *kv, uint32_t s, uint32_t ref,
                              bool checksum) {
  struct kvshm_head *hd = head_at(kv, s, ref);
  if (hd->state & ~KVSHM_ST_KNOWN || hd->klen > KVSHM_KEY_MAX)
    return KVSHM_ECORRUPT;
  uint64_t need =
      kvshm__slots_for(kv->slot_size, (uint64_t)hd->klen + hd->vlen);
  if (need > kvshm__max_entry_slots(kv) && need > 1)
    return KVSHM_ECORRUPT;
  uint32_t c = hd->cnext;
  for (uint64_t i = 1; i < need; i++) {
    if (!kvshm__ref_ok(kv, c) || c == ref)
      return KVSHM_ECORRUPT;
    struct kvshm_cont *ct = (void *)kvshm__slot(kv, s, c);
    if ((ct->state & KVSHM_KIND_MASK) != KVSHM_KIND_CONT || ct->owner != ref)
      return KVSHM_ECORRUPT;
    c = ct->cnext;
  }
  if (c != KVSHM_NIL)
    return KVSHM_ECORRUPT;
  if (checksum && kvshm__entry_checksum_locked(kv, s, ref) != hd->check)
    return KVSHM_ECORRUPT;
  return KVSHM_OK;
}
