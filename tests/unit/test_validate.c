/*
 * test_validate — a row becomes an event only if every field is exactly right;
 * otherwise the first wrong column names the reason.  Boundaries of every rule,
 * and timestamps checked against libc's timegm and by round trip.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "util.h"
#include "validate.h"

#define UUID	"5f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"

static const char *const good[EVENT_NCOLS] = {
	[COL_EVENT_ID] = UUID, [COL_USER_ID] = "123", [COL_EVENT_TYPE] = "view",
	[COL_PRODUCT_ID] = "456", [COL_PRICE] = "0.00",
	[COL_EVENT_TIME] = "2026-11-25 19:13:25.123456",
};

static struct csv_row
make_row(void)
{
	struct csv_row row = { .line = 2, .nfields = 6, .nheader = 6 };

	for (int c = 0; c < EVENT_NCOLS; c++) {
		row.field[c] = good[c];
		row.len[c] = strlen(good[c]);
	}
	row.raw = "";
	return row;
}

/* The reason for a row that is good except for column c = value. */
static enum reject_reason
try_field(int c, const char *value)
{
	struct csv_row row = make_row();
	struct event ev;

	row.field[c] = value;
	row.len[c] = strlen(value);
	return validate_row(&row, &ev);
}

static int64_t
us_of(const char *s)
{
	int64_t us = INT64_MIN;

	if (ts_parse(s, strlen(s), &us) != 0)
		return INT64_MIN;
	return us;
}

static void
test_good_row(void)
{
	static const uint8_t id[16] = { 0x5f, 0x0c, 0x1a, 0x2b, 0x3c, 0x4d, 0x4e, 0x5f,
	    0x8a, 0x9b, 0x0c, 0x1d, 0x2e, 0x3f, 0x4a, 0x5b };
	struct csv_row row = make_row();
	struct event ev;

	memset(&ev, 0xff, sizeof(ev));
	CHECK(validate_row(&row, &ev) == REJECT_NONE, "good row rejected");
	CHECK(memcmp(ev.id, id, 16) == 0, "uuid bytes");
	CHECK(ev.user_id == 123 && ev.product_id == 456, "ids %d %d", ev.user_id, ev.product_id);
	CHECK(ev.type == EVENT_VIEW && ev.price_cents == 0, "type %d price %lld", ev.type,
	    (long long)ev.price_cents);
	CHECK(ev.time_us == INT64_C(1795634005123456), "time %lld", (long long)ev.time_us);
	row.field[COL_EVENT_TYPE] = "purchase";
	row.len[COL_EVENT_TYPE] = 8;
	CHECK(validate_row(&row, &ev) == REJECT_NONE && ev.type == EVENT_PURCHASE, "purchase");
}

static void
test_column_count(void)
{
	struct csv_row row = make_row();
	struct event ev;

	row.nfields = 5;
	CHECK(validate_row(&row, &ev) == REJECT_COLUMN_COUNT, "short");
	row.nfields = 7;
	CHECK(validate_row(&row, &ev) == REJECT_COLUMN_COUNT, "long");
	row.nfields = row.nheader = 8;	/* extra header columns are fine */
	CHECK(validate_row(&row, &ev) == REJECT_NONE, "extra columns in header and row");
	row.nfields = -1;
	row.nheader = -1;
	CHECK(validate_row(&row, &ev) == REJECT_COLUMN_COUNT, "oversized");
}

static void
test_event_id(void)
{
	static const char *const bad[] = {
		"", "5f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5", "5f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5bb",
		"5f0c1a2b3c4d4e5f8a9b0c1d2e3f4a5b", "{5f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b}",
		"5f0c1a2b-3c4d-4e5f-8a9b_0c1d2e3f4a5b", "5f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5g",
		" 5f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5", "5f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5 ",
		"5f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5\xe9", "5f0c1a2-b3c4d-4e5f-8a9b-0c1d2e3f4a5b",
		"+f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
	};
	uint8_t id[16];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(try_field(COL_EVENT_ID, bad[i]) == REJECT_EVENT_ID, "accepted '%s'", bad[i]);
	CHECK(try_field(COL_EVENT_ID, "5F0C1A2B-3C4D-4E5F-8A9B-0C1D2E3F4A5B") == REJECT_NONE, "upper");
	CHECK(uuid_parse_text("00000000-0000-0000-0000-00000000000a", 36, id) == 0 &&
	    id[15] == 0x0a && id[0] == 0, "bytes");
	CHECK(uuid_parse_text("fFfFfFfF-ffff-FFFF-ffff-ffffffffffff", 36, id) == 0 && id[7] == 0xff,
	    "mixed case");
	/* A NUL inside: lengths, not strlen, rule. */
	CHECK(uuid_parse_text("5f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5\0", 36, id) == -1, "NUL");
}

