/*
 * hash.c - the 64-bit hash that places keys in stripes and buckets, and
 * checksums entries.  Eight bytes per step with a multiply-xorshift mix and
 * the splitmix64 finaliser: fast for short keys, well mixed in every bit.
 * Changing it moves every key: bump KVSHM_FORMAT.
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

uint64_t kvshm__hash(const void *data, size_t len, uint64_t seed) {
  const unsigned char *p = data;
  uint64_t h = seed ^ (len * K3);
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
  h ^= h >> 30;
  h *= K2;
  h ^= h >> 27;
  h *= K3;
  h ^= h >> 31;
  return h;
}
