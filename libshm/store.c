/*
 * store.c - the SQLite tier: one connection per process (opened lazily,
 * never used across fork), prepared statements, and the file's schema.
 *
 * The file holds two tables:
 *
 *   kvshm_entries(hpos INTEGER, key BLOB, value BLOB, flags INTEGER,
 *                 expires_ms INTEGER, gen INTEGER,
 *                 PRIMARY KEY(hpos, key)) WITHOUT ROWID
 *   kvshm_entries_expiry ON kvshm_entries(expires_ms) WHERE expires_ms > 0
 *   kvshm_meta(k TEXT PRIMARY KEY, v INTEGER)   -- 'clear_gen', 'gc_gen',
 *                                                  'owner'
 *
 * hpos is the key's 64-bit hash (the one that places it in memory) with its
 * top bit flipped, so that SQLite's signed order is the hash's order: a
 * walk reads one range of hashes from both tiers at once (iter.c).
 *
 * gen is the clear generation the row was written in.  A row whose gen is
 * not the header's clear_gen does not exist: kvshm_clear is one atomic
 * increment, and the reaper deletes the old rows later, a window of hashes
 * per tick (kvshm__store_gc).  kvshm_meta's clear_gen is never behind any
 * row's gen (a write-behind raises it in the same transaction), so a
 * segment created again over this file starts from it (kvshm__store_sync).
 *
 * `PRAGMA application_id` marks the file as ours and `user_version` is its
 * format.  A file that is not SQLite, carries another application id, a newer
 * format, or a damaged schema is refused before anything is written to it; a
 * format-1 file is converted in one transaction.  Tuning: WAL,
 * synchronous=NORMAL (a power cut may lose the last transactions, never
 * corrupt the file; FULL in persistent mode), a busy handler that sleeps
 * in short steps, batched transactions written in the table's order with
 * multi-row upserts (writeback.c), and checkpoints left to the reaper
 * (kvshm__store_wal_trim says why).
 */
#include "internal.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define APP_ID 0x4b56534d /* "KVSM" */
#define STORE_FORMAT 2
#define BUSY_TIMEOUT_MS 10000
#define WAL_FALLBACK_PAGES 16384 /* 64 MiB of 4 KiB pages */

enum {
  Q_GET,
  Q_PUT,
  Q_DEL,
  Q_EXPIRE,
  Q_GC,
  Q_COUNT,
  Q_SCAN,
  Q_META_GET,
  Q_META_RAISE,
  Q_META_SET,
  Q_META_DROP,
  Q_PDEL,
  Q_BEGIN,
  Q_COMMIT,
  Q_ROLLBACK,
  Q_PUTN, /* PUT_ROWS rows in one statement (built at open) */
  Q_N
};

/* A write of a row: the key's row is updated in place if there is one
 * (INSERT OR REPLACE would delete it and insert it again). */
#define UPSERT_SET                                                             \
  " ON CONFLICT(hpos, key) DO UPDATE SET value=excluded.value, "               \
  "flags=excluded.flags, expires_ms=excluded.expires_ms, gen=excluded.gen"
/* Rows per multi-row upsert (kvshm__store_put_rows): fewer statements to
 * step, bind and reset per row. */
#define PUT_ROWS 32

static const char *const sql[Q_N] = {
    [Q_GET] = "SELECT value, flags, expires_ms FROM kvshm_entries "
              "WHERE hpos=?1 AND key=?2 AND gen=?3",
    [Q_PUT] = "INSERT INTO kvshm_entries(hpos, key, value, flags, "
              "expires_ms, gen) VALUES (?1, ?2, ?3, ?4, ?5, ?6)" UPSERT_SET,
    [Q_DEL] = "DELETE FROM kvshm_entries WHERE hpos=?1 AND key=?2",
    [Q_EXPIRE] = "DELETE FROM kvshm_entries WHERE (hpos, key) IN (SELECT hpos, "
                 "key FROM kvshm_entries WHERE expires_ms > 0 AND "
                 "expires_ms <= ?1 LIMIT ?2)",
    [Q_GC] = "DELETE FROM kvshm_entries WHERE hpos BETWEEN ?1 AND ?2 AND "
             "gen < ?3",
    [Q_COUNT] = "SELECT count(*), coalesce(sum(length(key) + length(value)), "
                "0), coalesce(sum(expires_ms > 0 AND expires_ms <= ?1), 0) "
                "FROM kvshm_entries WHERE gen = ?2",
    [Q_SCAN] = "SELECT hpos, key, value, flags, expires_ms FROM kvshm_entries "
               "WHERE hpos BETWEEN ?1 AND ?2 AND gen = ?3 AND (expires_ms = 0 "
               "OR expires_ms > ?4) ORDER BY hpos, key",
    [Q_META_GET] = "SELECT v FROM kvshm_meta WHERE k=?1",
    [Q_META_RAISE] = "INSERT INTO kvshm_meta(k, v) VALUES (?1, ?2) ON "
                     "CONFLICT(k) DO UPDATE SET v = max(v, excluded.v)",
    [Q_META_SET] = "INSERT INTO kvshm_meta(k, v) VALUES (?1, ?2) ON "
                   "CONFLICT(k) DO UPDATE SET v = excluded.v",
    [Q_META_DROP] =
        "DELETE FROM kvshm_meta WHERE k GLOB 'pclear:*' AND k <> ?1",
    [Q_PDEL] = "DELETE FROM kvshm_entries WHERE substr(key, 1, ?2) = ?1",
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
};

struct kvshm_store {
  sqlite3 *db;
  bool counted; /* counted in open_conns */
  pid_t pid;    /* process that opened it */
  sqlite3_stmt *q[Q_N];
  uint64_t busy_since; /* busy_wait: when this wait for a lock began */
  uint64_t busy_until; /* busy_wait: give up at this wall-clock ms (the
                          reaper's tick), 0 = after BUSY_TIMEOUT_MS */
  /* The prefix clears (clear.c) whose rows the open write transaction
   * deleted: their generation by record, 0 for none. */
  uint64_t txn_gen[KVSHM_CLEAR_RECS];
};

