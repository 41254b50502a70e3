"""``ripples bench``: Ripples measured side by side with the raw ceilings of its parts."""
