/* spool — see include/spool.h. */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
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

/* Does name[0..len) end in a spool suffix, after at least one byte of its own? */
static int
spool_has_suffix(const char *name, size_t len)
{
	static const char *const sfx[] = { SPOOL_SUFFIX, SPOOL_SUFFIX_GZ };

	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		size_t k = strlen(sfx[i]);
		if (len > k && memcmp(name + len - k, sfx[i], k) == 0)
			return 1;
	}
	return 0;
}

/* A finished file's name: not hidden (".NAME.tmp" is work in progress), a spool suffix. */
static int
spool_is_candidate(const char *name)
{
	return name[0] != '.' && spool_has_suffix(name, strlen(name));
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

int
spool_follow(const char *path, int *dirfd)
{
	struct stat now, held;
	int fd;

	if (stat(path, &now) < 0)
		return -1;
	if (!S_ISDIR(now.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	if (fstat(*dirfd, &held) < 0)
		return -1;
	if (held.st_nlink > 0 && now.st_dev == held.st_dev && now.st_ino == held.st_ino)
		return SPOOL_SAME;
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	(void)close(*dirfd);	/* read-only, and what was written through it was fsync'ed */
	*dirfd = fd;
	return SPOOL_REPLACED;
}

int
spool_follow_logged(const char *path, int *dirfd, int *gone)
{
	int rc = spool_follow(path, dirfd);

	if (rc < 0) {
		if (!*gone)
			log_warn("spool_dir %s cannot be opened (removed or moved away?); it is not "
			    "used until it is back, checked again at every step", path);
		*gone = 1;
		return -1;
	}
	if (rc == SPOOL_REPLACED)
		log_warnx("spool_dir %s is another directory now (removed or moved, then created "
		    "again); using the new one: files left in the old one stay there", path);
	else if (*gone)
		log_info("spool_dir %s is back; using it again", path);
	*gone = 0;
	return rc;
}

/* --- what changed since the last listing (inotify) ---------------------------------- */

#define SPOOL_WATCH_WRITTEN (IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB)
#define SPOOL_WATCH_MASK (IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM | \
	SPOOL_WATCH_WRITTEN | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
#define SPOOL_WATCH_LOST (IN_Q_OVERFLOW | IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_UNMOUNT)

int
spool_watch_open(int dirfd)
{
	char path[64];
	int wfd, saved;

	/* The directory the descriptor is, wherever its path now leads. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", dirfd);
	if ((wfd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0)
		return -1;
	if (inotify_add_watch(wfd, path, SPOOL_WATCH_MASK) < 0) {
		saved = errno;
		(void)close(wfd);	/* never watched anything: nothing to lose */
		errno = saved;
		return -1;
	}
	return wfd;
}

/* One name's change, in the order the kernel queued it. */
struct spool_change {
	char	*name;
	size_t	 seq;
	int	 here;		/* appeared (1) or left (0) */
};

struct spool_changes {
	struct spool_change *v;
	size_t	 n, cap;
	struct spool_list written;	/* unsorted, with repeats */
};

static int
spool_change_add(struct spool_changes *c, const char *name, int here)
{
	struct spool_change *v;
	size_t cap;

	if (c->n == c->cap) {
		cap = c->cap ? c->cap * 2 : 64;
		if ((v = realloc(c->v, cap * sizeof(*v))) == NULL)
			return -1;
		c->v = v;
		c->cap = cap;
	}
	if ((c->v[c->n].name = strdup(name)) == NULL)
		return -1;
	c->v[c->n].seq = c->n;
	c->v[c->n++].here = here;
	return 0;
}

static void
spool_changes_free(struct spool_changes *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].name);
	free(c->v);
	spool_list_free(&c->written);
}

static int
spool_change_cmp(const void *a, const void *b)
{
	const struct spool_change *x = a, *y = b;
	int k = strcmp(x->name, y->name);

	return k != 0 ? k : x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Drain the queue into c; 1 if what changed is unknown (overflow, watch lost). */
static int
spool_watch_drain(int wfd, struct spool_changes *c)
{
	char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	int lost = 0;
	ssize_t n;

	for (;;) {
		if ((n = read(wfd, buf, sizeof(buf))) < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? lost : -1;
		}
		for (char *p = buf; p < buf + n; p += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)p;
			lost |= (ev->mask & SPOOL_WATCH_LOST) != 0;
			if (ev->len == 0 || lost || !spool_is_candidate(ev->name))
				continue;
			if ((ev->mask & SPOOL_WATCH_WRITTEN) != 0) {
				/* A writer stays on a name for a while: one entry per run of events. */
				if ((c->written.n == 0 ||
				    strcmp(c->written.names[c->written.n - 1], ev->name) != 0) &&
				    spool_list_add(&c->written, ev->name) < 0)
					return -1;
				continue;
			}
			if (spool_change_add(c, ev->name, (ev->mask & (IN_CREATE | IN_MOVED_TO)) != 0) < 0)
				return -1;
		}
	}
}

