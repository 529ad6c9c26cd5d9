/*
 * validate — one CSV row becomes a struct event, or the reason it cannot.
 *
 * Fields are judged exactly as written: nothing is trimmed, and a NUL byte inside
 * a field is just an invalid character.  Checks run in enum reject_reason order
 * (which is the column order) and the first failure is the reason.
 *
 *   column_count  nfields != nheader, or nfields < 0 (an oversized record)
 *   event_id      8-4-4-4-12 hex digits, either case; nothing else (no braces,
 *                 no 32-digit form)
 *   user_id,      decimal 1..2147483647, an optional leading '+', leading zeros
 *   product_id    allowed; no '-', no spaces, nothing after the digits
 *   event_type    exactly "view" or "purchase"
 *   price         [+]D[.F]: 1..10 significant integer digits (leading zeros do not
 *                 count: numeric(12,2)), then optionally '.' and 1 or 2 digits.
 *                 No exponent, no ".5", no "5.".  A minus sign is refused even
 *                 for zero ("-0", "-0.00"): evgen never writes one, so one in a
 *                 file means something upstream is wrong.
 *   event_time    YYYY-MM-DD{' '|'T'}HH:MM:SS[.f{1,6}][Z|±hh:mm|±hhmm|±hh]
 *                 year 0001..9999, real calendar days (leap years), hour 0..23,
 *                 minute and second 0..59 (no leap second), offset hh 0..23 and
 *                 mm 0..59; no offset means UTC.
 *
 * Nothing here allocates, reads the locale or calls the libc time functions.
 */
#ifndef EVPIPE_VALIDATE_H
#define EVPIPE_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#include "csvin.h"
#include "event.h"
#include "util.h"

/* REJECT_NONE with *out filled, or the first failing reason (*out then undefined). */
enum reject_reason validate_row(const struct csv_row *row, struct event *out) MUSTCHECK;

/* An event_time as above, into microseconds since 1970-01-01 UTC.  0, or -1.
 * util_format_time prints one back. */
int	ts_parse(const char *s, size_t len, int64_t *us_out) MUSTCHECK;

/* A 36-character 8-4-4-4-12 hex UUID into its 16 bytes.  0, or -1. */
int	uuid_parse_text(const char *s, size_t len, uint8_t out[16]) MUSTCHECK;

#endif
