/*
 * csvin — see include/csvin.h.
 *
 * Three forms of one grammar live here, each for a reason that was measured:
 * libcsv parses every record with a quote (the dialect's reference); a splitter
 * on ',' takes the quote-free records, which are nearly all of them, because it
 * is about 6 times faster (1 M evgen rows: 110 ns a row against 650 through
 * libcsv alone, 2026-12-01, this machine); and a copy of libcsv's state machine
 * only finds where an oversized record ends, without storing it, because libcsv
 * would buffer the whole record first.  tests/unit/test_csvin.c and fuzz_csv
 * check that all three agree with libcsv, row for row.
 */
#include "csvin.h"

#include <csv.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gz.h"
#include "log.h"
#include "util.h"

#define CSVIN_FEED_SLICE	(64u * 1024)	/* libcsv's buffer may grow between slices */
#define CSVIN_KEEP_BUF		CSVIN_MIN_RECORD	/* bigger buffers are dropped after a file */
#define CSVIN_RAW_INIT		(64u * 1024)
#define CSVIN_ROW_INIT		4096u
#define CSVIN_NAME_SHOWN	64	/* bytes of a column name quoted in a message */

static const char csvin_bom[3] = { '\xef', '\xbb', '\xbf' };

/* Where a record stands, in libcsv's terms, while we skip an oversized one. */
enum csvin_scan { SCAN_FIELD_START, SCAN_UNQUOTED, SCAN_QUOTED, SCAN_QUOTE_SEEN };

struct csvin_buf {
	char	*p;
	size_t	 len, cap;
};

struct csvin {
	struct csv_parser parser;
	char		*rd;		/* read(2) lands here (a .gz file: the text inflated) */
	char		*zin;		/* a .gz file's read(2) lands here; NULL until one is read */
	struct gz_in	*gz;		/* and is inflated by this */
	int		 gzip;		/* the file in hand is a .gz */
	struct csvin_buf raw;		/* the current record as read, when it is not all in rd */
	struct csvin_buf row;		/* its schema fields, each NUL-terminated */
	size_t		 max_record;
	int		 fast_path;
	struct stat	 read_st;	/* the last file read, at its end; st_size = bytes read */

	/* One file. */
	const char	*name;
	csvin_row_fn	 fn;
	void		*arg;
	char		*err;
	size_t		 errlen;
	enum csvin_status st;
	int		 errnum;	/* errno to hand back with st */
	int		 nomem;		/* a libcsv callback could not grow the row */
	int64_t		 line;		/* lines started so far: the current line's number */
	int64_t		 rec_line;	/* the line the current record starts on */
	size_t		 line_off;	/* in raw, where the current line starts */
	int		 in_record;	/* libcsv is inside a record that spans lines */
	int		 row_done;	/* libcsv's row callback fired */

	/* The header. */
	int		 in_header;
	int		 nheader;
	int		 dup_col;	/* first schema column named twice, or -1 */
	int		 nunknown;
	size_t		 unknown_len;
	char		 unknown[256];	/* unknown names, quoted, for the one warning */
	signed char	 colmap[CSVIN_MAX_COLUMNS];	/* header field -> enum event_col, or -1 */

	/* The current record. */
	int		 nfields;
	unsigned	 have;		/* bit c: column c has a value in row */
	size_t		 off[EVENT_NCOLS], len[EVENT_NCOLS];

	/* An oversized record being skipped. */
	int		 skipping;
	enum csvin_scan	 scan, scan_prev;
	int		 scan_cr;	/* the last byte scanned on this line was a CR */
};

static int csvin_fail(struct csvin *, enum csvin_status, int, const char *, ...)
    LOG_PRINTF(4, 5);

/* Room for `more` bytes after b->len.  Doubling keeps appends amortised O(1). */
static int
csvin_buf_reserve(struct csvin_buf *b, size_t more)
{
	if (more > SIZE_MAX / 4 - b->len) {
		errno = ENOMEM;
		return -1;
	}
	return ALLOC_GROW(b->p, b->len + more, b->cap, 4096);
}

