/*
 * check_security.c - what another local user can do to a cache's files,
 * and what a damaged SQLite file does to the next segment (issue 9):
 *   - under umask 022 the SQLite file, its -wal and -shm and the reaper's
 *     log get the cache's mode, never 0644;
 *   - a symlink planted at the SQLite file, its -wal or -shm, the reaper's
 *     log or its pause ack file is refused or left alone, never followed;
 *   - files of another uid are KVSHM_EOWNER unless trusted, and a reaper
 *     (and its replacement) trusts what the process that started it trusts;
 *   - a setuid program ignores the KVSHM_REAPER* environment (AT_SECURE);
 *   - a SQLite file damaged while no segment used it is refused by the next
 *     segment (KVSHM_EBADDB) and left byte for byte as it was; damage inside
 *     a value's bytes is not detected (the README says so).
 * The tests with another user need root: they create the system user
 * kvshm-test-other (once; reused after) and print why they skip otherwise.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define OTHER_USER TU_OTHER_USER
#define SKIPPED_NOT_SECURE 77 /* setuid child: the kernel gave no AT_SECURE */

static char dir[TU_DIR_SIZE];
/* A file in dir (a path made from one of these gets TU_PATH_SIZE). */
#define FILE_SIZE (TU_DIR_SIZE + 64)

static void setup(void) {
  tu_dir_make(dir, "sec");
}

static void teardown(void) {
  tu_dir_remove(dir);
}

/* "<dir>/<file>" in buf. */
static const char *in_dir(char *buf, size_t n, const char *file) {
  snprintf(buf, n, "%s/%s", dir, file);
  return buf;
}

static void write_file(const char *path, const void *data, size_t n) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ck_assert_msg(fd >= 0, "create %s: %s", path, strerror(errno));
  ck_assert_int_eq(write(fd, data, n), (ssize_t)n);
  close(fd);
}

/* The whole file in a malloc'ed buffer (*n bytes); NULL if it is missing. */
static unsigned char *read_file(const char *path, size_t *n) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return NULL;
  struct stat sb;
  ck_assert_int_eq(fstat(fd, &sb), 0);
  unsigned char *buf = malloc((size_t)sb.st_size + 1);
  ck_assert_ptr_nonnull(buf);
  ck_assert_int_eq(pread(fd, buf, (size_t)sb.st_size, 0), sb.st_size);
  close(fd);
  *n = (size_t)sb.st_size;
  buf[*n] = 0;
  return buf;
}

static void assert_content(const char *path, const char *want) {
  size_t n = 0;
  unsigned char *got = read_file(path, &n);
  ck_assert_msg(got != NULL, "%s is gone", path);
  ck_assert_msg(n == strlen(want) && memcmp(got, want, n) == 0,
                "%s was changed: now %zu bytes '%.60s'", path, n, got);
  free(got);
}

static void assert_symlink(const char *path) {
  struct stat sb;
  ck_assert_msg(lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode),
                "%s is no longer the planted symlink", path);
}

static void sqlite_config(kvshm_config *c, const char *db) {
  tu_config(c, 1u << 20, 0, 1);
  c->sqlite_path = db;
}

static void wait_clean(kvshm *kv, unsigned timeout_ms) {
  uint64_t end = tu_mono_ms() + timeout_ms;
  while (tu_stats(kv).dirty && tu_mono_ms() < end)
    tu_sleep_ms(20);
  ck_assert_msg(tu_stats(kv).dirty == 0,
                "the reaper wrote nothing behind in %u ms", timeout_ms);
}

/* Close, destroy the cache, and wait for its reaper to be gone (so that
 * nothing writes into the test's directory afterwards). */
static void close_and_destroy(kvshm *kv, const char *name,
                              const kvshm_config *c) {
  pid_t reaper = (pid_t)tu_stats(kv).reaper_pid;
  kvshm_close(kv);
  tu_assert_rc(kvshm_unlink_config(name, c), KVSHM_OK);
  uint64_t end = tu_mono_ms() + 10000;
  while (reaper > 0 && kill(reaper, 0) == 0) {
    ck_assert_msg(tu_mono_ms() < end, "reaper %d did not exit", (int)reaper);
    tu_sleep_ms(20);
  }
}

