#!/usr/bin/env python3
"""Independent high-precision reference for the RDP accountant tests (stdlib only).

Nothing here is shared with the C++ code or with Opacus: the integer orders use the exact
binomial expansion in 60-digit decimal arithmetic, the fractional orders integrate the
definition A_alpha = E_{z~N(0,s^2)}[((1-q) + q*r(z))^alpha], r(z) = exp((2z-1)/(2 s^2))
(Mironov, Talwar, Zhang 2019, Sec. 3.3) by the trapezoidal rule, which converges
geometrically for this analytic, Gaussian-weighted integrand. The (eps, delta) conversion is
Balle et al. 2020, Thm 21 (as Opacus' get_privacy_spent writes it).

Usage:  python3 rdp_reference.py            # prints the values pasted into the C++ tests
Runs in a few minutes; the C++ tests never call it.
"""
from decimal import Decimal as D, getcontext
import sys

getcontext().prec = 60
getcontext().Emax = 10**9
getcontext().Emin = -10**9
ONE = D(1)
PI = D("3.14159265358979323846264338327950288419716939937510582097494")


def dec(x):
  # Exact value of the double x (so orders such as 1 + 3/10.0 match the C++ grid bit for bit).
  return D(float(x))


def default_orders():
  # dp_accounting's DEFAULT_RDP_ORDERS.
  return [1 + x / 10.0 for x in range(1, 100)] + list(range(11, 64)) + [128, 256, 512, 1024]


def a_minus_one_int(q, s, alpha):
  """A_alpha - 1 for integer alpha, exact binomial sum (Mironov et al. 2019, Sec. 3.3)."""
  q, s = dec(q), dec(s)
  total = D(0)
  binom = ONE
  for k in range(alpha + 1):
    if k > 0:
      binom = binom * (alpha - k + 1) / k
    term = binom * (ONE - q) ** (alpha - k) * q ** k
    total += term * (((D(k * k - k)) / (2 * s * s)).exp() - ONE)
  return total


def a_minus_one_quad(q, s, alpha):
  """A_alpha - 1 for any alpha > 1 by trapezoidal quadrature of the definition."""
  q, s, a = dec(q), dec(s), dec(alpha)
  # Step: aliasing error ~ exp(-2 pi^2 s^2 / h^2) (Gaussian width) and ~ exp(-2 pi d / h) with
  # d = pi s^2 (branch points of the fractional power), both far below 1e-40 here.
  h = min(s / 8, s * s / 14)
  lo = -16 * s
  hi = a + 16 * s
  n = int((hi - lo) / h) + 1
  two_s2 = 2 * s * s
  norm = h / (s * (2 * PI).sqrt())
  total = D(0)
  for i in range(n + 1):
    z = lo + i * h
    r = ((2 * z - 1) / two_s2).exp()
    y = q * (r - 1)
    g = (a * (ONE + y).ln()).exp() - ONE
    w = D(1) / 2 if i in (0, n) else ONE
    total += w * (-(z * z) / two_s2).exp() * g
  return total * norm


def rdp(q, s, alpha, quad=False):
  if q == 1:
    return dec(alpha) / (2 * dec(s) ** 2)
  if not quad and float(alpha).is_integer():
    am1 = a_minus_one_int(q, s, int(alpha))
  else:
    am1 = a_minus_one_quad(q, s, alpha)
  return (ONE + am1).ln() / (dec(alpha) - 1)


def eps_from_rdp(orders, rdps, delta):
  """Balle et al. 2020 Thm 21: eps = rdp - (log d + log a)/(a-1) + log((a-1)/a), min over a."""
  best = None
  ld = dec(delta).ln()
  for a, r in zip(orders, rdps):
    a = dec(a)
    e = r - (ld + a.ln()) / (a - 1) + ((a - 1) / a).ln()
    if best is None or e < best[0]:
      best = (e, a)
  return best


def epsilon(q, s, steps, delta, orders=None, quad_orders=None):
  orders = orders or default_orders()
  rdps = []
  for a in orders:
    rdps.append(rdp(q, s, a) * steps)
  return eps_from_rdp(orders, rdps, delta)


def main():
  out = sys.stdout
  out.write("# RDP per step, A-1 exact/quadrature (q, sigma, alpha): rdp\n")
  cases = [
      (0.01, 1.0, 2), (0.01, 1.0, 32), (1e-6, 100.0, 2), (1e-6, 0.3, 8), (0.5, 0.3, 5),
      (0.999, 2.0, 16), (0.02, 0.8, 1024), (0.3, 5.0, 128),
  ]
  for q, s, a in cases:
    exact = rdp(q, s, a)
    quad = rdp(q, s, a, quad=True) if a <= 32 else None
    out.write(f"int  q={q!r} s={s!r} a={a}: {exact:.20e}" +
              (f"  quad={quad:.20e}" if quad is not None else "") + "\n")
  frac = [
      (0.01, 1.0, 1.5), (0.01, 1.0, 10.9), (1e-6, 100.0, 2.5), (1e-6, 0.3, 3.3),
      (0.5, 0.3, 1.1), (0.5, 100.0, 1.1), (0.999, 2.0, 7.7), (256 / 60000, 1.1, 4.5),
      (0.1, 0.5, 9.9), (0.05, 3.0, 1.2),
  ]
  for q, s, a in frac:
    out.write(f"frac q={q!r} s={s!r} a={a!r}: {rdp(q, s, a):.20e}\n")
  out.flush()
  out.write("# epsilon (q, sigma, steps, delta): eps at optimal order\n")
  eps_cases = [
      (256 / 60000, 1.1, 14063, 1e-5),   # TF Privacy MNIST tutorial, 60 epochs
      (256 / 60000, 1.1, 3516, 1e-5),    # 15 epochs
      (0.01, 1.0, 10000, 1e-5),
      (1e-3, 0.8, 1000000, 1e-6),
      (1e-6, 100.0, 10000000, 1e-12),
      (0.5, 0.3, 10, 1e-2),
      (1.0, 10.0, 100, 1e-5),
  ]
  for q, s, t, d in eps_cases:
    e, a = epsilon(q, s, t, d)
    out.write(f"eps q={q!r} s={s!r} T={t} delta={d!r}: {e:.15e} order={a}\n")
    out.flush()
  # The TF Privacy tutorial's classic figure used the older conversion eps = rdp - log(d)/(a-1)
  # (Mironov 2017, Prop. 3) on the grid 1.1..10.9, 12..63; reproduce it for the record.
  q, s, t, d = 256 / 60000, 1.1, 14063, 1e-5
  old_orders = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))
  best = min((rdp(q, s, a) * t - dec(d).ln() / (dec(a) - 1), a) for a in old_orders)
  out.write(f"classic-conversion eps q={q!r} s={s!r} T={t} delta={d!r}: {best[0]:.6e} order={best[1]}\n")


if __name__ == "__main__":
  main()