/*
 * The busy handler: wait for another connection's lock in short sleeps
 * (50 us, doubling to 1 ms), for up to BUSY_TIMEOUT_MS.  SQLite's own
 * (sqlite3_busy_timeout) sleeps 1, 2, 5, 10 ... ms, and its write lock is
 * mostly held for about a millisecond (one write-behind batch): a writer
 * making room (ops.c) would sleep several times longer than it waits.
 */
static int busy_wait(void *arg, int count) {
  struct kvshm_store *st = arg;
  uint64_t now = kvshm__wall_ms();
  if (st->busy_until && now >= st->busy_until)
    return 0;
  if (count == 0)
    st->busy_since = now;
  else if (now - st->busy_since >= BUSY_TIMEOUT_MS)
    return 0;
  long us = count < 5 ? 50L << count : 1000L;
  struct timespec ts = {0, us * 1000L};
  nanosleep(&ts, NULL);
  return 1;
}

static void set_busy_wait(struct kvshm_store *st, bool wait) {
  sqlite3_busy_handler(st->db, wait ? busy_wait : NULL, st);
}

static int db_fail(kvshm *kv, sqlite3 *db, const char *what) {
  return kvshm__fail(KVSHM_ESQLITE, "cache '%s': SQLite %s failed: %s",
                     kv->name, what, db ? sqlite3_errmsg(db) : "no memory");
}

static int exec(sqlite3 *db, const char *s) {
  return sqlite3_exec(db, s, NULL, NULL, NULL);
}

/*
 * exec, trying again while SQLite says busy, for up to the busy timeout.
 * Some lock waits never reach the busy handler: PRAGMA journal_mode=WAL
 * right after a process was killed mid-transaction meets another
 * connection recovering the WAL, and fails at once with "database is
 * locked" (seen under check_pclear_torture's kills).
 */
static int exec_retry(sqlite3 *db, const char *s) {
  uint64_t until = kvshm__wall_ms() + BUSY_TIMEOUT_MS;
  for (unsigned n = 0;; n++) {
    int rc = exec(db, s);
    if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) || kvshm__wall_ms() >= until)
      return rc;
    struct timespec ts = {0, 1000000L * (n < 10 ? n + 1 : 10)};
    nanosleep(&ts, NULL);
  }
}

