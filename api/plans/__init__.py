"""GraphQL of plans and quotas: plans, usage, users by plan, and notifications."""

# Plans name lanes: the Priority enum must be registered before any plan type uses it.
import api.runs.enums  # noqa: F401
