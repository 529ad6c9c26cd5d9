/*
 * ckpt_format — the bytes of the checkpoint file and of its journal records,
 * both ways: what a checkpoint says (struct ckpt_records) written as text, and
 * text parsed back into it.  Pure: no I/O, no clock, no globals; ckpt.c reads
 * and writes the files, tests/fuzz/fuzz_ckpt.c feeds it bytes directly.
 *
 * The file.  Version 2 is text, one record per line, every line ending in
 * "\n", fields separated by one space:
 *
 *	    evpipe-checkpoint 2
 *	    last_batch <batch id, 0 when fresh>
 *	    max_event_time <microseconds since 1970 | none>
 *	    last_name <name>			absent until a file is committed
 *	    file <batch id> <size> <mtime ns> <dev> <ino> <name>
 *	    file <batch id> <name>		(identity unknown) zero or more, in the order added
 *	    end <number of file lines> <crc32>
 *
 *	last_name is the greatest name (strcmp) ever committed, kept after the
 *	file itself is forgotten: evgen's names sort in creation order, so a name
 *	after it is new and one before it may have been committed and forgotten
 *	(the caller asks the database).  The identity is the file as it was read
 *	(spool_id: size read, mtime, device, inode), so a committed name that now
 *	holds another file is noticed.  Version 1 (no last_name line, file lines
 *	without identity) is still read: its greatest name stands for last_name.
 *
 *	A name is percent-escaped: bytes below 0x21, above 0x7e and '%' become
 *	%XX (upper-case hex), so names with spaces, newlines or UTF-8 survive and
 *	stay one field.  The crc32 (IEEE 802.3, the one zlib and `gzip` use) covers
 *	every byte before the end line and is written as eight lower-case hex
 *	digits; numbers are plain decimal without leading zeros.  Every value has
 *	exactly one spelling, so any change to the file changes what it says.
 *
 *	The reader checks the end line and the checksum first, then every line,
 *	and refuses the whole file on any doubt with the line and what is wrong:
 *	a damaged checkpoint stops evstream rather than loading part of it, which
 *	could load a file twice.
 *
 * A journal record: the batches committed since the file (or the last record)
 * was written,
 *
 *	    batch <last batch id> <max event time | none>
 *	    file ...				the batch's file lines, as above
 *	    end <number of file lines> <crc32 of the record before this line>
 *
 *	Records older than the file's last_batch are skipped (a crash between
 *	rewriting the file and removing the journal).  A bad last record is a
 *	torn append, taken as not written (the database then says what it held);
 *	a bad record before another is damage and refused as above.
 */
#ifndef EVPIPE_CKPT_FORMAT_H
#define EVPIPE_CKPT_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "ckpt_names.h"

#define CKPT_VERSION	2

/* What a checkpoint says. */
struct ckpt_records {
	int64_t		 last_batch;	/* 0 when fresh */
	int64_t		 max_time;	/* EVENT_TIME_NONE when none */
	struct ckpt_names names;	/* in batch order, with last_name */
};

/* Text being written: p[0..len), malloc'ed, grown as needed; the caller frees p. */
struct ckpt_buf {
	char	*p;
	size_t	 len, cap;
};

/*
 * The whole file for rec, into b (replacing what b held; its memory is kept
 * for the next call).  -1 with errno (ENOMEM) if b cannot grow.
 */
int	ckpt_format_file(struct ckpt_buf *b, const struct ckpt_records *rec) MUSTCHECK;

/*
 * One journal record for rec's batches above `since` (the last batch already
 * on disk): their names are the tail of rec->names, which is in batch order.
 * Into b as ckpt_format_file.
 */
int	ckpt_format_record(struct ckpt_buf *b, const struct ckpt_records *rec, int64_t since)
	    MUSTCHECK;

/*
 * The parser's state.  The caller zeroes it before a parse; after one it reads
 * version (the file's) and, after a -1, line (1-based: the line found wrong,
 * or the one missing) and why (what is wrong, a phrase without the file name).
 */
struct ckpt_reader {
	int		 version;
	int		 journal;	/* reading the journal: names may pass last_name */
	int64_t		 min_batch;	/* file lines name batches above this */
	const char	*p, *end;	/* unread part of the lines before the end line */
	size_t		 line;		/* number of the line read last (or missing) */
	const char	*s, *e;		/* that line, without its "\n" */
	char		 why[512];
};

/*
 * Parse a whole file, buf[0..len), into rec, which must be empty (last_batch
 * 0, max_time EVENT_TIME_NONE, names from ckpt_names_init).  0: rec says
 * exactly what the bytes say.  -1: refused (r->line, r->why); rec holds part of
 * it and must only be freed.
 */
int	ckpt_format_parse(struct ckpt_records *rec, const char *buf, size_t len,
	    struct ckpt_reader *r) MUSTCHECK;

/*
 * Parse a journal, buf[0..len), onto rec, which holds the file read before it:
 * each whole record with a later batch is added.  *whole is set to the bytes
 * of the whole records read (less than len: the last record was torn and is
 * not taken).  -1 as ckpt_format_parse.
 */
int	ckpt_format_parse_journal(struct ckpt_records *rec, const char *buf, size_t len,
	    struct ckpt_reader *r, size_t *whole) MUSTCHECK;

#endif
