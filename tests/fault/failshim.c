/*
 * failshim — an LD_PRELOAD shim for tests (issue 18): the k-th call of ONE kind
 * fails, with the errno a real system gives for it, so a runner can fail every
 * call once, for every k (tests/system/fail_every_call.sh).  The release build
 * is untouched: nothing in src/ knows about it.
 *
 *   EVPIPE_FAIL_KIND=<kind>        which calls are counted (table below)
 *   EVPIPE_FAIL_AT=<k>             the k-th counted call fails (1-based; 0 or unset:
 *                                  none fails, the run only counts)
 *   EVPIPE_FAIL_COUNT_FILE=<path>  written at exit (and at the injection, in case the
 *                                  process does not reach exit): one line
 *                                  "kind=K seen=N at=K injected=0|1 call=NAME errno=E"
 *                                  so a runner knows when k went past the last call
 *   EVPIPE_FAIL_ERRNO=<EIO|...>    another errno than the kind's own (optional)
 *   EVPIPE_FAIL_SCOPE=self|all     self (default): count only calls made from the
 *                                  program's own code (the return address lies in
 *                                  the executable), not the calls libc, libpq, libcsv
 *                                  or ASan make inside themselves; all: count those too
 *
 * kind       calls                                  what the k-th does
 * open       open openat open64 openat64            EIO, nothing opened (EVPIPE_FAIL_ERRNO=EACCES
 *                                                   for a permission refused)
 * read       read pread pread64                     EIO
 * write      write pwrite pwrite64                  ENOSPC, nothing written
 * fsync      fsync fdatasync                        the real call, then EIO (a write-back
 *                                                   error is reported after the attempt)
 * rename     rename renameat renameat2              EIO, nothing renamed
 * link       link linkat                            EIO
 * unlink     unlink unlinkat                        EIO, nothing removed
 * mkdir      mkdir mkdirat                          ENOSPC
 * opendir    opendir fdopendir readdir readdir64    EIO (readdir: NULL with errno EIO, as
 *                                                   a directory read error looks)
 * flock      flock                                  ENOLCK (the kernel's lock table full;
 *                                                   EWOULDBLOCK would be "another holder",
 *                                                   which tests/system/checkpoint_* cover)
 * close      close                                  the real close, then EIO: Linux always
 *                                                   releases the descriptor, then reports
 *                                                   a deferred write error
 * malloc     malloc calloc realloc                  NULL, ENOMEM
 * pq_connect     PQconnectStartParams PQconnectdbParams
 * pq_putcopydata PQputCopyData
 * pq_putcopyend  PQputCopyEnd
 * pq_getresult   PQgetResult
 * pq_exec        PQexec PQexecParams PQsendQuery PQsendQueryParams
 *            the connection drops under the call: shutdown(2) of libpq's socket in both
 *            directions, then the real call, so libpq itself meets a peer that went away
 *            (EPIPE on send, EOF on receive: "server closed the connection
 *            unexpectedly") and the server sees the client vanish and rolls back what
 *            was not committed.  Closing the descriptor instead would let a later
 *            open() reuse its number under libpq, which no real failure does.
 *            PQgetResult: libpq may already hold the answer (the wait before it read
 *            it), so the drop alone would only show at the next call; the k-th call
 *            returns a PGRES_FATAL_ERROR result (PQmakeEmptyPGresult, carrying libpq's
 *            own "server closed the connection" message) in place of what the server
 *            said.  That is the realistic worst case: the server committed, the client
 *            never heard (a NULL answer -- nothing was pending -- stays NULL).
 *            pq_connect: the socket is shut down right after the connection starts
 *            (the server went away during the handshake); PQconnectdbParams is run as
 *            PQconnectStartParams plus PQconnectPoll, which is what libpq does inside.
 *
 * Start-up: with scope self, calls made before main (ld.so, library constructors,
 * ASan's start-up) come from other objects and are never counted, so k = 1 is the
 * program's own first call.  The count file is written only by the process that
 * loaded the shim, not by a forked child (evstream forks to send a cancel request).
 *
 * malloc: dlsym itself may allocate, so until the real allocator is known, requests
 * are served from a static bootstrap buffer, which free() ignores and realloc()
 * copies out of.  The real functions are the next definitions (RTLD_NEXT): glibc's,
 * or ASan's interceptors in the sanitized build (run it with
 * ASAN_OPTIONS=verify_asan_link_order=0, since the shim must come first).
 *
 *   cc -shared -fPIC -O1 -g -I/usr/include/postgresql -o build/failshim.so \
 *      tests/fault/failshim.c -ldl
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <libpq-fe.h>

enum fs_kind {
	FS_NONE = -1, FS_OPEN, FS_READ, FS_WRITE, FS_FSYNC, FS_RENAME, FS_LINK, FS_UNLINK,
	FS_MKDIR, FS_OPENDIR, FS_FLOCK, FS_CLOSE, FS_MALLOC, FS_PQ_CONNECT, FS_PQ_PUTCOPYDATA,
	FS_PQ_PUTCOPYEND, FS_PQ_GETRESULT, FS_PQ_EXEC, FS_NKINDS
};

static const struct {
	const char	*name;
	int		 err;
	const char	*errname;
} fs_kinds[FS_NKINDS] = {
	[FS_OPEN] = { "open", EIO, "EIO" },
	[FS_READ] = { "read", EIO, "EIO" },
	[FS_WRITE] = { "write", ENOSPC, "ENOSPC" },
	[FS_FSYNC] = { "fsync", EIO, "EIO" },
	[FS_RENAME] = { "rename", EIO, "EIO" },
	[FS_LINK] = { "link", EIO, "EIO" },
	[FS_UNLINK] = { "unlink", EIO, "EIO" },
	[FS_MKDIR] = { "mkdir", ENOSPC, "ENOSPC" },
	[FS_OPENDIR] = { "opendir", EIO, "EIO" },
	[FS_FLOCK] = { "flock", ENOLCK, "ENOLCK" },
	[FS_CLOSE] = { "close", EIO, "EIO" },
	[FS_MALLOC] = { "malloc", ENOMEM, "ENOMEM" },
	[FS_PQ_CONNECT] = { "pq_connect", 0, "dropped" },
	[FS_PQ_PUTCOPYDATA] = { "pq_putcopydata", 0, "dropped" },
	[FS_PQ_PUTCOPYEND] = { "pq_putcopyend", 0, "dropped" },
	[FS_PQ_GETRESULT] = { "pq_getresult", 0, "dropped" },
	[FS_PQ_EXEC] = { "pq_exec", 0, "dropped" },
};

/* Errno names a runner may ask for instead of the kind's own. */
static const struct { const char *name; int err; } fs_errnos[] = {
	{ "EIO", EIO }, { "ENOSPC", ENOSPC }, { "EACCES", EACCES }, { "EPERM", EPERM },
	{ "ENOMEM", ENOMEM }, { "ENOLCK", ENOLCK }, { "EWOULDBLOCK", EWOULDBLOCK },
	{ "EDQUOT", EDQUOT }, { "EROFS", EROFS }, { "EMFILE", EMFILE }, { "ENOENT", ENOENT },
};

