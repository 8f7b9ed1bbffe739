/* gram kde: kernel density estimates at the data, at query points, on a grid, leave-one-out. */
#include "cli.h"
#include "svg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char KDE_HELP[] =
    "Usage: gram kde DATA [--query FILE | --grid N | --loo] [OPTIONS]\n"
    "\n"
    "Kernel density estimate of DATA (N points, D columns; '-' reads standard\n"
    "input), evaluated at the data points themselves (the default), at query\n"
    "points, on a grid, or leave-one-out.\n"
    "\n"
    "Evaluation points (at most one):\n"
    "      --query FILE         the points of FILE (M rows, D columns)\n"
    "      --grid N             N points per dimension (D <= 2) spanning\n"
    "                           [min - 3h, max + 3h], clipped to --bounds\n"
    "      --loo                each data point, left out of its own estimate\n"
    "\n"
    "Estimator:\n"
    "      --kernel K           gaussian (default), tophat, epanechnikov,\n"
    "                           exponential, linear, cosine (scikit-learn's\n"
    "                           names; linear = triangular, cosine =\n"
    "                           cosine_window), triangular, cosine_window,\n"
    "                           laplacian, matern12, matern32, matern52,\n"
    "                           cauchy (1-D only)\n"
    "      --bandwidth B        scott (default), silverman, isj, cv-ml, cv-ls,\n"
    "                           or a positive number: h (isotropic; or D\n"
    "                           comma-separated values, one per dimension) or\n"
    "                           the factor (covariance)\n"
    "      --bandwidth-matrix G isotropic (default): H = diag(h_1^2, ..., h_D^2);\n"
    "                           scott and silverman scale each h_d by the\n"
    "                           column's standard deviation. covariance:\n"
    "                           H = factor^2 x the data covariance, as\n"
    "                           scipy.stats.gaussian_kde\n"
    "      --weights FILE       N non-negative weights, one per data point\n"
    "      --bounds LO:HI,...   reflection bounds, one pair per dimension (or\n"
    "                           one for all); an empty side is unbounded:\n"
    "                           --bounds 0:   --bounds 0:1,:\n"
    "      --precision P        f64 (default) or f32 evaluation\n"
    "      --threads N          threads (0, the default: all cores)\n"
    "\n"
    "Output:\n"
    "      --log                log-density instead of density\n"
    "      --rtol R, --atol A   a tolerance on each density f: |f' - f| <= A + R*f\n"
    "                           (scikit-learn's KernelDensity rtol/atol; 0, the\n"
    "                           default: exact). Not with --loo\n"
    "      --method M           auto (default), exact, tree, sampling, grid,\n"
    "                           fgt or features (docs/approx.md)\n"
    "      --delta P            the failure probability per query of sampling\n"
    "                           and features, in (0, 1) (default 0.001)\n"
    "      --seed S             sampling and features: the seed (default 0)\n"
    "      --diagnose           print the participation ratio (the effective\n"
    "                           number of data points carrying each query's sum)\n"
    "                           and the Biroli-Mezard regime instead of densities;\n"
    "                           with -o, write the ratios (column 'participation')\n"
    "  -o, --output FILE        FILE.npy (float64), FILE.csv, or a name with no\n"
    "                           suffix (CSV; another suffix is refused); '-':\n"
    "                           standard output (the default without --plot)\n"
    "      --plot FILE.svg      plot the estimate (D <= 2): the density curve\n"
    "                           over a rug of the data (1-D), or a heat map\n"
    "                           with contours and the data points (2-D)\n"
    "  -q, --quiet              no summary on standard error\n"
    "  -h, --help               show this help and exit\n"
    "      --version            show the version and exit\n"
    "\n"
    "The output has one column, 'density' ('log_density' with --log), one row per\n"
    "evaluation point. With --grid it has D+1 columns: the grid coordinates, then\n"
    "the density. A 2-D grid's N*N rows run with the first coordinate fastest:\n"
    "row j*N + i holds (x_i, y_j), so the density column reshaped to N x N\n"
    "(row-major) is indexed [j, i]. A summary (N, D, kernel, bandwidth, points,\n"
    "time) goes to standard error.\n"
    "\n"
    "Examples:\n"
    "  gram kde data/faithful.csv --plot faithful.svg\n"
    "  gram kde data/faithful.csv --grid 200 --kernel epanechnikov -o grid.csv\n"
    "  gram kde X.npy --query Y.npy --bandwidth-matrix covariance --log -o out.npy\n"
    "\n"
    "Exit status: 0 success, 1 data or runtime error, 2 usage error,\n"
    "130 interrupted.\n";

