/*
 * lfu.c - least-frequently-used bookkeeping and eviction, after Redis's
 * evict.c.
 *
 * Each entry has an 8-bit logarithmic counter and the time (minutes, 24 bits)
 * it was last decremented (see the bit diagram in layout.h):
 *  - a new entry starts at KVSHM_LFU_INIT (5), so it is not the first victim
 *    before it had a chance to be read;
 *  - a read increments the counter with probability
 *    1 / ((counter - INIT) * KVSHM_LFU_LOG_FACTOR + 1): with factor 10 the
 *    counter reaches ~100 after ~10k reads and 255 after ~1M;
 *  - it loses one point per KVSHM_LFU_DECAY_MIN minutes since the last read,
 *    so
 *    keys that were hot long ago make way for keys that are hot now.
 *
 * Eviction samples: for each victim it looks at up to EVICT_SAMPLES random
 * clean entries of the stripe and evicts the one with the lowest (decayed)
 * counter; an expired entry is always taken first.  Dirty entries and
 * tombstones are never evicted (SQLite does not have them yet): a stripe
 * full of them is written back first, outside its lock (ops.c).  This costs
 * O(samples), not O(stripe), and approximates exact LFU closely (Redis
 * uses 5..10).
 */
#include "store.h"

#define EVICT_SAMPLES 16
#define EVICT_TRIES 64

uint64_t kvshm__rand(kvshm *kv) {
  uint64_t x = kv->rng; /* xorshift64* */
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  kv->rng = x;
  return x * 0x2545f4914f6cdd1dull;
}

static uint32_t minutes(uint64_t now_ms) {
  return (uint32_t)(now_ms / 60000u) & 0xffffffu;
}

uint32_t kvshm__lfu_new(kvshm *kv, uint64_t now_ms) {
  (void)kv;
  return minutes(now_ms) << 8 | KVSHM_LFU_INIT;
}

uint32_t kvshm__lfu_counter(uint32_t lfu, uint64_t now_ms) {
  uint32_t then = lfu >> 8, now = minutes(now_ms);
  uint32_t elapsed = (now - then) & 0xffffffu; /* wraps every 31 years */
  uint32_t periods = elapsed / KVSHM_LFU_DECAY_MIN;
  uint32_t c = lfu & 0xffu;
  return periods >= c ? 0 : c - periods;
}

uint32_t kvshm__lfu_next(uint32_t lfu, uint64_t now_ms, uint32_t draw) {
  uint32_t c = kvshm__lfu_counter(lfu, now_ms);
  if (c < 255) {
    uint32_t base = c > KVSHM_LFU_INIT ? c - KVSHM_LFU_INIT : 0;
    /* r < 1/(base*factor+1)  <=>  r * (base*factor+1) < 1, in 32-bit fixed */
    if ((uint64_t)draw * ((uint64_t)base * KVSHM_LFU_LOG_FACTOR + 1) <
        (1ull << 32))
      c++;
  }
  /* Decay counts minutes since the last access, as in Redis. */
  return minutes(now_ms) << 8 | c;
}

uint32_t kvshm__lfu_touch(kvshm *kv, uint32_t lfu, uint64_t now_ms) {
  return kvshm__lfu_next(lfu, now_ms, (uint32_t)(kvshm__rand(kv) >> 32));
}

/* The best victim so far, and how many clean candidates were seen. */
struct pick {
  uint32_t best, best_score;
  int seen;
  bool dirty_seen;
};

/* Weigh slot r as a victim: clean heads only, never `keep`; an expired one
 * scores 0, the others 1 + their decayed counter.  True on a score of 0. */
static bool consider(kvshm *kv, uint32_t s, uint32_t r, uint32_t keep,
                     uint64_t now_ms, struct pick *p) {
  struct kvshm_head *hd = (void *)kvshm__slot(kv, s, r);
  if ((hd->state & KVSHM_KIND_MASK) != KVSHM_KIND_HEAD || r == keep)
    return false;
  if (hd->state & KVSHM_ST_DIRTY) {
    p->dirty_seen = true;
    return false;
  }
  p->seen++;
  uint32_t score = hd->expires_ms && hd->expires_ms <= now_ms
                       ? 0
                       : 1 + kvshm__lfu_counter(hd->lfu, now_ms);
  if (score < p->best_score) {
    p->best = r;
    p->best_score = score;
  }
  return score == 0;
}

/* Pick the coldest of a few random clean entries (never `keep`); if the
 * samples find none, scan from a random point for a few clean ones.  0 if
 * there is none to take; p->dirty_seen says whether the stripe holds dirty
 * entries (then a write-back would make room). */
static uint32_t pick_victim_locked(kvshm *kv, uint32_t s, uint32_t keep,
                                   uint64_t now_ms, struct pick *p) {
  *p = (struct pick){KVSHM_NIL, UINT32_MAX, 0, false};
  for (int t = 0; t < EVICT_TRIES && p->seen < EVICT_SAMPLES; t++)
    if (consider(kv, s, 1 + (uint32_t)(kvshm__rand(kv) % kv->nslots), keep,
                 now_ms, p))
      break;
  /* Few clean entries among many dirty ones: those few are likely the hot
   * keys (they stay clean while a writer floods), so rather than evict the
   * coldest of them, have the stripe written back first: that makes the
   * flood itself clean and evictable. */
  if (p->dirty_seen && p->seen < EVICT_SAMPLES / 4)
    return KVSHM_NIL;
  if (p->best)
    return p->best;
  /* Sampling found no entry (a stripe of mostly free or chained slots):
   * scan from a random point for the first few clean ones, and take the
   * coldest of those. */
  uint32_t start = (uint32_t)(kvshm__rand(kv) % kv->nslots);
  for (uint32_t i = 0; i < kv->nslots && p->seen < EVICT_SAMPLES; i++)
    consider(kv, s, 1 + (start + i) % kv->nslots, keep, now_ms, p);
  return p->best;
}

int kvshm__evict_locked(kvshm *kv, uint32_t s, uint32_t need, uint32_t keep,
                        uint64_t now_ms) {
  struct kvshm_stripe *st = kvshm__stripe(kv, s);
  while (st->nfree < need) {
    struct pick p;
    uint32_t v = pick_victim_locked(kv, s, keep, now_ms, &p);
    if (!v && (p.dirty_seen || st->dirty))
      return KVSHM__EDIRTY;
    if (!v)
      return kvshm__fail(KVSHM_ETOOBIG,
                         "stripe %u has no entry left to "
                         "evict for %u slots",
                         s, need);
    if (kvshm__entry_check_locked(kv, s, v, false)) {
      kvshm__repair_locked(kv, s);
      return kvshm__fail(KVSHM_ECORRUPT,
                         "eviction met a broken entry in "
                         "stripe %u; the stripe was rebuilt",
                         s);
    }
    struct kvshm_head *hd = (void *)kvshm__slot(kv, s, v);
    bool exp = hd->expires_ms && hd->expires_ms <= now_ms;
    bool tomb = hd->state & KVSHM_ST_TOMB;
    kvshm__entry_remove_locked(kv, s, v);
    st->gen_evict++;
    if (exp)
      st->expirations++;
    else if (!tomb)
      st->evictions++;
    kvshm__hook(kv, KVSHM_TP_EVICTING);
  }
  return KVSHM_OK;
}
