/*
 * check_segment.c - tests for segment.c and errors.c: creating and attaching
 * to a segment, configuration defaults and validation, name rules, open
 * flags, file mode, creation races, creators killed mid-initialisation,
 * damaged headers, unlink, and the error-code tables.
 */
#include "testutil.h"

#include "internal.h"
#include "layout.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <sys/wait.h>

#define MIB (1024ull * 1024ull)

static uint64_t wall_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

static int open_rc(const char *name, const kvshm_config *cfg, unsigned flags) {
  kvshm *kv = (kvshm *)0x1;
  int rc = kvshm_open(name, cfg, flags, &kv);
  if (rc == KVSHM_OK)
    kvshm_close(kv);
  else
    ck_assert_msg(kv == NULL, "a failed open must set *out to NULL");
  return rc;
}

static mode_t file_mode(const char *name) {
  char path[TU_PATH_SIZE];
  struct stat sb;
  ck_assert_int_eq(stat(tu_shm_path(name, path), &sb), 0);
  return sb.st_mode & 07777;
}

/* ---- open and configuration ------------------------------------------- */

START_TEST(open_creates_with_defaults) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  ck_assert(!tu_shm_exists(name));
  uint64_t before = wall_ms();
  kvshm *kv = NULL;
  /* flags 0 (KVSHM_REAPER=off keeps the reaper out of the test) */
  tu_assert_rc(kvshm_open(name, NULL, 0, &kv), KVSHM_OK);
  uint64_t after = wall_ms();
  ck_assert(tu_shm_exists(name));
  ck_assert_str_eq(kvshm_name(kv), name);
  ck_assert_str_eq(kvshm_sqlite_path(kv), "");

  kvshm_stats st = tu_stats(kv);
  ck_assert_uint_eq(st.memory_size, KVSHM_DEFAULT_MEMORY);
  ck_assert_uint_eq(st.slot_size, KVSHM_DEFAULT_SLOT);
  ck_assert_uint_ge(st.stripes, 1);
  ck_assert_uint_le(st.stripes, KVSHM_MAX_STRIPES);
  ck_assert_uint_eq(st.stripes & (st.stripes - 1), 0);
  ck_assert_uint_ge(st.slots_per_stripe, 8);
  ck_assert_uint_eq(st.layout_version, KVSHM_FORMAT);
  ck_assert_uint_eq(st.default_ttl_ms, 0);
  ck_assert_uint_ge(st.created_ms, before);
  ck_assert_uint_le(st.created_ms, after);
  ck_assert_uint_eq(st.max_key, KVSHM_KEY_MAX);
  ck_assert_uint_gt(st.max_value, 1 * MIB); /* half of a 4 MiB stripe */
  ck_assert_uint_eq(st.entries, 0);
  ck_assert_uint_eq(st.bytes, 0);
  ck_assert_uint_eq(st.slots_used, 0);
  ck_assert_uint_eq(st.slots_free, (uint64_t)st.stripes * st.slots_per_stripe);
  ck_assert_uint_eq(st.hits + st.misses + st.sets + st.deletes, 0);
  ck_assert_uint_eq(st.evictions + st.expirations + st.corrupt + st.repairs, 0);
  ck_assert_uint_eq(st.persistent, 0);
  ck_assert_uint_eq(st.flush_delay_ms, KVSHM_DEFAULT_FLUSH_DELAY_MS);
  ck_assert_uint_eq(st.dirty, 0);

  /* The file is the whole segment, reserved (not sparse). */
  char path[TU_PATH_SIZE];
  struct stat sb;
  ck_assert_int_eq(stat(tu_shm_path(name, path), &sb), 0);
  ck_assert_uint_eq((uint64_t)sb.st_size, KVSHM_DEFAULT_MEMORY);
  ck_assert_uint_ge((uint64_t)sb.st_blocks * 512u, KVSHM_DEFAULT_MEMORY);
  ck_assert_int_eq(file_mode(name), 0600);

  tu_assert_rc(kvshm_flush(kv), KVSHM_OK); /* memory only: nothing to do */
  kvshm_store_stats ss;
  memset(&ss, 0xff, sizeof ss);
  tu_assert_rc(kvshm_store_stats_get(kv, &ss), KVSHM_OK);
  ck_assert_uint_eq(ss.rows + ss.bytes + ss.file_bytes + ss.expired, 0);
  ck_assert_int_eq(tu_verify(kv), 0);
  tu_assert_rc(kvshm_close(kv), KVSHM_OK);
  tu_assert_rc(kvshm_close(NULL), KVSHM_OK);
  tu_assert_rc(kvshm_unlink(name), KVSHM_OK);
}
END_TEST

