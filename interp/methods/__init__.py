"""Experiment methods of the core: localization (patch, ablate, attribute, locate).

Registered with the experiment framework through the ``tada_interp.methods`` entry
points, like any third-party method.
"""
