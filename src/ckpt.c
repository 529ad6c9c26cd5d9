/* ckpt — see include/ckpt.h. */
#include "ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "durable.h"
#include "event.h"
#include "spool.h"

#define CKPT_FILE	"checkpoint"
#define CKPT_JOURNAL	"checkpoint.journal"
#define CKPT_JOURNAL_MIN (1L << 20)	/* the journal may grow to max(this, the file) */
#define CKPT_LOCK	"lock"
#define CKPT_MAGIC	"evpipe-checkpoint"
#define CKPT_NAME_MAX	255		/* NAME_MAX: the names are directory entries */
#define CKPT_MAX_SIZE	(1L << 30)	/* ~10 M names; anything bigger is not ours */
#define CKPT_INDEX_MIN	64

struct ckpt_entry {
	char	*name;
	int64_t	 batch;
	struct spool_id id;	/* the file as read; ino 0: unknown */
};

struct ckpt {
	char		*dir;
	int		 lockfd;
	int64_t		 last_batch;
	int64_t		 max_time;
	char		*last_name;	/* the greatest name ever committed; NULL: unknown */
	struct ckpt_entry *v;		/* in the order added, which is batch order */
	size_t		 n, cap;
	uint32_t	*index;		/* 0: free; else 1 + position in v */
	size_t		 imask;		/* index capacity - 1; load <= 0.5 */
	char		*buf;		/* ckpt_save's text, kept between saves */
	size_t		 buflen, bufcap;
	int64_t		 saved_batch;	/* the last batch on disk, in the file or the journal */
	int		 have_file;	/* DIR/checkpoint exists */
	int		 need_file;	/* a change the journal cannot say: rewrite the file next */
	size_t		 file_bytes;	/* its size */
	size_t		 journal_bytes;	/* the journal's size, in whole records */
};

/* --- the name index ------------------------------------------------------------- */

/* FNV-1a; the final fold brings the well-mixed high bits down to the index bits. */
static size_t
ckpt_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return (size_t)(h ^ (h >> 29) ^ (h >> 47));
}

/* The index slot that holds name, or the free slot where it would go. */
static size_t
ckpt_slot(const struct ckpt *c, const char *name)
{
	size_t i = ckpt_hash(name) & c->imask;

	while (c->index[i] != 0 && strcmp(c->v[c->index[i] - 1].name, name) != 0)
		i = (i + 1) & c->imask;
	return i;
}

static void
ckpt_index_fill(struct ckpt *c)
{
	memset(c->index, 0, (c->imask + 1) * sizeof(*c->index));
	for (size_t k = 0; k < c->n; k++)
		c->index[ckpt_slot(c, c->v[k].name)] = (uint32_t)(k + 1);
}

/*
 * Size the index for `need` names and rebuild it.  Shrinking never fails:
 * when no smaller array can be had, the current one is big enough.
 */
static int
ckpt_reindex(struct ckpt *c, size_t need)
{
	size_t cap = CKPT_INDEX_MIN;
	uint32_t *ix;

	while (cap / 2 < need)
		cap *= 2;
	if (cap != c->imask + 1) {
		if ((ix = calloc(cap, sizeof(*ix))) != NULL) {
			free(c->index);
			c->index = ix;
			c->imask = cap - 1;
		} else if ((c->imask + 1) / 2 < need)
			return -1;
	}
	ckpt_index_fill(c);
	return 0;
}

/* Room for `extra` more names, so appending them cannot fail but for strdup. */
static int
ckpt_reserve(struct ckpt *c, size_t extra)
{
	struct ckpt_entry *v;
	size_t need, cap;

	/* The index stores positions in 32 bits. */
	if (extra > UINT32_MAX / 4 || c->n + extra > UINT32_MAX / 4) {
		errno = ENOMEM;
		return -1;
	}
	need = c->n + extra;
	if (need > c->cap) {
		for (cap = c->cap ? c->cap : 64; cap < need; cap *= 2)
			;
		if ((v = realloc(c->v, cap * sizeof(*v))) == NULL)
			return -1;
		c->v = v;
		c->cap = cap;
	}
	if (need > (c->imask + 1) / 2)
		return ckpt_reindex(c, need);
	return 0;
}

