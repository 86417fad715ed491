/*
 * watch.c - the reaper watchdog: one thread per handle of a SQLite cache,
 * so that a dead reaper is replaced even when nobody writes (persistent
 * mode's bound depends on it).
 *
 * The thread tries the header's reaper_lock (layout.h) every
 * WATCH_POLL_MS: while a reaper holds it, the try fails at once; once the
 * reaper has died the kernel has marked the lock's owner dead and the try
 * gets EOWNERDEAD.  The watchdog marks it consistent, lets go at once, and
 * starts a reaper (kvshm__reaper_ensure: of all the processes whose
 * watchdogs see it, the first to move reaper_spawn_ms spawns it).  So a
 * reaper killed at any instant is replaced within about WATCH_POLL_MS plus
 * SPAWN_WINDOW_MS plus the exec of kvshm-reaper, whatever the processes are
 * doing.  It polls rather than blocking in pthread_mutex_timedlock because
 * a thread asleep in the kernel on a futex whose page another process
 * truncates away gets EFAULT, on which glibc aborts the whole process
 * ("The futex facility returned an unexpected error code"); a trylock
 * never enters the kernel.
 *
 * The thread maps the header on its own (from the segment's descriptor),
 * so kvshm_close only raises `stop` and leaves: the thread notices within
 * WATCH_POLL_MS and exits.  It never touches the handle, which may be
 * gone by then; the watch itself is freed by whichever of the two lets go
 * of it last.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define WATCH_POLL_MS 50u
#define WATCH_RETRY_MS 200u

struct kvshm_watch {
  _Atomic int stop; /* set by kvshm_close */
  _Atomic int refs; /* the handle and the thread: the last one frees */
  pid_t pid;        /* the process the thread runs in */
  kvshm view;       /* a handle over the thread's own header mapping */
};

static void watch_put(struct kvshm_watch *w) {
  if (atomic_fetch_sub(&w->refs, 1) == 1) {
    kvshm__guard_remove(&w->view);
    munmap(w->view.base, w->view.size);
    free(w);
  }
}

static void nap(uint32_t ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void *watch_main(void *arg) {
  struct kvshm_watch *w = arg;
  struct kvshm_hdr *h = w->view.hdr;
  pthread_mutex_t *m = &h->reaper_lock;
  char why[120];
  while (!atomic_load(&w->stop) && !kvshm__cut_short(&w->view) &&
         !atomic_load((_Atomic uint32_t *)&h->destroyed)) {
    if (kvshm__mutex_check(m, why, sizeof why)) {
      nap(WATCH_POLL_MS); /* damaged: the handle's next open or repair */
      continue;           /* makes it again; verify reports it */
    }
    int rc = pthread_mutex_trylock(m);
    if (rc == EBUSY) { /* a reaper holds it: alive */
      nap(WATCH_POLL_MS);
      continue;
    }
    if (rc == EOWNERDEAD) {
      pthread_mutex_consistent(m);
      rc = 0;
    }
    if (rc == 0) {
      pthread_mutex_unlock(m);
      if (!atomic_load(&w->stop))
        (void)kvshm__reaper_ensure(&w->view);
      nap(WATCH_RETRY_MS);
      continue;
    }
    nap(WATCH_POLL_MS); /* an unusable lock: verify reports it */
  }
  watch_put(w);
  return NULL;
}

int kvshm__watch_start(kvshm *kv) {
  const char *mode = secure_getenv("KVSHM_REAPER"); /* see reaper.c */
  if (kv->watch || kv->seg_fd < 0 || (mode && strcmp(mode, "off") == 0))
    return KVSHM_OK;
  struct kvshm_watch *w = calloc(1, sizeof *w);
  if (!w)
    return -ENOMEM;
  void *base = mmap(NULL, KVSHM_HDR_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
                    kv->seg_fd, 0);
  if (base == MAP_FAILED) {
    int e = errno;
    free(w);
    return kvshm__fail(-e, "cannot map cache '%s' for its watchdog: %s",
                       kv->name, strerror(e));
  }
  atomic_store(&w->refs, 2);
  w->pid = getpid();
  w->view.base = base;
  w->view.size = KVSHM_HDR_SIZE;
  w->view.hdr = base;
  w->view.seg_fd = -1;
  w->view.trust = kv->trust; /* the reaper it starts gets them (reaper.c) */
  memcpy(w->view.name, kv->name, sizeof w->view.name);
  kvshm__guard_add(&w->view); /* a file cut short ends the watch */
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256u << 10);
  pthread_t t;
  int rc = pthread_create(&t, &attr, watch_main, w);
  pthread_attr_destroy(&attr);
  if (rc) {
    munmap(base, KVSHM_HDR_SIZE);
    free(w);
    return kvshm__fail(-rc, "cannot start the watchdog of cache '%s': %s",
                       kv->name, strerror(rc));
  }
  kv->watch = w;
  return KVSHM_OK;
}

void kvshm__watch_stop(kvshm *kv) {
  if (kv->watch && kv->watch->pid != getpid()) {
    /* A forked child's copy: the thread stayed in the parent. */
    kvshm__guard_remove(&kv->watch->view);
    munmap(kv->watch->view.base, kv->watch->view.size);
    free(kv->watch);
  } else if (kv->watch) {
    atomic_store(&kv->watch->stop, 1);
    watch_put(kv->watch);
  }
  kv->watch = NULL;
}
