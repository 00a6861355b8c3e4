"""Vertexing kernels: the three-line vertex fit, the angles and the mu/e assignment (numba).

Used by the ``vertexing`` processor (plugins/vertexing.py). The method as a whole (candidates,
cuts, angles, the three assignment regimes) and the parameters are described in
docs/reconstruction.md, section ``vertexing``; this docstring details the fit. Everything works on
flat arrays with per-event offsets; no Python loop over events.

Track model (docs/reconstruction.md, ``tracks``): a straight line
``x(z) = x + tx (z - z_ref)``, ``y(z) = y + ty (z - z_ref)`` with the 4 x 4 covariance ``C`` of
``(x, y, tx, ty)`` at ``z_ref``.

Vertex fit. For a vertex ``(X, Y, Z)`` the residual of line ``i`` in the transverse plane at ``Z`` is
``r_i = (X, Y) - p_i(Z)``, ``p_i(Z) = (x_i + tx_i dz_i, y_i + ty_i dz_i)``, ``dz_i = Z - z_ref,i``,
whose covariance is the propagated ``S_i(Z) = J C_i J^T``, ``J = [[1, 0, dz, 0], [0, 1, 0, dz]]``.
The fit minimises

    chi2(X, Y, Z) = sum_i r_i^T S_i(Z)^-1 r_i .

This is exactly the chi2 of the full measurement model (each track's four measured parameters
against a line through the vertex with free slopes) with the slopes profiled out, so its minimum
is the least-squares vertex. ``r_i`` is linear in (X, Y, Z); only the weights depend on Z (weakly).
The minimiser (:func:`fit_vertex`): one Gauss-Newton step with the weights at the target centre
(``A = sum M_i^T S_i^-1 M_i``, ``M_i = [[1, 0, -tx_i], [0, 1, -ty_i]]``; it lands on the
fixed-weight optimum whatever the start), then Newton steps with the exact gradient and Hessian
(including the first and second Z derivatives of S_i^-1), until a step shorter than ``tolerance``
in z (typically 2-3 steps in all). The vertex covariance is the inverse half Hessian;
``ndf = 2 n_lines - 3``.

Pre-selection bound (exact, no approximation): for two lines the chi2 at fixed Z, minimised over
(X, Y), is ``d(Z)^T (S_a + S_b)^-1 d(Z)`` with ``d`` their transverse separation, which is at least
``|d(Z)|^2 / trace(S_a + S_b)``. Minimising ``|d|^2`` and maximising the trace over the z window
gives a lower bound of the chi2 of every vertex in the window that uses both lines: pairs whose
bound exceeds ``max_chi2`` cannot give an accepted candidate and are skipped without a fit.
"""

from __future__ import annotations

import math

import numpy as np
from muone.physics.constants import M_E, M_MU
from numba import njit

# indices into the float parameter vector of :func:`vertex_events`
F_MAX_CHI2 = 0
F_P = 1  # beam momentum p [GeV]
F_P2 = 2  # p^2
F_S = 3  # Mandelstam s
F_THETA_E_MIN = 4  # theta_mu,max + electron_angle_margin [rad]
F_AMBIGUITY = 5  # ambiguity margin of the elastic-curve distances [rad]
F_DIV2 = 6  # nominal beam: variance of its slope per plane [rad^2]
F_CALO_Z = 7
F_CALO_WINDOW = 8
F_CALO_SIG_POS = 9
F_CALO_SIG_E = 10  # relative
F_CALO_NSIG = 11
F_HAS_CALO = 12
F_TOL = 13
F_Z_GUARD = 14
F_E_NSIG = 15  # electron_angle_nsigma
F_AMB_NSIG = 16  # ambiguity_nsigma
F_P_HI, F_P2_HI, F_S_HI = 17, 18, 19  # p, p^2, s at beam_energy (1 + beam_energy_spread)
F_P_LO, F_P2_LO, F_S_LO = 20, 21, 22  # ... at beam_energy (1 - beam_energy_spread)
F_TGT_MCS = 23  # target_mcs_scale
F_BEAM_E = 24  # beam_energy
N_FPAR = 25

I_MAX_ITER = 0
I_FALLBACK = 1
N_IPAR = 2

#: columns of the per-call work array of :func:`fit_vertex`
W_X, W_Y, W_Z, W_CHI2, W_CXX, W_CXY, W_CXZ, W_CYY, W_CYZ, W_CZZ, W_ITER = range(11)
N_WORK = 11


