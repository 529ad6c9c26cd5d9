/*
 * event — the fixed schema, as data.  One validated row of the CSV becomes a
 * struct event; a row that cannot become one gets a reject reason.  Both are
 * plain values: no pointers, so a batch is a flat array the sink can stream.
 */
#ifndef EVPIPE_EVENT_H
#define EVPIPE_EVENT_H

#include <stdint.h>

/* Columns of the fixed schema, in the order evgen writes them. */
enum event_col {
	COL_EVENT_ID, COL_USER_ID, COL_EVENT_TYPE, COL_PRODUCT_ID, COL_PRICE, COL_EVENT_TIME,
	EVENT_NCOLS
};
extern const char *const event_col_names[EVENT_NCOLS];

enum event_type { EVENT_VIEW = 0, EVENT_PURCHASE = 1 };
extern const char *const event_type_names[2];

#define EVENT_TIME_NONE INT64_MIN	/* "no time yet": no watermark, no max */

/*
 * The watermark: events before it are late.  The maximum event time seen less
 * the delay; none before any event.  One definition, so that evstream and its
 * status subcommand never disagree.
 */
static inline int64_t
event_watermark(int64_t max_time_us, double delay_seconds)
{
	return max_time_us == EVENT_TIME_NONE ? EVENT_TIME_NONE :
	    max_time_us - (int64_t)(delay_seconds * 1e6);
}

struct event {
	uint8_t  id[16];	/* the UUID's 16 bytes, network order */
	int64_t  time_us;	/* event_time, microseconds since 1970-01-01 UTC */
	int64_t  price_cents;	/* price * 100, >= 0 */
	int32_t  user_id;	/* > 0 */
	int32_t  product_id;	/* > 0 */
	uint8_t  type;		/* enum event_type */
};

/*
 * Which of n slices (copy_sessions) an event belongs to: FNV-1a over the id's 16
 * bytes, modulo n.  A batch whose later slices did not commit is finished by
 * reading its files again and keeping each slice's events, so this must never
 * change: an evpipe that hashed otherwise would write the wrong events.
 */
static inline unsigned
event_slice(const uint8_t id[16], unsigned n)
{
	uint32_t h = 2166136261u;

	for (int i = 0; i < 16; i++)
		h = (h ^ id[i]) * 16777619u;
	return h % n;
}

/*
 * Why a row did not become an event.  The names are what event_rejects.reason
 * holds and what the logs and metrics say; keep them stable.
 */
enum reject_reason {
	REJECT_NONE = 0,
	REJECT_COLUMN_COUNT,	/* "column_count": fields != header fields */
	REJECT_EVENT_ID,	/* "event_id": empty or not a UUID */
	REJECT_USER_ID,		/* "user_id": not an integer in 1..2^31-1 */
	REJECT_EVENT_TYPE,	/* "event_type": not view|purchase */
	REJECT_PRODUCT_ID,	/* "product_id" */
	REJECT_PRICE,		/* "price": not a number >= 0 with at most 2 decimals */
	REJECT_EVENT_TIME,	/* "event_time": not a timestamp we accept */
	REJECT_LATE,		/* "late": older than the watermark */
	REJECT_FUTURE,		/* "future": later than the wall clock + max_future_seconds */
	REJECT_NREASONS
};
extern const char *const reject_reason_names[REJECT_NREASONS];

/* A producer's bug (failed validation), not a row outside the event-time window. */
static inline int
reject_is_invalid(enum reject_reason r)
{
	return r != REJECT_LATE && r != REJECT_FUTURE;
}

#endif