START_TEST(open_custom_config_and_attach_with_zeros) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  kvshm_config c;
  tu_config(&c, 2 * MIB, 256, 2);
  c.default_ttl_ms = 5000;
  kvshm *a = tu_open(name, &c);
  kvshm_stats st = tu_stats(a);
  ck_assert_uint_eq(st.memory_size, 2 * MIB);
  ck_assert_uint_eq(st.slot_size, 256);
  ck_assert_uint_eq(st.stripes, 2);
  ck_assert_uint_eq(st.default_ttl_ms, 5000);

  /* 0 everywhere: take whatever the segment has. */
  kvshm_config zero;
  kvshm_config_init(&zero);
  kvshm *b = tu_open(name, &zero);
  kvshm_stats sb = tu_stats(b);
  ck_assert_uint_eq(sb.memory_size, 2 * MIB);
  ck_assert_uint_eq(sb.slot_size, 256);
  ck_assert_uint_eq(sb.stripes, 2);
  ck_assert_uint_eq(sb.default_ttl_ms, 5000);
  ck_assert_uint_eq(sb.created_ms, st.created_ms);
  /* NULL config and the identical config attach too. */
  tu_assert_rc(open_rc(name, NULL, KVSHM_NOREAPER), KVSHM_OK);
  tu_assert_rc(open_rc(name, &c, KVSHM_NOREAPER), KVSHM_OK);
  /* A process may pick its own lock patience. */
  kvshm_config lt = zero;
  lt.lock_timeout_ms = 1234;
  tu_assert_rc(open_rc(name, &lt, KVSHM_NOREAPER), KVSHM_OK);

  /* Both handles see one segment. */
  tu_set_str(a, "from-a", "1");
  tu_assert_value(b, "from-a", 6, "1", 1);
  tu_set_str(b, "from-b", "22");
  tu_assert_value(a, "from-b", 6, "22", 2);
  kvshm_close(a);
  kvshm_close(b);
  tu_assert_rc(kvshm_unlink(name), KVSHM_OK);
}
END_TEST

static void expect_econfig(const char *name, const kvshm_config *c,
                           const char *field, const char *have,
                           const char *want) {
  tu_assert_rc(open_rc(name, c, KVSHM_NOREAPER), KVSHM_ECONFIG);
  const char *d = kvshm_errdetail();
  ck_assert_msg(strstr(d, field) && strstr(d, have) && strstr(d, want),
                "detail should name %s, %s and %s: '%s'", field, have, want, d);
}

START_TEST(reattach_with_other_config_is_econfig) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  kvshm_config c;
  tu_config(&c, 2 * MIB, 256, 2);
  c.default_ttl_ms = 5000;
  kvshm *kv = tu_open(name, &c);

  kvshm_config d;
  kvshm_config_init(&d);
  d.memory_size = 4 * MIB;
  expect_econfig(name, &d, "memory_size", "2097152", "4194304");
  kvshm_config_init(&d);
  d.slot_size = 160;
  expect_econfig(name, &d, "slot_size", "256", "160");
  kvshm_config_init(&d);
  d.stripes = 4;
  expect_econfig(name, &d, "stripes", "2", "4");
  kvshm_config_init(&d);
  d.default_ttl_ms = 6000;
  expect_econfig(name, &d, "default_ttl_ms", "5000", "6000");
  /* The full config with one field changed. */
  d = c;
  d.slot_size = 264;
  expect_econfig(name, &d, "slot_size", "256", "264");

  /* The segment was not touched by the failed opens. */
  tu_set_str(kv, "k", "v");
  tu_assert_rc(open_rc(name, &c, KVSHM_NOREAPER), KVSHM_OK);
  tu_assert_value(kv, "k", 1, "v", 1);
  kvshm_close(kv);
  kvshm_unlink(name);
}
END_TEST

START_TEST(bad_names_are_ebadname) {
  char longname[KVSHM_NAME_MAX + 2];
  const char *bad[] = {"",     "a/b",         "/abc", "abc/", "a b", "a*b",
                       "a\nb", "caf\xc3\xa9", "..",   ".",    "a:b", "a\\b"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    tu_assert_rc(open_rc(bad[i], NULL, KVSHM_NOREAPER), KVSHM_EBADNAME);
    ck_assert_msg(kvshm_errdetail()[0] != '\0', "no detail for '%s'", bad[i]);
    tu_assert_rc(kvshm_unlink(bad[i]), KVSHM_EBADNAME);
  }
  tu_assert_rc(open_rc(NULL, NULL, KVSHM_NOREAPER), KVSHM_EBADNAME);
  tu_assert_rc(kvshm_unlink(NULL), KVSHM_EBADNAME);
  tu_assert_rc(open_rc("a/b", NULL, KVSHM_NOREAPER), KVSHM_EBADNAME);
  ck_assert_msg(strstr(kvshm_errdetail(), "slash"), "%s", kvshm_errdetail());

  /* Exactly KVSHM_NAME_MAX bytes is allowed, one more is not. */
  char base[TU_NAME_SIZE];
  tu_name(base);
  memset(longname, 'x', sizeof longname);
  memcpy(longname, base, strlen(base));
  longname[KVSHM_NAME_MAX] = '\0';
  kvshm_config c;
  tu_config(&c, 64 * 1024, 0, 1);
  tu_assert_rc(open_rc(longname, &c, KVSHM_NOREAPER), KVSHM_OK);
  tu_assert_rc(kvshm_unlink(longname), KVSHM_OK);
  longname[KVSHM_NAME_MAX] = 'x';
  longname[KVSHM_NAME_MAX + 1] = '\0';
  tu_assert_rc(open_rc(longname, &c, KVSHM_NOREAPER), KVSHM_EBADNAME);
  ck_assert_msg(strstr(kvshm_errdetail(), "201"), "%s", kvshm_errdetail());
  tu_assert_rc(kvshm_unlink(longname), KVSHM_EBADNAME);
  /* Every allowed character class. */
  char ok[TU_NAME_SIZE + 16];
  snprintf(ok, sizeof ok, "%s.A_z-9", base);
  tu_assert_rc(open_rc(ok, &c, KVSHM_NOREAPER), KVSHM_OK);
  tu_assert_rc(kvshm_unlink(ok), KVSHM_OK);
}
END_TEST

