#!/usr/bin/env bash
# The Mauna Loa CO2 Gaussian process (Rasmussen & Williams 2006, section 5.4.3) from the command
# line: fit the composite kernel to data/co2_monthly.csv by maximising the log marginal
# likelihood, then predict monthly to 2010 with the posterior standard deviation and plot it.
#
#   bash examples/co2_cli.sh [OUTDIR]      (default: the current directory; needs build/cli/gram)
#
# The same fit from Python: python3 examples/python/co2_mauna_loa.py
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
gram="${GRAM_CLI:-$root/build/cli/gram}"
out="${1:-.}"
mkdir -p "$out"

# long-term trend + seasonal (period fixed at one year) + medium-term irregularities + noise,
# started where scikit-learn's version of the example starts
kernel='constant(2500)*rbf(50)'
kernel+=' + constant(4)*rbf(100)*periodic(lengthscale=1, period=1, period_bounds=fixed)'
kernel+=' + constant(0.25)*rq(lengthscale=1, alpha=1)'
kernel+=' + constant(0.01)*rbf(0.1) + white(0.01, noise_bounds=[1e-5, inf])'

"$gram" gp fit "$root/data/co2_monthly.csv" --target co2_ppm --kernel "$kernel" \
    --alpha 0 --normalize-y --optimize -o "$out/co2.gram"

# monthly query points from January 1959 to December 2010
awk 'BEGIN { print "year"; for (m = 0; m < 52 * 12; m++) printf "%.4f\n", 1959 + m / 12 }' > "$out/co2_query.csv"
"$gram" gp predict "$out/co2.gram" "$out/co2_query.csv" --std -o "$out/co2_forecast.csv" \
    --plot "$out/co2_forecast.svg"
tail -n 1 "$out/co2_forecast.csv" | awk -F, '{ printf "December 2010: %.1f ppm +- %.1f (2 sigma)\n", $1, 2 * $2 }'
echo "forecast: $out/co2_forecast.csv, plot: $out/co2_forecast.svg"
