"""Bonus points for every member of an RFM segment: the recipients frozen when the award is
made, then awarded set-based in chunks (`service`), by a background thread of the process that
made it and by the `segment-awards` job (`run-due`, the worker) for whatever is left."""
