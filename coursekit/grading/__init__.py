"""Homework tooling: release, check, grade and Gradescope export."""