/*
 * Read once, by the constructor: before it, libc may not have set up the environment
 * yet (ASan's start-up runs from .preinit_array, before libc's own initialiser), and
 * nothing is counted.  getenv and the parsing allocate nothing.
 */
static struct {
	int		 ready;
	int		 kind;
	long		 at;
	int		 err;
	const char	*errname;
	int		 all;
	const char	*count_file;
	pid_t		 pid;
	long		 seen;
	int		 injected;
	const char	*call;		/* the function that failed */
	uintptr_t	 exe_lo[8], exe_hi[8];	/* the executable's code, for scope self */
	int		 nexe;
} fs = { .kind = FS_NONE };

static long
fs_atol(const char *s)
{
	long v = 0;

	while (s != NULL && *s >= '0' && *s <= '9')
		v = v * 10 + (*s++ - '0');
	return v;
}

/*
 * The program's own code, from the auxiliary vector (not dl_iterate_phdr, which ASan
 * intercepts and which may not answer yet while ASan starts, when we are first called).
 */
static void
fs_find_exe(void)
{
	const ElfW(Phdr) *ph = (const ElfW(Phdr) *)getauxval(AT_PHDR);
	size_t n = getauxval(AT_PHNUM);
	uintptr_t bias = 0;

	for (size_t i = 0; ph != NULL && i < n; i++)
		if (ph[i].p_type == PT_PHDR)
			bias = (uintptr_t)ph - ph[i].p_vaddr;
	for (size_t i = 0; ph != NULL && i < n && fs.nexe < 8; i++)
		if (ph[i].p_type == PT_LOAD && (ph[i].p_flags & PF_X)) {
			fs.exe_lo[fs.nexe] = bias + ph[i].p_vaddr;
			fs.exe_hi[fs.nexe] = fs.exe_lo[fs.nexe] + ph[i].p_memsz;
			fs.nexe++;
		}
}

