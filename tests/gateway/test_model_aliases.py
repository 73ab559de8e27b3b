"""`PROXY_MODEL_ALIASES`: a client that hard-codes an OpenAI model name works when the operator aliased it."""

from __future__ import annotations

import openai
import pytest

from tests.api_harness import API_KEY, ApiServer
from tests.gateway.conftest import Gateway

pytestmark = pytest.mark.codex


def test_the_sdk_with_an_aliased_name_works_and_keeps_its_name(gateway: Gateway) -> None:
    with openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=gateway.tokens["carol"], max_retries=0) as client:
        completion = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "alias"}])
        response = client.responses.create(model="GPT-4o", input="alias too")
        listed = [m.id for m in client.models.list()]
        looked_up = client.models.retrieve("gpt-4o")
    assert completion.model == "gpt-4o"
    assert completion.choices[0].message.content == "echo: alias"
    assert response.model == "GPT-4o" and response.output_text == "echo: alias too"
    assert "gpt-4o" not in listed  # accepted, not advertised
    assert looked_up.id == "gpt-4o"


def test_without_the_alias_the_same_name_is_404(api: ApiServer) -> None:
    with (
        openai.OpenAI(base_url=api.base_url + "/v1", api_key=API_KEY, max_retries=0) as client,
        pytest.raises(openai.NotFoundError) as caught,
    ):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "alias"}])
    assert caught.value.code == "model_not_found"
