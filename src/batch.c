/* batch — see include/batch.h. */
#include "batch.h"

#include <errno.h>
#include <stdio.h>

#include "csvin.h"
#include "dedupe.h"
#include "validate.h"
#include <stdlib.h>
#include <string.h>

/* Grow *arr so it holds at least `need` elements of `size` bytes; doubles. */
static int
batch_grow(void *arrp, size_t *cap, size_t need, size_t size)
{
	void **arr = arrp;
	size_t ncap = *cap ? *cap : 64;
	void *p;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	if ((p = realloc(*arr, ncap * size)) == NULL)
		return -1;
	*arr = p;
	*cap = ncap;
	return 0;
}

void
batch_init(struct batch *b)
{
	memset(b, 0, sizeof(*b));
	b->watermark_us = b->max_time_us = EVENT_TIME_NONE;
	b->future_us = INT64_MAX;
}

void
batch_reset(struct batch *b)
{
	for (size_t i = 0; i < b->nfiles; i++)
		free(b->files[i]);
	b->nfiles = b->nrej = b->textlen = 0;
	memset(&b->n, 0, sizeof(b->n));
	b->id = 0;
	b->watermark_us = b->max_time_us = EVENT_TIME_NONE;
	b->future_us = INT64_MAX;
}

void
batch_free(struct batch *b)
{
	batch_reset(b);
	free(b->files);
	free(b->ids);
	free(b->frej);
	free(b->rej);
	free(b->text);
	batch_init(b);
}

int
batch_add_file(struct batch *b, const char *name)
{
	size_t idcap = b->capfiles, rejcap = b->capfiles;
	char *dup;

	/* ids and frej grow with files, to the same capacity. */
	if (batch_grow(&b->ids, &idcap, b->nfiles + 1, sizeof(*b->ids)) < 0 ||
	    batch_grow(&b->frej, &rejcap, b->nfiles + 1, sizeof(*b->frej)) < 0 ||
	    batch_grow(&b->files, &b->capfiles, b->nfiles + 1, sizeof(*b->files)) < 0 ||
	    (dup = strdup(name)) == NULL)
		return -1;
	memset(&b->ids[b->nfiles], 0, sizeof(*b->ids));
	memset(&b->frej[b->nfiles], 0, sizeof(*b->frej));
	b->files[b->nfiles++] = dup;
	return 0;
}

void
batch_clear_rejects(struct batch *b)
{
	b->nrej = b->textlen = 0;
}

int
batch_add_reject(struct batch *b, uint32_t file, int64_t line, enum reject_reason why,
    const char *raw, size_t rawlen)
{
	struct reject *r;

	if (rawlen > UINT32_MAX) {
		errno = EOVERFLOW;
		return -1;
	}
	if (batch_grow(&b->rej, &b->caprej, b->nrej + 1, sizeof(*b->rej)) < 0 ||
	    batch_grow(&b->text, &b->textcap, b->textlen + rawlen + 1, 1) < 0)
		return -1;
	r = &b->rej[b->nrej++];
	b->n.reason[why]++;
	r->file = file;
	r->line = line;
	r->reason = why;
	r->raw_off = b->textlen;
	r->raw_len = (uint32_t)rawlen;
	memcpy(b->text + b->textlen, raw, rawlen);
	b->textlen += rawlen;
	b->text[b->textlen++] = '\0';
	return 0;
}

struct batch_fill {
	struct batch		*b;
	struct dedupe		*dd;
	const struct batch_out	*out;
	uint32_t		 file;
	int			 sent;		/* rows of this file went out */
	int			 out_failed;	/* and out said stop */
};

/* A reject into the batch; handed on when the rejects in hand are full. */
static int
batch_reject(struct batch_fill *f, const struct csv_row *row, enum reject_reason why)
{
	struct batch *b = f->b;
	struct batch_file_rejects *fr = &b->frej[f->file];

	if (batch_add_reject(b, f->file, row->line, why, row->raw, row->rawlen) < 0)
		return -1;
	if (reject_is_invalid(why) && fr->invalid++ == 0) {
		fr->first_line = row->line;
		fr->first = why;
	}
	if (why == REJECT_FUTURE && b->n.future == 1) {
		b->future_file = f->file;
		b->future_line = row->line;
	}
	if (b->textlen < BATCH_REJECTS_BYTES && b->nrej < BATCH_REJECTS_MAX)
		return 0;
	f->sent = 1;
	if (f->out->rejects(f->out->arg, b) < 0) {
		f->out_failed = 1;
		return -1;
	}
	return 0;
}

