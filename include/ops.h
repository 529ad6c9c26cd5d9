/*
 * ops — the operator's subcommands of evstream, beside the daemon and with the
 * same configuration (-c FILE, --key=value):
 *
 *     evstream status [--json]           health, lag, counts; exit 0 healthy, 1 stalled
 *     evstream quarantine list           file, when, reason
 *     evstream quarantine requeue FILE   back into the spool, unless it was committed
 *
 * None of them takes the checkpoint's lock (ckpt_read), so they work while the
 * daemon runs; none of them writes the database.  Requeueing moves a file
 * into the spool exactly as evgen publishes one (one rename), and refuses a
 * name the checkpoint or evstream_batches already has: loading it would
 * duplicate its rejects and count its rows twice.
 *
 * Exit status: 0 done (status: healthy), 1 stalled, refused or failed,
 * 2 bad usage.
 */
#ifndef EVPIPE_OPS_H
#define EVPIPE_OPS_H

/* struct ops_config: status, the subcommand that reads all of it, defines it. */
#include "status.h"
#include "util.h"

#define OPS_EXIT_OK	0
#define OPS_EXIT_FAIL	1
#define OPS_EXIT_USAGE	2

/* 1 if word names a subcommand (the daemon then does not start). */
int	ops_is_command(const char *word);

/*
 * Take the subcommands' own flags (--json) out of argv before the config
 * parser sees them; returns 1 if --json was there.  argc is updated and
 * argv stays NULL-terminated.
 */
int	ops_take_json(int *argc, char **argv) MUSTCHECK;

/* Run words[0] with its arguments (words is NULL-terminated).  An exit status. */
int	ops_main(const struct ops_config *c, char **words, int json) MUSTCHECK;

/* Usage lines for evstream --help. */
extern const char ops_usage[];

#endif
