/* spool — see include/spool.h. */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "durable.h"
#include "log.h"

#define SPOOL_MAX_SUFFIX	10000	/* name.1 .. name.9999, then give up (EEXIST) */
#define SPOOL_REASON_SUFFIX	".reason"

/* --- listing -------------------------------------------------------------------- */

static void
spool_list_clear(struct spool_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->names[i]);
	l->n = 0;
}

void
spool_list_free(struct spool_list *l)
{
	spool_list_clear(l);
	free(l->names);
	l->names = NULL;
	l->cap = 0;
}

static int
spool_list_add(struct spool_list *l, const char *name)
{
	size_t cap;
	char **p;

	if (l->n == l->cap) {
		cap = l->cap ? l->cap * 2 : 64;
		if ((p = realloc(l->names, cap * sizeof(*p))) == NULL)
			return -1;
		l->names = p;
		l->cap = cap;
	}
	if ((l->names[l->n] = strdup(name)) == NULL)
		return -1;
	l->n++;
	return 0;
}

static int
spool_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
spool_list_sort(struct spool_list *l)
{
	if (l->n > 1)
		qsort(l->names, l->n, sizeof(*l->names), spool_cmp);
}

/* A finished file's name: not hidden (".NAME.tmp" is work in progress), ends ".csv". */
static int
spool_is_candidate(const char *name)
{
	size_t len = strlen(name), slen = strlen(SPOOL_SUFFIX);

	return name[0] != '.' && len > slen && strcmp(name + len - slen, SPOOL_SUFFIX) == 0;
}

/*
 * 1 regular file, 0 something else, -1 gone (raced with a move or unlink),
 * -2 error.  d_type saves a stat per entry; some filesystems leave it
 * DT_UNKNOWN, and then lstat semantics decide, so a symlink is never followed.
 */
static int
spool_kind(int dirfd, const struct dirent *de)
{
	struct stat st;

	if (de->d_type != DT_UNKNOWN)
		return de->d_type == DT_REG;
	if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? -1 : -2;
	return S_ISREG(st.st_mode) ? 1 : 0;
}

/*
 * Read the directory fd (taken: closed here whatever happens) into out: the
 * regular files whose names want() accepts, sorted.  Accepted entries of any
 * other kind are counted in *nskipped and, if skipped is not NULL, listed there.
 * The caller passes the lists empty and the count zero.
 */
static int
spool_read_dir(int fd, int (*want)(const char *), struct spool_list *out,
    struct spool_list *skipped, size_t *nskipped)
{
	struct dirent *de;
	DIR *d;
	int kind, rc = -1, saved;

	if ((d = fdopendir(fd)) == NULL) {
		saved = errno;
		(void)close(fd);
		errno = saved;
		return -1;
	}
	for (;;) {
		errno = 0;
		if ((de = readdir(d)) == NULL) {
			rc = errno ? -1 : 0;
			break;
		}
		if (!want(de->d_name))
			continue;
		if ((kind = spool_kind(dirfd(d), de)) == -2)
			break;
		if (kind == 1 && spool_list_add(out, de->d_name) < 0)
			break;
		if (kind == 0) {
			(*nskipped)++;
			if (skipped != NULL && spool_list_add(skipped, de->d_name) < 0)
				break;
		}
	}
	saved = errno;
	(void)closedir(d);	/* read-only: nothing to lose */
	if (rc < 0) {
		spool_list_clear(out);
		if (skipped != NULL)
			spool_list_clear(skipped);
		errno = saved;
		return -1;
	}
	spool_list_sort(out);
	if (skipped != NULL)
		spool_list_sort(skipped);
	return 0;
}