static void
fs_setup(void)
{
	const char *k = getenv("EVPIPE_FAIL_KIND"), *e = getenv("EVPIPE_FAIL_ERRNO");
	const char *scope = getenv("EVPIPE_FAIL_SCOPE");

	if (fs.ready)
		return;
	fs.pid = (pid_t)syscall(SYS_getpid);
	for (int i = 0; k != NULL && i < FS_NKINDS; i++)
		if (strcmp(k, fs_kinds[i].name) == 0)
			fs.kind = i;
	fs.at = fs_atol(getenv("EVPIPE_FAIL_AT"));
	fs.count_file = getenv("EVPIPE_FAIL_COUNT_FILE");
	fs.all = scope != NULL && strcmp(scope, "all") == 0;
	if (fs.kind != FS_NONE) {
		fs.err = fs_kinds[fs.kind].err;
		fs.errname = fs_kinds[fs.kind].errname;
	}
	for (size_t i = 0; e != NULL && i < sizeof(fs_errnos) / sizeof(fs_errnos[0]); i++)
		if (strcmp(e, fs_errnos[i].name) == 0)
			fs.err = fs_errnos[i].err, fs.errname = fs_errnos[i].name;
	fs_find_exe();
	fs.ready = 1;
}

static void fs_write_count(void);

/*
 * atexit as well as the destructor: LeakSanitizer's exit handler (registered before
 * ours, so run after it) may end the process before destructors run.
 */
__attribute__((constructor)) static void
fs_constructor(void)
{
	fs_setup();
	(void)atexit(fs_write_count);
}

static int
fs_from_exe(const void *ret)
{
	uintptr_t a = (uintptr_t)ret;

	for (int i = 0; i < fs.nexe; i++)
		if (a >= fs.exe_lo[i] && a < fs.exe_hi[i])
			return 1;
	return 0;
}

/* Append the decimal of V to P; returns the new end.  (No stdio: malloc may be failing.) */
static char *
fs_putl(char *p, long v)
{
	char d[24];
	int n = 0;

	do
		d[n++] = (char)('0' + v % 10);
	while ((v /= 10) > 0);
	while (n > 0)
		*p++ = d[--n];
	return p;
}

static char *
fs_puts(char *p, const char *s)
{
	while (s != NULL && *s)
		*p++ = *s++;
	return p;
}

/* The count file, through raw system calls: our own open/write must not count. */
static void
fs_write_count(void)
{
	char line[256], *p = line;
	long fd;

	if (fs.count_file == NULL || fs.kind == FS_NONE ||
	    (pid_t)syscall(SYS_getpid) != fs.pid)
		return;
	p = fs_puts(p, "kind=");
	p = fs_puts(p, fs_kinds[fs.kind].name);
	p = fs_puts(p, " seen=");
	p = fs_putl(p, __atomic_load_n(&fs.seen, __ATOMIC_RELAXED));
	p = fs_puts(p, " at=");
	p = fs_putl(p, fs.at);
	p = fs_puts(p, " injected=");
	p = fs_putl(p, fs.injected);
	p = fs_puts(p, " call=");
	p = fs_puts(p, fs.call != NULL ? fs.call : "-");
	p = fs_puts(p, " errno=");
	p = fs_puts(p, fs.errname);
	*p++ = '\n';
	fd = syscall(SYS_openat, AT_FDCWD, fs.count_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644);
	if (fd < 0)
		return;
	(void)!syscall(SYS_write, (int)fd, line, (size_t)(p - line));
	(void)syscall(SYS_close, (int)fd);
}

__attribute__((destructor)) static void
fs_destructor(void)
{
	fs_write_count();
}

/* Is this call of KIND, made from RET, the one to fail?  Counts it either way. */
static int
fs_hit(int kind, const char *call, const void *ret)
{
	long n;

	if (!fs.ready || kind != fs.kind || (!fs.all && !fs_from_exe(ret)) ||
	    (pid_t)syscall(SYS_getpid) != fs.pid)
		return 0;
	n = __atomic_add_fetch(&fs.seen, 1, __ATOMIC_RELAXED);
	if (n != fs.at)
		return 0;
	fs.injected = 1;
	fs.call = call;
	fs_write_count();
	return 1;
}

