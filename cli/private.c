/* gram private: differentially private similarity sketches. `fit` reads a private data set once
 * and writes a released sketch (gram_private_fit, gram_private_to_bytes); `query` loads one and
 * writes the private sums (or averages) at query points; `info` prints what a sketch is and what
 * it cost. The numerics and the privacy are the library's; this file parses, reads, checks and
 * writes. */
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- help ------------------------------------------------------------------------------------ */

#define HELP_TAIL                                                                                  \
    "      --threads N          threads (0, the default: all cores)\n"                            \
    "  -q, --quiet              no summary on standard error (warnings still show)\n"             \
    "  -h, --help               show this help and exit\n"                                        \
    "      --version            show the version and exit\n"                                      \
    "\n"                                                                                           \
    "Exit status: 0 success, 1 data or runtime error, 2 usage error,\n"                            \
    "130 interrupted.\n"

static const char PRIVATE_HELP[] =
    "Usage: gram private fit DATA --similarity F --epsilon E --radius R [OPTIONS] -o SKETCH\n"
    "       gram private query SKETCH QUERIES [--mean] [-o OUT]\n"
    "       gram private info SKETCH\n"
    "\n"
    "Differentially private similarity sums (Backurs et al., ICLR 2024): 'fit'\n"
    "reads a private data set once and writes a sketch that answers\n"
    "sum_x f(x, y) for any number of later queries y at no further privacy cost;\n"
    "'query' answers them; 'info' shows what a sketch is and what it cost.\n"
    "A sketch holds only noised values and public parameters, never a row of DATA.\n"
    "\n"
    "Run 'gram private COMMAND --help' for a command's options.\n"
    "\n"
    "Exit status: 0 success, 1 data or runtime error, 2 usage error,\n"
    "130 interrupted.\n";

static const char FIT_HELP[] =
    "Usage: gram private fit DATA --similarity F --epsilon E --radius R [OPTIONS] -o SKETCH\n"
    "\n"
    "Releases a private sketch of DATA (a .npy or CSV file of N points, one per\n"
    "row; '-' reads standard input) under epsilon-differential privacy (or\n"
    "(epsilon, delta) with --delta), protecting each row. Rows outside the domain\n"
    "are clipped onto it, and their number is reported (it is not private).\n"
    "\n"
    "      --similarity F       gaussian exp(-|x-y|^2/s^2), exponential\n"
    "                           exp(-|x-y|/s), cauchy 1/(1+|x-y|^2/s^2) (s: the\n"
    "                           bandwidth), l1 |x-y|_1, l2 |x-y|_2, lpp |x-y|_p^p\n"
    "      --epsilon E          the privacy budget, > 0 (required)\n"
    "      --delta D            in [0, 1) (default 0: pure epsilon-DP with discrete\n"
    "                           Laplace noise; > 0: discrete Gaussian noise)\n"
    "      --radius R           the domain bound, > 0 (required): |x|_2 <= R (ball)\n"
    "                           or |x_j| <= R (box); choose it without looking at\n"
    "                           DATA\n"
    "      --domain D           ball (default) or box\n"
    "      --bandwidth S        the kernels' bandwidth s, > 0 (required for\n"
    "                           gaussian, exponential and cauchy)\n"
    "      --components K       kernels: random features (even; default 1024);\n"
    "                           l2: the l1 projections (default 64)\n"
    "      --reduced-dim K      kernels, paper mechanism: the Johnson-Lindenstrauss\n"
    "                           dimension (default min(d, 64))\n"
    "      --levels L           distances: depth of each coordinate's tree (2^L\n"
    "                           cells; default chosen from N and epsilon)\n"
    "      --p P                lpp: the exponent, 0 < P <= 2 (default 1)\n"
    "      --mechanism M        paper (default) or baseline (gaussian, exponential:\n"
    "                           random features without reduction; l1: Huang & Roth)\n"
    "      --neighbours N       replace (default: one row replaced; N is public) or\n"
    "                           add-remove (one row added or removed; N released\n"
    "                           with noise)\n"
    "      --seed S             seed of the public randomness (projections,\n"
    "                           frequencies), 0..2^64-1 (default: from the system)\n"
    "      --insecure-noise-seed S\n"
    "                           FOR TESTS ONLY: draw the noise from seed S; the\n"
    "                           sketch is NOT private and says so\n"
    "  -o, --output SKETCH      the sketch file (required)\n" HELP_TAIL
    "\n"
    "Never fit twice on the same data without counting both releases: each costs\n"
    "its epsilon.\n"
    "\n"
    "Example:\n"
    "  gram private fit data.npy --similarity gaussian --bandwidth 1 \\\n"
    "      --epsilon 1 --radius 4 -o data.sketch\n";

