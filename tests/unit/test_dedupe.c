/*
 * test_dedupe — the duplicate filter: a repeated event_id is caught, an unseen
 * one never is, eviction keeps exactly the entries at or above the watermark,
 * and memory follows the live window instead of the whole stream.  With a cap,
 * the set never holds more than max_ids, forgets exactly the oldest by
 * (time, id), and its memory stays under the bound dedupe.h states.
 *
 * The capped model test draws from EVPIPE_SEED (printed; a fresh one if unset).
 * EVPIPE_DEDUPE_BENCH=1 adds an uncapped run to the 5 M insert timing; for
 * release-build numbers:
 *   cc -std=c17 -O2 -D_GNU_SOURCE -Iinclude -Itests/unit tests/unit/test_dedupe.c \
 *       build/libevpipe.a -o /tmp/test_dedupe && EVPIPE_DEDUPE_BENCH=1 /tmp/test_dedupe
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "check.h"
#include "dedupe.h"
#include "event.h"

/* splitmix64: a deterministic stream, so any id can be made again from its index. */
static uint64_t
mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static void
random_id(uint8_t id[16], uint64_t seed, uint64_t i)
{
	uint64_t a = mix64(seed ^ mix64(2 * i)), b = mix64(seed ^ mix64(2 * i + 1));

	memcpy(id, &a, 8);
	memcpy(id + 8, &b, 8);
	id[6] = (id[6] & 0x0f) | 0x40;	/* a version 4 UUID, like evgen's */
	id[8] = (id[8] & 0x3f) | 0x80;
}

/* An id a counter or a careless generator would make: all zero but for i. */
static void
counter_id(uint8_t id[16], uint64_t i, int at)
{
	memset(id, 0, 16);
	memcpy(id + at, &i, sizeof(i));
}

static void
test_insert_and_duplicate(void)
{
	struct dedupe *d = dedupe_new(0);
	uint8_t a[16], b[16];

	CHECK(d != NULL, "dedupe_new");
	if (d == NULL)
		return;
	random_id(a, 1, 0);
	random_id(b, 1, 1);
	CHECK(!dedupe_contains(d, a), "empty set contains nothing");
	CHECK(dedupe_insert(d, a, 100) == 1, "first insert is new");
	CHECK(dedupe_insert(d, a, 100) == 0, "second insert is a duplicate");
	CHECK(dedupe_insert(d, a, 999) == 0, "same id, other time: still a duplicate");
	CHECK(dedupe_contains(d, a), "contains after insert");
	CHECK(!dedupe_contains(d, b), "other id absent");
	CHECK(dedupe_insert(d, b, 100) == 1, "other id is new");
	CHECK(dedupe_count(d) == 2, "count %zu", dedupe_count(d));
	errno = 0;
	CHECK(dedupe_insert(d, b, EVENT_TIME_NONE) == -1 && errno == EINVAL,
	    "EVENT_TIME_NONE is refused");
	/* The first time stored is the one eviction looks at. */
	CHECK(dedupe_evict(d, 500) == 2, "both had time 100");
	CHECK(dedupe_count(d) == 0 && !dedupe_contains(d, a), "evicted");
	/* A standing watermark evicts nothing, an entry below it is still found. */
	CHECK(dedupe_insert(d, a, 600) == 1 && dedupe_evict(d, 500) == 0, "nothing below 500");
	CHECK(dedupe_insert(d, b, 400) == 1 && dedupe_evict(d, 500) == 1, "the 400 goes");
	CHECK(dedupe_contains(d, a) && !dedupe_contains(d, b), "the right one went");
	dedupe_free(d);
	dedupe_free(NULL);
}

