"""Admin, one module per domain. Importing them registers their ModelAdmins."""

from . import (  # noqa: F401
    attendance,
    audit,
    crew,
    event_crew,
    events,
    jobs,
    notifications,
    operations,
    pay,
    pay_runs,
    paybill,
    payments,
    payouts,
    people,
    returns,
    sms,
    statement,
    statutory,
    system,
    whatsapp,
)