static const char QUERY_HELP[] =
    "Usage: gram private query SKETCH QUERIES [--mean] [-o OUT]\n"
    "\n"
    "The private estimate of sum_x f(x, y) for each row y of QUERIES (a .npy or\n"
    "CSV file with the sketch's d columns; '-' reads standard input). Queries are\n"
    "post-processing: they cost no privacy.\n"
    "\n"
    "      --mean               the average (the sum divided by the released N)\n"
    "  -o, --output FILE        FILE.npy, FILE.csv, or a name with no suffix (CSV;\n"
    "                           another suffix is refused); '-': standard output\n"
    "                           (the default)\n" HELP_TAIL
    "\n"
    "The CSV header is 'sum' (or 'mean').\n"
    "\n"
    "Example:\n"
    "  gram private query data.sketch queries.csv --mean -o means.csv\n";

static const char INFO_HELP[] =
    "Usage: gram private info SKETCH\n"
    "\n"
    "Prints a sketch's similarity, mechanism, privacy cost (epsilon, delta), noise,\n"
    "its scale, the sensitivity and how it was derived, the domain, d, the\n"
    "released N and whether the noise came from a test seed, one 'key: value' per\n"
    "line on standard output.\n"
    "\n"
    "  -h, --help               show this help and exit\n"
    "      --version            show the version and exit\n"
    "\n"
    "Exit status: 0 success, 1 data or runtime error, 2 usage error.\n";

/* ---- names ----------------------------------------------------------------------------------- */

static const char *const SIMILARITIES[] = {"gaussian", "exponential", "cauchy", "l1", "l2", "lpp"};
static const char *const MECHANISMS[] = {"paper", "baseline"};
static const char *const DOMAINS[] = {"ball", "box"};
static const char *const NEIGHBOURS[] = {"replace", "add-remove"};

static int index_of(const char *const *names, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], s)) return i;
    return -1;
}

/* ---- arguments ------------------------------------------------------------------------------- */

enum { CMD_FIT = CLI_SUB_FIT, CMD_QUERY = CLI_SUB_APPLY, CMD_INFO = CLI_SUB_INFO };

typedef struct priv_args {
    int which;
    const char *cmd;
    cli_fit_args f;            /* data_path (fit: DATA; query, info: SKETCH), threads, quiet */
    const char *query_path;    /* query: QUERIES */
    const char *out_path;
    int similarity;            /* -1: not given */
    double epsilon, delta, radius, bandwidth, p;
    int have_epsilon, have_radius, have_bandwidth, have_p;
    int64_t components, reduced_dim, levels;
    int have_components, have_reduced_dim, have_levels;
    int mechanism, domain, neighbours;
    uint64_t seed, noise_seed;
    int have_seed, have_noise_seed;
    int mean;
} priv_args;

/* A real option value: 1, or a usage error (as an exit code) for text that is not a number. */
static int parse_real(priv_args *r, const char *opt, const char *value, double *out)
{
    if (!cli_parse_double(value, out))
        return cli_usage_error(r->cmd, "%s: expected a number, got '%s'", opt, value);
    return 1;
}