static int
spool_scan_into(int dirfd, struct spool_list *out, struct spool_list *skipped, size_t *nskipped)
{
	int fd;

	spool_list_clear(out);
	if (skipped != NULL)
		spool_list_clear(skipped);
	*nskipped = 0;
	/* A descriptor of our own: readdir must not move the caller's offset. */
	if ((fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	return spool_read_dir(fd, spool_is_candidate, out, skipped, nskipped);
}

int
spool_scan(int dirfd, struct spool_list *out, size_t *ignored)
{
	size_t n;
	int rc = spool_scan_into(dirfd, out, NULL, &n);

	if (ignored != NULL)
		*ignored = n;
	return rc;
}

int
spool_scan_skipped(int dirfd, struct spool_list *out, struct spool_list *skipped)
{
	size_t n;

	return spool_scan_into(dirfd, out, skipped, &n);
}

/* --- a file's identity ---------------------------------------------------------- */

void
spool_id_from_stat(const struct stat *st, struct spool_id *id)
{
	id->dev = (int64_t)st->st_dev;
	id->ino = (int64_t)st->st_ino;
	id->size = (int64_t)st->st_size;
	id->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

int
spool_id_same(const struct spool_id *a, const struct spool_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	    a->mtime_ns == b->mtime_ns;
}

int
spool_id_of(int dirfd, const char *name, struct spool_id *id)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -1;
	spool_id_from_stat(&st, id);
	return 0;
}

/* --- leaving the spool ---------------------------------------------------------- */

/* One path component that names an entry: no '/', not "." or "..". */
static int
spool_component_ok(const char *name)
{
	return name[0] != '\0' && strchr(name, '/') == NULL && strcmp(name, ".") != 0 &&
	    strcmp(name, "..") != 0;
}

static int
spool_open_subdir(int dirfd, const char *subdir)
{
	if (mkdirat(dirfd, subdir, 0750) < 0 && errno != EEXIST)
		return -1;
	return openat(dirfd, subdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/*
 * rename without replacing.  Filesystems without RENAME_NOREPLACE get
 * link + unlink, which is also no-clobber; a crash between the two leaves the
 * file in both places, never in neither.
 */
static int
spool_rename_noreplace(int fromfd, const char *from, int tofd, const char *to)
{
	if (renameat2(fromfd, from, tofd, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	if (linkat(fromfd, from, tofd, to, 0) < 0)
		return -1;
	return unlinkat(fromfd, from, 0);
}

/* Move name into subfd under the first free name of name, name.1, ...; that name in moved. */
static int
spool_rename_free_name(int dirfd, const char *name, int subfd, char *moved, size_t movedlen)
{
	for (int k = 0; k < SPOOL_MAX_SUFFIX; k++) {
		int n = k == 0 ? snprintf(moved, movedlen, "%s", name) :
		    snprintf(moved, movedlen, "%s.%d", name, k);
		if (n < 0 || (size_t)n >= movedlen || n > NAME_MAX) {
			errno = ENAMETOOLONG;
			return -1;
		}
		if (spool_rename_noreplace(dirfd, name, subfd, moved) == 0)
			return 0;
		if (errno != EEXIST)
			return -1;
	}
	errno = EEXIST;
	return -1;
}

static int
spool_move_named(int dirfd, const char *name, const char *subdir, char *moved, size_t movedlen)
{
	int subfd, rc, saved;

	if (!spool_component_ok(name) || !spool_component_ok(subdir)) {
		errno = EINVAL;
		return -1;
	}
	if ((subfd = spool_open_subdir(dirfd, subdir)) < 0)
		return -1;
	/* The new entry first, then the spool (which also holds a new subdir's entry). */
	rc = spool_rename_free_name(dirfd, name, subfd, moved, movedlen);
	if (rc == 0)
		rc = fsync(subfd) == 0 && fsync(dirfd) == 0 ? 0 : -1;
	saved = errno;
	(void)close(subfd);	/* a directory: fsync above was the check */
	errno = saved;
	return rc;
}

int
spool_move(int dirfd, const char *name, const char *subdir)
{
	char moved[NAME_MAX + 1];

	return spool_move_named(dirfd, name, subdir, moved, sizeof(moved));
}

/* "<UTC time> <reason>\n", control characters flattened so it stays one line. */
static size_t
spool_reason_line(char *buf, size_t len, const char *reason)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(buf + n, len - n, ".%06ldZ ", ts.tv_nsec / 1000);
	for (const char *p = reason; *p != '\0' && n < len - 2; p++)
		buf[n++] = (unsigned char)*p < 0x20 || *p == 0x7f ? ' ' : *p;
	buf[n++] = '\n';
	buf[n] = '\0';
	return n;
}

int
spool_quarantine(int dirfd, const char *name, const char *reason)
{
	char moved[NAME_MAX + 1], rname[NAME_MAX + 16], line[1024];
	size_t len;
	int qfd, rc = -1;

	if (spool_move_named(dirfd, name, SPOOL_QUARANTINE, moved, sizeof(moved)) < 0)
		return -1;
	len = spool_reason_line(line, sizeof(line), reason);
	snprintf(rname, sizeof(rname), "%s" SPOOL_REASON_SUFFIX, moved);
	if ((qfd = openat(dirfd, SPOOL_QUARANTINE, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		rc = durable_write_at(qfd, rname, line, len);
		close(qfd);
	}
	if (rc < 0)
		log_warn("%s/%s: cannot write the reason file (the file is quarantined; "
		    "reason: %s)", SPOOL_QUARANTINE, rname, reason);
	return 0;
}

int
spool_remove(int dirfd, const char *name)
{
	if (!spool_component_ok(name)) {
		errno = EINVAL;
		return -1;
	}
	if (unlinkat(dirfd, name, 0) < 0)
		return -1;
	return fsync(dirfd);
}

/* --- what is waiting, and the quarantine --------------------------------------------- */

int
spool_pending(int dirfd, const struct spool_list *l, int (*done)(void *arg, const char *name),
    void *arg, int by_mtime, struct spool_pending *out)
{
	struct stat st;
	int64_t us;

	out->n = 0;
	out->oldest = NULL;
	out->oldest_mtime_us = 0;
	for (size_t i = 0; i < l->n; i++) {
		if (done(arg, l->names[i]))
			continue;
		if (!by_mtime && out->oldest != NULL) {
			out->n++;
			continue;
		}
		if (fstatat(dirfd, l->names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;	/* taken since the listing: not waiting */
			return -1;
		}
		us = (int64_t)st.st_mtim.tv_sec * 1000000 + st.st_mtim.tv_nsec / 1000;
		if (out->n++ == 0 || us < out->oldest_mtime_us) {
			out->oldest_mtime_us = us;
			out->oldest = l->names[i];
		}
	}
	return 0;
}

static int
spool_is_reason_file(const char *name)
{
	size_t len = strlen(name), slen = strlen(SPOOL_REASON_SUFFIX);

	return len > slen && strcmp(name + len - slen, SPOOL_REASON_SUFFIX) == 0;
}

/* A quarantined file: not hidden, not the .reason file written beside it. */
static int
spool_is_quarantined(const char *name)
{
	return name[0] != '.' && !spool_is_reason_file(name);
}

int
spool_quarantine_scan(int dirfd, struct spool_list *out)
{
	size_t others = 0;
	int fd;

	spool_list_clear(out);
	if ((fd = openat(dirfd, SPOOL_QUARANTINE, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) < 0)
		return errno == ENOENT ? 0 : -1;	/* nothing was ever quarantined */
	return spool_read_dir(fd, spool_is_quarantined, out, NULL, &others);
}

int
spool_quarantine_reason(int dirfd, const char *name, char *line, size_t len)
{
	char path[NAME_MAX + sizeof(SPOOL_QUARANTINE) + sizeof(SPOOL_REASON_SUFFIX) + 2];
	ssize_t n;
	char *nl;
	int fd, saved;

	if (len == 0 || !spool_component_ok(name) ||
	    (size_t)snprintf(path, sizeof(path), SPOOL_QUARANTINE "/%s" SPOOL_REASON_SUFFIX,
	    name) >= sizeof(path)) {
		errno = EINVAL;
		return -1;
	}
	if ((fd = openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return -1;
	while ((n = read(fd, line, len - 1)) < 0 && errno == EINTR)
		;
	saved = errno;
	(void)close(fd);	/* read-only: nothing to lose */
	if (n < 0) {
		errno = saved;
		return -1;
	}
	line[n] = '\0';
	if ((nl = strchr(line, '\n')) != NULL)
		*nl = '\0';
	return 0;
}

int
spool_requeue_name(const char *qname, char *name, size_t len)
{
	size_t n = strlen(qname), k = n, slen = strlen(SPOOL_SUFFIX);

	/* "X.csv.3" (spool_move's free name) goes back as "X.csv". */
	while (k > 0 && qname[k - 1] >= '0' && qname[k - 1] <= '9')
		k--;
	if (k < n && k > 0 && qname[k - 1] == '.')
		n = k - 1;
	if (!spool_component_ok(qname) || n >= len || n <= slen || qname[0] == '.' ||
	    memcmp(qname + n - slen, SPOOL_SUFFIX, slen) != 0) {
		errno = EINVAL;
		return -1;
	}
	memcpy(name, qname, n);
	name[n] = '\0';
	return 0;
}

int
spool_requeue(int dirfd, const char *qname, const char *name)
{
	char rname[NAME_MAX + sizeof(SPOOL_REASON_SUFFIX)];
	int qfd, rc, saved;

	if (!spool_component_ok(qname) || !spool_component_ok(name) ||
	    (size_t)snprintf(rname, sizeof(rname), "%s" SPOOL_REASON_SUFFIX, qname) >=
	    sizeof(rname)) {
		errno = EINVAL;
		return -1;
	}
	if ((qfd = openat(dirfd, SPOOL_QUARANTINE, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) < 0)
		return -1;
	/* The spool entry first: once it is durable, the reason file is only a leftover. */
	rc = spool_rename_noreplace(qfd, qname, dirfd, name);
	if (rc == 0)
		rc = fsync(dirfd) == 0 && fsync(qfd) == 0 ? 0 : -1;
	if (rc == 0 && (unlinkat(qfd, rname, 0) == 0 ? fsync(qfd) : errno == ENOENT ? 0 : -1) < 0)
		log_warn("%s/%s: cannot remove the reason file (the file is requeued)",
		    SPOOL_QUARANTINE, rname);
	saved = errno;
	(void)close(qfd);	/* a directory: fsync above was the check */
	errno = saved;
	return rc;
}

const char *
spool_entry_kind(int dirfd, const char *name)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return NULL;
	switch (st.st_mode & S_IFMT) {
	case S_IFREG:	return NULL;
	case S_IFLNK:	return "a symbolic link";
	case S_IFDIR:	return "a directory";
	case S_IFIFO:	return "a FIFO";
	case S_IFSOCK:	return "a socket";
	case S_IFCHR:	return "a character device";
	case S_IFBLK:	return "a block device";
	}
	return "a special file";
}
