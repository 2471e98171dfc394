"""Reading the audit log: `GET /v1/audit-log` (`loyalty.audit` writes it)."""
