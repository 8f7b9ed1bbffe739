/* svg: self-contained SVG plots for the CLI (no external fonts, scripts or images).
 * Pure drawing: the caller evaluates the density or the regression; nothing here knows about
 * kernels. */
#ifndef GRAM_CLI_SVG_H
#define GRAM_CLI_SVG_H

#include <stddef.h>
#include <stdint.h>

/* A growing text buffer. */
typedef struct svg_text {
    char *s;
    size_t len, cap;
    int failed; /* an allocation failed: the text is incomplete */
} svg_text;

void svg_text_free(svg_text *t);

/* A curve y(x) with a rug of data points under it. */
typedef struct svg_plot1d {
    const char *title, *subtitle, *xlabel, *ylabel;
    const double *x, *y; /* the curve: n points, x increasing */
    int64_t n;
    const double *rug;   /* data values (n_rug, stride rug_stride); subsampled to ≤ 2000 ticks */
    int64_t n_rug, rug_stride;
} svg_plot1d;

/* A heat map of z over [x0, x1] × [y0, y1] with contour lines and data points on top. */
typedef struct svg_plot2d {
    const char *title, *subtitle, *xlabel, *ylabel, *zlabel;
    double x0, x1, y0, y1;
    const double *z;      /* nx × ny values at the cell centres, x fastest: z[j*nx + i] at
                             (x0 + (i + ½)(x1 - x0)/nx, y0 + (j + ½)(y1 - y0)/ny) */
    int64_t nx, ny;
    const double *points; /* n_points × 2, row stride point_stride; subsampled to ≤ 5000 */
    int64_t n_points, point_stride;
} svg_plot2d;

/* Curves over x: a shaded band, thin paths, a thick curve, data points and a rug, each optional
 * (NULL or a count of 0), with a legend of what is drawn. The y axis spans everything drawn. */
typedef struct svg_plotxy {
    const char *title, *subtitle, *xlabel, *ylabel;
    const double *x;                 /* n ≥ 1 values, increasing */
    int64_t n;
    const double *band_lo, *band_hi; /* n values each */
    const char *band_label;
    const double *paths;             /* n × n_paths, row-major: path k at x[i] is paths[i*n_paths + k] */
    int64_t n_paths;
    const char *paths_label;
    const double *curve;             /* n values */
    const char *curve_label;
    const double *points;            /* (x, y) pairs, row stride point_stride; subsampled to ≤ 5000 */
    int64_t n_points, point_stride;
    const char *points_label;
    const double *rug;               /* x values (stride rug_stride); subsampled to ≤ 2000 ticks */
    int64_t n_rug, rug_stride;
    const char *rug_label;
} svg_plotxy;

/* Render into out (appended). Return 0, or -1 if memory ran out. */
int svg_plot_1d(svg_text *out, const svg_plot1d *p);
int svg_plot_2d(svg_text *out, const svg_plot2d *p);
int svg_plot_xy(svg_text *out, const svg_plotxy *p);

/* The "nice" tick values (1-2-5 steps) inside [lo, hi], about target of them: writes up to max
 * values to ticks, returns their count and the step in *step. Exposed for tests and layout. */
int svg_nice_ticks(double lo, double hi, int target, double *ticks, int max, double *step);

#endif
