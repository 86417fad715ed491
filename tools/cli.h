/*
 * cli.h - what the files of kvshm-cli share: the command table entry, exit
 * codes, error reporting, attaching to a cache, argument parsing, the two
 * text encodings (backslash escapes for people, percent escapes for dump
 * files) and a small JSON writer.  kvshm-cli uses only the public libshm API
 * (kvshm.h); this header must not include anything from libshm but that.
 */
#ifndef KVSHM_CLI_H
#define KVSHM_CLI_H

#include "kvshm.h"

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* Exit codes (documented in usage, the man page and the README). */
#define CLI_EXIT_OK 0       /* done */
#define CLI_EXIT_NOTFOUND 1 /* no such key or cache; verify found problems */
#define CLI_EXIT_USAGE 2    /* bad command line */
#define CLI_EXIT_ERROR 3    /* anything else went wrong */

/* One command: `kvshm-cli NAME ...`. */
struct cli_cmd {
  const char *name;
  int (*run)(int argc, char **argv); /* argv[0] is "kvshm-cli NAME" */
  const char *args;                  /* synopsis after the name */
  const char *summary;               /* one line for the command list */
  const char *help;                  /* options and details, for -h */
};

extern const struct cli_cmd cli_cmd_ls, cli_cmd_stats, cli_cmd_top;
extern const struct cli_cmd cli_cmd_get, cli_cmd_set, cli_cmd_del, cli_cmd_incr,
    cli_cmd_keys;
extern const struct cli_cmd cli_cmd_dump, cli_cmd_load;
extern const struct cli_cmd cli_cmd_verify, cli_cmd_repair, cli_cmd_header,
    cli_cmd_flush, cli_cmd_clear, cli_cmd_destroy;

/* Only the trust fields of the global --trust-uid / --trust-gid options:
 * passed to every kvshm_open. */
extern kvshm_config cli_trust;

/* The command being run (for messages and usage). */
extern const struct cli_cmd *cli_cur;

/* ---- messages and exit codes (cli_util.c) ---- */

/* Print "kvshm-cli CMD: message" to stderr. */
void cli_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print a usage error and the command's synopsis; returns CLI_EXIT_USAGE. */
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The command takes exactly one operand, NAME, after its options: put it in
 * *name (may be NULL) and return 0, or print usage and return non-zero. */
int cli_one_name(int argc, char **argv, const char **name);
/*
 * The options and operand of a command that takes one flag (--LONGNAME or
 * -SHORT, setting *flag) besides -h, and then NAME.  Returns true to go
 * on, or false with *exit_code set (help printed, or a usage error).
 */
bool cli_flag_and_name(int argc, char **argv, const char *longname,
                       int shortc, bool *flag, const char **name,
                       int *exit_code);
/* Print the command's full help to stdout; returns CLI_EXIT_OK. */
int cli_help(void);
/* Print the command's help for -h, or a usage error for anything else getopt
 * returned; returns the exit code for the command to return. */
int cli_opt_default(int c);
/*
 * Report a library error: "kvshm-cli CMD: what: detail" (the detail is
 * kvshm_errdetail() or kvshm_strerror()).  Returns the matching exit code.
 */
int cli_fail(int rc, const char *what, ...)
    __attribute__((format(printf, 2, 3)));
/* The exit code for a library status. */
int cli_exit_code(int rc);
/* Parse the command's options with getopt_long ("+" is never used, so
 * options may follow the operands; "--" ends them). */
int cli_getopt(int argc, char **argv, const char *shortopts,
               const struct option *longopts);

/* ---- attaching (cli_util.c) ---- */

/* Options of the commands that may create a cache (set, incr, load), and
 * what cli_open_rw created, for cli_create_undo. */
struct cli_create {
  bool create;
  kvshm_config cfg;
  bool created;         /* the segment was missing and this open made it */
  unsigned sqlite_made; /* SQLite files it made (bits, see cli_util.c) */
  dev_t dev;            /* the segment file that was made */
  ino_t ino;
};
/* clang-format off */
#define CLI_CREATE_LONGOPTS                                                    \
  {"create", no_argument, NULL, 0x100},                                        \
  {"memory", required_argument, NULL, 0x101},                                  \
  {"slot-size", required_argument, NULL, 0x102},                               \
  {"stripes", required_argument, NULL, 0x103},                                 \
  {"sqlite", required_argument, NULL, 0x104},                                  \
  {"default-ttl", required_argument, NULL, 0x105}
/* clang-format on */
#define CLI_CREATE_HELP                                                        \
  "      --create           create the cache if it is missing (removed\n"      \
  "                         again if the command fails), with:\n"              \
  "      --memory SIZE      its size: 64mb, 1g, ... (default 32mb)\n"          \
  "      --slot-size BYTES  its slot size, a multiple of 8 (default 160)\n"    \
  "      --stripes N        its lock stripes, a power of two\n"                \
  "      --sqlite PATH      its SQLite file (the second tier)\n"               \
  "      --default-ttl TTL  its TTL for entries set without one\n"
