/*
 * cli_stats.c - the commands that watch a cache: `ls` (every segment on the
 * host), `stats` (one cache, aligned text or --json) and `top` (stats again
 * every second with rates per second).  All of them attach read-only; a
 * snapshot copies each stripe's counters under its lock, one stripe at a
 * time, so watching never stalls the writers for long.
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Everything `stats` and `top` show, taken at one moment. */
struct snap {
  kvshm_stats st;
  kvshm_store_stats ss;
  kvshm_near_stats near; /* a near cache's figures (listener_starts 0: none) */
  int ss_rc;             /* kvshm_store_stats_get's status */
  char ss_err[256];      /* its message when it failed */
  bool memory_only;
  char sqlite[4096];
  double fill;                         /* slots used, percent of all slots */
  double fill_min, fill_med, fill_max; /* per stripe, percent */
  int attached;     /* processes with the segment mapped, -1 unknown */
  uint64_t wall_ms; /* when it was taken */
  double mono_s;    /* CLOCK_MONOTONIC seconds, for rates */
};

static double mono_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int snap_take(kvshm *kv, struct snap *s) {
  memset(s, 0, sizeof *s);
  int rc = kvshm_stats_get(kv, &s->st);
  if (rc)
    return cli_fail(rc, "cannot read the statistics of '%s'", kvshm_name(kv));
  if ((rc = kvshm_near_stats_get(kv, &s->near)))
    return cli_fail(rc, "cannot read the near-cache figures of '%s'",
                    kvshm_name(kv));
  snprintf(s->sqlite, sizeof s->sqlite, "%s", kvshm_sqlite_path(kv));
  s->memory_only = s->sqlite[0] == 0;
  s->ss_rc = kvshm_store_stats_get(kv, &s->ss);
  if (s->ss_rc) {
    const char *d = kvshm_errdetail();
    snprintf(s->ss_err, sizeof s->ss_err, "%s",
             d && *d ? d : kvshm_strerror(s->ss_rc));
  }
  uint64_t total = (uint64_t)s->st.slots_per_stripe * s->st.stripes;
  s->fill = total ? 100.0 * (double)s->st.slots_used / (double)total : 0;
  double *f = calloc(s->st.stripes ? s->st.stripes : 1, sizeof *f);
  if (!f)
    return cli_fail(-ENOMEM, "stripe figures");
  for (uint32_t i = 0; i < s->st.stripes; i++) {
    kvshm_stripe_stats ps;
    rc = kvshm_stripe_stats_get(kv, i, &ps);
    if (rc) {
      free(f);
      return cli_fail(rc, "cannot read stripe %u of '%s'", i, kvshm_name(kv));
    }
    f[i] = s->st.slots_per_stripe
               ? 100.0 * ps.slots_used / s->st.slots_per_stripe
               : 0;
  }
  qsort(f, s->st.stripes, sizeof *f, cmp_double);
  if (s->st.stripes) {
    uint32_t n = s->st.stripes;
    s->fill_min = f[0];
    s->fill_max = f[n - 1];
    s->fill_med = n % 2 ? f[n / 2] : (f[n / 2 - 1] + f[n / 2]) / 2;
  }
  free(f);
  s->attached = cli_attached(kvshm_name(kv));
  s->wall_ms = cli_now_ms();
  s->mono_s = mono_now();
  return 0;
}

/* ---- text ----------------------------------------------------------- */

#define ROW(label, ...)                                                        \
  do {                                                                         \
    fprintf(f, "%-18s ", label);                                               \
    fprintf(f, __VA_ARGS__);                                                   \
    fputc('\n', f);                                                            \
  } while (0)

/* A counter, with its rate per second when there is a previous snapshot. */
static void counter_row(FILE *f, const char *label, uint64_t now,
                        const uint64_t *prev, double secs) {
  if (prev && secs > 0)
    fprintf(f, "%-18s %-14" PRIu64 " %10.1f/s", label, now,
            (double)(now - *prev) / secs);
  else
    fprintf(f, "%-18s %" PRIu64, label, now);
  fputc('\n', f);
}

#define PREV(field) (prev ? &prev->st.field : NULL)