static int
csvin_buf_append(struct csvin_buf *b, const void *s, size_t n)
{
	if (csvin_buf_reserve(b, n) != 0)
		return -1;
	if (n > 0)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	return 0;
}

/* One odd record must not pin megabytes for the daemon's lifetime. */
static void
csvin_buf_trim(struct csvin_buf *b)
{
	if (b->cap <= CSVIN_KEEP_BUF)
		return;
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* Keep the first failure: later ones are usually its consequences. */
static int
csvin_fail(struct csvin *r, enum csvin_status st, int errnum, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (r->st != CSVIN_OK)
		return -1;
	r->st = st;
	r->errnum = errnum;
	if (r->errlen == 0)
		return -1;
	n = snprintf(r->err, r->errlen, "%s: ", r->name);
	if (n >= 0 && (size_t)n < r->errlen) {
		va_start(ap, fmt);
		vsnprintf(r->err + n, r->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/*
 * Append s as 'text' to buf (off used, cap total), bytes outside printable ASCII
 * as \xNN, long names cut with "...": column names come from untrusted files
 * and end up in logs.  Returns the new length; buf stays NUL-terminated.
 */
static size_t
csvin_quote(char *buf, size_t cap, size_t off, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	if (off + 1 >= cap)
		return off;
	buf[off++] = '\'';
	for (i = 0; i < n && i < CSVIN_NAME_SHOWN && off + 6 < cap; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch >= 0x20 && ch < 0x7f && ch != '\'' && ch != '\\') {
			buf[off++] = (char)ch;
			continue;
		}
		buf[off++] = '\\';
		buf[off++] = 'x';
		buf[off++] = hex[ch >> 4];
		buf[off++] = hex[ch & 0xf];
	}
	if (i < n && off + 4 < cap) {
		memcpy(buf + off, "...", 3);
		off += 3;
	}
	if (off + 1 < cap)
		buf[off++] = '\'';
	buf[off] = '\0';
	return off;
}

/* ---- the header ------------------------------------------------------------ */

static void
csvin_note_unknown(struct csvin *r, const char *s, size_t len)
{
	size_t cap = sizeof(r->unknown);

	if (r->nunknown++ > 0 && r->unknown_len + 3 < cap) {
		memcpy(r->unknown + r->unknown_len, ", ", 3);
		r->unknown_len += 2;
	}
	r->unknown_len = csvin_quote(r->unknown, cap, r->unknown_len, s, len);
}

static void
csvin_header_field(struct csvin *r, int i, const char *s, size_t len)
{
	int c;

	if (i >= CSVIN_MAX_COLUMNS)
		return;		/* csvin_header_end refuses the file */
	while (len > 0 && (*s == ' ' || *s == '\t'))
		s++, len--;
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	for (c = 0; c < EVENT_NCOLS; c++)
		if (strlen(event_col_names[c]) == len && memcmp(event_col_names[c], s, len) == 0)
			break;
	r->colmap[i] = -1;
	if (c == EVENT_NCOLS)
		csvin_note_unknown(r, s, len);
	else if (r->have & (1u << c)) {
		if (r->dup_col < 0)
			r->dup_col = c;
	} else {
		r->have |= 1u << c;
		r->colmap[i] = (signed char)c;
	}
}

static int
csvin_header_end(struct csvin *r)
{
	char missing[256];
	size_t n = 0;

	if (r->nfields < 0)
		return csvin_fail(r, CSVIN_BAD_HEADER, 0, "line %lld: header longer than %zu bytes",
		    (long long)r->rec_line, r->max_record);
	if (r->nfields > CSVIN_MAX_COLUMNS)
		return csvin_fail(r, CSVIN_BAD_HEADER, 0, "line %lld: header has %d columns, "
		    "more than %d", (long long)r->rec_line, r->nfields, CSVIN_MAX_COLUMNS);
	if (r->dup_col >= 0)
		return csvin_fail(r, CSVIN_BAD_HEADER, 0, "line %lld: column '%s' appears twice "
		    "in the header", (long long)r->rec_line, event_col_names[r->dup_col]);
	missing[0] = '\0';
	for (int c = 0; c < EVENT_NCOLS; c++)
		if (!(r->have & (1u << c)))
			n += (size_t)snprintf(missing + n, sizeof(missing) - n, "%s'%s'",
			    n ? ", " : "", event_col_names[c]);
	if (n > 0)
		return csvin_fail(r, CSVIN_BAD_HEADER, 0, "line %lld: header lacks required "
		    "column(s) %s", (long long)r->rec_line, missing);
	r->nheader = r->nfields;
	r->in_header = 0;
	if (r->nunknown > 0)
		log_warnx("%s: line %lld: ignoring %d unknown column(s): %s", r->name,
		    (long long)r->rec_line, r->nunknown, r->unknown);
	return 0;
}

/* ---- fields and records ---------------------------------------------------- */

/* libcsv's field callback and the fast path both land here. */
static void
csvin_field(struct csvin *r, const char *s, size_t len)
{
	int i = r->nfields, c;

	if (r->nfields < INT_MAX)
		r->nfields++;
	if (r->in_header) {
		csvin_header_field(r, i, s, len);
		return;
	}
	if (i >= r->nheader || (c = r->colmap[i]) < 0)
		return;
	if (csvin_buf_reserve(&r->row, len + 1) != 0) {
		r->nomem = 1;
		return;
	}
	/* Offsets, not pointers: a later field may move the buffer. */
	r->off[c] = r->row.len;
	r->len[c] = len;
	if (len > 0)
		memcpy(r->row.p + r->row.len, s, len);
	r->row.p[r->row.len + len] = '\0';
	r->row.len += len + 1;
	r->have |= 1u << c;
}

static void
csvin_cb_field(void *s, size_t len, void *data)
{
	csvin_field(data, s, len);
}

static void
csvin_cb_row(int c, void *data)
{
	struct csvin *r = data;

	(void)c;
	r->row_done = 1;
}

/* Nothing is trimmed: " 12" must reach validate as it was written. */
static int
csvin_is_space(unsigned char c)
{
	(void)c;
	return 0;
}

/* Only LF ends a record; we drop the CR of a CRLF before libcsv sees it. */
static int
csvin_is_term(unsigned char c)
{
	return c == '\n';
}

static void
csvin_record_begin(struct csvin *r)
{
	r->rec_line = r->line;
	r->nfields = 0;
	r->have = 0;
	r->row.len = 0;
}

static void
csvin_record_reset(struct csvin *r)
{
	r->raw.len = 0;
	r->line_off = 0;
	r->in_record = 0;
	r->row_done = 0;
}

static int
csvin_record_end(struct csvin *r, const char *raw, size_t rawlen)
{
	struct csv_row row;

	if (r->nomem)
		return csvin_fail(r, CSVIN_NOMEM, ENOMEM, "line %lld: out of memory",
		    (long long)r->rec_line);
	if (r->in_header)
		return csvin_header_end(r);
	row.line = r->rec_line;
	row.nfields = r->nfields;
	row.nheader = r->nheader;
	row.raw = raw;
	row.rawlen = rawlen;
	for (int c = 0; c < EVENT_NCOLS; c++) {
		int set = (r->have >> c) & 1;
		row.field[c] = set ? r->row.p + r->off[c] : "";
		row.len[c] = set ? r->len[c] : 0;
	}
	if (r->fn(r->arg, &row) != 0)
		return csvin_fail(r, CSVIN_ABORTED, 0, "line %lld: reading stopped by the caller",
		    (long long)r->rec_line);
	return 0;
}

/* A line without any quote: what libcsv would do is to split it on ','. */
static void
csvin_split(struct csvin *r, const char *s, size_t len)
{
	const char *end = s + len, *comma;

	while ((comma = memchr(s, ',', (size_t)(end - s))) != NULL) {
		csvin_field(r, s, (size_t)(comma - s));
		s = comma + 1;
	}
	csvin_field(r, s, (size_t)(end - s));
}

static void
csvin_parser_init(struct csvin *r)
{
	/* csv_init fails only for a NULL parser. */
	(void)csv_init(&r->parser, 0);
	csv_set_space_func(&r->parser, csvin_is_space);
	csv_set_term_func(&r->parser, csvin_is_term);
}

/* Forget any half-parsed record; `release` also frees libcsv's field buffer. */
static void
csvin_parser_reset(struct csvin *r, int release)
{
	/* Without callbacks, csv_fini just resets libcsv to "no record yet". */
	if (csv_fini(&r->parser, NULL, NULL, NULL) == 0 && !release)
		return;
	csv_free(&r->parser);
	csvin_parser_init(r);
}

static int
csvin_feed(struct csvin *r, const char *s, size_t n)
{
	while (n > 0) {
		size_t k = n < CSVIN_FEED_SLICE ? n : CSVIN_FEED_SLICE;
		size_t have = csv_get_buffer_size(&r->parser);

		/* libcsv grows by blk_size a step: doubling it keeps a long field O(n). */
		csv_set_blk_size(&r->parser, have < 4096 ? 4096 : have);
		if (csv_parse(&r->parser, s, k, csvin_cb_field, csvin_cb_row, r) != k)
			return csvin_fail(r, CSVIN_NOMEM, ENOMEM, "line %lld: libcsv: %s",
			    (long long)r->line, csv_strerror(csv_error(&r->parser)));
		s += k;
		n -= k;
	}
	return 0;
}

/* ---- oversized records ----------------------------------------------------- */

/*
 * libcsv's non-strict state machine, reduced to what decides where a record
 * ends: a LF ends it unless we are inside quotes.  After a closing quote any
 * byte but ',' or LF puts libcsv back inside the quotes (a stray quote is data).
 */
static enum csvin_scan
csvin_scan_next(enum csvin_scan s, unsigned char c)
{
	switch (s) {
	case SCAN_FIELD_START:
		return c == '"' ? SCAN_QUOTED : c == ',' ? SCAN_FIELD_START : SCAN_UNQUOTED;
	case SCAN_UNQUOTED:
		return c == ',' ? SCAN_FIELD_START : SCAN_UNQUOTED;
	case SCAN_QUOTED:
		return c == '"' ? SCAN_QUOTE_SEEN : SCAN_QUOTED;
	case SCAN_QUOTE_SEEN:
		return c == ',' ? SCAN_FIELD_START : SCAN_QUOTED;
	}
	return s;
}

/* Bytes of one line, without LF. */
static void
csvin_scan_bytes(struct csvin *r, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		r->scan_prev = r->scan;
		r->scan = csvin_scan_next(r->scan, (unsigned char)s[i]);
	}
	if (n > 0)
		r->scan_cr = s[n - 1] == '\r';
}

/* A LF (or the end of the file) after what was scanned: does the record end? */
static int
csvin_scan_eol(struct csvin *r)
{
	if (r->scan_cr)		/* libcsv never saw the CR of a CRLF */
		r->scan = r->scan_prev;
	r->scan_cr = 0;
	return r->scan != SCAN_QUOTED;
}

/* Scan a record's bytes from its start; every LF in them was inside quotes. */
static void
csvin_scan_record(struct csvin *r, const char *s, size_t n)
{
	const char *end = s + n, *nl;

	r->scan = r->scan_prev = SCAN_FIELD_START;
	r->scan_cr = 0;
	if (r->rec_line == 1 && n >= 3 && memcmp(s, csvin_bom, 3) == 0)
		s += 3;
	while ((nl = memchr(s, '\n', (size_t)(end - s))) != NULL) {
		csvin_scan_bytes(r, s, (size_t)(nl - s));
		(void)csvin_scan_eol(r);	/* known: it did not end the record */
		s = nl + 1;
	}
	csvin_scan_bytes(r, s, (size_t)(end - s));
}

/*
 * The record outgrew max_record: stop parsing it, keep its head for the reject
 * log, and from here on only scan for its end.  libcsv's field buffer is freed,
 * so memory stays bounded however long the record goes on.
 */
static void
csvin_skip_begin(struct csvin *r)
{
	if (!r->in_record)	/* its first line is still incomplete */
		r->rec_line = r->line + 1;
	csvin_scan_record(r, r->raw.p, r->raw.len);
	if (r->raw.len > CSVIN_OVERSIZED_RAW)
		r->raw.len = CSVIN_OVERSIZED_RAW;
	csvin_parser_reset(r, 1);
	r->skipping = 1;
}

static int
csvin_skip_end(struct csvin *r)
{
	if (!r->in_header)
		log_warnx("%s: line %lld: record longer than %zu bytes, not parsed; "
		    "rejected as column_count", r->name, (long long)r->rec_line, r->max_record);
	r->skipping = 0;
	r->nfields = -1;
	r->have = 0;
	if (csvin_record_end(r, r->raw.p, r->raw.len) != 0)
		return -1;
	csvin_record_reset(r);
	return 0;
}

static int
csvin_skip_eol(struct csvin *r)
{
	if (!csvin_scan_eol(r))
		return 0;	/* a quoted newline: the record goes on */
	return csvin_skip_end(r);
}

/* Add bytes of the current record to raw; past max_record, switch to skipping. */
static int
csvin_raw_add(struct csvin *r, const char *s, size_t n)
{
	if (!r->skipping && r->raw.len + n > r->max_record)
		csvin_skip_begin(r);
	if (r->skipping) {
		csvin_scan_bytes(r, s, n);
		return 0;
	}
	if (csvin_buf_append(&r->raw, s, n) != 0)
		return csvin_fail(r, CSVIN_NOMEM, ENOMEM, "line %lld: out of memory",
		    (long long)r->line);
	return 0;
}

/* ---- lines ----------------------------------------------------------------- */

/* A record still open at the end of the file ends there, as in libcsv; say so. */
static void
csvin_warn_open_quote(struct csvin *r, const char *raw, size_t rawlen)
{
	if (memchr(raw, '"', rawlen) == NULL)
		return;
	csvin_scan_record(r, raw, rawlen);
	if (r->scan == SCAN_QUOTED)
		log_warnx("%s: line %lld: quoted field still open at the end of the file",
		    r->name, (long long)r->rec_line);
}

/* Through libcsv: records with quotes, and every line of a multi-line record. */
static int
csvin_line_libcsv(struct csvin *r, const char *p, size_t len, int at_eof)
{
	if (csvin_feed(r, p, len) != 0)
		return -1;
	if (!at_eof)
		return csvin_feed(r, "\n", 1);
	if (csv_fini(&r->parser, csvin_cb_field, csvin_cb_row, r) != 0)
		return csvin_fail(r, CSVIN_NOMEM, ENOMEM, "line %lld: libcsv: %s",
		    (long long)r->line, csv_strerror(csv_error(&r->parser)));
	return 0;
}

/* The record does not end with this line: keep its bytes in raw for the next. */
static int
csvin_line_continue(struct csvin *r, const char *line, size_t n, int copied)
{
	r->in_record = 1;	/* first: if skipping starts, rec_line is already right */
	if (!copied && csvin_raw_add(r, line, n) != 0)
		return -1;
	if (r->skipping)
		return csvin_skip_eol(r);
	/* One byte past max_record at most: the limit is checked on real data. */
	if (csvin_buf_append(&r->raw, "\n", 1) != 0)
		return csvin_fail(r, CSVIN_NOMEM, ENOMEM, "line %lld: out of memory",
		    (long long)r->line);
	r->line_off = r->raw.len;
	return 0;
}

/*
 * One whole line, line[0..n) without its LF.  `copied`: it lies in raw at
 * line_off, after the record's earlier lines; otherwise it is still in the read
 * buffer and raw is empty.
 */
static int
csvin_line(struct csvin *r, const char *line, size_t n, int copied, int at_eof)
{
	const char *p = line, *raw;
	size_t len = n, rawlen;

	if (len > 0 && p[len - 1] == '\r')
		len--;
	if (!r->in_record) {
		if (r->line == 1 && len >= 3 && memcmp(p, csvin_bom, 3) == 0)
			p += 3, len -= 3;
		if (len == 0) {
			csvin_record_reset(r);	/* an empty line between records */
			return 0;
		}
		csvin_record_begin(r);
	}
	if (!r->in_record && r->fast_path && memchr(p, '"', len) == NULL) {
		csvin_split(r, p, len);
	} else {
		if (csvin_line_libcsv(r, p, len, at_eof) != 0)
			return -1;
		if (!r->row_done)
			return csvin_line_continue(r, line, n, copied);
	}
	raw = copied ? r->raw.p : p;
	rawlen = (size_t)(p + len - raw);
	if (at_eof) {
		if (rawlen > 0 && raw[rawlen - 1] == '\n')
			rawlen--;
		if (rawlen > 0 && raw[rawlen - 1] == '\r')
			rawlen--;
		csvin_warn_open_quote(r, raw, rawlen);
	}
	if (csvin_record_end(r, raw, rawlen) != 0)
		return -1;
	csvin_record_reset(r);
	return 0;
}

/* The read buffer holds line[0..k) and then a LF. */
static int
csvin_line_end(struct csvin *r, const char *line, size_t k)
{
	if (!r->skipping && r->raw.len == 0) {
		r->line++;
		return csvin_line(r, line, k, 0, 0);	/* the usual case: no copy */
	}
	/* Before counting the line: skipping may start here, and takes line + 1. */
	if (csvin_raw_add(r, line, k) != 0)
		return -1;
	r->line++;
	if (r->skipping)
		return csvin_skip_eol(r);
	return csvin_line(r, r->raw.p + r->line_off, r->raw.len - r->line_off, 1, 0);
}

static int
csvin_chunk(struct csvin *r, const char *p, size_t n)
{
	const char *nl;
	size_t k;

	while (n > 0) {
		if ((nl = memchr(p, '\n', n)) == NULL)
			return csvin_raw_add(r, p, n);	/* the line goes on in the next read */
		k = (size_t)(nl - p);
		if (csvin_line_end(r, p, k) != 0)
			return -1;
		p += k + 1;
		n -= k + 1;
	}
	return 0;
}

static int
csvin_gz_out(void *arg, const char *p, size_t n)
{
	return csvin_chunk(arg, p, n);
}

static int
csvin_gz_failed(struct csvin *r, enum gz_status st)
{
	if (st == GZ_NOMEM)
		return csvin_fail(r, CSVIN_NOMEM, ENOMEM, "line %lld: out of memory inflating",
		    (long long)r->line);
	if (st == GZ_CORRUPT && r->line == 0)
		return csvin_fail(r, CSVIN_BAD_ARCHIVE, EINVAL, "%s", gz_in_error(r->gz));
	if (st == GZ_CORRUPT)
		return csvin_fail(r, CSVIN_BAD_ARCHIVE, EINVAL, "%s (after line %lld of its "
		    "text)", gz_in_error(r->gz), (long long)r->line);
	return -1;	/* GZ_ABORTED: csvin_chunk's failure is in r->st */
}

/* n bytes of the file as stored: the text itself, or gzip inflated into rd. */
static int
csvin_take(struct csvin *r, const char *p, size_t n)
{
	enum gz_status st;

	if (!r->gzip)
		return csvin_chunk(r, p, n);
	if ((st = gz_in_feed(r->gz, p, n, r->rd, CSVIN_READ_SIZE, csvin_gz_out, r)) != GZ_OK)
		return csvin_gz_failed(r, st);
	return 0;
}

/* The file's bytes are all in; a .gz must have ended with its last member. */
static int
csvin_eof(struct csvin *r)
{
	enum gz_status st;

	if (r->gzip && (st = gz_in_end(r->gz)) != GZ_OK)
		return csvin_gz_failed(r, st);	/* a truncated last line is no record */
	if (r->skipping) {
		(void)csvin_scan_eol(r);	/* the end of the file ends it anyway */
		return csvin_skip_end(r);
	}
	if (r->raw.len > r->line_off) {		/* a last line without LF */
		r->line++;
		return csvin_line(r, r->raw.p + r->line_off, r->raw.len - r->line_off, 1, 1);
	}
	if (r->in_record)	/* the file ends inside quotes, after a LF */
		return csvin_line(r, r->raw.p + r->line_off, 0, 1, 1);
	return 0;
}

/* ---- files ----------------------------------------------------------------- */

static const char *
csvin_file_type(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFDIR:	return "directory";
	case S_IFIFO:	return "FIFO";
	case S_IFCHR:	return "character device";
	case S_IFBLK:	return "block device";
	case S_IFSOCK:	return "socket";
	case S_IFLNK:	return "symbolic link";
	}
	return "special file";
}

static int
csvin_open(struct csvin *r, int dirfd, const char *name)
{
	struct stat sb;
	int fd, e;

	/* O_NONBLOCK: opening a FIFO must not wait for a writer before fstat refuses it. */
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		if (e == ELOOP)
			return csvin_fail(r, CSVIN_NOT_REGULAR, e, "is a symbolic link; not read");
		return csvin_fail(r, CSVIN_IO, e, "cannot open: %s", strerror(e));
	}
	if (fstat(fd, &sb) != 0) {
		e = errno;
		(void)close(fd);
		return csvin_fail(r, CSVIN_IO, e, "fstat: %s", strerror(e));
	}
	if (!S_ISREG(sb.st_mode)) {
		(void)close(fd);
		return csvin_fail(r, CSVIN_NOT_REGULAR, EINVAL, "is a %s, not a regular file; "
		    "not read", csvin_file_type(sb.st_mode));
	}
	return fd;
}

