"""The storefront widget: member tokens, the `/v1/me` API, `/widget.js` and a demo page."""
