"""The employee's page and the communication team's overview (CONTRACT §11, issue 21).

:mod:`routes` answers the HTTP routes, :mod:`templates` renders their HTML (da/en, from
:mod:`texts`), :mod:`store` is what they read and write in PostgreSQL (migration 0008).
"""

from services.ingest.page.routes import SelfService
from services.ingest.page.store import record, record_jobs

__all__ = ["SelfService", "record", "record_jobs"]
