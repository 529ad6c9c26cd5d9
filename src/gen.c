/* gen — see include/gen.h.  The hot path formats by hand: no printf per field. */
#include "gen.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

#define GEN_RING 1024	/* rows remembered for re-emission as duplicates */

const struct gen_fault_kind gen_fault_kinds[GEN_NFAULTS] = {
	[GEN_FAULT_EVENT_TYPE]   = { "unknown_event_type", REJECT_EVENT_TYPE },
	[GEN_FAULT_USER_ID]      = { "non_numeric_id",     REJECT_USER_ID },
	[GEN_FAULT_EVENT_TIME]   = { "bad_timestamp",      REJECT_EVENT_TIME },
	[GEN_FAULT_COLUMN_COUNT] = { "wrong_column_count", REJECT_COLUMN_COUNT },
	[GEN_FAULT_EVENT_ID]     = { "empty_event_id",     REJECT_EVENT_ID },
	[GEN_FAULT_PRICE]        = { "negative_price",     REJECT_PRICE },
};

struct gen {
	struct gen_params p;
	uint64_t	 s[4];			/* xoshiro256** state */
	uint64_t	 thr_purchase, thr_dup, thr_late, thr_invalid;
	struct event	 ring[GEN_RING];
	size_t		 ring_n, ring_next;
	/* The last file's changes to the ring, so gen_unpublish can take them back. */
	struct event	 undo[GEN_RING];
	size_t		 undo_n, undo_ring_n, undo_ring_next;
	int64_t		 last_end_us;
	char		*buf;
	size_t		 len, cap;
	int64_t		 cached_sec;		/* second whose text is in cached_txt */
	char		 cached_txt[UTIL_TIME_MAX];
	size_t		 cached_len;		/* "YYYY-MM-DD HH:MM:SS": up to the '.' */
};

/* xoshiro256** (Blackman & Vigna): fast, and reproducible from a seed. */
static inline uint64_t
gen_rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t
gen_next(struct gen *g)
{
	uint64_t *s = g->s, r = gen_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = gen_rotl(s[3], 45);
	return r;
}

static uint64_t
gen_splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [lo, hi] by multiply-shift (Lemire); the bias is below 2^-32 here. */
static int64_t
gen_range(struct gen *g, int64_t lo, int64_t hi)
{
	uint64_t span = (uint64_t)(hi - lo) + 1;

	return lo + (int64_t)(((__uint128_t)gen_next(g) * span) >> 64);
}

static uint64_t
gen_threshold(double rate)
{
	return rate >= 1.0 ? UINT64_MAX : (uint64_t)(rate * 18446744073709551616.0);
}

static int
gen_chance(struct gen *g, uint64_t threshold)
{
	return threshold != 0 && gen_next(g) < threshold;
}

struct gen *
gen_new(const struct gen_params *p, uint64_t seed)
{
	struct gen *g = calloc(1, sizeof(*g));

	if (g == NULL)
		return NULL;
	g->p = *p;
	for (int i = 0; i < 4; i++)
		g->s[i] = gen_splitmix(&seed);
	g->thr_purchase = gen_threshold(p->purchase_rate);
	g->thr_dup = gen_threshold(p->duplicate_rate);
	g->thr_late = gen_threshold(p->late_rate);
	g->thr_invalid = gen_threshold(p->invalid_rate);
	g->last_end_us = EVENT_TIME_NONE;
	g->cached_sec = INT64_MIN;
	return g;
}

void
gen_free(struct gen *g)
{
	if (g == NULL)
		return;
	free(g->buf);
	free(g);
}

void
gen_unpublish(struct gen *g)
{
	for (size_t i = 0; i < g->undo_n; i++)
		g->ring[(g->undo_ring_next + i) % GEN_RING] = g->undo[i];
	g->undo_n = 0;
	g->ring_n = g->undo_ring_n;
	g->ring_next = g->undo_ring_next;
}

void
gen_uuid(struct gen *g, uint8_t out[16])
{
	uint64_t a = gen_next(g), b = gen_next(g);

	memcpy(out, &a, 8);
	memcpy(out + 8, &b, 8);
	out[6] = (out[6] & 0x0f) | 0x40;	/* version 4 */
	out[8] = (out[8] & 0x3f) | 0x80;	/* RFC 4122 variant */
}

/* Room for one more row (the longest row is well under 256 bytes). */
static int
gen_reserve(struct gen *g, size_t more)
{
	return ALLOC_GROW(g->buf, g->len + more, g->cap, 64 * 1024);
}

static char *
gen_put_uuid(char *o, const uint8_t id[16])
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*o++ = '-';
		*o++ = hex[id[i] >> 4];
		*o++ = hex[id[i] & 15];
	}
	return o;
}

static int64_t
gen_floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* The date-and-second part changes rarely within a file, so it is cached. */
static char *
gen_put_time(struct gen *g, char *o, int64_t us)
{
	int64_t sec = gen_floor_div(us, 1000000);

	unsigned frac = (unsigned)(us - sec * 1000000);

	if (sec != g->cached_sec) {
		util_format_time(us, g->cached_txt);
		g->cached_len = strlen(g->cached_txt) - 7;	/* ".ffffff" */
		g->cached_sec = sec;
	}
	memcpy(o, g->cached_txt, g->cached_len);
	o += g->cached_len;
	*o++ = '.';
	o = util_put2(o, frac / 10000);
	o = util_put2(o, frac / 100 % 100);
	return util_put2(o, frac % 100);
}

