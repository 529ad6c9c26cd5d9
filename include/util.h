/*
 * util — what every module does the same way, written once: the must-check mark,
 * growing an array, the two clocks, and numbers and timestamps printed by hand.
 * It sits below every other module and includes no header of ours.
 *
 * Errors: three styles, each where it fits (a new function takes its module's):
 *   -1 (or NULL) with errno   a call that wraps the system (durable, spool, gz_compress,
 *                             metrics' write, ALLOC_GROW): errno says what failed,
 *                             and the caller, which knows the file and what happens
 *                             next, writes the log line (log_warn adds strerror).
 *                             The usual style.
 *   char *err, size_t errlen  a failure whose reason errno cannot say, told once to a
 *                             person: a configuration value out of range (config,
 *                             evgen_check), a damaged checkpoint (ckpt_open/read/save),
 *                             the database refusing a connection (sink_new); and
 *                             beside a status enum where reading a file can end in
 *                             several ways, each handled apart (csvin_read,
 *                             batch_read_file: the text names the line).
 *   kept in the object        the sink: one libpq session fails in many places within
 *                             one call, and its message is the server's; the loop
 *                             reads sink_error()/sink_sqlstate() after a call failed
 *                             and decides between retry and stop.
 * Not errors: validate returns the row's reject reason (data, counted and stored).
 */
#ifndef EVPIPE_UTIL_H
#define EVPIPE_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A result the caller must look at (pgbouncer's _MUSTCHECK). */
#define MUSTCHECK __attribute__((warn_unused_result))

/* --- growing arrays ------------------------------------------------------------------ */

int	util_grow_slow(void *arrp, size_t *cap, size_t need, size_t size, size_t first) MUSTCHECK;

static inline MUSTCHECK int
util_grow(void *arrp, size_t *cap, size_t need, size_t size, size_t first)
{
	return need <= *cap ? 0 : util_grow_slow(arrp, cap, need, size, first);
}

/*
 * Room for `need` elements in `arr` (a pointer lvalue, `cap` elements allocated):
 * capacity `first`, or cap, doubled until it holds them, so appends cost O(1)
 * amortised and a call with room to spare costs a compare (git's ALLOC_GROW).  0,
 * or -1 with errno = ENOMEM (out of memory, or the size would overflow); arr and
 * cap are then unchanged.
 */
#define ALLOC_GROW(arr, need, cap, first) \
	util_grow(&(arr), &(cap), (need), sizeof(*(arr)), (first))

/* --- clocks -------------------------------------------------------------------------- */

/* Seconds on the monotonic clock: intervals, deadlines, sleeps (never steps back). */
double	util_now(void);

/* Microseconds since 1970-01-01 UTC, the real-time clock: event times, ages, names. */
int64_t	util_wall_us(void);

/* --- numbers and timestamps, by hand ------------------------------------------------ */
/*
 * No printf, no gmtime, no locale: they are on the hot paths of evgen's rows and
 * the sink's COPY text.  They write into the caller's buffer and return its end or
 * the bytes written; nothing is NUL-terminated unless said.
 */

/* "00" "01" ... "99": two digits per lookup halves the divisions. */
extern const char util_digits2[200];

/* v (0..99) as two digits. */
static inline char *
util_put2(char *p, unsigned v)
{
	memcpy(p, &util_digits2[v * 2], 2);
	return p + 2;
}

/*
 * v in decimal, at least `width` digits (zero-padded; width <= 20): at most 20
 * bytes.  Inline, and the length counted first so the digits go straight to out:
 * measured faster than a scratch buffer or a digit per division (evgen's ids and
 * prices, the sink's integers).
 */
static inline size_t
util_put_uint(char *out, uint64_t v, int width)
{
	size_t n = 1;
	char *p;

	for (uint64_t pow = 10; n < 20 && v >= pow; pow *= 10)
		n++;
	if (n < (size_t)width)
		n = (size_t)width;
	p = out + n;
	while (v >= 100) {
		p -= 2;
		memcpy(p, &util_digits2[(v % 100) * 2], 2);
		v /= 100;
	}
	if (v >= 10) {
		p -= 2;
		memcpy(p, &util_digits2[v * 2], 2);
	} else
		*--p = (char)('0' + v);
	while (p > out)
		*--p = '0';
	return n;
}

/*
 * Days since 1970-01-01 -> proleptic Gregorian date (year 0 = 1 BC): Howard
 * Hinnant's civil_from_days, exact for every day an int64 of microseconds holds.
 */
void	util_civil_from_days(int64_t days, int64_t *year, unsigned *month, unsigned *day);

/* A UTC instant taken apart for printing (floor, not truncation: 1969 is before 1970). */
struct util_tm {
	int64_t		 year;		/* proleptic Gregorian; 0 is 1 BC, -1 is 2 BC */
	unsigned	 month, day;
	unsigned	 sec;		/* of the day */
	unsigned	 usec;
};
void	util_time_split(int64_t us, struct util_tm *tm);

/*
 * "-MM-DD HH:MM:SS.ffffff", 22 bytes: what follows the year in every timestamp we
 * print (each spells the year its own way).  Returns the end.
 */
char	*util_put_time_rest(char *p, const struct util_tm *tm);

/*
 * "YYYY-MM-DD HH:MM:SS.ffffff", UTC, NUL-terminated, for logs, status and tests.
 * Every int64 prints: years past 9999 take more digits, years before 1 are
 * astronomical with a sign ("0000" is 1 BC, "-0001" 2 BC).
 */
#define UTIL_TIME_MAX	32
void	util_format_time(int64_t us, char out[UTIL_TIME_MAX]);

#endif
