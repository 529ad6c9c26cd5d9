/* ckpt — see include/ckpt.h. */
#include "ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt_format.h"
#include "ckpt_names.h"
#include "durable.h"
#include "event.h"
#include "spool.h"

#define CKPT_FILE	"checkpoint"
#define CKPT_JOURNAL	"checkpoint.journal"
#define CKPT_JOURNAL_MIN (1L << 20)	/* the journal may grow to max(this, the file) */
#define CKPT_LOCK	"lock"
#define CKPT_MAX_SIZE	(1L << 30)	/* ~10 M names; anything bigger is not ours */

struct ckpt {
	char		*dir;
	int		 lockfd;
	struct ckpt_records rec;	/* what it says: last batch, max event time, names */
	struct ckpt_buf	 buf;		/* ckpt_save's text, kept between saves */
	int64_t		 saved_batch;	/* the last batch on disk, in the file or the journal */
	int		 have_file;	/* DIR/checkpoint exists */
	int		 need_file;	/* a change the journal cannot say: rewrite the file next */
	size_t		 file_bytes;	/* its size */
	size_t		 journal_bytes;	/* the journal's size, in whole records */
};

/* --- the in-memory API ---------------------------------------------------------- */

int64_t
ckpt_last_batch(const struct ckpt *c)
{
	return c->rec.last_batch;
}

int64_t
ckpt_max_event_time(const struct ckpt *c)
{
	return c->rec.max_time;
}

void
ckpt_set_max_event_time(struct ckpt *c, int64_t us)
{
	c->need_file |= us != c->rec.max_time;
	c->rec.max_time = us;
}

size_t
ckpt_count(const struct ckpt *c)
{
	return c->rec.names.n;
}

int
ckpt_is_committed(const struct ckpt *c, const char *name)
{
	return ckpt_names_find(&c->rec.names, name) != 0;
}

int
ckpt_file_id(const struct ckpt *c, const char *name, int64_t *batch, struct spool_id *id)
{
	size_t k = ckpt_names_find(&c->rec.names, name);

	if (k == 0)
		return 0;
	*batch = c->rec.names.v[k - 1].batch;
	*id = c->rec.names.v[k - 1].id;
	return 1;
}

void
ckpt_set_file_id(struct ckpt *c, const char *name, const struct spool_id *id)
{
	size_t k = ckpt_names_find(&c->rec.names, name);

	if (k != 0)
		c->rec.names.v[k - 1].id = *id;
}

int
ckpt_is_beyond(const struct ckpt *c, const char *name)
{
	return c->rec.names.last_name != NULL && strcmp(name, c->rec.names.last_name) > 0;
}

int
ckpt_add_batch(struct ckpt *c, int64_t batch_id, char *const *files,
    const struct spool_id *ids, size_t nfiles, int64_t max_event_time_us)
{
	size_t n0 = c->rec.names.n;
	char *last;
	int saved;

	if (batch_id <= c->rec.last_batch) {
		errno = EINVAL;
		return -1;
	}
	for (size_t i = 0; i < nfiles; i++)
		if (!ckpt_names_valid(files[i])) {
			errno = EINVAL;
			return -1;
		}
	if (ckpt_names_reserve(&c->rec.names, nfiles) < 0 ||
	    ckpt_names_new_last(&c->rec.names, (const char *const *)files, nfiles, &last) < 0)
		return -1;
	for (size_t i = 0; i < nfiles; i++)
		if (ckpt_names_append(&c->rec.names, files[i], batch_id, ids != NULL ? &ids[i] : NULL) < 0) {
			saved = errno;
			ckpt_names_truncate(&c->rec.names, n0);
			free(last);
			errno = saved;
			return -1;
		}
	ckpt_names_take_last(&c->rec.names, last);
	c->rec.last_batch = batch_id;
	if (max_event_time_us > c->rec.max_time)
		c->rec.max_time = max_event_time_us;
	return 0;
}

int
ckpt_add_file(struct ckpt *c, const char *name, int64_t batch_id)
{
	char *last;

	if (batch_id < 1 || batch_id > c->rec.last_batch || !ckpt_names_valid(name)) {
		errno = EINVAL;
		return -1;
	}
	/* An old batch's name, out of batch order: the journal cannot say it. */
	if (ckpt_names_new_last(&c->rec.names, &name, 1, &last) < 0)
		return -1;
	if (ckpt_names_append(&c->rec.names, name, batch_id, NULL) < 0) {
		free(last);
		return -1;
	}
	ckpt_names_take_last(&c->rec.names, last);	/* another evstream's name may sort after ours */
	c->need_file = 1;
	return 0;
}

