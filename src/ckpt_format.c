/* ckpt_format — see include/ckpt_format.h. */
#include "ckpt_format.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"

#define CKPT_MAGIC	"evpipe-checkpoint"

/* --- writing -------------------------------------------------------------------- */

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
ckpt_buf_reserve(struct ckpt_buf *b, size_t more)
{
	if (more > SIZE_MAX / 2 - b->len) {
		errno = ENOMEM;
		return -1;
	}
	return ALLOC_GROW(b->p, b->len + more, b->cap, 4096);
}

static int __attribute__((format(printf, 2, 3)))
ckpt_buf_printf(struct ckpt_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	/* Every line this formats is short: one try with room for 64 bytes does. */
	if (ckpt_buf_reserve(b, 64) < 0)
		return -1;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= b->cap - b->len) {
		errno = EOVERFLOW;
		return -1;
	}
	b->len += (size_t)n;
	return 0;
}

static int
ckpt_buf_name(struct ckpt_buf *b, const char *name)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t len = strlen(name);
	unsigned char ch;

	if (ckpt_buf_reserve(b, 3 * len + 1) < 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		ch = (unsigned char)name[i];
		if (ckpt_must_escape(ch)) {
			b->p[b->len++] = '%';
			b->p[b->len++] = hex[ch >> 4];
			b->p[b->len++] = hex[ch & 15];
		} else
			b->p[b->len++] = (char)ch;
	}
	b->p[b->len++] = '\n';
	return 0;
}

/* "file <batch> <name>", or with the identity "file <batch> <size> <mtime> <dev> <ino> <name>". */
static int
ckpt_buf_file(struct ckpt_buf *b, const struct ckpt_entry *e)
{
	const struct spool_id *id = &e->id;

	if (ckpt_buf_printf(b, "file %" PRId64 " ", e->batch) < 0)
		return -1;
	if (id->ino != 0 && ckpt_buf_printf(b, "%" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " ",
	    id->size, id->mtime_ns, id->dev, id->ino) < 0)
		return -1;
	return ckpt_buf_name(b, e->name);
}

int
ckpt_format_file(struct ckpt_buf *b, const struct ckpt_records *rec)
{
	const struct ckpt_names *s = &rec->names;

	b->len = 0;
	if (ckpt_buf_printf(b, CKPT_MAGIC " %d\nlast_batch %" PRId64 "\n", CKPT_VERSION,
	    rec->last_batch) < 0)
		return -1;
	if (rec->max_time == EVENT_TIME_NONE) {
		if (ckpt_buf_printf(b, "max_event_time none\n") < 0)
			return -1;
	} else if (ckpt_buf_printf(b, "max_event_time %" PRId64 "\n", rec->max_time) < 0)
		return -1;
	if (s->last_name != NULL && (ckpt_buf_printf(b, "last_name ") < 0 ||
	    ckpt_buf_name(b, s->last_name) < 0))
		return -1;
	for (size_t i = 0; i < s->n; i++)
		if (ckpt_buf_file(b, &s->v[i]) < 0)
			return -1;
	return ckpt_buf_printf(b, "end %zu %08" PRIx32 "\n", s->n, ckpt_crc32(b->p, b->len));
}

/*
 * One journal record: the batches committed since the last save, as
 * "batch <last batch> <max event time | none>", their file lines as in the
 * file, and "end <file lines> <crc32>" over the record's bytes before it.
 */
int
ckpt_format_record(struct ckpt_buf *b, const struct ckpt_records *rec, int64_t since)
{
	const struct ckpt_names *s = &rec->names;
	size_t k = s->n;

	while (k > 0 && s->v[k - 1].batch > since)	/* the names are in batch order */
		k--;
	b->len = 0;
	if (ckpt_buf_printf(b, "batch %" PRId64 " ", rec->last_batch) < 0 ||
	    (rec->max_time == EVENT_TIME_NONE ? ckpt_buf_printf(b, "none\n") :
	    ckpt_buf_printf(b, "%" PRId64 "\n", rec->max_time)) < 0)
		return -1;
	for (size_t i = k; i < s->n; i++)
		if (ckpt_buf_file(b, &s->v[i]) < 0)
			return -1;
	return ckpt_buf_printf(b, "end %zu %08" PRIx32 "\n", s->n - k,
	    ckpt_crc32(b->p, b->len));
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
ckpt_parse_header(struct ckpt_records *rec, struct ckpt_reader *r)
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
	rec->last_batch = v;
	if (ckpt_expect(r, "max_event_time", &f) < 0)
		return snprintf(r->why, sizeof(r->why), "expected 'max_event_time <us> | none'"), -1;
	if (ckpt_field_is(&f, "none"))
		rec->max_time = EVENT_TIME_NONE;
	else if (ckpt_parse_i64(&f, &v) < 0 || v == EVENT_TIME_NONE)
		return snprintf(r->why, sizeof(r->why), "max_event_time '%.*s' is not a number of "
		    "microseconds or 'none'", (int)f.len, f.s), -1;
	else
		rec->max_time = v;
	return 0;
}

static int
ckpt_parse_name(struct ckpt_reader *r, const struct ckpt_field *f, char name[CKPT_NAME_MAX + 1])
{
	if (ckpt_unescape(f, name) < 0 || !ckpt_names_valid(name))
		return snprintf(r->why, sizeof(r->why), "'%.*s' is not a percent-escaped file name "
		    "of 1..%d bytes", (int)f->len, f->s, CKPT_NAME_MAX), -1;
	return 0;
}

