"""Shopify: webhooks in (orders, refunds, customers, GDPR), discount codes out."""
