"""`/v1/models` wire structs."""

from __future__ import annotations

from typing import Literal

import msgspec
from msgspec import Struct


class Model(Struct):
    id: str
    created: int = 0
    owned_by: str = "codex"
    object_: Literal["model"] = msgspec.field(default="model", name="object")


class ModelList(Struct):
    data: list[Model]
    object_: Literal["list"] = msgspec.field(default="list", name="object")