static void expect_einval(const char *name, const kvshm_config *c,
                          const char *field) {
  tu_assert_rc(open_rc(name, c, KVSHM_NOREAPER), KVSHM_EINVAL);
  ck_assert_msg(strstr(kvshm_errdetail(), field),
                "detail should name %s: "
                "'%s'",
                field, kvshm_errdetail());
  ck_assert_msg(!tu_shm_exists(name), "a rejected config created %s", name);
}

START_TEST(bad_configs_are_einval) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  kvshm_config c;
  tu_config(&c, 0, 100, 0); /* not a multiple of 8 */
  expect_einval(name, &c, "slot_size");
  tu_config(&c, 0, KVSHM_MIN_SLOT - 8, 0);
  expect_einval(name, &c, "slot_size");
  tu_config(&c, 0, KVSHM_MAX_SLOT + 8, 0);
  expect_einval(name, &c, "slot_size");
  tu_config(&c, 0, 0, 3);
  expect_einval(name, &c, "stripes");
  tu_config(&c, 0, 0, 12);
  expect_einval(name, &c, "stripes");
  tu_config(&c, 0, 0, KVSHM_MAX_STRIPES * 2);
  expect_einval(name, &c, "stripes");
  tu_config(&c, 4096, 0, 0); /* smaller than the header */
  expect_einval(name, &c, "memory_size");
  tu_config(&c, 64 * 1024, 0, 64); /* room for the header, not 64 stripes */
  expect_einval(name, &c, "memory_size");
  tu_config(&c, 0, 0, 0);
  c.mode = 01777;
  expect_einval(name, &c, "mode");

  /* The boundaries themselves are fine. */
  tu_config(&c, 1 * MIB, KVSHM_MIN_SLOT, 1);
  tu_assert_rc(open_rc(name, &c, KVSHM_NOREAPER), KVSHM_OK);
  kvshm_unlink(name);
  tu_config(&c, 2 * MIB, KVSHM_MAX_SLOT, 1);
  tu_assert_rc(open_rc(name, &c, KVSHM_NOREAPER), KVSHM_OK);
  kvshm_unlink(name);

  /* Unknown open flags and a NULL out pointer. */
  tu_assert_rc(open_rc(name, NULL, 0x100), KVSHM_EINVAL);
  ck_assert(!tu_shm_exists(name));
  tu_assert_rc(kvshm_open(name, NULL, KVSHM_NOREAPER, NULL), KVSHM_EINVAL);
  ck_assert(!tu_shm_exists(name));
}
END_TEST

START_TEST(nocreate_and_rdonly_on_missing_are_enoent) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  tu_assert_rc(open_rc(name, NULL, KVSHM_NOCREATE | KVSHM_NOREAPER), -ENOENT);
  ck_assert(!tu_shm_exists(name));
  tu_assert_rc(open_rc(name, NULL, KVSHM_RDONLY | KVSHM_NOREAPER), -ENOENT);
  ck_assert(!tu_shm_exists(name));
  ck_assert_msg(kvshm_errdetail()[0] != '\0', "no detail");

  kvshm_config c;
  tu_config(&c, 1 * MIB, 0, 1);
  kvshm *kv = tu_open(name, &c);
  kvshm *n = NULL;
  tu_assert_rc(kvshm_open(name, NULL, KVSHM_NOCREATE | KVSHM_NOREAPER, &n),
               KVSHM_OK);
  tu_set_str(kv, "a", "b");
  tu_assert_value(n, "a", 1, "b", 1);
  kvshm_close(n);
  kvshm_close(kv);
  kvshm_unlink(name);
}
END_TEST

