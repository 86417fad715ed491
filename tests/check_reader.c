/*
 * check_reader.c - a read-only attach needs only read permission (issue
 * 12): a process of another user, with read but not write permission on
 * the segment and the SQLite file, opens the cache KVSHM_RDONLY and reads
 * it without its locks (seqread.c), in each of the three modes.  Its
 * mapping is read-only, so any write to the segment would kill it with
 * SIGSEGV: the child exiting 0 is the proof that it wrote nothing.
 *
 *   reader_reads       gets (in memory, long keys, only in SQLite, expired,
 *                      deleted), has, get_many, stats; writes and walks
 *                      are KVSHM_ERDONLY with a message that says why
 *   reader_dead_holder a writer killed mid-write leaves its stripe busy:
 *                      the reader's get is KVSHM_ETIMEDOUT (it may not
 *                      repair), and works once a writer has repaired it
 *
 * Root only (it runs the reader as user kvshm-test-other): otherwise each
 * test prints why it is skipped.
 */
#include "testutil.h"

#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char dir[TU_DIR_SIZE];

static void setup(void) {
  tu_dir_make(dir, "reader");
  ck_assert_int_eq(chmod(dir, 0755), 0); /* the reader may enter it */
}

static void teardown(void) {
  tu_dir_remove(dir);
}

enum { MEMORY_ONLY, SQLITE_BACKED, PERSISTENT };

/* 256 KiB in the SQLite modes, so most keys live only in SQLite. */
static void mode_config(kvshm_config *c, int mode) {
  tu_config(c, mode == MEMORY_ONLY ? 4u << 20 : 256u << 10, 0, 4);
  c->sqlite_path = mode == MEMORY_ONLY ? NULL : tu_dir_file(dir, "r.db");
  c->persistent = mode == PERSISTENT;
  c->mode = 0644; /* others may read, not write */
}

/* In a child: become the other user, then open read-only, trusting root. */
static kvshm *reader_open(const char *name, int mode, uid_t uid, gid_t gid,
                          uint32_t lock_timeout_ms) {
  if (setgid(gid) || setuid(uid)) {
    perror("setuid");
    _exit(TU_CHILD_FAILED);
  }
  kvshm_config c;
  mode_config(&c, mode);
  c.trust = KVSHM_TRUST_UID;
  c.trust_uid = 0;
  c.lock_timeout_ms = lock_timeout_ms;
  kvshm *kv = NULL;
  TU_CHILD_RC(kvshm_open(name, &c, KVSHM_RDONLY, &kv), KVSHM_OK);
  return kv;
}

static kvshm *writer_open(const char *name, int mode) {
  kvshm_config c;
  mode_config(&c, mode);
  kvshm *kv = NULL;
  tu_assert_rc(kvshm_open(name, &c, 0, &kv), KVSHM_OK);
  return kv;
}

#define COLD 4000
static char long_key[400];

static void cold_key(char *k, int i) {
  snprintf(k, 32, "cold-%05d", i);
}

