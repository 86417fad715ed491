/*
 * hash.c - the 64-bit hash that places keys in stripes and buckets
 * (kvshm__hash), and the one that checksums entries (kvshm__sum).  Eight
 * bytes per step with a multiply-xorshift mix and the splitmix64
 * finaliser: fast for short keys, well mixed in every bit.  Changing
 * either changes the segment's meaning: bump KVSHM_FORMAT.
 */
#include "internal.h"

#define K1 0x9e3779b97f4a7c15ull
#define K2 0xbf58476d1ce4e5b9ull
#define K3 0x94d049bb133111ebull

static inline uint64_t load64(const unsigned char *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

static inline uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v * K1;
  h = (h << 31) | (h >> 33);
  return h * K2;
}

static inline uint64_t finish(uint64_t h) {
  h ^= h >> 30;
  h *= K2;
  h ^= h >> 27;
  h *= K3;
  h ^= h >> 31;
  return h;
}

/* Mix in len bytes eight at a time, the last few with their count, and
 * finish. */
static inline uint64_t words(uint64_t h, const unsigned char *p, size_t len) {
  while (len >= 8) {
    h = mix(h, load64(p));
    p += 8;
    len -= 8;
  }
  if (len) {
    uint64_t v = 0;
    memcpy(&v, p, len);
    h = mix(h, v ^ ((uint64_t)len << 56));
  }
  return finish(h);
}

static inline uint64_t rotl(uint64_t x, int r) {
  return (x << r) | (x >> (64 - r));
}

/*
 * The checksum: the same mix over four independent lanes of 8 bytes each,
 * so that a value's words are mixed four at a time rather than in one
 * chain of dependent multiplies (a get checks every byte it returns).  Each
 * step is a bijection of its lane for a given word, so a change to any one
 * word always changes the lane, and the lanes are folded before the
 * finaliser; a damaged entry passes only by a 32-bit collision.
 */
uint64_t kvshm__sum(const void *data, size_t len, uint64_t seed) {
  const unsigned char *p = data;
  uint64_t a = seed ^ (len * K3), b = seed ^ K1, c = seed ^ K2, d = ~seed;
  while (len >= 32) {
    a = mix(a, load64(p));
    b = mix(b, load64(p + 8));
    c = mix(c, load64(p + 16));
    d = mix(d, load64(p + 24));
    p += 32;
    len -= 32;
  }
  return words(a ^ rotl(b, 17) ^ rotl(c, 34) ^ rotl(d, 51), p, len);
}

uint64_t kvshm__hash(const void *data, size_t len, uint64_t seed) {
  return words(seed ^ (len * K3), data, len);
}
