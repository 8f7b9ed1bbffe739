/* csv: delimited text (RFC 4180 quoting) to a float64 matrix and back.
 *
 * Reading: '#' comment lines and blank lines are skipped; LF, CRLF and lone CR end lines; a
 * UTF-8 byte-order mark is ignored; the delimiter is detected from the first records (the
 * candidate among ',', ';', tab and blank runs that splits them into the same number of fields
 * >= 2) unless given; fields may be quoted ("a,b", doubled "" for a quote, line breaks inside),
 * and blanks around a field are dropped. The first record is a header when asked to be, or, when
 * detecting, when one of its fields is not a number. Numbers are read with strtod in the C locale
 * (correctly rounded; "nan" and "inf" are numbers here: the engine rejects them later with their
 * row and column).
 *
 * Messages give "line L" (1-based physical line of the input, counting header, comments and blank
 * lines; a record's first line when a quoted field spans several) and "column C" (1-based field
 * number within the record).
 *
 * Memory: the caller holds the whole text; the values go into one array sized from the number
 * of lines left (never more than 4 bytes of doubles per byte of text, since every value takes at
 * least one character and one separator), grown only if that estimate were ever short. So the
 * peak is the text plus the values, not two copies of either. */
#define _POSIX_C_SOURCE 200809L

#include "io_internal.h"

#include <string.h>

typedef struct csv_field {
    const char *s;
    size_t len;
    bool quoted;
} csv_field;

typedef struct csv {
    gram_context *ctx;
    const char *name;
    const char *p, *end;
    int64_t line;     /* line of *p */
    int64_t rec_line; /* line where the last record began */
    char delim;
    bool ws;          /* fields separated by runs of blanks */
    csv_field *f;
    size_t nf, capf;
} csv;

static bool is_blank(char c) { return c == ' ' || c == '\t'; }
static bool is_eol(char c) { return c == '\n' || c == '\r'; }

/* p is at '\n' or '\r': the position after that line ending. */
static const char *eat_eol(const char *p, const char *end)
{
    if (*p++ == '\r' && p < end && *p == '\n') p++;
    return p;
}

/* From the start of a line, skips blank and comment lines: the start of the next record, or end. */
static const char *skip_noise(const char *p, const char *end, int64_t *line)
{
    while (p < end) {
        const char *q = p;
        while (q < end && is_blank(*q)) q++;
        if (q < end && *q == '#')
            while (q < end && !is_eol(*q)) q++;
        else if (q < end && !is_eol(*q))
            return p;
        if (q == end) return end;
        p = eat_eol(q, end);
        (*line)++;
    }
    return p;
}

/* ---- delimiter detection -------------------------------------------------------------------- */

/* For the record at p: counts of ',', ';', '\t' outside quotes and of blank-separated tokens
 * (c[3]); returns the start of the line after the record. */
static const char *count_record(const char *p, const char *end, int64_t c[4])
{
    c[0] = c[1] = c[2] = c[3] = 0;
    bool inq = false, in_token = false;
    while (p < end) {
        char ch = *p;
        if (inq) {
            if (ch == '"') {
                if (p + 1 < end && p[1] == '"') p++;
                else inq = false;
            }
            p++;
            continue;
        }
        if (is_eol(ch)) return eat_eol(p, end);
        if (ch == '"') inq = true;
        else if (ch == ',') c[0]++;
        else if (ch == ';') c[1]++;
        else if (ch == '\t') c[2]++;
        if (is_blank(ch)) in_token = false;
        else if (!in_token) {
            c[3]++;
            in_token = true;
        }
        p++;
    }
    return p;
}

