/* gram features: explicit feature maps. `fit` makes a map (random features from a kernel spec, or
 * Nyström landmarks from DATA's rows) and saves it as a map file (gram_features_save's format);
 * `transform` loads one and writes φ(DATA); `info` describes one. The numerics are
 * gram_features_*; this file parses, reads, checks shapes and writes. */
#include "cli.h"

#include <fcntl.h>
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
    "      --version            show the version and exit\n"                                      \
    "\n"                                                                                           \
    "Exit status: 0 success, 1 data or runtime error, 2 usage error,\n"                            \
    "130 interrupted.\n"

static const char FEATURES_HELP[] =
    "Usage: gram features fit DATA --kernel SPEC --method M --components R [OPTIONS] -o MAP\n"
    "       gram features transform MAP DATA [--dtype float32|float64] [-o OUT]\n"
    "       gram features info MAP\n"
    "\n"
    "Explicit feature maps phi with k(x, y) ~ phi(x).phi(y): 'fit' makes a map\n"
    "and saves it (a versioned, checksummed map file); 'transform' writes\n"
    "phi(DATA), N rows of R features; 'info' describes a map.\n"
    "\n"
    "Run 'gram features COMMAND --help' for a command's options.\n"
    "\n"
    "Exit status: 0 success, 1 data or runtime error, 2 usage error,\n"
    "130 interrupted.\n";

static const char FIT_HELP[] =
    "Usage: gram features fit DATA --kernel SPEC --method M --components R [OPTIONS] -o MAP\n"
    "\n"
    "Makes a feature map for DATA's dimension D (its columns) and saves it to MAP.\n"
    "Random maps depend on the kernel, M, D, R and the seed only; a Nystrom map\n"
    "takes its R landmarks from DATA's rows. DATA is a .npy or CSV file ('-' reads\n"
    "standard input).\n"
    "\n"
    "      --kernel SPEC        the kernel, e.g. 'rbf(lengthscale=1)',\n"
    "                           '2.0*matern32(lengthscale=[1,2,3])' (ARD),\n"
    "                           'polynomial(degree=3, coef0=1)'\n"
    "      --method M           rff, rff-phase, orf, sorf (shift-invariant kernels:\n"
    "                           random Fourier features; sorf gaussian only),\n"
    "                           positive, positive-orf, hyperbolic,\n"
    "                           hyperbolic-orf (FAVOR+: gaussian, softmax),\n"
    "                           arccos (the arc-cosine kernel), tensorsketch\n"
    "                           (polynomial, linear), nystrom (any kernel)\n"
    "      --components R       the number of features (even for rff, orf, sorf\n"
    "                           and hyperbolic*; a power of two for tensorsketch;\n"
    "                           at most N for nystrom)\n"
    "      --seed S             random seed, an integer in 0..2^64-1 (default 0)\n"
    "      --landmarks L        nystrom: uniform (default), kmeans++ or leverage\n"
    "  -o, --output MAP         the map file (required)\n" HELP_TAIL
    "\n"
    "A summary (method, kernel, D, R, seed, the time) goes to standard error. A\n"
    "kernel the method does not cover is an error naming the methods that do.\n"
    "\n"
    "Example:\n"
    "  gram features fit data/faithful.csv --kernel 'rbf(0.5)' --method orf \\\n"
    "      --components 256 --seed 7 -o faithful.map\n";

static const char TRANSFORM_HELP[] =
    "Usage: gram features transform MAP DATA [--dtype float32|float64] [-o OUT]\n"
    "\n"
    "phi(DATA) for a map from 'gram features fit': N rows of R features, bit for\n"
    "bit what the library's gram_features_transform gives. DATA is a .npy or CSV\n"
    "file of N points with the map's D columns ('-' reads standard input).\n"
    "\n"
    "      --dtype T            compute and write in float32 or float64 (default:\n"
    "                           float32 for a float32 .npy file, else float64)\n"
    "  -o, --output FILE        FILE.npy (of the dtype), FILE.csv, or a name with\n"
    "                           no suffix (CSV; another suffix is refused); '-':\n"
    "                           standard output (the default)\n" HELP_TAIL
    "\n"
    "The CSV header is phi0, phi1, ...\n"
    "\n"
    "Example:\n"
    "  gram features transform faithful.map data/faithful.csv -o phi.npy\n";

