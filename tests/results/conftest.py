"""The known study directories of the report's tests serve the results layer's tests too."""

from tests.report.conftest import full_study  # noqa: F401
