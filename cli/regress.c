/* gram gp, gram krr: Gaussian-process and kernel ridge regression. `fit` reads DATA and the
 * targets and saves a model file; `predict` (and `gp sample`) load it and evaluate it at QUERY.
 * The numerics are gram_gp_* and gram_krr_*; this file resolves --target, checks the inputs,
 * writes the outputs and draws the 1-D plots. The two commands share everything but the model. */
#include "cli.h"
#include "svg.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- help ------------------------------------------------------------------------------------ */

#define HELP_TAIL                                                                                  \
    "      --threads N          threads (0, the default: all cores)\n"                            \
    "  -q, --quiet              no summary on standard error\n"                                   \
    "  -h, --help               show this help and exit\n"                                        \
    "      --version            show the version and exit\n"

#define HELP_EXIT                                                                                  \
    "\n"                                                                                           \
    "Exit status: 0 success, 1 data or runtime error, 2 usage error,\n"                            \
    "130 interrupted.\n"

#define HELP_FIT_INPUTS                                                                            \
    "DATA is a .npy or CSV file ('-' reads standard input), N rows.\n"                             \
    "\n"                                                                                           \
    "      --target COL|FILE    the targets: a column of DATA by header name or\n"                 \
    "                           0-based index (several: comma-separated), the\n"                   \
    "                           other columns being the inputs X; or, when COL\n"                  \
    "                           is no column of DATA, a file of N rows (one\n"                     \
    "                           column per target), all of DATA being X\n"                         \
    "      --kernel SPEC        the kernel, e.g. 'rbf(lengthscale=1) + white(0.1)',\n"             \
    "                           '2.0*matern52(lengthscale=[1,2,3])' (ARD) or\n"                     \
    "                           'rbf(lengthscale=67, lengthscale_bounds=[1, 1000])'\n"

#define HELP_PREDICT_IO                                                                            \
    "MODEL is a file written by 'fit'; QUERY a .npy or CSV file of M points with\n"                \
    "the model's D columns ('-' reads standard input).\n"                                          \
    "\n"                                                                                           \
    "  -o, --output FILE        FILE.npy (float64), FILE.csv, or a name with no\n"                 \
    "                           suffix (CSV; another suffix is refused); '-':\n"                 \
    "                           standard output (the default without --plot)\n"

#define HELP_PLOT_FIT                                                                              \
    "      --plot FILE.svg      1-D inputs: the data and the fitted model over\n"                  \
    "                           the data's range\n"

static const char GP_HELP[] =
    "Usage: gram gp fit DATA --target COL|FILE --kernel SPEC [OPTIONS] -o MODEL\n"
    "       gram gp predict MODEL QUERY [--std] [-o OUT] [--plot FILE.svg]\n"
    "       gram gp sample MODEL QUERY --count S [--seed SEED] [--target T] [-o OUT]\n"
    "\n"
    "Gaussian-process regression, as scikit-learn's GaussianProcessRegressor:\n"
    "'fit' conditions a GP prior (the kernel) on the data, optionally learning the\n"
    "kernel's hyperparameters, and saves the model; 'predict' gives the posterior\n"
    "mean and standard deviation at query points; 'sample' draws posterior paths.\n"
    "\n"
    "Run 'gram gp COMMAND --help' for a command's options.\n" HELP_EXIT;

static const char GP_FIT_HELP[] =
    "Usage: gram gp fit DATA --target COL|FILE --kernel SPEC [OPTIONS] -o MODEL\n"
    "\n"
    "Fits a Gaussian process to DATA and saves it to MODEL, a versioned and\n"
    "checksummed file for 'gram gp predict' and 'gram gp sample'.\n"
    "\n" HELP_FIT_INPUTS
    "      --alpha A|FILE       noise variance added to the diagonal: a number\n"
    "                           >= 0 (default 1e-10), or a file of N values\n"
    "      --normalize-y        centre each target and scale it to unit variance\n"
    "                           before fitting (predictions are mapped back)\n"
    "      --optimize           maximise the log marginal likelihood over the\n"
    "                           kernel's free hyperparameters within their bounds\n"
    "                           (L-BFGS-B; default bounds [1e-5, 1e5]; '_bounds=\n"
    "                           fixed' in the spec keeps a value)\n"
    "      --restarts K         with --optimize: K more starts drawn log-uniformly\n"
    "                           within the bounds (default 0)\n"
    "      --seed S             with --optimize: the restarts' seed (default 0)\n"
    "      --max-iter N         with --optimize: iterations per start (default 15000)\n"
    "      --jitter-tries N     when the matrix is not positive definite, retry up\n"
    "                           to N times with growing jitter on the diagonal\n"
    "                           (default 0: fail)\n"
    "  -o, --output MODEL       the model file (required)\n" HELP_PLOT_FIT
    "                           (the posterior mean with a +/- 2 std band)\n" HELP_TAIL
    "\n"
    "A summary goes to standard error: N, D, T (targets), the log marginal\n"
    "likelihood, the optimizer's iterations, the time, and the kernel (the learned\n"
    "one with --optimize). A start of the optimizer that did not converge (as\n"
    "scikit-learn's ConvergenceWarning) is a 'warning:' line there, even with -q.\n"
    "\n"
    "Example:\n"
    "  gram gp fit data/co2_monthly.csv --target co2_ppm --normalize-y --optimize \\\n"
    "      --kernel '50*rbf(50) + 2*rbf(100)*periodic(1.3, period=1,\n"
    "                period_bounds=fixed) + white(0.1)' -o co2.model\n"
    "  gram gp predict co2.model years.csv --std -o forecast.csv --plot forecast.svg\n" HELP_EXIT;

static const char GP_PREDICT_HELP[] =
    "Usage: gram gp predict MODEL QUERY [--std] [-o OUT] [--plot FILE.svg]\n"
    "\n"
    "The posterior mean of a fitted Gaussian process at the query points, and\n"
    "with --std the posterior standard deviations.\n"
    "\n" HELP_PREDICT_IO
    "      --std                also the standard deviations\n"
    "      --plot FILE.svg      1-D inputs: the posterior mean, a +/- 2 std band\n"
    "                           and the training data over the queries' range\n" HELP_TAIL
    "\n"
    "The output has M rows: the mean (one column per target T), then with --std\n"
    "the standard deviations; the CSV header is 'mean' and 'std' (T = 1) or\n"
    "'mean0', 'mean1', ..., 'std0', 'std1', ...\n" HELP_EXIT;

static const char GP_SAMPLE_HELP[] =
    "Usage: gram gp sample MODEL QUERY --count S [--seed SEED] [--target T] [-o OUT]\n"
    "\n"
    "Draws S paths from the posterior of a fitted Gaussian process, jointly at the\n"
    "M query points. The same seed gives the same paths.\n"
    "\n" HELP_PREDICT_IO
    "  -n, --count S            the number of paths (required)\n"
    "      --seed SEED          random seed, an integer in 0..2^64-1 (default 0)\n"
    "      --target T           which target of a multi-output model, 0-based\n"
    "                           (default 0)\n"
    "      --plot FILE.svg      1-D inputs: the paths over the posterior mean,\n"
    "                           its +/- 2 std band and the training data\n" HELP_TAIL
    "\n"
    "The output has M rows and S columns, 'sample0', 'sample1', ...\n" HELP_EXIT;

