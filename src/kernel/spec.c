/* The kernel spec language: a recursive-descent parser that emits the postfix program directly
 * (so a long chain "a + a + ... + a" costs linear time and no recursion), and the printer of the
 * canonical spec.
 *
 * Numbers are read and written independently of the C locale: the parser collects the digits
 * itself and hands strtod a string without a radix character ("12345e-4"), which every locale
 * reads the same way; the printer formats with %.17g and then forces the radix character to '.'.
 */
#include "kernel.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NESTING 200        /* '(' depth; bounds the parser's recursion */
#define MAX_LIST 1000000       /* values in one '[...]' list */
#define MAX_DIGITS 1000        /* significant digits in one number */
#define MAX_OPS (1 << 24)      /* ops in one spec */

static const struct {
    const char *name;
    gram_family family;
} NAMES[] = {
    {"gaussian", GRAM_GAUSSIAN},
    {"rbf", GRAM_GAUSSIAN},
    {"laplacian", GRAM_LAPLACIAN},
    {"matern12", GRAM_MATERN12},
    {"matern32", GRAM_MATERN32},
    {"matern52", GRAM_MATERN52},
    {"rational_quadratic", GRAM_RATIONAL_QUADRATIC},
    {"rq", GRAM_RATIONAL_QUADRATIC},
    {"cauchy", GRAM_CAUCHY},
    {"periodic", GRAM_PERIODIC},
    {"exp_sine_squared", GRAM_PERIODIC},
    {"tophat", GRAM_TOPHAT},
    {"epanechnikov", GRAM_EPANECHNIKOV},
    {"exponential", GRAM_EXPONENTIAL},
    {"triangular", GRAM_TRIANGULAR},
    {"cosine_window", GRAM_COSINE_WINDOW},
    {"neg_l2", GRAM_NEG_L2},
    {"laplacian_l1", GRAM_LAPLACIAN_L1},
    {"neg_l1", GRAM_NEG_L1},
    {"linear", GRAM_LINEAR},
    {"polynomial", GRAM_POLYNOMIAL},
    {"poly", GRAM_POLYNOMIAL},
    {"cosine", GRAM_COSINE},
    {"constant", GRAM_CONSTANT},
    {"white", GRAM_WHITE},
    {"matern", GRAM_MATERN},
    {"sigmoid", GRAM_SIGMOID},
    {"softmax", GRAM_SOFTMAX},
    {"arccos", GRAM_ARCCOS},
};
#define N_NAMES (sizeof NAMES / sizeof NAMES[0])

/* ASCII classes: <ctype.h> depends on the locale. */
static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

/* ---- parser ----------------------------------------------------------------------------------- */

typedef struct parser {
    gram_context *ctx;
    const char *s;
    size_t pos;
    int depth;
    gram__op *ops;
    int n_ops, cap_ops;
    unsigned char *nn; /* sign of each pending value: 1 when it is never negative (cap_ops entries) */
    int n_nn;
    gram__leaf *leaves;
    int n_leaves, cap_leaves;
    int64_t ard_dim; /* ARD dimension of the first ARD leaf, and where it was */
    size_t ard_pos;
} parser;

