/* dedupe — see include/dedupe.h. */
#include "dedupe.h"

#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"

#define DEDUPE_EMPTY	EVENT_TIME_NONE
#define DEDUPE_MIN_CAP	64
#define DEDUPE_FULL_SHARE 4	/* a full set forgets 1 / this of max_ids at once */
#define DEDUPE_BUCKETS	1024	/* a histogram pass cuts a key's range by >= 512 */

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
	int64_t	max_time;	/* >= every stored time: where the oldest's search ends */
	size_t	max_ids;	/* 0: no cap */
	size_t	max_cap;	/* the capacity max_ids needs; 0: no cap */
	size_t	peak;		/* most bytes held at once */
	uint64_t evicted_full;
	int64_t	full_horizon;
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

/* The most entries cap slots take: 0.7 x cap, without overflow. */
static size_t
dedupe_limit(size_t cap)
{
	return cap / 10 * 7 + cap % 10 * 7 / 10;
}

/* Bytes held by a set with tables of these capacities. */
static size_t
dedupe_bytes(size_t cap1, size_t cap2)
{
	return sizeof(struct dedupe) + (cap1 + cap2) * sizeof(struct dedupe_slot);
}

/* Adopt s (cap slots) as the table; the old one is freed. */
static void
dedupe_install(struct dedupe *d, struct dedupe_slot *s, size_t cap)
{
	if (d->slot != NULL && dedupe_bytes(d->mask + 1, cap) > d->peak)
		d->peak = dedupe_bytes(d->mask + 1, cap);
	if (dedupe_bytes(cap, 0) > d->peak)
		d->peak = dedupe_bytes(cap, 0);
	free(d->slot);
	d->slot = s;
	d->mask = cap - 1;
	d->limit = dedupe_limit(cap);
}

/*
 * The capacity to use for a wanted one: with a cap, C / 2 is never used
 * (C / 4 grows straight to C, C shrinks to C / 4 at most), so a resize never
 * holds C and C / 2 at once; see dedupe.h.
 */
static size_t
dedupe_fit(const struct dedupe *d, size_t cap)
{
	if (d->max_cap != 0 && cap >= d->max_cap / 2)
		return d->max_cap;
	return cap;
}