/* One row's fate: reject (invalid, late or future), duplicate, or event. */
static int
batch_take_row(void *arg, const struct csv_row *row)
{
	struct batch_fill *f = arg;
	struct batch *b = f->b;
	enum reject_reason why;
	struct event ev;
	int fresh;

	b->n.rows++;
	if ((why = validate_row(row, &ev)) != REJECT_NONE) {
		b->n.rejected++;
		return batch_reject(f, row, why);
	}
	b->n.valid++;
	/* As in Spark, the watermark comes from earlier batches only. */
	if (b->watermark_us != EVENT_TIME_NONE && ev.time_us < b->watermark_us) {
		b->n.late++;
		return batch_reject(f, row, REJECT_LATE);
	}
	/* The bound was computed once per batch: one compare per row. */
	if (ev.time_us > b->future_us) {
		b->n.late++;
		b->n.future++;
		return batch_reject(f, row, REJECT_FUTURE);
	}
	if ((fresh = dedupe_insert(f->dd, ev.id, ev.time_us)) < 0)
		return -1;
	if (!fresh) {
		b->n.dup++;
		return 0;
	}
	f->sent = 1;
	if (f->out->event(f->out->arg, &ev) < 0) {
		f->out_failed = 1;
		return -1;
	}
	if (ev.time_us > b->max_time_us)
		b->max_time_us = ev.time_us;
	return 0;
}

/*
 * Transient errors are retried; an error that will not go away by itself
 * quarantines.  A permission is an operator's to fix (a producer's umask, a
 * chown), and a file loaded after its successors could find its rows late: the
 * file waits, and the stream with it, warned at every trigger.
 */
static enum batch_file_status
batch_io_fate(int err)
{
	switch (err) {
	case ENOENT:
		return BATCH_FILE_GONE;
	case EIO: case ENOMEM: case EMFILE: case ENFILE: case EINTR: case EAGAIN: case ENOSPC:
	case EACCES: case EPERM:
		return BATCH_FILE_RETRY;
	default:
		return BATCH_FILE_QUARANTINE;
	}
}

enum batch_file_status
batch_read_file(struct batch *b, struct csvin *in, struct dedupe *dd,
    const struct batch_out *out, int dirfd, const char *name, char *err, size_t errlen)
{
	const struct batch saved = *b;	/* sizes and counters, to undo a failed file */
	struct batch_fill f = { b, dd, out, (uint32_t)b->nfiles, 0, 0 };
	enum csvin_status st;
	int read_errno;

	if (batch_add_file(b, name) < 0) {
		snprintf(err, errlen, "out of memory");
		return BATCH_FILE_RETRY;
	}
	st = csvin_read(in, dirfd, name, batch_take_row, &f, err, errlen);
	read_errno = errno;
	if (st == CSVIN_OK) {
		spool_id_from_stat(csvin_read_stat(in), &b->ids[f.file]);
		return BATCH_FILE_OK;
	}
	if (f.out_failed)
		return BATCH_FILE_STOPPED;
	if (st == CSVIN_ABORTED)
		snprintf(err, errlen, "out of memory while reading");
	if (f.sent)	/* the file stays in the batch, which cannot commit */
		return st == CSVIN_BAD_ARCHIVE ? BATCH_FILE_CORRUPT : BATCH_FILE_BROKEN;
	free(b->files[--b->nfiles]);
	b->nrej = saved.nrej;
	b->textlen = saved.textlen;
	b->n = saved.n;
	b->max_time_us = saved.max_time_us;
	switch (st) {
	case CSVIN_BAD_HEADER:
	case CSVIN_NOT_REGULAR:
	case CSVIN_BAD_ARCHIVE:
		return BATCH_FILE_QUARANTINE;
	case CSVIN_IO:
		return batch_io_fate(read_errno);
	default:
		return BATCH_FILE_RETRY;
	}
}