def elastic_constants(beam_energy: float) -> tuple[float, float, float]:
    """(p, p^2, s) of a muon beam of ``beam_energy`` [GeV] on an electron at rest."""
    p2 = (beam_energy - M_MU) * (beam_energy + M_MU)
    s = M_MU * M_MU + M_E * M_E + 2.0 * M_E * beam_energy
    return math.sqrt(p2), p2, s


@njit(cache=True, error_model="numpy")
def electron_energy_elastic(theta_e: float, p2: float, s: float) -> float:  # pragma: no cover - numba
    """E_e(theta_e) on the elastic curve [GeV] (muone.physics.electron_energy_from_theta)."""
    if theta_e < 0.0 or theta_e > 0.5 * math.pi:
        return math.nan
    c = math.cos(theta_e)
    sn = math.sin(theta_e)
    return M_E + 2.0 * M_E * p2 * c * c / (s + p2 * sn * sn)


@njit(cache=True, error_model="numpy")
def theta_mu_elastic(theta_e: float, p: float, p2: float, s: float) -> float:  # pragma: no cover - numba
    """theta_mu(theta_e) on the elastic curve [rad] (muone.physics.theta_mu_from_theta_e)."""
    if theta_e < 0.0 or theta_e > 0.5 * math.pi:
        return math.nan
    c = math.cos(theta_e)
    sn = math.sin(theta_e)
    t = 2.0 * M_E * p2 * c * c / (s + p2 * sn * sn)
    pe = math.sqrt(t * (t + 2.0 * M_E))
    return math.atan2(pe * sn, p - pe * c)


@njit(cache=True, error_model="numpy", inline="always")
def _curve_point(c, sn, p, p2, s):  # pragma: no cover - numba
    """theta_mu and the electron kinetic energy T on the elastic curve from cos, sin of theta_e."""
    den = s + p2 * sn * sn
    t = 2.0 * M_E * p2 * c * c / den
    pe = math.sqrt(t * (t + 2.0 * M_E))
    return math.atan2(pe * sn, p - pe * c), t


@njit(cache=True, error_model="numpy")
def elastic_curve(theta_e, fpar, with_spread):  # pragma: no cover - numba
    """The elastic curve at the electron angle ``theta_e`` for the beam energy of ``fpar``:
    (theta_mu, d theta_mu / d theta_e, E_e, d E_e / d theta_e, sigma_f, sigma_E), with the analytic
    derivatives (dT/dtheta = -4 m_e p^2 cos sin (s + p^2) / (s + p^2 sin^2)^2,
    dp_e = (T + m_e) dT / p_e) and the beam-energy-spread terms: half the changes of E_e and (when
    ``with_spread``) of theta_mu between the beam energies E (1 +- spread). One cos/sin pair."""
    if theta_e < 0.0 or theta_e > 0.5 * math.pi:
        return math.nan, math.nan, math.nan, math.nan, math.nan, math.nan
    p = fpar[F_P]
    p2 = fpar[F_P2]
    s = fpar[F_S]
    c = math.cos(theta_e)
    sn = math.sin(theta_e)
    den = s + p2 * sn * sn
    t = 2.0 * M_E * p2 * c * c / den
    dt = -4.0 * M_E * p2 * c * sn * (s + p2) / (den * den)
    pe = math.sqrt(t * (t + 2.0 * M_E))
    dpe = (t + M_E) * dt / pe if pe > 0.0 else 0.0
    num = pe * sn
    dnm = p - pe * c
    dnum = dpe * sn + pe * c
    ddnm = -dpe * c + pe * sn
    f = math.atan2(num, dnm)
    df = (dnum * dnm - num * ddnm) / (num * num + dnm * dnm)
    # beam-energy spread
    p2h = fpar[F_P2_HI]
    p2l = fpar[F_P2_LO]
    t_hi = 2.0 * M_E * p2h * c * c / (fpar[F_S_HI] + p2h * sn * sn)
    t_lo = 2.0 * M_E * p2l * c * c / (fpar[F_S_LO] + p2l * sn * sn)
    sig_f = 0.0
    if with_spread:
        f_hi, _ = _curve_point(c, sn, fpar[F_P_HI], p2h, fpar[F_S_HI])
        f_lo, _ = _curve_point(c, sn, fpar[F_P_LO], p2l, fpar[F_S_LO])
        sig_f = 0.5 * abs(f_hi - f_lo)
    return f, df, M_E + t, dt, sig_f, 0.5 * abs(t_hi - t_lo)


def flat_covariances(cov: np.ndarray) -> np.ndarray:
    """The track covariances as the flat, contiguous float64 array the kernels take (16 numbers
    per track, row-major 4 x 4 of (x, y, tx, ty))."""
    return np.ascontiguousarray(np.asarray(cov, np.float64).reshape(-1))


