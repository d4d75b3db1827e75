"""The REST layer: thin DRF views over the plain-Django sync engine."""
