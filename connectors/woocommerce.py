"""WooCommerce: webhooks in (orders by status, customers, the creation ping), coupons out."""
