/*
 * cli_util.c - the plumbing every kvshm-cli command shares: messages and exit
 * codes, attaching to a cache (read-only for the commands that only look,
 * never creating one by accident for those that write), parsing sizes and
 * durations, the backslash and percent encodings that keep binary keys and
 * values on one line, a JSON writer, and counting the processes that have a
 * segment mapped.
 */
#include "cli.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const struct cli_cmd *cli_cur;

/* ---- messages and exit codes ---------------------------------------- */

static void vmsg(const char *fmt, va_list ap) {
  fprintf(stderr, "kvshm-cli%s%s: ", cli_cur ? " " : "",
          cli_cur ? cli_cur->name : "");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
}

void cli_msg(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vmsg(fmt, ap);
  va_end(ap);
}

int cli_usage(const char *fmt, ...) {
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
  }
  fprintf(stderr,
          "usage: kvshm-cli %s %s\nTry 'kvshm-cli %s -h' for more "
          "information.\n",
          cli_cur->name, cli_cur->args, cli_cur->name);
  return CLI_EXIT_USAGE;
}

int cli_one_name(int argc, char **argv, const char **name) {
  if (argc - optind != 1)
    return cli_usage(argc - optind ? "too many operands" : "missing NAME");
  if (name)
    *name = argv[optind];
  return 0;
}

bool cli_flag_and_name(int argc, char **argv, const char *longname, int shortc,
                       bool *flag, const char **name, int *exit_code) {
  const struct option opts[] = {{longname, no_argument, NULL, shortc},
                                {"help", no_argument, NULL, 'h'},
                                {NULL, 0, NULL, 0}};
  char shortopts[] = {(char)shortc, 'h', '\0'};
  int c;
  *flag = false;
  while ((c = cli_getopt(argc, argv, shortopts, opts)) != -1) {
    if (c != shortc) {
      *exit_code = cli_opt_default(c);
      return false;
    }
    *flag = true;
  }
  *exit_code = CLI_EXIT_USAGE;
  return cli_one_name(argc, argv, name) == 0;
}

int cli_help(void) {
  printf("usage: kvshm-cli %s %s\n%s.\n\n%s", cli_cur->name, cli_cur->args,
         cli_cur->summary, cli_cur->help);
  printf("\nExit status: 0 ok, 1 no such key or cache (or verify found "
         "problems),\n2 bad command line, 3 any other error.\n");
  return CLI_EXIT_OK;
}

int cli_opt_default(int c) {
  if (c == 'h')
    return cli_help();
  return cli_usage(NULL); /* getopt already said what was wrong */
}

int cli_getopt(int argc, char **argv, const char *shortopts,
               const struct option *longopts) {
  return getopt_long(argc, argv, shortopts, longopts, NULL);
}

int cli_exit_code(int rc) {
  switch (rc) {
  case KVSHM_OK:
    return CLI_EXIT_OK;
  case KVSHM_ENOTFOUND:
  case -ENOENT:
    return CLI_EXIT_NOTFOUND;
  case KVSHM_EBADNAME:
    return CLI_EXIT_USAGE;
  default:
    return CLI_EXIT_ERROR;
  }
}

int cli_fail(int rc, const char *what, ...) {
  const char *detail = kvshm_errdetail();
  char head[512];
  va_list ap;
  va_start(ap, what);
  vsnprintf(head, sizeof head, what, ap);
  va_end(ap);
  if (detail && *detail)
    cli_msg("%s: %s", head, detail);
  else
    cli_msg("%s: %s", head, kvshm_strerror(rc));
  return cli_exit_code(rc);
}

/* ---- attaching ------------------------------------------------------ */

void cli_segment_path(const char *name, char *buf, size_t n) {
  snprintf(buf, n, "/dev/shm/kvshm.%s", name);
}

int cli_open_failed(const char *name, int rc, bool can_create) {
  if (rc == -ENOENT) {
    const char *d = kvshm_errdetail();
    cli_msg("%s; %s", d && *d ? d : kvshm_strerror(rc),
            can_create ? "pass --create to create it" : "see 'kvshm-cli ls'");
    return CLI_EXIT_NOTFOUND;
  }
  return cli_fail(rc, "cannot attach to '%s'", name);
}

