"""Model-id normalisation shared by every route: advertised ids, accepted aliases, suffix → reasoning effort.

Pure functions over tables, so the whole mapping is tested table-driven. Both prefixes (`codex-` for prod,
`codev-` for dev) are accepted in every environment, case-insensitively; only the advertised list differs.
Operator aliases (`PROXY_MODEL_ALIASES`, e.g. `gpt-4o=codex-5` for clients that hard-code OpenAI names) are
accepted like ids but never advertised, and the client keeps seeing the name it sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

import msgspec

Env = Literal["dev", "prod"]

# Suffix (lower-case) → reasoning effort. Long forms for the `-5` family, letters for the versioned ones.
SUFFIX_EFFORT = {
    "minimal": "minimal",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "l": "low",
    "m": "medium",
    "h": "high",
    "xh": "xhigh",
}
LONG_SUFFIXES = ("low", "medium", "high", "minimal")

ADVERTISED: dict[Env, tuple[str, ...]] = {
    "dev": (
        "codev-5",
        *(f"codev-5-{s}" for s in LONG_SUFFIXES),
        *(f"codev-5.1-{s}" for s in ("L", "M", "H")),
        *(f"codev-5.2-{s}" for s in ("L", "M", "H", "XH")),
    ),
    "prod": (
        "codex-5",
        *(f"codex-5-{s}" for s in LONG_SUFFIXES),
        *(f"gpt-5.2-codex-{s}" for s in ("L", "M", "H", "XH")),
    ),
}

# Family (lower-case id without the effort suffix) → effective Codex model; None means CODEX_MODEL.
FAMILIES: dict[str, str | None] = {
    "codex-5": None,
    "codev-5": None,
    "codex-5.1": "gpt-5.1",
    "codev-5.1": "gpt-5.1",
    "codex-5.2": "gpt-5.2",
    "codev-5.2": "gpt-5.2",
    "gpt-5.2-codex": "gpt-5.2",
    "gpt-5.2-codev": "gpt-5.2",
}
# Families whose effort suffix is the long form (`-low`), the others take letters (`-L`, `-XH`).
LONG_FORM_FAMILIES = {"codex-5", "codev-5"}


class ResolvedModel(msgspec.Struct, frozen=True):
    requested: str
    model: str
    effort: str | None


def advertised(env: Env) -> list[str]:
    return list(ADVERTISED[env])


def resolve(
    requested: str,
    *,
    default_model: str,
    account_models: Iterable[str] = (),
    aliases: Mapping[str, str] | None = None,
) -> ResolvedModel | None:
    """The effective model and implied effort for a client's id, or None when the id is unknown.

    `aliases` maps lower-case client names to ids; an alias resolves as its target but keeps the client's name."""
    name = requested.strip()
    key = name.lower()
    if aliases and key in aliases:
        target = resolve(aliases[key], default_model=default_model, account_models=account_models)
        return None if target is None else ResolvedModel(requested=name, model=target.model, effort=target.effort)
    if key in FAMILIES:
        return ResolvedModel(requested=name, model=FAMILIES[key] or default_model, effort=None)
    family, sep, suffix = key.rpartition("-")
    if sep and family in FAMILIES and suffix in SUFFIX_EFFORT:
        long_form = suffix in LONG_SUFFIXES
        if long_form == (family in LONG_FORM_FAMILIES):
            return ResolvedModel(requested=name, model=FAMILIES[family] or default_model, effort=SUFFIX_EFFORT[suffix])
    for model in account_models:
        if model.lower() == key:
            return ResolvedModel(requested=name, model=model, effort=None)
    if key == default_model.lower():
        return ResolvedModel(requested=name, model=default_model, effort=None)
    return None
