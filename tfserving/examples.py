"""TF Serving's Classify and Regress on example-signature models, for REST and gRPC alike.

Requests name their inputs as *examples*: one feature per example (the
model's single input), merged with a shared *context*. REST sends them as
JSON objects; gRPC as ``tf.Example`` protos, which the gRPC handler turns into
the same objects, so both go through :func:`classify` and :func:`regress`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kva.tfserving.errors import InvalidArgument
from kva.tfserving.runtime import Runtime
from kva.tfserving.servable import Servable
from kva.tfserving.signatures import DEFAULT_SIGNATURE, METHODS

#: One example's classes: (label, score) per output element.
Classes = list[tuple[str, float]]


def regress(rt: Runtime, servable: Servable, signature: str, body: dict[str, Any]) -> list[float]:
    """One regression value per example of ``body``.

    Raises:
        InvalidArgument: the signature does not regress, or bad examples (400).
    """
    scores = _scores(rt, servable, signature, "regress", body)
    if scores.shape[1] != 1:
        raise InvalidArgument("regression output must hold one value per example")
    return [float(v) for v in scores[:, 0]]


def classify(
    rt: Runtime, servable: Servable, signature: str, body: dict[str, Any]
) -> list[Classes]:
    """The (label, score) classes of each example of ``body``.

    Raises:
        InvalidArgument: the signature does not classify, or bad examples (400).
    """
    scores = _scores(rt, servable, signature, "classify", body)
    labels = servable.labels or []
    return [
        [(labels[i] if i < len(labels) else "", float(s)) for i, s in enumerate(row)]
        for row in scores
    ]


def _scores(
    rt: Runtime, servable: Servable, signature: str, method: str, body: dict[str, Any]
) -> np.ndarray:
    check_signature(servable, signature, method)
    (info,) = servable.inputs.values()
    rows = _examples(body, info.name)
    outputs = rt.execute(servable, lambda: {info.name: np.asarray(rows, dtype=info.dtype)})
    (scores,) = outputs.values()
    return np.asarray(scores).reshape(len(rows), -1)


def check_signature(servable: Servable, signature: str, method: str) -> None:
    """TF Serving's errors for a signature that is missing or does another method."""
    found = servable.example_signatures.get(signature)
    if found is None:
        if signature == DEFAULT_SIGNATURE:
            raise InvalidArgument(
                f"Expected {method} signature method_name to be {METHODS[method]}. "
                f"Was: {METHODS['predict']}"
            )
        raise InvalidArgument(f'Serving signature name: "{signature}" not found in signature def')
    if found != method:
        raise InvalidArgument(
            f"Expected {method} signature method_name to be {METHODS[method]}. "
            f"Was: {METHODS[found]}"
        )


def _examples(body: dict[str, Any], feature: str) -> list[list[float]]:
    examples, context = body.get("examples"), body.get("context", {})
    if not isinstance(examples, list) or not examples:
        raise InvalidArgument("'examples' must be a non-empty list of objects")
    if not isinstance(context, dict):
        raise InvalidArgument("'context' must be an object")
    rows: list[list[float]] = []
    for example in examples:
        if not isinstance(example, dict):
            raise InvalidArgument("each example must be an object of feature values")
        merged = {**context, **example}
        if set(merged) != {feature}:
            raise InvalidArgument(f"examples must hold exactly the feature '{feature}'")
        value = merged[feature]
        values = value if isinstance(value, list) else [value]
        if not values or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values
        ):
            raise InvalidArgument(f"feature '{feature}' must be a number or a list of numbers")
        rows.append([float(v) for v in values])
    if len({len(row) for row in rows}) != 1:
        raise InvalidArgument(f"feature '{feature}' must have the same length in every example")
    return rows
