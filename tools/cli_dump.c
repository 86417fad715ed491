/*
 * cli_dump.c - `dump` writes every entry of a cache (both tiers) to a text
 * file, `load` stores such a file into a cache.  The format keeps one entry
 * per line whatever the bytes, so dumps can be diffed, grepped and edited:
 *
 *   # kvshm-dump 1                      first line, exactly
 *   # any other comment                 ignored
 *   KEY VALUE FLAGS EXPIRES             one entry, fields split by one space
 *   # end COUNT                         last line: the number of entries
 *
 * KEY and VALUE are percent-escaped: bytes 0x21..0x7e except '%' and '#'
 * stand for themselves, every other byte is %XX (so spaces, newlines and binary
 * data never appear raw); an empty value is an empty field.  FLAGS is the
 * entry's 32-bit flags word in decimal; EXPIRES the absolute expiry in ms since
 * the epoch, 0 for never.  Because expiry is absolute, a dump loaded later
 * keeps each entry's deadline; entries whose deadline has passed are skipped. A
 * file without its end line (a dump that was cut short) is refused.
 */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define DUMP_MAGIC "# kvshm-dump 1"

/* ---- dump ----------------------------------------------------------- */

static int cmd_dump(int argc, char **argv) {
  static const struct option opts[] = {{"memory-only", no_argument, NULL, 'm'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  bool memonly = false;
  int c;
  while ((c = cli_getopt(argc, argv, "mh", opts)) != -1) {
    switch (c) {
    case 'm':
      memonly = true;
      break;
    default:
      return cli_opt_default(c);
    }
  }
  int nops = argc - optind;
  if (nops < 1 || nops > 2)
    return cli_usage(nops < 1 ? "missing NAME" : "too many operands");
  const char *name = argv[optind];
  const char *path = nops == 2 ? argv[optind + 1] : "-";
  bool to_stdout = strcmp(path, "-") == 0;
  kvshm *kv;
  int rc = cli_open_ro(name, &kv);
  if (rc)
    return rc;
  kvshm_iter *it;
  rc = kvshm_iter_open(kv, NULL, 0, memonly ? 0 : KVSHM_ITER_STORE, &it);
  if (rc) {
    rc = cli_fail(rc, "cannot walk '%s'", name);
    kvshm_close(kv);
    return rc;
  }
  FILE *f = to_stdout ? stdout : fopen(path, "w");
  if (!f) {
    cli_msg("cannot create %s: %s", path, strerror(errno));
    kvshm_iter_close(it);
    kvshm_close(kv);
    return CLI_EXIT_ERROR;
  }
  char when[64];
  uint64_t now = cli_now_ms();
  fprintf(f,
          DUMP_MAGIC "\n# cache %s, dumped %s (%" PRIu64 " ms)\n"
                     "# KEY VALUE FLAGS EXPIRES_MS (0 = never); KEY and VALUE "
                     "percent-escaped\n",
          name, cli_fmt_time(now, when, sizeof when), now);
  const void *k, *v;
  size_t klen, vlen;
  uint32_t flags;
  uint64_t exp, n = 0;
  while ((rc = kvshm_iter_next(it, &k, &klen, &v, &vlen, &flags, &exp)) ==
         KVSHM_OK) {
    cli_pct_encode(f, k, klen);
    fputc(' ', f);
    cli_pct_encode(f, v, vlen);
    fprintf(f, " %" PRIu32 " %" PRIu64 "\n", flags, exp);
    n++;
  }
  kvshm_iter_close(it);
  if (rc == KVSHM_ENOTFOUND) {
    fprintf(f, "# end %" PRIu64 "\n", n);
    rc = CLI_EXIT_OK;
  } else {
    /* No end line: load refuses what was written. */
    rc = cli_fail(rc, "the walk of '%s' stopped after %" PRIu64 " entries",
                  name, n);
  }
  kvshm_close(kv);
  if (fflush(f) || ferror(f) || (!to_stdout && fclose(f))) {
    cli_msg("cannot write %s: %s", path, strerror(errno));
    return CLI_EXIT_ERROR;
  }
  if (!rc && !to_stdout)
    printf("dumped %" PRIu64 " entries of '%s' to %s\n", n, name, path);
  return rc;
}

const struct cli_cmd cli_cmd_dump = {
    "dump", cmd_dump, "[-m] NAME [FILE]",
    "write every entry (flags, expiry) to FILE or stdout",
    "Format (one entry per line, survives any bytes):\n"
    "  # kvshm-dump 1              first line, exactly\n"
    "  # ...                       comments\n"
    "  KEY VALUE FLAGS EXPIRES     fields separated by one space\n"
    "  # end COUNT                 last line, COUNT = number of entries\n"
    "KEY and VALUE are percent-escaped: bytes 0x21-0x7e other than '%' and "
    "'#'\nas is, every other byte as %XX; an empty VALUE is an empty field.\n"
    "FLAGS is the 32-bit flags word, EXPIRES the absolute expiry in ms since\n"
    "the epoch (0 = never), so TTLs survive a dump and a later load.\n"
    "Entries of both tiers (memory, then SQLite) are written.\n"
    "\nOptions:\n"
    "  -m, --memory-only   only the shared-memory tier\n"
    "  -h, --help          this help\n"};

/* ---- load ----------------------------------------------------------- */

/* Split line into the 4 fields of an entry; 0 or -1. */
static int split4(char *line, char *f[4], size_t len[4]) {
  char *p = line;
  for (int i = 0; i < 4; i++) {
    f[i] = p;
    char *sp = strchr(p, ' ');
    if (i < 3) {
      if (!sp)
        return -1;
      len[i] = (size_t)(sp - p);
      *sp = 0;
      p = sp + 1;
    } else {
      if (sp)
        return -1;
      len[i] = strlen(p);
    }
  }
  return 0;
}

/*
 * A load --create stopped by Ctrl-C, SIGTERM or SIGHUP is a failed load: it
 * notes the signal, stops reading, removes the cache it made, then dies of
 * the signal.  A signal the caller ignores (nohup) stays ignored.
 */
static volatile sig_atomic_t load_stop;

static void on_load_stop(int sig) {
  if (!load_stop)
    load_stop = sig;
}

static void catch_stop_signals(void) {
  static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_load_stop; /* no SA_RESTART: a blocked read returns */
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
      sigaction(sigs[i], &sa, NULL);
}

static int cmd_load(int argc, char **argv) {
  static const struct option opts[] = {{"nx", no_argument, NULL, 'N'},
                                       {"check", no_argument, NULL, 'c'},
                                       {"help", no_argument, NULL, 'h'},
                                       CLI_CREATE_LONGOPTS,
                                       {NULL, 0, NULL, 0}};
  struct cli_create co = {0};
  kvshm_config_init(&co.cfg);
  bool nx = false, check = false;
  int c;
  while ((c = cli_getopt(argc, argv, "ch", opts)) != -1) {
    int r = cli_create_opt(&co, c, optarg);
    if (r < 0)
      return -r;
    if (r)
      continue;
    switch (c) {
    case 'N':
      nx = true;
      break;
    case 'c':
      check = true;
      break;
    default:
      return cli_opt_default(c);
    }
  }
  int nops = argc - optind;
  if (nops < 1 || nops > 2)
    return cli_usage(nops < 1 ? "missing NAME" : "too many operands");
  const char *name = argv[optind];
  const char *path = nops == 2 ? argv[optind + 1] : "-";
  bool from_stdin = strcmp(path, "-") == 0;
  const char *shown = from_stdin ? "stdin" : path;
  FILE *f = from_stdin ? stdin : fopen(path, "r");
  if (!f) {
    cli_msg("cannot open %s: %s", path, strerror(errno));
    return CLI_EXIT_ERROR;
  }
  kvshm *kv = NULL;
  if (co.create && !check)
    catch_stop_signals();
  int rc = check ? 0 : cli_open_rw(name, &co, &kv);
  if (rc) {
    if (!from_stdin)
      fclose(f);
    return rc;
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t got;
  uint64_t lineno = 0, entries = 0, loaded = 0, expired = 0, kept = 0;
  bool ended = false;
  rc = CLI_EXIT_OK;
  while (!load_stop && (got = getline(&line, &cap, f)) > 0) {
    lineno++;
    size_t len = (size_t)got;
    if (line[len - 1] == '\n')
      line[--len] = 0;
    if (len && line[len - 1] == '\r') /* tolerate CRLF */
      line[--len] = 0;
    if (lineno == 1) {
      if (strcmp(line, DUMP_MAGIC) != 0) {
        cli_msg("%s:1: not a kvshm dump (the first line must be '" DUMP_MAGIC
                "')",
                shown);
        rc = CLI_EXIT_ERROR;
        break;
      }
      continue;
    }
    if (ended) {
      cli_msg("%s:%" PRIu64 ": text after the end line", shown, lineno);
      rc = CLI_EXIT_ERROR;
      break;
    }
    if (strncmp(line, "# end ", 6) == 0) {
      uint64_t count;
      if (cli_parse_u64(line + 6, UINT64_MAX, &count) || count != entries) {
        cli_msg("%s:%" PRIu64 ": the end line says '%s' but %" PRIu64
                " entries were read",
                shown, lineno, line + 6, entries);
        rc = CLI_EXIT_ERROR;
        break;
      }
      ended = true;
      continue;
    }
    if (line[0] == '#')
      continue;
    char *fld[4];
    size_t flen[4], klen, vlen;
    uint64_t flags, exp;
    if (split4(line, fld, flen) ||
        cli_pct_decode(fld[0], flen[0], (unsigned char *)fld[0], &klen) ||
        cli_pct_decode(fld[1], flen[1], (unsigned char *)fld[1], &vlen) ||
        cli_parse_u64(fld[2], UINT32_MAX, &flags) ||
        cli_parse_u64(fld[3], UINT64_MAX, &exp)) {
      cli_msg("%s:%" PRIu64 ": not an entry (KEY VALUE FLAGS EXPIRES_MS, "
              "percent-escaped, one space apart)",
              shown, lineno);
      rc = CLI_EXIT_ERROR;
      break;
    }
    entries++;
    if (check)
      continue;
    int64_t ttl = KVSHM_TTL_NEVER;
    if (exp) {
      uint64_t now = cli_now_ms();
      if (exp <= now) {
        expired++;
        continue;
      }
      ttl = (int64_t)(exp - now);
    }
    int r = kvshm_set(kv, fld[0], klen, fld[1], vlen, (uint32_t)flags, ttl,
                      nx ? KVSHM_NX : 0);
    if (r == KVSHM_EEXIST) {
      kept++;
    } else if (r) {
      char where[128];
      snprintf(where, sizeof where, "%s:%" PRIu64, shown, lineno);
      rc = cli_fail(r, "%s: cannot store the entry", where);
      break;
    } else {
      loaded++;
    }
  }
  if (!rc && load_stop) {
    cli_msg("%s:%" PRIu64 ": stopped by %s", shown, lineno,
            strsignal(load_stop));
    rc = CLI_EXIT_ERROR;
  } else if (!rc && ferror(f)) {
    cli_msg("cannot read %s: %s", shown, strerror(errno));
    rc = CLI_EXIT_ERROR;
  } else if (!rc && lineno == 0) {
    cli_msg("%s is empty: not a kvshm dump", shown);
    rc = CLI_EXIT_ERROR;
  } else if (!rc && !ended) {
    cli_msg("%s:%" PRIu64 ": no end line: the dump was cut short (%" PRIu64
            " entries before it were %s)",
            shown, lineno, entries,
            check        ? "well-formed"
            : co.created ? "read"
                         : "stored");
    rc = CLI_EXIT_ERROR;
  }
  free(line);
  if (!from_stdin)
    fclose(f);
  kvshm_close(kv);
  if (rc)
    cli_create_undo(name, &co); /* a cache it made holds a partial load */
  if (load_stop) {
    signal(load_stop, SIG_DFL);
    raise(load_stop);
  }
  if (!rc) {
    if (check)
      printf("%s: %" PRIu64 " well-formed entries\n", shown, entries);
    else
      printf("loaded %" PRIu64 " entries into '%s'; skipped %" PRIu64
             " expired%s",
             loaded, name, expired, nx ? "" : "\n");
    if (!check && nx)
      printf(", %" PRIu64 " already present\n", kept);
  }
  return rc;
}

const struct cli_cmd cli_cmd_load = {
    "load", cmd_load, "[options] NAME [FILE]",
    "store every entry of a dump (FILE or stdin) into NAME",
    "FILE is in the format that dump writes (see 'kvshm-cli dump -h').  "
    "Each\nentry keeps its flags and its absolute expiry; entries already "
    "expired\nare skipped.  Existing keys are overwritten unless --nx.  A "
    "malformed\nline or a missing end line stops the load with status 3 "
    "(entries before\nit are stored, unless --create made the cache: then "
    "it is removed, as it is\nwhen Ctrl-C, SIGTERM or SIGHUP stops such a "
    "load).\n"
    "\nOptions:\n"
    "  -c, --check            only check that FILE is a well-formed dump\n"
    "      --nx               keep keys that already exist\n" CLI_CREATE_HELP
    "  -h, --help             this help\n"};