@njit(cache=True, error_model="numpy", inline="always")
def _terms(c, i):  # pragma: no cover - numba
    """Terms of the propagated position covariance of track ``i`` (flat covariances ``c``):
    (C00, C02, C22, C11, C13, C33, C01, C03 + C12, C23), off-diagonal elements symmetrised, so
    that at ``dz`` from z_ref: Sxx = C00 + 2 dz C02 + dz^2 C22, Syy = C11 + 2 dz C13 + dz^2 C33,
    Sxy = C01 + dz (C03 + C12) + dz^2 C23."""
    o = 16 * i
    return (c[o], 0.5 * (c[o + 2] + c[o + 8]), c[o + 10], c[o + 5], 0.5 * (c[o + 7] + c[o + 13]), c[o + 15],
            0.5 * (c[o + 1] + c[o + 4]), 0.5 * (c[o + 3] + c[o + 12] + c[o + 6] + c[o + 9]), 0.5 * (c[o + 11] + c[o + 14]))


@njit(cache=True, error_model="numpy")
def fit_vertex(ids, n, zr, x, y, tx, ty, cov, z0, max_iter, tol, z_guard, work):  # pragma: no cover - numba
    """Fit the common vertex of the ``n`` (2 or 3) lines ``ids[:n]`` (``cov``: the flat
    covariances of :func:`flat_covariances`).

    Starts at ``z0`` on the first line. The first step is Gauss-Newton with the weights at ``z0``
    (it lands on the fixed-weight optimum whatever the start); later steps are Newton steps with
    the exact gradient and Hessian, including the first and second z derivatives of the weights
    S^-1 (falling back to the Gauss-Newton matrix if that Hessian is not positive definite). It
    stops after a step with |dZ| < ``tol`` (at least two steps) or ``max_iter`` steps; the chi2 at
    the last point is the quadratic prediction chi2 + b.d of the last evaluation (exact to second
    order in the last, tiny step). Fills ``work`` (``W_*`` columns: X, Y, Z, chi2, the vertex
    covariance = the inverse half Hessian of the last evaluation, steps) and returns True on
    success; False when a propagated covariance is not positive definite, the normal matrix is
    singular (parallel lines) or Z runs more than ``z_guard`` away from ``z0``.
    """
    X = x[ids[0]] + tx[ids[0]] * (z0 - zr[ids[0]])
    Y = y[ids[0]] + ty[ids[0]] * (z0 - zr[ids[0]])
    Z = z0
    chi2 = 0.0
    inv = c00 = c01 = c02 = c11 = c12 = c22 = 0.0
    steps = 0
    for it in range(max_iter):
        a00 = a01 = a02 = a11 = a12 = a22 = 0.0  # Gauss-Newton half Hessian
        e02 = e12 = e22 = 0.0  # its exact corrections from the z dependence of the weights
        b0 = b1 = b2 = 0.0  # half gradient
        chi2 = 0.0
        for k in range(n):
            i = ids[k]
            dz = Z - zr[i]
            k00, k02, k22, k11, k13, k33, k01, k0312, k23 = _terms(cov, i)
            sxx = k00 + dz * (2.0 * k02 + dz * k22)
            syy = k11 + dz * (2.0 * k13 + dz * k33)
            sxy = k01 + dz * (k0312 + dz * k23)
            det = sxx * syy - sxy * sxy
            if not (det > 0.0) or not (sxx > 0.0):
                return False
            idet = 1.0 / det
            wxx = syy * idet
            wyy = sxx * idet
            wxy = -sxy * idet
            rx = X - (x[i] + tx[i] * dz)
            ry = Y - (y[i] + ty[i] * dz)
            ux = wxx * rx + wxy * ry  # u = W r
            uy = wxy * rx + wyy * ry
            chi2 += rx * ux + ry * uy
            t0 = tx[i]
            t1 = ty[i]
            wtx = wxx * t0 + wxy * t1  # W t
            wty = wxy * t0 + wyy * t1
            a00 += wxx
            a01 += wxy
            a11 += wyy
            a02 -= wtx
            a12 -= wty
            a22 += t0 * wtx + t1 * wty
            b0 += ux
            b1 += uy
            b2 -= t0 * ux + t1 * uy
            if it > 0:
                # W' = -W S' W, W'' = 2 W S' W S' W - W S'' W; g = S' u, W' r = -W g
                dxx = 2.0 * (k02 + dz * k22)
                dyy = 2.0 * (k13 + dz * k33)
                dxy = k0312 + 2.0 * dz * k23
                gx = dxx * ux + dxy * uy
                gy = dxy * ux + dyy * uy
                wgx = wxx * gx + wxy * gy
                wgy = wxy * gx + wyy * gy
                b2 -= 0.5 * (ux * gx + uy * gy)  # + r^T W' r / 2
                e02 -= wgx  # + W' r
                e12 -= wgy
                # - 2 t^T W' r + r^T W'' r / 2
                e22 += 2.0 * (wtx * gx + wty * gy) + gx * wgx + gy * wgy - (k22 * ux * ux + 2.0 * k23 * ux * uy + k33 * uy * uy)
        # solve A d = -b (symmetric 3 x 3, cofactors): the exact Hessian after the first step,
        # the Gauss-Newton matrix when the exact one is not positive definite
        for full in (True, False):
            if full and it == 0:
                continue
            h02 = a02 + e02 if full else a02
            h12 = a12 + e12 if full else a12
            h22 = a22 + e22 if full else a22
            c00 = a11 * h22 - h12 * h12
            c01 = h02 * h12 - a01 * h22
            c02 = a01 * h12 - h02 * a11
            det3 = a00 * c00 + a01 * c01 + h02 * c02
            if det3 > 1e-12 * (a00 * a11 * h22) and c00 > 0.0:
                break
        if not (det3 > 1e-12 * (a00 * a11 * h22)):
            return False
        c11 = a00 * h22 - h02 * h02
        c12 = a01 * h02 - a00 * h12
        c22 = a00 * a11 - a01 * a01
        inv = 1.0 / det3
        d0 = -(c00 * b0 + c01 * b1 + c02 * b2) * inv
        d1 = -(c01 * b0 + c11 * b1 + c12 * b2) * inv
        d2 = -(c02 * b0 + c12 * b1 + c22 * b2) * inv
        X += d0
        Y += d1
        Z += d2
        chi2 += b0 * d0 + b1 * d1 + b2 * d2
        steps = it + 1
        if not (abs(Z - z0) < z_guard):
            return False
        if it > 0 and abs(d2) < tol:
            break
    work[W_X] = X
    work[W_Y] = Y
    work[W_Z] = Z
    work[W_CHI2] = max(0.0, chi2)
    work[W_CXX] = c00 * inv
    work[W_CXY] = c01 * inv
    work[W_CXZ] = c02 * inv
    work[W_CYY] = c11 * inv
    work[W_CYZ] = c12 * inv
    work[W_CZZ] = c22 * inv
    work[W_ITER] = steps
    return True