static void
test_growth_across_resizes(void)
{
	struct dedupe *d = dedupe_new(0);
	size_t n = 200000, mem0;
	uint8_t id[16];
	int bad = 0;

	if (d == NULL) {
		CHECK(0, "dedupe_new");
		return;
	}
	mem0 = dedupe_memory(d);
	for (size_t i = 0; i < n; i++) {
		random_id(id, 7, i);
		if (dedupe_insert(d, id, (int64_t)i) != 1)
			bad++;
		/* Every so often look back across the resizes that happened since. */
		if (i % 4099 == 0) {
			random_id(id, 7, i / 2);
			if (dedupe_insert(d, id, 0) != 0)
				bad++;
		}
	}
	CHECK(bad == 0, "%d inserts misreported", bad);
	CHECK(dedupe_count(d) == n, "count %zu", dedupe_count(d));
	for (size_t i = 0; i < n; i++) {
		random_id(id, 7, i);
		if (!dedupe_contains(d, id))
			bad++;
	}
	CHECK(bad == 0, "%d ids lost in resizes", bad);
	CHECK(dedupe_memory(d) > mem0, "grew: %zu", dedupe_memory(d));
	/* Load <= 0.7: n entries of 24 bytes need at least n / 0.7 slots. */
	CHECK(dedupe_memory(d) >= n * 24 * 10 / 7, "load above 0.7: %zu bytes", dedupe_memory(d));
	dedupe_free(d);
}

static void
test_counter_ids_spread(void)
{
	struct dedupe *d = dedupe_new(0);
	size_t n = 1000000;
	uint8_t id[16];
	int bad = 0;

	/*
	 * Without mixing, ids that differ only in a few bytes would share a home
	 * slot and this would take hours instead of a fraction of a second.
	 */
	if (d == NULL) {
		CHECK(0, "dedupe_new");
		return;
	}
	for (int at = 0; at <= 8; at += 8)
		for (size_t i = 0; i < n / 2; i++) {
			counter_id(id, i, at);
			if (dedupe_insert(d, id, 1) != (at == 0 || i != 0 ? 1 : 0))
				bad++;
		}
	CHECK(bad == 0, "%d inserts misreported", bad);
	CHECK(dedupe_count(d) == n - 1, "count %zu (the all-zero id is made twice)", dedupe_count(d));
	dedupe_free(d);
}

/*
 * A file whose reading fails takes its events back out; the entries that
 * shared their runs must stay findable.  Sizes sit just under the growth
 * points, where runs are longest, and wrap around the end of the table.
 */
static void
test_remove_keeps_the_rest(void)
{
	static const size_t sizes[] = { 44, 89, 700, 5000, 45000 };
	uint8_t id[16];
	int bad = 0;

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		struct dedupe *d = dedupe_new(0);
		size_t n = sizes[k], removed = 0;

		if (d == NULL) {
			CHECK(0, "dedupe_new");
			return;
		}
		for (size_t i = 0; i < n; i++) {
			random_id(id, 40 + k, i);
			bad += dedupe_insert(d, id, (int64_t)i) != 1;
		}
		for (size_t i = 0; i < n; i++) {
			if (mix64(i * 7 + k) % 3 == 0)
				continue;
			random_id(id, 40 + k, i);
			bad += dedupe_remove(d, id) != 1;
			bad += dedupe_remove(d, id) != 0;
			removed++;
		}
		for (size_t i = 0; i < n; i++) {
			random_id(id, 40 + k, i);
			bad += dedupe_contains(d, id) != (mix64(i * 7 + k) % 3 == 0);
		}
		CHECK(dedupe_count(d) == n - removed, "size %zu: count %zu", n, dedupe_count(d));
		for (size_t i = 0; i < n; i++) {
			random_id(id, 40 + k, i);
			bad += dedupe_insert(d, id, 1) != (mix64(i * 7 + k) % 3 == 0 ? 0 : 1);
		}
		CHECK(dedupe_count(d) == n, "size %zu: count after re-insert %zu", n, dedupe_count(d));
		dedupe_free(d);
	}
	CHECK(bad == 0, "%d wrong answers around removals", bad);
}