static int pragma_int(sqlite3 *db, const char *q, int64_t *out) {
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(db, q, -1, &st, NULL);
  if (rc != SQLITE_OK)
    return rc;
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *out = sqlite3_column_int64(st, 0);
    rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/*
 * Decide whether `db` is ours, new, or to be refused, using reads only.
 * Returns KVSHM_OK with *fresh set when the schema must be created.
 */
static int validate(kvshm *kv, sqlite3 *db, const char *path, bool *fresh,
                    int64_t *format) {
  int64_t app = 0, ver = 0, tables = 0;
  int rc = pragma_int(db, "PRAGMA application_id", &app);
  if (rc == SQLITE_NOTADB)
    return kvshm__fail(KVSHM_EBADDB,
                       "'%s' is not a SQLite database: give "
                       "cache '%s' another sqlite path",
                       path, kv->name);
  if (rc == SQLITE_CORRUPT)
    return kvshm__fail(KVSHM_EBADDB,
                       "'%s' is a corrupt SQLite database; it "
                       "was left untouched",
                       path);
  if (rc != SQLITE_OK)
    return db_fail(kv, db, "reading application_id");
  if (pragma_int(db, "PRAGMA user_version", &ver) ||
      pragma_int(db, "SELECT count(*) FROM sqlite_master", &tables))
    return kvshm__fail(KVSHM_EBADDB,
                       "'%s' cannot be read as a SQLite "
                       "database (%s); it was left untouched",
                       path, sqlite3_errmsg(db));
  *format = ver;
  if (app == 0 && ver == 0 && tables == 0) {
    *fresh = true;
    return KVSHM_OK;
  }
  if (app != APP_ID)
    return kvshm__fail(KVSHM_EBADDB,
                       "'%s' is a SQLite database of another "
                       "application (application_id 0x%llx); it was left "
                       "untouched: give cache '%s' its own file",
                       path, (unsigned long long)app, kv->name);
  if (ver > STORE_FORMAT)
    return kvshm__fail(KVSHM_EBADDB,
                       "'%s' has kvshm store format %lld, "
                       "newer than this library's %d: upgrade kvshm",
                       path, (long long)ver, STORE_FORMAT);
  int64_t ok = 0;
  if (pragma_int(db,
                 ver >= 2 ? "SELECT count(*) FROM sqlite_master WHERE "
                            "type='table' AND name IN ('kvshm_entries', "
                            "'kvshm_meta')"
                          : "SELECT count(*) FROM sqlite_master WHERE "
                            "type='table' AND name='kvshm_entries'",
                 &ok) ||
      ok != (ver >= 2 ? 2 : 1))
    return kvshm__fail(KVSHM_EBADDB,
                       "'%s' is marked as a kvshm store but "
                       "has no kvshm_entries table; it was left untouched",
                       path);
  *fresh = false;
  return KVSHM_OK;
}

#define ENTRIES_COLUMNS                                                        \
  "(hpos INTEGER NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL, flags "     \
  "INTEGER NOT NULL, expires_ms INTEGER NOT NULL, gen INTEGER NOT NULL, "      \
  "PRIMARY KEY(hpos, key)) WITHOUT ROWID;"
#define SCHEMA_REST                                                            \
  "CREATE INDEX kvshm_entries_expiry ON kvshm_entries(expires_ms) WHERE "      \
  "expires_ms > 0;"                                                            \
  "CREATE TABLE kvshm_meta(k TEXT PRIMARY KEY NOT NULL, v INTEGER NOT NULL);"

static const char schema[] =
    "CREATE TABLE kvshm_entries" ENTRIES_COLUMNS SCHEMA_REST;

/* Format 1 keyed rows by key alone and had no generations: rebuild the
 * table keyed by hash, every row in generation 0. */
static int quick_check(kvshm *kv, sqlite3 *db, char *what, size_t n);
static int damaged(kvshm *kv, const char *what);

static const char migrate_v1[] =
    "CREATE TABLE kvshm_entries_v2" ENTRIES_COLUMNS
    "INSERT INTO kvshm_entries_v2 SELECT kvshm_hpos(key), key, value, flags, "
    "expires_ms, 0 FROM kvshm_entries;"
    "DROP TABLE kvshm_entries;"
    "ALTER TABLE kvshm_entries_v2 RENAME TO kvshm_entries;" SCHEMA_REST;

int64_t kvshm__hpos(uint64_t h) {
  return (int64_t)(h ^ (1ull << 63));
}

static void sql_hpos(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  const void *k = sqlite3_value_blob(argv[0]);
  int n = sqlite3_value_bytes(argv[0]);
  sqlite3_result_int64(ctx,
                       kvshm__hpos(kvshm__key_hash(n ? k : "", (size_t)n)));
}

/*
 * SQLite cannot be used across fork(): its unix VFS keeps one record of the
 * POSIX locks per file per process, and a child inherits the parent's, so
 * even a connection the child opens itself takes no real lock and can
 * commit into a WAL file that the parent's last close deletes (data lost
 * without an error).  So this process counts its open connections, and a
 * child forked while there were any refuses SQLite with a clear error
 * instead.  Forking before opening a SQLite cache (or exec'ing in the
 * child, as Node's cluster and child_process do) is safe.
 */
static pthread_mutex_t conns_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t conns_pid; /* the process the count belongs to */
static int open_conns;  /* connections open in conns_pid */

static int conns_add(kvshm *kv, int delta) {
  pthread_mutex_lock(&conns_lock);
  pid_t me = getpid();
  int rc = KVSHM_OK;
  if (conns_pid != me && open_conns > 0)
    rc = kvshm__fail(KVSHM_ESQLITE,
                     "cache '%s': this process was forked from process %d "
                     "while that one had SQLite files open, and SQLite "
                     "cannot be used across fork(): open SQLite-backed "
                     "caches only in processes started with exec, or fork "
                     "before opening any",
                     kv->name, (int)conns_pid);
  else {
    conns_pid = me;
    open_conns += delta;
  }
  pthread_mutex_unlock(&conns_lock);
  return rc;
}

static void store_free(struct kvshm_store *st) {
  for (int i = 0; i < Q_N; i++)
    sqlite3_finalize(st->q[i]);
  sqlite3_close_v2(st->db);
  if (st->counted) {
    pthread_mutex_lock(&conns_lock);
    open_conns--;
    pthread_mutex_unlock(&conns_lock);
  }
  free(st);
}

/*
 * Before SQLite opens the file: create it ourselves, with the cache's mode
 * (SQLite would create it 0644 less the umask, readable by every local
 * user; its unix VFS gives -wal and -shm the main file's mode), and refuse
 * a symlink or a file of an untrusted owner, there or at -wal and -shm: a
 * WAL planted by another user would be replayed into our database.  SQLite
 * then opens the file with SQLITE_OPEN_NOFOLLOW, and -wal and -shm with
 * O_NOFOLLOW, so a link planted after these checks is refused as well.
 */
static int store_files_check(kvshm *kv, const char *path) {
  /* An existing file is looked at (lstat), never opened here: SQLite locks
   * it with POSIX record locks, which the kernel drops for the whole
   * process as soon as any descriptor of the file is closed, so opening
   * and closing it beside another connection of this process would let
   * two writers in (a commit was lost that way).  A new file is made here
   * (O_EXCL: no connection can have it open yet) to give it the mode. */
  unsigned mode = kvshm__file_mode(kv);
  int rc = kvshm__trusted_path(path, &kv->trust, "SQLite file");
  if (rc)
    return rc;
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd >= 0) {
    rc = fchmod(fd, mode) ? -errno : KVSHM_OK; /* exactly, whatever umask */
    close(fd);
    if (rc)
      return kvshm__fail(rc, "cannot set mode %o on SQLite file %s: %s", mode,
                         path, strerror(-rc));
  } else if (errno == EEXIST) { /* made meanwhile: look at it again */
    rc = kvshm__trusted_path(path, &kv->trust, "SQLite file");
    if (rc)
      return rc;
  } else if (errno == ELOOP) {
    return kvshm__fail(KVSHM_EOWNER,
                       "SQLite file %s is a symbolic link: kvshm does not "
                       "follow links there (another user may have planted "
                       "it); give the real path",
                       path);
  } else {
    return kvshm__fail(-errno, "cannot create SQLite file %s: %s", path,
                       strerror(errno));
  }
  static const char *const side[][2] = {{"-wal", "SQLite WAL file"},
                                        {"-shm", "SQLite shared-memory file"}};
  for (size_t i = 0; i < sizeof side / sizeof side[0]; i++) {
    char p[KVSHM_PATH_MAX + 8];
    snprintf(p, sizeof p, "%s%s", path, side[i][0]);
    rc = kvshm__trusted_path(p, &kv->trust, side[i][1]);
    if (rc)
      return rc;
  }
  return KVSHM_OK;
}