static char detect_delim(const char *p, const char *end)
{
    static const char cand[4] = {',', ';', '\t', ' '};
    int64_t fields[4] = {0, 0, 0, 0}, line = 0;
    bool same[4] = {true, true, true, true};
    int nrec = 0;
    p = skip_noise(p, end, &line);
    while (p < end && nrec < 32) {
        int64_t c[4];
        p = count_record(p, end, c);
        for (int k = 0; k < 4; k++) {
            int64_t nf = k == 3 ? c[3] : c[k] + 1;
            if (nrec == 0) fields[k] = nf;
            else if (fields[k] != nf) same[k] = false;
        }
        nrec++;
        p = skip_noise(p, end, &line);
    }
    int best = -1;
    for (int k = 0; k < 4; k++)
        if (same[k] && fields[k] >= 2 && (best < 0 || fields[k] > fields[best])) best = k;
    if (best >= 0) return cand[best];
    /* No ',', ';' or tab anywhere: one column, whose values or name may hold blanks. */
    if (same[0] && same[1] && same[2] && fields[0] == 1 && fields[1] == 1 && fields[2] == 1) return ',';
    /* Nothing splits the records evenly: take what splits the first record most, so the error
     * that follows is "expected N fields, found M" on the line at fault. */
    for (int k = 0; k < 4; k++)
        if (fields[k] >= 2 && (best < 0 || fields[k] > fields[best])) best = k;
    return best >= 0 ? cand[best] : ',';
}

/* ---- records -------------------------------------------------------------------------------- */

static gram_status push_field(csv *P, const char *s, size_t len, bool quoted)
{
    if (P->nf == P->capf) {
        size_t ncap = P->capf ? P->capf * 2 : 16;
        csv_field *nf = gram__alloc(ncap * sizeof *nf);
        if (!nf) return gram__fail(P->ctx, GRAM_ENOMEM, "%s: out of memory splitting line %lld", P->name,
                                   (long long)P->rec_line);
        if (P->nf) memcpy(nf, P->f, P->nf * sizeof *nf);
        gram__free(P->f);
        P->f = nf;
        P->capf = ncap;
    }
    P->f[P->nf++] = (csv_field){s, len, quoted};
    return GRAM_OK;
}

/* Splits the record at P->p (a record start, after skip_noise) into P->f and moves past it. */
static gram_status parse_record(csv *P)
{
    const char *p = P->p, *end = P->end;
    const char d = P->delim;
    const bool ws = P->ws;
    gram_status st;
    P->nf = 0;
    P->rec_line = P->line;
    for (;;) {
        while (p < end && is_blank(*p) && (ws || *p != d)) p++;
        if (p < end && *p == '"') {
            int64_t open_line = P->line;
            const char *s = ++p;
            for (;;) {
                if (p == end)
                    return gram__fail(P->ctx, GRAM_EFORMAT, "%s: line %lld: a quoted field opened on this line is never closed",
                                      P->name, (long long)open_line);
                if (*p == '"') {
                    if (p + 1 < end && p[1] == '"') {
                        p += 2;
                        continue;
                    }
                    break;
                }
                if (*p == '\n' || (*p == '\r' && !(p + 1 < end && p[1] == '\n'))) P->line++;
                p++;
            }
            if ((st = push_field(P, s, (size_t)(p - s), true))) return st;
            const char *q = ++p;
            while (p < end && is_blank(*p) && (ws || *p != d)) p++;
            if (p < end && !is_eol(*p) && (ws ? p == q : *p != d))
                return gram__fail(P->ctx, GRAM_EFORMAT, "%s: line %lld, column %lld: unexpected text after a closing quote",
                                  P->name, (long long)P->line, (long long)P->nf);
        } else {
            const char *s = p;
            if (ws)
                while (p < end && !is_blank(*p) && !is_eol(*p)) p++;
            else
                while (p < end && *p != d && !is_eol(*p)) p++;
            const char *e = p;
            while (e > s && is_blank(e[-1])) e--; /* e[-1] == d cannot happen: the scan stopped at d */
            if ((st = push_field(P, s, (size_t)(e - s), false))) return st;
        }
        if (ws) {
            while (p < end && is_blank(*p)) p++;
            if (p == end || is_eol(*p)) break;
            continue;
        }
        if (p < end && *p == d) {
            p++;
            continue;
        }
        break;
    }
    if (p < end) {
        p = eat_eol(p, end);
        P->line++;
    }
    P->p = p;
    return GRAM_OK;
}