static void
test_evict_keeps_exactly_watermark_and_above(void)
{
	struct dedupe *d = dedupe_new(0);
	enum { N = 50000 };
	static int64_t times[N];
	static uint8_t live[N];
	size_t want, dropped;
	uint8_t id[16];
	int64_t wm;
	int bad = 0;

	if (d == NULL) {
		CHECK(0, "dedupe_new");
		return;
	}
	for (int round = 0; round < 6; round++) {
		/* Add a fresh slice each round, then move the watermark up. */
		for (size_t i = (size_t)round * N / 6; i < (size_t)(round + 1) * N / 6; i++) {
			times[i] = (int64_t)(mix64(i) % 1000) - 500 + round * 100;
			random_id(id, 3, i);
			live[i] = 1;
			if (dedupe_insert(d, id, times[i]) != 1)
				bad++;
		}
		wm = -400 + round * 150;
		want = 0;
		for (size_t i = 0; i < N; i++)
			if (live[i] && times[i] < wm)
				live[i] = 0, want++;
		dropped = dedupe_evict(d, wm);
		CHECK(dropped == want, "round %d: dropped %zu, expected %zu", round, dropped, want);
		want = 0;
		for (size_t i = 0; i < N; i++) {
			random_id(id, 3, i);
			if (dedupe_contains(d, id) != live[i])
				bad++;
			want += live[i];
		}
		CHECK(dedupe_count(d) == want, "round %d: count %zu, expected %zu",
		    round, dedupe_count(d), want);
	}
	CHECK(bad == 0, "%d ids in the wrong state after eviction", bad);
	CHECK(dedupe_evict(d, INT64_MIN + 1) == 0, "nothing below the lowest watermark");
	dedupe_free(d);
}

static void
test_evict_shrinks(void)
{
	struct dedupe *d = dedupe_new(0);
	size_t big, n = 100000;
	uint8_t id[16];
	int bad = 0;

	if (d == NULL) {
		CHECK(0, "dedupe_new");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		random_id(id, 5, i);
		bad += dedupe_insert(d, id, (int64_t)i) != 1;
	}
	big = dedupe_memory(d);
	CHECK(dedupe_evict(d, (int64_t)(n - 100)) == n - 100, "evicted all but 100");
	CHECK(dedupe_memory(d) < big / 100, "shrank: %zu -> %zu bytes", big, dedupe_memory(d));
	for (size_t i = 0; i < n; i++) {
		random_id(id, 5, i);
		bad += dedupe_contains(d, id) != (i >= n - 100);
	}
	CHECK(bad == 0, "%d ids in the wrong state after shrinking", bad);
	dedupe_clear(d);
	CHECK(dedupe_count(d) == 0, "cleared");
	random_id(id, 5, n - 1);
	CHECK(!dedupe_contains(d, id) && dedupe_insert(d, id, 1) == 1, "usable after clear");
	dedupe_free(d);
}

/*
 * 10 M events, in time order with jitter, 1% of them re-sent from within the
 * window; a batch of 10 000 then an eviction at "newest - window".  The set
 * must stay the size of the window, and every re-send must be caught.
 */
static void
test_memory_bounded_over_stream(void)
{
	struct dedupe *d = dedupe_new(0);
	const size_t total = 10000000, batch = 10000, window = 100000;
	size_t max_count = 0, max_mem = 0, dups = 0, want_dups = 0;
	uint8_t id[16];
	int64_t t;
	int bad = 0;

	if (d == NULL) {
		CHECK(0, "dedupe_new");
		return;
	}
	for (size_t i = 0; i < total; i++) {
		t = (int64_t)i + (int64_t)(mix64(i) % 64);
		random_id(id, 11, i);
		bad += dedupe_insert(d, id, t) < 0;
		if (i % 100 == 99 && i > window) {
			random_id(id, 11, i - window / 2);
			want_dups++;
			dups += dedupe_insert(d, id, t) == 0;
		}
		if (i % batch == batch - 1) {
			dedupe_evict(d, (int64_t)i - (int64_t)window);
			if (dedupe_count(d) > max_count)
				max_count = dedupe_count(d);
			if (dedupe_memory(d) > max_mem)
				max_mem = dedupe_memory(d);
		}
	}
	CHECK(bad == 0, "%d inserts failed", bad);
	CHECK(dups == want_dups, "caught %zu of %zu re-sends", dups, want_dups);
	CHECK(max_count <= window + 64, "live set %zu > window %zu", max_count, window);
	CHECK(max_count >= window - 64, "live set %zu < window %zu", max_count, window);
	/* window + one batch at <= 0.7 load fits 2^18 slots of 24 bytes (+ the struct). */
	CHECK(max_mem <= (1u << 18) * 24 + 256, "memory %zu bytes for %zu entries", max_mem, max_count);
	dedupe_free(d);
}