START_TEST(rdonly_reads_but_never_writes) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  kvshm_config c;
  tu_config(&c, 1 * MIB, 0, 2);
  kvshm *rw = tu_open(name, &c);
  tu_set_str(rw, "k", "value");
  tu_set_str(rw, "n", "41");
  kvshm_stats before = tu_stats(rw);

  kvshm *ro = NULL;
  tu_assert_rc(kvshm_open(name, NULL, KVSHM_RDONLY | KVSHM_NOREAPER, &ro),
               KVSHM_OK);
  tu_assert_rc(kvshm_set(ro, "k", 1, "x", 1, 0, 0, 0), KVSHM_ERDONLY);
  tu_assert_rc(kvshm_set(ro, "new", 3, "x", 1, 0, 0, 0), KVSHM_ERDONLY);
  tu_assert_rc(kvshm_del(ro, "k", 1), KVSHM_ERDONLY);
  tu_assert_rc(kvshm_incr(ro, "n", 1, 1, 0, NULL), KVSHM_ERDONLY);
  tu_assert_rc(kvshm_clear(ro), KVSHM_ERDONLY);

  tu_assert_value(ro, "k", 1, "value", 5);
  tu_assert_rc(kvshm_has(ro, "k", 1), KVSHM_OK);
  tu_assert_rc(kvshm_has(ro, "new", 3), KVSHM_ENOTFOUND);
  tu_assert_rc(kvshm_get(ro, "new", 3, NULL, 0, NULL, NULL), KVSHM_ENOTFOUND);
  kvshm_iter *it;
  tu_assert_rc(kvshm_iter_open(ro, NULL, 0, 0, &it), KVSHM_OK);
  int seen = 0;
  while (kvshm_iter_next(it, NULL, NULL, NULL, NULL, NULL, NULL) == KVSHM_OK)
    seen++;
  kvshm_iter_close(it);
  ck_assert_int_eq(seen, 2);
  ck_assert_int_eq(tu_verify(ro), 0);

  /* Nothing changed, as the writer sees it. */
  tu_assert_value(rw, "k", 1, "value", 5);
  tu_assert_value(rw, "n", 1, "41", 2);
  kvshm_stats after = tu_stats(rw);
  ck_assert_uint_eq(after.entries, before.entries);
  ck_assert_uint_eq(after.sets, before.sets);
  ck_assert_uint_eq(after.deletes, before.deletes);
  kvshm_close(ro);
  kvshm_close(rw);
  kvshm_unlink(name);
}
END_TEST

START_TEST(segment_file_mode) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  umask(022);
  kvshm_config c;
  tu_config(&c, 1 * MIB, 0, 1);
  kvshm *kv = tu_open(name, &c);
  ck_assert_int_eq(file_mode(name), 0600);
  kvshm_close(kv);
  kvshm_unlink(name);

  tu_name(name);
  c.mode = 0640;
  kv = tu_open(name, &c);
  ck_assert_int_eq(file_mode(name), 0640);
  /* An attacher with another mode does not change the file. */
  kvshm_config d;
  kvshm_config_init(&d);
  d.mode = 0600;
  tu_assert_rc(open_rc(name, &d, KVSHM_NOREAPER), KVSHM_OK);
  ck_assert_int_eq(file_mode(name), 0640);
  kvshm_close(kv);
  kvshm_unlink(name);
}
END_TEST

START_TEST(too_big_for_dev_shm_is_enoshm) {
  struct statvfs vfs;
  if (statvfs("/dev/shm", &vfs) != 0 || vfs.f_blocks == 0) {
    fprintf(stderr, "SKIP too_big_for_dev_shm_is_enoshm: /dev/shm has no "
                    "size limit to exceed\n");
    return;
  }
  /* More than the whole file system: tmpfs refuses this before allocating
   * anything, so the test costs no memory. */
  uint64_t total = (uint64_t)vfs.f_blocks * vfs.f_frsize;
  uint64_t want = (total + 1024 * MIB) & ~(MIB - 1);
  char name[TU_NAME_SIZE];
  tu_name(name);
  kvshm_config c;
  tu_config(&c, want, 0, 0);
  tu_assert_rc(open_rc(name, &c, KVSHM_NOREAPER), KVSHM_ENOSHM);
  char num[32];
  snprintf(num, sizeof num, "%llu", (unsigned long long)want);
  const char *d = kvshm_errdetail();
  ck_assert_msg(strstr(d, "bytes") && strstr(d, num) && strstr(d, "/dev/shm"),
                "detail should say how many bytes were needed: '%s'", d);
  /* The name is not poisoned: a size that fits works afterwards. */
  tu_config(&c, 1 * MIB, 0, 1);
  kvshm *kv = tu_open(name, &c);
  tu_set_str(kv, "k", "v");
  tu_assert_value(kv, "k", 1, "v", 1);
  ck_assert_int_eq(tu_verify(kv), 0);
  kvshm_close(kv);
  kvshm_unlink(name);
}
END_TEST

/* ---- races and dead creators ------------------------------------------ */

#define RACERS 4

