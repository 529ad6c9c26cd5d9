/*
 * fuzz.h — what the libFuzzer targets share (header-only, like tests/unit/check.h):
 * FUZZ_ASSERT, which aborts so that libFuzzer keeps the input that broke a
 * promise, and a private scratch directory for the files a target reads.
 * Define FUZZ_TARGET (the target's name, a string) before including.
 */
#ifndef EVPIPE_FUZZ_H
#define EVPIPE_FUZZ_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FUZZ_ASSERT(cond, ...) do {						\
	if (!(cond)) {								\
		fprintf(stderr, FUZZ_TARGET ": %s:%d: %s: ", __FILE__, __LINE__, #cond); \
		fprintf(stderr, __VA_ARGS__);					\
		fputc('\n', stderr);						\
		abort();							\
	}									\
} while (0)

/*
 * Where the scratch directory goes: FUZZ_TMPDIR; else /dev/shm, where a file
 * per input costs no disk; else TMPDIR, else /tmp.
 */
static inline const char *
fuzz_tmp_base(void)
{
	const char *d = getenv("FUZZ_TMPDIR");

	if (d != NULL && *d != '\0')
		return d;
	if (access("/dev/shm", W_OK | X_OK) == 0)
		return "/dev/shm";
	d = getenv("TMPDIR");
	return d != NULL && *d != '\0' ? d : "/tmp";
}

/* Make a private directory under fuzz_tmp_base(), its path into dir; its descriptor. */
static inline int
fuzz_scratch_dir(char *dir, size_t len)
{
	int fd;

	snprintf(dir, len, "%s/" FUZZ_TARGET ".XXXXXX", fuzz_tmp_base());
	FUZZ_ASSERT(mkdtemp(dir) != NULL, "mkdtemp %s: %s", dir, strerror(errno));
	FUZZ_ASSERT((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0, "open %s: %s",
	    dir, strerror(errno));
	return fd;
}

/* Write size bytes of data as dirfd/name, replacing what was there. */
static inline void
fuzz_write_file(int dirfd, const char *name, const void *data, size_t size)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t off = 0;
	ssize_t n;

	FUZZ_ASSERT(fd >= 0, "open %s: %s", name, strerror(errno));
	for (; off < size; off += (size_t)n)
		FUZZ_ASSERT((n = write(fd, (const char *)data + off, size - off)) > 0,
		    "write %s: %s", name, strerror(errno));
	FUZZ_ASSERT(close(fd) == 0, "close %s: %s", name, strerror(errno));
}

#endif
