/* dedupe — see include/dedupe.h. */
#include "dedupe.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"

#define DEDUPE_EMPTY	EVENT_TIME_NONE
#define DEDUPE_MIN_CAP	64

struct dedupe_slot {
	uint8_t	id[16];
	int64_t	time_us;	/* DEDUPE_EMPTY: the slot is free */
};

struct dedupe {
	struct dedupe_slot *slot;
	size_t	mask;		/* capacity - 1; capacity is a power of two */
	size_t	count;
	size_t	limit;		/* 0.7 x capacity: grow before count passes it */
	int64_t	min_time;	/* <= every stored time: an eviction below it is a no-op */
};

/*
 * Random UUIDs are uniform already, but ids made by hand or by a counter
 * differ in a few bytes only.  Multiplying one half folds it into the other
 * without collisions, and the murmur3 finaliser spreads every input bit over
 * the low bits that index the table, so such ids do not pile into one run.
 */
static size_t
dedupe_hash(const uint8_t id[16])
{
	uint64_t a, b, h;

	memcpy(&a, id, 8);
	memcpy(&b, id + 8, 8);
	h = a ^ (b * 0x9e3779b97f4a7c15ULL);
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return (size_t)h;
}

/* The slot holding id, or the free slot where it belongs.  One is always free. */
static size_t
dedupe_probe(const struct dedupe_slot *s, size_t mask, const uint8_t id[16])
{
	size_t i = dedupe_hash(id) & mask;

	while (s[i].time_us != DEDUPE_EMPTY && memcmp(s[i].id, id, 16) != 0)
		i = (i + 1) & mask;
	return i;
}

/* Place an entry known to be absent: the first free slot from its home. */
static void
dedupe_place(struct dedupe_slot *s, size_t mask, const struct dedupe_slot *e)
{
	size_t i = dedupe_hash(e->id) & mask;

	while (s[i].time_us != DEDUPE_EMPTY)
		i = (i + 1) & mask;
	s[i] = *e;
}

static struct dedupe_slot *
dedupe_alloc(size_t cap)
{
	struct dedupe_slot *s;

	if (cap > SIZE_MAX / sizeof(*s)) {
		errno = ENOMEM;
		return NULL;
	}
	if ((s = malloc(cap * sizeof(*s))) == NULL)
		return NULL;
	for (size_t i = 0; i < cap; i++)
		s[i].time_us = DEDUPE_EMPTY;
	return s;
}

/* Adopt s (cap slots) as the table; the old one is freed. */
static void
dedupe_install(struct dedupe *d, struct dedupe_slot *s, size_t cap)
{
	free(d->slot);
	d->slot = s;
	d->mask = cap - 1;
	d->limit = cap / 10 * 7 + cap % 10 * 7 / 10;	/* 0.7 x cap, no overflow */
}

/* Move every entry into a new table of cap slots; on failure nothing changes. */
static int
dedupe_resize(struct dedupe *d, size_t cap)
{
	struct dedupe_slot *s = dedupe_alloc(cap);

	if (s == NULL)
		return -1;
	for (size_t i = 0; i <= d->mask; i++)
		if (d->slot[i].time_us != DEDUPE_EMPTY)
			dedupe_place(s, cap - 1, &d->slot[i]);
	dedupe_install(d, s, cap);
	return 0;
}

struct dedupe *
dedupe_new(void)
{
	struct dedupe *d = calloc(1, sizeof(*d));
	struct dedupe_slot *s;

	if (d == NULL)
		return NULL;
	if ((s = dedupe_alloc(DEDUPE_MIN_CAP)) == NULL) {
		free(d);
		return NULL;
	}
	dedupe_install(d, s, DEDUPE_MIN_CAP);
	d->min_time = INT64_MAX;
	return d;
}

void
dedupe_free(struct dedupe *d)
{
	if (d == NULL)
		return;
	free(d->slot);
	free(d);
}

int
dedupe_insert(struct dedupe *d, const uint8_t id[16], int64_t time_us)
{
	size_t i;

	if (time_us == DEDUPE_EMPTY) {
		errno = EINVAL;
		return -1;
	}
	i = dedupe_probe(d->slot, d->mask, id);
	if (d->slot[i].time_us != DEDUPE_EMPTY)
		return 0;
	if (d->count >= d->limit) {
		if (d->mask + 1 > SIZE_MAX / 2) {
			errno = ENOMEM;
			return -1;
		}
		if (dedupe_resize(d, (d->mask + 1) * 2) < 0)
			return -1;
		i = dedupe_probe(d->slot, d->mask, id);
	}
	memcpy(d->slot[i].id, id, 16);
	d->slot[i].time_us = time_us;
	d->count++;
	if (time_us < d->min_time)
		d->min_time = time_us;
	return 1;
}

