/* ops — see include/ops.h. */
#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt.h"
#include "sink.h"
#include "spool.h"
#include "status.h"

const char ops_usage[] =
    "       evstream [-c FILE] [--OPTION=VALUE ...] status [--json]\n"
    "       evstream [-c FILE] [--OPTION=VALUE ...] quarantine list\n"
    "       evstream [-c FILE] [--OPTION=VALUE ...] quarantine requeue FILE...\n";

int
ops_is_command(const char *word)
{
	return strcmp(word, "status") == 0 || strcmp(word, "quarantine") == 0;
}

int
ops_take_json(int *argc, char **argv)
{
	int found = 0, k = 1;

	for (int i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			while (i < *argc)
				argv[k++] = argv[i++];
			break;
		}
		if (strcmp(argv[i], "--json") == 0)
			found = 1;
		else
			argv[k++] = argv[i];
	}
	*argc = k;
	argv[k] = NULL;
	return found;
}

static int
ops_status(const struct ops_config *c, int json)
{
	struct status_report r;

	status_collect(c, &r);
	if (json)
		status_print_json(&r, stdout);
	else
		status_print_text(&r, stdout);
	if (fflush(stdout) != 0)
		return OPS_EXIT_FAIL;
	return r.healthy ? OPS_EXIT_OK : OPS_EXIT_FAIL;
}

/* --- quarantine ---------------------------------------------------------------------- */