static const char INFO_HELP[] =
    "Usage: gram features info MAP\n"
    "\n"
    "Prints a map file's method, kernel, D, R and seed (and a Nystrom map's\n"
    "landmark method and rank) on standard output, one 'key: value' per line.\n"
    "\n"
    "  -h, --help               show this help and exit\n"
    "      --version            show the version and exit\n"
    "\n"
    "Exit status: 0 success, 1 data or runtime error, 2 usage error.\n";

/* ---- names ----------------------------------------------------------------------------------- */

static const char *const METHODS[] = {
    [GRAM_FEATURES_RFF] = "rff",
    [GRAM_FEATURES_RFF_PHASE] = "rff-phase",
    [GRAM_FEATURES_ORF] = "orf",
    [GRAM_FEATURES_SORF] = "sorf",
    [GRAM_FEATURES_POSITIVE] = "positive",
    [GRAM_FEATURES_POSITIVE_ORF] = "positive-orf",
    [GRAM_FEATURES_HYPERBOLIC] = "hyperbolic",
    [GRAM_FEATURES_HYPERBOLIC_ORF] = "hyperbolic-orf",
    [GRAM_FEATURES_TENSORSKETCH] = "tensorsketch",
    [GRAM_FEATURES_ARCCOS] = "arccos",
    [GRAM_FEATURES_NYSTROM] = "nystrom",
};
#define N_METHODS ((int)(sizeof METHODS / sizeof METHODS[0]))
#define METHOD_LIST                                                                                \
    "rff, rff-phase, orf, sorf, positive, positive-orf, hyperbolic, hyperbolic-orf, tensorsketch, arccos or " \
    "nystrom"

static const char *const LANDMARKS[] = {
    [GRAM_LANDMARKS_UNIFORM] = "uniform",
    [GRAM_LANDMARKS_KMEANSPP] = "kmeans++",
    [GRAM_LANDMARKS_LEVERAGE] = "leverage",
};

/* The method named s ('_' taken as '-'), or -1. */
static int method_of(const char *s)
{
    char buf[32];
    size_t n = strlen(s);
    if (n >= sizeof buf) return -1;
    for (size_t i = 0; i <= n; i++) buf[i] = s[i] == '_' ? '-' : s[i];
    for (int m = 0; m < N_METHODS; m++)
        if (!strcmp(buf, METHODS[m])) return m;
    return -1;
}

/* ---- arguments ------------------------------------------------------------------------------- */

enum { CMD_FIT = CLI_SUB_FIT, CMD_TRANSFORM = CLI_SUB_APPLY, CMD_INFO = CLI_SUB_INFO };

typedef struct feat_args {
    int which;
    const char *cmd;
    cli_fit_args f;          /* data_path (fit: DATA; transform, info: MAP), threads, quiet */
    const char *data_path;   /* transform: DATA */
    const char *kernel_spec, *out_path, *method_name, *landmarks_name;
    gram_kernel *kernel;     /* fit: parsed while the options are checked (owned) */
    int method;              /* -1: not given */
    gram_landmarks landmarks;
    int64_t R;
    int have_R;
    uint64_t seed;
    int dtype;               /* -1: the data's; else a gram_dtype */
} feat_args;

