/*
 * test_dedupe — the duplicate filter: a repeated event_id is caught, an unseen
 * one never is, eviction keeps exactly the entries at or above the watermark,
 * and memory follows the live window instead of the whole stream.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
	struct dedupe *d = dedupe_new();
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
	struct dedupe *d = dedupe_new();
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
	struct dedupe *d = dedupe_new();
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
		struct dedupe *d = dedupe_new();
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
	struct dedupe *d = dedupe_new();
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
	struct dedupe *d = dedupe_new();
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
	struct dedupe *d = dedupe_new();
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
	/* window + one batch at <= 0.7 load fits 2^18 slots of 24 bytes. */
	CHECK(max_mem <= (1u << 18) * 24 + 64, "memory %zu bytes for %zu entries", max_mem, max_count);
	dedupe_free(d);
}

static void
test_no_false_positives(void)
{
	struct dedupe *d = dedupe_new();
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

int
main(void)
{
	RUN(test_insert_and_duplicate);
	RUN(test_growth_across_resizes);
	RUN(test_counter_ids_spread);
	RUN(test_remove_keeps_the_rest);
	RUN(test_evict_keeps_exactly_watermark_and_above);
	RUN(test_evict_shrinks);
	RUN(test_memory_bounded_over_stream);
	RUN(test_no_false_positives);
	return check_exit();
}