static void
test_no_false_positives(void)
{
	struct dedupe *d = dedupe_new(0);
	size_t n = 1000000, fp = 0, fn = 0;
	uint8_t id[16];

	if (d == NULL) {
		CHECK(0, "dedupe_new");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		random_id(id, 21, i);
		if (dedupe_insert(d, id, 1) != 1)
			fp++;
	}
	for (size_t i = 0; i < n; i++) {
		random_id(id, 22, i);
		fp += dedupe_contains(d, id);
		random_id(id, 21, i);
		fn += !dedupe_contains(d, id);
	}
	CHECK(fp == 0, "%zu unseen ids reported as seen", fp);
	CHECK(fn == 0, "%zu seen ids reported as unseen", fn);
	CHECK(dedupe_count(d) == n, "count %zu", dedupe_count(d));
	dedupe_free(d);
}


/* --- the cap ---------------------------------------------------------------------- */

static uint64_t seed;

/* The capacity dedupe.h promises for max_ids, worked out here on its own. */
static size_t
capped_slots(size_t max_ids)
{
	size_t cap = 64;

	while ((double)cap * 0.7 < (double)max_ids)
		cap *= 2;
	return cap;
}

/* A reference set: a plain array, sorted by (time, id) when the oldest must go. */
struct ref_entry {
	int64_t	time_us;
	uint8_t	id[16];
};

struct ref {
	struct ref_entry *e;
	size_t	n, max_ids;
	uint64_t evicted_full;
	int64_t	horizon;
};

static int
ref_cmp(const void *a, const void *b)
{
	const struct ref_entry *x = a, *y = b;

	if (x->time_us != y->time_us)
		return x->time_us < y->time_us ? -1 : 1;
	return memcmp(x->id, y->id, 16);
}

static size_t
ref_find(const struct ref *r, const uint8_t id[16])
{
	for (size_t i = 0; i < r->n; i++)
		if (memcmp(r->e[i].id, id, 16) == 0)
			return i;
	return r->n;
}

static int
ref_insert(struct ref *r, const uint8_t id[16], int64_t time_us)
{
	size_t go;

	if (ref_find(r, id) < r->n)
		return 0;
	if (r->n == r->max_ids) {
		go = r->max_ids / 4 ? r->max_ids / 4 : 1;
		qsort(r->e, r->n, sizeof(*r->e), ref_cmp);
		if (r->e[go - 1].time_us > r->horizon)
			r->horizon = r->e[go - 1].time_us;
		memmove(r->e, r->e + go, (r->n - go) * sizeof(*r->e));
		r->n -= go;
		r->evicted_full += go;
	}
	r->e[r->n].time_us = time_us;
	memcpy(r->e[r->n].id, id, 16);
	r->n++;
	return 1;
}

static size_t
ref_evict(struct ref *r, int64_t wm)
{
	size_t kept = 0;

	for (size_t i = 0; i < r->n; i++)
		if (r->e[i].time_us >= wm)
			r->e[kept++] = r->e[i];
	kept = r->n - kept;
	r->n -= kept;
	return kept;
}

/* The set holds exactly the reference's ids: as many, and each of them. */
static int
ref_differs(const struct ref *r, const struct dedupe *d)
{
	int bad = dedupe_count(d) != r->n;

	for (size_t i = 0; i < r->n; i++)
		bad += !dedupe_contains(d, r->e[i].id);
	return bad;
}