/*
 * The identity is taken at end of file, from the descriptor read (never the
 * name again, which a rename may have given to another file meanwhile), with
 * the bytes read as its size: anything added after that makes it differ.
 */
static int
csvin_pump(struct csvin *r, int fd)
{
	char *buf = r->gzip ? r->zin : r->rd;
	off_t total = 0;
	ssize_t n;
	int e;

	for (;;) {
		if ((n = read(fd, buf, CSVIN_READ_SIZE)) < 0) {
			if ((e = errno) == EINTR)
				continue;
			return csvin_fail(r, CSVIN_IO, e, "line %lld: read: %s",
			    (long long)r->line, strerror(e));
		}
		if (n == 0)
			break;
		total += n;
		if (csvin_take(r, buf, (size_t)n) != 0)
			return -1;
	}
	if (fstat(fd, &r->read_st) != 0) {
		e = errno;
		return csvin_fail(r, CSVIN_IO, e, "fstat: %s", strerror(e));
	}
	r->read_st.st_size = total;
	return 0;
}

/* The inflater and its read buffer, made at the first .gz file and kept. */
static int
csvin_gz_ready(struct csvin *r)
{
	if (r->zin == NULL && (r->zin = malloc(CSVIN_READ_SIZE)) == NULL)
		return csvin_fail(r, CSVIN_NOMEM, ENOMEM, "out of memory for a gzip reader");
	if (r->gz == NULL && (r->gz = gz_in_new()) == NULL)
		return csvin_fail(r, CSVIN_NOMEM, ENOMEM, "out of memory for a gzip reader");
	gz_in_reset(r->gz);
	return 0;
}