/* What an expression turned out to be: a kernel (already emitted) or a pending number. */
typedef struct item {
    int is_num;
    double num;
    size_t pos;
} item;

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static gram_status perr(parser *p, gram_status st, size_t pos, const char *fmt, ...)
{
    char msg[GRAM_MSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return gram__fail(p->ctx, st, "spec: position %zu: %s", pos + 1, msg);
}

static void skip_ws(parser *p)
{
    while (is_space(p->s[p->pos])) p->pos++;
}

/* A printable description of the character at pos, for messages. */
static const char *describe(parser *p, size_t pos, char buf[16])
{
    unsigned char c = (unsigned char)p->s[pos];
    if (!c) return "the end of the spec";
    if (c >= 32 && c < 127) snprintf(buf, 16, "'%c'", c);
    else snprintf(buf, 16, "byte 0x%02x", c);
    return buf;
}

static size_t word_len(const char *s)
{
    size_t n = 0;
    if (!is_alpha(s[0])) return 0;
    while (is_alpha(s[n]) || is_digit(s[n])) n++;
    return n;
}

static int word_is(const char *s, size_t n, const char *w)
{
    return strlen(w) == n && !strncmp(s, w, n);
}

/* nan, inf, infinity in any case: the spellings strtod would accept. */
static int is_nonfinite_word(const char *s, size_t n)
{
    char b[9];
    if (n > 8) return 0;
    for (size_t i = 0; i < n; i++) b[i] = lower(s[i]);
    b[n] = 0;
    return !strcmp(b, "nan") || !strcmp(b, "inf") || !strcmp(b, "infinity");
}

static int number_start(const char *s)
{
    if (s[0] == '+' || s[0] == '-') s++;
    return is_digit(s[0]) || (s[0] == '.' && is_digit(s[1]));
}

/* NUMBER := [+-] (digits [. digits] | . digits) [(e|E) [+-] digits], finite. */
static gram_status parse_number(parser *p, double *out)
{
    const char *s = p->s;
    size_t start = p->pos, i = p->pos;
    int neg = 0;
    if (s[i] == '+' || s[i] == '-') neg = s[i++] == '-';
    size_t w = word_len(s + i);
    if (w && is_nonfinite_word(s + i, w))
        return perr(p, GRAM_EPARSE, start, "'%.*s' is not allowed: numbers must be finite",
                    (int)(i + w - start), s + start);
    if (!(is_digit(s[i]) || (s[i] == '.' && is_digit(s[i + 1])))) {
        char b[16];
        return perr(p, GRAM_EPARSE, i, "expected a number, found %s", describe(p, i, b));
    }

    /* value = digits × 10^e10, digits without leading zeros */
    char buf[MAX_DIGITS + 32];
    size_t nd = 0;
    int64_t e10 = 0;
    for (; is_digit(s[i]); i++) {
        if (nd == 0 && s[i] == '0') continue;
        if (nd == MAX_DIGITS) goto too_long;
        buf[nd++] = s[i];
    }
    if (s[i] == '.') {
        for (i++; is_digit(s[i]); i++) {
            e10--;
            if (nd == 0 && s[i] == '0') continue;
            if (nd == MAX_DIGITS) goto too_long;
            buf[nd++] = s[i];
        }
    }
    if (s[i] == 'e' || s[i] == 'E') {
        size_t j = i + 1;
        int eneg = 0;
        if (s[j] == '+' || s[j] == '-') eneg = s[j++] == '-';
        if (!is_digit(s[j]))
            return perr(p, GRAM_EPARSE, j, "expected the digits of an exponent after '%c'", s[i]);
        int64_t ev = 0;
        for (; is_digit(s[j]); j++)
            if (ev < 1000000000) ev = ev * 10 + (s[j] - '0');
        e10 += eneg ? -ev : ev;
        i = j;
    }
    double v = 0.0;
    if (nd > 0) {
        /* Beyond ±10^6 the value is 0 or overflows anyway; clamping keeps the exponent short. */
        if (e10 > 1000000) e10 = 1000000;
        if (e10 < -1000000) e10 = -1000000;
        snprintf(buf + nd, sizeof buf - nd, "e%lld", (long long)e10);
        char *end;
        v = strtod(buf, &end);
        if (*end != '\0')
            return perr(p, GRAM_EPARSE, start, "could not convert the number '%.*s'",
                        (int)(i - start), s + start);
    }
    if (!isfinite(v))
        return perr(p, GRAM_EPARSE, start, "the number '%.*s' is out of range", (int)(i - start < 40 ? i - start : 40),
                    s + start);
    *out = neg ? -v : v;
    p->pos = i;
    return GRAM_OK;

too_long:
    return perr(p, GRAM_EPARSE, start, "a number has more than %d significant digits", MAX_DIGITS);
}

static gram_status emit_op(parser *p, gram__op_kind kind, double c)
{
    if (p->n_ops == p->cap_ops) {
        if (p->n_ops >= MAX_OPS)
            return perr(p, GRAM_EPARSE, p->pos, "the spec has more than %d terms", MAX_OPS);
        int cap = p->cap_ops ? 2 * p->cap_ops : 16;
        gram__op *o = realloc(p->ops, (size_t)cap * sizeof *o);
        if (o) p->ops = o;
        unsigned char *nn = o ? realloc(p->nn, (size_t)cap) : NULL;
        if (!o || !nn) return gram__fail(p->ctx, GRAM_ENOMEM, "spec: out of memory");
        p->nn = nn;
        p->cap_ops = cap;
    }
    gram__op *op = &p->ops[p->n_ops++];
    op->kind = kind;
    op->leaf = kind == GRAM_OP_LEAF ? p->n_leaves - 1 : 0;
    op->c = c;
    op->hyper = -1;
    if (kind == GRAM_OP_LEAF) p->nn[p->n_nn++] = (unsigned char)gram__leaf_nonnegative(&p->leaves[op->leaf]);
    else if (kind == GRAM_OP_ADD || kind == GRAM_OP_MUL) {
        p->n_nn--;
        p->nn[p->n_nn - 1] = (unsigned char)gram__op_nonneg(op, p->nn[p->n_nn - 1], p->nn[p->n_nn]);
    } else {
        p->nn[p->n_nn - 1] = (unsigned char)gram__op_nonneg(op, p->nn[p->n_nn - 1], 0);
    }
    return GRAM_OK;
}

/* Takes ownership of *L (freed on failure too). */
static gram_status emit_leaf(parser *p, gram__leaf *L)
{
    if (p->n_leaves == p->cap_leaves) {
        int cap = p->cap_leaves ? 2 * p->cap_leaves : 8;
        gram__leaf *l = cap <= MAX_OPS ? realloc(p->leaves, (size_t)cap * sizeof *l) : NULL;
        if (!l) {
            gram__leaf_free(L);
            return gram__fail(p->ctx, GRAM_ENOMEM, "spec: out of memory");
        }
        p->leaves = l;
        p->cap_leaves = cap;
    }
    p->leaves[p->n_leaves++] = *L;
    return emit_op(p, GRAM_OP_LEAF, 0.0);
}

/* NUMBER added to a kernel (or standing alone) is constant(NUMBER). */
static gram_status emit_constant(parser *p, const item *it)
{
    char where[48];
    snprintf(where, sizeof where, "spec: position %zu: ", it->pos + 1);
    gram__leaf L;
    gram_status s = gram__leaf_init(p->ctx, where, &L, GRAM_CONSTANT, 0, NULL, 1, &it->num);
    if (s) return s;
    return emit_leaf(p, &L);
}

enum { K_LENGTHSCALE, K_ALPHA, K_PERIOD, K_SIGMA0, K_DEGREE, K_GAMMA, K_COEF0, K_VALUE, K_NOISE, K_NU, N_KEYS };
static const char *const KEYS[N_KEYS] = {"lengthscale", "alpha", "period", "sigma0", "degree",
                                         "gamma",       "coef0", "value",  "noise",  "nu"};

static int key_index(const char *name)
{
    for (int i = 0; i < N_KEYS; i++)
        if (!strcmp(KEYS[i], name)) return i;
    return -1;
}

/* Does family f take key? Lengthscale for every family with a statistic, then its params. */
static int family_takes(gram_family f, int key)
{
    if (key == K_LENGTHSCALE) return gram__family_structure(f) != GRAM_STRUCT_CONST;
    for (int i = 0; i < gram__family_n_params(f); i++)
        if (!strcmp(gram__family_param_name(f, i), KEYS[key])) return 1;
    return 0;
}

static void family_keys(gram_family f, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = 0;
    for (int k = 0; k < N_KEYS; k++)
        if (family_takes(f, k) && n < size)
            n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? ", " : "", KEYS[k]);
}

