/*
 * torture.h - what the torture driver (torture.c), its C worker (worker.c)
 * and its Node worker (worker.js) agree on: key names, the self-checking
 * value format, and the journal every worker appends to.  worker.js repeats
 * these definitions; change both together.
 *
 * Keys (ASCII):
 *   k.<w>.<j>           writer w's own key j: only incarnations of writer w
 *                       set, set NX, set XX or delete it
 *   s.<w>.<j>           writer w's stable key j: written by the driver before
 *                       the first round, then only overwritten (set, set
 *                       XX), never deleted, so it exists throughout every walk
 *   c.<r>.<i>           shared counter i of round r: incr by 1 from everyone
 *   n.<r>.<e>.<x>       claim key x of epoch e in round r: set NX by everyone,
 *                       at most one may win
 *
 * Value (little-endian), flags word TV_FLAGS (the addon's Buffer type):
 *   0  u32 TV_MAGIC      4  u32 total length     8  u32 writer id
 *   12 u16 key length    14 u16 0                16 u64 sequence number
 *   24 key bytes, then the payload (random bytes, 10 B .. 200 KB)
 *   last 4 bytes: u32 FNV-1a of everything before it
 * A sequence number is (incarnation << 32) | n, n counting from 1 in each
 * incarnation of a writer (incarnation 0 is the driver's prefill).
 *
 * Journal: one file per incarnation of a writer, fixed 32-byte records
 * (struct trec), appended with O_APPEND.  Before an operation starts its
 * INFLIGHT record is written (in the same write() as the previous
 * operation's ACK); after it returns its ACK is queued.  After a SIGKILL, an
 * INFLIGHT without ACK is an operation that may or may not have happened.
 */
#ifndef KVSHM_TORTURE_H
#define KVSHM_TORTURE_H

#include <stddef.h>
#include <stdint.h>

#define TV_MAGIC 0x56545254u /* "TRTV" */
#define TV_HDR 24u
#define TV_FLAGS 1u         /* the addon's T_BUFFER: Node reads a Buffer */
#define TV_CTR_FLAGS 0x103u /* the addon's T_NUMBER | ASCII, as Node's incr */
#define TV_PAYLOAD_MIN 10u
#define TV_PAYLOAD_MAX (200u * 1024u)
#define TV_KEY_MAX 64u
#define TV_BUF_MAX (TV_HDR + TV_KEY_MAX + TV_PAYLOAD_MAX + 4u)

/* Journal record types. */
enum { R_INFLIGHT = 1, R_ACK = 2, R_SEE = 3, R_FAIL = 4 };
/* Operations. */
enum {
  OP_SET = 1,
  OP_SETNX = 2,
  OP_SETXX = 3,
  OP_DEL = 4,
  OP_INCR = 5,
  OP_GET = 6,
  OP_WALK = 7,
  OP_CLAIM = 8
};
/* Key kinds (struct trec.kind).  K_OTHER: a key the worker does not own
 * (another writer's key, a claim key), read for torn/foreign checks only. */
enum { K_OWN = 1, K_STABLE = 2, K_CTR = 3, K_CLAIM = 4, K_OTHER = 5 };

/* Failures a worker detects itself (R_FAIL records, trec.kind). */
enum {
  F_TORN = 1,         /* checksum, magic or length wrong */
  F_FOREIGN = 2,      /* a well-formed value of another key or writer */
  F_WALK_DUP = 3,     /* a key that exists throughout a walk seen twice */
  F_WALK_MISSING = 4, /* a stable key missing from a walk */
  F_CTR_REGRESS = 5,  /* a counter read lower than this process saw before */
  F_ERROR = 6,        /* an operation returned an unexpected error */
  F_BADKEY = 7,       /* a walk returned a key nobody writes */
  F_WORKER_NFAIL = 8
};

/* rc of a GET whose value failed its checks (not an observation). */
#define RC_INVALID 1

struct trec {
  uint8_t type;  /* R_* */
  uint8_t op;    /* OP_*; for R_FAIL: the operation it happened in */
  uint8_t kind;  /* K_*; for R_FAIL: F_* */
  uint8_t lang;  /* 0 C worker, 1 Node worker */
  uint32_t idx;  /* key index j, counter i, claim x */
  uint32_t idx2; /* claim epoch; for K_OTHER gets: the writer read */
  int32_t rc;    /* ACK: the status; SEE: 0 */
  uint64_t seq;  /* set/claim: the seq written; get/see: the seq read (0 =
                    absent); incr: the result; walk ACK: entries seen */
  uint64_t t_us; /* CLOCK_MONOTONIC, microseconds */
};
_Static_assert(sizeof(struct trec) == 32, "journal record is 32 bytes");

/* ---- common.c --------------------------------------------------------- */

uint64_t t_now_us(void);
uint64_t t_rand(uint64_t *state); /* xorshift64* */
uint32_t t_fnv1a(const void *data, size_t len);

/* Build a value for key/klen into buf (TV_BUF_MAX bytes); returns its length.
 * payload bytes are random (from *rng). */
size_t tv_make(uint8_t *buf, size_t payload, const char *key, size_t klen,
               uint32_t writer, uint64_t seq, uint64_t *rng);
/* A random payload size: mostly small, some large (10 B .. 200 KB). */
size_t tv_payload_size(uint64_t *rng);
/*
 * Check a value read for key/klen: 0 if it is well-formed, of this key, and
 * (want_writer >= 0) of that writer; F_TORN or F_FOREIGN otherwise, with a
 * reason in *why.  *writer and *seq receive what the value says.
 */
int tv_check(const uint8_t *buf, size_t len, uint32_t flags, const char *key,
             size_t klen, int64_t want_writer, uint32_t nwriters,
             uint32_t *writer, uint64_t *seq, const char **why);
/* Check a counter's value: decimal ASCII with the counter flags; *v gets it.
 * 0 or F_TORN. */
int tv_check_counter(const uint8_t *buf, size_t len, uint32_t flags,
                     int64_t *v);

/* Parse a key into kind (K_OWN, K_STABLE, K_CTR, K_CLAIM) and numbers a, b,
 * c as named in the key; -1 if it is none of ours. */
int t_parse_key(const void *key, size_t klen, uint32_t *a, uint32_t *b,
                uint32_t *c);

/* Buffered journal: records queue until jw_flush (one write()). */
struct jw {
  int fd;
  struct trec *buf;
  size_t n, cap;
};
int jw_open(struct jw *j, const char *path);
void jw_push(struct jw *j, const struct trec *r);
void jw_flush(struct jw *j);

/* The C worker's main (worker.c): argv as the driver passes it. */
int worker_main(int argc, char **argv);

#endif /* KVSHM_TORTURE_H */
