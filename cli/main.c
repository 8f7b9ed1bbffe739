/* gram — the command-line front end: dispatch, option parsing, inputs, messages, exit codes,
 * progress and interruption shared by the commands. */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char MAIN_HELP[] =
    "Usage: gram COMMAND [OPTIONS] DATA\n"
    "       gram --help | --version\n"
    "\n"
    "Fast exact kernel sums from the command line.\n"
    "\n"
    "Commands:\n"
    "  kde       kernel density estimate at the data, at query points or on a grid\n"
    "  sample    draw samples from a kernel density estimate\n"
    "  gp        Gaussian-process regression: fit, predict, sample\n"
    "  krr       kernel ridge regression: fit, predict\n"
    "  features  explicit feature maps (random features, Nystrom): fit,\n"
    "            transform, info\n"
    "  private   differentially private similarity sketches: fit, query, info\n"
    "\n"
    "Options:\n"
    "  -h, --help     show this help and exit\n"
    "      --version  show the version and exit\n"
    "\n"
    "Run 'gram COMMAND --help' for a command's options.\n"
    "\n"
    "DATA is a .npy file (1-D or 2-D; bool, integers, float16, float32, float64 or\n"
    "longdouble) or a CSV file (header row and delimiter detected; numbers in C\n"
    "notation); '-' reads standard input. Results go to standard output as CSV\n"
    "unless -o names a file: FILE.npy, FILE.csv, or a name without a suffix (CSV).\n"
    "A regular file is replaced only when the run succeeds (written to a temporary\n"
    "name beside it, then renamed; a symbolic link is followed to its target); a\n"
    "device, FIFO or /dev/stdout is written through. Messages go to standard error.\n"
    "\n"
    "Exit status: 0 success, 1 data or runtime error, 2 usage error (a bad option\n"
    "value or combination; those that need no data are found before any input is\n"
    "read), 130 interrupted (Ctrl-C, also while an input is still being read).\n"
    "\n"
    "Environment:\n"
    "  GRAM_MAX_INPUT  the most bytes one input may take, as read and as float64\n"
    "                  values (default: a quarter of the physical memory)\n";

#define COMMAND_LIST "kde, sample, gp, krr, features or private"

/* ---- messages -------------------------------------------------------------------------------- */

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help' for more information.\n", cmd);
    return CLI_EXIT_USAGE;
}

int cli_data_error(const char *fmt, ...)
{
    va_list ap;
    cli_progress_done();
    fputs("gram: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CLI_EXIT_DATA;
}

int cli_lib_error(gram_context *ctx, gram_status s, const char *what)
{
    if (s == GRAM_ECANCELLED || cli_interrupted()) {
        cli_progress_done();
        fputs("gram: interrupted\n", stderr);
        return CLI_EXIT_INTERRUPTED;
    }
    const char *msg = ctx ? gram_context_message(ctx) : "";
    if (!msg || !*msg) msg = gram_strerror(s);
    /* Messages from the io layer already start with the file's name. */
    size_t wl = what ? strlen(what) : 0;
    if (what && (strncmp(msg, what, wl) != 0 || msg[wl] != ':'))
        return cli_data_error("%s: %s", what, msg);
    return cli_data_error("%s", msg);
}

/* ---- numbers --------------------------------------------------------------------------------- */

int cli_parse_double(const char *s, double *out)
{
    /* The program never calls setlocale, so strtod reads C notation ('.' decimal point). */
    if (!s || !*s || isspace((unsigned char)*s)) return 0;
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end != '\0') return 0;
    *out = v;
    return 1;
}

int cli_parse_int64(const char *s, int64_t *out)
{
    if (!s || !*s || !(*s == '-' || *s == '+' || (*s >= '0' && *s <= '9'))) return 0;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE) return 0;
    *out = (int64_t)v;
    return 1;
}

int cli_parse_uint64(const char *s, uint64_t *out)
{
    if (!s || !*s || *s < '0' || *s > '9') return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE) return 0;
    *out = (uint64_t)v;
    return 1;
}

/* ---- option parsing -------------------------------------------------------------------------- */

void cli_args_init(cli_args *a, const char *cmd, int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    a->cmd = cmd;
    a->argc = argc;
    a->argv = argv;
    a->next = 1; /* argv[0] is the command's name */
}