int cli_open_ro(const char *name, kvshm **out) {
  int rc = kvshm_open(name, &cli_trust, KVSHM_RDONLY | KVSHM_NOREAPER, out);
  return rc ? cli_open_failed(name, rc, false) : 0;
}

/* Does path exist (or can we not tell)? */
static bool path_exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 || errno != ENOENT;
}

/* The SQLite file and the files SQLite keeps beside it. */
static const char *const sqlite_suffixes[] = {"", "-wal", "-shm", "-journal"};
#define NSUFFIXES (sizeof sqlite_suffixes / sizeof *sqlite_suffixes)

/* Bit i: the SQLite file with suffix i exists (or cannot be told apart). */
static unsigned sqlite_files(const char *sqlite) {
  unsigned bits = 0;
  char path[PATH_MAX + 16];
  for (size_t i = 0; i < NSUFFIXES; i++)
    if ((size_t)snprintf(path, sizeof path, "%s%s", sqlite,
                         sqlite_suffixes[i]) >= sizeof path ||
        path_exists(path))
      bits |= 1u << i;
  return bits;
}

/*
 * With --create, whether this open made the segment is told apart by
 * looking before: libshm's kvshm_open does not say whether it created.  A
 * process that creates the same name between the look and the open would
 * pass for ours; cli_create_undo then still keeps it while that process has
 * it mapped.
 */
int cli_open_rw(const char *name, struct cli_create *co, kvshm **out) {
  int rc;
  if (co && co->create) {
    char seg[KVSHM_NAME_MAX + 32];
    cli_segment_path(name, seg, sizeof seg);
    const char *sqlite = co->cfg.sqlite_path;
    bool seg_was = path_exists(seg);
    unsigned sqlite_was = sqlite ? sqlite_files(sqlite) : ~0u;
    co->cfg.trust = cli_trust.trust;
    co->cfg.trust_uid = cli_trust.trust_uid;
    co->cfg.trust_gid = cli_trust.trust_gid;
    rc = kvshm_open(name, &co->cfg, KVSHM_NOREAPER, out);
    struct stat sb;
    if (!rc && !seg_was && stat(seg, &sb) == 0) {
      co->created = true;
      co->dev = sb.st_dev;
      co->ino = sb.st_ino;
      co->sqlite_made = sqlite ? sqlite_files(sqlite) & ~sqlite_was : 0;
    }
  } else {
    rc = kvshm_open(name, &cli_trust, KVSHM_NOCREATE | KVSHM_NOREAPER, out);
  }
  if (rc == KVSHM_EINVAL)
    return cli_fail(rc, "bad cache configuration"), CLI_EXIT_USAGE;
  return rc ? cli_open_failed(name, rc, co != NULL) : 0;
}

void cli_create_undo(const char *name, struct cli_create *co) {
  if (!co || !co->created)
    return;
  co->created = false;
  char seg[KVSHM_NAME_MAX + 32];
  cli_segment_path(name, seg, sizeof seg);
  struct stat sb;
  if (stat(seg, &sb) || sb.st_dev != co->dev || sb.st_ino != co->ino)
    return; /* destroyed meanwhile, or made again by someone else */
  int users = cli_attached(name);
  if (users > 0) {
    cli_msg("kept '%s', which it had created: %d other process%s %s it open",
            name, users, users == 1 ? "" : "es", users == 1 ? "has" : "have");
    return;
  }
  int rc = kvshm_unlink_config(name, &cli_trust);
  if (rc && rc != -ENOENT) {
    cli_fail(rc, "cannot remove '%s', which it had created", name);
    return;
  }
  /* Only the files that this open made (sqlite_files never reports one
   * whose name does not fit). */
  char path[PATH_MAX + 16];
  for (size_t i = 0; i < NSUFFIXES; i++)
    if (co->sqlite_made & (1u << i)) {
      snprintf(path, sizeof path, "%s%s", co->cfg.sqlite_path,
               sqlite_suffixes[i]);
      unlink(path);
    }
  cli_msg("removed '%s', which it had created%s", name,
          co->sqlite_made & 1u ? ", and its SQLite file" : "");
}

