"""Finding templates and data among the results of earlier jobs (``[job] inputs``).

A reference is ``"NAME"`` (the ``[job] inputs`` name of a job: its only template) or
``"NAME/INSTANCE"`` (the template filled by the processor instance INSTANCE of that job, e.g.
variations made in the same job as the nominal template: ``"mc/templates_beam_up"``).
Data may also be a hist histogram with the template's binning: ``"NAME/INSTANCE/HISTNAME"``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from muone.errors import InputError
from muone.fit.template import Template

__all__ = ["equivalent_luminosity", "find_counts", "find_template", "split_reference"]


def split_reference(ref: str) -> tuple[str, str, str]:
    """``"NAME[/INSTANCE[/RESULT]]"`` -> (name, instance, result) with empty strings for missing parts."""
    parts = ref.split("/")
    if not 1 <= len(parts) <= 3 or not parts[0]:
        raise InputError(f"bad template reference {ref!r}: use NAME, NAME/INSTANCE or NAME/INSTANCE/RESULT")
    parts += [""] * (3 - len(parts))
    return parts[0], parts[1], parts[2]


def _results(ref: str, inputs: dict[str, Any]) -> tuple[Any, str, str]:
    name, instance, result = split_reference(ref)
    if name not in inputs:
        raise InputError(f"reference {ref!r}: no [job] inputs entry named {name!r} (inputs: {', '.join(inputs) or 'none'})")
    return inputs[name], instance, result


def find_template(ref: str, inputs: dict[str, Any]) -> Template:
    """The :class:`Template` a reference points to (InputError naming the candidates otherwise)."""
    results, instance, result = _results(ref, inputs)
    merged = results.merged
    found = {f"{inst}/{key}": obj for inst, items in merged.items() for key, obj in items.items() if isinstance(obj, Template)}
    if instance:
        found = {k: v for k, v in found.items() if k.split("/")[0] == instance}
        if result:
            found = {k: v for k, v in found.items() if k.split("/")[1] == result}
    if len(found) == 1:
        return next(iter(found.values()))
    where = f"{results.output_dir}"
    if not found:
        every = [f"{i}/{k}" for i, items in merged.items() for k, o in items.items() if isinstance(o, Template)]
        raise InputError(f"reference {ref!r}: no template found in {where} (templates there: {', '.join(every) or 'none'})")
    raise InputError(f"reference {ref!r} is ambiguous in {where}: name the instance, one of {', '.join(sorted(k.split('/')[0] for k in found))}")


def find_counts(ref: str, inputs: dict[str, Any], template: Template) -> np.ndarray:
    """Observed counts per template bin: a template's ``sumw`` or a hist with the same edges."""
    import hist

    results, instance, result = _results(ref, inputs)
    if result:
        obj = results.merged.get(instance, {}).get(result)
        if obj is None:
            raise InputError(f"reference {ref!r}: {results.output_dir} has no result {instance}/{result}")
        if isinstance(obj, Template):
            return _template_counts(obj, template, ref)
        if isinstance(obj, hist.Hist):
            edges = [tuple(map(float, ax.edges)) for ax in obj.axes]
            if edges != [a.edges for a in template.axes]:
                raise InputError(f"reference {ref!r}: the histogram's binning differs from the template's")
            return np.asarray(obj.values(flow=False), dtype=np.float64).reshape(-1)
        raise InputError(f"reference {ref!r}: {type(obj).__name__} is neither a template nor a histogram")
    return _template_counts(find_template(ref, inputs), template, ref)


def _template_counts(data: Template, template: Template, ref: str) -> np.ndarray:
    why = template.compatible(data)
    if why is not None and why.startswith("different axes"):
        raise InputError(f"reference {ref!r}: the data template has {why} than the fit template")
    return data.sumw.copy()


def equivalent_luminosity(ref: str, inputs: dict[str, Any]) -> float | None:
    """The equivalent luminosity N / sigma [nb^-1] of the job a reference points to (None when the
    job's source has no cross section, e.g. real data)."""
    results, _, _ = _results(ref, inputs)
    value = results.report.get("source", {}).get("equivalent_luminosity_nb")
    return float(value) if value else None
