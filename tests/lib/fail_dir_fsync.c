/*
 * fail_dir_fsync — an LD_PRELOAD shim for tests: the Nth fsync(2) of a directory
 * (EVPIPE_FAIL_DIR_FSYNC=N, counted from 1 in this process) fails with EIO after
 * the real call, as a kernel reports a write-back error.  Every other fsync is the
 * real one.  It lets a test reach the moment after a rename whose directory fsync
 * fails without any test code in the daemons.
 *
 *   cc -shared -fPIC -o fail_dir_fsync.so tests/lib/fail_dir_fsync.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int
fsync(int fd)
{
	static int (*real)(int);
	static long seen;
	const char *nth = getenv("EVPIPE_FAIL_DIR_FSYNC");
	struct stat st;
	int rc;

	if (real == NULL && (real = (int (*)(int))dlsym(RTLD_NEXT, "fsync")) == NULL) {
		errno = ENOSYS;
		return -1;
	}
	rc = real(fd);
	if (rc == 0 && nth != NULL && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) &&
	    ++seen == atol(nth)) {
		errno = EIO;
		return -1;
	}
	return rc;
}
