/*
 * test_notify — what systemd hears: exactly READY=1, STATUS=<one line>, STOPPING=1;
 * EXTEND_TIMEOUT_USEC= before READY=1 and WATCHDOG=1 after it, never more often than
 * WatchdogSec/2; sleep slices of WatchdogSec/4; and nothing at all outside systemd.
 * systemd's notification socket is played by a datagram socket of our own.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "notify.h"

#define WATCHDOG_US 200000	/* WatchdogSec=0.2s: pings are due every 0.1 s */

static char sock_path[108];
static int sock_fd = -1;

/* Bind a non-blocking datagram socket and point NOTIFY_SOCKET at it. */
static void
fake_systemd(void)
{
	const char *base = getenv("TMPDIR");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (base == NULL || base[0] == '\0' || strlen(base) > 60)
		base = "/tmp";
	snprintf(sock_path, sizeof(sock_path), "%s/notify.%ld", base, (long)getpid());
	unlink(sock_path);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	sock_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (sock_fd < 0 || bind(sock_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("fake_systemd");
		exit(2);
	}
	setenv("NOTIFY_SOCKET", sock_path, 1);
}

/* The next message systemd would have read, or "" when none is waiting. */
static const char *
heard(void)
{
	static char buf[1024];
	ssize_t n = recv(sock_fd, buf, sizeof(buf) - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void
set_watchdog(long usec, long pid)
{
	char v[32];

	snprintf(v, sizeof(v), "%ld", usec);
	setenv("WATCHDOG_USEC", v, 1);
	snprintf(v, sizeof(v), "%ld", pid);
	setenv("WATCHDOG_PID", v, 1);
}

static void
sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void
test_outside_systemd_says_nothing(void)
{
	struct notify n;

	unsetenv("NOTIFY_SOCKET");
	set_watchdog(WATCHDOG_US, getpid());
	notify_open(&n);
	CHECK(!n.enabled && n.watchdog_us == 0, "enabled=%d watchdog=%llu", n.enabled,
	    (unsigned long long)n.watchdog_us);
	CHECK(notify_max_sleep(&n) == 0, "no limit without a watchdog: %g", notify_max_sleep(&n));
	notify_ready(&n);
	notify_status(&n, "x");
	notify_watchdog(&n);
	notify_stopping(&n);
	CHECK(strcmp(heard(), "") == 0, "nothing sent");
	setenv("NOTIFY_SOCKET", sock_path, 1);
}

static void
test_ready_status_stopping_exactly(void)
{
	struct notify n;
	const char *m;

	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	notify_open(&n);
	CHECK(n.enabled && n.watchdog_us == 0, "enabled=%d", n.enabled);
	notify_ready(&n);
	CHECK(strcmp(m = heard(), "READY=1") == 0, "got '%s'", m);
	notify_status(&n, "last batch %d:\n%d rows", 42, 100);
	CHECK(strcmp(m = heard(), "STATUS=last batch 42: 100 rows") == 0, "one line: '%s'", m);
	notify_watchdog(&n);
	CHECK(strcmp(m = heard(), "") == 0, "no watchdog configured, no ping: '%s'", m);
	notify_stopping(&n);
	CHECK(strcmp(m = heard(), "STOPPING=1") == 0, "got '%s'", m);
	CHECK(strcmp(m = heard(), "") == 0, "nothing more: '%s'", m);
}

static void
test_status_truncated_not_overflowed(void)
{
	struct notify n;
	char big[2000];
	const char *m;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	notify_open(&n);
	notify_status(&n, "%s", big);
	m = heard();
	CHECK(strncmp(m, "STATUS=xxx", 10) == 0 && strlen(m) < 600, "len %zu", strlen(m));
}

static void
test_watchdog_extends_start_then_pings(void)
{
	struct notify n;
	const char *m;
	char want[64];

	set_watchdog(WATCHDOG_US, getpid());
	notify_open(&n);
	CHECK(n.watchdog_us == WATCHDOG_US, "watchdog %llu", (unsigned long long)n.watchdog_us);
	CHECK(notify_max_sleep(&n) > 0.0499 && notify_max_sleep(&n) < 0.0501,
	    "slices of WatchdogSec/4: %g", notify_max_sleep(&n));

	/* Before READY=1 a keep-alive extends the start timeout by WatchdogSec. */
	snprintf(want, sizeof(want), "EXTEND_TIMEOUT_USEC=%d", WATCHDOG_US);
	notify_watchdog(&n);
	CHECK(strcmp(m = heard(), want) == 0, "got '%s'", m);
	notify_watchdog(&n);
	CHECK(strcmp(m = heard(), "") == 0, "rate-limited before ready: '%s'", m);

	notify_ready(&n);
	CHECK(strcmp(m = heard(), "READY=1") == 0, "got '%s'", m);
	notify_watchdog(&n);
	CHECK(strcmp(m = heard(), "") == 0, "READY=1 counts as a ping: '%s'", m);
	sleep_s(0.11);
	notify_watchdog(&n);
	CHECK(strcmp(m = heard(), "WATCHDOG=1") == 0, "due after WatchdogSec/2: '%s'", m);
	notify_watchdog(&n);
	CHECK(strcmp(m = heard(), "") == 0, "not twice: '%s'", m);

	/* A busy loop for 0.35 s pings every 0.1 s: 3 times, never more (2 if descheduled). */
	int pings = 0;
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		notify_watchdog(&n);
		if (strcmp(heard(), "WATCHDOG=1") == 0)
			pings++;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9 < 0.35);
	CHECK(pings >= 2 && pings <= 3, "pings in 0.35 s: %d", pings);
}

static void
test_watchdog_for_another_pid_is_not_ours(void)
{
	struct notify n;
	const char *m;

	set_watchdog(WATCHDOG_US, getpid() + 1);
	notify_open(&n);
	CHECK(n.enabled && n.watchdog_us == 0, "watchdog %llu", (unsigned long long)n.watchdog_us);
	notify_watchdog(&n);
	CHECK(strcmp(m = heard(), "") == 0, "got '%s'", m);
}

int
main(void)
{
	fake_systemd();
	RUN(test_outside_systemd_says_nothing);
	RUN(test_ready_status_stopping_exactly);
	RUN(test_status_truncated_not_overflowed);
	RUN(test_watchdog_extends_start_then_pings);
	RUN(test_watchdog_for_another_pid_is_not_ours);
	close(sock_fd);
	unlink(sock_path);
	return check_exit();
}
