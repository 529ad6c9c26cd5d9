/* ckpt_names — see include/ckpt_names.h. */
#include "ckpt_names.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CKPT_INDEX_MIN	64

/* FNV-1a; the final fold brings the well-mixed high bits down to the index bits. */
static size_t
ckpt_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return (size_t)(h ^ (h >> 29) ^ (h >> 47));
}

/* The index slot that holds name, or the free slot where it would go. */
static size_t
ckpt_slot(const struct ckpt_names *s, const char *name)
{
	size_t i = ckpt_hash(name) & s->imask;

	while (s->index[i] != 0 && strcmp(s->v[s->index[i] - 1].name, name) != 0)
		i = (i + 1) & s->imask;
	return i;
}

static void
ckpt_index_fill(struct ckpt_names *s)
{
	memset(s->index, 0, (s->imask + 1) * sizeof(*s->index));
	for (size_t k = 0; k < s->n; k++)
		s->index[ckpt_slot(s, s->v[k].name)] = (uint32_t)(k + 1);
}

/*
 * Size the index for `need` names and rebuild it.  Shrinking never fails:
 * when no smaller array can be had, the current one is big enough.
 */
static int
ckpt_reindex(struct ckpt_names *s, size_t need)
{
	size_t cap = CKPT_INDEX_MIN;
	uint32_t *ix;

	while (cap / 2 < need)
		cap *= 2;
	if (cap != s->imask + 1) {
		if ((ix = calloc(cap, sizeof(*ix))) != NULL) {
			free(s->index);
			s->index = ix;
			s->imask = cap - 1;
		} else if ((s->imask + 1) / 2 < need)
			return -1;
	}
	ckpt_index_fill(s);
	return 0;
}

int
ckpt_names_init(struct ckpt_names *s)
{
	memset(s, 0, sizeof(*s));
	s->imask = CKPT_INDEX_MIN - 1;
	if ((s->index = calloc(CKPT_INDEX_MIN, sizeof(*s->index))) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

void
ckpt_names_free(struct ckpt_names *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].name);
	free(s->v);
	free(s->index);
	free(s->last_name);
	memset(s, 0, sizeof(*s));
}

int
ckpt_names_valid(const char *name)
{
	size_t len = strlen(name);

	return len > 0 && len <= CKPT_NAME_MAX && strchr(name, '/') == NULL;
}

size_t
ckpt_names_find(const struct ckpt_names *s, const char *name)
{
	return s->index[ckpt_slot(s, name)];
}

int
ckpt_names_reserve(struct ckpt_names *s, size_t extra)
{
	size_t need;

	/* The index stores positions in 32 bits. */
	if (extra > UINT32_MAX / 4 || s->n + extra > UINT32_MAX / 4) {
		errno = ENOMEM;
		return -1;
	}
	need = s->n + extra;
	if (ALLOC_GROW(s->v, need, s->cap, 64) < 0)
		return -1;
	if (need > (s->imask + 1) / 2)
		return ckpt_reindex(s, need);
	return 0;
}

int
ckpt_names_new_last(const struct ckpt_names *s, const char *const *names, size_t n, char **out)
{
	const char *top = s->last_name;

	for (size_t i = 0; i < n; i++)
		if (top == NULL || strcmp(names[i], top) > 0)
			top = names[i];
	*out = NULL;
	if (top == s->last_name)
		return 0;
	return (*out = strdup(top)) == NULL ? -1 : 0;
}

void
ckpt_names_take_last(struct ckpt_names *s, char *last)
{
	if (last == NULL)
		return;
	free(s->last_name);
	s->last_name = last;
}

int
ckpt_names_append(struct ckpt_names *s, const char *name, int64_t batch,
    const struct spool_id *id)
{
	size_t slot;
	char *dup;

	if (ckpt_names_reserve(s, 1) < 0)
		return -1;
	slot = ckpt_slot(s, name);
	if (s->index[slot] != 0) {
		errno = EEXIST;
		return -1;
	}
	if ((dup = strdup(name)) == NULL)
		return -1;
	s->v[s->n].name = dup;
	s->v[s->n].batch = batch;
	if (id != NULL)
		s->v[s->n].id = *id;
	else
		memset(&s->v[s->n].id, 0, sizeof(s->v[s->n].id));
	s->index[slot] = (uint32_t)++s->n;
	return 0;
}

size_t
ckpt_names_compact(struct ckpt_names *s, int (*keep)(void *, const struct ckpt_entry *),
    void *arg)
{
	size_t k = 0, n0 = s->n;

	for (size_t i = 0; i < n0; i++) {
		if (keep(arg, &s->v[i]))
			s->v[k++] = s->v[i];
		else
			free(s->v[i].name);
	}
	s->n = k;
	(void)ckpt_reindex(s, k);	/* cannot fail: k <= n0 fits the current index */
	return n0 - k;
}

void
ckpt_names_truncate(struct ckpt_names *s, size_t n0)
{
	while (s->n > n0)
		free(s->v[--s->n].name);
	ckpt_index_fill(s);
}
