/* durable — see include/durable.h. */
#include "durable.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int
durable_sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc, saved;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

static int
durable_write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Write and fsync the temporary; on any failure it is unlinked again. */
static int
durable_write_tmp(int dirfd, const char *tmp, const void *buf, size_t len)
{
	/* O_TRUNC, not O_EXCL: a temporary left by a crash must not block the next write. */
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	int saved;

	if (fd < 0)
		return -1;
	if (durable_write_all(fd, buf, len) < 0 || fsync(fd) < 0 || close(fd) < 0) {
		saved = errno;
		close(fd);	/* harmless EBADF if close() above was the failure */
		unlinkat(dirfd, tmp, 0);
		errno = saved;
		return -1;
	}
	return 0;
}

static int
durable_publish(int dirfd, const char *name, const void *buf, size_t len, int clobber)
{
	char tmp[NAME_MAX + 1];
	int rc, saved;

	if ((size_t)snprintf(tmp, sizeof(tmp), ".%s" DURABLE_TMP_SUFFIX, name) >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (durable_write_tmp(dirfd, tmp, buf, len) < 0)
		return -1;
	/* link() refuses to replace an existing name; rename() replaces atomically. */
	rc = clobber ? renameat(dirfd, tmp, dirfd, name) : linkat(dirfd, tmp, dirfd, name, 0);
	if (rc < 0) {
		saved = errno;
		unlinkat(dirfd, tmp, 0);
		errno = saved;
		return -1;
	}
	/*
	 * NAME is visible from here on: a failure is no longer "nothing written", or a
	 * caller that retries would publish the same data twice.  A failed fsync is
	 * final (PostgreSQL's fsyncgate: a retry may succeed without the data being on
	 * disk), so it is reported, never retried here.
	 */
	if (!clobber && unlinkat(dirfd, tmp, 0) < 0) {
		saved = errno;
		if (fsync(dirfd) < 0)
			return DURABLE_UNSYNCED;
		errno = saved;
		return DURABLE_TMP_LEFT;
	}
	return fsync(dirfd) < 0 ? DURABLE_UNSYNCED : 0;
}

int
durable_write_at(int dirfd, const char *name, const void *buf, size_t len)
{
	return durable_publish(dirfd, name, buf, len, 1);
}

int
durable_create_at(int dirfd, const char *name, const void *buf, size_t len)
{
	return durable_publish(dirfd, name, buf, len, 0);
}

int
durable_write_file(const char *dir, const char *name, const void *buf, size_t len)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc, saved;

	if (fd < 0)
		return -1;
	rc = durable_write_at(fd, name, buf, len);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

int
durable_append(const char *dir, const char *name, const void *buf, size_t len)
{
	char path[PATH_MAX];
	int fd, created = 1, rc, saved;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	/* Opened per call: a permission taken away is noticed at the next record. */
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (fd < 0 && errno == EEXIST) {
		created = 0;
		fd = open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0)
		return -1;
	rc = durable_write_all(fd, buf, len) == 0 && fdatasync(fd) == 0 ? 0 : -1;
	saved = errno;
	if (close(fd) < 0 && rc == 0)
		rc = -1, saved = errno;
	/* A new file's directory entry must survive a crash as well as its bytes. */
	if (rc == 0 && created && durable_sync_dir(dir) < 0)
		rc = -1, saved = errno;
	errno = saved;
	return rc;
}

static int
durable_is_stale_tmp(const char *name, const char *prefix)
{
	size_t n = strlen(name), p = strlen(prefix), s = strlen(DURABLE_TMP_SUFFIX);

	return name[0] == '.' && strncmp(name + 1, prefix, p) == 0 && n > 1 + p + s &&
	    strcmp(name + n - s, DURABLE_TMP_SUFFIX) == 0;
}

int
durable_sweep(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int removed = 0;

	if (d == NULL)
		return -1;
	/* readdir says an error only through errno: end of directory leaves it 0. */
	for (errno = 0; (de = readdir(d)) != NULL; errno = 0) {
		if (!durable_is_stale_tmp(de->d_name, prefix))
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			removed++;
	}
	if (errno != 0) {
		int saved = errno;
		closedir(d);
		errno = saved;
		return -1;
	}
	closedir(d);
	if (removed > 0 && durable_sync_dir(dir) < 0)
		return -1;
	return removed;
}
