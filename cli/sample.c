/* gram sample: draw samples from a kernel density estimate. */
#include "cli.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char SAMPLE_HELP[] =
    "Usage: gram sample DATA -n COUNT [OPTIONS]\n"
    "\n"
    "Draws COUNT points from the kernel density estimate of DATA (N points,\n"
    "D columns; '-' reads standard input). The same seed gives the same samples\n"
    "on every machine and for every thread count.\n"
    "\n"
    "  -n, --count COUNT        the number of samples (required)\n"
    "      --seed S             random seed, an integer in 0..2^64-1 (default 0)\n"
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
    "      --bandwidth-matrix G isotropic (default) or covariance (H = factor^2\n"
    "                           x the data covariance, as scipy.stats.gaussian_kde)\n"
    "      --weights FILE       N non-negative weights, one per data point\n"
    "      --bounds LO:HI,...   reflection bounds, one pair per dimension (or\n"
    "                           one for all); an empty side is unbounded:\n"
    "                           --bounds 0:   --bounds 0:1,:\n"
    "      --threads N          threads (0, the default: all cores)\n"
    "  -o, --output FILE        FILE.npy (float64), FILE.csv, or a name with no\n"
    "                           suffix (CSV; another suffix is refused); '-':\n"
    "                           standard output (the default)\n"
    "  -q, --quiet              no summary on standard error\n"
    "  -h, --help               show this help and exit\n"
    "      --version            show the version and exit\n"
    "\n"
    "The output has COUNT rows and D columns, with the data's column names as the\n"
    "CSV header (x1, x2, ... when the data have none).\n"
    "\n"
    "Example:\n"
    "  gram sample data/faithful.csv -n 1000 --seed 42 -o samples.csv\n"
    "\n"
    "Exit status: 0 success, 1 data or runtime error, 2 usage error,\n"
    "130 interrupted.\n";

int cli_sample(int argc, char **argv, int parse_only)
{
    static const cli_option opts[] = {
        CLI_FIT_OPTIONS,
        {"count", 'n', 1, OPT_COUNT},
        {"seed", 0, 1, OPT_SEED},
        {0, 0, 0, 0},
    };
    const char *cmd = "gram sample";
    cli_fit_args f;
    cli_fit_args_init(&f);
    cli_job job;
    memset(&job, 0, sizeof job);
    const char *out_path = "-", *value;
    int64_t count = -1;
    uint64_t seed = 0;
    int rc = 0, id;
    double *out = NULL;
    const char **names = NULL;
    char (*namebuf)[32] = NULL;

    cli_args a;
    cli_args_init(&a, cmd, argc, argv);
    while ((id = cli_args_next(&a, opts, &value)) != CLI_ARG_END) {
        int common = cli_common_option(&f, cmd, id, a.opt_name, value, SAMPLE_HELP);
        if (common == CLI_OPT_CONTINUE) continue;
        if (common != CLI_OPT_OWN) {
            rc = common;
            goto done;
        }
        switch (id) {
        case OPT_OUTPUT: out_path = value; break;
        case OPT_COUNT:
            if (!cli_parse_int64(value, &count) || count < 1) {
                rc = cli_usage_error(cmd, "%s: expected a positive number of samples, got '%s'",
                                     a.opt_name, value);
                goto done;
            }
            break;
        case OPT_SEED:
            if (!cli_parse_uint64(value, &seed)) {
                rc = cli_usage_error(cmd, "--seed: expected an integer in 0..18446744073709551615, "
                                          "got '%s'", value);
                goto done;
            }
            break;
        default:
            rc = cli_usage_error(cmd, "internal error: unhandled option '%s'", a.opt_name);
            goto done;
        }
    }
    if (!f.data_path) {
        rc = cli_usage_error(cmd, "missing DATA (a .npy or CSV file, or - for standard input)");
        goto done;
    }
    if (count < 0) {
        rc = cli_usage_error(cmd, "missing -n COUNT (the number of samples)");
        goto done;
    }
    if (f.weights_path && !strcmp(f.weights_path, "-") && !strcmp(f.data_path, "-")) {
        rc = cli_usage_error(cmd, "only one of DATA and --weights can be '-' (standard input)");
        goto done;
    }
    if ((rc = cli_check_output_name(cmd, "-o", out_path, 0)) || (rc = cli_check_fit_args(&f, cmd))) goto done;
    if (parse_only) goto done;

    rc = cli_job_load(&job, cmd, &f);
    if (rc) goto done;
    int64_t N = job.data.rows, D = job.data.cols;
    if (count > INT64_MAX / 8 / D || (out = malloc((size_t)(count * D) * sizeof(double))) == NULL) {
        rc = cli_data_error("out of memory (%lld samples of dimension %lld)", (long long)count,
                            (long long)D);
        goto done;
    }
    rc = cli_job_fit(&job);
    if (rc) goto done;
    gram_array O = gram_array_f64(out, count, D);
    gram_status s = gram_kde_sample(job.ctx, job.kde, seed, &O);
    cli_progress_done();
    double seconds = cli_now() - job.t_start;
    if (s) {
        rc = cli_lib_error(job.ctx, s, NULL);
        goto done;
    }
    names = calloc((size_t)D, sizeof *names);
    namebuf = calloc((size_t)D, sizeof *namebuf);
    if (!names || !namebuf) {
        rc = cli_data_error("out of memory");
        goto done;
    }
    for (int64_t d = 0; d < D; d++) names[d] = cli_column_name(&job.data, d, namebuf[d], sizeof namebuf[d]);
    cli_outputs outs = {.n = 0};
    if ((rc = cli_stage_matrix(job.ctx, &outs, out_path, out, count, D, names)) || (rc = cli_commit(job.ctx, &outs)))
        goto done;

    if (!f.quiet) {
        char bw[256], when[32];
        cli_describe_bandwidth(job.kde, &f, bw, sizeof bw);
        cli_format_seconds(seconds, when, sizeof when);
        fprintf(stderr, "%s: N=%lld D=%lld kernel=%s bandwidth=%s %s %lld samples (seed %llu) in %s\n",
                cmd, (long long)N, (long long)D, f.kernel_name, cli_rule_name(&f), bw,
                (long long)count, (unsigned long long)seed, when);
    }

done:
    free(names);
    free(namebuf);
    free(out);
    cli_job_free(&job);
    cli_fit_args_free(&f);
    return rc;
}