/*
 * Random inserts (some re-sent, some of ids forgotten already), removes and
 * watermark evictions, against the reference.  Times come from a narrow range
 * so that many tie and the id must break them.
 */
static void
test_cap_keeps_newest_by_time_then_id(void)
{
	static const size_t caps[] = { 1, 2, 3, 5, 64, 100, 1000, 1001 };
	uint8_t id[16];

	for (size_t k = 0; k < sizeof(caps) / sizeof(caps[0]); k++) {
		size_t max_ids = caps[k], steps = max_ids * 12 + 50, ids = max_ids * 6 + 20;
		struct ref r = { calloc(max_ids, sizeof(struct ref_entry)), 0, max_ids, 0,
		    EVENT_TIME_NONE };
		struct dedupe *d = dedupe_new(max_ids);
		uint64_t s = seed + k, x;
		/* Times near the lowest storable one, around 0, and like evgen's. */
		int64_t t, wm = k % 3 == 0 ? INT64_MIN + 1 : k % 3 == 1 ? -(int64_t)max_ids :
		    INT64_C(1767225600000000);
		int bad = 0, got, want;

		if (d == NULL || r.e == NULL) {
			CHECK(0, "dedupe_new(%zu) or the reference: out of memory", max_ids);
			dedupe_free(d);
			free(r.e);
			return;
		}
		CHECK(dedupe_evicted_full(d) == 0 && dedupe_full_horizon(d) == EVENT_TIME_NONE,
		    "a new set has forgotten nothing");
		for (size_t step = 0; step < steps; step++) {
			x = mix64(s ^ mix64(step + 0x1000000));
			random_id(id, s, x % ids);
			t = wm + (int64_t)(x >> 40) % (int64_t)(max_ids / 2 + 3);
			if (x % 97 == 0) {
				bad += dedupe_remove(d, id) != (ref_find(&r, id) < r.n);
				if (ref_find(&r, id) < r.n)
					r.e[ref_find(&r, id)] = r.e[--r.n];
				continue;
			}
			if (x % 89 == 0) {
				wm += (int64_t)(x >> 50) % 3;
				bad += dedupe_evict(d, wm) != ref_evict(&r, wm);
				continue;
			}
			want = ref_insert(&r, id, t);
			got = dedupe_insert(d, id, t);
			bad += got != want;
			bad += dedupe_count(d) > max_ids;
			bad += dedupe_memory(d) > dedupe_memory_bound(max_ids);
			if (step % 61 == 0 || step == steps - 1)
				bad += ref_differs(&r, d);
		}
		CHECK(bad == 0, "cap %zu: %d differences from the reference (seed %llu)", max_ids,
		    bad, (unsigned long long)seed);
		CHECK(dedupe_evicted_full(d) == r.evicted_full && r.evicted_full > 0,
		    "cap %zu: evicted_full %llu, reference %llu", max_ids,
		    (unsigned long long)dedupe_evicted_full(d), (unsigned long long)r.evicted_full);
		CHECK(dedupe_full_horizon(d) == r.horizon, "cap %zu: horizon %lld, reference %lld",
		    max_ids, (long long)dedupe_full_horizon(d), (long long)r.horizon);
		CHECK(dedupe_memory_peak(d) <= dedupe_memory_bound(max_ids) / 4 * 5 + 256,
		    "cap %zu: peak %zu, bound %zu", max_ids, dedupe_memory_peak(d),
		    dedupe_memory_bound(max_ids));
		dedupe_free(d);
		free(r.e);
	}
}