@njit(cache=True, error_model="numpy")
def pair_chi2_bound(a, b, zr, x, y, tx, ty, cov, zlo, zhi):  # pragma: no cover - numba
    """Lower bound of the chi2 of any vertex in [zlo, zhi] that contains lines ``a`` and ``b``
    (module docstring): min |d(Z)|^2 over the window / max trace(S_a + S_b) over the window (the
    trace is a convex quadratic in Z: its maximum is at an end)."""
    # separation d(Z) = d0 + dd (Z - zlo), minimised over [0, w]
    d0x = (x[a] + tx[a] * (zlo - zr[a])) - (x[b] + tx[b] * (zlo - zr[b]))
    d0y = (y[a] + ty[a] * (zlo - zr[a])) - (y[b] + ty[b] * (zlo - zr[b]))
    ddx = tx[a] - tx[b]
    ddy = ty[a] - ty[b]
    dd2 = ddx * ddx + ddy * ddy
    w = zhi - zlo
    u = 0.0
    if dd2 > 0.0:
        u = min(max(-(d0x * ddx + d0y * ddy) / dd2, 0.0), w)
    ex = d0x + ddx * u
    ey = d0y + ddy * u
    # trace(S_a + S_b) at both ends
    oa = 16 * a
    ob = 16 * b
    t0 = cov[oa] + cov[oa + 5] + cov[ob] + cov[ob + 5]
    ba = cov[oa + 2] + cov[oa + 8] + cov[oa + 7] + cov[oa + 13]  # 2 (C02 + C13), symmetrised
    ca = cov[oa + 10] + cov[oa + 15]
    bb = cov[ob + 2] + cov[ob + 8] + cov[ob + 7] + cov[ob + 13]
    cb = cov[ob + 10] + cov[ob + 15]
    da = zlo - zr[a]
    db = zlo - zr[b]
    tlo = t0 + da * (ba + da * ca) + db * (bb + db * cb)
    da += w
    db += w
    thi = t0 + da * (ba + da * ca) + db * (bb + db * cb)
    tmax = max(tlo, thi)
    if not (tmax > 0.0):
        return math.inf
    return (ex * ex + ey * ey) / tmax