/* C for max_ids: the smallest power of two >= DEDUPE_MIN_CAP that holds it; 0 if none. */
static size_t
dedupe_max_cap(size_t max_ids)
{
	size_t cap = DEDUPE_MIN_CAP;

	while (dedupe_limit(cap) < max_ids) {
		if (cap > SIZE_MAX / 2 / sizeof(struct dedupe_slot))
			return 0;
		cap *= 2;
	}
	return cap;
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
dedupe_new(size_t max_ids)
{
	struct dedupe *d = calloc(1, sizeof(*d));
	struct dedupe_slot *s;
	size_t cap;

	if (d == NULL)
		return NULL;
	d->max_ids = max_ids;
	if (max_ids != 0 && (d->max_cap = dedupe_max_cap(max_ids)) == 0) {
		free(d);
		errno = ENOMEM;
		return NULL;
	}
	cap = dedupe_fit(d, DEDUPE_MIN_CAP);
	if ((s = dedupe_alloc(cap)) == NULL) {
		free(d);
		return NULL;
	}
	dedupe_install(d, s, cap);
	d->min_time = INT64_MAX;
	d->max_time = INT64_MIN;
	d->full_horizon = EVENT_TIME_NONE;
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

/*
 * The order a full set forgets in: a key of three 64-bit parts, the time
 * with its sign bit flipped (unsigned order is then signed order), then the
 * id's two halves read big-endian (their order is then memcmp's).
 */
static uint64_t
dedupe_time_part(int64_t time_us)
{
	return (uint64_t)time_us ^ (UINT64_C(1) << 63);
}

static uint64_t
dedupe_part(const struct dedupe_slot *e, int level)
{
	uint64_t v;

	if (level == 0)
		return dedupe_time_part(e->time_us);
	memcpy(&v, e->id + 8 * (level - 1), 8);
	return be64toh(v);
}

/* e's first `level` parts equal key's. */
static int
dedupe_prefix_is(const struct dedupe_slot *e, const uint64_t key[3], int level)
{
	for (int l = 0; l < level; l++)
		if (dedupe_part(e, l) != key[l])
			return 0;
	return 1;
}

/* e's key <= thr. */
static int
dedupe_key_le(const struct dedupe_slot *e, const uint64_t thr[3])
{
	uint64_t v;

	for (int level = 0; level < 3; level++)
		if ((v = dedupe_part(e, level)) != thr[level])
			return v < thr[level];
	return 1;
}

/*
 * One pass that frees the slots whose key is <= thr and re-places the
 * survivors that a freed slot may now cut off from their home.  It starts
 * just after a slot that was free before the pass, so it walks whole runs of
 * occupied slots; a survivor only moves if a slot earlier in its run was
 * freed, and it only moves backwards, so the slots still ahead of the pass
 * are untouched and a free slot ahead is one that was free before (the end
 * of the run).
 */
static size_t
dedupe_drop_upto(struct dedupe *d, const uint64_t thr[3])
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
		} else if (dedupe_key_le(&s[i], thr)) {
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

/*
 * A histogram of one key part: count and actual range of the values in each
 * bucket; the extra last bucket counts the slots outside the range.
 */
struct dedupe_hist {
	size_t	n[DEDUPE_BUCKETS + 1];
	uint64_t lo[DEDUPE_BUCKETS + 1], hi[DEDUPE_BUCKETS + 1];
};

/*
 * The first pass over the times, where every stored one is in [lo, hi]:
 * counts only, and no branch, since which slots are empty is random and a
 * mispredicted branch per slot would cost more than the pass itself.  An
 * empty slot's time part is 0, below any stored time's.
 */
static void
dedupe_hist_times(const struct dedupe *d, struct dedupe_hist *h, uint64_t lo, uint64_t hi,
    int shift)
{
	uint64_t v;

	memset(h->n, 0, sizeof(h->n));
	for (size_t i = 0; i <= d->mask; i++) {
		v = dedupe_time_part(d->slot[i].time_us) - lo;
		h->n[v <= hi - lo ? (size_t)(v >> shift) : DEDUPE_BUCKETS]++;
	}
}

/*
 * The later passes, over a narrow range or among equal times: few entries
 * count, so the branches that skip the rest are well predicted, and each
 * bucket's actual range is kept (it often is one value, which ends the search).
 */
static void
dedupe_hist_pass(const struct dedupe *d, struct dedupe_hist *h, const uint64_t key[3],
    int level, uint64_t lo, uint64_t hi, int shift)
{
	const struct dedupe_slot *e;
	uint64_t v;
	size_t b;

	for (b = 0; b < DEDUPE_BUCKETS; b++) {
		h->n[b] = 0;
		h->lo[b] = UINT64_MAX;
		h->hi[b] = 0;
	}
	for (size_t i = 0; i <= d->mask; i++) {
		e = &d->slot[i];
		/*
		 * The time is compared first, so an empty slot (whose time part, 0,
		 * is no stored time's) is skipped before its unwritten id is read.
		 */
		if (level > 0 && !dedupe_prefix_is(e, key, level))
			continue;
		if ((v = dedupe_part(e, level)) - lo > hi - lo)
			continue;
		b = (size_t)((v - lo) >> shift);
		h->n[b]++;
		if (v < h->lo[b])
			h->lo[b] = v;
		if (v > h->hi[b])
			h->hi[b] = v;
	}
}

/*
 * Among the entries whose earlier parts equal key's, the value v of part
 * `level` such that fewer than *need entries have a smaller one and at least
 * *need have one <= v; all of them lie in [lo, hi].  *need becomes how many
 * of those equal to v must go, *tie how many they are.  Each pass narrows
 * [lo, hi] to one bucket, at least 512-fold, and after the first to that
 * bucket's actual range: a part takes at most 8 passes over the table, and
 * event times spread over minutes take 2.
 */
static uint64_t
dedupe_select_part(const struct dedupe *d, struct dedupe_hist *h, const uint64_t key[3],
    int level, uint64_t lo, uint64_t hi, size_t *need, size_t *tie)
{
	uint64_t width;
	size_t b;
	int shift;

	for (int pass = 0;; pass++) {
		for (shift = 0; ((hi - lo) >> shift) >= DEDUPE_BUCKETS; shift++)
			;
		if (level == 0 && pass == 0)
			dedupe_hist_times(d, h, lo, hi, shift);
		else
			dedupe_hist_pass(d, h, key, level, lo, hi, shift);
		/* [lo, hi] holds at least *need entries, so some bucket reaches it. */
		for (b = 0; h->n[b] < *need; b++)
			*need -= h->n[b];
		if (level == 0 && pass == 0) {
			width = (UINT64_C(1) << shift) - 1;
			lo += (uint64_t)b << shift;
			hi = hi - lo > width ? lo + width : hi;
		} else {
			lo = h->lo[b];
			hi = h->hi[b];
		}
		if (lo == hi) {
			*tie = h->n[b];
			return lo;
		}
	}
}

/*
 * The set is full: forget its oldest max_ids / DEDUPE_FULL_SHARE entries.
 * The key of the last one to go is found part by part (a selection, not a
 * sort); when every entry equal to it in the parts found so far goes, the
 * later parts do not matter and stay UINT64_MAX.  Ids are unique, so the
 * third part always settles it.
 */
static void
dedupe_evict_oldest(struct dedupe *d)
{
	struct dedupe_hist h;
	uint64_t thr[3] = { UINT64_MAX, UINT64_MAX, UINT64_MAX };
	size_t want = d->max_ids / DEDUPE_FULL_SHARE, need, tie = 0;
	int64_t t;

	if (want == 0)
		want = 1;
	need = want;
	for (int level = 0; level < 3; level++) {
		thr[level] = level == 0 ?
		    dedupe_select_part(d, &h, thr, 0, dedupe_time_part(d->min_time),
		    dedupe_time_part(d->max_time), &need, &tie) :
		    dedupe_select_part(d, &h, thr, level, 0, UINT64_MAX, &need, &tie);
		if (need == tie)
			break;
	}
	d->evicted_full += dedupe_drop_upto(d, thr);
	t = (int64_t)(thr[0] ^ (UINT64_C(1) << 63));
	if (t > d->full_horizon)
		d->full_horizon = t;
}

int
dedupe_insert(struct dedupe *d, const uint8_t id[16], int64_t time_us)
{
	size_t i, cap = d->mask + 1;

	if (time_us == DEDUPE_EMPTY) {
		errno = EINVAL;
		return -1;
	}
	i = dedupe_probe(d->slot, d->mask, id);
	if (d->slot[i].time_us != DEDUPE_EMPTY)
		return 0;
	/*
	 * Full means the table is at its final capacity already (smaller ones
	 * hold less than max_ids), so the grow below does not follow this.
	 */
	if (d->max_ids != 0 && d->count >= d->max_ids) {
		dedupe_evict_oldest(d);
		i = dedupe_probe(d->slot, d->mask, id);
	}
	if (d->count >= d->limit) {
		if (cap > SIZE_MAX / 2) {
			errno = ENOMEM;
			return -1;
		}
		if (dedupe_resize(d, dedupe_fit(d, cap * 2)) < 0)
			return -1;
		i = dedupe_probe(d->slot, d->mask, id);
	}
	memcpy(d->slot[i].id, id, 16);
	d->slot[i].time_us = time_us;
	d->count++;
	if (time_us < d->min_time)
		d->min_time = time_us;
	if (time_us > d->max_time)
		d->max_time = time_us;
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
	/* Every entry with time <= watermark - 1, whatever its id. */
	uint64_t thr[3] = { 0, UINT64_MAX, UINT64_MAX };
	size_t n, cap;

	/* While the watermark stands still (an idle stream) eviction costs nothing. */
	if (watermark_us <= d->min_time)
		return 0;
	thr[0] = dedupe_time_part(watermark_us - 1);
	n = dedupe_drop_upto(d, thr);
	cap = dedupe_fit(d, dedupe_cap_for(d->count));

	/*
	 * Shrink only below a quarter of the maximum load, to half of it (with
	 * a cap, a table of C stays unless C / 4 will do: dedupe_fit): a live
	 * set that wobbles around one size does not resize every batch.
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
	return dedupe_bytes(d->mask + 1, 0);
}

size_t
dedupe_memory_peak(const struct dedupe *d)
{
	return d->peak;
}

size_t
dedupe_memory_bound(size_t max_ids)
{
	size_t cap = max_ids == 0 ? 0 : dedupe_max_cap(max_ids);

	return cap == 0 ? 0 : dedupe_bytes(cap, 0);
}

void
dedupe_clear(struct dedupe *d)
{
	size_t cap = dedupe_fit(d, DEDUPE_MIN_CAP);
	struct dedupe_slot *s = NULL;

	d->count = 0;
	d->min_time = INT64_MAX;
	d->max_time = INT64_MIN;
	/* Keep the table when it is the smallest already, or when a smaller one cannot be had. */
	if (d->mask + 1 == cap || (s = dedupe_alloc(cap)) == NULL) {
		for (size_t i = 0; i <= d->mask; i++)
			d->slot[i].time_us = DEDUPE_EMPTY;
		return;
	}
	dedupe_install(d, s, cap);
}

uint64_t
dedupe_evicted_full(const struct dedupe *d)
{
	return d->evicted_full;
}

int64_t
dedupe_full_horizon(const struct dedupe *d)
{
	return d->full_horizon;
}
