"""Object and field metadata of the emulated org."""
