"""Reconstruction kernels: numba functions over flat arrays and per-event offsets.

One module per stage, each used by the processor plugin of the same name (docs/reconstruction.md):

* :mod:`muone.reconstruction.unpack`: raw strip words -> digis with quality flags (``unpack``);
* :mod:`muone.reconstruction.stubs`: digis -> clusters -> stubs of the CMS 2S modules (``stubs``);
* :mod:`muone.reconstruction.calorimeter`: crystal ADC counts -> calorimeter clusters
  (``calo_clustering``);
* :mod:`muone.reconstruction.tracking` (with ``tracking_geometry``): stubs -> straight-line tracks
  per station with (u, v) ambiguity resolution and multiple-scattering-aware fits (``tracking``);
* :mod:`muone.reconstruction.vertexing`: incoming + two outgoing tracks -> mu e vertices, angles,
  mu/e assignment (``vertexing``).

Study and validation helpers (not used by the processors): ``tracking_synthetic``,
``tracking_validation``, ``vertexing_synthetic``, ``vertexing_study``.

Kernels are compiled with ``cache=True`` and each has a pure-Python reference implementation in the
tests.
"""