START_TEST(concurrent_creators_share_one_segment) {
  for (int round = 0; round < 8; round++) {
    char name[TU_NAME_SIZE];
    tu_name(name);
    kvshm_config c;
    tu_config(&c, 1 * MIB, 0, 2);
    tu_gate start, after_set;
    tu_gate_init(&start);
    tu_gate_init(&after_set);
    pid_t pids[RACERS];
    for (int i = 0; i < RACERS; i++) {
      pids[i] = tu_fork();
      if (pids[i] == 0) {
        tu_gate_wait(&start);
        kvshm *kv = NULL;
        TU_CHILD_RC(kvshm_open(name, &c, KVSHM_NOREAPER, &kv), KVSHM_OK);
        char key[32];
        snprintf(key, sizeof key, "racer%d", i);
        TU_CHILD_RC(kvshm_set(kv, key, strlen(key), key, strlen(key), 0, 0, 0),
                    KVSHM_OK);
        tu_gate_wait(&after_set);
        /* Had anyone initialised the segment again, a set is gone. */
        for (int j = 0; j < RACERS; j++) {
          snprintf(key, sizeof key, "racer%d", j);
          TU_CHILD_RC(kvshm_has(kv, key, strlen(key)), KVSHM_OK);
        }
        kvshm_close(kv);
        _exit(0);
      }
    }
    tu_gate_open(&start, RACERS);
    tu_gate_open(&after_set, RACERS);
    for (int i = 0; i < RACERS; i++)
      tu_wait_ok(pids[i], 10000, "racing opener");
    kvshm *kv = tu_open(name, NULL);
    kvshm_stats st = tu_stats(kv);
    ck_assert_uint_eq(st.entries, RACERS);
    ck_assert_uint_eq(st.sets, RACERS);
    ck_assert_int_eq(tu_verify(kv), 0);
    kvshm_close(kv);
    kvshm_unlink(name);
  }
}
END_TEST

/* Create the file the way a creator killed before storing the magic leaves
 * it: shm_open + ftruncate(size), optionally with garbage after the magic. */
static void make_uninitialised(const char *name, uint64_t size, int garbage) {
  char path[TU_PATH_SIZE];
  snprintf(path, sizeof path, "/kvshm.%s", name);
  int fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
  ck_assert_msg(fd >= 0, "shm_open: %s", strerror(errno));
  ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
  if (garbage) {
    size_t n = size < 65536 ? size : 65536;
    unsigned char *buf = malloc(n);
    ck_assert_ptr_nonnull(buf);
    tu_fill(buf, n, 77);
    memset(buf, 0, 8); /* magic 0: the creator never finished */
    ck_assert_int_eq(pwrite(fd, buf, n, 0), (ssize_t)n);
    free(buf);
  }
  close(fd);
}

static void assert_usable(const char *name, const kvshm_config *c) {
  kvshm *kv = tu_open(name, c);
  kvshm_stats st = tu_stats(kv);
  ck_assert_uint_eq(st.memory_size, c->memory_size);
  ck_assert_uint_eq(st.entries, 0);
  tu_set_str(kv, "after", "init");
  tu_assert_value(kv, "after", 5, "init", 4);
  ck_assert_int_eq(tu_verify(kv), 0);
  kvshm_close(kv);
}

START_TEST(creator_died_before_magic) {
  kvshm_config c;
  tu_config(&c, 1 * MIB, 0, 2);
  char name[TU_NAME_SIZE];
  /* Sized, never initialised. */
  make_uninitialised(tu_name(name), 1 * MIB, 0);
  assert_usable(name, &c);
  kvshm_unlink(name);
  /* Zero-length: died right after shm_open. */
  make_uninitialised(tu_name(name), 0, 0);
  assert_usable(name, &c);
  kvshm_unlink(name);
  /* Sized to another size, with a half-written header. */
  make_uninitialised(tu_name(name), 2 * MIB, 1);
  assert_usable(name, &c);
  kvshm_unlink(name);
  /* An attacher that may not create reports it, and leaves it alone. */
  make_uninitialised(tu_name(name), 1 * MIB, 0);
  tu_assert_rc(open_rc(name, NULL, KVSHM_NOCREATE | KVSHM_NOREAPER), -ENOENT);
  tu_assert_rc(open_rc(name, NULL, KVSHM_RDONLY | KVSHM_NOREAPER), -ENOENT);
  assert_usable(name, &c);
  kvshm_unlink(name);
}
END_TEST

