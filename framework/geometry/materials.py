"""Materials of the detector description: density, Z/A and radiation length.

Units: density in g/cm^3, Z/A in mol/g, radiation length ``x0`` in **mm** (the mass radiation
length in g/cm^2 is :attr:`Material.x0_mass`). Built-in values are the PDG "Atomic and nuclear
properties of materials" tables (pdg.lbl.gov/AtomicNuclearProperties); a detector description may
add or redefine materials in its ``[materials]`` table (docs/geometry.md).

| name   | density [g/cm^3] | Z/A [mol/g] | X0 [g/cm^2] | X0 [mm] |
|--------|------------------|-------------|-------------|---------|
| Be     | 1.848            | 0.44384     | 65.19       | 352.76  |
| C      | 2.210 (graphite) | 0.49955     | 42.70       | 193.21  |
| Si     | 2.329            | 0.49848     | 21.82       | 93.69   |
| PbWO4  | 8.300            | 0.41315     | 7.39        | 8.904   |

Carbon is *graphite at the PDG reference density 2.210 g/cm^3*; real target graphite is often
less dense (1.7-1.9 g/cm^3): redefine ``C`` (or add e.g. ``C_target``) in the description then.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Avogadro constant [1/mol] (exact, SI 2019).
N_AVOGADRO = 6.02214076e23


@dataclass(frozen=True)
class Material:
    """A homogeneous material.

    Attributes:
        name: the name used in detector descriptions (``"Be"``).
        density: mass density [g/cm^3].
        z_over_a: <Z/A> [mol/g] (electrons per nucleon mass unit).
        x0: radiation length [mm].
        description: free text (source of the numbers).
    """

    name: str
    density: float
    z_over_a: float
    x0: float
    description: str = ""

    @property
    def x0_mass(self) -> float:
        """Mass radiation length [g/cm^2] = density * x0."""
        return self.density * self.x0 / 10.0

    @property
    def electron_density(self) -> float:
        """Electrons per cm^3: rho * N_A * Z/A."""
        return self.density * N_AVOGADRO * self.z_over_a

    def electron_areal_density(self, thickness: float) -> float:
        """Electrons per cm^2 in a slab of ``thickness`` [mm]: rho * N_A * (Z/A) * thickness."""
        return self.electron_density * (thickness / 10.0)

    def x_over_x0(self, thickness: float) -> float:
        """Thickness [mm] in radiation lengths."""
        return thickness / self.x0


def _pdg(name: str, density: float, z_over_a: float, x0_mass: float, what: str) -> Material:
    """A material from PDG numbers: X0 given in g/cm^2, stored in mm."""
    return Material(name, density, z_over_a, 10.0 * x0_mass / density, f"{what} (PDG: X0 = {x0_mass} g/cm^2)")


#: The built-in materials by name.
MATERIALS: dict[str, Material] = {
    m.name: m
    for m in (
        _pdg("Be", 1.848, 0.44384, 65.19, "beryllium"),
        _pdg("C", 2.210, 0.49955, 42.70, "carbon, graphite at the PDG reference density 2.210 g/cm^3"),
        _pdg("Si", 2.329, 0.49848, 21.82, "silicon"),
        _pdg("PbWO4", 8.300, 0.41315, 7.39, "lead tungstate (Moliere radius 19.6 mm)"),
    )
}