typedef struct args {
    int given[N_KEYS];
    double v[N_KEYS];
    /* "<key>_bounds=": kind (GRAM__BOUND_*), values and the argument's position */
    int bkind[N_KEYS];
    double blo[N_KEYS], bhi[N_KEYS];
    size_t bpos[N_KEYS];
    double *ls; /* lengthscale values (one unless a list) */
    int64_t n_ls, cap_ls;
    double *lsb; /* "lengthscale_bounds=[[lo, hi], ...]": n_lsb / 2 pairs, interleaved */
    int64_t n_lsb, cap_lsb;
} args;

/* Appends k values to a growing array (*v, *n, *cap). */
static gram_status push_vals(parser *p, double **v, int64_t *n, int64_t *cap, const double *x, int k)
{
    if (*n + k > *cap) {
        int64_t c = *cap ? 2 * *cap : 8;
        double *l = realloc(*v, (size_t)c * sizeof *l);
        if (!l) return gram__fail(p->ctx, GRAM_ENOMEM, "spec: out of memory");
        *v = l;
        *cap = c;
    }
    for (int i = 0; i < k; i++) (*v)[(*n)++] = x[i];
    return GRAM_OK;
}

static gram_status push_ls(parser *p, args *a, double v)
{
    return push_vals(p, &a->ls, &a->n_ls, &a->cap_ls, &v, 1);
}

/* value := NUMBER | '[' NUMBER (',' NUMBER)* ']'   (lists only for lengthscale) */
static gram_status parse_value(parser *p, args *a, int key)
{
    gram_status s;
    char b[16];
    skip_ws(p);
    if (p->s[p->pos] == '[') {
        if (key != K_LENGTHSCALE)
            return perr(p, GRAM_EPARSE, p->pos, "%s takes a single number, not a list", KEYS[key]);
        p->pos++;
        for (;;) {
            skip_ws(p);
            double v;
            if ((s = parse_number(p, &v))) return s;
            if (a->n_ls == MAX_LIST)
                return perr(p, GRAM_EPARSE, p->pos, "a list has more than %d values", MAX_LIST);
            if ((s = push_ls(p, a, v))) return s;
            skip_ws(p);
            char c = p->s[p->pos];
            if (c == ']') {
                p->pos++;
                return GRAM_OK;
            }
            if (c != ',')
                return perr(p, GRAM_EPARSE, p->pos, "expected ',' or ']' in a list, found %s",
                            describe(p, p->pos, b));
            p->pos++;
        }
    }
    if (!number_start(p->s + p->pos) && !word_len(p->s + p->pos) && p->s[p->pos] != '+' &&
        p->s[p->pos] != '-')
        return perr(p, GRAM_EPARSE, p->pos, "expected a number%s, found %s",
                    key == K_LENGTHSCALE ? " or '['" : "", describe(p, p->pos, b));
    double v;
    if ((s = parse_number(p, &v))) return s;
    if (key == K_LENGTHSCALE) return push_ls(p, a, v);
    a->v[key] = v;
    return GRAM_OK;
}

/* pair := '[' NUMBER ',' (NUMBER | 'inf') ']' with 0 ≤ lower ≤ upper; p->pos is at '['. A lower
 * bound 0 and an upper bound inf (scikit-learn's np.inf) leave that side open. */
