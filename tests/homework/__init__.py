"""Tests every homework in solutions/ must pass, and helpers shared by the per-homework tests."""