static char *
gen_put_price(char *o, int64_t cents)
{
	o += util_put_uint(o, (uint64_t)(cents / 100), 1);
	*o++ = '.';
	return util_put2(o, (unsigned)(cents % 100));
}

static struct event
gen_event(struct gen *g, int64_t time_us)
{
	struct event e;

	gen_uuid(g, e.id);
	e.time_us = time_us;
	e.user_id = (int32_t)gen_range(g, g->p.user_id_min, g->p.user_id_max);
	e.product_id = (int32_t)gen_range(g, g->p.product_id_min, g->p.product_id_max);
	e.type = gen_chance(g, g->thr_purchase) ? EVENT_PURCHASE : EVENT_VIEW;
	e.price_cents = e.type == EVENT_VIEW ? 0 :
	    gen_range(g, (int64_t)(g->p.price_min * 100 + 0.5), (int64_t)(g->p.price_max * 100 + 0.5));
	return e;
}

/* Write one row; `fault` is a GEN_FAULT_* or -1 for a valid row. */
static char *
gen_put_row(struct gen *g, char *o, const struct event *e, int fault)
{
	if (fault != GEN_FAULT_EVENT_ID)
		o = gen_put_uuid(o, e->id);
	*o++ = ',';
	if (fault == GEN_FAULT_USER_ID)
		*o++ = 'u';
	o += util_put_uint(o, (uint64_t)e->user_id, 1);
	*o++ = ',';
	if (fault == GEN_FAULT_EVENT_TYPE)
		memcpy(o, "click", 5), o += 5;
	else {
		size_t n = strlen(event_type_names[e->type]);
		memcpy(o, event_type_names[e->type], n);
		o += n;
	}
	*o++ = ',';
	o += util_put_uint(o, (uint64_t)e->product_id, 1);
	*o++ = ',';
	if (fault == GEN_FAULT_PRICE)
		*o++ = '-';
	o = gen_put_price(o, fault == GEN_FAULT_PRICE && e->price_cents == 0 ? 100 : e->price_cents);
	if (fault != GEN_FAULT_COLUMN_COUNT) {
		*o++ = ',';
		o = gen_put_time(g, o, e->time_us);
		if (fault == GEN_FAULT_EVENT_TIME)
			memcpy(o - 26 + 5, "13", 2);	/* month 13 */
	}
	*o++ = '\n';
	return o;
}

static void
gen_remember(struct gen *g, const struct event *e)
{
	if (g->undo_n < GEN_RING)	/* the slots a file overwrites follow each other */
		g->undo[g->undo_n++] = g->ring[g->ring_next];
	g->ring[g->ring_next] = *e;
	g->ring_next = (g->ring_next + 1) % GEN_RING;
	if (g->ring_n < GEN_RING)
		g->ring_n++;
}

/* Pick what row i is: a duplicate, an invalid row, a late row or a plain one. */
static char *
gen_one(struct gen *g, char *o, int64_t t, struct gen_stats *st)
{
	struct event e;
	int fault = -1;

	if (g->ring_n > 0 && gen_chance(g, g->thr_dup)) {
		st->duplicates++;
		return gen_put_row(g, o, &g->ring[gen_range(g, 0, (int64_t)g->ring_n - 1)], -1);
	}
	if (gen_chance(g, g->thr_invalid)) {
		fault = (int)gen_range(g, 0, GEN_NFAULTS - 1);
		st->invalid[fault]++;
	} else if (gen_chance(g, g->thr_late)) {
		t -= (int64_t)(g->p.late_delay * 1e6);
		st->late++;
	}
	e = gen_event(g, t);
	if (fault < 0)
		gen_remember(g, &e);
	return gen_put_row(g, o, &e, fault);
}

int
gen_file(struct gen *g, int64_t end_us, const char **text, size_t *len, struct gen_stats *st)
{
	const long n = g->p.rows_per_file;
	/* The rows happened since the previous file; the first file's all at end_us. */
	int64_t start = g->last_end_us == EVENT_TIME_NONE || g->last_end_us > end_us ?
	    end_us : g->last_end_us;

	memset(st, 0, sizeof(*st));
	g->undo_n = 0;
	g->undo_ring_n = g->ring_n;
	g->undo_ring_next = g->ring_next;
	g->len = 0;
	if (gen_reserve(g, sizeof(GEN_HEADER)) < 0)
		return -1;
	memcpy(g->buf, GEN_HEADER, sizeof(GEN_HEADER) - 1);
	g->len = sizeof(GEN_HEADER) - 1;
	for (long i = 0; i < n; i++) {
		int64_t t = start + (int64_t)((__int128)(end_us - start) * (i + 1) / n);
		if (gen_reserve(g, 256) < 0)
			return -1;
		g->len = (size_t)(gen_one(g, g->buf + g->len, t, st) - g->buf);
	}
	st->rows = n;
	g->last_end_us = end_us;
	*text = g->buf;
	*len = g->len;
	return 0;
}
