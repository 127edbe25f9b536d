"""Serving many users: the training queue and service, ZeroGPU, the SQLite store of jobs and
saved comics, and My comics (the comic shelf).
"""