/*
 * A copy of the greatest of names[0..n) if it sorts after every name committed
 * before, for ckpt_take_last; NULL in *out if it does not.  -1: no memory.
 */
static int
ckpt_new_last(const struct ckpt *c, const char *const *names, size_t n, char **out)
{
	const char *top = c->last_name;

	for (size_t i = 0; i < n; i++)
		if (top == NULL || strcmp(names[i], top) > 0)
			top = names[i];
	*out = NULL;
	if (top == c->last_name)
		return 0;
	return (*out = strdup(top)) == NULL ? -1 : 0;
}

static void
ckpt_take_last(struct ckpt *c, char *last)
{
	if (last == NULL)
		return;
	free(c->last_name);
	c->last_name = last;
}

/* Add a name that is not there yet (EEXIST if it is). */
static int
ckpt_append(struct ckpt *c, const char *name, int64_t batch, const struct spool_id *id)
{
	size_t slot;
	char *dup;

	if (ckpt_reserve(c, 1) < 0)
		return -1;
	slot = ckpt_slot(c, name);
	if (c->index[slot] != 0) {
		errno = EEXIST;
		return -1;
	}
	if ((dup = strdup(name)) == NULL)
		return -1;
	c->v[c->n].name = dup;
	c->v[c->n].batch = batch;
	if (id != NULL)
		c->v[c->n].id = *id;
	else
		memset(&c->v[c->n].id, 0, sizeof(c->v[c->n].id));
	c->index[slot] = (uint32_t)++c->n;
	return 0;
}

/* Keep the names keep() says yes to, in their order; returns how many went. */
static size_t
ckpt_compact(struct ckpt *c, int (*keep)(void *, const struct ckpt_entry *), void *arg)
{
	size_t k = 0, n0 = c->n;

	for (size_t i = 0; i < n0; i++) {
		if (keep(arg, &c->v[i]))
			c->v[k++] = c->v[i];
		else
			free(c->v[i].name);
	}
	c->n = k;
	(void)ckpt_reindex(c, k);	/* cannot fail: k <= n0 fits the current index */
	return n0 - k;
}

static int
ckpt_name_ok(const char *name)
{
	size_t len = strlen(name);

	return len > 0 && len <= CKPT_NAME_MAX && strchr(name, '/') == NULL;
}

/* --- the in-memory API ---------------------------------------------------------- */

int64_t
ckpt_last_batch(const struct ckpt *c)
{
	return c->last_batch;
}

int64_t
ckpt_max_event_time(const struct ckpt *c)
{
	return c->max_time;
}

void
ckpt_set_max_event_time(struct ckpt *c, int64_t us)
{
	c->need_file |= us != c->max_time;
	c->max_time = us;
}

size_t
ckpt_count(const struct ckpt *c)
{
	return c->n;
}

int
ckpt_is_committed(const struct ckpt *c, const char *name)
{
	return c->index[ckpt_slot(c, name)] != 0;
}

int
ckpt_file_id(const struct ckpt *c, const char *name, int64_t *batch, struct spool_id *id)
{
	uint32_t k = c->index[ckpt_slot(c, name)];

	if (k == 0)
		return 0;
	*batch = c->v[k - 1].batch;
	*id = c->v[k - 1].id;
	return 1;
}

void
ckpt_set_file_id(struct ckpt *c, const char *name, const struct spool_id *id)
{
	uint32_t k = c->index[ckpt_slot(c, name)];

	if (k != 0)
		c->v[k - 1].id = *id;
}

int
ckpt_is_beyond(const struct ckpt *c, const char *name)
{
	return c->last_name != NULL && strcmp(name, c->last_name) > 0;
}

/* Forget the names appended after the first n0 (undo of a failed ckpt_add_batch). */
static void
ckpt_truncate(struct ckpt *c, size_t n0)
{
	while (c->n > n0)
		free(c->v[--c->n].name);
	ckpt_index_fill(c);
}

