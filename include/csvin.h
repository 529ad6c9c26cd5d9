/*
 * csvin — read one spool file: CSV with a header, columns matched by name.
 *
 * The first non-empty record is the header.  Its names, trimmed of surrounding
 * spaces and tabs (and a UTF-8 BOM before it), are matched exactly against
 * event_col_names; order does not matter.  A missing or duplicated schema column
 * makes the file CSVIN_BAD_HEADER; an unknown column is ignored, with one warning
 * per file naming all of them.  Every later non-empty record is handed to the
 * callback as a struct csv_row; judging it is validate's job, not ours.
 *
 * CSV dialect (libcsv 3.0.3, non-strict): ',' separates, '"' quotes, "" is a
 * quote inside quotes, a quoted field may hold ',' and newlines.  A stray quote is
 * data.  Nothing is trimmed from data fields (" 12" stays " 12").  Records end at
 * LF; a CR right before the LF (or before end of file) belongs to the line ending,
 * any other CR is data, also inside quoted fields.  A quoted newline written as
 * CRLF reaches the field as LF; `raw` keeps the bytes as read.  Empty lines
 * between records are skipped but counted.  NUL bytes and invalid UTF-8 are data.
 * A last record without a final newline is still a record.  A quoted field still
 * open at end of file ends there (libcsv's behaviour), with a warning.
 *
 * A name ending in ".gz" is a gzip archive of such a file (gz.h): it is inflated
 * as it is read, so every bound below holds for its text, and line numbers are
 * the text's.  A damaged or truncated archive is CSVIN_BAD_ARCHIVE, found only
 * where the damage is: the rows before it were delivered already.
 *
 * Records without any '"' are split on ',' by csvin itself: for such a record
 * that is exactly what libcsv computes, at several times its speed.  Every record
 * with a quote, and every line of a multi-line record, goes through libcsv.
 * csvin_set_fast_path(r, 0) sends everything through libcsv (the tests compare).
 *
 * Oversized records: a record longer than the reader's max_record bytes
 * (CSVIN_MAX_RECORD unless set) is not parsed.  Its end is found by a quote-aware
 * scan with libcsv's rules, and it is reported once, as a row with nfields = -1,
 * no field values ("" everywhere), and only its first CSVIN_OVERSIZED_RAW bytes
 * in raw; validate rejects it as column_count.  Reading goes on with the next
 * record.  An oversized header makes the file CSVIN_BAD_HEADER.  So whatever
 * the input, each of a reader's three growable buffers (raw record, row values,
 * libcsv's field) stays below 2 * max_record, and any that grew past 1 MiB is
 * released when csvin_read returns.
 *
 * Allocation: the read buffer, the raw-record buffer, the row buffer and libcsv's
 * field buffer are reused across records and files; a steady stream of ordinary
 * records allocates nothing.
 */
#ifndef EVPIPE_CSVIN_H
#define EVPIPE_CSVIN_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"

#define CSVIN_MUSTCHECK __attribute__((warn_unused_result))

#ifndef CSVIN_SMALL_SIZES
#define CSVIN_MAX_RECORD	(16u * 1024 * 1024)	/* default bound on one record */
#define CSVIN_MIN_RECORD	(1u * 1024 * 1024)	/* csvin_set_max_record's floor */
#define CSVIN_OVERSIZED_RAW	4096u			/* raw bytes kept of an oversized record */
#define CSVIN_READ_SIZE		(256u * 1024)		/* one read(2) */
#else
/*
 * The fuzz build (tests/fuzz/): the same sizes scaled down, so inputs of a few
 * hundred bytes reach the long-record paths.  What the code relies on holds in
 * both: a read is smaller than the smallest bound, and what is left of the bound
 * after a read still holds the raw bytes kept, READ_SIZE + OVERSIZED_RAW <= MIN_RECORD.
 */
#define CSVIN_MAX_RECORD	1024u
#define CSVIN_MIN_RECORD	256u
#define CSVIN_OVERSIZED_RAW	128u
#define CSVIN_READ_SIZE		64u
#endif
#define CSVIN_MAX_COLUMNS	4096			/* a wider header is CSVIN_BAD_HEADER */

