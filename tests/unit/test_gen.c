/*
 * gen: every row evgen writes is read back through evstream's own reader and
 * validator, so the test aids are checked against the reasons evstream gives.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "check.h"
#include "csvin.h"
#include "gen.h"
#include "validate.h"

static const struct gen_params base = {
	.rows_per_file = 1000, .user_id_min = 1, .user_id_max = 1000, .product_id_min = 5,
	.product_id_max = 9, .purchase_rate = 0.25, .price_min = 1, .price_max = 3,
	.late_delay = 600,
};

struct tally {
	long rows, valid, purchases, bad_price, late, reasons[REJECT_NREASONS];
	int64_t end_us;
	long out_of_range;
};

static int
tally_row(void *arg, const struct csv_row *row)
{
	struct tally *t = arg;
	struct event e;
	enum reject_reason why = validate_row(row, &e);

	t->rows++;
	t->reasons[why]++;
	if (why != REJECT_NONE)
		return 0;
	t->valid++;
	t->purchases += e.type == EVENT_PURCHASE;
	/* price is non-zero exactly for purchases */
	t->bad_price += (e.type == EVENT_PURCHASE) != (e.price_cents > 0);
	t->out_of_range += e.user_id < 1 || e.user_id > 1000 || e.product_id < 5 ||
	    e.product_id > 9 || e.price_cents > 300;
	t->late += e.time_us < t->end_us - 300 * INT64_C(1000000);
	return 0;
}

/* Generate `files` files with params p and read them all back. */
static void
run(const struct gen_params *p, uint64_t seed, int files, struct tally *t)
{
	char dir[] = "/tmp/evpipe-gen-XXXXXX", err[256];
	struct gen *g = gen_new(p, seed);
	struct csvin *in = csvin_new();
	int64_t end = INT64_C(1767225600000000);

	memset(t, 0, sizeof(*t));
	CHECK(g && in && mkdtemp(dir), "setup");
	for (int i = 0; i < files; i++) {
		const char *text;
		size_t len;
		struct gen_stats st;
		char path[300];
		end += 5000000;
		CHECK(gen_file(g, end, &text, &len, &st) == 0, "gen_file");
		CHECK(strncmp(text, GEN_HEADER, strlen(GEN_HEADER)) == 0, "exact header");
		snprintf(path, sizeof(path), "%s/f.csv", dir);
		FILE *f = fopen(path, "w");
		CHECK(f && fwrite(text, 1, len, f) == len && fclose(f) == 0, "write");
		t->end_us = end;
		CHECK(csvin_read(in, AT_FDCWD, path, tally_row, t, err, sizeof(err)) == CSVIN_OK,
		    "%s", err);
		unlink(path);
	}
	rmdir(dir);
	csvin_free(in);
	gen_free(g);
}

/* |got/n - rate| within 5 standard deviations (binomial): fails only for a real bias. */
static int
near(long got, long n, double rate)
{
	double sd = n > 0 ? __builtin_sqrt(rate * (1 - rate) / (double)n) : 0;

	return n > 0 && __builtin_fabs((double)got / (double)n - rate) <= 5 * sd + 1e-9;
}

static void
clean_rows_are_all_valid(void)
{
	struct tally t;

	run(&base, 1, 20, &t);
	CHECK(t.rows == 20000, "rows %ld", t.rows);
	CHECK(t.valid == t.rows, "valid %ld of %ld", t.valid, t.rows);
	CHECK(t.bad_price == 0, "price non-zero only for purchases: %ld wrong", t.bad_price);
	CHECK(t.out_of_range == 0, "ids and prices in range: %ld out", t.out_of_range);
	CHECK(near(t.purchases, t.valid, 0.25), "purchase share %ld/%ld", t.purchases, t.valid);
}

