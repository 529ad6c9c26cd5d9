/*
 * fail_dir_fsync — an LD_PRELOAD shim for tests: make one fsync(2) or fdatasync(2)
 * fail with EIO after the real call, as a kernel reports a write-back error, so a
 * test reaches the moment after a failed fsync without any test code in the daemons.
 *
 *   EVPIPE_FAIL_DIR_FSYNC=N    the Nth fsync of a directory (counted from 1 in this
 *                              process) fails
 *   EVPIPE_FAIL_FILE_FSYNC=N   the Nth fsync or fdatasync of a regular file fails
 *   EVPIPE_FAIL_FSYNC_PATH=S   count only calls on a file whose path contains S
 *   EVPIPE_FAIL_FSYNC_STICKY=1 once a regular file's fsync failed, every later fsync
 *                              of that file (same device and inode, any fd) fails too:
 *                              the strict reading of fsyncgate, under which a program
 *                              that retries the fsync and calls it success is caught
 *                              (the same path too: an unlinked file's inode number
 *                              is soon another file's)
 *
 * Each injected failure is said on stderr ("fail_dir_fsync: ..."), so a test can
 * tell that it happened.  Every other call is the real one.
 *
 *   cc -shared -fPIC -o fail_dir_fsync.so tests/lib/fail_dir_fsync.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static long dir_seen, file_seen;
static dev_t bad_dev;
static ino_t bad_ino;	/* 0: no file has failed yet */
static char bad_path[PATH_MAX];	/* and its path: an unlinked file's inode number is reused */

static void
shim_path(int fd, char *path, size_t len)
{
	char proc[64];
	ssize_t n;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = readlink(proc, path, len - 1);
	path[n < 0 ? 0 : n] = '\0';
}

static int
shim_inject(const char *call, int fd, const char *why)
{
	char path[PATH_MAX], msg[PATH_MAX + 128];
	int n;

	shim_path(fd, path, sizeof(path));
	n = snprintf(msg, sizeof(msg), "fail_dir_fsync: %s(%s) fails with EIO (%s)\n", call, path,
	    why);
	if (n > 0 && write(2, msg, (size_t)n) < 0) {
		/* nothing to do: the failure is injected anyway */
	}
	errno = EIO;
	return -1;
}

static int
shim_env_is(const char *name, long n)
{
	const char *v = getenv(name);

	return v != NULL && atol(v) == n;
}

static int
shim_path_matches(int fd)
{
	const char *want = getenv("EVPIPE_FAIL_FSYNC_PATH");
	char path[PATH_MAX];

	if (want == NULL || *want == '\0')
		return 1;
	shim_path(fd, path, sizeof(path));
	return strstr(path, want) != NULL;
}

/* After the real call returned rc: should this call fail instead? */
static int
shim_after(const char *call, int fd, int rc)
{
	struct stat st;
	const char *sticky = getenv("EVPIPE_FAIL_FSYNC_STICKY");

	if (rc != 0 || fstat(fd, &st) != 0)
		return rc;
	if (S_ISREG(st.st_mode) && bad_ino != 0 && st.st_ino == bad_ino && st.st_dev == bad_dev) {
		char path[PATH_MAX];

		shim_path(fd, path, sizeof(path));
		if (strcmp(path, bad_path) == 0)
			return shim_inject(call, fd, "sticky: this file failed before");
	}
	if (!shim_path_matches(fd))
		return rc;
	if (S_ISDIR(st.st_mode) && shim_env_is("EVPIPE_FAIL_DIR_FSYNC", ++dir_seen))
		return shim_inject(call, fd, "the chosen directory fsync");
	if (S_ISREG(st.st_mode) && shim_env_is("EVPIPE_FAIL_FILE_FSYNC", ++file_seen)) {
		if (sticky != NULL && *sticky == '1') {
			bad_dev = st.st_dev, bad_ino = st.st_ino;
			shim_path(fd, bad_path, sizeof(bad_path));
		}
		return shim_inject(call, fd, "the chosen file fsync");
	}
	return rc;
}

int
fsync(int fd)
{
	static int (*real)(int);

	if (real == NULL && (real = (int (*)(int))dlsym(RTLD_NEXT, "fsync")) == NULL) {
		errno = ENOSYS;
		return -1;
	}
	return shim_after("fsync", fd, real(fd));
}

int
fdatasync(int fd)
{
	static int (*real)(int);

	if (real == NULL && (real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync")) == NULL) {
		errno = ENOSYS;
		return -1;
	}
	return shim_after("fdatasync", fd, real(fd));
}