/* A store file with n keys, written, closed and left by its segment. */
static void make_store(const char *db, int n) {
  char name[TU_NAME_SIZE], k[32], v[128];
  kvshm_config c;
  sqlite_config(&c, db);
  kvshm *kv = tu_open(tu_name(name), &c);
  for (int i = 0; i < n; i++) {
    int kl = snprintf(k, sizeof k, "key-%05d", i);
    int vl = snprintf(v, sizeof v, "value-%05d-%080d", i, i);
    tu_assert_rc(kvshm_set(kv, k, (size_t)kl, v, (size_t)vl, 0, 0, 0),
                 KVSHM_OK);
  }
  tu_assert_rc(kvshm_flush(kv), KVSHM_OK);
  kvshm_close(kv); /* the last connection: the WAL goes into the file */
  tu_assert_rc(kvshm_unlink(name), KVSHM_OK);
}

/* ---- modes under umask 022 ----------------------------------------------- */

static void assert_modes(const char *db, unsigned want) {
  static const char *const suffix[] = {"", "-wal", "-shm", ".reaper.log"};
  for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
    char p[TU_PATH_SIZE];
    struct stat sb;
    snprintf(p, sizeof p, "%s%s", db, suffix[i]);
    ck_assert_msg(lstat(p, &sb) == 0, "%s is missing", p);
    ck_assert_msg((sb.st_mode & 0777) == want,
                  "%s has mode %03o; the cache's is %03o", p,
                  (unsigned)sb.st_mode & 0777, want);
  }
}

/* A umask of 022 would make every new file 0644: readable by every local
 * user, the cache's contents included. */
START_TEST(test_modes_under_umask_022) {
  umask(022);
  static const unsigned modes[] = {0, 0640}; /* 0: the default, 0600 */
  for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
    char name[TU_NAME_SIZE], db[FILE_SIZE], file[32];
    snprintf(file, sizeof file, "mode-%o.db", modes[i]);
    kvshm_config c;
    sqlite_config(&c, in_dir(db, sizeof db, file));
    c.mode = modes[i];
    kvshm *kv = NULL;
    tu_assert_rc(kvshm_open(tu_name(name), &c, 0, &kv), KVSHM_OK);
    tu_set_str(kv, "k", "v");
    wait_clean(kv, 10000); /* the reaper runs: its log exists */
    /* This process's own connection: -wal and -shm exist while it is open,
     * and were made by SQLite from the main file's mode. */
    tu_assert_rc(kvshm_flush(kv), KVSHM_OK);
    assert_modes(db, modes[i] ? modes[i] : 0600);
    close_and_destroy(kv, name, &c);
  }
}
END_TEST

/* ---- symlinks --------------------------------------------------------------
 */

