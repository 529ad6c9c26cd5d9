/*
 * fuzz_ckpt — libFuzzer target for the checkpoint's format (ckpt_format: bytes
 * to records and back, no I/O; ckpt.c only reads and writes the files around it).
 *
 * The promise under test: a damaged or truncated checkpoint is refused with
 * the line and what is wrong (ckpt_open turns that into "DIR/checkpoint: line
 * N: why" and evstream stops), never loaded in part, and whatever is accepted
 * means exactly what its bytes say.  A silent skip, e.g. a file line dropped,
 * would make evstream load that file twice.
 *
 * Each input is parsed as a checkpoint file twice: as it is, and with its end
 * line made right (file count and CRC-32 recomputed over the bytes before it),
 * so that mutations get past the checksum into the line parser.  Then:
 *
 *   - refused: a line from 1 to the input's lines + 1 and a reason are given;
 *   - accepted: written back as a file (what ckpt_rewrite writes), it is exactly
 *     the bytes read (every value has one spelling, so an accepted file can only
 *     mean one thing; a name or a line lost on the way in would show here).  A
 *     version-1 file is written back as version 2, which must then read back and
 *     write to the same bytes;
 *   - accepted: every shorter prefix of it is refused (all of them for short
 *     inputs, a sample for long ones): truncation is never silent.
 *
 * The input is also parsed as a journal after an empty file: the whole records
 * taken end at a newline within the input, and what they say, written as a
 * file, reads back and writes to the same bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt_format.h"
#include "event.h"

#define FUZZ_TARGET	"fuzz_ckpt"
#include "fuzz.h"

#define FUZZ_ALL_PREFIXES 512	/* inputs up to this size: every prefix is tried */

struct fuzz {
	char	*buf;		/* the input with its end line fixed */
	size_t	 cap;
	struct ckpt_buf back;	/* what the records write back */
	struct ckpt_buf again;	/* and what that writes back in turn */
};

/* libFuzzer's entry points take no context: the harness's state is this one struct. */
static struct fuzz F;

/* CRC-32/IEEE, bit by bit: an independent spelling of the one ckpt_format.c uses. */
static uint32_t
crc32_ref(const char *p, size_t n)
{
	uint32_t c = 0xffffffff;

	for (size_t i = 0; i < n; i++) {
		c ^= (unsigned char)p[i];
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0xedb88320 : c >> 1;
	}
	return ~c;
}

static void
grow(char **p, size_t *cap, size_t need)
{
	if (need <= *cap)
		return;
	FUZZ_ASSERT((*p = realloc(*p, need)) != NULL, "out of memory");
	*cap = need;
}

/* An empty checkpoint, as ckpt_open starts from. */
static void
records_init(struct ckpt_records *rec)
{
	rec->last_batch = 0;
	rec->max_time = EVENT_TIME_NONE;
	FUZZ_ASSERT(ckpt_names_init(&rec->names) == 0, "out of memory");
}

static size_t
count_lines(const char *data, size_t size)
{
	size_t n = 0;

	for (size_t i = 0; i < size; i++)
		n += data[i] == '\n';
	return n;
}

/* A refusal must say where and why: the line is one of the input's, or the one missing. */
static void
check_refusal(const struct ckpt_reader *r, const char *data, size_t size)
{
	FUZZ_ASSERT(r->line >= 1 && r->line <= count_lines(data, size) + 1,
	    "refused at line %zu of an input of %zu lines: %s", r->line,
	    count_lines(data, size), r->why);
	FUZZ_ASSERT(r->why[0] != '\0', "refused at line %zu without a reason", r->line);
}

/* What rec says, written as a file into out, parses back and writes to the same bytes. */
static void
check_stable(const struct ckpt_records *rec, struct ckpt_buf *out, const char *what)
{
	struct ckpt_records back;
	struct ckpt_reader r;

	FUZZ_ASSERT(ckpt_format_file(out, rec) == 0, "write: out of memory");
	records_init(&back);
	memset(&r, 0, sizeof(r));
	FUZZ_ASSERT(ckpt_format_parse(&back, out->p, out->len, &r) == 0,
	    "%s, written as a file, is refused: line %zu: %s", what, r.line, r.why);
	FUZZ_ASSERT(ckpt_format_file(&F.again, &back) == 0, "write: out of memory");
	FUZZ_ASSERT(F.again.len == out->len && memcmp(F.again.p, out->p, out->len) == 0,
	    "%s, written as a file, reads back differently", what);
	ckpt_names_free(&back.names);
}