static int feat_option(void *self, int id, const char *opt, const char *value)
{
    feat_args *r = self;
    switch (id) {
    case OPT_OUTPUT: r->out_path = value; break;
    case OPT_KERNEL_SPEC: r->kernel_spec = value; break;
    case OPT_METHOD:
        if ((r->method = method_of(value)) < 0)
            return cli_usage_error(r->cmd, "%s: expected " METHOD_LIST ", got '%s'", opt, value);
        r->method_name = METHODS[r->method];
        break;
    case OPT_COMPONENTS:
        /* Any integer is the library's to judge (R = 0, odd, too large: a data error naming why);
         * only text that is no integer is a usage error. */
        if (!cli_parse_int64(value, &r->R))
            return cli_usage_error(r->cmd, "%s: expected the number of features (an integer), got '%s'", opt, value);
        r->have_R = 1;
        break;
    case OPT_SEED:
        if (!cli_parse_uint64(value, &r->seed))
            return cli_usage_error(r->cmd, "%s: expected an integer in 0..18446744073709551615, got '%s'", opt, value);
        break;
    case OPT_LANDMARKS: {
        int k = -1;
        for (int i = 0; i < 3; i++)
            if (!strcmp(value, LANDMARKS[i])) k = i;
        if (k < 0) return cli_usage_error(r->cmd, "%s: expected uniform, kmeans++ or leverage, got '%s'", opt, value);
        r->landmarks = (gram_landmarks)k;
        r->landmarks_name = value;
        break;
    }
    case OPT_DTYPE:
        if (!strcmp(value, "float32")) r->dtype = GRAM_FLOAT32;
        else if (!strcmp(value, "float64")) r->dtype = GRAM_FLOAT64;
        else return cli_usage_error(r->cmd, "%s: expected float32 or float64, got '%s'", opt, value);
        break;
    default: return cli_usage_error(r->cmd, "internal error: unhandled option '%s'", opt);
    }
    return CLI_OPT_CONTINUE;
}

/* Parses argv into r and checks what needs no data. Returns CLI_OPT_CONTINUE or an exit code. */
static int feat_parse(feat_args *r, int argc, char **argv, const cli_option *opts, const char *help)
{
    const cli_subcommand sc = {r->cmd, r->which, "MAP (a map file from 'gram features fit')", "DATA", feat_option, r};
    int rc = cli_subcommand_parse(&sc, &r->f, &r->data_path, &r->out_path, argc, argv, opts, help);
    if (rc != CLI_OPT_CONTINUE || r->which != CMD_FIT) return rc;
    if (!r->kernel_spec) return cli_usage_error(r->cmd, "missing --kernel SPEC (e.g. 'rbf(lengthscale=1)')");
    if (r->method < 0) return cli_usage_error(r->cmd, "missing --method M (" METHOD_LIST ")");
    if (!r->have_R) return cli_usage_error(r->cmd, "missing --components R (the number of features)");
    if (!r->out_path) return cli_usage_error(r->cmd, "missing -o MAP (the map file to write)");
    if (r->landmarks_name && r->method != GRAM_FEATURES_NYSTROM)
        return cli_usage_error(r->cmd, "--landmarks applies to --method nystrom only (got --method %s)", r->method_name);
    return cli_parse_kernel_spec(r->cmd, r->kernel_spec, &r->kernel);
}

/* Creates the context (threads: --threads, or 1) and loads MAP: an exit code. */
static int load(const feat_args *r, int threads, gram_context **ctx, gram_features **map)
{
    int rc = cli_context_create(r->cmd, threads, ctx);
    if (rc) return rc;
    gram_status s = gram_features_load(*ctx, r->f.data_path, map);
    return s ? cli_lib_error(*ctx, s, cli_msg_name(r->f.data_path)) : 0;
}

/* ---- fit --------------------------------------------------------------------------------------- */

