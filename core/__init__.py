"""Plumbing every folder uses: atomic files, the network probe, bounded reads of untrusted files,
the run folder, the device gate and locks (:mod:`core.concurrency`) and the crash test hook.

Imports nothing of the app but :mod:`configs`.
"""