static gram_status parse_pair(parser *p, int key, double v[2])
{
    gram_status s;
    char b[16];
    size_t open = p->pos++;
    for (int i = 0; i < 2; i++) {
        skip_ws(p);
        size_t at = p->pos, iw = word_len(p->s + at);
        if (i == 1 && iw && (word_is(p->s + at, iw, "inf") || word_is(p->s + at, iw, "infinity"))) {
            v[i] = INFINITY;
            p->pos += iw;
        } else {
            if ((s = parse_number(p, &v[i]))) return s;
            if (!(v[i] >= 0.0))
                return perr(p, GRAM_EPARSE, at, "%s_bounds: bounds must be >= 0, got %g", KEYS[key], v[i]);
        }
        skip_ws(p);
        char want = i == 0 ? ',' : ']';
        if (p->s[p->pos] != want)
            return perr(p, GRAM_EPARSE, p->pos, "%s_bounds: expected '%c', found %s", KEYS[key], want,
                        describe(p, p->pos, b));
        p->pos++;
    }
    if (v[0] > v[1])
        return perr(p, GRAM_EPARSE, open, "%s_bounds: lower bound %g is above upper bound %g", KEYS[key],
                    v[0], v[1]);
    if (v[1] == 0.0)
        return perr(p, GRAM_EPARSE, open, "%s_bounds: the upper bound must be > 0", KEYS[key]);
    return GRAM_OK;
}

/* bounds := 'fixed' | pair | '[' pair (',' pair)* ']'   (after "<key>_bounds="; the list of pairs,
 * one per dimension as scikit-learn's (n_features, 2) array, only for lengthscale) */
static gram_status parse_bounds(parser *p, args *a, int key)
{
    gram_status s;
    char b[16];
    skip_ws(p);
    size_t w = word_len(p->s + p->pos);
    if (w && word_is(p->s + p->pos, w, "fixed")) {
        p->pos += w;
        a->bkind[key] = GRAM__BOUND_FIXED;
        return GRAM_OK;
    }
    if (p->s[p->pos] != '[')
        return perr(p, GRAM_EPARSE, p->pos, "%s_bounds takes [lower, upper] or fixed, found %s",
                    KEYS[key], describe(p, p->pos, b));
    size_t after = p->pos + 1;
    while (is_space(p->s[after])) after++;
    if (p->s[after] != '[') {
        double v[2];
        if ((s = parse_pair(p, key, v))) return s;
        a->bkind[key] = GRAM__BOUND_RANGE;
        a->blo[key] = v[0];
        a->bhi[key] = v[1];
        return GRAM_OK;
    }
    if (key != K_LENGTHSCALE)
        return perr(p, GRAM_EPARSE, after, "%s_bounds takes one pair [lower, upper], not a list of pairs",
                    KEYS[key]);
    p->pos = after;
    for (;;) {
        double v[2];
        if (a->n_lsb / 2 == MAX_LIST)
            return perr(p, GRAM_EPARSE, p->pos, "a list has more than %d pairs", MAX_LIST);
        if ((s = parse_pair(p, key, v))) return s;
        if ((s = push_vals(p, &a->lsb, &a->n_lsb, &a->cap_lsb, v, 2))) return s;
        skip_ws(p);
        char c = p->s[p->pos];
        if (c == ']') {
            p->pos++;
            break;
        }
        if (c != ',')
            return perr(p, GRAM_EPARSE, p->pos, "expected ',' or ']' in a list of bounds, found %s",
                        describe(p, p->pos, b));
        p->pos++;
        skip_ws(p);
        if (p->s[p->pos] != '[')
            return perr(p, GRAM_EPARSE, p->pos, "%s_bounds: expected '[' to open a pair, found %s",
                        KEYS[key], describe(p, p->pos, b));
    }
    a->bkind[key] = GRAM__BOUND_RANGE;
    a->blo[key] = a->lsb[0];
    a->bhi[key] = a->lsb[1];
    return GRAM_OK;
}

/* Puts the parsed bounds on the leaf, checking that each bounded parameter is a hyperparameter.
 * A value outside its bounds is allowed, as in scikit-learn: bounds only constrain learning. */