static const char KRR_HELP[] =
    "Usage: gram krr fit DATA --target COL|FILE --kernel SPEC [--alpha L] -o MODEL\n"
    "       gram krr predict MODEL QUERY [-o OUT] [--plot FILE.svg]\n"
    "\n"
    "Kernel ridge regression, as scikit-learn's KernelRidge: 'fit' solves\n"
    "(K + alpha I) c = y and saves the model; 'predict' gives K(QUERY, X) c.\n"
    "\n"
    "Run 'gram krr COMMAND --help' for a command's options.\n" HELP_EXIT;

static const char KRR_FIT_HELP[] =
    "Usage: gram krr fit DATA --target COL|FILE --kernel SPEC [OPTIONS] -o MODEL\n"
    "\n"
    "Fits kernel ridge regression to DATA and saves it to MODEL, a versioned and\n"
    "checksummed file for 'gram krr predict'.\n"
    "\n" HELP_FIT_INPUTS
    "      --alpha L[,L...]     regularisation, >= 0: one value, or one per target\n"
    "                           (default 1)\n"
    "      --weights FILE       N sample weights > 0 (the ridge of point i is\n"
    "                           alpha / w_i)\n"
    "  -o, --output MODEL       the model file (required)\n" HELP_PLOT_FIT HELP_TAIL
    "\n"
    "A summary (N, D, T, alpha, the kernel, the time) goes to standard error.\n"
    "\n"
    "Example:\n"
    "  gram krr fit data/faithful.csv --target waiting --kernel 'rbf(0.5)' \\\n"
    "      --alpha 0.1 -o faithful.krr\n" HELP_EXIT;

static const char KRR_PREDICT_HELP[] =
    "Usage: gram krr predict MODEL QUERY [-o OUT] [--plot FILE.svg]\n"
    "\n"
    "The predictions of a fitted kernel ridge model at the query points.\n"
    "\n" HELP_PREDICT_IO
    "      --plot FILE.svg      1-D inputs: the prediction over the queries' range\n"
    "                           with a rug of the training inputs\n" HELP_TAIL
    "\n"
    "The output has M rows, one column per target: 'prediction' (T = 1) or\n"
    "'prediction0', 'prediction1', ...\n" HELP_EXIT;

/* ---- arguments ------------------------------------------------------------------------------- */

#define REG_COMMON_OPTIONS                                                                         \
    {"output", 'o', 1, OPT_OUTPUT}, {"plot", 0, 1, OPT_PLOT}, {"threads", 0, 1, OPT_THREADS},      \
        {"quiet", 'q', 0, OPT_QUIET}, {"help", 'h', 0, OPT_HELP}, {"version", 0, 0, OPT_VERSION}

#define REG_FIT_OPTIONS                                                                            \
    REG_COMMON_OPTIONS, {"target", 0, 1, OPT_TARGET}, {"kernel", 0, 1, OPT_KERNEL_SPEC},           \
        {"alpha", 0, 1, OPT_ALPHA}

typedef enum { GP_FIT, GP_PREDICT, GP_SAMPLE, KRR_FIT, KRR_PREDICT } reg_cmd;

typedef struct reg_args {
    reg_cmd which;
    const char *cmd;         /* "gram gp fit" */
    cli_fit_args f;          /* data_path (DATA, or MODEL), weights_path, threads, quiet */
    const char *query_path;  /* QUERY */
    const char *target;      /* --target as given */
    const char *kernel_spec;
    gram_kernel *kernel;     /* fit: kernel_spec parsed while the options are checked (owned) */
    const char *out_path, *plot_path;
    const char *alpha_path;  /* gp: --alpha FILE */
    double *alpha;           /* the --alpha values (owned), n_alpha of them; NULL: the default */
    int64_t n_alpha;
    int normalize_y, optimize, want_std;
    const char *needs_optimize; /* the first of --restarts, --seed, --max-iter given (gp fit) */
    int64_t restarts, max_iter, jitter_tries, count, target_index;
    uint64_t seed;
} reg_args;

/* A non-negative integer option value in [lo, hi]; 0 after a usage message otherwise. */
static int parse_count(const reg_args *r, const char *opt, const char *value, int64_t lo, int64_t hi,
                       const char *what, int64_t *out)
{
    if (cli_parse_int64(value, out) && *out >= lo && *out <= hi) return 1;
    cli_usage_error(r->cmd, "%s: expected %s (an integer in %lld..%lld), got '%s'", opt, what,
                    (long long)lo, (long long)hi, value);
    return 0;
}

/* --alpha: gp takes one number or a file of N values, krr one number or one per target. */
static int parse_alpha(reg_args *r, const char *value)
{
    double *v;
    int64_t n;
    int ok = cli_parse_doubles(value, &v, &n);
    if (ok < 0) return cli_data_error("out of memory");
    for (int64_t i = 0; i < n; i++) ok &= isfinite(v[i]) && v[i] >= 0;
    if (r->which == GP_FIT && ok && n != 1) ok = 0;
    if (!ok && r->which == GP_FIT && (!strcmp(value, "-") || access(value, F_OK) == 0)) {
        free(v);
        free(r->alpha);
        r->alpha = NULL;
        r->alpha_path = value;
        return 0;
    }
    if (!ok) {
        free(v);
        return cli_usage_error(r->cmd, "--alpha: expected %s, got '%s'",
                               r->which == GP_FIT ? "a number >= 0 or a file of N values"
                                                  : "a number >= 0, or one per target separated by commas",
                               value);
    }
    free(r->alpha);
    r->alpha = v;
    r->n_alpha = n;
    r->alpha_path = NULL;
    return 0;
}

/* One option of the regression commands (the tables say which each command takes). Returns
 * CLI_OPT_CONTINUE, or an exit code to finish with. */