@njit(cache=True, error_model="numpy")
def angles(in_tx, in_ty, tx1, ty1, tx2, ty2):  # pragma: no cover - numba
    """(theta_1, theta_2, acoplanarity) of two outgoing directions n_k = (tx_k, ty_k, 1) relative to
    the incoming direction n = (in_tx, in_ty, 1): theta_k = atan2(|n x n_k|, n . n_k) (3D opening
    angle, accurate at small angles) and acoplanarity = pi - dphi, dphi the azimuthal separation of
    n_1 and n_2 about n, as atan2(|n . (n_1 x n_2)|, -(n x n_1) . (n x n_2)) in [0, pi] (the
    cross products with n are the azimuthal directions rotated by 90 degrees; no normalisation is
    needed: both arguments of each atan2 scale alike)."""
    # n x n1, n x n2 (n = (in_tx, in_ty, 1))
    c1x = in_ty - ty1
    c1y = tx1 - in_tx
    c1z = in_tx * ty1 - in_ty * tx1
    c2x = in_ty - ty2
    c2y = tx2 - in_tx
    c2z = in_tx * ty2 - in_ty * tx2
    th1 = math.atan2(math.sqrt(c1x * c1x + c1y * c1y + c1z * c1z), in_tx * tx1 + in_ty * ty1 + 1.0)
    th2 = math.atan2(math.sqrt(c2x * c2x + c2y * c2y + c2z * c2z), in_tx * tx2 + in_ty * ty2 + 1.0)
    # n . (n1 x n2)
    triple = in_tx * (ty1 - ty2) + in_ty * (tx2 - tx1) + (tx1 * ty2 - ty1 * tx2)
    acop = math.atan2(abs(triple), -(c1x * c2x + c1y * c2y + c1z * c2z))
    return th1, th2, acop


@njit(cache=True, error_model="numpy")
def calo_match(k, zr, x, y, tx, ty, ee, dedt, sig_theta, sig_beam, c0, c1, clu_e, clu_x, clu_y, fpar):  # pragma: no cover - numba
    """Best cluster (global index, -1 if none) for track ``k`` taken as the electron with the
    elastic energy ``ee`` = E_e(theta) (derivative ``dedt``, angle uncertainty ``sig_theta``,
    beam-energy-spread uncertainty ``sig_beam``), and its score. With
    sigma_E^2 = (calo_energy_sigma E)^2 + (dE_e/dtheta sig_theta)^2 + sig_beam^2, a cluster
    matches when its distance d to the track's extrapolation to the calorimeter front face is
    below calo_window and |E_cluster - E| < calo_energy_nsigma sigma_E; score =
    (d / calo_position_sigma)^2 + ((E_cluster - E) / sigma_E)^2, the lowest wins."""
    best = -1
    best_score = math.inf
    if fpar[F_HAS_CALO] == 0.0 or c1 <= c0:
        return best, best_score
    dz = fpar[F_CALO_Z] - zr[k]
    px = x[k] + tx[k] * dz
    py = y[k] + ty[k] * dz
    sig_e = math.sqrt((fpar[F_CALO_SIG_E] * ee) ** 2 + (dedt * sig_theta) ** 2 + sig_beam * sig_beam)
    window2 = fpar[F_CALO_WINDOW] * fpar[F_CALO_WINDOW]
    for j in range(c0, c1):
        ddx = clu_x[j] - px
        ddy = clu_y[j] - py
        d2 = ddx * ddx + ddy * ddy
        if d2 > window2:
            continue
        pull = (clu_e[j] - ee) / sig_e
        if not (abs(pull) < fpar[F_CALO_NSIG]):
            continue
        score = d2 / (fpar[F_CALO_SIG_POS] * fpar[F_CALO_SIG_POS]) + pull * pull
        if score < best_score:
            best_score = score
            best = j
    return best, best_score


@njit(cache=True, error_model="numpy")
def radial_sigma(k, i_in, in_tx, in_ty, tx, ty, cov, div2, extra):  # pragma: no cover - numba
    """Uncertainty of the angle of track ``k`` relative to the incoming direction (slopes
    ``in_tx, in_ty``): the slope covariance of track ``k`` plus that of the incoming track ``i_in``
    (or ``div2`` per plane for the nominal beam, ``i_in < 0``) projected on the radial direction of
    the slope difference (small-angle approximation), plus the isotropic variance ``extra`` (per
    plane; the multiple scattering in the target around the vertex)."""
    o = 16 * k
    cxx = cov[o + 10]
    cyy = cov[o + 15]
    cxy = 0.5 * (cov[o + 11] + cov[o + 14])
    if i_in >= 0:
        o = 16 * i_in
        cxx += cov[o + 10]
        cyy += cov[o + 15]
        cxy += 0.5 * (cov[o + 11] + cov[o + 14])
    else:
        cxx += div2
        cyy += div2
    dx = tx[k] - in_tx
    dy = ty[k] - in_ty
    r2 = dx * dx + dy * dy
    if r2 > 0.0:
        var = (dx * dx * cxx + 2.0 * dx * dy * cxy + dy * dy * cyy) / r2
    else:
        var = 0.5 * (cxx + cyy)
    var += extra
    return math.sqrt(var) if var > 0.0 else 0.0


