/* cli: the `gram` command. One source file per command (kde.c, sample.c, features.c; regress.c for
 * gp and krr, which share all but the model); main.c holds the dispatch and what the commands share:
 * option parsing, reading and validating inputs, fitting, messages, exit codes, progress and
 * interruption. The CLI holds no numerics: density work goes through gram_kde_*, regression
 * through gram_gp_* and gram_krr_*, files through the internal io layer. */
#ifndef GRAM_CLI_H
#define GRAM_CLI_H

#include <gram.h>

#include "io/io.h"

#include <stdint.h>

/* Exit codes. */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_DATA = 1,        /* data or runtime error: unreadable or malformed input, library error */
    CLI_EXIT_USAGE = 2,       /* unknown option, bad or conflicting option values, missing DATA */
    CLI_EXIT_INTERRUPTED = 130 /* SIGINT: 128 + 2, as a shell reports it */
};

/* ---- option parsing (GNU style) -------------------------------------------------------------- */

/* Option ids shared by the commands. */
enum {
    OPT_HELP = 1,
    OPT_VERSION,
    OPT_QUIET,
    OPT_OUTPUT,
    OPT_KERNEL,
    OPT_BANDWIDTH,
    OPT_BANDWIDTH_MATRIX,
    OPT_WEIGHTS,
    OPT_BOUNDS,
    OPT_THREADS,
    /* kde */
    OPT_QUERY,
    OPT_GRID,
    OPT_LOO,
    OPT_LOG,
    OPT_PRECISION,
    OPT_PLOT,
    /* sample */
    OPT_COUNT,
    OPT_SEED,
    /* gp, krr */
    OPT_TARGET,
    OPT_KERNEL_SPEC, /* --kernel SPEC (a kernel spec, not a KDE family name) */
    OPT_ALPHA,
    OPT_NORMALIZE_Y,
    OPT_OPTIMIZE,
    OPT_RESTARTS,
    OPT_MAX_ITER,
    OPT_JITTER_TRIES,
    OPT_STD,
    /* features */
    OPT_METHOD,
    OPT_COMPONENTS,
    OPT_LANDMARKS,
    OPT_DTYPE,
    /* private */
    OPT_SIMILARITY,
    OPT_EPSILON,
    OPT_DELTA,
    OPT_RADIUS,
    OPT_DOMAIN,
    OPT_PRIV_BANDWIDTH, /* --bandwidth S of gram private fit (a number, not a KDE rule) */
    OPT_REDUCED_DIM,
    OPT_LEVELS,
    OPT_P,
    OPT_MECHANISM,
    OPT_NEIGHBOURS,
    OPT_NOISE_SEED,
    OPT_MEAN
};

typedef struct cli_option {
    const char *name; /* long name without "--" */
    char short_name;  /* 0 if none */
    int has_value;
    int id;
} cli_option; /* tables end with {0} */

enum { CLI_ARG_END = 0, CLI_ARG_POSITIONAL = -1, CLI_ARG_ERROR = -2 };

typedef struct cli_args {
    const char *cmd; /* "gram kde": the prefix of usage messages */
    int argc;
    char **argv;
    int next;
    int options_done; /* after "--" */
    char opt_name[64]; /* the option as the user spelled it ("--kernel", "-o"), for messages */
} cli_args;

void cli_args_init(cli_args *a, const char *cmd, int argc, char **argv);

/* The next option's id (with *value set for options that take one), CLI_ARG_POSITIONAL (*value is
 * the argument; "-" is positional), CLI_ARG_END, or CLI_ARG_ERROR after printing a usage message.
 * Accepts --name VALUE, --name=VALUE, -x VALUE, -xVALUE; "--" ends the options. */
int cli_args_next(cli_args *a, const cli_option *opts, const char **value);

/* Prints "CMD: MESSAGE" and a pointer to --help on stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Prints "gram: MESSAGE" on stderr; returns CLI_EXIT_DATA. */
int cli_data_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* Reports a failed library call: "gram: [WHAT: ]MESSAGE" (the context's message, else the status
 * text). Returns the exit code: CLI_EXIT_INTERRUPTED for GRAM_ECANCELLED, else CLI_EXIT_DATA. */
int cli_lib_error(gram_context *ctx, gram_status s, const char *what);

/* Strict number parsing (whole string, C locale): 1 on success. */
int cli_parse_double(const char *s, double *out);
int cli_parse_int64(const char *s, int64_t *out);
int cli_parse_uint64(const char *s, uint64_t *out);
/* A comma-separated list of numbers: 1 with *out (malloc'd, n values), 0 if an item is not a
 * number, -1 if memory ran out (*out NULL then). */
int cli_parse_doubles(const char *text, double **out, int64_t *n);
/* --kernel SPEC parsed into *out while the options are checked, so that a spec the parser refuses is
 * a usage error found before any data are read (running out of memory is a data error). Returns
 * CLI_OPT_CONTINUE or an exit code. */
int cli_parse_kernel_spec(const char *cmd, const char *spec, gram_kernel **out);

/* ---- fitting: the options kde and sample share (gp and krr use DATA, --weights, --threads, -q) --- */