/* Line breaks left in [p, end), plus one: at least the number of records there. */
static int64_t count_lines(const char *p, const char *end)
{
    int64_t n = 1;
    for (; p < end; p++)
        if (*p == '\n' || (*p == '\r' && !(p + 1 < end && p[1] == '\n'))) n++;
    return n;
}

/* ---- values --------------------------------------------------------------------------------- */

typedef struct values {
    double *v;
    int64_t rows, cols, cap; /* cap in values */
    int64_t max_bytes;       /* the read options' limit on the values as float64 (0: none) */
} values;

static gram_status values_over_limit(csv *P, const values *V)
{
    return gram__fail(P->ctx, GRAM_EOVERFLOW, "%s: line %lld: the values take more than the limit of %lld bytes as float64",
                      P->name, (long long)P->rec_line, (long long)V->max_bytes);
}

static gram_status values_row(csv *P, values *V)
{
    if ((int64_t)P->nf != V->cols)
        return gram__fail(P->ctx, GRAM_EFORMAT, "%s: line %lld: expected %lld fields, found %lld", P->name,
                          (long long)P->rec_line, (long long)V->cols, (long long)P->nf);
    int64_t at = V->rows * V->cols; /* ≤ cap, so no overflow */
    if (V->cap - at < V->cols) {
        int64_t ncap;
        size_t bytes;
        if (!gram__mul_i64(V->cap > 0 ? V->cap : V->cols, 2, &ncap) || !gram__bytes(ncap, sizeof(double), &bytes))
            return gram__fail(P->ctx, GRAM_EOVERFLOW, "%s: too many values", P->name);
        if (V->max_bytes > 0 && (int64_t)bytes > V->max_bytes) {
            ncap = V->max_bytes / (int64_t)sizeof(double);
            if (ncap - at < V->cols) return values_over_limit(P, V);
            bytes = (size_t)ncap * sizeof(double);
        }
        double *nv = gram__alloc(bytes);
        if (!nv) return gram__fail(P->ctx, GRAM_ENOMEM, "%s: cannot allocate %zu bytes for the values", P->name, bytes);
        if (at) memcpy(nv, V->v, (size_t)at * sizeof(double));
        gram__free(V->v);
        V->v = nv;
        V->cap = ncap;
    }
    for (size_t j = 0; j < P->nf; j++) {
        const csv_field *f = &P->f[j];
        if (f->len == 0)
            return gram__fail(P->ctx, GRAM_EFORMAT, "%s: line %lld, column %lld: empty field where a number was expected",
                              P->name, (long long)P->rec_line, (long long)j + 1);
        if (!gram__parse_double_c(f->s, f->len, &V->v[at + (int64_t)j])) {
            char shown[48];
            gram__io_excerpt(shown, f->s, f->len);
            return gram__fail(P->ctx, GRAM_EFORMAT, "%s: line %lld, column %lld: \"%s\" is not a number", P->name,
                              (long long)P->rec_line, (long long)j + 1, shown);
        }
    }
    V->rows++;
    return GRAM_OK;
}

static bool record_is_numeric(const csv *P)
{
    for (size_t j = 0; j < P->nf; j++) {
        double v;
        if (P->f[j].len == 0 || !gram__parse_double_c(P->f[j].s, P->f[j].len, &v)) return false;
    }
    return true;
}

static void free_names(char **names, int64_t n)
{
    if (!names) return;
    for (int64_t j = 0; j < n; j++) gram__free(names[j]);
    gram__free(names);
}

static gram_status take_names(csv *P, char ***out)
{
    char **names = gram__calloc(P->nf, sizeof *names);
    if (!names) return gram__fail(P->ctx, GRAM_ENOMEM, "%s: out of memory for the header", P->name);
    for (size_t j = 0; j < P->nf; j++) {
        const csv_field *f = &P->f[j];
        char *s = gram__alloc(f->len + 1);
        if (!s) {
            free_names(names, (int64_t)P->nf);
            return gram__fail(P->ctx, GRAM_ENOMEM, "%s: out of memory for the header", P->name);
        }
        size_t k = 0;
        for (size_t i = 0; i < f->len; i++) {
            s[k++] = f->s[i];
            if (f->quoted && f->s[i] == '"') i++; /* "" inside quotes is one quote */
        }
        s[k] = '\0';
        names[j] = s;
    }
    *out = names;
    return GRAM_OK;
}

