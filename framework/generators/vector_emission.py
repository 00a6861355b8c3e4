"""mu e -> mu e V: a light vector boson V (dark photon A', L_mu - L_tau Z') radiated off the muon
line, in a Weizsaecker-Williams (equivalent-photon) approximation adapted to a muon beam on
atomic electrons (PHYSICS.md section 10).

Model
-----
Bjorken, Essig, Schuster, Toro (BEST), Phys. Rev. D 80 (2009) 075018, eqs. (9)-(10) and appendix A:
the target acts as a source of quasi-real photons (Weizsaecker-Williams flux chi) and V comes
from the Compton-like subprocess gamma mu -> mu V. With x = E_V/E_0 and U the virtuality of the
intermediate muon,

    d2sigma/(dx dcos theta_V) = 8 alpha^3 eps^2 E_0^2 x / U^2 * chi * [A(x) - B(x) E_0^2 x theta_V^2 / U^2],
    U = E_0^2 x theta_V^2 + m_V^2 (1 - x)/x + m_mu^2 x,  A = 1 - x + x^2/2,  B = x (1 - x) m_V^2,

(alpha' = eps^2 alpha is the coupling of V to the muon: eps for the dark photon, eps^2 alpha =
g'^2/(4 pi) for the Z'). Adaptations, all documented in docs/backgrounds-and-signals.md:

* muon beam: the beam mass in U is m_mu (BEST keep m_e there); the numerator terms of order
  m_mu^2 that BEST drop for electron beams are not restored (O(10-20 %) on the shape at x -> 1);
* in U as variable (dU = E_0^2 x dtheta^2): d2sigma/(dx dU) = 4 alpha^3 eps^2 chi [A/U^2 - B (U - U0)/U^4],
  U >= U0(x) = m_V^2 (1 - x)/x + m_mu^2 x, independent of the energy;
* electron target: chi -> int dt/|t| F over the electron recoil allowed by the cuts
  (|t| = 2 m_e (E_e - m_e), ee_min <= E_e <= ee_max; a point charge: no form factor), with the
  equivalent-photon flux cut off smoothly at the virtuality of the subprocess,
  F = U/(U + |t|) (the usual Q^2_max ~ hard scale of the equivalent-photon approximation, Budnev
  et al., Phys. Rep. 15 (1975) 181; BEST assume |t| << U, which the cut E_e > 1 GeV,
  |t| > 1.0e-3 GeV^2, does not guarantee). The t_min (1 - t_min/t) factor of chi is left out:
  t_min ~ (U/2E)^2 < 1e-8 GeV^2 << |t|, and the exact kinematics below enforce the true limit;
* E_0 -> E_Y = E - (E_e - m_e): x is the share of V in the energy left to the muon line after the
  electron recoil (for a heavy target the two coincide).

So the generated density is

    d3sigma/(dx dU d|t|) = 4 alpha^3 eps^2 [A/U^2 - B (U - U0)/U^4] U / (|t| (U + |t|)).

Kinematics (exact four-momentum conservation)
--------------------------------------------
The (mu V) system Y has mass W^2 = m_mu^2 + U/(1 - x) (in the collinear limit the invariant
mass of the muon line after the photon absorption; BEST: s~ = U/(1 - x)). mu e -> Y e is built
exactly at fixed t24 = t (electron energy m_e - t/(2 m_e)), then Y -> mu V in the Y rest frame with
the decay angle that gives E_V = x E_Y (clipped to the physical range, which moves x by
O(W^2/E_Y^2) ~ 1e-6 at most). The phase space is where these exist: W <= W_max(t, E), i.e.
U <= 2 Delta (1 - x), Delta = p |p_e| - (E + m_e) T_e (T_e = E_e - m_e), and E_V >= energy_min.

Cross section: the same density integrated by Gauss-Legendre quadrature over ln|t|, ln x, ln U
on this phase space and averaged over the beam energy; it scales as eps^2 (g'^2).

Dark-photon decay (PHYSICS.md section 10): Gamma(A' -> e+ e-) = alpha' m (1 + 2 m_e^2/m^2)
sqrt(1 - 4 m_e^2/m^2)/3, decay length gamma beta c tau with c tau = hbar c/Gamma, sampled from the
exponential along the A' direction; e+ e- isotropic in the A' rest frame.

Limits of validity: WW with the substitutions above; rough (factor ~2) where |t| >> U (hard
electron recoil) or x -> 1; emission off the electron line (possible for the dark photon) is not
included; no interference with the QED background mu e -> mu e e+ e-.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from muone.generators.envelope import PiecewiseEnvelope, accept_loop, check_ratio
from muone.generators.radiative import two_body_decay
from muone.physics import constants as C
from muone.physics.kinematics import electron_energy_max
from muone.physics.quadrature import composite_nodes, gauss_legendre

#: hbar c [GeV mm] (CODATA 2018: 197.3269804 MeV fm).
HBARC_GEV_MM = 1.973269804e-13


def dark_photon_width(mass, epsilon):
    """Gamma(A' -> e+ e-) [GeV] = alpha' m (1 + 2 m_e^2/m^2) sqrt(1 - 4 m_e^2/m^2)/3, alpha' = eps^2 alpha
    (PHYSICS.md section 10); 0 below threshold."""
    mass = np.asarray(mass, np.float64)
    r = (C.M_E / mass) ** 2
    return np.where(r < 0.25, epsilon**2 * C.ALPHA * mass * (1.0 + 2.0 * r) * np.sqrt(np.maximum(1.0 - 4.0 * r, 0.0)) / 3.0, 0.0)


def dark_photon_ctau(mass, epsilon):
    """Proper decay length c tau = hbar c/Gamma [mm]."""
    return HBARC_GEV_MM / dark_photon_width(mass, epsilon)


def zprime_invisible_width(mass, coupling):
    """Gamma(Z' -> nu nubar) [GeV] of the L_mu - L_tau boson below the muon threshold:
    2 x g'^2 m/(24 pi) (nu_mu and nu_tau, one helicity each)."""
    return 2.0 * coupling**2 * np.asarray(mass, np.float64) / (24.0 * math.pi)


class VectorEmissionSampler:
    """Draws (E, x, U, |t|) from p(E) d3sigma/(dx dU d|t|) (module docstring) by exact accept-reject.

    Proposals: (ln x, ln U) from a piecewise-constant envelope (128 x 96 cells) of
    h2 = x U [A/U^2 - B (U - U0)/U^4] K, accepted with h2/envelope; |t| from the exact
    conditional ~ U/(|t| (U + |t|))/K on the |t| window where this (x, U) fits at the largest beam
    energy (:meth:`tau_window`; K = int dtau U/(tau (U + tau)) over it); the E-dependent limits by
    rejection.

    Args:
        energy_range: smallest and largest beam energy [GeV].
        mass: boson mass [GeV]; alpha_prime: its coupling to the muon (eps^2 alpha, g'^2/4pi).
        ee_min, ee_max: electron energy cuts [GeV] (ee_max None: the kinematic limit).
        energy_min: smallest boson energy [GeV].
    """

    def __init__(self, energy_range: tuple[float, float], mass: float, alpha_prime: float, ee_min: float = 1.0,
                 ee_max: float | None = None, energy_min: float = 1.0) -> None:
        self.mass, self.alpha_prime = float(mass), float(alpha_prime)
        self.ee_min, self.ee_max, self.energy_min = float(ee_min), ee_max, float(energy_min)
        e_lo, e_hi = map(float, energy_range)
        self.energy_range = (e_lo, e_hi)
        self.tau_a = 2.0 * C.M_E * (self.ee_min - C.M_E)
        top = float(electron_energy_max(e_hi)) if ee_max is None else min(float(ee_max), float(electron_energy_max(e_hi)))
        self.tau_b = 2.0 * C.M_E * (top - C.M_E)
        if not self.tau_b > self.tau_a:
            raise ValueError(f"the electron-energy cuts leave no phase space (ee_min = {ee_min}, ee_max = {ee_max})")
        if not self.energy_min < e_hi:
            raise ValueError(f"energy_min = {energy_min} GeV is above the beam energy")
        #: norm of the density: 4 alpha^3 eps^2 = 4 alpha^2 alpha' [GeV^-2 -> microbarn below]
        self.norm = 4.0 * C.ALPHA**2 * self.alpha_prime * C.GEV2_TO_UB
        x_lo = self.energy_min / e_hi
        xs = np.exp(np.linspace(math.log(x_lo), 0.0, 4097))
        u_lo = float(self.u0(xs).min()) * 0.999
        Ts = np.exp(np.linspace(math.log(self.tau_a), math.log(self.tau_b), 2049)) / (2.0 * C.M_E)
        u_hi = 2.0 * float(self.delta(Ts, e_hi).max()) * 1.001
        if not u_hi > u_lo:
            raise ValueError(f"no {mass} GeV boson can be made within the cuts")
        # support of the proposal density on a fine lattice, then a 128 x 96 grid on its bounding box
        la, lb = np.linspace(math.log(x_lo), 0.0, 1025), np.linspace(math.log(u_lo), math.log(u_hi), 769)
        grid = self.h2(np.exp(la)[:, None], np.exp(lb)[None, :]) > 0
        if not grid.any():
            raise ValueError(f"no {mass} GeV boson can be made within the cuts")
        ia, ib = np.flatnonzero(grid.any(axis=1)), np.flatnonzero(grid.any(axis=0))
        a0, a1 = la[max(ia[0] - 1, 0)], la[min(ia[-1] + 1, len(la) - 1)]
        b0, b1 = lb[max(ib[0] - 1, 0)], lb[min(ib[-1] + 1, len(lb) - 1)]
        self.envelope = PiecewiseEnvelope.build(lambda a, b: self.h2(np.exp(a), np.exp(b)), np.linspace(a0, a1, 129),
                                                np.linspace(b0, b1, 97), sub=6, safety=1.2)

    # the ingredients of the density -------------------------------------------------------------
    def u0(self, x):
        """U0(x) = m_V^2 (1 - x)/x + m_mu^2 x [GeV^2]."""
        return self.mass**2 * (1.0 - x) / x + C.M_MU**2 * x

    @staticmethod
    def a_coef(x):
        return 1.0 - x + 0.5 * x * x

    def b_coef(self, x):
        return x * (1.0 - x) * self.mass**2

    def k_flux(self, U):
        """K(U) = int_{tau_a}^{tau_b} dtau U/(tau (U + tau)) = ln[tau_b (U + tau_a)/(tau_a (U + tau_b))]."""
        return np.log(self.tau_b / self.tau_a) - np.log((U + self.tau_b) / (U + self.tau_a))

    def tau_window(self, x, U):
        """|t| range [lo, hi] where a (mu V) system with this x and U fits at the largest beam
        energy (an E-independent superset of the phase space): 2 Delta(T) (1 - x) >= U, i.e. T between
        the roots of s T^2 - 2 b T + D^2 = 0, D = U/(2 (1 - x)), b = p^2 m_e - D (E + m_e); within
        [tau_a, tau_b]. Empty windows have hi = lo."""
        E = self.energy_range[1]
        p2 = (E - C.M_MU) * (E + C.M_MU)
        s = C.M_MU**2 + C.M_E**2 + 2.0 * C.M_E * E
        with np.errstate(divide="ignore", invalid="ignore"):
            D = U / (2.0 * (1.0 - x))
            b = p2 * C.M_E - D * (E + C.M_E)
            disc = b * b - s * D * D
            ok = (b > 0) & (disc > 0) & (x < 1.0)
            T2 = np.where(ok, (b + np.sqrt(np.where(ok, disc, 0.0))) / s, 0.0)
            T1 = np.where(ok, D * D / (s * np.where(ok, T2, 1.0)), 0.0)
        lo = np.maximum(self.tau_a, 2.0 * C.M_E * T1)
        hi = np.minimum(self.tau_b, 2.0 * C.M_E * T2)
        return lo, np.maximum(hi, lo)

    def h2(self, x, U):
        """Proposal-space density (without the norm): x U [A/U^2 - B (U - U0)/U^4] K(U) for U >= U0(x),
        with K = ln[hi (U + lo)/(lo (U + hi))] = int_lo^hi dtau U/(tau (U + tau)) over ``tau_window``."""
        u0 = self.u0(x)
        lo, hi = self.tau_window(x, U)
        k = np.log(hi / lo) - np.log((U + hi) / (U + lo))
        value = x * U * (self.a_coef(x) / U**2 - self.b_coef(x) * (U - u0) / U**4) * k
        return np.where(U >= u0, value, 0.0)

    def density(self, x, U, tau):
        """d3sigma/(dx dU dtau) [microbarn/GeV^4] without the phase-space limits (tau = |t|)."""
        u0 = self.u0(x)
        return self.norm * (self.a_coef(x) / U**2 - self.b_coef(x) * (U - u0) / U**4) * U / (tau * (U + tau))

    # phase space ---------------------------------------------------------------------------------
    @staticmethod
    def delta(T, E):
        """Delta(T, E) = p |p_e| - (E + m_e) T = T (2 m_e p^2 - T s)/(p |p_e| + (E + m_e) T): half the
        largest W^2 - m_mu^2 at electron kinetic energy T (cancellation-free)."""
        p2 = (E - C.M_MU) * (E + C.M_MU)
        s = C.M_MU**2 + C.M_E**2 + 2.0 * C.M_E * E
        pe = np.sqrt(T * (T + 2.0 * C.M_E))
        return T * (2.0 * C.M_E * p2 - T * s) / (np.sqrt(p2) * pe + (E + C.M_E) * T)

    def tau_max(self, E):
        """Largest |t| at beam energy E: the ee_max cut or the kinematic limit."""
        top = electron_energy_max(E)
        if self.ee_max is not None:
            top = np.minimum(top, self.ee_max)
        return 2.0 * C.M_E * (top - C.M_E)

    def in_phase_space(self, E, x, U, tau):
        """True where the event exists (module docstring)."""
        T = tau / (2.0 * C.M_E)
        E_Y = E - T
        with np.errstate(invalid="ignore"):
            return (tau <= self.tau_max(E)) & (tau >= self.tau_a) & (x * E_Y >= self.energy_min) & (U <= 2.0 * self.delta(T, E) * (1.0 - x)) & (x < 1.0)

    # sampling ------------------------------------------------------------------------------------
    def propose(self, rng: np.random.Generator, energies: Callable[[np.random.Generator, int], np.ndarray], m: int):
        """``m`` proposals: (acceptance probability incl. the phase-space indicator, columns)."""
        E = energies(rng, m)
        a, b, env = self.envelope.sample(rng, m)
        x, U = np.exp(a), np.exp(b)
        ratio = self.h2(x, U) / env
        check_ratio(ratio, self.__class__.__name__)
        # |t| given (x, U): density U/(tau (U + tau)) / K on tau_window: w = ln(tau/(U + tau)) uniform
        lo, hi = self.tau_window(x, U)
        wa = np.log(lo / (U + lo))
        wb = np.log(hi / (U + hi))
        w = wa + (wb - wa) * rng.random(m)
        tau = U / np.expm1(-w)
        ok = self.in_phase_space(E, x, U, tau)
        return ratio * ok, {"E": E, "x": x, "U": U, "tau": tau}

    def sample(self, rng: np.random.Generator, energies: Callable[[np.random.Generator, int], np.ndarray], n: int) -> dict[str, np.ndarray]:
        """``n`` events: beam energy E, boson share x, U, tau = |t24|."""
        def propose(m):
            ratio, cols = self.propose(rng, energies, m)
            return rng.random(m) < ratio, cols

        return accept_loop(n, propose, 0.3)

    # cross section -------------------------------------------------------------------------------
    def cross_section_at(self, E: float, tau_range: tuple[float, float] | None = None, x_range: tuple[float, float] | None = None) -> float:
        """sigma [microbarn] at beam energy E (optionally restricted to tau = |t| and x ranges), by
        Gauss-Legendre quadrature: ln tau (4 panels x 16), ln x (2 x 16), ln U (2 x 12)."""
        E = float(E)
        T_lo, T_hi = self._t_window(E)
        lo, hi = 2.0 * C.M_E * T_lo, 2.0 * C.M_E * T_hi
        if tau_range is not None:
            lo, hi = max(lo, tau_range[0]), min(hi, tau_range[1])
        if not hi > lo:
            return 0.0
        lt, wt = composite_nodes(np.linspace(math.log(lo), math.log(hi), 5), 16)
        tau = np.exp(lt)
        T = tau / (2.0 * C.M_E)
        E_Y = E - T
        two_delta = 2.0 * self.delta(T, E)
        # x range where U0(x) <= 2 Delta (1 - x): (m^2 + 2D) x^2 - (mV^2 + 2D) x + mV^2 <= 0
        m2, v2 = C.M_MU**2, self.mass**2
        qa, qb = m2 + two_delta, v2 + two_delta
        disc = np.sqrt(np.maximum(qb * qb - 4.0 * qa * v2, 0.0))
        x_plus = (qb + disc) / (2.0 * qa)
        x_minus = 2.0 * v2 / (qb + disc)  # = product / x_plus, no cancellation
        x_lo = np.maximum(x_minus, self.energy_min / E_Y)
        x_hi = x_plus
        if x_range is not None:
            x_lo, x_hi = np.maximum(x_lo, x_range[0]), np.minimum(x_hi, x_range[1])
        valid = x_hi > x_lo
        x_lo, x_hi = np.where(valid, x_lo, 0.5), np.where(valid, x_hi, 0.5 + 1e-9)
        gx, gwx = gauss_legendre(16)
        s = np.concatenate([0.25 * (gx + 1.0), 0.5 + 0.25 * (gx + 1.0)])  # two panels on [0, 1]
        ws = np.concatenate([0.25 * gwx, 0.25 * gwx])
        lx0, lx1 = np.log(x_lo), np.log(x_hi)
        lx = lx0[:, None] + (lx1 - lx0)[:, None] * s[None, :]  # (nt, nx)
        x = np.exp(lx)
        wx = (lx1 - lx0)[:, None] * ws[None, :]
        u0 = self.u0(x)
        u1 = np.maximum(two_delta[:, None] * (1.0 - x), u0)
        gu, gwu = gauss_legendre(12)
        su = np.concatenate([0.25 * (gu + 1.0), 0.5 + 0.25 * (gu + 1.0)])
        wsu = np.concatenate([0.25 * gwu, 0.25 * gwu])
        lu0, lu1 = np.log(u0), np.log(u1)
        lu = lu0[..., None] + (lu1 - lu0)[..., None] * su  # (nt, nx, nu)
        U = np.exp(lu)
        wu = (lu1 - lu0)[..., None] * wsu
        f = self.density(x[..., None], U, tau[:, None, None])  # per dx dU dtau
        inner = np.sum(wu * U * f, axis=2)  # int dU
        inner = np.sum(wx * x * inner, axis=1)  # int dx
        inner = np.where(valid, inner, 0.0)
        return float(np.dot(wt, tau * inner))

    def _t_window(self, E: float) -> tuple[float, float]:
        """Electron kinetic-energy window [GeV] where a boson can be made (W_max >= m_mu + m_V)
        within the cuts: Delta(T) >= Delta_c = m_V (m_V + 2 m_mu)/2 between the roots of
        s T^2 - 2 b T + Delta_c^2 = 0, b = p^2 m_e - Delta_c (E + m_e)."""
        p2 = (E - C.M_MU) * (E + C.M_MU)
        s = C.M_MU**2 + C.M_E**2 + 2.0 * C.M_E * E
        dc = 0.5 * self.mass * (self.mass + 2.0 * C.M_MU)
        b = p2 * C.M_E - dc * (E + C.M_E)
        disc = b * b - s * dc * dc
        if b <= 0 or disc <= 0:
            return 0.0, 0.0
        T2 = (b + math.sqrt(disc)) / s
        T1 = dc * dc / (s * T2)
        lo = max(self.tau_a, 2.0 * C.M_E * T1) / (2.0 * C.M_E)
        hi = min(float(self.tau_max(E)), 2.0 * C.M_E * T2) / (2.0 * C.M_E)
        return lo, max(hi, lo)

    def cross_section(self, nodes: np.ndarray, weights: np.ndarray) -> float:
        """sigma [microbarn] averaged over the beam-energy quadrature nodes."""
        return float(sum(w * self.cross_section_at(float(E)) for E, w in zip(nodes, weights)))


def emission_final_state(rng: np.random.Generator, E: np.ndarray, x: np.ndarray, U: np.ndarray, tau: np.ndarray, mass: float) -> dict[str, np.ndarray]:
    """Momenta [GeV] of mu', e' and V in the frame where the beam flies along +z (module docstring)."""
    n = len(E)
    T = tau / (2.0 * C.M_E)
    p = np.sqrt((E - C.M_MU) * (E + C.M_MU))
    W2 = C.M_MU**2 + U / (1.0 - x)
    pe = np.sqrt(T * (T + 2.0 * C.M_E))
    pez = (0.5 * (W2 - C.M_MU**2) + (E + C.M_E) * T) / p
    gap = (VectorEmissionSampler.delta(T, E) - 0.5 * (W2 - C.M_MU**2)) / p  # |p_e| - p_ez >= 0
    pet = np.sqrt(np.maximum(gap, 0.0) * (pe + pez))
    phi = rng.uniform(0.0, 2.0 * math.pi, n)
    cphi, sphi = np.cos(phi), np.sin(phi)
    e = {"px": pet * cphi, "py": pet * sphi, "pz": pez, "E": C.M_E + T}
    E_Y = E - T
    Ypx, Ypy, Ypz = -e["px"], -e["py"], p - pez
    P = np.sqrt(Ypx * Ypx + Ypy * Ypy + Ypz * Ypz)
    W = np.sqrt(W2)
    lam = (W2 - (C.M_MU + mass) ** 2) * (W2 - (C.M_MU - mass) ** 2)
    k_star = np.sqrt(np.maximum(lam, 0.0)) / (2.0 * W)
    e_star = (W2 + mass * mass - C.M_MU**2) / (2.0 * W)
    beta = P / E_Y
    with np.errstate(divide="ignore", invalid="ignore"):
        cos_star = np.clip((x * W - e_star) / (beta * k_star), -1.0, 1.0)
    cos_star = np.where(np.isfinite(cos_star), cos_star, 1.0)
    v, mu = two_body_decay(rng, E_Y, Ypx, Ypy, Ypz, W2, cos_star, mass, C.M_MU)
    out = {f"e_{k}": val for k, val in e.items()}
    out.update({f"mu_{k}": val for k, val in mu.items()})
    out.update({f"v_{k}": val for k, val in v.items()})
    return out


def isotropic_decay(rng: np.random.Generator, px, py, pz, E, mass: float, m_daughter: float) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Two-body decay of (px, py, pz, E) of ``mass`` into two particles of ``m_daughter``,
    isotropic in the rest frame (cos theta* uniform in [-1, 1] about the flight direction)."""
    n = len(E)
    cos_star = rng.uniform(-1.0, 1.0, n)
    return two_body_decay(rng, E, px, py, pz, np.full(n, mass * mass), cos_star, m_daughter, m_daughter)