int cli_args_next(cli_args *a, const cli_option *opts, const char **value)
{
    *value = NULL;
    if (a->next >= a->argc) return CLI_ARG_END;
    const char *arg = a->argv[a->next++];
    if (a->options_done || arg[0] != '-' || arg[1] == '\0') {
        *value = arg;
        return CLI_ARG_POSITIONAL;
    }
    if (arg[1] == '-') {
        if (arg[2] == '\0') { /* "--": everything after is positional */
            a->options_done = 1;
            return cli_args_next(a, opts, value);
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        snprintf(a->opt_name, sizeof a->opt_name, "--%.*s", (int)(len < 60 ? len : 60), name);
        for (const cli_option *o = opts; o->name; o++) {
            if (strlen(o->name) != len || strncmp(o->name, name, len) != 0) continue;
            if (!o->has_value) {
                if (eq) {
                    cli_usage_error(a->cmd, "option '%s' doesn't take a value", a->opt_name);
                    return CLI_ARG_ERROR;
                }
                return o->id;
            }
            if (eq) {
                *value = eq + 1;
            } else if (a->next < a->argc) {
                *value = a->argv[a->next++];
            } else {
                cli_usage_error(a->cmd, "option '%s' requires a value", a->opt_name);
                return CLI_ARG_ERROR;
            }
            return o->id;
        }
        cli_usage_error(a->cmd, "unrecognized option '%s'", arg);
        return CLI_ARG_ERROR;
    }
    /* A short option: -o FILE, -oFILE, -q. Clusters of flags (-qx) are not needed. */
    snprintf(a->opt_name, sizeof a->opt_name, "-%c", arg[1]);
    for (const cli_option *o = opts; o->name; o++) {
        if (!o->short_name || o->short_name != arg[1]) continue;
        if (!o->has_value) {
            if (arg[2] != '\0') {
                cli_usage_error(a->cmd, "invalid option '%s'", arg);
                return CLI_ARG_ERROR;
            }
            return o->id;
        }
        if (arg[2] != '\0') {
            *value = arg + 2;
        } else if (a->next < a->argc) {
            *value = a->argv[a->next++];
        } else {
            cli_usage_error(a->cmd, "option '%s' requires a value", a->opt_name);
            return CLI_ARG_ERROR;
        }
        return o->id;
    }
    cli_usage_error(a->cmd, "invalid option '%s'", arg);
    return CLI_ARG_ERROR;
}

/* ---- fitting options ------------------------------------------------------------------------- */

static const struct {
    const char *name;
    gram_family family;
} KERNELS[] = {
    /* scikit-learn's KernelDensity names */
    {"gaussian", GRAM_GAUSSIAN},
    {"tophat", GRAM_TOPHAT},
    {"epanechnikov", GRAM_EPANECHNIKOV},
    {"exponential", GRAM_EXPONENTIAL},
    {"linear", GRAM_TRIANGULAR},
    {"cosine", GRAM_COSINE_WINDOW},
    /* gram's */
    {"triangular", GRAM_TRIANGULAR},
    {"cosine_window", GRAM_COSINE_WINDOW},
    {"laplacian", GRAM_LAPLACIAN},
    {"matern12", GRAM_MATERN12},
    {"matern32", GRAM_MATERN32},
    {"matern52", GRAM_MATERN52},
    {"cauchy", GRAM_CAUCHY},
};
#define KERNEL_LIST                                                                                \
    "gaussian, tophat, epanechnikov, exponential, linear, cosine, triangular, cosine_window, "     \
    "laplacian, matern12, matern32, matern52, cauchy"

static const struct {
    const char *name;
    gram_bandwidth_rule rule;
} RULES[] = {
    {"scott", GRAM_BW_SCOTT}, {"silverman", GRAM_BW_SILVERMAN}, {"isj", GRAM_BW_ISJ},
    {"cv-ml", GRAM_BW_CV_ML}, {"cv-ls", GRAM_BW_CV_LS},
};

void cli_fit_args_init(cli_fit_args *f)
{
    memset(f, 0, sizeof *f);
    f->kernel_name = "gaussian";
    f->kernel = GRAM_GAUSSIAN;
    f->bandwidth_text = "scott";
    f->rule = GRAM_BW_SCOTT;
    f->geometry = GRAM_KDE_ISOTROPIC;
    f->threads = -1;
    f->precision = GRAM_FLOAT64;
}

void cli_fit_args_free(cli_fit_args *f)
{
    free(f->bandwidth);
    free(f->bounds_lo);
    free(f->bounds_hi);
    f->bandwidth = f->bounds_lo = f->bounds_hi = NULL;
    f->n_bandwidth = f->n_bounds = 0;
}

/* Comma-separated items of s: their count. */
static int64_t count_items(const char *s)
{
    int64_t n = 1;
    for (; *s; s++) n += *s == ',';
    return n;
}

/* One bound: empty or ±inf means none. */
static int parse_bound(const char *s, size_t len, double none, double *out)
{
    char buf[128];
    if (len >= sizeof buf) return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (len == 0) {
        *out = none;
        return 1;
    }
    double v;
    if (!cli_parse_double(buf, &v) || isnan(v)) return 0;
    if (isinf(v) && (v > 0) != (none > 0)) return 0; /* LO = +inf or HI = -inf */
    *out = v;
    return 1;
}

/* --bounds is parsed before the data are read; cli_job_load checks the count against D. */
static int parse_bounds(cli_fit_args *f, const char *cmd, const char *text)
{
    int64_t n = count_items(text);
    free(f->bounds_lo);
    free(f->bounds_hi);
    f->bounds_lo = malloc((size_t)n * sizeof(double));
    f->bounds_hi = malloc((size_t)n * sizeof(double));
    f->n_bounds = 0;
    if (!f->bounds_lo || !f->bounds_hi) return cli_data_error("out of memory");
    const char *p = text;
    for (int64_t d = 0; d < n; d++) {
        const char *end = strchr(p, ',');
        if (!end) end = p + strlen(p);
        const char *colon = memchr(p, ':', (size_t)(end - p));
        if (!colon)
            return cli_usage_error(cmd, "--bounds: expected LO:HI for each dimension (either side "
                                        "may be empty), got '%.*s' in '%s'",
                                   (int)(end - p), p, text);
        double lo, hi;
        if (!parse_bound(p, (size_t)(colon - p), -INFINITY, &lo) ||
            !parse_bound(colon + 1, (size_t)(end - colon - 1), INFINITY, &hi))
            return cli_usage_error(cmd, "--bounds: '%.*s' is not LO:HI with numbers LO and HI",
                                   (int)(end - p), p);
        if (!(lo < hi))
            return cli_usage_error(cmd, "--bounds: '%.*s': LO must be less than HI", (int)(end - p),
                                   p);
        f->bounds_lo[d] = lo;
        f->bounds_hi[d] = hi;
        p = *end ? end + 1 : end;
    }
    f->n_bounds = n;
    return 0;
}

int cli_parse_doubles(const char *text, double **out, int64_t *n)
{
    *out = NULL;
    *n = 0;
    int64_t count = count_items(text);
    double *v = malloc((size_t)count * sizeof(double));
    if (!v) return -1;
    const char *p = text;
    for (int64_t d = 0; d < count; d++) {
        const char *end = strchr(p, ',');
        if (!end) end = p + strlen(p);
        char buf[128];
        size_t len = (size_t)(end - p);
        if (len >= sizeof buf) break;
        memcpy(buf, p, len);
        buf[len] = '\0';
        if (!cli_parse_double(buf, &v[d])) break;
        if (!*end) {
            *out = v;
            *n = count;
            return 1;
        }
        p = end + 1;
    }
    free(v);
    return 0;
}

int cli_parse_kernel_spec(const char *cmd, const char *spec, gram_kernel **out)
{
    gram_context *ctx = NULL;
    if (gram_context_create(&ctx) != GRAM_OK) return cli_data_error("out of memory");
    gram_status s = gram_kernel_parse(ctx, spec, out);
    int rc = CLI_OPT_CONTINUE;
    if (s == GRAM_ENOMEM) rc = cli_data_error("--kernel: %s", gram_context_message(ctx));
    else if (s) rc = cli_usage_error(cmd, "--kernel: %s", gram_context_message(ctx));
    gram_context_destroy(ctx);
    return rc;
}

static int parse_bandwidth(cli_fit_args *f, const char *cmd, const char *value)
{
    for (size_t i = 0; i < sizeof RULES / sizeof RULES[0]; i++) {
        if (!strcmp(value, RULES[i].name)) {
            f->rule = RULES[i].rule;
            f->n_bandwidth = 0;
            f->bandwidth_text = RULES[i].name;
            return 1;
        }
    }
    double *h;
    int64_t n;
    int ok = cli_parse_doubles(value, &h, &n);
    if (ok < 0) {
        cli_data_error("out of memory");
        return CLI_ARG_ERROR;
    }
    for (int64_t d = 0; d < n; d++) ok &= isfinite(h[d]) && h[d] > 0;
    if (!ok) {
        free(h);
        cli_usage_error(cmd, "--bandwidth: expected scott|silverman|isj|cv-ml|cv-ls or a positive "
                             "number, got '%s'", value);
        return CLI_ARG_ERROR;
    }
    free(f->bandwidth);
    f->bandwidth = h;
    f->n_bandwidth = n;
    f->rule = GRAM_BW_FIXED;
    f->bandwidth_text = value;
    return 1;
}

int cli_common_option(cli_fit_args *f, const char *cmd, int id, const char *opt_name, const char *value,
                      const char *help)
{
    if (id == CLI_ARG_ERROR) return CLI_EXIT_USAGE;
    int r = cli_fit_option(f, cmd, id, opt_name, value);
    if (r == CLI_ARG_ERROR) return CLI_EXIT_USAGE;
    if (r) return CLI_OPT_CONTINUE;
    switch (id) {
    case CLI_ARG_POSITIONAL:
        if (f->data_path) return cli_usage_error(cmd, "unexpected argument '%s' (DATA is '%s')", value, f->data_path);
        f->data_path = value;
        return CLI_OPT_CONTINUE;
    case OPT_HELP:
        fputs(help, stdout);
        return fflush(stdout) ? CLI_EXIT_DATA : CLI_EXIT_OK;
    case OPT_VERSION:
        printf("gram %s\n", gram_version());
        return fflush(stdout) ? CLI_EXIT_DATA : CLI_EXIT_OK;
    default: return CLI_OPT_OWN;
    }
}

int cli_subcommand_parse(const cli_subcommand *sc, cli_fit_args *f, const char **points, const char **out_path,
                         int argc, char **argv, const cli_option *opts, const char *help)
{
    const char *cmd = sc->cmd, *value;
    int id;
    cli_args a;
    cli_args_init(&a, cmd, argc, argv);
    while ((id = cli_args_next(&a, opts, &value)) != CLI_ARG_END) {
        if (id == CLI_ARG_POSITIONAL && sc->kind != CLI_SUB_FIT && f->data_path) {
            if (sc->kind == CLI_SUB_INFO || *points) return cli_usage_error(cmd, "unexpected argument '%s'", value);
            *points = value;
            continue;
        }
        int rc = cli_common_option(f, cmd, id, a.opt_name, value, help);
        if (rc == CLI_OPT_OWN) rc = sc->own(sc->self, id, a.opt_name, value);
        if (rc != CLI_OPT_CONTINUE) return rc;
    }
    if (!f->data_path)
        return sc->kind == CLI_SUB_FIT
                   ? cli_usage_error(cmd, "missing DATA (a .npy or CSV file, or - for standard input)")
                   : cli_usage_error(cmd, "missing %s", sc->file_arg);
    if (sc->kind != CLI_SUB_APPLY) return CLI_OPT_CONTINUE;
    if (!*points)
        return cli_usage_error(cmd, "missing %s (a .npy or CSV file of points, or - for standard input)",
                               sc->points_arg);
    if (!strcmp(f->data_path, "-") && !strcmp(*points, "-"))
        return cli_usage_error(cmd, "only one input can be '-' (standard input)");
    if (!*out_path) *out_path = "-";
    return cli_check_output_name(cmd, "-o", *out_path, 0) ? CLI_EXIT_USAGE : CLI_OPT_CONTINUE;
}

int cli_fit_option(cli_fit_args *f, const char *cmd, int id, const char *opt_name, const char *value)
{
    switch (id) {
    case OPT_KERNEL:
        for (size_t i = 0; i < sizeof KERNELS / sizeof KERNELS[0]; i++) {
            if (!strcmp(value, KERNELS[i].name)) {
                f->kernel = KERNELS[i].family;
                f->kernel_name = KERNELS[i].name;
                return 1;
            }
        }
        cli_usage_error(cmd, "%s: expected one of " KERNEL_LIST ", got '%s'", opt_name, value);
        return CLI_ARG_ERROR;
    case OPT_BANDWIDTH:
        return parse_bandwidth(f, cmd, value);
    case OPT_BANDWIDTH_MATRIX:
        if (!strcmp(value, "isotropic")) f->geometry = GRAM_KDE_ISOTROPIC;
        else if (!strcmp(value, "covariance")) f->geometry = GRAM_KDE_COVARIANCE;
        else {
            cli_usage_error(cmd, "%s: expected isotropic|covariance, got '%s'", opt_name, value);
            return CLI_ARG_ERROR;
        }
        return 1;
    case OPT_WEIGHTS:
        f->weights_path = value;
        return 1;
    case OPT_BOUNDS:
        f->bounds_text = value;
        return parse_bounds(f, cmd, value) ? CLI_ARG_ERROR : 1;
    case OPT_THREADS: {
        int64_t t;
        if (!cli_parse_int64(value, &t) || t < 0 || t > 4096) {
            cli_usage_error(cmd, "%s: expected a thread count in 0..4096 (0: all cores), got '%s'",
                            opt_name, value);
            return CLI_ARG_ERROR;
        }
        f->threads = (int)t;
        return 1;
    }
    case OPT_QUIET:
        f->quiet = 1;
        return 1;
    default:
        return 0;
    }
}

const char *cli_rule_name(const cli_fit_args *f) { return f->bandwidth_text; }

int cli_check_fit_args(const cli_fit_args *f, const char *cmd)
{
    if (f->rule == GRAM_BW_CV_LS && f->kernel != GRAM_GAUSSIAN)
        return cli_usage_error(cmd, "--bandwidth cv-ls: least-squares cross-validation is implemented for the "
                                    "gaussian kernel only (got --kernel %s); use cv-ml",
                               f->kernel_name);
    if (f->rule == GRAM_BW_ISJ && f->kernel == GRAM_CAUCHY)
        return cli_usage_error(cmd, "--bandwidth isj needs a kernel with a finite variance; cauchy has none");
    if (f->rule == GRAM_BW_CV_LS && f->bounds_text)
        return cli_usage_error(cmd, "--bandwidth cv-ls does not support --bounds (reflection)");
    if (f->geometry == GRAM_KDE_COVARIANCE) {
        if (f->rule == GRAM_BW_FIXED && f->n_bandwidth != 1)
            return cli_usage_error(cmd, "--bandwidth: --bandwidth-matrix covariance takes one factor, got %lld values",
                                   (long long)f->n_bandwidth);
        for (int64_t d = 0; d < f->n_bounds; d++)
            if (isfinite(f->bounds_lo[d]) || isfinite(f->bounds_hi[d]))
                return cli_usage_error(cmd, "--bounds: reflection needs --bandwidth-matrix isotropic");
    }
    return 0;
}

/* ---- names ----------------------------------------------------------------------------------- */

const char *cli_column_name(const gram__matrix *m, int64_t j, char *buf, size_t size)
{
    if (m->names && m->names[j] && m->names[j][0]) return m->names[j];
    snprintf(buf, size, "x%lld", (long long)j + 1);
    return buf;
}

const char *cli_display_name(const char *path)
{
    if (!strcmp(path, "-")) return "stdin";
    const char *slash = strrchr(path, '/');
    return slash && slash[1] ? slash + 1 : path;
}

const char *cli_msg_name(const char *path)
{
    return strcmp(path, "-") ? path : "<stdin>"; /* as the io layer names it */
}

void cli_format_seconds(double s, char *buf, size_t size)
{
    if (s < 1.0) snprintf(buf, size, "%.3g ms", s * 1e3);
    else snprintf(buf, size, "%.3g s", s);
}

void cli_describe_bandwidth(const gram_kde *kde, const cli_fit_args *f, char *buf, size_t size)
{
    int64_t D = gram_kde_dim(kde);
    size_t used = 0;
#define APPEND(...)                                                                                \
    do {                                                                                           \
        if (used < size) {                                                                         \
            int w_ = snprintf(buf + used, size - used, __VA_ARGS__);                               \
            if (w_ > 0) used += (size_t)w_;                                                        \
        }                                                                                          \
    } while (0)
    buf[0] = '\0';
    if (f->geometry == GRAM_KDE_COVARIANCE) {
        APPEND("factor=%.4g (covariance)", gram_kde_factor(kde));
        return;
    }
    double *h = malloc((size_t)(D > 0 ? D : 1) * sizeof(double));
    if (!h || gram_kde_bandwidth(kde, h) != GRAM_OK) {
        APPEND("h=%.4g (isotropic)", gram_kde_factor(kde));
        free(h);
        return;
    }
    int all_equal = 1;
    for (int64_t d = 1; d < D; d++) all_equal &= h[d] == h[0];
    if (D == 1 || (all_equal && D > 4)) {
        APPEND("h=%.4g (isotropic)", h[0]);
    } else {
        APPEND("h=[");
        int64_t shown = D <= 6 ? D : 4;
        for (int64_t d = 0; d < shown; d++) APPEND("%s%.4g", d ? ", " : "", h[d]);
        if (shown < D) APPEND(", ... (%lld values)", (long long)D);
        APPEND("] (isotropic)");
    }
    free(h);
#undef APPEND
}

/* ---- time, progress, SIGINT ------------------------------------------------------------------ */

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static volatile sig_atomic_t g_interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    g_interrupted = 1;
}

