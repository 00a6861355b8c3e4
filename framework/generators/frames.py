"""Rotations between the frame where the incoming muon flies along +z and the lab frame."""

from __future__ import annotations

import numpy as np


def rotate_from_z(px: np.ndarray, py: np.ndarray, pz: np.ndarray, nx: np.ndarray, ny: np.ndarray, nz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rotate vectors given in a frame whose z axis is the unit vector n = (nx, ny, nz) into the
    lab frame: the rotation R that takes (0, 0, 1) to n about the axis z x n (the smallest one).

    Rodrigues' formula with v = z x n = (-ny, nx, 0) and c = n_z:
    R p = p + v x p + v x (v x p) / (1 + c), exact and stable for the small beam angles
    (no 1 - cos cancellation). Arrays broadcast; n must be normalised.
    """
    vx, vy = -ny, nx
    # v x p with v_z = 0
    cx = vy * pz
    cy = -vx * pz
    cz = vx * py - vy * px
    # v x (v x p) = v (v.p) - p |v|^2
    vdotp = vx * px + vy * py
    v2 = vx * vx + vy * vy
    k = 1.0 / (1.0 + nz)
    return (
        px + cx + (vx * vdotp - px * v2) * k,
        py + cy + (vy * vdotp - py * v2) * k,
        pz + cz + (-pz * v2) * k,
    )
