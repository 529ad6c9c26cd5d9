/*
 * fuzz_csv — libFuzzer target for the CSV -> event path: csvin (the reader),
 * validate_row and ts_parse, and batch_read_file (watermark, dedupe, undo).
 *
 * The promise under test: whatever bytes a spool file holds, reading it never
 * crashes, never hangs, never leaks, and every record comes out once, as a row
 * that validate turns into an event or a reason.  The oracles, beyond the
 * sanitizers:
 *
 *   - Differential reading.  Each input is read five ways that must give the
 *     same rows, byte for byte, and the same status and message: through
 *     csvin_read from a real file (the daemon's path), from memory in
 *     read-size, 1-byte and 7-byte pieces (where read(2) splits a file must not
 *     matter), and with the quote-free fast path turned off (everything through
 *     libcsv: the fast path may only be faster).
 *   - The gzip path.  The input gzip-compressed and read as "in.csv.gz" (from a
 *     file, and from memory in 7-byte pieces) gives exactly the rows of the
 *     text.  The input itself read as a .gz (hostile archive bytes: most are
 *     refused at the header, the seed corpus holds real archives to mutate)
 *     reads the same from a file and from memory in 1-byte and read-size
 *     pieces, ends OK, BAD_HEADER or BAD_ARCHIVE, and batch_read_file hands
 *     nothing on from an archive it refuses before any row (QUARANTINE).
 *   - Accepted events round-trip: the UUID prints back as the field (case
 *     aside), the time formats and parses back to the same instant, and every
 *     value is in its column's range.
 *   - ts_parse agrees with a slow reference built on timegm(3) for every field
 *     it accepts.
 *   - batch_read_file's counters add up (rows = valid + rejected, valid = late +
 *     dup + events handed on, rejects by reason and per file match), every event
 *     handed on is inside the batch's bounds, a second reading of the same file
 *     finds every on-time event a duplicate, a refused file leaves the batch as
 *     it was and hands nothing on, and an out that says stop ends the file at
 *     once (BATCH_FILE_STOPPED) with exactly the events handed on in the set.
 *
 * Built with -DCSVIN_SMALL_SIZES (see csvin.h): the reader's sizes scaled down,
 * so inputs of a few hundred bytes reach the oversized-record paths.  The input
 * is written to a file in FUZZ_TMPDIR (default /dev/shm when writable, else
 * TMPDIR, else /tmp), removed at exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "csvin.h"
#include "dedupe.h"
#include "event.h"
#include "gz.h"
#include "log.h"
#include "validate.h"

#define FUZZ_TARGET	"fuzz_csv"
#include "fuzz.h"

#define FUZZ_NAME	"in.csv"
#define FUZZ_GZ_NAME	"in.csv.gz"	/* the input compressed */
#define FUZZ_RAW_GZ	"raw.csv.gz"	/* the input as if it were an archive */
#define FUZZ_NVARIANTS	10		/* 0-4 the text, 5-6 compressed, 7-9 raw as .gz */

struct trace {
	char	*p;
	size_t	 len, cap;
};

struct fuzz {
	char		 dir[256];
	int		 dirfd;
	struct csvin	*rd;
	struct dedupe	*dd;
	struct batch	 b;
	struct trace	 t[FUZZ_NVARIANTS];
	int64_t		 nev;		/* events handed to out->event in this reading */
	int64_t		 handed;	/* rejects handed to out->rejects in this reading */
	int64_t		 stop_at;	/* out->event says stop at this event (0: never) */
	char		*gz;		/* the input compressed */
	size_t		 gzlen, gzcap;
};

/* libFuzzer's entry points take no context: the harness's state is this one struct. */
static struct fuzz F = { .dirfd = -1 };

/* --- recording rows ------------------------------------------------------------- */

static void
trace_add(struct trace *t, const void *p, size_t n)
{
	if (t->len + n > t->cap) {
		size_t cap = t->cap ? t->cap : 4096;
		while (cap < t->len + n)
			cap *= 2;
		FUZZ_ASSERT((t->p = realloc(t->p, cap)) != NULL, "out of memory");
		t->cap = cap;
	}
	memcpy(t->p + t->len, p, n);
	t->len += n;
}

static void
trace_num(struct trace *t, int64_t v)
{
	trace_add(t, &v, sizeof(v));
}

static void
trace_bytes(struct trace *t, const char *s, size_t n)
{
	trace_num(t, (int64_t)n);
	trace_add(t, s, n);
}

