/* sink_format — see include/sink_format.h. */
#include "sink_format.h"

#include <string.h>

#include "util.h"

#define PG_EPOCH_US	INT64_C(946684800000000)	/* 2000-01-01, binary timestamps' zero */
#define NUMERIC_NBASE	10000
#define NUMERIC_NEG	0x4000

/* |v| without the overflow of -INT64_MIN. */
static uint64_t
sink_format_abs(int64_t v)
{
	return v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
}

size_t
sink_format_int(char *out, int64_t v)
{
	size_t n = 0;

	if (v < 0)
		out[n++] = '-';
	return n + util_put_uint(out + n, sink_format_abs(v), 1);
}

size_t
sink_format_time(char *out, int64_t us)
{
	struct util_tm tm;
	char *p = out;
	int bc;

	util_time_split(us, &tm);
	if ((bc = tm.year <= 0))
		tm.year = 1 - tm.year;	/* PostgreSQL, like ISO 8601 minus one: 0 is 1 BC */
	p += util_put_uint(p, (uint64_t)tm.year, 4);
	p = util_put_time_rest(p, &tm);
	memcpy(p, "+00", 3);
	p += 3;
	if (bc) {
		memcpy(p, " BC", 3);
		p += 3;
	}
	return (size_t)(p - out);
}

/* Unicode 15, table 3-7 (well-formed UTF-8), which is also what PostgreSQL accepts. */
int
sink_format_utf8_seq(const uint8_t *s, size_t len)
{
	uint8_t c = s[0], lo = 0x80, hi = 0xbf;
	int need;

	if (c >= 0x01 && c <= 0x7f)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		need = 1;
	else if (c >= 0xe0 && c <= 0xef) {
		need = 2;
		if (c == 0xe0)
			lo = 0xa0;	/* overlong */
		else if (c == 0xed)
			hi = 0x9f;	/* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3;
		if (c == 0xf0)
			lo = 0x90;	/* overlong */
		else if (c == 0xf4)
			hi = 0x8f;	/* above U+10FFFF */
	} else
		return -1;	/* NUL, continuation, C0, C1, F5..FF */
	for (int i = 1; i <= need; i++) {
		if ((size_t)i >= len || s[i] < lo || s[i] > hi)
			return -i;
		lo = 0x80;
		hi = 0xbf;
	}
	return need + 1;
}

/*
 * The one loop behind the three text formatters: ASCII that needs no escape is
 * copied at once (the common case), `esc` maps the bytes that need a backslash,
 * and anything else goes through the validator.
 */
static size_t
sink_format_text(char *out, const char *in, size_t len, const char esc[128])
{
	const uint8_t *s = (const uint8_t *)in;
	char *p = out;
	size_t i = 0;
	int n;

	while (i < len) {
		uint8_t c = s[i];
		if (c >= 0x01 && c < 0x80) {
			if (esc[c]) {
				*p++ = '\\';
				*p++ = esc[c];
			} else
				*p++ = (char)c;
			i++;
			continue;
		}
		if ((n = sink_format_utf8_seq(s + i, len - i)) > 0) {
			memcpy(p, s + i, (size_t)n);
			p += n;
			i += (size_t)n;
		} else {
			memcpy(p, "\xef\xbf\xbd", 3);	/* U+FFFD */
			p += 3;
			i += (size_t)-n;
		}
	}
	return (size_t)(p - out);
}

static const char sink_format_esc_none[128];
static const char sink_format_esc_copy[128] = {
	['\\'] = '\\', ['\t'] = 't', ['\n'] = 'n', ['\r'] = 'r',
};
static const char sink_format_esc_array[128] = {
	['\\'] = '\\', ['"'] = '"',
};

size_t
sink_format_utf8(char *out, const char *s, size_t len)
{
	return sink_format_text(out, s, len, sink_format_esc_none);
}

size_t
sink_format_copy_text(char *out, const char *s, size_t len)
{
	return sink_format_text(out, s, len, sink_format_esc_copy);
}

size_t
sink_format_array_elem(char *out, const char *s, size_t len)
{
	size_t n = 0;

	out[n++] = '"';
	n += sink_format_text(out + n, s, len, sink_format_esc_array);
	out[n++] = '"';
	return n;
}

size_t
sink_format_bin_header(char *out)
{
	memcpy(out, SINK_FORMAT_BIN_SIGNATURE, 11);
	sink_format_be32(out + 11, 0);	/* flags: no OIDs */
	sink_format_be32(out + 15, 0);	/* header extension: none */
	return SINK_FORMAT_BIN_HEADER_LEN;
}

size_t
sink_format_numeric_cents(char *out, int64_t cents)
{
	uint64_t a = sink_format_abs(cents), whole = a / 100;
	uint16_t group[6], digit[6];
	int ngroup = 0, n = 0, weight;

	for (; whole > 0; whole /= NUMERIC_NBASE)
		group[ngroup++] = (uint16_t)(whole % NUMERIC_NBASE);
	for (int i = ngroup - 1; i >= 0; i--)	/* most significant first */
		digit[n++] = group[i];
	weight = ngroup - 1;			/* -1: the first digit is the fraction's */
	digit[n++] = (uint16_t)(a % 100 * 100);	/* .45 is 4500 ten-thousandths */
	while (n > 0 && digit[n - 1] == 0)
		n--;
	if (n == 0)
		weight = 0;			/* zero: numeric_send's spelling */
	out += sink_format_be16(out, (uint16_t)n);
	out += sink_format_be16(out, (uint16_t)(int16_t)weight);
	out += sink_format_be16(out, n > 0 && cents < 0 ? NUMERIC_NEG : 0);
	out += sink_format_be16(out, 2);	/* dscale */
	for (int i = 0; i < n; i++)
		out += sink_format_be16(out, digit[i]);
	return 8 + 2 * (size_t)n;
}

size_t
sink_format_bin_time(char *out, int64_t us)
{
	int64_t pg;

	if (__builtin_sub_overflow(us, PG_EPOCH_US, &pg))
		pg = INT64_MIN + 1;
	return sink_format_be64(out, (uint64_t)pg);
}