int
dedupe_contains(const struct dedupe *d, const uint8_t id[16])
{
	return d->slot[dedupe_probe(d->slot, d->mask, id)].time_us != DEDUPE_EMPTY;
}

/*
 * Backward-shift deletion: walk the run after the freed slot and move back
 * each entry whose home lies at or before the hole, so every entry stays
 * reachable from its home without a tombstone.
 */
int
dedupe_remove(struct dedupe *d, const uint8_t id[16])
{
	struct dedupe_slot *s = d->slot;
	size_t hole = dedupe_probe(s, d->mask, id), j = hole, home;

	if (s[hole].time_us == DEDUPE_EMPTY)
		return 0;
	for (;;) {
		j = (j + 1) & d->mask;
		if (s[j].time_us == DEDUPE_EMPTY)
			break;
		home = dedupe_hash(s[j].id) & d->mask;
		/* The hole is between home and j (cyclically): j may move there. */
		if (((j - home) & d->mask) >= ((j - hole) & d->mask)) {
			s[hole] = s[j];
			hole = j;
		}
	}
	s[hole].time_us = DEDUPE_EMPTY;
	d->count--;
	return 1;
}

/*
 * One pass that frees the expired slots and re-places the survivors that a
 * freed slot may now cut off from their home.  It starts just after a slot
 * that was free before the pass, so it walks whole runs of occupied slots;
 * a survivor only moves if a slot earlier in its run was freed, and it only
 * moves backwards, so the slots still ahead of the pass are untouched and a
 * free slot ahead is one that was free before (the end of the run).
 */
static size_t
dedupe_evict_in_place(struct dedupe *d, int64_t watermark_us)
{
	struct dedupe_slot *s = d->slot, e;
	size_t start = 0, n = 0, i;
	int64_t min = INT64_MAX;
	int hole = 0;

	while (s[start].time_us != DEDUPE_EMPTY)
		start++;
	for (size_t k = 1; k <= d->mask + 1; k++) {
		i = (start + k) & d->mask;
		if (s[i].time_us == DEDUPE_EMPTY) {
			hole = 0;
		} else if (s[i].time_us < watermark_us) {
			s[i].time_us = DEDUPE_EMPTY;
			hole = 1;
			n++;
		} else {
			if (s[i].time_us < min)
				min = s[i].time_us;
			if (hole) {
				e = s[i];
				s[i].time_us = DEDUPE_EMPTY;
				dedupe_place(s, d->mask, &e);
			}
		}
	}
	d->count -= n;
	d->min_time = min;
	return n;
}

/* Smallest capacity that holds count at half the maximum load. */
static size_t
dedupe_cap_for(size_t count)
{
	size_t cap = DEDUPE_MIN_CAP;

	while (cap / 20 * 7 < count)
		cap *= 2;
	return cap;
}

size_t
dedupe_evict(struct dedupe *d, int64_t watermark_us)
{
	size_t n, cap;

	/* While the watermark stands still (an idle stream) eviction costs nothing. */
	if (watermark_us <= d->min_time)
		return 0;
	n = dedupe_evict_in_place(d, watermark_us);
	cap = dedupe_cap_for(d->count);

	/*
	 * Shrink only below a quarter of the maximum load, to half of it: a
	 * live set that wobbles around one size does not resize every batch.
	 * If the smaller table cannot be had, the bigger one still works.
	 */
	if (d->count < d->limit / 4 && cap < d->mask + 1)
		(void)dedupe_resize(d, cap);
	return n;
}

size_t
dedupe_count(const struct dedupe *d)
{
	return d->count;
}

size_t
dedupe_memory(const struct dedupe *d)
{
	return sizeof(*d) + (d->mask + 1) * sizeof(*d->slot);
}

void
dedupe_clear(struct dedupe *d)
{
	struct dedupe_slot *s = dedupe_alloc(DEDUPE_MIN_CAP);

	d->count = 0;
	d->min_time = INT64_MAX;
	if (s == NULL) {
		/* Keep the big table rather than fail: it is still a valid empty set. */
		for (size_t i = 0; i <= d->mask; i++)
			d->slot[i].time_us = DEDUPE_EMPTY;
		return;
	}
	dedupe_install(d, s, DEDUPE_MIN_CAP);
}
