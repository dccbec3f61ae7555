"""Blueprints, one module per resource group."""