static void
csvin_begin(struct csvin *r, const char *name, csvin_row_fn fn, void *arg,
    char *err, size_t errlen)
{
	r->name = name;
	r->fn = fn;
	r->arg = arg;
	r->err = err;
	r->errlen = errlen;
	if (errlen > 0)
		err[0] = '\0';
	r->st = CSVIN_OK;
	r->errnum = 0;
	r->nomem = 0;
	r->line = r->rec_line = 0;
	r->in_header = 1;
	r->nheader = 0;
	r->dup_col = -1;
	r->nunknown = 0;
	r->unknown_len = 0;
	r->unknown[0] = '\0';
	r->skipping = 0;
	r->row.len = 0;
	csvin_record_reset(r);
	r->gzip = gz_is_name(name);
	if (r->gzip)
		(void)csvin_gz_ready(r);
}

static void
csvin_end(struct csvin *r)
{
	if (r->st != CSVIN_OK || r->skipping)
		csvin_parser_reset(r, 0);
	csvin_record_reset(r);
	r->skipping = 0;
	csvin_buf_trim(&r->raw);
	csvin_buf_trim(&r->row);
	if (csv_get_buffer_size(&r->parser) > CSVIN_KEEP_BUF)
		csvin_parser_reset(r, 1);
	r->fn = NULL;
	r->arg = NULL;
	r->name = NULL;
}