/* 10 x max_ids random inserts: never more than max_ids, never more memory than promised. */
static void
test_cap_bounds_count_and_memory(void)
{
	static const size_t caps[] = { 1, 44, 45, 89, 90, 1000, 5000, 300000 };
	uint8_t id[16];

	for (size_t k = 0; k < sizeof(caps) / sizeof(caps[0]); k++) {
		size_t max_ids = caps[k], n = max_ids * 10, max_count = 0, max_mem = 0;
		size_t table = capped_slots(max_ids) * 24, bound = dedupe_memory_bound(max_ids);
		struct dedupe *d = dedupe_new(max_ids);
		int bad = 0;

		if (d == NULL) {
			CHECK(0, "dedupe_new(%zu)", max_ids);
			return;
		}
		for (size_t i = 0; i < n; i++) {
			random_id(id, 60 + k, i);
			bad += dedupe_insert(d, id, (int64_t)(mix64(i) % 1000000)) != 1;
			bad += !dedupe_contains(d, id);
			if (dedupe_count(d) > max_count)
				max_count = dedupe_count(d);
			if (dedupe_memory(d) > max_mem)
				max_mem = dedupe_memory(d);
		}
		CHECK(bad == 0, "cap %zu: %d inserts misreported or lost", max_ids, bad);
		CHECK(max_count == max_ids, "cap %zu: count reached %zu", max_ids, max_count);
		CHECK(dedupe_evicted_full(d) == n - dedupe_count(d), "cap %zu: evicted %llu of %zu",
		    max_ids, (unsigned long long)dedupe_evicted_full(d), n - dedupe_count(d));
		CHECK(bound >= table && bound <= table + 256, "cap %zu: bound %zu for a %zu-byte table",
		    max_ids, bound, table);
		CHECK(max_mem <= bound, "cap %zu: memory %zu > bound %zu", max_ids, max_mem, bound);
		CHECK(dedupe_memory_peak(d) <= table + table / 4 + 256,
		    "cap %zu: peak %zu > 1.25 x %zu-byte table", max_ids, dedupe_memory_peak(d), table);
		dedupe_free(d);
	}
	CHECK(dedupe_memory_bound(0) == 0, "no cap, no bound");
	errno = 0;
	CHECK(dedupe_new(SIZE_MAX) == NULL && errno == ENOMEM, "a cap no table can hold");
}

/* Past the cap, then a watermark that drops most: the table shrinks, and grows again. */
static void
test_cap_shrinks_and_grows(void)
{
	const size_t max_ids = 5000, table = capped_slots(max_ids) * 24;
	struct dedupe *d = dedupe_new(max_ids);
	uint8_t id[16];
	int bad = 0;

	if (d == NULL) {
		CHECK(0, "dedupe_new");
		return;
	}
	for (int round = 0; round < 3; round++) {
		int64_t t0 = round * 100000;

		for (size_t i = 0; i < 3 * max_ids; i++) {
			random_id(id, 90 + (uint64_t)round, i);
			bad += dedupe_insert(d, id, t0 + (int64_t)i) != 1;
		}
		CHECK(dedupe_memory(d) > table && dedupe_memory(d) <= dedupe_memory_bound(max_ids),
		    "round %d: full: %zu bytes", round, dedupe_memory(d));
		/* Kept: the newest 5000 at most; the watermark leaves 100 of them. */
		CHECK(dedupe_evict(d, t0 + (int64_t)(3 * max_ids - 100)) >= dedupe_count(d),
		    "round %d: watermark", round);
		CHECK(dedupe_count(d) == 100 && dedupe_memory(d) <= table / 4 + 256,
		    "round %d: %zu ids in %zu bytes", round, dedupe_count(d), dedupe_memory(d));
		for (size_t i = 0; i < 3 * max_ids; i++) {
			random_id(id, 90 + (uint64_t)round, i);
			bad += dedupe_contains(d, id) != (i >= 3 * max_ids - 100);
		}
	}
	CHECK(bad == 0, "%d wrong answers", bad);
	CHECK(dedupe_memory_peak(d) <= table + table / 4 + 256, "peak %zu for a %zu-byte table",
	    dedupe_memory_peak(d), table);
	dedupe_free(d);
}