START_TEST(test_sqlite_symlinks_refused) {
  char victim[FILE_SIZE], link[TU_PATH_SIZE], missing[FILE_SIZE], db[FILE_SIZE],
      name[TU_NAME_SIZE];
  write_file(in_dir(victim, sizeof victim, "victim"), "precious\n", 9);
  in_dir(missing, sizeof missing, "missing");
  kvshm_config c;
  kvshm *kv = NULL;

  /* At the SQLite path: to an existing file, and to one not there yet. */
  ck_assert_int_eq(symlink(victim, in_dir(link, sizeof link, "link.db")), 0);
  sqlite_config(&c, link);
  tu_assert_rc(kvshm_open(tu_name(name), &c, KVSHM_NOREAPER, &kv),
               KVSHM_EOWNER);
  ck_assert_ptr_null(kv);
  ck_assert_msg(strstr(kvshm_errdetail(), "symbolic link"), "%s",
                kvshm_errdetail());
  assert_content(victim, "precious\n");
  assert_symlink(link);
  ck_assert_int_eq(symlink(missing, in_dir(link, sizeof link, "dangling.db")),
                   0);
  sqlite_config(&c, link);
  tu_assert_rc(kvshm_open(tu_name(name), &c, KVSHM_NOREAPER, &kv),
               KVSHM_EOWNER);
  ck_assert_msg(access(missing, F_OK) != 0, "the link was followed");

  /* At -wal and -shm beside a real store. */
  make_store(in_dir(db, sizeof db, "real.db"), 10);
  sqlite_config(&c, db);
  static const char *const side[] = {"-wal", "-shm"};
  for (size_t i = 0; i < 2; i++) {
    snprintf(link, sizeof link, "%s%s", db, side[i]);
    ck_assert_int_eq(symlink(victim, link), 0);
    tu_assert_rc(kvshm_open(tu_name(name), &c, KVSHM_NOREAPER, &kv),
                 KVSHM_EOWNER);
    ck_assert_msg(strstr(kvshm_errdetail(), side[i]), "%s", kvshm_errdetail());
    assert_content(victim, "precious\n");
    assert_symlink(link);
    ck_assert_int_eq(unlink(link), 0);
  }
  /* The links, and nothing else, were the reason. */
  kv = tu_open(tu_name(name), &c);
  kvshm_close(kv);
}
END_TEST

START_TEST(test_reaper_log_symlink_not_followed) {
  char victim[FILE_SIZE], link[TU_PATH_SIZE], missing[FILE_SIZE], db[FILE_SIZE],
      name[TU_NAME_SIZE];
  write_file(in_dir(victim, sizeof victim, "victim"), "precious\n", 9);
  kvshm_config c;
  kvshm *kv = NULL;

  /* The default log, <sqlite file>.reaper.log, to an existing file. */
  sqlite_config(&c, in_dir(db, sizeof db, "logged.db"));
  snprintf(link, sizeof link, "%s.reaper.log", db);
  ck_assert_int_eq(symlink(victim, link), 0);
  tu_assert_rc(kvshm_open(tu_name(name), &c, 0, &kv), KVSHM_OK);
  tu_set_str(kv, "k", "v");
  wait_clean(kv, 10000); /* the reaper runs, without a log */
  close_and_destroy(kv, name, &c);
  assert_content(victim, "precious\n");
  assert_symlink(link);

  /* $KVSHM_REAPER_LOG, to a file not there yet. */
  in_dir(missing, sizeof missing, "missing");
  ck_assert_int_eq(symlink(missing, in_dir(link, sizeof link, "env.log")), 0);
  setenv("KVSHM_REAPER_LOG", link, 1);
  sqlite_config(&c, in_dir(db, sizeof db, "logged2.db"));
  tu_assert_rc(kvshm_open(tu_name(name), &c, 0, &kv), KVSHM_OK);
  unsetenv("KVSHM_REAPER_LOG");
  tu_set_str(kv, "k", "v");
  wait_clean(kv, 10000);
  close_and_destroy(kv, name, &c);
  ck_assert_msg(access(missing, F_OK) != 0, "the reaper followed the link");
  assert_symlink(link);
}
END_TEST

START_TEST(test_pause_ack_symlink_not_followed) {
  char pause[FILE_SIZE], ack[TU_PATH_SIZE], missing[FILE_SIZE],
      name[TU_NAME_SIZE];
  write_file(in_dir(pause, sizeof pause, "pause2"), "", 0);
  snprintf(ack, sizeof ack, "%s.ack", pause);
  ck_assert_int_eq(symlink(in_dir(missing, sizeof missing, "missing"), ack), 0);
  setenv("KVSHM_REAPER_PAUSE", pause, 1);
  kvshm_config c;
  tu_config(&c, 1u << 20, 0, 1); /* memory only: its reaper pauses too */
  kvshm *kv = NULL;
  tu_assert_rc(kvshm_open(tu_name(name), &c, 0, &kv), KVSHM_OK);
  /* Three heartbeats: the paused loop went past paused() twice. */
  uint64_t seen = 0, end = tu_mono_ms() + 10000;
  for (int beats = 0; beats < 3;) {
    ck_assert_msg(tu_mono_ms() < end, "the reaper did not tick");
    uint64_t hb = tu_stats(kv).reaper_heartbeat_ms;
    if (hb && hb != seen && tu_stats(kv).reaper_alive) {
      seen = hb;
      beats++;
    }
    tu_sleep_ms(20);
  }
  ck_assert_msg(access(missing, F_OK) != 0, "the reaper followed the link");
  assert_symlink(ack);
  unlink(pause);
  close_and_destroy(kv, name, &c);
}
END_TEST

