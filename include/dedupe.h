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
 * Layout: open addressing with linear probing over one flat array of
 * { id, time } slots (24 bytes each, one cache line holds two and a half), a
 * power-of-two capacity and a load factor of at most 0.7.  An empty slot is
 * marked by time_us == EVENT_TIME_NONE, so that value cannot be stored.
 * There are no tombstones: dedupe_remove() shifts the rest of the run back
 * and dedupe_evict() re-places the survivors.
 */
#ifndef EVPIPE_DEDUPE_H
#define EVPIPE_DEDUPE_H

#include <stddef.h>
#include <stdint.h>

#define DEDUPE_MUSTCHECK __attribute__((warn_unused_result))

struct dedupe;

/* An empty set.  NULL when out of memory. */
struct dedupe *dedupe_new(void) DEDUPE_MUSTCHECK;
void	dedupe_free(struct dedupe *d);

/*
 * Remember id with its event time.  Returns 1 when id is new, 0 when it was
 * already present (a duplicate; the time first stored is kept), -1 with errno
 * ENOMEM when the table could not grow (the set is unchanged) or EINVAL when
 * time_us is EVENT_TIME_NONE.
 */
int	dedupe_insert(struct dedupe *d, const uint8_t id[16], int64_t time_us) DEDUPE_MUSTCHECK;
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
 */
size_t	dedupe_evict(struct dedupe *d, int64_t watermark_us);

size_t	dedupe_count(const struct dedupe *d);
size_t	dedupe_memory(const struct dedupe *d);	/* bytes held, struct included */
void	dedupe_clear(struct dedupe *d);		/* forget everything, give memory back */

#endif