int kvshm__store_open_path(kvshm *kv, const char *path,
                           struct kvshm_store **out) {
  int rc = conns_add(kv, 0); /* a forked child must not even open one */
  if (rc)
    return rc;
  /* A reader (no write permission on the segment, segment.c) reads the
   * file as it is: it creates, sets up and converts nothing. */
  bool reader = kv->flags & KVSHM__READER;
  rc = reader ? kvshm__trusted_path(path, &kv->trust, "SQLite file")
              : store_files_check(kv, path);
  if (rc)
    return rc;
  struct kvshm_store *st = calloc(1, sizeof *st);
  if (!st)
    return -ENOMEM;
  st->pid = getpid();
  rc = sqlite3_open_v2(path, &st->db,
                       (reader ? SQLITE_OPEN_READONLY
                               : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                           SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
                       NULL);
  if (rc != SQLITE_OK) {
    rc = kvshm__fail(KVSHM_ESQLITE,
                     "cannot open SQLite file '%s' of cache "
                     "'%s': %s",
                     path, kv->name, sqlite3_errmsg(st->db));
    store_free(st);
    return rc;
  }
  sqlite3_extended_result_codes(st->db, 0);
  /* Check each cell's size against its page whenever a page is read, so
   * that more damage is an error (SQLITE_CORRUPT) than a wrong answer. */
  exec(st->db, "PRAGMA cell_size_check=ON");
  set_busy_wait(st, true);
  sqlite3_create_function(st->db, "kvshm_hpos", 1,
                          SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, sql_hpos,
                          NULL, NULL);
  /* Decide from one snapshot (another process may be creating the schema
   * this very moment), then create or convert it under the write lock,
   * deciding again there: of several processes opening a new file, one
   * creates it. */
  bool fresh = false;
  int64_t format = 0;
  rc = exec(st->db, "BEGIN") ? db_fail(kv, st->db, "BEGIN") : KVSHM_OK;
  if (!rc)
    rc = validate(kv, st->db, path, &fresh, &format);
  exec(st->db, rc ? "ROLLBACK" : "COMMIT");
  if (!rc && reader && (fresh || format < STORE_FORMAT))
    rc = kvshm__fail(KVSHM_EBADDB,
                     "SQLite file '%s' of cache '%s' is not set up for this "
                     "kvshm yet, and this handle may not write: open the "
                     "cache once with write permission",
                     path, kv->name);
  if (!rc && !reader && exec_retry(st->db, "PRAGMA journal_mode=WAL"))
    rc = db_fail(kv, st->db, "PRAGMA journal_mode=WAL");
  /* Persistent mode promises what survives a reboot, power cut included:
   * every commit reaches the disk.  Otherwise a power cut may lose the
   * last commits, never corrupt the file. */
  if (!rc && !reader &&
      exec(st->db, kv->hdr->persistent ? "PRAGMA synchronous=FULL"
                                       : "PRAGMA synchronous=NORMAL"))
    rc = db_fail(kv, st->db, "PRAGMA synchronous");
  /* Checkpoints are the reaper's (after each of its commits, and
   * kvshm__store_wal_trim): a writer making room then commits without
   * copying the WAL into the file, and the reaper's checkpoints do not
   * find the checkpoint lock taken.  Other processes checkpoint only past
   * WAL_FALLBACK_PAGES, should no reaper run. */
  if (!rc && !(kv->flags & KVSHM__AS_REAPER))
    sqlite3_wal_autocheckpoint(st->db, WAL_FALLBACK_PAGES);
  if (!rc && !fresh && format < STORE_FORMAT) { /* check before converting */
    char what[256];
    rc = quick_check(kv, st->db, what, sizeof what);
    if (!rc && what[0])
      rc = damaged(kv, what);
  }
  if (!rc && (fresh || format < STORE_FORMAT)) {
    char init[128];
    snprintf(init, sizeof init,
             "PRAGMA application_id=%d; PRAGMA user_version=%d;", APP_ID,
             STORE_FORMAT);
    if (exec(st->db, "BEGIN IMMEDIATE"))
      rc = db_fail(kv, st->db, "BEGIN IMMEDIATE");
    if (!rc)
      rc = validate(kv, st->db, path, &fresh, &format);
    if (!rc && fresh && (exec(st->db, schema) || exec(st->db, init)))
      rc = db_fail(kv, st->db, "creating the schema");
    else if (!rc && !fresh && format < STORE_FORMAT &&
             (exec(st->db, migrate_v1) || exec(st->db, init)))
      rc = db_fail(kv, st->db, "converting the file to format 2");
    if (!rc && exec(st->db, "COMMIT"))
      rc = db_fail(kv, st->db, "COMMIT of the schema");
    if (rc)
      exec(st->db, "ROLLBACK");
  }
  char putn[128 + PUT_ROWS * 40 + sizeof UPSERT_SET];
  int len = snprintf(putn, sizeof putn,
                     "INSERT INTO kvshm_entries(hpos, key, value, flags, "
                     "expires_ms, gen) VALUES ");
  for (int i = 0; i < PUT_ROWS; i++)
    len += snprintf(putn + len, sizeof putn - (size_t)len, "%s(?,?,?,?,?,?)",
                    i ? "," : "");
  snprintf(putn + len, sizeof putn - (size_t)len, "%s", UPSERT_SET);
  for (int i = 0; !rc && i < Q_N; i++)
    if (sqlite3_prepare_v3(st->db, i == Q_PUTN ? putn : sql[i], -1,
                           SQLITE_PREPARE_PERSISTENT, &st->q[i], NULL))
      rc = db_fail(kv, st->db, "preparing statements");
  if (!rc && (rc = conns_add(kv, 1)) == KVSHM_OK)
    st->counted = true;
  if (rc) {
    store_free(st);
    return rc;
  }
  *out = st;
  return KVSHM_OK;
}

/* This process's connection, opened on first use.  A handle carried across
 * fork() must not touch the parent's connection: it is abandoned, not
 * closed (closing would disturb the parent's locks), and the child is
 * refused (conns_add). */
static int store_get_conn(kvshm *kv, struct kvshm_store **out) {
  if (kv->store && kv->store->pid != getpid())
    kv->store = NULL; /* the parent's: leak it, never close it */
  if (!kv->store) {
    int rc = kvshm__store_open_path(kv, kv->hdr->sqlite_path, &kv->store);
    if (rc)
      return rc;
  }
  *out = kv->store;
  return KVSHM_OK;
}

void kvshm__store_close(kvshm *kv) {
  if (kv->store && kv->store->pid == getpid())
    store_free(kv->store);
  kv->store = NULL;
}

static int step_done(kvshm *kv, struct kvshm_store *st, sqlite3_stmt *q,
                     const char *what) {
  int rc = sqlite3_step(q);
  sqlite3_reset(q);
  sqlite3_clear_bindings(q);
  if (rc == SQLITE_BUSY && st->busy_until && kvshm__wall_ms() >= st->busy_until)
    return KVSHM__EBUSY; /* waited until the caller's deadline */
  return rc == SQLITE_DONE ? KVSHM_OK : db_fail(kv, st->db, what);
}

int kvshm__store_deadline(kvshm *kv, uint64_t until_ms) {
  struct kvshm_store *st;
  int rc = store_get_conn(kv, &st);
  if (!rc)
    st->busy_until = until_ms;
  return rc;
}

int kvshm__store_fetch(kvshm *kv, uint64_t h, const void *key, size_t klen,
                       uint64_t now, uint64_t gen, bool nowait,
                       struct kvshm_row *row) {
  struct kvshm_store *st;
  int rc = store_get_conn(kv, &st);
  if (rc)
    return rc;
  const _Atomic uint64_t *done = (_Atomic uint64_t *)&kv->hdr->pclear_done;
  uint64_t before = atomic_load_explicit(done, memory_order_acquire);
again:;
  sqlite3_stmt *q = st->q[Q_GET];
  sqlite3_bind_int64(q, 1, kvshm__hpos(h));
  sqlite3_bind_blob(q, 2, klen ? key : "", (int)klen, SQLITE_STATIC);
  sqlite3_bind_int64(q, 3, (sqlite3_int64)gen);
  if (nowait) /* under a stripe lock: never wait for another process */
    set_busy_wait(st, false);
  rc = sqlite3_step(q);
  if (rc == SQLITE_ROW) {
    int64_t exp = sqlite3_column_int64(q, 2);
    if ((exp > 0 && (uint64_t)exp <= now) ||
        kvshm__pclear_hides(kv, klen ? key : "", klen)) {
      rc = KVSHM_ENOTFOUND;
    } else {
      size_t n = (size_t)sqlite3_column_bytes(q, 0);
      const void *v = sqlite3_column_blob(q, 0);
      row->flags = (uint32_t)sqlite3_column_int64(q, 1);
      row->expires_ms = exp > 0 ? (uint64_t)exp : 0;
      row->vlen = n;
      rc = kvshm__scratch(kv, n);
      if (!rc) {
        if (n)
          memcpy(kv->scratch, v, n);
        row->val = kv->scratch;
      }
    }
  } else if (rc == SQLITE_DONE) {
    rc = KVSHM_ENOTFOUND;
  } else if (nowait && (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)) {
    rc = KVSHM__EBUSY;
  } else {
    rc = db_fail(kv, st->db, "reading a key");
  }
  sqlite3_reset(q);
  sqlite3_clear_bindings(q);
  if (nowait)
    set_busy_wait(st, true);
  /* A prefix clear's delete committed meanwhile: our snapshot may be from
   * before it, and its record no longer hides the row.  Read again. */
  uint64_t after = atomic_load_explicit(done, memory_order_acquire);
  if ((rc == KVSHM_OK || rc == KVSHM_ENOTFOUND) && after != before) {
    before = after;
    goto again;
  }
  return rc;
}

/* kvshm_meta's key for the prefix clears this segment has deleted. */
static void pclear_meta_key(kvshm *kv, char *buf, size_t n) {
  snprintf(buf, n, "pclear:%016" PRIx64, kv->hdr->nonce);
}

/*
 * Within a write transaction: delete the rows of every PENDING prefix clear
 * (clear.c), and record in kvshm_meta that this segment's clears up to the
 * highest of them are done.  A record whose generation the file already
 * has was deleted by a commit whose maker died before marking it: mark it
 * now (this never deletes rows written after that commit).
 */
int kvshm__store_pending(kvshm *kv) {
  struct kvshm_store *st = kv->store;
  char mk[40];
  uint64_t filed = 0, top = 0;
  bool read = false;
  int rc = KVSHM_OK;
  pclear_meta_key(kv, mk, sizeof mk);
  for (unsigned i = 0; !rc && i < KVSHM_CLEAR_RECS; i++) {
    uint64_t g;
    const struct kvshm_clear_rec *r = kvshm__pclear_rec(kv, i, &g);
    if (!r || st->txn_gen[i] == g ||
        atomic_load((_Atomic uint32_t *)&r->state) != KVSHM_REC_PENDING)
      continue;
    if (!read) {
      /* Only the file's owner deletes.  A segment that lost the file (its
       * name removed while a clear was PENDING, a newer segment over the
       * file) would delete the new owner's rows under the old prefix, and
       * commit it from a transaction that checks no owner (settle, the
       * destroy's fence).  Its records stay PENDING: its handles cannot
       * write the file again anyway (kvshm__store_owned). */
      uint64_t owner = 0;
      rc = kvshm__store_meta_get(kv, "owner", &owner);
      if (!rc && owner != kv->hdr->nonce)
        return KVSHM_OK;
      if (rc || (rc = kvshm__store_meta_get(kv, mk, &filed)))
        break;
    }
    read = true;
    if (g <= filed) {
      kvshm__pclear_mark_done(kv, i, g);
      continue;
    }
    unsigned char prefix[KVSHM_PREFIX_MAX];
    uint32_t plen = r->plen;
    memcpy(prefix, r->prefix, plen);
    sqlite3_stmt *q = st->q[Q_PDEL];
    sqlite3_bind_blob(q, 1, prefix, (int)plen, SQLITE_STATIC);
    sqlite3_bind_int(q, 2, (int)plen);
    rc = step_done(kv, st, q, "deleting a cleared prefix");
    if (!rc)
      st->txn_gen[i] = g;
    top = g > top ? g : top;
  }
  if (!rc && top)
    rc = kvshm__store_meta_raise(kv, mk, top);
  return rc;
}

int kvshm__store_begin(kvshm *kv) {
  struct kvshm_store *st;
  int rc = store_get_conn(kv, &st);
  if (rc)
    return rc;
  memset(st->txn_gen, 0, sizeof st->txn_gen);
  rc = step_done(kv, st, st->q[Q_BEGIN], "BEGIN");
  if (rc)
    return rc;
  /* No commit may follow a prefix clear's step but one that deletes its
   * rows (clear.c): this transaction is that one, if need be. */
  rc = kvshm__store_pending(kv);
  if (rc)
    kvshm__store_end(kv, false);
  return rc;
}

int kvshm__store_end(kvshm *kv, bool commit) {
  struct kvshm_store *st = kv->store;
  int rc = KVSHM_OK;
  if (commit && (rc = step_done(kv, st, st->q[Q_COMMIT], "COMMIT")) == 0) {
    for (unsigned i = 0; i < KVSHM_CLEAR_RECS; i++)
      if (st->txn_gen[i])
        kvshm__pclear_mark_done(kv, i, st->txn_gen[i]);
  } else {
    step_done(kv, st, st->q[Q_ROLLBACK], "ROLLBACK");
  }
  memset(st->txn_gen, 0, sizeof st->txn_gen);
  return rc;
}

int kvshm__store_put(kvshm *kv, uint64_t h, const void *key, size_t klen,
                     const void *val, size_t vlen, uint32_t flags,
                     uint64_t expires_ms, uint64_t gen) {
  struct kvshm_store *st;
  int rc = store_get_conn(kv, &st);
  if (rc)
    return rc;
  sqlite3_stmt *q = st->q[Q_PUT];
  sqlite3_bind_int64(q, 1, kvshm__hpos(h));
  sqlite3_bind_blob(q, 2, klen ? key : "", (int)klen, SQLITE_STATIC);
  sqlite3_bind_blob64(q, 3, vlen ? val : "", vlen, SQLITE_STATIC);
  sqlite3_bind_int64(q, 4, flags);
  sqlite3_bind_int64(q, 5, (sqlite3_int64)expires_ms);
  sqlite3_bind_int64(q, 6, (sqlite3_int64)gen);
  return step_done(kv, st, q, "writing a key");
}

int kvshm__store_put_rows(kvshm *kv, const struct kvshm__put *rows, size_t n,
                          uint64_t gen) {
  struct kvshm_store *st;
  int rc = store_get_conn(kv, &st);
  for (; !rc && n >= PUT_ROWS; rows += PUT_ROWS, n -= PUT_ROWS) {
    sqlite3_stmt *q = st->q[Q_PUTN];
    for (int i = 0; i < PUT_ROWS; i++) {
      const struct kvshm__put *r = &rows[i];
      int b = i * 6;
      sqlite3_bind_int64(q, b + 1, kvshm__hpos(r->h));
      sqlite3_bind_blob(q, b + 2, r->klen ? r->key : "", (int)r->klen,
                        SQLITE_STATIC);
      sqlite3_bind_blob64(q, b + 3, r->vlen ? r->val : "", r->vlen,
                          SQLITE_STATIC);
      sqlite3_bind_int64(q, b + 4, r->flags);
      sqlite3_bind_int64(q, b + 5, (sqlite3_int64)r->expires_ms);
      sqlite3_bind_int64(q, b + 6, (sqlite3_int64)gen);
    }
    rc = step_done(kv, st, q, "writing keys");
  }
  for (size_t i = 0; !rc && i < n; i++)
    rc = kvshm__store_put(kv, rows[i].h, rows[i].key, rows[i].klen, rows[i].val,
                          rows[i].vlen, rows[i].flags, rows[i].expires_ms, gen);
  return rc;
}

int kvshm__store_del(kvshm *kv, uint64_t h, const void *key, size_t klen) {
  struct kvshm_store *st;
  int rc = store_get_conn(kv, &st);
  if (rc)
    return rc;
  sqlite3_stmt *q = st->q[Q_DEL];
  sqlite3_bind_int64(q, 1, kvshm__hpos(h));
  sqlite3_bind_blob(q, 2, klen ? key : "", (int)klen, SQLITE_STATIC);
  return step_done(kv, st, q, "deleting a key");
}

int kvshm__store_expire(kvshm *kv, uint64_t now, int limit, int *removed) {
  struct kvshm_store *st;
  int rc = store_get_conn(kv, &st);
  if (rc)
    return rc;
  sqlite3_stmt *q = st->q[Q_EXPIRE];
  sqlite3_bind_int64(q, 1, (sqlite3_int64)now);
  sqlite3_bind_int(q, 2, limit);
  rc = step_done(kv, st, q, "expiring keys");
  *removed = rc ? 0 : sqlite3_changes(st->db);
  return rc;
}

int kvshm__store_gc(kvshm *kv, int64_t lo, int64_t hi, uint64_t gen,
                    int *removed) {
  struct kvshm_store *st;
  int rc = store_get_conn(kv, &st);
  if (rc)
    return rc;
  sqlite3_stmt *q = st->q[Q_GC];
  sqlite3_bind_int64(q, 1, lo);
  sqlite3_bind_int64(q, 2, hi);
  sqlite3_bind_int64(q, 3, (sqlite3_int64)gen);
  rc = step_done(kv, st, q, "removing cleared rows");
  *removed = rc ? 0 : sqlite3_changes(st->db);
  return rc;
}

int kvshm__store_meta_get(kvshm *kv, const char *k, uint64_t *v) {
  struct kvshm_store *st;
  int rc = store_get_conn(kv, &st);
  if (rc)
    return rc;
  sqlite3_stmt *q = st->q[Q_META_GET];
  sqlite3_bind_text(q, 1, k, -1, SQLITE_STATIC);
  *v = 0;
  rc = sqlite3_step(q);
  if (rc == SQLITE_ROW)
    *v = (uint64_t)sqlite3_column_int64(q, 0);
  rc = rc == SQLITE_ROW || rc == SQLITE_DONE
           ? KVSHM_OK
           : db_fail(kv, st->db, "reading kvshm_meta");
  sqlite3_reset(q);
  sqlite3_clear_bindings(q);
  return rc;
}

int kvshm__store_meta_raise(kvshm *kv, const char *k, uint64_t v) {
  struct kvshm_store *st;
  int rc = store_get_conn(kv, &st);
  if (rc)
    return rc;
  sqlite3_stmt *q = st->q[Q_META_RAISE];
  sqlite3_bind_text(q, 1, k, -1, SQLITE_STATIC);
  sqlite3_bind_int64(q, 2, (sqlite3_int64)v);
  return step_done(kv, st, q, "writing kvshm_meta");
}

int kvshm__store_owned(kvshm *kv) {
  uint64_t owner = 0;
  int rc = kvshm__store_meta_get(kv, "owner", &owner);
  if (rc || owner == kv->hdr->nonce)
    return rc;
  return kvshm__fail(KVSHM_EDESTROYED,
                     "cache '%s' no longer owns its SQLite file '%s': the "
                     "cache was destroyed and the file belongs to a newer "
                     "cache of that name (or another cache was opened over "
                     "the same file): open the cache again",
                     kv->name, kv->hdr->sqlite_path);
}

/*
 * Set kvshm_meta's owner to v, in a transaction of its own.  A claim (v is
 * this segment's nonce) is dropped if the segment was destroyed: that is
 * checked under SQLite's write lock, which kvshm_unlink takes once after
 * marking the segment (kvshm__store_fence), so a claim racing a destroy
 * either commits before the destroy returns or sees it, and never takes
 * the file back from the next segment over it.  Giving it up (v == 0)
 * happens only if this segment owns it.
 */
static int set_owner(kvshm *kv, uint64_t v) {
  struct kvshm_store *st;
  int rc = store_get_conn(kv, &st);
  if (rc)
    return rc;
  rc = kvshm__store_begin(kv);
  if (rc)
    return rc;
  uint64_t now = 0;
  if (v && atomic_load((_Atomic uint32_t *)&kv->hdr->destroyed))
    return kvshm__store_end(kv, false);
  if (!v && (kvshm__store_meta_get(kv, "owner", &now) || now != kv->hdr->nonce))
    return kvshm__store_end(kv, false); /* not ours to give up */
  sqlite3_stmt *q = st->q[Q_META_SET];
  sqlite3_bind_text(q, 1, "owner", -1, SQLITE_STATIC);
  sqlite3_bind_int64(q, 2, (sqlite3_int64)v);
  rc = step_done(kv, st, q, "writing kvshm_meta");
  if (!rc && v) { /* earlier segments' prefix-clear marks mean nothing now */
    char mk[40];
    pclear_meta_key(kv, mk, sizeof mk);
    q = st->q[Q_META_DROP];
    sqlite3_bind_text(q, 1, mk, -1, SQLITE_TRANSIENT);
    rc = step_done(kv, st, q, "writing kvshm_meta");
  }
  int end = kvshm__store_end(kv, !rc);
  return rc ? rc : end;
}

/*
 * Bring the WAL back to nothing when it has grown past max_bytes.  Each
 * commit's automatic checkpoint (PASSIVE, every 1000 pages) copies the
 * WAL into the file, but SQLite starts writing the WAL from its beginning
 * again only if a writer begins while every frame is copied: with two
 * processes writing back to back (the reaper, a writer making room), one
 * always begins while the other's checkpoint runs, and the WAL grew to
 * 25 times the file (1.9 GB over a 74 MB file in bench_store).  A TRUNCATE
 * checkpoint waits (busy handler) for the writer and the readers, copies
 * what is left, and cuts the WAL to zero bytes.  Nothing changes in the
 * database: a process killed during it leaves a WAL SQLite recovers.
 */
int kvshm__store_wal_trim(kvshm *kv, uint64_t max_bytes) {
  char wal[KVSHM_PATH_MAX + 8];
  struct stat sb;
  snprintf(wal, sizeof wal, "%s-wal", kv->hdr->sqlite_path);
  if (stat(wal, &sb) != 0 || (uint64_t)sb.st_size <= max_bytes)
    return KVSHM_OK;
  struct kvshm_store *st;
  int rc = store_get_conn(kv, &st);
  if (rc)
    return rc;
  /* Another process's automatic checkpoint holds the checkpoint lock
   * for a moment, and SQLite takes that lock without its busy handler:
   * try again until the deadline (kvshm__store_deadline). */
  for (;;) {
    rc = sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE,
                                   NULL, NULL);
    if (rc != SQLITE_BUSY || !st->busy_until ||
        kvshm__wall_ms() >= st->busy_until)
      break;
    struct timespec ts = {0, 1000000L};
    nanosleep(&ts, NULL);
  }
  if (rc == SQLITE_BUSY)
    return KVSHM_OK; /* a reader or a writer stayed: next time */
  return rc ? db_fail(kv, st->db, "checkpointing the WAL") : KVSHM_OK;
}

