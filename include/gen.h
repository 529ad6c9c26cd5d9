/*
 * gen — the shop simulator's content: one CSV file's worth of events at a time.
 *
 * gen knows nothing about files, signals or time sources: evgen gives it the
 * instant the batch ends and gets back the CSV text (header + rows) in a buffer
 * that gen owns and reuses.  With the same seed and the same instants, the text
 * is byte-for-byte the same (this is what `--seed` promises).
 *
 * Test aids, each a rate (0 = off): duplicates re-emit an earlier row whole (in
 * this file or a later one), late rows carry an event_time `late_delay` seconds in
 * the past, and invalid rows take one kind from gen_fault_kinds[] below.
 */
#ifndef EVPIPE_GEN_H
#define EVPIPE_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "util.h"

struct gen_params {
	long	rows_per_file;
	long	user_id_min, user_id_max;
	long	product_id_min, product_id_max;
	double	purchase_rate;
	double	price_min, price_max;	/* purchases only; views cost 0 */
	double	duplicate_rate, late_rate, invalid_rate;
	double	late_delay;		/* seconds */
};

/* One way to make an invalid row, and the reason evstream must give for it. */
struct gen_fault_kind {
	const char		*name;
	enum reject_reason	 expect;
};
enum {
	GEN_FAULT_EVENT_TYPE, GEN_FAULT_USER_ID, GEN_FAULT_EVENT_TIME,
	GEN_FAULT_COLUMN_COUNT, GEN_FAULT_EVENT_ID, GEN_FAULT_PRICE, GEN_NFAULTS
};
extern const struct gen_fault_kind gen_fault_kinds[GEN_NFAULTS];

/* What the last gen_file() produced, for logs and tests. */
struct gen_stats {
	long rows, duplicates, late, invalid[GEN_NFAULTS];
};

#define GEN_HEADER "event_id,user_id,event_type,product_id,price,event_time\n"

struct gen;

struct gen *gen_new(const struct gen_params *p, uint64_t seed);	/* NULL on ENOMEM */
void gen_free(struct gen *);

/*
 * Produce one file: rows whose event times spread evenly over (previous end,
 * end_us].  The text stays valid until the next call.  -1 on ENOMEM.
 */
int gen_file(struct gen *g, int64_t end_us, const char **text, size_t *len,
    struct gen_stats *st) MUSTCHECK;

/*
 * The last gen_file()'s text was not published (evgen could not make it
 * durable and withdrew it): forget its rows, so no later row "duplicates" a row
 * no reader will ever see.  Its instants and the generator's state stay spent:
 * the next file follows in time.  Call it at most once per gen_file().
 */
void gen_unpublish(struct gen *g);

/* 16 random bytes from gen's generator, as a version-4 UUID (file names use it). */
void gen_uuid(struct gen *g, uint8_t out[16]);

#endif
