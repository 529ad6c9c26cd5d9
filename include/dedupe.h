/*
 * dedupe — the set of event_ids seen since the watermark, so a replayed or
 * re-sent event is counted as a duplicate instead of being written twice.
 *
 * Why it stays small: an event older than the watermark is rejected as late
 * before it reaches this set, so an id whose event_time is below the watermark
 * can never be asked about again.  dedupe_evict() drops those entries once per
 * batch, and the table shrinks when it is mostly empty; memory therefore
 * follows the live set, which is bounded by event rate x allowed delay.
 *
 * The cap (dedupe_new(max_ids)): event rate x delay is a property of the
 * input, not of the configuration.  A backfill of 10 M rows whose event times
 * all fall within the watermark window would keep every one of them, hundreds
 * of MB.  So the set holds at most max_ids entries.  An insert that finds it
 * full first forgets the oldest quarter (max_ids / 4, at least 1) by
 * (time_us, then the id's 16 bytes as memcmp orders them), then stores the new
 * id, whatever its time.  The oldest go because a re-sent event is usually a
 * recent one (a producer retrying, a spool file written twice); the tie-break
 * on the id makes the survivors a function of the set's contents alone, not of
 * the order of the inserts or of the table's layout, so a rebuilt set forgets
 * the same ids.  Forgetting a quarter at once keeps the cost amortised O(1)
 * per insert: finding the threshold is a few histogram passes over the table
 * (no sort; 24 KB of stack, nothing on the heap), and one more pass drops
 * the entries.
 *
 * A duplicate of an id forgotten this way is not caught here: evstream sends
 * it to the database, whose primary key drops it (INSERT ... ON CONFLICT DO
 * NOTHING) and counts it as `conflict` instead of `duplicate`.  Exactly-once
 * holds either way; only which counter the row lands in differs.
 * dedupe_evicted_full() and dedupe_full_horizon() say how often that may have
 * happened and up to which event time.
 *
 * Layout: open addressing with linear probing over one flat array of
 * { id, time } slots (24 bytes each, one cache line holds two and a half), a
 * power-of-two capacity and a load factor of at most 0.7.  An empty slot is
 * marked by time_us == EVENT_TIME_NONE, so that value cannot be stored.
 * There are no tombstones: dedupe_remove() shifts the rest of the run back
 * and the evictions re-place the survivors in the same pass.
 *
 * Memory with a cap: the capacity never exceeds C, the smallest power of two
 * (>= 64) whose 0.7 load holds max_ids, so dedupe_memory() <=
 * dedupe_memory_bound(max_ids) = C x 24 bytes + the struct (~42 bytes an id
 * at the default 300000: C = 2^19, 12.6 MB).  A resize holds the old and the
 * new table at once; to keep that peak low the table never takes capacity
 * C / 2: it grows from C / 4 straight to C and shrinks from C to C / 4 or
 * less, so the peak is at most 1.25 x C x 24 bytes + the struct (15.7 MB at
 * 300000).  dedupe_memory_peak() reports the peak actually reached.  (With
 * no cap a grow doubles, so its peak is 1.5 x the new table.)
 */
#ifndef EVPIPE_DEDUPE_H
#define EVPIPE_DEDUPE_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct dedupe;

/*
 * An empty set holding at most max_ids ids (0: no cap, it grows as long as
 * memory lasts).  NULL with errno ENOMEM when out of memory or when no table
 * could hold max_ids.
 */
struct dedupe *dedupe_new(size_t max_ids) MUSTCHECK;
void	dedupe_free(struct dedupe *d);

/*
 * Remember id with its event time.  Returns 1 when id is new, 0 when it was
 * already present (a duplicate; the time first stored is kept), -1 with errno
 * ENOMEM when the table could not grow (the set is unchanged) or EINVAL when
 * time_us is EVENT_TIME_NONE.  A new id is stored even when the set is full:
 * the oldest quarter goes first (see above), so count stays <= max_ids.
 */
int	dedupe_insert(struct dedupe *d, const uint8_t id[16], int64_t time_us) MUSTCHECK;
int	dedupe_contains(const struct dedupe *d, const uint8_t id[16]);

/*
 * Forget one id: 1 if it was there, 0 if not.  Cannot fail.  For undoing the
 * inserts of a file whose reading failed, so its events are fresh next time.
 */
int	dedupe_remove(struct dedupe *d, const uint8_t id[16]);

/*
 * Drop every entry with time_us < watermark_us and return how many went.
 * O(capacity): meant to run once per batch, not per event.  Never fails: when
 * a smaller table cannot be allocated the survivors stay in the current one.
 * These are not counted by dedupe_evicted_full().
 */
size_t	dedupe_evict(struct dedupe *d, int64_t watermark_us);

size_t	dedupe_count(const struct dedupe *d);
size_t	dedupe_memory(const struct dedupe *d);	/* bytes held, struct included */

/* The most bytes held at once since dedupe_new, both tables of a resize counted. */
size_t	dedupe_memory_peak(const struct dedupe *d);

/* dedupe_memory()'s bound for a set made with max_ids; 0 for no cap or no such table. */
size_t	dedupe_memory_bound(size_t max_ids);

/*
 * Forget every entry and give memory back.  The cap stays, and so do the two
 * counters below: they count since dedupe_new, like the metric they feed.
 */
void	dedupe_clear(struct dedupe *d);

/* Entries forgotten because the set was full (not those below the watermark). */
uint64_t dedupe_evicted_full(const struct dedupe *d);

/*
 * The largest time_us forgotten because the set was full, EVENT_TIME_NONE if
 * none ever was: an id with a time at or below it may have been forgotten
 * early, and a duplicate of it is then left to the database.
 */
int64_t	dedupe_full_horizon(const struct dedupe *d);

#endif