static int fit_cmd(feat_args *r)
{
    gram_context *ctx = NULL;
    gram__matrix data = {0};
    gram_features *map = NULL;
    void *bytes = NULL;
    size_t size = 0;
    char *spec = NULL;
    int rc = cli_context_create(r->cmd, r->f.threads, &ctx);
    if (!rc) rc = cli_read_matrix(ctx, r->f.data_path, &data);
    if (rc) goto done;
    if (data.rows == 0 || data.cols == 0) {
        rc = cli_data_error("%s: no data", cli_msg_name(r->f.data_path));
        goto done;
    }
    const int64_t N = data.rows, D = data.cols, kd = gram_kernel_dim(r->kernel);
    if (kd && kd != D) {
        rc = cli_data_error("--kernel: the kernel's ARD lengthscales give D = %lld, but %s has %lld column%s",
                            (long long)kd, cli_msg_name(r->f.data_path), (long long)D, D == 1 ? "" : "s");
        goto done;
    }
    const double t0 = cli_progress_start();
    gram_status s;
    if (cli_interrupted()) {
        s = GRAM_ECANCELLED;
    } else if (r->method == GRAM_FEATURES_NYSTROM) {
        gram_array X = gram_array_f64(data.data, N, D);
        s = gram_features_nystrom(ctx, r->kernel, &X, r->R, r->landmarks, r->seed, &map);
    } else {
        s = gram_features_create(ctx, r->kernel, D, (gram_features_method)r->method, r->R, r->seed, &map);
    }
    cli_progress_done();
    const double seconds = cli_now() - t0;
    if (s) {
        rc = cli_lib_error(ctx, s, r->method == GRAM_FEATURES_NYSTROM ? cli_msg_name(r->f.data_path) : NULL);
        goto done;
    }
    /* Nothing is written before the map is complete. */
    if ((s = gram_features_to_bytes(ctx, map, &bytes, &size))) {
        rc = cli_lib_error(ctx, s, NULL);
        goto done;
    }
    cli_outputs outs = {.n = 0};
    if ((rc = cli_stage_text(ctx, &outs, r->out_path, bytes, size)) || (rc = cli_commit(ctx, &outs))) goto done;
    if (!r->f.quiet) {
        const size_t n = gram_kernel_spec(gram_features_kernel(map), NULL, 0);
        if ((spec = malloc(n + 1))) gram_kernel_spec(gram_features_kernel(map), spec, n + 1);
        char when[32];
        cli_format_seconds(seconds, when, sizeof when);
        fprintf(stderr, "%s: %s map, N=%lld D=%lld R=%lld seed=%llu", r->cmd, r->method_name, (long long)N,
                (long long)D, (long long)r->R, (unsigned long long)r->seed);
        if (r->method == GRAM_FEATURES_NYSTROM) fprintf(stderr, " landmarks=%s", LANDMARKS[r->landmarks]);
        fprintf(stderr, " in %s\n%s: kernel: %s\n", when, r->cmd, spec ? spec : "?");
    }
done:
    free(spec);
    gram_free(bytes);
    gram_features_destroy(map);
    gram__matrix_free(&data);
    gram_context_destroy(ctx);
    return rc;
}

/* ---- transform --------------------------------------------------------------------------------- */

/* Whether path is a regular .npy file of float32 values (its header read, nothing else): the
 * matrix reader converts every dtype to float64 and keeps no trace of it. Streams count as
 * float64. */
static int npy_is_float32(const char *path)
{
    struct stat sb;
    if (!strcmp(path, "-") || stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) return 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    char h[512];
    ssize_t n = read(fd, h, sizeof h - 1);
    close(fd);
    if (n < 10 || memcmp(h, "\x93NUMPY", 6) != 0) return 0;
    h[n] = '\0';
    for (ssize_t i = 0; i < n; i++)
        if (!h[i]) h[i] = ' ';
    const char *d = strstr(h + 10, "'descr'");
    if (!d || !(d = strchr(d + 7, ':'))) return 0;
    while (*++d == ' ') continue;
    return (d[0] == '\'' || d[0] == '"') && strchr("<>|=", d[1]) && d[2] == 'f' && d[3] == '4' && d[4] == d[0];
}

/* A float32 .npy file in memory: header (a multiple of 64 bytes, so the values that follow are
 * aligned) then rows × cols values, which the caller fills at *values. */
static char *npy_f32(int64_t rows, int64_t cols, float **values, size_t *size)
{
    char dict[128];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld), }",
                     (long long)rows, (long long)cols);
    size_t head = ((size_t)10 + (size_t)n + 1 + 63) / 64 * 64, data = (size_t)(rows * cols) * sizeof(float);
    char *b = malloc(head + (data ? data : 1));
    if (!b) return NULL;
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (char)((head - 10) & 0xff);
    b[9] = (char)((head - 10) >> 8);
    memcpy(b + 10, dict, (size_t)n);
    memset(b + 10 + n, ' ', head - 10 - (size_t)n - 1);
    b[head - 1] = '\n';
    *values = (float *)(void *)(b + head);
    *size = head + data;
    return b;
}

