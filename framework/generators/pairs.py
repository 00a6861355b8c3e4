"""Electron-pair production by muons on target nuclei, mu N -> mu N e+ e- (PHYSICS.md section 10).

Model
-----
Pair energy eps = E_+ + E_- and asymmetry rho = (E_+ - E_-)/eps follow the double-differential cross
section of Kelner, Kokoulin and Petrukhin (KKP) for muon pair production in the screened field of
a nucleus, in the parametrisation of R.P. Kokoulin used by Geant4 (G4MuPairProductionModel):

    d2sigma/(dv drho) = (2/(3 pi)) Z^2 (alpha r_e)^2 (1 - v)/v [Phi_e + (m_e/m_mu)^2 Phi_mu],
    v = eps/E, Phi_e = B_e L_e, Phi_mu = B_mu L_mu, with (beta = v^2/(2(1 - v)),
    xi = (m_mu v/(2 m_e))^2 (1 - rho^2)/(1 - v))
    B_e  = [(2 + rho^2)(1 + beta) + xi (3 + rho^2)] ln(1 + 1/xi) + (1 - rho^2 - beta)/(1 + xi) - (3 + rho^2)
    B_mu = [(1 + rho^2)(1 + 3 beta/2) - (1 + 2 beta)(1 - rho^2)/xi] ln(1 + xi)
           + xi (1 - rho^2 - beta)/(1 + xi) + (1 + 2 beta)(1 - rho^2)
    Y_e  = (5 - rho^2 + 4 beta (1 + rho^2)) / (2 (1 + 3 beta) ln(3 + 1/xi) - rho^2 - 2 beta (2 - rho^2))
    Y_mu = (4 + rho^2 + 3 beta (1 + rho^2)) / ((1 + rho^2)(3/2 + 2 beta) ln(3 + xi) + 1 - 3 rho^2/2)
    L_e  = ln[B Z^-1/3 sqrt((1 + xi)(1 + Y_e)) / (1 + S (1 + Y_e))] - 1/2 ln[1 + (3 m_e Z^1/3/(2 m_mu))^2 (1 + xi)(1 + Y_e)]
    L_mu = ln[B (m_mu/m_e) / (3/2 Z^2/3 (1 + S (1 + Y_mu)))],
    S = 2 sqrt(e) m_e B Z^-1/3 (1 + xi) / (eps (1 - rho^2)),  B = 183,

(negative Phi_e, Phi_mu set to 0, as in Geant4), on 4 m_e <= eps <= E - (3/4) sqrt(e) m_mu Z^1/3 and
|rho| <= (1 - 6 m_mu^2/(E (E - eps))) sqrt(1 - 4 m_e/eps).
References: S.R. Kelner, R.P. Kokoulin, A.A. Petrukhin, Phys. Atom. Nucl. 60 (1997) 576 and
Moscow Eng. Phys. Inst. preprint 024-95 (1995); Geant4 Physics Reference Manual, "Muon pair
production"; R.P. Kokoulin, A.A. Petrukhin, Proc. 12th ICRC (1971) 2436.

Only the coherent nuclear term (Z^2) is kept: the incoherent term on the atomic electrons (the
Z zeta of KKP) is the process mu e -> mu e e+ e-, a different one. In the limit of a hard, quasi-real
photon the rho dependence reduces to the Bethe-Heitler energy sharing with complete screening
(Tsai, Rev. Mod. Phys. 46 (1974) 815).

Angles (KKP gives none): each lepton leaves at a polar angle theta relative to the incoming muon
with cos theta = 1 - 2 u^2/u_max^2, u_max = 2 E_l/m_e (so theta ~ u m_e/E_l), u from Tsai's
universal distribution in L. Urban's form (GEANT3 PHYS211; Geant4 G4ModifiedTsai):
f(u) = 1/4 Gamma(2, 1.6) + 3/4 Gamma(2, 1.6/3) (Gamma(shape, scale); mean 1.6), truncated at
u_max; the two leptons are back to back in azimuth.

Momentum balance: energy is conserved exactly with the nucleus recoil energy neglected
(q^2/(2 M_N) < 1e-9 GeV); the outgoing muon balances the transverse momentum of the pair, and the
nucleus takes the (small, positive) longitudinal momentum transfer
q_z = p_mu,in - p_z,mu' - p_z,+ - p_z,- = sum_out (m^2 + p_T^2)/(E + p_z) - m_mu^2/(E + p): typically
1e-6 GeV, a few MeV for a soft lepton (E ~ m_e) at a wide angle; this is within the coherence
limit q < 1/R_nucleus ~ 80 MeV.

Limits of validity: E >> m_mu, complete-screening parametrisation accurate to a few per cent for
eps >> m_e (KKP); the angular model is an approximation at the 10-20 % level on the angular
spread (it neglects the spread of the virtual-photon direction, ~ m_mu/E); the muon deflection
is only the transverse recoil of the pair.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from muone.generators.envelope import PiecewiseEnvelope, accept_loop, check_ratio
from muone.generators.targets import atomic_number, target_weights
from muone.physics import constants as C
from muone.physics.quadrature import composite_nodes, gauss_legendre

#: Thomas-Fermi screening constant of KKP (Z > 1).
B_SCREEN = 183.0
SQRT_E = math.sqrt(math.e)
#: (2/(3 pi)) (alpha r_e)^2 in microbarn, r_e = alpha/m_e [GeV^-1].
KKP_NORM = 2.0 / (3.0 * math.pi) * (C.ALPHA**2 / C.M_E) ** 2 * C.GEV2_TO_UB
#: Tsai-Urban angular distribution: mixture weights and Gamma(2) scales.
TSAI_WEIGHT, TSAI_SCALE_1, TSAI_SCALE_2 = 0.25, 1.6, 1.6 / 3.0


def eps_max(E, Z):
    """Largest pair energy [GeV]: E - (3/4) sqrt(e) m_mu Z^(1/3) (KKP)."""
    return np.asarray(E) - 0.75 * SQRT_E * C.M_MU * np.cbrt(np.asarray(Z, np.float64))


def rho_max(E, eps):
    """Largest |rho| at beam energy E and pair energy eps: (1 - 6 m_mu^2/(E (E - eps))) sqrt(1 - 4 m_e/eps)."""
    E, eps = np.asarray(E, np.float64), np.asarray(eps, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (1.0 - 6.0 * C.M_MU**2 / (E * (E - eps))) * np.sqrt(np.maximum(1.0 - 4.0 * C.M_E / eps, 0.0))


def kkp_d2sigma(E, eps, rho, Z):
    """KKP d2sigma/(d eps d rho) per nucleus [microbarn/GeV], coherent (Z^2) term only (module
    docstring). Arrays broadcast; 0 outside the kinematic limits."""
    E, eps, rho, Z = (np.asarray(a, np.float64) for a in (E, eps, rho, Z))
    z13 = np.cbrt(Z)
    with np.errstate(all="ignore"):
        v = eps / E
        resid = E - eps
        beta = 0.5 * eps * eps / (E * resid)
        rho2 = rho * rho
        one_m_rho2 = 1.0 - rho2
        xi = 0.25 * (C.M_MU / C.M_E) ** 2 * v * v / (1.0 - v) * one_m_rho2
        # Y_e, Y_mu
        ye = (5.0 - rho2 + 4.0 * beta * (1.0 + rho2)) / (2.0 * (1.0 + 3.0 * beta) * np.log(3.0 + 1.0 / xi) - rho2 - 2.0 * beta * (2.0 - rho2))
        ym = (4.0 + rho2 + 3.0 * beta * (1.0 + rho2)) / ((1.0 + rho2) * (1.5 + 2.0 * beta) * np.log(3.0 + xi) + 1.0 - 1.5 * rho2)
        be_full = ((2.0 + rho2) * (1.0 + beta) + xi * (3.0 + rho2)) * np.log1p(1.0 / xi) + (one_m_rho2 - beta) / (1.0 + xi) - (3.0 + rho2)
        be_series = 0.5 * (3.0 - rho2 + 2.0 * beta * (1.0 + rho2)) / xi
        be = np.where(xi <= 1e3, be_full, be_series)
        a10 = (1.0 + 2.0 * beta) * one_m_rho2
        bm_full = ((1.0 + rho2) * (1.0 + 1.5 * beta) - a10 / xi) * np.log1p(xi) + xi * (one_m_rho2 - beta) / (1.0 + xi) + a10
        bm_series = 0.5 * (5.0 - rho2 + beta * (3.0 + rho2)) * xi
        bm = np.where(xi >= 1e-3, bm_full, bm_series)
        screen = 2.0 * C.M_E * SQRT_E * B_SCREEN * (1.0 + xi) / (z13 * eps * one_m_rho2)
        le = (np.log(B_SCREEN / z13 * np.sqrt((1.0 + xi) * (1.0 + ye)) / (1.0 + screen * (1.0 + ye)))
              - 0.5 * np.log1p(2.25 * z13 * z13 * (1.0 + xi) * (1.0 + ye) * (C.M_E / C.M_MU) ** 2))
        lm = np.log(B_SCREEN * (C.M_MU / C.M_E) / (1.5 * z13 * z13 * (1.0 + screen * (1.0 + ym))))
        phi = np.maximum(be * le, 0.0) + (C.M_E / C.M_MU) ** 2 * np.maximum(bm * lm, 0.0)
        value = KKP_NORM * Z * Z * (1.0 - v) / (v * E) * phi
        inside = (eps > 4.0 * C.M_E) & (eps < eps_max(E, Z)) & (np.abs(rho) < rho_max(E, eps))
    return np.where(inside & np.isfinite(value), value, 0.0)


def sigma_nucleus(E: float, Z: float, eps_lo: float, eps_hi: float | None = None, n_rho: int = 24) -> float:
    """Cross section per nucleus [microbarn] for eps_lo <= eps <= eps_hi (default: the kinematic
    limit): Gauss-Legendre in ln eps (panels 0.125 wide, 16 points) and in ln(1 - |rho|)
    (``n_rho`` points, as Geant4 but with more points), times 2 for the two signs of rho."""
    top = float(eps_max(E, Z)) if eps_hi is None else min(float(eps_hi), float(eps_max(E, Z)))
    if not top > eps_lo:
        return 0.0
    a0, a1 = math.log(eps_lo), math.log(top)
    la, wa = composite_nodes(np.linspace(a0, a1, max(1, math.ceil((a1 - a0) / 0.125)) + 1), 16)
    eps = np.exp(la)
    x, w = gauss_legendre(n_rho)
    tmn = np.log1p(-rho_max(E, eps))  # ln(1 - rho_max) < 0
    s = 0.5 * (x + 1.0)  # 0..1
    one_m_rho = np.exp(tmn[:, None] * s[None, :])
    rho = 1.0 - one_m_rho
    f = kkp_d2sigma(E, eps[:, None], rho, Z)
    inner = (-tmn) * np.sum(0.5 * w[None, :] * one_m_rho * f, axis=1)  # int_0^rho_max drho
    return float(2.0 * np.dot(wa, eps * inner))


def tsai_u_cdf(u):
    """CDF of Tsai's universal angular variable u (Urban's mixture of Gamma(2) laws), untruncated."""
    u = np.asarray(u, np.float64)

    def gamma2(scale):
        x = u / scale
        return 1.0 - np.exp(-x) * (1.0 + x)

    return TSAI_WEIGHT * gamma2(TSAI_SCALE_1) + (1.0 - TSAI_WEIGHT) * gamma2(TSAI_SCALE_2)


def sample_tsai_u(rng: np.random.Generator, u_max: np.ndarray) -> np.ndarray:
    """u from Tsai-Urban's distribution truncated at ``u_max`` (per entry); rejected entries are
    redrawn column-wise (they are rare: u_max = 2 E/m_e > 8 at E > 2 m_e)."""
    n = len(u_max)
    u = np.empty(n)
    todo = np.arange(n)
    while todo.size:
        m = todo.size
        scale = np.where(rng.random(m) < TSAI_WEIGHT, TSAI_SCALE_1, TSAI_SCALE_2)
        cand = -np.log(rng.random(m) * rng.random(m)) * scale
        ok = cand <= u_max[todo]
        u[todo[ok]] = cand[ok]
        todo = todo[~ok]
    return u


class PairSampler:
    """Draws (E, eps, rho, target) distributed as p(E) n_i d2sigma_i/(d eps d rho) over the
    targets i (n_i: nuclei per cm^2), for eps >= eps_min.

    Proposals: the target with probability proportional to n_i Z_i^2 (``target_weights(...,
    per="nucleus_z2")``), (ln eps, s) from a piecewise-constant envelope of
    h = 2 eps (1 - |rho|) |ln(1 - R)| d2sigma/Z^2, with |rho| = 1 - (1 - R)^s, R = sqrt(1 - 4 m_e/eps),
    taken as the maximum over beam energies and the target materials; accepted with h/envelope,
    so the Z dependence of the screening logarithms beyond Z^2 is exact.
    """

    def __init__(self, energy_range: tuple[float, float], targets: Sequence[Any], eps_min: float) -> None:
        self.targets = list(targets)
        self.eps_min = float(eps_min)
        self.Z = np.array([atomic_number(t.material) for t in self.targets], np.float64)
        self.proposal_weights = target_weights(self.targets, per="nucleus_z2")
        e_lo, e_hi = energy_range
        self.energy_range = (float(e_lo), float(e_hi))
        top = float(eps_max(e_hi, self.Z.min()))
        if not top > self.eps_min * 1.0001:
            raise ValueError(f"pair_energy_min = {eps_min} GeV is above the kinematic limit {top:.4g} GeV")
        a_edges = np.linspace(math.log(self.eps_min), math.log(top), 97)
        b_edges = np.linspace(0.0, 1.0, 17)
        energies = np.linspace(e_lo, e_hi, 9) if e_hi > e_lo else np.array([e_lo])
        zs = np.unique(self.Z)

        def bound(a, b):
            out = np.zeros_like(a)
            for E in energies:
                for Z in zs:
                    out = np.maximum(out, self.h(np.full_like(a, E), a, b, np.full_like(a, Z)))
            return out

        self.envelope = PiecewiseEnvelope.build(bound, a_edges, b_edges, sub=4, safety=1.25)

    @staticmethod
    def to_rho(eps: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """|rho| and the Jacobian d|rho|/ds at (eps, s)."""
        R = np.sqrt(np.maximum(1.0 - 4.0 * C.M_E / eps, 0.0))
        log_1mR = np.log(4.0 * C.M_E / (eps * (1.0 + R)))  # ln(1 - R), stable
        one_m_rho = np.exp(s * log_1mR)
        return 1.0 - one_m_rho, one_m_rho * (-log_1mR)

    def h(self, E, a, s, Z):
        """Proposal-space density: 2 eps |drho/ds| d2sigma/Z^2 at ln eps = a (both signs of rho)."""
        eps = np.exp(a)
        rho, jac = self.to_rho(eps, s)
        return 2.0 * eps * jac * kkp_d2sigma(E, eps, rho, Z) / (Z * Z)

    def sample(self, rng: np.random.Generator, energies: Callable[[np.random.Generator, int], np.ndarray], n: int) -> dict[str, np.ndarray]:
        """``n`` events: beam energy ``E``, pair energy ``eps``, asymmetry ``rho`` (sign random),
        ``target`` index."""
        def propose(m):
            E = energies(rng, m)
            target = rng.choice(len(self.targets), size=m, p=self.proposal_weights).astype(np.int32) if len(self.targets) > 1 else np.zeros(m, np.int32)
            a, s, env = self.envelope.sample(rng, m)
            ratio = self.h(E, a, s, self.Z[target]) / env
            check_ratio(ratio, "pair production")
            keep = rng.random(m) < ratio
            eps = np.exp(a)
            rho, _ = self.to_rho(eps, s)
            rho = np.where(rng.random(m) < 0.5, rho, -rho)
            return keep, {"E": E, "eps": eps, "rho": rho, "target": target}

        return accept_loop(n, propose, 0.5)

    def cross_sections(self, nodes: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Per-nucleus cross section of each target [microbarn], averaged over the beam-energy
        quadrature nodes."""
        cache: dict[float, float] = {}
        out = []
        for Z in self.Z:
            if Z not in cache:
                cache[Z] = float(sum(w * sigma_nucleus(float(E), Z, self.eps_min) for E, w in zip(nodes, weights)))
            out.append(cache[Z])
        return np.array(out)

    def cross_section_per_electron(self, nodes: np.ndarray, weights: np.ndarray) -> float:
        """sigma per electron [microbarn] = sum_i n_i sigma_i / sum_i n_i Z_i (n_i: nuclei per cm^2
        of target i), i.e. sigma_i/Z_i averaged with the electron areal densities as weights: the
        cross section that, times the mu-e luminosity (per electron), gives the number of pair events."""
        electrons = target_weights(self.targets, per="electron")
        return float(np.dot(electrons, self.cross_sections(nodes, weights) / self.Z))

    def target_probabilities(self, nodes: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Probability that an event comes from each target: n_i sigma_i / sum_j n_j sigma_j."""
        electrons = target_weights(self.targets, per="electron")
        w = electrons / self.Z * self.cross_sections(nodes, weights)
        return w / w.sum()


def pair_final_state(rng: np.random.Generator, E: np.ndarray, eps: np.ndarray, rho: np.ndarray) -> dict[str, np.ndarray]:
    """Momenta [GeV] of mu', e+ and e- in the frame where the beam flies along +z (module
    docstring): E_+- = eps (1 +- rho)/2, Tsai-Urban polar angles, back-to-back azimuths, the muon
    with E - eps and minus the pair's transverse momentum."""
    n = len(E)
    out: dict[str, np.ndarray] = {}
    phi = rng.uniform(0.0, 2.0 * math.pi, n)
    cphi, sphi = np.cos(phi), np.sin(phi)
    for name, energy, sign in (("ep", 0.5 * eps * (1.0 + rho), 1.0), ("em", 0.5 * eps * (1.0 - rho), -1.0)):
        energy = np.maximum(energy, C.M_E)
        u_max = 2.0 * energy / C.M_E
        u = sample_tsai_u(rng, u_max)
        r = u / u_max
        cos_t = 1.0 - 2.0 * r * r
        sin_t = 2.0 * r * np.sqrt(np.maximum(1.0 - r * r, 0.0))
        p = np.sqrt((energy - C.M_E) * (energy + C.M_E))
        out[f"{name}_px"], out[f"{name}_py"] = sign * p * sin_t * cphi, sign * p * sin_t * sphi
        out[f"{name}_pz"], out[f"{name}_E"] = p * cos_t, energy
        out[f"{name}_u"] = u
    mu_E = E - out["ep_E"] - out["em_E"]
    px = -(out["ep_px"] + out["em_px"])
    py = -(out["ep_py"] + out["em_py"])
    out["mu_px"], out["mu_py"], out["mu_E"] = px, py, mu_E
    out["mu_pz"] = np.sqrt((mu_E - C.M_MU) * (mu_E + C.M_MU) - px * px - py * py)
    return out
