/*
 * kvshm-reaper - the background process of one cache: expiry, write-behind
 * to SQLite, eviction (libshm/reaper.c holds the logic).  Started by the
 * library when a cache is opened; may also be run by hand:
 *
 *   kvshm-reaper NAME     reap cache NAME until SIGTERM or it is destroyed
 *
 * Logs go to $KVSHM_REAPER_LOG, else <sqlite file>.reaper.log; run from a
 * terminal with -f, they go to stderr.
 */
#include "kvshm.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static void usage(void) {
  fprintf(stderr, "usage: kvshm-reaper [-f] [-V] NAME\n"
                  "  -f  log to stderr\n"
                  "  -V  print the version\n");
  exit(2);
}

int main(int argc, char **argv) {
  int c, log_fd = -1;
  while ((c = getopt(argc, argv, "fVh")) != -1) {
    switch (c) {
    case 'f':
      log_fd = 2;
      break;
    case 'V':
      printf("kvshm-reaper %s\n", KVSHM_VERSION_STRING);
      return 0;
    default:
      usage();
    }
  }
  if (optind != argc - 1)
    usage();
  int rc = kvshm_reaper_run(argv[optind], log_fd);
  if (rc && log_fd < 0)
    fprintf(stderr, "kvshm-reaper: %s: %s\n", kvshm_err_name(rc),
            kvshm_errdetail());
  return rc ? 1 : 0;
}