@njit(cache=True, error_model="numpy")
def highland(p, x_over_x0):  # pragma: no cover - numba
    """Highland projected-angle RMS [rad] of a unit-charge particle of momentum ``p`` [GeV]
    (beta = 1) through ``x_over_x0`` radiation lengths (0 for no material; the log term clipped
    at 0)."""
    if not (x_over_x0 > 0.0) or not (p > 0.0):
        return 0.0
    f = 1.0 + 0.038 * math.log(x_over_x0)
    f = max(f, 0.0)
    return 0.0136 / p * math.sqrt(x_over_x0) * f


@njit(cache=True, error_model="numpy")
def assign(a, b, th_a, th_b, sig_a, sig_b, zr, x, y, tx, ty, c0, c1, clu_e, clu_x, clu_y, fpar):  # pragma: no cover - numba
    """mu/e assignment of the pair (a, b) with angles th_a, th_b and their uncertainties sig_a,
    sig_b. Returns (electron is b, assignment code 0/1/2, matched cluster (global index or -1),
    theta_mu,el(theta_e) of the chosen electron).

    0: the larger angle exceeds theta_mu,max + electron_angle_margin + electron_angle_nsigma * its
    sigma: that track is the electron. Otherwise the elastic-curve distances D_a = |th_b - f(th_a)|
    (a is the electron) and D_b = |th_a - f(th_b)| and their significances z_a = D_a / sigma_a',
    sigma_a'^2 = sig_b^2 + (f'(th_a) sig_a)^2 + (beam-spread change of f(th_a))^2 (likewise z_b):
    the smaller significance wins (1),
    unless both assignments are compatible with the curve (max(z_a, z_b) < ambiguity_nsigma) or
    |D_a - D_b| < ambiguity_margin, in which case the candidate with the best calorimeter match
    decides (2); without any match the curve decides (1). The matched cluster is the electron's
    best match in every case."""
    if th_b > th_a:
        big = th_b
        sig_big = sig_b
    else:
        big = th_a
        sig_big = sig_a
    if big > fpar[F_THETA_E_MIN] + fpar[F_E_NSIG] * sig_big:
        if th_b > th_a:
            fb, dfb, eb, deb, sfb, seb = elastic_curve(th_b, fpar, False)
            j, _ = calo_match(b, zr, x, y, tx, ty, eb, deb, sig_b, seb, c0, c1, clu_e, clu_x, clu_y, fpar)
            return True, 0, j, fb
        fa, dfa, ea, dea, sfa, sea = elastic_curve(th_a, fpar, False)
        j, _ = calo_match(a, zr, x, y, tx, ty, ea, dea, sig_a, sea, c0, c1, clu_e, clu_x, clu_y, fpar)
        return False, 0, j, fa
    fa, dfa, ea, dea, sfa, sea = elastic_curve(th_a, fpar, True)
    fb, dfb, eb, deb, sfb, seb = elastic_curve(th_b, fpar, True)
    dist_a = abs(th_b - fa)  # a is the electron
    dist_b = abs(th_a - fb)  # b is the electron
    sa2 = sig_b * sig_b + (dfa * sig_a) ** 2 + sfa * sfa
    sb2 = sig_a * sig_a + (dfb * sig_b) ** 2 + sfb * sfb
    za = dist_a / math.sqrt(sa2) if sa2 > 0.0 else math.inf
    zb = dist_b / math.sqrt(sb2) if sb2 > 0.0 else math.inf
    e_is_b = zb < za
    if e_is_b:
        ja, sca = -1, math.inf
        jb, scb = calo_match(b, zr, x, y, tx, ty, eb, deb, sig_b, seb, c0, c1, clu_e, clu_x, clu_y, fpar)
    else:
        ja, sca = calo_match(a, zr, x, y, tx, ty, ea, dea, sig_a, sea, c0, c1, clu_e, clu_x, clu_y, fpar)
        jb, scb = -1, math.inf
    if fpar[F_HAS_CALO] != 0.0 and (max(za, zb) < fpar[F_AMB_NSIG] or abs(dist_a - dist_b) < fpar[F_AMBIGUITY]):
        if e_is_b:
            ja, sca = calo_match(a, zr, x, y, tx, ty, ea, dea, sig_a, sea, c0, c1, clu_e, clu_x, clu_y, fpar)
        else:
            jb, scb = calo_match(b, zr, x, y, tx, ty, eb, deb, sig_b, seb, c0, c1, clu_e, clu_x, clu_y, fpar)
        if ja >= 0 or jb >= 0:
            if scb < sca:
                return True, 2, jb, fb
            return False, 2, ja, fa
    if e_is_b:
        return True, 1, jb, fb
    return False, 1, ja, fa


