"""The application layer: config, wiring, CLI and service. The only layer that knows every part."""