/* A real option value that must be > 0 and finite (what: "epsilon", "the bandwidth"): 1 with *have
 * set, or a usage error as an exit code. */
static int parse_positive(priv_args *r, const char *opt, const char *value, const char *what, double *out, int *have)
{
    int rc = parse_real(r, opt, value, out);
    if (rc == 1 && (!(*out > 0) || !isfinite(*out)))
        return cli_usage_error(r->cmd, "%s: %s must be > 0 and finite, got '%s'", opt, what, value);
    *have = 1;
    return rc;
}

/* An integer option value, 1 with *have set: integers are the library's to judge (an odd or absurd
 * count: a data error naming why); only text that is no integer is a usage error. */
static int parse_integer(priv_args *r, const char *opt, const char *value, int64_t *out, int *have)
{
    if (!cli_parse_int64(value, out)) return cli_usage_error(r->cmd, "%s: expected an integer, got '%s'", opt, value);
    *have = 1;
    return 1;
}

static int parse_name(priv_args *r, const char *opt, const char *value, const char *const *names, int n,
                      const char *list, int *out)
{
    if ((*out = index_of(names, n, value)) < 0)
        return cli_usage_error(r->cmd, "%s: expected %s, got '%s'", opt, list, value);
    return 1;
}

static int priv_option(void *self, int id, const char *opt, const char *value)
{
    priv_args *r = self;
    int rc = 1;
    switch (id) {
    case OPT_OUTPUT: r->out_path = value; break;
    case OPT_SIMILARITY:
        rc = parse_name(r, opt, value, SIMILARITIES, 6, "gaussian, exponential, cauchy, l1, l2 or lpp",
                        &r->similarity);
        break;
    case OPT_EPSILON: rc = parse_positive(r, opt, value, "epsilon", &r->epsilon, &r->have_epsilon); break;
    case OPT_DELTA:
        if ((rc = parse_real(r, opt, value, &r->delta)) == 1 && !(r->delta >= 0 && r->delta < 1))
            return cli_usage_error(r->cmd, "%s: delta must be in [0, 1), got '%s'", opt, value);
        break;
    case OPT_RADIUS: rc = parse_positive(r, opt, value, "the domain bound", &r->radius, &r->have_radius); break;
    case OPT_PRIV_BANDWIDTH:
        rc = parse_positive(r, opt, value, "the bandwidth", &r->bandwidth, &r->have_bandwidth);
        break;
    case OPT_P:
        if ((rc = parse_real(r, opt, value, &r->p)) == 1 && !(r->p > 0 && r->p <= 2))
            return cli_usage_error(r->cmd, "%s: p must be in (0, 2], got '%s'", opt, value);
        r->have_p = 1;
        break;
    case OPT_COMPONENTS: rc = parse_integer(r, opt, value, &r->components, &r->have_components); break;
    case OPT_REDUCED_DIM: rc = parse_integer(r, opt, value, &r->reduced_dim, &r->have_reduced_dim); break;
    case OPT_LEVELS: rc = parse_integer(r, opt, value, &r->levels, &r->have_levels); break;
    case OPT_MECHANISM: rc = parse_name(r, opt, value, MECHANISMS, 2, "paper or baseline", &r->mechanism); break;
    case OPT_DOMAIN: rc = parse_name(r, opt, value, DOMAINS, 2, "ball or box", &r->domain); break;
    case OPT_NEIGHBOURS:
        rc = parse_name(r, opt, value, NEIGHBOURS, 2, "replace or add-remove", &r->neighbours);
        break;
    case OPT_SEED:
    case OPT_NOISE_SEED:
        if (!cli_parse_uint64(value, id == OPT_SEED ? &r->seed : &r->noise_seed))
            return cli_usage_error(r->cmd, "%s: expected an integer in 0..18446744073709551615, got '%s'", opt, value);
        *(id == OPT_SEED ? &r->have_seed : &r->have_noise_seed) = 1;
        break;
    case OPT_MEAN: r->mean = 1; break;
    default: return cli_usage_error(r->cmd, "internal error: unhandled option '%s'", opt);
    }
    return rc == 1 ? CLI_OPT_CONTINUE : rc;
}