struct csv_row {
	int64_t		 line;			/* 1-based physical line where the record starts */
	const char	*field[EVENT_NCOLS];	/* NUL-terminated values of the schema columns, in
						   enum order ("" if the record is too short) */
	size_t		 len[EVENT_NCOLS];	/* may be less than strlen() finds: NULs are data */
	int		 nfields;		/* fields in this record; -1: oversized, not parsed */
	int		 nheader;		/* fields in the header */
	const char	*raw;			/* the record's bytes as read, without the final */
	size_t		 rawlen;		/* CR/LF; not NUL-terminated */
};

/*
 * Called once per data record.  The row and everything it points to are valid
 * only during the call.  Return 0 to go on, -1 to stop reading (e.g. ENOMEM).
 */
typedef int (*csvin_row_fn)(void *arg, const struct csv_row *row);

enum csvin_status {
	CSVIN_OK = 0,
	CSVIN_IO = 1,		/* open/read failed: errno set, err filled; the file may be retried */
	CSVIN_BAD_HEADER = 2,	/* no usable header: err names what; the caller quarantines */
	CSVIN_ABORTED = 3,	/* the callback returned non-zero */
	CSVIN_NOMEM = 4,	/* errno = ENOMEM */
	CSVIN_NOT_REGULAR = 5,	/* a symlink, directory, FIFO, device...: quarantine, never read */
	CSVIN_BAD_ARCHIVE = 6,	/* a .gz that is damaged or truncated: quarantine; rows may
				   have been delivered before it was found, drop them */
};

struct csvin;

struct csvin	*csvin_new(void) CSVIN_MUSTCHECK;	/* NULL on ENOMEM */
void		 csvin_free(struct csvin *r);

/*
 * Read `name` (relative to dirfd; AT_FDCWD works) from its first byte to EOF,
 * calling fn for each data record.  It is opened O_RDONLY | O_NOFOLLOW |
 * O_NONBLOCK | O_CLOEXEC, so a symlink is refused and a FIFO cannot block us;
 * anything fstat does not call a regular file is CSVIN_NOT_REGULAR.
 * On any status but CSVIN_OK, err holds one line naming the file and what went
 * wrong.  Rows delivered before a failure stay delivered: a caller that retries
 * the file after CSVIN_IO must drop what it collected from the failed attempt.
 */
enum csvin_status csvin_read(struct csvin *r, int dirfd, const char *name,
    csvin_row_fn fn, void *arg, char *err, size_t errlen) CSVIN_MUSTCHECK;

/*
 * After csvin_read returned CSVIN_OK: fstat of the file it read, taken at its
 * end of file, with st_size set to the bytes read.
 */
struct stat;
const struct stat *csvin_read_stat(const struct csvin *r);

/*
 * The same reader over len bytes in memory, named `name` in messages, handed to
 * the parser in pieces of `slice` bytes as successive read(2)s of a file would
 * hand them (0, or anything above the reader's read size, means its read size).
 * Where the pieces split the input must change nothing: the fuzzer
 * (tests/fuzz/fuzz_csv.c) and the tests compare.  Never CSVIN_IO or
 * CSVIN_NOT_REGULAR.
 */
enum csvin_status csvin_read_mem(struct csvin *r, const char *name, const void *buf, size_t len,
    size_t slice, csvin_row_fn fn, void *arg, char *err, size_t errlen) CSVIN_MUSTCHECK;

const char	*csvin_status_name(enum csvin_status st);

/* Bound one record to max bytes (clamped to at least CSVIN_MIN_RECORD). */
void		 csvin_set_max_record(struct csvin *r, size_t max);

/* 0: parse every record with libcsv (slower; for tests and comparisons). */
void		 csvin_set_fast_path(struct csvin *r, int on);

/* Bytes the reader holds in buffers now: for tests that check the memory bound. */
size_t		 csvin_memory(const struct csvin *r);

#endif