static int
ckpt_keep_upto(void *arg, const struct ckpt_entry *e)
{
	return e->batch <= *(const int64_t *)arg;
}

int
ckpt_drop_after(struct ckpt *c, int64_t batch_id)
{
	if (batch_id < 0 || batch_id > c->rec.last_batch) {
		errno = EINVAL;
		return -1;
	}
	(void)ckpt_names_compact(&c->rec.names, ckpt_keep_upto, &batch_id);
	c->rec.last_batch = batch_id;
	c->need_file = 1;
	return 0;
}

struct ckpt_forget_arg {
	int	(*still_needed)(void *, const char *);
	void	*arg;
};

static int
ckpt_keep_needed(void *arg, const struct ckpt_entry *e)
{
	const struct ckpt_forget_arg *f = arg;

	return f->still_needed(f->arg, e->name) != 0;
}

size_t
ckpt_forget(struct ckpt *c, int (*still_needed)(void *arg, const char *name), void *arg)
{
	struct ckpt_forget_arg f = { still_needed, arg };
	size_t n = ckpt_names_compact(&c->rec.names, ckpt_keep_needed, &f);

	c->need_file |= n > 0;
	return n;
}

/* --- saving: the file, or a record appended to the journal ------------------------ */

static int
ckpt_path(const struct ckpt *c, const char *name, char path[PATH_MAX])
{
	if ((size_t)snprintf(path, PATH_MAX, "%s/%s", c->dir, name) >= PATH_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static int
ckpt_save_failed(struct ckpt *c, char *err, size_t errlen, const char *what)
{
	int saved = errno;

	/* A failed append may have left part of a record: only a whole rewrite is safe now. */
	c->need_file = 1;
	snprintf(err, errlen, "%s/%s: cannot write the checkpoint: %s%s", c->dir, CKPT_FILE,
	    strerror(saved), what);
	errno = saved;
	return -1;
}

int
ckpt_rewrite(struct ckpt *c, char *err, size_t errlen)
{
	char path[PATH_MAX];

	if (c->lockfd < 0) {	/* from ckpt_read: only the lock holder may save */
		snprintf(err, errlen, "%s/%s: read without the lock, not saving", c->dir, CKPT_FILE);
		errno = EROFS;
		return -1;
	}
	if (ckpt_format_file(&c->buf, &c->rec) < 0 ||
	    durable_write_file(c->dir, CKPT_FILE, c->buf.p, c->buf.len) < 0)
		return ckpt_save_failed(c, err, errlen, "");
	/*
	 * The file now says everything.  Until the journal is gone its records are
	 * older than the file's last batch and skipped; after a ckpt_drop_after they
	 * could be newer, and the reconcile with the database would drop them again.
	 */
	if (ckpt_path(c, CKPT_JOURNAL, path) < 0 || (unlink(path) < 0 && errno != ENOENT) ||
	    durable_sync_dir(c->dir) < 0)
		return ckpt_save_failed(c, err, errlen, " (removing " CKPT_JOURNAL ")");
	c->have_file = 1;
	c->need_file = 0;
	c->file_bytes = c->buf.len;
	c->journal_bytes = 0;
	c->saved_batch = c->rec.last_batch;
	return 0;
}

/*
 * The batches since the last save go into the journal, one record, appended
 * and fdatasync'ed: the cost follows the batch, not the history.  The whole
 * file is rewritten (and the journal emptied) when the journal has grown as big
 * as the file, so the bytes written per batch stay bounded on average, and when
 * the journal cannot say a change (forgotten or dropped names).
 */
int
ckpt_save(struct ckpt *c, char *err, size_t errlen)
{
	size_t limit = c->file_bytes > CKPT_JOURNAL_MIN ? c->file_bytes : CKPT_JOURNAL_MIN;

	if (c->lockfd < 0 || !c->have_file || c->need_file)
		return ckpt_rewrite(c, err, errlen);
	if (c->rec.last_batch == c->saved_batch)
		return 0;
	if (ckpt_format_record(&c->buf, &c->rec, c->saved_batch) < 0)
		return ckpt_save_failed(c, err, errlen, " (appending to " CKPT_JOURNAL ")");
	if (c->journal_bytes + c->buf.len > limit)
		return ckpt_rewrite(c, err, errlen);
	if (durable_append(c->dir, CKPT_JOURNAL, c->buf.p, c->buf.len) < 0)
		return ckpt_save_failed(c, err, errlen, " (appending to " CKPT_JOURNAL ")");
	c->journal_bytes += c->buf.len;
	c->saved_batch = c->rec.last_batch;
	return 0;
}

/* --- loading: the file, then the journal ------------------------------------------ */

static int
ckpt_read_all(int fd, char **bufp, size_t *lenp)
{
	struct stat st;
	size_t len = 0;
	ssize_t n;
	char *buf;

	if (fstat(fd, &st) < 0)
		return -1;
	if (!S_ISREG(st.st_mode) || st.st_size > CKPT_MAX_SIZE) {
		errno = S_ISREG(st.st_mode) ? EFBIG : EINVAL;
		return -1;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL)
		return -1;
	/* One byte more than the size: a file that grows under us is not read half. */
	while ((n = read(fd, buf + len, (size_t)st.st_size + 1 - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (len += (size_t)n) > (size_t)st.st_size) {
			int saved = n < 0 ? errno : EAGAIN;
			free(buf);
			errno = saved;
			return -1;
		}
	}
	*bufp = buf;
	*lenp = len;
	return 0;
}

typedef int (*ckpt_parse_fn)(struct ckpt *, const char *, size_t, struct ckpt_reader *);

static int
ckpt_parse_file(struct ckpt *c, const char *buf, size_t len, struct ckpt_reader *r)
{
	if (ckpt_format_parse(&c->rec, buf, len, r) < 0)
		return -1;
	/*
	 * The first save after a load rewrites the file, whatever its version.  An
	 * older one must be (the journal extends version 2).  For version 2 it is
	 * what ckpt did before the format had a module of its own, which tested the
	 * version before reading it; appending at once is a change of its own.
	 */
	c->need_file = 1;
	return 0;
}

/* A torn last record is not taken; the next save rewrites the file, which says it all. */
static int
ckpt_parse_journal(struct ckpt *c, const char *buf, size_t len, struct ckpt_reader *r)
{
	if (ckpt_format_parse_journal(&c->rec, buf, len, r, &c->journal_bytes) < 0)
		return -1;
	c->need_file |= c->journal_bytes != len;
	return 0;
}

/* Read and parse DIR/name; 0 if it is missing, -1 with err if unreadable or doubtful. */
static int
ckpt_load_one(struct ckpt *c, const char *name, ckpt_parse_fn parse, size_t *bytes, char *err,
    size_t errlen)
{
	char path[PATH_MAX], *buf;
	struct ckpt_reader r;
	size_t len;
	int fd, rc, saved;

	if (ckpt_path(c, name, path) < 0)
		return snprintf(err, errlen, "%s/%s: path too long", c->dir, name), -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			return 0;
		return snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno)), -1;
	}
	rc = ckpt_read_all(fd, &buf, &len);
	saved = errno;
	(void)close(fd);	/* read-only: nothing to lose */
	if (rc < 0)
		return snprintf(err, errlen, "%s: cannot read: %s", path, strerror(saved)),
		    errno = saved, -1;
	memset(&r, 0, sizeof(r));
	*bytes = len;
	rc = parse(c, buf, len, &r);
	free(buf);
	if (rc < 0) {
		snprintf(err, errlen, "%s: line %zu: %s", path, r.line, r.why);
		errno = EBADMSG;
	}
	return rc < 0 ? -1 : 1;
}