/* The status of the file just read, with its errno; the reader is ready for the next. */
static enum csvin_status
csvin_finish(struct csvin *r)
{
	enum csvin_status st = r->st;

	csvin_end(r);
	errno = r->errnum;
	return st;
}

enum csvin_status
csvin_read(struct csvin *r, int dirfd, const char *name, csvin_row_fn fn, void *arg,
    char *err, size_t errlen)
{
	int fd;

	csvin_begin(r, name, fn, arg, err, errlen);
	if (r->st == CSVIN_OK && (fd = csvin_open(r, dirfd, name)) >= 0) {
		if (csvin_pump(r, fd) == 0)
			(void)csvin_eof(r);	/* a failure is in r->st */
		(void)close(fd);	/* read-only: a close error loses nothing */
	}
	return csvin_finish(r);
}

const struct stat *
csvin_read_stat(const struct csvin *r)
{
	return &r->read_st;
}

enum csvin_status
csvin_read_mem(struct csvin *r, const char *name, const void *buf, size_t len, size_t slice,
    csvin_row_fn fn, void *arg, char *err, size_t errlen)
{
	const char *p = buf;
	size_t k;

	csvin_begin(r, name, fn, arg, err, errlen);
	if (slice == 0 || slice > CSVIN_READ_SIZE)
		slice = CSVIN_READ_SIZE;	/* never more than one read(2) of a file */
	if (r->st != CSVIN_OK)
		return csvin_finish(r);
	for (; len > 0; p += k, len -= k) {
		k = len < slice ? len : slice;
		if (csvin_take(r, p, k) != 0)
			return csvin_finish(r);
	}
	(void)csvin_eof(r);	/* a failure is in r->st */
	return csvin_finish(r);
}

