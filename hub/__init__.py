"""The municipal hub: routes sealed envelopes it cannot open, enforces what it can see, logs."""