static int reg_option(reg_args *r, int id, const char *opt_name, const char *value)
{
    int64_t n;
    switch (id) {
    case OPT_OUTPUT: r->out_path = value; break;
    case OPT_PLOT: r->plot_path = value; break;
    case OPT_KERNEL_SPEC: r->kernel_spec = value; break;
    case OPT_NORMALIZE_Y: r->normalize_y = 1; break;
    case OPT_OPTIMIZE: r->optimize = 1; break;
    case OPT_STD: r->want_std = 1; break;
    case OPT_ALPHA: {
        int e = parse_alpha(r, value);
        return e ? e : CLI_OPT_CONTINUE;
    }
    case OPT_TARGET:
        r->target = value;
        if (r->which == GP_SAMPLE &&
            !parse_count(r, opt_name, value, 0, INT64_MAX, "a 0-based target index", &r->target_index))
            return CLI_EXIT_USAGE;
        break;
    case OPT_RESTARTS:
        if (!parse_count(r, opt_name, value, 0, 100000, "a number of restarts", &n)) return CLI_EXIT_USAGE;
        r->restarts = n;
        if (!r->needs_optimize) r->needs_optimize = "--restarts";
        break;
    case OPT_MAX_ITER:
        if (!parse_count(r, opt_name, value, 1, 1000000000, "a number of iterations", &n)) return CLI_EXIT_USAGE;
        r->max_iter = n;
        if (!r->needs_optimize) r->needs_optimize = "--max-iter";
        break;
    case OPT_JITTER_TRIES:
        if (!parse_count(r, opt_name, value, 0, 100, "a number of tries", &n)) return CLI_EXIT_USAGE;
        r->jitter_tries = n;
        break;
    case OPT_COUNT:
        if (!parse_count(r, opt_name, value, 1, INT64_MAX, "a positive number of paths", &r->count))
            return CLI_EXIT_USAGE;
        break;
    case OPT_SEED:
        if (!cli_parse_uint64(value, &r->seed))
            return cli_usage_error(r->cmd, "--seed: expected an integer in 0..18446744073709551615, "
                                           "got '%s'", value);
        if (!r->needs_optimize && r->which == GP_FIT) r->needs_optimize = "--seed";
        break;
    default: return cli_usage_error(r->cmd, "internal error: unhandled option '%s'", opt_name);
    }
    return CLI_OPT_CONTINUE;
}

/* Parses argv into r (fit: DATA; predict, sample: MODEL QUERY) and checks what needs no data.
 * Returns CLI_OPT_CONTINUE to go on, or an exit code (0 after --help or --version). */
static int reg_parse(reg_args *r, int argc, char **argv, const cli_option *opts, const char *help)
{
    int fit = r->which == GP_FIT || r->which == KRR_FIT;
    const char *value;
    int id;
    cli_args a;
    cli_args_init(&a, r->cmd, argc, argv);
    while ((id = cli_args_next(&a, opts, &value)) != CLI_ARG_END) {
        if (id == CLI_ARG_POSITIONAL && !fit && r->f.data_path) {
            if (r->query_path)
                return cli_usage_error(r->cmd, "unexpected argument '%s' (MODEL is '%s', QUERY '%s')",
                                       value, r->f.data_path, r->query_path);
            r->query_path = value;
            continue;
        }
        int rc = cli_common_option(&r->f, r->cmd, id, a.opt_name, value, help);
        if (rc == CLI_OPT_OWN) rc = reg_option(r, id, a.opt_name, value);
        if (rc != CLI_OPT_CONTINUE) return rc;
    }

    const char *model_kind = r->which == KRR_PREDICT ? "krr" : "gp";
    if (!r->f.data_path)
        return fit ? cli_usage_error(r->cmd, "missing DATA (a .npy or CSV file, or - for standard input)")
                   : cli_usage_error(r->cmd, "missing MODEL (a model file from 'gram %s fit')", model_kind);
    if (fit) {
        if (!r->target)
            return cli_usage_error(r->cmd, "missing --target COL|FILE (a column of DATA, or a file of "
                                           "targets)");
        if (!r->kernel_spec)
            return cli_usage_error(r->cmd, "missing --kernel SPEC (e.g. 'rbf(lengthscale=1) + white(0.1)')");
        if (!r->out_path) return cli_usage_error(r->cmd, "missing -o MODEL (the model file to write)");
        if (r->needs_optimize && !r->optimize)
            return cli_usage_error(r->cmd, "%s only applies with --optimize", r->needs_optimize);
    } else {
        if (!r->query_path)
            return cli_usage_error(r->cmd, "missing QUERY (a .npy or CSV file of points, or - for "
                                           "standard input)");
        if (r->which == GP_SAMPLE && r->count <= 0)
            return cli_usage_error(r->cmd, "missing --count S (the number of paths)");
    }
    const char *inputs[4] = {r->f.data_path, r->query_path, r->f.weights_path, r->alpha_path};
    int stdin_users = 0;
    for (int i = 0; i < 4; i++) stdin_users += inputs[i] && !strcmp(inputs[i], "-");
    if (fit && r->target && !strcmp(r->target, "-")) stdin_users++;
    if (stdin_users > 1) return cli_usage_error(r->cmd, "only one input can be '-' (standard input)");
    if (r->out_path && r->plot_path && !strcmp(r->out_path, "-") && !strcmp(r->plot_path, "-"))
        return cli_usage_error(r->cmd, "-o and --plot cannot both write to standard output");
    if (!r->out_path && !r->plot_path) r->out_path = "-";
    int rc;
    if ((!fit && r->out_path && (rc = cli_check_output_name(r->cmd, "-o", r->out_path, 0))) ||
        (r->plot_path && (rc = cli_check_output_name(r->cmd, "--plot", r->plot_path, 1))))
        return rc;
    if (fit) return cli_parse_kernel_spec(r->cmd, r->kernel_spec, &r->kernel);
    return CLI_OPT_CONTINUE;
}

static void reg_args_free(reg_args *r)
{
    gram_kernel_destroy(r->kernel);
    free(r->alpha);
    cli_fit_args_free(&r->f);
}

/* ---- small helpers --------------------------------------------------------------------------- */

/* The kernel's canonical spec (malloc'd; NULL if memory ran out). */
static char *kernel_text(const gram_kernel *k)
{
    size_t n = gram_kernel_spec(k, NULL, 0);
    char *s = malloc(n + 1);
    if (s) gram_kernel_spec(k, s, n + 1);
    return s;
}

/* The spec with every number to 4 significant digits, for plot subtitles ("gaussian(lengthscale=
 * 1.878) + white(noise=0.008289)"); cut with "..." to fit size. */
static void short_spec(const char *spec, char *buf, size_t size)
{
    size_t used = 0;
    for (const char *p = spec; *p;) {
        char tok[48];
        size_t n = 1;
        int num = (isdigit((unsigned char)*p) || (*p == '.' && isdigit((unsigned char)p[1]))) &&
                  (p == spec || !(isalnum((unsigned char)p[-1]) || p[-1] == '_'));
        char *end = NULL;
        double v = num ? strtod(p, &end) : 0;
        if (num && end > p) {
            n = (size_t)snprintf(tok, sizeof tok, "%.4g", v);
            p = end;
        } else {
            tok[0] = *p++;
        }
        if (used + n + 4 > size) { /* room for "..." and the NUL is kept at every step */
            memcpy(buf + used, "...", 4);
            return;
        }
        memcpy(buf + used, tok, n);
        used += n;
    }
    buf[used] = '\0';
}

/* Column names "BASE" (n = 1) or "BASE0", "BASE1", ... into one block (free the result). */
static const char **numbered_names(const char *base, int64_t n, int64_t first, const char **names)
{
    for (int64_t k = 0; k < n; k++) {
        char *s = malloc(strlen(base) + 24);
        if (!s) return NULL;
        if (n == 1) strcpy(s, base);
        else sprintf(s, "%s%lld", base, (long long)k);
        names[first + k] = s;
    }
    return names;
}

