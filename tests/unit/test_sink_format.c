/*
 * test_sink_format — the bytes the sink sends are exact: integers and timestamps
 * (1969, leap days, BC, year 9999 and beyond, the int64 extremes), binary
 * numerics, timestamps and header as the server's send functions write them,
 * and text that is always valid UTF-8 and can never break out of its COPY field
 * or array element.  No database.
 */
#include <iconv.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "sink_format.h"
#include "util.h"

/* Format with fn into a NUL-terminated static buffer, for comparisons. */
#define FMT(call) (fmt_buf[(call)] = '\0', fmt_buf)
static char fmt_buf[128];	/* small: check.h copies it into a 512-byte message */

static int
str_eq(const char *got, const char *want)
{
	return strcmp(got, want) == 0;
}

static void
integers_print_like_printf(void)
{
	static const int64_t v[] = { 0, 1, 9, 10, 99, 100, 101, 12345, -1, -10, 2147483647,
	    INT64_MAX, INT64_MIN, INT64_MIN + 1 };
	char want[32];

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		snprintf(want, sizeof(want), "%lld", (long long)v[i]);
		CHECK(str_eq(FMT(sink_format_int(fmt_buf, v[i])), want), "%s != %s", fmt_buf, want);
	}
	CHECK(sink_format_int(fmt_buf, INT64_MIN) == SINK_FORMAT_INT_MAX, "widest");
}