/* The file, then the journal's later batches.  Missing both is a fresh start. */
static int
ckpt_load(struct ckpt *c, char *err, size_t errlen)
{
	size_t jbytes;
	int rc = ckpt_load_one(c, CKPT_FILE, ckpt_parse_file, &c->file_bytes, err, errlen);

	if (rc < 0)
		return -1;
	c->have_file = rc > 0;
	if (ckpt_load_one(c, CKPT_JOURNAL, ckpt_parse_journal, &jbytes, err, errlen) < 0)
		return -1;
	c->saved_batch = c->rec.last_batch;
	return 0;
}

/* --- the directory and its lock ------------------------------------------------- */

/* Make a directory entry we created durable: fsync the directory holding it. */
static int
ckpt_sync_parent(const char *path)
{
	char parent[PATH_MAX];
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return durable_sync_dir(".");
	if (slash == path)
		return durable_sync_dir("/");
	memcpy(parent, path, (size_t)(slash - path));
	parent[slash - path] = '\0';
	return durable_sync_dir(parent);
}

/* mkdir -p with mode 0750. */
static int
ckpt_mkdirs(const char *dir, const char **what)
{
	char path[PATH_MAX], ch;
	size_t len = strlen(dir);

	if (len == 0 || len >= sizeof(path)) {
		errno = len ? ENAMETOOLONG : ENOENT;
		return -1;
	}
	memcpy(path, dir, len + 1);
	for (char *p = path + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		ch = *p;
		*p = '\0';
		/*
		 * The checkpoint directory's parent is synced also when it exists: a start
		 * after a failed fsync cannot tell that its entry is durable (a failed
		 * fsync is final).  Parents above it are synced when they are created.
		 */
		*what = "mkdir";
		int made = mkdir(path, 0750) == 0;
		if (!made && errno != EEXIST)
			return -1;
		*what = "opening or fsyncing its parent directory";
		if ((made || ch == '\0') && ckpt_sync_parent(path) < 0)
			return -1;
		if ((*p = ch) == '\0')
			return 0;
	}
}