static void
invalid_kinds_appear_at_their_rate(void)
{
	struct gen_params p = base;
	struct tally t;
	long invalid = 0, n = 200000;

	p.invalid_rate = 0.06;
	run(&p, 2, (int)(n / p.rows_per_file), &t);
	for (int r = 1; r < REJECT_NREASONS; r++)
		invalid += t.reasons[r];
	CHECK(near(invalid, n, 0.06), "invalid %ld of %ld", invalid, n);
	/* every kind in the table shows up as the reason evstream gives for it, ~1/6 each */
	for (int k = 0; k < GEN_NFAULTS; k++) {
		long got = t.reasons[gen_fault_kinds[k].expect];
		CHECK(near(got, invalid, 1.0 / GEN_NFAULTS), "%s: %ld of %ld invalid",
		    gen_fault_kinds[k].name, got, invalid);
	}
}

static void
late_rows_appear_at_their_rate(void)
{
	struct gen_params p = base;
	struct tally t;

	p.late_rate = 0.03;
	run(&p, 3, 100, &t);
	CHECK(t.valid == t.rows, "late rows are valid rows");
	CHECK(near(t.late, t.rows, 0.03), "late %ld of %ld", t.late, t.rows);
}

/* Duplicates re-emit a whole earlier row: count repeated ids over the stream. */
static void
duplicates_appear_at_their_rate(void)
{
	struct gen_params p = base;
	struct gen *g;
	const char *text;
	size_t len;
	struct gen_stats st;
	long dups = 0, rows = 0;

	p.duplicate_rate = 0.02;
	g = gen_new(&p, 4);
	CHECK(g != NULL, "gen_new");
	for (int i = 0; g && i < 100; i++) {
		CHECK(gen_file(g, INT64_C(1767225600000000) + i * 1000000, &text, &len, &st) == 0, "gen");
		dups += st.duplicates;
		rows += st.rows;
	}
	CHECK(near(dups, rows, 0.02), "duplicates %ld of %ld", dups, rows);
	gen_free(g);
}

static void
same_seed_same_bytes(void)
{
	struct gen_params p = base;
	struct gen *a, *b;
	const char *ta, *tb;
	size_t la, lb;
	struct gen_stats st;

	p.duplicate_rate = p.late_rate = p.invalid_rate = 0.05;
	a = gen_new(&p, 77);
	b = gen_new(&p, 77);
	for (int i = 0; a && b && i < 5; i++) {
		int64_t end = INT64_C(1767225600000000) + i * 5000000;
		CHECK(gen_file(a, end, &ta, &la, &st) == 0 && gen_file(b, end, &tb, &lb, &st) == 0, "gen");
		CHECK(la == lb && memcmp(ta, tb, la) == 0, "file %d differs", i);
	}
	gen_free(a);
	gen_free(b);
}

/* A one-row file's event_time, as written: each file's single row is at its end. */
static void
time_format(void)
{
	static const struct { int64_t us; const char *text; } t[] = {
		{ INT64_C(1767225600000001), "2026-01-01 00:00:00.000001" },
		{ INT64_C(1767225600999999), "2026-01-01 00:00:00.999999" },	/* same second */
		{ INT64_C(951782400) * 1000000 + 999999, "2000-02-29 00:00:00.999999" },
		{ INT64_C(951868799) * 1000000, "2000-02-29 23:59:59.000000" },
	};
	struct gen_params p = base;
	struct gen *g;
	struct gen_stats st;
	const char *text;
	size_t len, n = strlen("2026-01-01 00:00:00.000001\n");

	p.rows_per_file = 1;
	CHECK((g = gen_new(&p, 7)) != NULL, "gen_new");
	for (size_t i = 0; g && i < sizeof(t) / sizeof(t[0]); i++) {
		CHECK(gen_file(g, t[i].us, &text, &len, &st) == 0 && len > n, "gen_file");
		CHECK(memcmp(text + len - n, t[i].text, n - 1) == 0 && text[len - 1] == '\n',
		    "%s: %.*s", t[i].text, (int)n, text + len - n);
	}
	gen_free(g);
}

int
main(void)
{
	RUN(clean_rows_are_all_valid);
	RUN(invalid_kinds_appear_at_their_rate);
	RUN(late_rows_appear_at_their_rate);
	RUN(duplicates_appear_at_their_rate);
	RUN(same_seed_same_bytes);
	RUN(time_format);
	return check_exit();
}
