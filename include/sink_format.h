/*
 * sink_format — the bytes the sink sends to PostgreSQL, formatted by hand.
 *
 * COPY's text format is parsed by the server column by column, so the client's
 * only job is to print values exactly and cheaply: these functions write into a
 * caller's buffer, allocate nothing, call no snprintf and no gmtime, and return
 * how many bytes they wrote (no NUL terminator unless said).  They are pure, so
 * tests/unit/test_sink_format.c checks them without a database.
 *
 * Every byte string that ends up in a text column (raw lines, file names) is
 * repaired as UTF-8 on the way: the database is UTF8, and one invalid byte would
 * make the server reject the whole COPY, i.e. the whole batch, forever.  Invalid input is replaced, not
 * dropped, following Unicode's "maximal subpart" practice (the same output as
 * Python's bytes.decode("utf-8", "replace")); NUL becomes U+FFFD too, since a
 * text value cannot hold it.
 */
#ifndef EVPIPE_SINK_FORMAT_H
#define EVPIPE_SINK_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#define SINK_FORMAT_INT_MAX	20	/* "-9223372036854775808" */
/* "290309-12-21 19:59:05.224192+00 BC" (INT64_MIN) is the widest an int64 prints. */
#define SINK_FORMAT_TIME_MAX	40
/* One input byte becomes at most 3 output bytes (U+FFFD), an escape is 2. */
#define SINK_FORMAT_TEXT_MAX(len)	((len) * 3)

/* A signed decimal integer. */
size_t sink_format_int(char *out, int64_t v);

/*
 * Microseconds since 1970-01-01 UTC as a timestamptz literal PostgreSQL reads
 * under any DateStyle and TimeZone: "YYYY-MM-DD HH:MM:SS.ffffff+00", proleptic
 * Gregorian, years before 1 written as PostgreSQL writes them ("0001-... BC" is
 * year 0), years past 9999 with more digits.  Every int64 prints; the server
 * rejects what is outside its range (about 4714 BC .. 294276 AD).
 */
size_t sink_format_time(char *out, int64_t us);

/*
 * Length of the valid UTF-8 sequence at s[0..len) (1..4), or, when s does not
 * start a valid sequence, minus the length of its maximal invalid subpart (the
 * bytes one U+FFFD replaces, -1..-3).  len must be > 0.  NUL counts as invalid.
 */
int sink_format_utf8_seq(const uint8_t *s, size_t len);

/* Copy s[0..len) to out replacing invalid UTF-8 and NUL with U+FFFD.  out holds
 * SINK_FORMAT_TEXT_MAX(len). */
size_t sink_format_utf8(char *out, const char *s, size_t len);

/*
 * A value for COPY's text format: as sink_format_utf8, and backslash, tab,
 * newline and carriage return escaped, so the value can never end its field or
 * row early.  out holds SINK_FORMAT_TEXT_MAX(len).
 */
size_t sink_format_copy_text(char *out, const char *s, size_t len);

/*
 * One element of a text[] literal: as sink_format_utf8, always double-quoted,
 * with '"' and '\' backslash-escaped.  out holds SINK_FORMAT_TEXT_MAX(len) + 2.
 */
size_t sink_format_array_elem(char *out, const char *s, size_t len);

/*
 * COPY's binary format: the server reads each value with the type's recv
 * function, so it parses no text at all (a tenth of the server's CPU in a load
 * of the events table).  Integers go in network byte order.
 */
#define SINK_FORMAT_BIN_SIGNATURE	"PGCOPY\n\377\r\n\0"	/* 11 bytes */
#define SINK_FORMAT_BIN_HEADER_LEN	19	/* signature, flags, header extension length */
/* ndigits, weight, sign, dscale, then at most 6 base-10000 digits (|INT64_MIN| cents). */
#define SINK_FORMAT_NUMERIC_MAX	20

static inline size_t
sink_format_be16(char *out, uint16_t v)
{
	out[0] = (char)(v >> 8);
	out[1] = (char)v;
	return 2;
}

static inline size_t
sink_format_be32(char *out, uint32_t v)
{
	sink_format_be16(out, (uint16_t)(v >> 16));
	sink_format_be16(out + 2, (uint16_t)v);
	return 4;
}

static inline size_t
sink_format_be64(char *out, uint64_t v)
{
	sink_format_be32(out, (uint32_t)(v >> 32));
	sink_format_be32(out + 4, (uint32_t)v);
	return 8;
}

/* The binary COPY header (no OIDs, no extension): SINK_FORMAT_BIN_HEADER_LEN bytes. */
size_t sink_format_bin_header(char *out);

/*
 * Cents as a binary numeric with dscale 2, as numeric_send writes it: base-10000
 * digits, no leading or trailing zero digits, zero as no digits at all.
 */
size_t sink_format_numeric_cents(char *out, int64_t cents);

/*
 * Microseconds since 1970 as a binary timestamptz: microseconds since 2000, 8
 * bytes.  An instant too early to shift is sent as INT64_MIN + 1, which the
 * server refuses as out of range; INT64_MIN itself would mean -infinity.
 */
size_t sink_format_bin_time(char *out, int64_t us);

#endif
