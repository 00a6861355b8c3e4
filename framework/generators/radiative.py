"""Radiative mu e -> mu e gamma in the collinear leading-log approximation, photon off the electron.

Model
-----
An elastic scatter with momentum transfer t on the *muon* line (t = t13, drawn from the elastic
dsigma/dt with running and the elastic cuts, :class:`~muone.generators.elastic.ElasticSampler`)
is followed by the emission of a photon from the outgoing electron, with probability density

    dP = (alpha/2pi) P(z) dz  y dy/(1 + y)^2,   P(z) = (1 + (1 - z)^2)/z,
    0 <= y <= Y = |t|/m_e^2,   z E_e >= photon_energy_min,

where z = E_gamma/(E_gamma + E_e') is the photon's share of the radiating electron's energy,
E_e = m_e - t/(2 m_e) is the elastic electron energy, and y = (theta/theta_0)^2 measures the
photon angle theta to the radiating electron, theta_0 = m_e/E (small angles). The angular factor
theta^2 dtheta^2/(theta^2 + theta_0^2)^2 is the eikonal (soft-photon) radiation pattern of a
massive charge with its dead cone; integrated up to theta_max = sqrt(|t|)/E it gives the large
logarithm of the leading-log structure functions,

    int_0^Y y dy/(1 + y)^2 = ln(1 + Y) - Y/(1 + Y) = ln(|t|/m_e^2) - 1 + O(m_e^2/|t|),

so the emission probability above the threshold is (alpha/2pi) [ln(|t|/m_e^2) - 1]
int_{z_min}^1 P(z) dz, and its soft limit (alpha/pi)(ln(|t|/m_e^2) - 1) dE_gamma/E_gamma is the
soft-photon factor of the scattered electron line (Yennie, Frautschi, Suura, Ann. Phys. 13 (1961)
379; collinear splitting: Altarelli-Parisi; QED leading-log structure functions: Kuraev, Fadin,
Sov. J. Nucl. Phys. 41 (1985) 466). (A bare theta/(theta^2 + theta_0^2)^2 would not produce the
logarithm: its integral does not depend on t.)

Kinematics (exact four-momentum conservation)
--------------------------------------------
The electron that radiates is off shell: (e gamma) has mass M^2 = m_e^2 + Q^2 with
Q^2 = z m_e^2 (1 + y)/(1 - z) (the invariant 2 p_e'.k; in the collinear limit Q^2 (1 - z) = z m_e^2
+ z E^2 theta^2, which defines y exactly). The muon keeps t13 = t: the exchanged photon has
q^2 = t and energy q0 = (Q^2 - t)/(2 m_e), the (e gamma) system X = p_e + q is built exactly (muon
from 2 -> 2 kinematics with an outgoing mass M), and X -> e gamma is done in the X rest frame
with the decay angle that gives the lab energy share z exactly. Events where the muon cannot
supply q0 at this t (Q^2 > Q^2_max(t, E), near the elastic end point t_min) are outside the
phase space: the emission probability includes this limit.

So mc.t_mu = t13 = the generated t (photon propagator), mc.t = t24 = (p_e - p_e')^2 from the
four-vectors (|t24| <= |t13|), and the VP weight is c5 vp(t13)^2 (MESMER convention) with
c5 = weight_norun.

Cross section: sigma = int dE p(E) int dt dsigma_el/dt (cuts, running) P_emit(t, E), P_emit by
quadrature (Gauss-Legendre in ln|t|, analytic in z where the angle limit is Y, Gauss-Legendre in
ln(1 + y) where the kinematic limit is).

Limits of validity: leading log only (no finite O(alpha) terms, no muon-line radiation, no
interference, no virtual corrections: it is not a substitute for MESMER); collinear, so wide-angle
photons (theta ~ theta_max) are approximate; cuts (ee_min, ee_max, theta_e_max, theta_mu_min) apply
to the underlying elastic kinematics (E_e = m_e - t13/(2 m_e)), not to the final electron.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from muone.generators.elastic import ElasticCuts, ElasticSampler
from muone.generators.envelope import accept_loop, check_ratio
from muone.generators.frames import rotate_from_z
from muone.physics import constants as C
from muone.physics.quadrature import composite_nodes, gauss_legendre

ALPHA_2PI = C.ALPHA / (2.0 * math.pi)
ME2 = C.M_E**2


def splitting_primitive(z):
    """J(z) = int P(z) dz = 2 ln z - 2 z + z^2/2 for P(z) = (1 + (1 - z)^2)/z."""
    z = np.asarray(z, np.float64)
    return 2.0 * np.log(z) - 2.0 * z + 0.5 * z * z


def splitting_integral(z_min):
    """I(z_min) = int_{z_min}^1 P(z) dz (0 for z_min >= 1)."""
    z_min = np.asarray(z_min, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = splitting_primitive(1.0) - splitting_primitive(np.minimum(z_min, 1.0))
    return np.where(z_min < 1.0, value, 0.0)


def angular_integral(Y):
    """G(Y) = int_0^Y y dy/(1 + y)^2 = ln(1 + Y) - Y/(1 + Y) (series below Y = 1e-3)."""
    Y = np.asarray(Y, np.float64)
    small = Y < 1e-3
    Ys = np.where(small, Y, 0.0)
    series = Ys * Ys * (0.5 - 2.0 * Ys / 3.0 + 0.75 * Ys * Ys)
    return np.where(small, series, np.log1p(Y) - Y / (1.0 + Y))


def electron_energy(t):
    """Elastic electron energy m_e - t/(2 m_e) [GeV]."""
    return C.M_E - np.asarray(t) / (2.0 * C.M_E)


def emission_probability_uncapped(t, k_min: float):
    """(alpha/2pi) I(k_min/E_e) G(|t|/m_e^2): the emission probability without the kinematic limit."""
    t = np.asarray(t, np.float64)
    return ALPHA_2PI * splitting_integral(k_min / electron_energy(t)) * angular_integral(-t / ME2)


def q2_max(t, E):
    """Largest Q^2 = M^2 - m_e^2 [GeV^2] of the (e gamma) system at muon-line t and beam energy E:
    2 m_e q0_max + t, with q0_max = E - E3_min and E3_min the energy of a muon scattered forward
    with this t (the smaller root of m^2 E3^2 - 2 c E E3 + c^2 + p^2 m^2 = 0, c = m^2 - t/2, in its
    cancellation-free form)."""
    t, E = np.asarray(t, np.float64), np.asarray(E, np.float64)
    m2 = C.M_MU**2
    p2 = (E - C.M_MU) * (E + C.M_MU)
    c = m2 - 0.5 * t
    e3_min = (c * c + p2 * m2) / (c * E + np.sqrt(p2) * np.sqrt((c - m2) * (c + m2)))
    return 2.0 * C.M_E * (E - e3_min) + t


def muon_recoil(E, t, q0):
    """Outgoing muon and exchanged momentum for beam energy E (along +z), muon-line t and energy
    transfer q0: returns (E3, q_T, q_z); q_T^2 < 0 (returned as NaN) where impossible.

    q_z = (2 E q0 - t)/(2 p) and q_T^2 = (t0 - t)(2 p p3 + 2 E E3 - 2 m^2 + t)/(4 p^2), with
    t0 = -q0^2 (m^2/(E + p) + m^2/(E3 + p3)) (p + p3 + E + E3)/(p + p3)^2 the t of forward
    scattering at this q0 (both free of cancellations)."""
    m2 = C.M_MU**2
    p = np.sqrt((E - C.M_MU) * (E + C.M_MU))
    E3 = E - q0
    with np.errstate(invalid="ignore"):
        p3 = np.sqrt((E3 - C.M_MU) * (E3 + C.M_MU))
        t0 = -q0 * q0 * (m2 / (E + p) + m2 / (E3 + p3)) * (p + p3 + E + E3) / (p + p3) ** 2
        qt2 = (t0 - t) * (2.0 * p * p3 + 2.0 * E * E3 - 2.0 * m2 + t) / (4.0 * p * p)
        qt = np.sqrt(qt2)
    qz = (2.0 * E * q0 - t) / (2.0 * p)
    return E3, qt, qz


def two_body_decay(rng: np.random.Generator, E_X, px, py, pz, M2, cos_star, m1: float, m2: float,
                   sin_star=None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """X (energy E_X, momentum p, mass^2 M2) -> 1 + 2 with daughter 1 at polar angle theta* to
    the X direction in the X rest frame (cos_star, and sin_star when known more precisely than
    from cos_star) and a uniform azimuth; returns the lab momenta of 1 and 2 (2 = X - 1, exact)."""
    P = np.sqrt(px * px + py * py + pz * pz)
    M = np.sqrt(M2)
    lam = (M2 - (m1 + m2) ** 2) * (M2 - (m1 - m2) ** 2)
    k_star = np.sqrt(np.maximum(lam, 0.0)) / (2.0 * M)
    e_star = (M2 + m1 * m1 - m2 * m2) / (2.0 * M)
    gamma, gb = E_X / M, P / M
    if sin_star is None:
        sin_star = np.sqrt(np.maximum((1.0 - cos_star) * (1.0 + cos_star), 0.0))
    phi = rng.uniform(0.0, 2.0 * math.pi, len(E_X))
    k_par = gamma * k_star * cos_star + gb * e_star
    k_x, k_y = k_star * sin_star * np.cos(phi), k_star * sin_star * np.sin(phi)
    e1 = gamma * e_star + gb * k_star * cos_star
    n = 1.0 / np.where(P > 0, P, 1.0)
    a = rotate_from_z(k_x, k_y, k_par, px * n, py * n, pz * n)
    one = {"px": a[0], "py": a[1], "pz": a[2], "E": e1}
    two = {"px": px - a[0], "py": py - a[1], "pz": pz - a[2], "E": E_X - e1}
    return one, two


class RadiativeSampler:
    """Draws (E, t, z, y) distributed as p(E) dsigma_el/dt(t, E) (alpha/2pi) P(z) y/(1 + y)^2 on the
    phase space of the module docstring (exact accept-reject).

    Proposals: E from the beam; t from the elastic envelope 1/t^2 times a piecewise-constant bound
    p_env(t) >= (alpha/2pi) 2 ln(1/z_min(t)) ln(1 + Y(t)) (48 bins in ln|t|; the bound is increasing
    in |t|, so its value at the large-|t| edge bounds the bin); z log-uniform on [z_min, 1), accepted
    with z P(z)/2; y from 1/(1 + y) on [0, Y], accepted with y/(1 + y); the kinematic limit
    Q^2 <= Q^2_max(t, E) by rejection.
    """

    def __init__(self, energy_range: tuple[float, float], cuts: ElasticCuts, k_min: float, had: Any = None,
                 leptonic: bool = True, running: bool = True) -> None:
        self.k_min = float(k_min)
        self.elastic = ElasticSampler(energy_range, cuts, had, leptonic=leptonic, running=running)
        es = self.elastic
        if not electron_energy(es.t_lo) > self.k_min:
            raise ValueError(f"photon_energy_min = {k_min} GeV is above every electron energy allowed by the cuts")
        edges = -np.exp(np.linspace(math.log(-es.t_hi), math.log(-es.t_lo), 49))  # from small to large |t|
        self.u_edges = -1.0 / edges  # u = 1/|t|, decreasing
        self.p_env = self._proposal_factor(edges[1:]) * 1.000001
        widths = self.u_edges[:-1] - self.u_edges[1:]
        mass = self.p_env * widths
        self._cdf = np.cumsum(mass) / mass.sum()
        self._cdf[-1] = 1.0
        self.envelope_integral = float(mass.sum()) * es.bound  # int bound/t^2 * p_env dt [microbarn]

    def _proposal_factor(self, t):
        """(alpha/2pi) 2 ln(1/z_min) ln(1 + Y): the integral of the z and y proposals (0 where no emission)."""
        z_min = self.k_min / electron_energy(t)
        with np.errstate(divide="ignore"):
            value = ALPHA_2PI * 2.0 * np.log(1.0 / z_min) * np.log1p(-np.asarray(t) / ME2)
        return np.where(z_min < 1.0, value, 0.0)

    def propose(self, rng: np.random.Generator, energies: Callable[[np.random.Generator, int], np.ndarray], m: int):
        """``m`` proposals: (acceptance probability incl. the phase-space indicator, columns).
        The mean acceptance times ``envelope_integral`` is the cross section (at the sampled
        beam energies)."""
        es = self.elastic
        E = energies(rng, m)
        k = np.minimum(np.searchsorted(self._cdf, rng.random(m), side="right"), len(self._cdf) - 1)
        u = self.u_edges[k + 1] + (self.u_edges[k] - self.u_edges[k + 1]) * rng.random(m)
        t = -1.0 / u
        lep, had = es.deltas(t)
        ratio_t = es.density(t, E, 1.0 / (1.0 - lep - had) ** 2) * t * t / es.bound
        ratio_p = self._proposal_factor(t) / self.p_env[k]
        check_ratio(ratio_t, "radiative (elastic part)")
        check_ratio(ratio_p, "radiative (emission part)")
        z_min = np.minimum(self.k_min / electron_energy(t), 1.0)
        z = z_min ** (1.0 - rng.random(m))  # log-uniform on [z_min, 1)
        Y = -t / ME2
        y = np.expm1(rng.random(m) * np.log1p(Y))  # density 1/(1 + y) on [0, Y]
        ratio = ratio_t * ratio_p * (1.0 - z + 0.5 * z * z) * (y / (1.0 + y))
        with np.errstate(divide="ignore", invalid="ignore"):
            Q2 = z * ME2 * (1.0 + y) / (1.0 - z)
            ok = (z < 1.0) & (Q2 <= q2_max(t, E))
        return ratio * ok, {"E": E, "t": t, "z": z, "y": y, "Q2": Q2, "lep": lep, "had": had}

    def sample(self, rng: np.random.Generator, energies: Callable[[np.random.Generator, int], np.ndarray], n: int) -> dict[str, np.ndarray]:
        """``n`` events: E, t (= t13), z, y, Q2 and the generation Delta_alpha_lep, Delta_alpha_had at t."""
        def propose(m):
            ratio, cols = self.propose(rng, energies, m)
            return rng.random(m) < ratio, cols

        return accept_loop(n, propose, 0.4)

    def emission_probability(self, t: np.ndarray, E: np.ndarray, n_y: int = 48) -> np.ndarray:
        """P_emit(t, E) = (alpha/2pi) int dz P(z) G(min(Y, y_kin(z))) over z >= z_min (arrays of
        equal shape; 0 where no emission is possible).

        With Q2m = Q^2_max(t, E): y_kin(z) = Q2m (1 - z)/(z m_e^2) - 1; for z <= z_c = Q2m/(Q2m + m_e^2 + |t|)
        the angle limit Y = |t|/m_e^2 applies (analytic in z), above it y_kin (integrated over
        w = ln(1 + y_kin) with ``n_y`` Gauss-Legendre points, dz/dy = -Q2m m_e^2/(Q2m + m_e^2 (1 + y))^2)."""
        t, E = np.broadcast_arrays(np.asarray(t, np.float64), np.asarray(E, np.float64))
        Y = -t / ME2
        z_min = self.k_min / electron_energy(t)
        Q2m = np.maximum(q2_max(t, E), 0.0)
        z_c = Q2m / (Q2m + ME2 + (-t))
        # part 1: z in [z_min, z_c], y up to Y
        lo = np.minimum(z_min, 1.0)
        hi = np.maximum(z_c, lo)
        with np.errstate(divide="ignore", invalid="ignore"):
            part1 = np.where(hi > lo, (splitting_primitive(hi) - splitting_primitive(np.where(lo > 0, lo, 1.0))) * angular_integral(Y), 0.0)
        # part 2: y_kin from min(Y, y_kin(z_min)) down to 0 as z goes from max(z_min, z_c) to z_kin
        with np.errstate(divide="ignore", invalid="ignore"):
            y_at_zmin = np.where(z_min < 1.0, Q2m * (1.0 - z_min) / (z_min * ME2) - 1.0, -1.0)
        y_top = np.minimum(Y, y_at_zmin)
        w_top = np.log1p(np.maximum(y_top, 0.0))
        x, wq = gauss_legendre(n_y)
        w = 0.5 * (x + 1.0)[..., None] * w_top[None, ...] if w_top.ndim else 0.5 * (x + 1.0) * w_top
        yk = np.expm1(w)
        denom = Q2m + ME2 * (1.0 + yk)
        zk = Q2m / np.where(denom > 0, denom, 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            Pz = (1.0 + (1.0 - zk) ** 2) / zk
            dzdy = Q2m * ME2 / denom**2
            integrand = np.where(zk > 0, Pz * angular_integral(yk) * dzdy * (1.0 + yk), 0.0)
        wq_b = wq.reshape((-1,) + (1,) * w_top.ndim)
        part2 = 0.5 * w_top * np.sum(wq_b * integrand, axis=0)
        part2 = np.where(y_top > 0, part2, 0.0)
        return ALPHA_2PI * (part1 + part2)

    def cross_section(self, nodes: np.ndarray, weights: np.ndarray, t_range: tuple[float, float] | None = None) -> float:
        """sigma [microbarn] = sum_E w_E int dt dsigma_el/dt P_emit(t, E) (Gauss-Legendre in ln|t|,
        panels 0.1 wide, 16 points), over the cuts, or over ``t_range`` (t_lo, t_hi) within them."""
        es = self.elastic
        t_lo, t_hi = (es.t_lo, es.t_hi) if t_range is None else (max(t_range[0], es.t_lo), min(t_range[1], es.t_hi))
        if not t_lo < t_hi:
            return 0.0
        u0, u1 = math.log(-t_hi), math.log(-t_lo)
        lu, wu = composite_nodes(np.linspace(u0, u1, max(1, math.ceil((u1 - u0) / 0.1)) + 1), 16)
        a = np.exp(lu)
        total = 0.0
        for E, wE in zip(nodes, weights):
            Ev = np.full_like(a, float(E))
            f = es.density(-a, Ev) * self.emission_probability(-a, Ev)
            total += float(wE) * float(np.dot(wu, a * f))
        return float(total)


def radiative_final_state(rng: np.random.Generator, E: np.ndarray, t: np.ndarray, z: np.ndarray, y: np.ndarray, Q2: np.ndarray) -> dict[str, np.ndarray]:
    """Momenta [GeV] of mu', e' and gamma in the frame where the beam flies along +z (module
    docstring: fixed t13 = t, (e gamma) mass^2 m_e^2 + Q^2, photon share z exact)."""
    n = len(E)
    q0 = (Q2 - t) / (2.0 * C.M_E)
    E3, qt, qz = muon_recoil(E, t, q0)
    phi = rng.uniform(0.0, 2.0 * math.pi, n)
    cphi, sphi = np.cos(phi), np.sin(phi)
    p = np.sqrt((E - C.M_MU) * (E + C.M_MU))
    E_X = C.M_E + q0
    px, py = qt * cphi, qt * sphi
    M2 = ME2 + Q2
    P = np.sqrt(px * px + py * py + qz * qz)
    # photon share z in the lab <=> cos theta* = (2 z M^2/Q^2 - 1)/beta; 1 - cos written without cancellation
    beta = P / E_X
    one_m_beta = M2 / (E_X * (E_X + P))
    frac = 2.0 * (1.0 - z) * y / (1.0 + y)
    one_m_c = (frac - one_m_beta) / beta
    one_m_c = np.clip(one_m_c, 0.0, 2.0)
    cos_star = 1.0 - one_m_c
    sin_star = np.sqrt(one_m_c * (2.0 - one_m_c))
    gam, ele = two_body_decay(rng, E_X, px, py, qz, M2, cos_star, 0.0, C.M_E, sin_star)
    return {
        "mu_px": -px, "mu_py": -py, "mu_pz": p - qz, "mu_E": E3,
        "e_px": ele["px"], "e_py": ele["py"], "e_pz": ele["pz"], "e_E": ele["E"],
        "g_px": gam["px"], "g_py": gam["py"], "g_pz": gam["pz"], "g_E": gam["E"],
    }