static int transform_cmd(feat_args *r)
{
    gram_context *ctx = NULL;
    gram_features *map = NULL;
    gram__matrix data = {0};
    double *out = NULL;
    float *x32 = NULL, *out32 = NULL;
    char *npy = NULL;
    size_t npy_size = 0;
    const char **names = NULL;
    char (*namebuf)[24] = NULL;
    int rc = load(r, r->f.threads, &ctx, &map);
    if (rc) goto done;
    const int64_t D = gram_features_dim(map), R = gram_features_n_components(map);
    const int want32 = r->dtype >= 0 ? r->dtype == GRAM_FLOAT32 : npy_is_float32(r->data_path);
    if ((rc = cli_read_matrix(ctx, r->data_path, &data))) goto done;
    const int64_t N = data.rows;
    if (data.cols != D && N > 0) {
        rc = cli_data_error("%s: the points have %lld column%s, but the map %s was made for D = %lld",
                            cli_msg_name(r->data_path), (long long)data.cols, data.cols == 1 ? "" : "s",
                            cli_msg_name(r->f.data_path), (long long)D);
        goto done;
    }
    int64_t NR;
    const int npy_out = gram__output_format(r->out_path) == GRAM__FMT_NPY;
    if (!gram__mul_i64(N, R, &NR) || NR > INT64_MAX / 16) {
        rc = cli_data_error("out of memory (%lld x %lld features)", (long long)N, (long long)R);
        goto done;
    }
    if (want32) {
        x32 = malloc((size_t)(N * D > 0 ? N * D : 1) * sizeof(float));
        if (npy_out) npy = npy_f32(N, R, &out32, &npy_size);
        else out32 = malloc((size_t)(NR > 0 ? NR : 1) * sizeof(float));
        if (!x32 || !out32) {
            rc = cli_data_error("out of memory (%lld x %lld features)", (long long)N, (long long)R);
            goto done;
        }
        /* float32 data were read as float64 exactly: this gives back the file's values */
        for (int64_t i = 0; i < N * D; i++) x32[i] = (float)data.data[i];
    }
    if (!npy_out || !want32) {
        out = malloc((size_t)(NR > 0 ? NR : 1) * sizeof(double));
        if (!out) {
            rc = cli_data_error("out of memory (%lld x %lld features)", (long long)N, (long long)R);
            goto done;
        }
    }
    gram_array X = want32 ? gram_array_f32(x32, N, D) : gram_array_f64(data.data, N, D);
    gram_array O = want32 ? gram_array_f32(out32, N, R) : gram_array_f64(out, N, R);
    const double t0 = cli_progress_start();
    gram_status s = cli_interrupted() ? GRAM_ECANCELLED : gram_features_transform(ctx, map, &X, &O);
    cli_progress_done();
    const double seconds = cli_now() - t0;
    if (s) {
        rc = cli_lib_error(ctx, s, cli_msg_name(r->data_path));
        goto done;
    }
    cli_outputs outs = {.n = 0};
    if (want32 && npy_out) {
        rc = cli_stage_text(ctx, &outs, r->out_path, npy, npy_size);
    } else {
        if (want32)
            for (int64_t i = 0; i < NR; i++) out[i] = (double)out32[i];
        if (!npy_out) {
            names = malloc((size_t)R * sizeof *names);
            namebuf = malloc((size_t)R * sizeof *namebuf);
            if (!names || !namebuf) {
                rc = cli_data_error("out of memory");
                goto done;
            }
            for (int64_t j = 0; j < R; j++) {
                snprintf(namebuf[j], sizeof namebuf[j], "phi%lld", (long long)j);
                names[j] = namebuf[j];
            }
        }
        rc = cli_stage_matrix(ctx, &outs, r->out_path, out, N, R, names);
    }
    if (rc || (rc = cli_commit(ctx, &outs))) goto done;
    if (!r->f.quiet) {
        char when[32];
        cli_format_seconds(seconds, when, sizeof when);
        fprintf(stderr, "%s: N=%lld D=%lld R=%lld %s in %s\n", r->cmd, (long long)N, (long long)D, (long long)R,
                want32 ? "float32" : "float64", when);
    }
done:
    free(names);
    free(namebuf);
    free(npy);
    if (!npy) free(out32);
    free(x32);
    free(out);
    gram__matrix_free(&data);
    gram_features_destroy(map);
    gram_context_destroy(ctx);
    return rc;
}

