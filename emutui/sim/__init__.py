"""Simulators that speak the real wire protocols: for tests, demos and hardware-less work."""
