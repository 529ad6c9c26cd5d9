/* config — see include/config.h. */
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct cfg_key *
cfg_find(const struct cfg_table *t, const char *name)
{
	for (size_t i = 0; i < t->nkeys; i++)
		if (strcmp(t->keys[i].name, name) == 0)
			return &t->keys[i];
	return NULL;
}

static const char *
cfg_shown(const struct cfg_key *k, const char *value)
{
	return (k->flags & CFG_SECRET) ? "(hidden)" : value;
}

static int
cfg_parse_bool(const char *v, int *out)
{
	static const char *yes[] = { "1", "on", "true", "yes" };
	static const char *no[] = { "0", "off", "false", "no" };

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0)
			return *out = 1, 0;
		if (strcasecmp(v, no[i]) == 0)
			return *out = 0, 0;
	}
	return -1;
}

static void
cfg_choices(const struct cfg_key *k, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; k->choices[i] && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? " | " : "", k->choices[i]);
}

static int
cfg_set_key(const struct cfg_key *k, void *obj, const char *v, char *err, size_t errlen)
{
	char *field = (char *)obj + k->offset, *end;
	char range[256];

	switch (k->type) {
	case CFG_STR: {
		char *dup = strdup(v);
		if (dup == NULL) {
			snprintf(err, errlen, "%s: out of memory", k->name);
			return -1;
		}
		free(*(char **)field);
		*(char **)field = dup;
		return 0;
	}
	case CFG_INT: {
		errno = 0;
		long n = strtol(v, &end, 10);
		if (errno || end == v || *end != '\0' || n < k->min || n > k->max) {
			snprintf(err, errlen, "%s=%s: not an integer in the accepted range [%.0f, %.0f]",
			    k->name, cfg_shown(k, v), k->min, k->max);
			return -1;
		}
		*(long *)field = n;
		return 0;
	}
	case CFG_DOUBLE: {
		errno = 0;
		double d = strtod(v, &end);
		if (errno || end == v || *end != '\0' || !isfinite(d) || d < k->min || d > k->max) {
			snprintf(err, errlen, "%s=%s: not a number in the accepted range [%g, %g]",
			    k->name, cfg_shown(k, v), k->min, k->max);
			return -1;
		}
		*(double *)field = d;
		return 0;
	}
	case CFG_BOOL:
		if (cfg_parse_bool(v, (int *)field) < 0) {
			snprintf(err, errlen, "%s=%s: not a boolean (accepted: on | off)", k->name, v);
			return -1;
		}
		return 0;
	case CFG_ENUM:
		for (int i = 0; k->choices[i]; i++)
			if (strcasecmp(v, k->choices[i]) == 0)
				return *(int *)field = i, 0;
		cfg_choices(k, range, sizeof(range));
		snprintf(err, errlen, "%s=%s: not one of the accepted values (%s)", k->name, v, range);
		return -1;
	}
	return -1;
}

int
cfg_defaults(const struct cfg_table *t, void *obj, char *err, size_t errlen)
{
	for (size_t i = 0; i < t->nkeys; i++) {
		const struct cfg_key *k = &t->keys[i];
		const char *def = k->def ? k->def : (k->type == CFG_STR ? "" : "0");
		if (cfg_set_key(k, obj, def, err, errlen) < 0)
			return -1;
	}
	return 0;
}

struct cfg_ini_ctx {
	const struct cfg_table *t;
	void *obj;
	char *err;
	size_t errlen;
	int failed;
};

static int
cfg_ini_handler(void *user, const char *section, const char *name, const char *value)
{
	struct cfg_ini_ctx *c = user;
	const struct cfg_key *k;
	char why[512];

	if (c->failed)
		return 0;
	if (section[0] != '\0' && strcmp(section, c->t->section) != 0)
		return 1;
	k = cfg_find(c->t, name);
	if (k == NULL || (k->flags & CFG_CLI_ONLY)) {
		snprintf(c->err, c->errlen, "unknown key '%s'", name);
		c->failed = 1;
		return 0;
	}
	if (cfg_set_key(k, c->obj, value, why, sizeof(why)) < 0) {
		snprintf(c->err, c->errlen, "%s", why);
		c->failed = 1;
		return 0;
	}
	return 1;
}

int
cfg_load_file(const struct cfg_table *t, void *obj, const char *path, char *err, size_t errlen)
{
	struct cfg_ini_ctx c = { t, obj, err, errlen, 0 };
	char why[512];
	int rc = ini_parse(path, cfg_ini_handler, &c);

	if (rc == 0)
		return 0;
	if (c.failed) {
		/* inih reports the line of the first error as the return value. */
		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, errlen, "%s: line %d: %s", path, rc, why);
	} else if (rc == -1)
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
	else if (rc == -2)
		snprintf(err, errlen, "%s: out of memory", path);
	else
		snprintf(err, errlen, "%s: line %d: not INI syntax", path, rc);
	return -1;
}

static int
cfg_is_opt(const char *a, const char *s, const char *l)
{
	return (s && strcmp(a, s) == 0) || (l && strcmp(a, l) == 0);
}

/* The config file is read before any other option, so the command line overrides it. */
static int
cfg_args_load_config(const struct cfg_table *t, void *obj, int argc, char **argv,
    char *err, size_t errlen)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (cfg_is_opt(argv[i], "-c", "--config")) {
			if (i + 1 >= argc) {
				snprintf(err, errlen, "%s needs a file name", argv[i]);
				return -1;
			}
			return cfg_load_file(t, obj, argv[i + 1], err, errlen);
		}
		if (strncmp(argv[i], "--config=", 9) == 0)
			return cfg_load_file(t, obj, argv[i] + 9, err, errlen);
	}
	return 0;
}

