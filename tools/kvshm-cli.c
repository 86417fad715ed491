/*
 * kvshm-cli.c - inspect and operate a live kvshm cache from the shell.
 *
 * `kvshm-cli COMMAND [options] NAME ...`: this file holds main(), the table
 * of commands and the general help; the commands live in cli_stats.c (ls,
 * stats, top), cli_entry.c (get, set, del, incr, keys), cli_dump.c (dump,
 * load) and cli_admin.c (verify, header, flush, clear, destroy), the shared
 * plumbing in cli_util.c.  Like LMDB's mdb_stat: getopt, usage to stderr with
 * a non-zero exit, -V, read-only attach for the commands that only look, and
 * nothing but the public API (kvshm.h).
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

kvshm_config cli_trust;

/* A uid or gid for --trust-uid / --trust-gid: a number. */
static bool parse_id(const char *s, uint32_t *out) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (!*s || *end || errno || v > UINT32_MAX - 1)
    return false;
  *out = (uint32_t)v;
  return true;
}

/*
 * Take the global options --trust-uid N and --trust-gid N out of argv
 * (anywhere before "--"), so every command accepts them.  Returns false
 * after printing a usage error.
 */
static bool take_trust(int *argc, char **argv) {
  int out = 1;
  for (int i = 1; i < *argc; i++) {
    const char *a = argv[i];
    bool uid = strncmp(a, "--trust-uid", 11) == 0 && (!a[11] || a[11] == '=');
    bool gid = strncmp(a, "--trust-gid", 11) == 0 && (!a[11] || a[11] == '=');
    if (strcmp(a, "--") == 0) {
      while (i < *argc)
        argv[out++] = argv[i++];
      break;
    }
    if (!uid && !gid) {
      argv[out++] = argv[i];
      continue;
    }
    const char *v = a[11] == '=' ? a + 12 : (i + 1 < *argc ? argv[++i] : "");
    uint32_t id;
    if (!parse_id(v, &id)) {
      fprintf(stderr,
              "kvshm-cli: %s needs a numeric %s, got '%s' (see 'id -u USER', "
              "'getent group NAME')\n",
              uid ? "--trust-uid" : "--trust-gid", uid ? "uid" : "gid", v);
      return false;
    }
    cli_trust.trust |= uid ? KVSHM_TRUST_UID : KVSHM_TRUST_GID;
    *(uid ? &cli_trust.trust_uid : &cli_trust.trust_gid) = id;
  }
  argv[out] = NULL;
  *argc = out;
  return true;
}

static const struct cli_cmd *const commands[] = {
    &cli_cmd_ls,     &cli_cmd_stats, &cli_cmd_top,    &cli_cmd_get,
    &cli_cmd_set,    &cli_cmd_del,   &cli_cmd_incr,   &cli_cmd_keys,
    &cli_cmd_dump,   &cli_cmd_load,  &cli_cmd_verify, &cli_cmd_repair,
    &cli_cmd_header, &cli_cmd_flush, &cli_cmd_clear,  &cli_cmd_destroy,
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void version(void) {
  printf("kvshm-cli %s (libshm %s)\n", KVSHM_VERSION_STRING,
         KVSHM_VERSION_STRING);
}

static void general_help(FILE *f) {
  fprintf(f, "usage: kvshm-cli [-h] [-V] COMMAND [options] NAME ...\n"
             "Inspect and operate a kvshm cache (/dev/shm/kvshm.NAME) while it "
             "runs.\n\nCommands:\n");
  for (size_t i = 0; i < NCOMMANDS; i++)
    fprintf(f, "  %-8s %s\n", commands[i]->name, commands[i]->summary);
  fprintf(f,
          "\n"
          "Options:\n"
          "  -h, --help     this help; 'kvshm-cli COMMAND -h' for a command's\n"
          "  -V, --version  print the version\n"
          "  --trust-uid N, --trust-gid N\n"
          "                 (any command) accept a cache, SQLite file or log\n"
          "                 owned by uid N or group N, not only by you\n"
          "\n"
          "Commands that only look attach read-only and never start a "
          "reaper;\ncommands that write never create a cache unless given "
          "--create.\nOptions may follow the operands; use -- before an "
          "operand that starts\nwith '-'.\n"
          "\n"
          "Exit status:\n"
          "  0  ok\n"
          "  1  no such key or cache; verify found problems\n"
          "  2  bad command line (unknown command or option, bad value or "
          "name)\n"
          "  3  any other error (corrupt segment, timeout, I/O, SQLite, ...)\n"
          "\n"
          "Dump format (dump, load): see 'kvshm-cli dump -h' or "
          "kvshm-cli(1).\n");
}

int main(int argc, char **argv) {
  kvshm_config_init(&cli_trust);
  if (!take_trust(&argc, argv))
    return CLI_EXIT_USAGE;
  if (argc < 2) {
    general_help(stderr);
    return CLI_EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 ||
      strcmp(cmd, "help") == 0) {
    if (argc > 2 && strcmp(cmd, "help") == 0) {
      for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(argv[2], commands[i]->name) == 0) {
          cli_cur = commands[i];
          return cli_help();
        }
      fprintf(stderr, "kvshm-cli: no command '%s'\n", argv[2]);
      return CLI_EXIT_USAGE;
    }
    general_help(stdout);
    return CLI_EXIT_OK;
  }
  if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0) {
    version();
    return CLI_EXIT_OK;
  }
  for (size_t i = 0; i < NCOMMANDS; i++) {
    if (strcmp(cmd, commands[i]->name) != 0)
      continue;
    cli_cur = commands[i];
    char prog[64];
    snprintf(prog, sizeof prog, "kvshm-cli %s", cmd);
    argv[1] = prog; /* getopt's messages name the command */
    int rc = commands[i]->run(argc - 1, argv + 1);
    if (fflush(stdout) || ferror(stdout)) {
      if (rc == CLI_EXIT_OK) {
        cli_msg("cannot write the output");
        rc = CLI_EXIT_ERROR;
      }
    }
    return rc;
  }
  fprintf(stderr, "kvshm-cli: unknown command '%s'%s\n", cmd,
          cmd[0] == '-' ? " (options go after the command)" : "");
  fprintf(stderr, "Try 'kvshm-cli -h' for the list of commands.\n");
  return CLI_EXIT_USAGE;
}
