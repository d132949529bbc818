"""Sensors of the MLS provider."""