/* --- checks on one row ------------------------------------------------------------ */

static int64_t
ref_digits(const char *s, int n)
{
	int64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

/*
 * The instant s names, computed the slow way (timegm for the calendar), for a
 * string ts_parse accepted, so its layout is known to be right.
 */
static int64_t
ref_ts(const char *s, size_t len)
{
	struct tm tm = { 0 };
	int64_t us = 0, off = 0;
	size_t i = 19, nfrac = 0;
	time_t t;

	tm.tm_year = (int)ref_digits(s, 4) - 1900;
	tm.tm_mon = (int)ref_digits(s + 5, 2) - 1;
	tm.tm_mday = (int)ref_digits(s + 8, 2);
	tm.tm_hour = (int)ref_digits(s + 11, 2);
	tm.tm_min = (int)ref_digits(s + 14, 2);
	tm.tm_sec = (int)ref_digits(s + 17, 2);
	t = timegm(&tm);
	if (i < len && s[i] == '.')
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, nfrac++)
			us = us * 10 + (s[i] - '0');
	for (; nfrac < 6; nfrac++)
		us *= 10;
	if (i < len && s[i] != 'Z') {
		off = ref_digits(s + i + 1, 2) * 3600;
		if (len - i == 6)
			off += ref_digits(s + i + 4, 2) * 60;
		else if (len - i == 5)
			off += ref_digits(s + i + 3, 2) * 60;
		if (s[i] == '-')
			off = -off;
	}
	return ((int64_t)t - off) * 1000000 + us;
}

static void
check_ts(const char *s, size_t len)
{
	char back[32];
	int64_t us, again;
	int y;

	if (ts_parse(s, len, &us) != 0)
		return;
	FUZZ_ASSERT(us == ref_ts(s, len), "ts_parse('%.*s') = %lld, timegm says %lld",
	    (int)len, s, (long long)us, (long long)ref_ts(s, len));
	ts_format(us, back);
	/* An offset can carry year 1 into year 0, or 9999 into 10000: not accepted. */
	y = (int)ref_digits(back, 4);
	if (back[0] == '-' || back[4] != '-' || y < 1)
		return;
	FUZZ_ASSERT(ts_parse(back, strlen(back), &again) == 0 && again == us,
	    "'%.*s' -> %s does not parse back", (int)len, s, back);
}

static int
hex_eq(char a, char b)
{
	return (a | 0x20) == (b | 0x20);
}

static void
check_event(const struct csv_row *row, const struct event *ev)
{
	static const char hex[] = "0123456789abcdef";
	const char *id = row->field[COL_EVENT_ID];
	char text[36];
	size_t k = 0;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			text[k++] = '-';
		text[k++] = hex[ev->id[i] >> 4];
		text[k++] = hex[ev->id[i] & 15];
	}
	FUZZ_ASSERT(row->len[COL_EVENT_ID] == 36, "accepted event_id of length %zu",
	    row->len[COL_EVENT_ID]);
	for (k = 0; k < 36; k++)
		FUZZ_ASSERT(hex_eq(text[k], id[k]), "event_id %.36s parsed as %.36s", id, text);
	FUZZ_ASSERT(ev->user_id > 0 && ev->product_id > 0, "ids %d %d", ev->user_id,
	    ev->product_id);
	FUZZ_ASSERT(ev->type <= EVENT_PURCHASE, "type %u", ev->type);
	FUZZ_ASSERT(ev->price_cents >= 0 && ev->price_cents < INT64_C(1000000000000),
	    "price %lld cents", (long long)ev->price_cents);
	FUZZ_ASSERT(ev->time_us != EVENT_TIME_NONE, "time is the empty marker");
}

static int
on_row(void *arg, const struct csv_row *row)
{
	struct trace *t = arg;
	struct event ev;
	enum reject_reason why;

	FUZZ_ASSERT(row->line >= 1 && row->nheader >= EVENT_NCOLS, "line %lld nheader %d",
	    (long long)row->line, row->nheader);
	trace_num(t, row->line);
	trace_num(t, row->nfields);
	trace_num(t, row->nheader);
	for (int c = 0; c < EVENT_NCOLS; c++) {
		FUZZ_ASSERT(row->field[c][row->len[c]] == '\0', "field %d not terminated", c);
		trace_bytes(t, row->field[c], row->len[c]);
	}
	trace_bytes(t, row->raw, row->rawlen);
	why = validate_row(row, &ev);
	FUZZ_ASSERT(why < REJECT_LATE, "validate_row gave reason %d", why);
	trace_num(t, why);
	if (t != &F.t[0])
		return 0;	/* the other readings must give the same rows: compared later */
	if (why == REJECT_NONE)
		check_event(row, &ev);
	for (int c = 0; c < EVENT_NCOLS; c++)
		check_ts(row->field[c], row->len[c]);
	return 0;
}