static gram_status apply_bounds(parser *p, const args *a, gram__leaf *L)
{
    for (int key = 0; key < N_KEYS; key++) {
        if (!a->bkind[key]) continue;
        int slot = -1;
        if (key == K_LENGTHSCALE) slot = 0;
        else
            for (int i = 0; i < gram__family_n_params(L->family); i++)
                if (!strcmp(gram__family_param_name(L->family, i), KEYS[key])) slot = 1 + i;
        int64_t nh = gram__leaf_n_hyper(L), j = 0;
        while (j < nh && gram__leaf_bound_slot(L, j) != slot) j++;
        if (slot < 0 || j == nh)
            return perr(p, GRAM_EPARSE, a->bpos[key],
                        "%s_bounds: %s of %s is not a hyperparameter (%s), so it takes no bounds",
                        KEYS[key], KEYS[key], gram__family_name(L->family),
                        key == K_DEGREE ? "an integer"
                        : key == K_NU   ? "fixed, as in scikit-learn"
                                        : "only positive values are learned");
        L->bound_kind[slot] = (unsigned char)a->bkind[key];
        if (a->bkind[key] != GRAM__BOUND_RANGE) continue;
        L->bound_lo[slot] = a->blo[key];
        L->bound_hi[slot] = a->bhi[key];
        int64_t pairs = key == K_LENGTHSCALE ? a->n_lsb / 2 : 0, n = L->n_scale;
        if (pairs <= 1) continue;
        if (pairs != n)
            return perr(p, GRAM_EPARSE, a->bpos[key],
                        "lengthscale_bounds has %lld pairs but %s has %lld lengthscale%s; give one "
                        "pair for all or one per lengthscale",
                        (long long)pairs, gram__family_name(L->family), (long long)n, n == 1 ? "" : "s");
        int same = 1;
        for (int64_t d = 1; d < n; d++)
            same &= a->lsb[2 * d] == a->lsb[0] && a->lsb[2 * d + 1] == a->lsb[1];
        if (same) continue; /* one pair for all: the canonical form */
        L->ls_lo = malloc((size_t)n * sizeof(double));
        L->ls_hi = malloc((size_t)n * sizeof(double));
        if (!L->ls_lo || !L->ls_hi) return gram__fail(p->ctx, GRAM_ENOMEM, "spec: out of memory");
        for (int64_t d = 0; d < n; d++) {
            L->ls_lo[d] = a->lsb[2 * d];
            L->ls_hi[d] = a->lsb[2 * d + 1];
        }
    }
    return GRAM_OK;
}

/* family := NAME [ '(' [ arg (',' arg)* ] ')' ]; p->pos is just after NAME. */
static gram_status parse_family(parser *p, gram_family f, size_t name_pos)
{
    gram_status s = GRAM_OK;
    args a;
    memset(&a, 0, sizeof a);
    char b[16], keys[128];
    const char *fname = gram__family_name(f);
    skip_ws(p);
    if (p->s[p->pos] == '(') {
        size_t open = p->pos++;
        skip_ws(p);
        if (p->s[p->pos] == ')') p->pos++;
        else
            for (int argi = 0;; argi++) {
                skip_ws(p);
                size_t arg_pos = p->pos;
                int key;
                size_t w = word_len(p->s + p->pos);
                size_t after = p->pos + w;
                while (is_space(p->s[after])) after++;
                if (w && p->s[after] == '=') {
                    char name[32];
                    snprintf(name, sizeof name, "%.*s", (int)(w < 31 ? w : 31), p->s + p->pos);
                    size_t nl = strlen(name);
                    int bounds = w < 31 && nl > 7 && !strcmp(name + nl - 7, "_bounds");
                    if (bounds) name[nl - 7] = 0;
                    key = w < 31 ? key_index(name) : -1;
                    family_keys(f, keys, sizeof keys);
                    if (key < 0) {
                        s = perr(p, GRAM_EPARSE, arg_pos, "unknown parameter '%.*s' (%s takes: %s)",
                                 (int)(w < 40 ? w : 40), p->s + p->pos, fname, keys);
                        goto done;
                    }
                    if (!family_takes(f, key)) {
                        s = perr(p, GRAM_EPARSE, arg_pos, "'%s' is not a parameter of %s (it takes: %s)",
                                 KEYS[key], fname, keys[0] ? keys : "nothing");
                        goto done;
                    }
                    p->pos = after + 1;
                    if (bounds) {
                        if (a.bkind[key]) {
                            s = perr(p, GRAM_EPARSE, arg_pos, "%s_bounds given twice", KEYS[key]);
                            goto done;
                        }
                        a.bpos[key] = arg_pos;
                        if ((s = parse_bounds(p, &a, key))) goto done;
                        goto next_arg;
                    }
                } else {
                    if (w && !is_nonfinite_word(p->s + p->pos, w)) {
                        s = perr(p, GRAM_EPARSE, after, "expected '=' after '%.*s'",
                                 (int)(w < 40 ? w : 40), p->s + p->pos);
                        goto done;
                    }
                    if (argi > 0) {
                        s = perr(p, GRAM_EPARSE, arg_pos,
                                 "only the first argument may be positional; name this one "
                                 "(key=value)");
                        goto done;
                    }
                    key = gram__family_structure(f) == GRAM_STRUCT_CONST
                              ? key_index(gram__family_param_name(f, 0))
                              : K_LENGTHSCALE;
                }
                if (a.given[key]) {
                    s = perr(p, GRAM_EPARSE, arg_pos, "%s given twice", KEYS[key]);
                    goto done;
                }
                a.given[key] = 1;
                if ((s = parse_value(p, &a, key))) goto done;
            next_arg:
                skip_ws(p);
                char c = p->s[p->pos];
                if (c == ')') {
                    p->pos++;
                    break;
                }
                if (c != ',') {
                    s = perr(p, GRAM_EPARSE, p->pos,
                             "expected ',' or ')' after an argument of %s (opened at position %zu), "
                             "found %s",
                             fname, open + 1, describe(p, p->pos, b));
                    goto done;
                }
                p->pos++;
            }
    }

    {
        double params[GRAM__MAX_PARAMS];
        int np = gram__family_n_params(f);
        for (int i = 0; i < np; i++) {
            int key = key_index(gram__family_param_name(f, i));
            params[i] = a.given[key] ? a.v[key] : gram__family_param_default(f, i);
        }
        char where[48];
        snprintf(where, sizeof where, "spec: position %zu: ", name_pos + 1);
        gram__leaf L;
        if ((s = gram__leaf_init(p->ctx, where, &L, f, a.n_ls, a.ls, np, params))) goto done;
        if ((s = apply_bounds(p, &a, &L))) {
            gram__leaf_free(&L);
            goto done;
        }
        if (a.n_ls > 1) {
            if (p->ard_dim && p->ard_dim != a.n_ls) {
                gram__leaf_free(&L);
                s = perr(p, GRAM_ESHAPE, name_pos,
                         "%s has %lld lengthscales but the kernel at position %zu has %lld; ARD "
                         "dimensions must agree",
                         fname, (long long)a.n_ls, p->ard_pos + 1, (long long)p->ard_dim);
                goto done;
            }
            p->ard_dim = a.n_ls;
            p->ard_pos = name_pos;
        }
        s = emit_leaf(p, &L);
    }
done:
    free(a.ls);
    free(a.lsb);
    return s;
}

