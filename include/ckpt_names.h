/*
 * ckpt_names — the checkpoint's committed names in memory: each with the batch
 * that committed it and the identity of the file as it was read, kept in the
 * order added (batch order, which is the order the checkpoint writes them),
 * with an open-addressing index over them for lookups by name, and the
 * greatest name ever added (last_name), which outlives the name itself.
 *
 * Why its own table and not dedupe's: dedupe maps 16-byte ids to times and
 * evicts by time; this one maps strings to positions and must keep the order
 * of addition, which the file and the journal depend on.
 *
 * The index is FNV-1a with linear probing, its load at most 0.5, and it holds
 * 1 + the position in v (0: a free slot), so positions are kept below
 * UINT32_MAX / 4 (ENOMEM beyond).  Nothing here does I/O.
 */
#ifndef EVPIPE_CKPT_NAMES_H
#define EVPIPE_CKPT_NAMES_H

#include <stddef.h>
#include <stdint.h>

#include "spool.h"
#include "util.h"

#define CKPT_NAME_MAX	255		/* NAME_MAX: the names are directory entries */

struct ckpt_entry {
	char	*name;
	int64_t	 batch;
	struct spool_id id;	/* the file as read; ino 0: unknown */
};

struct ckpt_names {
	struct ckpt_entry *v;		/* in the order added, which is batch order */
	size_t		 n, cap;
	uint32_t	*index;		/* 0: free; else 1 + position in v */
	size_t		 imask;		/* index capacity - 1; load <= 0.5 */
	char		*last_name;	/* the greatest name ever committed; NULL: unknown */
};

/* An empty set (its smallest index allocated).  -1 with errno ENOMEM. */
int	ckpt_names_init(struct ckpt_names *s) MUSTCHECK;
void	ckpt_names_free(struct ckpt_names *s);	/* every name, the index, last_name */

/* 1 if name can be a committed name: a file name of 1..CKPT_NAME_MAX bytes, no '/'. */
int	ckpt_names_valid(const char *name);

/* 1 + the position of name in v, 0 if it is not there. */
size_t	ckpt_names_find(const struct ckpt_names *s, const char *name);

/*
 * Room for `extra` more names, so that appending them cannot fail but for
 * strdup.  -1 with errno (ENOMEM); the set is unchanged either way.
 */
int	ckpt_names_reserve(struct ckpt_names *s, size_t extra) MUSTCHECK;

/*
 * Add a name that is not there yet, with its batch and identity (id NULL:
 * unknown, stored as zeros).  -1 with errno EEXIST if it is there, ENOMEM;
 * on -1 nothing changed.  last_name is left alone: see below.
 */
int	ckpt_names_append(struct ckpt_names *s, const char *name, int64_t batch,
	    const struct spool_id *id) MUSTCHECK;

/*
 * last_name in two steps, so that a caller adding several names can fail
 * before changing anything: ckpt_names_new_last gives in *out a copy of the
 * greatest of names[0..n) if it sorts (strcmp) after last_name, else NULL
 * (-1: no memory); ckpt_names_take_last then makes it last_name (NULL: no-op).
 */
int	ckpt_names_new_last(const struct ckpt_names *s, const char *const *names, size_t n,
	    char **out) MUSTCHECK;
void	ckpt_names_take_last(struct ckpt_names *s, char *last);

/*
 * Keep the names keep(arg, entry) says yes to, in their order, and free the
 * others; returns how many went.  Cannot fail.  last_name stays.
 */
size_t	ckpt_names_compact(struct ckpt_names *s,
	    int (*keep)(void *arg, const struct ckpt_entry *e), void *arg);

/* Forget the names appended after the first n0 (the undo of a failed series of appends). */
void	ckpt_names_truncate(struct ckpt_names *s, size_t n0);

#endif