static void
test_ids(void)
{
	static const char *const bad[] = {
		"", "0", "+", "-1", "-0", "2147483648", "99999999999999999999999", " 12", "12 ",
		"1e3", "0x10", "1.0", "++1", "+-1", "12a", "\xef\xbc\x91",
	};
	struct csv_row row = make_row();
	struct event ev;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(try_field(COL_USER_ID, bad[i]) == REJECT_USER_ID, "user '%s'", bad[i]);
		CHECK(try_field(COL_PRODUCT_ID, bad[i]) == REJECT_PRODUCT_ID, "product '%s'", bad[i]);
	}
	row.field[COL_USER_ID] = "2147483647";
	row.field[COL_PRODUCT_ID] = "+0001";
	row.len[COL_USER_ID] = 10;
	row.len[COL_PRODUCT_ID] = 5;
	CHECK(validate_row(&row, &ev) == REJECT_NONE && ev.user_id == INT32_MAX &&
	    ev.product_id == 1, "boundaries: %d %d", ev.user_id, ev.product_id);
	CHECK(try_field(COL_USER_ID, "1") == REJECT_NONE, "1");
	CHECK(try_field(COL_USER_ID, "000000000000000000002147483647") == REJECT_NONE, "zeros");
	/* "12" followed by a NUL inside the field is not 12. */
	row = make_row();
	row.field[COL_USER_ID] = "12\0";
	row.len[COL_USER_ID] = 3;
	CHECK(validate_row(&row, &ev) == REJECT_USER_ID, "NUL");
}