static gram_status parse_expr(parser *p, item *out);

/* primary := NUMBER | family | '(' expr ')' */
static gram_status parse_primary(parser *p, item *out)
{
    gram_status s;
    char b[16];
    skip_ws(p);
    const char *s0 = p->s + p->pos;
    out->is_num = 0;
    out->pos = p->pos;
    if (*s0 == '(') {
        size_t open = p->pos;
        if (p->depth >= MAX_NESTING)
            return perr(p, GRAM_EPARSE, p->pos, "parentheses nested deeper than %d", MAX_NESTING);
        p->depth++;
        p->pos++;
        if ((s = parse_expr(p, out))) return s;
        skip_ws(p);
        if (p->s[p->pos] != ')')
            return perr(p, GRAM_EPARSE, p->pos, "expected ')' to close the '(' at position %zu, found %s",
                        open + 1, describe(p, p->pos, b));
        p->pos++;
        p->depth--;
        return GRAM_OK;
    }
    if (number_start(s0) || ((*s0 == '+' || *s0 == '-') && word_len(s0 + 1))) {
        out->is_num = 1;
        return parse_number(p, &out->num);
    }
    size_t w = word_len(s0);
    if (w) {
        if (is_nonfinite_word(s0, w))
            return perr(p, GRAM_EPARSE, p->pos, "'%.*s' is not allowed: numbers must be finite",
                        (int)w, s0);
        for (size_t i = 0; i < N_NAMES; i++)
            if (word_is(s0, w, NAMES[i].name)) {
                size_t name_pos = p->pos;
                p->pos += w;
                return parse_family(p, NAMES[i].family, name_pos);
            }
        char known[400];
        size_t n = 0;
        for (size_t i = 0; i < N_NAMES && n < sizeof known; i++)
            n += (size_t)snprintf(known + n, sizeof known - n, "%s%s", i ? ", " : "", NAMES[i].name);
        return perr(p, GRAM_EPARSE, p->pos, "unknown kernel '%.*s' (known: %s)", (int)(w < 40 ? w : 40),
                    s0, known);
    }
    if (!*s0) return perr(p, GRAM_EPARSE, p->pos, "expected a kernel, a number or '(', but the spec ends");
    return perr(p, GRAM_EPARSE, p->pos, "expected a kernel, a number or '(', found %s",
                describe(p, p->pos, b));
}

/* factor := primary ('^' NUMBER)*: a power of a kernel (a number to a power folds). */
static gram_status parse_factor(parser *p, item *out)
{
    gram_status s;
    if ((s = parse_primary(p, out))) return s;
    for (;;) {
        skip_ws(p);
        if (p->s[p->pos] != '^') return GRAM_OK;
        size_t caret = p->pos++;
        skip_ws(p);
        double e;
        if ((s = parse_number(p, &e))) return s;
        if (out->is_num) {
            double v = pow(out->num, e);
            if (!isfinite(v))
                return perr(p, GRAM_EPARSE, caret, "%g^%g is not a finite real number", out->num, e);
            out->num = v;
            continue;
        }
        const char *why = gram__pow_refusal(e, p->nn[p->n_nn - 1]);
        if (why) return perr(p, GRAM_EPARSE, caret, "^%g: %s", e, why);
        if ((s = emit_op(p, GRAM_OP_POW, e))) return s;
    }
}