static void child_checks(kvshm *kv, int mode) {
  char buf[512], k[32];
  size_t len = 0;
  TU_CHILD_RC(kvshm_get(kv, "k1", 2, buf, sizeof buf, &len, NULL), KVSHM_OK);
  TU_CHILD_CHECK(len == 2 && memcmp(buf, "v1", 2) == 0);
  TU_CHILD_RC(
      kvshm_get(kv, long_key, sizeof long_key, buf, sizeof buf, &len, NULL),
      KVSHM_OK);
  TU_CHILD_CHECK(len == 4 && memcmp(buf, "long", 4) == 0);
  TU_CHILD_RC(kvshm_get(kv, "gone", 4, buf, sizeof buf, &len, NULL),
              KVSHM_ENOTFOUND);
  TU_CHILD_RC(kvshm_get(kv, "expired", 7, buf, sizeof buf, &len, NULL),
              KVSHM_ENOTFOUND);
  for (int i = 0; i < COLD; i++) { /* in the SQLite modes, mostly there */
    cold_key(k, i);
    TU_CHILD_RC(kvshm_get(kv, k, strlen(k), buf, sizeof buf, &len, NULL),
                KVSHM_OK);
    TU_CHILD_CHECK(len == strlen(k) && memcmp(buf, k, len) == 0);
  }
  TU_CHILD_RC(kvshm_get(kv, "k1", 2, buf, 1, &len, NULL), KVSHM_EBUFSIZE);
  TU_CHILD_RC(kvshm_has(kv, "k1", 2), KVSHM_OK);
  TU_CHILD_RC(kvshm_has(kv, "nope", 4), KVSHM_ENOTFOUND);
  kvshm_item items[3] = {{.key = "k1", .klen = 2},
                         {.key = "nope", .klen = 4},
                         {.key = "cold-00007", .klen = 10}};
  TU_CHILD_RC(kvshm_get_many(kv, items, 3, buf, sizeof buf), KVSHM_OK);
  TU_CHILD_CHECK(items[0].rc == KVSHM_OK && items[0].vlen == 2);
  TU_CHILD_CHECK(items[1].rc == KVSHM_ENOTFOUND);
  TU_CHILD_CHECK(items[2].rc == KVSHM_OK && items[2].vlen == 10);
  kvshm_stats st;
  TU_CHILD_RC(kvshm_stats_get(kv, &st), KVSHM_OK);
  TU_CHILD_CHECK(st.entries > 0);
  TU_CHILD_RC(kvshm_set(kv, "w", 1, "x", 1, 0, 0, 0), KVSHM_ERDONLY);
  TU_CHILD_RC(kvshm_del(kv, "k1", 2), KVSHM_ERDONLY);
  kvshm_iter *it = NULL;
  int rc = kvshm_iter_open(kv, NULL, 0,
                           mode == MEMORY_ONLY ? 0 : KVSHM_ITER_STORE, &it);
  if (rc == KVSHM_OK) {
    const void *ek, *ev;
    size_t ekl, evl;
    rc = kvshm_iter_next(it, &ek, &ekl, &ev, &evl, NULL, NULL);
    kvshm_iter_close(it);
  }
  TU_CHILD_RC(rc, KVSHM_ERDONLY);
  TU_CHILD_CHECK(strstr(kvshm_errdetail(), "without write permission"));
}

START_TEST(test_reader_reads) {
  uid_t ou;
  gid_t og;
  if (!tu_other_user(&ou, &og, "check_reader", "test_reader_reads"))
    return;
  char name[TU_NAME_SIZE], k[32];
  tu_name(name);
  memset(long_key, 'L', sizeof long_key);
  tu_gate gate; /* SQLite: fork before opening */
  tu_gate_init(&gate);
  pid_t pid = tu_fork();
  if (pid == 0) {
    tu_gate_wait(&gate);
    kvshm *kv = reader_open(name, _i, ou, og, 2000);
    child_checks(kv, _i);
    kvshm_close(kv);
    _exit(0);
  }
  kvshm *kv = writer_open(name, _i);
  for (int i = 0; i < COLD; i++) {
    cold_key(k, i);
    tu_set_str(kv, k, k);
  }
  tu_set_str(kv, "k1", "v1");
  tu_assert_rc(kvshm_set(kv, long_key, sizeof long_key, "long", 4, 0, 0, 0),
               KVSHM_OK);
  tu_set_str(kv, "gone", "soon");
  tu_assert_rc(kvshm_set(kv, "expired", 7, "x", 1, 0, 1, 0), KVSHM_OK);
  if (_i != MEMORY_ONLY)
    tu_assert_rc(kvshm_flush(kv), KVSHM_OK);
  tu_assert_rc(kvshm_del(kv, "gone", 4), KVSHM_OK);
  tu_sleep_ms(5);
  if (_i != MEMORY_ONLY) { /* many cold keys are only in SQLite */
    int in_memory = 0;
    for (int i = 0; i < COLD; i++) {
      cold_key(k, i);
      in_memory += kvshm_in_memory(kv, k, strlen(k)) == KVSHM_OK;
    }
    ck_assert_int_gt(COLD - in_memory, COLD / 4);
  }
  tu_gate_open(&gate, 1);
  tu_wait_ok(pid, 60000, "reader");
  ck_assert_int_eq(tu_verify(kv), 0);
  kvshm_close(kv);
  kvshm_unlink(name);
}
END_TEST

