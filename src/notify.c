/* notify — see include/notify.h. */
#include "notify.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "util.h"

static uint64_t
notify_now_us(void)
{
	return (uint64_t)(util_now() * 1e6);
}

void
notify_open(struct notify *n)
{
	const char *sock = getenv("NOTIFY_SOCKET");
	uint64_t us = 0;

	memset(n, 0, sizeof(*n));
	n->enabled = sock != NULL && sock[0] != '\0';
	/* > 0 only when WATCHDOG_PID names us: a child of ours must not ping for us. */
	if (n->enabled && sd_watchdog_enabled(0, &us) > 0)
		n->watchdog_us = us;
}

static void
notify_send(struct notify *n, const char *msg)
{
	int rc = sd_notify(0, msg);

	if (rc >= 0 || n->warned)
		return;
	n->warned = 1;
	log_warnx("telling systemd \"%.*s\" failed: %s; going on (systemd's timeouts may "
	    "stop this service)", (int)strcspn(msg, "\n="), msg, strerror(-rc));
}

void
notify_ready(struct notify *n)
{
	if (!n->enabled)
		return;
	notify_send(n, "READY=1");
	n->ready = 1;
	/* systemd arms the watchdog at READY=1: this counts as the first ping. */
	n->last_ping_us = notify_now_us();
}

void
notify_status(struct notify *n, const char *fmt, ...)
{
	char msg[512] = "STATUS=";
	size_t off = strlen(msg);
	va_list ap;

	if (!n->enabled)
		return;
	va_start(ap, fmt);
	vsnprintf(msg + off, sizeof(msg) - off, fmt, ap);
	va_end(ap);
	/* One line: a newline would start a new (unknown) assignment. */
	for (char *p = msg + off; (p = strchr(p, '\n')) != NULL; )
		*p = ' ';
	notify_send(n, msg);
}

void
notify_watchdog(struct notify *n)
{
	char msg[64];
	uint64_t now;

	if (!n->enabled || n->watchdog_us == 0)
		return;
	now = notify_now_us();
	if (n->last_ping_us != 0 && now - n->last_ping_us < n->watchdog_us / 2)
		return;
	n->last_ping_us = now;
	if (n->ready) {
		notify_send(n, "WATCHDOG=1");
		return;
	}
	snprintf(msg, sizeof(msg), "EXTEND_TIMEOUT_USEC=%" PRIu64, n->watchdog_us);
	notify_send(n, msg);
}

void
notify_stopping(struct notify *n)
{
	if (n->enabled)
		notify_send(n, "STOPPING=1");
}

double
notify_max_sleep(const struct notify *n)
{
	/*
	 * A quarter: a ping is due WatchdogSec/2 after the last one and a sleep slice
	 * may start just before that; with the slice the gap stays under 3/4 of
	 * WatchdogSec, leaving a quarter for the work between two sleeps.
	 */
	if (!n->enabled || n->watchdog_us == 0)
		return 0;
	return (double)n->watchdog_us / 4e6;
}

void
notify_sleep_until(struct notify *n, double until, const volatile sig_atomic_t *stop,
    void (*wake)(void))
{
	double left, slice = notify_max_sleep(n);

	while (!*stop && (left = until - util_now()) > 0) {
		if (slice > 0 && left > slice)
			left = slice;
		struct timespec ts = { (time_t)left, (long)((left - (double)(time_t)left) * 1e9) };
		if (nanosleep(&ts, NULL) < 0 && errno != EINTR)
			break;
		wake();
		notify_watchdog(n);
	}
}