/* term := factor ('*' factor)*; numbers fold, number × kernel is a scale. */
static gram_status parse_term(parser *p, item *out)
{
    gram_status s;
    if ((s = parse_factor(p, out))) return s;
    for (;;) {
        skip_ws(p);
        if (p->s[p->pos] != '*') return GRAM_OK;
        size_t star = p->pos++;
        item r;
        if ((s = parse_factor(p, &r))) return s;
        if (out->is_num && r.is_num) {
            out->num *= r.num;
            if (!isfinite(out->num))
                return perr(p, GRAM_EPARSE, star, "the product of the numbers overflows");
        } else if (out->is_num) {
            if ((s = emit_op(p, GRAM_OP_SCALE, out->num))) return s;
            out->is_num = 0;
        } else if (r.is_num) {
            if ((s = emit_op(p, GRAM_OP_SCALE, r.num))) return s;
        } else if ((s = emit_op(p, GRAM_OP_MUL, 0.0))) {
            return s;
        }
    }
}

/* expr := term ('+' term)*; a number added to anything becomes constant(number). */
static gram_status parse_expr(parser *p, item *out)
{
    gram_status s;
    if ((s = parse_term(p, out))) return s;
    for (;;) {
        skip_ws(p);
        if (p->s[p->pos] != '+') return GRAM_OK;
        p->pos++;
        if (out->is_num) {
            if ((s = emit_constant(p, out))) return s;
            out->is_num = 0;
        }
        item r;
        if ((s = parse_term(p, &r))) return s;
        if (r.is_num && (s = emit_constant(p, &r))) return s;
        if ((s = emit_op(p, GRAM_OP_ADD, 0.0))) return s;
    }
}

gram_status gram_kernel_parse(gram_context *ctx, const char *spec, gram_kernel **out)
{
    gram__clear(ctx);
    if (!out) return gram__fail(ctx, GRAM_EINVAL, "gram_kernel_parse: out is NULL");
    *out = NULL;
    if (!spec) return gram__fail(ctx, GRAM_EINVAL, "gram_kernel_parse: spec is NULL");

    parser p;
    memset(&p, 0, sizeof p);
    p.ctx = ctx;
    p.s = spec;
    gram_status s;
    item it;
    char b[16];
    skip_ws(&p);
    if (!spec[p.pos]) {
        s = perr(&p, GRAM_EPARSE, p.pos, "empty spec");
        goto fail;
    }
    if ((s = parse_expr(&p, &it))) goto fail;
    skip_ws(&p);
    if (spec[p.pos]) {
        if (spec[p.pos] == ')') s = perr(&p, GRAM_EPARSE, p.pos, "unmatched ')'");
        else
            s = perr(&p, GRAM_EPARSE, p.pos, "unexpected %s (expected '+', '*', '^' or the end of the spec)",
                     describe(&p, p.pos, b));
        goto fail;
    }
    if (it.is_num && (s = emit_constant(&p, &it))) goto fail;
    free(p.nn);
    p.nn = NULL;

    gram_kernel *k = calloc(1, sizeof *k);
    if (!k) {
        s = gram__fail(ctx, GRAM_ENOMEM, "spec: out of memory");
        goto fail;
    }
    k->ops = p.ops;
    k->n_ops = p.n_ops;
    k->leaves = p.leaves;
    k->n_leaves = p.n_leaves;
    if ((s = gram__kernel_finish(ctx, k))) return s; /* finish destroys k, and so the arrays */
    *out = k;
    return GRAM_OK;

fail:
    for (int i = 0; i < p.n_leaves; i++) gram__leaf_free(&p.leaves[i]);
    free(p.leaves);
    free(p.ops);
    free(p.nn);
    return s;
}

/* ---- printer ---------------------------------------------------------------------------------- */

typedef struct writer {
    char *buf;
    size_t size, len;
} writer;

static void put(writer *w, const char *s)
{
    for (; *s; s++, w->len++)
        if (w->len + 1 < w->size) w->buf[w->len] = *s;
}

/* %.17g with '.' as the radix character whatever the locale: keep digits, signs and the
 * exponent's 'e'; any other run of bytes is the locale's (possibly multi-byte) radix. */
static void put_num(writer *w, double v)
{
    char tmp[64], out[64];
    int n = snprintf(tmp, sizeof tmp, "%.17g", v);
    size_t m = 0;
    for (int i = 0; i < n && m + 1 < sizeof out; i++) {
        char c = tmp[i];
        if (is_digit(c) || c == '-' || c == '+' || c == 'e') out[m++] = c;
        else {
            out[m++] = '.';
            while (i + 1 < n && !(is_digit(tmp[i + 1]) || tmp[i + 1] == 'e')) i++;
        }
    }
    out[m] = 0;
    put(w, out);
}

static void put_pair(writer *w, double lo, double hi)
{
    put(w, "[");
    put_num(w, lo);
    put(w, ", ");
    if (isinf(hi)) put(w, "inf");
    else put_num(w, hi);
    put(w, "]");
}

static void put_bounds(writer *w, const gram__leaf *L, int slot, const char *name)
{
    if (L->bound_kind[slot] == GRAM__BOUND_DEFAULT) return;
    put(w, ", ");
    put(w, name);
    if (L->bound_kind[slot] == GRAM__BOUND_FIXED) {
        put(w, "_bounds=fixed");
        return;
    }
    put(w, "_bounds=");
    if (slot == 0 && L->ls_lo) {
        put(w, "[");
        for (int64_t d = 0; d < L->n_scale; d++) {
            if (d) put(w, ", ");
            put_pair(w, L->ls_lo[d], L->ls_hi[d]);
        }
        put(w, "]");
    } else {
        put_pair(w, L->bound_lo[slot], L->bound_hi[slot]);
    }
}