static void reaper_text(const struct snap *s, char *buf, size_t n) {
  char a[32], b[32];
  if (!s->st.reaper_pid) {
    snprintf(buf, n, "none%s", s->memory_only ? " (memory only)" : "");
    return;
  }
  bool alive = s->st.reaper_alive; /* the reaper lock, not the pid */
  if (!s->st.reaper_heartbeat_ms)
    snprintf(a, sizeof a, "never");
  else if (s->wall_ms >= s->st.reaper_heartbeat_ms)
    snprintf(a, sizeof a, "%s ago",
             cli_fmt_ms(s->wall_ms - s->st.reaper_heartbeat_ms, b, sizeof b));
  else
    snprintf(a, sizeof a, "in the future");
  snprintf(buf, n, "pid %" PRIu32 " %s, heartbeat %s, %" PRIu64 " starts",
           s->st.reaper_pid, alive ? "alive" : "DEAD", a, s->st.reaper_starts);
}

#define NPREV(field) (prev ? &prev->near.field : NULL)

/* A near cache in front of Redis (kvshm/redis): its section, if it is one. */
static void near_text(FILE *f, const struct snap *s, const struct snap *prev,
                      double secs) {
  const kvshm_near_stats *n = &s->near;
  if (!n->listener_starts)
    return;
  fputc('\n', f);
  counter_row(f, "near hits", n->near_hits, NPREV(near_hits), secs);
  counter_row(f, "redis reads", n->redis_reads, NPREV(redis_reads), secs);
  counter_row(f, "invalidations", n->invalidations, NPREV(invalidations), secs);
  counter_row(f, "fills refused", n->refused, NPREV(refused), secs);
  ROW("flushes", "%" PRIu64, n->flushes);
  if (!n->listener_alive)
    ROW("listener",
        "none (gets read Redis until one is elected), %" PRIu64
        " started so far",
        n->listener_starts);
  else if (n->lag_ms < 0)
    ROW("listener",
        "pid %" PRIu32 ", subscribing (gets read Redis), %" PRIu64
        " started so far",
        n->listener_pid, n->listener_starts);
  else
    ROW("listener",
        "pid %" PRIu32 ", in sync %" PRId64 " ms ago, %" PRIu64
        " started so far",
        n->listener_pid, n->lag_ms, n->listener_starts);
  if (n->delays)
    ROW("write to inval.",
        "p50 %.3f ms, p99 %.3f ms, max %.3f ms (%" PRIu64
        " probes from other hosts)",
        (double)n->delay_p50_us / 1000.0, (double)n->delay_p99_us / 1000.0,
        (double)n->delay_max_us / 1000.0, n->delays);
  else
    ROW("write to inval.", "- (no probe from another host yet)");
}