/*
 * The same ids inserted in two orders (so in two table layouts, one of them
 * after removals), then the same stream past the cap: the same survivors.
 * Few distinct times, so the order among equal times (the id) decides.
 */
static void
test_cap_deterministic(void)
{
	const size_t max_ids = 4000, ids = 20000;
	struct dedupe *a = dedupe_new(max_ids), *b = dedupe_new(max_ids);
	uint8_t id[16];
	int bad = 0;

	if (a == NULL || b == NULL) {
		CHECK(0, "dedupe_new");
		dedupe_free(a);
		dedupe_free(b);
		return;
	}
	for (size_t i = 0; i < max_ids; i++) {
		random_id(id, 70, i);
		bad += dedupe_insert(a, id, (int64_t)(mix64(i) % 7)) != 1;
		random_id(id, 71, i);	/* b first holds others, then drops them */
		bad += dedupe_insert(b, id, 0) != 1;
	}
	for (size_t i = max_ids; i-- > 0;) {
		random_id(id, 71, i);
		bad += dedupe_remove(b, id) != 1;
		random_id(id, 70, i);
		bad += dedupe_insert(b, id, (int64_t)(mix64(i) % 7)) != 1;
	}
	for (size_t i = max_ids; i < ids; i++) {
		random_id(id, 70, i);
		bad += dedupe_insert(a, id, (int64_t)(mix64(i) % 7)) != 1;
		bad += dedupe_insert(b, id, (int64_t)(mix64(i) % 7)) != 1;
	}
	for (size_t i = 0; i < ids; i++) {
		random_id(id, 70, i);
		bad += dedupe_contains(a, id) != dedupe_contains(b, id);
	}
	CHECK(bad == 0, "%d ids differ between the two insertion orders", bad);
	CHECK(dedupe_count(a) == dedupe_count(b) && dedupe_evicted_full(a) == dedupe_evicted_full(b)
	    && dedupe_full_horizon(a) == dedupe_full_horizon(b), "counts %zu %zu",
	    dedupe_count(a), dedupe_count(b));
	dedupe_free(a);
	dedupe_free(b);
}

/* The counters by hand, the new id kept even when it is the oldest, and clear. */
static void
test_cap_counters_and_clear(void)
{
	struct dedupe *d = dedupe_new(4);
	uint8_t id[16];
	int bad = 0;

	if (d == NULL) {
		CHECK(0, "dedupe_new");
		return;
	}
	for (uint64_t i = 0; i < 4; i++) {
		counter_id(id, i, 0);
		bad += dedupe_insert(d, id, (int64_t)(10 * (i + 1))) != 1;	/* 10 20 30 40 */
	}
	counter_id(id, 4, 0);
	bad += dedupe_insert(d, id, 5) != 1;	/* older than all: still stored, the 10 goes */
	CHECK(bad == 0 && dedupe_count(d) == 4 && dedupe_contains(d, id), "the old newcomer stays");
	counter_id(id, 0, 0);
	CHECK(!dedupe_contains(d, id), "time 10 forgotten");
	CHECK(dedupe_evicted_full(d) == 1 && dedupe_full_horizon(d) == 10, "evicted %llu up to %lld",
	    (unsigned long long)dedupe_evicted_full(d), (long long)dedupe_full_horizon(d));
	counter_id(id, 5, 0);
	bad += dedupe_insert(d, id, 1) != 1;	/* now the 5 goes: the horizon stays 10 */
	counter_id(id, 4, 0);
	CHECK(bad == 0 && !dedupe_contains(d, id) && dedupe_full_horizon(d) == 10 &&
	    dedupe_evicted_full(d) == 2, "second: horizon %lld", (long long)dedupe_full_horizon(d));
	/* A watermark eviction is not a cap eviction. */
	CHECK(dedupe_evict(d, 25) == 2 && dedupe_evicted_full(d) == 2, "watermark: not counted");
	/* Equal times: the smaller id goes first. */
	for (uint64_t i = 10; i < 12; i++) {
		counter_id(id, i, 8);	/* equal up to byte 8 */
		bad += dedupe_insert(d, id, 50) != 1;
	}
	counter_id(id, 12, 0);
	bad += dedupe_insert(d, id, 60) != 1;	/* 30 40 50 50 60: the 30 goes */
	bad += dedupe_insert(d, (uint8_t[16]){ 1 }, 70) != 1;	/* 40 50 50 60 70: the 40 */
	bad += dedupe_insert(d, (uint8_t[16]){ 2 }, 70) != 1;	/* 50 50 60 70 70: id 10 */
	counter_id(id, 10, 8);
	CHECK(bad == 0 && !dedupe_contains(d, id), "the smaller id of a tie went first");
	counter_id(id, 11, 8);
	CHECK(dedupe_contains(d, id) && dedupe_full_horizon(d) == 50, "horizon %lld",
	    (long long)dedupe_full_horizon(d));
	dedupe_clear(d);
	CHECK(dedupe_count(d) == 0 && dedupe_evicted_full(d) == 5, "clear keeps the counters");
	for (uint64_t i = 0; i < 9; i++) {
		counter_id(id, i, 3);
		bad += dedupe_insert(d, id, 100) != 1;
	}
	CHECK(bad == 0 && dedupe_count(d) <= 4, "clear keeps the cap: %zu", dedupe_count(d));
	dedupe_free(d);
}