/* --- the five readings -------------------------------------------------------------- */

/* The status and the message, less the file's name that begins it. */
static void
trace_end(struct trace *t, const char *name, enum csvin_status st, const char *err)
{
	size_t k = strlen(name);

	FUZZ_ASSERT(st == CSVIN_OK || st == CSVIN_BAD_HEADER ||
	    (st == CSVIN_BAD_ARCHIVE && gz_is_name(name)), "reading %s: %s: %s", name,
	    csvin_status_name(st), err);
	trace_num(t, st);
	if (st == CSVIN_OK)
		return;
	if (strncmp(err, name, k) == 0 && strncmp(err + k, ": ", 2) == 0)
		err += k + 2;
	trace_bytes(t, err, strlen(err));
}

static void
read_file(struct trace *t, const char *name)
{
	char err[512];

	trace_end(t, name, csvin_read(F.rd, F.dirfd, name, on_row, t, err, sizeof(err)), err);
}

static void
read_mem(struct trace *t, const char *name, const void *data, size_t size, size_t slice)
{
	char err[512];

	trace_end(t, name, csvin_read_mem(F.rd, name, data, size, slice, on_row, t, err,
	    sizeof(err)), err);
}

static uint64_t
fnv(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

static void
compare_traces(void)
{
	static const char *const how[FUZZ_NVARIANTS] = {
		"file", "memory, read-size pieces", "memory, 1-byte pieces",
		"memory, 7-byte pieces", "memory, libcsv only", "gzip file",
		"gzip, memory, 7-byte pieces", "raw as gzip, file",
		"raw as gzip, memory, 1-byte pieces", "raw as gzip, memory, read-size pieces",
	};

	for (int v = 1; v < FUZZ_NVARIANTS; v++) {
		int ref = v < 7 ? 0 : 7;	/* the raw-as-gzip readings agree among themselves */
		size_t n = F.t[ref].len < F.t[v].len ? F.t[ref].len : F.t[v].len, at = 0;
		if (v == ref || (F.t[ref].len == F.t[v].len && memcmp(F.t[ref].p, F.t[v].p, n) == 0))
			continue;
		while (at < n && F.t[ref].p[at] == F.t[v].p[at])
			at++;
		FUZZ_ASSERT(0, "reading '%s' differs from reading '%s' at trace byte %zu "
		    "(lengths %zu, %zu)", how[v], how[ref], at, F.t[ref].len, F.t[v].len);
	}
}

/* --- the batch ---------------------------------------------------------------------- */

/* The batch's out: the harness holds no events, it counts and checks them. */
static int
out_event(void *arg, const struct event *e)
{
	const struct batch *b = arg;

	FUZZ_ASSERT(e->type <= EVENT_PURCHASE && e->user_id > 0 && e->product_id > 0,
	    "event handed on with type %u user %d product %d", e->type, e->user_id,
	    e->product_id);
	FUZZ_ASSERT((b->watermark_us == EVENT_TIME_NONE || e->time_us >= b->watermark_us) &&
	    e->time_us <= b->future_us, "event at %lld handed on outside [%lld, %lld]",
	    (long long)e->time_us, (long long)b->watermark_us, (long long)b->future_us);
	F.nev++;
	return F.nev == F.stop_at ? -1 : 0;
}

static int
out_rejects(void *arg, struct batch *b)
{
	(void)arg;
	FUZZ_ASSERT(b->textlen >= BATCH_REJECTS_BYTES || b->nrej >= BATCH_REJECTS_MAX,
	    "rejects handed on before they were full (%zu, %zu bytes)", b->nrej, b->textlen);
	F.handed += (int64_t)b->nrej;
	batch_clear_rejects(b);
	return 0;
}

static enum batch_file_status
batch_once(const char *name, int64_t watermark, int64_t future, int64_t stop_at, char *err,
    size_t errlen)
{
	const struct batch_out out = { out_event, out_rejects, &F.b };

	batch_reset(&F.b);
	F.b.id = 1;
	F.b.watermark_us = watermark;
	F.b.future_us = future;
	F.nev = F.handed = 0;
	F.stop_at = stop_at;
	return batch_read_file(&F.b, F.rd, F.dd, &out, F.dirfd, name, err, errlen);
}

/* The counters of one good reading, against each other and against what went out. */
static void
check_counts(void)
{
	const struct batch_counts *n = &F.b.n;
	int64_t by_reason = 0;

	for (int r = 0; r < REJECT_NREASONS; r++)
		by_reason += n->reason[r];
	FUZZ_ASSERT(n->rows == n->valid + n->rejected && n->valid == n->late + n->dup + F.nev &&
	    (int64_t)F.b.nrej + F.handed == n->rejected + n->late &&
	    dedupe_count(F.dd) == (size_t)F.nev,
	    "counters: rows %lld valid %lld rejected %lld late %lld dup %lld events %lld "
	    "rejects %zu+%lld set %zu", (long long)n->rows, (long long)n->valid,
	    (long long)n->rejected, (long long)n->late, (long long)n->dup, (long long)F.nev,
	    F.b.nrej, (long long)F.handed, dedupe_count(F.dd));
	FUZZ_ASSERT(by_reason == n->rejected + n->late && n->reason[REJECT_NONE] == 0 &&
	    n->reason[REJECT_FUTURE] == n->future &&
	    n->reason[REJECT_LATE] + n->reason[REJECT_FUTURE] == n->late,
	    "by reason: %lld in all, %lld late, %lld future (rejected %lld late %lld future %lld)",
	    (long long)by_reason, (long long)n->reason[REJECT_LATE],
	    (long long)n->reason[REJECT_FUTURE], (long long)n->rejected, (long long)n->late,
	    (long long)n->future);
	FUZZ_ASSERT(F.b.nfiles == 1 && F.b.frej[0].invalid == n->rejected &&
	    (n->rejected == 0 || (F.b.frej[0].first_line >= 1 &&
	    reject_is_invalid(F.b.frej[0].first) && F.b.frej[0].first != REJECT_NONE)),
	    "file rejects: %lld invalid (rejected %lld), first line %lld reason %d",
	    (long long)F.b.frej[0].invalid, (long long)n->rejected,
	    (long long)F.b.frej[0].first_line, F.b.frej[0].first);
}

/* An out that says stop at the k-th event: the file ends there, and says so. */
static void
check_stop(int64_t watermark, int64_t future, int64_t k)
{
	enum batch_file_status st;
	char err[512];

	dedupe_clear(F.dd);
	st = batch_once(FUZZ_NAME, watermark, future, k, err, sizeof(err));
	FUZZ_ASSERT(st == BATCH_FILE_STOPPED && F.nev == k && dedupe_count(F.dd) == (size_t)k,
	    "stop at event %lld: status %d, %lld events handed on, %zu in the set",
	    (long long)k, st, (long long)F.nev, dedupe_count(F.dd));
}

static void
check_batch(uint64_t h)
{
	int64_t watermark = h & 2 ? EVENT_TIME_NONE : INT64_C(1767225600000000);
	/* A future bound on some inputs: 2030-01-01, or none. */
	int64_t future = h & 4 ? INT64_C(1893456000000000) : INT64_MAX;
	enum batch_file_status st;
	struct batch_counts n;
	int64_t nev;
	char err[512];

	dedupe_clear(F.dd);
	st = batch_once(FUZZ_NAME, watermark, future, 0, err, sizeof(err));
	FUZZ_ASSERT(st == BATCH_FILE_OK || st == BATCH_FILE_QUARANTINE, "batch_read_file: %d: %s",
	    st, err);
	if (st != BATCH_FILE_OK) {
		FUZZ_ASSERT(F.b.nfiles == 0 && F.nev == 0 && F.handed == 0 && F.b.nrej == 0 &&
		    F.b.n.rows == 0 && dedupe_count(F.dd) == 0,
		    "a refused file left rows in the batch or handed some on");
		return;
	}
	check_counts();
	n = F.b.n;
	nev = F.nev;
	/* The same file again: every event it had is now a duplicate. */
	FUZZ_ASSERT(batch_once(FUZZ_NAME, watermark, future, 0, err, sizeof(err)) == BATCH_FILE_OK,
	    "second read: %s", err);
	FUZZ_ASSERT(F.nev == 0 && F.b.n.dup == n.dup + nev && F.b.n.rows == n.rows,
	    "second read: %lld events, %lld duplicates (first: %lld events, %lld duplicates)",
	    (long long)F.nev, (long long)F.b.n.dup, (long long)nev, (long long)n.dup);
	if (nev > 0 && (h & 8))
		check_stop(watermark, future, 1 + (int64_t)((h >> 20) % (uint64_t)nev));
}

/*
 * Hostile archive bytes through the batch: refused before any row, the batch is
 * as it was; refused after rows went out (CORRUPT), the file is still the
 * batch's (the caller rolls it back).
 */
static void
check_raw_gz_batch(void)
{
	enum batch_file_status st;
	char err[512];

	dedupe_clear(F.dd);
	st = batch_once(FUZZ_RAW_GZ, EVENT_TIME_NONE, INT64_MAX, 0, err, sizeof(err));
	FUZZ_ASSERT(st == BATCH_FILE_OK || st == BATCH_FILE_QUARANTINE || st == BATCH_FILE_CORRUPT,
	    "batch_read_file of an archive: %d: %s", st, err);
	if (st == BATCH_FILE_QUARANTINE)
		FUZZ_ASSERT(F.b.nfiles == 0 && F.nev == 0 && F.handed == 0 && F.b.n.rows == 0 &&
		    dedupe_count(F.dd) == 0, "a refused archive left rows in the batch");
	if (st == BATCH_FILE_CORRUPT)
		FUZZ_ASSERT(F.b.nfiles == 1 && strstr(err, "gzip") != NULL,
		    "a damaged archive: %zu files, '%s'", F.b.nfiles, err);
}

/* --- libFuzzer ---------------------------------------------------------------------- */

static void
fuzz_cleanup(void)
{
	if (F.dirfd >= 0) {
		(void)unlinkat(F.dirfd, FUZZ_NAME, 0);
		(void)unlinkat(F.dirfd, FUZZ_GZ_NAME, 0);
		(void)unlinkat(F.dirfd, FUZZ_RAW_GZ, 0);
		(void)close(F.dirfd);
		(void)rmdir(F.dir);
	}
	batch_free(&F.b);
	csvin_free(F.rd);
	dedupe_free(F.dd);
	for (int v = 0; v < FUZZ_NVARIANTS; v++)
		free(F.t[v].p);
	free(F.gz);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_open("fuzz_csv", LOG_LVL_ERROR);	/* the reader's warnings would drown the stats */
	F.dirfd = fuzz_scratch_dir(F.dir, sizeof(F.dir));
	FUZZ_ASSERT((F.rd = csvin_new()) != NULL && (F.dd = dedupe_new(0)) != NULL, "out of memory");
	batch_init(&F.b);
	atexit(fuzz_cleanup);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t h = fnv(data, size);

	/* One bound per input, the same for every reading: the default, or a small one. */
	csvin_set_max_record(F.rd, h & 1 ? CSVIN_MAX_RECORD :
	    CSVIN_MIN_RECORD + (size_t)(h >> 8) % (CSVIN_MAX_RECORD - CSVIN_MIN_RECORD));
	for (int v = 0; v < FUZZ_NVARIANTS; v++)
		F.t[v].len = 0;
	fuzz_write_file(F.dirfd, FUZZ_NAME, data, size);
	csvin_set_fast_path(F.rd, 1);
	read_file(&F.t[0], FUZZ_NAME);
	read_mem(&F.t[1], FUZZ_NAME, data, size, 0);
	read_mem(&F.t[2], FUZZ_NAME, data, size, 1);
	read_mem(&F.t[3], FUZZ_NAME, data, size, 7);
	csvin_set_fast_path(F.rd, 0);
	read_mem(&F.t[4], FUZZ_NAME, data, size, 0);
	csvin_set_fast_path(F.rd, 1);
	FUZZ_ASSERT(gz_compress(data, size, &F.gz, &F.gzlen, &F.gzcap) == 0, "gz_compress");
	fuzz_write_file(F.dirfd, FUZZ_GZ_NAME, F.gz, F.gzlen);
	read_file(&F.t[5], FUZZ_GZ_NAME);
	read_mem(&F.t[6], FUZZ_GZ_NAME, F.gz, F.gzlen, 7);
	fuzz_write_file(F.dirfd, FUZZ_RAW_GZ, data, size);
	read_file(&F.t[7], FUZZ_RAW_GZ);
	read_mem(&F.t[8], FUZZ_RAW_GZ, data, size, 1);
	read_mem(&F.t[9], FUZZ_RAW_GZ, data, size, 0);
	compare_traces();
	check_batch(h);
	check_raw_gz_batch();
	return 0;
}
