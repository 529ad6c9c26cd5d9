/* event — the names of the fixed schema; see include/event.h. */
#include "event.h"

const char *const event_col_names[EVENT_NCOLS] = {
	"event_id", "user_id", "event_type", "product_id", "price", "event_time",
};

const char *const event_type_names[2] = { "view", "purchase" };

const char *const reject_reason_names[REJECT_NREASONS] = {
	[REJECT_NONE] = "none",
	[REJECT_COLUMN_COUNT] = "column_count",
	[REJECT_EVENT_ID] = "event_id",
	[REJECT_USER_ID] = "user_id",
	[REJECT_EVENT_TYPE] = "event_type",
	[REJECT_PRODUCT_ID] = "product_id",
	[REJECT_PRICE] = "price",
	[REJECT_EVENT_TIME] = "event_time",
	[REJECT_LATE] = "late",
	[REJECT_FUTURE] = "future",
};