@njit(cache=True, error_model="numpy")
def vertex_events(
    trk_off, station, role, zr, x, y, tx, ty, cov, p_hyp,
    clu_off, clu_e, clu_x, clu_y,
    tgt_zlo, tgt_zhi, tgt_zc, tgt_up, tgt_out, tgt_zstart, tgt_zend, tgt_x0,
    fpar, ipar,
    o_target, o_x, o_y, o_z, o_chi2, o_ndf, o_in, o_mu, o_e, o_thmu, o_the, o_acop, o_edist,
    o_calo, o_assign, o_best, o_count, stats,
):  # pragma: no cover - numba
    """Vertex candidates of every event (flat track arrays with offsets ``trk_off``, flat cluster
    arrays with offsets ``clu_off``, per-target window [zlo, zhi], centre, upstream station (-1:
    none), outgoing station, faces and radiation lengths per mm). Candidates are written to the ``o_*`` arrays up to their
    capacity; ``o_count`` gets the number per event. Returns the total number of accepted
    candidates (when it exceeds the capacity, call again with larger arrays). ``stats`` (int64, 4)
    accumulates: pairs of outgoing tracks tried, pairs passing the chi2 bound, vertex fits,
    converged fits."""
    n_events = len(trk_off) - 1
    n_tgt = len(tgt_zlo)
    cap = len(o_x)
    max_chi2 = fpar[F_MAX_CHI2]
    max_iter = ipar[I_MAX_ITER]
    tol = fpar[F_TOL]
    z_guard = fpar[F_Z_GUARD]
    work = np.zeros(N_WORK)
    ids = np.zeros(3, np.int64)
    # per event, the tracks grouped by station (counting sort, stable): order[st_start[s]:st_start[s + 1]]
    n_st = 1
    for tg in range(n_tgt):
        n_st = max(n_st, tgt_up[tg] + 1, tgt_out[tg] + 1)
    st_start = np.zeros(n_st + 1, np.int64)
    st_fill = np.zeros(n_st, np.int64)
    order = np.empty(64, np.int64)
    outs = np.empty(64, np.int64)
    n_pairs = n_pass = n_fits = n_ok = 0
    ptr = 0
    for ev in range(n_events):
        t0 = trk_off[ev]
        t1 = trk_off[ev + 1]
        c0 = clu_off[ev]
        c1 = clu_off[ev + 1]
        if t1 - t0 > len(order):
            order = np.empty(2 * (t1 - t0), np.int64)
            outs = np.empty(2 * (t1 - t0), np.int64)
        st_start[:] = 0
        for t in range(t0, t1):
            st = station[t]
            if st >= 0 and st < n_st:
                st_start[st + 1] += 1
        for k in range(n_st):
            st_start[k + 1] += st_start[k]
            st_fill[k] = st_start[k]
        for t in range(t0, t1):
            st = station[t]
            if st >= 0 and st < n_st:
                order[st_fill[st]] = t
                st_fill[st] += 1
        start = ptr
        for tg in range(n_tgt):
            up = tgt_up[tg]
            out = tgt_out[tg]
            if out < 0:
                continue
            zlo = tgt_zlo[tg]
            zhi = tgt_zhi[tg]
            in_lo = 0
            n_in = 0
            if up >= 0:
                in_lo = st_start[up]
                n_in = st_start[up + 1] - in_lo
            n_out = 0
            for k in range(st_start[out], st_start[out + 1]):
                t = order[k]
                if role[t] == 1:
                    outs[n_out] = t
                    n_out += 1
            nominal = up < 0 or (n_in == 0 and ipar[I_FALLBACK] != 0)
            if n_in == 0 and not nominal:
                continue
            for ia in range(n_out):
                a = outs[ia]
                for ib in range(ia + 1, n_out):
                    b = outs[ib]
                    n_pairs += 1
                    if pair_chi2_bound(a, b, zr, x, y, tx, ty, cov, zlo, zhi) > max_chi2:
                        continue
                    n_pass += 1
                    n_cand_in = 1 if nominal else n_in
                    for qi in range(n_cand_in):
                        if nominal:
                            i = -1
                            ids[0] = a
                            ids[1] = b
                            n_lines = 2
                        else:
                            i = order[in_lo + qi]
                            if pair_chi2_bound(i, a, zr, x, y, tx, ty, cov, zlo, zhi) > max_chi2:
                                continue
                            if pair_chi2_bound(i, b, zr, x, y, tx, ty, cov, zlo, zhi) > max_chi2:
                                continue
                            ids[0] = i
                            ids[1] = a
                            ids[2] = b
                            n_lines = 3
                        n_fits += 1
                        if not fit_vertex(ids, n_lines, zr, x, y, tx, ty, cov, tgt_zc[tg], max_iter, tol, z_guard, work):
                            continue
                        n_ok += 1
                        vz = work[W_Z]
                        chi2 = work[W_CHI2]
                        if not (vz >= zlo and vz <= zhi and chi2 <= max_chi2):
                            continue
                        if nominal:
                            in_tx = 0.0
                            in_ty = 0.0
                        else:
                            in_tx = tx[i]
                            in_ty = ty[i]
                        th_a, th_b, acop = angles(in_tx, in_ty, tx[a], ty[a], tx[b], ty[b])
                        # multiple scattering in the target: downstream of the vertex for the
                        # outgoing tracks, upstream of it for the incoming one
                        zv = min(max(vz, tgt_zstart[tg]), tgt_zend[tg])
                        x_out = (tgt_zend[tg] - zv) * tgt_x0[tg]
                        x_in = (zv - tgt_zstart[tg]) * tgt_x0[tg]
                        mcs = fpar[F_TGT_MCS]
                        var_in = (mcs * highland(p_hyp[i] if i >= 0 else fpar[F_BEAM_E], x_in)) ** 2
                        sig_a = radial_sigma(a, i, in_tx, in_ty, tx, ty, cov, fpar[F_DIV2], var_in + (mcs * highland(p_hyp[a], x_out)) ** 2)
                        sig_b = radial_sigma(b, i, in_tx, in_ty, tx, ty, cov, fpar[F_DIV2], var_in + (mcs * highland(p_hyp[b], x_out)) ** 2)
                        e_is_b, code, clu, f_e = assign(a, b, th_a, th_b, sig_a, sig_b, zr, x, y, tx, ty, c0, c1, clu_e, clu_x, clu_y, fpar)
                        if e_is_b:
                            mu = a
                            el = b
                            th_mu = th_a
                            th_e = th_b
                        else:
                            mu = b
                            el = a
                            th_mu = th_b
                            th_e = th_a
                        if ptr < cap:
                            o_target[ptr] = tg
                            o_x[ptr] = work[W_X]
                            o_y[ptr] = work[W_Y]
                            o_z[ptr] = vz
                            o_chi2[ptr] = chi2
                            o_ndf[ptr] = 2 * n_lines - 3
                            o_in[ptr] = -1 if nominal else i - t0
                            o_mu[ptr] = mu - t0
                            o_e[ptr] = el - t0
                            o_thmu[ptr] = th_mu
                            o_the[ptr] = th_e
                            o_acop[ptr] = acop
                            o_edist[ptr] = th_mu - f_e
                            o_calo[ptr] = clu - c0 if clu >= 0 else -1
                            o_assign[ptr] = code
                            o_best[ptr] = False
                        ptr += 1
        o_count[ev] = ptr - start
        # best: lowest chi2/ndf (= lowest chi2 when the ndf are equal); first one on ties
        best = -1
        best_val = math.inf
        for c in range(start, min(ptr, cap)):
            val = o_chi2[c] / o_ndf[c]
            if val < best_val:
                best_val = val
                best = c
        if best >= 0:
            o_best[best] = True
    stats[0] += n_pairs
    stats[1] += n_pass
    stats[2] += n_fits
    stats[3] += n_ok
    return ptr


@njit(cache=True, error_model="numpy")
def fit_vertex_arrays(ids, n, zr, x, y, tx, ty, cov, z0, max_iter, tol, z_guard):  # pragma: no cover - numba
    """:func:`fit_vertex` returning the work array (NaN-filled on failure): for tests and studies."""
    work = np.full(N_WORK, np.nan)
    ok = fit_vertex(ids, n, zr, x, y, tx, ty, cov, z0, max_iter, tol, z_guard, work)
    if not ok:
        work[:] = np.nan
    return work