#define RET		__builtin_return_address(0)
/* The next definition of NAME (libc's, libpq's, or ASan's interceptor), found once. */
#define REAL(name)							\
	static __typeof__(name) *real_##name;				\
	if (real_##name == NULL)					\
		real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)
#define FAIL_WITH(e, v)	do { errno = (e); return (v); } while (0)

/* --- files --------------------------------------------------------------------------- */

static mode_t
fs_mode(int flags, va_list ap)
{
	return (flags & (O_CREAT | __O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

#define OPEN_LIKE(name)							\
int name(const char *path, int flags, ...)				\
{									\
	va_list ap;							\
	mode_t mode;							\
	REAL(name);			\
	va_start(ap, flags);						\
	mode = fs_mode(flags, ap);					\
	va_end(ap);							\
	if (fs_hit(FS_OPEN, #name, RET))				\
		FAIL_WITH(fs.err, -1);					\
	return real_##name(path, flags, mode);				\
}
OPEN_LIKE(open)
OPEN_LIKE(open64)

#define OPENAT_LIKE(name)						\
int name(int dirfd, const char *path, int flags, ...)			\
{									\
	va_list ap;							\
	mode_t mode;							\
	REAL(name);		\
	va_start(ap, flags);						\
	mode = fs_mode(flags, ap);					\
	va_end(ap);							\
	if (fs_hit(FS_OPEN, #name, RET))				\
		FAIL_WITH(fs.err, -1);					\
	return real_##name(dirfd, path, flags, mode);			\
}
OPENAT_LIKE(openat)
OPENAT_LIKE(openat64)

ssize_t
read(int fd, void *buf, size_t n)
{
	REAL(read);
	if (fs_hit(FS_READ, "read", RET))
		FAIL_WITH(fs.err, -1);
	return real_read(fd, buf, n);
}

#define PREAD_LIKE(name, kind, bufq)					\
ssize_t name(int fd, bufq void *buf, size_t n, off_t off)		\
{									\
	REAL(name);	\
	if (fs_hit(kind, #name, RET))					\
		FAIL_WITH(fs.err, -1);					\
	return real_##name(fd, buf, n, off);				\
}
PREAD_LIKE(pread, FS_READ, )
PREAD_LIKE(pread64, FS_READ, )
PREAD_LIKE(pwrite, FS_WRITE, const)
PREAD_LIKE(pwrite64, FS_WRITE, const)

ssize_t
write(int fd, const void *buf, size_t n)
{
	REAL(write);
	if (fs_hit(FS_WRITE, "write", RET))
		FAIL_WITH(fs.err, -1);
	return real_write(fd, buf, n);
}

/* The attempt is made, then its error reported: what fsyncgate taught. */
#define FSYNC_LIKE(name)						\
int name(int fd)							\
{									\
	int rc;								\
	REAL(name);					\
	rc = real_##name(fd);						\
	if (fs_hit(FS_FSYNC, #name, RET))				\
		FAIL_WITH(fs.err, -1);					\
	return rc;							\
}
FSYNC_LIKE(fsync)
FSYNC_LIKE(fdatasync)

int
rename(const char *from, const char *to)
{
	REAL(rename);
	if (fs_hit(FS_RENAME, "rename", RET))
		FAIL_WITH(fs.err, -1);
	return real_rename(from, to);
}

int
renameat(int ofd, const char *from, int nfd, const char *to)
{
	REAL(renameat);
	if (fs_hit(FS_RENAME, "renameat", RET))
		FAIL_WITH(fs.err, -1);
	return real_renameat(ofd, from, nfd, to);
}

int
renameat2(int ofd, const char *from, int nfd, const char *to, unsigned int flags)
{
	REAL(renameat2);
	if (fs_hit(FS_RENAME, "renameat2", RET))
		FAIL_WITH(fs.err, -1);
	return real_renameat2(ofd, from, nfd, to, flags);
}

int
link(const char *from, const char *to)
{
	REAL(link);
	if (fs_hit(FS_LINK, "link", RET))
		FAIL_WITH(fs.err, -1);
	return real_link(from, to);
}

int
linkat(int ofd, const char *from, int nfd, const char *to, int flags)
{
	REAL(linkat);
	if (fs_hit(FS_LINK, "linkat", RET))
		FAIL_WITH(fs.err, -1);
	return real_linkat(ofd, from, nfd, to, flags);
}

int
unlink(const char *path)
{
	REAL(unlink);
	if (fs_hit(FS_UNLINK, "unlink", RET))
		FAIL_WITH(fs.err, -1);
	return real_unlink(path);
}

int
unlinkat(int dirfd, const char *path, int flags)
{
	REAL(unlinkat);
	if (fs_hit(FS_UNLINK, "unlinkat", RET))
		FAIL_WITH(fs.err, -1);
	return real_unlinkat(dirfd, path, flags);
}

int
mkdir(const char *path, mode_t mode)
{
	REAL(mkdir);
	if (fs_hit(FS_MKDIR, "mkdir", RET))
		FAIL_WITH(fs.err, -1);
	return real_mkdir(path, mode);
}

int
mkdirat(int dirfd, const char *path, mode_t mode)
{
	REAL(mkdirat);
	if (fs_hit(FS_MKDIR, "mkdirat", RET))
		FAIL_WITH(fs.err, -1);
	return real_mkdirat(dirfd, path, mode);
}

DIR *
opendir(const char *path)
{
	REAL(opendir);
	if (fs_hit(FS_OPENDIR, "opendir", RET))
		FAIL_WITH(fs.err, NULL);
	return real_opendir(path);
}

DIR *
fdopendir(int fd)
{
	REAL(fdopendir);
	if (fs_hit(FS_OPENDIR, "fdopendir", RET))
		FAIL_WITH(fs.err, NULL);
	return real_fdopendir(fd);
}

struct dirent *
readdir(DIR *d)
{
	REAL(readdir);
	if (fs_hit(FS_OPENDIR, "readdir", RET))
		FAIL_WITH(fs.err, NULL);
	return real_readdir(d);
}

struct dirent64 *
readdir64(DIR *d)
{
	REAL(readdir64);
	if (fs_hit(FS_OPENDIR, "readdir64", RET))
		FAIL_WITH(fs.err, NULL);
	return real_readdir64(d);
}

int
flock(int fd, int op)
{
	REAL(flock);
	if (fs_hit(FS_FLOCK, "flock", RET))
		FAIL_WITH(fs.err, -1);
	return real_flock(fd, op);
}

int
close(int fd)
{
	int rc;
	REAL(close);
	rc = real_close(fd);
	if (fs_hit(FS_CLOSE, "close", RET))
		FAIL_WITH(fs.err, -1);
	return rc;
}

/* --- memory ---------------------------------------------------------------------------- */

/*
 * Bootstrap: dlsym may call malloc/calloc before the real ones are known; those
 * requests come from here.  Each chunk carries its size in front, for realloc.
 */
static _Alignas(max_align_t) char fs_boot[64 * 1024];
static size_t fs_boot_used;
static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int fs_resolving;

static int
fs_is_boot(const void *p)
{
	return (const char *)p >= fs_boot && (const char *)p < fs_boot + sizeof(fs_boot);
}

static void *
fs_boot_alloc(size_t n)
{
	size_t a = _Alignof(max_align_t), need = (n + a - 1) / a * a + a;
	char *p;

	if (fs_boot_used + need > sizeof(fs_boot))
		return NULL;
	p = fs_boot + fs_boot_used;
	fs_boot_used += need;
	*(size_t *)p = n;
	return p + a;	/* zeroed: the buffer is static and never reused */
}

static int
fs_alloc_ready(void)
{
	if (real_malloc != NULL)
		return 1;
	if (fs_resolving)
		return 0;
	fs_resolving = 1;
	real_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
	real_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
	real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
	real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
	fs_resolving = 0;
	return real_malloc != NULL;
}

void *
malloc(size_t n)
{
	if (!fs_alloc_ready())
		return fs_boot_alloc(n);
	if (fs_hit(FS_MALLOC, "malloc", RET))
		FAIL_WITH(ENOMEM, NULL);
	return real_malloc(n);
}

void *
calloc(size_t n, size_t size)
{
	if (!fs_alloc_ready() || real_calloc == NULL)
		return size != 0 && n > SIZE_MAX / size ? NULL : fs_boot_alloc(n * size);
	if (fs_hit(FS_MALLOC, "calloc", RET))
		FAIL_WITH(ENOMEM, NULL);
	return real_calloc(n, size);
}

void *
realloc(void *p, size_t n)
{
	void *q;
	size_t old;

	if (fs_is_boot(p)) {	/* out of the bootstrap buffer, into the real heap */
		old = *(size_t *)((char *)p - _Alignof(max_align_t));
		if ((q = malloc(n)) != NULL)
			memcpy(q, p, old < n ? old : n);
		return q;
	}
	if (!fs_alloc_ready() || real_realloc == NULL)
		return fs_boot_alloc(n);	/* p is NULL here: nothing real was handed out yet */
	if (fs_hit(FS_MALLOC, "realloc", RET))
		FAIL_WITH(ENOMEM, NULL);
	return real_realloc(p, n);
}

void
free(void *p)
{
	if (p == NULL || fs_is_boot(p))
		return;
	if (fs_alloc_ready() && real_free != NULL)
		real_free(p);
}

/* --- libpq ----------------------------------------------------------------------------- */

/* The peer goes away: both directions of libpq's socket shut, the descriptor kept. */
static void
fs_drop(const PGconn *conn)
{
	REAL(PQsocket);
	int fd = conn != NULL && real_PQsocket != NULL ? real_PQsocket(conn) : -1;

	if (fd >= 0)
		(void)shutdown(fd, SHUT_RDWR);
}

PGconn *
PQconnectStartParams(const char *const *kw, const char *const *val, int expand)
{
	PGconn *c;
	REAL(PQconnectStartParams);
	c = real_PQconnectStartParams(kw, val, expand);
	if (fs_hit(FS_PQ_CONNECT, "PQconnectStartParams", RET))
		fs_drop(c);
	return c;
}

PGconn *
PQconnectdbParams(const char *const *kw, const char *const *val, int expand)
{
	PGconn *c;
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	REAL(PQconnectdbParams);
	REAL(PQconnectStartParams);
	REAL(PQconnectPoll);

	if (!fs_hit(FS_PQ_CONNECT, "PQconnectdbParams", RET))
		return real_PQconnectdbParams(kw, val, expand);
	/* libpq's own loop, blocking on the socket, with the drop after the start. */
	if ((c = real_PQconnectStartParams(kw, val, expand)) == NULL)
		return NULL;
	fs_drop(c);
	while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED)
		st = real_PQconnectPoll(c);
	return c;
}

int
PQputCopyData(PGconn *conn, const char *buf, int n)
{
	REAL(PQputCopyData);
	if (fs_hit(FS_PQ_PUTCOPYDATA, "PQputCopyData", RET))
		fs_drop(conn);
	return real_PQputCopyData(conn, buf, n);
}

int
PQputCopyEnd(PGconn *conn, const char *err)
{
	REAL(PQputCopyEnd);
	if (fs_hit(FS_PQ_PUTCOPYEND, "PQputCopyEnd", RET))
		fs_drop(conn);
	return real_PQputCopyEnd(conn, err);
}

PGresult *
PQgetResult(PGconn *conn)
{
	PGresult *res;
	REAL(PQgetResult);
	REAL(PQconsumeInput);
	REAL(PQresultStatus);
	REAL(PQclear);
	REAL(PQmakeEmptyPGresult);

	if (!fs_hit(FS_PQ_GETRESULT, "PQgetResult", RET))
		return real_PQgetResult(conn);
	fs_drop(conn);
	(void)real_PQconsumeInput(conn);	/* libpq reads the EOF: its own message, its own state */
	res = real_PQgetResult(conn);
	if (res == NULL || real_PQresultStatus(res) == PGRES_FATAL_ERROR)
		return res;
	real_PQclear(res);
	return real_PQmakeEmptyPGresult(conn, PGRES_FATAL_ERROR);
}

#define PQ_SEND_LIKE(ret, name, params, args)				\
ret name params								\
{									\
	REAL(name);					\
	if (fs_hit(FS_PQ_EXEC, #name, RET))				\
		fs_drop(conn);						\
	return real_##name args;					\
}
PQ_SEND_LIKE(PGresult *, PQexec, (PGconn *conn, const char *q), (conn, q))
PQ_SEND_LIKE(int, PQsendQuery, (PGconn *conn, const char *q), (conn, q))
PQ_SEND_LIKE(PGresult *, PQexecParams, (PGconn *conn, const char *q, int n, const Oid *t,
    const char *const *v, const int *l, const int *f, int rf), (conn, q, n, t, v, l, f, rf))
PQ_SEND_LIKE(int, PQsendQueryParams, (PGconn *conn, const char *q, int n, const Oid *t,
    const char *const *v, const int *l, const int *f, int rf), (conn, q, n, t, v, l, f, rf))