struct csvin *
csvin_new(void)
{
	struct csvin *r;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	csvin_parser_init(r);
	r->max_record = CSVIN_MAX_RECORD;
	r->fast_path = 1;
	if ((r->rd = malloc(CSVIN_READ_SIZE)) == NULL ||
	    csvin_buf_reserve(&r->raw, CSVIN_RAW_INIT) != 0 ||
	    csvin_buf_reserve(&r->row, CSVIN_ROW_INIT) != 0) {
		csvin_free(r);
		errno = ENOMEM;
		return NULL;
	}
	return r;
}

void
csvin_free(struct csvin *r)
{
	if (r == NULL)
		return;
	csv_free(&r->parser);
	free(r->rd);
	free(r->zin);
	gz_in_free(r->gz);
	free(r->raw.p);
	free(r->row.p);
	free(r);
}

void
csvin_set_max_record(struct csvin *r, size_t max)
{
	r->max_record = max < CSVIN_MIN_RECORD ? CSVIN_MIN_RECORD : max;
}

void
csvin_set_fast_path(struct csvin *r, int on)
{
	r->fast_path = on != 0;
}

size_t
csvin_memory(const struct csvin *r)
{
	return sizeof(*r) + CSVIN_READ_SIZE + (r->zin != NULL ? CSVIN_READ_SIZE : 0) +
	    r->raw.cap + r->row.cap +
	    r->parser.entry_size;	/* csv_get_buffer_size takes no const */
}

const char *
csvin_status_name(enum csvin_status st)
{
	static const char *const names[] = {
		[CSVIN_OK] = "ok", [CSVIN_IO] = "io", [CSVIN_BAD_HEADER] = "bad_header",
		[CSVIN_ABORTED] = "aborted", [CSVIN_NOMEM] = "nomem",
		[CSVIN_NOT_REGULAR] = "not_regular", [CSVIN_BAD_ARCHIVE] = "bad_archive",
	};

	if ((unsigned)st >= sizeof(names) / sizeof(names[0]))
		return "unknown";
	return names[st];
}
