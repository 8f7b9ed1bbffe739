/* svg: self-contained SVG plots (a density curve with a rug; a heat map with contours; curves
 * with a band, paths and data points). */
#include "svg.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FONT "DejaVu Sans, Helvetica, Arial, sans-serif"
#define CHAR_W 7.0 /* approximate advance of a 12 px digit, for layout */
#define MAX_TICKS 64

/* ---- text buffer ----------------------------------------------------------------------------- */

void svg_text_free(svg_text *t)
{
    free(t->s);
    memset(t, 0, sizeof *t);
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void put(svg_text *t, const char *fmt, ...)
{
    if (t->failed) return;
    for (;;) {
        size_t avail = t->cap - t->len;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->s ? t->s + t->len : NULL, avail, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if ((size_t)n < avail) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap : 1 << 16;
        while (cap - t->len <= (size_t)n) cap *= 2;
        char *s = realloc(t->s, cap);
        if (!s) {
            t->failed = 1;
            return;
        }
        t->s = s;
        t->cap = cap;
    }
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if the bytes there are not one. */
static int utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80) return 1;
    int n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 && s[0] < 0xe0 ? 2 : 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    return n;
}

/* Text content or attribute value: XML-escaped; control characters and invalid UTF-8 become '?'. */
static void put_escaped(svg_text *t, const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p;) {
        switch (*p) {
        case '&': put(t, "&amp;"); p++; continue;
        case '<': put(t, "&lt;"); p++; continue;
        case '>': put(t, "&gt;"); p++; continue;
        case '"': put(t, "&quot;"); p++; continue;
        default: break;
        }
        int n = *p < 0x20 ? 0 : utf8_len(p);
        if (n == 0) {
            put(t, "?");
            p++;
        } else {
            put(t, "%.*s", n, (const char *)p);
            p += n;
        }
    }
}

/* Approximate width in pixels of text at 12 px (code points, not bytes). */
static double text_width(const char *s)
{
    double n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) n += (*p & 0xc0) != 0x80;
    return n * CHAR_W;
}

/* ---- ticks ----------------------------------------------------------------------------------- */

