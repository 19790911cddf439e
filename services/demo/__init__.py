"""`rtml demo`: the whole loop on the embedded stack, end to end."""