static void free_names(const char **names, int64_t n)
{
    if (!names) return;
    for (int64_t k = 0; k < n; k++) free((char *)(uintptr_t)names[k]);
    free(names);
}

typedef struct sort_item {
    double x;
    int64_t i;
} sort_item;

static int cmp_item(const void *a, const void *b)
{
    const sort_item *p = a, *q = b;
    return p->x < q->x ? -1 : p->x > q->x ? 1 : (p->i > q->i) - (p->i < q->i);
}

/* The order of the n values v[i*stride] (perm, n entries) and the sorted values (xs). */
static int sort_order(const double *v, int64_t n, int64_t stride, int64_t *perm, double *xs)
{
    sort_item *it = malloc((size_t)(n > 0 ? n : 1) * sizeof *it);
    if (!it) return -1;
    for (int64_t i = 0; i < n; i++) it[i] = (sort_item){v[i * stride], i};
    qsort(it, (size_t)n, sizeof *it, cmp_item);
    for (int64_t i = 0; i < n; i++) {
        perm[i] = it[i].i;
        xs[i] = it[i].x;
    }
    free(it);
    return 0;
}

/* n points spanning [min, max] of the N values (a unit interval around a single value). */
static void data_span(const double *v, int64_t N, int64_t n, double *xs)
{
    double lo = v[0], hi = v[0];
    for (int64_t i = 1; i < N; i++) {
        if (v[i] < lo) lo = v[i];
        if (v[i] > hi) hi = v[i];
    }
    if (!(hi > lo)) lo -= 0.5, hi += 0.5;
    for (int64_t i = 0; i < n; i++) xs[i] = lo + (hi - lo) * (double)i / (double)(n - 1);
    xs[n - 1] = hi;
}

/* Prints the library's error and, for a matrix that is not positive definite, what to try. */
/* Starts of the optimiser that ended without converging, one warning line each (the CLI's form of
 * the ConvergenceWarning gram.GaussianProcessRegressor emits): a fit that stopped at max_iter or
 * found no acceptable step may be far from the optimum, and a user should hear it even with -q. */
static void warn_unconverged(const char *cmd, const gram_gp *gp)
{
    static const char *const why[] = {
        [GRAM_GP_START_MAX_ITER] = "stopped at --max-iter",
        [GRAM_GP_START_ABNORMAL] = "no acceptable step along the search direction",
        [GRAM_GP_START_MAX_EVAL] = "stopped at the evaluation limit",
        [GRAM_GP_START_UNDEFINED] = "the log marginal likelihood is not defined there: skipped",
    };
    for (int64_t i = 0; i < gram_gp_n_starts(gp); i++) {
        gram_gp_start_status st;
        int64_t it = 0;
        if (gram_gp_start(gp, i, &st, &it) != GRAM_OK || st == GRAM_GP_START_CONVERGED) continue;
        const char *w = (int)st >= 0 && (size_t)st < sizeof why / sizeof *why && why[st] ? why[st] : "unknown";
        fprintf(stderr, "%s: warning: optimizer start %lld (%s) did not converge after %lld iteration%s: %s\n", cmd,
                (long long)i, i ? "a restart" : "the kernel's hyperparameters", (long long)it, it == 1 ? "" : "s", w);
    }
}

static int fit_error(gram_context *ctx, gram_status s, const char *what, const char *hint)
{
    int rc = cli_lib_error(ctx, s, what);
    if (s == GRAM_ENOTPD) fprintf(stderr, "gram: hint: %s\n", hint);
    return rc;
}

/* ---- fit: DATA, --target, --kernel ------------------------------------------------------------ */

typedef struct reg_fit {
    gram_context *ctx;
    const gram_kernel *kernel;       /* the one reg_parse made (owned by reg_args) */
    gram__matrix data, tfile, extra; /* DATA, the targets file, --weights or --alpha FILE */
    double *X, *Y;                   /* N×D inputs, N×T targets, row-major (owned) */
    int64_t N, D, T;
    char xlabel[64], ylabel[64];
    double t_start;
} reg_fit;

/* Column of m named item (a header name, else a 0-based index), or -1. */
static int64_t find_column(const gram__matrix *m, const char *item)
{
    for (int64_t j = 0; m->names && j < m->cols; j++)
        if (m->names[j] && !strcmp(m->names[j], item)) return j;
    int64_t j;
    if (item[0] >= '0' && item[0] <= '9' && cli_parse_int64(item, &j) && j < m->cols) return j;
    return -1;
}

/* The columns of DATA that --target names (cols, *T of them), or *T = 0 when it names none. */
static int target_columns(reg_fit *job, const char *target, int64_t *cols, int64_t *T)
{
    *T = 0;
    char buf[256];
    const char *p = target;
    int64_t n = 0;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len >= sizeof buf || n >= job->data.cols) return 0;
        memcpy(buf, p, len);
        buf[len] = '\0';
        int64_t j = find_column(&job->data, buf);
        if (j < 0) return 0;
        for (int64_t k = 0; k < n; k++)
            if (cols[k] == j)
                return cli_data_error("--target: column %lld (%s) is named twice in '%s'", (long long)j,
                                      cli_column_name(&job->data, j, buf, sizeof buf), target);
        cols[n++] = j;
        if (!end) break;
        p = end + 1;
    }
    *T = n;
    return 0;
}

