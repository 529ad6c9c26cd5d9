/*
 * fuzz_ckpt — libFuzzer target for the checkpoint reader (ckpt_open).
 *
 * The promise under test: a damaged or truncated checkpoint is refused with
 * "DIR/checkpoint: line N: why" (evstream then stops), never loaded in part,
 * and whatever is accepted means exactly what its bytes say.  A silent skip,
 * e.g. a file line dropped, would make evstream load that file twice.
 *
 * Each input becomes DIR/checkpoint twice: as it is, and with its end line
 * made right (file count and CRC-32 recomputed over the bytes before it), so
 * that mutations get past the checksum into the line parser.  Then:
 *
 *   - refused: the message names the file and a line, errno is set;
 *   - accepted: ckpt_rewrite writes back exactly the bytes read (every value has
 *     one spelling, so an accepted file can only mean one thing; a name or a
 *     line lost on the way in would show here).  A version-1 file is written
 *     back as version 2, which must then read back and save to the same bytes;
 *   - accepted: every shorter prefix of it is refused (all of them for short
 *     inputs, a sample for long ones): truncation is never silent.
 *
 * The directory is made in FUZZ_TMPDIR (default /dev/shm when writable, else
 * TMPDIR, else /tmp) and removed at exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt.h"
#include "log.h"

#define FUZZ_TARGET	"fuzz_ckpt"
#include "fuzz.h"

#define FUZZ_FILE	"checkpoint"
#define FUZZ_ALL_PREFIXES 512	/* inputs up to this size: every prefix is tried */

struct fuzz {
	char	 dir[256];
	int	 dirfd;
	char	*buf;		/* the input with its end line fixed */
	size_t	 cap;
	char	*back;		/* what ckpt_rewrite wrote */
	size_t	 backcap;
};

/* libFuzzer's entry points take no context: the harness's state is this one struct. */
static struct fuzz F = { .dirfd = -1 };

/* CRC-32/IEEE, bit by bit: an independent spelling of the one ckpt.c uses. */
static uint32_t
crc32_ref(const char *p, size_t n)
{
	uint32_t c = 0xffffffff;

	for (size_t i = 0; i < n; i++) {
		c ^= (unsigned char)p[i];
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0xedb88320 : c >> 1;
	}
	return ~c;
}

static void
grow(char **p, size_t *cap, size_t need)
{
	if (need <= *cap)
		return;
	FUZZ_ASSERT((*p = realloc(*p, need)) != NULL, "out of memory");
	*cap = need;
}

static size_t
get_file(void)
{
	int fd = openat(F.dirfd, FUZZ_FILE, O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	ssize_t n;

	FUZZ_ASSERT(fd >= 0, "open: %s", strerror(errno));
	for (;;) {
		grow(&F.back, &F.backcap, len + 4096);
		if ((n = read(fd, F.back + len, F.backcap - len)) <= 0)
			break;
		len += (size_t)n;
	}
	FUZZ_ASSERT(n == 0, "read: %s", strerror(errno));
	(void)close(fd);
	return len;
}

/* A refusal must say where: "DIR/checkpoint: line N: ..." */
static void
check_refusal(const char *err, int e)
{
	char want[300];
	size_t n = (size_t)snprintf(want, sizeof(want), "%s/%s: line ", F.dir, FUZZ_FILE);

	FUZZ_ASSERT(e != 0, "refused without errno: %s", err);
	FUZZ_ASSERT(strncmp(err, want, n) == 0 && err[n] >= '1' && err[n] <= '9',
	    "refusal does not name the file and a line: '%s'", err);
}

/* 1 if data[0..size) is accepted as a checkpoint, 0 if refused as it must be. */
static int
try_load(const char *data, size_t size)
{
	static const char v1[] = "evpipe-checkpoint 1\n";
	char err[1024];
	struct ckpt *c;
	size_t len;

	fuzz_write_file(F.dirfd, FUZZ_FILE, data, size);
	errno = 0;
	if ((c = ckpt_open(F.dir, err, sizeof(err))) == NULL) {
		check_refusal(err, errno);
		return 0;
	}
	FUZZ_ASSERT(ckpt_rewrite(c, err, sizeof(err)) == 0, "save: %s", err);
	ckpt_close(c);
	len = get_file();
	if (size >= sizeof(v1) - 1 && memcmp(data, v1, sizeof(v1) - 1) == 0) {
		/* Upgraded: the version-2 bytes are what must be stable now. */
		FUZZ_ASSERT((c = ckpt_open(F.dir, err, sizeof(err))) != NULL,
		    "a version-1 file saved as version 2 is refused: %s", err);
		FUZZ_ASSERT(ckpt_rewrite(c, err, sizeof(err)) == 0, "save: %s", err);
		ckpt_close(c);
		FUZZ_ASSERT(get_file() == len, "version 2 saved back differently");
		return 1;
	}
	FUZZ_ASSERT(len == size && memcmp(F.back, data, size) == 0,
	    "accepted, but saved back differently (%zu bytes in)", size);
	return 1;
}

static void
check_prefixes(const char *data, size_t size)
{
	size_t step = size <= FUZZ_ALL_PREFIXES ? 1 : size / 64;

	for (size_t k = 0; k < size; k += step)
		FUZZ_ASSERT(!try_load(data, k), "a prefix of %zu of %zu bytes was accepted", k,
		    size);
	FUZZ_ASSERT(!try_load(data, size - 1), "the input minus its last byte was accepted");
}

/*
 * The input with a correct end line: its last line, if it starts with "end ",
 * is replaced; otherwise one is added (after a newline, if the input lacks
 * one).  The count is the lines after the three header lines and a
 * version-2 last_name line.
 */
static size_t
fix_end(const uint8_t *data, size_t size)
{
	size_t body = size, last = size, nl = 0;

	if (last > 0 && data[last - 1] == '\n')
		last--;
	while (last > 0 && data[last - 1] != '\n')
		last--;
	if (size - last >= 4 && memcmp(data + last, "end ", 4) == 0)
		body = last;
	grow(&F.buf, &F.cap, body + 64);
	memcpy(F.buf, data, body);
	if (body > 0 && F.buf[body - 1] != '\n')
		F.buf[body++] = '\n';
	for (size_t i = 0; i < body; i++) {
		nl += F.buf[i] == '\n';
		if ((i == 0 || F.buf[i - 1] == '\n') && body - i > 10 &&
		    memcmp(F.buf + i, "last_name ", 10) == 0)
			nl--;
	}
	return body + (size_t)snprintf(F.buf + body, 48, "end %zu %08x\n", nl > 3 ? nl - 3 : 0,
	    (unsigned)crc32_ref(F.buf, body));
}

static void
fuzz_cleanup(void)
{
	if (F.dirfd >= 0) {
		(void)unlinkat(F.dirfd, FUZZ_FILE, 0);
		(void)unlinkat(F.dirfd, "lock", 0);
		(void)close(F.dirfd);
		(void)rmdir(F.dir);
	}
	free(F.buf);
	free(F.back);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_open("fuzz_ckpt", LOG_LVL_ERROR);
	F.dirfd = fuzz_scratch_dir(F.dir, sizeof(F.dir));
	atexit(fuzz_cleanup);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n;

	if (try_load((const char *)data, size))
		check_prefixes((const char *)data, size);
	n = fix_end(data, size);
	if (try_load(F.buf, n))
		check_prefixes(F.buf, n);
	return 0;
}
