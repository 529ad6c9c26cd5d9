/* util — see include/util.h. */
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#define US_PER_SEC	INT64_C(1000000)
#define US_PER_DAY	(INT64_C(86400) * US_PER_SEC)

int
util_grow_slow(void *arrp, size_t *cap, size_t need, size_t size, size_t first)
{
	size_t ncap = *cap ? *cap : first;
	void *p;

	while (ncap < need) {
		if (ncap > SIZE_MAX / 2) {
			errno = ENOMEM;
			return -1;
		}
		ncap = ncap ? ncap * 2 : 1;
	}
	if (size != 0 && ncap > SIZE_MAX / size) {
		errno = ENOMEM;
		return -1;
	}
	/* Through memcpy: arrp points at a T *, which a void ** may not alias. */
	memcpy(&p, arrp, sizeof(p));
	if ((p = realloc(p, ncap * size)) == NULL)
		return -1;
	memcpy(arrp, &p, sizeof(p));
	*cap = ncap;
	return 0;
}

/* clock_gettime cannot fail for these clocks (both exist since Linux 2.6). */
double
util_now(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t
util_wall_us(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * US_PER_SEC + ts.tv_nsec / 1000;
}

const char util_digits2[200] =
	"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
	"8081828384858687888990919293949596979899";

/*
 * Howard Hinnant's days_from_civil inverse (public domain, "chrono-Compatible
 * Low-Level Date Algorithms"): no table, no loop, no libc.
 */
void
util_civil_from_days(int64_t days, int64_t *year, unsigned *month, unsigned *day)
{
	int64_t z = days + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;				/* [0, 146096] */
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);	/* [0, 365] */
	int64_t mp = (5 * doy + 2) / 153;			/* March = 0 */

	*day = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
	*month = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
	*year = yoe + era * 400 + (*month <= 2);
}

void
util_time_split(int64_t us, struct util_tm *tm)
{
	int64_t days = us / US_PER_DAY, rem = us % US_PER_DAY;

	if (rem < 0) {
		rem += US_PER_DAY;
		days--;
	}
	util_civil_from_days(days, &tm->year, &tm->month, &tm->day);
	tm->sec = (unsigned)(rem / US_PER_SEC);
	tm->usec = (unsigned)(rem % US_PER_SEC);
}

char *
util_put_time_rest(char *p, const struct util_tm *tm)
{
	*p++ = '-';
	p = util_put2(p, tm->month);
	*p++ = '-';
	p = util_put2(p, tm->day);
	*p++ = ' ';
	p = util_put2(p, tm->sec / 3600);
	*p++ = ':';
	p = util_put2(p, tm->sec / 60 % 60);
	*p++ = ':';
	p = util_put2(p, tm->sec % 60);
	*p++ = '.';
	p = util_put2(p, tm->usec / 10000);
	p = util_put2(p, tm->usec / 100 % 100);
	return util_put2(p, tm->usec % 100);
}

void
util_format_time(int64_t us, char out[UTIL_TIME_MAX])
{
	struct util_tm tm;
	char *p = out;

	util_time_split(us, &tm);
	if (tm.year < 0)
		*p++ = '-';
	/* Any int64 gives |year| < 300000: at most 1 + 6 + 22 bytes and the NUL. */
	p += util_put_uint(p, (uint64_t)(tm.year < 0 ? -tm.year : tm.year), 4);
	*util_put_time_rest(p, &tm) = '\0';
}