START_TEST(creator_killed_holding_the_open_lock) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  kvshm_config c;
  tu_config(&c, 1 * MIB, 0, 2);
  tu_gate locked;
  tu_gate_init(&locked);
  /* A "creator" that took the segment's flock and then hangs. */
  pid_t holder = tu_fork();
  if (holder == 0) {
    char path[TU_PATH_SIZE];
    snprintf(path, sizeof path, "/kvshm.%s", name);
    int fd = shm_open(path, O_RDWR | O_CREAT, 0600);
    TU_CHILD_CHECK(fd >= 0);
    TU_CHILD_CHECK(flock(fd, LOCK_EX) == 0);
    TU_CHILD_CHECK(ftruncate(fd, 4096) == 0);
    tu_gate_wait(&locked); /* "ready" is sent; the gate never opens */
    pause();
    _exit(0);
  }
  /* Wait for the holder to own the lock (it signals before blocking). */
  char ch;
  close(locked.ready[1]);
  ck_assert_int_eq(read(locked.ready[0], &ch, 1), 1);
  close(locked.ready[0]);
  /* An opener that starts while the lock is held, in another process. */
  pid_t opener = tu_fork();
  if (opener == 0) {
    kvshm *kv = NULL;
    TU_CHILD_RC(kvshm_open(name, &c, KVSHM_NOREAPER, &kv), KVSHM_OK);
    TU_CHILD_RC(kvshm_set(kv, "k", 1, "v", 1, 0, 0, 0), KVSHM_OK);
    kvshm_close(kv);
    _exit(0);
  }
  tu_sleep_ms(200);
  kill(holder, SIGKILL);
  int status;
  ck_assert_int_eq(tu_wait(holder, 5000, &status), 0);
  close(locked.go[0]);
  close(locked.go[1]);
  tu_wait_ok(opener, 10000, "opener waiting on a dead creator's lock");
  /* And an open after the kill. */
  kvshm *kv = tu_open(name, &c);
  tu_assert_value(kv, "k", 1, "v", 1);
  ck_assert_int_eq(tu_verify(kv), 0);
  kvshm_close(kv);
  kvshm_unlink(name);
}
END_TEST

/* ---- damaged headers --------------------------------------------------- */

static void make_segment(char name[TU_NAME_SIZE]) {
  tu_name(name);
  kvshm_config c;
  tu_config(&c, 1 * MIB, 0, 2);
  kvshm *kv = tu_open(name, &c);
  tu_set_str(kv, "k", "v");
  kvshm_close(kv);
}

START_TEST(garbage_header_is_rejected) {
  for (uint64_t seed = 1; seed <= 16; seed++) {
    char name[TU_NAME_SIZE];
    make_segment(name);
    unsigned char junk[4096];
    tu_fill(junk, sizeof junk, seed);
    if (seed % 2 == 0)
      memset(junk, 0xff, 8); /* also an all-ones magic */
    tu_poke(name, 0, junk, sizeof junk);
    int rc = open_rc(name, NULL, KVSHM_NOREAPER);
    ck_assert_msg(rc == KVSHM_EBADMAGIC || rc == KVSHM_ECORRUPT,
                  "seed %llu: open = %d (%s)", (unsigned long long)seed, rc,
                  kvshm_err_name(rc));
    ck_assert_msg(kvshm_errdetail()[0] != '\0', "no detail");
    rc = open_rc(name, NULL, KVSHM_RDONLY | KVSHM_NOREAPER);
    ck_assert_msg(rc == KVSHM_EBADMAGIC || rc == KVSHM_ECORRUPT,
                  "seed %llu: read-only open = %d (%s)",
                  (unsigned long long)seed, rc, kvshm_err_name(rc));
    /* Not silently re-initialised either. */
    unsigned char back[4096];
    tu_peek(name, 0, back, sizeof back);
    ck_assert_mem_eq(back, junk, 64);
    kvshm_unlink(name);
  }
}
END_TEST

START_TEST(changed_header_fields_are_ecorrupt) {
  /* offset, new value (32-bit) of a field covered by hdr_check */
  const struct {
    uint64_t off;
    uint32_t val;
    const char *what;
  } edits[] = {
      {offsetof(struct kvshm_hdr, hdr_size), 4096, "hdr_size"},
      {offsetof(struct kvshm_hdr, slot_size), 168, "slot_size"},
      {offsetof(struct kvshm_hdr, stripes), 4, "stripes"},
      {offsetof(struct kvshm_hdr, slots), 7, "slots"},
      {offsetof(struct kvshm_hdr, buckets), 1u << 20, "buckets"},
      {offsetof(struct kvshm_hdr, default_ttl_ms), 99, "default_ttl_ms"},
      {offsetof(struct kvshm_hdr, created_ms), 12345, "created_ms"},
      {offsetof(struct kvshm_hdr, sqlite_path), 0x706d742f, "sqlite_path"},
      {offsetof(struct kvshm_hdr, hdr_check), 0xdeadbeef, "hdr_check"},
      {offsetof(struct kvshm_hdr, memory_size), 4096, "memory_size"},
  };
  for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
    char name[TU_NAME_SIZE];
    make_segment(name);
    kvshm *live = tu_open(name, NULL); /* a process attached before */
    tu_poke32(name, edits[i].off, edits[i].val);
    int rc = open_rc(name, NULL, KVSHM_NOREAPER);
    ck_assert_msg(rc == KVSHM_ECORRUPT, "%s changed: open = %d (%s)",
                  edits[i].what, rc, kvshm_err_name(rc));
    ck_assert_msg(kvshm_errdetail()[0] != '\0', "no detail");
    /* verify on the live handle sees the damaged header too */
    char report[512];
    ck_assert_msg(tu_verify_capture(live, report, sizeof report) > 0,
                  "%s changed: verify found nothing", edits[i].what);
    ck_assert_msg(strstr(report, "header"), "%s", report);
    kvshm_close(live);
    kvshm_unlink(name);
  }
  /* Random bytes after an intact magic and format. */
  for (uint64_t seed = 1; seed <= 8; seed++) {
    char name[TU_NAME_SIZE];
    make_segment(name);
    unsigned char junk[4096 - 12];
    tu_fill(junk, sizeof junk, seed + 100);
    tu_poke(name, 12, junk, sizeof junk);
    tu_assert_rc(open_rc(name, NULL, KVSHM_NOREAPER), KVSHM_ECORRUPT);
    kvshm_unlink(name);
  }
}
END_TEST