/* ---- another user's files -------------------------------------------------
 */

static bool other_user(uid_t *uid, gid_t *gid, const char *test) {
  return tu_other_user(uid, gid, "check_security", test);
}

START_TEST(test_other_owner_refused_unless_trusted) {
  uid_t ou;
  gid_t og;
  if (!other_user(&ou, &og, "test_other_owner_refused_unless_trusted"))
    return;
  char db[FILE_SIZE], wal[TU_PATH_SIZE], name[TU_NAME_SIZE], buf[128];
  make_store(in_dir(db, sizeof db, "theirs.db"), 10);
  ck_assert_int_eq(chown(db, ou, og), 0);
  kvshm_config c;
  sqlite_config(&c, db);
  kvshm *kv = NULL;
  tu_assert_rc(kvshm_open(tu_name(name), &c, KVSHM_NOREAPER, &kv),
               KVSHM_EOWNER);
  char want[64];
  snprintf(want, sizeof want, "belongs to uid %u", (unsigned)ou);
  ck_assert_msg(strstr(kvshm_errdetail(), want), "%s", kvshm_errdetail());

  /* Trusted by uid, by group: opened, and its rows are there. */
  c.trust = KVSHM_TRUST_UID;
  c.trust_uid = ou;
  kv = tu_open(tu_name(name), &c);
  size_t len;
  tu_assert_rc(tu_get(kv, "key-00003", 9, buf, sizeof buf, &len), KVSHM_OK);
  kvshm_close(kv);
  tu_assert_rc(kvshm_unlink_config(name, &c), KVSHM_OK);
  c.trust = KVSHM_TRUST_GID;
  c.trust_uid = 0;
  c.trust_gid = og;
  kv = tu_open(tu_name(name), &c);
  kvshm_close(kv);
  tu_assert_rc(kvshm_unlink_config(name, &c), KVSHM_OK);
  c.trust = KVSHM_TRUST_UID; /* trusting someone else does not help */
  c.trust_uid = ou + 1;
  tu_assert_rc(kvshm_open(tu_name(name), &c, KVSHM_NOREAPER, &kv),
               KVSHM_EOWNER);

  /* Our file, their -wal beside it. */
  ck_assert_int_eq(chown(db, 0, 0), 0);
  snprintf(wal, sizeof wal, "%s-wal", db);
  write_file(wal, "", 0);
  ck_assert_int_eq(chown(wal, ou, og), 0);
  c.trust = 0;
  tu_assert_rc(kvshm_open(tu_name(name), &c, KVSHM_NOREAPER, &kv),
               KVSHM_EOWNER);
  ck_assert_msg(strstr(kvshm_errdetail(), "-wal"), "%s", kvshm_errdetail());
  c.trust = KVSHM_TRUST_UID;
  c.trust_uid = ou;
  kv = tu_open(tu_name(name), &c);
  kvshm_close(kv);
}
END_TEST

/* The reaper started by a process that trusts the file's owner must trust
 * it too, or nothing is written behind; so must the one a watchdog starts
 * when the first is killed. */
