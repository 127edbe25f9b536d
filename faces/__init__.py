"""Faces: detection, alignment to the FFHQ template, photo checks, recognisers and face
similarity (scores, matching, best of N).
"""
