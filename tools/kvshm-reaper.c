/*
 * kvshm-reaper - the background process of one cache: expiry, write-behind
 * to SQLite, eviction (libshm/reaper.c holds the logic).  Started by the
 * library when a cache is opened; may also be run by hand:
 *
 *   kvshm-reaper [--trust-uid UID] [--trust-gid GID] NAME
 *       reap cache NAME until SIGTERM or it is destroyed; accept a segment
 *       and files owned by UID or group GID too (kvshm_config.trust: the
 *       library passes its own, so the reaper accepts what its starter did)
 *
 * Logs go to $KVSHM_REAPER_LOG, else <sqlite file>.reaper.log; run from a
 * terminal with -f, they go to stderr.
 */
#include "kvshm.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static void usage(void) {
  fprintf(stderr, "usage: kvshm-reaper [-f] [-V] [--trust-uid UID] "
                  "[--trust-gid GID] NAME\n"
                  "  -f               log to stderr\n"
                  "  -V               print the version\n"
                  "  --trust-uid UID  accept files owned by UID too\n"
                  "  --trust-gid GID  accept files of group GID too\n");
  exit(2);
}

/* A uid or gid: decimal digits only, below (uint32_t)-1 (which is "none"). */
static uint32_t id_arg(const char *opt, const char *s) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (!*s || *s < '0' || *s > '9' || *end || errno || v >= UINT32_MAX) {
    fprintf(stderr, "kvshm-reaper: %s needs a numeric id, got '%s'\n", opt, s);
    usage();
  }
  return (uint32_t)v;
}

int main(int argc, char **argv) {
  static const struct option longopts[] = {
      {"trust-uid", required_argument, NULL, 'U'},
      {"trust-gid", required_argument, NULL, 'G'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  kvshm_config cfg;
  kvshm_config_init(&cfg);
  int c, log_fd = -1;
  while ((c = getopt_long(argc, argv, "fVh", longopts, NULL)) != -1) {
    switch (c) {
    case 'f':
      log_fd = 2;
      break;
    case 'V':
      printf("kvshm-reaper %s\n", KVSHM_VERSION_STRING);
      return 0;
    case 'U':
      cfg.trust |= KVSHM_TRUST_UID;
      cfg.trust_uid = id_arg("--trust-uid", optarg);
      break;
    case 'G':
      cfg.trust |= KVSHM_TRUST_GID;
      cfg.trust_gid = id_arg("--trust-gid", optarg);
      break;
    default:
      usage();
    }
  }
  if (optind != argc - 1)
    usage();
  int rc = kvshm_reaper_run_config(argv[optind], &cfg, log_fd);
  if (rc && log_fd < 0)
    fprintf(stderr, "kvshm-reaper: %s: %s\n", kvshm_err_name(rc),
            kvshm_errdetail());
  return rc ? 1 : 0;
}