int cli_create_opt(struct cli_create *co, int c, const char *arg) {
  uint64_t v;
  switch (c) {
  case 0x100:
    co->create = true;
    return 1;
  case 0x101:
    if (cli_parse_size(arg, &v) || v == 0)
      return cli_usage("--memory: '%s' is not a size (try 64mb or 1g)", arg),
             -CLI_EXIT_USAGE;
    co->cfg.memory_size = v;
    return 1;
  case 0x102:
    if (cli_parse_u64(arg, KVSHM_MAX_SLOT, &v) || v < KVSHM_MIN_SLOT || v % 8)
      return cli_usage("--slot-size: '%s' is not a multiple of 8 from %u to "
                       "%u",
                       arg, KVSHM_MIN_SLOT, KVSHM_MAX_SLOT),
             -CLI_EXIT_USAGE;
    co->cfg.slot_size = (uint32_t)v;
    return 1;
  case 0x103:
    if (cli_parse_u64(arg, KVSHM_MAX_STRIPES, &v) || v == 0 || (v & (v - 1)))
      return cli_usage("--stripes: '%s' is not a power of two from 1 to %u",
                       arg, KVSHM_MAX_STRIPES),
             -CLI_EXIT_USAGE;
    co->cfg.stripes = (uint32_t)v;
    return 1;
  case 0x104:
    if (!*arg)
      return cli_usage("--sqlite: empty path"), -CLI_EXIT_USAGE;
    co->cfg.sqlite_path = arg;
    return 1;
  case 0x105:
    if (cli_parse_ms(arg, &v))
      return cli_usage("--default-ttl: '%s' is not a duration (try 30s, 5m "
                       "or a number of ms)",
                       arg),
             -CLI_EXIT_USAGE;
    co->cfg.default_ttl_ms = v;
    return 1;
  }
  return 0;
}

/* ---- parsing -------------------------------------------------------- */

int cli_parse_u64(const char *s, uint64_t max, uint64_t *out) {
  if (!s || !isdigit((unsigned char)*s))
    return -1;
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || v > max)
    return -1;
  *out = v;
  return 0;
}

int cli_parse_i64(const char *s, int64_t *out) {
  if (!s || !*s || isspace((unsigned char)*s))
    return -1;
  errno = 0;
  char *end;
  long long v = strtoll(s, &end, 10);
  if (errno || *end || end == s)
    return -1;
  *out = v;
  return 0;
}

/* A number followed by one of the given unit suffixes. */
struct unit {
  const char *suffix;
  uint64_t mult;
};

static int parse_with_units(const char *s, const struct unit *units,
                            uint64_t *out) {
  if (!s || !isdigit((unsigned char)*s))
    return -1;
  const char *p = s;
  while (isdigit((unsigned char)*p))
    p++;
  bool frac = *p == '.';
  if (frac) {
    if (!isdigit((unsigned char)*++p))
      return -1;
    while (isdigit((unsigned char)*p))
      p++;
  }
  uint64_t mult = 0;
  for (const struct unit *u = units; u->suffix; u++)
    if (strcasecmp(p, u->suffix) == 0) {
      mult = u->mult;
      break;
    }
  if (!mult)
    return -1;
  if (frac) { /* "1.5g": rounded down; a fraction needs a unit */
    double v = strtod(s, NULL) * (double)mult;
    if (mult == 1 || v >= 18446744073709551615.0)
      return -1;
    *out = (uint64_t)v;
    return 0;
  }
  errno = 0;
  unsigned long long v = strtoull(s, NULL, 10);
  if (errno || v > UINT64_MAX / mult)
    return -1;
  *out = v * mult;
  return 0;
}

int cli_parse_size(const char *s, uint64_t *out) {
  static const struct unit units[] = {{"", 1},
                                      {"b", 1},
                                      {"k", 1ull << 10},
                                      {"kb", 1ull << 10},
                                      {"kib", 1ull << 10},
                                      {"m", 1ull << 20},
                                      {"mb", 1ull << 20},
                                      {"mib", 1ull << 20},
                                      {"g", 1ull << 30},
                                      {"gb", 1ull << 30},
                                      {"gib", 1ull << 30},
                                      {"t", 1ull << 40},
                                      {"tb", 1ull << 40},
                                      {"tib", 1ull << 40},
                                      {NULL, 0}};
  return parse_with_units(s, units, out);
}

