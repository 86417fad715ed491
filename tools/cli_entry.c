/*
 * cli_entry.c - the commands that touch single keys: get, set, del, incr,
 * and keys (list them by prefix).  Keys and values are binary-safe: a value
 * can come from an argument, a file or stdin, and go out raw (--raw) or
 * backslash-escaped on one line; -e lets a KEY argument use those same
 * escapes, so any key that `keys` prints can be given back to `get`.
 */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A key or value from the command line, unescaped with -e. */
struct arg {
  unsigned char *buf; /* malloc'ed when unescaped, else points into argv */
  size_t len;
  bool owned;
};

static int arg_take(struct arg *a, const char *s, bool escaped,
                    const char *what) {
  a->owned = false;
  if (!escaped) {
    a->buf = (unsigned char *)s;
    a->len = strlen(s);
    return 0;
  }
  if (cli_unescape(s, &a->buf, &a->len))
    return cli_usage("%s '%s' has a bad escape (use \\\\ \\n \\r \\t \\0 \\e "
                     "or \\xNN)",
                     what, s);
  a->owned = true;
  return 0;
}

static void arg_free(struct arg *a) {
  if (a->owned)
    free(a->buf);
}

/* ---- get ------------------------------------------------------------ */

static int cmd_get(int argc, char **argv) {
  static const struct option opts[] = {{"raw", no_argument, NULL, 'r'},
                                       {"escaped", no_argument, NULL, 'e'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  bool raw = false, esc = false;
  int c;
  while ((c = cli_getopt(argc, argv, "reh", opts)) != -1) {
    switch (c) {
    case 'r':
      raw = true;
      break;
    case 'e':
      esc = true;
      break;
    default:
      return cli_opt_default(c);
    }
  }
  if (argc - optind != 2)
    return cli_usage(argc - optind < 2 ? "missing NAME or KEY"
                                       : "too many operands");
  struct arg key;
  int rc = arg_take(&key, argv[optind + 1], esc, "KEY");
  if (rc)
    return rc;
  kvshm *kv;
  rc = cli_open_ro(argv[optind], &kv);
  if (rc) {
    arg_free(&key);
    return rc;
  }
  unsigned char *buf = NULL;
  size_t vlen = 0, cap = 256;
  for (;;) {
    unsigned char *nb = realloc(buf, cap);
    if (!nb) {
      rc = -ENOMEM;
      break;
    }
    buf = nb;
    rc = kvshm_get(kv, key.buf, key.len, buf, cap, &vlen, NULL);
    if (rc != KVSHM_EBUFSIZE)
      break;
    cap = vlen ? vlen : 1; /* it changed size meanwhile: ask again */
  }
  if (rc == KVSHM_ENOTFOUND) {
    cli_msg("key '%s' not found in '%s'", argv[optind + 1], argv[optind]);
    rc = CLI_EXIT_NOTFOUND;
  } else if (rc) {
    rc = cli_fail(rc, "cannot get '%s'", argv[optind + 1]);
  } else if (raw) {
    fwrite(buf, 1, vlen, stdout);
  } else {
    cli_escape(stdout, buf, vlen);
    fputc('\n', stdout);
  }
  free(buf);
  arg_free(&key);
  kvshm_close(kv);
  return rc;
}

const struct cli_cmd cli_cmd_get = {
    "get", cmd_get, "[-r] [-e] NAME KEY", "print the value stored at KEY",
    "Without --raw the value is printed on one line: printable ASCII and "
    "UTF-8\nas is, \\\\ \\n \\r \\t, and \\xNN for any other byte.\n"
    "\nOptions:\n"
    "  -r, --raw       write the value's bytes exactly, without a newline\n"
    "  -e, --escaped   KEY uses the escapes above (\\xNN etc.)\n"
    "  -h, --help      this help\n"};

/* ---- set ------------------------------------------------------------ */

static int cmd_set(int argc, char **argv) {
  static const struct option opts[] = {{"ttl", required_argument, NULL, 't'},
                                       {"flags", required_argument, NULL, 'F'},
                                       {"file", required_argument, NULL, 'f'},
                                       {"escaped", no_argument, NULL, 'e'},
                                       {"nx", no_argument, NULL, 'N'},
                                       {"xx", no_argument, NULL, 'X'},
                                       {"keep-ttl", no_argument, NULL, 'K'},
                                       {"help", no_argument, NULL, 'h'},
                                       CLI_CREATE_LONGOPTS,
                                       {NULL, 0, NULL, 0}};
  struct cli_create co = {0};
  kvshm_config_init(&co.cfg);
  int64_t ttl = KVSHM_TTL_DEFAULT;
  uint64_t flags = 0, v;
  const char *file = NULL;
  bool esc = false;
  unsigned setopts = 0;
  int c;
  while ((c = cli_getopt(argc, argv, "t:F:f:eh", opts)) != -1) {
    int r = cli_create_opt(&co, c, optarg);
    if (r < 0)
      return -r;
    if (r)
      continue;
    switch (c) {
    case 't':
      if (cli_parse_ms(optarg, &v) || v > INT64_MAX)
        return cli_usage("--ttl: '%s' is not a duration (ms, or 30s, 5m, 2h, "
                         "1d; 0 = never)",
                         optarg);
      ttl = (int64_t)v;
      break;
    case 'F':
      if (cli_parse_u64(optarg, UINT32_MAX, &flags))
        return cli_usage("--flags: '%s' is not a number from 0 to %u", optarg,
                         UINT32_MAX);
      break;
    case 'f':
      file = optarg;
      break;
    case 'e':
      esc = true;
      break;
    case 'N':
      setopts |= KVSHM_NX;
      break;
    case 'X':
      setopts |= KVSHM_XX;
      break;
    case 'K':
      setopts |= KVSHM_KEEPTTL;
      break;
    default:
      return cli_opt_default(c);
    }
  }
  int nops = argc - optind;
  if (nops < 2 || nops > 3)
    return cli_usage(nops < 2 ? "missing NAME or KEY" : "too many operands");
  if (nops == 3 && file)
    return cli_usage("give the value as an operand or with --file, not both");
  if ((setopts & (KVSHM_NX | KVSHM_XX)) == (KVSHM_NX | KVSHM_XX))
    return cli_usage("--nx and --xx exclude each other");
  struct arg key, val = {0};
  int rc = arg_take(&key, argv[optind + 1], esc, "KEY");
  if (rc)
    return rc;
  unsigned char *data = NULL;
  if (nops == 3) {
    rc = arg_take(&val, argv[optind + 2], esc, "VALUE");
    if (rc) {
      arg_free(&key);
      return rc;
    }
  } else {
    if (!file)
      file = "-";
    if (strcmp(file, "-") == 0 && isatty(STDIN_FILENO))
      cli_msg("reading the value from the terminal; end it with Ctrl-D");
    rc = cli_read_all(file, &data, &val.len);
    if (rc) {
      cli_msg("cannot read the value from %s: %s",
              strcmp(file, "-") ? file : "stdin", strerror(-rc));
      arg_free(&key);
      return CLI_EXIT_ERROR;
    }
    val.buf = data;
  }
  kvshm *kv;
  rc = cli_open_rw(argv[optind], &co, &kv);
  if (!rc) {
    rc = kvshm_set(kv, key.buf, key.len, val.buf, val.len, (uint32_t)flags, ttl,
                   setopts);
    if (rc == KVSHM_EEXIST) {
      cli_msg("key '%s' exists (--nx)", argv[optind + 1]);
      rc = CLI_EXIT_NOTFOUND;
    } else if (rc == KVSHM_ENOTFOUND) {
      cli_msg("key '%s' not found (--xx)", argv[optind + 1]);
      rc = CLI_EXIT_NOTFOUND;
    } else if (rc) {
      rc = cli_fail(rc, "cannot set '%s'", argv[optind + 1]);
    }
    kvshm_close(kv);
    if (rc)
      cli_create_undo(argv[optind], &co);
  }
  free(data);
  arg_free(&val);
  arg_free(&key);
  return rc;
}

const struct cli_cmd cli_cmd_set = {
    "set", cmd_set, "[options] NAME KEY [VALUE]",
    "store VALUE (or stdin, or --file) at KEY",
    "Without VALUE the value is read from --file, or from stdin to its end,\n"
    "byte for byte.  Exit status 1 when --nx or --xx prevented the write.\n"
    "\nOptions:\n"
    "  -t, --ttl TTL          time to live: ms, or 30s, 5m, 2h, 1d;\n"
    "                         0 = never; default: the cache's default TTL\n"
    "  -F, --flags N          the entry's 32-bit user flags word (default 0)\n"
    "  -f, --file FILE        read the value from FILE ('-' = stdin)\n"
    "  -e, --escaped          KEY and VALUE use \\\\ \\n \\r \\t \\0 \\e "
    "\\xNN\n"
    "      --nx               only if KEY is absent\n"
    "      --xx               only if KEY is present\n"
    "      --keep-ttl         keep an existing entry's expiry\n" CLI_CREATE_HELP
    "  -h, --help             this help\n"};

/* ---- del ------------------------------------------------------------ */

static int cmd_del(int argc, char **argv) {
  static const struct option opts[] = {{"escaped", no_argument, NULL, 'e'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  bool esc = false;
  int c;
  while ((c = cli_getopt(argc, argv, "eh", opts)) != -1) {
    switch (c) {
    case 'e':
      esc = true;
      break;
    default:
      return cli_opt_default(c);
    }
  }
  if (argc - optind < 2)
    return cli_usage("missing NAME or KEY");
  kvshm *kv;
  int rc = cli_open_rw(argv[optind], NULL, &kv);
  if (rc)
    return rc;
  int worst = CLI_EXIT_OK;
  for (int i = optind + 1; i < argc; i++) {
    struct arg key;
    rc = arg_take(&key, argv[i], esc, "KEY");
    if (rc) {
      worst = rc;
      break;
    }
    rc = kvshm_del(kv, key.buf, key.len);
    arg_free(&key);
    if (rc == KVSHM_ENOTFOUND) {
      cli_msg("key '%s' not found in '%s'", argv[i], argv[optind]);
      if (worst < CLI_EXIT_NOTFOUND)
        worst = CLI_EXIT_NOTFOUND;
    } else if (rc) {
      worst = cli_fail(rc, "cannot delete '%s'", argv[i]);
      break;
    }
  }
  kvshm_close(kv);
  return worst;
}

const struct cli_cmd cli_cmd_del = {
    "del", cmd_del, "[-e] NAME KEY...", "remove keys",
    "Exit status 1 if any KEY was not there.\n"
    "\nOptions:\n"
    "  -e, --escaped   KEY uses \\\\ \\n \\r \\t \\0 \\e \\xNN\n"
    "  -h, --help      this help\n"};

/* ---- incr ----------------------------------------------------------- */

static int cmd_incr(int argc, char **argv) {
  static const struct option opts[] = {{"flags", required_argument, NULL, 'F'},
                                       {"escaped", no_argument, NULL, 'e'},
                                       {"help", no_argument, NULL, 'h'},
                                       CLI_CREATE_LONGOPTS,
                                       {NULL, 0, NULL, 0}};
  struct cli_create co = {0};
  kvshm_config_init(&co.cfg);
  uint64_t flags = 0;
  bool esc = false;
  int c;
  while ((c = cli_getopt(argc, argv, "F:eh", opts)) != -1) {
    int r = cli_create_opt(&co, c, optarg);
    if (r < 0)
      return -r;
    if (r)
      continue;
    switch (c) {
    case 'F':
      if (cli_parse_u64(optarg, UINT32_MAX, &flags))
        return cli_usage("--flags: '%s' is not a number from 0 to %u", optarg,
                         UINT32_MAX);
      break;
    case 'e':
      esc = true;
      break;
    default:
      return cli_opt_default(c);
    }
  }
  int nops = argc - optind;
  if (nops < 2 || nops > 3)
    return cli_usage(nops < 2 ? "missing NAME or KEY" : "too many operands");
  int64_t delta = 1, result;
  if (nops == 3 && cli_parse_i64(argv[optind + 2], &delta))
    return cli_usage("DELTA '%s' is not a 64-bit integer (put -- before a "
                     "negative one)",
                     argv[optind + 2]);
  struct arg key;
  int rc = arg_take(&key, argv[optind + 1], esc, "KEY");
  if (rc)
    return rc;
  kvshm *kv;
  rc = cli_open_rw(argv[optind], &co, &kv);
  if (!rc) {
    rc = kvshm_incr(kv, key.buf, key.len, delta, (uint32_t)flags, &result);
    if (rc)
      rc = cli_fail(rc, "cannot increment '%s'", argv[optind + 1]);
    else
      printf("%" PRId64 "\n", result);
    kvshm_close(kv);
    if (rc)
      cli_create_undo(argv[optind], &co);
  }
  arg_free(&key);
  return rc;
}

const struct cli_cmd cli_cmd_incr = {
    "incr", cmd_incr, "[options] NAME KEY [DELTA]",
    "add DELTA (default 1) to the integer at KEY, print the result",
    "A missing KEY counts as 0.  Put -- before a negative DELTA:\n"
    "  kvshm-cli incr jobs counter -- -5\n"
    "\nOptions:\n"
    "  -F, --flags N          flags of the entry if it is created\n"
    "  -e, --escaped          KEY uses \\\\ \\n \\r \\t \\0 \\e "
    "\\xNN\n" CLI_CREATE_HELP "  -h, --help             this help\n"};

/* ---- keys ----------------------------------------------------------- */

static int cmd_keys(int argc, char **argv) {
  static const struct option opts[] = {{"prefix", required_argument, NULL, 'p'},
                                       {"limit", required_argument, NULL, 'n'},
                                       {"long", no_argument, NULL, 'l'},
                                       {"memory-only", no_argument, NULL, 'm'},
                                       {"escaped", no_argument, NULL, 'e'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *prefix = NULL;
  uint64_t limit = 0;
  bool lng = false, esc = false, memonly = false;
  int c;
  while ((c = cli_getopt(argc, argv, "p:n:lmeh", opts)) != -1) {
    switch (c) {
    case 'p':
      prefix = optarg;
      break;
    case 'n':
      if (cli_parse_u64(optarg, UINT64_MAX, &limit))
        return cli_usage("--limit: '%s' is not a number", optarg);
      break;
    case 'l':
      lng = true;
      break;
    case 'm':
      memonly = true;
      break;
    case 'e':
      esc = true;
      break;
    default:
      return cli_opt_default(c);
    }
  }
  if (cli_one_name(argc, argv, NULL))
    return CLI_EXIT_USAGE;
  struct arg pfx = {0};
  int rc;
  if (prefix && (rc = arg_take(&pfx, prefix, esc, "PREFIX")) != 0)
    return rc;
  kvshm *kv;
  rc = cli_open_ro(argv[optind], &kv);
  if (rc) {
    arg_free(&pfx);
    return rc;
  }
  kvshm_iter *it;
  rc = kvshm_iter_open(kv, pfx.buf, pfx.len, memonly ? 0 : KVSHM_ITER_STORE,
                       &it);
  if (rc) {
    rc = cli_fail(rc, "cannot walk '%s'", argv[optind]);
  } else {
    const void *k, *val;
    size_t klen, vlen;
    uint32_t flags;
    uint64_t exp, n = 0, now = cli_now_ms();
    char a[32];
    if (lng)
      printf("%10s %10s %10s  %s\n", "BYTES", "FLAGS", "TTL", "KEY");
    while ((!limit || n < limit) &&
           (rc = kvshm_iter_next(it, &k, &klen, &val, &vlen, &flags, &exp)) ==
               KVSHM_OK) {
      if (lng)
        printf("%10zu %10" PRIu32 " %10s  ", vlen, flags,
               !exp ? "never"
                    : cli_fmt_ms(exp > now ? exp - now : 0, a, sizeof a));
      cli_escape(stdout, k, klen);
      fputc('\n', stdout);
      n++;
    }
    if (rc == KVSHM_ENOTFOUND || rc == KVSHM_OK)
      rc = CLI_EXIT_OK;
    else
      rc = cli_fail(rc, "walk of '%s' stopped", argv[optind]);
    kvshm_iter_close(it);
  }
  kvshm_close(kv);
  arg_free(&pfx);
  return rc;
}

const struct cli_cmd cli_cmd_keys = {
    "keys", cmd_keys, "[-p PREFIX] [-n LIMIT] [-l] NAME",
    "list keys, one per line, in hash order",
    "The walk goes through both tiers together, a range of buckets at a\n"
    "time under one stripe lock: a key that exists for the whole walk is\n"
    "listed exactly once, wherever it lives.  Keys are printed escaped\n"
    "(\\\\ \\n \\r \\t \\xNN) so each stays on one line; give them back to\n"
    "get/del with -e.\n"
    "\nOptions:\n"
    "  -p, --prefix P      only keys starting with P\n"
    "  -n, --limit N       stop after N keys\n"
    "  -l, --long          also value bytes, flags and remaining TTL\n"
    "  -m, --memory-only   only keys in shared memory, not the SQLite tier\n"
    "  -e, --escaped       PREFIX uses \\\\ \\n \\r \\t \\0 \\e \\xNN\n"
    "  -h, --help          this help\n"};
