"""Tests of coursekit.grading."""