gram_status gram__csv_parse(gram_context *ctx, const char *name, const char *buf, size_t n,
                            const gram__read_opts *opts, gram__matrix *out)
{
    if (!out) return gram__fail(ctx, GRAM_EINVAL, "csv: out must not be NULL");
    memset(out, 0, sizeof *out);
    if (!name) name = "<memory>";
    if (!buf && n > 0) return gram__fail(ctx, GRAM_EINVAL, "%s: buffer must not be NULL", name);
    if (!buf) buf = "";
    gram__read_opts defaults;
    if (!opts) {
        gram__read_opts_init(&defaults);
        opts = &defaults;
    }
    if (opts->header < -1 || opts->header > 1)
        return gram__fail(ctx, GRAM_EINVAL, "%s: header must be -1 (detect), 0 or 1, got %d", name, opts->header);
    char d = opts->delimiter;
    if (d == '"' || d == '#' || d == '\n' || d == '\r' || d == '.' || d == '-' || d == '+' || (d >= '0' && d <= '9'))
        return gram__fail(ctx, GRAM_EINVAL, "%s: '%c' cannot be a delimiter", name, d);
    if (opts->max_bytes < 0)
        return gram__fail(ctx, GRAM_EINVAL, "%s: max_bytes must be >= 0, got %lld", name, (long long)opts->max_bytes);
    if (opts->max_bytes > 0 && (uint64_t)n > (uint64_t)opts->max_bytes)
        return gram__fail(ctx, GRAM_EOVERFLOW, "%s: input is larger than the limit of %lld bytes", name,
                          (long long)opts->max_bytes);

    /* A NUL is in no text: the same verdict the descriptor reader gives while reading. */
    const char *nul = n ? memchr(buf, 0, n) : NULL;
    if (nul) return gram__io_nul_error(ctx, name, (size_t)(nul - buf));

    const char *p = buf, *end = buf + n;
    if (n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3;
    csv P = {ctx, name, p, end, 1, 1, 0, false, NULL, 0, 0};
    P.delim = d ? d : detect_delim(p, end);
    P.ws = P.delim == ' ';

    gram__c_locale loc;
    if (!gram__c_locale_begin(&loc))
        return gram__fail(ctx, GRAM_ENOMEM, "%s: cannot create the C locale for parsing numbers", name);
    gram_status st = GRAM_OK;
    values V = {NULL, 0, 0, 0, opts->max_bytes};
    char **names = NULL;
    bool header = false;

    P.p = skip_noise(P.p, end, &P.line);
    if (P.p == end) {
        st = gram__fail(ctx, GRAM_EFORMAT, "%s: no data rows (the input is empty)", name);
        goto fail;
    }
    if ((st = parse_record(&P))) goto fail;
    V.cols = (int64_t)P.nf;
    header = opts->header == 1 || (opts->header == -1 && !record_is_numeric(&P));
    if (header && (st = take_names(&P, &names))) goto fail;

    {
        /* Room for every remaining line, but at most one value per two bytes of text. */
        int64_t lines = count_lines(P.p, end) + (header ? 0 : 1), cap;
        int64_t by_bytes = (int64_t)((size_t)(end - P.p) / 2) + 1 + V.cols;
        if (!gram__mul_i64(lines, V.cols, &cap) || cap > by_bytes) cap = by_bytes;
        if (V.max_bytes > 0 && cap > V.max_bytes / (int64_t)sizeof(double)) cap = V.max_bytes / (int64_t)sizeof(double);
        if (cap < V.cols) cap = V.cols; /* the first row's room: values_row refuses it if over the limit */
        size_t bytes;
        if (!gram__bytes(cap, sizeof(double), &bytes)) {
            st = gram__fail(ctx, GRAM_EOVERFLOW, "%s: too many values", name);
            goto fail;
        }
        V.v = gram__alloc(bytes);
        if (!V.v) {
            st = gram__fail(ctx, GRAM_ENOMEM, "%s: cannot allocate %zu bytes for the values", name, bytes);
            goto fail;
        }
        V.cap = cap;
    }
    if (!header && (st = values_row(&P, &V))) goto fail;
    for (int64_t rec = 1;; rec++) {
        P.p = skip_noise(P.p, end, &P.line);
        if (P.p == end) break;
        /* A long parse stops when the caller's progress callback asks (every 64Ki records). */
        if ((rec & 0xffff) == 0 && gram__io_cancelled(ctx, (int64_t)(P.p - buf), (int64_t)n)) {
            st = gram__fail(ctx, GRAM_ECANCELLED, "%s: cancelled while parsing line %lld", name, (long long)P.line);
            goto fail;
        }
        if ((st = parse_record(&P))) goto fail;
        if ((st = values_row(&P, &V))) goto fail;
    }
    if (V.rows == 0) {
        st = gram__fail(ctx, GRAM_EFORMAT, "%s: no data rows (only a header line)", name);
        goto fail;
    }
    gram__c_locale_end(&loc);
    gram__free(P.f);
    out->data = V.v;
    out->rows = V.rows;
    out->cols = V.cols;
    out->names = names;
    return GRAM_OK;

fail:
    gram__c_locale_end(&loc);
    gram__free(P.f);
    gram__free(V.v);
    free_names(names, V.cols);
    return st;
}

/* ---- writing -------------------------------------------------------------------------------- */

typedef struct obuf {
    gram_context *ctx;
    const char *name;
    int fd;
    gram_status st;
    char *b;
    size_t n, cap;
} obuf;

static void ob_flush(obuf *o)
{
    if (!o->st && o->n) o->st = gram__io_write(o->ctx, o->name, o->fd, o->b, o->n);
    o->n = 0;
}

static void ob_put(obuf *o, const char *s, size_t len)
{
    while (len > 0 && !o->st) {
        if (o->n == o->cap) ob_flush(o);
        size_t m = o->cap - o->n < len ? o->cap - o->n : len;
        memcpy(o->b + o->n, s, m);
        o->n += m;
        s += m;
        len -= m;
    }
}

/* Quoted when the reader would otherwise split, trim or skip it. */
static bool needs_quotes(const char *s, bool first)
{
    size_t n = strlen(s);
    if (n == 0 || is_blank(s[0]) || is_blank(s[n - 1]) || (first && s[0] == '#')) return true;
    return strpbrk(s, ",\"\n\r") != NULL;
}

gram_status gram__csv_write_fd(gram_context *ctx, const char *name, int fd, const double *data, int64_t rows,
                               int64_t cols, const char *const *names)
{
    if (cols == 0) return GRAM_OK;
    obuf o = {ctx, name, fd, GRAM_OK, gram__alloc((size_t)1 << 16), 0, (size_t)1 << 16};
    if (!o.b) return gram__fail(ctx, GRAM_ENOMEM, "%s: cannot allocate a write buffer", name);
    if (names) {
        for (int64_t j = 0; j < cols; j++) {
            const char *s = names[j] ? names[j] : "";
            if (j) ob_put(&o, ",", 1);
            if (!needs_quotes(s, j == 0)) {
                ob_put(&o, s, strlen(s));
                continue;
            }
            ob_put(&o, "\"", 1);
            for (const char *q = s; *q; q++) {
                if (*q == '"') ob_put(&o, "\"\"", 2);
                else ob_put(&o, q, 1);
            }
            ob_put(&o, "\"", 1);
        }
        ob_put(&o, "\n", 1);
    }
    gram__c_locale loc;
    bool c = gram__c_locale_begin(&loc);
    char num[40];
    for (int64_t i = 0; i < rows && !o.st; i++) {
        for (int64_t j = 0; j < cols; j++) {
            double v = data[i * cols + j];
            int len = c ? gram__format_double_c(num, sizeof num, v) : gram__format_double(num, sizeof num, v);
            if (j) ob_put(&o, ",", 1);
            ob_put(&o, num, (size_t)len);
        }
        ob_put(&o, "\n", 1);
    }
    gram__c_locale_end(&loc);
    ob_flush(&o);
    gram__free(o.b);
    return o.st;
}