int cli_parse_ms(const char *s, uint64_t *out) {
  static const struct unit units[] = {
      {"", 1},        {"ms", 1},      {"s", 1000},     {"m", 60000},
      {"min", 60000}, {"h", 3600000}, {"d", 86400000}, {NULL, 0}};
  return parse_with_units(s, units, out);
}

/* ---- encodings ------------------------------------------------------ */

/* Length of the valid UTF-8 sequence (2..4 bytes) starting at p, or 0. */
static size_t utf8_len(const unsigned char *p, size_t n) {
  unsigned char c = p[0];
  size_t len;
  uint32_t cp;
  if (c >= 0xc2 && c <= 0xdf)
    len = 2, cp = c & 0x1f;
  else if (c >= 0xe0 && c <= 0xef)
    len = 3, cp = c & 0x0f;
  else if (c >= 0xf0 && c <= 0xf4)
    len = 4, cp = c & 0x07;
  else
    return 0;
  if (n < len)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xc0) != 0x80)
      return 0;
    cp = (cp << 6) | (p[i] & 0x3f);
  }
  if ((len == 3 && cp < 0x800) ||
      (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
      (cp >= 0xd800 && cp <= 0xdfff))
    return 0; /* overlong, out of range or a surrogate */
  return len;
}

void cli_escape(FILE *f, const void *data, size_t len) {
  const unsigned char *p = data;
  for (size_t i = 0; i < len;) {
    unsigned char c = p[i];
    if (c == '\\') {
      fputs("\\\\", f);
    } else if (c == '\n') {
      fputs("\\n", f);
    } else if (c == '\r') {
      fputs("\\r", f);
    } else if (c == '\t') {
      fputs("\\t", f);
    } else if (c >= 0x20 && c < 0x7f) {
      fputc(c, f);
    } else {
      size_t u = c >= 0x80 ? utf8_len(p + i, len - i) : 0;
      if (u) {
        fwrite(p + i, 1, u, f);
        i += u;
        continue;
      }
      fprintf(f, "\\x%02x", c);
    }
    i++;
  }
}

static int hexval(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

int cli_unescape(const char *s, unsigned char **out, size_t *outlen) {
  size_t n = strlen(s);
  unsigned char *b = malloc(n + 1);
  if (!b)
    return -1;
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] != '\\') {
      b[o++] = (unsigned char)s[i];
      continue;
    }
    char e = s[++i];
    switch (e) {
    case '\\':
      b[o++] = '\\';
      break;
    case 'n':
      b[o++] = '\n';
      break;
    case 'r':
      b[o++] = '\r';
      break;
    case 't':
      b[o++] = '\t';
      break;
    case '0':
      b[o++] = 0;
      break;
    case 'e':
      b[o++] = 0x1b;
      break;
    case 'x': {
      int h = i + 1 < n ? hexval(s[i + 1]) : -1;
      int l = i + 2 < n ? hexval(s[i + 2]) : -1;
      if (h < 0 || l < 0) {
        free(b);
        return -1;
      }
      b[o++] = (unsigned char)(h << 4 | l);
      i += 2;
      break;
    }
    default:
      free(b);
      return -1;
    }
  }
  *out = b;
  *outlen = o;
  return 0;
}

void cli_pct_encode(FILE *f, const void *data, size_t len) {
  const unsigned char *p = data;
  for (size_t i = 0; i < len; i++) {
    if (p[i] > 0x20 && p[i] < 0x7f && p[i] != '%' && p[i] != '#')
      fputc(p[i], f);
    else
      fprintf(f, "%%%02X", p[i]);
  }
}

