/*
 * batch — one micro-batch: the files it covers, the rejects in hand, its counters
 * and the bounds it is filtered with.  Its events are never held: each is handed
 * on (to the sink's COPY) as soon as it is read, and the rejects are handed on
 * whenever BATCH_REJECTS_BYTES of them are in hand, so memory is bounded by
 * configuration, not by the size of a batch or of a file.  Arrays grow
 * geometrically and are reused across batches (batch_reset keeps the memory), so
 * the steady state allocates nothing per row.
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
	int64_t reason[REJECT_NREASONS];	/* rejects by reason (late and future included) */
};

/* A file's invalid rows, for the one warning per file the loop gives after a commit. */
struct batch_file_rejects {
	int64_t		 invalid;	/* rows that failed validation */
	int64_t		 first_line;	/* the first of them */
	enum reject_reason first;
};

struct batch {
	int64_t		 id;
	char		**files;	/* names relative to the spool, owned */
	struct spool_id	*ids;		/* each file as it was read (same index as files) */
	struct batch_file_rejects *frej;	/* and its invalid rows (same index) */
	size_t		 nfiles, capfiles;
	struct reject	*rej;
	size_t		 nrej, caprej;
	char		*text;		/* raw lines of rejects, back to back */
	size_t		 textlen, textcap;
	struct batch_counts n;
	int64_t		 watermark_us;	/* the watermark applied; EVENT_TIME_NONE if none */
	int64_t		 future_us;	/* later events are rejected as "future"; INT64_MAX: none */
	int64_t		 max_time_us;	/* max event_time over accepted events + earlier max */
	uint32_t	 future_file;	/* the first "future" reject (when n.future > 0) */
	int64_t		 future_line;
};

/* Rejects in hand past this many bytes of raw text (or BATCH_REJECTS_MAX of them)
 * are handed on in the middle of a file. */
#define BATCH_REJECTS_BYTES	(1024 * 1024)
#define BATCH_REJECTS_MAX	16384

#define BATCH_MUSTCHECK __attribute__((warn_unused_result))

void batch_init(struct batch *b);
void batch_reset(struct batch *b);	/* empty it, keep the memory */
void batch_free(struct batch *b);
int  batch_add_file(struct batch *b, const char *name) BATCH_MUSTCHECK;
int  batch_add_reject(struct batch *b, uint32_t file, int64_t line, enum reject_reason why,
	const char *raw, size_t rawlen) BATCH_MUSTCHECK;
static inline const char *
batch_reject_raw(const struct batch *b, const struct reject *r)
{
	return b->text + r->raw_off;
}
void batch_clear_rejects(struct batch *b);	/* they were handed on; counters stay */

/*
 * Where a file's rows go.  event: each accepted event, at once (0, or -1 to stop
 * reading: the sink failed).  rejects: the rejects in hand are full; hand them on
 * and batch_clear_rejects (0, or -1 to stop).
 */
struct batch_out {
	int	(*event)(void *arg, const struct event *e);
	int	(*rejects)(void *arg, struct batch *b);
	void	*arg;
};

/*
 * Filling a batch from one spool file: every row is validated; a bad row becomes
 * a reject with its reason; a valid row older than b->watermark_us becomes a
 * "late" reject; a valid row later than b->future_us becomes a "future" reject
 * (so one row from a skewed clock can never carry the watermark with it); a valid
 * row whose event_id the dedupe set already holds is counted as a duplicate and
 * dropped; the rest enter the set and go to out->event.
 */
struct csvin;
struct dedupe;
enum batch_file_status {
	BATCH_FILE_OK,		/* rows taken; the file is part of the batch */
	BATCH_FILE_QUARANTINE,	/* unusable as a whole (header, not a regular file): why in err */
	BATCH_FILE_GONE,	/* vanished between listing and reading: nothing to do */
	BATCH_FILE_RETRY,	/* read error, out of memory, no permission: a later batch */
	BATCH_FILE_BROKEN,	/* read error after rows went out: the batch cannot commit */
	BATCH_FILE_CORRUPT,	/* a damaged archive found after rows went out: quarantine it;
				   the batch cannot commit (why in err) */
	BATCH_FILE_STOPPED,	/* out returned -1: the sink's error says why */
};
/*
 * On QUARANTINE, GONE and RETRY nothing of the file went out, and the batch and
 * the dedupe set are exactly as they were before the call.  On BROKEN, CORRUPT and
 * STOPPED rows did go out and the set holds their ids: the caller abandons the batch and
 * rebuilds the set.
 */
enum batch_file_status batch_read_file(struct batch *b, struct csvin *in, struct dedupe *dd,
	const struct batch_out *out, int dirfd, const char *name, char *err, size_t errlen)
	BATCH_MUSTCHECK;

#endif
