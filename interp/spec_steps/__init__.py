"""Spec steps of the core: the thin adapters between a YAML step and the library.

Each module turns one ``method:`` of an experiment spec into calls of the library code
it names, and nothing more:

* :mod:`~interp.spec_steps.generate_step`: ``generate`` (audio and step metrics);
* :mod:`~interp.spec_steps.localization_steps`: ``patch``, ``attribute`` and (from
  :mod:`~interp.spec_steps.locate_step`) ``locate``, over :mod:`interp.patching`,
  :mod:`interp.attribution` and :mod:`interp.localization`, one unit per concept
  (:mod:`~interp.spec_steps.per_concept`);
* :mod:`~interp.spec_steps.steering_steps`: ``caa``, over :mod:`interp.steering`;
* :mod:`~interp.spec_steps.common`: the settings they share (pairs, metric, steps, branch).

The SAE steps (``sae-train``, ``sae-steer``) are in :mod:`saes.spec_steps`. Steps are
registered through the ``tada_interp.methods`` entry points, like any third-party method
(``generate`` is imported by :mod:`interp.experiments` itself).
"""