/* The checks of the fit options against each other, all before any input is read. */
static int check_fit(priv_args *r)
{
    if (r->similarity < 0)
        return cli_usage_error(r->cmd, "missing --similarity F (gaussian, exponential, cauchy, l1, l2 or lpp)");
    if (!r->have_epsilon && !r->have_radius)
        return cli_usage_error(r->cmd, "missing --epsilon E (the privacy budget) and --radius R (the domain bound)");
    if (!r->have_epsilon) return cli_usage_error(r->cmd, "missing --epsilon E (the privacy budget, > 0)");
    if (!r->have_radius)
        return cli_usage_error(r->cmd, "missing --radius R (the domain bound, > 0: rows are clipped onto "
                               "|x|_2 <= R, or |x_j| <= R with --domain box)");
    if (!r->out_path) return cli_usage_error(r->cmd, "missing -o SKETCH (the sketch file to write)");
    const char *sim = SIMILARITIES[r->similarity];
    const int kernel = r->similarity <= GRAM_PRIVATE_CAUCHY;
    if (kernel && !r->have_bandwidth)
        return cli_usage_error(r->cmd, "missing --bandwidth S (the %s kernel's bandwidth, > 0)", sim);
    if (!kernel && r->have_bandwidth) return cli_usage_error(r->cmd, "--bandwidth applies to the kernels only (got --similarity %s)", sim);
    if (r->have_p && r->similarity != GRAM_PRIVATE_LPP)
        return cli_usage_error(r->cmd, "--p applies to --similarity lpp only (got %s)", sim);
    if (r->have_levels && kernel) return cli_usage_error(r->cmd, "--levels applies to l1, l2 and lpp only (got %s)", sim);
    if (r->have_reduced_dim && (!kernel || r->mechanism == GRAM_PRIVATE_BASELINE))
        return cli_usage_error(r->cmd, "--reduced-dim applies to the kernels' paper mechanism only (got %s, %s)", sim,
                               MECHANISMS[r->mechanism]);
    if (r->have_components && (r->similarity == GRAM_PRIVATE_L1 || r->similarity == GRAM_PRIVATE_LPP))
        return cli_usage_error(r->cmd, "--components applies to the kernels and l2 only (got %s)", sim);
    if (r->mechanism == GRAM_PRIVATE_BASELINE && r->similarity != GRAM_PRIVATE_GAUSSIAN &&
        r->similarity != GRAM_PRIVATE_EXPONENTIAL && r->similarity != GRAM_PRIVATE_L1)
        return cli_usage_error(r->cmd, "--mechanism baseline exists for gaussian, exponential and l1 only (got %s)", sim);
    if (r->have_levels && (r->levels < 0 || r->levels > INT32_MAX))
        return cli_usage_error(r->cmd, "--levels: expected 0..30, got %lld", (long long)r->levels);
    return CLI_OPT_CONTINUE;
}

/* Parses argv into r and checks what needs no data. Returns CLI_OPT_CONTINUE or an exit code. */
static int priv_parse(priv_args *r, int argc, char **argv, const cli_option *opts, const char *help)
{
    const cli_subcommand sc = {r->cmd, r->which, "SKETCH (a sketch file from 'gram private fit')", "QUERIES",
                               priv_option, r};
    int rc = cli_subcommand_parse(&sc, &r->f, &r->query_path, &r->out_path, argc, argv, opts, help);
    if (rc != CLI_OPT_CONTINUE || r->which != CMD_FIT) return rc;
    return check_fit(r);
}

