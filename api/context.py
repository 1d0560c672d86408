"""The per-request GraphQL context."""

from dataclasses import dataclass

from infra.bootstrap import Services


@dataclass(slots=True)
class Context:
    """What every resolver may use: the process's services and this request's identity."""

    services: Services
    request_id: str | None
