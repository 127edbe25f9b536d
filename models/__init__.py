"""Loading the models: hub files and their checks, the memory check, the tiny preset, the real
CLIP tokenizer, and :func:`models.loading.load_components` (every model of a preset, once per
process, face models included).
"""