void cli_catch_sigint(void)
{
    /* A shell starts background jobs with SIGINT ignored so that Ctrl-C meant for the foreground
     * job spares them; catching it here would undo that, so an ignored SIGINT stays ignored (as
     * GNU's coding standards ask of every program that handles it). */
    struct sigaction old;
    if (sigaction(SIGINT, NULL, &old) == 0 && old.sa_handler == SIG_IGN) return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    /* One SIGINT asks the job to stop cleanly; a second one (default action) kills at once. No
     * SA_RESTART: a read or open blocked on a silent pipe or a FIFO without a writer must return
     * (EINTR) so the io layer can ask the progress callback and stop. */
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGINT, &sa, NULL);
}

int cli_interrupted(void) { return g_interrupted != 0; }

static struct {
    const char *label;
    int tty;
    double t_job;      /* when the job started */
    double t_call;     /* when the current library call started reporting */
    double t_printed;
    int64_t last_done, last_total;
    int shown;
} g_progress;

/* Library progress callback: cancels on SIGINT; on a terminal, after the job has run for a
 * second, shows the current call's percentage and an ETA from its rate so far. */
static int progress_cb(void *user, int64_t done, int64_t total)
{
    (void)user;
    if (g_interrupted) return 1;
    if (!g_progress.tty) return 0;
    double now = cli_now();
    if (done < g_progress.last_done || total != g_progress.last_total || g_progress.t_call == 0)
        g_progress.t_call = now;
    g_progress.last_done = done;
    g_progress.last_total = total;
    if (total <= 0 || now - g_progress.t_job < 1.0 || now - g_progress.t_printed < 0.1) return 0;
    double frac = (double)done / (double)total;
    double elapsed = now - g_progress.t_call;
    if (frac > 0 && elapsed > 0) {
        double eta = elapsed * (1.0 - frac) / frac;
        fprintf(stderr, "\r %s: %3d%% (ETA %.1f s)   ", g_progress.label, (int)(100.0 * frac), eta);
    } else {
        fprintf(stderr, "\r %s: %3d%%               ", g_progress.label, (int)(100.0 * frac));
    }
    fflush(stderr);
    g_progress.t_printed = now;
    g_progress.shown = 1;
    return 0;
}