/* The last change of each name decides: into added, gone or odd; written once each. */
static int
spool_changes_sort(int dirfd, struct spool_changes *c, struct spool_delta *d)
{
	struct spool_list *to;
	struct stat st;

	spool_list_sort(&c->written);
	for (size_t i = 0; i < c->written.n; i++)
		if ((i == 0 || strcmp(c->written.names[i - 1], c->written.names[i]) != 0) &&
		    spool_list_add(&d->written, c->written.names[i]) < 0)
			return -1;

	if (c->n > 1)
		qsort(c->v, c->n, sizeof(*c->v), spool_change_cmp);
	for (size_t i = 0; i < c->n; i++) {
		if (i + 1 < c->n && strcmp(c->v[i].name, c->v[i + 1].name) == 0)
			continue;
		to = &d->gone;
		if (c->v[i].here) {
			if (fstatat(dirfd, c->v[i].name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
				if (errno == ENOENT)
					continue;	/* gone again: its event is on the way */
				return -1;
			}
			to = S_ISREG(st.st_mode) ? &d->added : &d->odd;
		}
		if (spool_list_add(to, c->v[i].name) < 0)
			return -1;
	}
	return 0;
}

static void
spool_delta_clear(struct spool_delta *d)
{
	spool_list_clear(&d->added);
	spool_list_clear(&d->gone);
	spool_list_clear(&d->odd);
	spool_list_clear(&d->written);
}

void
spool_delta_free(struct spool_delta *d)
{
	spool_list_free(&d->added);
	spool_list_free(&d->gone);
	spool_list_free(&d->odd);
	spool_list_free(&d->written);
}

int
spool_watch_read(int wfd, int dirfd, struct spool_delta *d)
{
	struct spool_changes c = { 0 };
	int rc, saved;

	spool_delta_clear(d);
	if ((rc = spool_watch_drain(wfd, &c)) == 0)
		rc = spool_changes_sort(dirfd, &c, d);
	saved = errno;
	spool_changes_free(&c);
	if (rc != 0)
		spool_delta_clear(d);
	errno = saved;
	return rc;
}

/* Index of name in l (sorted), or where it would go; *found says which. */
static size_t
spool_list_find(const struct spool_list *l, const char *name, int *found)
{
	size_t lo = 0, hi = l->n;
	int k;

	*found = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if ((k = strcmp(l->names[mid], name)) == 0) {
			*found = 1;
			return mid;
		}
		if (k < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Both sorted: one walk.  Only triggers after files left pay it. */
static void
spool_list_remove_gone(struct spool_list *l, const struct spool_list *gone, size_t *from)
{
	size_t k = 0, g = 0, before = 0;
	int c = 1;

	for (size_t i = 0; i < l->n; i++) {
		while (g < gone->n && (c = strcmp(gone->names[g], l->names[i])) < 0)
			g++;
		if (g < gone->n && c == 0) {
			free(l->names[i]);
			before += i < *from;
			continue;
		}
		l->names[k++] = l->names[i];
	}
	l->n = k;
	*from -= before;
}

int
spool_list_apply(struct spool_list *l, const struct spool_delta *d, size_t *from)
{
	const struct spool_list *added = &d->added, *gone = &d->gone;
	struct spool_list in = { 0 };
	size_t i, j, w, cap, first;
	char **p;
	int found;

	for (i = 0; i < added->n; i++) {
		(void)spool_list_find(l, added->names[i], &found);
		if (!found && spool_list_add(&in, added->names[i]) < 0) {
			spool_list_free(&in);
			return -1;
		}
	}
	if (l->n + in.n > l->cap) {
		for (cap = l->cap ? l->cap : 64; cap < l->n + in.n; cap *= 2)
			;
		if ((p = realloc(l->names, cap * sizeof(*p))) == NULL) {
			spool_list_free(&in);
			return -1;
		}
		l->names = p;
		l->cap = cap;
	}
	if (gone->n > 0)
		spool_list_remove_gone(l, gone, from);
	if (in.n > 0) {
		first = spool_list_find(l, in.names[0], &found);
		if (first < *from)
			*from = first;
		/* Merge from the back; evgen's new names all go after the old ones. */
		for (i = l->n, j = in.n, w = l->n + in.n; j > 0; )
			l->names[--w] = i > 0 && strcmp(l->names[i - 1], in.names[j - 1]) > 0 ?
			    l->names[--i] : in.names[--j];
		l->n += in.n;
		in.n = 0;	/* the names now belong to l */
	}
	spool_list_free(&in);
	return 0;
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

/*
 * Open subdir of the spool, created if missing.  A directory just created is
 * made durable (fsync of the spool) before anything is moved into it: else a
 * crash may keep the rename into it but not the mkdir (no order holds between
 * un-synced directory operations), and the moved file is in neither place
 * (tests/system/crash_states_recovered.sh found it).  If that fsync fails the
 * empty directory is removed again, so the next move creates and syncs it anew.
 */
static int
spool_open_subdir(int dirfd, const char *subdir)
{
	int saved;

	if (mkdirat(dirfd, subdir, 0750) == 0) {
		if (fsync(dirfd) < 0) {
			saved = errno;
			(void)unlinkat(dirfd, subdir, AT_REMOVEDIR);
			errno = saved;
			return -1;
		}
	} else if (errno != EEXIST)
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
	size_t n = strlen(qname), k = n;

	/* "X.csv.3" (spool_move's free name) goes back as "X.csv"; "X.csv.gz.3" as "X.csv.gz". */
	while (k > 0 && qname[k - 1] >= '0' && qname[k - 1] <= '9')
		k--;
	if (k < n && k > 0 && qname[k - 1] == '.')
		n = k - 1;
	if (!spool_component_ok(qname) || n >= len || qname[0] == '.' ||
	    !spool_has_suffix(qname, n)) {
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