static void stats_text(FILE *f, const char *name, const struct snap *s,
                       const struct snap *prev) {
  const kvshm_stats *st = &s->st;
  char a[64], b[64], c[160];
  double secs = prev ? s->mono_s - prev->mono_s : 0;

  ROW("cache", "%s", name);
  ROW("segment", "/dev/shm/kvshm.%s, %s (%" PRIu64 " bytes)", name,
      cli_fmt_bytes(st->memory_size, a, sizeof a), st->memory_size);
  ROW("created", "%s (%s ago)", cli_fmt_time(st->created_ms, a, sizeof a),
      cli_fmt_ms(s->wall_ms > st->created_ms ? s->wall_ms - st->created_ms : 0,
                 b, sizeof b));
  ROW("layout version", "%" PRIu32, st->layout_version);
  ROW("slots", "%" PRIu32 " stripes x %" PRIu32 " slots of %" PRIu32 " bytes",
      st->stripes, st->slots_per_stripe, st->slot_size);
  ROW("largest entry", "key %" PRIu32 " bytes, value %" PRIu64 " bytes",
      st->max_key, st->max_value);
  ROW("default ttl", "%s",
      st->default_ttl_ms ? cli_fmt_ms(st->default_ttl_ms, a, sizeof a)
                         : "never");
  if (s->memory_only) {
    ROW("sqlite", "memory only");
  } else {
    ROW("sqlite", "%s", s->sqlite);
    if (st->persistent)
      ROW("persistent", "yes, within %" PRIu32 " ms", st->flush_delay_ms);
    else
      ROW("persistent", "no");
  }
  if (s->attached >= 0)
    ROW("attached", "%d process%s", s->attached, s->attached == 1 ? "" : "es");
  fputc('\n', f);

  ROW("entries", "%" PRIu64 " in memory", st->entries);
  ROW("bytes", "%" PRIu64 " of keys and values in memory (%s)", st->bytes,
      cli_fmt_bytes(st->bytes, a, sizeof a));
  ROW("slots used", "%" PRIu64 " of %" PRIu64 " (%.1f%%), %" PRIu64 " free",
      st->slots_used, st->slots_used + st->slots_free, s->fill, st->slots_free);
  ROW("stripe fill", "min %.1f%%, median %.1f%%, max %.1f%%", s->fill_min,
      s->fill_med, s->fill_max);
  if (s->memory_only) {
    ROW("sqlite rows", "-");
    ROW("sqlite bytes", "-");
  } else if (s->ss_rc) {
    ROW("sqlite rows", "unavailable: %s", s->ss_err);
  } else {
    ROW("sqlite rows", "%" PRIu64 " (%" PRIu64 " expired, not yet removed)",
        s->ss.rows, s->ss.expired);
    ROW("sqlite bytes", "%s of keys and values, file %s",
        cli_fmt_bytes(s->ss.bytes, a, sizeof a),
        cli_fmt_bytes(s->ss.file_bytes, b, sizeof b));
  }
  fputc('\n', f);

  uint64_t lookups = st->hits + st->misses;
  if (lookups)
    ROW("hit ratio", "%.1f%% (%" PRIu64 " of %" PRIu64 " lookups)",
        100.0 * (double)st->hits / (double)lookups, st->hits, lookups);
  else
    ROW("hit ratio", "- (no lookups yet)");
  counter_row(f, "hits", st->hits, PREV(hits), secs);
  counter_row(f, "misses", st->misses, PREV(misses), secs);
  if (s->memory_only)
    ROW("sqlite hits", "-");
  else
    counter_row(f, "sqlite hits", st->store_hits, PREV(store_hits), secs);
  counter_row(f, "sets", st->sets, PREV(sets), secs);
  counter_row(f, "deletes", st->deletes, PREV(deletes), secs);
  counter_row(f, "evictions", st->evictions, PREV(evictions), secs);
  counter_row(f, "expirations", st->expirations, PREV(expirations), secs);
  counter_row(f, "corrupt dropped", st->corrupt, PREV(corrupt), secs);
  counter_row(f, "lock repairs", st->repairs, PREV(repairs), secs);
  if (s->memory_only) {
    ROW("writer write-backs", "-");
    ROW("dirty", "-");
    ROW("tombstones", "-");
  } else {
    counter_row(f, "writer write-backs", st->spills, PREV(spills), secs);
    if (st->dirty)
      ROW("dirty", "%" PRIu64 " waiting for write-behind, oldest %s", st->dirty,
          cli_fmt_ms(st->dirty_age_ms, a, sizeof a));
    else
      ROW("dirty", "0");
    ROW("tombstones", "%" PRIu64, st->tombstones);
  }
  reaper_text(s, c, sizeof c);
  ROW("reaper", "%s", c);
  near_text(f, s, prev, secs);
}

/* ---- JSON ----------------------------------------------------------- */