START_TEST(other_format_is_eversion) {
  char name[TU_NAME_SIZE];
  make_segment(name);
  tu_poke32(name, offsetof(struct kvshm_hdr, format), KVSHM_FORMAT + 1);
  /* The checksum is now wrong too: the format is checked first. */
  tu_assert_rc(open_rc(name, NULL, KVSHM_NOREAPER), KVSHM_EVERSION);
  ck_assert_msg(strstr(kvshm_errdetail(), "format"), "%s", kvshm_errdetail());
  tu_assert_rc(open_rc(name, NULL, KVSHM_RDONLY | KVSHM_NOREAPER),
               KVSHM_EVERSION);
  tu_poke32(name, offsetof(struct kvshm_hdr, format), 0);
  tu_assert_rc(open_rc(name, NULL, KVSHM_NOREAPER), KVSHM_EVERSION);
  kvshm_unlink(name);
}
END_TEST

/* A segment made by a kvshm built against the other C library (glibc and
 * musl lay out pthread_mutex_t differently): refused, never locked.  Its
 * header is whole (checksum right), as such a process would write it. */
START_TEST(other_libc_is_eversion) {
  char name[TU_NAME_SIZE], path[TU_PATH_SIZE];
  make_segment(name);
  uint32_t other = (KVSHM_LIBC == 1 ? 2u : 1u) << 16 | KVSHM_ARCH << 8 |
                   (uint32_t)sizeof(pthread_mutex_t);
  tu_poke32(name, offsetof(struct kvshm_hdr, abi), other);
  struct kvshm_hdr *h = malloc(sizeof *h);
  int fd = open(tu_shm_path(name, path), O_RDONLY);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(pread(fd, h, sizeof *h, 0), (ssize_t)sizeof *h);
  close(fd);
  tu_poke32(name, offsetof(struct kvshm_hdr, hdr_check), kvshm__hdr_check(h));
  free(h);
  tu_assert_rc(open_rc(name, NULL, KVSHM_NOREAPER), KVSHM_EVERSION);
  ck_assert_msg(strstr(kvshm_errdetail(), KVSHM_LIBC == 1 ? "musl" : "glibc"),
                "%s", kvshm_errdetail());
  tu_assert_rc(open_rc(name, NULL, KVSHM_RDONLY | KVSHM_NOREAPER),
               KVSHM_EVERSION);
  /* Damage to the word alone fails the checksum: corrupt, not "musl". */
  tu_poke32(name, offsetof(struct kvshm_hdr, abi), KVSHM_ABI ^ 0x100);
  tu_assert_rc(open_rc(name, NULL, KVSHM_NOREAPER), KVSHM_ECORRUPT);
  kvshm_unlink(name);
}
END_TEST

START_TEST(resized_file_is_ecorrupt) {
  char path[TU_PATH_SIZE];
  const uint64_t sizes[] = {512 * 1024, 1 * MIB - 4096, 2 * MIB};
  for (size_t i = 0; i < 3; i++) {
    char name[TU_NAME_SIZE];
    make_segment(name);
    ck_assert_int_eq(truncate(tu_shm_path(name, path), (off_t)sizes[i]), 0);
    tu_assert_rc(open_rc(name, NULL, KVSHM_NOREAPER), KVSHM_ECORRUPT);
    ck_assert_msg(strstr(kvshm_errdetail(), "bytes"), "%s", kvshm_errdetail());
    kvshm_unlink(name);
  }
}
END_TEST

/* ---- unlink ------------------------------------------------------------- */