int svg_nice_ticks(double lo, double hi, int target, double *ticks, int max, double *step_out)
{
    if (max <= 0) return 0;
    if (!(hi > lo) || !isfinite(hi - lo)) {
        ticks[0] = lo;
        *step_out = 1;
        return 1;
    }
    double raw = (hi - lo) / (target > 0 ? target : 1);
    double mag = pow(10.0, floor(log10(raw)));
    double r = raw / mag;
    double step = (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
    double k0 = ceil(lo / step - 1e-9), k1 = floor(hi / step + 1e-9);
    int n = 0;
    for (double k = k0; k <= k1 && n < max; k++) {
        double v = k * step;
        if (fabs(v) < step * 1e-9) v = 0; /* no "-0" */
        ticks[n++] = v;
    }
    *step_out = step;
    return n;
}

/* A tick label: fixed-point with as many decimals as the step needs, or %g with as many
 * significant digits as tell neighbouring ticks apart (1.0000002e+12 vs 1.0000004e+12). */
static void format_tick(char *buf, size_t size, double v, double step)
{
    if (v == 0) {
        snprintf(buf, size, "0");
    } else if (step >= 1e-4 && step < 1e6 && fabs(v) < 1e7) {
        int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
        snprintf(buf, size, "%.*f", dec, v);
    } else {
        int digits = (int)ceil(log10(fabs(v) / step) - 1e-9) + 1;
        snprintf(buf, size, "%.*g", digits < 3 ? 3 : digits > 17 ? 17 : digits, v);
    }
}

/* ---- colour ramp ----------------------------------------------------------------------------- */

/* viridis (matplotlib) at 0, 0.1, ..., 1; linear interpolation in between. */
static const unsigned char VIRIDIS[11][3] = {
    {0x44, 0x01, 0x54}, {0x48, 0x24, 0x75}, {0x41, 0x44, 0x87}, {0x35, 0x5f, 0x8d},
    {0x2a, 0x78, 0x8e}, {0x21, 0x91, 0x8c}, {0x22, 0xa8, 0x84}, {0x44, 0xbf, 0x70},
    {0x7a, 0xd1, 0x51}, {0xbd, 0xdf, 0x26}, {0xfd, 0xe7, 0x25},
};

static void viridis(double t, char out[8])
{
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    double f = t * 10;
    int i = (int)f;
    if (i > 9) i = 9;
    f -= i;
    int c[3];
    for (int k = 0; k < 3; k++)
        c[k] = (int)lround(VIRIDIS[i][k] + f * (VIRIDIS[i + 1][k] - VIRIDIS[i][k]));
    snprintf(out, 8, "#%02x%02x%02x", c[0], c[1], c[2]);
}

/* ---- shared pieces --------------------------------------------------------------------------- */

static void put_header(svg_text *t, double w, double h, const char *title)
{
    put(t, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    put(t,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
        "viewBox=\"0 0 %.0f %.0f\" font-family=\"" FONT "\" font-size=\"12\">\n",
        w, h, w, h);
    put(t, "<title>");
    put_escaped(t, title ? title : "");
    put(t, "</title>\n<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n");
}

static void put_titles(svg_text *t, double cx, const char *title, const char *subtitle)
{
    put(t, "<text x=\"%.1f\" y=\"26\" text-anchor=\"middle\" font-size=\"17\" font-weight=\"bold\" "
           "fill=\"#222222\">", cx);
    put_escaped(t, title ? title : "");
    put(t, "</text>\n");
    if (subtitle && *subtitle) {
        put(t, "<text x=\"%.1f\" y=\"46\" text-anchor=\"middle\" font-size=\"12.5\" "
               "fill=\"#555555\">", cx);
        put_escaped(t, subtitle);
        put(t, "</text>\n");
    }
}

typedef struct axis {
    double lo, hi;     /* data range */
    double p0, p1;     /* pixel positions of lo and hi */
    double ticks[MAX_TICKS];
    double step;
    int n;
    double label_w;    /* widest tick label in pixels */
} axis;

static double axis_map(const axis *a, double v) { return a->p0 + (v - a->lo) / (a->hi - a->lo) * (a->p1 - a->p0); }

static void axis_ticks(axis *a, int target)
{
    a->n = svg_nice_ticks(a->lo, a->hi, target, a->ticks, MAX_TICKS, &a->step);
    a->label_w = 0;
    for (int i = 0; i < a->n; i++) {
        char buf[48];
        format_tick(buf, sizeof buf, a->ticks[i], a->step);
        double w = text_width(buf);
        if (w > a->label_w) a->label_w = w;
    }
}

/* Ticks for an axis whose pixel span is set: about target of them, fewer where the labels would
 * crowd (horizontal: the widest label plus a gap; vertical: a line of text). */
static void axis_layout(axis *a, int target, int horizontal)
{
    for (int t = target; t >= 2; t--) {
        axis_ticks(a, t);
        if (a->n < 2) return;
        double spacing = fabs(axis_map(a, a->ticks[1]) - axis_map(a, a->ticks[0]));
        if (spacing >= (horizontal ? a->label_w + 14 : 18)) return;
    }
}

/* Tick marks and labels of a horizontal axis at pixel row y (below the plot). */
static void put_xaxis(svg_text *t, const axis *a, double y, const char *label, double label_y)
{
    put(t, "<g stroke=\"#333333\" stroke-width=\"1\">");
    for (int i = 0; i < a->n; i++) {
        double x = axis_map(a, a->ticks[i]);
        put(t, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>", x, y, x, y + 5);
    }
    put(t, "</g>\n<g text-anchor=\"middle\" fill=\"#333333\">");
    for (int i = 0; i < a->n; i++) {
        char buf[48];
        format_tick(buf, sizeof buf, a->ticks[i], a->step);
        put(t, "<text x=\"%.2f\" y=\"%.2f\">%s</text>", axis_map(a, a->ticks[i]), y + 19, buf);
    }
    put(t, "</g>\n<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" font-size=\"14\" "
           "fill=\"#222222\">", (a->p0 + a->p1) / 2, label_y);
    put_escaped(t, label);
    put(t, "</text>\n");
}

/* Tick marks and labels of a vertical axis at pixel column x; labels on the left (side < 0) or on
 * the right (side > 0); the axis label rotated at column label_x. */
static void put_yaxis(svg_text *t, const axis *a, double x, int side, const char *label, double label_x)
{
    double dir = side < 0 ? -1 : 1;
    put(t, "<g stroke=\"#333333\" stroke-width=\"1\">");
    for (int i = 0; i < a->n; i++) {
        double y = axis_map(a, a->ticks[i]);
        put(t, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>", x, y, x + 5 * dir, y);
    }
    put(t, "</g>\n<g text-anchor=\"%s\" fill=\"#333333\">", side < 0 ? "end" : "start");
    for (int i = 0; i < a->n; i++) {
        char buf[48];
        format_tick(buf, sizeof buf, a->ticks[i], a->step);
        put(t, "<text x=\"%.2f\" y=\"%.2f\">%s</text>", x + 8 * dir, axis_map(a, a->ticks[i]) + 4,
            buf);
    }
    double cy = (a->p0 + a->p1) / 2;
    put(t, "</g>\n<text x=\"%.2f\" y=\"%.2f\" transform=\"rotate(-90 %.2f %.2f)\" "
           "text-anchor=\"middle\" font-size=\"14\" fill=\"#222222\">",
        label_x, cy, label_x, cy);
    put_escaped(t, label);
    put(t, "</text>\n");
}

/* Light grid lines at the ticks of both axes, across the plot area. */
static void put_grid(svg_text *t, const axis *ax, const axis *ay)
{
    put(t, "<g stroke=\"#e6e6e6\" stroke-width=\"1\">");
    for (int i = 0; i < ay->n; i++) {
        double y = axis_map(ay, ay->ticks[i]);
        put(t, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>", ax->p0, y, ax->p1, y);
    }
    for (int i = 0; i < ax->n; i++) {
        double x = axis_map(ax, ax->ticks[i]);
        put(t, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>", x, ay->p1, x, ay->p0);
    }
    put(t, "</g>\n");
}

/* Deterministic subsample: index k of at most max evenly spaced ones. */
static int64_t pick(int64_t k, int64_t n, int64_t max) { return n <= max ? k : (int64_t)((double)k * (double)n / (double)max); }

/* ---- 1-D: density curve with a rug ------------------------------------------------------------ */

int svg_plot_1d(svg_text *t, const svg_plot1d *p)
{
    const double W = 760, H = 470, top = 66, right_pad = 28;
    axis ax = {0}, ay = {0};
    double ymax = 0;
    for (int64_t i = 0; i < p->n; i++)
        if (p->y[i] > ymax) ymax = p->y[i];
    if (!(ymax > 0)) ymax = 1;
    ax.lo = p->x[0];
    ax.hi = p->x[p->n - 1];
    if (!(ax.hi > ax.lo)) ax.hi = ax.lo + 1;
    ay.lo = 0;
    ay.hi = ymax * 1.06;
    double bottom = H - 58;
    ay.p0 = bottom;
    ay.p1 = top;
    axis_layout(&ay, 6, 0);
    double left = 40 + ay.label_w + 10;
    ax.p0 = left;
    ax.p1 = W - right_pad;
    axis_layout(&ax, 8, 1);

    put_header(t, W, H, p->title);
    put_titles(t, (left + W - right_pad) / 2, p->title, p->subtitle);

    put_grid(t, &ax, &ay);

    /* the area under the curve, then the curve */
    put(t, "<path fill=\"#1f77b4\" fill-opacity=\"0.18\" stroke=\"none\" d=\"M%.2f,%.2f", left, bottom);
    for (int64_t i = 0; i < p->n; i++) put(t, "L%.2f,%.2f", axis_map(&ax, p->x[i]), axis_map(&ay, p->y[i]));
    put(t, "L%.2f,%.2fZ\"/>\n", axis_map(&ax, p->x[p->n - 1]), bottom);

    /* rug: short ticks up from the baseline, at most 2000 */
    if (p->n_rug > 0) {
        const int64_t max_rug = 2000;
        int64_t n = p->n_rug < max_rug ? p->n_rug : max_rug;
        double op = n <= 300 ? 0.55 : n <= 1000 ? 0.35 : 0.22;
        put(t, "<path stroke=\"#222222\" stroke-opacity=\"%.2f\" stroke-width=\"1\" d=\"", op);
        for (int64_t k = 0; k < n; k++) {
            double v = p->rug[pick(k, p->n_rug, max_rug) * p->rug_stride];
            if (!(v >= ax.lo && v <= ax.hi)) continue;
            put(t, "M%.2f %.2fv-12", axis_map(&ax, v), bottom);
        }
        put(t, "\"/>\n");
    }

    put(t, "<path fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" stroke-linejoin=\"round\" d=\"");
    for (int64_t i = 0; i < p->n; i++)
        put(t, "%c%.2f,%.2f", i ? 'L' : 'M', axis_map(&ax, p->x[i]), axis_map(&ay, p->y[i]));
    put(t, "\"/>\n");

    /* axes */
    put(t, "<path fill=\"none\" stroke=\"#333333\" stroke-width=\"1\" d=\"M%.2f,%.2fV%.2fH%.2f\"/>\n",
        left, top, bottom, ax.p1);
    put_xaxis(t, &ax, bottom, p->xlabel, H - 14);
    put_yaxis(t, &ay, left, -1, p->ylabel ? p->ylabel : "density", 20);
    put(t, "</svg>\n");
    return t->failed ? -1 : 0;
}

/* ---- 2-D: heat map, contours, points ---------------------------------------------------------- */

/* Marching squares on the grid of cell centres, segments joined into polylines.
 * Crossing points lie on grid edges: horizontal edges (i,j)-(i+1,j) have ids j*(nx-1) + i,
 * vertical edges (i,j)-(i,j+1) ids H + j*nx + i. Each edge carries at most one crossing and
 * belongs to at most two segments, so chains follow edge ids. */
typedef struct contour_ctx {
    const double *z;
    int64_t nx, ny, n_h;
    double level;
    const axis *ax, *ay;
    double x0, dx, y0, dy; /* data coordinates of node (i, j): x0 + i*dx, y0 + j*dy */
} contour_ctx;

static void edge_point(const contour_ctx *c, int64_t e, double *px, double *py)
{
    int64_t i, j, i2, j2;
    if (e < c->n_h) {
        j = e / (c->nx - 1);
        i = e % (c->nx - 1);
        i2 = i + 1;
        j2 = j;
    } else {
        e -= c->n_h;
        j = e / c->nx;
        i = e % c->nx;
        i2 = i;
        j2 = j + 1;
    }
    double za = c->z[j * c->nx + i], zb = c->z[j2 * c->nx + i2];
    double f = (c->level - za) / (zb - za);
    if (!(f >= 0)) f = 0;
    if (f > 1) f = 1;
    double x = c->x0 + (i + f * (i2 - i)) * c->dx, y = c->y0 + (j + f * (j2 - j)) * c->dy;
    *px = axis_map(c->ax, x);
    *py = axis_map(c->ay, y);
}

/* Returns -1 on allocation failure. */
static int put_contour(svg_text *t, contour_ctx *c)
{
    int64_t nx = c->nx, ny = c->ny;
    if (nx < 2 || ny < 2) return 0;
    c->n_h = (nx - 1) * ny;
    int64_t n_edges = c->n_h + nx * (ny - 1);
    int64_t max_seg = 2 * (nx - 1) * (ny - 1);
    int64_t *seg = malloc((size_t)max_seg * 2 * sizeof(int64_t));
    int64_t *adj = malloc((size_t)n_edges * 2 * sizeof(int64_t));
    unsigned char *done = calloc((size_t)max_seg, 1);
    if (!seg || !adj || !done) {
        free(seg);
        free(adj);
        free(done);
        return -1;
    }
    for (int64_t e = 0; e < 2 * n_edges; e++) adj[e] = -1;
    int64_t ns = 0;
    const double lv = c->level;
    for (int64_t j = 0; j + 1 < ny; j++) {
        for (int64_t i = 0; i + 1 < nx; i++) {
            const double *z = c->z;
            double a = z[j * nx + i], b = z[j * nx + i + 1], cc = z[(j + 1) * nx + i + 1],
                   d = z[(j + 1) * nx + i];
            int code = (a >= lv) | (b >= lv) << 1 | (cc >= lv) << 2 | (d >= lv) << 3;
            if (code == 0 || code == 15) continue;
            /* edges of the cell: bottom, right, top, left */
            int64_t eb = j * (nx - 1) + i, et = (j + 1) * (nx - 1) + i;
            int64_t el = c->n_h + j * nx + i, er = c->n_h + j * nx + i + 1;
            int64_t pairs[4];
            int np = 0;
            switch (code) {
            case 1: case 14: pairs[0] = el; pairs[1] = eb; np = 2; break;
            case 2: case 13: pairs[0] = eb; pairs[1] = er; np = 2; break;
            case 3: case 12: pairs[0] = el; pairs[1] = er; np = 2; break;
            case 4: case 11: pairs[0] = er; pairs[1] = et; np = 2; break;
            case 6: case 9: pairs[0] = eb; pairs[1] = et; np = 2; break;
            case 7: case 8: pairs[0] = el; pairs[1] = et; np = 2; break;
            case 5: case 10: { /* saddle: the centre value decides which corners connect */
                int centre_in = (a + b + cc + d) / 4 >= lv;
                int a_in = code == 5;
                if (centre_in == a_in) { /* a and c joined through the centre */
                    pairs[0] = el; pairs[1] = et; pairs[2] = eb; pairs[3] = er;
                } else {
                    pairs[0] = el; pairs[1] = eb; pairs[2] = er; pairs[3] = et;
                }
                np = 4;
                break;
            }
            default: break;
            }
            for (int k = 0; k < np; k += 2) {
                seg[2 * ns] = pairs[k];
                seg[2 * ns + 1] = pairs[k + 1];
                for (int s = 0; s < 2; s++) {
                    int64_t e = pairs[k + s];
                    if (adj[2 * e] < 0) adj[2 * e] = ns;
                    else adj[2 * e + 1] = ns;
                }
                ns++;
            }
        }
    }
    /* Chains: open ones from an end (an edge with one segment, on the border), then loops. */
    for (int pass = 0; pass < 2; pass++) {
        for (int64_t s0 = 0; s0 < ns; s0++) {
            if (done[s0]) continue;
            int64_t start;
            if (pass == 0) {
                if (adj[2 * seg[2 * s0] + 1] < 0) start = seg[2 * s0];
                else if (adj[2 * seg[2 * s0 + 1] + 1] < 0) start = seg[2 * s0 + 1];
                else continue;
            } else {
                start = seg[2 * s0];
            }
            double x, y;
            edge_point(c, start, &x, &y);
            put(t, "M%.1f,%.1f", x, y);
            int64_t s = s0, e = start;
            while (s >= 0) {
                done[s] = 1;
                e = seg[2 * s] == e ? seg[2 * s + 1] : seg[2 * s];
                edge_point(c, e, &x, &y);
                put(t, "L%.1f,%.1f", x, y);
                int64_t n0 = adj[2 * e], n1 = adj[2 * e + 1];
                s = n0 >= 0 && !done[n0] ? n0 : n1 >= 0 && !done[n1] ? n1 : -1;
            }
            if (pass == 1) put(t, "Z");
        }
    }
    free(seg);
    free(adj);
    free(done);
    return 0;
}

int svg_plot_2d(svg_text *t, const svg_plot2d *p)
{
    const int levels = 64; /* colour steps of the heat map */
    const double size = 600, top = 66;
    int64_t nx = p->nx, ny = p->ny, nz = nx * ny;
    axis ax = {0}, ay = {0}, az = {0};
    ax.lo = p->x0;
    ax.hi = p->x1;
    ay.lo = p->y0;
    ay.hi = p->y1;
    double zmax = 0;
    for (int64_t k = 0; k < nz; k++)
        if (p->z[k] > zmax) zmax = p->z[k];
    if (!(zmax > 0)) zmax = 1;
    az.lo = 0;
    az.hi = zmax;
    ay.p0 = az.p0 = top + size;
    ay.p1 = az.p1 = top;
    axis_layout(&ay, 8, 0);
    axis_layout(&az, 8, 0);
    double left = 40 + ay.label_w + 10;
    ax.p0 = left;
    ax.p1 = left + size;
    axis_layout(&ax, 8, 1);
    double bar_x = ax.p1 + 22, bar_w = 16;
    double W = bar_x + bar_w + 8 + az.label_w + 40;
    double H = top + size + 58;
    double bottom = top + size;

    put_header(t, W, H, p->title);
    put_titles(t, (left + ax.p1) / 2, p->title, p->subtitle);
    put(t, "<defs><clipPath id=\"plot\"><rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"/>"
           "</clipPath>\n<linearGradient id=\"ramp\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">",
        left, top, size, size);
    for (int k = 0; k <= 10; k++) {
        char col[8];
        viridis(k / 10.0, col);
        put(t, "<stop offset=\"%.1f\" stop-color=\"%s\"/>", k / 10.0, col);
    }
    put(t, "</linearGradient></defs>\n");

    /* Heat map: colour steps of z/zmax; runs of one colour along a row are one rectangle, and all
     * rectangles of one colour are one path. The lowest step is the background. */
    unsigned char *q = malloc((size_t)nz);
    if (!q) return -1;
    for (int64_t k = 0; k < nz; k++) {
        int v = (int)(p->z[k] / zmax * levels);
        q[k] = (unsigned char)(v < 0 ? 0 : v >= levels ? levels - 1 : v);
    }
    double cw = size / (double)nx, ch = size / (double)ny;
    char col[8];
    viridis(0.5 / levels, col);
    put(t, "<g clip-path=\"url(#plot)\">\n<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
           "fill=\"%s\"/>\n<g shape-rendering=\"crispEdges\">\n", left, top, size, size, col);
    for (int lv = 1; lv < levels; lv++) {
        int any = 0;
        for (int64_t j = 0; j < ny; j++) {
            const unsigned char *row = q + j * nx;
            for (int64_t i = 0; i < nx;) {
                if (row[i] != lv) {
                    i++;
                    continue;
                }
                int64_t i1 = i;
                while (i1 < nx && row[i1] == lv) i1++;
                if (!any) {
                    viridis((lv + 0.5) / levels, col);
                    put(t, "<path fill=\"%s\" d=\"", col);
                    any = 1;
                }
                double x0 = left + i * cw, x1 = left + i1 * cw;
                double y1 = bottom - j * ch, y0 = bottom - (j + 1) * ch;
                put(t, "M%.6g %.6gH%.6gV%.6gH%.6gz", x0, y0, x1, y1, x0);
                i = i1;
            }
        }
        if (any) put(t, "\"/>\n");
    }
    free(q);
    put(t, "</g>\n");

    /* Contours at the nice values of the colour bar. */
    double xc0 = p->x0 + 0.5 * (p->x1 - p->x0) / nx, yc0 = p->y0 + 0.5 * (p->y1 - p->y0) / ny;
    contour_ctx cc = {p->z, nx, ny, 0, 0, &ax, &ay, xc0, (p->x1 - p->x0) / nx, yc0, (p->y1 - p->y0) / ny};
    put(t, "<g fill=\"none\" stroke=\"#ffffff\" stroke-opacity=\"0.8\" stroke-width=\"1.1\" "
           "stroke-linejoin=\"round\">\n");
    for (int k = 0; k < az.n; k++) {
        if (!(az.ticks[k] > 0 && az.ticks[k] < zmax)) continue;
        cc.level = az.ticks[k];
        put(t, "<path d=\"");
        if (put_contour(t, &cc)) return -1;
        put(t, "\"/>\n");
    }
    put(t, "</g>\n");

    /* Data points: at most 5000, evenly spaced in the input's order. */
    if (p->n_points > 0) {
        const int64_t max_pts = 5000;
        int64_t n = p->n_points < max_pts ? p->n_points : max_pts;
        double r = n <= 500 ? 2.2 : n <= 2000 ? 1.6 : 1.1;
        put(t, "<g fill=\"#ffffff\" fill-opacity=\"0.85\" stroke=\"#111111\" stroke-width=\"0.5\">");
        for (int64_t k = 0; k < n; k++) {
            const double *pt = p->points + pick(k, p->n_points, max_pts) * p->point_stride;
            put(t, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\"/>", axis_map(&ax, pt[0]),
                axis_map(&ay, pt[1]), r);
        }
        put(t, "</g>\n");
    }
    put(t, "</g>\n");

    /* Frame, axes, colour bar. */
    put(t, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"none\" stroke=\"#333333\"/>\n",
        left, top, size, size);
    put_xaxis(t, &ax, bottom, p->xlabel, H - 14);
    put_yaxis(t, &ay, left, -1, p->ylabel, 20);
    put(t, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"url(#ramp)\" "
           "stroke=\"#333333\"/>\n", bar_x, top, bar_w, size);
    put(t, "<g stroke=\"#ffffff\" stroke-opacity=\"0.9\">");
    for (int k = 0; k < az.n; k++) {
        if (!(az.ticks[k] > 0 && az.ticks[k] < zmax)) continue;
        double y = axis_map(&az, az.ticks[k]);
        put(t, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>", bar_x, y, bar_x + bar_w, y);
    }
    put(t, "</g>\n");
    put_yaxis(t, &az, bar_x + bar_w, 1, p->zlabel ? p->zlabel : "density", W - 14);
    put(t, "</svg>\n");
    return t->failed ? -1 : 0;
}

/* ---- curves over x: band, lines, points ------------------------------------------------------- */

static void extend(double v, double *lo, double *hi)
{
    if (!isfinite(v)) return;
    if (v < *lo) *lo = v;
    if (v > *hi) *hi = v;
}

/* A polyline through (x[i], v[i * stride]) for the n points. */
static void put_polyline(svg_text *t, const axis *ax, const axis *ay, const double *x, const double *v,
                         int64_t n, int64_t stride)
{
    for (int64_t i = 0; i < n; i++)
        put(t, "%c%.2f,%.2f", i ? 'L' : 'M', axis_map(ax, x[i]), axis_map(ay, v[i * stride]));
}

/* The legend: one line of entries centred at cx on row y, kind 'b' band, 'l' thick line, 't' thin
 * lines, 'p' points, 'r' rug. */
static void put_legend(svg_text *t, double cx, double y, const char *const *labels, const char *kinds,
                       int n)
{
    const double symbol = 24, gap = 6, spacing = 22;
    double w = 0;
    for (int k = 0; k < n; k++) w += symbol + gap + text_width(labels[k]) + (k ? spacing : 0);
    double x = cx - w / 2;
    for (int k = 0; k < n; k++) {
        switch (kinds[k]) {
        case 'b':
            put(t, "<rect x=\"%.2f\" y=\"%.2f\" width=\"24\" height=\"10\" fill=\"#1f77b4\" "
                   "fill-opacity=\"0.22\"/>", x, y - 5);
            break;
        case 'l':
            put(t, "<path d=\"M%.2f %.2fh24\" stroke=\"#1f77b4\" stroke-width=\"2\"/>", x, y);
            break;
        case 't':
            put(t, "<path d=\"M%.2f %.2fh24\" stroke=\"#ff7f0e\" stroke-width=\"1.2\"/>", x, y);
            break;
        case 'p':
            put(t, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"3\" fill=\"#d62728\" stroke=\"#111111\" "
                   "stroke-width=\"0.5\"/>", x + 12, y);
            break;
        default: /* rug */
            put(t, "<path d=\"M%.2f %.2fv-10M%.2f %.2fv-10M%.2f %.2fv-10\" stroke=\"#222222\"/>",
                x + 5, y + 5, x + 12, y + 5, x + 19, y + 5);
            break;
        }
        put(t, "<text x=\"%.2f\" y=\"%.2f\" fill=\"#222222\">", x + symbol + gap, y + 4);
        put_escaped(t, labels[k]);
        put(t, "</text>\n");
        x += symbol + gap + text_width(labels[k]) + spacing;
    }
}

int svg_plot_xy(svg_text *t, const svg_plotxy *p)
{
    static const char *const PATH_COLOURS[] = {"#ff7f0e", "#2ca02c", "#9467bd", "#8c564b",
                                               "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
    const double W = 760, H = 490, top = 86, right_pad = 28;
    const int64_t max_pts = 5000, max_rug = 2000;
    axis ax = {0}, ay = {0};
    ax.lo = p->x[0];
    ax.hi = p->x[p->n - 1];
    if (!(ax.hi > ax.lo)) {
        ax.lo -= 1;
        ax.hi += 1;
    }
    /* The y range covers everything drawn inside the x range. */
    double lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < p->n; i++) {
        if (p->curve) extend(p->curve[i], &lo, &hi);
        if (p->band_lo) extend(p->band_lo[i], &lo, &hi);
        if (p->band_hi) extend(p->band_hi[i], &lo, &hi);
        for (int64_t k = 0; k < p->n_paths; k++) extend(p->paths[i * p->n_paths + k], &lo, &hi);
    }
    for (int64_t k = 0; k < p->n_points && k < max_pts; k++) {
        const double *pt = p->points + pick(k, p->n_points, max_pts) * p->point_stride;
        if (pt[0] >= ax.lo && pt[0] <= ax.hi) extend(pt[1], &lo, &hi);
    }
    if (!(hi >= lo)) lo = 0, hi = 1;
    if (!(hi > lo)) lo -= 1, hi += 1;
    ay.lo = lo - 0.05 * (hi - lo);
    ay.hi = hi + 0.05 * (hi - lo);
    double bottom = H - 58;
    ay.p0 = bottom;
    ay.p1 = top;
    axis_layout(&ay, 6, 0);
    double left = 40 + ay.label_w + 10;
    ax.p0 = left;
    ax.p1 = W - right_pad;
    axis_layout(&ax, 8, 1);

    put_header(t, W, H, p->title);
    put_titles(t, (left + W - right_pad) / 2, p->title, p->subtitle);
    put(t, "<defs><clipPath id=\"plot\"><rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"/>"
           "</clipPath></defs>\n", left, top, ax.p1 - left, bottom - top);
    put_grid(t, &ax, &ay);
    put(t, "<g clip-path=\"url(#plot)\">\n");

    const char *labels[5];
    char kinds[5];
    int n_legend = 0;
    if (p->band_lo && p->band_hi) {
        put(t, "<path fill=\"#1f77b4\" fill-opacity=\"0.22\" stroke=\"none\" d=\"");
        put_polyline(t, &ax, &ay, p->x, p->band_hi, p->n, 1);
        for (int64_t i = p->n - 1; i >= 0; i--)
            put(t, "L%.2f,%.2f", axis_map(&ax, p->x[i]), axis_map(&ay, p->band_lo[i]));
        put(t, "Z\"/>\n");
        labels[n_legend] = p->band_label ? p->band_label : "band";
        kinds[n_legend++] = 'b';
    }
    if (p->n_paths > 0) {
        double width = p->n_paths <= 10 ? 1.2 : 0.8, op = p->n_paths <= 10 ? 0.8 : 0.45;
        for (int64_t k = 0; k < p->n_paths; k++) {
            put(t, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\" stroke-opacity=\"%.2f\" "
                   "stroke-linejoin=\"round\" d=\"",
                PATH_COLOURS[k % (int64_t)(sizeof PATH_COLOURS / sizeof PATH_COLOURS[0])], width, op);
            put_polyline(t, &ax, &ay, p->x, p->paths + k, p->n, p->n_paths);
            put(t, "\"/>\n");
        }
        labels[n_legend] = p->paths_label ? p->paths_label : "paths";
        kinds[n_legend++] = 't';
    }
    if (p->curve) {
        put(t, "<path fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" stroke-linejoin=\"round\" d=\"");
        put_polyline(t, &ax, &ay, p->x, p->curve, p->n, 1);
        put(t, "\"/>\n");
        labels[n_legend] = p->curve_label ? p->curve_label : "curve";
        kinds[n_legend++] = 'l';
    }
    if (p->n_points > 0) {
        int64_t n = p->n_points < max_pts ? p->n_points : max_pts;
        double r = n <= 500 ? 3.0 : n <= 2000 ? 2.0 : 1.3;
        put(t, "<g fill=\"#d62728\" fill-opacity=\"0.85\" stroke=\"#111111\" stroke-width=\"0.5\">");
        for (int64_t k = 0; k < n; k++) {
            const double *pt = p->points + pick(k, p->n_points, max_pts) * p->point_stride;
            put(t, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\"/>", axis_map(&ax, pt[0]),
                axis_map(&ay, pt[1]), r);
        }
        put(t, "</g>\n");
        labels[n_legend] = p->points_label ? p->points_label : "data";
        kinds[n_legend++] = 'p';
    }
    if (p->n_rug > 0) {
        int64_t n = p->n_rug < max_rug ? p->n_rug : max_rug;
        double op = n <= 300 ? 0.55 : n <= 1000 ? 0.35 : 0.22;
        put(t, "<path stroke=\"#222222\" stroke-opacity=\"%.2f\" stroke-width=\"1\" d=\"", op);
        for (int64_t k = 0; k < n; k++) {
            double v = p->rug[pick(k, p->n_rug, max_rug) * p->rug_stride];
            if (v >= ax.lo && v <= ax.hi) put(t, "M%.2f %.2fv-12", axis_map(&ax, v), bottom);
        }
        put(t, "\"/>\n");
        labels[n_legend] = p->rug_label ? p->rug_label : "data";
        kinds[n_legend++] = 'r';
    }
    put(t, "</g>\n");

    put(t, "<path fill=\"none\" stroke=\"#333333\" stroke-width=\"1\" d=\"M%.2f,%.2fV%.2fH%.2f\"/>\n",
        left, top, bottom, ax.p1);
    put_xaxis(t, &ax, bottom, p->xlabel ? p->xlabel : "x", H - 14);
    put_yaxis(t, &ay, left, -1, p->ylabel ? p->ylabel : "y", 20);
    put_legend(t, (left + ax.p1) / 2, top - 16, labels, kinds, n_legend);
    put(t, "</svg>\n");
    return t->failed ? -1 : 0;
}