static void
timestamps_known_instants(void)
{
	static const struct { int64_t us; const char *s; } t[] = {
		{ 0, "1970-01-01 00:00:00.000000+00" },
		{ 1, "1970-01-01 00:00:00.000001+00" },
		{ -1, "1969-12-31 23:59:59.999999+00" },
		{ -1000000, "1969-12-31 23:59:59.000000+00" },
		{ -86400000000, "1969-12-31 00:00:00.000000+00" },
		{ 951782400000000, "2000-02-29 00:00:00.000000+00" },
		{ 1700000000123456, "2023-11-14 22:13:20.123456+00" },
		{ -2203891200000000, "1900-03-01 00:00:00.000000+00" },
		{ -2203891200000001, "1900-02-28 23:59:59.999999+00" },
		{ 253402300799999999, "9999-12-31 23:59:59.999999+00" },
		{ 253402300800000000, "10000-01-01 00:00:00.000000+00" },
		{ -62135596800000000, "0001-01-01 00:00:00.000000+00" },
		{ -62135596800000001, "0001-12-31 23:59:59.999999+00 BC" },
		{ -62167219200000000, "0001-01-01 00:00:00.000000+00 BC" },
		{ -62162121600000000, "0001-02-29 00:00:00.000000+00 BC" },	/* 1 BC is leap */
		{ -62198755200000000, "0002-01-01 00:00:00.000000+00 BC" },
		{ INT64_MAX, "294247-01-10 04:00:54.775807+00" },
		{ INT64_MIN, "290309-12-21 19:59:05.224192+00 BC" },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		CHECK(str_eq(FMT(sink_format_time(fmt_buf, t[i].us)), t[i].s), "%lld: %s != %s",
		    (long long)t[i].us, fmt_buf, t[i].s);
	CHECK(sink_format_time(fmt_buf, INT64_MIN) <= SINK_FORMAT_TIME_MAX, "widest");
}

/* Against glibc's gmtime for a spread of instants in years 1..9999. */
static void
timestamps_match_gmtime(void)
{
	uint64_t x = 88172645463325252u;
	char want[64];
	struct tm tm;

	for (int i = 0; i < 200000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;	/* xorshift64 */
		int64_t us = -62135596800000000 + (int64_t)(x % 315537897600000000u);
		time_t t = (time_t)(us / 1000000 - (us % 1000000 < 0));
		if (gmtime_r(&t, &tm) == NULL) {
			CHECK(0, "gmtime_r failed");
			return;
		}
		snprintf(want, sizeof(want), "%04d-%02d-%02d %02d:%02d:%02d.%06lld+00",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		    (long long)(((us % 1000000) + 1000000) % 1000000));
		CHECK(str_eq(FMT(sink_format_time(fmt_buf, us)), want), "%lld: %s != %s",
		    (long long)us, fmt_buf, want);
		if (check_current_failed)
			return;
	}
}

static int
is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Day by day from 6000 BC to 12000 AD, counted the slow way. */
static void
civil_matches_day_by_day_count(void)
{
	static const unsigned mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int64_t y0 = -6000, day = 0, y, yy;
	unsigned m, d;

	for (yy = 1970; yy > y0; yy--)		/* day number of y0-01-01 */
		day -= 365 + is_leap(yy - 1);
	for (yy = y0; yy < 12000; yy++)
		for (unsigned mm = 1; mm <= 12; mm++)
			for (unsigned dd = 1; dd <= mdays[mm - 1] + (mm == 2 && is_leap(yy)); dd++) {
				util_civil_from_days(day, &y, &m, &d);
				CHECK(y == yy && m == mm && d == dd, "day %lld: %lld-%u-%u != %lld-%u-%u",
				    (long long)day, (long long)y, m, d, (long long)yy, mm, dd);
				if (check_current_failed)
					return;
				day++;
			}
}

struct text_case { const char *in; size_t len; const char *out; };
#define TC(in, out) { in, sizeof(in) - 1, out }

/* Expected outputs are Python's bytes.decode("utf-8", "replace"). */
static void
utf8_replaces_maximal_subparts(void)
{
	static const struct text_case t[] = {
		TC("abc", "abc"),
		TC("", ""),
		TC("a\0b", "a\xef\xbf\xbd" "b"),
		TC("\xc3\xa9", "\xc3\xa9"),
		TC("\xe2\x82\xac", "\xe2\x82\xac"),
		TC("\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"),
		TC("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf"),		/* U+10FFFF */
		TC("\xc3", "\xef\xbf\xbd"),
		TC("\xe2\x82", "\xef\xbf\xbd"),
		TC("\xf0\x9f\x98", "\xef\xbf\xbd"),
		TC("a\xe2\x82\xac" "b\xe2\x82x", "a\xe2\x82\xac" "b\xef\xbf\xbdx"),
		TC("\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"),	/* surrogate */
		TC("\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"),			/* overlong */
		TC("\xe0\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"),
		TC("\xf0\x80", "\xef\xbf\xbd\xef\xbf\xbd"),
		TC("\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"),
		TC("\xf1\x80\x80\xc3\xa9", "\xef\xbf\xbd\xc3\xa9"),
		TC("\xff\xfe", "\xef\xbf\xbd\xef\xbf\xbd"),
		TC("\x80", "\xef\xbf\xbd"),
		TC("\t\\\n", "\t\\\n"),		/* no escaping here */
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		CHECK(str_eq(FMT(sink_format_utf8(fmt_buf, t[i].in, t[i].len)), t[i].out),
		    "case %zu", i);
}

static void
copy_text_escapes_specials(void)
{
	static const struct text_case t[] = {
		TC("plain", "plain"),
		TC("a\tb", "a\\tb"),
		TC("a\nb\r\n", "a\\nb\\r\\n"),
		TC("back\\slash", "back\\\\slash"),
		TC("\\.", "\\\\."),		/* COPY's end-of-data marker stays data */
		TC("x\0y", "x\xef\xbf\xbdy"),
		TC("\xff\t", "\xef\xbf\xbd\\t"),
		TC("\"quoted\",comma", "\"quoted\",comma"),
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		CHECK(str_eq(FMT(sink_format_copy_text(fmt_buf, t[i].in, t[i].len)), t[i].out),
		    "case %zu: %s", i, fmt_buf);
}

static void
array_elements_are_quoted(void)
{
	static const struct text_case t[] = {
		TC("a.csv", "\"a.csv\""),
		TC("", "\"\""),
		TC("we\"ird\\,{}", "\"we\\\"ird\\\\,{}\""),
		TC("NULL", "\"NULL\""),
		TC("\xc3", "\"\xef\xbf\xbd\""),
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		CHECK(str_eq(FMT(sink_format_array_elem(fmt_buf, t[i].in, t[i].len)), t[i].out),
		    "case %zu: %s", i, fmt_buf);
}

/* Random bytes: the output always converts as UTF-8, has no NUL, never overflows. */
static void
random_bytes_become_valid_utf8(void)
{
	iconv_t cd = iconv_open("UTF-16LE", "UTF-8");
	uint64_t x = 0x9e3779b97f4a7c15u;
	char in[64], out[SINK_FORMAT_TEXT_MAX(sizeof(in))], wide[1024];

	CHECK(cd != (iconv_t)-1, "iconv_open");
	if (cd == (iconv_t)-1)
		return;
	for (int i = 0; i < 100000; i++) {
		size_t len = i % sizeof(in), n;
		for (size_t j = 0; j < len; j++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			/* Bias towards the interesting lead and continuation bytes. */
			in[j] = (char)(x & 1 ? 0x80 | (x >> 8 & 0x7f) : x >> 8);
		}
		n = sink_format_utf8(out, in, len);
		char *ip = out, *op = wide;
		size_t il = n, ol = sizeof(wide);
		CHECK(n <= SINK_FORMAT_TEXT_MAX(len), "overflow");
		CHECK(memchr(out, '\0', n) == NULL, "NUL in output");
		CHECK(iconv(cd, &ip, &il, &op, &ol) != (size_t)-1, "invalid UTF-8 out, case %d", i);
		if (check_current_failed)
			break;
	}
	iconv_close(cd);
}

/* Big-endian 16-bit words of a binary numeric, for comparisons. */
static size_t
numeric_words(int64_t cents, int16_t *w)
{
	char buf[SINK_FORMAT_NUMERIC_MAX];
	size_t n = sink_format_numeric_cents(buf, cents);

	for (size_t i = 0; i < n / 2; i++)
		w[i] = (int16_t)((uint8_t)buf[2 * i] << 8 | (uint8_t)buf[2 * i + 1]);
	return n;
}

/* What numeric_send writes for these values (ndigits, weight, sign, dscale, digits). */
static void
binary_numeric_matches_numeric_send(void)
{
	static const struct { int64_t c; int16_t w[10]; size_t n; } t[] = {
		{ 0, { 0, 0, 0, 2 }, 8 },
		{ 5, { 1, -1, 0, 2, 500 }, 10 },			/* 0.05 */
		{ 100, { 1, 0, 0, 2, 1 }, 10 },				/* 1.00 */
		{ 12345, { 2, 0, 0, 2, 123, 4500 }, 12 },		/* 123.45 */
		{ 1000000, { 1, 1, 0, 2, 1 }, 10 },			/* 10000.00 */
		{ 999999999999, { 4, 2, 0, 2, 99, 9999, 9999, 9900 }, 16 },
		{ -12345, { 2, 0, 0x4000, 2, 123, 4500 }, 12 },
		{ INT64_MIN, { 6, 4, 0x4000, 2, 9, 2233, 7203, 6854, 7758, 800 }, 20 },
	};
	int16_t w[10];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		size_t n = numeric_words(t[i].c, w);
		CHECK(n == t[i].n, "%lld: %zu bytes, want %zu", (long long)t[i].c, n, t[i].n);
		CHECK(n <= SINK_FORMAT_NUMERIC_MAX, "too long");
		if (n == t[i].n)
			CHECK(memcmp(w, t[i].w, n) == 0, "%lld: words differ", (long long)t[i].c);
	}
}

static void
binary_time_and_header(void)
{
	char b[SINK_FORMAT_BIN_HEADER_LEN];
	uint64_t v = 0;

	CHECK(sink_format_bin_time(b, 946684800000000) == 8, "length");
	for (int i = 0; i < 8; i++)
		v = v << 8 | (uint8_t)b[i];
	CHECK(v == 0, "2000-01-01 is zero, got %llu", (unsigned long long)v);
	(void)sink_format_bin_time(b, 946684800000001 + 255);
	CHECK((uint8_t)b[7] == 0 && (uint8_t)b[6] == 1, "big-endian");
	(void)sink_format_bin_time(b, INT64_MIN);
	CHECK((uint8_t)b[0] == 0x80 && (uint8_t)b[7] == 1, "clamped inside -infinity");
	CHECK(sink_format_bin_header(b) == SINK_FORMAT_BIN_HEADER_LEN, "header length");
	CHECK(memcmp(b, "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0", 19) == 0, "header bytes");
}

int
main(void)
{
	RUN(integers_print_like_printf);
	RUN(timestamps_known_instants);
	RUN(timestamps_match_gmtime);
	RUN(civil_matches_day_by_day_count);
	RUN(utf8_replaces_maximal_subparts);
	RUN(copy_text_escapes_specials);
	RUN(array_elements_are_quoted);
	RUN(random_bytes_become_valid_utf8);
	RUN(binary_numeric_matches_numeric_send);
	RUN(binary_time_and_header);
	return check_exit();
}