START_TEST(test_reaper_trusts_like_its_starter) {
  uid_t ou;
  gid_t og;
  if (!other_user(&ou, &og, "test_reaper_trusts_like_its_starter"))
    return;
  char db[FILE_SIZE], name[TU_NAME_SIZE], k[16];
  make_store(in_dir(db, sizeof db, "shared.db"), 10);
  ck_assert_int_eq(chown(db, ou, og), 0);
  kvshm_config c;
  sqlite_config(&c, db);
  c.trust = KVSHM_TRUST_UID;
  c.trust_uid = ou;
  kvshm *kv = NULL;
  tu_assert_rc(kvshm_open(tu_name(name), &c, 0, &kv), KVSHM_OK);
  for (int i = 0; i < 20; i++) {
    snprintf(k, sizeof k, "a%d", i);
    tu_set_str(kv, k, "v");
  }
  wait_clean(kv, 10000);
  pid_t first = (pid_t)tu_stats(kv).reaper_pid;
  ck_assert_int_gt(first, 0);
  ck_assert_int_eq(kill(first, SIGKILL), 0);
  uint64_t end = tu_mono_ms() + 10000;
  for (;;) {
    kvshm_stats st = tu_stats(kv);
    if (st.reaper_alive && st.reaper_pid && (pid_t)st.reaper_pid != first)
      break;
    ck_assert_msg(tu_mono_ms() < end, "no new reaper after a kill");
    tu_sleep_ms(20);
  }
  for (int i = 0; i < 20; i++) {
    snprintf(k, sizeof k, "b%d", i);
    tu_set_str(kv, k, "v");
  }
  wait_clean(kv, 10000);
  ck_assert_int_eq(tu_sql_count(db, "b"), 20);
  close_and_destroy(kv, name, &c);
}
END_TEST

/* ---- setuid programs and the environment ----------------------------------
 */

/*
 * Run as a setuid program (this test binary, copied and made setuid to the
 * other user): open a SQLite cache with reapers on and check that one
 * writes behind, though the environment says KVSHM_REAPER=off and names
 * another reaper program, log and pause file.  Prints the reaper's pid.
 */
static void child_exit(int code) {
  fflush(stdout);
  _exit(code); /* no leak check: LeakSanitizer cannot run setuid */
}

static int setuid_child(const char *name, const char *db) {
  if (!getauxval(AT_SECURE)) {
    printf("no AT_SECURE\n");
    child_exit(SKIPPED_NOT_SECURE);
  }
  kvshm_config c;
  sqlite_config(&c, db);
  kvshm *kv = NULL;
  int rc = kvshm_open(name, &c, 0, &kv);
  if (rc) {
    printf("kvshm_open: %s: %s\n", kvshm_err_name(rc), kvshm_errdetail());
    child_exit(1);
  }
  if (kvshm_set(kv, "k", 1, "v", 1, 0, 0, 0) != KVSHM_OK)
    child_exit(2);
  kvshm_stats st = {0};
  for (int i = 0; i < 500; i++) { /* 10 s */
    kvshm_stats_get(kv, &st);
    if (st.dirty == 0 && st.reaper_pid)
      break;
    tu_sleep_ms(20);
  }
  printf("reaper %u dirty %llu\n", st.reaper_pid, (unsigned long long)st.dirty);
  kvshm_close(kv);
  kvshm_unlink(name);
  child_exit(st.dirty == 0 && st.reaper_pid ? 0 : 3);
  return 0;
}

static void copy_file(const char *from, const char *to, mode_t mode) {
  size_t n = 0;
  unsigned char *data = read_file(from, &n);
  ck_assert_msg(data != NULL, "cannot read %s", from);
  write_file(to, data, n);
  free(data);
  ck_assert_int_eq(chmod(to, mode), 0);
}

