/*
 * store.c - the SQLite tier.  A memory-only cache (no sqlite_path) has no
 * second tier: flushing it writes nothing and its store is empty.
 */
#include "internal.h"

int kvshm_flush(kvshm *kv) {
  kvshm__clear_detail();
  if (!kv->hdr->sqlite_path[0])
    return KVSHM_OK;
  return kvshm__fail(KVSHM_ESQLITE, "the SQLite tier is not built yet");
}

int kvshm_store_stats_get(kvshm *kv, kvshm_store_stats *st) {
  kvshm__clear_detail();
  memset(st, 0, sizeof *st);
  if (!kv->hdr->sqlite_path[0])
    return KVSHM_OK;
  return kvshm__fail(KVSHM_ESQLITE, "the SQLite tier is not built yet");
}
