"""api/schemas.py's response models say what chain/ says: the OpenAPI document's enums are the core's."""

from __future__ import annotations

from typing import get_args

from docchain.api.schemas import StepName
from docchain.chain.verify import Step


def test_the_step_names_are_chain_verifys_in_its_order() -> None:
    assert list(get_args(StepName)) == [s.value for s in Step]
