/*
 * guard.c - a segment file cut short under us is an error, not a SIGBUS.
 *
 * Any process with write access to /dev/shm/kvshm.NAME can ftruncate it.
 * Every page past the new end then raises SIGBUS in every process that
 * touches it through its mapping, which would kill a Node worker on its
 * next get.  Checking the file's size before every access would cost a
 * system call per operation, so instead each mapping is registered here,
 * and a SIGBUS handler that finds the faulting address inside one of them
 * maps private zero pages over the rest of that mapping and marks it.  The
 * faulting access then reads zeros (an empty bucket, a free slot; a write
 * lands in private memory) and completes; the next stripe lock, and the
 * operation's own end, see the mark and return KVSHM_ECORRUPT.  Faults
 * outside our mappings go to the handler that was there before, or to the
 * default action.
 *
 * The registry is a fixed array of atomics so that the handler never takes
 * a lock or allocates; more than GUARD_MAX mappings at once go unguarded.
 */
#include "internal.h"

#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GUARD_MAX 1024

static struct guard {
  _Atomic uintptr_t base; /* 0: slot free */
  _Atomic size_t size;
  _Atomic int cut; /* set by the handler */
} guards[GUARD_MAX];

static struct sigaction previous;
static pthread_once_t installed = PTHREAD_ONCE_INIT;
static uintptr_t page_size;

static void on_sigbus(int sig, siginfo_t *si, void *uc) {
  uintptr_t a = (uintptr_t)si->si_addr;
  for (int i = 0; i < GUARD_MAX; i++) {
    uintptr_t base = atomic_load(&guards[i].base);
    size_t size = atomic_load(&guards[i].size);
    if (!base || a < base || a - base >= size)
      continue;
    uintptr_t page = a & ~(page_size - 1);
    void *p = mmap((void *)page, base + size - page, PROT_READ | PROT_WRITE,
                   MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) {
      atomic_store(&guards[i].cut, 1);
      return; /* the access is retried and reads zeros */
    }
  }
  if ((previous.sa_flags & SA_SIGINFO) && previous.sa_sigaction) {
    previous.sa_sigaction(sig, si, uc);
  } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
    previous.sa_handler(sig);
  } else { /* the default action, on the retried access */
    signal(SIGBUS, SIG_DFL);
  }
}

static void install(void) {
  page_size = (uintptr_t)sysconf(_SC_PAGESIZE);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_sigbus;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGBUS, &sa, &previous);
}

void kvshm__guard_add(kvshm *kv) {
  pthread_once(&installed, install);
  for (int i = 0; i < GUARD_MAX; i++) {
    uintptr_t none = 0;
    /* Claim with an impossible base, so the handler ignores the slot
     * until its size is in place. */
    if (!atomic_compare_exchange_strong(&guards[i].base, &none, 1))
      continue;
    atomic_store(&guards[i].cut, 0);
    atomic_store(&guards[i].size, kv->size);
    atomic_store(&guards[i].base, (uintptr_t)kv->base);
    kv->guard_slot = i + 1;
    return;
  }
}

void kvshm__guard_remove(kvshm *kv) {
  if (!kv->guard_slot)
    return;
  struct guard *g = &guards[kv->guard_slot - 1];
  atomic_store(&g->size, 0);
  atomic_store(&g->base, 0);
  kv->guard_slot = 0;
}

bool kvshm__cut_short(const kvshm *kv) {
  return kv->guard_slot && atomic_load_explicit(&guards[kv->guard_slot - 1].cut,
                                                memory_order_relaxed);
}

int kvshm__cut_short_error(kvshm *kv) {
  struct stat sb;
  long long now = kv->seg_fd >= 0 && fstat(kv->seg_fd, &sb) == 0
                      ? (long long)sb.st_size
                      : -1;
  return kvshm__fail(KVSHM_ECORRUPT,
                     "the segment file of cache '%s' was cut short by "
                     "another process (%lld bytes, its header says %llu): "
                     "this handle can no longer be used.  Close it, destroy "
                     "the cache (kvshm-cli destroy %s) and open it again",
                     kv->name, now, (unsigned long long)kv->size, kv->name);
}
