"""Physical constants of muone (PHYSICS.md section 1), the only place where they are defined.

Units: GeV for masses and widths, GeV^-2 -> microbarn for the cross-section conversion.
Every other module of :mod:`muone.physics` imports its numbers from here, so a change of a
constant is made in one line.

References: PDG (alpha in the Thomson limit, lepton masses, m_pi+-, rho/omega/phi parameters),
as listed in PHYSICS.md section 1.
"""

from __future__ import annotations

import math

#: Fine-structure constant in the Thomson limit (q^2 = 0).
ALPHA = 1.0 / 137.035999084
#: Muon mass [GeV].
M_MU = 0.1056583755
#: Electron mass [GeV].
M_E = 0.51099895e-3
#: Tau mass [GeV].
M_TAU = 1.77686
#: Conversion of a cross section from GeV^-2 to microbarn (hbar^2 c^2 in GeV^2 microbarn).
GEV2_TO_UB = 389.3793721
#: Luminosity unit: 1 nb^-1 = 1e3 microbarn^-1 (multiply nb^-1 by this to get microbarn^-1).
INV_NB_TO_INV_UB = 1.0e3
#: Charged-pion mass [GeV].
M_PI = 0.13957039

#: rho(770): mass, total width, electronic width [GeV].
M_RHO = 0.77526
GAMMA_RHO = 0.1491
GAMMA_EE_RHO = 7.04e-6
#: omega(782): mass, total width, electronic width [GeV].
M_OMEGA = 0.78266
GAMMA_OMEGA = 0.00868
GAMMA_EE_OMEGA = 0.60e-6
#: phi(1020): mass, total width, electronic width [GeV].
M_PHI = 1.019461
GAMMA_PHI = 0.004249
GAMMA_EE_PHI = 1.27e-6

#: Hadronic branching fractions used by the simple R(s) model (PHYSICS.md section 5).
B_HAD_RHO = 1.0
B_HAD_OMEGA = 0.9
B_HAD_PHI = 0.98

#: Default beam energy of MUonE (CERN M2 muon beam) [GeV].
E_BEAM_DEFAULT = 160.0

#: Reference lepton-like hadronic parameters (PHYSICS.md section 4): K [GeV^-2], M [GeV^2].
LL_K_REF = 0.13724
LL_M_REF = 0.0525
#: Expected 1-sigma uncertainties of K and M at the full MUonE luminosity (PHYSICS.md section 4).
LL_K_SIGMA = 0.0008
LL_M_SIGMA = 0.003
#: Reference second-order polynomial coefficients: c1 [GeV^-2], c2 [GeV^-4].
POL2_C1_REF = -0.009057
POL2_C2_REF = -0.01364

#: alpha / pi, used by every vacuum-polarisation formula.
ALPHA_OVER_PI = ALPHA / math.pi

__all__ = [
    "ALPHA",
    "ALPHA_OVER_PI",
    "B_HAD_OMEGA",
    "B_HAD_PHI",
    "B_HAD_RHO",
    "E_BEAM_DEFAULT",
    "GAMMA_EE_OMEGA",
    "GAMMA_EE_PHI",
    "GAMMA_EE_RHO",
    "GAMMA_OMEGA",
    "GAMMA_PHI",
    "GAMMA_RHO",
    "GEV2_TO_UB",
    "INV_NB_TO_INV_UB",
    "LL_K_REF",
    "LL_K_SIGMA",
    "LL_M_REF",
    "LL_M_SIGMA",
    "M_E",
    "M_MU",
    "M_OMEGA",
    "M_PHI",
    "M_PI",
    "M_RHO",
    "M_TAU",
    "POL2_C1_REF",
    "POL2_C2_REF",
]
