/*
 * gz — gzip spool files: the one place zlib is used.
 *
 * Reading (evstream, through csvin): a spool file named "*.csv.gz" is inflated
 * as it is read, a piece at a time, never whole: memory is zlib's 32 KiB window
 * plus the caller's buffers, whatever the file's size or ratio.  Several gzip
 * members one after the other (what `cat a.gz b.gz` and some producers make)
 * read as one text, as gzip(1) reads them.  Anything else is an error that will
 * not go away by reading again: a damaged block or check value, bytes after the
 * last member that do not start another, or a file that ends inside a member
 * (truncated, or still being written in place).  The caller quarantines such a
 * file; what it delivered before the error must not be kept.
 *
 * Writing (evgen --compress): a whole file's text becomes one gzip member.
 */
#ifndef EVPIPE_GZ_H
#define EVPIPE_GZ_H

#include <stddef.h>

#define GZ_MUSTCHECK __attribute__((warn_unused_result))
#define GZ_SUFFIX ".gz"

enum gz_status {
	GZ_OK = 0,
	GZ_CORRUPT = 1,		/* damaged, truncated or trailing garbage: gz_error says which */
	GZ_NOMEM = 2,		/* errno = ENOMEM */
	GZ_ABORTED = 3,		/* the output callback returned non-zero */
};

/* 1 if name ends in ".gz": the spool reads it through gz_in. */
int gz_is_name(const char *name);

/* --- reading ------------------------------------------------------------------------- */

struct gz_in;

/* Text out: n > 0 bytes, valid during the call.  0 to go on, non-zero to stop. */
typedef int (*gz_out_fn)(void *arg, const char *p, size_t n);

struct gz_in	*gz_in_new(void) GZ_MUSTCHECK;	/* NULL on ENOMEM */
void		 gz_in_free(struct gz_in *z);
void		 gz_in_reset(struct gz_in *z);	/* a new file starts */

/*
 * Feed n compressed bytes.  The text comes out through fn in pieces of at most
 * outcap bytes, written into out (the caller's buffer, reused).
 */
enum gz_status	 gz_in_feed(struct gz_in *z, const void *p, size_t n, char *out, size_t outcap,
		    gz_out_fn fn, void *arg) GZ_MUSTCHECK;

/* The input ended: GZ_OK when it ended at the end of a member, else GZ_CORRUPT. */
enum gz_status	 gz_in_end(struct gz_in *z) GZ_MUSTCHECK;

/*
 * After GZ_CORRUPT: what was wrong, as "damaged gzip archive: <zlib's words>",
 * "truncated gzip archive: ...", "empty gzip archive: ...".
 */
const char	*gz_in_error(const struct gz_in *z);

/* --- writing ------------------------------------------------------------------------- */

/*
 * Compress in[0..n) into one gzip member in *out (grown as needed, *outcap its
 * size; reused across calls), *outlen its length.  -1 with errno = ENOMEM.
 */
int gz_compress(const void *in, size_t n, char **out, size_t *outlen, size_t *outcap)
	GZ_MUSTCHECK;

#endif
