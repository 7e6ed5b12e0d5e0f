"""Adversarial tests written by a reviewer who had only the README and issue 14 (a package, so that its conftest does not shadow the suite's)."""
