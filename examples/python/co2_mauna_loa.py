#!/usr/bin/env python3
"""The classic Gaussian-process example: Mauna Loa CO2, Rasmussen & Williams (2006), section 5.4.3.

    python3 examples/python/co2_mauna_loa.py [-o co2_mauna_loa.svg]

Fits the composite kernel of R&W 5.4.3 to the monthly CO2 record 1959-1997 (data/co2_monthly.csv,
R's datasets::co2) by maximising the log marginal likelihood, prints the learned hyperparameters
and the log marginal likelihood, and plots the extrapolation to 2010 with its +-2 sigma band (SVG).

The kernel (in ppm and years), started where scikit-learn's version of the example starts:
  long-term trend          50^2 * RBF(50)
  seasonal component       2^2 * RBF(100) * ExpSineSquared(1, period 1 year, fixed)
  medium-term irregularity 0.5^2 * RationalQuadratic(1, alpha 1)
  noise                    0.1^2 * RBF(0.1) + WhiteKernel(0.1^2)
R&W report (their Table/Fig. 5.6) 66 ppm / 67 yr, 2.4 ppm / 90 yr / 1.3, 0.66 ppm / 1.2 yr / 0.78,
0.18 ppm / 1.6 months, 0.19 ppm for their (un-normalised) fit.
"""
import argparse
import html
import os
import time

import numpy as np

import gram
from gram.kernels import RBF, ConstantKernel as C, ExpSineSquared, RationalQuadratic, WhiteKernel

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def kernel():
    k1 = C(50.0**2) * RBF(length_scale=50.0)
    k2 = C(2.0**2) * RBF(length_scale=100.0) * ExpSineSquared(length_scale=1.0, periodicity=1.0,
                                                              periodicity_bounds="fixed")
    k3 = C(0.5**2) * RationalQuadratic(length_scale=1.0, alpha=1.0)
    k4 = C(0.1**2) * RBF(length_scale=0.1) + WhiteKernel(noise_level=0.1**2, noise_level_bounds=(1e-5, np.inf))
    return k1 + k2 + k3 + k4


def svg_plot(path, x, y, xq, mean, std, title):
    """A small self-contained SVG: data points, posterior mean and the +-2 sigma band."""
    W, H, L, R, T, B = 900, 520, 70, 20, 40, 50
    lo, hi = mean - 2 * std, mean + 2 * std
    x0, x1 = min(x.min(), xq.min()), max(x.max(), xq.max())
    y0, y1 = min(y.min(), lo.min()), max(y.max(), hi.max())
    pad = 0.03 * (y1 - y0)
    y0, y1 = y0 - pad, y1 + pad
    sx = lambda v: L + (v - x0) / (x1 - x0) * (W - L - R)
    sy = lambda v: H - B - (v - y0) / (y1 - y0) * (H - T - B)
    band = " ".join(f"{sx(a):.1f},{sy(b):.1f}" for a, b in zip(xq, hi))
    band += " " + " ".join(f"{sx(a):.1f},{sy(b):.1f}" for a, b in zip(xq[::-1], lo[::-1]))
    line = " ".join(f"{sx(a):.1f},{sy(b):.1f}" for a, b in zip(xq, mean))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15">{html.escape(title)}</text>',
           f'<polygon points="{band}" fill="#9ecae1" fill-opacity="0.6" stroke="none"/>',
           f'<polyline points="{line}" fill="none" stroke="#08519c" stroke-width="1.5"/>']
    out += [f'<circle cx="{sx(a):.1f}" cy="{sy(b):.1f}" r="1.3" fill="#222"/>' for a, b in zip(x, y)]
    out.append(f'<rect x="{L}" y="{T}" width="{W - L - R}" height="{H - T - B}" fill="none" stroke="#444"/>')
    for v in range(int(np.ceil(x0 / 10) * 10), int(x1) + 1, 10):
        out.append(f'<line x1="{sx(v):.1f}" y1="{H - B}" x2="{sx(v):.1f}" y2="{H - B + 5}" stroke="#444"/>')
        out.append(f'<text x="{sx(v):.1f}" y="{H - B + 18}" text-anchor="middle">{v}</text>')
    for v in range(int(np.ceil(y0 / 20) * 20), int(y1) + 1, 20):
        out.append(f'<line x1="{L - 5}" y1="{sy(v):.1f}" x2="{L}" y2="{sy(v):.1f}" stroke="#444"/>')
        out.append(f'<text x="{L - 8}" y="{sy(v) + 4:.1f}" text-anchor="end">{v}</text>')
    out.append(f'<text x="{W / 2}" y="{H - 12}" text-anchor="middle">year</text>')
    out.append(f'<text x="18" y="{H / 2}" text-anchor="middle" transform="rotate(-90 18 {H / 2})">CO2 (ppm)</text>')
    out.append(f'<text x="{L + 10}" y="{T + 18}">data (dots), posterior mean (line), mean ± 2σ (band)</text>')
    out.append("</svg>\n")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", default="co2_mauna_loa.svg")
    args = ap.parse_args()
    data = np.loadtxt(os.path.join(ROOT, "data", "co2_monthly.csv"), delimiter=",", skiprows=1)
    X, y = data[:, :1], data[:, 1]

    gp = gram.GaussianProcessRegressor(kernel=kernel(), alpha=0.0, normalize_y=True)
    t = time.perf_counter()
    gp.fit(X, y)
    dt = time.perf_counter() - t
    print(f"fitted {len(y)} monthly means (1959-1997) in {dt:.2f} s")
    print(f"initial kernel: {kernel()}")
    print(f"learned kernel: {gp.kernel_}")
    print(f"log marginal likelihood: {gp.log_marginal_likelihood_value_:.3f}")

    xq = np.linspace(X.min(), 2010.0, 1000)
    mean, std = gp.predict(xq[:, None], return_std=True)
    svg_plot(args.output, X[:, 0], y, xq, mean, std,
             "Mauna Loa CO2: GP fit (R&W 5.4.3 kernel) and extrapolation to 2010")
    i = np.searchsorted(xq, 2010.0) - 1
    print(f"prediction for {xq[i]:.1f}: {mean[i]:.1f} ± {2 * std[i]:.1f} ppm (2σ); plot: {args.output}")


if __name__ == "__main__":
    main()