/* Handle one of the CLI_CREATE_LONGOPTS options: 1 if it was one, 0 if not,
 * or -CLI_EXIT_USAGE after printing why the value is bad. */
int cli_create_opt(struct cli_create *co, int c, const char *arg);

/* Attach read-only (KVSHM_RDONLY | KVSHM_NOREAPER).  On failure prints why
 * and returns the exit code; 0 on success. */
int cli_open_ro(const char *name, kvshm **out);
/* Attach for writing without ever creating the cache by accident
 * (KVSHM_NOCREATE | KVSHM_NOREAPER), unless co->create; then co->created
 * says whether this call made it.  co is NULL for the commands that cannot
 * create a cache. */
int cli_open_rw(const char *name, struct cli_create *co, kvshm **out);
/*
 * After a command failed: if cli_open_rw created the cache (co->created),
 * remove it again, and the SQLite file it created, so that a failed command
 * leaves nothing behind.  Call with the cache closed.  Keeps it if another
 * process has it mapped or it is no longer the segment that was made.
 * Never touches a cache that existed before.
 */
void cli_create_undo(const char *name, struct cli_create *co);
/* Say why kvshm_open failed; returns the exit code. */
int cli_open_failed(const char *name, int rc, bool can_create);
/* "/dev/shm/kvshm.NAME". */
void cli_segment_path(const char *name, char *buf, size_t n);

/* ---- parsing (cli_util.c) ---- */

/* Sizes: "65536", "64k", "64mb", "1g", "2GiB" (k/m/g/t are powers of 1024). */
int cli_parse_size(const char *s, uint64_t *out);
/* Durations in ms: "1500", "1500ms", "30s", "5m", "2h", "1d"; "0" = never. */
int cli_parse_ms(const char *s, uint64_t *out);
/* Unsigned decimal with an upper bound. */
int cli_parse_u64(const char *s, uint64_t max, uint64_t *out);
int cli_parse_i64(const char *s, int64_t *out);

/* ---- encodings (cli_util.c) ---- */

/*
 * Backslash escapes, for people: printable ASCII and valid UTF-8 as is;
 * \\ \n \r \t and \xNN for every other byte.  cli_unescape reverses it (and
 * accepts \0 and \e); it returns 0, or -1 on a malformed escape.
 */
void cli_escape(FILE *f, const void *data, size_t len);
int cli_unescape(const char *s, unsigned char **out, size_t *outlen);
/*
 * Percent escapes, for dump files: bytes 0x21..0x7e but '%' and '#' as is,
 * every other byte as %XX (upper-case hex; '#' is escaped so that no entry
 * line starts like a comment).  cli_pct_decode decodes len bytes of s
 * in place into out (at most len bytes); returns 0 or -1 if malformed.
 */
void cli_pct_encode(FILE *f, const void *data, size_t len);
int cli_pct_decode(const char *s, size_t len, unsigned char *out,
                   size_t *outlen);

/* Read a whole file ("-" = stdin) into a malloc'ed buffer; 0 or -errno. */
int cli_read_all(const char *path, unsigned char **out, size_t *outlen);

/* ---- formatting (cli_util.c) ---- */

/* "32.0 MiB", "512 B" */
const char *cli_fmt_bytes(uint64_t n, char *buf, size_t sz);
/* "850 ms", "3.2 s", "5m 03s", "2h 05m", "3d 04h" */
const char *cli_fmt_ms(uint64_t ms, char *buf, size_t sz);
/* "2024-05-01 12:00:00" (local time) */
const char *cli_fmt_time(uint64_t epoch_ms, char *buf, size_t sz);
uint64_t cli_now_ms(void);

/* ---- JSON writer (cli_util.c) ---- */

struct cli_json {
  FILE *f;
  int depth;
  bool pretty;
  bool first[16]; /* nothing written yet at this depth */
};
void cli_json_init(struct cli_json *j, FILE *f, bool pretty);
/* key is NULL inside arrays and for the top-level value. */
void cli_json_obj(struct cli_json *j, const char *key);
void cli_json_arr(struct cli_json *j, const char *key);
void cli_json_end(struct cli_json *j, char close);
void cli_json_u64(struct cli_json *j, const char *key, uint64_t v);
void cli_json_i64(struct cli_json *j, const char *key, int64_t v);
void cli_json_dbl(struct cli_json *j, const char *key, double v, int prec);
void cli_json_str(struct cli_json *j, const char *key, const char *s);
void cli_json_bytes(struct cli_json *j, const char *key, const void *s,
                    size_t len);
void cli_json_bool(struct cli_json *j, const char *key, bool v);
void cli_json_null(struct cli_json *j, const char *key);

/* ---- processes (cli_util.c) ---- */

/*
 * Count, for each of n segment files (by inode), the processes that have it
 * mapped (as far as /proc lets us see), skipping this process.
 */
void cli_count_attached(const ino_t *inodes, int n, int *counts);
/* Processes that have /dev/shm/kvshm.NAME mapped, or -1 if it is missing. */
int cli_attached(const char *name);

#endif /* KVSHM_CLI_H */
