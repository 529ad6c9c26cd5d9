/* gz — see include/gz.h. */
#include "gz.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

struct gz_in {
	z_stream	 s;
	int		 in_member;	/* a member started and its end is not seen yet */
	int		 members;	/* members ended so far */
	char		 why[128];
};

int
gz_is_name(const char *name)
{
	size_t n = strlen(name), k = strlen(GZ_SUFFIX);

	return n > k && strcmp(name + n - k, GZ_SUFFIX) == 0;
}

struct gz_in *
gz_in_new(void)
{
	struct gz_in *z = calloc(1, sizeof(*z));

	/* 16 + MAX_WBITS: a gzip wrapper, its header and CRC-32 checked, nothing else. */
	if (z == NULL || inflateInit2(&z->s, 16 + MAX_WBITS) != Z_OK) {
		free(z);
		errno = ENOMEM;
		return NULL;
	}
	return z;
}

void
gz_in_free(struct gz_in *z)
{
	if (z == NULL)
		return;
	(void)inflateEnd(&z->s);
	free(z);
}

void
gz_in_reset(struct gz_in *z)
{
	(void)inflateReset(&z->s);	/* Z_STREAM_ERROR only for a stream never initialised */
	z->in_member = 0;
	z->members = 0;
	z->why[0] = '\0';
}

static enum gz_status
gz_in_corrupt(struct gz_in *z, const char *kind, const char *what)
{
	snprintf(z->why, sizeof(z->why), "%s gzip archive: %s", kind, what);
	return GZ_CORRUPT;
}

/* One inflate call's verdict. */
static enum gz_status
gz_in_check(struct gz_in *z, int rc)
{
	switch (rc) {
	case Z_OK:
	case Z_BUF_ERROR:	/* no progress this call: it needs more input */
		return GZ_OK;
	case Z_STREAM_END:
		z->in_member = 0;
		z->members++;
		return GZ_OK;
	case Z_MEM_ERROR:
		errno = ENOMEM;
		return GZ_NOMEM;
	case Z_NEED_DICT:
		return gz_in_corrupt(z, "damaged", "a member asks for a preset dictionary");
	default:	/* Z_DATA_ERROR: a bad header, block, length or CRC */
		break;
	}
	/* Within a header's 10 bytes of a later member: what follows the last is not one. */
	if (z->members > 0 && z->s.total_in <= 10) {
		char what[96];
		snprintf(what, sizeof(what), "the bytes after member %d are not another member (%s)",
		    z->members, z->s.msg != NULL ? z->s.msg : "bad header");
		return gz_in_corrupt(z, "damaged", what);
	}
	return gz_in_corrupt(z, "damaged", z->s.msg != NULL ? z->s.msg : "invalid data");
}

enum gz_status
gz_in_feed(struct gz_in *z, const void *p, size_t n, char *out, size_t outcap,
    gz_out_fn fn, void *arg)
{
	enum gz_status st;
	size_t made;
	int rc;

	if (n > UINT_MAX || outcap > UINT_MAX)
		return gz_in_corrupt(z, "unread", "a read larger than zlib takes");
	z->s.next_in = (Bytef *)(uintptr_t)p;	/* zlib's API is not const-correct */
	z->s.avail_in = (uInt)n;
	for (;;) {
		if (!z->in_member) {
			if (z->s.avail_in == 0)
				return GZ_OK;
			/* More bytes after a member: another member, or garbage (a bad header). */
			if (z->members > 0)
				(void)inflateReset(&z->s);
			z->in_member = 1;
		}
		z->s.next_out = (Bytef *)out;
		z->s.avail_out = (uInt)outcap;
		rc = inflate(&z->s, Z_NO_FLUSH);
		made = outcap - z->s.avail_out;
		if (made > 0 && fn(arg, out, made) != 0)
			return GZ_ABORTED;
		if ((st = gz_in_check(z, rc)) != GZ_OK)
			return st;
		/* All input taken and the output not full: nothing more until the next read. */
		if (z->in_member && z->s.avail_in == 0 && z->s.avail_out > 0)
			return GZ_OK;
	}
}

enum gz_status
gz_in_end(struct gz_in *z)
{
	if (z->in_member)
		return gz_in_corrupt(z, "truncated", "the file ends inside a member");
	if (z->members == 0)
		return gz_in_corrupt(z, "empty", "no member at all");
	return GZ_OK;
}

const char *
gz_in_error(const struct gz_in *z)
{
	return z->why;
}

int
gz_compress(const void *in, size_t n, char **out, size_t *outlen, size_t *outcap)
{
	z_stream s;
	uLong bound;
	char *p;
	int rc;

	memset(&s, 0, sizeof(s));
	if (n > UINT_MAX || deflateInit2(&s, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS,
	    8, Z_DEFAULT_STRATEGY) != Z_OK) {
		errno = ENOMEM;
		return -1;
	}
	bound = deflateBound(&s, (uLong)n);
	if (bound > *outcap) {
		if ((p = realloc(*out, bound)) == NULL) {
			(void)deflateEnd(&s);
			errno = ENOMEM;
			return -1;
		}
		*out = p;
		*outcap = bound;
	}
	s.next_in = (Bytef *)(uintptr_t)in;
	s.avail_in = (uInt)n;
	s.next_out = (Bytef *)*out;
	s.avail_out = (uInt)(*outcap > UINT_MAX ? UINT_MAX : *outcap);
	rc = deflate(&s, Z_FINISH);	/* deflateBound's room: one call ends the member */
	*outlen = s.total_out;
	(void)deflateEnd(&s);
	if (rc != Z_STREAM_END) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}