static void stats_json(struct cli_json *j, const char *name,
                       const struct snap *s, const struct snap *prev) {
  const kvshm_stats *st = &s->st;
  cli_json_obj(j, NULL);
  cli_json_str(j, "name", name);
  char seg[KVSHM_NAME_MAX + 32];
  cli_segment_path(name, seg, sizeof seg);
  cli_json_str(j, "segment", seg);
  cli_json_u64(j, "time_ms", s->wall_ms);

  cli_json_obj(j, "config");
  cli_json_u64(j, "memory_size", st->memory_size);
  cli_json_u64(j, "slot_size", st->slot_size);
  cli_json_u64(j, "stripes", st->stripes);
  cli_json_u64(j, "slots_per_stripe", st->slots_per_stripe);
  cli_json_u64(j, "layout_version", st->layout_version);
  cli_json_u64(j, "default_ttl_ms", st->default_ttl_ms);
  cli_json_u64(j, "created_ms", st->created_ms);
  cli_json_u64(j, "max_key", st->max_key);
  cli_json_u64(j, "max_value", st->max_value);
  if (s->memory_only)
    cli_json_null(j, "sqlite_path");
  else
    cli_json_str(j, "sqlite_path", s->sqlite);
  cli_json_bool(j, "persistent", st->persistent != 0);
  cli_json_u64(j, "flush_delay_ms", st->flush_delay_ms);
  cli_json_end(j, '}');

  if (s->attached >= 0)
    cli_json_i64(j, "attached", s->attached);
  else
    cli_json_null(j, "attached");

  cli_json_obj(j, "memory");
  cli_json_u64(j, "entries", st->entries);
  cli_json_u64(j, "bytes", st->bytes);
  cli_json_u64(j, "slots_used", st->slots_used);
  cli_json_u64(j, "slots_free", st->slots_free);
  cli_json_dbl(j, "fill_pct", s->fill, 2);
  cli_json_obj(j, "stripe_fill_pct");
  cli_json_dbl(j, "min", s->fill_min, 2);
  cli_json_dbl(j, "median", s->fill_med, 2);
  cli_json_dbl(j, "max", s->fill_max, 2);
  cli_json_end(j, '}');
  cli_json_end(j, '}');

  if (s->memory_only) {
    cli_json_null(j, "sqlite");
  } else {
    cli_json_obj(j, "sqlite");
    if (s->ss_rc) {
      cli_json_str(j, "error", s->ss_err);
    } else {
      cli_json_u64(j, "rows", s->ss.rows);
      cli_json_u64(j, "bytes", s->ss.bytes);
      cli_json_u64(j, "file_bytes", s->ss.file_bytes);
      cli_json_u64(j, "expired", s->ss.expired);
    }
    cli_json_end(j, '}');
  }

  cli_json_obj(j, "counters");
  uint64_t lookups = st->hits + st->misses;
  cli_json_u64(j, "hits", st->hits);
  cli_json_u64(j, "misses", st->misses);
  if (s->memory_only)
    cli_json_null(j, "store_hits");
  else
    cli_json_u64(j, "store_hits", st->store_hits);
  if (lookups)
    cli_json_dbl(j, "hit_ratio", (double)st->hits / (double)lookups, 4);
  else
    cli_json_null(j, "hit_ratio");
  cli_json_u64(j, "sets", st->sets);
  cli_json_u64(j, "deletes", st->deletes);
  cli_json_u64(j, "evictions", st->evictions);
  cli_json_u64(j, "expirations", st->expirations);
  cli_json_u64(j, "corrupt", st->corrupt);
  cli_json_u64(j, "repairs", st->repairs);
  if (s->memory_only)
    cli_json_null(j, "spills");
  else
    cli_json_u64(j, "spills", st->spills);
  cli_json_end(j, '}');

  if (s->memory_only) {
    cli_json_null(j, "write_behind");
  } else {
    cli_json_obj(j, "write_behind");
    cli_json_u64(j, "dirty", st->dirty);
    cli_json_u64(j, "dirty_age_ms", st->dirty_age_ms);
    cli_json_u64(j, "tombstones", st->tombstones);
    cli_json_end(j, '}');
  }

  const kvshm_near_stats *n = &s->near;
  if (!n->listener_starts) {
    cli_json_null(j, "near");
  } else {
    cli_json_obj(j, "near");
    cli_json_u64(j, "near_hits", n->near_hits);
    cli_json_u64(j, "redis_reads", n->redis_reads);
    cli_json_u64(j, "invalidations", n->invalidations);
    cli_json_u64(j, "fills_refused", n->refused);
    cli_json_u64(j, "flushes", n->flushes);
    cli_json_u64(j, "listener_starts", n->listener_starts);
    cli_json_bool(j, "listener_alive", n->listener_alive != 0);
    if (n->listener_alive)
      cli_json_u64(j, "listener_pid", n->listener_pid);
    else
      cli_json_null(j, "listener_pid");
    if (n->lag_ms >= 0)
      cli_json_i64(j, "lag_ms", n->lag_ms);
    else
      cli_json_null(j, "lag_ms");
    cli_json_u64(j, "delay_samples", n->delays);
    if (n->delays) {
      cli_json_dbl(j, "delay_p50_ms", (double)n->delay_p50_us / 1000.0, 3);
      cli_json_dbl(j, "delay_p99_ms", (double)n->delay_p99_us / 1000.0, 3);
      cli_json_dbl(j, "delay_max_ms", (double)n->delay_max_us / 1000.0, 3);
    } else {
      cli_json_null(j, "delay_p50_ms");
      cli_json_null(j, "delay_p99_ms");
      cli_json_null(j, "delay_max_ms");
    }
    cli_json_end(j, '}');
  }

  if (!st->reaper_pid) {
    cli_json_null(j, "reaper");
  } else {
    cli_json_obj(j, "reaper");
    cli_json_u64(j, "pid", st->reaper_pid);
    cli_json_bool(j, "alive", st->reaper_alive);
    cli_json_u64(j, "heartbeat_ms", st->reaper_heartbeat_ms);
    if (st->reaper_heartbeat_ms && s->wall_ms >= st->reaper_heartbeat_ms)
      cli_json_u64(j, "heartbeat_age_ms", s->wall_ms - st->reaper_heartbeat_ms);
    else
      cli_json_null(j, "heartbeat_age_ms");
    cli_json_u64(j, "starts", st->reaper_starts);
    cli_json_end(j, '}');
  }

  if (prev) {
    double secs = s->mono_s - prev->mono_s;
    cli_json_obj(j, "rates");
    cli_json_dbl(j, "interval_s", secs, 3);
#define RATE(field)                                                            \
  cli_json_dbl(j, #field,                                                      \
               secs > 0 ? (double)(st->field - prev->st.field) / secs : 0, 1)
    RATE(hits);
    RATE(misses);
    RATE(store_hits);
    RATE(sets);
    RATE(deletes);
    RATE(evictions);
    RATE(expirations);
    RATE(spills);
#undef RATE
    cli_json_end(j, '}');
  }
  cli_json_end(j, '}');
}