START_TEST(test_setuid_ignores_environment) {
  uid_t ou;
  gid_t og;
  if (!other_user(&ou, &og, "test_setuid_ignores_environment"))
    return;
  char sub[FILE_SIZE], prog[FILE_SIZE], evil[FILE_SIZE], ran[TU_PATH_SIZE],
      log[TU_PATH_SIZE], pause[TU_PATH_SIZE], db[TU_PATH_SIZE],
      reaper_log[TU_PATH_SIZE + 16], name[TU_NAME_SIZE];
  /* The other user may enter the test's directory and owns sub/. */
  ck_assert_int_eq(chmod(dir, 0755), 0);
  in_dir(sub, sizeof sub, "sub");
  ck_assert_int_eq(mkdir(sub, 0700), 0);
  ck_assert_int_eq(chown(sub, ou, og), 0);
  copy_file("/proc/self/exe", in_dir(prog, sizeof prog, "prog"), 0755);
  ck_assert_int_eq(chown(prog, ou, og), 0);
  ck_assert_int_eq(chmod(prog, 04755), 0); /* after chown: it clears it */
  /* What the environment asks for, all usable by the other user. */
  snprintf(ran, sizeof ran, "%s/evil-ran", sub);
  char script[TU_PATH_SIZE + 32];
  snprintf(script, sizeof script, "#!/bin/sh\ntouch %s\n", ran);
  write_file(in_dir(evil, sizeof evil, "evil-reaper"), script, strlen(script));
  ck_assert_int_eq(chmod(evil, 0755), 0);
  snprintf(log, sizeof log, "%s/evil.log", sub);
  write_file(log, "untouched\n", 10);
  ck_assert_int_eq(chown(log, ou, og), 0);
  snprintf(pause, sizeof pause, "%s/evil-pause", sub);
  write_file(pause, "", 0);
  ck_assert_int_eq(chown(pause, ou, og), 0);
  snprintf(db, sizeof db, "%s/s.db", sub);

  char e_reaper[] = "KVSHM_REAPER=off", e_path[TU_PATH_SIZE + 32],
       e_log[TU_PATH_SIZE + 32], e_pause[TU_PATH_SIZE + 32],
       e_bin[] = "PATH=/usr/bin:/bin";
  snprintf(e_path, sizeof e_path, "KVSHM_REAPER_PATH=%s", evil);
  snprintf(e_log, sizeof e_log, "KVSHM_REAPER_LOG=%s", log);
  snprintf(e_pause, sizeof e_pause, "KVSHM_REAPER_PAUSE=%s", pause);
  char *envp[] = {e_reaper, e_path, e_log, e_pause, e_bin, NULL};
  char *argv[] = {prog, (char *)"--setuid-child", (char *)tu_name(name), db,
                  NULL};
  int out[2];
  ck_assert_int_eq(pipe(out), 0);
  pid_t pid = tu_fork();
  if (pid == 0) {
    dup2(out[1], 1);
    execve(prog, argv, envp);
    _exit(127);
  }
  close(out[1]);
  char said[256] = "";
  ssize_t n, got = 0;
  while ((n = read(out[0], said + got, sizeof said - 1 - (size_t)got)) > 0)
    got += n;
  said[got] = 0;
  close(out[0]);
  int status;
  ck_assert_int_eq(tu_wait(pid, 30000, &status), 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == SKIPPED_NOT_SECURE) {
    printf("check_security: test_setuid_ignores_environment skipped: the "
           "setuid bit gave no AT_SECURE here (nosuid mount?)\n");
    return;
  }
  char how[64];
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "the setuid program %s: %s",
                tu_status_str(status, how, sizeof how), said);
  ck_assert_msg(access(ran, F_OK) != 0, "KVSHM_REAPER_PATH was obeyed");
  assert_content(log, "untouched\n");
  snprintf(reaper_log, sizeof reaper_log, "%s.reaper.log", db);
  ck_assert_msg(access(reaper_log, F_OK) == 0,
                "the real reaper did not log where it should");
  unsigned reaper = 0;
  ck_assert_int_eq(sscanf(said, "reaper %u", &reaper), 1);
  uint64_t end = tu_mono_ms() + 10000;
  while (kill((pid_t)reaper, 0) == 0 && tu_mono_ms() < end)
    tu_sleep_ms(20);
}
END_TEST

/* ---- damage ---------------------------------------------------------------
 */

/* Zero a page of kvshm_entries below its root (a leaf or an inner page in
 * use: the root's right-most child), as a lost disk block would. */