enum { MODE_DATA, MODE_QUERY, MODE_GRID, MODE_LOO };

/* kde's own options beyond cli.h's shared ids */
enum { OPT_KDE_RTOL = 1000, OPT_KDE_ATOL, OPT_KDE_DIAGNOSE };

static const char *const APPROX_METHOD_NAMES[] = {"auto", "exact", "tree", "sampling", "grid", "fgt", "features"};
#define N_APPROX_METHODS ((int)(sizeof APPROX_METHOD_NAMES / sizeof APPROX_METHOD_NAMES[0]))

/* --rtol/--atol: a number >= 0 (finite); returns 0 or a usage exit code. */
static int parse_tol(const char *cmd, const char *opt, const char *value, double *out)
{
    if (!cli_parse_double(value, out) || !(*out >= 0) || isinf(*out))
        return cli_usage_error(cmd, "%s: expected a number >= 0, got '%s'", opt, value);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* --diagnose: the participation ratio at the M points Y (into pr), its quantiles and the regime
 * on standard output. The regime's h is the root-mean-square of h_d/σ_d over the dimensions (σ_d
 * the data's standard deviation): the paper's bandwidth in units of the data's spread. */
static int diagnose(cli_job *job, const double *h, const double *Y, int64_t M, double *pr)
{
    const cli_fit_args *f = job->args;
    const int64_t N = job->data.rows, D = job->data.cols;
    gram_kernel *k = NULL;
    gram_status s = gram_kernel_create(job->ctx, f->kernel, D, h, 0, NULL, &k);
    const double *w = job->weights.rows > 0 ? job->weights.data : NULL;
    gram_array Ya = gram_array_f64(Y, M, D), Xa = gram_array_f64(job->data.data, N, D), Pa = gram_array_f64(pr, M, 1);
    if (!s) s = gram_kernel_sum_participation(job->ctx, k, &Ya, &Xa, w, &Pa);
    gram_kernel_destroy(k);
    cli_progress_done();
    if (s) return cli_lib_error(job->ctx, s, NULL);
    double *sorted = malloc((size_t)(M > 0 ? M : 1) * sizeof(double));
    if (!sorted) return cli_data_error("out of memory");
    memcpy(sorted, pr, (size_t)M * sizeof(double));
    qsort(sorted, (size_t)M, sizeof(double), cmp_double);
    printf("queries: %lld\npoints: %lld\n", (long long)M, (long long)N);
    static const double qs[] = {0.0, 0.1, 0.5, 0.9, 1.0};
    static const char *const qn[] = {"min", "q10", "median", "q90", "max"};
    for (int q = 0; q < 5; q++) {
        if (M == 0) {
            printf("participation_%s: nan\n", qn[q]);
            continue;
        }
        int64_t r = (int64_t)floor(qs[q] * (double)(M - 1) + 0.5); /* nearest rank */
        printf("participation_%s: %.6g\n", qn[q], sorted[r]);
    }
    free(sorted);
    double ssq = 0.0;
    for (int64_t d = 0; d < D; d++) {
        double mean = 0.0, var = 0.0;
        for (int64_t j = 0; j < N; j++) mean += job->data.data[j * D + d];
        mean /= (double)N;
        for (int64_t j = 0; j < N; j++) {
            double t = job->data.data[j * D + d] - mean;
            var += t * t;
        }
        var /= (double)N;
        ssq += var > 0 ? h[d] * h[d] / var : INFINITY;
    }
    double hr = sqrt(ssq / (double)D), hc = NAN, hg = NAN;
    gram_kde_regime reg = GRAM_KDE_REGIME_CLT;
    /* the thresholds depend only on N and D; the regime is the gaussian kernel's */
    int have = gram_kde_regime_of((double)N, (double)D, hr, &hc, &hg, &reg) == GRAM_OK && f->kernel == GRAM_GAUSSIAN;
    static const char *const names[] = {"clt", "heavy", "extreme"};
    printf("alpha: %.6g\nh_over_sigma: %.6g\nh_g: %.6g\nh_clt: %.6g\nregime: %s\n", log((double)N) / (double)D, hr,
           hg, hc, have ? names[reg] : "n/a");
    if (!have)
        printf("note: %s\n", f->kernel != GRAM_GAUSSIAN ? "the thresholds are for the gaussian kernel"
                                                       : "no regime for fewer than 2 points or a constant column");
    return 0;
}

/* [min - 3h, max + 3h] of column d, clipped to the bounds: the span of --grid and of plots. */
static void grid_range(const cli_job *job, const double *h, int64_t d, double *lo, double *hi)
{
    const gram__matrix *m = &job->data;
    double mn = m->data[d], mx = m->data[d];
    for (int64_t i = 1; i < m->rows; i++) {
        double v = m->data[i * m->cols + d];
        if (v < mn) mn = v;
        if (v > mx) mx = v;
    }
    *lo = mn - 3 * h[d];
    *hi = mx + 3 * h[d];
    if (job->lower && job->lower[d] > *lo) *lo = job->lower[d];
    if (job->upper && job->upper[d] < *hi) *hi = job->upper[d];
}

/* n evenly spaced values from lo to hi, both included (as numpy.linspace). */
static void linspace(double lo, double hi, int64_t n, double *out)
{
    if (n == 1) {
        out[0] = lo;
        return;
    }
    double step = (hi - lo) / (double)(n - 1);
    for (int64_t i = 0; i < n; i++) out[i] = lo + (double)i * step;
    out[n - 1] = hi;
}

/* Density (not log) at the M×D points Y into out; returns an exit code. */
static int eval_pdf(cli_job *job, const double *Y, int64_t M, int64_t D, double *out)
{
    gram_array Ya = gram_array_f64(Y, M, D), Oa = gram_array_f64(out, M, 1);
    gram_status s = gram_kde_pdf(job->ctx, job->kde, &Ya, &Oa);
    cli_progress_done();
    return s == GRAM_OK ? 0 : cli_lib_error(job->ctx, s, NULL);
}

/* Evaluates the plot's grid and renders the SVG into svg; returns an exit code. */
static int make_plot(cli_job *job, const double *h, const char *subtitle, svg_text *svg)
{
    const cli_fit_args *f = job->args;
    int64_t D = job->data.cols, N = job->data.rows;
    char title[512], xb[32], yb[32];
    snprintf(title, sizeof title, "KDE of %s \xe2\x80\x94 %s, %s%s", cli_display_name(f->data_path),
             f->kernel_name, cli_rule_name(f),
             f->geometry == GRAM_KDE_COVARIANCE ? " (covariance)" : "");
    int rc = 0;
    if (D == 1) {
        const int64_t n = 512;
        double *x = malloc(n * sizeof(double)), *y = malloc(n * sizeof(double));
        if (!x || !y) rc = cli_data_error("out of memory");
        if (!rc) {
            double lo, hi;
            grid_range(job, h, 0, &lo, &hi);
            linspace(lo, hi, n, x);
            rc = eval_pdf(job, x, n, 1, y);
        }
        if (!rc) {
            svg_plot1d p = {title, subtitle, cli_column_name(&job->data, 0, xb, sizeof xb), "density",
                            x, y, n, job->data.data, N, 1};
            if (svg_plot_1d(svg, &p)) rc = cli_data_error("out of memory");
        }
        free(x);
        free(y);
        return rc;
    }
    /* 2-D: the density at the centres of 150 × 150 cells. */
    const int64_t n = 150;
    double *Y = malloc((size_t)(n * n * 2) * sizeof(double)), *z = malloc((size_t)(n * n) * sizeof(double));
    if (!Y || !z) rc = cli_data_error("out of memory");
    double lo[2], hi[2];
    if (!rc) {
        for (int d = 0; d < 2; d++) grid_range(job, h, d, &lo[d], &hi[d]);
        for (int64_t j = 0; j < n; j++) {
            for (int64_t i = 0; i < n; i++) {
                Y[2 * (j * n + i)] = lo[0] + ((double)i + 0.5) * (hi[0] - lo[0]) / (double)n;
                Y[2 * (j * n + i) + 1] = lo[1] + ((double)j + 0.5) * (hi[1] - lo[1]) / (double)n;
            }
        }
        rc = eval_pdf(job, Y, n * n, 2, z);
    }
    if (!rc) {
        svg_plot2d p = {title, subtitle, cli_column_name(&job->data, 0, xb, sizeof xb),
                        cli_column_name(&job->data, 1, yb, sizeof yb), "density",
                        lo[0], hi[0], lo[1], hi[1], z, n, n, job->data.data, N, 2};
        if (svg_plot_2d(svg, &p)) rc = cli_data_error("out of memory");
    }
    free(Y);
    free(z);
    return rc;
}

int cli_kde(int argc, char **argv, int parse_only)
{
    static const cli_option opts[] = {
        CLI_FIT_OPTIONS,
        {"query", 0, 1, OPT_QUERY},
        {"grid", 0, 1, OPT_GRID},
        {"loo", 0, 0, OPT_LOO},
        {"log", 0, 0, OPT_LOG},
        {"precision", 0, 1, OPT_PRECISION},
        {"plot", 0, 1, OPT_PLOT},
        {"rtol", 0, 1, OPT_KDE_RTOL},
        {"atol", 0, 1, OPT_KDE_ATOL},
        {"method", 0, 1, OPT_METHOD},
        {"delta", 0, 1, OPT_DELTA},
        {"seed", 0, 1, OPT_SEED},
        {"diagnose", 0, 0, OPT_KDE_DIAGNOSE},
        {0, 0, 0, 0},
    };
    const char *cmd = "gram kde";
    cli_fit_args f;
    cli_fit_args_init(&f);
    cli_job job;
    memset(&job, 0, sizeof job);
    const char *query = NULL, *out_path = NULL, *plot_path = NULL, *value;
    const char *mode_opt[4] = {NULL, NULL, NULL, NULL}; /* the options that chose a mode */
    int64_t grid = 0;
    int logd = 0, rc = 0, id, diag = 0, approx_given = 0;
    gram_approx_options aopt;
    gram_approx_options_init(&aopt);
    gram_approx_info ainfo = {GRAM_APPROX_EXACT, 0.0, 0};
    gram__matrix qm = {0};
    double *h = NULL, *Y = NULL, *out = NULL, *table = NULL;
    svg_text svg = {0};
    const char **names = NULL;

    cli_args a;
    cli_args_init(&a, cmd, argc, argv);
    while ((id = cli_args_next(&a, opts, &value)) != CLI_ARG_END) {
        int common = cli_common_option(&f, cmd, id, a.opt_name, value, KDE_HELP);
        if (common == CLI_OPT_CONTINUE) continue;
        if (common != CLI_OPT_OWN) {
            rc = common;
            goto done;
        }
        switch (id) {
        case OPT_OUTPUT: out_path = value; break;
        case OPT_PLOT: plot_path = value; break;
        case OPT_LOG: logd = 1; break;
        case OPT_QUERY:
            query = value;
            mode_opt[MODE_QUERY] = "--query";
            break;
        case OPT_LOO: mode_opt[MODE_LOO] = "--loo"; break;
        case OPT_GRID:
            if (!cli_parse_int64(value, &grid) || grid < 2 || grid > 100000000) {
                rc = cli_usage_error(cmd, "--grid: expected a number of points per dimension >= 2, "
                                          "got '%s'", value);
                goto done;
            }
            mode_opt[MODE_GRID] = "--grid";
            break;
        case OPT_KDE_RTOL:
            if ((rc = parse_tol(cmd, "--rtol", value, &aopt.rtol))) goto done;
            approx_given = 1;
            break;
        case OPT_KDE_ATOL:
            if ((rc = parse_tol(cmd, "--atol", value, &aopt.atol))) goto done;
            approx_given = 1;
            break;
        case OPT_METHOD: {
            int m = -1;
            for (int t = 0; t < N_APPROX_METHODS; t++)
                if (!strcmp(value, APPROX_METHOD_NAMES[t])) m = t;
            if (m < 0) {
                rc = cli_usage_error(cmd, "--method: expected auto|exact|tree|sampling|grid|fgt|features, got '%s'",
                                     value);
                goto done;
            }
            aopt.method = (gram_approx_method)m;
            approx_given = 1;
            break;
        }
        case OPT_DELTA:
            if (!cli_parse_double(value, &aopt.delta) || !(aopt.delta > 0 && aopt.delta < 1)) {
                rc = cli_usage_error(cmd, "--delta: expected a probability in (0, 1), got '%s'", value);
                goto done;
            }
            break;
        case OPT_SEED:
            if (!cli_parse_uint64(value, &aopt.seed)) {
                rc = cli_usage_error(cmd, "--seed: expected an integer in [0, 2^64), got '%s'", value);
                goto done;
            }
            break;
        case OPT_KDE_DIAGNOSE: diag = 1; break;
        case OPT_PRECISION:
            if (!strcmp(value, "f64") || !strcmp(value, "float64")) f.precision = GRAM_FLOAT64;
            else if (!strcmp(value, "f32") || !strcmp(value, "float32")) f.precision = GRAM_FLOAT32;
            else {
                rc = cli_usage_error(cmd, "--precision: expected f32|f64, got '%s'", value);
                goto done;
            }
            break;
        default:
            rc = cli_usage_error(cmd, "internal error: unhandled option '%s'", a.opt_name);
            goto done;
        }
    }

    /* Usage checks that need no data. */
    if (!f.data_path) {
        rc = cli_usage_error(cmd, "missing DATA (a .npy or CSV file, or - for standard input)");
        goto done;
    }
    int mode = MODE_DATA;
    for (int m = MODE_QUERY; m <= MODE_LOO; m++) {
        if (!mode_opt[m]) continue;
        if (mode != MODE_DATA) {
            rc = cli_usage_error(cmd, "%s and %s cannot be used together", mode_opt[mode], mode_opt[m]);
            goto done;
        }
        mode = m;
    }
    int stdin_users = !strcmp(f.data_path, "-") + (query && !strcmp(query, "-")) +
                      (f.weights_path && !strcmp(f.weights_path, "-"));
    if (stdin_users > 1) {
        rc = cli_usage_error(cmd, "only one of DATA, --query and --weights can be '-' (standard input)");
        goto done;
    }
    if (out_path && plot_path && !strcmp(out_path, "-") && !strcmp(plot_path, "-")) {
        rc = cli_usage_error(cmd, "-o and --plot cannot both write to standard output");
        goto done;
    }
    int approx = aopt.rtol > 0 || aopt.atol > 0 || aopt.method == GRAM_APPROX_TREE ||
                 aopt.method == GRAM_APPROX_SAMPLING;
    if (mode == MODE_LOO && approx) {
        rc = cli_usage_error(cmd, "--loo is computed exactly: --rtol, --atol and --method do not apply");
        goto done;
    }
    if (diag) {
        const char *clash = mode == MODE_GRID ? "--grid" : mode == MODE_LOO ? "--loo" : plot_path ? "--plot"
                            : logd ? "--log" : approx_given ? "--rtol, --atol and --method"
                            : f.geometry == GRAM_KDE_COVARIANCE ? "--bandwidth-matrix covariance"
                            : f.bounds_text ? "--bounds" : NULL;
        if (clash) {
            rc = cli_usage_error(cmd, "--diagnose (exact ratios at the data or --query points, isotropic "
                                      "bandwidths, no reflection) cannot be used with %s", clash);
            goto done;
        }
        /* the report goes to standard output; -o FILE writes the ratios */
    } else if (!out_path && !plot_path) out_path = "-";
    if (diag && out_path && !strcmp(out_path, "-")) {
        rc = cli_usage_error(cmd, "--diagnose prints its report on standard output: -o needs a file");
        goto done;
    }
    if ((out_path && (rc = cli_check_output_name(cmd, "-o", out_path, 0))) ||
        (plot_path && (rc = cli_check_output_name(cmd, "--plot", plot_path, 1))) ||
        (rc = cli_check_fit_args(&f, cmd)))
        goto done;
    if (parse_only) goto done;

    /* Inputs. */
    rc = cli_job_load(&job, cmd, &f);
    if (rc) goto done;
    int64_t N = job.data.rows, D = job.data.cols;
    if (mode == MODE_GRID && D > 2) {
        rc = cli_usage_error(cmd, "--grid needs 1-D or 2-D data, but %s has %lld columns",
                             cli_display_name(f.data_path), (long long)D);
        goto done;
    }
    if (plot_path && D > 2) {
        rc = cli_usage_error(cmd, "--plot needs 1-D or 2-D data, but %s has %lld columns",
                             cli_display_name(f.data_path), (long long)D);
        goto done;
    }
    if (mode == MODE_QUERY) {
        rc = cli_read_matrix(job.ctx, query, &qm);
        if (rc) goto done;
        if (qm.cols != D && !(qm.rows == 0)) {
            rc = cli_data_error("%s: the query points have %lld columns, the data %lld",
                                strcmp(query, "-") ? query : "<stdin>", (long long)qm.cols,
                                (long long)D);
            goto done;
        }
    }

    /* The estimate. */
    rc = cli_job_fit(&job);
    if (rc) goto done;
    h = malloc((size_t)D * sizeof(double));
    if (!h) {
        rc = cli_data_error("out of memory");
        goto done;
    }
    gram_status s = gram_kde_bandwidth(job.kde, h);
    if (s) {
        rc = cli_lib_error(job.ctx, s, NULL);
        goto done;
    }

    /* Evaluation points. */
    int64_t M = 0, out_cols = 1;
    const double *pts = NULL;
    switch (mode) {
    case MODE_DATA: pts = job.data.data; M = N; break;
    case MODE_QUERY: pts = qm.data; M = qm.rows; break;
    case MODE_LOO: M = N; break;
    case MODE_GRID: {
        M = D == 1 ? grid : grid * grid;
        out_cols = D + 1;
        Y = malloc((size_t)(M * D) * sizeof(double));
        double *ax = malloc((size_t)(grid * D) * sizeof(double));
        if (!Y || !ax) {
            free(ax);
            rc = cli_data_error("out of memory (a grid of %lld points)", (long long)M);
            goto done;
        }
        for (int64_t d = 0; d < D; d++) {
            double lo, hi;
            grid_range(&job, h, d, &lo, &hi);
            linspace(lo, hi, grid, ax + d * grid);
        }
        for (int64_t r = 0; r < M; r++) {
            Y[r * D] = ax[r % grid];
            if (D == 2) Y[r * D + 1] = ax[grid + r / grid];
        }
        free(ax);
        pts = Y;
        break;
    }
    }
    out = malloc((size_t)(M > 0 ? M : 1) * sizeof(double));
    if (!out) {
        rc = cli_data_error("out of memory");
        goto done;
    }
    gram_array O = gram_array_f64(out, M, 1);
    if (diag) {
        rc = diagnose(&job, h, pts, M, out);
        if (rc || !out_path) goto done;
        const char *pname[1] = {"participation"};
        cli_outputs outs = {.n = 0};
        if (!(rc = cli_stage_matrix(job.ctx, &outs, out_path, out, M, 1, pname))) rc = cli_commit(job.ctx, &outs);
        goto done;
    }
    if (mode == MODE_LOO) {
        s = gram_kde_logpdf_loo(job.ctx, job.kde, &O);
        if (!s && !logd)
            for (int64_t i = 0; i < M; i++) out[i] = exp(out[i]);
    } else {
        gram_array Ya = gram_array_f64(pts, M, D);
        if (approx)
            s = gram_kde_eval_approx(job.ctx, job.kde, &Ya, &aopt, logd, &O, &ainfo);
        else
            s = logd ? gram_kde_logpdf(job.ctx, job.kde, &Ya, &O) : gram_kde_pdf(job.ctx, job.kde, &Ya, &O);
    }
    cli_progress_done();
    double seconds = cli_now() - job.t_start;
    if (s) {
        rc = cli_lib_error(job.ctx, s, NULL);
        goto done;
    }

    /* The output table, its column names. */
    char colbuf[2][32];
    names = calloc((size_t)out_cols, sizeof *names);
    if (!names) {
        rc = cli_data_error("out of memory");
        goto done;
    }
    names[out_cols - 1] = logd ? "log_density" : "density";
    const double *result = out;
    if (out_cols > 1) {
        table = malloc((size_t)(M * out_cols) * sizeof(double));
        if (!table) {
            rc = cli_data_error("out of memory");
            goto done;
        }
        for (int64_t r = 0; r < M; r++) {
            for (int64_t d = 0; d < D; d++) table[r * out_cols + d] = Y[r * D + d];
            table[r * out_cols + D] = out[r];
        }
        for (int64_t d = 0; d < D; d++) names[d] = cli_column_name(&job.data, d, colbuf[d], sizeof colbuf[d]);
        result = table;
    }

    char bw[256], summary[512];
    cli_describe_bandwidth(job.kde, &f, bw, sizeof bw);
    if (plot_path) {
        snprintf(summary, sizeof summary, "N = %lld, %s", (long long)N, bw);
        rc = make_plot(&job, h, summary, &svg);
        if (rc) goto done;
    }

    /* Nothing is written before everything has been computed, and then all or nothing. */
    cli_outputs outs = {.n = 0};
    if ((out_path && (rc = cli_stage_matrix(job.ctx, &outs, out_path, result, M, out_cols, names))) ||
        (plot_path && (rc = cli_stage_text(job.ctx, &outs, plot_path, svg.s, svg.len))) ||
        (rc = cli_commit(job.ctx, &outs)))
        goto done;

    if (!f.quiet) {
        char when[32], what[96];
        cli_format_seconds(seconds, when, sizeof when);
        if (mode == MODE_GRID && D == 2)
            snprintf(what, sizeof what, "%lld×%lld grid (%lld points)", (long long)grid,
                     (long long)grid, (long long)M);
        else if (mode == MODE_GRID)
            snprintf(what, sizeof what, "grid of %lld points", (long long)M);
        else if (mode == MODE_LOO)
            snprintf(what, sizeof what, "%lld point%s (leave-one-out)", (long long)M, M == 1 ? "" : "s");
        else
            snprintf(what, sizeof what, "%lld point%s", (long long)M, M == 1 ? "" : "s");
        char how[160] = "";
        if (approx)
            snprintf(how, sizeof how, " method=%s rtol=%g atol=%g evaluations=%lld%s",
                     APPROX_METHOD_NAMES[ainfo.method >= 0 && ainfo.method < N_APPROX_METHODS ? ainfo.method : 0], aopt.rtol,
                     aopt.atol, (long long)ainfo.kernel_evaluations, ainfo.delta > 0 ? " (randomized)" : "");
        fprintf(stderr, "%s: N=%lld D=%lld kernel=%s bandwidth=%s %s%s%s %s in %s\n", cmd, (long long)N,
                (long long)D, f.kernel_name, cli_rule_name(&f), bw,
                f.precision == GRAM_FLOAT32 ? " f32" : "", how, what, when);
    }

done:
    svg_text_free(&svg);
    free(names);
    free(table);
    free(out);
    free(Y);
    free(h);
    gram__matrix_free(&qm);
    cli_job_free(&job);
    cli_fit_args_free(&f);
    return rc;
}