static int
cfg_args_one(const struct cfg_table *t, void *obj, int argc, char **argv, int *i,
    char *err, size_t errlen)
{
	char name[128], *arg = argv[*i] + 2, *eq = strchr(arg, '='), *from_argv = NULL;
	const char *value;
	size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
	const struct cfg_key *k;
	int rc;

	if (n >= sizeof(name)) {
		snprintf(err, errlen, "unknown option '%.40s...'", argv[*i]);
		return -1;
	}
	memcpy(name, arg, n);
	name[n] = '\0';
	for (char *p = name; *p; p++)	/* --max-files-per-trigger == --max_files_per_trigger */
		if (*p == '-')
			*p = '_';
	k = cfg_find(t, name);
	if (k == NULL && strncmp(name, "no_", 3) == 0 && !eq) {
		k = cfg_find(t, name + 3);
		if (k && k->type == CFG_BOOL)
			return cfg_set_key(k, obj, "off", err, errlen);
		k = NULL;
	}
	if (k == NULL) {
		snprintf(err, errlen, "unknown option '%s' (see --help)", argv[*i]);
		return -1;
	}
	if (eq)
		value = from_argv = eq + 1;
	else if (k->type == CFG_BOOL)
		value = "on";
	else if (*i + 1 < argc)
		value = from_argv = argv[++*i];
	else {
		snprintf(err, errlen, "option --%s needs a value", k->name);
		return -1;
	}
	rc = cfg_set_key(k, obj, value, err, errlen);
	/* ps(1) and /proc/PID/cmdline show argv: blank a secret once it is copied. */
	if (from_argv != NULL && (k->flags & CFG_SECRET))
		memset(from_argv, 'x', strlen(from_argv));
	return rc;
}

int
cfg_parse_args(const struct cfg_table *t, void *obj, int argc, char **argv,
    int *want_help, int *want_version, int *first_arg, char *err, size_t errlen)
{
	int i, nargs = 0;

	*want_help = *want_version = 0;
	if (cfg_args_load_config(t, obj, argc, argv, err, errlen) < 0)
		return -1;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (cfg_is_opt(a, "-h", "--help"))
			*want_help = 1;
		else if (cfg_is_opt(a, "-V", "--version"))
			*want_version = 1;
		else if (cfg_is_opt(a, "-c", "--config"))
			i++;	/* already loaded */
		else if (strncmp(a, "--config=", 9) == 0)
			continue;
		else if (strncmp(a, "--", 2) == 0) {
			if (cfg_args_one(t, obj, argc, argv, &i, err, errlen) < 0)
				return -1;
		} else if (a[0] == '-' && a[1] != '\0') {
			snprintf(err, errlen, "unknown option '%s' (see --help)", a);
			return -1;
		} else
			argv[1 + nargs++] = argv[i];	/* keep positional words, in order */
	}
	while (i < argc)
		argv[1 + nargs++] = argv[i++];
	*first_arg = 1;
	argv[1 + nargs] = NULL;
	return nargs;
}

int
cfg_command_line(const struct cfg_table *t, void *obj, int argc, char **argv,
    const char *prog, void (*usage)(FILE *))
{
	char err[512];
	int help, version, first;

	if (cfg_defaults(t, obj, err, sizeof(err)) < 0) {
		fprintf(stderr, "config: bad built-in default: %s\n", err);
		exit(CFG_EXIT_CONFIG);
	}
	if (cfg_parse_args(t, obj, argc, argv, &help, &version, &first, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", prog, err);
		cfg_free(t, obj);
		exit(CFG_EXIT_CONFIG);
	}
	if (!help && !version)
		return first;
	if (help)
		usage(stdout);
	else
		printf("%s (evpipe) %s\n", prog, EVPIPE_VERSION);
	cfg_free(t, obj);
	exit(0);
}

static void
cfg_describe(const struct cfg_key *k, char *buf, size_t len)
{
	char choices[256];

	switch (k->type) {
	case CFG_INT:
		snprintf(buf, len, "integer %.0f..%.0f", k->min, k->max);
		break;
	case CFG_DOUBLE:
		snprintf(buf, len, "number %g..%g", k->min, k->max);
		break;
	case CFG_BOOL:
		snprintf(buf, len, "on | off");
		break;
	case CFG_ENUM:
		cfg_choices(k, choices, sizeof(choices));
		snprintf(buf, len, "%s", choices);
		break;
	case CFG_STR:
		snprintf(buf, len, "text");
		break;
	}
}

void
cfg_usage(const struct cfg_table *t, FILE *out)
{
	char what[256];

	fprintf(out, "Options (each is also an INI key in [%s]; the command line wins):\n",
	    t->section);
	fprintf(out, "  -c, --config PATH   read settings from an INI file\n");
	fprintf(out, "  -h, --help          this text\n  -V, --version       print the version\n");
	for (size_t i = 0; i < t->nkeys; i++) {
		const struct cfg_key *k = &t->keys[i];
		cfg_describe(k, what, sizeof(what));
		fprintf(out, "  --%s%s\n      %s [%s; default: %s]\n", k->name,
		    k->type == CFG_BOOL ? "" : "=VALUE", k->help, what,
		    (k->flags & CFG_SECRET) ? "(none)" : (k->def && *k->def ? k->def : "\"\""));
	}
}

void
cfg_free(const struct cfg_table *t, void *obj)
{
	for (size_t i = 0; i < t->nkeys; i++)
		if (t->keys[i].type == CFG_STR) {
			char **p = (char **)((char *)obj + t->keys[i].offset);
			free(*p);
			*p = NULL;
		}
}
