/*
 * write.c - writing an entry: a new entry for a key goes into free slots
 * and replaces the old one copy-on-write, so that a process killed at any
 * instant leaves the old entry or the new one, never half of either
 * (layout.h, lock.c).
 *
 * Lock rule: kvshm__write_locked expects the stripe's lock held (lock.c).
 */
#include "slots.h"

#include <errno.h>
#include <stdlib.h>

static inline struct kvshm_head *head_at(kvshm *kv, uint32_t s, uint32_t r) {
  return (struct kvshm_head *)kvshm__slot(kv, s, r);
}

/*
 * Write a new entry for req into fresh slots and make it replace `old` (0 if
 * none), copy-on-write: the new entry becomes visible with one release store
 * of its state word; only then is the old one unlinked and freed.
 */
int kvshm__write_locked(kvshm *kv, uint32_t s, uint64_t h, uint32_t old,
                        uint32_t *link, const struct kvshm__write_req *req,
                        uint64_t now) {
  struct kvshm_stripe *st = kvshm__stripe(kv, s);
  uint64_t total = (uint64_t)req->klen + req->vlen;
  uint64_t need = kvshm__slots_for(kv->slot_size, total);
  if (need > kvshm__max_entry_slots(kv))
    return kvshm__fail(KVSHM_ETOOBIG,
                       "entry of %llu bytes needs %llu slots; "
                       "one entry may use at most %u (half a stripe): raise "
                       "memory_size or slot_size, or lower stripes",
                       (unsigned long long)total, (unsigned long long)need,
                       kvshm__max_entry_slots(kv));
  if (st->nfree < need) {
    int rc = kvshm__evict_locked(kv, s, (uint32_t)need, old, now);
    if (rc)
      return rc;
    /* Eviction may have reshaped the chain: find the link again. */
    uint32_t again;
    rc = kvshm__find_locked(kv, s, h, req->key, req->klen, &again, &link);
    if (rc)
      return rc;
    old = again;
  }
  if (!kvshm__free_list_sane(kv, s, (uint32_t)need))
    return kvshm__corrupt_locked(kv, s, "free list is broken");
  uint32_t refs_small[8] = {0};
  uint32_t *refs = need <= 8 ? refs_small : malloc(need * sizeof *refs);
  if (!refs)
    return -ENOMEM;
  uint32_t home = kvshm__home_of(kv, kvshm__bucket_of(kv, h));
  refs[0] = kvshm__take_home_locked(kv, s, home)
                ? home
                : kvshm__alloc_slot_locked(kv, s);
  for (uint64_t i = 1; i < need; i++)
    refs[i] = kvshm__alloc_slot_locked(kv, s);
  kvshm__hook(kv, KVSHM_TP_SET_ALLOCATED);
  uint32_t head = refs[0];
  /* Continuation slots, from the last one back. */
  size_t hcap = KVSHM_HEAD_DATA(kv->slot_size);
  size_t ccap = KVSHM_CONT_DATA(kv->slot_size);
  const unsigned char *kp = req->key, *vp = req->val;
  for (uint64_t i = 0; i < need; i++) {
    unsigned char *slot = kvshm__slot(kv, s, refs[i]);
    size_t hdr = i == 0 ? sizeof(struct kvshm_head) : sizeof(struct kvshm_cont);
    size_t cap = i == 0 ? hcap : ccap;
    uint64_t start = i == 0 ? 0 : hcap + (i - 1) * ccap;
    /* Copy [start, start+cap) of key||value. */
    size_t done = 0;
    while (done < cap && start + done < total) {
      uint64_t pos = start + done;
      size_t n;
      if (pos < req->klen) {
        n = req->klen - pos < cap - done ? req->klen - pos : cap - done;
        memcpy(slot + hdr + done, kp + pos, n);
      } else {
        uint64_t vpos = pos - req->klen;
        n = req->vlen - vpos < cap - done ? req->vlen - vpos : cap - done;
        memcpy(slot + hdr + done, vp + vpos, n);
      }
      done += n;
    }
    if (i > 0) {
      struct kvshm_cont *ct = (void *)slot;
      ct->pad = 0;
      ct->owner = head;
      ct->cnext = i + 1 < need ? refs[i + 1] : KVSHM_NIL;
      kvshm__state_store(ct, KVSHM_KIND_CONT);
    }
    if (i == need / 2)
      kvshm__hook(kv, KVSHM_TP_SET_HALF_WRITTEN);
  }
  struct kvshm_head *hd = head_at(kv, s, head);
  hd->klen = (uint16_t)req->klen;
  hd->cnext = need > 1 ? refs[1] : KVSHM_NIL;
  hd->vlen = (uint32_t)req->vlen;
  hd->flags = req->flags;
  hd->lfu = req->lfu;
  hd->expires_ms = req->expires_ms;
  hd->hnext = KVSHM_NIL;
  hd->check = kvshm__entry_checksum_locked(kv, s, head);
  hd->version = ++st->version;
  if (refs != refs_small)
    free(refs);
  kvshm__hook(kv, KVSHM_TP_SET_BEFORE_COMMIT);
  kvshm__state_store(hd, (uint16_t)(KVSHM_KIND_HEAD | req->state_bits));
  kvshm__hook(kv, KVSHM_TP_SET_COMMITTED);
  /* Link the new entry where the old one was (or at the chain's end). */
  st->entries++;
  st->bytes += total;
  if (req->state_bits & KVSHM_ST_DIRTY && st->dirty++ == 0)
    st->dirty_since_ms = now;
  st->tombstones += (req->state_bits & KVSHM_ST_TOMB) != 0;
  if (old) {
    hd->hnext = head_at(kv, s, old)->hnext;
    *link = head;
    kvshm__hook(kv, KVSHM_TP_SET_LINKED);
    kvshm__entry_free_locked(kv, s, old);
  } else {
    /* *link is the chain's end, or, when an expired entry was just freed in
     * place (live_locked), the rest of the chain: keep that behind us. */
    hd->hnext = *link;
    *link = head;
  }
  return KVSHM_OK;
}