/* ---- stats ---------------------------------------------------------- */

static int cmd_stats(int argc, char **argv) {
  bool json;
  const char *name;
  int rc;
  if (!cli_flag_and_name(argc, argv, "json", 'j', &json, &name, &rc))
    return rc;
  kvshm *kv;
  rc = cli_open_ro(name, &kv);
  if (rc)
    return rc;
  struct snap s;
  rc = snap_take(kv, &s);
  kvshm_close(kv);
  if (rc)
    return rc;
  if (json) {
    struct cli_json j;
    cli_json_init(&j, stdout, true);
    stats_json(&j, name, &s, NULL);
  } else {
    stats_text(stdout, name, &s, NULL);
  }
  return CLI_EXIT_OK;
}

const struct cli_cmd cli_cmd_stats = {
    "stats", cmd_stats, "[-j] NAME", "show a cache's configuration and figures",
    "Options:\n"
    "  -j, --json   one JSON object instead of aligned text (groups: config,\n"
    "               memory, sqlite, counters, write_behind, reaper; sqlite,\n"
    "               write_behind and reaper are null for a memory-only cache\n"
    "               or when no reaper is registered)\n"
    "  -h, --help   this help\n"};

/* ---- top ------------------------------------------------------------ */

static volatile sig_atomic_t top_stop;

static void on_sigint(int sig) {
  (void)sig;
  top_stop = 1;
}

