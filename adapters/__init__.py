"""Protocol adapters: sans-IO codecs, async shells around them, and simulators."""
