"""Triggers of the MLS provider (imported by the triggerer, not by DAG files)."""