int kvshm__store_disown(kvshm *kv) {
  return set_owner(kv, 0);
}

int kvshm__store_fence(kvshm *kv) {
  int rc = kvshm__store_begin(kv);
  return rc ? rc : kvshm__store_end(kv, true);
}

/*
 * PRAGMA quick_check of the whole file, once per segment: when a segment is
 * made over an existing file (after a reboot, or a destroy), before it
 * claims the file.  Damage that happened while no segment used the file
 * (a disk error, a copy cut short, another program) is found here rather
 * than by a read in the middle of the application's work, and the file is
 * left as it was: nothing is written to it, and a WAL with frames in it is
 * not checkpointed into it.  quick_check reads every page and checks the
 * b-trees' structure (page types, cell bounds, order of keys, free pages);
 * it cannot see damage inside a row's bytes (a value changed in place
 * still parses), which only the values' users can.
 */
static int quick_check(kvshm *kv, sqlite3 *db, char *what, size_t n) {
  sqlite3_stmt *q;
  what[0] = '\0';
  if (sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &q, NULL))
    return db_fail(kv, db, "PRAGMA quick_check");
  int rc = sqlite3_step(q);
  if (rc == SQLITE_ROW) {
    const char *msg = (const char *)sqlite3_column_text(q, 0);
    if (msg && strcmp(msg, "ok") != 0)
      snprintf(what, n, "%s", msg);
    rc = KVSHM_OK;
  } else if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB) {
    snprintf(what, n, "%s", sqlite3_errmsg(db));
    rc = KVSHM_OK;
  } else {
    rc = db_fail(kv, db, "PRAGMA quick_check");
  }
  sqlite3_finalize(q);
  return rc;
}