static int
ops_open_spool(const struct ops_config *c)
{
	int fd = open(c->spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		fprintf(stderr, "evstream: spool %s: %s\n", c->spool_dir, strerror(errno));
	return fd;
}

/* "<UTC time> <reason>" into its two parts; a missing or odd file says so. */
static void
ops_print_entry(int fd, const char *name, int width)
{
	char line[1024], *sp;
	const char *when = "-", *why = line;

	if (spool_quarantine_reason(fd, name, line, sizeof(line)) < 0)
		snprintf(line, sizeof(line), "(no reason file: %s)", strerror(errno));
	else if ((sp = strchr(line, ' ')) != NULL) {
		*sp = '\0';
		when = line;
		why = sp + 1;
	}
	printf("%-*s  %-27s  %s\n", width, name, when, why);
}

static int
ops_quarantine_list(const struct ops_config *c)
{
	struct spool_list q = { 0 };
	int fd, width = 4;

	if ((fd = ops_open_spool(c)) < 0)
		return OPS_EXIT_FAIL;
	if (spool_quarantine_scan(fd, &q) < 0) {
		fprintf(stderr, "evstream: %s/quarantine: %s\n", c->spool_dir, strerror(errno));
		(void)close(fd);
		return OPS_EXIT_FAIL;
	}
	for (size_t i = 0; i < q.n; i++)
		if ((int)strlen(q.names[i]) > width)
			width = (int)strlen(q.names[i]);
	printf("%-*s  %-27s  %s\n", width, "FILE", "QUARANTINED (UTC)", "REASON");
	for (size_t i = 0; i < q.n; i++)
		ops_print_entry(fd, q.names[i], width);
	printf("%zu file%s in %s/quarantine\n", q.n, q.n == 1 ? "" : "s", c->spool_dir);
	spool_list_free(&q);
	(void)close(fd);	/* read-only */
	return fflush(stdout) == 0 ? OPS_EXIT_OK : OPS_EXIT_FAIL;
}

/*
 * Exactly-once: a name that was committed must never be loaded again.  The
 * checkpoint forgets names once they leave the spool, so evstream_batches is
 * asked too; if it cannot be asked, the answer is no.
 */
static int
ops_never_committed(struct ckpt *ck, struct sink *s, const char *name)
{
	int64_t batch, size, mtime_ns;

	if (ckpt_is_committed(ck, name)) {
		fprintf(stderr, "evstream: refused: %s was already committed (the checkpoint lists "
		    "it); loading it again would count its rows twice\n", name);
		return 0;
	}
	if (sink_file_batch(s, name, &batch, &size, &mtime_ns) < 0) {
		fprintf(stderr, "evstream: refused: cannot ask evstream_batches whether %s was "
		    "committed: %s; try again when the database answers\n", name, sink_error(s));
		return 0;
	}
	if (batch > 0) {
		fprintf(stderr, "evstream: refused: %s was already committed in batch %" PRId64
		    " (evstream_batches); loading it again would count its rows twice\n", name,
		    batch);
		return 0;
	}
	return 1;
}

static int
ops_requeue_one(const struct ops_config *c, int fd, struct ckpt *ck, struct sink *s,
    const char *arg)
{
	const char *qname = strrchr(arg, '/') ? strrchr(arg, '/') + 1 : arg;
	char name[NAME_MAX + 1], path[PATH_MAX];
	struct stat st;

	if (spool_requeue_name(qname, name, sizeof(name)) < 0) {
		fprintf(stderr, "evstream: %s: not a quarantined spool file (a name ending in .csv or "
		    ".csv.gz, or either followed by .N)\n", arg);
		return -1;
	}
	snprintf(path, sizeof(path), SPOOL_QUARANTINE "/%s", qname);
	errno = 0;
	if (fstatat(fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "evstream: %s/quarantine/%s: %s\n", c->spool_dir, qname,
		    errno ? strerror(errno) : "not a regular file");
		return -1;
	}
	if (!ops_never_committed(ck, s, name))
		return -1;
	if (spool_requeue(fd, qname, name) < 0) {
		fprintf(stderr, "evstream: moving quarantine/%s back to %s/%s: %s\n", qname,
		    c->spool_dir, name, errno == EEXIST ? "a file of that name is in the spool" :
		    strerror(errno));
		return -1;
	}
	printf("requeued quarantine/%s as %s/%s: the next batch takes it\n", qname, c->spool_dir,
	    name);
	return 0;
}

static int
ops_quarantine_requeue(const struct ops_config *c, char **files)
{
	struct ckpt *ck = NULL;
	struct sink *s = NULL;
	char err[512];
	int fd, failed = 0;

	if ((fd = ops_open_spool(c)) < 0)
		return OPS_EXIT_FAIL;
	if ((ck = ckpt_read(c->checkpoint_dir, err, sizeof(err))) == NULL ||
	    (s = sink_new(c->conninfo, c->db_schema, err, sizeof(err))) == NULL) {
		fprintf(stderr, "evstream: refused: %s\n", err);
		failed = 1;
	}
	for (size_t i = 0; !failed && files[i] != NULL; i++)
		failed |= ops_requeue_one(c, fd, ck, s, files[i]) < 0;
	sink_free(s);
	ckpt_close(ck);
	(void)close(fd);	/* every move was fsync'ed */
	if (fflush(stdout) != 0)
		failed = 1;
	return failed ? OPS_EXIT_FAIL : OPS_EXIT_OK;
}

static int
ops_quarantine(const struct ops_config *c, char **words)
{
	if (words[1] != NULL && strcmp(words[1], "list") == 0 && words[2] == NULL)
		return ops_quarantine_list(c);
	if (words[1] != NULL && strcmp(words[1], "requeue") == 0 && words[2] != NULL)
		return ops_quarantine_requeue(c, words + 2);
	fprintf(stderr, "usage: evstream quarantine list | quarantine requeue FILE...\n");
	return OPS_EXIT_USAGE;
}

int
ops_main(const struct ops_config *c, char **words, int json)
{
	if (words[0] != NULL && strcmp(words[0], "status") == 0 && words[1] == NULL)
		return ops_status(c, json);
	if (json) {
		fprintf(stderr, "evstream: --json goes with status only\n");
		return OPS_EXIT_USAGE;
	}
	if (words[0] != NULL && strcmp(words[0], "quarantine") == 0)
		return ops_quarantine(c, words);
	fprintf(stderr, "usage:\n%s", ops_usage);
	return OPS_EXIT_USAGE;
}