static void put_leaf(writer *w, const gram__leaf *L)
{
    put(w, gram__family_name(L->family));
    put(w, "(");
    int first = 1;
    if (L->structure != GRAM_STRUCT_CONST) {
        put(w, "lengthscale=");
        if (L->n_scale > 1) {
            put(w, "[");
            for (int64_t d = 0; d < L->n_scale; d++) {
                if (d) put(w, ", ");
                put_num(w, L->lengthscale[d]);
            }
            put(w, "]");
        } else {
            put_num(w, L->lengthscale[0]);
        }
        first = 0;
        put_bounds(w, L, 0, "lengthscale");
    }
    for (int i = 0; i < gram__family_n_params(L->family); i++) {
        const char *name = gram__family_param_name(L->family, i);
        double v = 0.0;
        switch (L->family) {
        case GRAM_RATIONAL_QUADRATIC: v = L->alpha; break;
        case GRAM_PERIODIC: v = L->period; break;
        case GRAM_LINEAR: v = L->sigma0; break;
        case GRAM_POLYNOMIAL: v = i == 0 ? (double)L->degree : i == 1 ? L->gamma : L->coef0; break;
        case GRAM_CONSTANT: v = L->value; break;
        case GRAM_WHITE: v = L->noise; break;
        case GRAM_MATERN: v = L->nu; break;
        case GRAM_SIGMOID: v = i == 0 ? L->gamma : L->coef0; break;
        case GRAM_ARCCOS: v = (double)L->degree; break;
        default: break;
        }
        if (!first) put(w, ", ");
        first = 0;
        put(w, name);
        put(w, "=");
        put_num(w, v);
        put_bounds(w, L, 1 + i, name);
    }
    put(w, ")");
}

/* Infix from postfix without recursion (programs can be long left-deep chains). For each op,
 * start[i] is the first op of its subtree. The text of a binary node's operator goes right before
 * its right subtree; a parenthesised subtree opens before its first op and closes after its last.
 * Parentheses keep the program's exact shape: a*(b*c), a*(b*2) and (a+b)*2 need them. */
size_t gram_kernel_spec(const gram_kernel *k, char *buf, size_t size)
{
    writer w = {buf, buf ? size : 0, 0};
    if (!k || k->n_ops < 1) {
        if (w.size) buf[0] = 0;
        return 0;
    }
    int n = k->n_ops;
    int *start = malloc((size_t)n * (2 * sizeof(int) + 2));
    if (!start) {
        if (w.size) buf[0] = 0;
        return 0; /* out of memory: the only way this can fail */
    }
    int *open = start + n;
    char *sym = (char *)(open + n), *paren = sym + n;
    memset(open, 0, (size_t)n * sizeof(int));
    memset(sym, 0, (size_t)n * 2);
    for (int i = 0; i < n; i++) {
        const gram__op *op = &k->ops[i];
        if (op->kind == GRAM_OP_LEAF) {
            start[i] = i;
        } else if (op->kind == GRAM_OP_SCALE) {
            start[i] = start[i - 1];
            paren[i - 1] |= k->ops[i - 1].kind == GRAM_OP_ADD;
        } else if (op->kind == GRAM_OP_POW) { /* binds tighter than '*'; left-associative */
            start[i] = start[i - 1];
            paren[i - 1] |= k->ops[i - 1].kind != GRAM_OP_LEAF && k->ops[i - 1].kind != GRAM_OP_POW;
        } else {
            int right = i - 1, left = start[right] - 1;
            start[i] = start[left];
            sym[start[right]] = op->kind == GRAM_OP_ADD ? '+' : '*';
            if (op->kind == GRAM_OP_ADD) {
                paren[right] |= k->ops[right].kind == GRAM_OP_ADD;
            } else {
                paren[left] |= k->ops[left].kind == GRAM_OP_ADD;
                paren[right] |= k->ops[right].kind != GRAM_OP_LEAF;
            }
        }
    }
    for (int i = 0; i < n; i++)
        if (paren[i]) open[start[i]]++;
    for (int i = 0; i < n; i++) {
        const gram__op *op = &k->ops[i];
        if (op->kind == GRAM_OP_LEAF) {
            if (sym[i]) put(&w, sym[i] == '+' ? " + " : "*");
            for (int j = 0; j < open[i]; j++) put(&w, "(");
            put_leaf(&w, &k->leaves[op->leaf]);
        } else if (op->kind == GRAM_OP_SCALE) {
            put(&w, "*");
            put_num(&w, op->c);
        } else if (op->kind == GRAM_OP_POW) {
            put(&w, "^");
            put_num(&w, op->c);
        }
        if (paren[i]) put(&w, ")");
    }
    free(start);
    if (w.size) buf[w.len < w.size ? w.len : w.size - 1] = 0;
    return w.len;
}