static void damage_entries_page(const char *db) {
  sqlite3 *s;
  sqlite3_stmt *q;
  ck_assert_int_eq(sqlite3_open_v2(db, &s, SQLITE_OPEN_READONLY, NULL),
                   SQLITE_OK);
  ck_assert_int_eq(sqlite3_prepare_v2(s,
                                      "SELECT rootpage, (SELECT page_size "
                                      "FROM pragma_page_size) FROM "
                                      "sqlite_master WHERE name = "
                                      "'kvshm_entries'",
                                      -1, &q, NULL),
                   SQLITE_OK);
  ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
  int64_t root = sqlite3_column_int64(q, 0), psize = sqlite3_column_int64(q, 1);
  sqlite3_finalize(q);
  sqlite3_close(s);
  int fd = open(db, O_RDWR | O_CLOEXEC);
  ck_assert_int_ge(fd, 0);
  unsigned char hdr[12];
  ck_assert_int_eq(pread(fd, hdr, sizeof hdr, (root - 1) * psize), 12);
  ck_assert_msg(hdr[0] == 0x02, "root page type %u: too few rows", hdr[0]);
  int64_t child = (int64_t)hdr[8] << 24 | hdr[9] << 16 | hdr[10] << 8 | hdr[11];
  ck_assert_int_gt(child, 1);
  unsigned char *zero = calloc(1, (size_t)psize);
  ck_assert_int_eq(pwrite(fd, zero, (size_t)psize, (child - 1) * psize), psize);
  free(zero);
  close(fd);
}

static void assert_damage_refused(const char *db) {
  char name[TU_NAME_SIZE];
  kvshm_config c;
  sqlite_config(&c, db);
  kvshm *kv = NULL;
  tu_assert_rc(kvshm_open(tu_name(name), &c, KVSHM_NOREAPER, &kv),
               KVSHM_EBADDB);
  ck_assert_ptr_null(kv);
  ck_assert_msg(strstr(kvshm_errdetail(), "damaged") &&
                    strstr(kvshm_errdetail(), db),
                "%s", kvshm_errdetail());
  /* That segment was not given the file: opening it again refuses too. */
  tu_assert_rc(kvshm_open(name, &c, KVSHM_NOREAPER, &kv), KVSHM_EBADDB);
}

/* Damage db's entries, and check that it is refused and left as it was. */
static void damage_refused_untouched(const char *db) {
  damage_entries_page(db);
  size_t n0, n1;
  unsigned char *before = read_file(db, &n0);
  assert_damage_refused(db);
  unsigned char *after = read_file(db, &n1);
  ck_assert(n0 == n1 && memcmp(before, after, n0) == 0);
  free(before);
  free(after);
}

/* A file damaged while no segment used it: the next segment refuses it and
 * writes nothing to it (no WAL is left beside it either). */
START_TEST(test_damaged_file_refused_untouched) {
  char db[FILE_SIZE], wal[TU_PATH_SIZE];
  make_store(in_dir(db, sizeof db, "damaged.db"), 2000);
  damage_refused_untouched(db);
  snprintf(wal, sizeof wal, "%s-wal", db);
  ck_assert_int_ne(access(wal, F_OK), 0);
}
END_TEST

/* A damaged file of the old format: checked before it is converted, so the
 * conversion never writes into it. */
