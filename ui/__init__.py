"""The Gradio web app, wiring only: one module per step over :mod:`session` (``Studio``, ``Session``).

* :mod:`ui.wiring` — helpers every step uses: ``guarded`` handlers, ``gpu``, shared views.
* :mod:`ui.characters`, :mod:`ui.story`, :mod:`ui.style`, :mod:`ui.comic` — one step each:
  ``build(...)`` lays the step out and returns its components, ``wire(...)`` connects its events.
* :mod:`ui.app` — ``build_demo``: the page, the per-browser state, the four steps.

``app.py`` keeps the command line, the model loading and the launch.
"""
