/*
 * batch — one micro-batch in memory: the files it covers, the events that will be
 * written, the rejects that will be recorded, and its counters.  The loop fills
 * it, the sink writes it in one transaction, the checkpoint records its files.
 * Arrays grow geometrically and are reused across batches (batch_reset keeps the
 * memory), so the steady state allocates nothing per row.
 */
#ifndef EVPIPE_BATCH_H
#define EVPIPE_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "spool.h"

struct reject {
	uint32_t	file;		/* index into batch.files */
	uint32_t	raw_len;
	size_t		raw_off;	/* into batch.text */
	int64_t		line;		/* 1-based line where the record starts */
	enum reject_reason reason;
};

struct batch_counts {
	int64_t rows;		/* data records read */
	int64_t valid;		/* passed validation */
	int64_t late;		/* valid but outside the window: older than the watermark,
				 * or one of `future` (the batch log's `late` counts both) */
	int64_t future;		/* valid but after b->future_us: a producer's clock is wrong */
	int64_t dup;		/* valid, on time, event_id already seen */
	int64_t rejected;	/* failed validation */
	int64_t written;	/* rows the database inserted (set by the sink) */
};

struct batch {
	int64_t		 id;
	char		**files;	/* names relative to the spool, owned */
	struct spool_id	*ids;		/* each file as it was read (same index as files) */
	size_t		 nfiles, capfiles;
	struct event	*ev;
	size_t		 nev, capev;
	struct reject	*rej;
	size_t		 nrej, caprej;
	char		*text;		/* raw lines of rejects, back to back */
	size_t		 textlen, textcap;
	struct batch_counts n;
	int64_t		 watermark_us;	/* the watermark applied; EVENT_TIME_NONE if none */
	int64_t		 future_us;	/* later events are rejected as "future"; INT64_MAX: none */
	int64_t		 max_time_us;	/* max event_time over accepted events + earlier max */
};

#define BATCH_MUSTCHECK __attribute__((warn_unused_result))

void batch_init(struct batch *b);
void batch_reset(struct batch *b);	/* empty it, keep the memory */
void batch_free(struct batch *b);
int  batch_add_file(struct batch *b, const char *name) BATCH_MUSTCHECK;
struct event *batch_add_event(struct batch *b) BATCH_MUSTCHECK;	/* NULL on ENOMEM */
int  batch_add_reject(struct batch *b, uint32_t file, int64_t line, enum reject_reason why,
	const char *raw, size_t rawlen) BATCH_MUSTCHECK;
static inline const char *
batch_reject_raw(const struct batch *b, const struct reject *r)
{
	return b->text + r->raw_off;
}

/*
 * Filling a batch from one spool file: every row is validated; a bad row becomes
 * a reject with its reason; a valid row older than b->watermark_us becomes a
 * "late" reject; a valid row later than b->future_us becomes a "future" reject
 * (so one row from a skewed clock can never carry the watermark with it); a valid
 * row whose event_id the dedupe set already holds is
 * counted as a duplicate and dropped; the rest become events (and enter the set).
 */
struct csvin;
struct dedupe;
enum batch_file_status {
	BATCH_FILE_OK,		/* rows taken; the file is part of the batch */
	BATCH_FILE_QUARANTINE,	/* unusable as a whole (header, not a regular file): why in err */
	BATCH_FILE_GONE,	/* vanished between listing and reading: nothing to do */
	BATCH_FILE_RETRY,	/* read error or out of memory: leave it for a later batch */
};
/*
 * On anything but BATCH_FILE_OK the batch and the dedupe set are left exactly as
 * they were before the call (rows taken from the file so far are undone).
 */
enum batch_file_status batch_read_file(struct batch *b, struct csvin *in, struct dedupe *dd,
	int dirfd, const char *name, char *err, size_t errlen) BATCH_MUSTCHECK;

#endif
