/*
 * durable — the one place a file is made to appear atomically and survive a crash.
 *
 * Protocol: create a hidden temporary ".NAME.tmp" in the target directory, write,
 * fsync it, rename it to NAME, fsync the directory.  A crash at any point leaves
 * either no NAME or the whole NAME (plus, at worst, a stale hidden temporary that
 * durable_sweep() removes, or the next write of the same NAME truncates: a
 * temporary belongs to whoever owns its final name).  Both evgen's spool files and evstream's checkpoint
 * go through here; the missing directory fsync is the classic bug of this protocol.
 */
#ifndef EVPIPE_DURABLE_H
#define EVPIPE_DURABLE_H

#include <stddef.h>

#include "util.h"

#define DURABLE_TMP_SUFFIX ".tmp"

/*
 * Write buf[0..len) as dir/name durably, replacing any existing file.  On failure
 * the temporary is removed, nothing named `name` changed, errno is set and -1 is
 * returned; the caller decides whether to retry.
 *
 * Two failures come after `name` was published, and are told apart from -1 (so
 * all three are < 0 for a caller that only rewrites the same name):
 * DURABLE_UNSYNCED, the fsync of the directory failed (the file is there under
 * its name, but a crash of the machine may lose the rename); DURABLE_TMP_LEFT
 * (durable_create_at only), the file is published and durable but its hidden
 * temporary name could not be removed (durable_sweep removes it later).
 * Writing the same data again under another name would publish it twice.
 *
 * A failed fsync is final (PostgreSQL's fsyncgate: after it the page cache may
 * say what the disk does not, and a second fsync may succeed without the data
 * being there): nothing here retries one.  A caller either writes the whole
 * file again from memory (a new temporary: the checkpoint) or gives up on the
 * name (evgen withdraws a file whose directory fsync failed, and never counts it).
 */
#define DURABLE_UNSYNCED	(-2)
#define DURABLE_TMP_LEFT	(-3)

int durable_write_file(const char *dir, const char *name, const void *buf, size_t len)
    MUSTCHECK;

/* The same, relative to an open directory (no second lookup of its path). */
int durable_write_at(int dirfd, const char *name, const void *buf, size_t len) MUSTCHECK;

/*
 * Same, but fails with EEXIST instead of replacing an existing name (link(2)-style
 * no-clobber, used for spool files whose names must be unique).
 */
int durable_create_at(int dirfd, const char *name, const void *buf, size_t len) MUSTCHECK;

/*
 * Append buf[0..len) to dir/name (created 0640 if missing, then the directory
 * fsync'ed) and fdatasync it: an append-only journal's record.  A crash can
 * leave the last record torn (a prefix of it, or its blocks zeroed), never an
 * earlier one: whoever reads the journal must check each record (a checksum)
 * and take a bad last record as not written.  -1 with errno; the record may
 * then be partly there.
 */
int durable_append(const char *dir, const char *name, const void *buf, size_t len)
    MUSTCHECK;

/* fsync a directory: makes renames and unlinks in it durable. */
int durable_sync_dir(const char *dir) MUSTCHECK;

/*
 * Remove hidden temporaries ".<prefix>*.tmp" left by a crash.  Only call it
 * when no other writer is using the directory with that prefix.
 * Returns the number removed, or -1.
 */
int durable_sweep(const char *dir, const char *prefix) MUSTCHECK;

#endif
