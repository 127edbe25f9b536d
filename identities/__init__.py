"""The identity library: names, the on-disk library of learned identities, the catalog view
(library + shipped examples) and owners (multi-user workspaces).
"""