START_TEST(test_damaged_old_format_not_converted) {
  char db[FILE_SIZE];
  make_store(in_dir(db, sizeof db, "old.db"), 2000);
  sqlite3 *s;
  ck_assert_int_eq(sqlite3_open(db, &s), SQLITE_OK);
  ck_assert_int_eq(sqlite3_exec(s, "PRAGMA user_version=1", NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(s);
  damage_refused_untouched(db);
}
END_TEST

/* The same with committed frames in the WAL (a crash left them): they are
 * not checkpointed into the damaged file, and stay where they were. */
START_TEST(test_damaged_file_wal_kept) {
  char db[FILE_SIZE], wal[TU_PATH_SIZE];
  make_store(in_dir(db, sizeof db, "damaged.db"), 2000);
  sqlite3 *s;
  ck_assert_int_eq(sqlite3_open(db, &s), SQLITE_OK);
  ck_assert_int_eq(sqlite3_exec(s,
                                "PRAGMA wal_autocheckpoint=0; INSERT INTO "
                                "kvshm_meta VALUES ('check_security', 1)",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_db_config(s, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
  sqlite3_close(s);
  snprintf(wal, sizeof wal, "%s-wal", db);
  size_t w0, w1, n0, n1;
  unsigned char *wal_before = read_file(wal, &w0);
  ck_assert_msg(wal_before && w0 > 32, "no WAL frames to keep");
  damage_entries_page(db);
  unsigned char *before = read_file(db, &n0);
  assert_damage_refused(db);
  unsigned char *after = read_file(db, &n1);
  unsigned char *wal_after = read_file(wal, &w1);
  ck_assert_msg(n0 == n1 && memcmp(before, after, n0) == 0,
                "the damaged file was written");
  ck_assert_msg(wal_after && w0 == w1 && memcmp(wal_before, wal_after, w0) == 0,
                "the WAL was changed");
  free(before);
  free(after);
  free(wal_before);
  free(wal_after);
}
END_TEST

/* What quick_check cannot see: bytes of a value changed in place still make
 * a well-formed row.  The README says so; this pins it. */
START_TEST(test_value_damage_not_detected) {
  char db[FILE_SIZE], name[TU_NAME_SIZE], got[128];
  const char *val = "payload-AAAAAAAAAAAAAAAAAAAAAAAA";
  kvshm_config c;
  sqlite_config(&c, in_dir(db, sizeof db, "payload.db"));
  kvshm *kv = tu_open(tu_name(name), &c);
  tu_set_str(kv, "the-key", val);
  tu_assert_rc(kvshm_flush(kv), KVSHM_OK);
  kvshm_close(kv);
  tu_assert_rc(kvshm_unlink(name), KVSHM_OK);
  size_t n;
  unsigned char *file = read_file(db, &n);
  int changed = 0;
  for (size_t i = 0; i + strlen(val) <= n; i++)
    if (memcmp(file + i, val, strlen(val)) == 0) {
      memset(file + i + 8, 'B', 4); /* every copy (inner cells hold rows) */
      changed++;
    }
  ck_assert_int_gt(changed, 0);
  write_file(db, file, n);
  free(file);
  kv = tu_open(tu_name(name), &c);
  size_t len;
  tu_assert_rc(tu_get(kv, "the-key", 7, got, sizeof got, &len), KVSHM_OK);
  ck_assert(len == strlen(val) && memcmp(got, "payload-BBBBAAAA", 16) == 0);
  ck_assert_int_eq(tu_verify(kv), 0);
  kvshm_close(kv);
}
END_TEST

static Suite *security_suite(void) {
  Suite *s = suite_create("security");
  TCase *tc = tu_tcase("files", 120);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_modes_under_umask_022);
  tcase_add_test(tc, test_sqlite_symlinks_refused);
  tcase_add_test(tc, test_reaper_log_symlink_not_followed);
  tcase_add_test(tc, test_pause_ack_symlink_not_followed);
  tcase_add_test(tc, test_other_owner_refused_unless_trusted);
  tcase_add_test(tc, test_reaper_trusts_like_its_starter);
  tcase_add_test(tc, test_setuid_ignores_environment);
  tcase_add_test(tc, test_damaged_file_refused_untouched);
  tcase_add_test(tc, test_damaged_file_wal_kept);
  tcase_add_test(tc, test_damaged_old_format_not_converted);
  tcase_add_test(tc, test_value_damage_not_detected);
  suite_add_tcase(s, tc);
  return s;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "--setuid-child") == 0)
    return setuid_child(argv[2], argv[3]);
  Suite *s[] = {security_suite()};
  return tu_run_suites(s, 1);
}
