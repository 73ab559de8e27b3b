"""Model-id normalisation is one table: advertised ids per environment, aliases, suffix → effort."""

from __future__ import annotations

import pytest

from app.model_ids import advertised, resolve

DEV_IDS = [
    "codev-5",
    "codev-5-low",
    "codev-5-medium",
    "codev-5-high",
    "codev-5-minimal",
    "codev-5.1-L",
    "codev-5.1-M",
    "codev-5.1-H",
    "codev-5.2-L",
    "codev-5.2-M",
    "codev-5.2-H",
    "codev-5.2-XH",
]
PROD_IDS = [
    "codex-5",
    "codex-5-low",
    "codex-5-medium",
    "codex-5-high",
    "codex-5-minimal",
    "gpt-5.2-codex-L",
    "gpt-5.2-codex-M",
    "gpt-5.2-codex-H",
    "gpt-5.2-codex-XH",
]


@pytest.mark.parametrize(("env", "ids"), [("dev", DEV_IDS), ("prod", PROD_IDS)], ids=["dev", "prod"])
def test_advertised_ids_per_environment(env, ids):
    assert sorted(advertised(env)) == sorted(ids)


@pytest.mark.parametrize(
    ("requested", "model", "effort"),
    [
        ("codex-5", "gpt-5.2", None),
        ("codev-5", "gpt-5.2", None),
        ("CODEX-5", "gpt-5.2", None),
        ("codex-5-low", "gpt-5.2", "low"),
        ("codev-5-medium", "gpt-5.2", "medium"),
        ("Codev-5-HIGH", "gpt-5.2", "high"),
        ("codex-5-minimal", "gpt-5.2", "minimal"),
        ("codev-5.1-L", "gpt-5.1", "low"),
        ("codex-5.1-m", "gpt-5.1", "medium"),
        ("codev-5.2-XH", "gpt-5.2", "xhigh"),
        ("codex-5.2-h", "gpt-5.2", "high"),
        ("gpt-5.2-codex-XH", "gpt-5.2", "xhigh"),
        ("gpt-5.2-codev-l", "gpt-5.2", "low"),
        ("gpt-5.2", "gpt-5.2", None),
    ],
)
def test_accepted_ids_resolve_to_model_and_effort(requested, model, effort):
    resolved = resolve(requested, default_model="gpt-5.2")
    assert resolved is not None
    assert (resolved.model, resolved.effort, resolved.requested) == (model, effort, requested)


def test_plain_family_uses_the_configured_default_model():
    resolved = resolve("codex-5-low", default_model="gpt-6")
    assert resolved is not None
    assert (resolved.model, resolved.effort) == ("gpt-6", "low")


@pytest.mark.parametrize(
    "requested",
    ["gpt-4o", "codex-5-L", "codev-5.2-low", "codex-5-xh", "codex-6", "", "codex-5-", "-low", "codev-5.3-L"],
)
def test_unknown_ids_are_rejected(requested):
    assert resolve(requested, default_model="gpt-5.2") is None


def test_account_models_are_accepted_verbatim():
    resolved = resolve("GPT-5.3-Codex", default_model="gpt-5.2", account_models=["gpt-5.3-codex"])
    assert resolved is not None
    assert (resolved.model, resolved.effort) == ("gpt-5.3-codex", None)