/* Creates the context (threads: --threads, or 1) and loads SKETCH: an exit code. */
static int load(const priv_args *r, int threads, gram_context **ctx, gram_private_sketch **sk)
{
    int rc = cli_context_create(r->cmd, threads, ctx);
    if (rc) return rc;
    gram_status s = gram_private_load(*ctx, r->f.data_path, sk);
    return s ? cli_lib_error(*ctx, s, cli_msg_name(r->f.data_path)) : 0;
}

/* ---- fit --------------------------------------------------------------------------------------- */

static int fit_cmd(priv_args *r)
{
    gram_context *ctx = NULL;
    gram__matrix data = {0};
    gram_private_sketch *sk = NULL;
    void *bytes = NULL;
    size_t size = 0;
    if (r->have_noise_seed)
        fprintf(stderr, "%s: warning: --insecure-noise-seed: the noise comes from a fixed seed, so the sketch is "
                "NOT private (for tests only; the sketch records it)\n", r->cmd);
    int rc = cli_context_create(r->cmd, r->f.threads, &ctx);
    if (!rc) rc = cli_read_matrix(ctx, r->f.data_path, &data);
    if (rc) goto done;
    gram_private_options o;
    gram_private_options_init(&o);
    o.mechanism = (gram_private_mechanism)r->mechanism;
    o.domain = (gram_private_domain)r->domain;
    o.neighbours = (gram_private_neighbours)r->neighbours;
    o.radius = r->radius;
    o.bandwidth = r->have_bandwidth ? r->bandwidth : 0;
    if (r->have_p) o.p = r->p;
    o.n_components = r->have_components ? r->components : 0;
    o.reduced_dim = r->have_reduced_dim ? r->reduced_dim : 0;
    o.levels = r->have_levels ? (int32_t)r->levels : 0;
    o.seed = r->seed;
    o.has_seed = r->have_seed;
    o.noise_seed = r->noise_seed;
    o.has_noise_seed = r->have_noise_seed;
    const double t0 = cli_progress_start();
    gram_array X = gram_array_f64(data.data, data.rows, data.cols);
    gram_status s = cli_interrupted() ? GRAM_ECANCELLED
                                      : gram_private_fit(ctx, &X, (gram_private_similarity)r->similarity, r->epsilon,
                                                         r->delta, &o, &sk);
    cli_progress_done();
    const double seconds = cli_now() - t0;
    if (s) {
        rc = cli_lib_error(ctx, s, cli_msg_name(r->f.data_path));
        goto done;
    }
    /* Nothing is written before the sketch is complete. */
    if ((s = gram_private_to_bytes(ctx, sk, &bytes, &size))) {
        rc = cli_lib_error(ctx, s, NULL);
        goto done;
    }
    cli_outputs outs = {.n = 0};
    if ((rc = cli_stage_text(ctx, &outs, r->out_path, bytes, size)) || (rc = cli_commit(ctx, &outs))) goto done;
    const int64_t clipped = gram_private_sketch_n_clipped(sk);
    if (clipped > 0)
        fprintf(stderr, "%s: warning: %lld of %lld rows were outside the domain (%s of radius %g) and were clipped "
                "onto it (this count is not private and is not saved)\n", r->cmd, (long long)clipped,
                (long long)data.rows, DOMAINS[r->domain], r->radius);
    if (!r->f.quiet) {
        gram_private_info in;
        gram_private_sketch_info(sk, &in);
        char when[32];
        cli_format_seconds(seconds, when, sizeof when);
        fprintf(stderr, "%s: %s (%s), N=%lld D=%lld epsilon=%g delta=%g, %s noise of scale %.6g, %lld row%s "
                "clipped, in %s\n", r->cmd, SIMILARITIES[r->similarity], MECHANISMS[r->mechanism],
                (long long)data.rows, (long long)data.cols, r->epsilon, r->delta, in.noise, in.noise_scale,
                (long long)clipped, clipped == 1 ? "" : "s", when);
    }
done:
    gram_free(bytes);
    gram_private_sketch_destroy(sk);
    gram__matrix_free(&data);
    gram_context_destroy(ctx);
    return rc;
}