int
ckpt_add_batch(struct ckpt *c, int64_t batch_id, char *const *files,
    const struct spool_id *ids, size_t nfiles, int64_t max_event_time_us)
{
	size_t n0 = c->n;
	char *last;
	int saved;

	if (batch_id <= c->last_batch) {
		errno = EINVAL;
		return -1;
	}
	for (size_t i = 0; i < nfiles; i++)
		if (!ckpt_name_ok(files[i])) {
			errno = EINVAL;
			return -1;
		}
	if (ckpt_reserve(c, nfiles) < 0 ||
	    ckpt_new_last(c, (const char *const *)files, nfiles, &last) < 0)
		return -1;
	for (size_t i = 0; i < nfiles; i++)
		if (ckpt_append(c, files[i], batch_id, ids != NULL ? &ids[i] : NULL) < 0) {
			saved = errno;
			ckpt_truncate(c, n0);
			free(last);
			errno = saved;
			return -1;
		}
	ckpt_take_last(c, last);
	c->last_batch = batch_id;
	if (max_event_time_us > c->max_time)
		c->max_time = max_event_time_us;
	return 0;
}

int
ckpt_add_file(struct ckpt *c, const char *name, int64_t batch_id)
{
	char *last;

	if (batch_id < 1 || batch_id > c->last_batch || !ckpt_name_ok(name)) {
		errno = EINVAL;
		return -1;
	}
	/* An old batch's name, out of batch order: the journal cannot say it. */
	if (ckpt_new_last(c, &name, 1, &last) < 0)
		return -1;
	if (ckpt_append(c, name, batch_id, NULL) < 0) {
		free(last);
		return -1;
	}
	ckpt_take_last(c, last);	/* another evstream's name may sort after ours */
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
	if (batch_id < 0 || batch_id > c->last_batch) {
		errno = EINVAL;
		return -1;
	}
	(void)ckpt_compact(c, ckpt_keep_upto, &batch_id);
	c->last_batch = batch_id;
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
	size_t n = ckpt_compact(c, ckpt_keep_needed, &f);

	c->need_file |= n > 0;
	return n;
}

/* --- the file format ------------------------------------------------------------ */

static int
ckpt_path(const struct ckpt *c, const char *name, char path[PATH_MAX])
{
	if ((size_t)snprintf(path, PATH_MAX, "%s/%s", c->dir, name) >= PATH_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}


/* CRC-32/IEEE (zlib's), four bits at a time: a 16-entry table is plenty here. */
static uint32_t
ckpt_crc32(const char *p, size_t len)
{
	static const uint32_t t[16] = {
		0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac,
		0x76dc4190, 0x6b6b51f4, 0x4db26158, 0x5005713c,
		0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
		0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
	};
	uint32_t crc = 0xffffffff;

	for (size_t i = 0; i < len; i++) {
		crc ^= (unsigned char)p[i];
		crc = (crc >> 4) ^ t[crc & 15];
		crc = (crc >> 4) ^ t[crc & 15];
	}
	return ~crc;
}

static int
ckpt_must_escape(unsigned char ch)
{
	return ch < 0x21 || ch > 0x7e || ch == '%';
}

static int
ckpt_buf_reserve(struct ckpt *c, size_t more)
{
	size_t cap = c->bufcap ? c->bufcap : 4096;
	char *p;

	if (more > SIZE_MAX / 2 - c->buflen) {
		errno = ENOMEM;
		return -1;
	}
	if (c->buflen + more <= c->bufcap)
		return 0;
	while (cap < c->buflen + more)
		cap *= 2;
	if ((p = realloc(c->buf, cap)) == NULL)
		return -1;
	c->buf = p;
	c->bufcap = cap;
	return 0;
}

static int __attribute__((format(printf, 2, 3)))
ckpt_buf_printf(struct ckpt *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	/* Every line this formats is short: one try with room for 64 bytes does. */
	if (ckpt_buf_reserve(c, 64) < 0)
		return -1;
	va_start(ap, fmt);
	n = vsnprintf(c->buf + c->buflen, c->bufcap - c->buflen, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= c->bufcap - c->buflen) {
		errno = EOVERFLOW;
		return -1;
	}
	c->buflen += (size_t)n;
	return 0;
}

static int
ckpt_buf_name(struct ckpt *c, const char *name)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t len = strlen(name);
	unsigned char ch;

	if (ckpt_buf_reserve(c, 3 * len + 1) < 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		ch = (unsigned char)name[i];
		if (ckpt_must_escape(ch)) {
			c->buf[c->buflen++] = '%';
			c->buf[c->buflen++] = hex[ch >> 4];
			c->buf[c->buflen++] = hex[ch & 15];
		} else
			c->buf[c->buflen++] = (char)ch;
	}
	c->buf[c->buflen++] = '\n';
	return 0;
}