/* 1 if data[0..size) is accepted as a checkpoint file, 0 if refused as it must be. */
static int
try_load(const char *data, size_t size)
{
	static const char v1[] = "evpipe-checkpoint 1\n";
	struct ckpt_records rec;
	struct ckpt_reader r;
	int ok;

	records_init(&rec);
	memset(&r, 0, sizeof(r));
	if (!(ok = ckpt_format_parse(&rec, data, size, &r) == 0))
		check_refusal(&r, data, size);
	else if (size >= sizeof(v1) - 1 && memcmp(data, v1, sizeof(v1) - 1) == 0)
		/* Upgraded: the version-2 bytes are what must be stable now. */
		check_stable(&rec, &F.back, "a version-1 file");
	else {
		FUZZ_ASSERT(ckpt_format_file(&F.back, &rec) == 0, "write: out of memory");
		FUZZ_ASSERT(F.back.len == size && memcmp(F.back.p, data, size) == 0,
		    "accepted, but written back differently (%zu bytes in)", size);
	}
	ckpt_names_free(&rec.names);
	return ok;
}

static void
check_prefixes(const char *data, size_t size)
{
	size_t step = size <= FUZZ_ALL_PREFIXES ? 1 : size / 64;

	for (size_t k = 0; k < size; k += step)
		FUZZ_ASSERT(!try_load(data, k), "a prefix of %zu of %zu bytes was accepted", k,
		    size);
	FUZZ_ASSERT(!try_load(data, size - 1), "the input minus its last byte was accepted");
}

/* data[0..size) as a journal after an empty file (ckpt_open: no file, a journal). */
static void
try_journal(const char *data, size_t size)
{
	struct ckpt_records rec;
	struct ckpt_reader r;
	size_t whole = SIZE_MAX;

	records_init(&rec);
	memset(&r, 0, sizeof(r));
	if (ckpt_format_parse_journal(&rec, data, size, &r, &whole) < 0)
		check_refusal(&r, data, size);
	else {
		FUZZ_ASSERT(whole <= size && (whole == 0 || data[whole - 1] == '\n'),
		    "whole records end at %zu of %zu bytes, not after a newline", whole, size);
		check_stable(&rec, &F.back, "a journal");
	}
	ckpt_names_free(&rec.names);
}

/*
 * The input with a correct end line: its last line, if it starts with "end ",
 * is replaced; otherwise one is added (after a newline, if the input lacks
 * one).  The count is the lines after the three header lines and a
 * version-2 last_name line.
 */
static size_t
fix_end(const uint8_t *data, size_t size)
{
	size_t body = size, last = size, nl = 0;

	if (last > 0 && data[last - 1] == '\n')
		last--;
	while (last > 0 && data[last - 1] != '\n')
		last--;
	if (size - last >= 4 && memcmp(data + last, "end ", 4) == 0)
		body = last;
	grow(&F.buf, &F.cap, body + 64);
	memcpy(F.buf, data, body);
	if (body > 0 && F.buf[body - 1] != '\n')
		F.buf[body++] = '\n';
	for (size_t i = 0; i < body; i++) {
		nl += F.buf[i] == '\n';
		if ((i == 0 || F.buf[i - 1] == '\n') && body - i > 10 &&
		    memcmp(F.buf + i, "last_name ", 10) == 0)
			nl--;
	}
	return body + (size_t)snprintf(F.buf + body, 48, "end %zu %08x\n", nl > 3 ? nl - 3 : 0,
	    (unsigned)crc32_ref(F.buf, body));
}

static void
fuzz_cleanup(void)
{
	free(F.buf);
	free(F.back.p);
	free(F.again.p);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	atexit(fuzz_cleanup);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n;

	if (try_load((const char *)data, size))
		check_prefixes((const char *)data, size);
	try_journal((const char *)data, size);
	n = fix_end(data, size);
	if (try_load(F.buf, n))
		check_prefixes(F.buf, n);
	return 0;
}