/* ---- query ------------------------------------------------------------------------------------- */

static int query_cmd(priv_args *r)
{
    gram_context *ctx = NULL;
    gram_private_sketch *sk = NULL;
    gram__matrix data = {0};
    double *out = NULL;
    int rc = load(r, r->f.threads, &ctx, &sk);
    if (rc) goto done;
    gram_private_info in;
    gram_private_sketch_info(sk, &in);
    if ((rc = cli_read_matrix(ctx, r->query_path, &data))) goto done;
    const int64_t M = data.rows;
    if (data.cols != in.dim && M > 0) {
        rc = cli_data_error("%s: the points have %lld column%s, but the sketch %s was fitted on d = %lld",
                            cli_msg_name(r->query_path), (long long)data.cols, data.cols == 1 ? "" : "s",
                            cli_msg_name(r->f.data_path), (long long)in.dim);
        goto done;
    }
    if (!(out = malloc((size_t)(M > 0 ? M : 1) * sizeof(double)))) {
        rc = cli_data_error("out of memory (%lld queries)", (long long)M);
        goto done;
    }
    gram_array Y = gram_array_f64(data.data, M, M > 0 ? in.dim : 0);
    gram_array O = gram_array_f64(out, M, 1);
    const double t0 = cli_progress_start();
    gram_status s = cli_interrupted() ? GRAM_ECANCELLED
                    : r->mean         ? gram_private_query_mean(ctx, sk, &Y, &O)
                                      : gram_private_query(ctx, sk, &Y, &O);
    cli_progress_done();
    const double seconds = cli_now() - t0;
    if (s) {
        rc = cli_lib_error(ctx, s, cli_msg_name(r->query_path));
        goto done;
    }
    const char *names[] = {r->mean ? "mean" : "sum"};
    cli_outputs outs = {.n = 0};
    if ((rc = cli_stage_matrix(ctx, &outs, r->out_path, out, M, 1, names)) || (rc = cli_commit(ctx, &outs))) goto done;
    if (in.test_noise)
        fprintf(stderr, "%s: warning: the sketch's noise came from a test seed: it is NOT private\n", r->cmd);
    if (!r->f.quiet) {
        char when[32];
        cli_format_seconds(seconds, when, sizeof when);
        fprintf(stderr, "%s: %lld quer%s of the %s sketch (epsilon=%g delta=%g) in %s\n", r->cmd, (long long)M,
                M == 1 ? "y" : "ies", SIMILARITIES[in.similarity], in.epsilon, in.delta, when);
    }
done:
    free(out);
    gram__matrix_free(&data);
    gram_private_sketch_destroy(sk);
    gram_context_destroy(ctx);
    return rc;
}

/* ---- info ------------------------------------------------------------------------------------- */

static int info_cmd(priv_args *r)
{
    gram_context *ctx = NULL;
    gram_private_sketch *sk = NULL;
    int rc = load(r, 1, &ctx, &sk);
    if (rc) goto done;
    gram_private_info in;
    gram_private_sketch_info(sk, &in);
    printf("similarity: %s\nmechanism: %s\nepsilon: %.17g\ndelta: %.17g\nneighbours: %s\nnoise: %s\n"
           "noise_scale: %.17g\nsensitivity: %s\ndomain: %s\nradius: %.17g\nd: %lld\nn: %.17g\n",
           SIMILARITIES[in.similarity], MECHANISMS[in.mechanism], in.epsilon, in.delta, NEIGHBOURS[in.neighbours],
           in.noise, in.noise_scale, in.sensitivity, DOMAINS[in.domain], in.radius, (long long)in.dim, in.n);
    if (in.similarity <= GRAM_PRIVATE_CAUCHY)
        printf("bandwidth: %.17g\ncomponents: %lld\nreduced_dim: %lld\n", in.bandwidth, (long long)in.n_components,
               (long long)in.reduced_dim);
    if (in.similarity == GRAM_PRIVATE_CAUCHY) printf("terms: %d\napprox_error: %.17g\n", (int)in.n_terms, in.approx_error);
    if (in.similarity >= GRAM_PRIVATE_L1) printf("levels: %d\n", (int)in.levels);
    if (in.similarity == GRAM_PRIVATE_L2) printf("components: %lld\n", (long long)in.n_components);
    if (in.similarity == GRAM_PRIVATE_LPP) printf("p: %.17g\n", in.p);
    printf("seed: %llu\ntest_noise: %s\n", (unsigned long long)in.seed,
           in.test_noise ? "yes (NOT private: the noise came from a fixed seed)" : "no");
    if (fflush(stdout) || ferror(stdout)) rc = cli_data_error("<stdout>: write error");
done:
    gram_private_sketch_destroy(sk);
    gram_context_destroy(ctx);
    return rc;
}

