/*
 * cli_admin.c - the commands that check or change a whole cache: verify
 * (every invariant, through kvshm_verify), header (a field-by-field dump
 * with offsets, like SQLite's showwal), flush (write-behind now), clear and
 * destroy (which asks first unless --yes).
 */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool segment_exists(const char *name) {
  char path[KVSHM_NAME_MAX + 32];
  cli_segment_path(name, path, sizeof path);
  struct stat sb;
  return stat(path, &sb) == 0;
}

/* ---- verify --------------------------------------------------------- */

static void verify_line(void *ctx, const char *msg) {
  printf("%s: %s\n", (const char *)ctx, msg);
}

static int run_repair(const char *name, bool force);

static int cmd_verify(int argc, char **argv) {
  static const struct option opts[] = {{"quiet", no_argument, NULL, 'q'},
                                       {"repair", no_argument, NULL, 'r'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  bool quiet = false, repair = false;
  int c;
  while ((c = cli_getopt(argc, argv, "qrh", opts)) != -1) {
    switch (c) {
    case 'q':
      quiet = true;
      break;
    case 'r':
      repair = true;
      break;
    default:
      return cli_opt_default(c);
    }
  }
  const char *name;
  if (cli_one_name(argc, argv, &name))
    return CLI_EXIT_USAGE;
  if (repair)
    return run_repair(name, false);
  kvshm *kv;
  int rc = kvshm_open(name, &cli_trust, KVSHM_RDONLY | KVSHM_NOREAPER, &kv);
  if (rc) {
    const char *d = kvshm_errdetail();
    char detail[512];
    snprintf(detail, sizeof detail, "%s", d && *d ? d : kvshm_strerror(rc));
    if (rc == KVSHM_ECORRUPT || rc == KVSHM_EBADMAGIC ||
        (rc == -ENOENT && segment_exists(name))) {
      printf("%s: header: %s\n", name, detail);
      printf("%s: 1 problem found\n", name);
      return CLI_EXIT_NOTFOUND;
    }
    return cli_fail(rc, "cannot attach");
  }
  kvshm_stats st;
  memset(&st, 0, sizeof st);
  rc = kvshm_verify(kv, verify_line, (void *)name);
  int src = rc >= 0 ? kvshm_stats_get(kv, &st) : 0;
  kvshm_close(kv);
  if (rc < 0)
    return cli_fail(rc, "verify of '%s' stopped", name);
  if (rc > 0) {
    printf("%s: %d problem%s found\n", name, rc, rc == 1 ? "" : "s");
    return CLI_EXIT_NOTFOUND;
  }
  if (!quiet) {
    if (src == 0)
      printf("%s: ok (%" PRIu32 " stripes, %" PRIu64 " entries, %" PRIu64
             " slots in use)\n",
             name, st.stripes, st.entries, st.slots_used);
    else
      printf("%s: ok\n", name);
  }
  return CLI_EXIT_OK;
}

const struct cli_cmd cli_cmd_verify = {
    "verify", cmd_verify, "[-q] NAME",
    "check every invariant; status 1 on any corruption",
    "Checks the header, and stripe by stripe (each locked only while it is\n"
    "checked, so writers keep going): every index chain, every entry's slot\n"
    "chain and checksum, the free list and the counts.  Each problem is "
    "printed\nas 'NAME: what is wrong', then 'NAME: N problems found'; a "
    "segment whose\nheader is damaged counts as one problem.  Nothing is "
    "changed.\n"
    "\nOptions:\n"
    "  -q, --quiet   print nothing when the cache is healthy\n"
    "  -r, --repair  repair instead (as 'kvshm-cli repair NAME')\n"
    "  -h, --help    this help\n"};

/* ---- repair --------------------------------------------------------- */

static void repair_line(void *ctx, const char *msg) {
  printf("%s: %s\n", (const char *)ctx, msg);
}

static int run_repair(const char *name, bool force) {
  kvshm *kv;
  int rc = kvshm_open(name, &cli_trust, KVSHM_NOCREATE | KVSHM_NOREAPER, &kv);
  if (rc)
    return cli_open_failed(name, rc, false);
  rc = kvshm_repair(kv, force ? KVSHM_REPAIR_FORCE : 0, repair_line,
                    (void *)name);
  int problems = rc >= 0 ? kvshm_verify(kv, repair_line, (void *)name) : 0;
  kvshm_close(kv);
  if (rc < 0)
    return cli_fail(rc, "repair of '%s' was not complete", name);
  if (problems)
    printf("%s: %d problem%s left after repair\n", name, problems,
           problems == 1 ? "" : "s");
  else if (rc)
    printf("%s: repaired %d thing%s; verify finds nothing more\n", name, rc,
           rc == 1 ? "" : "s");
  else
    printf("%s: nothing to repair\n", name);
  return problems ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

static int cmd_repair(int argc, char **argv) {
  bool force;
  const char *name;
  int rc;
  if (!cli_flag_and_name(argc, argv, "force", 'f', &force, &name, &rc))
    return rc;
  return run_repair(name, force);
}

const struct cli_cmd cli_cmd_repair = {
    "repair", cmd_repair, "[-f] NAME",
    "put right what verify finds: damaged locks, leaked slots, bad entries",
    "Puts back a header magic word that alone was overwritten; makes again a\n"
    "stripe lock whose words are damaged (under the segment's file lock);\n"
    "rebuilds every stripe that verify finds a problem in from its slots\n"
    "(leaked slots freed, broken entries dropped and counted as corrupt).\n"
    "Prints one line per thing repaired, then verifies.  A stripe lock held\n"
    "past the lock timeout by a thread that does not exist is made again\n"
    "when every attached process is in this PID namespace; with processes\n"
    "attached from other PID namespaces (containers) it needs --force.\n"
    "Exit status 0 when the cache verifies clean afterwards.\n"
    "\nOptions:\n"
    "  -f, --force   also make again a lock held by a thread that does not\n"
    "                exist here while other PID namespaces are attached (only\n"
    "                when you know none of their processes holds it)\n"
    "  -h, --help    this help\n"};

/* ---- header --------------------------------------------------------- */

static void header_line(void *ctx, const char *msg) {
  (void)ctx;
  printf("%s\n", msg);
}

static int cmd_header(int argc, char **argv) {
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int c;
  while ((c = cli_getopt(argc, argv, "h", opts)) != -1)
    return cli_opt_default(c);
  if (cli_one_name(argc, argv, NULL))
    return CLI_EXIT_USAGE;
  kvshm *kv;
  int rc =
      kvshm_open(argv[optind], &cli_trust, KVSHM_RDONLY | KVSHM_NOREAPER, &kv);
  if (rc == KVSHM_ECORRUPT || rc == KVSHM_EBADMAGIC) {
    cli_fail(rc, "the header cannot be read");
    return CLI_EXIT_NOTFOUND; /* damaged, as verify would say */
  }
  if (rc)
    return cli_open_failed(argv[optind], rc, false);
  printf("%6s  %-20s %s\n", "OFFSET", "FIELD", "VALUE");
  rc = kvshm_header_dump(kv, header_line, NULL);
  kvshm_close(kv);
  if (rc == KVSHM_ECORRUPT) {
    cli_msg("'%s': the header fails its checksum (hdr_check)", argv[optind]);
    return CLI_EXIT_NOTFOUND;
  }
  return rc ? cli_fail(rc, "header of '%s'", argv[optind]) : CLI_EXIT_OK;
}

const struct cli_cmd cli_cmd_header = {
    "header", cmd_header, "NAME",
    "print the segment header field by field, with offsets",
    "One line per field: offset, name, value.  The last line gives where the\n"
    "stripe headers start and their size.  Exit status 1, with the reason, if\n"
    "the header is damaged (bad magic, checksum or geometry).\n"
    "\nOptions:\n"
    "  -h, --help   this help\n"};

/* ---- flush ---------------------------------------------------------- */

static int cmd_flush(int argc, char **argv) {
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int c;
  while ((c = cli_getopt(argc, argv, "h", opts)) != -1)
    return cli_opt_default(c);
  const char *name;
  if (cli_one_name(argc, argv, &name))
    return CLI_EXIT_USAGE;
  kvshm *kv;
  int rc = cli_open_rw(name, NULL, &kv);
  if (rc)
    return rc;
  kvshm_stats before, after;
  bool memonly = kvshm_sqlite_path(kv)[0] == 0;
  rc = kvshm_stats_get(kv, &before);
  if (!rc)
    rc = kvshm_flush(kv);
  if (!rc)
    rc = kvshm_stats_get(kv, &after);
  if (rc) {
    rc = cli_fail(rc, "cannot flush '%s'", name);
  } else if (memonly) {
    printf("'%s' is memory only: nothing to write\n", name);
  } else {
    printf("'%s': %" PRIu64 " dirty entries and %" PRIu64 " tombstones "
           "before, %" PRIu64 " and %" PRIu64 " after; written to %s\n",
           name, before.dirty, before.tombstones, after.dirty, after.tombstones,
           kvshm_sqlite_path(kv));
  }
  kvshm_close(kv);
  return rc;
}

const struct cli_cmd cli_cmd_flush = {
    "flush", cmd_flush, "NAME",
    "write every dirty entry and tombstone to SQLite now",
    "Does the reaper's write-behind at once, synchronously.  A memory-only\n"
    "cache has nothing to write.  Entries written to meanwhile may be dirty\n"
    "again when it returns.\n"
    "\nOptions:\n"
    "  -h, --help   this help\n"};

/* ---- clear ---------------------------------------------------------- */

static int cmd_clear(int argc, char **argv) {
  static const struct option opts[] = {{"prefix", required_argument, NULL, 'p'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *prefix = NULL;
  int c;
  while ((c = cli_getopt(argc, argv, "p:h", opts)) != -1) {
    if (c != 'p')
      return cli_opt_default(c);
    prefix = optarg;
  }
  const char *name;
  if (cli_one_name(argc, argv, &name))
    return CLI_EXIT_USAGE;
  if (prefix && strlen(prefix) > KVSHM_PREFIX_MAX) {
    fprintf(stderr,
            "kvshm-cli clear: --prefix is %zu bytes; at most %u (nothing "
            "was cleared)\n",
            strlen(prefix), KVSHM_PREFIX_MAX);
    return CLI_EXIT_USAGE;
  }
  kvshm *kv;
  int rc = cli_open_rw(name, NULL, &kv);
  if (rc)
    return rc;
  kvshm_stats st;
  rc = kvshm_stats_get(kv, &st);
  if (!rc)
    rc = prefix ? kvshm_clear_prefix(kv, prefix, strlen(prefix))
                : kvshm_clear(kv);
  if (rc)
    rc = cli_fail(rc, "cannot clear '%s'", name);
  else if (prefix && *prefix)
    printf("cleared the keys of '%s' starting with '%s'\n", name, prefix);
  else
    printf("cleared '%s' (%" PRIu64 " entries)\n", name, st.entries);
  kvshm_close(kv);
  return rc;
}

const struct cli_cmd cli_cmd_clear = {
    "clear", cmd_clear, "[--prefix P] NAME",
    "remove every entry, or every key starting with P (the cache stays)",
    "One atomic step for every process, in both tiers: no key written\n"
    "before it survives it.  Memory is freed as each stripe is next used;\n"
    "old SQLite rows by the reaper soon after (a whole clear), or in the\n"
    "clear's own transaction (a prefix).\n"
    "\nOptions:\n"
    "  -p, --prefix P   only the keys starting with P (at most 256 bytes)\n"
    "  -h, --help       this help\n"};

/* ---- destroy -------------------------------------------------------- */

static int cmd_destroy(int argc, char **argv) {
  bool yes;
  const char *name;
  int rc;
  if (!cli_flag_and_name(argc, argv, "yes", 'y', &yes, &name, &rc))
    return rc;
  /* Look first; a segment that cannot be attached can still be removed. */
  kvshm *kv = NULL;
  rc = kvshm_open(name, &cli_trust, KVSHM_RDONLY | KVSHM_NOREAPER, &kv);
  if (rc == KVSHM_EBADNAME)
    return cli_fail(rc, "bad name");
  if (rc && !segment_exists(name)) {
    cli_msg("cache '%s' does not exist (no /dev/shm/kvshm.%s)", name, name);
    return CLI_EXIT_NOTFOUND;
  }
  char what[256], sqlite[4096] = "";
  kvshm_stats st;
  if (!rc && kvshm_stats_get(kv, &st) == 0)
    snprintf(what, sizeof what, "%" PRIu64 " entries", st.entries);
  else
    snprintf(what, sizeof what, "cannot be attached: %s",
             kvshm_strerror(rc ? rc : KVSHM_ECORRUPT));
  if (kv)
    snprintf(sqlite, sizeof sqlite, "%s", kvshm_sqlite_path(kv));
  kvshm_close(kv);
  int attached = cli_attached(name);
  if (!yes) {
    if (!isatty(STDIN_FILENO)) {
      cli_msg("refusing to destroy '%s' without confirmation: stdin is not "
              "a terminal; pass --yes",
              name);
      return CLI_EXIT_USAGE;
    }
    fprintf(stderr,
            "Destroy cache '%s' (%s, mapped by %d process%s)? "
            "[y/N] ",
            name, what, attached > 0 ? attached : 0, attached == 1 ? "" : "es");
    char ans[16] = "";
    if (!fgets(ans, sizeof ans, stdin) ||
        (strcmp(ans, "y\n") && strcmp(ans, "yes\n") && strcmp(ans, "Y\n"))) {
      fprintf(stderr, "'%s' not destroyed\n", name);
      return CLI_EXIT_NOTFOUND;
    }
  }
  rc = kvshm_unlink_config(name, &cli_trust);
  if (rc)
    return cli_fail(rc, "cannot destroy '%s'", name);
  printf("destroyed '%s'\n", name);
  if (attached > 0)
    printf("%d process%s still map%s it: %s\n", attached,
           attached == 1 ? "" : "es", attached == 1 ? "s" : "",
           sqlite[0] ? "their calls now fail with EDESTROYED until they "
                       "open it again"
                     : "it keeps working for them until they close it");
  if (sqlite[0])
    printf("its SQLite file %s was kept\n", sqlite);
  return CLI_EXIT_OK;
}

const struct cli_cmd cli_cmd_destroy = {
    "destroy", cmd_destroy, "[-y] NAME",
    "remove the segment (asks first unless --yes)",
    "Removes /dev/shm/kvshm.NAME, even one that cannot be attached (bad "
    "magic,\ncorrupt header), after writing what is dirty to SQLite.  "
    "Processes that have\na memory-only cache open keep using it until they "
    "close it; those that have\na SQLite cache open get EDESTROYED.  The next "
    "open creates a new cache (over\nthe same SQLite file, which is kept).  On "
    "a terminal it asks for confirmation; "
    "when stdin is not\na terminal it refuses (status 2) unless --yes; "
    "answering no is status 1.\n"
    "\nOptions:\n"
    "  -y, --yes    do not ask\n"
    "  -h, --help   this help\n"};
