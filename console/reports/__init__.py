"""Reports in the console: retention for a chosen period, cohorts (the first-order-month
heatmap, by referral, by reward code) and RFM segments with each segment's members and CSV
(views); the periods offered and how the heatmap shades its cells (periods, heatmap); the
segments in words (segments). Every figure is the reports API's, from the same services."""

from console.reports.views import bp

__all__ = ["bp"]