/* ---- dispatch -------------------------------------------------------------------------------- */

static int run(int which, const char *cmd, int argc, char **argv, const cli_option *opts, const char *help,
               int parse_only)
{
    priv_args r;
    memset(&r, 0, sizeof r);
    cli_fit_args_init(&r.f);
    r.which = which;
    r.cmd = cmd;
    r.similarity = -1;
    r.p = 1;
    int rc = priv_parse(&r, argc, argv, opts, help);
    if (rc == CLI_OPT_CONTINUE)
        rc = parse_only ? 0 : which == CMD_FIT ? fit_cmd(&r) : which == CMD_QUERY ? query_cmd(&r) : info_cmd(&r);
    cli_fit_args_free(&r.f);
    return rc;
}

int cli_private(int argc, char **argv, int parse_only)
{
    static const cli_option fit_opts[] = {
        CLI_SUBCOMMAND_OPTIONS,
        {"similarity", 0, 1, OPT_SIMILARITY},
        {"epsilon", 0, 1, OPT_EPSILON},
        {"delta", 0, 1, OPT_DELTA},
        {"radius", 0, 1, OPT_RADIUS},
        {"domain", 0, 1, OPT_DOMAIN},
        {"bandwidth", 0, 1, OPT_PRIV_BANDWIDTH},
        {"components", 0, 1, OPT_COMPONENTS},
        {"reduced-dim", 0, 1, OPT_REDUCED_DIM},
        {"levels", 0, 1, OPT_LEVELS},
        {"p", 0, 1, OPT_P},
        {"mechanism", 0, 1, OPT_MECHANISM},
        {"neighbours", 0, 1, OPT_NEIGHBOURS},
        {"seed", 0, 1, OPT_SEED},
        {"insecure-noise-seed", 0, 1, OPT_NOISE_SEED},
        {0, 0, 0, 0},
    };
    static const cli_option query_opts[] = {
        CLI_SUBCOMMAND_OPTIONS,
        {"mean", 0, 0, OPT_MEAN},
        {0, 0, 0, 0},
    };
    static const cli_option info_opts[] = {
        {"help", 'h', 0, OPT_HELP},
        {"version", 0, 0, OPT_VERSION},
        {0, 0, 0, 0},
    };
    const char *sub = argc > 1 ? argv[1] : "";
    if (!strcmp(sub, "fit")) return run(CMD_FIT, "gram private fit", argc - 1, argv + 1, fit_opts, FIT_HELP, parse_only);
    if (!strcmp(sub, "query"))
        return run(CMD_QUERY, "gram private query", argc - 1, argv + 1, query_opts, QUERY_HELP, parse_only);
    if (!strcmp(sub, "info"))
        return run(CMD_INFO, "gram private info", argc - 1, argv + 1, info_opts, INFO_HELP, parse_only);
    return cli_no_subcommand("gram private", argc, argv, PRIVATE_HELP, "fit, query or info");
}
