/*
 * trust.c - whose files a cache may use, and opening them without being
 * led elsewhere.
 *
 * Every file a cache touches (the segment, the SQLite file and its -wal and
 * -shm, the reaper's log) can be planted by another local user before we
 * get to it: a segment pre-created under our name, a symlink where our log
 * will be.  The rules, those of OpenSSH for its keys and systemd for its
 * runtime files:
 *   - never follow a symlink in the last component (O_NOFOLLOW);
 *   - only regular files;
 *   - the owner is this process's effective uid, or one the caller trusts
 *     by uid or group (kvshm_config.trust), else KVSHM_EOWNER;
 *   - a file we create gets exactly the mode asked for, whatever the umask
 *     (fchmod after creating it with O_EXCL).
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

void kvshm__trust_from(struct kvshm__trust *t, const kvshm_config *c) {
  t->flags = c ? c->trust : 0;
  t->uid = c ? c->trust_uid : 0;
  t->gid = c ? c->trust_gid : 0;
}

int kvshm__trusted(const struct kvshm__trust *t, const struct stat *sb,
                   const char *what, const char *path) {
  if (!S_ISREG(sb->st_mode))
    return kvshm__fail(KVSHM_EOWNER,
                       "%s %s is not a regular file: remove it, or use "
                       "another path",
                       what, path);
  if (sb->st_uid == geteuid())
    return KVSHM_OK;
  if ((t->flags & KVSHM_TRUST_UID) && sb->st_uid == t->uid)
    return KVSHM_OK;
  if ((t->flags & KVSHM_TRUST_GID) && sb->st_gid == t->gid)
    return KVSHM_OK;
  return kvshm__fail(KVSHM_EOWNER,
                     "%s %s belongs to uid %u (group %u), not to this "
                     "process's uid %u: another user could read or change "
                     "it.  Remove it, or trust that owner (trust_uid / "
                     "trust_gid, kvshm-cli --trust-uid / --trust-gid)",
                     what, path, (unsigned)sb->st_uid, (unsigned)sb->st_gid,
                     (unsigned)geteuid());
}

int kvshm__open_file(const char *path, int flags, unsigned mode,
                     const struct kvshm__trust *t, const char *what,
                     bool *created) {
  int fd = -1;
  if (created)
    *created = false;
  if (flags & O_CREAT) {
    fd = open(path, (flags | O_EXCL | O_NOFOLLOW | O_CLOEXEC), mode);
    if (fd >= 0) {
      if (fchmod(fd, mode)) { /* exactly `mode`, whatever the umask */
        int e = errno;
        close(fd);
        unlink(path);
        return kvshm__fail(-e, "cannot set mode %o on %s %s: %s",
                           (unsigned)mode, what, path, strerror(e));
      }
      if (created)
        *created = true;
      return fd;
    }
    if (errno != EEXIST)
      goto failed;
  }
  fd = open(path, (flags & ~(O_CREAT | O_EXCL)) | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    goto failed;
  struct stat sb;
  if (fstat(fd, &sb)) {
    int e = errno;
    close(fd);
    return kvshm__fail(-e, "cannot stat %s %s: %s", what, path, strerror(e));
  }
  int rc = kvshm__trusted(t, &sb, what, path);
  if (rc) {
    close(fd);
    return rc;
  }
  return fd;
failed:
  if (errno == ELOOP)
    return kvshm__fail(KVSHM_EOWNER,
                       "%s %s is a symbolic link: kvshm does not follow "
                       "links there (another user may have planted it); "
                       "give the real path",
                       what, path);
  return kvshm__fail(-errno, "cannot open %s %s: %s", what, path,
                     strerror(errno));
}

int kvshm__trusted_path(const char *path, const struct kvshm__trust *t,
                        const char *what) {
  struct stat sb;
  if (lstat(path, &sb)) {
    if (errno == ENOENT)
      return KVSHM_OK; /* whoever creates it makes it ours */
    return kvshm__fail(-errno, "cannot stat %s %s: %s", what, path,
                       strerror(errno));
  }
  if (S_ISLNK(sb.st_mode))
    return kvshm__fail(KVSHM_EOWNER,
                       "%s %s is a symbolic link: kvshm does not follow "
                       "links there (another user may have planted it); "
                       "remove it",
                       what, path);
  return kvshm__trusted(t, &sb, what, path);
}

unsigned kvshm__file_mode(const kvshm *kv) {
  struct stat sb;
  if (kv->seg_fd >= 0 && fstat(kv->seg_fd, &sb) == 0)
    return (unsigned)sb.st_mode & 0777u;
  return 0600u;
}
