/*
 * notify — the daemons' half of systemd's service protocol (sd_notify(3)), in one place.
 *
 *   READY=1     once start-up is done: the configuration is valid and, for evstream,
 *               the database answered and the checkpoint was reconciled with it
 *   STATUS=     a one-line summary that `systemctl status` shows
 *   WATCHDOG=1  "the loop is alive", at most every WatchdogSec/2; the loops sleep
 *               in notify_sleep_until, in slices short enough that a ping is never late
 *   STOPPING=1  a signal asked us to stop; the work in hand is being finished
 *
 * Before READY=1 the keep-alive is EXTEND_TIMEOUT_USEC=WatchdogSec instead: a start
 * that waits for a database that is down may outlast TimeoutStartSec=, but a start
 * that hangs (a stopped or deadlocked process) still fails, WatchdogSec after its
 * last sign of life.
 *
 * Outside systemd (no NOTIFY_SOCKET) every call returns at once and formats nothing.
 * The calls return nothing: a lost message changes nothing in the daemon's work, and
 * systemd's own timeouts act on what it did not hear.  The first failure is logged.
 */
#ifndef EVPIPE_NOTIFY_H
#define EVPIPE_NOTIFY_H

#include <signal.h>
#include <stdint.h>

struct notify {
	int		 enabled;	/* NOTIFY_SOCKET names systemd's socket */
	int		 ready;		/* READY=1 was sent */
	int		 warned;	/* a failed send was logged */
	uint64_t	 watchdog_us;	/* WatchdogSec= in µs; 0 = no watchdog */
	uint64_t	 last_ping_us;	/* CLOCK_MONOTONIC of the last keep-alive */
};

/* Read NOTIFY_SOCKET and WATCHDOG_USEC/WATCHDOG_PID (see sd_watchdog_enabled(3)). */
void	notify_open(struct notify *n);
void	notify_ready(struct notify *n);
void	notify_status(struct notify *n, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* Keep-alive: WATCHDOG=1 (or EXTEND_TIMEOUT_USEC= before READY=1), rate-limited. */
void	notify_watchdog(struct notify *n);
void	notify_stopping(struct notify *n);
/* The longest sleep, in seconds, that still keeps the watchdog fed; 0 = no limit. */
double	notify_max_sleep(const struct notify *n);

/*
 * Sleep until `until` on util_now()'s clock, in slices of notify_max_sleep() with a
 * keep-alive after each, so a long trigger or backoff never starves the watchdog.
 * Returns early once *stop is set (a signal handler's flag: the sleep is cut short
 * by the signal itself); wake() runs after every slice or signal (the daemons log a
 * SIGHUP there).
 */
void	notify_sleep_until(struct notify *n, double until, const volatile sig_atomic_t *stop,
	    void (*wake)(void));

#endif
