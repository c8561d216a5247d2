"""The machinery every domain uses: the outbox and the inbox, queueing after commit, pacing
calls to providers, the audit trail. It imports no domain package."""
