/* validate — see include/validate.h. */
#include "validate.h"

#include <string.h>

#define US_PER_SEC	INT64_C(1000000)
#define SEC_PER_DAY	INT64_C(86400)
#define PRICE_MAX_WHOLE	INT64_C(9999999999)	/* numeric(12,2): 10 integer digits */

/* The value of a decimal digit, or a number > 9 for any other byte. */
static inline unsigned
digit(char c)
{
	return (unsigned)((unsigned char)c - '0');
}

/* Exactly n decimal digits. */
static inline int
digits(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		unsigned d = digit(s[i]);
		if (d > 9)
			return -1;
		v = v * 10 + (int)d;
	}
	*out = v;
	return 0;
}

/*
 * Hex digit values; 16 marks "not a hex digit".  A table, not comparisons:
 * random UUIDs mix digits and letters, and the branches mispredicted half the
 * time (this function was half of the whole read+validate profile).
 */
static const unsigned char hexval[256] = {
	16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
	16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
	16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
	 0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 16, 16, 16, 16, 16, 16,
	16, 10, 11, 12, 13, 14, 15, 16, 16, 16, 16, 16, 16, 16, 16, 16,
	16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
	16, 10, 11, 12, 13, 14, 15, 16, 16, 16, 16, 16, 16, 16, 16, 16,
	16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
	16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
	16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
	16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
	16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
	16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
	16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
	16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
	16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
};

int
uuid_parse_text(const char *s, size_t len, uint8_t out[16])
{
	/* Where each byte's two hex digits start in 8-4-4-4-12. */
	static const unsigned char at[16] = {
		0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34
	};
	const unsigned char *u = (const unsigned char *)s;
	unsigned bad = 0;

	if (len != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-')
		return -1;
	for (int i = 0; i < 16; i++) {
		unsigned hi = hexval[u[at[i]]], lo = hexval[u[at[i] + 1]];
		bad |= hi | lo;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return bad & 16 ? -1 : 0;
}

/* 1..2147483647 as [+]digits; leading zeros are harmless. */
static int
validate_id(const char *s, size_t len, int32_t *out)
{
	uint64_t v = 0;
	size_t i = len > 0 && s[0] == '+';

	if (i == len)
		return -1;
	for (; i < len; i++) {
		unsigned d = digit(s[i]);
		if (d > 9)
			return -1;
		v = v * 10 + d;
		if (v > INT32_MAX)	/* checked every digit, so v never overflows */
			return -1;
	}
	if (v == 0)
		return -1;
	*out = (int32_t)v;
	return 0;
}

static int
validate_type(const char *s, size_t len, uint8_t *out)
{
	if (len == 4 && memcmp(s, "view", 4) == 0)
		*out = EVENT_VIEW;
	else if (len == 8 && memcmp(s, "purchase", 8) == 0)
		*out = EVENT_PURCHASE;
	else
		return -1;
	return 0;
}

/* [+]D[.F] with 1..2 digits in F, value < 10^10: numeric(12,2), as cents. */
static int
validate_price(const char *s, size_t len, int64_t *cents)
{
	int64_t whole = 0, frac = 0;
	size_t i = len > 0 && s[0] == '+', start = i, nfrac;

	for (; i < len && digit(s[i]) <= 9; i++)
		if ((whole = whole * 10 + digit(s[i])) > PRICE_MAX_WHOLE)
			return -1;
	if (i == start)
		return -1;
	if (i < len) {
		if (s[i++] != '.' || (nfrac = len - i) < 1 || nfrac > 2)
			return -1;
		for (; i < len; i++) {
			if (digit(s[i]) > 9)
				return -1;
			frac = frac * 10 + digit(s[i]);
		}
		if (nfrac == 1)
			frac *= 10;
	}
	*cents = whole * 100 + frac;
	return 0;
}

static int
is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
days_in_month(int y, int m)
{
	static const unsigned char mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	return m == 2 && is_leap(y) ? 29 : mdays[m - 1];
}

/*
 * Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil): exact for every year, no tables, no libc.  Its inverse,
 * util_civil_from_days, prints; this one stays here, inlined into ts_parse.
 */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* "", "Z", "+hh", "+hhmm" or "+hh:mm" (or '-'), as seconds east of UTC. */
static int
ts_parse_offset(const char *s, size_t len, int64_t *off_s)
{
	int hh, mm = 0;

	*off_s = 0;
	if (len == 0 || (len == 1 && s[0] == 'Z'))
		return 0;
	if ((s[0] != '+' && s[0] != '-') || digits(s + 1, 2, &hh) != 0)
		return -1;
	if (len == 6 && s[3] == ':') {
		if (digits(s + 4, 2, &mm) != 0)
			return -1;
	} else if (len == 5) {
		if (digits(s + 3, 2, &mm) != 0)
			return -1;
	} else if (len != 3)
		return -1;
	if (hh > 23 || mm > 59)
		return -1;
	*off_s = (s[0] == '-' ? -1 : 1) * (int64_t)(hh * 3600 + mm * 60);
	return 0;
}

int
ts_parse(const char *s, size_t len, int64_t *us_out)
{
	int y, mo, d, h, mi, sec, frac = 0, nfrac = 0;
	int64_t off_s, secs;
	size_t i = 19;

	if (len < 19 || s[4] != '-' || s[7] != '-' || (s[10] != ' ' && s[10] != 'T') ||
	    s[13] != ':' || s[16] != ':')
		return -1;
	if (digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) ||
	    digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) || digits(s + 17, 2, &sec))
		return -1;
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) ||
	    h > 23 || mi > 59 || sec > 59)
		return -1;
	if (i < len && s[i] == '.') {
		for (i++; i < len && digit(s[i]) <= 9; i++, nfrac++) {
			if (nfrac == 6)
				return -1;
			frac = frac * 10 + (int)digit(s[i]);
		}
		if (nfrac == 0)
			return -1;
		for (int k = nfrac; k < 6; k++)
			frac *= 10;
	}
	if (ts_parse_offset(s + i, len - i, &off_s) != 0)
		return -1;
	secs = days_from_civil(y, mo, d) * SEC_PER_DAY + h * 3600 + mi * 60 + sec - off_s;
	*us_out = secs * US_PER_SEC + frac;
	return 0;
}

enum reject_reason
validate_row(const struct csv_row *row, struct event *out)
{
	const char *const *f = row->field;
	const size_t *n = row->len;

	if (row->nfields < 0 || row->nfields != row->nheader)
		return REJECT_COLUMN_COUNT;
	if (uuid_parse_text(f[COL_EVENT_ID], n[COL_EVENT_ID], out->id) != 0)
		return REJECT_EVENT_ID;
	if (validate_id(f[COL_USER_ID], n[COL_USER_ID], &out->user_id) != 0)
		return REJECT_USER_ID;
	if (validate_type(f[COL_EVENT_TYPE], n[COL_EVENT_TYPE], &out->type) != 0)
		return REJECT_EVENT_TYPE;
	if (validate_id(f[COL_PRODUCT_ID], n[COL_PRODUCT_ID], &out->product_id) != 0)
		return REJECT_PRODUCT_ID;
	if (validate_price(f[COL_PRICE], n[COL_PRICE], &out->price_cents) != 0)
		return REJECT_PRICE;
	if (ts_parse(f[COL_EVENT_TIME], n[COL_EVENT_TIME], &out->time_us) != 0)
		return REJECT_EVENT_TIME;
	return REJECT_NONE;
}
