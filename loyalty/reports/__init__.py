"""Retention reports: retention rates, cohorts and RFM segments over the orders seen."""