static void top_line(FILE *f, const struct snap *s, const struct snap *prev,
                     bool header) {
  if (header)
    fprintf(f, "%-8s %10s %6s %6s %9s %9s %9s %9s %9s %9s %8s\n", "time",
            "entries", "fill%", "hit%", "gets/s", "sets/s", "dels/s", "evict/s",
            "expire/s", "dirty", "dirtyage");
  char t[32];
  time_t now = (time_t)(s->wall_ms / 1000);
  struct tm tm;
  localtime_r(&now, &tm);
  strftime(t, sizeof t, "%H:%M:%S", &tm);
  const kvshm_stats *st = &s->st;
  uint64_t lookups = st->hits + st->misses;
  char hit[16];
  if (lookups)
    snprintf(hit, sizeof hit, "%.1f",
             100.0 * (double)st->hits / (double)lookups);
  else
    snprintf(hit, sizeof hit, "-");
  fprintf(f, "%-8s %10" PRIu64 " %6.1f %6s", t, st->entries, s->fill, hit);
  double secs = prev ? s->mono_s - prev->mono_s : 0;
  uint64_t now_v[5] = {lookups, st->sets, st->deletes, st->evictions,
                       st->expirations};
  for (int i = 0; i < 5; i++) {
    if (!prev || secs <= 0) {
      fprintf(f, " %9s", "-");
      continue;
    }
    uint64_t pv[5] = {prev->st.hits + prev->st.misses, prev->st.sets,
                      prev->st.deletes, prev->st.evictions,
                      prev->st.expirations};
    fprintf(f, " %9.1f", (double)(now_v[i] - pv[i]) / secs);
  }
  if (s->memory_only) {
    fprintf(f, " %9s %8s\n", "-", "-");
  } else {
    char a[32];
    fprintf(f, " %9" PRIu64 " %8s\n", st->dirty,
            st->dirty ? cli_fmt_ms(st->dirty_age_ms, a, sizeof a) : "0");
  }
}

