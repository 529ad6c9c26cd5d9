/*
 * config — one table per daemon describes every key: name, type, default, bounds, help.
 *
 * From that table alone come: the defaults, the INI file reader (inih), the
 * command-line overrides (--key=value, --key value, and bare --flag for booleans),
 * the range checks, and `--help`.  tests/system/config_example_matches.sh checks
 * that the example systemd/evpipe.ini lists every key `--help` prints, and that
 * both daemons accept it, so the documentation cannot drift from the code.
 *
 * Precedence: defaults < INI file (-c PATH) < command line.
 */
#ifndef EVPIPE_CONFIG_H
#define EVPIPE_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "util.h"

enum cfg_type {
	CFG_STR,	/* char *, owned (strdup'ed) */
	CFG_INT,	/* long, within [min, max] */
	CFG_DOUBLE,	/* double, within [min, max] */
	CFG_BOOL,	/* int 0/1: on|off|true|false|yes|no|1|0 */
	CFG_ENUM,	/* int: index into choices[] */
};

#define CFG_SECRET	0x1	/* never printed, not even in error messages; blanked in argv */
#define CFG_CLI_ONLY	0x2	/* a run-time flag, not read from the INI file */

struct cfg_key {
	const char	*name;
	enum cfg_type	 type;
	size_t		 offset;	/* offsetof() into the daemon's config struct */
	const char	*def;		/* default, as text (NULL = empty string / 0) */
	double		 min, max;	/* CFG_INT, CFG_DOUBLE */
	const char *const *choices;	/* CFG_ENUM, NULL-terminated */
	int		 flags;
	const char	*help;		/* one line */
};

struct cfg_table {
	const char		*section;	/* INI section read, e.g. "evgen" */
	const struct cfg_key	*keys;
	size_t			 nkeys;
};

/* Fill every key with its default.  Returns 0, or -1 with err filled if a default is
 * invalid (a bug). */
int cfg_defaults(const struct cfg_table *t, void *obj, char *err, size_t errlen) MUSTCHECK;

/* Read an INI file: keys outside [section] (or in the unnamed section) are read too;
 * other sections are ignored so one file can hold both daemons' settings. */
int cfg_load_file(const struct cfg_table *t, void *obj, const char *path,
    char *err, size_t errlen) MUSTCHECK;

/*
 * Parse argv: -c PATH / --config PATH loads a file first; -h/--help and
 * -V/--version set *want_help / *want_version; everything else is a key.
 * Words that are not options are left in argv[*first_arg ..] (subcommands).
 * Returns 0 or -1 with err filled.
 */
int cfg_parse_args(const struct cfg_table *t, void *obj, int argc, char **argv,
    int *want_help, int *want_version, int *first_arg, char *err, size_t errlen) MUSTCHECK;

/*
 * The start of each daemon's main(): defaults, then -c FILE, then flags.  --help
 * (printed by usage()) and --version exit 0; a bad option exits 2 (EXIT_CONFIG)
 * after one line on stderr.  Returns the index of the first positional word
 * (argv[i] == NULL when there is none).
 */
#define CFG_EXIT_CONFIG 2
int cfg_command_line(const struct cfg_table *t, void *obj, int argc, char **argv,
    const char *prog, void (*usage)(FILE *));

/* Print the options section of --help, generated from the table. */
void cfg_usage(const struct cfg_table *t, FILE *out);

/* Free owned strings. */
void cfg_free(const struct cfg_table *t, void *obj);

#endif