/* Splits DATA and the targets into X and Y. Returns an exit code. */
static int resolve_target(reg_fit *job, const reg_args *r)
{
    const gram__matrix *m = &job->data;
    int64_t C = m->cols, N = m->rows, T = 0;
    int64_t *cols = malloc((size_t)C * sizeof(int64_t));
    unsigned char *is_target = calloc((size_t)C, 1);
    int rc = !cols || !is_target ? cli_data_error("out of memory") : 0;
    if (!rc) rc = target_columns(job, r->target, cols, &T);
    char nb[64];
    if (!rc && T > 0) {
        if (T == C) {
            rc = cli_data_error("--target: %s has no columns left for the inputs (it has %lld)",
                                cli_display_name(r->f.data_path), (long long)C);
        } else {
            for (int64_t k = 0; k < T; k++) is_target[cols[k]] = 1;
            job->D = C - T;
            job->T = T;
            snprintf(job->ylabel, sizeof job->ylabel, "%s", cli_column_name(m, cols[0], nb, sizeof nb));
        }
    } else if (!rc) {
        /* Not columns: a file of targets. */
        if (strcmp(r->target, "-") && access(r->target, F_OK) != 0) {
            rc = cli_data_error("--target: '%s' is neither a column of %s (names or indices 0..%lld) "
                                "nor a file", r->target, cli_display_name(r->f.data_path),
                                (long long)C - 1);
        } else {
            rc = cli_read_matrix(job->ctx, r->target, &job->tfile);
            if (!rc && (job->tfile.rows != N || job->tfile.cols == 0))
                rc = cli_data_error("%s: expected %lld rows of targets (one per row of %s), got a "
                                    "%lld×%lld array", cli_msg_name(r->target), (long long)N,
                                    cli_display_name(r->f.data_path), (long long)job->tfile.rows,
                                    (long long)job->tfile.cols);
            if (!rc) {
                job->D = C;
                job->T = job->tfile.cols;
                snprintf(job->ylabel, sizeof job->ylabel, "%s",
                         job->tfile.names && job->tfile.names[0] && job->tfile.names[0][0]
                             ? job->tfile.names[0] : "y");
            }
        }
    }
    if (!rc) {
        job->N = N;
        job->X = malloc((size_t)(N * job->D) * sizeof(double));
        job->Y = malloc((size_t)(N * job->T) * sizeof(double));
        if (!job->X || !job->Y) rc = cli_data_error("out of memory");
    }
    if (!rc) {
        for (int64_t i = 0; i < N; i++) {
            const double *row = m->data + i * C;
            double *x = job->X + i * job->D;
            for (int64_t j = 0; j < C; j++)
                if (!is_target[j]) *x++ = row[j];
            for (int64_t k = 0; k < job->T; k++)
                job->Y[i * job->T + k] = job->tfile.data ? job->tfile.data[i * job->T + k] : row[cols[k]];
        }
        int64_t j0 = 0;
        while (is_target[j0]) j0++;
        snprintf(job->xlabel, sizeof job->xlabel, "%s", cli_column_name(m, j0, nb, sizeof nb));
    }
    free(cols);
    free(is_target);
    return rc;
}

/* Reads N values (one per data point) from path into job->extra; checks each with ok(). */
static int read_per_point(reg_fit *job, const char *path, const char *what, int positive)
{
    int rc = cli_read_matrix(job->ctx, path, &job->extra);
    if (rc) return rc;
    const gram__matrix *w = &job->extra;
    int64_t n = w->rows * w->cols;
    if (n != job->N || (w->rows != 1 && w->cols != 1))
        return cli_data_error("%s: expected %lld %s (one per data point), got a %lld×%lld array",
                              cli_msg_name(path), (long long)job->N, what, (long long)w->rows,
                              (long long)w->cols);
    for (int64_t i = 0; i < n; i++) {
        double v = w->data[i];
        if (positive ? v > 0 : v >= 0) continue;
        return cli_data_error("%s: value %lld is %g; %s must be %s", cli_msg_name(path), (long long)i + 1, v,
                              what, positive ? "> 0" : ">= 0");
    }
    return 0;
}

/* Everything before the fit: the context, the kernel, DATA, the targets, the per-point file.
 * Returns an exit code. */
static int fit_load(reg_fit *job, const reg_args *r)
{
    int rc = cli_context_create(r->cmd, r->f.threads, &job->ctx);
    if (rc) return rc;
    job->kernel = r->kernel;
    rc = cli_read_matrix(job->ctx, r->f.data_path, &job->data);
    if (rc) return rc;
    if (job->data.rows == 0 || job->data.cols == 0)
        return cli_data_error("%s: no data", cli_msg_name(r->f.data_path));
    rc = resolve_target(job, r);
    if (rc) return rc;
    int64_t kd = gram_kernel_dim(job->kernel);
    if (kd && kd != job->D)
        return cli_data_error("--kernel: the kernel's ARD lengthscales give D = %lld, but the inputs "
                              "have %lld column%s", (long long)kd, (long long)job->D, job->D == 1 ? "" : "s");
    if (r->plot_path && job->D != 1)
        return cli_usage_error(r->cmd, "--plot needs 1-D inputs, but %s has %lld input columns",
                               cli_display_name(r->f.data_path), (long long)job->D);
    if (r->f.weights_path) return read_per_point(job, r->f.weights_path, "sample weights", 1);
    if (r->alpha_path) return read_per_point(job, r->alpha_path, "alpha values", 0);
    return 0;
}

static void fit_free(reg_fit *job)
{
    gram__matrix_free(&job->data);
    gram__matrix_free(&job->tfile);
    gram__matrix_free(&job->extra);
    free(job->X);
    free(job->Y);
    gram_context_destroy(job->ctx);
}

/* ---- plots ----------------------------------------------------------------------------------- */

enum { PLOT_POINTS = 400 };

/* The GP's posterior of target t at the n sorted 1-D points xs: the band mean ± 2 std, the mean,
 * the paths (n × S, or none) and the training data from the model. Returns an exit code. */
static int gp_plot(gram_context *ctx, const gram_gp *gp, int64_t t, const double *xs, int64_t n,
                   const double *paths, int64_t S, svg_plotxy *p, svg_text *svg)
{
    int64_t N = gram_gp_n(gp), T = gram_gp_n_targets(gp);
    double *mean = malloc((size_t)(n * T) * sizeof(double)), *sd = malloc((size_t)(n * T) * sizeof(double));
    double *band = malloc((size_t)(3 * n) * sizeof(double)), *Xt = malloc((size_t)N * sizeof(double));
    double *Yt = malloc((size_t)(N * T) * sizeof(double)), *pts = malloc((size_t)(2 * N) * sizeof(double));
    int rc = !mean || !sd || !band || !Xt || !Yt || !pts ? cli_data_error("out of memory") : 0;
    if (!rc) {
        gram_array Q = gram_array_f64(xs, n, 1), Ma = gram_array_f64(mean, n, T), Sa = gram_array_f64(sd, n, T);
        gram_array Xa = gram_array_f64(Xt, N, 1), Ya = gram_array_f64(Yt, N, T);
        double mu, scale;
        gram_status s = gram_gp_predict(ctx, gp, &Q, &Ma, &Sa, 0, NULL);
        if (!s) s = gram_gp_get_x(gp, &Xa);
        if (!s) s = gram_gp_get_y(gp, &Ya);
        if (!s) s = gram_gp_target_scaling(gp, t, &mu, &scale);
        cli_progress_done();
        if (s) rc = cli_lib_error(ctx, s, NULL);
        for (int64_t i = 0; !rc && i < n; i++) {
            double m = mean[i * T + t], d = sd[i * T + t];
            band[i] = m - 2 * d;
            band[n + i] = m + 2 * d;
            band[2 * n + i] = m;
        }
        for (int64_t i = 0; !rc && i < N; i++) {
            pts[2 * i] = Xt[i];
            pts[2 * i + 1] = Yt[i * T + t] * scale + mu;
        }
    }
    if (!rc) {
        p->x = xs;
        p->n = n;
        p->band_lo = band;
        p->band_hi = band + n;
        p->band_label = "mean \xc2\xb1 2 std";
        p->curve = band + 2 * n;
        p->curve_label = "posterior mean";
        p->paths = paths;
        p->n_paths = S;
        p->paths_label = "posterior samples";
        p->points = pts;
        p->n_points = N;
        p->point_stride = 2;
        p->points_label = "training data";
        if (svg_plot_xy(svg, p)) rc = cli_data_error("out of memory");
    }
    free(mean);
    free(sd);
    free(band);
    free(Xt);
    free(Yt);
    free(pts);
    return rc;
}

