"""The run domain's enums, exposed as they are: GraphQL views of them, not copies."""

import strawberry

from domain.runs import models

strawberry.enum(models.RunStatus, name="RunStatus", description="Where a run is in its life.")
strawberry.enum(
    models.Priority, name="Priority", description="The lane a run waits in; higher goes first."
)
strawberry.enum(models.LogLevel, name="LogLevel", description="Severity of a run's log line.")
strawberry.enum(
    models.AttemptOutcome, name="AttemptOutcome", description="How one attempt of a run ended."
)