int cli_pct_decode(const char *s, size_t len, unsigned char *out,
                   size_t *outlen) {
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '%') {
      int h = i + 1 < len ? hexval(s[i + 1]) : -1;
      int l = i + 2 < len ? hexval(s[i + 2]) : -1;
      if (h < 0 || l < 0)
        return -1;
      out[o++] = (unsigned char)(h << 4 | l);
      i += 2;
    } else if (c > 0x20 && c < 0x7f) {
      out[o++] = c;
    } else {
      return -1; /* raw spaces, controls and 8-bit bytes are always escaped */
    }
  }
  *outlen = o;
  return 0;
}

int cli_read_all(const char *path, unsigned char **out, size_t *outlen) {
  FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
  if (!f)
    return -errno;
  size_t cap = 4096, n = 0;
  unsigned char *b = malloc(cap);
  int rc = 0;
  while (b) {
    if (n == cap) {
      unsigned char *nb = realloc(b, cap *= 2);
      if (!nb) {
        free(b);
        b = NULL;
        break;
      }
      b = nb;
    }
    size_t got = fread(b + n, 1, cap - n, f);
    n += got;
    if (got == 0) {
      if (ferror(f))
        rc = -(errno ? errno : EIO);
      break;
    }
  }
  if (!b)
    rc = -ENOMEM;
  if (f != stdin)
    fclose(f);
  if (rc) {
    free(b);
    return rc;
  }
  *out = b;
  *outlen = n;
  return 0;
}

/* ---- formatting ----------------------------------------------------- */

const char *cli_fmt_bytes(uint64_t n, char *buf, size_t sz) {
  static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  if (n < 1024) {
    snprintf(buf, sz, "%" PRIu64 " B", n);
    return buf;
  }
  double v = (double)n;
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    u++;
  }
  snprintf(buf, sz, "%.1f %s", v, units[u]);
  return buf;
}

const char *cli_fmt_ms(uint64_t ms, char *buf, size_t sz) {
  uint64_t s = ms / 1000;
  if (ms < 1000)
    snprintf(buf, sz, "%" PRIu64 " ms", ms);
  else if (ms < 60000)
    snprintf(buf, sz, "%.1f s", (double)ms / 1000);
  else if (s < 3600)
    snprintf(buf, sz, "%" PRIu64 "m %02" PRIu64 "s", s / 60, s % 60);
  else if (s < 86400)
    snprintf(buf, sz, "%" PRIu64 "h %02" PRIu64 "m", s / 3600, s / 60 % 60);
  else
    snprintf(buf, sz, "%" PRIu64 "d %02" PRIu64 "h", s / 86400, s / 3600 % 24);
  return buf;
}

const char *cli_fmt_time(uint64_t epoch_ms, char *buf, size_t sz) {
  time_t t = (time_t)(epoch_ms / 1000);
  struct tm tm;
  if (!localtime_r(&t, &tm) || !strftime(buf, sz, "%Y-%m-%d %H:%M:%S", &tm))
    snprintf(buf, sz, "%" PRIu64 " ms", epoch_ms);
  return buf;
}

uint64_t cli_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- JSON writer ---------------------------------------------------- */

void cli_json_init(struct cli_json *j, FILE *f, bool pretty) {
  memset(j, 0, sizeof *j);
  j->f = f;
  j->pretty = pretty;
  j->first[0] = true;
}

static void json_string(FILE *f, const unsigned char *s, size_t len) {
  fputc('"', f);
  for (size_t i = 0; i < len;) {
    unsigned char c = s[i];
    size_t u;
    if (c == '"' || c == '\\') {
      fputc('\\', f);
      fputc(c, f);
    } else if (c == '\n') {
      fputs("\\n", f);
    } else if (c == '\t') {
      fputs("\\t", f);
    } else if (c < 0x20 || c == 0x7f) {
      fprintf(f, "\\u%04x", c);
    } else if (c >= 0x80 && (u = utf8_len(s + i, len - i)) != 0) {
      fwrite(s + i, 1, u, f);
      i += u;
      continue;
    } else if (c >= 0x80) {
      fputs("\\ufffd", f); /* not UTF-8: JSON cannot carry the byte */
    } else {
      fputc(c, f);
    }
    i++;
  }
  fputc('"', f);
}