/* Kernel ridge predictions of target t at the n sorted 1-D points xs, with the training data as
 * points (x, y: N pairs, stride 2) or, when the targets are unknown (a loaded model), as a rug.
 * Returns an exit code. */
static int krr_plot(gram_context *ctx, const gram_krr *krr, int64_t t, const double *xs, int64_t n,
                    const double *points, svg_plotxy *p, svg_text *svg)
{
    int64_t N = gram_krr_n(krr), T = gram_krr_n_targets(krr);
    double *pred = malloc((size_t)(n * T) * sizeof(double)), *curve = malloc((size_t)n * sizeof(double));
    double *Xt = points ? NULL : malloc((size_t)N * sizeof(double));
    int rc = !pred || !curve || (!points && !Xt) ? cli_data_error("out of memory") : 0;
    if (!rc) {
        gram_array Q = gram_array_f64(xs, n, 1), Pa = gram_array_f64(pred, n, T), Xa = gram_array_f64(Xt, N, 1);
        gram_status s = gram_krr_predict(ctx, krr, &Q, &Pa);
        if (!s && !points) s = gram_krr_get_x(krr, &Xa);
        cli_progress_done();
        if (s) rc = cli_lib_error(ctx, s, NULL);
        for (int64_t i = 0; !rc && i < n; i++) curve[i] = pred[i * T + t];
    }
    if (!rc) {
        p->x = xs;
        p->n = n;
        p->curve = curve;
        p->curve_label = "prediction";
        p->points = points;
        p->n_points = points ? N : 0;
        p->point_stride = 2;
        p->points_label = "training data";
        p->rug = Xt;
        p->n_rug = Xt ? N : 0;
        p->rug_stride = 1;
        p->rug_label = "training inputs";
        if (svg_plot_xy(svg, p)) rc = cli_data_error("out of memory");
    }
    free(pred);
    free(curve);
    free(Xt);
    return rc;
}

/* The subtitle's "N = 40, T = 3 (target 0 shown), " part. */
static void plot_counts(char *buf, size_t size, const char *what, int64_t n, int64_t T, int64_t t)
{
    if (T > 1) snprintf(buf, size, "%s = %lld, target %lld of %lld", what, (long long)n, (long long)t, (long long)T);
    else snprintf(buf, size, "%s = %lld", what, (long long)n);
}

/* ---- fit commands ---------------------------------------------------------------------------- */

static int fit_cmd(reg_args *r)
{
    reg_fit job;
    memset(&job, 0, sizeof job);
    gram_gp *gp = NULL;
    gram_krr *krr = NULL;
    svg_text svg = {0};
    double *xs = NULL, *pts = NULL;
    char *spec = NULL;
    void *model = NULL;
    size_t model_size = 0;
    int is_gp = r->which == GP_FIT;

    int rc = fit_load(&job, r);
    if (rc) goto done;
    int64_t N = job.N, D = job.D, T = job.T;
    if (!is_gp && r->n_alpha > 1 && r->n_alpha != T) {
        rc = cli_usage_error(r->cmd, "--alpha: expected one value or one per target (T = %lld), got %lld",
                             (long long)T, (long long)r->n_alpha);
        goto done;
    }
    gram_array X = gram_array_f64(job.X, N, D), Y = gram_array_f64(job.Y, N, T);
    job.t_start = cli_progress_start();
    gram_status s;
    if (cli_interrupted()) {
        s = GRAM_ECANCELLED;
    } else if (is_gp) {
        gram_gp_options o;
        gram_gp_options_init(&o);
        if (job.extra.data) {
            o.alpha = job.extra.data;
            o.n_alpha = N;
        } else if (r->alpha) {
            o.alpha = r->alpha;
            o.n_alpha = 1;
        }
        o.normalize_y = r->normalize_y;
        o.optimize = r->optimize;
        o.n_restarts = (int)r->restarts;
        o.seed = r->seed;
        if (r->max_iter) o.max_iter = (int)r->max_iter;
        o.jitter_tries = (int)r->jitter_tries;
        s = gram_gp_fit(job.ctx, job.kernel, &o, &X, &Y, &gp);
    } else {
        static const double ONE = 1.0;
        gram_array W = gram_array_f64(job.extra.data, N, 1);
        s = gram_krr_fit(job.ctx, job.kernel, &X, &Y, job.extra.data ? &W : NULL,
                         r->alpha ? r->n_alpha : 1, r->alpha ? r->alpha : &ONE, &krr);
    }
    cli_progress_done();
    double seconds = cli_now() - job.t_start;
    if (s) {
        rc = fit_error(job.ctx, s, cli_msg_name(r->f.data_path),
                       is_gp ? "add noise to the diagonal (--alpha, or white(...) in the kernel), or "
                               "retry with growing jitter (--jitter-tries N)"
                             : "increase --alpha");
        goto done;
    }
    spec = kernel_text(is_gp ? gram_gp_kernel(gp) : gram_krr_kernel(krr));
    if (!spec) {
        rc = cli_data_error("out of memory");
        goto done;
    }

    if (r->plot_path) {
        char title[512], counts[96], sub[512], ktext[120];
        short_spec(spec, ktext, sizeof ktext);
        xs = malloc(PLOT_POINTS * sizeof(double));
        pts = malloc((size_t)(2 * N) * sizeof(double));
        if (!xs || !pts) {
            rc = cli_data_error("out of memory");
            goto done;
        }
        data_span(job.X, N, PLOT_POINTS, xs);
        for (int64_t i = 0; i < N; i++) {
            pts[2 * i] = job.X[i];
            pts[2 * i + 1] = job.Y[i * T];
        }
        plot_counts(counts, sizeof counts, "N", N, T, 0);
        snprintf(title, sizeof title, "%s of %s", is_gp ? "Gaussian process" : "Kernel ridge regression",
                 cli_display_name(r->f.data_path));
        if (is_gp)
            snprintf(sub, sizeof sub, "%s, log marginal likelihood %.6g, %s", counts,
                     gram_gp_log_marginal_likelihood_value(gp), ktext);
        else
            snprintf(sub, sizeof sub, "%s, alpha = %g, %s", counts, r->alpha ? r->alpha[0] : 1.0, ktext);
        svg_plotxy p = {.title = title, .subtitle = sub, .xlabel = job.xlabel, .ylabel = job.ylabel};
        rc = is_gp ? gp_plot(job.ctx, gp, 0, xs, PLOT_POINTS, NULL, 0, &p, &svg)
                   : krr_plot(job.ctx, krr, 0, xs, PLOT_POINTS, pts, &p, &svg);
        if (rc) goto done;
    }

    /* Nothing is written before everything has been computed, and then all or nothing. */
    s = is_gp ? gram_gp_to_bytes(job.ctx, gp, &model, &model_size) : gram_krr_to_bytes(job.ctx, krr, &model, &model_size);
    if (s) {
        rc = cli_lib_error(job.ctx, s, cli_msg_name(r->out_path));
        goto done;
    }
    cli_outputs outs = {.n = 0};
    if ((rc = cli_stage_text(job.ctx, &outs, r->out_path, model, model_size)) ||
        (r->plot_path && (rc = cli_stage_text(job.ctx, &outs, r->plot_path, svg.s, svg.len))) ||
        (rc = cli_commit(job.ctx, &outs)))
        goto done;

    if (!r->f.quiet) {
        char when[32];
        cli_format_seconds(seconds, when, sizeof when);
        fprintf(stderr, "%s: N=%lld D=%lld T=%lld ", r->cmd, (long long)N, (long long)D, (long long)T);
        if (is_gp) {
            fprintf(stderr, "log_marginal_likelihood=%.12g iterations=%lld", gram_gp_log_marginal_likelihood_value(gp),
                    (long long)gram_gp_n_iterations(gp));
            if (r->optimize)
                fprintf(stderr, " (%lld start%s, %lld evaluations)", (long long)r->restarts + 1,
                        r->restarts ? "s" : "", (long long)gram_gp_n_evaluations(gp));
        } else {
            fprintf(stderr, "alpha=");
            for (int64_t k = 0; k < (r->alpha ? r->n_alpha : 1); k++)
                fprintf(stderr, "%s%g", k ? "," : "", r->alpha ? r->alpha[k] : 1.0);
        }
        fprintf(stderr, " in %s\n%s: kernel: %s\n", when, r->cmd, spec);
        if (is_gp && gram_gp_jitter(gp) > 0)
            fprintf(stderr, "%s: jitter %g added to the diagonal\n", r->cmd, gram_gp_jitter(gp));
    }
    if (is_gp) warn_unconverged(r->cmd, gp);

done:
    svg_text_free(&svg);
    gram_free(model);
    free(spec);
    free(xs);
    free(pts);
    gram_gp_destroy(gp);
    gram_krr_destroy(krr);
    fit_free(&job);
    return rc;
}

