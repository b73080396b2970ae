"""Reusable pieces of screens: charts, filter bar, document viewer."""
