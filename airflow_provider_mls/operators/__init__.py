"""Operators of the MLS provider."""
