"""Drawing: bind identities to signal words, draw panels with SDXL (regional prompts, the face
pass), lay them out as pages and export them; ``python -m pipelines`` draws from the command line.
"""