static int cmd_top(int argc, char **argv) {
  static const struct option opts[] = {{"count", required_argument, NULL, 'n'},
                                       {"delay", required_argument, NULL, 'd'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  uint64_t count = 0, delay_ms = 1000;
  bool json = false;
  int c;
  while ((c = cli_getopt(argc, argv, "n:d:jh", opts)) != -1) {
    switch (c) {
    case 'n':
      if (cli_parse_u64(optarg, UINT32_MAX, &count) || count == 0)
        return cli_usage("--count: '%s' is not a positive number", optarg);
      break;
    case 'd': {
      char *end;
      double d = strtod(optarg, &end);
      if (end == optarg || *end || !(d >= 0.05 && d <= 3600))
        return cli_usage("--delay: '%s' is not a number of seconds from "
                         "0.05 to 3600",
                         optarg);
      delay_ms = (uint64_t)(d * 1000);
      break;
    }
    case 'j':
      json = true;
      break;
    default:
      return cli_opt_default(c);
    }
  }
  const char *name;
  if (cli_one_name(argc, argv, &name))
    return CLI_EXIT_USAGE;
  kvshm *kv;
  int rc = cli_open_ro(name, &kv);
  if (rc)
    return rc;
  bool tty = !json && isatty(STDOUT_FILENO);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  struct snap snaps[2];
  struct snap *cur = &snaps[0], *prev = NULL;
  struct cli_json j;
  for (uint64_t i = 0; !top_stop && (!count || i < count); i++) {
    if (i > 0) {
      struct timespec ts = {(time_t)(delay_ms / 1000),
                            (long)(delay_ms % 1000) * 1000000L};
      while (!top_stop && nanosleep(&ts, &ts) && errno == EINTR)
        ;
      if (top_stop)
        break;
    }
    rc = snap_take(kv, cur);
    if (rc)
      break;
    if (json) {
      cli_json_init(&j, stdout, false);
      stats_json(&j, name, cur, prev);
    } else if (tty) {
      fputs("\033[H\033[2J", stdout);
      stats_text(stdout, name, cur, prev);
      printf("\nevery %.1f s; Ctrl-C to quit\n", (double)delay_ms / 1000);
    } else {
      top_line(stdout, cur, prev, i % 25 == 0);
    }
    fflush(stdout);
    prev = cur;
    cur = cur == &snaps[0] ? &snaps[1] : &snaps[0];
  }
  kvshm_close(kv);
  return rc;
}

const struct cli_cmd cli_cmd_top = {
    "top", cmd_top, "[-n COUNT] [-d SECONDS] [-j] NAME",
    "stats every second with rates per second, until Ctrl-C",
    "On a terminal the screen is redrawn with the stats view and rates per\n"
    "second next to each counter.  When stdout is not a terminal, one line "
    "per\nrefresh is printed (a header every 25 lines): time, entries, fill%,"
    "\nhit%, gets/s, sets/s, dels/s, evict/s, expire/s, dirty, dirtyage.\n"
    "\nOptions:\n"
    "  -n, --count N      stop after N refreshes (default: until Ctrl-C)\n"
    "  -d, --delay SECS   seconds between refreshes (default 1, may be a\n"
    "                     fraction)\n"
    "  -j, --json         one compact JSON object per refresh (as stats "
    "--json,\n                     plus \"rates\" from the second one on)\n"
    "  -h, --help         this help\n"};

/* ---- ls ------------------------------------------------------------- */

struct seg {
  char name[256];
  uint64_t size;
  ino_t ino;
  int attached;
  int rc; /* attach or stats status */
  char err[256];
  kvshm_stats st;
  char sqlite[4096];
};

static int seg_cmp(const void *a, const void *b) {
  return strcmp(((const struct seg *)a)->name, ((const struct seg *)b)->name);
}

static void seg_load(struct seg *g) {
  kvshm *kv = NULL;
  g->rc = kvshm_open(g->name, &cli_trust, KVSHM_RDONLY | KVSHM_NOREAPER, &kv);
  if (!g->rc) {
    g->rc = kvshm_stats_get(kv, &g->st);
    snprintf(g->sqlite, sizeof g->sqlite, "%s", kvshm_sqlite_path(kv));
  }
  if (g->rc) {
    const char *d = kvshm_errdetail();
    snprintf(g->err, sizeof g->err, "%s", d && *d ? d : kvshm_strerror(g->rc));
  }
  kvshm_close(kv);
}

static void reaper_short(const struct seg *g, uint64_t now, char *buf,
                         size_t n) {
  char a[32];
  if (!g->st.reaper_pid) {
    snprintf(buf, n, "-");
    return;
  }
  if (!g->st.reaper_alive) {
    snprintf(buf, n, "%" PRIu32 " dead", g->st.reaper_pid);
    return;
  }
  if (!g->st.reaper_heartbeat_ms || now < g->st.reaper_heartbeat_ms)
    snprintf(buf, n, "%" PRIu32 " (no beat)", g->st.reaper_pid);
  else
    snprintf(buf, n, "%" PRIu32 " (%s)", g->st.reaper_pid,
             cli_fmt_ms(now - g->st.reaper_heartbeat_ms, a, sizeof a));
}

static int cmd_ls(int argc, char **argv) {
  static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  bool json = false;
  int c;
  while ((c = cli_getopt(argc, argv, "jh", opts)) != -1) {
    switch (c) {
    case 'j':
      json = true;
      break;
    default:
      return cli_opt_default(c);
    }
  }
  if (optind != argc)
    return cli_usage("ls takes no operands");
  DIR *d = opendir("/dev/shm");
  if (!d) {
    cli_msg("cannot list /dev/shm: %s", strerror(errno));
    return CLI_EXIT_ERROR;
  }
  struct seg *segs = NULL;
  size_t n = 0, cap = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strncmp(de->d_name, "kvshm.", 6) != 0 || !de->d_name[6])
      continue;
    if (n == cap) {
      struct seg *ns = realloc(segs, (cap = cap ? cap * 2 : 16) * sizeof *ns);
      if (!ns) {
        free(segs);
        closedir(d);
        return cli_fail(-ENOMEM, "listing segments");
      }
      segs = ns;
    }
    struct seg *g = &segs[n];
    memset(g, 0, sizeof *g);
    snprintf(g->name, sizeof g->name, "%s", de->d_name + 6);
    char path[512];
    snprintf(path, sizeof path, "/dev/shm/%s", de->d_name);
    struct stat sb;
    if (stat(path, &sb) || !S_ISREG(sb.st_mode))
      continue; /* vanished, or not a segment file */
    g->size = (uint64_t)sb.st_size;
    g->ino = sb.st_ino;
    n++;
  }
  closedir(d);
  if (n)
    qsort(segs, n, sizeof *segs, seg_cmp);
  /* Count the mappings before attaching ourselves. */
  ino_t *inos = calloc(n ? n : 1, sizeof *inos);
  int *counts = calloc(n ? n : 1, sizeof *counts);
  if (!inos || !counts) {
    free(segs);
    free(inos);
    free(counts);
    return cli_fail(-ENOMEM, "listing segments");
  }
  for (size_t i = 0; i < n; i++)
    inos[i] = segs[i].ino;
  cli_count_attached(inos, (int)n, counts);
  for (size_t i = 0; i < n; i++) {
    segs[i].attached = counts[i];
    seg_load(&segs[i]);
  }
  free(inos);
  free(counts);
  uint64_t now = cli_now_ms();
  char a[64], b[64];
  if (json) {
    struct cli_json j;
    cli_json_init(&j, stdout, true);
    cli_json_arr(&j, NULL);
    for (size_t i = 0; i < n; i++) {
      const struct seg *g = &segs[i];
      cli_json_obj(&j, NULL);
      cli_json_str(&j, "name", g->name);
      cli_json_u64(&j, "size", g->size);
      cli_json_i64(&j, "attached", g->attached);
      if (g->rc) {
        cli_json_str(&j, "error", g->err);
        cli_json_str(&j, "code", kvshm_err_name(g->rc));
      } else {
        uint64_t total = (uint64_t)g->st.slots_per_stripe * g->st.stripes;
        cli_json_u64(&j, "entries", g->st.entries);
        cli_json_dbl(
            &j, "fill_pct",
            total ? 100.0 * (double)g->st.slots_used / (double)total : 0, 2);
        if (g->st.reaper_pid) {
          cli_json_obj(&j, "reaper");
          cli_json_u64(&j, "pid", g->st.reaper_pid);
          cli_json_bool(&j, "alive", g->st.reaper_alive);
          if (g->st.reaper_heartbeat_ms && now >= g->st.reaper_heartbeat_ms)
            cli_json_u64(&j, "heartbeat_age_ms",
                         now - g->st.reaper_heartbeat_ms);
          else
            cli_json_null(&j, "heartbeat_age_ms");
          cli_json_end(&j, '}');
        } else {
          cli_json_null(&j, "reaper");
        }
        if (g->sqlite[0])
          cli_json_str(&j, "sqlite_path", g->sqlite);
        else
          cli_json_null(&j, "sqlite_path");
      }
      cli_json_end(&j, '}');
    }
    cli_json_end(&j, ']');
  } else {
    printf("%-24s %10s %10s %6s %8s %-20s %s\n", "NAME", "SIZE", "ENTRIES",
           "FILL", "ATTACHED", "REAPER", "SQLITE");
    for (size_t i = 0; i < n; i++) {
      const struct seg *g = &segs[i];
      cli_fmt_bytes(g->size, a, sizeof a);
      if (g->rc) {
        printf("%-24s %10s %10s %6s %8d %-20s error: %s\n", g->name, a, "?",
               "?", g->attached, "?", g->err);
        continue;
      }
      uint64_t total = (uint64_t)g->st.slots_per_stripe * g->st.stripes;
      char fill[16];
      snprintf(fill, sizeof fill, "%.1f%%",
               total ? 100.0 * (double)g->st.slots_used / (double)total : 0);
      reaper_short(g, now, b, sizeof b);
      printf("%-24s %10s %10" PRIu64 " %6s %8d %-20s %s\n", g->name, a,
             g->st.entries, fill, g->attached, b,
             g->sqlite[0] ? g->sqlite : "memory only");
    }
  }
  free(segs);
  return CLI_EXIT_OK;
}

const struct cli_cmd cli_cmd_ls = {
    "ls", cmd_ls, "[-j]", "list every kvshm cache on this host",
    "Columns: name, segment size, live entries in memory, fill (slots used),\n"
    "processes that have the segment mapped (those /proc lets you see), the\n"
    "reaper (pid and heartbeat age, 'dead' if its process is gone, '-' if "
    "none)\nand the SQLite file.  A segment that cannot be attached is listed "
    "with\nthe reason.\n"
    "\nOptions:\n"
    "  -j, --json   a JSON array, one object per segment\n"
    "  -h, --help   this help\n"};