void cli_progress_done(void)
{
    if (g_progress.shown) {
        fputs("\r                                        \r", stderr);
        fflush(stderr);
        g_progress.shown = 0;
    }
}

int cli_context_create(const char *cmd, int threads, gram_context **ctx)
{
    gram_status s = gram_context_create(ctx);
    if (s != GRAM_OK) return cli_data_error("out of memory");
    if (threads >= 0 && (s = gram_context_set_threads(*ctx, threads)) != GRAM_OK)
        return cli_lib_error(*ctx, s, "--threads");
    g_progress.label = cmd;
    g_progress.tty = isatty(STDERR_FILENO);
    g_progress.t_job = cli_now(); /* reading a large input counts as the job too */
    gram_context_set_progress(*ctx, progress_cb, NULL);
    cli_catch_sigint();
    return 0;
}

double cli_progress_start(void)
{
    g_progress.t_job = cli_now();
    return g_progress.t_job;
}

/* ---- inputs and the fit ---------------------------------------------------------------------- */

int cli_read_matrix(gram_context *ctx, const char *path, gram__matrix *out)
{
    gram__read_opts ro;
    gram__read_opts_init(&ro);
    ro.max_bytes = cli_input_limit();
    memset(out, 0, sizeof *out);
    gram_status s = gram__read_matrix(ctx, path, &ro, out);
    if (s != GRAM_OK) return cli_lib_error(ctx, s, cli_msg_name(path));
    /* The library refuses non-finite values too, but only the CLI knows the file's name. */
    for (int64_t i = 0; i < out->rows; i++) {
        for (int64_t j = 0; j < out->cols; j++) {
            double v = out->data[i * out->cols + j];
            if (isfinite(v)) continue;
            char nb[32];
            return cli_data_error("%s: row %lld, column %lld (%s) is %s", cli_msg_name(path),
                                  (long long)i + 1, (long long)j + 1,
                                  cli_column_name(out, j, nb, sizeof nb),
                                  isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf");
        }
    }
    return 0;
}

int cli_job_load(cli_job *job, const char *cmd, cli_fit_args *f)
{
    memset(job, 0, sizeof *job);
    job->cmd = cmd;
    job->args = f;
    int rc = cli_context_create(cmd, f->threads, &job->ctx);
    if (rc) return rc;
    rc = cli_read_matrix(job->ctx, f->data_path, &job->data);
    if (rc) return rc;
    const char *dname = cli_msg_name(f->data_path);
    if (job->data.rows == 0 || job->data.cols == 0) return cli_data_error("%s: no data", dname);
    int64_t N = job->data.rows, D = job->data.cols;

    if (f->weights_path) {
        rc = cli_read_matrix(job->ctx, f->weights_path, &job->weights);
        if (rc) return rc;
        const char *wname = cli_msg_name(f->weights_path);
        int64_t n = job->weights.rows * job->weights.cols;
        if (n != N || (job->weights.rows != 1 && job->weights.cols != 1))
            return cli_data_error("%s: expected %lld weights (one per data point), got a %lld×%lld "
                                  "array",
                                  wname, (long long)N, (long long)job->weights.rows,
                                  (long long)job->weights.cols);
        double sum = 0;
        for (int64_t i = 0; i < n; i++) {
            double w = job->weights.data[i];
            if (w < 0)
                return cli_data_error("%s: weight %lld is negative (%g); weights must be >= 0",
                                      wname, (long long)i + 1, w);
            sum += w;
        }
        if (!(sum > 0)) return cli_data_error("%s: the weights sum to 0", wname);
    }

    if (f->rule == GRAM_BW_FIXED) {
        if (f->n_bandwidth != 1 && f->n_bandwidth != D)
            return cli_usage_error(cmd, "--bandwidth: expected 1 or %lld values (D = %lld), got %lld",
                                   (long long)D, (long long)D, (long long)f->n_bandwidth);
    }

    if (f->bounds_text) {
        if (f->n_bounds != 1 && f->n_bounds != D)
            return cli_usage_error(cmd, "--bounds: expected 1 or %lld LO:HI pairs (D = %lld), got %lld",
                                   (long long)D, (long long)D, (long long)f->n_bounds);
        job->lower = malloc((size_t)D * sizeof(double));
        job->upper = malloc((size_t)D * sizeof(double));
        if (!job->lower || !job->upper) return cli_data_error("out of memory");
        for (int64_t d = 0; d < D; d++) {
            job->lower[d] = f->bounds_lo[f->n_bounds == 1 ? 0 : d];
            job->upper[d] = f->bounds_hi[f->n_bounds == 1 ? 0 : d];
        }
        /* The library refuses these too; here the message can name the file and count from 1. */
        for (int64_t i = 0; i < N; i++) {
            for (int64_t d = 0; d < D; d++) {
                double v = job->data.data[i * D + d];
                if (v >= job->lower[d] && v <= job->upper[d]) continue;
                char nb[32];
                return cli_data_error("%s: row %lld, column %lld (%s) = %.17g is outside --bounds "
                                      "[%g, %g]",
                                      dname, (long long)i + 1, (long long)d + 1,
                                      cli_column_name(&job->data, d, nb, sizeof nb), v,
                                      job->lower[d], job->upper[d]);
            }
        }
    }
    return 0;
}

int cli_job_fit(cli_job *job)
{
    cli_fit_args *f = job->args;
    gram_kde_options opt;
    gram_kde_options_init(&opt);
    opt.kernel = f->kernel;
    opt.geometry = f->geometry;
    opt.rule = f->rule;
    opt.n_bandwidth = f->rule == GRAM_BW_FIXED ? f->n_bandwidth : 0;
    opt.bandwidth = f->rule == GRAM_BW_FIXED ? f->bandwidth : NULL;
    opt.lower = job->lower;
    opt.upper = job->upper;
    opt.precision = f->precision;

    gram_array X = gram_array_f64(job->data.data, job->data.rows, job->data.cols);
    gram_array W;
    const gram_array *wp = NULL;
    if (job->weights.data) {
        W = gram_array_f64(job->weights.data, job->data.rows, 1);
        wp = &W;
    }
    job->t_start = cli_progress_start();
    if (cli_interrupted()) return cli_lib_error(job->ctx, GRAM_ECANCELLED, NULL);
    gram_status s = gram_kde_fit(job->ctx, &opt, &X, wp, &job->kde);
    cli_progress_done();
    if (s != GRAM_OK) return cli_lib_error(job->ctx, s, cli_msg_name(f->data_path));
    return 0;
}

void cli_job_free(cli_job *job)
{
    gram_kde_destroy(job->kde);
    gram__matrix_free(&job->data);
    gram__matrix_free(&job->weights);
    free(job->lower);
    free(job->upper);
    gram_context_destroy(job->ctx);
    memset(job, 0, sizeof *job);
}

/* ---- outputs --------------------------------------------------------------------------------- */

int cli_check_output_name(const char *cmd, const char *opt, const char *path, int plot)
{
    if (plot) {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        const char *dot = strrchr(base, '.');
        if (!dot || dot == base) return 0;
        if (strlen(dot) == 4 && tolower((unsigned char)dot[1]) == 's' && tolower((unsigned char)dot[2]) == 'v' &&
            tolower((unsigned char)dot[3]) == 'g')
            return 0;
        return cli_usage_error(cmd, "%s: '%s': gram draws SVG only: name the plot FILE.svg", opt, path);
    }
    if (gram__output_format(path) != GRAM__FMT_UNKNOWN) return 0;
    return cli_usage_error(cmd, "%s: '%s' has an unknown suffix: gram writes .npy (NumPy) or .csv (CSV, also "
                                "written for a name without a suffix and for '-')",
                           opt, path);
}

static const char *out_name(const char *path) { return strcmp(path, "-") ? path : "<stdout>"; }

void cli_outputs_discard(cli_outputs *outs)
{
    for (int k = 0; k < outs->n; k++) gram__output_discard(&outs->o[k]);
    outs->n = 0;
}

static int staged(gram_context *ctx, cli_outputs *outs, gram_status s, const char *path)
{
    if (s == GRAM_OK) {
        outs->n++;
        return 0;
    }
    cli_outputs_discard(outs);
    return cli_lib_error(ctx, s, out_name(path));
}

int cli_stage_matrix(gram_context *ctx, cli_outputs *outs, const char *path, const double *data, int64_t rows,
                     int64_t cols, const char *const *names)
{
    gram__output *o = &outs->o[outs->n];
    return staged(ctx, outs, gram__output_stage_matrix(ctx, o, path, data, rows, cols, names), path);
}

int cli_stage_text(gram_context *ctx, cli_outputs *outs, const char *path, const char *text, size_t len)
{
    gram__output *o = &outs->o[outs->n];
    return staged(ctx, outs, gram__output_stage_text(ctx, o, path, text, len), path);
}

int cli_commit(gram_context *ctx, cli_outputs *outs)
{
    /* A SIGINT that came while the outputs were staged still stops the run with nothing written. */
    if (cli_interrupted()) {
        cli_outputs_discard(outs);
        return cli_lib_error(ctx, GRAM_ECANCELLED, NULL);
    }
    int rc = 0;
    for (int k = 0; k < outs->n; k++) {
        const char *path = outs->o[k].path;
        gram_status s = rc ? GRAM_OK : gram__output_commit(ctx, &outs->o[k]);
        if (rc) gram__output_discard(&outs->o[k]);
        else if (s) rc = cli_lib_error(ctx, s, out_name(path));
    }
    outs->n = 0;
    return rc;
}

/* ---- limits ------------------------------------------------------------------------------------ */

static int64_t g_input_limit;

int64_t cli_input_limit(void) { return g_input_limit > 0 ? g_input_limit : gram__io_default_limit(); }

int cli_read_environment(void)
{
    const char *v = getenv("GRAM_MAX_INPUT");
    if (!v || !*v) return 0;
    int64_t n;
    if (!cli_parse_int64(v, &n) || n < 1)
        return cli_usage_error("gram", "GRAM_MAX_INPUT: expected a positive number of bytes, got '%s'", v);
    g_input_limit = n;
    return 0;
}

/* ---- dispatch ---------------------------------------------------------------------------------- */

int cli_no_subcommand(const char *cmd, int argc, char **argv, const char *help, const char *list)
{
    if (argc < 2) {
        fputs(help, stderr);
        return CLI_EXIT_USAGE;
    }
    const char *a = argv[1];
    if (!strcmp(a, "--help") || !strcmp(a, "-h") || !strcmp(a, "help")) {
        fputs(help, stdout);
        return fflush(stdout) ? CLI_EXIT_DATA : CLI_EXIT_OK;
    }
    if (!strcmp(a, "--version")) {
        printf("gram %s\n", gram_version());
        return fflush(stdout) ? CLI_EXIT_DATA : CLI_EXIT_OK;
    }
    if (a[0] == '-') return cli_usage_error(cmd, "expected a command (%s) before options, got '%s'", list, a);
    return cli_usage_error(cmd, "unknown command '%s' (expected %s)", a, list);
}

int cli_main(int argc, char **argv, int parse_only)
{
    if (argc < 2) {
        fputs(MAIN_HELP, stderr);
        return CLI_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "kde")) return cli_kde(argc - 1, argv + 1, parse_only);
    if (!strcmp(cmd, "sample")) return cli_sample(argc - 1, argv + 1, parse_only);
    if (!strcmp(cmd, "gp")) return cli_gp(argc - 1, argv + 1, parse_only);
    if (!strcmp(cmd, "krr")) return cli_krr(argc - 1, argv + 1, parse_only);
    if (!strcmp(cmd, "features")) return cli_features(argc - 1, argv + 1, parse_only);
    if (!strcmp(cmd, "private")) return cli_private(argc - 1, argv + 1, parse_only);
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        if (argc > 2 && !strcmp(cmd, "help")) { /* gram help kde */
            static char help_opt[] = "--help";
            char *sub[] = {argv[2], help_opt, NULL};
            if (!strcmp(argv[2], "kde")) return cli_kde(2, sub, parse_only);
            if (!strcmp(argv[2], "sample")) return cli_sample(2, sub, parse_only);
            if (!strcmp(argv[2], "gp")) return cli_gp(2, sub, parse_only);
            if (!strcmp(argv[2], "krr")) return cli_krr(2, sub, parse_only);
            if (!strcmp(argv[2], "features")) return cli_features(2, sub, parse_only);
            if (!strcmp(argv[2], "private")) return cli_private(2, sub, parse_only);
            return cli_usage_error("gram", "unknown command '%s' (expected " COMMAND_LIST ")", argv[2]);
        }
        fputs(MAIN_HELP, stdout);
        return fflush(stdout) ? CLI_EXIT_DATA : CLI_EXIT_OK;
    }
    if (!strcmp(cmd, "--version")) {
        printf("gram %s\n", gram_version());
        return fflush(stdout) ? CLI_EXIT_DATA : CLI_EXIT_OK;
    }
    if (cmd[0] == '-') return cli_usage_error("gram", "unrecognized option '%s'", cmd);
    return cli_usage_error("gram", "unknown command '%s' (expected " COMMAND_LIST ")", cmd);
}