/* ---- predict and sample ---------------------------------------------------------------------- */

/* Loads MODEL as a GP (want_gp) or a kernel ridge model; a model of the other kind gets a message
 * naming the command that reads it. Returns an exit code. */
static int load_model(gram_context *ctx, const char *path, int want_gp, gram_gp **gp, gram_krr **krr)
{
    gram_status s = want_gp ? gram_gp_load(ctx, path, gp) : gram_krr_load(ctx, path, krr);
    if (!s) return 0;
    /* Which kind it is instead: a second read, so only of a regular file (a FIFO or a device
     * would block or give other bytes). */
    struct stat sb;
    if (s == GRAM_EFORMAT && strcmp(path, "-") && stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
        gram_gp *g = NULL;
        gram_krr *k = NULL;
        gram_status other = want_gp ? gram_krr_load(NULL, path, &k) : gram_gp_load(NULL, path, &g);
        gram_gp_destroy(g);
        gram_krr_destroy(k);
        if (!other)
            return cli_data_error("%s: a %s model, not a %s one: use 'gram %s predict'", path,
                                  want_gp ? "kernel ridge (krr)" : "Gaussian process (gp)",
                                  want_gp ? "Gaussian process" : "kernel ridge", want_gp ? "krr" : "gp");
    }
    return cli_lib_error(ctx, s, cli_msg_name(path));
}

