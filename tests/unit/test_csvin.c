/*
 * test_csvin — reading spool files: the header by name, the CSV dialect, line
 * numbers and raw text, hostile bytes, non-regular files, oversized records.
 * Every file is read twice, with and without the fast path, and the two readings
 * must agree row for row: the fast path is only allowed to be faster.  A .csv.gz
 * reads exactly as its text does; a damaged one is CSVIN_BAD_ARCHIVE.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "csvin.h"
#include "gz.h"
#include "log.h"

#define HEADER	"event_id,user_id,event_type,product_id,price,event_time"
#define ROW	"5f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b,123,view,456,0.00,2026-11-25 19:13:25.123456"
#define MIB	(1024u * 1024)

static char tmpdir[64];
static int dirfd_tmp = -1;

struct got_row {
	int64_t	 line;
	int	 nfields, nheader;
	char	*field[EVENT_NCOLS];
	size_t	 len[EVENT_NCOLS];
	char	*raw;
	size_t	 rawlen;	/* full length, even when only a head is kept */
};

struct got {
	struct got_row	*rows;
	size_t		 n, cap;
	size_t		 abort_after;	/* the callback returns -1 at this row (0: never) */
	size_t		 keep;		/* bytes of each value kept (0: all) */
	struct csvin	*r;
	size_t		 max_mem;	/* csvin_memory() seen from the callback */
	enum csvin_status st;
	char		 err[256];
	char		 log[4096];	/* what the reader logged */
};

static char *
dup_bytes(const char *s, size_t n, size_t keep)
{
	size_t k = keep && n > keep ? keep : n;
	char *p = malloc(k + 1);

	if (p == NULL)
		abort();
	memcpy(p, s, k);
	p[k] = '\0';
	return p;
}

static int
collect(void *arg, const struct csv_row *row)
{
	struct got *g = arg;
	struct got_row *gr;
	size_t mem;

	if (g->n == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 16;
		if ((g->rows = realloc(g->rows, g->cap * sizeof(*g->rows))) == NULL)
			abort();
	}
	gr = &g->rows[g->n++];
	gr->line = row->line;
	gr->nfields = row->nfields;
	gr->nheader = row->nheader;
	for (int c = 0; c < EVENT_NCOLS; c++) {
		gr->field[c] = dup_bytes(row->field[c], row->len[c], g->keep);
		gr->len[c] = row->len[c];
		CHECK(row->field[c][row->len[c]] == '\0', "field %d not NUL-terminated", c);
	}
	gr->raw = dup_bytes(row->raw, row->rawlen, g->keep);
	gr->rawlen = row->rawlen;
	if (g->r != NULL && (mem = csvin_memory(g->r)) > g->max_mem)
		g->max_mem = mem;
	return g->abort_after && g->n >= g->abort_after ? -1 : 0;
}

static void
got_free(struct got *g)
{
	for (size_t i = 0; i < g->n; i++) {
		for (int c = 0; c < EVENT_NCOLS; c++)
			free(g->rows[i].field[c]);
		free(g->rows[i].raw);
	}
	free(g->rows);
	memset(g, 0, sizeof(*g));
}

static void
put_file(const char *name, const void *data, size_t len)
{
	int fd = openat(dirfd_tmp, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || write(fd, data, len) != (ssize_t)len || close(fd) != 0) {
		perror(name);
		exit(2);
	}
}

static void
put_str(const char *name, const char *text)
{
	put_file(name, text, strlen(text));
}