START_TEST(test_reader_dead_holder) {
  uid_t ou;
  gid_t og;
  if (!tu_other_user(&ou, &og, "check_reader", "test_reader_dead_holder"))
    return;
  char name[TU_NAME_SIZE], other[32];
  tu_name(name);
  tu_gate killer_go, reader_go, reader_again;
  tu_gate_init(&killer_go);
  pid_t killer = tu_fork();
  if (killer == 0) {
    tu_gate_wait(&killer_go);
    kvshm_config c;
    mode_config(&c, _i);
    kvshm *kv = NULL;
    TU_CHILD_RC(kvshm_open(name, &c, KVSHM_NOREAPER, &kv), KVSHM_OK);
    tu_stripe_neighbour(kv, "k", other);
    kvshm_test_set_hook(kv, tu_die_half_written, NULL);
    kvshm_set(kv, other, strlen(other), "dead", 4, 0, 0, 0);
    _exit(TU_CHILD_FAILED); /* the hook kills it first */
  }
  tu_gate_init(&reader_go);
  tu_gate_init(&reader_again);
  int timed_out[2];
  ck_assert_int_eq(pipe(timed_out), 0);
  pid_t reader = tu_fork();
  if (reader == 0) {
    close(killer_go.go[1]); /* or the killer's gate never opens */
    tu_gate_wait(&reader_go);
    kvshm *kv = reader_open(name, _i, ou, og, 300);
    char buf[8];
    size_t len = 0;
    uint64_t t0 = tu_mono_ms();
    TU_CHILD_RC(kvshm_get(kv, "k", 1, buf, sizeof buf, &len, NULL),
                KVSHM_ETIMEDOUT);
    TU_CHILD_CHECK(tu_mono_ms() - t0 >= 300);
    TU_CHILD_CHECK(strstr(kvshm_errdetail(), "stayed busy"));
    TU_CHILD_CHECK(write(timed_out[1], "x", 1) == 1);
    tu_gate_wait(&reader_again);
    TU_CHILD_RC(kvshm_get(kv, "k", 1, buf, sizeof buf, &len, NULL), KVSHM_OK);
    TU_CHILD_CHECK(len == 1 && buf[0] == 'v');
    kvshm_close(kv);
    _exit(0);
  }
  kvshm_config c;
  mode_config(&c, _i);
  kvshm *kv = NULL;
  tu_assert_rc(kvshm_open(name, &c, KVSHM_NOREAPER, &kv), KVSHM_OK);
  tu_set_str(kv, "k", "v");
  tu_gate_open(&killer_go, 1);
  int st;
  ck_assert_int_eq(tu_wait(killer, 20000, &st), 0);
  ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  tu_gate_open(&reader_go, 1);
  char x;
  ck_assert_int_eq(read(timed_out[0], &x, 1), 1);
  tu_assert_value(kv, "k", 1, "v", 1); /* a writer's get repairs it */
  tu_gate_open(&reader_again, 1);
  tu_wait_ok(reader, 20000, "reader");
  kvshm_close(kv);
  kvshm_unlink(name);
}
END_TEST

static Suite *reader_suite(void) {
  Suite *s = suite_create("reader");
  TCase *tc = tu_tcase("reader", 120);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_loop_test(tc, test_reader_reads, MEMORY_ONLY, PERSISTENT + 1);
  tcase_add_loop_test(tc, test_reader_dead_holder, MEMORY_ONLY, PERSISTENT + 1);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  Suite *s = reader_suite();
  return tu_run_suites(&s, 1);
}