static double
now_s(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0;
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 5 M random ids with times over five minutes; prints ns per insert and memory. */
static void
bench_inserts(size_t max_ids)
{
	struct dedupe *d = dedupe_new(max_ids);
	const size_t n = 5000000;
	struct rusage ru;
	uint8_t id[16];
	double t0;
	int bad = 0;

	if (d == NULL) {
		CHECK(0, "dedupe_new(%zu)", max_ids);
		return;
	}
	t0 = now_s();
	for (size_t i = 0; i < n; i++) {
		random_id(id, 80, i);
		bad += dedupe_insert(d, id, (int64_t)(mix64(i) % 300000000)) != 1;
	}
	t0 = now_s() - t0;
	CHECK(bad == 0, "%d inserts misreported", bad);
	CHECK(max_ids == 0 || dedupe_count(d) <= max_ids, "count %zu", dedupe_count(d));
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		ru.ru_maxrss = -1;
	printf("dedupe: %zu inserts, cap %zu: %.3f s, %.0f ns/insert; %zu ids, %zu bytes, peak "
	    "%zu bytes, %llu evicted (full), process max RSS %ld KiB\n", n, max_ids, t0,
	    t0 * 1e9 / (double)n, dedupe_count(d), dedupe_memory(d), dedupe_memory_peak(d),
	    (unsigned long long)dedupe_evicted_full(d), ru.ru_maxrss);
	dedupe_free(d);
}

static void
test_cap_5m_inserts_finish(void)
{
	bench_inserts(300000);
	if (getenv("EVPIPE_DEDUPE_BENCH") != NULL)
		bench_inserts(0);
}

int
main(void)
{
	const char *env = getenv("EVPIPE_SEED");

	seed = env != NULL && *env != '\0' ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
	printf("dedupe: seed %llu (EVPIPE_SEED=%llu to repeat)\n", (unsigned long long)seed,
	    (unsigned long long)seed);
	RUN(test_insert_and_duplicate);
	RUN(test_growth_across_resizes);
	RUN(test_counter_ids_spread);
	RUN(test_remove_keeps_the_rest);
	RUN(test_evict_keeps_exactly_watermark_and_above);
	RUN(test_evict_shrinks);
	RUN(test_memory_bounded_over_stream);
	RUN(test_no_false_positives);
	RUN(test_cap_keeps_newest_by_time_then_id);
	RUN(test_cap_bounds_count_and_memory);
	RUN(test_cap_shrinks_and_grows);
	RUN(test_cap_deterministic);
	RUN(test_cap_counters_and_clear);
	RUN(test_cap_5m_inserts_finish);
	return check_exit();
}