START_TEST(unlink_semantics) {
  char name[TU_NAME_SIZE];
  tu_name(name);
  kvshm_config c;
  tu_config(&c, 1 * MIB, 0, 2);
  kvshm *old = tu_open(name, &c);
  tu_set_str(old, "k", "old");
  tu_assert_rc(kvshm_unlink(name), KVSHM_OK);
  ck_assert(!tu_shm_exists(name));
  tu_assert_rc(kvshm_unlink(name), -ENOENT);
  tu_assert_rc(open_rc(name, NULL, KVSHM_NOCREATE | KVSHM_NOREAPER), -ENOENT);
  /* The mapped segment lives on for its users. */
  tu_assert_value(old, "k", 1, "old", 3);
  tu_set_str(old, "k2", "still");
  tu_assert_value(old, "k2", 2, "still", 5);
  /* The next open makes a new, empty cache. */
  kvshm *fresh = tu_open(name, &c);
  tu_assert_rc(kvshm_has(fresh, "k", 1), KVSHM_ENOTFOUND);
  ck_assert_uint_eq(tu_stats(fresh).entries, 0);
  tu_set_str(fresh, "k", "new");
  tu_assert_value(old, "k", 1, "old", 3);
  tu_assert_value(fresh, "k", 1, "new", 3);
  ck_assert_int_eq(tu_verify(old), 0);
  kvshm_close(old);
  kvshm_close(fresh);
  tu_assert_rc(kvshm_unlink(name), KVSHM_OK);
}
END_TEST

/* ---- error tables ------------------------------------------------------- */

START_TEST(every_error_code_has_a_name_and_text) {
  static const struct {
    int code;
    const char *name;
    const char *msg;
  } codes[] = {
#define TU_ERR_(name, code, msg) {code, "E" #name, msg},
      KVSHM_ERRNO_MAP(TU_ERR_)
#undef TU_ERR_
  };
  size_t n = sizeof codes / sizeof codes[0];
  ck_assert_uint_ge(n, 19);
  for (size_t i = 0; i < n; i++) {
    ck_assert_int_lt(codes[i].code, -4095); /* outside the errno range */
    ck_assert_str_eq(kvshm_strerror(codes[i].code), codes[i].msg);
    ck_assert_str_eq(kvshm_err_name(codes[i].code), codes[i].name);
    for (size_t j = 0; j < i; j++)
      ck_assert_int_ne(codes[i].code, codes[j].code);
  }
  ck_assert_int_eq(KVSHM_ENOTFOUND, -30800);
  ck_assert_str_eq(kvshm_err_name(KVSHM_ENOTFOUND), "ENOTFOUND");
  ck_assert_str_eq(kvshm_err_name(KVSHM_OK), "OK");
  ck_assert_str_eq(kvshm_strerror(KVSHM_OK), "success");
  ck_assert_str_eq(kvshm_err_name(-ENOENT), "ENOENT");
  ck_assert_str_eq(kvshm_strerror(-ENOENT), strerror(ENOENT));
  ck_assert_str_eq(kvshm_err_name(-EACCES), "EACCES");
  ck_assert_str_eq(kvshm_strerror(-EACCES), strerror(EACCES));
  /* Anything else still gets text, never NULL. */
  const int odd[] = {1, 12345, -29999, -40000, -4095};
  for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
    ck_assert_ptr_nonnull(kvshm_strerror(odd[i]));
    ck_assert_ptr_nonnull(kvshm_err_name(odd[i]));
    ck_assert_uint_gt(strlen(kvshm_strerror(odd[i])), 0);
  }
}
END_TEST

static Suite *segment_suite(void) {
  Suite *s = suite_create("segment");
  TCase *tc = tu_tcase("open", 30);
  tcase_add_test(tc, open_creates_with_defaults);
  tcase_add_test(tc, open_custom_config_and_attach_with_zeros);
  tcase_add_test(tc, reattach_with_other_config_is_econfig);
  tcase_add_test(tc, bad_names_are_ebadname);
  tcase_add_test(tc, bad_configs_are_einval);
  tcase_add_test(tc, nocreate_and_rdonly_on_missing_are_enoent);
  tcase_add_test(tc, rdonly_reads_but_never_writes);
  tcase_add_test(tc, segment_file_mode);
  tcase_add_test(tc, too_big_for_dev_shm_is_enoshm);
  suite_add_tcase(s, tc);
  tc = tu_tcase("races", 60);
  tcase_add_test(tc, concurrent_creators_share_one_segment);
  tcase_add_test(tc, creator_died_before_magic);
  tcase_add_test(tc, creator_killed_holding_the_open_lock);
  suite_add_tcase(s, tc);
  tc = tu_tcase("damage", 30);
  tcase_add_test(tc, garbage_header_is_rejected);
  tcase_add_test(tc, changed_header_fields_are_ecorrupt);
  tcase_add_test(tc, other_format_is_eversion);
  tcase_add_test(tc, other_libc_is_eversion);
  tcase_add_test(tc, resized_file_is_ecorrupt);
  suite_add_tcase(s, tc);
  tc = tu_tcase("names", 30);
  tcase_add_test(tc, unlink_semantics);
  tcase_add_test(tc, every_error_code_has_a_name_and_text);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  Suite *suites[] = {segment_suite()};
  return tu_run_suites(suites, 1);
}
