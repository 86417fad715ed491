/*
 * verify.c - check every invariant of a segment without changing it: the
 * header, and for each stripe (locked while it is checked) its index, every
 * entry's chain and checksum, its free list and its counts.  Used by
 * `kvshm-cli verify` and by the tests after every multi-process scenario.
 */
#include "store.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

struct vctx {
  kvshm_report_fn report;
  void *ctx;
  int problems;
};

__attribute__((format(printf, 2, 3))) static void
problem(struct vctx *v, const char *fmt, ...) {
  char msg[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  v->problems++;
  if (v->report)
    v->report(v->ctx, msg);
}

static void report_raw(void *ctx, const char *msg) {
  struct vctx *v = ctx;
  if (v->report)
    v->report(v->ctx, msg);
}

enum { UNSEEN = 0, OWNED = 1, FREED = 2 };

static void verify_stripe_locked(kvshm *kv, uint32_t s, struct vctx *v) {
  struct kvshm_stripe *st = kvshm__stripe(kv, s);
  uint32_t n = kv->nslots;
  if (st->fresh > n || st->nfree > n) {
    problem(v,
            "stripe %u: allocator fields out of range (fresh %u, nfree "
            "%u, slots %u)",
            s, st->fresh, st->nfree, n);
    return;
  }
  unsigned char *mark = calloc(n + 1, 1);
  if (!mark) {
    problem(v, "stripe %u: out of memory while verifying", s);
    return;
  }
  uint32_t *buckets = kvshm__buckets(kv, s);
  uint32_t entries = 0, dirty = 0, tombs = 0;
  uint64_t bytes = 0;
  for (uint32_t b = 0; b < kv->nbuckets; b++) {
    uint32_t steps = 0;
    for (uint32_t r = buckets[b]; r;) {
      if (!kvshm__ref_ok(kv, r)) {
        problem(v, "stripe %u bucket %u: ref %u out of range", s, b, r);
        break;
      }
      if (mark[r] || ++steps > n) {
        problem(v, "stripe %u bucket %u: chain loops or shares slot %u", s, b,
                r);
        break;
      }
      struct kvshm_head *hd = (void *)kvshm__slot(kv, s, r);
      if ((hd->state & KVSHM_KIND_MASK) != KVSHM_KIND_HEAD) {
        problem(v, "stripe %u bucket %u: slot %u is not an entry head", s, b,
                r);
        break;
      }
      if (kvshm__entry_check_locked(kv, s, r, true)) {
        problem(v,
                "stripe %u slot %u: entry fails its chain or checksum "
                "check",
                s, r);
        mark[r] = OWNED;
        r = hd->hnext;
        continue;
      }
      unsigned char key[KVSHM_KEY_MAX];
      kvshm__entry_read_locked(kv, s, r, 0, key, hd->klen);
      uint64_t h = kvshm__key_hash(key, hd->klen);
      if (kvshm__stripe_of(kv, h) != s || kvshm__bucket_of(kv, h) != b)
        problem(v, "stripe %u slot %u: key is in the wrong bucket", s, r);
      mark[r] = OWNED;
      struct kvshm__walk w; /* it passed its check: this runs to its end */
      kvshm__walk_start(&w, kv, s, r, (uint64_t)hd->klen + hd->vlen);
      while (kvshm__walk_next(&w) == KVSHM__WALK_NEXT) {
        if (mark[w.ref])
          problem(v, "stripe %u slot %u: claimed by two entries", s, w.ref);
        mark[w.ref] = OWNED;
      }
      entries++;
      bytes += (uint64_t)hd->klen + hd->vlen;
      dirty += (hd->state & KVSHM_ST_DIRTY) != 0;
      tombs += (hd->state & KVSHM_ST_TOMB) != 0;
      r = hd->hnext;
    }
  }
  uint32_t listed = 0, prev = KVSHM_NIL;
  for (uint32_t r = st->free_head; r;
       prev = r, r = ((struct kvshm_head *)kvshm__slot(kv, s, r))->hnext) {
    if (!kvshm__ref_ok(kv, r) || r > st->fresh) {
      problem(v, "stripe %u free list: ref %u out of range", s, r);
      break;
    }
    if (((struct kvshm_head *)kvshm__slot(kv, s, r))->cnext != prev)
      problem(v, "stripe %u free list: slot %u's back link is not %u", s, r,
              prev);
    if (mark[r]) {
      problem(v, "stripe %u free list: slot %u is %s", s, r,
              mark[r] == OWNED ? "in use" : "listed twice");
      break;
    }
    if ((kvshm__state_load(kvshm__slot(kv, s, r)) & KVSHM_KIND_MASK) !=
        KVSHM_KIND_FREE)
      problem(v, "stripe %u free list: slot %u is not free", s, r);
    mark[r] = FREED;
    listed++;
  }
  for (uint32_t r = 1; r <= n; r++) {
    uint16_t kind = kvshm__state_load(kvshm__slot(kv, s, r)) & KVSHM_KIND_MASK;
    if (r > st->fresh) {
      if (kind != KVSHM_KIND_FREE)
        problem(v, "stripe %u slot %u: beyond the used area but not free", s,
                r);
    } else if (!mark[r]) {
      problem(v, "stripe %u slot %u: leaked (%s, neither indexed nor free)", s,
              r, kind == KVSHM_KIND_HEAD ? "an entry" : "a slot");
    }
  }
  if (listed + (n - st->fresh) != st->nfree)
    problem(v, "stripe %u: nfree is %u but %u slots are free", s, st->nfree,
            listed + (n - st->fresh));
  if (entries != st->entries || bytes != st->bytes || dirty != st->dirty ||
      tombs != st->tombstones)
    problem(v,
            "stripe %u: counts say %u entries/%llu bytes/%u dirty, the "
            "slots hold %u/%llu/%u",
            s, st->entries, (unsigned long long)st->bytes, st->dirty, entries,
            (unsigned long long)bytes, dirty);
  free(mark);
}

int kvshm_verify(kvshm *kv, kvshm_report_fn report, void *ctx) {
  kvshm__clear_detail();
  struct vctx v = {report, ctx, 0};
  /* Whoever may write the segment file may also truncate it, and every
   * access to the mapping past its new end is SIGBUS: look at the file
   * before reading a byte of it. */
  struct stat sb;
  if (kv->seg_fd >= 0 && fstat(kv->seg_fd, &sb) == 0 &&
      (uint64_t)sb.st_size < kv->size) {
    problem(&v,
            "segment: its file is %llu bytes but %zu are mapped: it was "
            "truncated; destroy the cache (kvshm-cli destroy %s)",
            (unsigned long long)sb.st_size, kv->size, kv->name);
    return v.problems;
  }
  if (kvshm__cut_short(kv)) {
    kvshm__cut_short_error(kv);
    problem(&v, "segment: %s", kvshm_errdetail());
    return v.problems;
  }
  if (atomic_load((_Atomic uint64_t *)&kv->hdr->magic) != KVSHM_MAGIC)
    problem(&v, "header: the magic word was overwritten (kvshm-cli repair "
                "puts it back)");
  if (kvshm__hdr_validate(kv->hdr, kv->size, kv->name)) {
    problem(&v, "header: %s", kvshm_errdetail());
    return v.problems;
  }
  char why[120];
  if (kvshm__mutex_check(&kv->hdr->reaper_lock, why, sizeof why))
    problem(&v, "header: the reaper lock is damaged (%s)", why);
  if (kvshm__mutex_check(&kv->hdr->near.lock, why, sizeof why))
    problem(&v, "header: the near-cache listener lock is damaged (%s)", why);
  for (uint32_t s = 0; s < kv->nstripes; s++) {
    /* A stripe's generation can never pass the header's. */
    uint64_t sg =
        atomic_load((_Atomic uint64_t *)&kvshm__stripe(kv, s)->clear_gen);
    if (sg > kvshm__clear_gen(kv))
      problem(&v, "stripe %u: clear_gen %llu is ahead of the header's %llu", s,
              (unsigned long long)sg, (unsigned long long)kvshm__clear_gen(kv));
    int rc = kvshm__lock(kv, s);
    if (rc == KVSHM_ECORRUPT || rc == KVSHM_ETIMEDOUT) {
      problem(&v, "stripe %u: %s", s, kvshm_errdetail());
      continue;
    }
    if (rc)
      return rc;
    verify_stripe_locked(kv, s, &v);
    kvshm__unlock(kv, s);
  }
  if (kvshm__has_store(kv)) {
    v.problems += kvshm__store_verify(kv, report_raw, &v);
    /* The file's clear generation is never ahead of the segment's: a lower
     * one in memory would make rows that a write-behind committed invisible
     * (the header's run-time words are not covered by its checksum). */
    uint64_t file = 0, mem = kvshm__clear_gen(kv);
    if (kvshm__store_meta_get(kv, "clear_gen", &file) == KVSHM_OK && file > mem)
      problem(&v,
              "header: clear_gen is %llu but the SQLite file has reached "
              "%llu: the header was overwritten; reopening the cache "
              "(any process) raises it again",
              (unsigned long long)mem, (unsigned long long)file);
  }
  return v.problems;
}

int kvshm_repair(kvshm *kv, unsigned flags, kvshm_report_fn report, void *ctx) {
  kvshm__clear_detail();
  if (flags & ~KVSHM_REPAIR_FORCE)
    return kvshm__fail(KVSHM_EINVAL, "unknown repair flags 0x%x", flags);
  if (kv->flags & KVSHM_RDONLY)
    return kvshm__fail(KVSHM_ERDONLY, "repair needs a handle that may write");
  if (kvshm__cut_short(kv))
    return kvshm__cut_short_error(kv);
  struct vctx done = {report, ctx, 0};
  if (kvshm__hdr_validate(kv->hdr, kv->size, kv->name))
    return KVSHM_ECORRUPT; /* geometry unknown: nothing is safe to touch */
  uint64_t expect = 0;
  if (atomic_compare_exchange_strong((_Atomic uint64_t *)&kv->hdr->magic,
                                     &expect, KVSHM_MAGIC) ||
      expect != KVSHM_MAGIC) {
    atomic_store((_Atomic uint64_t *)&kv->hdr->magic, KVSHM_MAGIC);
    problem(&done, "header: magic word put back (the rest checks)");
  }
  int first_err = 0;
  bool remade = false;
  if (kvshm__hdr_lock_sane(kv, &kv->hdr->reaper_lock, "reaper", &remade) ==
          KVSHM_OK &&
      remade)
    problem(&done, "header: the reaper lock was damaged: made again");
  if (kvshm__hdr_lock_sane(kv, &kv->hdr->near.lock, "near-cache listener",
                           &remade) == KVSHM_OK &&
      remade)
    problem(&done, "header: the near-cache listener lock was damaged: made "
                   "again");
  for (uint32_t s = 0; s < kv->nstripes; s++) {
    char did[200];
    int rc = kvshm__lock_for_repair(kv, s, flags & KVSHM_REPAIR_FORCE, did,
                                    sizeof did);
    if (rc) {
      char msg[600];
      snprintf(msg, sizeof msg, "stripe %u: not repaired: %s", s,
               kvshm_errdetail());
      if (report)
        report(ctx, msg);
      if (!first_err)
        first_err = rc;
      continue;
    }
    if (did[0])
      problem(&done, "stripe %u: %s", s, did);
    struct vctx found = {NULL, NULL, 0};
    verify_stripe_locked(kv, s, &found);
    if (found.problems) {
      uint64_t before = kvshm__stripe(kv, s)->corrupt;
      kvshm__repair_locked(kv, s);
      problem(&done,
              "stripe %u: %d problem(s) found; rebuilt from its slots "
              "(%llu broken entries dropped)",
              s, found.problems,
              (unsigned long long)(kvshm__stripe(kv, s)->corrupt - before));
    }
    kvshm__unlock(kv, s);
  }
  if (first_err)
    return kvshm__fail(first_err, "%s",
                       "some stripes could not be repaired: see the report");
  return done.problems;
}