/* Comma, newline and indent before a value, then its key. */
static void json_key(struct cli_json *j, const char *key) {
  if (!j->first[j->depth])
    fputc(',', j->f);
  j->first[j->depth] = false;
  if (j->pretty && j->depth > 0) {
    fputc('\n', j->f);
    for (int i = 0; i < j->depth; i++)
      fputs("  ", j->f);
  }
  if (key) {
    json_string(j->f, (const unsigned char *)key, strlen(key));
    fputs(j->pretty ? ": " : ":", j->f);
  }
}

static void json_open(struct cli_json *j, const char *key, char c) {
  json_key(j, key);
  fputc(c, j->f);
  if (j->depth < 15)
    j->depth++;
  j->first[j->depth] = true;
}

void cli_json_obj(struct cli_json *j, const char *key) {
  json_open(j, key, '{');
}
void cli_json_arr(struct cli_json *j, const char *key) {
  json_open(j, key, '[');
}

void cli_json_end(struct cli_json *j, char close) {
  bool empty = j->first[j->depth];
  if (j->depth > 0)
    j->depth--;
  if (j->pretty && !empty) {
    fputc('\n', j->f);
    for (int i = 0; i < j->depth; i++)
      fputs("  ", j->f);
  }
  fputc(close, j->f);
  if (j->depth == 0)
    fputc('\n', j->f);
}

void cli_json_u64(struct cli_json *j, const char *key, uint64_t v) {
  json_key(j, key);
  fprintf(j->f, "%" PRIu64, v);
}

void cli_json_i64(struct cli_json *j, const char *key, int64_t v) {
  json_key(j, key);
  fprintf(j->f, "%" PRId64, v);
}

void cli_json_dbl(struct cli_json *j, const char *key, double v, int prec) {
  json_key(j, key);
  if (v != v)
    fputs("null", j->f);
  else
    fprintf(j->f, "%.*f", prec, v);
}

void cli_json_str(struct cli_json *j, const char *key, const char *s) {
  cli_json_bytes(j, key, s, strlen(s));
}

void cli_json_bytes(struct cli_json *j, const char *key, const void *s,
                    size_t len) {
  json_key(j, key);
  json_string(j->f, s, len);
}

void cli_json_bool(struct cli_json *j, const char *key, bool v) {
  json_key(j, key);
  fputs(v ? "true" : "false", j->f);
}

void cli_json_null(struct cli_json *j, const char *key) {
  json_key(j, key);
  fputs("null", j->f);
}

/* ---- processes ------------------------------------------------------ */

void cli_count_attached(const ino_t *inodes, int n, int *counts) {
  for (int i = 0; i < n; i++)
    counts[i] = 0;
  DIR *d = opendir("/proc");
  if (!d || n == 0) {
    if (d)
      closedir(d);
    return;
  }
  bool *seen = calloc((size_t)n, sizeof *seen);
  char *line = NULL;
  size_t cap = 0;
  pid_t self = getpid();
  struct dirent *de;
  while (seen && (de = readdir(d)) != NULL) {
    char *end;
    long pid = strtol(de->d_name, &end, 10);
    if (*end || pid <= 0 || pid == self)
      continue;
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/maps", pid);
    FILE *f = fopen(path, "r");
    if (!f)
      continue; /* gone, or another user's */
    memset(seen, 0, (size_t)n * sizeof *seen);
    while (getline(&line, &cap, f) > 0) {
      /* addr perms offset dev inode path */
      if (!strstr(line, "/dev/shm/kvshm."))
        continue;
      unsigned long long ino;
      if (sscanf(line, "%*s %*s %*s %*s %llu", &ino) != 1)
        continue;
      for (int i = 0; i < n; i++)
        if ((unsigned long long)inodes[i] == ino && !seen[i]) {
          seen[i] = true;
          counts[i]++;
        }
    }
    fclose(f);
  }
  free(line);
  free(seen);
  closedir(d);
}

int cli_attached(const char *name) {
  char path[KVSHM_NAME_MAX + 32];
  cli_segment_path(name, path, sizeof path);
  struct stat sb;
  if (stat(path, &sb))
    return -1;
  ino_t ino = sb.st_ino;
  int count;
  cli_count_attached(&ino, 1, &count);
  return count;
}