/* "file <batch> <name>", or with the identity "file <batch> <size> <mtime> <dev> <ino> <name>". */
static int
ckpt_buf_file(struct ckpt *c, const struct ckpt_entry *e)
{
	const struct spool_id *id = &e->id;

	if (ckpt_buf_printf(c, "file %" PRId64 " ", e->batch) < 0)
		return -1;
	if (id->ino != 0 && ckpt_buf_printf(c, "%" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " ",
	    id->size, id->mtime_ns, id->dev, id->ino) < 0)
		return -1;
	return ckpt_buf_name(c, e->name);
}

static int
ckpt_format(struct ckpt *c)
{
	c->buflen = 0;
	if (ckpt_buf_printf(c, CKPT_MAGIC " %d\nlast_batch %" PRId64 "\n", CKPT_VERSION,
	    c->last_batch) < 0)
		return -1;
	if (c->max_time == EVENT_TIME_NONE) {
		if (ckpt_buf_printf(c, "max_event_time none\n") < 0)
			return -1;
	} else if (ckpt_buf_printf(c, "max_event_time %" PRId64 "\n", c->max_time) < 0)
		return -1;
	if (c->last_name != NULL && (ckpt_buf_printf(c, "last_name ") < 0 ||
	    ckpt_buf_name(c, c->last_name) < 0))
		return -1;
	for (size_t i = 0; i < c->n; i++)
		if (ckpt_buf_file(c, &c->v[i]) < 0)
			return -1;
	return ckpt_buf_printf(c, "end %zu %08" PRIx32 "\n", c->n, ckpt_crc32(c->buf, c->buflen));
}

/*
 * One journal record: the batches committed since the last save, as
 * "batch <last batch> <max event time | none>", their file lines as in the
 * file, and "end <file lines> <crc32>" over the record's bytes before it.
 */
static int
ckpt_format_record(struct ckpt *c)
{
	size_t k = c->n;

	while (k > 0 && c->v[k - 1].batch > c->saved_batch)	/* the names are in batch order */
		k--;
	c->buflen = 0;
	if (ckpt_buf_printf(c, "batch %" PRId64 " ", c->last_batch) < 0 ||
	    (c->max_time == EVENT_TIME_NONE ? ckpt_buf_printf(c, "none\n") :
	    ckpt_buf_printf(c, "%" PRId64 "\n", c->max_time)) < 0)
		return -1;
	for (size_t i = k; i < c->n; i++)
		if (ckpt_buf_file(c, &c->v[i]) < 0)
			return -1;
	return ckpt_buf_printf(c, "end %zu %08" PRIx32 "\n", c->n - k,
	    ckpt_crc32(c->buf, c->buflen));
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
	if (ckpt_format(c) < 0 || durable_write_file(c->dir, CKPT_FILE, c->buf, c->buflen) < 0)
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
	c->file_bytes = c->buflen;
	c->journal_bytes = 0;
	c->saved_batch = c->last_batch;
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
	if (c->last_batch == c->saved_batch)
		return 0;
	if (ckpt_format_record(c) < 0)
		return ckpt_save_failed(c, err, errlen, " (appending to " CKPT_JOURNAL ")");
	if (c->journal_bytes + c->buflen > limit)
		return ckpt_rewrite(c, err, errlen);
	if (durable_append(c->dir, CKPT_JOURNAL, c->buf, c->buflen) < 0)
		return ckpt_save_failed(c, err, errlen, " (appending to " CKPT_JOURNAL ")");
	c->journal_bytes += c->buflen;
	c->saved_batch = c->last_batch;
	return 0;
}

/* --- reading it back ------------------------------------------------------------ */

struct ckpt_field {
	const char	*s;
	size_t		 len;
};

/* Exactly k non-empty fields separated by single spaces make up [s, e). */
static int
ckpt_split(const char *s, const char *e, struct ckpt_field *f, int k)
{
	const char *q;

	for (int i = 0; i < k; i++) {
		if ((q = memchr(s, ' ', (size_t)(e - s))) == NULL)
			q = e;
		if (q == s || (i < k - 1) != (q < e))
			return -1;
		f[i].s = s;
		f[i].len = (size_t)(q - s);
		s = q + 1;
	}
	return 0;
}