typedef struct cli_fit_args {
    const char *data_path;       /* DATA ("-" = stdin) */
    const char *kernel_name;     /* as given, for messages and titles */
    gram_family kernel;
    const char *bandwidth_text;  /* as given */
    gram_bandwidth_rule rule;
    double *bandwidth;           /* GRAM_BW_FIXED: 1 value, or D per-dimension values (owned) */
    int64_t n_bandwidth;
    gram_kde_geometry geometry;
    const char *weights_path;
    const char *bounds_text;
    double *bounds_lo, *bounds_hi; /* n_bounds parsed LO:HI pairs (owned); 1 applies to all */
    int64_t n_bounds;
    int threads;                 /* -1: not given */
    int quiet;
    gram_dtype precision;
} cli_fit_args;

void cli_fit_args_init(cli_fit_args *f);
void cli_fit_args_free(cli_fit_args *f);

/* Handles the options every fitting command has (kernel, bandwidth, bandwidth-matrix, weights,
 * bounds, threads, quiet). Returns 1 if id was one of them and its value is valid, 0 if id is not
 * one of them, CLI_ARG_ERROR after printing a usage message. */
int cli_fit_option(cli_fit_args *f, const char *cmd, int id, const char *opt_name, const char *value);

/* One step of a fitting command's option loop for everything the commands share: parse errors,
 * the fitting options, DATA, --help (prints help) and --version. Returns CLI_OPT_CONTINUE when id
 * was handled and the loop goes on, CLI_OPT_OWN when id is the command's own, or an exit code
 * (≥ 0) to finish with. */
enum { CLI_OPT_CONTINUE = -1, CLI_OPT_OWN = -2 };
int cli_common_option(cli_fit_args *f, const char *cmd, int id, const char *opt_name, const char *value,
                      const char *help);

/* The shape features and private share: `fit DATA` writes a file (a map, a sketch), an apply
 * command (transform, query) reads that FILE and a second input, POINTS, and `info FILE` describes
 * one. */
enum { CLI_SUB_FIT, CLI_SUB_APPLY, CLI_SUB_INFO };
typedef struct cli_subcommand {
    const char *cmd;        /* "gram features transform": the prefix of messages */
    int kind;               /* CLI_SUB_FIT, CLI_SUB_APPLY or CLI_SUB_INFO */
    const char *file_arg;   /* FILE as a missing one is named: "MAP (a map file from 'gram features fit')" */
    const char *points_arg; /* POINTS as a missing one is named: "QUERIES" */
    /* The command's own options (self is passed through): CLI_OPT_CONTINUE or an exit code. */
    int (*own)(void *self, int id, const char *opt_name, const char *value);
    void *self;
} cli_subcommand;

/* The option loop of such a command: the options every command has (into f), the command's own,
 * DATA or FILE (f->data_path) and POINTS (*points). Then the checks that need no data: the inputs
 * are there, at most one is '-', and an apply command's output (*out_path, '-' when not given) has
 * a matrix name. Returns CLI_OPT_CONTINUE (a fit command checks its own options next) or an exit
 * code (0 after --help or --version). */
int cli_subcommand_parse(const cli_subcommand *sc, cli_fit_args *f, const char **points, const char **out_path,
                         int argc, char **argv, const cli_option *opts, const char *help);

/* The options the fit and apply subcommands of such a command share. */
#define CLI_SUBCOMMAND_OPTIONS                                                                     \
    {"output", 'o', 1, OPT_OUTPUT}, {"threads", 0, 1, OPT_THREADS}, {"quiet", 'q', 0, OPT_QUIET},  \
        {"help", 'h', 0, OPT_HELP}, {"version", 0, 0, OPT_VERSION}

#define CLI_FIT_OPTIONS                                                                            \
    {"kernel", 0, 1, OPT_KERNEL}, {"bandwidth", 0, 1, OPT_BANDWIDTH},                              \
        {"bandwidth-matrix", 0, 1, OPT_BANDWIDTH_MATRIX}, {"weights", 0, 1, OPT_WEIGHTS},          \
        {"bounds", 0, 1, OPT_BOUNDS}, {"threads", 0, 1, OPT_THREADS}, {"quiet", 'q', 0, OPT_QUIET}, \
        {"help", 'h', 0, OPT_HELP}, {"version", 0, 0, OPT_VERSION}, {"output", 'o', 1, OPT_OUTPUT}

/* The checks of the fitting options against each other that need no data (cv-ls and the kernel,
 * isj and cauchy, cv-ls and --bounds, the covariance geometry with several bandwidths or finite
 * bounds): 0, or CLI_EXIT_USAGE after the message. The library refuses the same, but only after
 * the data have been read, and as a data error. */
int cli_check_fit_args(const cli_fit_args *f, const char *cmd);

/* Everything a fitting command works with. */
typedef struct cli_job {
    const char *cmd;        /* "gram kde" */
    cli_fit_args *args;
    gram_context *ctx;
    gram__matrix data;      /* N×D */
    gram__matrix weights;   /* N values, or empty */
    double *lower, *upper;  /* D reflection bounds, or NULL */
    gram_kde *kde;
    double t_start;         /* when the computation started (cli_now) */
} cli_job;