static int damaged(kvshm *kv, const char *what) {
  return kvshm__fail(KVSHM_EBADDB,
                     "SQLite file '%s' of cache '%s' is damaged (PRAGMA "
                     "quick_check: %s); it was left untouched.  Restore it "
                     "from a backup, or move it away together with its -wal "
                     "and -shm files to start the cache empty (`sqlite3 "
                     "FILE .recover` saves the rows that can still be read)",
                     kv->hdr->sqlite_path, kv->name, what);
}

static int store_damage_check(kvshm *kv, struct kvshm_store *st) {
  char what[256];
  int rc = quick_check(kv, st->db, what, sizeof what);
  if (rc || !what[0])
    return rc;
  const char *path = kv->hdr->sqlite_path;
  char wal[KVSHM_PATH_MAX + 8];
  struct stat sb;
  snprintf(wal, sizeof wal, "%s-wal", path);
  if (stat(wal, &sb) == 0 && sb.st_size > 0) /* keep its frames there */
    sqlite3_db_config(st->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
  kvshm__store_close(kv);
  return damaged(kv, what);
}

int kvshm__store_sync(kvshm *kv, bool claim) {
  uint64_t g = 0, owner = 0;
  int rc = KVSHM_OK;
  claim = claim && !atomic_load((_Atomic uint32_t *)&kv->hdr->destroyed);
  if (claim) {
    rc = kvshm__store_meta_get(kv, "owner", &owner);
    /* Not ours yet: check it first.  A read that failed on an open
     * connection may have met damage, which is the better message. */
    if ((rc || owner != kv->hdr->nonce) && kv->store) {
      int bad = store_damage_check(kv, kv->store);
      if (bad)
        return bad;
    }
  }
  if (!rc)
    rc = kvshm__store_meta_get(kv, "clear_gen", &g);
  if (!rc)
    kvshm__clear_gen_raise(kv, g);
  if (!rc && claim && owner != kv->hdr->nonce)
    rc = set_owner(kv, kv->hdr->nonce);
  return rc;
}

int kvshm_store_stats_get(kvshm *kv, kvshm_store_stats *out) {
  kvshm__clear_detail();
  memset(out, 0, sizeof *out);
  if (!kv->hdr->sqlite_path[0])
    return KVSHM_OK;
  struct kvshm_store *st;
  int rc = store_get_conn(kv, &st);
  if (rc)
    return rc;
  sqlite3_stmt *q = st->q[Q_COUNT];
  sqlite3_bind_int64(q, 1, (sqlite3_int64)kvshm__now_ms(kv));
  sqlite3_bind_int64(q, 2, (sqlite3_int64)kvshm__clear_gen(kv));
  if (sqlite3_step(q) == SQLITE_ROW) {
    out->rows = (uint64_t)sqlite3_column_int64(q, 0);
    out->bytes = (uint64_t)sqlite3_column_int64(q, 1);
    out->expired = (uint64_t)sqlite3_column_int64(q, 2);
  } else {
    rc = db_fail(kv, st->db, "counting rows");
  }
  sqlite3_reset(q);
  struct stat sb;
  if (stat(kv->hdr->sqlite_path, &sb) == 0)
    out->file_bytes = (uint64_t)sb.st_size;
  return rc;
}

/* ---- scanning, for iteration over the SQLite tier ---- */

int kvshm__store_scan(kvshm *kv, int64_t lo, int64_t hi, uint64_t gen,
                      uint64_t now, bool nowait, kvshm__scan_fn fn, void *ctx) {
  struct kvshm_store *st;
  int rc = store_get_conn(kv, &st);
  if (rc)
    return rc;
  const _Atomic uint64_t *done = (_Atomic uint64_t *)&kv->hdr->pclear_done;
  uint64_t before = atomic_load_explicit(done, memory_order_acquire);
  sqlite3_stmt *q = st->q[Q_SCAN];
  sqlite3_bind_int64(q, 1, lo);
  sqlite3_bind_int64(q, 2, hi);
  sqlite3_bind_int64(q, 3, (sqlite3_int64)gen);
  sqlite3_bind_int64(q, 4, (sqlite3_int64)now);
  if (nowait)
    set_busy_wait(st, false);
  while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
    size_t kl = (size_t)sqlite3_column_bytes(q, 1);
    size_t vl = (size_t)sqlite3_column_bytes(q, 2);
    const void *k = sqlite3_column_blob(q, 1);
    const void *v = sqlite3_column_blob(q, 2);
    int64_t exp = sqlite3_column_int64(q, 4);
    if (kl > KVSHM_KEY_MAX || (!k && kl) || /* not a key we could write */
        kvshm__pclear_hides(kv, kl ? k : "", kl))
      continue;
    struct kvshm_row row = {v ? v : "", vl,
                            (uint32_t)sqlite3_column_int64(q, 3),
                            exp > 0 ? (uint64_t)exp : 0};
    int frc = fn(ctx, (uint64_t)sqlite3_column_int64(q, 0) ^ (1ull << 63), k,
                 kl, &row);
    if (frc) {
      rc = frc;
      break;
    }
  }
  if (rc == SQLITE_DONE)
    rc = KVSHM_OK;
  else if (nowait && (rc == SQLITE_BUSY || rc == SQLITE_LOCKED))
    rc = KVSHM__EBUSY;
  else if (rc > 0)
    rc = db_fail(kv, st->db, "walking rows");
  sqlite3_reset(q); /* the read transaction ends here: no snapshot kept */
  sqlite3_clear_bindings(q);
  if (nowait)
    set_busy_wait(st, true);
  /* A prefix clear's delete committed during the walk (see fetch): the
   * caller reads the range again, as after a busy SQLite. */
  if (!rc && atomic_load_explicit(done, memory_order_acquire) != before)
    rc = KVSHM__EBUSY;
  return rc;
}

int kvshm__store_open_check(kvshm *kv) {
  struct kvshm_store *st;
  return store_get_conn(kv, &st);
}

int kvshm__store_verify(kvshm *kv, void (*problem)(void *, const char *),
                        void *ctx) {
  struct kvshm_store *st;
  int rc = store_get_conn(kv, &st);
  if (rc) {
    problem(ctx, kvshm_errdetail());
    return 1;
  }
  sqlite3_stmt *q;
  if (sqlite3_prepare_v2(st->db, "PRAGMA quick_check(20)", -1, &q, NULL)) {
    problem(ctx, sqlite3_errmsg(st->db));
    return 1;
  }
  int problems = 0;
  while (sqlite3_step(q) == SQLITE_ROW) {
    const char *msg = (const char *)sqlite3_column_text(q, 0);
    if (msg && strcmp(msg, "ok") != 0) {
      char line[KVSHM_PATH_MAX + 512];
      snprintf(line, sizeof line, "SQLite %s: %.500s", kv->hdr->sqlite_path,
               msg);
      problem(ctx, line);
      problems++;
    }
  }
  sqlite3_finalize(q);
  return problems;
}