/* Version 2's "last_name <name>", before the file lines; absent while nothing was committed. */
static int
ckpt_parse_last_name(struct ckpt_records *rec, struct ckpt_reader *r)
{
	struct ckpt_field f[2];
	char name[CKPT_NAME_MAX + 1];

	if (ckpt_split(r->s, r->e, f, 2) < 0)
		return snprintf(r->why, sizeof(r->why), "expected 'last_name <name>'"), -1;
	if (ckpt_parse_name(r, &f[1], name) < 0)
		return -1;
	if ((rec->names.last_name = strdup(name)) == NULL)
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
ckpt_parse_file_line(struct ckpt_records *rec, struct ckpt_reader *r)
{
	struct ckpt_field f[7];
	struct spool_id id = { 0 };
	char name[CKPT_NAME_MAX + 1], *last;
	const char *np = name;
	int64_t b;
	int k = r->version >= 2 && ckpt_split(r->s, r->e, f, 7) == 0 ? 7 : 3;

	if ((k == 3 && ckpt_split(r->s, r->e, f, 3) < 0) || !ckpt_field_is(&f[0], "file"))
		return snprintf(r->why, sizeof(r->why), "expected 'file <batch id> <name>'"), -1;
	if (ckpt_parse_i64(&f[1], &b) < 0 || b <= r->min_batch || b > rec->last_batch)
		return snprintf(r->why, sizeof(r->why), "batch id '%.*s' is not in %" PRId64
		    "..last_batch (%" PRId64 ")", (int)f[1].len, f[1].s, r->min_batch + 1,
		    rec->last_batch), -1;
	if ((k == 7 && ckpt_parse_id(r, f + 2, &id) < 0) || ckpt_parse_name(r, &f[k - 1], name) < 0)
		return -1;
	if (r->version >= 2 && !r->journal &&
	    (rec->names.last_name == NULL || strcmp(name, rec->names.last_name) > 0))
		return snprintf(r->why, sizeof(r->why), "'%.*s' sorts after last_name",
		    (int)f[k - 1].len, f[k - 1].s), -1;
	if (ckpt_names_append(&rec->names, name, b, &id) < 0 ||
	    ckpt_names_new_last(&rec->names, &np, 1, &last) < 0)
		return snprintf(r->why, sizeof(r->why), errno == EEXIST ? "'%.*s' is listed twice" :
		    "no memory for '%.*s'", (int)f[k - 1].len, f[k - 1].s), -1;
	ckpt_names_take_last(&rec->names, last);
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
ckpt_parse_body(struct ckpt_records *rec, struct ckpt_reader *r, int64_t nfiles)
{
	int64_t seen = 0;

	if (ckpt_parse_header(rec, r) < 0)
		return -1;
	while (ckpt_next_line(r) == 0) {
		if (r->version >= 2 && seen == 0 && rec->names.last_name == NULL &&
		    (size_t)(r->e - r->s) > 10 && memcmp(r->s, "last_name ", 10) == 0) {
			if (ckpt_parse_last_name(rec, r) < 0)
				return -1;
			continue;
		}
		if (ckpt_parse_file_line(rec, r) < 0)
			return -1;
		seen++;
	}
	return ckpt_count_matches(r, nfiles, seen);
}

/*
 * The end line and the checksum first: a truncated or damaged file is then
 * reported as such, not as whatever the damage made its first bad line say.
 */
int
ckpt_format_parse(struct ckpt_records *rec, const char *buf, size_t len, struct ckpt_reader *r)
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
	if ((uint64_t)nfiles < nlines && ckpt_names_reserve(&rec->names, (size_t)nfiles) < 0)
		return snprintf(r->why, sizeof(r->why), "no memory for %" PRId64 " names", nfiles), -1;
	r->p = buf;
	r->end = buf + endoff;
	r->line = 0;
	return ckpt_parse_body(rec, r, nfiles);
}

/* The journal record in [r->p, r->end) (its end line excluded): header, then file lines. */
static int
ckpt_parse_record(struct ckpt_records *rec, struct ckpt_reader *r, int64_t nfiles,
    int64_t base_last)
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
	if (b <= rec->last_batch)
		return snprintf(r->why, sizeof(r->why), "batch %" PRId64 " does not follow batch %"
		    PRId64, b, rec->last_batch), -1;
	r->min_batch = rec->last_batch;
	rec->last_batch = b;
	rec->max_time = t;
	for (; ckpt_next_line(r) == 0; seen++)
		if (ckpt_parse_file_line(rec, r) < 0)
			return -1;
	return ckpt_count_matches(r, nfiles, seen);
}

/*
 * The journal after the file: records in order, each checked by its crc.  The
 * last record may be torn by a crash during its append (cut short, or blocks
 * of zeros): it is taken as not written, as the database's batch log then
 * says what it held, and *whole falls short of len (ckpt.c then rewrites the
 * file).  A bad record before the last one is damage, and refused like a
 * damaged file.
 */
int
ckpt_format_parse_journal(struct ckpt_records *rec, const char *buf, size_t len,
    struct ckpt_reader *r, size_t *whole)
{
	const int64_t base_last = rec->last_batch;
	size_t off = 0, start, endoff, nlines, l0;
	const char *nl;
	int64_t nfiles;
	uint32_t crc;

	*whole = 0;
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
		if (ckpt_parse_record(rec, r, nfiles, base_last) < 0)
			return -1;
		r->line = l0 + nlines;
		*whole = off;
	}
	return 0;
}