/* Who holds the lock, as its pid file says; "unknown" while it is being written. */
static void
ckpt_lock_holder(int fd, char *pid, size_t len)
{
	ssize_t n = pread(fd, pid, len - 1, 0);
	size_t k = 0;

	while (n > 0 && k < (size_t)n && pid[k] >= '0' && pid[k] <= '9')
		k++;
	if (n <= 0 || k == 0 || k == (size_t)n || pid[k] != '\n')
		k = (size_t)snprintf(pid, len, "unknown");
	pid[k] = '\0';
}

static int
ckpt_lock(struct ckpt *c, char *err, size_t errlen)
{
	char path[PATH_MAX], pid[32];
	int n, saved;

	if (ckpt_path(c, CKPT_LOCK, path) < 0 ||
	    (c->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640)) < 0)
		return snprintf(err, errlen, "%s/%s: cannot open: %s", c->dir, CKPT_LOCK,
		    strerror(errno)), -1;
	if (flock(c->lockfd, LOCK_EX | LOCK_NB) < 0) {
		saved = errno;
		if (saved == EWOULDBLOCK) {
			ckpt_lock_holder(c->lockfd, pid, sizeof(pid));
			snprintf(err, errlen, "checkpoint %s is locked by another evstream (pid %s)",
			    c->dir, pid);
		} else
			snprintf(err, errlen, "%s: cannot lock: %s", path, strerror(saved));
		errno = saved;
		return -1;
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(c->lockfd, 0) < 0 || pwrite(c->lockfd, pid, (size_t)n, 0) != n)
		return snprintf(err, errlen, "%s: cannot write our pid: %s", path,
		    strerror(errno)), -1;
	return 0;
}

/* An empty checkpoint for dir, neither locked nor loaded. */
static struct ckpt *
ckpt_alloc(const char *dir, char *err, size_t errlen)
{
	struct ckpt *c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errlen, "checkpoint %s: out of memory", dir);
		return NULL;
	}
	c->lockfd = -1;
	c->rec.max_time = EVENT_TIME_NONE;
	if ((c->dir = strdup(dir)) == NULL || ckpt_names_init(&c->rec.names) < 0) {
		snprintf(err, errlen, "checkpoint %s: out of memory", dir);
		ckpt_close(c);
		errno = ENOMEM;
		return NULL;
	}
	return c;
}

struct ckpt *
ckpt_open(const char *dir, char *err, size_t errlen)
{
	struct ckpt *c;
	int saved;

	const char *what = "mkdir";

	if (ckpt_mkdirs(dir, &what) < 0) {
		saved = errno;
		snprintf(err, errlen, "cannot create checkpoint directory %s (%s): %s", dir, what,
		    strerror(saved));
		errno = saved;
		return NULL;
	}
	if ((c = ckpt_alloc(dir, err, errlen)) == NULL)
		return NULL;
	if (ckpt_lock(c, err, errlen) < 0 ||
	    ckpt_load(c, err, errlen) < 0) {
		saved = errno;
		ckpt_close(c);
		errno = saved;
		return NULL;
	}
	return c;
}

/*
 * No lock: the file only ever changes by rename, so whatever moment we open it
 * we read one whole version, old or new.  Creating nothing keeps a status
 * check from making directories as whoever runs it.
 */
struct ckpt *
ckpt_read(const char *dir, char *err, size_t errlen)
{
	struct ckpt *c;
	int saved;

	if ((c = ckpt_alloc(dir, err, errlen)) == NULL)
		return NULL;
	if (ckpt_load(c, err, errlen) < 0) {
		saved = errno;
		ckpt_close(c);
		errno = saved;
		return NULL;
	}
	return c;
}

void
ckpt_close(struct ckpt *c)
{
	if (c == NULL)
		return;
	ckpt_names_free(&c->rec.names);	/* safe on the zeros of a failed ckpt_alloc */
	free(c->buf.p);
	free(c->dir);
	/* Closing the only descriptor of the open file description drops the flock. */
	if (c->lockfd >= 0)
		(void)close(c->lockfd);
	free(c);
}