/* Creates the context (threads, progress), reads DATA and --weights, and parses --bounds against
 * the data's dimension. Returns an exit code (0 on success). */
int cli_job_load(cli_job *job, const char *cmd, cli_fit_args *args);
/* Fits the KDE with job->args; returns an exit code. */
int cli_job_fit(cli_job *job);
void cli_job_free(cli_job *job);

/* Reads a matrix from path and checks that every value is finite. Returns an exit code. */
int cli_read_matrix(gram_context *ctx, const char *path, gram__matrix *out);

/* The label of data column j: its CSV header name, else "x<j+1>". */
const char *cli_column_name(const gram__matrix *m, int64_t j, char *buf, size_t size);
/* A short name for a path in titles and messages: its base name, or "stdin" for "-". */
const char *cli_display_name(const char *path);
/* A path as messages name it: the path itself, or "<stdin>" for "-" (as the io layer names it). */
const char *cli_msg_name(const char *path);

/* "scott", "silverman", ..., or the number(s) as given. */
const char *cli_rule_name(const cli_fit_args *f);

/* Appends the fitted bandwidth to buf: "h=[0.2365, 2.826] (isotropic)" or
 * "factor=0.4 (covariance)". */
void cli_describe_bandwidth(const gram_kde *kde, const cli_fit_args *f, char *buf, size_t size);
/* "0.8 ms", "3.21 s". */
void cli_format_seconds(double seconds, char *buf, size_t size);

/* ---- time, progress and interruption ----------------------------------------------------------- */

double cli_now(void);
/* Creates a context for a command: --threads (threads < 0: the default), the progress display
 * labelled cmd, and the SIGINT handler. Returns an exit code (0 on success). */
int cli_context_create(const char *cmd, int threads, gram_context **ctx);
/* Marks the start of the computation (the progress display waits a second from here); returns
 * cli_now(). */
double cli_progress_start(void);
/* Installs the SIGINT handler (a second SIGINT kills the process as usual). */
void cli_catch_sigint(void);
int cli_interrupted(void);
/* Clears a progress line left on stderr. */
void cli_progress_done(void);

/* ---- outputs ------------------------------------------------------------------------------------ */

/* A usage check of an output name, made while parsing: a matrix output (-o of kde, sample,
 * predict) must be FILE.npy, FILE.csv or have no suffix (CSV); a plot (plot set) FILE.svg or no
 * suffix. Returns 0, or CLI_EXIT_USAGE after the message. */
int cli_check_output_name(const char *cmd, const char *opt, const char *path, int plot);

/* The outputs of one run, all or nothing (see gram__output in io.h): each is staged (a regular
 * file's temporary copy written in full, a device or FIFO opened) and the run commits them
 * together once everything has been computed; a failure to stage one discards those staged
 * before, so nothing is written. The stage functions and cli_commit return exit codes; after a
 * failure everything is discarded. */
typedef struct cli_outputs {
    gram__output o[2];
    int n;
} cli_outputs;
int cli_stage_matrix(gram_context *ctx, cli_outputs *outs, const char *path, const double *data, int64_t rows,
                     int64_t cols, const char *const *names);
int cli_stage_text(gram_context *ctx, cli_outputs *outs, const char *path, const char *text, size_t len);
int cli_commit(gram_context *ctx, cli_outputs *outs);
void cli_outputs_discard(cli_outputs *outs);

/* ---- limits and environment --------------------------------------------------------------------- */

/* Reads GRAM_MAX_INPUT; returns an exit code (2 when it is not a positive integer). */
int cli_read_environment(void);
/* The most bytes one input may take (gram__read_opts.max_bytes): GRAM_MAX_INPUT, else
 * gram__io_default_limit(). */
int64_t cli_input_limit(void);

/* ---- commands ---------------------------------------------------------------------------------- */

/* The command line argv[0..argc) as main gets it. With parse_only set, stops once the options are
 * parsed and checked: no file is read, created or written, nothing is computed, and the exit code
 * is 0 for a valid command line, 2 for a usage error (--help and --version still print). A fuzz
 * target of the option values calls this. */
int cli_main(int argc, char **argv, int parse_only);

/* One command each (argv[0] is the command's name); parse_only as for cli_main. */
int cli_kde(int argc, char **argv, int parse_only);
int cli_sample(int argc, char **argv, int parse_only);
int cli_gp(int argc, char **argv, int parse_only);  /* regress.c */
int cli_krr(int argc, char **argv, int parse_only); /* regress.c */
int cli_features(int argc, char **argv, int parse_only); /* features.c: fit, transform, info */
int cli_private(int argc, char **argv, int parse_only);  /* private.c: fit, query, info */

/* A command with subcommands (gp, krr, features, private) given none it knows: alone (help on
 * stderr, 2), --help/-h/help (help on stdout), --version, an option where the subcommand belongs or
 * an unknown name (usage errors naming list, "fit, predict or sample"). Returns the exit code. */
int cli_no_subcommand(const char *cmd, int argc, char **argv, const char *help, const char *list);

#endif
