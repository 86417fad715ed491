/*
 * common.c - the value format, key names, clock, random numbers and the
 * journal shared by the torture driver and its C worker (torture.h).
 */
#include "torture.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

uint64_t t_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t t_rand(uint64_t *s) {
  uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545f4914f6cdd1dull;
}

uint32_t t_fnv1a(const void *data, size_t len) {
  const uint8_t *p = data;
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < len; i++) {
    h ^= p[i];
    h *= 16777619u;
  }
  return h;
}

static void put32(uint8_t *p, uint32_t v) {
  memcpy(p, &v, 4); /* little-endian hosts only (x86-64, arm64) */
}
static uint32_t get32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

size_t tv_payload_size(uint64_t *rng) {
  uint64_t r = t_rand(rng);
  unsigned pick = (unsigned)(r % 100);
  r >>= 8;
  if (pick < 85) /* small: 10..200 B */
    return TV_PAYLOAD_MIN + r % 191;
  if (pick < 97) /* medium: 200 B .. 8 KB */
    return 200 + r % (8192 - 200);
  return 8192 + r % (TV_PAYLOAD_MAX - 8192 + 1); /* large: .. 200 KB */
}

size_t tv_make(uint8_t *buf, size_t payload, const char *key, size_t klen,
               uint32_t writer, uint64_t seq, uint64_t *rng) {
  size_t len = TV_HDR + klen + payload + 4;
  put32(buf, TV_MAGIC);
  put32(buf + 4, (uint32_t)len);
  put32(buf + 8, writer);
  put32(buf + 12, (uint32_t)klen);
  memcpy(buf + 16, &seq, 8);
  memcpy(buf + TV_HDR, key, klen);
  uint8_t *p = buf + TV_HDR + klen;
  size_t i = 0;
  for (; i + 8 <= payload; i += 8) {
    uint64_t r = t_rand(rng);
    memcpy(p + i, &r, 8);
  }
  if (i < payload) {
    uint64_t r = t_rand(rng);
    memcpy(p + i, &r, payload - i);
  }
  put32(buf + len - 4, t_fnv1a(buf, len - 4));
  return len;
}

int tv_check(const uint8_t *buf, size_t len, uint32_t flags, const char *key,
             size_t klen, int64_t want_writer, uint32_t nwriters,
             uint32_t *writer, uint64_t *seq, const char **why) {
  *writer = 0;
  *seq = 0;
  if (len < TV_HDR + 4 + TV_PAYLOAD_MIN) {
    *why = "too short for a value";
    return F_TORN;
  }
  if (flags != TV_FLAGS) {
    *why = "flags word is not the value's";
    return F_FOREIGN; /* as Node sees it: not a Buffer */
  }
  if (get32(buf) != TV_MAGIC) {
    *why = "bad magic";
    return F_TORN;
  }
  if (get32(buf + 4) != len) {
    *why = "length field differs from the length read";
    return F_TORN;
  }
  if (get32(buf + len - 4) != t_fnv1a(buf, len - 4)) {
    *why = "checksum mismatch";
    return F_TORN;
  }
  uint32_t vk = get32(buf + 12);
  *writer = get32(buf + 8);
  memcpy(seq, buf + 16, 8);
  if (vk > len - TV_HDR - 4 - TV_PAYLOAD_MIN) {
    *why = "key length field out of range";
    return F_TORN;
  }
  if (vk != klen || memcmp(buf + TV_HDR, key, klen) != 0) {
    *why = "value of another key";
    return F_FOREIGN;
  }
  if ((want_writer >= 0 && *writer != (uint64_t)want_writer) ||
      *writer >= nwriters) {
    *why = "value of another writer";
    return F_FOREIGN;
  }
  if (*seq == 0) {
    *why = "sequence number 0";
    return F_FOREIGN;
  }
  return 0;
}

int tv_check_counter(const uint8_t *buf, size_t len, uint32_t flags,
                     int64_t *v) {
  if (flags != TV_CTR_FLAGS || len == 0 || len > 18)
    return F_TORN;
  int64_t x = 0;
  for (size_t i = 0; i < len; i++) {
    if (buf[i] < '0' || buf[i] > '9')
      return F_TORN;
    x = x * 10 + (buf[i] - '0');
  }
  *v = x;
  return 0;
}

/* Read a decimal number at *p (advancing), followed by `end` or the end. */
static int num(const char **p, const char *lim, char end, uint32_t *out) {
  const char *s = *p;
  uint64_t v = 0;
  if (s >= lim || *s < '0' || *s > '9')
    return -1;
  while (s < lim && *s >= '0' && *s <= '9') {
    v = v * 10 + (uint64_t)(*s - '0');
    if (v > UINT32_MAX)
      return -1;
    s++;
  }
  if (end ? (s >= lim || *s != end) : s != lim)
    return -1;
  *out = (uint32_t)v;
  *p = end ? s + 1 : s;
  return 0;
}

int t_parse_key(const void *key, size_t klen, uint32_t *a, uint32_t *b,
                uint32_t *c) {
  const char *p = key, *lim = p + klen;
  *a = *b = *c = 0;
  if (klen < 4 || p[1] != '.')
    return -1;
  char k = p[0];
  p += 2;
  if (k == 'n')
    return num(&p, lim, '.', a) || num(&p, lim, '.', b) || num(&p, lim, 0, c)
               ? -1
               : K_CLAIM;
  if (num(&p, lim, '.', a) || num(&p, lim, 0, b))
    return -1;
  return k == 'k' ? K_OWN : k == 's' ? K_STABLE : k == 'c' ? K_CTR : -1;
}

int jw_open(struct jw *j, const char *path) {
  j->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  j->n = 0;
  j->cap = 256;
  j->buf = malloc(j->cap * sizeof *j->buf);
  return j->fd < 0 || !j->buf ? -1 : 0;
}

void jw_push(struct jw *j, const struct trec *r) {
  if (j->n == j->cap)
    jw_flush(j);
  j->buf[j->n++] = *r;
}

void jw_flush(struct jw *j) {
  const char *p = (const char *)j->buf;
  size_t left = j->n * sizeof *j->buf;
  while (left) {
    ssize_t w = write(j->fd, p, left);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      perror("torture worker: journal write");
      _exit(3);
    }
    p += w;
    left -= (size_t)w;
  }
  j->n = 0;
}
