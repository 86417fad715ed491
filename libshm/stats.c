/*
 * stats.c - summing the per-stripe counters into one picture of the cache.
 * Each stripe is locked only while its counters are copied, so stats never
 * stalls writers for longer than one stripe's copy.
 */
#include "internal.h"

#include <stdio.h>

int kvshm_stats_get(kvshm *kv, kvshm_stats *out) {
  kvshm__clear_detail();
  kvshm_stats st;
  memset(&st, 0, sizeof st);
  const struct kvshm_hdr *h = kv->hdr;
  st.memory_size = h->memory_size;
  st.slot_size = h->slot_size;
  st.stripes = h->stripes;
  st.slots_per_stripe = h->slots;
  st.layout_version = h->format;
  st.default_ttl_ms = h->default_ttl_ms;
  st.created_ms = h->created_ms;
  st.max_key = KVSHM_KEY_MAX;
  uint64_t max_slots = kvshm__max_entry_slots(kv);
  st.max_value = KVSHM_HEAD_DATA(kv->slot_size) +
                 (max_slots - 1) * KVSHM_CONT_DATA(kv->slot_size) - 16;
  st.reaper_pid = atomic_load((_Atomic uint32_t *)&h->reaper_pid);
  st.reaper_heartbeat_ms =
      atomic_load((_Atomic uint64_t *)&h->reaper_heartbeat_ms);
  st.persistent = h->persistent;
  st.flush_delay_ms = h->flush_delay_ms;
  st.reaper_starts = atomic_load((_Atomic uint64_t *)&h->reaper_starts);
  st.reaper_alive = kvshm__reaper_alive(kv);
  st.clear_gen = kvshm__clear_gen(kv);
  st.destroyed = atomic_load((_Atomic uint32_t *)&h->destroyed);
  uint64_t now = kvshm__now_ms(kv), oldest = 0;
  /* A reader may not lock: it reads the counters as they are (each one
   * whole, the set of them not from one instant). */
  bool reader = kv->flags & KVSHM__READER;
  for (uint32_t s = 0; s < kv->nstripes; s++) {
    int rc = reader ? KVSHM_OK : kvshm__lock(kv, s);
    if (rc)
      return rc;
    const struct kvshm_stripe *sp = kvshm__stripe(kv, s);
    st.entries += sp->entries - sp->tombstones;
    st.bytes += sp->bytes;
    st.slots_free += sp->nfree;
    st.dirty += sp->dirty;
    st.hits += sp->hits;
    st.misses += sp->misses;
    st.store_hits += sp->store_hits;
    st.sets += sp->sets;
    st.deletes += sp->deletes;
    st.evictions += sp->evictions;
    st.expirations += sp->expirations;
    st.corrupt += sp->corrupt;
    st.repairs += sp->repairs;
    st.spills += sp->spills;
    st.tombstones += sp->tombstones;
    if (sp->dirty && sp->dirty_since_ms &&
        (!oldest || sp->dirty_since_ms < oldest))
      oldest = sp->dirty_since_ms;
    if (!reader)
      kvshm__unlock(kv, s);
  }
  for (unsigned i = 0; i < KVSHM_SHARDS; i++) { /* lock-free gets' counts */
    const struct kvshm_shard *sh = &h->shards[i];
    st.hits += __atomic_load_n(&sh->hits, __ATOMIC_RELAXED);
    st.misses += __atomic_load_n(&sh->misses, __ATOMIC_RELAXED);
  }
  st.slots_used = (uint64_t)kv->nslots * kv->nstripes - st.slots_free;
  st.dirty_age_ms = oldest && now > oldest ? now - oldest : 0;
  *out = st;
  return KVSHM_OK;
}

int kvshm_stripe_stats_get(kvshm *kv, uint32_t stripe,
                           kvshm_stripe_stats *out) {
  kvshm__clear_detail();
  if (stripe >= kv->nstripes)
    return kvshm__fail(KVSHM_EINVAL,
                       "stripe %u does not exist (the cache "
                       "has %u)",
                       stripe, kv->nstripes);
  bool reader = kv->flags & KVSHM__READER; /* reads them as they are */
  int rc = reader ? KVSHM_OK : kvshm__lock(kv, stripe);
  if (rc)
    return rc;
  const struct kvshm_stripe *sp = kvshm__stripe(kv, stripe);
  out->entries = sp->entries - sp->tombstones;
  out->slots_free = sp->nfree;
  out->slots_used = kv->nslots - sp->nfree;
  if (!reader)
    kvshm__unlock(kv, stripe);
  return KVSHM_OK;
}

const char *kvshm_sqlite_path(kvshm *kv) {
  return kv->hdr->sqlite_path;
}

const char *kvshm_name(kvshm *kv) {
  return kv->name;
}

int kvshm_header_dump(kvshm *kv, kvshm_report_fn line, void *ctx) {
  const struct kvshm_hdr *h = kv->hdr;
  char buf[KVSHM_PATH_MAX + 64];
#define U(field, fmt)                                                          \
  snprintf(buf, sizeof buf, "%6zu  %-20s " fmt,                                \
           offsetof(struct kvshm_hdr, field), #field,                          \
           (unsigned long long)h->field);                                      \
  line(ctx, buf);
  U(magic, "0x%016llx")
  U(format, "%llu")
  U(hdr_size, "%llu")
  U(memory_size, "%llu")
  U(slot_size, "%llu")
  U(stripes, "%llu")
  U(slots, "%llu")
  U(buckets, "%llu")
  U(region_off, "%llu")
  U(region_size, "%llu")
  U(default_ttl_ms, "%llu")
  U(created_ms, "%llu")
  U(lock_timeout_ms, "%llu")
  U(persistent, "%llu")
  U(flush_delay_ms, "%llu")
  U(creator_pid, "%llu")
  snprintf(buf, sizeof buf, "%6zu  %-20s \"%.*s\"",
           offsetof(struct kvshm_hdr, sqlite_path), "sqlite_path",
           (int)strnlen(h->sqlite_path, sizeof h->sqlite_path), h->sqlite_path);
  line(ctx, buf);
  U(hdr_check, "0x%08llx")
  U(abi, "0x%06llx")
  U(reaper_pid, "%llu")
  U(reaper_heartbeat_ms, "%llu")
  U(reaper_starts, "%llu")
  U(reaper_spawn_ms, "%llu")
  U(clear_gen, "%llu")
  U(destroyed, "%llu")
  U(near.listener_pid, "%llu")
  U(near.synced_ms, "%llu")
  U(near.listener_starts, "%llu")
  U(near.redis_reads, "%llu")
  U(near.invalidations, "%llu")
  U(near.flushes, "%llu")
  U(near.refused, "%llu")
  U(near.delays, "%llu")
#undef U
  snprintf(buf, sizeof buf, "%6u  %-20s %u x %u bytes", KVSHM_HDR_SIZE,
           "stripe_headers", kv->nstripes, KVSHM_STRIPE_SIZE);
  line(ctx, buf);
  return kvshm__hdr_check(h) == h->hdr_check ? KVSHM_OK : KVSHM_ECORRUPT;
}