static void
test_event_type(void)
{
	static const char *const bad[] = { "", "View", "VIEW", "views", "vie", " view", "view ",
		"purchases", "Purchase", "buy", "view\r" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(try_field(COL_EVENT_TYPE, bad[i]) == REJECT_EVENT_TYPE, "accepted '%s'", bad[i]);
}

static int64_t
cents_of(const char *s)
{
	struct csv_row row = make_row();
	struct event ev;

	row.field[COL_PRICE] = s;
	row.len[COL_PRICE] = strlen(s);
	if (validate_row(&row, &ev) != REJECT_NONE)
		return -1;
	return ev.price_cents;
}

static void
test_price(void)
{
	static const struct { const char *s; int64_t cents; } cases[] = {
		{ "0", 0 }, { "0.5", 50 }, { "0.05", 5 }, { "0.50", 50 }, { "1", 100 },
		{ "+1.5", 150 }, { "19.99", 1999 }, { "9999999999.99", INT64_C(999999999999) },
		{ "00000000000001.00", 100 }, { "0000", 0 },
		{ "1.234", -1 }, { "12345678901.00", -1 }, { "10000000000", -1 },
		{ "-0", -1 }, { "-0.00", -1 }, { "-1", -1 }, { "", -1 }, { ".5", -1 },
		{ "5.", -1 }, { "1e2", -1 }, { "1E2", -1 }, { " 1", -1 }, { "1 ", -1 },
		{ "1,50", -1 }, { "+", -1 }, { "+.5", -1 }, { "1..5", -1 }, { "1.5.", -1 },
		{ "NaN", -1 }, { "inf", -1 }, { "0x10", -1 }, { "$1", -1 }, { "++1", -1 },
		{ "99999999999999999999999999", -1 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK(cents_of(cases[i].s) == cases[i].cents, "price '%s': %lld, expected %lld",
		    cases[i].s, (long long)cents_of(cases[i].s), (long long)cases[i].cents);
	CHECK(try_field(COL_PRICE, "1.234") == REJECT_PRICE, "reason");
}

static void
test_event_time_accepts(void)
{
	int64_t base = us_of("2024-02-29 12:00:00");

	CHECK(us_of("1970-01-01 00:00:00") == 0, "epoch");
	CHECK(base != INT64_MIN, "leap day 2024-02-29");
	CHECK(us_of("2000-02-29 00:00:00") != INT64_MIN, "leap day 2000");
	CHECK(us_of("2024-02-29T12:00:00") == base, "T separator");
	CHECK(us_of("2024-02-29 12:00:00Z") == base, "Z");
	CHECK(us_of("2024-02-29 12:00:00+00:00") == base, "+00:00");
	CHECK(us_of("2024-02-29 12:00:00-00:00") == base, "-00:00");
	CHECK(us_of("2024-02-29 17:30:00+05:30") == base, "+05:30");
	CHECK(us_of("2024-02-29 17:30:00+0530") == base, "+0530");
	CHECK(us_of("2024-02-29 17:00:00+05") == base, "+05");
	CHECK(us_of("2024-02-29 04:00:00-08:00") == base, "-08:00");
	CHECK(us_of("2024-03-01 04:00:00+16:00") == base, "offset across a day");
	CHECK(us_of("2024-02-29 12:00:00.1") == base + 100000, "1 digit");
	CHECK(us_of("2024-02-29 12:00:00.12") == base + 120000, "2 digits");
	CHECK(us_of("2024-02-29 12:00:00.123") == base + 123000, "3 digits");
	CHECK(us_of("2024-02-29 12:00:00.1234") == base + 123400, "4 digits");
	CHECK(us_of("2024-02-29 12:00:00.12345") == base + 123450, "5 digits");
	CHECK(us_of("2024-02-29 12:00:00.123456") == base + 123456, "6 digits");
	CHECK(us_of("2024-02-29 12:00:00.000001Z") == base + 1, "fraction and Z");
	CHECK(us_of("2024-02-29T17:30:00.5+05:30") == base + 500000, "fraction and offset");
	CHECK(us_of("0001-01-01 00:00:00") == INT64_C(-62135596800000000), "year 1");
	CHECK(us_of("9999-12-31 23:59:59.999999") == INT64_C(253402300799999999), "year 9999");
	CHECK(us_of("1969-12-31 23:59:59.999999") == -1, "before the epoch");
	CHECK(try_field(COL_EVENT_TIME, "2026-11-25T19:13:25Z") == REJECT_NONE, "in a row");
}

static void
test_event_time_rejects(void)
{
	static const char *const bad[] = {
		"", "2023-02-29 00:00:00", "1900-02-29 00:00:00", "2024-02-30 00:00:00",
		"2024-04-31 00:00:00", "2024-13-01 00:00:00", "2024-00-01 00:00:00",
		"2024-01-00 00:00:00", "2024-01-32 00:00:00", "0000-01-01 00:00:00",
		"2024-01-01 24:00:00", "2024-01-01 23:60:00", "2024-01-01 23:59:60",
		"2024-01-01 00:00:00.1234567", "2024-01-01 00:00:00.", "2024-01-01 00:00",
		"2024-01-01", "2024-1-01 00:00:00", "2024-01-01  00:00:00", "2024-01-01t00:00:00",
		"2024-01-01_00:00:00", "2024/01/01 00:00:00", " 2024-01-01 00:00:00",
		"2024-01-01 00:00:00 ", "2024-01-01 00:00:00z", "2024-01-01 00:00:00ZZ",
		"2024-01-01 00:00:00+24:00", "2024-01-01 00:00:00+05:60", "2024-01-01 00:00:00+5:30",
		"2024-01-01 00:00:00+05:3", "2024-01-01 00:00:00+053", "2024-01-01 00:00:00+",
		"2024-01-01 00:00:00 +05:00", "2024-01-01 00:00:00+05:30:00", "2024-01-01 00:00:00 UTC",
		"+2024-01-01 00:00:00", "20240101T000000", "2024-01-01 00:00:00.+05",
		"2024-01-01 0a:00:00", "２０２４-01-01 00:00:00", "1704067200",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(try_field(COL_EVENT_TIME, bad[i]) == REJECT_EVENT_TIME, "accepted '%s'", bad[i]);
	/* NUL inside the field. */
	{
		int64_t us;
		CHECK(ts_parse("2024-01-01 00:00:00\0", 20, &us) == -1, "NUL");
		CHECK(ts_parse("2024-01-01 00:00:00", 18, &us) == -1, "length rules, not NUL");
	}
}

/* The first failing column names the reason, in column order. */
static void
test_first_reason_wins(void)
{
	struct csv_row row = make_row();
	struct event ev;

	row.field[COL_PRICE] = "x";
	row.len[COL_PRICE] = 1;
	row.field[COL_USER_ID] = "0";
	CHECK(validate_row(&row, &ev) == REJECT_USER_ID, "user before price");
	row.field[COL_EVENT_ID] = "";
	row.len[COL_EVENT_ID] = 0;
	CHECK(validate_row(&row, &ev) == REJECT_EVENT_ID, "id before user");
	row.nfields = 2;
	CHECK(validate_row(&row, &ev) == REJECT_COLUMN_COUNT, "count before all");
	row = make_row();
	row.field[COL_EVENT_TYPE] = "buy";
	row.len[COL_EVENT_TYPE] = 3;
	row.field[COL_EVENT_TIME] = "never";
	row.len[COL_EVENT_TIME] = 5;
	CHECK(validate_row(&row, &ev) == REJECT_EVENT_TYPE, "type before time");
}

static uint64_t rng_state = 0x2545f4914f6cdd1du;

static uint64_t
rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Every calendar rule at once: agree with glibc's timegm on random instants. */
static void
test_ts_matches_timegm(void)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	char s[40];

	for (int i = 0; i < 200000; i++) {
		struct tm tm = { 0 };
		int y = 1 + (int)(rng() % 9999), m = 1 + (int)(rng() % 12);
		int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
		int d = 1 + (int)(rng() % (uint64_t)(mdays[m - 1] + (m == 2 && leap)));
		int64_t us;

		tm.tm_year = y - 1900;
		tm.tm_mon = m - 1;
		tm.tm_mday = d;
		tm.tm_hour = (int)(rng() % 24);
		tm.tm_min = (int)(rng() % 60);
		tm.tm_sec = (int)(rng() % 60);
		snprintf(s, sizeof(s), "%04d-%02d-%02d %02d:%02d:%02d", y, m, d, tm.tm_hour,
		    tm.tm_min, tm.tm_sec);
		if (ts_parse(s, strlen(s), &us) != 0) {
			CHECK(0, "rejected %s", s);
			continue;
		}
		CHECK(us == (int64_t)timegm(&tm) * 1000000, "%s: %lld", s, (long long)us);
	}
}

static void
test_ts_round_trip(void)
{
	static const char *const fixed[] = {
		"1970-01-01 00:00:00.000000", "2024-02-29 23:59:59.999999",
		"0001-01-01 00:00:00.000000", "9999-12-31 23:59:59.999999",
		"1969-12-31 23:59:59.000001", "2026-11-25 19:13:25.123456",
	};
	const int64_t lo = us_of("0001-01-01 00:00:00"), hi = us_of("9999-12-31 23:59:59.999999");
	char out[32];
	int64_t us;

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		util_format_time(us_of(fixed[i]), out);
		CHECK(strcmp(out, fixed[i]) == 0, "%s -> %s", fixed[i], out);
	}
	for (int i = 0; i < 200000; i++) {
		int64_t t = lo + (int64_t)(rng() % (uint64_t)(hi - lo + 1));
		util_format_time(t, out);
		CHECK(strlen(out) == 26 && ts_parse(out, 26, &us) == 0 && us == t, "%lld -> %s",
		    (long long)t, out);
	}
	/* Anything, even the "no time" sentinel, prints inside 32 bytes. */
	util_format_time(INT64_MIN, out);
	CHECK(strlen(out) < 32 && out[0] == '-', "INT64_MIN: %s", out);
	util_format_time(INT64_MAX, out);
	CHECK(strcmp(out, "294247-01-10 04:00:54.775807") == 0, "INT64_MAX: %s", out);
	util_format_time(-1, out);
	CHECK(strcmp(out, "1969-12-31 23:59:59.999999") == 0, "-1: %s", out);
}

int
main(void)
{
	RUN(test_good_row);
	RUN(test_column_count);
	RUN(test_event_id);
	RUN(test_ids);
	RUN(test_event_type);
	RUN(test_price);
	RUN(test_event_time_accepts);
	RUN(test_event_time_rejects);
	RUN(test_first_reason_wins);
	RUN(test_ts_matches_timegm);
	RUN(test_ts_round_trip);
	return check_exit();
}