static int
ckpt_field_is(const struct ckpt_field *f, const char *word)
{
	return f->len == strlen(word) && memcmp(f->s, word, f->len) == 0;
}

/* Plain decimal, one spelling per value: no '+', no leading zero, no "-0". */
static int
ckpt_parse_i64(const struct ckpt_field *f, int64_t *out)
{
	const char *s = f->s, *e = f->s + f->len;
	uint64_t v = 0, lim = INT64_MAX;
	unsigned d;
	int neg = 0;

	if (s < e && *s == '-')
		neg = 1, s++, lim = (uint64_t)INT64_MAX + 1;
	if (s == e || (*s == '0' && (e - s > 1 || neg)))
		return -1;
	for (; s < e; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		d = (unsigned)(*s - '0');
		if (v > (lim - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (!neg)
		*out = (int64_t)v;
	else
		*out = v > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)v;
	return 0;
}

static int
ckpt_hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Undo ckpt_buf_name's escape; only the spelling it writes is accepted. */
static int
ckpt_unescape(const struct ckpt_field *f, char out[CKPT_NAME_MAX + 1])
{
	size_t n = 0;
	int hi, lo;
	unsigned char ch;

	for (size_t i = 0; i < f->len; i++) {
		ch = (unsigned char)f->s[i];
		if (n == CKPT_NAME_MAX)
			return -1;
		if (ch == '%') {
			if (f->len - i < 3 || (hi = ckpt_hexval(f->s[i + 1])) < 0 ||
			    (lo = ckpt_hexval(f->s[i + 2])) < 0)
				return -1;
			ch = (unsigned char)(hi << 4 | lo);
			if (ch == 0 || !ckpt_must_escape(ch))
				return -1;
			i += 2;
		} else if (ckpt_must_escape(ch))
			return -1;
		out[n++] = (char)ch;
	}
	out[n] = '\0';
	return 0;
}

/* "end <file lines> <crc32>": the count and eight lower-case hex digits. */
static int
ckpt_parse_end(const char *s, const char *e, int64_t *nfiles, uint32_t *crc)
{
	struct ckpt_field f[3];
	uint32_t v = 0;

	if (ckpt_split(s, e, f, 3) < 0 || !ckpt_field_is(&f[0], "end") ||
	    ckpt_parse_i64(&f[1], nfiles) < 0 || *nfiles < 0 || f[2].len != 8)
		return -1;
	for (size_t i = 0; i < 8; i++) {
		char ch = f[2].s[i];
		if (ch >= '0' && ch <= '9')
			v = v << 4 | (uint32_t)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			v = v << 4 | (uint32_t)(ch - 'a' + 10);
		else
			return -1;
	}
	*crc = v;
	return 0;
}

struct ckpt_reader {
	int		 version;
	int		 journal;	/* reading the journal: names may pass last_name */
	int64_t		 min_batch;	/* file lines name batches above this */
	const char	*p, *end;	/* unread part of the lines before the end line */
	size_t		 line;		/* number of the line read last (or missing) */
	const char	*s, *e;		/* that line, without its "\n" */
	char		 why[512];
};

static int
ckpt_next_line(struct ckpt_reader *r)
{
	const char *nl;

	r->line++;
	if (r->p >= r->end)
		return -1;
	nl = memchr(r->p, '\n', (size_t)(r->end - r->p));	/* found: the part ends in "\n" */
	r->s = r->p;
	r->e = nl;
	r->p = nl + 1;
	return 0;
}

/* The next line is "<word> <value>"; leaves the value in *val. */
static int
ckpt_expect(struct ckpt_reader *r, const char *word, struct ckpt_field *val)
{
	struct ckpt_field f[2];

	if (ckpt_next_line(r) < 0 || ckpt_split(r->s, r->e, f, 2) < 0 || !ckpt_field_is(&f[0], word))
		return -1;
	*val = f[1];
	return 0;
}

static int
ckpt_parse_header(struct ckpt *c, struct ckpt_reader *r)
{
	struct ckpt_field f;
	int64_t v;

	if (ckpt_expect(r, CKPT_MAGIC, &f) < 0)
		return snprintf(r->why, sizeof(r->why), "expected '%s %d': not an evpipe checkpoint",
		    CKPT_MAGIC, CKPT_VERSION), -1;
	if (ckpt_parse_i64(&f, &v) < 0 || v < 1 || v > CKPT_VERSION)
		return snprintf(r->why, sizeof(r->why), "unsupported version '%.*s' (this evstream "
		    "reads versions 1 to %d)", (int)f.len, f.s, CKPT_VERSION), -1;
	r->version = (int)v;
	if (ckpt_expect(r, "last_batch", &f) < 0 || ckpt_parse_i64(&f, &v) < 0 || v < 0)
		return snprintf(r->why, sizeof(r->why), "expected 'last_batch <batch id >= 0>'"), -1;
	c->last_batch = v;
	if (ckpt_expect(r, "max_event_time", &f) < 0)
		return snprintf(r->why, sizeof(r->why), "expected 'max_event_time <us> | none'"), -1;
	if (ckpt_field_is(&f, "none"))
		c->max_time = EVENT_TIME_NONE;
	else if (ckpt_parse_i64(&f, &v) < 0 || v == EVENT_TIME_NONE)
		return snprintf(r->why, sizeof(r->why), "max_event_time '%.*s' is not a number of "
		    "microseconds or 'none'", (int)f.len, f.s), -1;
	else
		c->max_time = v;
	return 0;
}

static int
ckpt_parse_name(struct ckpt_reader *r, const struct ckpt_field *f, char name[CKPT_NAME_MAX + 1])
{
	if (ckpt_unescape(f, name) < 0 || !ckpt_name_ok(name))
		return snprintf(r->why, sizeof(r->why), "'%.*s' is not a percent-escaped file name "
		    "of 1..%d bytes", (int)f->len, f->s, CKPT_NAME_MAX), -1;
	return 0;
}

/* Version 2's "last_name <name>", before the file lines; absent while nothing was committed. */
static int
ckpt_parse_last_name(struct ckpt *c, struct ckpt_reader *r)
{
	struct ckpt_field f[2];
	char name[CKPT_NAME_MAX + 1];

	if (ckpt_split(r->s, r->e, f, 2) < 0)
		return snprintf(r->why, sizeof(r->why), "expected 'last_name <name>'"), -1;
	if (ckpt_parse_name(r, &f[1], name) < 0)
		return -1;
	if ((c->last_name = strdup(name)) == NULL)
		return snprintf(r->why, sizeof(r->why), "no memory for the last name"), -1;
	return 0;
}

/* The identity fields of a version-2 file line: size, mtime, dev, ino (not 0). */
static int
ckpt_parse_id(struct ckpt_reader *r, const struct ckpt_field *f, struct spool_id *id)
{
	if (ckpt_parse_i64(&f[0], &id->size) < 0 || id->size < 0 ||
	    ckpt_parse_i64(&f[1], &id->mtime_ns) < 0 || ckpt_parse_i64(&f[2], &id->dev) < 0 ||
	    ckpt_parse_i64(&f[3], &id->ino) < 0 || id->ino == 0)
		return snprintf(r->why, sizeof(r->why), "expected '<size> <mtime ns> <dev> <ino>' "
		    "(ino not 0) before the name"), -1;
	return 0;
}

/*
 * "file <batch id> <name>", and in version 2 also "file <batch id> <size>
 * <mtime ns> <dev> <ino> <name>" (the identity known).  Version 1 knows no
 * last_name line: the greatest name listed stands for it.
 */
static int
ckpt_parse_file_line(struct ckpt *c, struct ckpt_reader *r)
{
	struct ckpt_field f[7];
	struct spool_id id = { 0 };
	char name[CKPT_NAME_MAX + 1], *last;
	const char *np = name;
	int64_t b;
	int k = r->version >= 2 && ckpt_split(r->s, r->e, f, 7) == 0 ? 7 : 3;

	if ((k == 3 && ckpt_split(r->s, r->e, f, 3) < 0) || !ckpt_field_is(&f[0], "file"))
		return snprintf(r->why, sizeof(r->why), "expected 'file <batch id> <name>'"), -1;
	if (ckpt_parse_i64(&f[1], &b) < 0 || b <= r->min_batch || b > c->last_batch)
		return snprintf(r->why, sizeof(r->why), "batch id '%.*s' is not in %" PRId64
		    "..last_batch (%" PRId64 ")", (int)f[1].len, f[1].s, r->min_batch + 1,
		    c->last_batch), -1;
	if ((k == 7 && ckpt_parse_id(r, f + 2, &id) < 0) || ckpt_parse_name(r, &f[k - 1], name) < 0)
		return -1;
	if (r->version >= 2 && !r->journal &&
	    (c->last_name == NULL || strcmp(name, c->last_name) > 0))
		return snprintf(r->why, sizeof(r->why), "'%.*s' sorts after last_name",
		    (int)f[k - 1].len, f[k - 1].s), -1;
	if (ckpt_append(c, name, b, &id) < 0 || ckpt_new_last(c, &np, 1, &last) < 0)
		return snprintf(r->why, sizeof(r->why), errno == EEXIST ? "'%.*s' is listed twice" :
		    "no memory for '%.*s'", (int)f[k - 1].len, f[k - 1].s), -1;
	ckpt_take_last(c, last);
	return 0;
}

/* The file lines a file or a journal record holds against what its end line counts. */
static int
ckpt_count_matches(struct ckpt_reader *r, int64_t nfiles, int64_t seen)
{
	if (seen != nfiles)
		return snprintf(r->why, sizeof(r->why), "the end line counts %" PRId64 " file lines, "
		    "there are %" PRId64, nfiles, seen), -1;
	return 0;
}

/* Everything before the end line, whose checksum has been verified already. */
static int
ckpt_parse_body(struct ckpt *c, struct ckpt_reader *r, int64_t nfiles)
{
	int64_t seen = 0;

	if (ckpt_parse_header(c, r) < 0)
		return -1;
	while (ckpt_next_line(r) == 0) {
		if (r->version >= 2 && seen == 0 && c->last_name == NULL &&
		    (size_t)(r->e - r->s) > 10 && memcmp(r->s, "last_name ", 10) == 0) {
			if (ckpt_parse_last_name(c, r) < 0)
				return -1;
			continue;
		}
		if (ckpt_parse_file_line(c, r) < 0)
			return -1;
		seen++;
	}
	return ckpt_count_matches(r, nfiles, seen);
}

/*
 * The end line and the checksum first: a truncated or damaged file is then
 * reported as such, not as whatever the damage made its first bad line say.
 */
static int
ckpt_parse(struct ckpt *c, const char *buf, size_t len, struct ckpt_reader *r)
{
	size_t nlines = 0, endoff;
	int64_t nfiles;
	uint32_t crc, sum;

	for (size_t i = 0; i < len; i++)
		nlines += buf[i] == '\n';
	r->line = nlines + (len == 0 || buf[len - 1] != '\n');
	if (len == 0)
		return snprintf(r->why, sizeof(r->why), "the file is empty: it was truncated"), -1;
	if (buf[len - 1] != '\n')
		return snprintf(r->why, sizeof(r->why), "the last line has no newline: the file "
		    "was truncated"), -1;
	for (endoff = len - 1; endoff > 0 && buf[endoff - 1] != '\n'; endoff--)
		;
	if (ckpt_parse_end(buf + endoff, buf + len - 1, &nfiles, &crc) < 0)
		return snprintf(r->why, sizeof(r->why), "the last line is not 'end <file lines> "
		    "<crc32>': the file was truncated or damaged"), -1;
	if (crc != (sum = ckpt_crc32(buf, endoff)))
		return snprintf(r->why, sizeof(r->why), "checksum mismatch (stored %08" PRIx32
		    ", computed %08" PRIx32 "): the file is damaged", crc, sum), -1;
	if ((uint64_t)nfiles < nlines && ckpt_reserve(c, (size_t)nfiles) < 0)
		return snprintf(r->why, sizeof(r->why), "no memory for %" PRId64 " names", nfiles), -1;
	r->p = buf;
	r->end = buf + endoff;
	r->line = 0;
	/* An older version is rewritten at the next save: the journal extends version 2. */
	c->need_file = r->version < CKPT_VERSION;
	return ckpt_parse_body(c, r, nfiles);
}

/* The journal record in [r->p, r->end) (its end line excluded): header, then file lines. */
static int
ckpt_parse_record(struct ckpt *c, struct ckpt_reader *r, int64_t nfiles, int64_t base_last)
{
	struct ckpt_field h[3];
	int64_t b, t = EVENT_TIME_NONE, seen = 0;

	if (ckpt_next_line(r) < 0 || ckpt_split(r->s, r->e, h, 3) < 0 ||
	    !ckpt_field_is(&h[0], "batch") || ckpt_parse_i64(&h[1], &b) < 0 ||
	    (!ckpt_field_is(&h[2], "none") && (ckpt_parse_i64(&h[2], &t) < 0 ||
	    t == EVENT_TIME_NONE)))
		return snprintf(r->why, sizeof(r->why), "expected 'batch <batch id> <max event "
		    "time> | none'"), -1;
	if (b <= base_last)	/* written before the file was: the file holds it */
		return 0;
	if (b <= c->last_batch)
		return snprintf(r->why, sizeof(r->why), "batch %" PRId64 " does not follow batch %"
		    PRId64, b, c->last_batch), -1;
	r->min_batch = c->last_batch;
	c->last_batch = b;
	c->max_time = t;
	for (; ckpt_next_line(r) == 0; seen++)
		if (ckpt_parse_file_line(c, r) < 0)
			return -1;
	return ckpt_count_matches(r, nfiles, seen);
}

/*
 * The journal after the file: records in order, each checked by its crc.  The
 * last record may be torn by a crash during its append (cut short, or blocks
 * of zeros): it is taken as not written, as the database's batch log then
 * says what it held, and the next save rewrites the file.  A bad record
 * before the last one is damage, and refused like a damaged file.
 */
static int
ckpt_parse_journal(struct ckpt *c, const char *buf, size_t len, struct ckpt_reader *r)
{
	const int64_t base_last = c->last_batch;
	size_t off = 0, start, endoff, nlines, l0;
	const char *nl;
	int64_t nfiles;
	uint32_t crc;

	r->journal = 1;
	r->version = CKPT_VERSION;
	while (off < len) {
		start = off;
		l0 = r->line;
		endoff = SIZE_MAX;
		for (nlines = 0; endoff == SIZE_MAX; off = (size_t)(nl - buf) + 1) {
			if ((nl = memchr(buf + off, '\n', len - off)) == NULL)
				break;
			nlines++;
			if (len - off > 4 && memcmp(buf + off, "end ", 4) == 0)
				endoff = off;
		}
		if (endoff == SIZE_MAX || ckpt_parse_end(buf + endoff, buf + off - 1, &nfiles, &crc) < 0 ||
		    crc != ckpt_crc32(buf + start, endoff - start)) {
			if (endoff == SIZE_MAX || off == len)
				break;	/* the last record, torn */
			r->line += nlines;
			return snprintf(r->why, sizeof(r->why), "a record ending here is damaged "
			    "(checksum or end line), and records follow it"), -1;
		}
		r->p = buf + start;
		r->end = buf + endoff;
		if (ckpt_parse_record(c, r, nfiles, base_last) < 0)
			return -1;
		r->line = l0 + nlines;
		c->journal_bytes = off;
	}
	c->need_file |= c->journal_bytes != len;
	return 0;
}

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
	int rc = ckpt_load_one(c, CKPT_FILE, ckpt_parse, &c->file_bytes, err, errlen);

	if (rc < 0)
		return -1;
	c->have_file = rc > 0;
	if (ckpt_load_one(c, CKPT_JOURNAL, ckpt_parse_journal, &jbytes, err, errlen) < 0)
		return -1;
	c->saved_batch = c->last_batch;
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
	c->max_time = EVENT_TIME_NONE;
	c->imask = CKPT_INDEX_MIN - 1;
	if ((c->dir = strdup(dir)) == NULL ||
	    (c->index = calloc(CKPT_INDEX_MIN, sizeof(*c->index))) == NULL) {
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
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].name);
	free(c->v);
	free(c->index);
	free(c->buf);
	free(c->last_name);
	free(c->dir);
	/* Closing the only descriptor of the open file description drops the flock. */
	if (c->lockfd >= 0)
		(void)close(c->lockfd);
	free(c);
}
