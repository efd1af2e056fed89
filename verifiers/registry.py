"""The verifier registry: verifiers by name and version, with typed parameters.

Adding a verifier is one module plus one `@register` on its class; the built-in
modules are imported by `verifiers/__init__.py`.
"""
from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from .core import Params, Verifier
from .errors import InvalidParamsError, UnknownVerifierError

_REGISTRY: dict[str, dict[str, type[Verifier]]] = {}


def register(cls: type[Verifier]) -> type[Verifier]:
    """Class decorator: make `cls` available as `cls.name` @ `cls.version`."""
    versions = _REGISTRY.setdefault(cls.name, {})
    if cls.version in versions and versions[cls.version] is not cls:
        raise ValueError(f"verifier {cls.name}@{cls.version} is registered twice")
    versions[cls.version] = cls
    return cls


def register_compatible(cls: type[Verifier], version: str) -> type[Verifier]:
    """Keep `cls.name@version` registered for an older version that `cls` scores the same
    way on every request the older one accepted (it only added parameters): specs pinned
    to the old version keep working and history keeps its label. Behaviour that changes
    needs a new version row with the old rules instead (see verifiers/math/verifier.py: VERSIONS)."""
    alias = type(cls.__name__, (cls,), {"version": version, "__doc__": cls.__doc__,
                                        "description": f"{cls.description} (as {cls.version}, which only added "
                                                       f"parameters to {version})",
                                        "__module__": cls.__module__})
    return register(alias)


def _version_key(v: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in v.replace("-", ".").split("."))


def known() -> list[str]:
    """Every registered `name@version`, sorted."""
    return sorted(f"{n}@{v}" for n, vs in _REGISTRY.items() for v in vs)


def latest() -> list[type[Verifier]]:
    """The newest version of each registered verifier, sorted by name."""
    return [vs[max(vs, key=_version_key)] for _, vs in sorted(_REGISTRY.items())]


def all_versions() -> list[type[Verifier]]:
    """Every registered verifier class, by name, newest version first. Older versions stay
    registered when behaviour changes, so pinned specs and stored history keep meaning."""
    return [vs[v] for _, vs in sorted(_REGISTRY.items()) for v in sorted(vs, key=_version_key, reverse=True)]


def is_latest(cls: type[Verifier]) -> bool:
    return get(cls.name) is cls


def get(name: str, version: str | None = None) -> type[Verifier]:
    """The class registered as `name` (`version`, or the newest when None/empty).

    Raises UnknownVerifierError listing what is registered.
    """
    versions = _REGISTRY.get(name)
    if not versions:
        raise UnknownVerifierError(name, known())
    if not version:
        return versions[max(versions, key=_version_key)]
    if version not in versions:
        raise UnknownVerifierError(name, known(), version)
    return versions[version]


def parse_params(cls: type[Verifier], raw: dict[str, Any] | None) -> Params:
    """Validate raw parameters against `cls.Params`.

    Raises InvalidParamsError whose message names each bad field.
    """
    try:
        return cls.Params.model_validate(raw or {})
    except ValidationError as e:
        fields = "; ".join(".".join(["params", *(str(x) for x in err["loc"])]) + f": {err['msg']}"
                           for err in e.errors())
        raise InvalidParamsError(f"{fields} ({cls.name}@{cls.version})") from None


def _type_name(annotation: Any) -> str:
    return annotation.__name__ if isinstance(annotation, type) else str(annotation).replace("typing.", "")


def describe_params(cls: type[Verifier]) -> list[tuple[str, str, str, str]]:
    """(name, type, default as JSON, description) of each of `cls`'s parameters."""
    return [(n, _type_name(f.annotation),
             "(required)" if f.is_required() else json.dumps(f.get_default(call_default_factory=True), default=str),
             f.description or "") for n, f in cls.Params.model_fields.items()]