static int predict_cmd(reg_args *r)
{
    int is_gp = r->which != KRR_PREDICT;
    gram_context *ctx = NULL;
    gram_gp *gp = NULL;
    gram_krr *krr = NULL;
    gram__matrix q = {0};
    double *out = NULL, *xs = NULL, *paths = NULL;
    int64_t *perm = NULL;
    const char **names = NULL;
    int64_t n_names = 0;
    svg_text svg = {0};
    char nb[64];

    int rc = cli_context_create(r->cmd, r->f.threads, &ctx);
    if (!rc) rc = load_model(ctx, r->f.data_path, is_gp, &gp, &krr);
    if (rc) goto done;
    int64_t N = is_gp ? gram_gp_n(gp) : gram_krr_n(krr), D = is_gp ? gram_gp_dim(gp) : gram_krr_dim(krr);
    int64_t T = is_gp ? gram_gp_n_targets(gp) : gram_krr_n_targets(krr);
    if (r->plot_path && D != 1) {
        rc = cli_usage_error(r->cmd, "--plot needs 1-D inputs, but the model has D = %lld", (long long)D);
        goto done;
    }
    if (r->which == GP_SAMPLE && r->target_index >= T) {
        rc = cli_data_error("--target: the model has %lld target%s (0..%lld), got %lld", (long long)T,
                            T == 1 ? "" : "s", (long long)T - 1, (long long)r->target_index);
        goto done;
    }
    rc = cli_read_matrix(ctx, r->query_path, &q);
    if (rc) goto done;
    int64_t M = q.rows;
    if (q.cols != D && M > 0) {
        rc = cli_data_error("%s: the query points have %lld column%s, the model's inputs %lld",
                            cli_msg_name(r->query_path), (long long)q.cols, q.cols == 1 ? "" : "s", (long long)D);
        goto done;
    }
    if (r->plot_path && M == 0) {
        rc = cli_data_error("--plot: %s has no query points", cli_msg_name(r->query_path));
        goto done;
    }

    /* The output: predict's M × T (mean, prediction) [+ M × T std]; sample's M × S. */
    int64_t cols = r->which == GP_SAMPLE ? r->count : r->want_std ? 2 * T : T;
    if (cols > INT64_MAX / 8 / (M > 0 ? M : 1) / 2 ||
        !(out = malloc((size_t)(M > 0 ? M * cols : 1) * sizeof(double)))) {
        rc = cli_data_error("out of memory (%lld × %lld outputs)", (long long)M, (long long)cols);
        goto done;
    }
    gram_array Q = gram_array_f64(q.data, M, D);
    double t_start = cli_progress_start();
    gram_status s = GRAM_OK;
    if (cli_interrupted()) {
        s = GRAM_ECANCELLED;
    } else if (r->which == GP_SAMPLE) {
        gram_array O = gram_array_f64(out, M, cols);
        s = gram_gp_sample(ctx, gp, &Q, r->target_index, r->seed, &O);
    } else if (is_gp) {
        /* mean and std side by side: row strides of 2T (--std) or T */
        gram_array Ma = {out, GRAM_FLOAT64, M, T, cols, 1}, Sa = {out + T, GRAM_FLOAT64, M, T, cols, 1};
        s = gram_gp_predict(ctx, gp, &Q, &Ma, r->want_std ? &Sa : NULL, 0, NULL);
    } else {
        gram_array O = gram_array_f64(out, M, T);
        s = gram_krr_predict(ctx, krr, &Q, &O);
    }
    cli_progress_done();
    double seconds = cli_now() - t_start;
    if (s) {
        rc = cli_lib_error(ctx, s, NULL);
        goto done;
    }

    n_names = cols;
    names = calloc((size_t)cols + 1, sizeof *names);
    int ok = names != NULL;
    if (ok && r->which == GP_SAMPLE) ok = numbered_names("sample", cols, 0, names) != NULL;
    else if (ok) {
        ok = numbered_names(is_gp ? "mean" : "prediction", T, 0, names) != NULL;
        if (ok && r->want_std) ok = numbered_names("std", T, T, names) != NULL;
    }
    if (!ok) {
        rc = cli_data_error("out of memory");
        goto done;
    }

    if (r->plot_path) {
        int64_t S = r->which == GP_SAMPLE ? cols : 0, t = r->target_index;
        char title[512], counts[96], sub[512];
        xs = malloc((size_t)M * sizeof(double));
        perm = malloc((size_t)M * sizeof(int64_t));
        paths = malloc((size_t)(M * (S > 0 ? S : 1)) * sizeof(double));
        if (!xs || !perm || !paths || sort_order(q.data, M, 1, perm, xs)) {
            rc = cli_data_error("out of memory");
            goto done;
        }
        for (int64_t i = 0; i < M; i++)
            for (int64_t k = 0; k < S; k++) paths[i * S + k] = out[perm[i] * S + k];
        const char *model = cli_display_name(r->f.data_path);
        if (r->which == GP_SAMPLE)
            snprintf(title, sizeof title, "Posterior samples of %s (seed %llu)", model,
                     (unsigned long long)r->seed);
        else
            snprintf(title, sizeof title, "%s of %s", is_gp ? "Posterior" : "Predictions", model);
        plot_counts(counts, sizeof counts, "N", N, T, t);
        snprintf(sub, sizeof sub, "%s, M = %lld queries", counts, (long long)M);
        svg_plotxy p = {.title = title, .subtitle = sub,
                        .xlabel = cli_column_name(&q, 0, nb, sizeof nb), .ylabel = "y"};
        rc = is_gp ? gp_plot(ctx, gp, t, xs, M, S ? paths : NULL, S, &p, &svg)
                   : krr_plot(ctx, krr, t, xs, M, NULL, &p, &svg);
        if (rc) goto done;
    }

    cli_outputs outs = {.n = 0};
    if ((r->out_path && (rc = cli_stage_matrix(ctx, &outs, r->out_path, out, M, cols, names))) ||
        (r->plot_path && (rc = cli_stage_text(ctx, &outs, r->plot_path, svg.s, svg.len))) ||
        (rc = cli_commit(ctx, &outs)))
        goto done;

    if (!r->f.quiet) {
        char when[32];
        cli_format_seconds(seconds, when, sizeof when);
        fprintf(stderr, "%s: M=%lld N=%lld D=%lld T=%lld", r->cmd, (long long)M, (long long)N,
                (long long)D, (long long)T);
        if (r->which == GP_SAMPLE)
            fprintf(stderr, " %lld paths of target %lld (seed %llu)", (long long)cols,
                    (long long)r->target_index, (unsigned long long)r->seed);
        fprintf(stderr, "%s in %s\n", r->want_std ? " with std" : "", when);
    }

done:
    svg_text_free(&svg);
    free_names(names, n_names);
    free(out);
    free(xs);
    free(perm);
    free(paths);
    gram__matrix_free(&q);
    gram_gp_destroy(gp);
    gram_krr_destroy(krr);
    gram_context_destroy(ctx);
    return rc;
}

/* ---- dispatch -------------------------------------------------------------------------------- */

static int run(reg_cmd which, const char *cmd, int argc, char **argv, const cli_option *opts, const char *help,
               int parse_only)
{
    reg_args r;
    memset(&r, 0, sizeof r);
    cli_fit_args_init(&r.f);
    r.which = which;
    r.cmd = cmd;
    int rc = reg_parse(&r, argc, argv, opts, help);
    if (rc == CLI_OPT_CONTINUE) rc = parse_only ? 0 : which == GP_FIT || which == KRR_FIT ? fit_cmd(&r) : predict_cmd(&r);
    reg_args_free(&r);
    return rc;
}

int cli_gp(int argc, char **argv, int parse_only)
{
    static const cli_option fit_opts[] = {
        REG_FIT_OPTIONS,
        {"normalize-y", 0, 0, OPT_NORMALIZE_Y},
        {"optimize", 0, 0, OPT_OPTIMIZE},
        {"restarts", 0, 1, OPT_RESTARTS},
        {"seed", 0, 1, OPT_SEED},
        {"max-iter", 0, 1, OPT_MAX_ITER},
        {"jitter-tries", 0, 1, OPT_JITTER_TRIES},
        {0, 0, 0, 0},
    };
    static const cli_option predict_opts[] = {
        REG_COMMON_OPTIONS,
        {"std", 0, 0, OPT_STD},
        {0, 0, 0, 0},
    };
    static const cli_option sample_opts[] = {
        REG_COMMON_OPTIONS,
        {"count", 'n', 1, OPT_COUNT},
        {"seed", 0, 1, OPT_SEED},
        {"target", 0, 1, OPT_TARGET},
        {0, 0, 0, 0},
    };
    const char *sub = argc > 1 ? argv[1] : "";
    if (!strcmp(sub, "fit")) return run(GP_FIT, "gram gp fit", argc - 1, argv + 1, fit_opts, GP_FIT_HELP, parse_only);
    if (!strcmp(sub, "predict"))
        return run(GP_PREDICT, "gram gp predict", argc - 1, argv + 1, predict_opts, GP_PREDICT_HELP, parse_only);
    if (!strcmp(sub, "sample"))
        return run(GP_SAMPLE, "gram gp sample", argc - 1, argv + 1, sample_opts, GP_SAMPLE_HELP, parse_only);
    return cli_no_subcommand("gram gp", argc, argv, GP_HELP, "fit, predict or sample");
}

int cli_krr(int argc, char **argv, int parse_only)
{
    static const cli_option fit_opts[] = {
        REG_FIT_OPTIONS,
        {"weights", 0, 1, OPT_WEIGHTS},
        {0, 0, 0, 0},
    };
    static const cli_option predict_opts[] = {
        REG_COMMON_OPTIONS,
        {0, 0, 0, 0},
    };
    const char *sub = argc > 1 ? argv[1] : "";
    if (!strcmp(sub, "fit")) return run(KRR_FIT, "gram krr fit", argc - 1, argv + 1, fit_opts, KRR_FIT_HELP, parse_only);
    if (!strcmp(sub, "predict"))
        return run(KRR_PREDICT, "gram krr predict", argc - 1, argv + 1, predict_opts, KRR_PREDICT_HELP, parse_only);
    return cli_no_subcommand("gram krr", argc, argv, KRR_HELP, "fit or predict");
}