/* Run one read with stderr sent to a file, so the test can see what was logged. */
static void
read_into(struct csvin *r, const char *name, struct got *g)
{
	int saved, fd;
	ssize_t n;

	g->r = r;
	fflush(stderr);
	saved = dup(2);
	fd = openat(dirfd_tmp, "stderr.log", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (saved < 0 || fd < 0 || dup2(fd, 2) < 0)
		abort();
	g->st = csvin_read(r, dirfd_tmp, name, collect, g, g->err, sizeof(g->err));
	fflush(stderr);
	if (dup2(saved, 2) < 0 || lseek(fd, 0, SEEK_SET) != 0)
		abort();
	n = read(fd, g->log, sizeof(g->log) - 1);
	g->log[n > 0 ? n : 0] = '\0';
	close(fd);
	close(saved);
}

static int
same_row(const struct got_row *a, const struct got_row *b)
{
	if (a->line != b->line || a->nfields != b->nfields || a->nheader != b->nheader ||
	    a->rawlen != b->rawlen || strcmp(a->raw, b->raw) != 0)
		return 0;
	for (int c = 0; c < EVENT_NCOLS; c++)
		if (a->len[c] != b->len[c] || memcmp(a->field[c], b->field[c], strlen(a->field[c])))
			return 0;
	return 1;
}

/* Read with the fast path and again through libcsv only; both must agree. */
static void
read_file(const char *name, struct got *g, size_t max_record)
{
	struct csvin *r = csvin_new();
	struct got slow = { .abort_after = g->abort_after, .keep = g->keep };

	CHECK(r != NULL, "csvin_new");
	if (r == NULL)
		return;
	if (max_record)
		csvin_set_max_record(r, max_record);
	read_into(r, name, g);
	csvin_set_fast_path(r, 0);
	read_into(r, name, &slow);
	CHECK(slow.st == g->st, "%s: status fast %d, libcsv %d", name, g->st, slow.st);
	CHECK(slow.n == g->n, "%s: rows fast %zu, libcsv %zu", name, g->n, slow.n);
	for (size_t i = 0; i < g->n && i < slow.n; i++)
		CHECK(same_row(&g->rows[i], &slow.rows[i]), "%s: row %zu differs between fast "
		    "path (line %lld) and libcsv (line %lld)", name, i, (long long)g->rows[i].line,
		    (long long)slow.rows[i].line);
	got_free(&slow);
	csvin_free(r);
}

static size_t
count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* ---- the header ------------------------------------------------------------ */

static void
test_header_any_order(void)
{
	struct got g = { 0 };

	put_str("order.csv", "price,event_time,event_id,user_id,product_id,event_type\n"
	    "1.50,2026-01-01 00:00:00,id-1,7,9,view\n");
	read_file("order.csv", &g, 0);
	CHECK(g.st == CSVIN_OK, "st %d: %s", g.st, g.err);
	CHECK(g.n == 1, "rows %zu", g.n);
	if (g.n == 1) {
		struct got_row *r = &g.rows[0];
		CHECK(strcmp(r->field[COL_PRICE], "1.50") == 0, "price '%s'", r->field[COL_PRICE]);
		CHECK(strcmp(r->field[COL_EVENT_ID], "id-1") == 0, "id '%s'", r->field[COL_EVENT_ID]);
		CHECK(strcmp(r->field[COL_USER_ID], "7") == 0, "user '%s'", r->field[COL_USER_ID]);
		CHECK(strcmp(r->field[COL_PRODUCT_ID], "9") == 0, "product");
		CHECK(strcmp(r->field[COL_EVENT_TYPE], "view") == 0, "type");
		CHECK(strcmp(r->field[COL_EVENT_TIME], "2026-01-01 00:00:00") == 0, "time");
		CHECK(r->line == 2 && r->nfields == 6 && r->nheader == 6, "line %lld", (long long)r->line);
	}
	CHECK(g.log[0] == '\0', "unexpected log: %.200s", g.log);
	got_free(&g);
}

static void
test_header_names_trimmed_quoted(void)
{
	struct got g = { 0 };

	put_str("trim.csv", " event_id ,\tuser_id,\"event_type\",\"product_id\",price ,event_time\n"
	    ROW "\n");
	read_file("trim.csv", &g, 0);
	CHECK(g.st == CSVIN_OK, "st %d: %s", g.st, g.err);
	CHECK(g.n == 1 && strcmp(g.rows[0].field[COL_USER_ID], "123") == 0, "rows %zu", g.n);
	got_free(&g);
}

static void
test_extra_columns_warn_once(void)
{
	struct got g = { 0 };

	put_str("extra.csv", "event_id,user_id,color,event_type,product_id,price,event_time,\x01zz\n"
	    "a,1,red,view,2,3,t,q\nb,4,blue,view,5,6,t,q\n");
	read_file("extra.csv", &g, 0);
	CHECK(g.st == CSVIN_OK, "st %d: %s", g.st, g.err);
	CHECK(g.n == 2, "rows %zu", g.n);
	if (g.n == 2) {
		CHECK(g.rows[0].nheader == 8 && g.rows[0].nfields == 8, "nheader %d", g.rows[0].nheader);
		CHECK(strcmp(g.rows[1].field[COL_EVENT_TYPE], "view") == 0, "type after extra col");
		CHECK(strcmp(g.rows[1].field[COL_PRODUCT_ID], "5") == 0, "product after extra col");
	}
	CHECK(count_lines(g.log) == 1, "expected one warning, got: %.200s", g.log);
	CHECK(strstr(g.log, "warning") && strstr(g.log, "extra.csv") && strstr(g.log, "'color'") &&
	    strstr(g.log, "'\\x01zz'") && strstr(g.log, "line 1"), "log: %.200s", g.log);
	got_free(&g);
}

static void
test_missing_column(void)
{
	struct got g = { 0 };

	put_str("missing.csv", "event_id,user_id,event_type,product_id,event_time\n" ROW "\n");
	read_file("missing.csv", &g, 0);
	CHECK(g.st == CSVIN_BAD_HEADER, "st %d", g.st);
	CHECK(g.n == 0, "rows %zu", g.n);
	CHECK(strstr(g.err, "missing.csv") && strstr(g.err, "'price'"), "err: %s", g.err);
	got_free(&g);

	/* No header at all: the first record is data. */
	put_str("noheader.csv", ROW "\n" ROW "\n");
	read_file("noheader.csv", &g, 0);
	CHECK(g.st == CSVIN_BAD_HEADER && g.n == 0, "st %d", g.st);
	CHECK(strstr(g.err, "'event_id'") && strstr(g.err, "'event_time'"), "err: %s", g.err);
	got_free(&g);
}

static void
test_duplicate_column(void)
{
	struct got g = { 0 };

	put_str("dup.csv", HEADER ",user_id\n" ROW ",5\n");
	read_file("dup.csv", &g, 0);
	CHECK(g.st == CSVIN_BAD_HEADER, "st %d", g.st);
	CHECK(strstr(g.err, "'user_id'") && strstr(g.err, "twice"), "err: %s", g.err);
	CHECK(g.n == 0, "rows %zu", g.n);
	got_free(&g);
}

static void
test_too_many_columns(void)
{
	size_t cap = 16 * 6000 + 256, off = 0;
	char *text = malloc(cap);
	struct got g = { 0 };

	if (text == NULL)
		abort();
	off += (size_t)snprintf(text, cap, HEADER);
	for (int i = 0; i < 5000; i++)
		off += (size_t)snprintf(text + off, cap - off, ",x%d", i);
	off += (size_t)snprintf(text + off, cap - off, "\n" ROW "\n");
	put_file("wide.csv", text, off);
	read_file("wide.csv", &g, 0);
	CHECK(g.st == CSVIN_BAD_HEADER && strstr(g.err, "columns"), "st %d: %s", g.st, g.err);
	got_free(&g);
	free(text);
}

static void
test_bom(void)
{
	struct got g = { 0 };

	put_str("bom.csv", "\xef\xbb\xbf" HEADER "\r\n" ROW "\r\n");
	read_file("bom.csv", &g, 0);
	CHECK(g.st == CSVIN_OK, "st %d: %s", g.st, g.err);
	CHECK(g.n == 1 && g.rows[0].line == 2, "rows %zu", g.n);
	got_free(&g);

	/* Only at the very start: a BOM before a later record is data. */
	put_str("bom2.csv", HEADER "\n\xef\xbb\xbf" ROW "\n");
	read_file("bom2.csv", &g, 0);
	CHECK(g.n == 1 && g.rows[0].len[COL_EVENT_ID] == 39, "rows %zu", g.n);
	got_free(&g);
}

/* ---- the dialect ----------------------------------------------------------- */

static void
test_crlf(void)
{
	struct got g = { 0 };

	put_str("crlf.csv", HEADER "\r\n" ROW "\r\n\r\n" "x,1,view,2,3,t\r\n");
	read_file("crlf.csv", &g, 0);
	CHECK(g.st == CSVIN_OK, "st %d: %s", g.st, g.err);
	CHECK(g.n == 2, "rows %zu", g.n);
	if (g.n == 2) {
		CHECK(strcmp(g.rows[0].field[COL_EVENT_TIME], "2026-11-25 19:13:25.123456") == 0,
		    "time '%s'", g.rows[0].field[COL_EVENT_TIME]);
		CHECK(strcmp(g.rows[0].raw, ROW) == 0, "raw '%s'", g.rows[0].raw);
		CHECK(g.rows[1].line == 4 && strcmp(g.rows[1].raw, "x,1,view,2,3,t") == 0,
		    "line %lld raw '%s'", (long long)g.rows[1].line, g.rows[1].raw);
	}
	got_free(&g);
}

static void
test_quoted_fields(void)
{
	const char *text = HEADER "\n"
	    "\"a,b\",1,view,2,\"3.00\",\"2026-11-25 19:13:25\"\n"	/* line 2 */
	    "x,\"he said \"\"hi\"\"\",purchase,4,5,t\n"		/* line 3 */
	    "y,\"multi\n"						/* line 4 */
	    "line\r\n"							/* line 5 */
	    "\n"							/* line 6 */
	    "field\",view,6,7,t\n"					/* line 7 */
	    "\n"							/* line 8 */
	    "z,8,view,9,10,t\n";					/* line 9 */
	struct got g = { 0 };

	put_str("quoted.csv", text);
	read_file("quoted.csv", &g, 0);
	CHECK(g.st == CSVIN_OK, "st %d: %s", g.st, g.err);
	CHECK(g.n == 4, "rows %zu", g.n);
	if (g.n != 4)
		goto out;
	CHECK(g.rows[0].line == 2 && strcmp(g.rows[0].field[COL_EVENT_ID], "a,b") == 0 &&
	    strcmp(g.rows[0].field[COL_PRICE], "3.00") == 0, "row 0 '%s'", g.rows[0].field[0]);
	CHECK(strcmp(g.rows[0].raw, "\"a,b\",1,view,2,\"3.00\",\"2026-11-25 19:13:25\"") == 0,
	    "raw 0 '%s'", g.rows[0].raw);
	CHECK(g.rows[1].line == 3 && strcmp(g.rows[1].field[COL_USER_ID], "he said \"hi\"") == 0,
	    "row 1 '%s'", g.rows[1].field[COL_USER_ID]);
	CHECK(g.rows[2].line == 4 && g.rows[2].nfields == 6, "row 2 line %lld",
	    (long long)g.rows[2].line);
	CHECK(strcmp(g.rows[2].field[COL_USER_ID], "multi\nline\n\nfield") == 0,
	    "row 2 field '%s'", g.rows[2].field[COL_USER_ID]);
	CHECK(strcmp(g.rows[2].raw, "y,\"multi\nline\r\n\nfield\",view,6,7,t") == 0,
	    "row 2 raw '%s'", g.rows[2].raw);
	CHECK(g.rows[3].line == 9 && strcmp(g.rows[3].raw, "z,8,view,9,10,t") == 0,
	    "row 3 line %lld", (long long)g.rows[3].line);
out:
	got_free(&g);
}

static void
test_stray_quotes_and_spaces(void)
{
	struct got g = { 0 };

	put_str("stray.csv", HEADER "\n"
	    "ab\"c, 12 ,view,x\"y,\t1.00,t\n"
	    "a,\"b\",view,\"\",\"\",\"t\"\n"
	    /*
	     * libcsv, non-strict: after a closing quote, anything but ',' or LF is
	     * data and the field stays quoted, so this record has two fields.
	     */
	    "c,\"d\" ,view,2,3,\"t\"\n"
	    "z,1,view,2,3,t\n");
	read_file("stray.csv", &g, 0);
	CHECK(g.st == CSVIN_OK && g.n == 4, "st %d rows %zu", g.st, g.n);
	if (g.n == 4) {
		CHECK(strcmp(g.rows[2].field[COL_USER_ID], "d\" ,view,2,3,\"t") == 0 &&
		    g.rows[2].nfields == 2, "'%s'", g.rows[2].field[COL_USER_ID]);
		CHECK(g.rows[3].line == 5 && g.rows[3].nfields == 6, "line %lld",
		    (long long)g.rows[3].line);
		CHECK(strcmp(g.rows[0].field[COL_EVENT_ID], "ab\"c") == 0, "'%s'", g.rows[0].field[0]);
		CHECK(strcmp(g.rows[0].field[COL_USER_ID], " 12 ") == 0, "spaces trimmed: '%s'",
		    g.rows[0].field[COL_USER_ID]);
		CHECK(strcmp(g.rows[0].field[COL_PRODUCT_ID], "x\"y") == 0, "'%s'",
		    g.rows[0].field[COL_PRODUCT_ID]);
		CHECK(strcmp(g.rows[0].field[COL_PRICE], "\t1.00") == 0, "tab trimmed");
		CHECK(g.rows[1].len[COL_PRODUCT_ID] == 0 && strcmp(g.rows[1].field[COL_EVENT_TIME], "t") == 0,
		    "empty quoted");
	}
	got_free(&g);
}

static void
test_lone_cr_is_data(void)
{
	struct got g = { 0 };

	put_str("cr.csv", HEADER "\n" "a\rb,1,view,2,3,t\r\r\n" "c,1,view,2,3,t\r");
	read_file("cr.csv", &g, 0);
	CHECK(g.st == CSVIN_OK && g.n == 2, "st %d rows %zu", g.st, g.n);
	if (g.n == 2) {
		CHECK(strcmp(g.rows[0].field[COL_EVENT_ID], "a\rb") == 0, "cr inside");
		CHECK(strcmp(g.rows[0].field[COL_EVENT_TIME], "t\r") == 0, "only one CR is the ending");
		CHECK(strcmp(g.rows[1].field[COL_EVENT_TIME], "t") == 0, "CR before EOF is the ending");
		CHECK(g.rows[1].line == 3 && strcmp(g.rows[1].raw, "c,1,view,2,3,t") == 0, "raw");
	}
	got_free(&g);
}

static void
test_short_and_long_records(void)
{
	struct got g = { 0 };

	put_str("count.csv", HEADER "\n" "a,1,view\n" ROW ",extra,more\n" ",\n");
	read_file("count.csv", &g, 0);
	CHECK(g.st == CSVIN_OK && g.n == 3, "st %d rows %zu", g.st, g.n);
	if (g.n == 3) {
		CHECK(g.rows[0].nfields == 3 && g.rows[0].nheader == 6, "nfields %d", g.rows[0].nfields);
		CHECK(g.rows[0].len[COL_PRICE] == 0 && g.rows[0].field[COL_PRICE][0] == '\0', "short");
		CHECK(g.rows[1].nfields == 8, "nfields %d", g.rows[1].nfields);
		CHECK(g.rows[2].nfields == 2, "nfields %d", g.rows[2].nfields);
	}
	got_free(&g);
}

static void
test_last_line_without_newline(void)
{
	struct got g = { 0 };

	put_str("nonl.csv", HEADER "\n" ROW "\n" "x,1,view,2,3,t");
	read_file("nonl.csv", &g, 0);
	CHECK(g.st == CSVIN_OK && g.n == 2, "st %d rows %zu", g.st, g.n);
	if (g.n == 2)
		CHECK(g.rows[1].line == 3 && strcmp(g.rows[1].field[COL_EVENT_TIME], "t") == 0 &&
		    strcmp(g.rows[1].raw, "x,1,view,2,3,t") == 0, "last '%s'", g.rows[1].raw);
	got_free(&g);

	/* The same through libcsv (a quote in the last record). */
	put_str("nonl2.csv", HEADER "\n" "\"x\",1,view,2,3,\"t\"");
	read_file("nonl2.csv", &g, 0);
	CHECK(g.n == 1 && strcmp(g.rows[0].field[COL_EVENT_TIME], "t") == 0, "rows %zu", g.n);
	CHECK(g.log[0] == '\0', "log: %.200s", g.log);
	got_free(&g);
}

static void
test_open_quote_at_eof(void)
{
	struct got g = { 0 };

	put_str("open.csv", HEADER "\n" "a,1,view,2,3,\"t\nmore\n");
	read_file("open.csv", &g, 0);
	CHECK(g.st == CSVIN_OK && g.n == 1, "st %d rows %zu", g.st, g.n);
	if (g.n == 1) {
		CHECK(strcmp(g.rows[0].field[COL_EVENT_TIME], "t\nmore\n") == 0, "'%s'",
		    g.rows[0].field[COL_EVENT_TIME]);
		CHECK(strcmp(g.rows[0].raw, "a,1,view,2,3,\"t\nmore") == 0, "raw '%s'", g.rows[0].raw);
	}
	CHECK(strstr(g.log, "open.csv: line 2: quoted field still open") != NULL, "log: %.200s", g.log);
	got_free(&g);
}

static void
test_empty_files(void)
{
	struct got g = { 0 };

	put_str("empty.csv", "");
	read_file("empty.csv", &g, 0);
	CHECK(g.st == CSVIN_OK && g.n == 0, "empty: st %d rows %zu", g.st, g.n);
	got_free(&g);
	put_str("blank.csv", "\n\r\n\n");
	read_file("blank.csv", &g, 0);
	CHECK(g.st == CSVIN_OK && g.n == 0, "blank: st %d rows %zu", g.st, g.n);
	got_free(&g);
	put_str("hdr.csv", HEADER "\n");
	read_file("hdr.csv", &g, 0);
	CHECK(g.st == CSVIN_OK && g.n == 0, "header only: st %d rows %zu", g.st, g.n);
	got_free(&g);
	put_str("hdr2.csv", HEADER);
	read_file("hdr2.csv", &g, 0);
	CHECK(g.st == CSVIN_OK && g.n == 0, "header without LF: st %d: %s", g.st, g.err);
	got_free(&g);
}

/* ---- hostile input --------------------------------------------------------- */

static void
test_nul_bytes(void)
{
	static const char text[] = HEADER "\n" "a\0b,1,view,2,3,t\n" "\"c\0d\",1,\0,2,3,t\n";
	struct got g = { 0 };

	put_file("nul.csv", text, sizeof(text) - 1);
	read_file("nul.csv", &g, 0);
	CHECK(g.st == CSVIN_OK && g.n == 2, "st %d rows %zu", g.st, g.n);
	if (g.n == 2) {
		CHECK(g.rows[0].len[COL_EVENT_ID] == 3 && memcmp(g.rows[0].field[0], "a\0b", 4) == 0,
		    "len %zu", g.rows[0].len[COL_EVENT_ID]);
		CHECK(g.rows[1].len[COL_EVENT_ID] == 3 && g.rows[1].len[COL_EVENT_TYPE] == 1, "quoted NUL");
		CHECK(g.rows[1].rawlen == 15, "rawlen %zu", g.rows[1].rawlen);
	}
	got_free(&g);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t
rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void
test_binary_garbage(void)
{
	size_t len = 200000, off = sizeof(HEADER);
	char *buf = malloc(len);
	struct got g = { .keep = 64 };

	if (buf == NULL)
		abort();
	memcpy(buf, HEADER "\n", off);
	for (size_t i = off; i < len; i++)
		buf[i] = (char)rng();
	put_file("garbage.csv", buf, len);
	read_file("garbage.csv", &g, 0);
	CHECK(g.st == CSVIN_OK, "st %d: %s", g.st, g.err);
	CHECK(g.n > 100, "rows %zu", g.n);
	for (size_t i = 1; i < g.n; i++)
		CHECK(g.rows[i].line > g.rows[i - 1].line, "lines go forward");
	got_free(&g);
	free(buf);
}

/* Small random files of CSV's special bytes: the fast path must match libcsv. */
static void
test_fuzz_fast_path_matches_libcsv(void)
{
	static const char alphabet[] = { ',', '"', '\n', '\r', ' ', '\t', 'a', '1', '\0', ',', '"' };
	char buf[600];

	for (int iter = 0; iter < 1500; iter++) {
		struct got g = { 0 };
		size_t n = (size_t)snprintf(buf, sizeof(buf), "%s\n", HEADER);
		size_t len = n + rng() % (sizeof(buf) - n);

		for (size_t i = n; i < len; i++)
			buf[i] = alphabet[rng() % sizeof(alphabet)];
		put_file("fuzz.csv", buf, len);
		read_file("fuzz.csv", &g, 0);
		CHECK(g.st == CSVIN_OK, "iter %d: st %d", iter, g.st);
		got_free(&g);
	}
}

/* Lines that straddle read(2) boundaries, a CRLF split between two reads. */
static void
test_read_boundaries(void)
{
	size_t cap = 3 * 256 * 1024, off = 0, nrows = 0;
	char *buf = malloc(cap);
	struct got g = { 0 };

	if (buf == NULL)
		abort();
	off += (size_t)snprintf(buf, cap, HEADER "\r\n");
	while (off < cap - 200) {
		/* Once, a row whose CR is the last byte of the first 256 KiB read. */
		if (off + 200 >= 256 * 1024 && off < 256 * 1024) {
			int pad = (int)(256 * 1024 - 1 - off - strlen(",1,view,2,3,t"));
			off += (size_t)snprintf(buf + off, cap - off, "%0*d,1,view,2,3,t\r\n", pad, 7);
			nrows++;
			continue;
		}
		off += (size_t)snprintf(buf + off, cap - off, "%s\r\n%s", ROW,
		    nrows % 7 ? "" : "\"q\nq\",1,view,2,3,t\n");
		nrows += nrows % 7 ? 1 : 2;
	}
	CHECK(buf[256 * 1024 - 1] == '\r' && buf[256 * 1024] == '\n', "test set-up: no CR at the edge");
	put_file("edges.csv", buf, off);
	read_file("edges.csv", &g, 0);
	CHECK(g.st == CSVIN_OK && g.n == nrows, "st %d rows %zu, expected %zu", g.st, g.n, nrows);
	for (size_t i = 0; i < g.n; i++)
		CHECK(g.rows[i].nfields == 6 && g.rows[i].raw[g.rows[i].rawlen - 1] != '\r',
		    "row %zu: nfields %d raw '%s'", i, g.rows[i].nfields, g.rows[i].raw);
	got_free(&g);
	free(buf);
}

static void
test_not_regular_files(void)
{
	struct got g = { 0 };
	struct csvin *r = csvin_new();

	CHECK(r != NULL, "csvin_new");
	if (r == NULL)
		return;
	if (mkfifoat(dirfd_tmp, "fifo.csv", 0600) != 0 || mkdirat(dirfd_tmp, "dir.csv", 0700) != 0 ||
	    symlinkat("empty.csv", dirfd_tmp, "link.csv") != 0)
		abort();
	put_str("empty.csv", "");
	read_into(r, "fifo.csv", &g);
	CHECK(g.st == CSVIN_NOT_REGULAR && strstr(g.err, "FIFO"), "fifo: st %d: %s", g.st, g.err);
	read_into(r, "dir.csv", &g);
	CHECK(g.st == CSVIN_NOT_REGULAR && strstr(g.err, "directory"), "dir: st %d: %s", g.st, g.err);
	read_into(r, "link.csv", &g);
	CHECK(g.st == CSVIN_NOT_REGULAR && strstr(g.err, "symbolic link"), "link: st %d", g.st);
	g.st = csvin_read(r, dirfd_tmp, "absent.csv", collect, &g, g.err, sizeof(g.err));
	CHECK(g.st == CSVIN_IO && errno == ENOENT && strstr(g.err, "absent.csv"), "absent: %s", g.err);
	CHECK(g.n == 0, "rows %zu", g.n);
	unlinkat(dirfd_tmp, "fifo.csv", 0);
	unlinkat(dirfd_tmp, "dir.csv", AT_REMOVEDIR);
	unlinkat(dirfd_tmp, "link.csv", 0);
	got_free(&g);
	csvin_free(r);
}

static void
test_callback_abort(void)
{
	struct got g = { .abort_after = 2 };

	put_str("abort.csv", HEADER "\n" ROW "\n" ROW "\n" ROW "\n");
	read_file("abort.csv", &g, 0);
	CHECK(g.st == CSVIN_ABORTED && g.n == 2, "st %d rows %zu", g.st, g.n);
	got_free(&g);
}

static void
test_reader_reused(void)
{
	struct csvin *r = csvin_new();
	struct got a = { 0 }, b = { 0 }, c = { 0 };

	CHECK(r != NULL, "csvin_new");
	if (r == NULL)
		return;
	put_str("r1.csv", HEADER "\n\"a\",1,view,2,3,\"open\n");
	put_str("r2.csv", "price,event_time,event_id,user_id,product_id,event_type\n1,t,x,2,3,view\n");
	put_str("r3.csv", "event_id\nq\n");
	read_into(r, "r1.csv", &a);
	read_into(r, "r3.csv", &c);
	read_into(r, "r2.csv", &b);
	CHECK(a.st == CSVIN_OK && a.n == 1, "r1 st %d", a.st);
	CHECK(c.st == CSVIN_BAD_HEADER, "r3 st %d", c.st);
	CHECK(b.st == CSVIN_OK && b.n == 1 && b.rows[0].line == 2 &&
	    strcmp(b.rows[0].field[COL_EVENT_ID], "x") == 0, "no state leaks from r1/r3 into r2");
	got_free(&a);
	got_free(&b);
	got_free(&c);
	csvin_free(r);
}

/* ---- big records ----------------------------------------------------------- */

static char *
big_file(size_t idlen, int quoted, size_t *len)
{
	size_t cap = idlen + 1024, off;
	char *buf = malloc(cap);

	if (buf == NULL)
		abort();
	off = (size_t)snprintf(buf, cap, HEADER "\n%s", quoted ? "\"" : "");
	memset(buf + off, 'a', idlen);
	off += idlen;
	off += (size_t)snprintf(buf + off, cap - off, "%s,1,view,2,3,t\n" ROW "\n",
	    quoted ? "\"" : "");
	*len = off;
	return buf;
}

static void
test_10mb_record_within_limit(void)
{
	size_t len, id = 10 * 1000 * 1000;
	char *buf = big_file(id, 1, &len);
	struct got g = { .keep = 16 };

	put_file("big.csv", buf, len);
	read_file("big.csv", &g, 0);
	CHECK(g.st == CSVIN_OK && g.n == 2, "st %d rows %zu: %s", g.st, g.n, g.err);
	if (g.n == 2) {
		CHECK(g.rows[0].nfields == 6 && g.rows[0].len[COL_EVENT_ID] == id, "len %zu",
		    g.rows[0].len[COL_EVENT_ID]);
		CHECK(g.rows[0].rawlen == id + 2 + strlen(",1,view,2,3,t"), "rawlen %zu", g.rows[0].rawlen);
		CHECK(g.rows[1].line == 3 && g.rows[1].rawlen == strlen(ROW) &&
		    strncmp(g.rows[1].raw, ROW, 16) == 0, "next record");
	}
	got_free(&g);
	free(buf);
}

static void
test_10mb_record_oversized(void)
{
	size_t len, id = 10 * 1000 * 1000;

	for (int quoted = 0; quoted <= 1; quoted++) {
		char *buf = big_file(id, quoted, &len);
		struct got g = { 0 };

		put_file("over.csv", buf, len);
		read_file("over.csv", &g, MIB);
		CHECK(g.st == CSVIN_OK && g.n == 2, "st %d rows %zu: %s", g.st, g.n, g.err);
		if (g.n == 2) {
			CHECK(g.rows[0].nfields == -1 && g.rows[0].line == 2, "nfields %d", g.rows[0].nfields);
			CHECK(g.rows[0].rawlen == CSVIN_OVERSIZED_RAW && g.rows[0].len[COL_EVENT_ID] == 0,
			    "rawlen %zu", g.rows[0].rawlen);
			CHECK(memcmp(g.rows[0].raw, quoted ? "\"aaa" : "aaaa", 4) == 0, "raw head");
			CHECK(g.rows[1].line == 3 && strcmp(g.rows[1].raw, ROW) == 0, "next record");
		}
		/* The bound: read buffer, raw and row buffers, libcsv's: ~4 x the limit. */
		CHECK(g.max_mem < 5 * MIB, "memory %zu", g.max_mem);
		CHECK(strstr(g.log, "over.csv: line 2: record longer than"), "log: %.200s", g.log);
		got_free(&g);
		free(buf);
	}
}

/* A quoted field of 3 MB across CRLF lines, closed right before a CRLF. */
static void
test_oversized_multiline(void)
{
	size_t cap = 4 * MIB, off, nl = 0;
	char *buf = malloc(cap);
	struct got g = { 0 };

	if (buf == NULL)
		abort();
	off = (size_t)snprintf(buf, cap, HEADER "\r\nx,\"");
	while (off < 3 * MIB) {
		memset(buf + off, 'b', 998);
		memcpy(buf + off + 998, "\r\n", 2);
		off += 1000;
		nl++;
	}
	off += (size_t)snprintf(buf + off, cap - off, "\"\"end\",1,view,2,3,t\"\r\n" ROW "\r\n");
	put_file("multi.csv", buf, off);
	read_file("multi.csv", &g, MIB);
	CHECK(g.st == CSVIN_OK && g.n == 2, "st %d rows %zu: %s", g.st, g.n, g.err);
	if (g.n == 2) {
		CHECK(g.rows[0].nfields == -1 && g.rows[0].line == 2, "nfields %d line %lld",
		    g.rows[0].nfields, (long long)g.rows[0].line);
		CHECK(g.rows[1].line == (int64_t)(3 + nl), "next line %lld, expected %zu",
		    (long long)g.rows[1].line, 3 + nl);
		CHECK(strcmp(g.rows[1].raw, ROW) == 0, "next raw '%s'", g.rows[1].raw);
	}
	got_free(&g);

	/* The same file, ending inside the oversized record: reported at EOF. */
	put_file("multi2.csv", buf, 2 * MIB);
	read_file("multi2.csv", &g, MIB);
	CHECK(g.st == CSVIN_OK && g.n == 1 && g.rows[0].nfields == -1, "st %d rows %zu", g.st, g.n);
	got_free(&g);
	free(buf);
}

/* The limit is crossed by the read that also holds the record's LF. */
static void
test_oversized_at_line_end(void)
{
	size_t len;
	char *buf = big_file(MIB + 1000 - sizeof(HEADER), 0, &len);
	struct got g = { 0 };

	put_file("edge.csv", buf, len);
	read_file("edge.csv", &g, MIB);
	CHECK(g.st == CSVIN_OK && g.n == 2, "st %d rows %zu", g.st, g.n);
	if (g.n == 2)
		CHECK(g.rows[0].line == 2 && g.rows[0].nfields == -1 && g.rows[1].line == 3,
		    "lines %lld %lld", (long long)g.rows[0].line, (long long)g.rows[1].line);
	got_free(&g);
	free(buf);
}

/*
 * Where csvin's scan ends an oversized record must be where libcsv would have:
 * read random files once with a 1 MiB limit and once without; the records
 * must be the same, the big one only replaced by its oversized report.
 */
static void
test_fuzz_oversized_matches_libcsv(void)
{
	static const char alphabet[] = { ',', '"', '\n', '\r', 'a', '"', '\n' };
	size_t cap = 2 * MIB;
	char *buf = malloc(cap);

	if (buf == NULL)
		abort();
	for (int iter = 0; iter < 40; iter++) {
		struct got small = { .keep = 32 }, big = { .keep = 32 };
		size_t off = (size_t)snprintf(buf, cap, "%s\n", HEADER), n;

		for (n = rng() % 40; n > 0; n--)
			buf[off++] = alphabet[rng() % sizeof(alphabet)];
		memset(buf + off, 'p', MIB + MIB / 8);
		off += MIB + MIB / 8;
		for (n = rng() % 200; n > 0; n--)
			buf[off++] = alphabet[rng() % sizeof(alphabet)];
		for (int i = 0; i < 3; i++)
			off += (size_t)snprintf(buf + off, cap - off, "\n" ROW);
		put_file("fuzzbig.csv", buf, off);
		read_file("fuzzbig.csv", &small, MIB);
		read_file("fuzzbig.csv", &big, 0);
		CHECK(small.st == CSVIN_OK && small.n == big.n, "iter %d: rows %zu vs %zu", iter,
		    small.n, big.n);
		for (size_t i = 0; i < small.n && i < big.n; i++) {
			struct got_row *a = &small.rows[i], *b = &big.rows[i];
			if (b->rawlen > MIB)
				CHECK(a->nfields == -1 && a->line == b->line, "iter %d row %zu: "
				    "nfields %d line %lld vs %lld", iter, i, a->nfields,
				    (long long)a->line, (long long)b->line);
			else
				CHECK(same_row(a, b), "iter %d row %zu differs (line %lld vs %lld)",
				    iter, i, (long long)a->line, (long long)b->line);
		}
		got_free(&small);
		got_free(&big);
	}
	free(buf);
}

static void
test_oversized_header(void)
{
	size_t len;
	char *buf = big_file(2 * MIB, 0, &len);
	struct got g = { 0 };

	memset(buf, 'h', sizeof(HEADER));	/* header and its LF: one 2 MB line */
	put_file("bighdr.csv", buf, len);
	read_file("bighdr.csv", &g, MIB);
	CHECK(g.st == CSVIN_BAD_HEADER && strstr(g.err, "header longer"), "st %d: %s", g.st, g.err);
	got_free(&g);
	free(buf);
}


/* ---- gzip archives ------------------------------------------------------------ */

/* A text of n varied rows (some quoted over two lines, CRLF endings): *len bytes. */
static char *
gz_text(size_t nrows, size_t *len)
{
	size_t cap = 128 + nrows * 128, off;
	char *buf = malloc(cap);

	if (buf == NULL)
		abort();
	off = (size_t)snprintf(buf, cap, HEADER "\r\n");
	for (size_t i = 0; i < nrows; i++)
		off += (size_t)snprintf(buf + off, cap - off, i % 9 ? "%08llx-0000-4000-8000-%012llu,"
		    "%llu,view,%llu,0.00,2026-11-25 19:13:25\r\n" : "\"%08llx\n-0000-4000-8000-%012llu\","
		    "%llu,view,%llu,0.00,2026-11-25 19:13:25\n", (unsigned long long)(rng() >> 32),
		    (unsigned long long)i, (unsigned long long)(rng() % 100000),
		    (unsigned long long)(rng() % 10000));
	*len = off;
	return buf;
}

static char *
gz_of(const char *text, size_t len, size_t *zlen)
{
	char *z = NULL;
	size_t cap = 0;

	if (gz_compress(text, len, &z, zlen, &cap) != 0)
		abort();
	return z;
}

/* got equals want row for row (both read from the same text). */
static void
gz_same(const char *what, const struct got *want, const struct got *g)
{
	CHECK(g->st == CSVIN_OK && g->n == want->n, "%s: st %d (%s), rows %zu of %zu", what,
	    g->st, g->err, g->n, want->n);
	for (size_t i = 0; i < g->n && i < want->n; i++)
		CHECK(same_row(&g->rows[i], &want->rows[i]), "%s: row %zu (line %lld) differs",
		    what, i, (long long)g->rows[i].line);
}

static void
test_gzip_reads_as_its_text(void)
{
	size_t len, zlen;
	char *text = gz_text(20000, &len), *z = gz_of(text, len, &zlen);
	struct got plain = { 0 }, gz = { 0 };
	static const size_t slices[] = { 1, 7, 4096, 0 };

	put_file("gz_plain.csv", text, len);
	put_file("gz_text.csv.gz", z, zlen);
	read_file("gz_plain.csv", &plain, 0);
	read_file("gz_text.csv.gz", &gz, 0);
	CHECK(zlen < len / 2, "set-up: %zu bytes compress to %zu", len, zlen);
	gz_same("file", &plain, &gz);
	{
		struct csvin *r = csvin_new();
		struct got x = { 0 };
		if (r == NULL)
			abort();
		read_into(r, "gz_text.csv.gz", &x);
		CHECK(x.st == CSVIN_OK && csvin_read_stat(r)->st_size == (off_t)zlen,
		    "identity: the %zu bytes stored, not %lld", zlen,
		    (long long)csvin_read_stat(r)->st_size);
		got_free(&x);
		csvin_free(r);
	}
	for (size_t k = 0; k < sizeof(slices) / sizeof(slices[0]); k++) {
		struct csvin *r = csvin_new();
		struct got m = { 0 };
		if (r == NULL)
			abort();
		m.st = csvin_read_mem(r, "mem.csv.gz", z, zlen, slices[k], collect, &m, m.err,
		    sizeof(m.err));
		gz_same("memory", &plain, &m);
		got_free(&m);
		csvin_free(r);
	}
	got_free(&plain);
	got_free(&gz);
	free(text);
	free(z);
}

/* `cat a.gz b.gz` is one text, as gzip(1) reads it; line numbers run on. */
static void
test_gzip_members_concatenated(void)
{
	size_t len, cut, za, zb;
	char *text = gz_text(3000, &len), *a, *b, *both;
	struct got plain = { 0 }, g = { 0 };

	cut = (size_t)(strchr(text + len / 2, '\n') - text) + 1;
	a = gz_of(text, cut, &za);
	b = gz_of(text + cut, len - cut, &zb);
	if ((both = malloc(za + zb)) == NULL)
		abort();
	memcpy(both, a, za);
	memcpy(both + za, b, zb);
	put_file("gz_plain.csv", text, len);
	put_file("gz_members.csv.gz", both, za + zb);
	read_file("gz_plain.csv", &plain, 0);
	read_file("gz_members.csv.gz", &g, 0);
	gz_same("two members", &plain, &g);
	got_free(&plain);
	got_free(&g);
	free(text);
	free(a);
	free(b);
	free(both);
}

/*
 * Damaged, truncated, trailing garbage, empty: CSVIN_BAD_ARCHIVE.  A damaged
 * block may inflate to garbage before its check fails (the caller drops every
 * row of the file); a truncated one never hands on its cut last line.
 */
static void
gz_bad(const char *name, const char *data, size_t n, const char *why, size_t max_rows)
{
	int damaged = strstr(why, "damaged") != NULL;

	struct got g = { 0 };

	put_file(name, data, n);
	read_file(name, &g, 0);
	CHECK(g.st == CSVIN_BAD_ARCHIVE, "%s: st %d (%s)", name, g.st, g.err);
	CHECK(strstr(g.err, why) != NULL && strstr(g.err, name) != NULL, "%s: err '%s'", name,
	    g.err);
	CHECK(g.n <= max_rows, "%s: %zu rows of at most %zu", name, g.n, max_rows);
	for (size_t i = 0; i < g.n && !damaged; i++)
		CHECK(g.rows[i].nfields == 6, "%s: row %zu (line %lld) is partial: %d fields",
		    name, i, (long long)g.rows[i].line, g.rows[i].nfields);
	got_free(&g);
}

static void
test_gzip_damaged_is_bad_archive(void)
{
	size_t len, zlen, nrows = 40000;
	char *text = gz_text(nrows, &len), *z = gz_of(text, len, &zlen), *junk;

	z[zlen * 3 / 4] ^= 0x55;
	z[zlen * 3 / 4 + 1] ^= 0xaa;
	gz_bad("gz_damaged.csv.gz", z, zlen, "damaged gzip", nrows);
	z[zlen * 3 / 4] ^= 0x55;
	z[zlen * 3 / 4 + 1] ^= 0xaa;
	gz_bad("gz_truncated.csv.gz", z, zlen / 2, "truncated gzip", nrows);
	gz_bad("gz_crc.csv.gz", z, zlen - 8, "truncated gzip", nrows);	/* CRC and length cut */
	if ((junk = malloc(zlen + 16)) == NULL)
		abort();
	memcpy(junk, z, zlen);
	memcpy(junk + zlen, "garbage,1,2,3\n\0\0", 16);
	gz_bad("gz_trailing.csv.gz", junk, zlen + 16, "bytes after member 1 are not another member", nrows + 2);
	gz_bad("gz_empty.csv.gz", "", 0, "empty gzip", 0);
	gz_bad("gz_notgzip.csv.gz", text, 4096, "damaged gzip", 0);
	free(junk);
	free(text);
	free(z);
}

/* A 17 MiB line inflated from a few KiB: the record bound holds on the text. */
static void
test_gzip_bomb_bounded(void)
{
	size_t n = 17u * MIB, len, zlen;
	char *text = malloc(n + 256), *z;
	struct got g = { .keep = 64 };
	struct csvin *r = csvin_new();

	if (text == NULL || r == NULL)
		abort();
	len = (size_t)snprintf(text, 256, HEADER "\n");
	memset(text + len, 'a', n);
	len += n;
	len += (size_t)snprintf(text + len, 256, "\n" ROW "\n");
	z = gz_of(text, len, &zlen);
	put_file("gz_bomb.csv.gz", z, zlen);
	read_into(r, "gz_bomb.csv.gz", &g);
	CHECK(g.st == CSVIN_OK && g.n == 2, "st %d rows %zu", g.st, g.n);
	CHECK(g.n == 2 && g.rows[0].nfields == -1 && g.rows[1].nfields == 6 && g.rows[1].line == 3,
	    "the long line oversized, the next row read on line 3");
	CHECK(g.max_mem < 2 * CSVIN_MAX_RECORD + MIB, "memory %zu", g.max_mem);
	got_free(&g);
	csvin_free(r);
	free(text);
	free(z);
}

static void
test_status_names(void)
{
	CHECK(strcmp(csvin_status_name(CSVIN_BAD_HEADER), "bad_header") == 0, "name");
	CHECK(strcmp(csvin_status_name((enum csvin_status)99), "unknown") == 0, "unknown");
}

static void
cleanup(void)
{
	static const char *const names[] = {
		"order.csv", "trim.csv", "extra.csv", "missing.csv", "noheader.csv", "dup.csv",
		"wide.csv", "bom.csv", "bom2.csv", "crlf.csv", "quoted.csv", "stray.csv", "cr.csv",
		"count.csv", "nonl.csv", "nonl2.csv", "open.csv", "empty.csv", "blank.csv",
		"hdr.csv", "hdr2.csv", "nul.csv", "garbage.csv", "fuzz.csv", "edges.csv",
		"abort.csv", "r1.csv", "r2.csv", "r3.csv", "big.csv", "over.csv", "multi.csv",
		"multi2.csv", "bighdr.csv", "edge.csv", "fuzzbig.csv", "stderr.log",
		"gz_plain.csv", "gz_text.csv.gz", "gz_members.csv.gz", "gz_damaged.csv.gz",
		"gz_truncated.csv.gz", "gz_crc.csv.gz", "gz_trailing.csv.gz", "gz_empty.csv.gz",
		"gz_notgzip.csv.gz", "gz_bomb.csv.gz",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (unlinkat(dirfd_tmp, names[i], 0) != 0 && errno != ENOENT)
			perror(names[i]);
	close(dirfd_tmp);
	if (rmdir(tmpdir) != 0)
		perror(tmpdir);
}

int
main(void)
{
	const char *base = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/test_csvin.XXXXXX", base && strlen(base) < 40 ? base : "/tmp");
	if (mkdtemp(tmpdir) == NULL || (dirfd_tmp = open(tmpdir, O_RDONLY | O_DIRECTORY)) < 0) {
		perror(tmpdir);
		return 2;
	}
	unsetenv("JOURNAL_STREAM");	/* plain log lines, whoever runs us */
	log_open("test_csvin", LOG_LVL_INFO);
	RUN(test_header_any_order);
	RUN(test_header_names_trimmed_quoted);
	RUN(test_extra_columns_warn_once);
	RUN(test_missing_column);
	RUN(test_duplicate_column);
	RUN(test_too_many_columns);
	RUN(test_bom);
	RUN(test_crlf);
	RUN(test_quoted_fields);
	RUN(test_stray_quotes_and_spaces);
	RUN(test_lone_cr_is_data);
	RUN(test_short_and_long_records);
	RUN(test_last_line_without_newline);
	RUN(test_open_quote_at_eof);
	RUN(test_empty_files);
	RUN(test_nul_bytes);
	RUN(test_binary_garbage);
	RUN(test_fuzz_fast_path_matches_libcsv);
	RUN(test_read_boundaries);
	RUN(test_not_regular_files);
	RUN(test_callback_abort);
	RUN(test_reader_reused);
	RUN(test_10mb_record_within_limit);
	RUN(test_10mb_record_oversized);
	RUN(test_oversized_multiline);
	RUN(test_oversized_at_line_end);
	RUN(test_fuzz_oversized_matches_libcsv);
	RUN(test_oversized_header);
	RUN(test_gzip_reads_as_its_text);
	RUN(test_gzip_members_concatenated);
	RUN(test_gzip_damaged_is_bad_archive);
	RUN(test_gzip_bomb_bounded);
	RUN(test_status_names);
	cleanup();
	return check_exit();
}