/* ---- info ------------------------------------------------------------------------------------- */

static int info_cmd(feat_args *r)
{
    gram_context *ctx = NULL;
    gram_features *map = NULL;
    int rc = load(r, 1, &ctx, &map);
    if (rc) goto done;
    const gram_features_method m = gram_features_method_of(map);
    const size_t n = gram_kernel_spec(gram_features_kernel(map), NULL, 0);
    char *spec = malloc(n + 1);
    if (!spec) {
        rc = cli_data_error("out of memory");
        goto done;
    }
    gram_kernel_spec(gram_features_kernel(map), spec, n + 1);
    printf("method: %s\nkernel: %s\nD: %lld\nR: %lld\nseed: %llu\n",
           (int)m >= 0 && (int)m < N_METHODS ? METHODS[m] : "?", spec, (long long)gram_features_dim(map),
           (long long)gram_features_n_components(map), (unsigned long long)gram_features_seed(map));
    free(spec);
    if (m == GRAM_FEATURES_NYSTROM) {
        const gram_landmarks how = gram_features_landmarks_of(map);
        printf("landmarks: %s\n", (int)how >= 0 && (int)how < 3 ? LANDMARKS[how] : "?");
    }
    if (fflush(stdout) || ferror(stdout)) rc = cli_data_error("<stdout>: write error");
done:
    gram_features_destroy(map);
    gram_context_destroy(ctx);
    return rc;
}

/* ---- dispatch -------------------------------------------------------------------------------- */

static int run(int which, const char *cmd, int argc, char **argv, const cli_option *opts, const char *help,
               int parse_only)
{
    feat_args r;
    memset(&r, 0, sizeof r);
    cli_fit_args_init(&r.f);
    r.which = which;
    r.cmd = cmd;
    r.method = -1;
    r.dtype = -1;
    int rc = feat_parse(&r, argc, argv, opts, help);
    if (rc == CLI_OPT_CONTINUE)
        rc = parse_only ? 0 : which == CMD_FIT ? fit_cmd(&r) : which == CMD_TRANSFORM ? transform_cmd(&r) : info_cmd(&r);
    gram_kernel_destroy(r.kernel);
    cli_fit_args_free(&r.f);
    return rc;
}

int cli_features(int argc, char **argv, int parse_only)
{
    static const cli_option fit_opts[] = {
        CLI_SUBCOMMAND_OPTIONS,
        {"kernel", 0, 1, OPT_KERNEL_SPEC},
        {"method", 0, 1, OPT_METHOD},
        {"components", 0, 1, OPT_COMPONENTS},
        {"seed", 0, 1, OPT_SEED},
        {"landmarks", 0, 1, OPT_LANDMARKS},
        {0, 0, 0, 0},
    };
    static const cli_option transform_opts[] = {
        CLI_SUBCOMMAND_OPTIONS,
        {"dtype", 0, 1, OPT_DTYPE},
        {0, 0, 0, 0},
    };
    static const cli_option info_opts[] = {
        {"help", 'h', 0, OPT_HELP},
        {"version", 0, 0, OPT_VERSION},
        {0, 0, 0, 0},
    };
    const char *sub = argc > 1 ? argv[1] : "";
    if (!strcmp(sub, "fit")) return run(CMD_FIT, "gram features fit", argc - 1, argv + 1, fit_opts, FIT_HELP, parse_only);
    if (!strcmp(sub, "transform"))
        return run(CMD_TRANSFORM, "gram features transform", argc - 1, argv + 1, transform_opts, TRANSFORM_HELP,
                   parse_only);
    if (!strcmp(sub, "info"))
        return run(CMD_INFO, "gram features info", argc - 1, argv + 1, info_opts, INFO_HELP, parse_only);
    return cli_no_subcommand("gram features", argc, argv, FEATURES_HELP, "fit, transform or info");
}
