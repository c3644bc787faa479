"""Helpers and fixtures shared by the tests, imported as ``support.<module>``. A fixture is
registered by the conftest.py of each folder whose tests use it, or, when it is made once per
session, of the nearest folder above all of them."""
